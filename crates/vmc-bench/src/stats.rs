//! Summaries of repeated measurements: min, median, p95, max and mean.

use serde::{Deserialize, Serialize};

/// The summary of a set of samples (all in the same unit).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// How many samples.
    pub count: usize,
    /// The smallest sample.
    pub min: f64,
    /// The middle sample (the mean of the two middle ones for an even count).
    pub median: f64,
    /// The 95th percentile by the nearest-rank method: the smallest sample with at least
    /// 95 % of the samples at or below it.
    pub p95: f64,
    /// The largest sample.
    pub max: f64,
    /// The arithmetic mean.
    pub mean: f64,
}

impl Stats {
    /// Summarises `samples`; `None` when there are none (or any is NaN).
    pub fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() || samples.iter().any(|s| s.is_nan()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Stats {
            count: n,
            min: sorted[0],
            median,
            p95: nearest_rank(&sorted, 95),
            max: sorted[n - 1],
            mean: sorted.iter().sum::<f64>() / n as f64,
        })
    }
}

/// The `percent`th percentile of non-empty ascending `sorted` by nearest rank:
/// the sample at rank ⌈percent/100 · n⌉ (1-based).
fn nearest_rank(sorted: &[f64], percent: usize) -> f64 {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_samples_no_stats() {
        assert_eq!(Stats::of(&[]), None);
        assert_eq!(Stats::of(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn one_sample_is_every_statistic() {
        let s = Stats::of(&[7.5]).unwrap();
        assert_eq!(
            (s.count, s.min, s.median, s.p95, s.max, s.mean),
            (1, 7.5, 7.5, 7.5, 7.5, 7.5)
        );
    }

    #[test]
    fn odd_and_even_medians() {
        assert_eq!(Stats::of(&[3.0, 1.0, 2.0]).unwrap().median, 2.0);
        assert_eq!(Stats::of(&[4.0, 1.0, 3.0, 2.0]).unwrap().median, 2.5);
    }

    #[test]
    fn p95_is_nearest_rank() {
        // 1..=20: rank ceil(0.95 * 20) = 19 -> 19.
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(Stats::of(&twenty).unwrap().p95, 19.0);
        // 1..=10: rank ceil(9.5) = 10 -> the maximum.
        let ten: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(Stats::of(&ten).unwrap().p95, 10.0);
        // 1..=100: rank 95 -> 95.
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(Stats::of(&hundred).unwrap().p95, 95.0);
    }

    #[test]
    fn min_max_mean() {
        let s = Stats::of(&[10.0, 2.0, 6.0]).unwrap();
        assert_eq!((s.min, s.max, s.mean, s.count), (2.0, 10.0, 6.0, 3));
    }
}
