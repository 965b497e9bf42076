//! Boots real guests under TCG with the crate's `ktstr-vm-probe` as `/init` and the cached
//! Debian sched_ext kernel. Without QEMU or the kernel these tests fail and say to run
//! scripts/deps/10-vm.sh. Boots are serialised with a file lock: parallel TCG guests on a small
//! machine would only starve each other into timeouts.

use ktstr_vm::boot::{BootError, BootOptions, BootOutcome, boot};
use ktstr_vm::cache_dirs::{initramfs_cache_dir, vmlinux_cache_dir};
use ktstr_vm::initramfs::InitramfsBuilder;
use ktstr_vm::kernel::cache::KernelCache;
use ktstr_vm::kernel::{Kernel, KernelSpec, resolve};
use ktstr_vm::qemu::Qemu;
use ktstr_vm::{Accel, Request, Topology};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SETUP: &str = "run scripts/deps/10-vm.sh first";

/// The kernel under test: `$KTSTR_VM_TEST_KERNEL`, else the cached 7.3 series.
fn kernel() -> Kernel {
    if let Err(e) = Qemu::find() {
        panic!("{e}; {SETUP}");
    }
    let spec = std::env::var("KTSTR_VM_TEST_KERNEL").unwrap_or_else(|_| "7.3".into());
    let kernel =
        resolve(&KernelSpec::parse(&spec), &KernelCache::default_location(), &vmlinux_cache_dir())
            .unwrap_or_else(|e| panic!("{e}; {SETUP}"));
    kernel.require_sched_ext().unwrap_or_else(|e| panic!("{e}; {SETUP}"));
    kernel
}

fn initramfs(kernel: &Kernel) -> PathBuf {
    let config = kernel.config.as_ref().expect("the test kernel has a config");
    InitramfsBuilder::new(env!("CARGO_BIN_EXE_ktstr-vm-probe"))
        .kernel_config(&kernel.release, config)
        .build(&initramfs_cache_dir())
        .expect("initramfs")
}

fn topo(s: &str) -> Topology {
    s.parse().unwrap()
}

/// Holds an exclusive lock so only one test guest runs at a time.
struct BootSlot {
    _lock: File,
}

impl BootSlot {
    fn take() -> BootSlot {
        let file = File::create(std::env::temp_dir().join("ktstr-vm-tests.lock")).unwrap();
        // SAFETY: the fd is open; flock blocks until the lock is ours.
        assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
        BootSlot { _lock: file }
    }
}

fn run(
    topology: &str,
    request: Request,
    accel: Accel,
    timeout: Duration,
) -> Result<BootOutcome, BootError> {
    let kernel = kernel();
    let initramfs = initramfs(&kernel);
    let mut options = BootOptions::new(topo(topology));
    options.accel = accel;
    options.timeout = timeout;
    let _slot = BootSlot::take();
    boot(&kernel, &initramfs, &request, &options)
}

fn facts(outcome: &BootOutcome) -> serde_json::Value {
    let frame = outcome.frames.iter().find(|f| f.kind == "facts").expect("a facts frame");
    serde_json::from_slice(&frame.payload).unwrap()
}

#[test]
fn a_1n1l2c1t_guest_sees_its_topology_mounts_cgroup2_config_and_no_network() {
    let t = topo("1n1l2c1t");
    let outcome = run("1n1l2c1t", Request::new(t), Accel::Tcg, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.backend.name(), "qemu-tcg");
    assert_eq!(outcome.guest_topology, t);
    let facts = facts(&outcome);
    assert_eq!(facts["release"], kernel().release.as_str());
    assert_eq!(facts["boot_config"], true, "libbpf finds /boot/config-<release>");
    let controllers = facts["cgroup_controllers"].as_str().unwrap_or_default();
    assert!(
        controllers.split(' ').any(|c| c == "cpu"),
        "cgroup2 with the cpu controller: {controllers}"
    );
    assert_eq!(facts["sched_ext_state"], "disabled");
    let interfaces: Vec<&str> =
        facts["net_interfaces"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(interfaces.iter().all(|i| *i == "lo"), "no network devices: {interfaces:?}");
    let mounts: Vec<&str> =
        facts["mounts"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    for needed in
        ["/proc", "/sys", "/dev", "/tmp", "/sys/fs/cgroup", "/sys/kernel/debug", "/sys/fs/bpf"]
    {
        assert!(mounts.contains(&needed), "{needed} mounted: {mounts:?}");
    }
    eprintln!("1n1l2c1t boot: {:.1} s wall", outcome.wall.as_secs_f64());
}

#[test]
fn a_2n2l2c1t_guest_sees_two_nodes_two_llcs_and_auto_names_its_accelerator() {
    let t = topo("2n2l2c1t");
    let outcome = run("2n2l2c1t", Request::new(t), Accel::Auto, Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.guest_topology, t);
    match (outcome.backend.name(), &outcome.accel_warning) {
        ("qemu-kvm", None) => {}
        ("qemu-tcg", Some(warning)) => {
            assert!(
                warning.starts_with("KVM unusable (") && warning.ends_with("); using TCG"),
                "{warning}"
            );
            assert!(!warning.contains('\n'), "one line: {warning}");
        }
        other => panic!("auto must use KVM silently or TCG with a reason: {other:?}"),
    }
}

#[test]
fn a_guest_booted_with_another_topology_than_requested_is_a_typed_mismatch() {
    let err = run("1n1l2c1t", Request::new(topo("1n2l1c1t")), Accel::Tcg, Duration::from_secs(120))
        .unwrap_err();
    match err {
        BootError::TopologyMismatch { expected, found } => {
            assert_eq!((expected, found), (topo("1n2l1c1t"), topo("1n1l2c1t")));
        }
        other => panic!("expected a topology mismatch, got {other}"),
    }
}

#[test]
fn init_exiting_panics_the_kernel_and_is_an_infrastructure_failure_with_the_console_tail() {
    let request = Request::new(topo("1n1l1c1t")).with_test("exit");
    match run("1n1l1c1t", request, Accel::Tcg, Duration::from_secs(120)).unwrap_err() {
        BootError::GuestCrash { signature, console_tail, .. } => {
            assert!(
                signature.contains("Kernel panic") && signature.contains("Attempted to kill init"),
                "{signature}"
            );
            assert!(console_tail.contains("Attempted to kill init"), "{console_tail}");
        }
        other => panic!("expected a guest crash, got {other}"),
    }
}

#[test]
fn a_hung_guest_is_killed_at_the_deadline_and_leaves_no_qemu_behind() {
    let request = Request::new(topo("1n1l1c1t")).with_test("hang");
    // Long enough for the guest to reach its hang on a loaded 2-core host (boots took up to
    // 28 s at load 23; 30 s was missed there).
    let deadline = Duration::from_secs(75);
    match run("1n1l1c1t", request, Accel::Tcg, deadline).unwrap_err() {
        BootError::Timeout { after, pid, frames_seen, .. } => {
            assert_eq!(after, deadline);
            let kinds: Vec<&str> = frames_seen.iter().map(|f| f.kind.as_str()).collect();
            assert_eq!(
                kinds,
                ["topology", "hanging"],
                "the guest got to its hang before the deadline"
            );
            assert!(!Path::new(&format!("/proc/{pid}")).exists(), "QEMU pid {pid} is gone");
            let pgrep = std::process::Command::new("pgrep")
                .args(["-P", &std::process::id().to_string()])
                .output()
                .unwrap();
            assert!(
                pgrep.stdout.is_empty(),
                "no child left: {}",
                String::from_utf8_lossy(&pgrep.stdout)
            );
        }
        other => panic!("expected a timeout, got {other}"),
    }
}

#[test]
fn a_topology_too_big_for_the_host_is_refused_before_qemu_starts() {
    let kernel = kernel();
    let initramfs = initramfs(&kernel);
    let host_cpus = std::thread::available_parallelism().unwrap().get() as u32;
    let vcpus = host_cpus * ktstr_vm::topology::MAX_VCPUS_PER_HOST_CPU + 1;
    let big = topo(&format!("1n{vcpus}l1c1t"));
    let mut options = BootOptions::new(big);
    options.memory_mb = 512;
    let started = std::time::Instant::now();
    let err = boot(&kernel, &initramfs, &Request::new(big), &options).unwrap_err();
    assert!(matches!(err, BootError::Topology(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "topology {big} asks for {vcpus} vCPUs; this host has {host_cpus} CPUs"
        )),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "refused without booting");
}
