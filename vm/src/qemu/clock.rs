//! How a TCG guest's clocks advance: with the instructions it executes (QEMU's `-icount`), or
//! with the host's wall clock.
//!
//! Under TCG a vCPU is a host thread. With the host's clock, every moment the host takes that
//! thread away (another process, another test, a build) passes in the guest too: a task the
//! guest meant to run next waits through it, and the guest measures that wait as scheduling
//! latency. On a busy 2-core host this swamped what a scheduler change does (a 5 ms against a
//! 200 ms bpfland slice: the woken task's p99 latency overlapped between the two at load 4).
//! Counting instructions makes guest time advance only while the guest executes, so the guest
//! measures its own scheduler and the same run gives the same figures at any host load (the
//! same pair measured 9.3/9.5 ms against 52 ms idle and at load 4). A busy host then makes a
//! run take longer on the wall clock, not measure differently.
//!
//! The price: icount needs single-threaded TCG, so a guest with N vCPUs runs them in turns on
//! one host thread (QEMU before 11 does that anyway; see [`super::accel_args`]). Idle time is
//! skipped (`sleep=off`), so a guest waiting on a timer costs no wall time. KVM guests run on
//! real CPUs and ignore this setting. Not here: choosing the accelerator ([`super::accel`]).

use std::str::FromStr;

/// Environment variable choosing the TCG clock when the caller leaves it to the environment.
pub const TCG_CLOCK_ENV: &str = "KTSTR_TCG_CLOCK";

/// 2^1 ns of guest time per instruction: a 500 MIPS virtual CPU, near what TCG executes on the
/// small x86-64 hosts measured, so a guest second takes about a second on an idle host.
const ICOUNT_SHIFT: u32 = 1;

/// What advances a TCG guest's clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TcgClock {
    /// The guest's own executed instructions (`-icount`): measurements independent of the
    /// host's load.
    #[default]
    Instructions,
    /// The host's wall clock: vCPUs run in parallel on QEMU 11 and later, and every pause the
    /// host imposes shows up in the guest's measurements.
    Host,
}

impl FromStr for TcgClock {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "instructions" => Ok(TcgClock::Instructions),
            "host" => Ok(TcgClock::Host),
            other => Err(format!("TCG clock '{other}' is not one of instructions, host")),
        }
    }
}

impl std::fmt::Display for TcgClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TcgClock::Instructions => "instructions",
            TcgClock::Host => "host",
        })
    }
}

impl TcgClock {
    /// `$KTSTR_TCG_CLOCK` if set (and valid), else [`TcgClock::Instructions`].
    pub fn from_env() -> Result<TcgClock, String> {
        match std::env::var(TCG_CLOCK_ENV) {
            Ok(v) if !v.is_empty() => v.parse().map_err(|e| format!("{TCG_CLOCK_ENV}: {e}")),
            _ => Ok(TcgClock::default()),
        }
    }

    /// The QEMU options this clock adds to a TCG launch.
    pub(super) fn qemu_args(self) -> Vec<String> {
        match self {
            TcgClock::Instructions => {
                vec!["-icount".into(), format!("shift={ICOUNT_SHIFT},sleep=off")]
            }
            TcgClock::Host => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_a_typo_says_what_is_accepted() {
        for clock in [TcgClock::Instructions, TcgClock::Host] {
            assert_eq!(clock.to_string().parse::<TcgClock>(), Ok(clock));
        }
        assert_eq!(
            "wall".parse::<TcgClock>(),
            Err("TCG clock 'wall' is not one of instructions, host".to_string())
        );
        assert_eq!(TcgClock::default(), TcgClock::Instructions);
    }

    #[test]
    fn only_the_instruction_clock_adds_icount() {
        assert_eq!(TcgClock::Instructions.qemu_args(), ["-icount", "shift=1,sleep=off"]);
        assert!(TcgClock::Host.qemu_args().is_empty());
    }
}
