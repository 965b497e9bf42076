//! Whether a failed run's host was busy with work that was not the test's own, judged from what
//! the runner recorded in the sidecar (`provenance.host_load`, `provenance.topology_ran`,
//! `stats`), and the hint that says so on the failure line. The failure stays a failure; the
//! hint only explains it.
//!
//! Only failures of scheduling checks get a hint: the ones contention from outside can break
//! on its own (`not_starved`, `max_gap_ms`, `max_spread_pct`, `max_p99_wake_latency_ns`,
//! `max_wake_latency_cv`; see [`contention_can_break`]). A body's own failure, a rate check or
//! `isolation` gets none.
//!
//! # The rule
//!
//! Each signal below is a claim on its own; a field that was not recorded makes no claim. `C`
//! is the number of CPUs the run had (the topology that ran), `W` the test's own workers (the
//! `total_workers` of the stats the body returned).
//!
//! - **Steal** ≥ [`STEAL_PCT`] % of CPU time during the run: time the hypervisor gave to
//!   someone else while this machine wanted to run. The test cannot cause it.
//! - **Load**: the 1-minute load average (the smaller of the samples before and after the
//!   body) above `max(C, W) + C/2`, where here `C` is the machine's online CPUs
//!   (`host.online_cpus`) when recorded, since the average counts the whole machine. The test adds at most `W` runnable tasks, so when this
//!   holds, others kept more than half the CPUs' worth of tasks runnable on CPUs that were
//!   already full. The average lags by about a minute: it speaks of the time around the run.
//! - **CPU pressure**: `/proc/pressure/cpu` "some avg10" ≥ [`PRESSURE_PCT`] % (some task waited
//!   for a CPU a fifth of the last ten seconds), counted only when the test's own workers
//!   cannot have waited for each other: `W ≤ C` and no cgroup had more workers than CPUs it
//!   ran on. A test that stacks its own workers (more workers than CPUs, or a cgroup confined
//!   to fewer CPUs than it has workers) makes that pressure itself, so there it says nothing.
//!
//! Known blind spots, all toward saying nothing or too little: `W` is the returned stats' (a
//! multi-step body may have run more workers in another step), and two cgroups pinned to the
//! same CPUs look unstacked.

use std::fmt;

use ktstr_decl::Topology;
use ktstr_decl::thresholds::{Check, Measure};

use super::threshold_checks::failed_threshold;
use crate::sidecar::model::{HostLoad, SidecarResult};

/// Steal time, % of all CPU time during the run, from which the host counts as contended.
pub const STEAL_PCT: f64 = 5.0;
/// CPU pressure "some avg10", %, from which the host counts as contended.
pub const PRESSURE_PCT: f64 = 20.0;

/// The signals that showed contention; `None` where the signal did not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Contention {
    pub pressure_pct: Option<f64>,
    pub steal_pct: Option<f64>,
    /// (load average, CPUs the run had).
    pub load: Option<(f64, u32)>,
}

impl fmt::Display for Contention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = self.pressure_pct {
            parts.push(format!("cpu pressure {p:.0} %"));
        }
        if let Some(s) = self.steal_pct {
            parts.push(format!("steal {s:.0} %"));
        }
        if let Some((load, cpus)) = self.load {
            let unit = if cpus == 1 { "CPU" } else { "CPUs" };
            parts.push(format!("load {load:.1} on {cpus} {unit}"));
        }
        write!(
            f,
            "host was contended: {}; rerun on an idle machine or with fewer tests in parallel",
            parts.join(", ")
        )
    }
}

/// The hint for a failed run with these reasons, if one of them is a scheduling check and the
/// host was contended.
pub(crate) fn hint(sc: &SidecarResult, reasons: &[String]) -> Option<Contention> {
    let scheduling =
        reasons.iter().any(|r| failed_threshold(r).is_some_and(|t| contention_can_break(t.check)));
    if !scheduling {
        return None;
    }
    host_contention(sc)
}

/// Whether load from outside the test alone can make a check of this kind fail.
fn contention_can_break(check: Check) -> bool {
    match check {
        Check::Starvation => true,
        Check::WorstAtMost(m) => match m {
            Measure::GapMs
            | Measure::P99WakeLatencyNs
            | Measure::SpreadPct
            | Measure::WakeLatencyCv => true,
            Measure::MigrationRatio => false,
        },
        Check::Isolation
        | Check::EveryWorkerAtLeast(_)
        | Check::EveryCgroupThroughputCvAtMost
        | Check::Modifier
        | Check::NotOnHost => false,
    }
}

/// What the recorded host load says, per [the rule](self#the-rule); `None` when nothing shows
/// contention.
pub(crate) fn host_contention(sc: &SidecarResult) -> Option<Contention> {
    let load: &HostLoad = sc.provenance.host_load.as_ref()?;
    let cpus: Option<u32> = sc
        .provenance
        .topology_ran
        .as_deref()
        .and_then(|t| t.parse::<Topology>().ok())
        .map(|t| t.total_cpus());
    let workers = sc.stats.total_workers as f64;
    let steal_pct = load.steal_pct.filter(|s| *s >= STEAL_PCT);
    let load_avg = match (load.loadavg_1m_start, load.loadavg_1m_end) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    // The load average counts the whole machine, so it is judged against the whole machine's
    // CPUs: a run confined to a few of a host's CPUs is not contended by load on the others.
    let machine_cpus = sc.host.as_ref().and_then(|h| h.online_cpus).map(|n| n as u32).or(cpus);
    let busy = machine_cpus.zip(load_avg).filter(|(c, l)| {
        let c = f64::from(*c);
        *l > c.max(workers) + c / 2.0
    });
    let stacked_itself = cpus.is_none_or(|c| {
        workers > f64::from(c) || sc.stats.cgroups.iter().any(|g| g.num_workers > g.num_cpus)
    });
    let pressure_pct =
        load.cpu_pressure_some_avg10.filter(|p| *p >= PRESSURE_PCT && !stacked_itself);
    let c = Contention { pressure_pct, steal_pct, load: busy.map(|(c, l)| (l, c)) };
    (c.pressure_pct.is_some() || c.steal_pct.is_some() || c.load.is_some()).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::model::{CgroupStats, ScenarioStats};

    /// A run on a 2-CPU host with one cgroup of two workers that each had a CPU.
    fn run(load: HostLoad) -> SidecarResult {
        let mut sc = SidecarResult::empty("t");
        sc.provenance.topology_ran = Some("1n1l2c1t".into());
        sc.provenance.host_load = Some(load);
        sc.stats = ScenarioStats {
            total_workers: 2,
            cgroups: vec![CgroupStats { num_workers: 2, num_cpus: 2, ..Default::default() }],
            ..Default::default()
        };
        sc
    }

    /// A recorded load: (1-minute average before and after, steal %, PSI some avg10 %).
    fn load(start: f64, end: f64, steal_pct: f64, pressure_pct: f64) -> HostLoad {
        HostLoad {
            loadavg_1m_start: Some(start),
            loadavg_1m_end: Some(end),
            steal_pct: Some(steal_pct),
            cpu_pressure_some_avg10: Some(pressure_pct),
            cpu_pressure_some_us: Some(1000),
            ..Default::default()
        }
    }

    fn contended() -> HostLoad {
        load(6.3, 6.1, 0.2, 38.4)
    }

    fn idle() -> HostLoad {
        load(0.4, 1.9, 0.0, 1.5)
    }

    fn reasons(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_scheduling_failure_on_a_contended_host_gets_the_hint() {
        let why = reasons(&["not_starved: spread 40.0% is not below 35%"]);
        let hint = hint(&run(contended()), &why).expect("contended");
        assert_eq!(
            hint.to_string(),
            "host was contended: cpu pressure 38 %, load 6.1 on 2 CPUs; rerun on an idle \
             machine or with fewer tests in parallel"
        );
        for r in [
            "max_gap_ms: 5000 > 100",
            "max_spread_pct: 47.26 > 10",
            "max_p99_wake_latency_ns: 12346 > 5000",
            "max_wake_latency_cv: 0.988 > 0.5",
        ] {
            let why = reasons(&["the body's own check failed", r]);
            assert!(super::hint(&run(contended()), &why).is_some(), "{r}");
        }
    }

    #[test]
    fn an_idle_host_gets_no_hint() {
        let why = reasons(&["not_starved: spread 40.0% is not below 35%"]);
        assert_eq!(hint(&run(idle()), &why), None);
        // The test's own two workers on two CPUs are not contention: 2.9 <= max(2, 2) + 1.
        let own = HostLoad { loadavg_1m_start: Some(2.9), loadavg_1m_end: Some(3.5), ..idle() };
        assert_eq!(hint(&run(own), &why), None);
    }

    #[test]
    fn other_failures_get_no_hint() {
        for r in [
            "the body failed on purpose",
            "isolation: cgroup a in step 0 ran on CPUs [1] outside [0]",
            "min_work_rate: cgroup a: 0.0/cpu-s < 250.5",
            "max_migration_ratio: 0.1235 > 0.1",
            "base: expect_err is set but the test passed",
        ] {
            assert_eq!(hint(&run(contended()), &reasons(&[r])), None, "{r}");
        }
    }

    #[test]
    fn each_signal_claims_alone_and_missing_fields_claim_nothing() {
        let none = HostLoad::default();
        assert_eq!(host_contention(&run(none.clone())), None);
        let steal = host_contention(&run(HostLoad { steal_pct: Some(7.2), ..none.clone() }));
        assert_eq!(steal.map(|c| c.steal_pct), Some(Some(7.2)));
        let psi = HostLoad { cpu_pressure_some_avg10: Some(20.0), ..none.clone() };
        assert_eq!(host_contention(&run(psi)).unwrap().pressure_pct, Some(20.0));
        let load = HostLoad { loadavg_1m_end: Some(3.1), ..none.clone() };
        assert_eq!(host_contention(&run(load.clone())).unwrap().load, Some((3.1, 2)));
        // A run confined to 2 of a host's 16 CPUs: the machine-wide load is the host's.
        let mut big_host = run(load);
        big_host.host = Some(crate::sidecar::model::HostContext {
            online_cpus: Some(16),
            ..Default::default()
        });
        assert_eq!(host_contention(&big_host), None);
        big_host.provenance.host_load.as_mut().unwrap().loadavg_1m_end = Some(24.5);
        assert_eq!(host_contention(&big_host).unwrap().load, Some((24.5, 16)));
        // No topology recorded: neither the load nor the pressure can be judged.
        let mut unknown_cpus = run(contended());
        unknown_cpus.provenance.topology_ran = None;
        assert_eq!(host_contention(&unknown_cpus), None);
        let mut no_load = run(contended());
        no_load.provenance.host_load = None;
        assert_eq!(host_contention(&no_load), None);
    }

    #[test]
    fn load_counts_only_beyond_the_test_own_workers() {
        // Eight workers on two CPUs: a load of 8.5 is the test's own, 9.1 is not.
        let mut sc = run(HostLoad { loadavg_1m_start: Some(8.5), ..Default::default() });
        sc.stats.total_workers = 8;
        sc.stats.cgroups[0].num_workers = 8;
        assert_eq!(host_contention(&sc), None);
        sc.provenance.host_load.as_mut().unwrap().loadavg_1m_start = Some(9.1);
        assert_eq!(host_contention(&sc).unwrap().load, Some((9.1, 2)));
    }

    #[test]
    fn pressure_says_nothing_when_the_test_stacks_its_own_workers() {
        let psi = HostLoad { cpu_pressure_some_avg10: Some(90.0), ..Default::default() };
        // Two workers confined to one CPU wait for each other.
        let mut confined = run(psi.clone());
        confined.stats.cgroups[0].num_cpus = 1;
        assert_eq!(host_contention(&confined), None);
        // Four workers on two CPUs, too, even when each cgroup's two had two CPUs.
        let mut crowded = run(psi);
        crowded.stats.total_workers = 4;
        crowded.stats.cgroups.push(crowded.stats.cgroups[0].clone());
        assert_eq!(host_contention(&crowded), None);
    }
}
