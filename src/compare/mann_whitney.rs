//! Two-sided Mann–Whitney U test: do two sets of repetitions come from the same distribution? It assumes
//! nothing about the shape of the noise (throughput repetitions are often skewed by one slow run), which is
//! why `compare` uses it rather than a t-test.
//!
//! Small samples, the usual case, get the exact permutation distribution of the rank sum (midranks, so ties
//! are handled exactly too); large ones the normal approximation with tie and continuity corrections.

/// Above this many ways to split the pooled sample, the normal approximation is used instead of enumerating.
const EXACT_LIMIT: u64 = 200_000;

/// The two-sided p-value of the Mann–Whitney U test of `a` against `b`, or None when either is empty.
pub fn p_value(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let ranks = midranks(a, b);
    let (n1, n2) = (a.len(), b.len());
    let n = n1 + n2;
    let observed: f64 = ranks[..n1].iter().sum();
    let mean = n1 as f64 * (n as f64 + 1.0) / 2.0;
    if choose(n as u64, n1 as u64) <= EXACT_LIMIT {
        Some(exact(&ranks, n1, (observed - mean).abs(), mean))
    } else {
        Some(normal(&ranks, n1, n2, (observed - mean).abs()))
    }
}

/// Ranks of `a` then `b` in the pooled sample, tied values sharing the mean of their ranks.
fn midranks(a: &[f64], b: &[f64]) -> Vec<f64> {
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    let mut order: Vec<usize> = (0..pooled.len()).collect();
    order.sort_by(|&i, &j| pooled[i].total_cmp(&pooled[j]));
    let mut ranks = vec![0.0; pooled.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && pooled[order[end]] == pooled[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) hold equal values: each gets the mean of ranks start+1..=end.
        let rank = (start + 1 + end) as f64 / 2.0;
        order[start..end].iter().for_each(|&i| ranks[i] = rank);
        start = end;
    }
    ranks
}

/// Share of all ways to pick `k` of the pooled ranks whose sum lies at least `distance` from `mean`.
fn exact(ranks: &[f64], k: usize, distance: f64, mean: f64) -> f64 {
    fn walk(ranks: &[f64], k: usize, sum: f64, hit: &mut dyn FnMut(f64)) {
        if k == 0 {
            return hit(sum);
        }
        for i in 0..=ranks.len() - k {
            walk(&ranks[i + 1..], k - 1, sum + ranks[i], hit);
        }
    }
    let (mut extreme, mut total) = (0u64, 0u64);
    // Rank sums are multiples of 0.5, so a small tolerance counts equally extreme splits as extreme.
    walk(ranks, k, 0.0, &mut |sum| {
        total += 1;
        if (sum - mean).abs() >= distance - 1e-9 {
            extreme += 1;
        }
    });
    extreme as f64 / total as f64
}

/// The normal approximation to the rank-sum distribution.
fn normal(ranks: &[f64], n1: usize, n2: usize, distance: f64) -> f64 {
    let n = (n1 + n2) as f64;
    let mut sorted = ranks.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    for group in sorted.chunk_by(|x, y| x == y) {
        let t = group.len() as f64;
        ties += t * t * t - t;
    }
    let variance = n1 as f64 * n2 as f64 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = ((distance - 0.5).max(0.0)) / variance.sqrt();
    libm::erfc(z / std::f64::consts::SQRT_2).min(1.0)
}

/// Ways to choose `k` of `n`, saturating (only compared with `EXACT_LIMIT`).
fn choose(n: u64, k: u64) -> u64 {
    let k = k.min(n - k);
    let mut c: u64 = 1;
    for i in 0..k {
        c = c.saturating_mul(n - i) / (i + 1);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fully_separated_fours_give_the_smallest_exact_p() {
        // 2 of the 70 splits are as extreme: all low or all high.
        let p = p_value(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]).unwrap();
        assert!((p - 2.0 / 70.0).abs() < 1e-12, "{p}");
    }

    #[test]
    fn identical_samples_are_not_different() {
        let p = p_value(&[2.0, 2.0, 2.0], &[2.0, 2.0, 2.0]).unwrap();
        assert_eq!(p, 1.0);
        let p = p_value(&[1.0, 3.0, 5.0, 7.0], &[2.0, 4.0, 6.0, 8.0]).unwrap();
        assert!(p > 0.5, "{p}");
    }

    #[test]
    fn large_samples_use_the_normal_approximation() {
        let a: Vec<f64> = (0..30).map(f64::from).collect();
        let b: Vec<f64> = (0..30).map(|i| f64::from(i) + 20.0).collect();
        assert!(choose(60, 30) > EXACT_LIMIT);
        let p = p_value(&a, &b).unwrap();
        assert!(p < 1e-4, "{p}");
        let same = p_value(&a, &a).unwrap();
        assert!(same > 0.9, "{same}");
    }
}
