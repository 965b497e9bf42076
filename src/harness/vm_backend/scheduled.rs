//! The host's side of a VM run's sched_ext scheduler: resolving it when a test binary describes
//! its runs, the outcomes decided without a boot (a scheduler that cannot be resolved, a kernel
//! whose config has no sched_ext), and what the guest is asked to start.
//!
//! Running the scheduler inside the guest is [`super::guest_scheduler`]'s job; grouping runs
//! into boots is the coordinator's.

use ktstr_vm::kernel::{Kernel, KernelError};
use ktstr_vm::request::SchedulerRequest;

use super::wire::{DescribedRun, GuestResult, RunScheduler};
use crate::harness::entry::TestEntry;
use crate::harness::execution::{Execution, Verdict};
use crate::harness::scheduler::binary;

/// Where the initramfs puts the scheduler's binary in the guest.
pub const GUEST_PATH: &str = "/scheduler";

/// The scheduler a run of `entry` with `flags` needs, resolved here (a workspace package is
/// built); `None` under the kernel's own scheduler.
pub fn describe(entry: &TestEntry, flags: &[String]) -> Option<Result<RunScheduler, String>> {
    let decl = entry.scheduler_decl?;
    Some(binary::resolve(decl).and_then(|path| {
        Ok(RunScheduler {
            name: decl.name.to_string(),
            binary: path.display().to_string(),
            args: decl.args_for(flags)?,
            attach_timeout_s: decl.attach_timeout_s,
        })
    }))
}

/// The one-line reason a scheduler test is skipped on a kernel without sched_ext.
pub fn no_sched_ext(scheduler: &str, release: &str) -> String {
    format!(
        "scheduler {scheduler} needs sched_ext, which kernel {release} does not have \
         (CONFIG_SCHED_CLASS_EXT is not set); run it on a sched_ext kernel (e.g. --kernel 7.3)"
    )
}

/// The outcome of `run` on `kernel` when it is known without booting: a failure when its
/// scheduler could not be resolved, a skip when the kernel's config lacks sched_ext.
pub fn outcome_without_boot(run: &DescribedRun, kernel: &Kernel) -> Option<GuestResult> {
    let mut execution = Execution::default();
    match run.scheduler.as_ref()? {
        Err(why) => {
            execution.verdict = Verdict::Failed;
            execution.reasons = vec![why.clone()];
        }
        Ok(s) => match kernel.require_sched_ext() {
            Err(KernelError::NoSchedExt { .. }) => {
                execution.skip(no_sched_ext(&s.name, &kernel.release))
            }
            // Unknown here (no config beside the image): the guest checks sysfs.
            _ => return None,
        },
    }
    Some(GuestResult {
        key: run.key.clone(),
        kernel_release: kernel.release.clone(),
        execution,
        guest_elapsed_ms: 0,
    })
}

/// What the guest is asked to start for `scheduler`.
pub fn request(scheduler: &RunScheduler) -> SchedulerRequest {
    SchedulerRequest {
        name: scheduler.name.clone(),
        path: GUEST_PATH.to_string(),
        args: scheduler.args.clone(),
        attach_timeout_s: scheduler.attach_timeout_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::scheduler::{Scheduler, SchedulerBinary};
    use crate::harness::vm_backend::wire::RunKey;
    use ktstr_vm::kernel::KernelSource;
    use std::path::Path;

    static FALSE: Scheduler = Scheduler {
        name: "scx_false",
        binary: SchedulerBinary::Path("/usr/bin/false"),
        args: &["-v"],
        flags: &[crate::harness::scheduler::SchedulerFlag { name: "llc", args: &["--llc"] }],
        attach_timeout_s: 7,
    };
    static MISSING: Scheduler =
        Scheduler { binary: SchedulerBinary::Path("/nonexistent/scx"), ..FALSE };

    fn entry(decl: Option<&'static Scheduler>) -> TestEntry {
        TestEntry {
            scheduler: decl.map_or("eevdf", |d| d.name),
            scheduler_decl: decl,
            ..TestEntry::DEFAULT
        }
    }

    fn kernel(dir: &Path, config: Option<&str>) -> Kernel {
        let config = config.map(|text| {
            let path = dir.join("config");
            std::fs::write(&path, text).unwrap();
            path
        });
        Kernel {
            source: KernelSource::Image { path: dir.join("bzImage") },
            image: dir.join("bzImage"),
            vmlinux: None,
            config,
            release: "6.12.57-cloud-amd64".into(),
        }
    }

    #[test]
    fn a_run_carries_its_resolved_scheduler_and_flag_arguments() {
        assert_eq!(describe(&entry(None), &[]), None);
        let s = describe(&entry(Some(&FALSE)), &["llc".into()]).unwrap().unwrap();
        assert_eq!(
            s,
            RunScheduler {
                name: "scx_false".into(),
                binary: "/usr/bin/false".into(),
                args: vec!["-v".into(), "--llc".into()],
                attach_timeout_s: 7,
            }
        );
        let err = describe(&entry(Some(&MISSING)), &[]).unwrap().unwrap_err();
        assert!(err.starts_with("scheduler scx_false: binary /nonexistent/scx cannot be used"));
    }

    #[test]
    fn unresolvable_schedulers_fail_and_kernels_without_sched_ext_skip_without_a_boot() {
        let dir = tempfile::tempdir().unwrap();
        let run = |scheduler| DescribedRun {
            key: RunKey { test: "t".into(), variant: "base".into() },
            topology: "1n1l1c1t".into(),
            flags: vec![],
            memory_mb: None,
            duration_s: 1,
            scheduler,
        };
        let eevdf_kernel = kernel(dir.path(), Some("# CONFIG_SCHED_CLASS_EXT is not set\n"));
        assert!(outcome_without_boot(&run(None), &eevdf_kernel).is_none());
        let failed =
            outcome_without_boot(&run(Some(Err("no binary".into()))), &eevdf_kernel).unwrap();
        assert_eq!(failed.execution.verdict, Verdict::Failed);
        assert_eq!(failed.execution.reasons, ["no binary"]);
        let resolved = describe(&entry(Some(&FALSE)), &[]);
        let skipped = outcome_without_boot(&run(resolved.clone()), &eevdf_kernel).unwrap();
        let why = no_sched_ext("scx_false", "6.12.57-cloud-amd64");
        assert_eq!(skipped.execution.verdict, Verdict::Skipped(why.clone()));
        assert!(
            why.contains("kernel 6.12.57-cloud-amd64") && why.contains("CONFIG_SCHED_CLASS_EXT")
        );
        assert_eq!(skipped.kernel_release, "6.12.57-cloud-amd64");
        let scx_kernel = kernel(dir.path(), Some("CONFIG_SCHED_CLASS_EXT=y\n"));
        assert!(outcome_without_boot(&run(resolved.clone()), &scx_kernel).is_none());
        let unknown = kernel(dir.path(), None);
        assert!(outcome_without_boot(&run(resolved), &unknown).is_none(), "the guest decides");
    }
}
