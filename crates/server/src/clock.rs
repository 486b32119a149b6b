//! The one place the server learns the time. Handlers and workers ask the [`Clock`] they were
//! given, so tests move time forward instead of sleeping; timers wait on the same clock.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::watch;

/// A future that completes when the clock reaches a time.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of the current time, truncated to microseconds (what the stores keep).
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> OffsetDateTime;
    /// Completes once `now() >= at`.
    fn sleep_until(&self, at: OffsetDateTime) -> Sleep;
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

    fn sleep_until(&self, at: OffsetDateTime) -> Sleep {
        let wait = (at - self.now()).max(time::Duration::ZERO);
        let wait = std::time::Duration::try_from(wait).unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when told to; shared by clones, and timers wake when it passes them.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<watch::Sender<OffsetDateTime>>);

impl ManualClock {
    /// Starts at `t`.
    #[must_use]
    pub fn new(t: OffsetDateTime) -> Self {
        Self(Arc::new(watch::Sender::new(to_micros(t))))
    }

    /// Moves time forward, waking every timer now due.
    pub fn advance(&self, by: time::Duration) {
        self.0.send_modify(|t| *t += by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.borrow()
    }

    fn sleep_until(&self, at: OffsetDateTime) -> Sleep {
        let mut rx = self.0.subscribe();
        Box::pin(async move {
            while *rx.borrow_and_update() < at {
                if rx.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        })
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

    #[tokio::test]
    async fn manual_timers_wake_when_the_clock_passes_them() {
        let c = ManualClock::new(OffsetDateTime::UNIX_EPOCH);
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(10);
        let mut sleep = c.sleep_until(at);
        assert!(futures_util::poll!(&mut sleep).is_pending());
        c.advance(time::Duration::seconds(9));
        assert!(futures_util::poll!(&mut sleep).is_pending());
        c.advance(time::Duration::seconds(1));
        sleep.await;
    }

    #[test]
    fn system_clock_keeps_microsecond_precision() {
        assert_eq!(SystemClock.now().nanosecond() % 1_000, 0);
    }
}
