//! The run's coordinator: the one owner of every VM of a `cargo ktstr test --kernel …` run.
//!
//! nextest runs one process per test, so no test process can own a boot shared with others.
//! `cargo ktstr test` starts a [`Coordinator`] on a unix socket and exports its path
//! (`KTSTR_VM_SOCKET`); each test process sends an [`Ask`] for one run of its test and waits
//! for the [`Answer`]. On a binary's first ask the coordinator describes it
//! (`KTSTR_VM_DESCRIBE`), so it knows every run that binary has, and groups them by (kernel,
//! topology, memory, sched_ext scheduler and its arguments). A run whose outcome needs no guest
//! (its scheduler cannot be resolved, or the kernel's config has no sched_ext) is answered
//! without a boot. The first ask that touches a group boots the group (all its runs, see
//! [`super::batch`]); the runs' results wait in memory for their own test processes. Boots
//! take one slot: one VM at a time, so guests never compete with each other for the host.
//!
//! The coordinator writes no sidecar: each test process writes its own from the answer, with
//! the same writer as on the host. QEMU children die with the coordinator's process
//! (`PR_SET_PDEATHSIG`), so a killed `cargo ktstr test` leaves no guest running.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ktstr_vm::cache_dirs::initramfs_cache_dir;
use ktstr_vm::initramfs::InitramfsBuilder;
use ktstr_vm::kernel::{Kernel, KernelSource};
use ktstr_vm::{Accel, TcgClock};

use super::batch::{Group, RunOutcome, run_group};
use super::describe::DESCRIBE_ENV;
use super::scheduled;
use super::wire::{Answer, Ask, DescribedEntry, DescribedRun, KernelResult, RunKey, RunScheduler};

/// The variable naming the coordinator's socket in test processes.
pub const SOCKET_ENV: &str = "KTSTR_VM_SOCKET";

/// What every boot of the run shares.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The kernels, in `--kernel` order: every run happens once on each.
    pub kernels: Vec<Kernel>,
    /// `Kvm` or `Tcg`: chosen once per run (`auto` is resolved before).
    pub accel: Accel,
    /// What advances a TCG guest's clocks.
    pub tcg_clock: TcgClock,
    /// `qemu-kvm` or `qemu-tcg`.
    pub backend: &'static str,
}

/// A listening coordinator; dropping it stops accepting (boots in progress end with the
/// process).
pub struct Coordinator {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl Coordinator {
    pub fn start(config: RunConfig) -> std::io::Result<Coordinator> {
        let dir = tempfile::Builder::new().prefix("ktstr-vm-run-").tempdir()?;
        let socket = dir.path().join("coordinator.sock");
        let listener = UnixListener::bind(&socket)?;
        let stop = Arc::new(AtomicBool::new(false));
        let state =
            Arc::new(State { config, binaries: Mutex::default(), boot_slot: Mutex::new(()) });
        let stopping = Arc::clone(&stop);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&state);
                std::thread::spawn(move || serve(&state, stream));
            }
        });
        Ok(Coordinator { socket, stop, _dir: dir })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.socket);
    }
}

struct State {
    config: RunConfig,
    binaries: Mutex<HashMap<BinaryKey, Arc<Binary>>>,
    boot_slot: Mutex<()>,
}

/// A test binary's path and the asking process's job (`KTSTR_JOB`).
type BinaryKey = (String, Option<String>);

/// One test binary: its runs, and one result table per group, filled by the group's boot.
struct Binary {
    path: PathBuf,
    runs: OnceLock<Result<Vec<DescribedRun>, String>>,
    groups: Mutex<HashMap<GroupKey, Arc<GroupTable>>>,
}

/// A group's outcomes by run, `None` until its boots have run; the lock is held while they do,
/// so the group's other askers wait for them.
type GroupTable = Mutex<Option<HashMap<RunKey, RunOutcome>>>;

/// (kernel index, topology, memory, scheduler with its arguments): one boot never mixes
/// schedulers or flag profiles.
type GroupKey = (usize, String, Option<u32>, Option<RunScheduler>);

fn group_key(k: usize, run: &DescribedRun) -> GroupKey {
    let scheduler = run.scheduler.clone().and_then(Result::ok);
    (k, run.topology.clone(), run.memory_mb, scheduler)
}

fn serve(state: &State, stream: UnixStream) {
    let mut line = String::new();
    if BufReader::new(&stream).read_line(&mut line).is_err() {
        return;
    }
    let answer = match serde_json::from_str::<Ask>(&line) {
        Ok(ask) => answer(state, &ask),
        Err(e) => Err(format!("the coordinator cannot read the request: {e}")),
    };
    let answer = answer.unwrap_or_else(|why| Answer {
        results: state
            .config
            .kernels
            .iter()
            .map(|k| failed_result(state, k, why.clone()))
            .collect(),
    });
    let mut json = serde_json::to_string(&answer).expect("answers serialise");
    json.push('\n');
    let _ = (&stream).write_all(json.as_bytes());
}

fn answer(state: &State, ask: &Ask) -> Result<Answer, String> {
    let binary = binary(state, &ask.binary, ask.job.as_deref());
    let runs = binary.runs.get_or_init(|| describe(&binary.path)).as_ref().map_err(Clone::clone)?;
    let run = runs
        .iter()
        .find(|r| r.key == ask.key)
        .ok_or_else(|| format!("{} has no run {:?}", binary.path.display(), ask.key))?;
    let vcpus = run.topology.parse::<ktstr_vm::Topology>().map_or(0, |t| t.total_cpus());
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let results = state
        .config
        .kernels
        .iter()
        .enumerate()
        .map(|(k, kernel)| {
            let (outcome, host_load) = group_outcome(state, &binary, runs, run, k);
            KernelResult {
                outcome,
                host_load,
                vcpus,
                overcommitted: vcpus > host_cpus,
                ..failed_result(state, kernel, String::new())
            }
        })
        .collect();
    Ok(Answer { results })
}

/// The entry of the test binary at `path` for `job`: one per (binary, job), so every repeat of
/// `cargo ktstr test --repeat N` boots its own guests.
fn binary(state: &State, path: &str, job: Option<&str>) -> Arc<Binary> {
    let mut binaries = state.binaries.lock().unwrap_or_else(|e| e.into_inner());
    let key = (path.to_string(), job.map(str::to_string));
    Arc::clone(binaries.entry(key).or_insert_with(|| {
        Arc::new(Binary {
            path: PathBuf::from(path),
            runs: OnceLock::new(),
            groups: Mutex::default(),
        })
    }))
}

/// The outcome of `run` on kernel `k`, booting its group if no ask has yet.
fn group_outcome(
    state: &State,
    binary: &Binary,
    runs: &[DescribedRun],
    run: &DescribedRun,
    k: usize,
) -> RunOutcome {
    let kernel = &state.config.kernels[k];
    if let Some(result) = scheduled::outcome_without_boot(run, kernel) {
        return (Ok(result), None);
    }
    let key = group_key(k, run);
    let table = {
        let mut groups = binary.groups.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(groups.entry(key.clone()).or_default())
    };
    let mut table = table.lock().unwrap_or_else(|e| e.into_inner());
    if table.is_none() {
        let members: Vec<DescribedRun> = runs
            .iter()
            .filter(|r| group_key(k, r) == key)
            .filter(|r| scheduled::outcome_without_boot(r, kernel).is_none())
            .cloned()
            .collect();
        *table = Some(boot_group(state, binary, kernel, key.3.as_ref(), run, members));
    }
    let outcomes = table.as_ref().expect("filled above");
    outcomes.get(&run.key).cloned().unwrap_or_else(|| {
        (Err("the group's boots returned no outcome for this run".to_string()), None)
    })
}

fn boot_group(
    state: &State,
    binary: &Binary,
    kernel: &Kernel,
    scheduler: Option<&RunScheduler>,
    first: &DescribedRun,
    runs: Vec<DescribedRun>,
) -> HashMap<RunKey, RunOutcome> {
    let fail_all =
        |why: String| runs.iter().map(|r| (r.key.clone(), (Err(why.clone()), None))).collect();
    let topology = match first.topology.parse() {
        Ok(t) => t,
        Err(e) => return fail_all(format!("{e}")),
    };
    let initramfs = match initramfs(binary, kernel, scheduler) {
        Ok(path) => path,
        Err(e) => return fail_all(e),
    };
    let _slot = state.boot_slot.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!(
        "ktstr: group {} on {} ({topology}, {}, {}): {} run(s)",
        binary.path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        kernel.label(),
        state.config.backend,
        scheduler.map_or_else(
            || "eevdf".to_string(),
            |s| format!("{} {}", s.name, s.args.join(" ")).trim_end().to_string()
        ),
        runs.len(),
    );
    let group = Group {
        kernel,
        initramfs: &initramfs,
        topology,
        memory_mb: first.memory_mb,
        accel: state.config.accel,
        tcg_clock: state.config.tcg_clock,
        scheduler: scheduler.map(scheduled::request),
        runs,
    };
    run_group(&group)
}

/// The test binary as `/init`, a scheduler group's binary as `/scheduler` (both with their
/// shared libraries), and the kernel's config where libbpf looks for it.
fn initramfs(
    binary: &Binary,
    kernel: &Kernel,
    scheduler: Option<&RunScheduler>,
) -> Result<PathBuf, String> {
    let mut builder = InitramfsBuilder::new(&binary.path);
    if let Some(s) = scheduler {
        builder = builder.binary(scheduled::GUEST_PATH, &s.binary);
    }
    if let Some(config) = &kernel.config {
        builder = builder.kernel_config(&kernel.release, config);
    }
    builder.build(&initramfs_cache_dir()).map_err(|e| format!("building the initramfs: {e}"))
}

/// Asks `binary` for its entries (`KTSTR_VM_DESCRIBE`): every run of every entry that may run
/// in a VM.
fn describe(binary: &Path) -> Result<Vec<DescribedRun>, String> {
    let out = Command::new(binary)
        .env(DESCRIBE_ENV, "1")
        .output()
        .map_err(|e| format!("cannot run {} to list its tests: {e}", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let entries: Vec<DescribedEntry> =
        text.lines().rev().find_map(|l| serde_json::from_str(l).ok()).ok_or_else(|| {
            format!("{} did not list its tests ({})", binary.display(), out.status)
        })?;
    Ok(entries.into_iter().filter(|e| !e.host_only).flat_map(|e| e.runs).collect())
}

/// A result for `kernel` carrying only the run-level facts and, as its outcome, `why`.
fn failed_result(state: &State, kernel: &Kernel, why: String) -> KernelResult {
    let commit = match &kernel.source {
        KernelSource::Tree { commit, .. } => commit.clone(),
        _ => None,
    };
    KernelResult {
        kernel: kernel.label(),
        kernel_commit: commit,
        backend: state.config.backend.to_string(),
        tcg_clock: (state.config.accel == Accel::Tcg).then(|| state.config.tcg_clock.to_string()),
        vcpus: 0,
        overcommitted: false,
        outcome: Err(why),
        host_load: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(test: &str, scheduler: Option<(&str, &[&str])>) -> DescribedRun {
        DescribedRun {
            key: RunKey { test: test.into(), variant: "base".into() },
            topology: "1n1l2c1t".into(),
            flags: vec![],
            memory_mb: None,
            duration_s: 1,
            scheduler: scheduler.map(|(name, args)| {
                Ok(RunScheduler {
                    name: name.into(),
                    binary: format!("/bin/{name}"),
                    args: args.iter().map(|a| a.to_string()).collect(),
                    attach_timeout_s: 30,
                })
            }),
        }
    }

    #[test]
    fn two_schedulers_or_two_flag_profiles_never_share_a_boot() {
        let eevdf = run("a", None);
        let bpfland = run("b", Some(("scx_bpfland", &[])));
        let bpfland_too = run("c", Some(("scx_bpfland", &[])));
        let bpfland_llc = run("d", Some(("scx_bpfland", &["--primary-domain", "all"])));
        let lavd = run("e", Some(("scx_lavd", &[])));
        assert_eq!(group_key(0, &bpfland), group_key(0, &bpfland_too));
        let keys = [&eevdf, &bpfland, &bpfland_llc, &lavd].map(|r| group_key(0, r));
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(group_key(0, &bpfland), group_key(1, &bpfland), "one boot per kernel");
        let unresolved =
            DescribedRun { scheduler: Some(Err("no binary".into())), ..run("f", None) };
        assert_eq!(group_key(0, &unresolved).3, None, "answered without a boot, never grouped");
    }
}
