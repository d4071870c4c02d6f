//! The test that finds a case whose repetitions fall into two clusters (`bimodal`).
//!
//! The rule: in log space (a factor counts the same at any speed), take the split of the sorted values into a low
//! and a high side, each of at least `MODE_MIN` values, that leaves the least spread within the sides, and the share
//! of the values' spread that the split explains (1 - within / total sums of squares). The values are two modes when
//! that share exceeds what one normal cluster of as many values reaches by chance 1 time in 40 (`CRITICAL`, from
//! a seeded simulation of 200,000 samples per size, `critical_values` below), and the two sides' medians differ by
//! at least `MODE_RATIO`. The share does not depend on where the values sit or how widely they spread, so the rule
//! flags one lognormal cluster of any width about 2.5% of the time at every size, and the threshold falls with the
//! size as chance clusters become rarer: a 50/50 mix of two modes three times apart (each ±15%) is found about 97%
//! of the time at 12 values. Beyond 40 values the threshold of 40 is kept, which errs towards one mode.
//!
//! The rule before this one (Ashman's D > 2, a gap wider than either side's range) flagged one lognormal cluster
//! 22% of the time at 4 values and 11% at 8.

use super::median_of_sorted;
use serde::{Deserialize, Serialize};

/// Two clusters of values: their medians and how many values each holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Modes {
    pub low_median: f64,
    pub low_count: usize,
    pub high_median: f64,
    pub high_count: usize,
}

/// Fewest values in each cluster for a split to count: one value alone is an outlier, not a mode.
const MODE_MIN: usize = 2;
/// The clusters' medians must differ by at least this factor: two tight clusters 3% apart are one mode.
const MODE_RATIO: f64 = 1.25;
/// The fewest values the test looks at (two of each mode).
const FEWEST: usize = 2 * MODE_MIN;
/// The share of the spread the best split explains in one normal cluster of n values, exceeded 1 time in 40
/// (n = 4 to 40, from `critical_values` with 200,000 samples each).
const CRITICAL: [f64; 37] = [
    0.9834, 0.9671, 0.9486, 0.9297, 0.9136, 0.8987, 0.8846, 0.8734, 0.8630, 0.8544, 0.8459, 0.8379, 0.8317, 0.8256,
    0.8202, 0.8145, 0.8097, 0.8059, 0.8018, 0.7973, 0.7939, 0.7905, 0.7871, 0.7846, 0.7815, 0.7784, 0.7760, 0.7735,
    0.7711, 0.7689, 0.7667, 0.7647, 0.7627, 0.7610, 0.7588, 0.7573, 0.7564,
];

/// The threshold for n values (n ≥ `FEWEST`).
fn critical(n: usize) -> f64 {
    CRITICAL[(n - FEWEST).min(CRITICAL.len() - 1)]
}

/// The best split of sorted `logs` (each side at least `MODE_MIN`) and the share of the spread it explains.
fn best_split(logs: &[f64]) -> Option<(usize, f64)> {
    let n = logs.len();
    let mut sum = vec![0.0; n + 1];
    let mut squares = vec![0.0; n + 1];
    for (i, x) in logs.iter().enumerate() {
        sum[i + 1] = sum[i] + x;
        squares[i + 1] = squares[i] + x * x;
    }
    // The sum of squares about their mean of logs[a..b], from the running sums.
    let ss = |a: usize, b: usize| {
        let s = sum[b] - sum[a];
        (squares[b] - squares[a] - s * s / (b - a) as f64).max(0.0)
    };
    let total = ss(0, n);
    if total <= 0.0 {
        return None;
    }
    let (split, within) = (MODE_MIN..=n - MODE_MIN)
        .map(|i| (i, ss(0, i) + ss(i, n)))
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    Some((split, 1.0 - within / total))
}

/// The two clusters of `values`, when they fall into two by the module's rule.
pub fn modes(values: &[f64]) -> Option<Modes> {
    let v: Vec<f64> = super::sorted(values).into_iter().filter(|x| *x > 0.0).collect();
    let n = v.len();
    if n < FEWEST {
        return None;
    }
    let logs: Vec<f64> = v.iter().map(|x| x.ln()).collect();
    let (split, explained) = best_split(&logs)?;
    let (low_median, high_median) = (median_of_sorted(&v[..split])?, median_of_sorted(&v[split..])?);
    (explained > critical(n) && high_median >= MODE_RATIO * low_median).then_some(Modes {
        low_median,
        low_count: split,
        high_median,
        high_count: n - split,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::stats::simulate::normal;

    /// Makes `CRITICAL` again: `cargo test --release critical_values -- --ignored --nocapture` (about ten seconds).
    #[test]
    #[ignore]
    fn critical_values() {
        let mut r = crate::results::stats::rng(0xb1_0da1, 0);
        let samples = 200_000;
        let mut line = Vec::new();
        for n in FEWEST..=40 {
            let mut shares: Vec<f64> = (0..samples)
                .filter_map(|_| {
                    let mut v: Vec<f64> = (0..n).map(|_| normal(&mut r)).collect();
                    v.sort_by(f64::total_cmp);
                    best_split(&v).map(|s| s.1)
                })
                .collect();
            shares.sort_by(f64::total_cmp);
            line.push(format!("{:.4}", shares[shares.len() * 39 / 40]));
        }
        println!("{}", line.join(", "));
    }

    #[test]
    fn two_clusters_are_found_and_one_is_not_split() {
        // The bimodal sendfile seen under bbr: slow near 1.6 GB/s, fast near 4 GB/s.
        let m = modes(&[1600.0, 1450.0, 4010.0, 1720.0, 3950.0, 1580.0, 4100.0, 1650.0]).unwrap();
        assert_eq!((m.low_count, m.high_count), (5, 3));
        assert_eq!((m.low_median, m.high_median), (1600.0, 4010.0));
        // One cluster with ordinary noise, or two tight clusters 3% apart: one mode.
        assert_eq!(
            modes(&[1000.0, 1040.0, 980.0, 1100.0, 950.0, 1020.0, 1060.0, 990.0]),
            None
        );
        assert_eq!(modes(&[1000.0, 1001.0, 1030.0, 1031.0]), None);
        // Values spread evenly over a wide range are one mode, however wide.
        let even: Vec<f64> = (0..8).map(|i| 1000.0 * (1.0 + f64::from(i) / 7.0)).collect();
        assert_eq!(modes(&even), None);
        // A single outlier is not a mode; nor is anything in three values, or all alike.
        assert_eq!(modes(&[1000.0, 1010.0, 990.0, 1005.0, 3000.0]), None);
        assert_eq!(modes(&[1.0, 2.0, 3.0]), None);
        assert_eq!(modes(&[5.0; 6]), None);
        assert_eq!(critical(100), critical(40));
    }
}
