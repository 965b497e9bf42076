//! Running a test body under a watchdog.
//!
//! [`run_body`] runs the body on its own thread inside `catch_unwind` and waits for it with a
//! deadline that moves with the body's progress. A running step announces how long it holds
//! ([`Live::step_started`](super::live::Live::step_started)), and is hung once
//! `hold + grace` has passed since it started; a body between steps is hung once it has gone
//! `duration + grace` without starting one. The grace, [`HANG_GRACE`] in production, covers
//! creating the cgroups, forking, stopping, reaping and cgroup removal. A panic or a hang is
//! reported, never propagated.
//!
//! On a hang the watchdog tears down what the run's [`super::live`] registry holds: it kills
//! and reaps the registered workers and removes the registered cgroups.
//!
//! What happens to a hung body's thread: it is left running (a thread cannot be killed).
//! Its workers are gone, its cgroups are removed, and the teardown closed the run, so any
//! further scenario step it starts fails at once. The thread ends when the test process
//! exits: the runner fails the `#[test]`, and under nextest every test is its own process,
//! which exits right after. Under plain `cargo test` it lingers until the whole test binary
//! exits.
//!
//! Building sidecars from the outcome is [`super::runner`]'s job.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use super::entry::{AssertResult, Ctx, TestFn};
use super::record::RunRecord;

/// How long past a running step's hold (between steps: past the declared duration) a body
/// may go without progress before it is declared hung and its workers are killed.
pub const HANG_GRACE: Duration = Duration::from_secs(10);

/// How often [`run_body`] looks at the deadline again while the body runs.
const DEADLINE_POLL: Duration = Duration::from_millis(50);

/// How a body run ended.
#[derive(Debug)]
pub enum BodyOutcome {
    /// The body returned; what its scenarios recorded comes with it.
    Returned(anyhow::Result<AssertResult>, RunRecord),
    /// The body panicked with this message; its scenarios' drops already ran.
    Panicked(String, RunRecord),
    /// No progress for the whole budget (`allowance` + the grace); the workers and cgroups
    /// were torn down. `allowance` is the hung step's hold, or the declared duration when
    /// the body hung between steps.
    TimedOut { budget: Duration, allowance: Duration, teardown_problems: Vec<String> },
}

/// Run `func` on its own thread with `ctx` and wait for it as the module doc describes.
/// `ctx.live` is the registry the body's scenarios use; the caller keeps a clone of it.
pub fn run_body(func: TestFn, ctx: Ctx, grace: Duration) -> BodyOutcome {
    let between_steps = ctx.duration;
    let live = Arc::clone(&ctx.live);
    live.step_ended();
    let (tx, rx) = channel();
    let name = format!("ktstr-body-{}", ctx.test_name);
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let r = catch_unwind(AssertUnwindSafe(|| func(&ctx)));
        // The receiver is gone only if the runner already timed out; nothing to tell.
        let _ = tx.send((r, ctx.record.into_inner()));
    });
    let handle = match spawned {
        Ok(h) => h,
        Err(e) => {
            let err = anyhow::anyhow!("cannot start the test body thread: {e}");
            return BodyOutcome::Returned(Err(err), RunRecord::default());
        }
    };
    let outcome = loop {
        let (deadline, allowance) = live.deadline(between_steps, grace);
        let now = Instant::now();
        if now >= deadline {
            let teardown_problems = live.teardown();
            // The stuck thread is left behind on purpose; see the module doc.
            drop(handle);
            let budget = allowance + grace;
            return BodyOutcome::TimedOut { budget, allowance, teardown_problems };
        }
        // A step announcing a hold shorter than the declared duration moves the deadline
        // earlier, so never sleep long past a deadline that may have changed.
        match rx.recv_timeout((deadline - now).min(DEADLINE_POLL)) {
            Ok(v) => break v,
            // Progress may have moved the deadline: look again.
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                let msg = "the test body thread ended without a result".to_string();
                return BodyOutcome::Panicked(msg, RunRecord::default());
            }
        }
    };
    // The thread sent its result as its last act.
    let _ = handle.join();
    match outcome {
        (Ok(r), rec) => BodyOutcome::Returned(r, rec),
        (Err(payload), rec) => BodyOutcome::Panicked(panic_message(payload.as_ref()), rec),
    }
}

/// The text of a panic payload (`panic!` makes a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::model::ScenarioStats;

    fn ctx(ms: u64) -> Ctx {
        Ctx::new(vec![0], Duration::from_millis(ms), 1)
    }

    fn ok(_: &Ctx) -> anyhow::Result<AssertResult> {
        Ok(AssertResult::pass(ScenarioStats::default()))
    }

    fn panics(_: &Ctx) -> anyhow::Result<AssertResult> {
        panic!("body blew up: {}", 42)
    }

    fn hangs(_: &Ctx) -> anyhow::Result<AssertResult> {
        loop {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn returned_and_panicked_bodies_are_told_apart() {
        assert!(matches!(run_body(ok, ctx(10), Duration::from_secs(5)), BodyOutcome::Returned(..)));
        match run_body(panics, ctx(10), Duration::from_secs(5)) {
            BodyOutcome::Panicked(m, _) => assert_eq!(m, "body blew up: 42"),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn a_hung_body_times_out_after_duration_plus_grace() {
        let t = Instant::now();
        let o = run_body(hangs, ctx(100), Duration::from_millis(200));
        let took = t.elapsed();
        assert!(
            matches!(o, BodyOutcome::TimedOut { budget, allowance, .. }
                if budget.as_millis() == 300 && allowance.as_millis() == 100),
            "{o:?}"
        );
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "{took:?}");
    }

    /// A step announcing 600 ms in a test declaring 100 ms, with 200 ms of grace.
    fn long_step(ctx: &Ctx) -> anyhow::Result<AssertResult> {
        ctx.live.step_started(Some("CpuSpin"), Duration::from_millis(600));
        std::thread::sleep(Duration::from_millis(600));
        ctx.live.step_ended();
        Ok(AssertResult::pass(ScenarioStats::default()))
    }

    #[test]
    fn a_step_may_hold_longer_than_the_declared_duration() {
        let o = run_body(long_step, ctx(100), Duration::from_millis(200));
        assert!(matches!(o, BodyOutcome::Returned(Ok(_), _)), "{o:?}");
    }

    /// A step announcing 100 ms that never ends, in a test declaring 60 s.
    fn overruns_its_step(ctx: &Ctx) -> anyhow::Result<AssertResult> {
        ctx.live.step_started(Some("CpuSpin"), Duration::from_millis(100));
        hangs(ctx)
    }

    #[test]
    fn a_step_that_overruns_its_hold_times_out_after_hold_plus_grace() {
        let t = Instant::now();
        let o = run_body(overruns_its_step, ctx(60_000), Duration::from_millis(200));
        let took = t.elapsed();
        assert!(
            matches!(o, BodyOutcome::TimedOut { budget, allowance, .. }
                if budget.as_millis() == 300 && allowance.as_millis() == 100),
            "{o:?}"
        );
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "{took:?}");
    }
}
