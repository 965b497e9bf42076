//! Scenario building blocks for test bodies: declare cgroups ([`CgroupDef`]), run them for
//! a duration ([`Ctx::run_cgroups`]), or use a canned scenario ([`steady`]).
//!
//! A scenario creates its cgroup tree, forks every worker blocked on one start gate, places
//! them, releases them together, holds, stops and collects, and rolls the reports up. The
//! pieces are [`super::cgroup`], [`super::worker`] and [`super::measure`]; thresholds and
//! sidecars are [`super::runner`]'s.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::cgroup::{CgroupSpec, CgroupTree, Hierarchy};
use super::entry::{AssertResult, Ctx, Skip};
use super::live::Live;
use super::measure::{Unmeasured, cgroup_stats, scenario_stats};
use super::record::CgroupRun;
use super::worker::{StartGate, WorkType, WorkerSet};
use crate::sidecar::model::{ScenarioStats, StimulusEvent};

/// Extra time workers get to report after the stop signal before they are killed.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// One cgroup of a scenario.
#[derive(Debug, Clone)]
pub struct CgroupDef {
    pub name: String,
    /// Worker count; `None` = the test's `workers_per_cgroup` (rounded up to the work
    /// type's group size).
    pub workers: Option<u32>,
    pub work_type: WorkType,
    /// CPUs the cgroup may use; `None` = all.
    pub cpus: Option<Vec<usize>>,
    /// cgroup v2 `cpu.weight` (v1 gets the matching `cpu.shares`).
    pub weight: Option<u32>,
}

impl CgroupDef {
    pub fn new(name: impl Into<String>, work_type: WorkType) -> CgroupDef {
        CgroupDef { name: name.into(), workers: None, work_type, cpus: None, weight: None }
    }
    pub fn workers(mut self, n: u32) -> CgroupDef {
        self.workers = Some(n);
        self
    }
    pub fn cpus(mut self, cpus: Vec<usize>) -> CgroupDef {
        self.cpus = Some(cpus);
        self
    }
    pub fn weight(mut self, w: u32) -> CgroupDef {
        self.weight = Some(w);
        self
    }
}

impl Ctx {
    /// Run `defs` together for the test's duration and return the rolled-up stats.
    pub fn run_cgroups(&self, defs: &[CgroupDef]) -> anyhow::Result<ScenarioStats> {
        self.run_step(defs, self.duration)
    }

    /// Run `defs` together for `hold` and return the rolled-up stats.
    pub fn run_step(&self, defs: &[CgroupDef], hold: Duration) -> anyhow::Result<ScenarioStats> {
        for d in defs {
            d.work_type.host_support().map_err(Skip)?;
        }
        if self.live.is_closed() {
            anyhow::bail!("the watchdog already ended this test; no further step may start");
        }
        let hierarchy = match &self.cgroup_root {
            Some(root) => Hierarchy::at(root),
            None => Hierarchy::detect()?,
        };
        let specs: Vec<CgroupSpec> = defs
            .iter()
            .map(|d| CgroupSpec { name: d.name.clone(), cpus: d.cpus.clone(), weight: d.weight })
            .collect();
        let step_index = self.record.borrow().events.len() / 2;
        self.live.step_started(defs.first().map(|d| d.work_type.name()), hold);
        let within = self.confined.then_some(self.cpus.as_slice());
        let tree = CgroupTree::create_within(&hierarchy, &specs, within)?;
        self.record.borrow_mut().cgroup_tops.extend(tree.tops().iter().cloned());
        let mut step = Step::new(&self.live, tree);
        let mut gate = StartGate::new()?;
        for d in defs {
            let group = d.work_type.group_size() as u32;
            let n = d.workers.unwrap_or(self.workers_per_cgroup).max(1).div_ceil(group) * group;
            let set = WorkerSet::spawn_tracked(
                d.work_type,
                n as usize,
                &gate,
                Some(std::sync::Arc::clone(&self.live)),
            )
            .with_context(|| format!("cgroup {}", d.name))?;
            let pids = set.pids();
            // Pushed before placing, so a failed placement still tears these workers down.
            step.sets.push(set);
            for pid in pids {
                step.tree().add_pid(&d.name, pid)?;
            }
        }
        let t0 = Instant::now();
        self.event("StepStart", step_index, 0, None);
        gate.release();
        std::thread::sleep(hold);
        let teardown = Instant::now();
        let mut runs = Vec::new();
        let mut errors = Vec::new();
        for (d, set) in defs.iter().zip(step.sets.iter_mut()) {
            match set.stop_and_collect(STOP_GRACE) {
                Ok(reports) => runs.push(CgroupRun {
                    step: step_index,
                    name: d.name.clone(),
                    cpus: d.cpus.clone(),
                    reports,
                }),
                Err(e) => errors.push(format!("cgroup {}: {e}", d.name)),
            }
        }
        step.finish(teardown);
        self.live.step_ended();
        if !errors.is_empty() {
            anyhow::bail!("{}", errors.join("; "));
        }
        let mut unmeasured = Unmeasured::default();
        let cgroups = runs.iter().map(|r| cgroup_stats(&r.reports, &mut unmeasured)).collect();
        let stats = scenario_stats(cgroups);
        self.event(
            "StepEnd",
            step_index,
            t0.elapsed().as_millis() as u64,
            Some(stats.total_iterations),
        );
        let mut rec = self.record.borrow_mut();
        for d in defs {
            rec.work_types.push(d.work_type.name().to_string());
        }
        rec.unmeasured.extend(unmeasured.fields.iter().map(|f| f.to_string()));
        // Every step's workers are checked, not only the last step's.
        rec.runs.extend(runs);
        rec.cgroup_version = Some(hierarchy.version());
        Ok(stats)
    }

    fn event(&self, label: &str, index: usize, elapsed_ms: u64, iters: Option<u64>) {
        self.record.borrow_mut().events.push(StimulusEvent {
            elapsed_ms,
            label: format!("{label}[{index}]"),
            op_kind: None,
            detail: None,
            total_iterations: iters,
        });
    }
}

/// The live part of one step: its workers and cgroup tree, registered with the run's
/// [`Live`] while they exist. Dropping it (an error or a panic in the step) kills and reaps
/// the workers and removes the tree; either way the teardown time is recorded.
struct Step<'a> {
    live: &'a Live,
    sets: Vec<WorkerSet>,
    tree: Option<CgroupTree>,
    dirs: Vec<PathBuf>,
}

impl<'a> Step<'a> {
    fn new(live: &'a Live, tree: CgroupTree) -> Step<'a> {
        let dirs = tree.all_dirs();
        live.add_cgroups(&dirs);
        Step { live, sets: Vec::new(), tree: Some(tree), dirs }
    }

    fn tree(&self) -> &CgroupTree {
        // Invariant: the tree is only taken by `finish`/`drop`, which end the step.
        self.tree.as_ref().expect("step tree present until teardown")
    }

    /// Reap the workers, remove the tree and record the time since `started`.
    fn finish(&mut self, started: Instant) {
        if self.tree.is_none() {
            return;
        }
        self.sets.clear();
        self.tree = None;
        self.live.remove_cgroups(&self.dirs);
        self.live.add_cleanup(started.elapsed());
    }
}

impl Drop for Step<'_> {
    fn drop(&mut self) {
        self.finish(Instant::now());
    }
}

/// The most common test: one cgroup of `workers_per_cgroup` workers of `work_type` on all
/// CPUs for the test's duration.
pub fn steady(ctx: &Ctx, work_type: WorkType) -> anyhow::Result<AssertResult> {
    let stats = ctx.run_cgroups(&[CgroupDef::new("cg0", work_type)])?;
    Ok(AssertResult::pass(stats))
}

/// Two cgroups with different work types competing on all CPUs.
pub fn contend(ctx: &Ctx, a: WorkType, b: WorkType) -> anyhow::Result<AssertResult> {
    let stats = ctx.run_cgroups(&[CgroupDef::new("cg0", a), CgroupDef::new("cg1", b)])?;
    Ok(AssertResult::pass(stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::cgroup::CgroupError;
    use std::process::Command;

    /// A mount on a temp dir, unmounted on drop.
    struct Mount(
        #[expect(dead_code, reason = "held only so the mount point outlives the test")]
        tempfile::TempDir,
        std::path::PathBuf,
    );

    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.1).status();
        }
    }

    fn mount(fstype: &str, opts: Option<&str>, sub: &str) -> Option<Mount> {
        let dir = tempfile::tempdir().ok()?;
        let target = dir.path().join(sub);
        std::fs::create_dir_all(&target).ok()?;
        let mut cmd = Command::new("mount");
        cmd.args(["-t", fstype]);
        if let Some(o) = opts {
            cmd.args(["-o", o]);
        }
        let ok = cmd.arg("none").arg(&target).status().ok()?.success();
        if !ok {
            eprintln!("skipped: cannot mount {fstype} here (needs root)");
            return None;
        }
        Some(Mount(dir, target))
    }

    fn ctx(ms: u64) -> Ctx {
        Ctx::new(crate::harness::worker::allowed_cpus(), Duration::from_millis(ms), 2)
    }

    /// Trees this context created that still exist.
    fn leftover(c: &Ctx) -> Vec<std::path::PathBuf> {
        let rec = c.record.borrow();
        assert!(!rec.cgroup_tops.is_empty());
        rec.cgroup_tops.iter().filter(|p| p.exists()).cloned().collect()
    }

    #[test]
    fn v2_code_path_on_a_real_cgroup2_mount() {
        let Some(m) = mount("cgroup2", None, "v2") else { return };
        let c = ctx(200).with_cgroup_root(m.1.clone());
        let stats = c.run_cgroups(&[CgroupDef::new("a", WorkType::CpuSpin)]).unwrap();
        assert!(stats.total_iterations > 0);
        assert_eq!(c.record.borrow().cgroup_version, Some("v2"));
        assert!(leftover(&c).is_empty(), "tree not removed");
        // This machine's cgroup2 has no cpuset controller (it is bound to v1); elsewhere it
        // may have one, and then the step simply runs.
        let avail = std::fs::read_to_string(m.1.join("cgroup.controllers")).unwrap();
        if !avail.contains("cpuset") {
            let err =
                c.run_cgroups(&[CgroupDef::new("b", WorkType::CpuSpin).cpus(vec![0])]).unwrap_err();
            let e = err.downcast_ref::<CgroupError>().unwrap().to_string();
            assert!(e.contains("cpuset controller is not available"), "{e}");
            assert!(leftover(&c).is_empty());
        }
    }

    #[test]
    fn v1_code_path_with_cpuset_pins_workers() {
        let Some(m) = mount("cgroup", Some("cpuset"), "cpuset") else { return };
        let root = m.1.parent().unwrap().to_path_buf();
        let c = ctx(200).with_cgroup_root(root);
        let stats =
            c.run_cgroups(&[CgroupDef::new("pinned", WorkType::CpuSpin).cpus(vec![0])]).unwrap();
        assert_eq!(c.record.borrow().cgroup_version, Some("v1"));
        assert!(stats.total_iterations > 0);
        assert_eq!(stats.cgroups[0].num_cpus, 1);
        for w in &c.record.borrow().runs[0].reports {
            assert_eq!(w.cpus_used, vec![0]);
        }
        assert!(leftover(&c).is_empty(), "tree not removed");
    }

    /// One real step holding 1.2 s, far beyond the 100 ms the test declares.
    fn long_real_step(ctx: &Ctx) -> anyhow::Result<AssertResult> {
        let stats = ctx
            .run_step(&[CgroupDef::new("long", WorkType::CpuSpin)], Duration::from_millis(1200))?;
        Ok(AssertResult::pass(stats))
    }

    #[test]
    fn the_watchdog_lets_a_step_hold_longer_than_the_declared_duration() {
        let Some(m) = mount("cgroup2", None, "v2") else { return };
        let c = ctx(100).with_cgroup_root(m.1.clone());
        let o = crate::harness::watchdog::run_body(long_real_step, c, Duration::from_millis(300));
        match o {
            crate::harness::watchdog::BodyOutcome::Returned(Ok(r), _) => {
                assert!(r.stats.total_iterations > 0)
            }
            o => panic!("a healthy 1.2 s step was not allowed to finish: {o:?}"),
        }
    }

    #[test]
    fn pipe_io_scenario_has_wake_latencies() {
        let Some(m) = mount("cgroup2", None, "v2") else { return };
        let c = ctx(300).with_cgroup_root(m.1.clone());
        let stats =
            c.run_cgroups(&[CgroupDef::new("p", WorkType::from_name("PipeIo").unwrap())]).unwrap();
        assert!(stats.worst_p99_wake_latency_us > 0.0);
        assert!(stats.worst_median_wake_latency_us > 0.0);
        assert!(stats.worst_p99_wake_latency_us >= stats.worst_median_wake_latency_us);
        assert!(c.record.borrow().unmeasured.iter().all(|u| u != "wake_latency"));
    }

    #[test]
    fn unsupported_work_type_is_a_skip_not_a_pass() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            return;
        }
        let err = ctx(10).run_cgroups(&[CgroupDef::new("n", WorkType::NiceSweep)]).unwrap_err();
        assert!(err.downcast_ref::<Skip>().is_some());
    }
}
