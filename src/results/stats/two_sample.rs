//! Two independent sets (two result sets of one case, or the slow and the fast repetitions of one case): an exact,
//! distribution-free interval for how far apart they lie.
//!
//! For sets of sizes m and n, the m·n pairwise differences y_j - x_i, sorted, give [d(k), d(mn+1-k)], which holds
//! the shift between the two distributions with probability 1 - 2·P(U ≤ k-1), U the Mann-Whitney count of two
//! samples of those sizes from one distribution (the interval behind the Wilcoxon rank-sum test, after Hodges and
//! Lehmann). When both sets come from one distribution the interval leaves out 0 with probability at most 1 - its
//! level, whatever the distribution: a verdict built on it says "differs" falsely at most that often, at every
//! size it gives one. A ratio is a shift of logarithms. The widest k reaching `LEVEL` is taken; when even the whole
//! range falls short (3 and 3: 90%), there is no interval. The percentile bootstrap this replaced came close to the
//! range of the data at 4 a side (about an 87.5% interval called 95%) and said "differs" of one distribution 7% of
//! the time there.
//!
//! P(U ≤ j) is counted exactly, arrangement by arrangement, up to `EXACT_PAIRS` pairs, and from the normal
//! approximation with a continuity correction above (both sets then hold dozens of values).

use super::{Estimate, LEVEL, median_of_sorted, sorted};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Up to this many pairs (m·n), P(U ≤ j) is counted exactly.
const EXACT_PAIRS: usize = 2_500;

/// The ratio of the medians of `b` over `a` (two independent sets of positive values), with the exact rank
/// interval at `LEVEL` of the ratio between them (from the pairwise ratios b_j / a_i). None when a side has no
/// positive value, or the sets are too small for any interval to reach `LEVEL` (4 a side: 97.1%; 3 and 5: 96.4%;
/// 3 and 4: 94.3%, none).
pub fn ratio_interval(a: &[f64], b: &[f64]) -> Option<Estimate> {
    let positive = |v: &[f64]| -> Vec<f64> { sorted(v).into_iter().filter(|x| *x > 0.0).collect() };
    let (a, b) = (positive(a), positive(b));
    let logs = |v: &[f64]| -> Vec<f64> { v.iter().map(|x| x.ln()).collect() };
    let e = shift(&logs(&a), &logs(&b))?;
    Some(Estimate {
        median: median_of_sorted(&b)? / median_of_sorted(&a)?,
        lo: e.lo.exp(),
        hi: e.hi.exp(),
        ..e
    })
}

/// The difference of the medians of `b` and `a` (two independent sets), with the exact rank interval at `LEVEL` of
/// the shift between them. None as for `ratio_interval`.
pub fn difference_interval(a: &[f64], b: &[f64]) -> Option<Estimate> {
    shift(&sorted(a), &sorted(b))
}

/// The interval of the shift from `a` to `b`, both sorted; `median` is the difference of their medians.
fn shift(a: &[f64], b: &[f64]) -> Option<Estimate> {
    let (m, n) = (a.len(), b.len());
    if m == 0 || n == 0 {
        return None;
    }
    let (k, level) = rank(m, n)?;
    let mut d: Vec<f64> = a.iter().flat_map(|x| b.iter().map(move |y| y - x)).collect();
    d.sort_by(f64::total_cmp);
    Some(Estimate {
        median: median_of_sorted(b)? - median_of_sorted(a)?,
        lo: d[k - 1],
        hi: d[m * n - k],
        level,
        n: m.min(n),
    })
}

/// A rank and its interval's level, or none reaching `LEVEL`.
type Rank = Option<(usize, f64)>;

/// The largest k whose interval [d(k), d(mn+1-k)] reaches `LEVEL` for sizes m and n, with its level; None when
/// even k = 1 falls short. Remembered per size, since a simulation asks for the same sizes thousands of times.
fn rank(m: usize, n: usize) -> Option<(usize, f64)> {
    static KNOWN: Mutex<BTreeMap<(usize, usize), Rank>> = Mutex::new(BTreeMap::new());
    let key = (m.min(n), m.max(n));
    if let Some(found) = KNOWN.lock().ok().and_then(|k| k.get(&key).copied()) {
        return found;
    }
    let tail = lower_tail(key.0, key.1);
    let level = |k: usize| (1.0 - 2.0 * tail(k - 1)).max(0.0);
    let half = (m * n).div_ceil(2);
    let found = (level(1) >= LEVEL).then(|| {
        let mut k = 1;
        while k < half && level(k + 1) >= LEVEL {
            k += 1;
        }
        (k, level(k))
    });
    if let Ok(mut known) = KNOWN.lock() {
        known.insert(key, found);
    }
    found
}

/// P(U ≤ j) for the Mann-Whitney count of sets of sizes m ≤ n from one continuous distribution.
fn lower_tail(m: usize, n: usize) -> Box<dyn Fn(usize) -> f64> {
    if m * n > EXACT_PAIRS {
        let mean = (m * n) as f64 / 2.0;
        let sd = ((m * n * (m + n + 1)) as f64 / 12.0).sqrt();
        return Box::new(move |j| normal_cdf((j as f64 + 0.5 - mean) / sd));
    }
    let counts = arrangements(m, n);
    let total: f64 = counts.iter().sum();
    let mut cumulative = Vec::with_capacity(counts.len());
    let mut sum = 0.0;
    for c in &counts {
        sum += c;
        cumulative.push(sum / total);
    }
    Box::new(move |j| cumulative[j.min(cumulative.len() - 1)])
}

/// How many of the C(m+n, m) orderings of m x's and n y's have U = u, for every u from 0 to m·n: the recurrence on
/// the largest value (an x above all n y's adds n to U; a y adds nothing). Counts stay below C(m+n, m), well inside
/// an f64 for the sizes counted here.
fn arrangements(m: usize, n: usize) -> Vec<f64> {
    let top = m * n;
    // prev[b][u]: orderings of (a - 1) x's and b y's with U = u; cur: of a x's.
    let mut prev: Vec<Vec<f64>> = (0..=n)
        .map(|_| {
            let mut v = vec![0.0; top + 1];
            v[0] = 1.0;
            v
        })
        .collect();
    for _ in 1..=m {
        let mut cur: Vec<Vec<f64>> = vec![vec![0.0; top + 1]; n + 1];
        cur[0][0] = 1.0;
        for b in 1..=n {
            for u in 0..=top {
                let x_on_top = if u >= b { prev[b][u - b] } else { 0.0 };
                cur[b][u] = x_on_top + cur[b - 1][u];
            }
        }
        prev = cur;
    }
    prev.swap_remove(n)
}

/// The standard normal distribution function, from the complementary error function (Numerical Recipes' `erfcc`,
/// fractional error under 1.2e-7: far below what a level printed to a whole percent needs).
fn normal_cdf(z: f64) -> f64 {
    let x = -z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    let erfc = if x >= 0.0 { erfc } else { 2.0 - erfc };
    erfc / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_levels_are_the_textbook_ones() {
        // 4 and 4: the whole range of the 16 pairwise differences, 1 - 2/70.
        assert_eq!(rank(4, 4).map(|(k, _)| k), Some(1));
        assert!((rank(4, 4).unwrap().1 - (1.0 - 2.0 / 70.0)).abs() < 1e-12);
        // 3 and 3: 1 - 2/20 = 90%, no interval at 95%; 3 and 4: 1 - 2/35 = 94.3%, none; 3 and 5: 1 - 2/56.
        assert_eq!(rank(3, 3), None);
        assert_eq!(rank(3, 4), None);
        assert!((rank(3, 5).unwrap().1 - (1.0 - 2.0 / 56.0)).abs() < 1e-12);
        // 10 and 10: the table value of the rank-sum test at 5% two-sided is U ≤ 23, so k = 24 ([d(24), d(77)]).
        assert_eq!(rank(10, 10).map(|(k, _)| k), Some(24));
        // The normal approximation agrees with the count where both apply.
        let exact = lower_tail(40, 40)(680);
        let m = 40.0 * 40.0 / 2.0;
        let sd = (40.0f64 * 40.0 * 81.0 / 12.0).sqrt();
        assert!((exact - normal_cdf((680.5 - m) / sd)).abs() < 2e-3, "{exact}");
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
    }

    #[test]
    fn intervals_of_ratios_and_differences() {
        let a = [100.0, 102.0, 98.0, 101.0, 99.0, 100.5];
        let b = [120.0, 123.0, 118.0, 121.0, 119.0, 122.0];
        let e = ratio_interval(&a, &b).unwrap();
        assert!((e.median - 120.5 / 100.25).abs() < 1e-12);
        assert!(!e.holds(1.0) && e.lo > 1.1 && e.hi < 1.3 && e.level >= LEVEL, "{e:?}");
        let same = ratio_interval(&a, &[99.0, 103.0, 97.0, 101.5, 100.0, 98.5]).unwrap();
        assert!(same.holds(1.0), "{same:?}");
        let d = difference_interval(&[0.01, 0.02, 0.0, 0.01], &[0.2, 0.21, 0.19, 0.2]).unwrap();
        assert!(d.lo > 0.15 && d.hi < 0.22 && (d.median - 0.19).abs() < 1e-12, "{d:?}");
        assert!(ratio_interval(&[], &a).is_none());
        assert!(
            ratio_interval(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).is_none(),
            "3 a side reach 90% at most"
        );
    }
}
