//! The machine-wide lock, with real test processes: two processes of this test binary, each
//! running a `#[ktstr_test]` through the real host runner, never overlap their scenarios;
//! and a lock whose holder was killed (`SIGKILL`, while a program it started lives on) does
//! not block the next taker.
//!
//! The fixtures are `#[ignore]`d tests of this binary that the tests below start with
//! `--ignored --exact`; `KTSTR_LOCK_DIR` points every process at a lock of this test's own,
//! so the suite's other tests, which take the machine's lock, neither wait for nor disturb
//! these.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ktstr::harness::machine_lock::{LOCK_FILE, MachineLock};
use ktstr::prelude::*;

/// Where a scenario fixture appends `{pid} {start_ns} {end_ns}` lines.
const LOG_ENV: &str = "KTSTR_LOCK_TEST_LOG";
/// How long each fixture scenario holds.
const HOLD: Duration = Duration::from_millis(700);

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// Appends one line for a scenario: a `start` line when it begins, its span when it ends.
fn log(line: &str) {
    let Some(path) = std::env::var_os(LOG_ENV) else { return };
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(path).unwrap();
    // One write per line, so lines of two processes never interleave.
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// Fixture: a test whose two runs (base and one gauntlet variant) each hold for [`HOLD`]
/// and record when they started and ended.
#[ktstr_test(duration_s = 1, gauntlet = ["1n1l1c1t"])]
#[ignore = "a fixture: the machine lock tests run it in child processes"]
fn lock_fixture_scenario(_ctx: &Ctx) -> Result<AssertResult> {
    let pid = std::process::id();
    let start = now_ns();
    log(&format!("start {pid} {start}"));
    std::thread::sleep(HOLD);
    log(&format!("span {pid} {start} {}", now_ns()));
    Ok(AssertResult::pass(ScenarioStats::default()))
}

/// Fixture: take the lock, start a long-lived program (it would keep the lock if it inherited
/// the descriptor), print `held {its pid}`, and wait to be killed.
#[test]
#[ignore = "a fixture: a_lock_held_by_a_killed_process_does_not_block runs it"]
fn hold_the_machine_lock_until_killed() {
    let _guard = MachineLock::acquire("holder fixture").unwrap();
    let mut sleeper = Command::new("sleep").arg("60").stdout(Stdio::null()).spawn().unwrap();
    println!("held {}", sleeper.id());
    std::io::stdout().flush().unwrap();
    // Killed long before the sleeper ends.
    let _ = sleeper.wait();
}

/// This test binary running one fixture, with its lock in `lock_dir`.
fn fixture(name: &str, lock_dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("KTSTR_LOCK_DIR", lock_dir)
        .env("RUST_BACKTRACE", "0");
    cmd
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Span {
    pid: u32,
    start: u128,
    end: u128,
}

fn spans(log: &Path) -> Vec<Span> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("span "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Span {
                pid: f[0].parse().unwrap(),
                start: f[1].parse().unwrap(),
                end: f[2].parse().unwrap(),
            }
        })
        .collect()
}

#[test]
fn two_test_processes_never_overlap_their_scenarios() {
    let tmp = tempfile::tempdir().unwrap();
    let log_path = tmp.path().join("scenarios.log");
    let start = |tag: &str| -> Child {
        fixture("machine_lock::lock_fixture_scenario", tmp.path())
            .env(LOG_ENV, &log_path)
            .env("KTSTR_SIDECAR_DIR", tmp.path().join(format!("sidecars-{tag}")))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = start("a");
    // The second starts while the first is inside a scenario, so the two really contend.
    wait_until("the first process's first scenario", Duration::from_secs(120), || {
        std::fs::read_to_string(&log_path).is_ok_and(|t| t.contains("start "))
    });
    let second = start("b");
    let (a, b) = (first.id(), second.id());
    let outputs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
    for o in &outputs {
        assert!(
            o.status.success(),
            "a fixture process failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    let mut spans = spans(&log_path);
    assert_eq!(spans.iter().filter(|s| s.pid == a).count(), 2, "base and gauntlet run of {a}");
    assert_eq!(spans.iter().filter(|s| s.pid == b).count(), 2, "base and gauntlet run of {b}");
    spans.sort_by_key(|s| s.start);
    for w in spans.windows(2) {
        assert!(
            w[1].start >= w[0].end,
            "scenario of pid {} started {} µs before the scenario of pid {} ended",
            w[1].pid,
            (w[0].end - w[1].start) / 1000,
            w[0].pid
        );
    }
    // The second process found the lock taken and said by whom.
    let waited = String::from_utf8_lossy(&outputs[1].stderr).to_string();
    let lock = tmp.path().join(LOCK_FILE);
    let want = format!(
        "ktstr: waiting for the machine lock {}, held by pid {a} (lock_fixture_scenario [",
        lock.display()
    );
    assert!(waited.contains(&want), "no waiting line naming {a}:\n{waited}");
}

#[test]
fn a_lock_held_by_a_killed_process_does_not_block() {
    let tmp = tempfile::tempdir().unwrap();
    let lock: PathBuf = tmp.path().join(LOCK_FILE);
    let mut holder = fixture("machine_lock::hold_the_machine_lock_until_killed", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = BufReader::new(holder.stdout.take().unwrap());
    // libtest prints its own text first, `test {name} ... ` on the same line as ours.
    let sleeper: i32 = loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the holder exited before taking the lock");
        if let Some((_, pid)) = line.trim().split_once("held ") {
            break pid.parse().unwrap();
        }
    };
    let held = MachineLock::holder(&lock);
    let reap_sleeper = || {
        // SAFETY: kill has no memory-safety preconditions; `sleeper` is the fixture's child.
        unsafe { libc::kill(sleeper, libc::SIGKILL) };
    };
    let Some(h) = held else {
        reap_sleeper();
        panic!("the fixture does not hold the lock");
    };
    assert_eq!((h.pid, h.what.as_deref()), (Some(holder.id()), Some("holder fixture")));

    holder.kill().unwrap();
    holder.wait().unwrap();
    // The sleeper it started is still alive; the lock must not be.
    let sleeper_alive = Path::new(&format!("/proc/{sleeper}")).exists();
    let t = Instant::now();
    let taken =
        MachineLock::acquire_at(&lock, "after the kill", Duration::from_secs(10), |_, _| {});
    let took = t.elapsed();
    reap_sleeper();
    assert!(sleeper_alive, "the fixture's child should outlive it for this test to mean anything");
    let guard = taken.expect("a killed holder's lock is free");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    drop(guard);
}
