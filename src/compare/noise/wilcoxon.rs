//! The exact two-sided Wilcoxon signed-rank test, for paired A/B runs (per-pair log ratios).
//!
//! Owns the statistic and its exact distribution; not here: where pairs come from. Zero
//! differences are dropped (Wilcoxon's convention) and tied magnitudes share mid-ranks. Under
//! the null each difference is as likely positive as negative, so the 2^n sign patterns are
//! counted by dynamic programming over the doubled positive-rank sum; the two-sided p is
//! `P(|T − E T| ≥ |t − E T|)`. With n non-zero pairs the smallest p is 2 / 2^n: 0.0625 at 5,
//! 0.031 at 6, so the test [`applies`] from 6 pairs.

use super::mwu::doubled_mid_ranks;

/// Pairs needed before the test can reach p < 0.05.
pub const MIN_PAIRS: usize = 6;

/// Whether `pairs` non-zero differences can reach p < 0.05.
pub fn applies(pairs: usize) -> bool {
    pairs >= MIN_PAIRS
}

/// The exact two-sided p of the paired differences `d` (B − A per pair); 1 when every
/// difference is zero or there are none.
pub fn p_value(d: &[f64]) -> f64 {
    let nonzero: Vec<f64> = d.iter().copied().filter(|x| x.is_finite() && *x != 0.0).collect();
    if nonzero.is_empty() {
        return 1.0;
    }
    let magnitudes: Vec<f64> = nonzero.iter().map(|x| x.abs()).collect();
    let ranks = doubled_mid_ranks(&magnitudes);
    let total: usize = ranks.iter().map(|&r| r as usize).sum();
    let observed: usize =
        nonzero.iter().zip(&ranks).filter(|(x, _)| **x > 0.0).map(|(_, &r)| r as usize).sum();
    // counts[s]: sign patterns whose positive ranks sum (doubled) to s.
    let mut counts = vec![0.0f64; total + 1];
    counts[0] = 1.0;
    let mut reach = 0;
    for &r in &ranks {
        let r = r as usize;
        reach += r;
        for s in (r..=reach).rev() {
            counts[s] += counts[s - r];
        }
    }
    let mean = total as f64 / 2.0;
    let far = (observed as f64 - mean).abs();
    let tail: f64 = counts
        .iter()
        .enumerate()
        .filter(|(s, c)| **c > 0.0 && (*s as f64 - mean).abs() >= far - 1e-9)
        .map(|(_, c)| c)
        .sum();
    (tail / 2f64.powi(ranks.len() as i32)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_pairs_one_way_reach_two_over_two_to_the_n() {
        assert_eq!(p_value(&[0.1, 0.2, 0.3, 0.4, 0.5]), 0.0625);
        assert_eq!(p_value(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), 0.03125);
        assert_eq!(p_value(&[-0.1, -0.2, -0.3, -0.4, -0.5, -0.6]), 0.03125);
        assert!(!applies(5) && applies(6));
    }

    #[test]
    fn zeros_are_dropped_and_ties_share_mid_ranks() {
        // Zeros dropped: the same as the six non-zero pairs alone.
        let with_zeros = [0.0, 0.1, 0.2, 0.0, 0.3, 0.4, 0.5, 0.6];
        assert_eq!(p_value(&with_zeros), 0.03125);
        assert_eq!(p_value(&[0.0, 0.0]), 1.0);
        assert_eq!(p_value(&[]), 1.0);
        // |d| = 1, 1, 2 → doubled mid-ranks 3, 3, 6 (total 12, mean 6); the positives sum to
        // 9. The 8 sign patterns sum to 0, 3, 3, 6, 6, 9, 9, 12: six are ≥ 3 from the mean.
        assert_eq!(p_value(&[1.0, -1.0, 2.0]), 0.75);
        // One negative of six: T+ = 21 − 1 = 20; patterns with T+ ≥ 20 or ≤ 1: 4 of 64.
        assert_eq!(p_value(&[-0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), 4.0 / 64.0);
    }
}
