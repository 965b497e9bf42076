//! Whether the host backend can run a sched_ext scheduler here: the kernel must have sched_ext
//! and we must be root. Otherwise a test naming a scheduler is a skip saying exactly what is
//! missing. [`attach_for`] starts a test's scheduler on the host through
//! [`super::lifecycle`].

use std::path::Path;
use std::time::Duration;

use super::binary;
use super::decl::Scheduler;
use super::lifecycle::{Attached, LaunchSpec};
use super::sysfs::SchedExtSysfs;

/// How long SIGINT has to detach a scheduler before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long the kernel may take to report `disabled` once the scheduler has gone.
pub const DETACH_TIMEOUT: Duration = Duration::from_secs(5);

/// The launch of `sched` with `flags` active: its binary found (or built) and its arguments.
pub fn launch_spec(sched: &Scheduler, flags: &[String]) -> Result<LaunchSpec, String> {
    Ok(LaunchSpec {
        name: sched.name.to_string(),
        binary: binary::resolve(sched)?,
        args: sched.args_for(flags)?,
        attach_timeout: Duration::from_secs(sched.attach_timeout_s),
        stop_grace: STOP_GRACE,
        detach_timeout: DETACH_TIMEOUT,
    })
}

/// Starts `sched` on this host (`/sys`, `/dev/kmsg`) and waits for it to attach; the error is
/// the run's one-line failure reason.
pub fn attach_for(sched: &Scheduler, flags: &[String]) -> Result<Attached, String> {
    let spec = launch_spec(sched, flags)?;
    Attached::start(&spec, &SchedExtSysfs::new("/sys"), Some(Path::new("/dev/kmsg")))
        .map_err(|e| e.to_string())
}

/// `Ok` when a scheduler can be attached on this host; else the skip reason.
pub fn host_support(
    sched: &str,
    sysfs: &SchedExtSysfs,
    euid: u32,
    kernel: &str,
) -> Result<(), String> {
    let mut missing = Vec::new();
    if !sysfs.available() {
        missing.push(format!(
            "a kernel with sched_ext (CONFIG_SCHED_CLASS_EXT=y; this host runs {kernel}, which \
             has no {})",
            sysfs.dir().display()
        ));
    }
    if euid != 0 {
        missing.push(format!("root (running as uid {euid})"));
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "scheduler {sched} cannot run on the host backend: it needs {}; run it in a VM \
         (cargo ktstr test --kernel <sched_ext kernel>) or on such a host",
        missing.join(" and ")
    ))
}

/// This process's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The running kernel's release (`uname -r`), for messages.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "an unknown kernel".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::entry::{AssertResult, Ctx, TestEntry};
    use crate::harness::runner::run_entry_outcomes;
    use crate::harness::scheduler::decl::SchedulerBinary;
    use crate::sidecar::model::ScenarioStats;
    use crate::sidecar::write::WriteOptions;

    static MISSING: Scheduler = Scheduler {
        name: "scx_missing",
        binary: SchedulerBinary::Path("/nonexistent/scx_missing"),
        args: &[],
        flags: &[],
        attach_timeout_s: 5,
    };

    fn body(_: &Ctx) -> anyhow::Result<AssertResult> {
        Ok(AssertResult::pass(ScenarioStats::default()))
    }

    /// On a host without sched_ext (or not root) the run is a skip naming what is missing;
    /// on a sched_ext host as root it is attempted, and fails on the missing binary.
    #[test]
    fn a_host_test_naming_a_scheduler_skips_with_what_is_missing_or_runs_it() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WriteOptions {
            sidecar_dir_override: Some(dir.path().to_path_buf()),
            runs_root: dir.path().to_path_buf(),
            run_token: "sched-host".into(),
            lock_timeout: Duration::from_secs(1),
            job: None,
        };
        let entry = TestEntry {
            name: "under_missing",
            func: body,
            topology: crate::harness::Topology::new(1, 1, 1, 1),
            scheduler: "scx_missing",
            scheduler_decl: Some(&MISSING),
            ..TestEntry::DEFAULT
        };
        let outcomes = run_entry_outcomes(&entry, &opts);
        assert_eq!(outcomes.len(), 1);
        let sc = &outcomes[0].sidecar;
        assert_eq!(sc.scheduler, "scx_missing");
        let expected =
            host_support("scx_missing", &SchedExtSysfs::new("/sys"), euid(), &kernel_release());
        match expected {
            Err(why) => {
                assert!(sc.skipped, "{:?}", outcomes[0].reasons);
                assert_eq!(sc.provenance.skip_reason.as_deref(), Some(why.as_str()));
                assert!(why.starts_with(
                    "scheduler scx_missing cannot run on the host backend: it needs "
                ));
            }
            Ok(()) => {
                assert!(!sc.skipped && !sc.passed);
                assert!(
                    outcomes[0].reasons[0]
                        .starts_with("scheduler scx_missing: binary /nonexistent")
                );
            }
        }
    }

    #[test]
    fn says_exactly_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let sx = SchedExtSysfs::new(dir.path());
        let both = host_support("scx_b", &sx, 1000, "6.1.0-x").unwrap_err();
        assert!(both.starts_with(
            "scheduler scx_b cannot run on the host backend: it needs a kernel with sched_ext \
             (CONFIG_SCHED_CLASS_EXT=y; this host runs 6.1.0-x, which has no "
        ));
        assert!(both.contains("/kernel/sched_ext) and root (running as uid 1000); run it in a VM"));
        let kernel_only = host_support("scx_b", &sx, 0, "6.1.0-x").unwrap_err();
        assert!(kernel_only.contains("CONFIG_SCHED_CLASS_EXT") && !kernel_only.contains("root ("));
        std::fs::create_dir_all(sx.dir()).unwrap();
        let root_only = host_support("scx_b", &sx, 1000, "6.1.0-x").unwrap_err();
        assert!(root_only.contains("it needs root (running as uid 1000)"), "{root_only}");
        assert_eq!(host_support("scx_b", &sx, 0, "6.1.0-x"), Ok(()));
    }
}
