//! A/A calibration (`stats calibrate`): split one commit's runs into two halves that differ
//! in nothing, judge them as compare would, and count what it reports. Everything it reports
//! is a false alarm; the same splits with a shift injected into one half measure power.
//!
//! A run's index is its place among its key's passing runs in write order, which for
//! `cargo ktstr test --repeat N` is the repeat it came from. Splits divide the indices, the
//! same way for every key (a repeat stays whole, as in a real A/B): by parity (even runs
//! against odd ones) and by random halves (seeded, so a rerun repeats the figures). For
//! each registry metric: the share of random splits in which any key reports it (either
//! direction), the smallest multiplicative shift in the worse direction detected in 80 % of
//! (split, key) cases, and how many runs per side would bring that down to the metric's
//! relative gate. Not here: reading the runs or printing (the CLI and `report::calibrate`).

use super::gate::{Gate, gate_baseline};
use super::noise::assess::assess_with;
use super::noise::mwu::MwuCache;
use super::noise::{HistoryModels, NoiseSettings, Verdict, mwu, normal};
use super::verdict::{Finding, SampleStats};
use super::{ComparisonPolicy, Dim, Group, PairingKey, Row, average_side, is_integer_metric};
use crate::metric::{METRICS, MetricDef, Polarity};

/// Shifts (fractions, worse direction) the power search tries, smallest first.
pub const SHIFT_GRID: [f64; 16] =
    [0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0];
/// The power the smallest detectable effect is quoted at.
pub const POWER: f64 = 0.8;
/// The rank test's asymptotic efficiency against the t test, for the repeats estimate.
const MWU_EFFICIENCY: f64 = 0.955;

/// One metric's calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricCalibration {
    pub metric: &'static str,
    /// Keys where the metric is measured (not zero on every run).
    pub keys: usize,
    /// Whether the parity split flagged it on any key.
    pub parity_flagged: bool,
    /// Share of random splits in which some key flagged it.
    pub false_alarm_rate: f64,
    /// Smallest shift (in %) detected in ≥ 80 % of (split, key) cases; `None` past the grid.
    pub detectable_pct: Option<f64>,
    /// Runs per side for the rank test to detect a shift the size of the relative gate.
    pub repeats_needed: Option<usize>,
}

/// The whole calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub runs: usize,
    pub keys: usize,
    /// Runs per side of the halves (the smallest key's).
    pub per_side: usize,
    pub splits: usize,
    /// Share of random splits reporting any regression.
    pub any_regression_rate: f64,
    /// Share of random splits reporting any regression or improvement.
    pub any_finding_rate: f64,
    pub parity_regressions: usize,
    pub metrics: Vec<MetricCalibration>,
    /// The largest per-metric need, capped at the grid's reach.
    pub repeats_recommended: Option<usize>,
}

/// A small deterministic generator (splitmix64), so a seed repeats a calibration.
#[derive(Debug, Clone)]
pub struct SplitRng(pub u64);

impl SplitRng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniformly random half of `0..n` (⌊n/2⌋ indices).
    pub fn half(&mut self, n: usize) -> Vec<bool> {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            idx.swap(i, j);
        }
        let mut in_a = vec![false; n];
        for &i in &idx[..n / 2] {
            in_a[i] = true;
        }
        in_a
    }
}

/// The mean the dual gate compares (integers rounded, as the averaging does).
fn gate_mean(def: &MetricDef, v: &[f64]) -> f64 {
    let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
    if is_integer_metric(def.name) { m.round() } else { m }
}

/// One key × metric through the dual gate as compare does (means, integers rounded): the
/// finding the noise gate will judge, or `None` when the dual gate lets nothing through.
pub fn candidate(
    metric: usize,
    a: &[f64],
    b: &[f64],
    policy: &ComparisonPolicy,
) -> Option<Finding> {
    let def = &METRICS[metric];
    let (ma, mb) = (gate_mean(def, a), gate_mean(def, b));
    let gate = gate_baseline(def, Some(ma), mb, policy.rel_threshold(def.name, def.default_rel));
    let is_regression = match gate {
        Gate::BothZero | Gate::Unchanged => return None,
        g => g == Gate::Regression,
    };
    Some(Finding::dual_gate_hit(
        PairingKey(Vec::new()),
        def,
        (ma, a.to_vec()),
        (mb, b.to_vec()),
        is_regression,
        super::verdict::series_of_row(&Row::new("")),
    ))
}

/// Judge candidates together, as one compare's family; `None` stays unchanged.
pub fn judge_family(
    candidates: Vec<Option<Finding>>,
    settings: &NoiseSettings,
    cache: &mut MwuCache,
) -> Vec<Verdict> {
    let slots: Vec<bool> = candidates.iter().map(Option::is_some).collect();
    let mut found: Vec<Finding> = candidates.into_iter().flatten().collect();
    assess_with(&mut found, settings, &HistoryModels::new(), cache);
    let mut verdicts = found.into_iter().map(|f| f.verdict);
    slots
        .into_iter()
        .map(|s| if s { verdicts.next().unwrap_or(Verdict::Unchanged) } else { Verdict::Unchanged })
        .collect()
}

/// Each key's passing runs' values of every metric, in write order.
fn key_values(groups: &[Group]) -> Vec<Vec<Vec<f64>>> {
    groups
        .iter()
        .map(|g| {
            let mut rows: Vec<&Row> = g.samples.iter().collect();
            rows.sort_by(|x, y| x.timestamp.cmp(&y.timestamp));
            (0..METRICS.len())
                .map(|i| rows.iter().map(|r| r.metric_value(i).unwrap_or(0.0)).collect())
                .collect()
        })
        .collect()
}

fn split(values: &[f64], in_a: &[bool]) -> (Vec<f64>, Vec<f64>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (v, &to_a) in values.iter().zip(in_a) {
        if to_a { a.push(*v) } else { b.push(*v) }
    }
    (a, b)
}

fn shifted(def: &MetricDef, b: &[f64], shift: f64) -> Vec<f64> {
    let factor = match def.polarity {
        Polarity::LowerBetter => 1.0 + shift,
        Polarity::HigherBetter => 1.0 / (1.0 + shift),
    };
    b.iter().map(|v| v * factor).collect()
}

/// Runs per side for a shift of `rel` to be detected with [`POWER`] at `alpha`, from the
/// robust per-run σ of log values: the normal-theory size over the rank test's efficiency,
/// at least the size at which the exact test can reach `alpha` at all.
pub fn repeats_for(sigma_log: f64, rel: f64, alpha: f64) -> Option<usize> {
    if rel <= 0.0 || !sigma_log.is_finite() {
        return None;
    }
    let z = normal::quantile(1.0 - alpha / 2.0) + normal::quantile(POWER);
    let n = (2.0 * (z * sigma_log / (1.0 + rel).ln()).powi(2) / MWU_EFFICIENCY).ceil();
    let floor = (2..).find(|&n| mwu::min_p(n, n) < alpha && mwu::applies(n, n))?;
    Some((n as usize).max(floor))
}

/// The pooled robust σ of log values around each key's median (positive values only).
fn sigma_log(per_key: &[Vec<f64>]) -> Option<f64> {
    let mut dev = Vec::new();
    for v in per_key {
        let logs: Vec<f64> = v.iter().filter(|x| **x > 0.0).map(|x| x.ln()).collect();
        if logs.len() < 2 {
            continue;
        }
        let med = median(&logs);
        dev.extend(logs.iter().map(|l| (l - med).abs()));
    }
    (dev.len() >= 4).then(|| 1.4826 * median(&dev))
}

fn median(v: &[f64]) -> f64 {
    SampleStats::of(v).median
}

/// What one split of every key says about one metric.
struct Splitter<'a> {
    values: &'a [Vec<Vec<f64>>],
    policy: &'a ComparisonPolicy,
    settings: &'a NoiseSettings,
    cache: MwuCache,
}

impl Splitter<'_> {
    fn candidates(&self, mask: &[bool], metric: usize, shift: f64) -> Vec<Option<Finding>> {
        self.values
            .iter()
            .map(|k| {
                let (a, b) = split(&k[metric], mask);
                let b = if shift > 0.0 { shifted(&METRICS[metric], &b, shift) } else { b };
                candidate(metric, &a, &b, self.policy)
            })
            .collect()
    }

    /// Per key, the verdict on `metric` with the A half `mask` and B shifted by `shift`, the
    /// keys judged as one family.
    fn verdicts(&mut self, mask: &[bool], metric: usize, shift: f64) -> Vec<Verdict> {
        let c = self.candidates(mask, metric, shift);
        judge_family(c, self.settings, &mut self.cache)
    }

    /// Per metric and key, the verdicts of one unshifted split, every metric and key judged
    /// as one family, as one compare would.
    fn split_verdicts(&mut self, mask: &[bool]) -> Vec<Vec<Verdict>> {
        let all: Vec<Option<Finding>> =
            (0..METRICS.len()).flat_map(|i| self.candidates(mask, i, 0.0)).collect();
        if self.values.is_empty() {
            return vec![Vec::new(); METRICS.len()];
        }
        let flat = judge_family(all, self.settings, &mut self.cache);
        flat.chunks(self.values.len().max(1)).map(<[Verdict]>::to_vec).collect()
    }

    /// Share of (split, key) cases, over the keys where `metric` was measured, in which a
    /// shift of `shift` is reported as a regression.
    fn power(&mut self, masks: &[Vec<bool>], metric: usize, shift: f64) -> f64 {
        let measured: Vec<bool> =
            self.values.iter().map(|k| k[metric].iter().any(|v| v.abs() > f64::EPSILON)).collect();
        let mut hits = 0;
        for m in masks {
            let v = self.verdicts(m, metric, shift);
            hits +=
                v.iter().zip(&measured).filter(|(v, m)| **m && **v == Verdict::Regression).count();
        }
        let cases = masks.len() * measured.iter().filter(|m| **m).count();
        hits as f64 / cases.max(1) as f64
    }

    /// The smallest grid shift with [`POWER`], by bisection over the grid (power grows with
    /// the shift).
    fn detectable(&mut self, masks: &[Vec<bool>], metric: usize) -> Option<f64> {
        let (mut lo, mut hi) = (0, SHIFT_GRID.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.power(masks, metric, SHIFT_GRID[mid]) >= POWER {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        SHIFT_GRID.get(lo).copied()
    }
}

fn flagged(v: &[Verdict]) -> bool {
    v.iter().any(|x| matches!(x, Verdict::Regression | Verdict::Improvement))
}

/// Calibrate on `rows` (one commit's runs) with `splits` random halves from `seed`.
pub fn calibrate(
    rows: &[Row],
    policy: &ComparisonPolicy,
    settings: &NoiseSettings,
    splits: usize,
    seed: u64,
) -> Calibration {
    let groups: Vec<Group> =
        average_side(rows, &Dim::ALL).into_iter().filter(|g| g.samples.len() >= 2).collect();
    let values = key_values(&groups);
    let runs_per_key = values.iter().map(|k| k[0].len()).max().unwrap_or(0);
    let mut rng = SplitRng(seed);
    let masks: Vec<Vec<bool>> = (0..splits).map(|_| rng.half(runs_per_key)).collect();
    let parity: Vec<bool> = (0..runs_per_key).map(|i| i % 2 == 0).collect();
    let mut splitter = Splitter { values: &values, policy, settings, cache: MwuCache::default() };
    let mut any_regression = vec![false; splits];
    let mut any_finding = vec![false; splits];
    let parity_split = splitter.split_verdicts(&parity);
    let parity_regressions =
        parity_split.iter().flatten().filter(|v| **v == Verdict::Regression).count();
    let random_splits: Vec<Vec<Vec<Verdict>>> =
        masks.iter().map(|m| splitter.split_verdicts(m)).collect();
    let mut metrics = Vec::new();
    for (i, def) in METRICS.iter().enumerate() {
        let keys = values.iter().filter(|k| k[i].iter().any(|v| v.abs() > f64::EPSILON)).count();
        let parity_v = &parity_split[i];
        let mut alarms = 0;
        for (s, split) in random_splits.iter().enumerate() {
            let v = &split[i];
            any_regression[s] |= v.contains(&Verdict::Regression);
            any_finding[s] |= flagged(v);
            alarms += usize::from(flagged(v));
        }
        let detectable_pct = if keys == 0 { None } else { splitter.detectable(&masks, i) };
        let per_key: Vec<Vec<f64>> = values.iter().map(|k| k[i].clone()).collect();
        let rel = policy.rel_threshold(def.name, def.default_rel);
        metrics.push(MetricCalibration {
            metric: def.name,
            keys,
            parity_flagged: flagged(parity_v),
            false_alarm_rate: alarms as f64 / splits.max(1) as f64,
            detectable_pct: detectable_pct.map(|s| s * 100.0),
            repeats_needed: sigma_log(&per_key).and_then(|s| repeats_for(s, rel, settings.alpha)),
        });
    }
    let rate = |v: &[bool]| v.iter().filter(|x| **x).count() as f64 / splits.max(1) as f64;
    let repeats_recommended =
        metrics.iter().filter(|m| m.keys > 0).filter_map(|m| m.repeats_needed).max();
    Calibration {
        runs: rows.iter().filter(|r| r.is_pass()).count(),
        keys: groups.len(),
        per_side: values.iter().map(|k| k[0].len() / 2).min().unwrap_or(0),
        splits,
        any_regression_rate: rate(&any_regression),
        any_finding_rate: rate(&any_finding),
        parity_regressions,
        metrics,
        repeats_recommended,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(n: usize, noise: impl Fn(usize) -> f64) -> Vec<Row> {
        (0..n)
            .map(|i| {
                let mut r = Row::new("t")
                    .with_metric("total_iterations", 10_000.0 * noise(i))
                    .with_metric("worst_p99_wake_latency_us", 100.0 * noise(i + 7));
                r.timestamp = format!("2026-01-01T00:00:{i:02}Z");
                r.sidecar_id = i as i64;
                r
            })
            .collect()
    }

    #[test]
    fn identical_halves_raise_no_alarm_and_a_shift_is_found() {
        // ±2 % alternating noise: no split can clear a 10 % gate, a 15 % shift always can.
        let rows = runs(10, |i| if i % 2 == 0 { 0.98 } else { 1.02 });
        let c = calibrate(&rows, &ComparisonPolicy::default(), &NoiseSettings::default(), 50, 1);
        assert_eq!((c.runs, c.keys, c.per_side, c.splits), (10, 1, 5, 50));
        assert_eq!(c.any_regression_rate, 0.0);
        let iters = c.metrics.iter().find(|m| m.metric == "total_iterations").unwrap();
        assert_eq!(iters.keys, 1);
        assert_eq!(iters.false_alarm_rate, 0.0);
        assert_eq!(iters.detectable_pct, Some(15.0), "the 10 % gate, then the 15 % step");
        let spread = c.metrics.iter().find(|m| m.metric == "worst_spread").unwrap();
        assert_eq!((spread.keys, spread.detectable_pct), (0, None), "never measured");
    }

    #[test]
    fn the_same_seed_repeats_the_splits() {
        let rows = runs(8, |i| 1.0 + (i * 37 % 11) as f64 / 10.0);
        let p = ComparisonPolicy::default();
        let s = NoiseSettings::default();
        assert_eq!(calibrate(&rows, &p, &s, 20, 7), calibrate(&rows, &p, &s, 20, 7));
        let mut rng = SplitRng(3);
        assert_eq!(rng.half(10).iter().filter(|x| **x).count(), 5);
    }

    #[test]
    fn repeats_grow_with_noise_and_never_fall_below_what_the_rank_test_needs() {
        assert_eq!(repeats_for(0.001, 0.1, 0.05), Some(4));
        let noisy = repeats_for(0.2, 0.1, 0.05).unwrap();
        assert!(noisy > 20, "{noisy}");
        assert_eq!(repeats_for(0.1, 0.0, 0.05), None);
    }
}
