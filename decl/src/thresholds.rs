//! The assertion thresholds a `#[ktstr_test]` can set, as one list: each threshold's name
//! (its attribute key and its `ktstr::harness::Thresholds` field), the type of value it takes,
//! and how the host backend checks it, or that it cannot.
//!
//! The list is the macro [`threshold_list!`](crate::threshold_list), which hands its entries to a macro of the
//! caller's, so one text yields both this crate's [`THRESHOLDS`] table (which the proc-macro
//! reads for keys and literal kinds, and the runtime for what to check) and the runtime's
//! `Thresholds` struct (a typed field per entry). What a check means in numbers (which stat,
//! the limits `not_starved` implies, the failure wording) is the runtime's.

/// The list of thresholds, in attribute-key order. Invoke as `threshold_list!(then)`: it
/// expands to `then! { $( $(#[doc])* name: type => check; )* }`, with `type` one of `bool`,
/// `u32`, `u64`, `usize`, `f64`. The `check` expressions name this module's [`Check`],
/// [`Measure`] and [`Rate`] unqualified: only this crate's own table evaluates them, so a
/// caller that needs a check reads it from [`THRESHOLDS`] and ignores the tokens.
#[macro_export]
macro_rules! threshold_list {
    ($then:ident) => {
        $then! {
            /// Every worker did some work, spread and gap are under the default limits.
            not_starved: bool => Check::Starvation;
            /// Workers only ran on CPUs of their cgroup's cpuset.
            isolation: bool => Check::Isolation;
            /// Fail when the monitor saw a stall (VM monitor only).
            fail_on_stall: bool => Check::NotOnHost;
            /// Longest wall-clock gap between two checkpoints of one worker, ms.
            max_gap_ms: u64 => Check::WorstAtMost(Measure::GapMs);
            /// Deepest sched_ext local DSQ (VM monitor only).
            max_local_dsq_depth: u32 => Check::NotOnHost;
            /// Consecutive monitor samples needed before a monitor threshold fails (VM monitor
            /// only).
            sustained_samples: usize => Check::Modifier;
            /// Largest allowed p99 wake latency of any cgroup, ns.
            max_p99_wake_latency_ns: u64 => Check::WorstAtMost(Measure::P99WakeLatencyNs);
            /// Largest allowed max−min off-CPU percentage within a cgroup.
            max_spread_pct: f64 => Check::WorstAtMost(Measure::SpreadPct);
            /// max/min runqueue length across CPUs (VM monitor only).
            max_imbalance_ratio: f64 => Check::NotOnHost;
            /// Largest allowed coefficient of variation of per-worker iteration rates in a
            /// cgroup.
            max_throughput_cv: f64 => Check::EveryCgroupThroughputCvAtMost;
            /// Smallest allowed per-worker work rate, iterations per CPU-second.
            min_work_rate: f64 => Check::EveryWorkerAtLeast(Rate::WorkUnitsPerCpuSecond);
            /// sched_ext fallback dispatches per second (VM monitor only).
            max_fallback_rate: f64 => Check::NotOnHost;
            /// sched_ext keep-last dispatches per second (VM monitor only).
            max_keep_last_rate: f64 => Check::NotOnHost;
            /// Largest allowed wake-latency CV of any cgroup.
            max_wake_latency_cv: f64 => Check::WorstAtMost(Measure::WakeLatencyCv);
            /// Smallest allowed per-worker iteration rate, iterations per wall-clock second.
            min_iteration_rate: f64 => Check::EveryWorkerAtLeast(Rate::IterationsPerSecond);
            /// Largest allowed migrations per iteration of any cgroup.
            max_migration_ratio: f64 => Check::WorstAtMost(Measure::MigrationRatio);
            /// Smallest fraction of pages on the local node (NUMA; not measured on the host).
            min_page_locality: f64 => Check::NotOnHost;
            /// Largest cross-node migration ratio (NUMA; not measured on the host).
            max_cross_node_migration_ratio: f64 => Check::NotOnHost;
            /// Largest share of memory on a slow tier (NUMA; not measured on the host).
            max_slow_tier_ratio: f64 => Check::NotOnHost;
        }
    };
}

/// The Rust type a threshold's value has, which fixes the literal the attribute takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Bool,
    U32,
    U64,
    Usize,
    F64,
}

/// How the host backend checks a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `not_starved = true`: every worker of every step did some work, and the scenario's
    /// worst spread and gap stay below the limits the runtime sets for it.
    Starvation,
    /// `isolation = true`: every worker ran only on CPUs of its cgroup's cpuset.
    Isolation,
    /// The scenario's worst value of the measure must not exceed the threshold.
    WorstAtMost(Measure),
    /// Every worker's rate must reach the threshold.
    EveryWorkerAtLeast(Rate),
    /// In every cgroup, the coefficient of variation of its workers' iteration rates must not
    /// exceed the threshold.
    EveryCgroupThroughputCvAtMost,
    /// Tunes how other checks count and has no verdict of its own.
    Modifier,
    /// Needs data only ktstr's VM monitor, sched_ext or NUMA placement provides: the host
    /// backend records the threshold as not evaluated instead of passing it.
    NotOnHost,
}

/// A scenario-wide worst value a threshold bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    GapMs,
    P99WakeLatencyNs,
    SpreadPct,
    WakeLatencyCv,
    MigrationRatio,
}

/// A per-worker rate a threshold bounds from below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Iterations per wall-clock second.
    IterationsPerSecond,
    /// Work units per CPU-second.
    WorkUnitsPerCpuSecond,
}

/// One entry of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub name: &'static str,
    pub kind: ValueKind,
    pub check: Check,
}

macro_rules! kind_of {
    (bool) => {
        ValueKind::Bool
    };
    (u32) => {
        ValueKind::U32
    };
    (u64) => {
        ValueKind::U64
    };
    (usize) => {
        ValueKind::Usize
    };
    (f64) => {
        ValueKind::F64
    };
}

macro_rules! table {
    ($($(#[$doc:meta])* $name:ident: $ty:ident => $check:expr;)*) => {
        /// Every threshold of [`threshold_list!`](crate::threshold_list), in its order.
        pub const THRESHOLDS: &[Threshold] =
            &[$(Threshold { name: stringify!($name), kind: kind_of!($ty), check: $check }),*];
    };
}

crate::threshold_list!(table);

/// The entry called `name`.
pub fn find(name: &str) -> Option<&'static Threshold> {
    THRESHOLDS.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for (i, t) in THRESHOLDS.iter().enumerate() {
            assert!(!THRESHOLDS[..i].iter().any(|u| u.name == t.name), "duplicate {}", t.name);
            assert_eq!(find(t.name), Some(t));
        }
        assert_eq!(find("max_spread"), None);
    }

    #[test]
    fn kinds_and_checks_come_from_the_list() {
        let gap = find("max_gap_ms").unwrap();
        assert_eq!((gap.kind, gap.check), (ValueKind::U64, Check::WorstAtMost(Measure::GapMs)));
        assert_eq!(find("max_local_dsq_depth").unwrap().kind, ValueKind::U32);
        assert_eq!(find("sustained_samples").unwrap().kind, ValueKind::Usize);
        assert_eq!(find("not_starved").unwrap().kind, ValueKind::Bool);
        assert_eq!(find("max_slow_tier_ratio").unwrap().check, Check::NotOnHost);
        let floats = THRESHOLDS.iter().filter(|t| t.kind == ValueKind::F64).count();
        assert_eq!((THRESHOLDS.len(), floats), (19, 12));
    }
}
