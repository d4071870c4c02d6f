//! The statistics every table, chart, comparison and stopping rule uses, in one place: medians and ranges,
//! distribution-free intervals for a median, ratios paired by round, a seeded bootstrap for ratios of medians of
//! two independent sets, and the test that finds a case whose repetitions fall into two clusters.
//!
//! Intervals for a median come from order statistics: for n sorted values, [x(k), x(n+1-k)] holds the median of
//! whatever produced them with probability 1 - 2·P(B ≤ k-1), B ~ Binomial(n, 1/2), whatever their distribution.
//! The widest k that still reaches `LEVEL` is taken; with too few values for `LEVEL` (n ≤ 5), the whole range is
//! taken and its real level stated (n = 5: 93.8%, 4: 87.5%, 3: 75%, 2: 50%), never rounded up.

use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The confidence level intervals aim at.
pub const LEVEL: f64 = 0.95;

/// Median, min and max of some values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    /// Over the finite values; None when there are none.
    pub fn of(values: &[f64]) -> Option<Stat> {
        let v = sorted(values);
        Some(Stat {
            median: median_of_sorted(&v)?,
            min: *v.first()?,
            max: *v.last()?,
        })
    }

    /// (max - min) / median.
    pub fn spread(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }
}

/// The finite values, sorted.
fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

fn median_of_sorted(v: &[f64]) -> Option<f64> {
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// The median of the finite values; None when there are none.
pub fn median(values: &[f64]) -> Option<f64> {
    median_of_sorted(&sorted(values))
}

/// Jain's fairness index of `values` (rates): (Σx)² / (n·Σx²), 1 when all are equal, 1/n when one has everything
/// (Jain, Chiu and Hawe, 1984). None without values, or when every value is 0.
pub fn jain(values: &[f64]) -> Option<f64> {
    let sum: f64 = values.iter().sum();
    let squares: f64 = values.iter().map(|x| x * x).sum();
    (!values.is_empty() && squares > 0.0).then(|| sum * sum / (values.len() as f64 * squares))
}

/// A median with an interval and the real confidence level of that interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub median: f64,
    /// The interval's ends.
    pub lo: f64,
    pub hi: f64,
    /// The interval's real confidence level, 0 to 1 (0 with one value: no interval at all).
    pub level: f64,
    /// How many values (rounds, repetitions) it stands on.
    pub n: usize,
}

impl Estimate {
    /// The median of the finite values with its distribution-free interval (see the module's words).
    pub fn of_median(values: &[f64]) -> Option<Estimate> {
        let v = sorted(values);
        let median = median_of_sorted(&v)?;
        let n = v.len();
        let k = order_statistic_rank(n);
        Some(Estimate {
            median,
            lo: v[k - 1],
            hi: v[n - k],
            level: coverage(n, k),
            n,
        })
    }

    /// Half the interval's width over the median: how far the median may be off, as a fraction.
    pub fn relative_half_width(&self) -> f64 {
        if self.median > 0.0 {
            (self.hi - self.lo) / 2.0 / self.median
        } else {
            f64::INFINITY
        }
    }

    /// The interval holds `x`: the estimate cannot be told from it.
    pub fn holds(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }

    /// The interval reaches `LEVEL`.
    pub fn full_level(&self) -> bool {
        self.level >= LEVEL
    }

    /// A ratio for people: `1.61x [1.48–1.79]`, `≈1.05x [0.91–1.22]` when the interval holds 1, and the level
    /// after it when it is short of `LEVEL` (`[1.2–1.9] 75%`); one value alone has no interval (`1.61x (n=1)`).
    pub fn ratio_text(&self) -> String {
        let mut s = self.interval_text();
        if self.n >= 2 && !self.full_level() {
            s.push_str(&format!(" {:.0}%", self.level * 100.0));
        }
        s
    }

    /// `ratio_text` without the level, for a sentence that states it.
    pub fn interval_text(&self) -> String {
        if self.n < 2 {
            return format!("{:.2}x (n={})", self.median, self.n);
        }
        let near = if self.holds(1.0) { "≈" } else { "" };
        format!("{near}{:.2}x [{:.2}–{:.2}]", self.median, self.lo, self.hi)
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ratio_text())
    }
}

/// P(B ≤ j) for B ~ Binomial(n, 1/2), exact in f64 for the counts met here (n up to a few thousand).
fn binomial_half_cdf(n: usize, j: usize) -> f64 {
    // Sum of C(n, i) / 2^n, built in log space so that large n neither overflows nor underflows early.
    let ln_half_n = n as f64 * std::f64::consts::LN_2;
    let mut ln_c = 0.0f64; // ln C(n, 0)
    let mut total = 0.0;
    for i in 0..=j.min(n) {
        if i > 0 {
            ln_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        total += (ln_c - ln_half_n).exp();
    }
    total.min(1.0)
}

/// The level of the interval [x(k), x(n+1-k)].
fn coverage(n: usize, k: usize) -> f64 {
    if n < 2 {
        return 0.0;
    }
    (1.0 - 2.0 * binomial_half_cdf(n, k - 1)).max(0.0)
}

/// The largest k (1-based) whose interval still reaches `LEVEL`; 1 (the whole range) when none does.
fn order_statistic_rank(n: usize) -> usize {
    let mut k = 1;
    while k < n.div_ceil(2) && coverage(n, k + 1) >= LEVEL {
        k += 1;
    }
    k
}

/// The smallest number of values whose interval reaches `LEVEL` (6: the whole range of six holds the median
/// with 96.9%).
pub fn rounds_for_level() -> usize {
    (2..).find(|&n| coverage(n, 1) >= LEVEL).unwrap_or(6)
}

/// Ratios of `a` to `b` paired by key (a round): one per key both have, in key order.
pub fn paired_ratios<K: Ord>(a: &BTreeMap<K, f64>, b: &BTreeMap<K, f64>) -> Vec<f64> {
    a.iter()
        .filter_map(|(k, x)| {
            let y = b.get(k)?;
            (*y > 0.0 && x.is_finite()).then(|| x / y)
        })
        .collect()
}

/// A seeded generator, so that a shuffle or a bootstrap made again gives the same answer.
pub fn rng(seed: u64, stream: u64) -> rand_chacha::ChaCha8Rng {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// A uniform index below `n` (n > 0), without modulo bias.
pub fn below(r: &mut impl RngCore, n: usize) -> usize {
    let n = n as u64;
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let x = r.next_u64();
        if x < zone {
            return (x % n) as usize;
        }
    }
}

/// Resamples drawn by `ratio_of_medians`.
pub const RESAMPLES: usize = 4000;
/// The seed of every bootstrap: the same sets give the same interval.
const BOOTSTRAP_SEED: u64 = 0x5eed_b007;

/// The ratio of the medians of two independent samples (`b` over `a`), with a percentile bootstrap interval at
/// `LEVEL` (`RESAMPLES` resamples of each side, seeded). None when a side has no value.
pub fn ratio_of_medians(a: &[f64], b: &[f64]) -> Option<Estimate> {
    let (a, b) = (sorted(a), sorted(b));
    let (ma, mb) = (median_of_sorted(&a)?, median_of_sorted(&b)?);
    if ma <= 0.0 {
        return None;
    }
    let mut r = rng(BOOTSTRAP_SEED, 0);
    let mut draw = |v: &[f64], scratch: &mut Vec<f64>| {
        scratch.clear();
        scratch.extend((0..v.len()).map(|_| v[below(&mut r, v.len())]));
        scratch.sort_by(f64::total_cmp);
        median_of_sorted(scratch).unwrap_or(0.0)
    };
    let (mut sa, mut sb) = (Vec::with_capacity(a.len()), Vec::with_capacity(b.len()));
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| {
            let x = draw(&a, &mut sa);
            let y = draw(&b, &mut sb);
            (x > 0.0).then(|| y / x)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - LEVEL) / 2.0;
    let at = |q: f64| ratios[((q * (ratios.len() - 1) as f64).round() as usize).min(ratios.len() - 1)];
    Some(Estimate {
        median: mb / ma,
        lo: at(tail),
        hi: at(1.0 - tail),
        level: LEVEL,
        n: a.len().min(b.len()),
    })
}

/// Two clusters of values: their medians and how many values each holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Modes {
    pub low_median: f64,
    pub low_count: usize,
    pub high_median: f64,
    pub high_count: usize,
}

/// Fewest values in each cluster for a split to count.
const MODE_MIN: usize = 2;
/// Ashman's D above this: two clusters cleanly apart (D > 2 separates two normal distributions).
const MODE_SEPARATION: f64 = 2.0;
/// The clusters' medians must differ by at least this factor: two tight clusters 3% apart are one mode.
const MODE_RATIO: f64 = 1.25;

/// The two clusters of `values`, when they fall into two: the split of the sorted values (in log space, so a
/// factor counts the same at any speed) that leaves the least spread within each side, kept when both sides hold
/// at least `MODE_MIN` values, stand apart by Ashman's D > `MODE_SEPARATION`, the empty stretch between them is
/// wider than either side's own range (values spread evenly over a wide range are one mode, however wide), and
/// their medians differ by at least `MODE_RATIO`.
pub fn modes(values: &[f64]) -> Option<Modes> {
    let v: Vec<f64> = sorted(values).into_iter().filter(|x| *x > 0.0).collect();
    let n = v.len();
    if n < 2 * MODE_MIN {
        return None;
    }
    let logs: Vec<f64> = v.iter().map(|x| x.ln()).collect();
    let ss = |s: &[f64]| {
        let m = s.iter().sum::<f64>() / s.len() as f64;
        s.iter().map(|x| (x - m).powi(2)).sum::<f64>()
    };
    let split = (MODE_MIN..=n - MODE_MIN)
        .min_by(|&i, &j| (ss(&logs[..i]) + ss(&logs[i..])).total_cmp(&(ss(&logs[..j]) + ss(&logs[j..]))))?;
    let (lo, hi) = (&logs[..split], &logs[split..]);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let var = |s: &[f64]| ss(s) / s.len() as f64;
    let d = std::f64::consts::SQRT_2 * (mean(hi) - mean(lo)) / (var(lo) + var(hi)).sqrt();
    let range = |s: &[f64]| s[s.len() - 1] - s[0];
    let gap = hi[0] - lo[lo.len() - 1];
    let (low_median, high_median) = (median_of_sorted(&v[..split])?, median_of_sorted(&v[split..])?);
    let apart = d > MODE_SEPARATION && gap > range(lo).max(range(hi));
    (apart && high_median >= MODE_RATIO * low_median).then_some(Modes {
        low_median,
        low_count: split,
        high_median,
        high_count: n - split,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_is_one_when_fair_and_one_over_n_when_one_gets_all() {
        assert_eq!(jain(&[3.0, 3.0, 3.0, 3.0]), Some(1.0));
        assert_eq!(jain(&[5.0, 0.0, 0.0, 0.0]), Some(0.25));
        // Two of four at half rate: (1+1+0.5+0.5)^2 / (4 * (1+1+0.25+0.25)) = 9 / 10.
        assert!((jain(&[1.0, 1.0, 0.5, 0.5]).unwrap() - 0.9).abs() < 1e-12);
        assert_eq!(jain(&[]), None);
        assert_eq!(jain(&[0.0, 0.0]), None);
    }

    #[test]
    fn order_statistic_intervals_have_their_exact_levels() {
        // n = 6: the whole range, 1 - 2/64.
        let e = Estimate::of_median(&[6.0, 1.0, 5.0, 2.0, 4.0, 3.0]).unwrap();
        assert_eq!((e.median, e.lo, e.hi), (3.5, 1.0, 6.0));
        assert!((e.level - 0.96875).abs() < 1e-12, "{e:?}");
        // n = 5: the whole range, short of 95%, stated as it is.
        let e = Estimate::of_median(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert!((e.level - 0.9375).abs() < 1e-12 && !e.full_level());
        // n = 9: [x(2), x(8)] has 1 - 2·(1 + 9)/512 = 96.1%; [x(3), x(7)] would be 82%.
        let v: Vec<f64> = (1..=9).map(f64::from).collect();
        let e = Estimate::of_median(&v).unwrap();
        assert_eq!((e.lo, e.hi), (2.0, 8.0));
        assert!((e.level - (1.0 - 20.0 / 512.0)).abs() < 1e-12);
        // n = 20: the textbook rank is 6 ([x(6), x(15)], 95.9%).
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let e = Estimate::of_median(&v).unwrap();
        assert_eq!((e.lo, e.hi), (6.0, 15.0));
        assert!(e.level >= LEVEL && e.level < 0.97, "{e:?}");
        let one = Estimate::of_median(&[2.0]).unwrap();
        assert_eq!((one.level, one.n), (0.0, 1));
        assert_eq!(rounds_for_level(), 6);
        assert!(Estimate::of_median(&[f64::NAN]).is_none());
    }

    #[test]
    fn intervals_hold_the_true_median_as_often_as_they_say() {
        // 2,000 samples of 9 from a skewed distribution (exponential, median ln 2): the interval must hold the
        // median at least as often as its level (96.1%), give or take the simulation's own noise.
        let mut r = rng(7, 0);
        let truth = std::f64::consts::LN_2;
        let trials = 2000;
        let held = (0..trials)
            .filter(|_| {
                let v: Vec<f64> = (0..9)
                    .map(|_| -((r.next_u64() as f64 + 1.0) / (u64::MAX as f64 + 2.0)).ln())
                    .collect();
                Estimate::of_median(&v).unwrap().holds(truth)
            })
            .count();
        let rate = held as f64 / trials as f64;
        assert!(rate > 0.945, "{rate}");
    }

    #[test]
    fn ratios_show_their_interval_and_hedge_when_it_holds_one() {
        let e = Estimate::of_median(&[1.5, 1.6, 1.7, 1.62, 1.58, 1.66]).unwrap();
        assert_eq!(e.ratio_text(), "1.61x [1.50–1.70]");
        let e = Estimate::of_median(&[0.9, 1.1, 1.04, 1.2, 0.95, 1.08]).unwrap();
        assert_eq!(e.ratio_text(), "≈1.06x [0.90–1.20]");
        let e = Estimate::of_median(&[1.2, 1.3, 1.9]).unwrap();
        assert_eq!(e.ratio_text(), "1.30x [1.20–1.90] 75%");
    }

    #[test]
    fn paired_ratios_pair_by_round() {
        let a: BTreeMap<u32, f64> = [(1, 200.0), (2, 300.0), (4, 100.0)].into();
        let b: BTreeMap<u32, f64> = [(1, 100.0), (2, 100.0), (3, 100.0), (4, 0.0)].into();
        assert_eq!(paired_ratios(&a, &b), [2.0, 3.0]);
    }

    #[test]
    fn the_bootstrap_is_seeded_and_sees_a_real_difference() {
        let a = [100.0, 102.0, 98.0, 101.0, 99.0, 100.5];
        let b = [120.0, 123.0, 118.0, 121.0, 119.0, 122.0];
        let e = ratio_of_medians(&a, &b).unwrap();
        assert_eq!(e, ratio_of_medians(&a, &b).unwrap(), "seeded");
        assert!((e.median - 120.5 / 100.25).abs() < 1e-12);
        assert!(!e.holds(1.0) && e.lo > 1.1 && e.hi < 1.3, "{e:?}");
        let same = ratio_of_medians(&a, &[99.0, 103.0, 97.0, 101.5, 100.0, 98.5]).unwrap();
        assert!(same.holds(1.0), "{same:?}");
        assert!(ratio_of_medians(&[], &a).is_none());
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
        // A single outlier is not a mode.
        assert_eq!(modes(&[1000.0, 1010.0, 990.0, 1005.0, 3000.0]), None);
        assert_eq!(modes(&[1.0, 2.0, 3.0]), None);
    }

    #[test]
    fn below_is_uniform_enough() {
        let mut r = rng(1, 2);
        let mut counts = [0usize; 3];
        (0..30_000).for_each(|_| counts[below(&mut r, 3)] += 1);
        assert!(counts.iter().all(|&c| (9_500..10_500).contains(&c)), "{counts:?}");
    }
}
