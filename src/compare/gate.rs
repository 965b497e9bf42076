//! The comparison policy (`--policy FILE` / `--threshold PCT`, §4.8) and the dual gate
//! (§4.7): a change is significant only when it clears both the registry's absolute gate
//! and the relative gate.
//!
//! Divergence from ktstr: when the baseline is zero and the new value is not, the relative
//! change is unbounded (ktstr takes it as 0 and never reports it), so the absolute gate
//! alone decides and `stall_count` 0→1 is a regression.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::metric::{MetricDef, Polarity, metric_def, metric_names_list};

/// Per-metric relative thresholds in percent; `{}` = registry defaults everywhere.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComparisonPolicy {
    pub default_percent: Option<f64>,
    pub per_metric_percent: BTreeMap<String, f64>,
}

impl ComparisonPolicy {
    /// `--threshold t`: a uniform relative threshold, validated like a file.
    pub fn from_threshold(percent: f64) -> Result<Self, String> {
        let p = ComparisonPolicy { default_percent: Some(percent), ..Default::default() };
        p.validate()?;
        Ok(p)
    }

    /// Parse and validate a policy document; errors carry the reference's wording and the
    /// path.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, String> {
        let p: ComparisonPolicy = serde_json::from_str(text)
            .map_err(|e| format!("parse comparison policy from {}: {e}", path.display()))?;
        p.validate()
            .map_err(|e| format!("validate comparison policy from {}: {e}", path.display()))?;
        Ok(p)
    }

    pub fn validate(&self) -> Result<(), String> {
        // Checked first: every comparison with NaN is false, so `p < 0.0` lets it through,
        // and a NaN threshold silently turns the relative gate off.
        if let Some(p) = self.default_percent
            && !p.is_finite()
        {
            return Err(format!(
                "ComparisonPolicy: default_percent must be a finite number; got {p}. Use 0 to \
                 let the absolute gate alone decide."
            ));
        }
        if let Some(p) = self.default_percent
            && p < 0.0
        {
            return Err(format!(
                "ComparisonPolicy: default_percent must be non-negative; got {p}. Use 0 to \
                 let the absolute gate alone decide."
            ));
        }
        for (name, &p) in &self.per_metric_percent {
            if metric_def(name).is_none() {
                return Err(format!(
                    "ComparisonPolicy: per_metric_percent contains unknown metric `{name}`. A \
                     typo in the key would silently fall through to default_percent. \
                     Registered metrics: {}",
                    metric_names_list()
                ));
            }
            if !p.is_finite() {
                return Err(format!(
                    "ComparisonPolicy: per_metric_percent[\"{name}\"] must be a finite number; \
                     got {p}"
                ));
            }
            if p < 0.0 {
                return Err(format!(
                    "ComparisonPolicy: per_metric_percent[\"{name}\"] must be non-negative; \
                     got {p}"
                ));
            }
        }
        Ok(())
    }

    /// The relative threshold as a fraction: per-metric, else default, else the registry's.
    pub fn rel_threshold(&self, metric: &str, registry_rel: f64) -> f64 {
        if let Some(p) = self.per_metric_percent.get(metric) {
            return p / 100.0;
        }
        self.default_percent.map_or(registry_rel, |p| p / 100.0)
    }
}

/// The outcome of gating one metric of one pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Both values are (near) zero: not counted at all.
    BothZero,
    Unchanged,
    Regression,
    Improvement,
}

/// Apply the dual gate to a measured baseline `a` and new value `b`.
pub fn gate(def: &MetricDef, a: f64, b: f64, rel_thresh: f64) -> Gate {
    gate_baseline(def, Some(a), b, rel_thresh)
}

/// [`gate`] for a baseline that may not have been measured (`None`, read as 0, as ktstr
/// does; e.g. the tail ratio of a run under 100 iterations). Only a *measured* zero baseline
/// makes a change unbounded; an unmeasured one keeps ktstr's rule (relative change 0), so a
/// value one side never measured cannot become a finding through our divergence.
pub fn gate_baseline(def: &MetricDef, a: Option<f64>, b: f64, rel_thresh: f64) -> Gate {
    let eps = f64::EPSILON;
    let measured = a.is_some();
    let a = a.unwrap_or(0.0);
    if a.abs() < eps && b.abs() < eps {
        return Gate::BothZero;
    }
    let delta = b - a;
    // Our divergence: from a measured zero baseline any non-zero value is an unbounded
    // relative change; ktstr takes it as 0.
    let rel = if a.abs() > eps {
        (delta / a).abs()
    } else if measured {
        f64::INFINITY
    } else {
        0.0
    };
    // A NaN threshold compares false, leaving only the absolute gate (as in ktstr).
    if delta.abs() < def.default_abs || rel < rel_thresh {
        return Gate::Unchanged;
    }
    let worse = match def.polarity {
        Polarity::LowerBetter => delta > 0.0,
        Polarity::HigherBetter => delta < 0.0,
    };
    if worse { Gate::Regression } else { Gate::Improvement }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str) -> &'static MetricDef {
        metric_def(name).unwrap()
    }

    #[test]
    fn compare_rows_dual_gate_both_must_trigger() {
        let spread = def("worst_spread");
        // +2 and +4 on 10: 20 % / 40 % relative but below the absolute gate of 5.
        assert_eq!(gate(spread, 10.0, 12.0, 0.25), Gate::Unchanged);
        assert_eq!(gate(spread, 10.0, 14.0, 0.25), Gate::Unchanged);
        // +6 on 100: clears abs, 6 % fails rel.
        assert_eq!(gate(spread, 100.0, 106.0, 0.25), Gate::Unchanged);
        assert_eq!(gate(spread, 10.0, 16.0, 0.25), Gate::Regression);
    }

    #[test]
    fn compare_rows_higher_is_worse_inversion() {
        let iters = def("total_iterations");
        assert_eq!(gate(iters, 1000.0, 500.0, 0.10), Gate::Regression);
        assert_eq!(gate(iters, 500.0, 1000.0, 0.10), Gate::Improvement);
        assert_eq!(gate(def("worst_gap_ms"), 2000.0, 1000.0, 0.1), Gate::Improvement);
    }

    #[test]
    fn baseline_zero_lets_the_absolute_gate_decide() {
        assert_eq!(gate(def("stall_count"), 0.0, 1.0, 0.5), Gate::Regression);
        assert_eq!(gate(def("total_fallback"), 0.0, 500.0, 0.3), Gate::Regression);
        assert_eq!(gate(def("total_fallback"), 0.0, 4.0, 0.3), Gate::Unchanged);
        assert_eq!(gate(def("total_fallback"), 0.0, 0.0, 0.3), Gate::BothZero);
        assert_eq!(gate(def("worst_page_locality"), 0.0, 0.5, 0.1), Gate::Improvement);
        // A baseline that was never measured (read as 0) keeps ktstr's rule: unchanged.
        let tail = def("worst_wake_latency_tail_ratio");
        assert_eq!(gate_baseline(tail, None, 4.0, 0.25), Gate::Unchanged);
        assert_eq!(gate_baseline(tail, Some(0.0), 4.0, 0.25), Gate::Regression);
    }

    #[test]
    fn comparison_policy_rel_threshold_resolution_priority() {
        let mut p = ComparisonPolicy::default();
        assert_eq!(p.rel_threshold("worst_spread", 0.25), 0.25);
        p.default_percent = Some(40.0);
        assert_eq!(p.rel_threshold("worst_spread", 0.25), 0.40);
        p.per_metric_percent.insert("worst_spread".into(), 5.0);
        assert_eq!(p.rel_threshold("worst_spread", 0.25), 0.05);
        assert_eq!(p.rel_threshold("worst_gap_ms", 0.5), 0.40);
    }

    #[test]
    fn comparison_policy_load_json_rejects_unknown_fields() {
        let path = Path::new("p.json");
        let err = ComparisonPolicy::from_json(r#"{"default_pct": 5}"#, path).unwrap_err();
        assert!(err.starts_with("parse comparison policy from p.json: unknown field"), "{err}");
        assert_eq!(ComparisonPolicy::from_json("{}", path).unwrap(), ComparisonPolicy::default());
        let p = ComparisonPolicy::from_json(r#"{"default_percent": null}"#, path).unwrap();
        assert_eq!(p.default_percent, None);
    }

    #[test]
    fn comparison_policy_validate_rejects_unknown_per_metric_keys_and_negatives() {
        let path = Path::new("p.json");
        let err =
            ComparisonPolicy::from_json(r#"{"per_metric_percent": {"worst_sprad": 5}}"#, path)
                .unwrap_err();
        assert!(err.contains("unknown metric `worst_sprad`"), "{err}");
        assert!(err.contains("Registered metrics: worst_spread, worst_gap_ms,"), "{err}");
        let err =
            ComparisonPolicy::from_json(r#"{"per_metric_percent": {"worst_spread": -1}}"#, path)
                .unwrap_err();
        assert!(err.ends_with("per_metric_percent[\"worst_spread\"] must be non-negative; got -1"));
        let err = ComparisonPolicy::from_threshold(-5.0).unwrap_err();
        assert!(err.starts_with("ComparisonPolicy: default_percent must be non-negative; got -5."));
    }

    #[test]
    fn comparison_policy_validate_rejects_non_finite_thresholds() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = ComparisonPolicy::from_threshold(bad).unwrap_err();
            assert!(err.contains("default_percent must be a finite number; got"), "{bad}: {err}");
            let mut p = ComparisonPolicy::default();
            p.per_metric_percent.insert("worst_spread".into(), bad);
            let err = p.validate().unwrap_err();
            assert!(err.contains("[\"worst_spread\"] must be a finite number"), "{bad}: {err}");
        }
        assert!(ComparisonPolicy::from_threshold(-0.001).is_err());
        for good in [0.0, 5.0, 1e6] {
            ComparisonPolicy::from_threshold(good).unwrap();
        }
        // JSON has no NaN or infinity; an out-of-range number is a parse error, not infinity.
        let path = Path::new("p.json");
        assert!(ComparisonPolicy::from_json(r#"{"default_percent": 1e999}"#, path).is_err());
        assert!(ComparisonPolicy::from_json(r#"{"default_percent": NaN}"#, path).is_err());
    }
}
