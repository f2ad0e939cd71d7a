//! Summaries of timed samples.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Median and 90th percentile of some durations, in milliseconds, with the samples kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub median_ms: f64,
    pub p90_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub samples_ms: Vec<f64>,
}

impl Summary {
    /// `None` for no samples.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let samples_ms = ms.clone();
        ms.sort_by(f64::total_cmp);
        Some(Self {
            median_ms: median(&ms)?,
            p90_ms: nearest_rank(&ms, 0.9)?,
            min_ms: *ms.first()?,
            max_ms: *ms.last()?,
            samples_ms,
        })
    }
}

/// The median of sorted values (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The nearest-rank percentile of sorted values: the smallest value with at least `q` of
/// the values at or below it.
fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.max(1) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(Summary::of(&ms(&[30, 10, 20])).unwrap().median_ms, 20.0);
        assert_eq!(Summary::of(&ms(&[40, 10, 20, 30])).unwrap().median_ms, 25.0);
    }

    #[test]
    fn p90_is_the_nearest_rank() {
        let ten: Vec<u64> = (1..=10).rev().collect();
        assert_eq!(Summary::of(&ms(&ten)).unwrap().p90_ms, 9.0);
        let twenty: Vec<u64> = (1..=20).collect();
        assert_eq!(Summary::of(&ms(&twenty)).unwrap().p90_ms, 18.0);
        assert_eq!(Summary::of(&ms(&[7])).unwrap().p90_ms, 7.0);
    }

    #[test]
    fn samples_keep_their_order() {
        let summary = Summary::of(&ms(&[3, 1, 2])).unwrap();
        assert_eq!(summary.samples_ms, vec![3.0, 1.0, 2.0]);
        assert_eq!((summary.min_ms, summary.max_ms), (1.0, 3.0));
    }

    #[test]
    fn no_samples_no_summary() {
        assert!(Summary::of(&[]).is_none());
    }
}
