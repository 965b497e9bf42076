//! What the scenarios of one run leave behind for its sidecar: stimulus events, work types,
//! what was not measured, every step's raw worker reports, and the cgroups it used.
//!
//! Plain data: scenarios fill it in ([`super::scenario`]), the runner reads it
//! ([`super::runner`]). Neither measuring nor judging happens here.

use std::path::PathBuf;

use super::measure::WorkerReport;
use crate::sidecar::model::StimulusEvent;

/// What scenarios run under a [`Ctx`](super::entry::Ctx) leave behind for the sidecar.
#[derive(Debug, Default)]
pub(crate) struct RunRecord {
    pub events: Vec<StimulusEvent>,
    pub work_types: Vec<String>,
    /// Things that were not measured, for `provenance`.
    pub unmeasured: Vec<String>,
    /// Raw reports of every step, in order, for per-worker checks.
    pub runs: Vec<CgroupRun>,
    /// `v1` or `v2`, once a scenario has run.
    pub cgroup_version: Option<&'static str>,
    /// Top directories of every cgroup tree created (all removed by the time a step returns).
    pub cgroup_tops: Vec<PathBuf>,
}

/// Per-cgroup raw reports of one step, kept for checks that need per-worker data.
#[derive(Debug, Clone)]
pub(crate) struct CgroupRun {
    /// Index of the step within the body (as in the `StepStart[i]` event).
    pub step: usize,
    pub name: String,
    pub cpus: Option<Vec<usize>>,
    pub reports: Vec<WorkerReport>,
}
