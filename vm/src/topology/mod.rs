//! What a declared guest topology means for a VM: the host-size limit it must respect, the
//! derived counts QEMU's arguments need, and how it travels in JSON.
//!
//! The notation `{n}n{l}l{c}c{t}t` and its rules are `ktstr-decl`'s [`Topology`], the one
//! topology vocabulary of the project; this module adds only what booting a VM needs. How a
//! topology becomes QEMU arguments lives in [`qemu_args`]; how the guest reads it back from
//! sysfs lives in [`sysfs`].

pub mod qemu_args;
pub mod sysfs;

pub use ktstr_decl::{Topology, TopologyError};

/// At most this many vCPUs per host CPU: beyond that TCG guests take minutes to boot and the
/// measurements mean nothing.
pub const MAX_VCPUS_PER_HOST_CPU: u32 = 8;

/// Why a topology and memory size cannot be emulated on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
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

/// LLCs on each NUMA node (the notation guarantees they divide evenly).
pub fn llcs_per_node(t: &Topology) -> u32 {
    t.llcs / t.numa_nodes
}

/// Logical CPUs sharing one LLC.
pub fn cpus_per_llc(t: &Topology) -> u32 {
    t.cores_per_llc * t.threads_per_core
}

/// Refuses a topology or memory size this host cannot sensibly emulate.
pub fn check_host_limits(t: &Topology, memory_mb: u32) -> Result<(), LimitError> {
    check_limits(t, memory_mb, host_cpus(), host_memory_mb())
}

fn check_limits(
    t: &Topology,
    memory_mb: u32,
    host_cpus: u32,
    host_mb: u64,
) -> Result<(), LimitError> {
    let limit = host_cpus.max(1) * MAX_VCPUS_PER_HOST_CPU;
    if t.total_cpus() > limit {
        return Err(LimitError::TooManyVcpus {
            topology: *t,
            vcpus: t.total_cpus(),
            host_cpus,
            limit,
        });
    }
    if u64::from(memory_mb) * 2 > host_mb {
        return Err(LimitError::TooMuchMemory { memory_mb, host_mb });
    }
    if memory_mb < 64 * t.numa_nodes {
        return Err(LimitError::MemoryTooSmall { memory_mb, numa_nodes: t.numa_nodes });
    }
    Ok(())
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

/// Serde for a [`Topology`] field as its notation string (`"1n2l4c2t"`), checked on the way in:
/// `#[serde(with = "crate::topology::notation")]`.
pub mod notation {
    use super::Topology;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Topology, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Topology, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_counts() {
        let t: Topology = "2n4l3c2t".parse().unwrap();
        assert_eq!(t.total_cpus(), 24);
        assert_eq!(llcs_per_node(&t), 2);
        assert_eq!(cpus_per_llc(&t), 6);
    }

    #[test]
    fn host_limits_count_vcpus_and_memory() {
        let t: Topology = "1n2l4c2t".parse().unwrap();
        assert!(check_limits(&t, 512, 2, 24_000).is_ok());
        let err = check_limits(&t, 512, 1, 24_000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "topology 1n2l4c2t asks for 16 vCPUs; this host has 1 CPUs and allows at most 8 (8 per host CPU)"
        );
        assert!(matches!(
            check_limits(&t, 16_000, 2, 24_000),
            Err(LimitError::TooMuchMemory { .. })
        ));
        let numa: Topology = "4n4l1c1t".parse().unwrap();
        assert!(matches!(
            check_limits(&numa, 200, 2, 24_000),
            Err(LimitError::MemoryTooSmall { .. })
        ));
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Holder {
        #[serde(with = "notation")]
        topology: Topology,
    }

    #[test]
    fn serde_uses_the_notation() {
        let h = Holder { topology: "1n1l2c1t".parse().unwrap() };
        assert_eq!(serde_json::to_string(&h).unwrap(), r#"{"topology":"1n1l2c1t"}"#);
        assert_eq!(serde_json::from_str::<Holder>(r#"{"topology":"1n1l2c1t"}"#).unwrap(), h);
        assert!(serde_json::from_str::<Holder>(r#"{"topology":"2n3l1c1t"}"#).is_err());
    }
}
