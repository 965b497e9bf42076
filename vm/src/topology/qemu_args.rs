//! Maps a [`Topology`] and a memory size to QEMU's machine type, `-smp` and `-numa` arguments.
//!
//! QEMU's x86 CPU models report the L3 cache as shared by all cores of a die, so with one die
//! per socket an LLC is a socket: `l` LLCs become `l` sockets of `c` cores of `t` threads, and
//! each NUMA node owns `l/n` consecutive sockets plus an equal share of the memory.
//!
//! `microvm` boots fastest but ignores `-numa`, so a topology with more than one node needs the
//! `pc` machine. This module only builds arguments; it does not know where QEMU is or how it runs.

use super::{Topology, llcs_per_node};

/// The QEMU machine type a topology needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// No PCI, no ACPI NUMA tables: fastest boot, one NUMA node only.
    Microvm,
    /// Legacy PC with qboot firmware: slower, but honours `-numa`.
    Pc,
}

impl Machine {
    pub fn for_topology(topology: &Topology) -> Machine {
        if topology.numa_nodes > 1 { Machine::Pc } else { Machine::Microvm }
    }
}

/// `-m`, `-smp` and (for several nodes) the memory backends and `-numa` arguments.
pub fn topology_args(topology: &Topology, memory_mb: u32) -> Vec<String> {
    let mut args = vec![
        "-m".to_string(),
        format!("{memory_mb}M"),
        "-smp".to_string(),
        format!(
            "cpus={},sockets={},dies=1,cores={},threads={}",
            topology.total_cpus(),
            topology.llcs,
            topology.cores_per_llc,
            topology.threads_per_core
        ),
    ];
    if topology.numa_nodes == 1 {
        return args;
    }
    for (node, mb) in node_memory_mb(topology.numa_nodes, memory_mb).into_iter().enumerate() {
        args.push("-object".to_string());
        args.push(format!("memory-backend-ram,id=mem{node},size={mb}M"));
        args.push("-numa".to_string());
        args.push(format!("node,nodeid={node},memdev=mem{node}"));
    }
    for socket in 0..topology.llcs {
        args.push("-numa".to_string());
        args.push(format!("cpu,node-id={},socket-id={socket}", socket / llcs_per_node(topology)));
    }
    args
}

/// Splits `memory_mb` over `nodes`: equal even-sized shares, the remainder to the last node, so
/// the shares add up to exactly what `-m` says (QEMU refuses anything else).
fn node_memory_mb(nodes: u32, memory_mb: u32) -> Vec<u32> {
    let share = (memory_mb / nodes) & !1;
    let mut shares = vec![share; nodes as usize];
    if let Some(last) = shares.last_mut() {
        *last = memory_mb - share * (nodes - 1);
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(s: &str) -> Topology {
        s.parse().unwrap()
    }

    #[test]
    fn single_node_uses_microvm_and_smp_only() {
        let t = topo("1n1l2c1t");
        assert_eq!(Machine::for_topology(&t), Machine::Microvm);
        assert_eq!(
            topology_args(&t, 512),
            ["-m", "512M", "-smp", "cpus=2,sockets=1,dies=1,cores=2,threads=1"]
        );
    }

    #[test]
    fn llcs_become_sockets_and_sockets_are_assigned_to_nodes() {
        let t = topo("2n4l2c2t");
        assert_eq!(Machine::for_topology(&t), Machine::Pc);
        let args = topology_args(&t, 1024);
        assert_eq!(
            args,
            [
                "-m",
                "1024M",
                "-smp",
                "cpus=16,sockets=4,dies=1,cores=2,threads=2",
                "-object",
                "memory-backend-ram,id=mem0,size=512M",
                "-numa",
                "node,nodeid=0,memdev=mem0",
                "-object",
                "memory-backend-ram,id=mem1,size=512M",
                "-numa",
                "node,nodeid=1,memdev=mem1",
                "-numa",
                "cpu,node-id=0,socket-id=0",
                "-numa",
                "cpu,node-id=0,socket-id=1",
                "-numa",
                "cpu,node-id=1,socket-id=2",
                "-numa",
                "cpu,node-id=1,socket-id=3",
            ]
        );
    }

    #[test]
    fn memory_shares_add_up_to_the_total() {
        assert_eq!(node_memory_mb(3, 1000), [332, 332, 336]);
        assert_eq!(node_memory_mb(2, 513), [256, 257]);
        for (nodes, mb) in [(1, 256), (2, 777), (4, 1024), (3, 3001)] {
            assert_eq!(node_memory_mb(nodes, mb).iter().sum::<u32>(), mb);
        }
    }
}
