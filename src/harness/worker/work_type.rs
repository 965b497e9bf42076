//! The work types (harness-reference §3.1): what a worker does, what each is called, its
//! default parameters and how many workers make one group.
//!
//! The names live in one table, `named_work_types!`'s single invocation: the variant name
//! is the work type's name (the sidecar's `work_type`), and parsing ([`WorkType::from_name`]),
//! display ([`WorkType::name`]) and the list of valid names ([`IMPLEMENTED`], quoted by
//! [`WorkTypeError`]) all derive from it. What each work type does is [`super::loops`]'s.

use std::time::Duration;

use super::sync::Stop;
use crate::harness::measure::Meter;

/// A work type: what each worker does in its loop.
#[derive(Debug, Clone, Copy)]
pub enum WorkType {
    /// Pure computation.
    CpuSpin,
    /// `sched_yield` every iteration (latency = the yield call).
    YieldHeavy,
    /// 1024 spin units then a yield.
    Mixed,
    /// 64 KiB write + `fdatasync` to an unlinked temp file, then a 100 µs sleep.
    IoSync,
    /// Spin for `burst_ms`, sleep `sleep_ms`.
    Bursty { burst_ms: u64, sleep_ms: u64 },
    /// Pairs ping-pong one byte over pipes, spinning `burst_iters` units between messages.
    PipeIo { burst_iters: u64 },
    /// Pairs ping-pong through a shared futex word, spinning `spin_iters` units per turn.
    FutexPingPong { spin_iters: u64 },
    /// Stride through a `size_kb` buffer.
    CachePressure { size_kb: u64, stride: u64 },
    /// CachePressure plus a yield per pass.
    CacheYield { size_kb: u64, stride: u64 },
    /// Pairs: a cache pass between pipe messages.
    CachePipe { size_kb: u64, burst_iters: u64 },
    /// Fork a child that exits at once, wait for it (latency = the wait).
    ForkExit,
    /// Cycle the nice value through −20..=19, spinning between changes.
    NiceSweep,
    /// Pin to a random allowed CPU, then spin `spin_iters` units.
    AffinityChurn { spin_iters: u64 },
    /// Cycle SCHED_OTHER/BATCH/IDLE, spinning `spin_iters` units between changes.
    PolicyChurn { spin_iters: u64 },
    /// Touch `touches_per_cycle` random pages of a `region_kb` mapping, drop the pages, spin.
    PageFaultChurn { region_kb: u64, touches_per_cycle: u64, spin_iters: u64 },
    /// Groups of one messenger and `fan_out` receivers: the messenger spins `spin_iters`
    /// units, wakes every receiver through one shared futex word and waits until all have
    /// spun `spin_iters` units in turn. Latency = the messenger's wake stamp to a receiver
    /// running (and the last receiver's acknowledgement to the messenger running).
    FutexFanOut { fan_out: u64, spin_iters: u64 },
    /// Groups of one dispatcher and `fan_out` workers: the dispatcher sleeps `sleep_usec`,
    /// then wakes every worker, which runs `operations` matrix multiplies over about
    /// `cache_footprint_kb` of matrices; the dispatcher waits for all before the next round.
    /// Latency as for [`WorkType::FutexFanOut`].
    FanOutCompute { fan_out: u64, cache_footprint_kb: u64, operations: u64, sleep_usec: u64 },
    /// Run `first`, then each of `rest`, then start over, until stopped.
    Sequence { first: Phase, rest: &'static [Phase] },
    /// Groups of `contenders` processes sharing one futex mutex: take it, spin `hold_iters`
    /// units inside, release it, spin `work_iters` units outside. Latency = the holder's
    /// release to a waiter that slept running with the lock.
    MutexContention { contenders: u64, hold_iters: u64, work_iters: u64 },
    /// A caller-supplied loop. It must return once `stop.is_set()` and count its work
    /// through the [`Meter`]. It runs in a forked child of a process that may have other
    /// threads, so it is held to what is safe there (see [`super`]): system calls, atomics and
    /// memory that already exists; no allocation, no locks, no environment, no printing.
    Custom { name: &'static str, run: fn(&mut Meter, &Stop) },
}

/// One phase of a [`WorkType::Sequence`], each lasting its duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Spin.
    Spin(Duration),
    /// One sleep of the whole duration (latency = the sleep).
    Sleep(Duration),
    /// `sched_yield` in a loop (latency = each yield).
    Yield(Duration),
    /// 64 KiB write + `fdatasync` in a loop (latency = each `fdatasync`).
    Io(Duration),
}

/// Defines the name table: `Variant => default` in ktstr's order, `default` being the work
/// type with ktstr's default parameters or `None` for one that can only be built in code.
/// [`WorkType::name`]'s match is exhaustive, so a variant missing here does not compile.
macro_rules! named_work_types {
    ($($variant:ident => $default:expr,)*) => {
        /// Every named work type, in ktstr's order (`Custom` has no name of its own).
        pub const IMPLEMENTED: &[&str] = &[$(stringify!($variant)),*];

        /// Every named work type with its defaults; `None`: it has none.
        const DEFAULTS: &[(&str, Option<WorkType>)] = &[$((stringify!($variant), $default)),*];

        impl WorkType {
            /// The PascalCase name ktstr uses (the sidecar's `work_type`).
            pub fn name(&self) -> &'static str {
                match self {
                    $(WorkType::$variant { .. } => stringify!($variant),)*
                    WorkType::Custom { name, .. } => name,
                }
            }
        }
    };
}

named_work_types! {
    CpuSpin => Some(WorkType::CpuSpin),
    YieldHeavy => Some(WorkType::YieldHeavy),
    Mixed => Some(WorkType::Mixed),
    IoSync => Some(WorkType::IoSync),
    Bursty => Some(WorkType::Bursty { burst_ms: 50, sleep_ms: 100 }),
    PipeIo => Some(WorkType::PipeIo { burst_iters: 1024 }),
    FutexPingPong => Some(WorkType::FutexPingPong { spin_iters: 1024 }),
    CachePressure => Some(WorkType::CachePressure { size_kb: 32, stride: 64 }),
    CacheYield => Some(WorkType::CacheYield { size_kb: 32, stride: 64 }),
    CachePipe => Some(WorkType::CachePipe { size_kb: 32, burst_iters: 1024 }),
    FutexFanOut => Some(WorkType::FutexFanOut { fan_out: 4, spin_iters: 1024 }),
    FanOutCompute => Some(WorkType::FanOutCompute {
        fan_out: 4,
        cache_footprint_kb: 256,
        operations: 5,
        sleep_usec: 100,
    }),
    Sequence => None,
    ForkExit => Some(WorkType::ForkExit),
    NiceSweep => Some(WorkType::NiceSweep),
    AffinityChurn => Some(WorkType::AffinityChurn { spin_iters: 1024 }),
    PolicyChurn => Some(WorkType::PolicyChurn { spin_iters: 1024 }),
    PageFaultChurn => Some(WorkType::PageFaultChurn {
        region_kb: 4096,
        touches_per_cycle: 256,
        spin_iters: 64,
    }),
    MutexContention => Some(WorkType::MutexContention {
        contenders: 4,
        hold_iters: 256,
        work_iters: 1024,
    }),
}

/// Why a work type name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkTypeError {
    #[error("unknown work type {name:?}; valid work types: {}", IMPLEMENTED.join(", "))]
    Unknown { name: String },
    #[error(
        "work type {0} has no default parameters; build it in the test body, e.g. \
         WorkType::Sequence {{ first, rest }}"
    )]
    NeedsParameters(String),
}

impl WorkType {
    /// The work type with ktstr's default parameters.
    pub fn from_name(name: &str) -> Result<WorkType, WorkTypeError> {
        match DEFAULTS.iter().find(|(n, _)| *n == name) {
            Some((_, Some(wt))) => Ok(*wt),
            Some((n, None)) => Err(WorkTypeError::NeedsParameters(n.to_string())),
            None => Err(WorkTypeError::Unknown { name: name.to_string() }),
        }
    }

    /// Workers per group: paired types need an even worker count, fan-out types a multiple
    /// of `fan_out + 1`, MutexContention a multiple of `contenders`.
    pub fn group_size(&self) -> usize {
        match *self {
            WorkType::PipeIo { .. }
            | WorkType::FutexPingPong { .. }
            | WorkType::CachePipe { .. } => 2,
            WorkType::FutexFanOut { fan_out, .. } | WorkType::FanOutCompute { fan_out, .. } => {
                receivers(fan_out) as usize + 1
            }
            WorkType::MutexContention { contenders, .. } => contenders.clamp(1, 1024) as usize,
            _ => 1,
        }
    }

    /// Why this host cannot run the work type, if it cannot.
    pub fn host_support(&self) -> Result<(), String> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        match self {
            WorkType::NiceSweep if !root => Err("NiceSweep sets negative nice values, which \
                needs CAP_SYS_NICE; run as root"
                .to_string()),
            _ => Ok(()),
        }
    }
}

/// Fan-out receivers per messenger (at least one, so a round always has someone to wake).
pub(super) fn receivers(fan_out: u64) -> u32 {
    fan_out.clamp(1, 1024) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_errors_list_valid_ones() {
        for (n, default) in DEFAULTS {
            match default {
                Some(_) => assert_eq!(WorkType::from_name(n).unwrap().name(), *n),
                None => assert!(matches!(
                    WorkType::from_name(n),
                    Err(WorkTypeError::NeedsParameters(_))
                )),
            }
        }
        assert_eq!(IMPLEMENTED.len(), DEFAULTS.len());
        let e = WorkType::from_name("Spinny").unwrap_err().to_string();
        assert!(e.contains("unknown work type \"Spinny\"") && e.contains("CpuSpin, YieldHeavy"));
        assert!(e.contains("MutexContention"), "{e}");
        assert!(matches!(WorkType::from_name("Sequence"), Err(WorkTypeError::NeedsParameters(_))));
        let seq = WorkType::Sequence { first: Phase::Spin(Duration::ZERO), rest: &[] };
        assert_eq!(seq.name(), "Sequence");
        assert_eq!(WorkType::from_name("FutexFanOut").unwrap().group_size(), 5);
        assert_eq!(WorkType::from_name("MutexContention").unwrap().group_size(), 4);
    }
}
