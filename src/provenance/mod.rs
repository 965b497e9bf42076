//! Facts about where and how a test ran, detected by producers before they build a sidecar.
//!
//! - [`first_parent`]: the current branch's first-parent commits (`stats history`'s order).
//! - [`git`]: the project's HEAD commit and dirty state (and a kernel tree's), read with gix.
//! - [`host`]: the machine's context (CPU, memory, THP, NUMA, uname, sched tunables).
//! - [`kernel`]: the kernel `KTSTR_KERNEL` names and the one a host run really ran.
//! - [`run`]: the suite-run token, the run id and the run source.
//!
//! [`RunContext::detect`] gathers all of them once per run, for one [`Backend`]. It records
//! nothing itself: a producer passes the context, with what running the body produced, to the
//! one pure function that builds the document (`harness::execution::build_sidecar`), and the
//! sidecar writer stores that document as given. This module does not know how a test runs or
//! how a document is shaped or written; `sidecar` never imports it.

pub mod first_parent;
pub mod git;
pub mod host;
pub mod kernel;
pub mod run;

use crate::sidecar::HostContext;
use crate::sidecar::layout::process_env;
use crate::timefmt;
use git::ProjectCommit;
use kernel::KernelIdentity;

/// Where a test's body ran. Recorded as `provenance.backend`; it also decides which kernel a
/// run records (see [`KernelIdentity::on_host`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// In this process, on this machine, under its own scheduler.
    Host,
    /// In a QEMU guest booted with the kernel under test. The kernel a VM run records is the
    /// one its guest reported (`uname -r` inside the guest), which the VM backend sets with
    /// [`RunContext::with_kernel`]; until then it is the one `KTSTR_KERNEL` names.
    Qemu(Accel),
}

/// The accelerator a QEMU guest ran under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Backend {
    /// The `provenance.backend` spelling: `host`, `qemu-kvm` or `qemu-tcg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Host => "host",
            Backend::Qemu(Accel::Kvm) => "qemu-kvm",
            Backend::Qemu(Accel::Tcg) => "qemu-tcg",
        }
    }
}

/// The run-level facts of one sidecar: everything it records that does not come from running
/// the body. Built by [`RunContext::detect`], or by hand in tests.
#[derive(Debug, Clone, PartialEq)]
pub struct RunContext {
    pub backend: Backend,
    pub project: Option<ProjectCommit>,
    pub kernel: KernelIdentity,
    /// `ci` or `local`.
    pub run_source: String,
    pub run_token: String,
    /// Which repeat of the suite run this is (`KTSTR_JOB=repeat-{i}`), when it was repeated.
    pub repeat: Option<u32>,
    pub run_id: String,
    /// ISO 8601 UTC, second precision: when the context was taken, just after the body ran.
    pub timestamp: String,
    pub host: HostContext,
}

impl RunContext {
    /// Detect every fact from the process environment, the current directory and the machine.
    /// Called once per run, after the body: `timestamp` is then, and `run_id` counts up.
    pub fn detect(backend: Backend) -> RunContext {
        let host = host::capture_host_context();
        let named = KernelIdentity::named_by(&process_env);
        let kernel = match backend {
            Backend::Host => named.on_host(host.kernel_release.as_deref()),
            Backend::Qemu(_) => named,
        };
        RunContext {
            backend,
            project: git::detect_project_commit(),
            kernel,
            run_source: run::detect_run_source().to_string(),
            run_token: run::run_token(),
            repeat: run::repeat_index(),
            run_id: run::next_run_id(),
            timestamp: timefmt::now_iso8601(),
            host,
        }
    }
}

impl RunContext {
    /// This context with the kernel the run really booted (a VM backend's guest report).
    pub fn with_kernel(mut self, kernel: KernelIdentity) -> RunContext {
        self.kernel = kernel;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_fills_every_run_level_fact() {
        let a = RunContext::detect(Backend::Host);
        assert_eq!(a.backend.as_str(), "host");
        assert_eq!(a.timestamp.len(), 20);
        assert!(a.timestamp.ends_with('Z'));
        assert!(a.run_id.contains('-'));
        assert!(a.host.kernel_release.is_some());
        // On the host backend the recorded kernel is the running one.
        assert_eq!(a.kernel.version, a.host.kernel_release);
        assert!(["ci", "local"].contains(&a.run_source.as_str()));
        assert_eq!(a.run_token, run::run_token());

        let b = RunContext::detect(Backend::Host);
        assert_ne!(a.run_id, b.run_id, "every run gets its own id");
        assert_eq!(a.run_token, b.run_token, "one suite run, one token");
    }

    #[test]
    fn qemu_backends_are_spelled_by_accelerator_and_keep_the_guest_kernel() {
        assert_eq!(Backend::Qemu(Accel::Kvm).as_str(), "qemu-kvm");
        assert_eq!(Backend::Qemu(Accel::Tcg).as_str(), "qemu-tcg");
        let guest =
            KernelIdentity { version: Some("7.3.4-cloud-amd64".into()), ..Default::default() };
        let ctx = RunContext::detect(Backend::Qemu(Accel::Tcg)).with_kernel(guest.clone());
        assert_eq!(ctx.kernel, guest);
        assert_eq!(ctx.backend.as_str(), "qemu-tcg");
    }
}
