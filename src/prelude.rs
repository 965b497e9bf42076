//! Everything a `#[ktstr_test]` file needs: `use ktstr::prelude::*;`.
//!
//! Re-exports only; the types live in [`crate::harness`] and the attribute in `ktstr-macros`.
//! `Result` is anyhow's, so test bodies can write `-> Result<AssertResult>` and use `?` on
//! any error without depending on anyhow themselves.

pub use crate::harness::scheduler::{Scheduler, SchedulerBinary, SchedulerFlag};
pub use crate::harness::{
    AssertResult, CgroupDef, Ctx, GauntletVariant, Skip, TestEntry, Thresholds, Topology,
    TopologyConstraints, WorkType, contend, steady,
};
pub use crate::sidecar::model::{CgroupStats, ScenarioStats};
pub use crate::{Schedulers, ktstr_test};
pub use anyhow::{self, Context as _, Result, bail, ensure};
