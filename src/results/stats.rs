//! The statistics every table, chart, comparison and stopping rule uses, in one place: medians and ranges,
//! distribution-free intervals for a median, ratios paired by round, the verdict an interval gives against a
//! margin, an exact rank interval for two independent sets (`two_sample`), the test that finds a case whose
//! repetitions fall into two clusters (`modes`), and the rule `--repeat auto` stops on.
//!
//! Intervals for a median come from order statistics: for n sorted values, [x(k), x(n+1-k)] holds the median of
//! whatever produced them with probability 1 - 2·P(B ≤ k-1), B ~ Binomial(n, 1/2), whatever their distribution.
//! The widest k that still reaches `LEVEL` is taken; with too few values for `LEVEL` (n ≤ 5), the whole range is
//! taken and its real level stated (n = 5: 93.75%, 4: 87.5%, 3: 75%, 2: 50%), printed floored (`93%`), never
//! rounded up. Every rule of the house here (the two-sample verdict, the bimodal test, the stopping rule) has a
//! seeded simulation test in `stats::simulate` that fails when the rule is broken.

mod modes;
#[cfg(test)]
pub(crate) mod simulate;
#[cfg(test)]
mod tests;
mod two_sample;

pub use modes::{Modes, modes};
pub use two_sample::{difference_interval, ratio_interval};

use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

/// The confidence level intervals aim at.
pub const LEVEL: f64 = 0.95;
/// The level `--repeat auto` decides on: it stops once this stricter interval is within `--ci`, and reports the
/// `LEVEL` one. Deciding on the interval it reports would stop more often on a sample that happens to be tight,
/// which is more often one that missed (see `stop_reach`).
pub const DECIDE_LEVEL: f64 = 0.99;
/// `--same-within` when not given: an interval inside [1/1.05, 1.05] says "the same within 5%".
pub const DEFAULT_SAME_WITHIN: f64 = 0.05;

/// A level for people, floored to a whole percent: 0.9375 is `93%`, never `94%`.
pub fn percent_floor(level: f64) -> String {
    // The small nudge keeps a level that is exactly a whole percent (0.95) from flooring to the one below it
    // through binary rounding.
    format!("{}%", (level * 100.0 + 1e-9).floor() as i64)
}

/// A margin for people: `±5%`, `±2.5%`.
pub fn margin_text(same_within: f64) -> String {
    let pct = format!("{:.1}", same_within * 100.0);
    format!("±{}%", pct.strip_suffix(".0").unwrap_or(&pct))
}

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

    /// (max - min) / median: the range, which grows with the number of values.
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
    /// The interval's real confidence level, 0 to 1 (0 with one value: no interval at all); printed floored.
    pub level: f64,
    /// How many values (rounds, repetitions) it stands on.
    pub n: usize,
}

impl Estimate {
    /// The median of the finite values with its distribution-free interval at `LEVEL` (see the module's words).
    pub fn of_median(values: &[f64]) -> Option<Estimate> {
        Estimate::of_median_at(values, LEVEL)
    }

    /// The median with the widest order-statistic interval that reaches `level` (the whole range when none does).
    pub fn of_median_at(values: &[f64], level: f64) -> Option<Estimate> {
        let v = sorted(values);
        let median = median_of_sorted(&v)?;
        let n = v.len();
        let (k, level) = order_statistic_rank(n, level);
        Some(Estimate {
            median,
            lo: v[k - 1],
            hi: v[n - k],
            level,
            n,
        })
    }

    /// How far the interval reaches from the median, as a fraction of it: its farther end, so that an asymmetric
    /// interval is not called narrower than it is on its long side.
    pub fn relative_reach(&self) -> f64 {
        if self.median > 0.0 {
            (self.hi - self.median).max(self.median - self.lo) / self.median
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

    /// What the interval of a ratio says against 1 and a margin (`--same-within`).
    pub fn verdict(&self, same_within: f64) -> Verdict {
        let says = if self.n < 2 {
            Says::NoInterval
        } else if self.full_level() && self.lo >= 1.0 / (1.0 + same_within) && self.hi <= 1.0 + same_within {
            Says::Same
        } else if self.holds(1.0) {
            Says::NotDistinguishable
        } else if self.lo > 1.0 {
            Says::Above
        } else {
            Says::Below
        };
        Verdict {
            says,
            same_within,
            level: self.level,
        }
    }

    /// A ratio for people: `1.61x [1.48–1.79]`; `≈1.05x [0.91–1.22]` when the interval holds 1, `=1.01x
    /// [0.97–1.04]` when it lies within the margin (`--same-within`, at a full level); the level after it, floored,
    /// when it is short of `LEVEL` (`[1.2–1.9] 75%`); one value alone has no interval (`1.61x (n=1)`).
    pub fn ratio_text(&self, same_within: f64) -> String {
        let mut s = self.interval_text(same_within);
        if self.n >= 2 && !self.full_level() {
            s.push(' ');
            s.push_str(&percent_floor(self.level));
        }
        s
    }

    /// `ratio_text` without the level, for a sentence that states it.
    pub fn interval_text(&self, same_within: f64) -> String {
        if self.n < 2 {
            return format!("{:.2}x (n={})", self.median, self.n);
        }
        let mark = self.verdict(same_within).says.mark();
        format!("{mark}{:.2}x [{:.2}–{:.2}]", self.median, self.lo, self.hi)
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ratio_text(DEFAULT_SAME_WITHIN))
    }
}

/// What an interval of a ratio says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Says {
    /// The interval, at a full level, lies within the margin: the same within `same_within` (`=`), whether or not
    /// it holds 1.
    Same,
    /// The interval holds 1 but reaches beyond the margin: not distinguishable, and not shown the same (`≈`).
    NotDistinguishable,
    /// The interval lies above 1, and not within the margin.
    Above,
    /// The interval lies below 1, and not within the margin.
    Below,
    /// One value: no interval, no verdict.
    NoInterval,
}

impl Says {
    /// The mark before a ratio: `=` the same within the margin, `≈` not distinguishable, none otherwise.
    pub fn mark(self) -> &'static str {
        match self {
            Says::Same => "=",
            Says::NotDistinguishable => "≈",
            _ => "",
        }
    }
}

/// The verdict of an interval of a ratio, with what it was judged against: what summary.json keeps beside an
/// estimate, so that a reader need not judge it again.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub says: Says,
    /// The margin: "the same" means inside [1/(1+same_within), 1+same_within].
    pub same_within: f64,
    /// The interval's real level, 0 to 1 (printed floored).
    pub level: f64,
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

/// The largest k (1-based) whose interval still reaches `level` (1, the whole range, when none does), with that
/// interval's level. Remembered per size and level: the stopping rule asks after every round, and a simulation
/// thousands of times.
fn order_statistic_rank(n: usize, level: f64) -> (usize, f64) {
    static KNOWN: Mutex<BTreeMap<(usize, u64), (usize, f64)>> = Mutex::new(BTreeMap::new());
    let key = (n, level.to_bits());
    if let Some(k) = KNOWN.lock().ok().and_then(|known| known.get(&key).copied()) {
        return k;
    }
    let mut k = 1;
    while k < n.div_ceil(2) && coverage(n, k + 1) >= level {
        k += 1;
    }
    let found = (k, coverage(n, k));
    if let Ok(mut known) = KNOWN.lock() {
        known.insert(key, found);
    }
    found
}

/// The fewest values whose whole range reaches `level` (`LEVEL`: 6, whose range holds the median with 96.9%;
/// `DECIDE_LEVEL`: 8, 99.2%).
pub fn fewest_for(level: f64) -> usize {
    (2..10_000).find(|&n| coverage(n, 1) >= level).unwrap_or(10_000)
}

/// The smallest number of values whose interval reaches `LEVEL` (6).
pub fn rounds_for_level() -> usize {
    fewest_for(LEVEL)
}

/// The fewest rounds after which `--repeat auto` may stop: those whose interval reaches `DECIDE_LEVEL` (8).
pub fn rounds_to_decide() -> usize {
    fewest_for(DECIDE_LEVEL)
}

/// The stopping rule of `--repeat auto` for one case, from the values its interval stands on (its per-round
/// ratios to sendfile, or its MB/s): how far the interval at `DECIDE_LEVEL` reaches from the median (its farther
/// end, over the median); infinite while too few values reach that level. The case is decided once this is within
/// `--ci`; its reported interval is then the `LEVEL` one, which is narrower. In simulation (`simulate`) the
/// reported interval holds the true median at least as often as its level under this rule, where stopping on the
/// reported interval itself (95%, half its width) held it 91-93% of the time.
pub fn stop_reach(values: &[f64]) -> f64 {
    match Estimate::of_median_at(values, DECIDE_LEVEL) {
        Some(e) if e.level >= DECIDE_LEVEL => e.relative_reach(),
        _ => f64::INFINITY,
    }
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

/// A seeded generator, so that a shuffle or a simulation made again gives the same answer.
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
