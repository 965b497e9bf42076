//! What the end-to-end tests that run a scheduler crate in TCG guests share: the check that
//! QEMU, the cached 7.3 sched_ext kernel and scx_bpfland are installed (each missing one fails
//! the test, naming the `scripts/deps` script that installs it), `cargo ktstr test --kernel`
//! in a repository, its sidecars, and `stats compare --json`.
//!
//! Runs write into the shared target dir's runs root (`target/ktstr`, as a user's run would,
//! reusing ktstr's built dependencies); each test's repository is fresh, so its commits, and
//! with them its run directories and compare's per-side filters, are its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ktstr::harness::scheduler::binary::find_on_path;
use ktstr::sidecar::SidecarResult;

use crate::harness_e2e::{bin, outer_target_dir, text};

/// The kernel every guest boots: the cache key `scripts/deps/10-vm.sh` fetches.
pub(crate) const KERNEL: &str = "7.3";

/// Fails, saying what to install, unless QEMU, the 7.3 kernel and scx_bpfland are present.
pub(crate) fn require_guest_scheduler_prerequisites() {
    let env = |k: &str| std::env::var(k).ok();
    let path = env("PATH").unwrap_or_default();
    let qemu = std::env::split_paths(&path).any(|d| d.join("qemu-system-x86_64").is_file());
    assert!(qemu, "qemu-system-x86_64 is not on $PATH: run scripts/deps/10-vm.sh");
    let list = Command::new(bin()).args(["kernel", "list"]).output().unwrap();
    let kernels = String::from_utf8_lossy(&list.stdout);
    assert!(
        kernels.lines().any(|l| l.contains("\t7.3.") && l.contains("sched_ext=yes")),
        "no cached 7.3 sched_ext kernel (cargo ktstr kernel list: {kernels:?}): run \
         scripts/deps/10-vm.sh"
    );
    if let Err(why) = find_on_path("scx_bpfland", "scx_bpfland", &env) {
        panic!("{why}");
    }
}

/// `cargo ktstr test --kernel 7.3 --accel tcg -- <nextest_args>` in `repo`, indexing into `db`.
pub(crate) fn ktstr_test_in_guests(repo: &Path, db: &Path, nextest_args: &[&str]) -> Output {
    ktstr_test_in_guests_repeated(repo, db, 1, nextest_args)
}

/// [`ktstr_test_in_guests`] with `--repeat repeat`.
pub(crate) fn ktstr_test_in_guests_repeated(
    repo: &Path,
    db: &Path,
    repeat: u32,
    nextest_args: &[&str],
) -> Output {
    let mut cmd = ktstr(repo, db);
    cmd.args(["test", "--kernel", KERNEL, "--accel", "tcg", "--repeat", &repeat.to_string()]);
    cmd.arg("--").args(nextest_args);
    cmd.output().unwrap()
}

/// `cargo ktstr stats compare --json <args>` in `repo`: exit code and document.
pub(crate) fn compare_json(repo: &Path, db: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let out = ktstr(repo, db).args(["stats", "compare", "--json"]).args(args).output().unwrap();
    let json =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code().unwrap_or(-1), json)
}

/// The real binary in `repo` with the environment of a user's run: the shared target dir, its
/// default runs root, and the warehouse `db`.
pub(crate) fn ktstr(repo: &Path, db: &Path) -> Command {
    let mut cmd = Command::new(bin());
    // The nextest running this test exports its own settings; the suite's run must not inherit
    // them.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("NEXTEST") {
            cmd.env_remove(name);
        }
    }
    cmd.current_dir(repo)
        .env("CARGO_TARGET_DIR", outer_target_dir())
        .env("KTSTR_DB", db)
        .env("RUST_BACKTRACE", "0")
        .env_remove("KTSTR_SIDECAR_DIR")
        .env_remove("KTSTR_KERNEL")
        .env_remove("KTSTR_JOB")
        .env_remove("KTSTR_RUN_TOKEN")
        .env_remove("KTSTR_CI")
        .env_remove("KTSTR_VM_ACCEL")
        .env_remove("KTSTR_TCG_CLOCK");
    cmd
}

/// The sidecars of every run directory of `commit` (`{kernel}-{commit}`) and of its job
/// directories (`repeat-{i}`), by test name, scheduler and repeat.
pub(crate) fn sidecars_of(commit: &str) -> Vec<SidecarResult> {
    let root = outer_target_dir().join("ktstr");
    let files = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect()
    };
    let mut out: Vec<SidecarResult> = run_dirs_of(&root, commit)
        .iter()
        .flat_map(|dir| files(dir))
        .flat_map(|p| if p.is_dir() { files(&p) } else { vec![p] })
        .filter(|p| p.to_string_lossy().ends_with(".ktstr.json"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap())
        .collect();
    out.sort_by(|a, b| {
        (&a.test_name, &a.scheduler, a.provenance.repeat).cmp(&(
            &b.test_name,
            &b.scheduler,
            b.provenance.repeat,
        ))
    });
    out
}

fn run_dirs_of(root: &Path, commit: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.to_string_lossy().ends_with(&format!("-{commit}")))
        .collect()
}

/// What every sidecar of a guest run under scx_bpfland must say: the guest's 7.3 kernel, TCG,
/// the kernel's name for the attached scheduler and how long attaching took.
pub(crate) fn check_bpfland_guest_sidecar(sc: &SidecarResult, context: &str) {
    let name = &sc.test_name;
    assert_eq!(sc.scheduler, "scx_bpfland", "{name}");
    assert!(sc.passed && !sc.skipped, "{name} passed in the guest: {context}");
    assert!(sc.kernel_version.as_deref().unwrap_or("").starts_with("7.3."), "{name}");
    assert_eq!(sc.provenance.backend.as_deref(), Some("qemu-tcg"), "{name}");
    assert_eq!(sc.provenance.tcg_clock.as_deref(), Some("instructions"), "{name}: the default");
    let other = &sc.provenance.other;
    let ops = other.get("scx_ops").and_then(|v| v.as_str()).unwrap_or("");
    assert!(ops.starts_with("bpfland"), "{name} ran under bpfland: {other:?}");
    assert!(other.get("scx_attach_ms").is_some_and(|v| v.is_u64()), "{name}: {other:?}");
    assert!(sc.stats.total_iterations > 0, "{name} measured work");
}
