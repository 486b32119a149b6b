//! Percentiles of measured durations.

use serde::Serialize;
use std::time::Duration;

/// Summary of a set of durations, in the unit named by the field holding it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Nanoseconds of a duration, saturating.
#[must_use]
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Percentiles {
    /// Sorts `samples` (nanoseconds) and summarizes them divided by `unit_nanos` (1 for ns,
    /// 1e6 for ms). Nearest-rank percentiles; all zero when there are no samples.
    #[must_use]
    pub fn of(samples: &mut [u64], unit_nanos: f64) -> Self {
        samples.sort_unstable();
        let Some(&max) = samples.last() else {
            return Self { count: 0, mean: 0.0, p50: 0.0, p95: 0.0, p99: 0.0, max: 0.0 };
        };
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        let scale = |v: f64| v / unit_nanos;
        Self {
            count: samples.len(),
            mean: scale(sum as f64 / samples.len() as f64),
            p50: scale(rank(samples, 50.0)),
            p95: scale(rank(samples, 95.0)),
            p99: scale(rank(samples, 99.0)),
            max: scale(max as f64),
        }
    }
}

/// The nearest-rank percentile `p` of sorted, non-empty samples.
fn rank(sorted: &[u64], p: f64) -> f64 {
    let index = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index] as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let p = Percentiles::of(&mut v, 1.0);
        assert_eq!((p.count, p.p50, p.p95, p.p99, p.max), (100, 50.0, 95.0, 99.0, 100.0));
        assert!((p.mean - 50.5).abs() < 1e-9);
        let p = Percentiles::of(&mut [7_000_000], 1e6);
        assert_eq!((p.p50, p.p99, p.max), (7.0, 7.0, 7.0));
        assert_eq!(Percentiles::of(&mut [], 1.0).count, 0);
    }
}
