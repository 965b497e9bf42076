//! `cargo ktstr test --kernel K…`: everything the VM backend needs before nextest starts:
//! the kernels resolved and checked, QEMU found, the accelerator chosen once, and the run's
//! coordinator listening. Every problem is one line saying what to do.

use ktstr_vm::cache_dirs::vmlinux_cache_dir;
use ktstr_vm::kernel::cache::KernelCache;
use ktstr_vm::kernel::{Kernel, KernelError, KernelSpec, resolve};
use ktstr_vm::qemu::{Backend, Qemu, accel};
use ktstr_vm::{Accel, TcgClock};

use crate::cli::ExitError;
use crate::exit_code;
use crate::harness::vm_backend::coordinator::{Coordinator, RunConfig};

/// Resolves every `--kernel`, finds QEMU, chooses the accelerator and starts the coordinator
/// (whose TCG guests keep `tcg_clock`).
pub fn start(specs: &[String], accel: Accel, tcg_clock: TcgClock) -> anyhow::Result<Coordinator> {
    let cache = KernelCache::default_location();
    let mut kernels: Vec<Kernel> = Vec::new();
    for spec in specs {
        let kernel = resolve(&KernelSpec::parse(spec), &cache, &vmlinux_cache_dir())
            .map_err(|e| usage(format!("--kernel {spec}: {e}"), None))?;
        match kernel.require_sched_ext() {
            Ok(()) => {}
            Err(e @ (KernelError::NoSchedExt { .. } | KernelError::NoConfig { .. })) => {
                // Tests under the kernel's own scheduler still run; a sched_ext scheduler
                // would not load.
                eprintln!("ktstr: warning: {e}");
            }
            Err(e) => return Err(usage(format!("--kernel {spec}: {e}"), None).into()),
        }
        kernels.push(kernel);
    }
    let qemu = Qemu::find().map_err(|e| usage(e.to_string(), None))?;
    let first = kernels.first().expect("start is called with at least one kernel");
    let (backend, warning) = accel::choose(accel, &qemu, &first.image)
        .map_err(|e| usage(e.to_string(), Some("use --accel tcg".into())))?;
    if let Some(w) = warning.filter(|_| accel != Accel::Auto) {
        eprintln!("ktstr: warning: {w}");
    }
    let accel = match backend {
        Backend::QemuKvm => Accel::Kvm,
        Backend::QemuTcg => Accel::Tcg,
    };
    let labels: Vec<String> = kernels.iter().map(Kernel::label).collect();
    let clock = match backend {
        Backend::QemuTcg => format!(" (guest clock: {tcg_clock})"),
        Backend::QemuKvm => String::new(),
    };
    eprintln!("ktstr: running tests in {} guests{clock} on {}", backend.name(), labels.join(", "));
    let config = RunConfig { kernels, accel, tcg_clock, backend: backend.name() };
    Ok(Coordinator::start(config)?)
}

fn usage(message: String, hint: Option<String>) -> ExitError {
    ExitError { code: exit_code::USAGE_OR_DATA_ERROR, message, hint }
}
