//! The boot's scheduler rules against a synthetic sysfs tree, driven by real processes: a
//! small shell scheduler that writes the state files the kernel would.

use super::*;
use crate::harness::scheduler::lifecycle::tests::setup;

/// Attaches (a new ops name per start, so restarts are visible), counts one event per tick,
/// detaches on SIGINT.
const WELL_BEHAVED: &str = r#"
trap 'echo disabled > "$d/state"; : > "$d/root/ops"; exit 0' INT
n=$(cat "$d/../starts" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$d/../starts"
echo "fake_ops_$n" > "$d/root/ops"
echo "SCX_EV_DISPATCH_KEEP_LAST 5" > "$d/root/events"
echo enabled > "$d/state"
k=5
while :; do sleep 0.05; k=$((k+1)); echo "SCX_EV_DISPATCH_KEEP_LAST $k" > "$d/root/events"; done
"#;

/// One test of the boot: `before`, a body that sleeps (and runs `during`), `after`.
fn run_test(
    s: &mut GuestScheduler,
    test: &str,
    fresh: bool,
    last: bool,
    stops: &mut Vec<SchedulerStopped>,
    during: impl FnOnce(),
) -> Execution {
    let mut sink = |stop| stops.push(stop);
    match s.before(test, fresh, &mut sink) {
        Err(record) => *record,
        Ok(events) => {
            std::thread::sleep(Duration::from_millis(150));
            during();
            let mut ex = Execution { verdict: Verdict::Passed, ..Execution::default() };
            s.after(test, events, last, &mut ex, &mut sink);
            ex
        }
    }
}

#[test]
fn one_scheduler_serves_the_boot_restarting_after_a_departure_and_for_a_fresh_test() {
    let (_dir, sysfs, spec) = setup(WELL_BEHAVED);
    let mut s = GuestScheduler::start_with(spec, sysfs.clone(), None, "7.3.4-test");
    let mut stops = Vec::new();

    let a = run_test(&mut s, "a", false, false, &mut stops, || {});
    assert_eq!(a.verdict, Verdict::Passed, "{:?}", a.reasons);
    let run_a = a.scheduler_run.clone().unwrap();
    assert_eq!(run_a.ops, "fake_ops_1");
    assert!(run_a.stop.is_none(), "kept attached");
    assert!(run_a.event_deltas().unwrap()["SCX_EV_DISPATCH_KEEP_LAST"] > 0);

    // The kernel kicks it out mid-test: the test fails, the next one gets a new scheduler.
    let kick = || {
        std::fs::write(sysfs.dir().join("state"), "disabled\n").unwrap();
        std::fs::write(sysfs.dir().join("root/ops"), "").unwrap();
    };
    let b = run_test(&mut s, "b", false, false, &mut stops, kick);
    assert_eq!(b.verdict, Verdict::Failed);
    assert!(
        b.reasons[0]
            .starts_with("scheduler fake left mid-test: the kernel kicked it out (state disabled)"),
        "{:?}",
        b.reasons
    );
    assert_eq!(stops.last().unwrap().why, "left during b");

    let c = run_test(&mut s, "c", false, false, &mut stops, || {});
    assert_eq!(c.verdict, Verdict::Passed, "{:?}", c.reasons);
    assert_eq!(c.scheduler_run.unwrap().ops, "fake_ops_2", "restarted");

    let d = run_test(&mut s, "d", true, true, &mut stops, || {});
    assert_eq!(d.verdict, Verdict::Passed, "{:?}", d.reasons);
    let run_d = d.scheduler_run.unwrap();
    assert_eq!(run_d.ops, "fake_ops_3", "a fresh one for d");
    // The last test carries the stop, and its counters start at its own start.
    assert_eq!(run_d.stop.as_ref().unwrap().state_after, "disabled");
    assert!(run_d.event_deltas().unwrap()["SCX_EV_DISPATCH_KEEP_LAST"] > 0);
    let whys: Vec<&str> = stops.iter().map(|s| s.why.as_str()).collect();
    assert_eq!(whys, ["left during b", "fresh scheduler for d", "end of boot"]);
    assert!(stops.iter().all(|s| s.state_after == "disabled" && !s.killed_after_grace));
    assert_eq!(sysfs.state().unwrap().as_str(), "disabled", "nothing left attached");
}

#[test]
fn a_scheduler_that_will_not_attach_fails_every_test_of_the_boot() {
    let (dir, sysfs, spec) =
        setup("echo x >> \"$d/../attempts\"\necho 'verifier says no' >&2\nexit 1");
    let mut s = GuestScheduler::start_with(spec, sysfs, None, "7.3.4-test");
    let mut stops = Vec::new();
    for test in ["a", "b"] {
        let ex = run_test(&mut s, test, false, false, &mut stops, || {});
        assert_eq!(ex.verdict, Verdict::Failed);
        assert_eq!(
            ex.reasons,
            ["scheduler fake failed to attach: it exited (exit status: 1) before sched_ext was \
              enabled; stderr: verifier says no"]
        );
    }
    assert!(stops.is_empty());
    let attempts = std::fs::read_to_string(dir.path().join("sys/kernel/attempts")).unwrap();
    assert_eq!(attempts.lines().count(), 1, "one start for the boot, not one per test");
}

#[test]
fn a_kernel_without_sched_ext_skips_every_scheduler_test_naming_the_release() {
    let (dir, _sysfs, spec) = setup(WELL_BEHAVED);
    let none = SchedExtSysfs::new(dir.path().join("empty"));
    let mut s = GuestScheduler::start_with(spec, none, None, "6.12.117+deb13-cloud-amd64");
    let ex = run_test(&mut s, "a", true, true, &mut Vec::new(), || {});
    let why = no_sched_ext("fake", "6.12.117+deb13-cloud-amd64");
    assert_eq!(ex.verdict, Verdict::Skipped(why));
}
