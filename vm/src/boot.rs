//! One guest run, host side: boot QEMU with a kernel, an initramfs and a [`Request`], wait for
//! it under a deadline, and turn what came back into a [`BootOutcome`] or a typed
//! [`BootError`].
//!
//! Every `BootError` is an infrastructure failure (the VM did not deliver a trustworthy
//! result), never a test verdict: verdicts travel inside the frames of a successful outcome.
//! The order of judgement matters: a hang beats everything, a kernel crash on the console beats
//! a clean-looking exit, and only a complete, checksummed result stream counts.

use crate::frame::{self, Frame, FrameError};
use crate::guest::{ERROR_FRAME, TOPOLOGY_FRAME};
use crate::kernel::Kernel;
use crate::qemu::accel::{self, Accel, KvmUnusable};
use crate::qemu::child::QemuChild;
use crate::qemu::{Backend, Launch, Qemu, QemuError, TcgClock, base_kernel_args};
use crate::request::{Request, RequestError};
use crate::topology::qemu_args::{Machine, topology_args};
use crate::topology::{LimitError, Topology, check_host_limits};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How many console lines an error keeps.
const CONSOLE_TAIL_LINES: usize = 40;

/// What to boot, apart from the kernel and initramfs.
#[derive(Debug, Clone)]
pub struct BootOptions {
    /// The topology QEMU builds.
    pub topology: Topology,
    pub memory_mb: u32,
    pub accel: Accel,
    /// What advances the guest's clocks if it runs under TCG.
    pub tcg_clock: TcgClock,
    /// Wall-clock limit for the whole run; QEMU is killed when it passes.
    pub timeout: Duration,
    /// Kernel parameters added after the built-in ones.
    pub kernel_args: Vec<String>,
}

impl BootOptions {
    /// Defaults: memory max(512, 64 MiB per vCPU), `auto` accelerator and the instruction clock
    /// (callers that let the environment choose use [`Accel::from_env`] and
    /// [`TcgClock::from_env`]), a 120 s deadline.
    pub fn new(topology: Topology) -> Self {
        BootOptions {
            topology,
            memory_mb: 512.max(64 * topology.total_cpus()),
            accel: Accel::Auto,
            tcg_clock: TcgClock::default(),
            timeout: Duration::from_secs(120),
            kernel_args: Vec::new(),
        }
    }
}

/// A run that delivered a complete result stream.
#[derive(Debug, Clone)]
pub struct BootOutcome {
    pub backend: Backend,
    /// Set when `auto` fell back to TCG: the one-line reason.
    pub accel_warning: Option<String>,
    /// The topology the guest read back (equal to the request's).
    pub guest_topology: Topology,
    /// Every frame after the topology frame, in order.
    pub frames: Vec<Frame>,
    pub console: String,
    /// QEMU start to exit.
    pub wall: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Qemu(#[from] QemuError),
    #[error(transparent)]
    Topology(#[from] LimitError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Kvm(#[from] KvmUnusable),
    #[error("cannot set up the VM run directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("the guest kernel crashed: {signature}\n--- console tail ---\n{console_tail}")]
    GuestCrash { signature: String, frames_seen: Vec<Frame>, console_tail: String },
    #[error(
        "the guest did not finish within {} s; QEMU (pid {pid}) was killed after {} frames\n--- console tail ---\n{console_tail}",
        after.as_secs(), frames_seen.len()
    )]
    Timeout { after: Duration, pid: u32, frames_seen: Vec<Frame>, console_tail: String },
    #[error("QEMU failed ({status}): {stderr}\n--- console tail ---\n{console_tail}")]
    QemuFailed { status: String, stderr: String, frames_seen: Vec<Frame>, console_tail: String },
    #[error("bad result stream: {error}\n--- console tail ---\n{console_tail}")]
    Results { error: FrameError, console_tail: String },
    #[error("the guest sent no topology frame first\n--- console tail ---\n{console_tail}")]
    NoTopology { console_tail: String },
    #[error("topology mismatch: expected {expected}, the guest's sysfs shows {found}")]
    TopologyMismatch { expected: Topology, found: Topology },
    #[error("the guest reported a failure: {message}")]
    Guest { message: String },
}

impl BootError {
    /// The frames that arrived before the run went wrong (a crash, a hang, QEMU dying), so a
    /// caller running several tests in one boot can keep the results that did arrive.
    pub fn frames_seen(&self) -> &[Frame] {
        match self {
            BootError::GuestCrash { frames_seen, .. }
            | BootError::QemuFailed { frames_seen, .. }
            | BootError::Timeout { frames_seen, .. } => frames_seen,
            _ => &[],
        }
    }
}

/// Boots `kernel` with `initramfs`, hands the guest `request`, and waits for its results.
pub fn boot(
    kernel: &Kernel,
    initramfs: &Path,
    request: &Request,
    options: &BootOptions,
) -> Result<BootOutcome, BootError> {
    check_host_limits(&options.topology, options.memory_mb)?;
    let qemu = Qemu::find()?;
    let (backend, accel_warning) = accel::choose(options.accel, &qemu, &kernel.image)?;
    let mut append = base_kernel_args();
    append.extend(options.kernel_args.iter().cloned());
    append.push(request.to_cmdline_param()?);
    let dir = tempfile::Builder::new().prefix("ktstr-vm-").tempdir()?;
    let paths = RunPaths::new(dir.path());
    let launch = Launch {
        qemu: &qemu,
        backend,
        tcg_clock: options.tcg_clock,
        machine: Machine::for_topology(&options.topology),
        topology_args: topology_args(&options.topology, options.memory_mb),
        kernel: kernel.boot_image(),
        initrd: Some(initramfs),
        append: append.join(" "),
        console: &paths.console,
        results: &paths.results,
    };
    let mut command = Command::new(&qemu.path);
    command
        .args(launch.args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&paths.stderr)?);
    let started = Instant::now();
    let mut child = QemuChild::spawn(command)
        .map_err(|source| QemuError::Spawn { qemu: qemu.path.clone(), source })?;
    let status = child.wait_timeout(options.timeout)?;
    child.kill()?;
    let wall = started.elapsed();
    let ending = match status {
        None => Ending::TimedOut { after: options.timeout, pid: child.pid() },
        Some(s) if s.success() => Ending::Clean,
        Some(s) => Ending::Failed(s.to_string()),
    };
    let out = paths.read();
    let (guest_topology, frames) = judge(&ending, &out, &request.topology)?;
    Ok(BootOutcome { backend, accel_warning, guest_topology, frames, console: out.console, wall })
}

struct RunPaths {
    console: PathBuf,
    results: PathBuf,
    stderr: PathBuf,
}

/// What a finished run left behind.
#[derive(Debug, Default)]
struct RunOutput {
    console: String,
    results: Vec<u8>,
    stderr: String,
}

impl RunPaths {
    fn new(dir: &Path) -> Self {
        RunPaths {
            console: dir.join("console.log"),
            results: dir.join("results.bin"),
            stderr: dir.join("qemu.stderr"),
        }
    }

    fn read(&self) -> RunOutput {
        let text =
            |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        RunOutput {
            console: text(&self.console),
            results: std::fs::read(&self.results).unwrap_or_default(),
            stderr: text(&self.stderr),
        }
    }
}

/// How QEMU ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Clean,
    Failed(String),
    TimedOut { after: Duration, pid: u32 },
}

/// Turns a run's leftovers into the guest's topology and frames, or the reason they cannot be
/// trusted.
fn judge(
    ending: &Ending,
    out: &RunOutput,
    expected: &Topology,
) -> Result<(Topology, Vec<Frame>), BootError> {
    let console_tail = tail(&out.console, CONSOLE_TAIL_LINES);
    if let Ending::TimedOut { after, pid } = ending {
        let frames_seen = frame::decode_partial(&out.results).frames;
        return Err(BootError::Timeout { after: *after, pid: *pid, frames_seen, console_tail });
    }
    let frames_seen = || frame::decode_partial(&out.results).frames;
    if let Some(signature) = crash_signature(&out.console) {
        return Err(BootError::GuestCrash { signature, frames_seen: frames_seen(), console_tail });
    }
    if let Ending::Failed(status) = ending {
        let stderr =
            out.stderr.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no error output");
        return Err(BootError::QemuFailed {
            status: status.clone(),
            stderr: stderr.to_string(),
            frames_seen: frames_seen(),
            console_tail,
        });
    }
    let mut frames = frame::decode(&out.results)
        .map_err(|error| BootError::Results { error, console_tail: console_tail.clone() })?;
    if frames.first().is_none_or(|f| f.kind != TOPOLOGY_FRAME) {
        if let Some(error) = frames.iter().find(|f| f.kind == ERROR_FRAME) {
            return Err(BootError::Guest { message: error.payload_str() });
        }
        return Err(BootError::NoTopology { console_tail });
    }
    let topology_frame = frames.remove(0);
    let found: Topology = serde_json::from_slice::<String>(&topology_frame.payload)
        .map_err(|e| e.to_string())
        .and_then(|text| text.parse().map_err(|e: ktstr_decl::TopologyError| e.to_string()))
        .map_err(|e| BootError::Results {
            error: FrameError::Malformed { offset: 0, what: format!("topology frame: {e}") },
            console_tail: console_tail.clone(),
        })?;
    if found != *expected {
        return Err(BootError::TopologyMismatch { expected: *expected, found });
    }
    if let Some(error) = frames.iter().find(|f| f.kind == ERROR_FRAME) {
        return Err(BootError::Guest { message: error.payload_str() });
    }
    Ok((found, frames))
}

/// The first console line showing a kernel crash, if any.
fn crash_signature(console: &str) -> Option<String> {
    console
        .lines()
        .find(|l| l.contains("Kernel panic") || l.contains("Oops") || l.contains("BUG:"))
        .map(|l| l.trim().to_string())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameWriter;

    fn topo(s: &str) -> Topology {
        s.parse().unwrap()
    }

    fn stream(frames: &[(&str, &[u8])], end: bool) -> Vec<u8> {
        let mut w = FrameWriter::begin(Vec::new()).unwrap();
        for (kind, payload) in frames {
            w.frame(kind, payload).unwrap();
        }
        if end { w.end().unwrap() } else { Vec::new() }
    }

    fn output(console: &str, results: Vec<u8>) -> RunOutput {
        RunOutput { console: console.into(), results, stderr: String::new() }
    }

    #[test]
    fn a_complete_stream_with_the_expected_topology_is_an_outcome() {
        let out =
            output("boot\n", stream(&[("topology", b"\"1n1l2c1t\""), ("result", b"ok")], true));
        let (found, frames) = judge(&Ending::Clean, &out, &topo("1n1l2c1t")).unwrap();
        assert_eq!(found, topo("1n1l2c1t"));
        assert_eq!(frames, [Frame { kind: "result".into(), payload: b"ok".to_vec() }]);
    }

    #[test]
    fn a_panic_on_the_console_is_a_crash_even_with_results() {
        let console = "boot\n[    3.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000\nmore\n";
        let out = output(console, stream(&[("topology", b"\"1n1l2c1t\"")], true));
        match judge(&Ending::Clean, &out, &topo("1n1l2c1t")).unwrap_err() {
            BootError::GuestCrash { signature, console_tail, .. } => {
                assert!(signature.contains("Attempted to kill init"), "{signature}");
                assert!(console_tail.ends_with("more"));
            }
            other => panic!("unexpected {other}"),
        }
        let oops = output("Oops: int3: 0000 [#1] SMP\n", Vec::new());
        assert!(matches!(
            judge(&Ending::Clean, &oops, &topo("1n1l1c1t")),
            Err(BootError::GuestCrash { .. })
        ));
    }

    #[test]
    fn a_timeout_wins_and_keeps_the_frames_seen() {
        let mut results = stream(&[("topology", b"\"1n1l1c1t\"")], true);
        results.truncate(results.len() - 3);
        let ending = Ending::TimedOut { after: Duration::from_secs(5), pid: 42 };
        match judge(&ending, &output("Kernel panic\n", results), &topo("1n1l1c1t")).unwrap_err() {
            BootError::Timeout { pid: 42, frames_seen, .. } => assert_eq!(frames_seen.len(), 1),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn corrupt_or_cut_results_are_result_errors() {
        let mut results = stream(&[("topology", b"\"1n1l1c1t\""), ("result", b"passed")], true);
        let at = results.windows(6).position(|w| w == b"passed").unwrap();
        results[at] = b'P';
        let err = judge(&Ending::Clean, &output("", results), &topo("1n1l1c1t")).unwrap_err();
        assert!(
            matches!(
                err,
                BootError::Results { error: FrameError::BadChecksum { index: 1, .. }, .. }
            ),
            "{err}"
        );
        let err =
            judge(&Ending::Clean, &output("", stream(&[], false)), &topo("1n1l1c1t")).unwrap_err();
        assert!(matches!(err, BootError::Results { error: FrameError::MissingBegin, .. }), "{err}");
    }

    #[test]
    fn topology_mismatch_and_guest_errors_are_typed() {
        let out = output(
            "",
            stream(&[("topology", b"\"1n1l2c1t\""), ("error", b"topology mismatch")], true),
        );
        let err = judge(&Ending::Clean, &out, &topo("1n2l1c1t")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "topology mismatch: expected 1n2l1c1t, the guest's sysfs shows 1n1l2c1t"
        );
        let out = output("", stream(&[("error", b"mount bpf on /sys/fs/bpf: ENODEV")], true));
        assert!(matches!(
            judge(&Ending::Clean, &out, &topo("1n1l1c1t")),
            Err(BootError::Guest { .. })
        ));
        let out = output("", stream(&[("result", b"x")], true));
        assert!(matches!(
            judge(&Ending::Clean, &out, &topo("1n1l1c1t")),
            Err(BootError::NoTopology { .. })
        ));
    }

    #[test]
    fn a_qemu_failure_names_its_status_and_first_stderr_line() {
        let mut out = output("", Vec::new());
        out.stderr = "qemu-system-x86_64: -smp: bad\nqemu-system-x86_64: terminating\n".into();
        let err =
            judge(&Ending::Failed("exit status: 1".into()), &out, &topo("1n1l1c1t")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("QEMU failed (exit status: 1): qemu-system-x86_64: -smp: bad\n"),
            "{err}"
        );
    }

    #[test]
    fn tails_keep_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
