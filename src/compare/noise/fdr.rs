//! Benjamini-Hochberg adjusted p-values (q-values) over a family of tests. Owns the step-up
//! rule only; which tests form the family is the caller's choice ([`super::assess`]).

/// The BH-adjusted p of each input p, in input order: `min over j ≥ rank of p(j)·m/j`,
/// capped at 1. A test is a discovery at FDR level `q` when its adjusted p is ≤ `q`.
pub fn bh_adjust(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let mut adjusted = vec![1.0; m];
    let mut running = 1.0f64;
    for (pos, &i) in order.iter().enumerate().rev() {
        let rank = pos + 1;
        running = running.min(p[i] * m as f64 / rank as f64).min(1.0);
        adjusted[i] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjusted_p_values_follow_the_step_up_rule() {
        let q = bh_adjust(&[0.01, 0.04, 0.03, 0.005]);
        // Sorted 0.005, 0.01, 0.03, 0.04 → ×4/1, ×4/2, ×4/3, ×4/4 = 0.02, 0.02, 0.04, 0.04.
        let want = [0.02, 0.04, 0.04, 0.02];
        for (got, want) in q.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{q:?}");
        }
        assert_eq!(bh_adjust(&[0.9, 0.8]), [0.9, 0.9]);
        assert!(bh_adjust(&[]).is_empty());
        assert_eq!(bh_adjust(&[1.0]), [1.0]);
    }
}
