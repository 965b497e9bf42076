//! Ctrl-C during `cargo ktstr test`: sidecars already written are kept and ingested, and
//! nothing a killed test process left behind (a cgroup tree with a worker in it) survives.
//!
//! A fake `cargo` (via `CARGO`) stands in for nextest: it writes one sidecar, plays a test
//! process that dies leaving a `ktstr-<pid>-0` tree with a live "worker" inside, and then
//! waits to be interrupted. Needs root to mount a cgroup2 hierarchy on a temp dir; skipped
//! otherwise. That hierarchy is the machine's one, where tests running beside this one create
//! their own `ktstr-*` trees, so `KTSTR_CGROUP_ROOT` points at a cgroup of this test's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{TestDir, fake_cargo};

/// A cgroup2 mount on a temp dir with a cgroup of this test's own in it (`root`), removed and
/// unmounted on drop.
struct Cgroup2 {
    mount: PathBuf,
    root: PathBuf,
}

impl Cgroup2 {
    fn mount(at: &Path) -> Option<Cgroup2> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "cgroup2", "none"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        let cg = Cgroup2 {
            mount: at.to_path_buf(),
            root: at.join(format!("interrupt-test-{}", std::process::id())),
        };
        std::fs::create_dir(&cg.root).ok()?;
        Some(cg)
    }
}

impl Drop for Cgroup2 {
    fn drop(&mut self) {
        remove_cgroup(&self.root);
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

/// Remove `dir` and the cgroups below it, killing what runs there first (a failed run may
/// have left the tree and its worker).
fn remove_cgroup(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&e.path());
        }
    }
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        // SAFETY: kill has no memory preconditions; these are this test's leftover workers.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // A killed process leaves its cgroup a moment after the signal.
    for _ in 0..100 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const FAKE_CARGO: &str = r#"#!/bin/sh
# Stands in for cargo: `nextest --version` works; `nextest run` behaves like a test run that
# is interrupted after one test wrote its sidecar and another died mid-step.
[ "$2" = "--version" ] && exit 0
mkdir -p "$SIDECAR_DIR"
cp "$FAKE_DIR/sidecar.json" "$SIDECAR_DIR/done-0.ktstr.json"
# A test process that created its tree and a worker, then was killed: its pid is gone, the
# tree and the worker are not.
sh -c 'top="$KTSTR_CGROUP_ROOT/ktstr-$$-0"; mkdir -p "$top/cg0"
       sleep 1000 & echo $! > "$top/cg0/cgroup.procs"; echo $! > "$FAKE_DIR/worker.pid"'
trap 'exit 130' INT
touch "$FAKE_DIR/ready"
while :; do sleep 0.05; done
"#;

fn alive(pid: i32) -> bool {
    // A zombie is dead for our purpose: it runs nothing and holds no cgroup.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigint_keeps_written_sidecars_and_leaves_no_workers_or_cgroups() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to mount cgroup2");
        return;
    }
    let t = TestDir::new();
    let Some(cg) = Cgroup2::mount(&t.path().join("cg")) else {
        eprintln!("skipped: cannot mount cgroup2 here");
        return;
    };
    let fake = fake_cargo(&t, FAKE_CARGO);
    let cargo = fake.join("cargo");

    let child = t
        .cmd()
        .arg("test")
        .env("CARGO", &cargo)
        .env("KTSTR_CGROUP_ROOT", &cg.root)
        .env("FAKE_DIR", &fake)
        .env("SIDECAR_DIR", t.root().join("6.14.2-abc1234"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the fake test run", || fake.join("ready").exists());
    let worker: i32 =
        std::fs::read_to_string(fake.join("worker.pid")).unwrap().trim().parse().unwrap();
    assert!(alive(worker), "the leftover worker should be running before the interrupt");
    let tops = || -> Vec<PathBuf> {
        std::fs::read_dir(&cg.root)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("ktstr-"))
            .map(|e| e.path())
            .collect()
    };
    assert_eq!(tops().len(), 1);

    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted; sidecars written so far are kept and ingested"), "{err}");
    assert!(err.contains("removed 1 cgroup tree(s)"), "{err}");
    assert!(err.contains("1 new indexed"), "{err}");
    assert!(tops().is_empty(), "cgroup trees left behind: {:?}", tops());
    wait_for("the leftover worker to die", || !alive(worker));
    // The database already holds the sidecar: no ingest needed to list it.
    let list = t.run(&["stats", "list", "--no-ingest"]);
    list.expect_code(0);
    assert!(list.stdout.contains("6.14.2-abc1234"), "{}", list.stdout);
}
