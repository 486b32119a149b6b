//! The one place the server learns the time. Handlers and workers ask the [`Clock`] they were
//! given, so tests can move time forward instead of sleeping.

use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// A source of the current time, truncated to microseconds (what the stores keep).
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> OffsetDateTime;
}

fn to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let micros = t.nanosecond() / 1_000 * 1_000;
    t.replace_nanosecond(micros).unwrap_or(t)
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the single sanctioned read of the wall clock
    fn now(&self) -> OffsetDateTime {
        to_micros(OffsetDateTime::now_utc())
    }
}

/// A clock that moves only when told to; shared by clones.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    /// Starts at `t`.
    #[must_use]
    pub fn new(t: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(to_micros(t))))
    }

    /// Moves time forward.
    pub fn advance(&self, by: time::Duration) {
        let mut t = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = ManualClock::new(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(c.now(), OffsetDateTime::UNIX_EPOCH);
        c.advance(time::Duration::seconds(5));
        assert_eq!(c.now().unix_timestamp(), 5);
    }

    #[test]
    fn system_clock_keeps_microsecond_precision() {
        assert_eq!(SystemClock.now().nanosecond() % 1_000, 0);
    }
}
