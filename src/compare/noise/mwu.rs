//! The exact two-sided Mann-Whitney U (Wilcoxon rank-sum) test, with mid-ranks for ties.
//!
//! Owns the rank statistic and its exact permutation distribution; not here: when the test
//! applies to a finding (that is [`super::assess`]) or what α is.
//!
//! Under the null hypothesis every way of choosing which `n_a` of the pooled values are A's is
//! equally likely, so the distribution of A's rank sum is a count over subsets. Ranks are kept
//! doubled (a mid-rank is `(first + last) / 2`, so `first + last` is an integer) and the
//! subsets are counted by dynamic programming over (values taken, doubled rank sum): exact with
//! ties, and cheap (C(20,10) ≈ 185k subsets are never enumerated one by one). The two-sided p is
//! `P(|W − E W| ≥ |w − E W|)`, which equals twice the smaller tail without ties and stays right
//! when ties make the distribution lopsided.

use std::collections::HashMap;

/// Pooled sizes up to this are computed exactly; beyond it the normal approximation (with the
/// tie correction) is accurate to well under the precision anyone reads a p-value at.
pub const EXACT_MAX_TOTAL: usize = 80;

/// Whether the exact test can reach p < 0.05 at these sizes: at least 4 per side, or 3
/// against at least 5 (the smallest p is 2 / C(n_a + n_b, n_a)).
pub fn applies(n_a: usize, n_b: usize) -> bool {
    let (lo, hi) = (n_a.min(n_b), n_a.max(n_b));
    lo >= 4 || (lo == 3 && hi >= 5)
}

/// The smallest two-sided p the exact test can give at these sizes, without ties.
pub fn min_p(n_a: usize, n_b: usize) -> f64 {
    if n_a == 0 || n_b == 0 {
        return 1.0;
    }
    (2.0 / binomial(n_a + n_b, n_a)).min(1.0)
}

/// C(n, k) as a float (exact for every size this module uses).
pub fn binomial(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Doubled mid-ranks of `values` (1-based), in the input order.
pub fn doubled_mid_ranks(values: &[f64]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0u32; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && values[order[end + 1]] == values[order[start]] {
            end += 1;
        }
        // 1-based ranks start+1 ..= end+1; doubled mid-rank = (start+1) + (end+1).
        let doubled = (start + end + 2) as u32;
        for &i in &order[start..=end] {
            ranks[i] = doubled;
        }
        start = end + 1;
    }
    ranks
}

/// The null distribution of the doubled rank sum of `n_a` values drawn from `ranks`:
/// `counts[s]` subsets sum to `s`, out of `total` subsets.
#[derive(Debug, Clone, PartialEq)]
pub struct RankSumDistribution {
    pub counts: Vec<f64>,
    pub total: f64,
    pub mean: f64,
}

impl RankSumDistribution {
    pub fn of(ranks: &[u32], n_a: usize) -> Self {
        let max_sum: usize = ranks.iter().map(|&r| r as usize).sum();
        // table[k][s]: subsets of size k of the ranks seen so far with sum s.
        let mut table = vec![vec![0.0f64; max_sum + 1]; n_a + 1];
        table[0][0] = 1.0;
        let mut seen_sum = 0usize;
        for (i, &r) in ranks.iter().enumerate() {
            let r = r as usize;
            seen_sum += r;
            for k in (1..=n_a.min(i + 1)).rev() {
                let (lower, upper) = table.split_at_mut(k);
                let (from, to) = (&lower[k - 1], &mut upper[0]);
                for s in (r..=seen_sum).rev() {
                    to[s] += from[s - r];
                }
            }
        }
        let counts = table.swap_remove(n_a);
        let total = binomial(ranks.len(), n_a);
        let mean = n_a as f64 * max_sum as f64 / ranks.len() as f64;
        RankSumDistribution { counts, total, mean }
    }

    /// `P(|W − mean| ≥ |w − mean|)`.
    pub fn two_sided_p(&self, w: u32) -> f64 {
        let observed = (w as f64 - self.mean).abs();
        let tail: f64 = self
            .counts
            .iter()
            .enumerate()
            .filter(|(s, c)| **c > 0.0 && (*s as f64 - self.mean).abs() >= observed - 1e-9)
            .map(|(_, c)| c)
            .sum();
        (tail / self.total).min(1.0)
    }
}

/// Exact distributions already computed, keyed by (n_a, sorted doubled ranks): without ties
/// one table serves every comparison of the same sizes.
#[derive(Debug, Default)]
pub struct MwuCache {
    tables: HashMap<(usize, Vec<u32>), RankSumDistribution>,
}

impl MwuCache {
    /// The exact two-sided p of A against B (normal approximation past
    /// [`EXACT_MAX_TOTAL`]); 1 when a side is empty or every value is tied.
    pub fn p_value(&mut self, a: &[f64], b: &[f64]) -> f64 {
        if a.is_empty() || b.is_empty() {
            return 1.0;
        }
        let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
        let ranks = doubled_mid_ranks(&pooled);
        if ranks.iter().all(|&r| r == ranks[0]) {
            return 1.0;
        }
        let w: u32 = ranks[..a.len()].iter().sum();
        if pooled.len() > EXACT_MAX_TOTAL {
            return normal_p(&ranks, a.len(), w);
        }
        let mut key = ranks.clone();
        key.sort_unstable();
        self.tables
            .entry((a.len(), key))
            .or_insert_with_key(|(n_a, sorted)| RankSumDistribution::of(sorted, *n_a))
            .two_sided_p(w)
    }
}

/// The normal approximation with the tie correction, for large samples.
fn normal_p(ranks: &[u32], n_a: usize, w: u32) -> f64 {
    let n = ranks.len() as f64;
    let na = n_a as f64;
    let nb = n - na;
    let r: Vec<f64> = ranks.iter().map(|&d| d as f64 / 2.0).collect();
    let mean_r = (n + 1.0) / 2.0;
    let var_r = r.iter().map(|x| (x - mean_r).powi(2)).sum::<f64>() / (n - 1.0);
    let var_w = na * nb / n * var_r;
    if var_w <= 0.0 {
        return 1.0;
    }
    let z = (w as f64 / 2.0 - na * mean_r).abs() / var_w.sqrt();
    super::normal::two_sided_p(z)
}

/// One-off [`MwuCache::p_value`].
pub fn p_value(a: &[f64], b: &[f64]) -> f64 {
    MwuCache::default().p_value(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn fully_separated_samples_reach_the_exact_minimum_p() {
        let lo = |n: usize| (0..n).map(|i| i as f64).collect::<Vec<_>>();
        let hi = |n: usize| (0..n).map(|i| 100.0 + i as f64).collect::<Vec<_>>();
        // 2 / C(6,3) = 0.1, 2 / C(8,4) = 0.028571…, 2 / C(10,5) = 0.0079365…
        assert!(close(p_value(&lo(3), &hi(3)), 0.1));
        assert!(close(p_value(&lo(4), &hi(4)), 2.0 / 70.0));
        assert_eq!(format!("{:.4}", p_value(&lo(4), &hi(4))), "0.0286");
        assert!(close(p_value(&lo(5), &hi(5)), 2.0 / 252.0));
        assert_eq!(format!("{:.4}", p_value(&hi(5), &lo(5))), "0.0079");
        assert!(close(p_value(&lo(3), &hi(4)), 2.0 / 35.0));
        assert!(close(p_value(&lo(3), &hi(5)), 2.0 / 56.0));
        assert!(close(min_p(5, 5), 2.0 / 252.0));
    }

    #[test]
    fn the_rank_test_applies_from_four_per_side_or_three_against_five() {
        assert!(!applies(3, 3) && !applies(3, 4) && !applies(2, 10) && !applies(1, 1));
        assert!(applies(4, 4) && applies(3, 5) && applies(5, 3) && applies(10, 4));
        assert!(!applies(0, 10));
    }

    #[test]
    fn ties_use_mid_ranks_and_count_the_exact_subsets() {
        assert_eq!(doubled_mid_ranks(&[5.0, 1.0, 5.0, 3.0]), [7, 2, 7, 4]);
        // A = {1, 2, 2}, B = {2, 3, 4}: mid-ranks 1, 3, 3 | 3, 5, 6. Doubled, A sums to 14
        // against a mean of 21; of the 20 three-element subsets of {2, 6, 6, 6, 10, 12}, six
        // are as far out (three sums of 14, three of 28): p = 0.3, checked by enumeration.
        let p = p_value(&[1.0, 2.0, 2.0], &[2.0, 3.0, 4.0]);
        let ranks = [2u32, 6, 6, 6, 10, 12];
        let mut extreme = 0;
        let mut total = 0;
        for i in 0..6 {
            for j in i + 1..6 {
                for k in j + 1..6 {
                    total += 1;
                    let s = ranks[i] + ranks[j] + ranks[k];
                    if (s as f64 - 21.0).abs() >= 7.0 {
                        extreme += 1;
                    }
                }
            }
        }
        assert_eq!(total, 20);
        assert!(close(p, extreme as f64 / 20.0), "{p} vs {extreme}/20");
        assert!(close(p, 0.3), "{p}");
    }

    #[test]
    fn all_tied_or_empty_samples_give_p_one() {
        assert_eq!(p_value(&[2.0; 5], &[2.0; 5]), 1.0);
        assert_eq!(p_value(&[], &[1.0, 2.0]), 1.0);
        assert_eq!(p_value(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 1.0]), 1.0);
    }

    #[test]
    fn large_samples_use_the_normal_approximation_close_to_exact() {
        let a: Vec<f64> = (0..40).map(|i| i as f64).collect();
        let b: Vec<f64> = (0..41).map(|i| i as f64 + 15.5).collect();
        let approx = p_value(&a, &b);
        let exact = {
            let pooled: Vec<f64> = a.iter().chain(&b).copied().collect();
            let ranks = doubled_mid_ranks(&pooled);
            let w = ranks[..40].iter().sum();
            let mut sorted = ranks.clone();
            sorted.sort_unstable();
            RankSumDistribution::of(&sorted, 40).two_sided_p(w)
        };
        assert!((approx - exact).abs() < 0.002, "{approx} vs {exact}");
        assert!(approx < 0.01);
    }

    #[test]
    fn the_cache_gives_the_same_p_as_a_fresh_table() {
        let mut cache = MwuCache::default();
        let a = [1.0, 2.5, 3.0, 7.0, 9.0];
        let b = [4.0, 5.0, 6.0, 8.0, 10.0];
        let first = cache.p_value(&a, &b);
        assert_eq!(cache.p_value(&b, &a), first);
        assert_eq!(first, p_value(&a, &b));
        assert!(first > 0.05 && first < 1.0);
    }
}
