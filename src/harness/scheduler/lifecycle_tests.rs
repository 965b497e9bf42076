//! The lifecycle against a synthetic sysfs tree, driven by real processes: small shell
//! schedulers that write the state files the kernel would.

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A sysfs root with sched_ext disabled, and a fake scheduler script whose body is `body`
/// (run with `$1` = the sched_ext directory).
pub(crate) fn setup(body: &str) -> (tempfile::TempDir, SchedExtSysfs, LaunchSpec) {
    let dir = tempfile::tempdir().unwrap();
    let sysfs = SchedExtSysfs::new(dir.path().join("sys"));
    std::fs::create_dir_all(sysfs.dir().join("root")).unwrap();
    std::fs::write(sysfs.dir().join("state"), "disabled\n").unwrap();
    let script = dir.path().join("fake_sched");
    std::fs::write(&script, format!("#!/bin/sh\nd=\"$1\"\n{body}\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = LaunchSpec {
        name: "fake".into(),
        binary: script,
        args: vec![sysfs.dir().display().to_string()],
        attach_timeout: Duration::from_secs(5),
        stop_grace: Duration::from_millis(500),
        detach_timeout: Duration::from_millis(500),
    };
    (dir, sysfs, spec)
}

/// Attaches, counts one event per tick, detaches on SIGINT.
const WELL_BEHAVED: &str = r#"
trap 'echo disabled > "$d/state"; : > "$d/root/ops"; exit 0' INT
echo "loading BPF" >&2
echo fake_ops > "$d/root/ops"
echo "SCX_EV_DISPATCH_KEEP_LAST 5" > "$d/root/events"
echo enabled > "$d/state"
n=5
while :; do sleep 0.05; n=$((n+1)); echo "SCX_EV_DISPATCH_KEEP_LAST $n" > "$d/root/events"; done
"#;

#[test]
fn a_scheduler_attaches_counts_events_and_detaches_on_sigint() {
    let (_dir, sysfs, spec) = setup(WELL_BEHAVED);
    let mut attached = Attached::start(&spec, &sysfs, None).unwrap();
    assert_eq!(attached.ops(), "fake_ops");
    assert!(attached.attach_time() < spec.attach_timeout);
    std::thread::sleep(Duration::from_millis(300));
    attached.check().unwrap();
    // One test of a batch: the scheduler stays attached and its counters moved.
    let segment = attached.segment(attached.events());
    assert!(segment.problems.is_empty() && segment.stop.is_none(), "{segment:?}");
    let mut other = BTreeMap::new();
    segment.record_into(&mut other);
    assert!(!other.contains_key("scx_state_after"));
    let run = attached.finish();
    assert!(run.problems.is_empty(), "{:?}", run.problems);
    let stop = run.stop.clone().unwrap();
    assert_eq!(stop.state_after, "disabled");
    assert!(!stop.killed_after_grace);
    assert_eq!(stop.exit_status.as_deref(), Some("exit status: 0"));
    let deltas = run.event_deltas().unwrap();
    assert!(deltas["SCX_EV_DISPATCH_KEEP_LAST"] > 0, "{deltas:?}");
    let mut other = BTreeMap::new();
    run.record_into(&mut other);
    assert_eq!(other["scx_ops"], "fake_ops");
    assert_eq!(other["scx_state_after"], "disabled");
    assert!(other["scx_attach_ms"].as_u64().is_some());
    assert!(other["scx_event_deltas"]["SCX_EV_DISPATCH_KEEP_LAST"].as_i64().unwrap() > 0);
}

#[test]
fn a_scheduler_that_exits_at_once_fails_with_its_stderr_tail() {
    let (_dir, sysfs, spec) = setup(
        "echo 'libbpf: prog dispatch: BPF program load failed: Permission denied' >&2\nexit 3",
    );
    let err = Attached::start(&spec, &sysfs, None).err().unwrap();
    assert_eq!(
        err.to_string(),
        "scheduler fake failed to attach: it exited (exit status: 3) before sched_ext was \
         enabled; stderr: libbpf: prog dispatch: BPF program load failed: Permission denied"
    );
}

#[test]
fn a_scheduler_that_never_attaches_times_out_and_is_stopped() {
    let (dir, sysfs, mut spec) = setup(
        "echo $$ > \"$(dirname \"$0\")/pid\"\necho 'waiting for verifier' >&2\nwhile :; do sleep 0.05; done",
    );
    spec.attach_timeout = Duration::from_millis(400);
    let err = Attached::start(&spec, &sysfs, None).err().unwrap();
    assert_eq!(
        err.to_string(),
        "scheduler fake did not attach within 0.4 s (sched_ext state disabled); stderr: waiting \
         for verifier"
    );
    let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
    assert!(!Path::new(&format!("/proc/{}", pid.trim())).exists(), "left running");
}

#[test]
fn a_scheduler_kicked_out_mid_test_is_reported_with_the_kernel_reason() {
    let (dir, sysfs, spec) = setup(
        r#"echo fake_ops > "$d/root/ops"; echo enabled > "$d/state"
sleep 0.3
echo 'EXIT: runtime error (watchdog stall)' >&2
echo disabled > "$d/state"; : > "$d/root/ops"
exit 1"#,
    );
    let kmsg = dir.path().join("kmsg");
    std::fs::write(&kmsg, "").unwrap();
    let mut attached = Attached::start(&spec, &sysfs, Some(&kmsg)).unwrap();
    std::fs::write(&kmsg, "3,9,9,-;sched_ext: BPF scheduler \"fake\" disabled (runtime error)\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let err = attached.check().unwrap_err().to_string();
    assert_eq!(
        err,
        "scheduler fake left mid-test: it exited (exit status: 1); stderr: EXIT: runtime error \
         (watchdog stall); kernel: sched_ext: BPF scheduler \"fake\" disabled (runtime error)"
    );
    let run = attached.finish();
    assert_eq!(run.problems.len(), 1, "{:?}", run.problems);
    assert!(run.problems[0].starts_with("scheduler fake left mid-test: it exited"));
    assert_eq!(run.stop.unwrap().state_after, "disabled");
}

#[test]
fn a_scheduler_ignoring_sigint_is_killed_after_the_grace_period_and_recorded() {
    let (_dir, sysfs, spec) = setup(
        r#"trap '' INT
echo fake_ops > "$d/root/ops"; echo enabled > "$d/state"
while :; do sleep 0.05; done"#,
    );
    let attached = Attached::start(&spec, &sysfs, None).unwrap();
    let run = attached.finish();
    let stop = run.stop.clone().unwrap();
    assert!(stop.killed_after_grace);
    assert!(stop.detach >= spec.stop_grace);
    assert!(
        run.problems.contains(&"scheduler fake ignored SIGINT and was killed after 500 ms".into()),
        "{:?}",
        run.problems
    );
    // The fake cannot clean up after SIGKILL (a real kernel would): that is reported too.
    assert!(
        run.problems.contains(&"sched_ext is still enabled after stopping scheduler fake".into())
    );
}

#[test]
fn refuses_a_kernel_without_sched_ext_or_with_a_scheduler_attached() {
    let (dir, sysfs, spec) = setup(WELL_BEHAVED);
    let none = SchedExtSysfs::new(dir.path().join("empty"));
    let err = Attached::start(&spec, &none, None).err().unwrap();
    assert!(matches!(err, LifecycleError::NoSchedExt(_)));
    assert!(err.to_string().ends_with("use a kernel with CONFIG_SCHED_CLASS_EXT=y"));
    std::fs::write(sysfs.dir().join("state"), "enabled\n").unwrap();
    std::fs::write(sysfs.dir().join("root/ops"), "other_ops\n").unwrap();
    let err = Attached::start(&spec, &sysfs, None).err().unwrap();
    assert_eq!(
        err.to_string(),
        "another sched_ext scheduler (other_ops) is already attached; stop it first"
    );
}

#[test]
fn colour_sequences_are_cut_from_the_stderr_tail() {
    assert_eq!(
        strip_ansi("04:28:19 \x1b[0m\x1b[34m[INFO] \x1b[0mNUMA nodes: 1"),
        "04:28:19 [INFO] NUMA nodes: 1"
    );
    assert_eq!(strip_ansi("plain"), "plain");
}
