//! A scheduler's lifecycle around a test body: start it as its own process with its stderr
//! captured, wait until sched_ext says it is attached, watch for it leaving mid-test, stop it
//! with SIGINT (then SIGKILL after a grace period) and confirm the kernel is back on its own
//! scheduler. Event counters are read on either side of the body.
//!
//! It works against a [`SchedExtSysfs`] root, so a host, a guest `/init` and a test with a
//! synthetic tree all use it alike. It does not find binaries ([`super::binary`]) nor decide
//! whether a backend may run one ([`super::host`]). Whatever happens, nothing it started is
//! left running: [`Attached`] stops its scheduler when dropped.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::sysfs::{KernelLog, SchedExtSysfs, ScxState};

/// How often the state files and the process are polled.
const POLL: Duration = Duration::from_millis(20);
/// Lines of the scheduler's stderr kept for messages (one-line reasons stay readable).
const TAIL_LINES: usize = 5;

/// What to run and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The declared name, for messages and the sidecar.
    pub name: String,
    pub binary: PathBuf,
    pub args: Vec<String>,
    pub attach_timeout: Duration,
    /// How long SIGINT has to work before SIGKILL.
    pub stop_grace: Duration,
    /// How long the kernel may take to report `disabled` once the scheduler has gone.
    pub detach_timeout: Duration,
}

/// Why a scheduler could not be run, or stopped running; each displays as one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LifecycleError {
    #[error(
        "this kernel has no sched_ext ({0} is missing); use a kernel with CONFIG_SCHED_CLASS_EXT=y"
    )]
    NoSchedExt(String),
    #[error("another sched_ext scheduler ({0}) is already attached; stop it first")]
    AlreadyAttached(String),
    #[error("scheduler {name}: cannot start {binary}: {error}")]
    Spawn { name: String, binary: String, error: String },
    #[error(
        "scheduler {name} failed to attach: it exited ({status}) before sched_ext was enabled; stderr: {tail}"
    )]
    AttachFailed { name: String, status: String, tail: String },
    #[error(
        "scheduler {name} did not attach within {waited_s:.1} s (sched_ext state {state}); stderr: {tail}"
    )]
    AttachTimeout { name: String, waited_s: f64, state: String, tail: String },
    #[error("scheduler {name} left mid-test: {why}")]
    LeftMidTest { name: String, why: String },
}

/// The last lines a process wrote to stderr.
#[derive(Debug, Default)]
struct Tail(VecDeque<String>);

impl Tail {
    fn joined(tail: &Mutex<Tail>) -> String {
        let t = tail.lock().unwrap_or_else(|p| p.into_inner());
        if t.0.is_empty() { "(empty)".to_string() } else { Vec::from(t.0.clone()).join(" | ") }
    }
}

/// How the scheduler was stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopReport {
    /// From SIGINT to the kernel reporting `disabled` (or giving up waiting).
    pub detach: Duration,
    /// SIGINT did not end it within the grace period, so it was killed.
    pub killed_after_grace: bool,
    /// Its exit status, as displayed; `None` if it had already gone.
    pub exit_status: Option<String>,
    /// sched_ext's state after stopping; `disabled` unless something is wrong.
    pub state_after: String,
}

/// What a run under a scheduler leaves for the sidecar (it crosses the VM backend's wire).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerRun {
    pub name: String,
    /// `root/ops` while attached.
    pub ops: String,
    /// From spawn to `enabled`.
    pub attach: Duration,
    pub events_before: Option<BTreeMap<String, u64>>,
    pub events_after: Option<BTreeMap<String, u64>>,
    /// How it was stopped; `None` for a test in a batch that keeps it attached.
    pub stop: Option<StopReport>,
    /// Why the run must fail because of the scheduler (it left mid-test, would not stop, or
    /// the kernel stayed attached).
    pub problems: Vec<String>,
}

impl SchedulerRun {
    /// After minus before, per counter present in both reads.
    pub fn event_deltas(&self) -> Option<BTreeMap<String, i64>> {
        let (before, after) = (self.events_before.as_ref()?, self.events_after.as_ref()?);
        Some(
            after
                .iter()
                .filter_map(|(k, a)| Some((k.clone(), *a as i64 - *before.get(k)? as i64)))
                .collect(),
        )
    }

    /// The sidecar keys this run fills, under `provenance.other` (ktstr's `monitor.event_deltas`
    /// needs monitor samples this lifecycle does not take, so nothing goes there).
    pub fn record_into(&self, other: &mut BTreeMap<String, serde_json::Value>) {
        use serde_json::json;
        other.insert("scx_ops".into(), json!(self.ops));
        other.insert("scx_attach_ms".into(), json!(self.attach.as_millis() as u64));
        if let Some(stop) = &self.stop {
            other.insert("scx_detach_ms".into(), json!(stop.detach.as_millis() as u64));
            other.insert("scx_killed_after_grace".into(), json!(stop.killed_after_grace));
            other.insert("scx_state_after".into(), json!(stop.state_after));
        }
        if let Some(d) = self.event_deltas() {
            other.insert("scx_event_deltas".into(), json!(d));
        }
    }
}

/// A scheduler that is attached; stop it with [`Attached::finish`] (dropping it stops it too,
/// recording nothing).
pub struct Attached {
    spec: LaunchSpec,
    sysfs: SchedExtSysfs,
    child: Option<Child>,
    tail: Arc<Mutex<Tail>>,
    reader: Option<JoinHandle<()>>,
    kmsg: Option<KernelLog>,
    run: SchedulerRun,
}

impl Attached {
    /// Starts the scheduler and waits until sched_ext is `enabled` with an ops name. `kmsg`
    /// (e.g. `/dev/kmsg`) is read for the kernel's reason when it leaves.
    pub fn start(
        spec: &LaunchSpec,
        sysfs: &SchedExtSysfs,
        kmsg: Option<&std::path::Path>,
    ) -> Result<Attached, LifecycleError> {
        if !sysfs.available() {
            return Err(LifecycleError::NoSchedExt(sysfs.dir().display().to_string()));
        }
        if sysfs.state().ok() != Some(ScxState::Disabled) {
            return Err(LifecycleError::AlreadyAttached(sysfs.ops().unwrap_or_else(|| {
                format!("state {}", sysfs.state().map_or_else(|e| e, |s| s.as_str().into()))
            })));
        }
        let kmsg = kmsg.and_then(KernelLog::open_at_end);
        let t0 = Instant::now();
        let mut child = Command::new(&spec.binary)
            .args(&spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| LifecycleError::Spawn {
                name: spec.name.clone(),
                binary: spec.binary.display().to_string(),
                error: e.to_string(),
            })?;
        let tail = Arc::new(Mutex::new(Tail::default()));
        let reader = child.stderr.take().map(|s| spawn_tail_reader(s, Arc::clone(&tail)));
        let mut attached = Attached {
            spec: spec.clone(),
            sysfs: sysfs.clone(),
            child: Some(child),
            tail,
            reader,
            kmsg,
            run: SchedulerRun { name: spec.name.clone(), ..Default::default() },
        };
        attached.wait_enabled(t0)?;
        attached.run.events_before = attached.sysfs.events();
        Ok(attached)
    }

    fn wait_enabled(&mut self, t0: Instant) -> Result<(), LifecycleError> {
        loop {
            if let Some(status) = self.try_wait() {
                self.join_reader();
                return Err(LifecycleError::AttachFailed {
                    name: self.spec.name.clone(),
                    status: status.to_string(),
                    tail: self.tail_with_kernel_log(),
                });
            }
            // Nothing else was attached when we started, and ours is alive: this ops is ours.
            if let (Ok(ScxState::Enabled), Some(ops)) = (self.sysfs.state(), self.sysfs.ops()) {
                self.run.ops = ops;
                self.run.attach = t0.elapsed();
                return Ok(());
            }
            if t0.elapsed() >= self.spec.attach_timeout {
                let state = self.sysfs.state().map_or_else(|e| e, |s| s.as_str().to_string());
                let _ = self.stop_process();
                return Err(LifecycleError::AttachTimeout {
                    name: self.spec.name.clone(),
                    waited_s: self.spec.attach_timeout.as_secs_f64(),
                    state,
                    tail: self.tail_with_kernel_log(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    pub fn ops(&self) -> &str {
        &self.run.ops
    }

    pub fn attach_time(&self) -> Duration {
        self.run.attach
    }

    /// Whether it is still attached: the process alive, sched_ext `enabled`, the same ops.
    pub fn check(&mut self) -> Result<(), LifecycleError> {
        let why = if let Some(status) = self.try_wait() {
            self.join_reader();
            format!("it exited ({status})")
        } else {
            match (self.sysfs.state(), self.sysfs.ops()) {
                (Ok(ScxState::Enabled), Some(ops)) if ops == self.run.ops => return Ok(()),
                (Ok(state), _) => format!("the kernel kicked it out (state {})", state.as_str()),
                (Err(e), _) => e,
            }
        };
        Err(LifecycleError::LeftMidTest {
            name: self.spec.name.clone(),
            why: format!("{why}; stderr: {}", self.tail_with_kernel_log()),
        })
    }

    /// The `SCX_EV_*` counters now; with [`Attached::segment`], one test's share of a batch
    /// that keeps the scheduler attached.
    pub fn events(&self) -> Option<BTreeMap<String, u64>> {
        self.sysfs.events()
    }

    /// The record of one test that ran since `events_before` was read, the scheduler staying
    /// attached: the counters' change and whether it is still attached.
    pub fn segment(&mut self, events_before: Option<BTreeMap<String, u64>>) -> SchedulerRun {
        let mut run = SchedulerRun {
            events_before,
            events_after: self.sysfs.events(),
            stop: None,
            problems: Vec::new(),
            ..self.run.clone()
        };
        if let Err(e) = self.check() {
            run.problems.push(e.to_string());
        }
        run
    }

    /// [`Attached::finish`] for the last test of a batch: its counters count from
    /// `events_before` (read when that test started), not from the attach.
    pub fn finish_from(mut self, events_before: Option<BTreeMap<String, u64>>) -> SchedulerRun {
        self.run.events_before = events_before;
        self.finish()
    }

    /// Reads the counters, stops the scheduler and confirms sched_ext is `disabled`.
    pub fn finish(mut self) -> SchedulerRun {
        self.run.events_after = self.sysfs.events();
        if let Err(e) = self.check() {
            self.run.problems.push(e.to_string());
        }
        let stop = self.stop_process().unwrap_or_default();
        if stop.killed_after_grace {
            self.run.problems.push(format!(
                "scheduler {} ignored SIGINT and was killed after {} ms",
                self.spec.name,
                self.spec.stop_grace.as_millis()
            ));
        }
        if stop.state_after != "disabled" {
            self.run.problems.push(format!(
                "sched_ext is still {} after stopping scheduler {}",
                stop.state_after, self.spec.name
            ));
        }
        self.run.stop = Some(stop);
        std::mem::take(&mut self.run)
    }

    /// SIGINT, then SIGKILL after the grace period; then wait for the kernel to disable.
    fn stop_process(&mut self) -> Option<StopReport> {
        let mut report = StopReport::default();
        let mut child = self.child.take()?;
        let t0 = Instant::now();
        let mut status = child.try_wait().ok().flatten();
        let already_gone = status.is_some();
        if status.is_none() {
            // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
            status = wait_for(&mut child, self.spec.stop_grace);
        }
        if status.is_none() {
            let _ = child.kill();
            status = child.wait().ok();
            report.killed_after_grace = true;
        }
        let state = wait_state(&self.sysfs, self.spec.detach_timeout);
        report.detach = t0.elapsed();
        report.exit_status = if already_gone { None } else { status.map(|s| s.to_string()) };
        report.state_after = state;
        self.join_reader();
        Some(report)
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    fn join_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    fn tail_with_kernel_log(&mut self) -> String {
        let tail = Tail::joined(&self.tail);
        let kernel = self.kmsg.as_mut().map(KernelLog::sched_ext_lines).unwrap_or_default();
        if kernel.is_empty() { tail } else { format!("{tail}; kernel: {}", kernel.join(" | ")) }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = self.stop_process();
    }
}

fn spawn_tail_reader(stderr: std::process::ChildStderr, tail: Arc<Mutex<Tail>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
            if t.0.len() == TAIL_LINES {
                t.0.pop_front();
            }
            t.0.push_back(strip_ansi(&line));
        }
    })
}

/// `line` without terminal colour sequences (`ESC [ … letter`), which schedulers' loggers
/// write even to a pipe.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        }
    }
    out
}

fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().ok().flatten() {
            return Some(s);
        }
        if t0.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// The state once it is `disabled`, or whatever it is when `limit` runs out.
fn wait_state(sysfs: &SchedExtSysfs, limit: Duration) -> String {
    let t0 = Instant::now();
    loop {
        let state = sysfs.state().map_or_else(|e| e, |s| s.as_str().to_string());
        if state == "disabled" || t0.elapsed() >= limit {
            return state;
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
pub(crate) mod tests;
