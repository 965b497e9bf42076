//! sched_ext schedulers under test: how a test crate declares one ([`decl`]), how its binary
//! is found ([`binary`]), what the kernel says about it ([`sysfs`]), its lifecycle around a
//! test body ([`lifecycle`]), and whether this host can run it ([`host`]).
//!
//! Everything here works against a sysfs root given by the caller, so the same code runs on a
//! sched_ext host (`/sys`), in a guest's `/init`, and against a synthetic tree in tests. It
//! does not boot guests (the VM backend's job) nor build sidecars (it hands a
//! [`lifecycle::SchedulerRun`] to [`super::execution`]).

pub mod binary;
pub mod decl;
pub mod host;
pub mod lifecycle;
pub mod sysfs;

pub use decl::{EEVDF, Scheduler, SchedulerBinary, SchedulerFlag};
pub use lifecycle::{Attached, LaunchSpec, LifecycleError, SchedulerRun, StopReport};
pub use sysfs::{SchedExtSysfs, ScxState};
