//! The history noise model: how much one series varies between replicate runs (A/A data the
//! warehouse already holds), and the z test a small-n finding is judged by against it.
//!
//! A series is one metric of one (test, topology, scheduler, work type). Replicate runs share
//! the project commit, kernel version, kernel commit and flags, and come from a clean tree: a
//! `-dirty` commit's runs are excluded, since the tree may have changed between them. Within
//! each replicate set, consecutive runs (by write time) form a pair and give one log ratio;
//! the newest [`WINDOW_PAIRS`] pairs are kept. The per-run σ̂ is `1.4826 · MAD / √2` of those
//! ratios (a ratio carries two runs' noise), trusted from [`MIN_REPLICATE_PAIRS`] pairs on.
//! A finding's Hodges-Lehmann log shift is then `z = shift / (σ̂ · √(1/n_a + 1/n_b))`,
//! significant when `|z| ≥` [`K`]. Not here: fetching the runs (a `RowSource`'s job).

use super::normal;

/// Replicate pairs needed before the model is trusted.
pub const MIN_REPLICATE_PAIRS: usize = 5;
/// The newest replicate pairs a series' model uses.
pub const WINDOW_PAIRS: usize = 50;
/// The |z| from which a shift is significant (two-sided p ≈ 0.0027).
pub const K: f64 = 3.0;
/// MAD to σ for a normal distribution.
const MAD_TO_SIGMA: f64 = 1.4826;

/// One past run of a series: which replicate set it belongs to, when it ran, its value.
#[derive(Debug, Clone, PartialEq)]
pub struct PastRun {
    /// Commit, kernel and flags joined; runs with equal sets are replicates.
    pub replicate_set: String,
    /// RFC 3339, orders the runs of a set.
    pub timestamp: String,
    pub value: f64,
}

/// A series' per-run noise on the log scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseModel {
    pub sigma: f64,
    pub pairs: usize,
}

/// The outcome of testing one shift against a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryTest {
    pub z: f64,
    pub p_value: f64,
    pub significant: bool,
}

/// The newest replicate log ratios of `runs` (any order). Runs with a non-positive value
/// have no log and are skipped.
pub fn replicate_log_ratios(runs: &[PastRun]) -> Vec<f64> {
    let mut sorted: Vec<&PastRun> = runs.iter().filter(|r| r.value > 0.0).collect();
    sorted.sort_by(|x, y| (&x.replicate_set, &x.timestamp).cmp(&(&y.replicate_set, &y.timestamp)));
    let mut pairs: Vec<(&str, f64)> = sorted
        .windows(2)
        .filter(|w| w[0].replicate_set == w[1].replicate_set)
        .map(|w| (w[1].timestamp.as_str(), (w[1].value / w[0].value).ln()))
        .collect();
    pairs.sort_by(|x, y| y.0.cmp(x.0));
    pairs.truncate(WINDOW_PAIRS);
    pairs.into_iter().map(|(_, r)| r).collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// The model from replicate log ratios; `None` below [`MIN_REPLICATE_PAIRS`].
pub fn noise_model(log_ratios: &[f64]) -> Option<NoiseModel> {
    if log_ratios.len() < MIN_REPLICATE_PAIRS {
        return None;
    }
    let mut v = log_ratios.to_vec();
    let center = median(&mut v);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - center).abs()).collect();
    let mad = median(&mut dev);
    Some(NoiseModel { sigma: MAD_TO_SIGMA * mad / std::f64::consts::SQRT_2, pairs: v.len() })
}

/// Test a log shift between samples of `n_a` and `n_b` runs against `model`. A model with no
/// spread at all (every replicate ratio the same) makes any non-zero shift significant.
pub fn test(model: NoiseModel, log_shift: f64, n_a: usize, n_b: usize) -> HistoryTest {
    let scale = model.sigma * (1.0 / n_a.max(1) as f64 + 1.0 / n_b.max(1) as f64).sqrt();
    if scale <= 0.0 || !scale.is_finite() {
        let moved = log_shift != 0.0;
        let z = if moved { f64::MAX.copysign(log_shift) } else { 0.0 };
        return HistoryTest { z, p_value: if moved { 0.0 } else { 1.0 }, significant: moved };
    }
    let z = log_shift / scale;
    HistoryTest { z, p_value: normal::two_sided_p(z), significant: z.abs() >= K }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(set: &str, t: u32, value: f64) -> PastRun {
        PastRun { replicate_set: set.into(), timestamp: format!("2026-01-01T00:00:{t:02}Z"), value }
    }

    #[test]
    fn ratios_pair_consecutive_runs_within_a_replicate_set_only() {
        let runs = [run("a", 1, 100.0), run("b", 2, 1000.0), run("a", 3, 200.0), run("a", 4, 0.0)];
        let r = replicate_log_ratios(&runs);
        assert_eq!(r.len(), 1, "b has one run; the zero has no log");
        assert!((r[0] - 2f64.ln()).abs() < 1e-12);
        let many: Vec<PastRun> = (0..60).map(|t| run("a", t, 100.0 + t as f64)).collect();
        assert_eq!(replicate_log_ratios(&many).len(), WINDOW_PAIRS);
    }

    #[test]
    fn sigma_is_the_scaled_mad_and_needs_five_pairs() {
        assert_eq!(noise_model(&[0.1, -0.1, 0.0, 0.2]), None);
        let m = noise_model(&[0.1, -0.1, 0.0, 0.2, -0.2]).unwrap();
        // median 0, |dev| = 0.1, 0.1, 0, 0.2, 0.2 → MAD 0.1.
        assert!((m.sigma - 1.4826 * 0.1 / 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(m.pairs, 5);
    }

    #[test]
    fn a_shift_past_three_sigma_is_significant_and_a_flat_model_is_defined() {
        let m = NoiseModel { sigma: 0.1, pairs: 8 };
        let t = test(m, 0.5, 1, 1);
        assert!((t.z - 0.5 / (0.1 * 2f64.sqrt())).abs() < 1e-12);
        assert!(t.significant && t.p_value < 0.001);
        let t = test(m, 0.2, 1, 1);
        assert!(!t.significant && t.p_value > 0.1);
        let flat = NoiseModel { sigma: 0.0, pairs: 5 };
        assert_eq!(test(flat, 0.0, 2, 2), HistoryTest { z: 0.0, p_value: 1.0, significant: false });
        let t = test(flat, -0.01, 2, 2);
        assert!(t.significant && t.p_value == 0.0 && t.z.is_finite() && t.z < 0.0);
    }
}
