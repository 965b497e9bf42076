//! What the user chooses about the noise gate, its defaults, and their validation.
//!
//! The defaults were chosen on the committed A/A corpus (see the README's statistics
//! section): a finding is significant when its p is below [`DEFAULT_ALPHA`] *and* its
//! Benjamini-Hochberg adjusted p, over the compare's noise-tested findings, is at most
//! [`DEFAULT_FDR`]. Over 200 random 5-vs-5 A/A draws of the corpus this reported a regression
//! in 2 % of compares, against 17.5 % for α = 0.05 alone and 89 % for the dual gate alone;
//! `--no-fdr` drops the BH step.

/// The two-sided level of each noise test.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// The Benjamini-Hochberg level over a compare's noise-tested findings.
pub const DEFAULT_FDR: f64 = 0.05;
/// The confidence of the Hodges-Lehmann interval.
pub const CONFIDENCE: f64 = 0.95;

/// Which gates decide a verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GateMode {
    /// ktstr's dual gate alone: its verdicts exactly.
    Dual,
    /// The dual gate, then the noise gate wherever it can be evaluated.
    #[default]
    Noise,
}

impl GateMode {
    pub fn name(self) -> &'static str {
        match self {
            GateMode::Dual => "dual",
            GateMode::Noise => "noise",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseSettings {
    pub gate: GateMode,
    /// The rank test's level per finding, in (0, 1).
    pub alpha: f64,
    /// `--fdr q`: Benjamini-Hochberg over the noise-tested findings at level q, in (0, 1);
    /// `None` under `--no-fdr`.
    pub fdr: Option<f64>,
}

impl Default for NoiseSettings {
    fn default() -> Self {
        NoiseSettings { gate: GateMode::Noise, alpha: DEFAULT_ALPHA, fdr: Some(DEFAULT_FDR) }
    }
}

impl NoiseSettings {
    /// Settings with `alpha` and `fdr` checked: each must lie strictly between 0 and 1.
    pub fn new(gate: GateMode, alpha: f64, fdr: Option<f64>) -> Result<Self, String> {
        let open_unit = |v: f64| v > 0.0 && v < 1.0;
        if !open_unit(alpha) {
            return Err(format!(
                "stats compare: --alpha must be between 0 and 1 (exclusive); got {alpha}. The \
                 default is {DEFAULT_ALPHA}"
            ));
        }
        if let Some(q) = fdr
            && !open_unit(q)
        {
            return Err(format!(
                "stats compare: --fdr must be between 0 and 1 (exclusive); got {q}. Try --fdr \
                 0.05"
            ));
        }
        Ok(NoiseSettings { gate, alpha, fdr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_and_fdr_must_lie_strictly_inside_zero_one() {
        assert!(NoiseSettings::new(GateMode::Noise, 0.05, Some(0.1)).is_ok());
        for bad in [0.0, 1.0, 2.0, -0.1, f64::NAN] {
            let err = NoiseSettings::new(GateMode::Noise, bad, None).unwrap_err();
            assert!(err.starts_with("stats compare: --alpha must be between 0 and 1"), "{err}");
            let err = NoiseSettings::new(GateMode::Noise, 0.05, Some(bad)).unwrap_err();
            assert!(err.starts_with("stats compare: --fdr must be between 0 and 1"), "{err}");
        }
        assert_eq!(NoiseSettings::default().gate, GateMode::Noise);
    }
}
