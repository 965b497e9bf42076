//! The guest CPU topology a test declares: `{n}n{l}l{c}c{t}t` (NUMA nodes, LLCs in total,
//! cores per LLC, threads per core), its validation, and the host-size limit.
//!
//! This module owns the notation and its rules. How a topology becomes QEMU arguments lives in
//! [`qemu_args`]; how the guest reads it back from sysfs lives in [`sysfs`].

pub mod qemu_args;
pub mod sysfs;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// At most this many vCPUs per host CPU: beyond that TCG guests take minutes to boot and the
/// measurements mean nothing.
pub const MAX_VCPUS_PER_HOST_CPU: u32 = 8;

/// A guest topology. LLCs are spread evenly over NUMA nodes, so `llcs % numa_nodes == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Topology {
    pub numa_nodes: u32,
    pub llcs: u32,
    pub cores_per_llc: u32,
    pub threads_per_core: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("topology '{0}' is not of the form {{n}}n{{l}}l{{c}}c{{t}}t, e.g. 1n2l4c2t")]
    Syntax(String),
    #[error("topology '{0}': every count must be at least 1")]
    Zero(String),
    #[error("topology '{0}': {1} LLCs cannot be split evenly over {2} NUMA nodes")]
    UnevenLlcs(String, u32, u32),
    #[error(
        "topology {topology} asks for {vcpus} vCPUs; this host has {host_cpus} CPUs and allows at most {limit} ({MAX_VCPUS_PER_HOST_CPU} per host CPU)"
    )]
    TooManyVcpus { topology: Topology, vcpus: u32, host_cpus: u32, limit: u32 },
    #[error(
        "guest memory {memory_mb} MiB is more than half of this host's {host_mb} MiB; ask for less with memory_mb"
    )]
    TooMuchMemory { memory_mb: u32, host_mb: u64 },
    #[error(
        "guest memory {memory_mb} MiB cannot be split over {numa_nodes} NUMA nodes (at least 64 MiB each)"
    )]
    MemoryTooSmall { memory_mb: u32, numa_nodes: u32 },
}

impl Topology {
    pub fn new(
        numa_nodes: u32,
        llcs: u32,
        cores_per_llc: u32,
        threads_per_core: u32,
    ) -> Result<Self, TopologyError> {
        let t = Topology { numa_nodes, llcs, cores_per_llc, threads_per_core };
        if [numa_nodes, llcs, cores_per_llc, threads_per_core].contains(&0) {
            return Err(TopologyError::Zero(t.to_string()));
        }
        if !llcs.is_multiple_of(numa_nodes) {
            return Err(TopologyError::UnevenLlcs(t.to_string(), llcs, numa_nodes));
        }
        Ok(t)
    }

    pub fn total_cpus(&self) -> u32 {
        self.llcs * self.cores_per_llc * self.threads_per_core
    }

    pub fn llcs_per_node(&self) -> u32 {
        self.llcs / self.numa_nodes
    }

    pub fn cpus_per_llc(&self) -> u32 {
        self.cores_per_llc * self.threads_per_core
    }

    /// Refuses a topology or memory size this host cannot sensibly emulate.
    pub fn check_host_limits(&self, memory_mb: u32) -> Result<(), TopologyError> {
        self.check_limits(memory_mb, host_cpus(), host_memory_mb())
    }

    fn check_limits(
        &self,
        memory_mb: u32,
        host_cpus: u32,
        host_mb: u64,
    ) -> Result<(), TopologyError> {
        let limit = host_cpus.max(1) * MAX_VCPUS_PER_HOST_CPU;
        if self.total_cpus() > limit {
            return Err(TopologyError::TooManyVcpus {
                topology: *self,
                vcpus: self.total_cpus(),
                host_cpus,
                limit,
            });
        }
        if u64::from(memory_mb) * 2 > host_mb {
            return Err(TopologyError::TooMuchMemory { memory_mb, host_mb });
        }
        if memory_mb < 64 * self.numa_nodes {
            return Err(TopologyError::MemoryTooSmall { memory_mb, numa_nodes: self.numa_nodes });
        }
        Ok(())
    }
}

fn host_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn host_memory_mb() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(u64::MAX, |kb| kb / 1024)
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}n{}l{}c{}t",
            self.numa_nodes, self.llcs, self.cores_per_llc, self.threads_per_core
        )
    }
}

impl FromStr for Topology {
    type Err = TopologyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || TopologyError::Syntax(s.to_string());
        let mut rest = s;
        let mut counts = [0u32; 4];
        for (count, unit) in counts.iter_mut().zip(['n', 'l', 'c', 't']) {
            let end = rest.find(unit).ok_or_else(syntax)?;
            let digits = &rest[..end];
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            *count = digits.parse().map_err(|_| syntax())?;
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            return Err(syntax());
        }
        Topology::new(counts[0], counts[1], counts[2], counts[3])
    }
}

impl TryFrom<String> for Topology {
    type Error = TopologyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Topology> for String {
    fn from(t: Topology) -> String {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_round_trip() {
        let t: Topology = "2n4l3c2t".parse().unwrap();
        assert_eq!(t, Topology { numa_nodes: 2, llcs: 4, cores_per_llc: 3, threads_per_core: 2 });
        assert_eq!(t.to_string(), "2n4l3c2t");
        assert_eq!(t.total_cpus(), 24);
        assert_eq!(t.llcs_per_node(), 2);
        assert_eq!(t.cpus_per_llc(), 6);
    }

    #[test]
    fn rejects_bad_notation() {
        for bad in ["", "1n1l1c", "1n1l1c1t1", "n1l1c1t", "1l1n1c1t", "1n1l+1c1t", "1n 1l1c1t", "x"]
        {
            assert!(matches!(bad.parse::<Topology>(), Err(TopologyError::Syntax(_))), "{bad}");
        }
        assert!(matches!("1n0l1c1t".parse::<Topology>(), Err(TopologyError::Zero(_))));
        let err = "2n3l1c1t".parse::<Topology>().unwrap_err();
        assert_eq!(err, TopologyError::UnevenLlcs("2n3l1c1t".into(), 3, 2));
        assert!(err.to_string().contains("3 LLCs cannot be split evenly over 2 NUMA nodes"));
    }

    #[test]
    fn host_limits_count_vcpus_and_memory() {
        let t: Topology = "1n2l4c2t".parse().unwrap();
        assert!(t.check_limits(512, 2, 24_000).is_ok());
        let err = t.check_limits(512, 1, 24_000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "topology 1n2l4c2t asks for 16 vCPUs; this host has 1 CPUs and allows at most 8 (8 per host CPU)"
        );
        assert!(matches!(
            t.check_limits(16_000, 2, 24_000),
            Err(TopologyError::TooMuchMemory { .. })
        ));
        let numa: Topology = "4n4l1c1t".parse().unwrap();
        assert!(matches!(
            numa.check_limits(200, 2, 24_000),
            Err(TopologyError::MemoryTooSmall { .. })
        ));
    }

    #[test]
    fn serde_uses_the_notation() {
        let t: Topology = "1n1l2c1t".parse().unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"1n1l2c1t\"");
        assert_eq!(serde_json::from_str::<Topology>("\"1n1l2c1t\"").unwrap(), t);
        assert!(serde_json::from_str::<Topology>("\"2n3l1c1t\"").is_err());
    }
}
