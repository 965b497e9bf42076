//! The noise gate: whether a change the dual gate lets through is larger than the noise of
//! the runs behind it (statistics-reference §4.3–§4.4).
//!
//! Pure statistics, each in its own module with tests pinned to exact values:
//! - [`mwu`]: the exact two-sided Mann-Whitney U test with mid-ranks.
//! - [`hodges_lehmann`]: the shift estimate and its exact confidence interval.
//! - [`wilcoxon`]: the exact signed-rank test for paired runs.
//! - [`fdr`]: Benjamini-Hochberg adjusted p-values.
//! - [`history`]: the replicate-run noise model and its z test.
//! - [`normal`]: the normal tail and quantile.
//!
//! [`assess`] applies them to the dual gate's findings; [`settings`] holds what the user can
//! choose (`--gate`, `--alpha`, `--fdr`) and the defaults. Not here: the dual gate itself
//! ([`super::gate`]), fetching history rows (a [`super::RowSource`]'s job).

pub mod assess;
pub mod fdr;
pub mod history;
pub mod hodges_lehmann;
pub mod mwu;
pub mod normal;
pub mod series;
pub mod settings;
pub mod wilcoxon;

pub use assess::{Change, HistoryModels, Method, NoiseResult, Series, Verdict, assess};
pub use settings::{DEFAULT_ALPHA, DEFAULT_FDR, GateMode, NoiseSettings};
