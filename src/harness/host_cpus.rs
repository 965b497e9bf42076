//! Which host CPUs a host-backend test runs on: the host's shape read from sysfs
//! ([`HostShape`]) and the rule that picks CPUs for a declared topology ([`HostShape::place`]).
//!
//! A test that declares fewer CPUs than the host has runs confined to that many (the runner
//! puts its cgroups in a cpuset of them, see [`super::cgroup::CgroupTree::create_within`]).
//! The choice follows the declared shape as far as the host allows, level by level — NUMA
//! nodes, then LLCs in each node, then cores in each LLC, then threads in each core: where the
//! host has enough groups that can hold the declared sub-shape, each declared group gets its
//! own host group (preferring groups that hold the whole sub-shape, then the largest, then
//! the lowest id); where it has too few, the CPUs are packed into the largest groups there
//! are. A placement whose CPUs do not form the declared topology says so
//! ([`Placement::mismatch`]), which the sidecar records: only a VM can give a test a topology
//! the host does not have.
//!
//! What it does not own: whether a test may run at all (too few CPUs is the runner's skip),
//! and applying the choice (cgroups).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::cgroup::cpu_list;
use super::entry::Topology;
use crate::provenance::host::parse_cpu_list;

/// One host CPU and the groups it belongs to. `llc` and `core` are ids shared by the CPUs of
/// one LLC / one core (the lowest CPU of the group when read from sysfs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCpu {
    pub cpu: usize,
    pub node: usize,
    pub llc: usize,
    pub core: usize,
}

impl HostCpu {
    /// The group this CPU belongs to at `level` (0 node, 1 LLC, 2 core, 3 the CPU itself).
    fn key(&self, level: usize) -> usize {
        [self.node, self.llc, self.core, self.cpu][level]
    }
}

/// The CPUs a test may use on this host, with their NUMA node, LLC and core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostShape {
    cpus: Vec<HostCpu>,
}

/// Where a test runs: the CPUs chosen for its declared topology and what they really form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The chosen CPUs, ascending.
    pub cpus: Vec<usize>,
    /// The topology those CPUs have (for an uneven set, the nearest `{n}n{l}l{c}c{t}t`).
    pub ran: Topology,
    /// Whether the CPUs are fewer than the host's, so the run must be confined to them.
    pub confined: bool,
    /// Why the CPUs do not form the declared topology, when they do not.
    pub mismatch: Option<String>,
}

impl HostShape {
    /// A shape from explicit CPUs (any order).
    pub fn new(mut cpus: Vec<HostCpu>) -> HostShape {
        cpus.sort_by_key(|c| c.cpu);
        cpus.dedup_by_key(|c| c.cpu);
        HostShape { cpus }
    }

    /// This machine: its online CPUs that this process may use (all online CPUs if the two do
    /// not intersect), with nodes, LLCs (`cache/index3`) and cores (`thread_siblings_list`)
    /// from sysfs. Anything sysfs does not say counts as one node, one LLC, one thread a core.
    pub fn read() -> HostShape {
        let sys = Path::new("/sys/devices/system");
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        let list = |p: &Path| -> Option<Vec<usize>> {
            let v = parse_cpu_list(read(p)?.trim())?;
            Some(v.into_iter().map(|c| c as usize).collect())
        };
        let online = list(&sys.join("cpu/online")).filter(|v| !v.is_empty()).unwrap_or_else(|| {
            (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
        });
        let allowed = super::worker::allowed_cpus();
        let usable: Vec<usize> = online.iter().copied().filter(|c| allowed.contains(c)).collect();
        let cpus = if usable.is_empty() { online } else { usable };
        let mut node_of = BTreeMap::new();
        for e in std::fs::read_dir(sys.join("node")).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(node) = name.strip_prefix("node").and_then(|n| n.parse::<usize>().ok()) else {
                continue;
            };
            for cpu in list(&e.path().join("cpulist")).unwrap_or_default() {
                node_of.insert(cpu, node);
            }
        }
        let lowest = |cpu: usize, file: &str| {
            list(&sys.join(format!("cpu/cpu{cpu}/{file}")))
                .and_then(|v| v.into_iter().min())
                .unwrap_or(cpu)
        };
        HostShape::new(
            cpus.iter()
                .map(|&cpu| HostCpu {
                    cpu,
                    node: node_of.get(&cpu).copied().unwrap_or(0),
                    // Without an L3 to read, the whole machine counts as one LLC.
                    llc: if sys.join(format!("cpu/cpu{cpu}/cache/index3")).exists() {
                        lowest(cpu, "cache/index3/shared_cpu_list")
                    } else {
                        0
                    },
                    core: lowest(cpu, "topology/thread_siblings_list"),
                })
                .collect(),
        )
    }

    /// The CPU ids, ascending.
    pub fn cpu_ids(&self) -> Vec<usize> {
        self.cpus.iter().map(|c| c.cpu).collect()
    }

    /// The host's topology (for an uneven host, the nearest `{n}n{l}l{c}c{t}t`).
    pub fn topology(&self) -> Topology {
        Layout::of(&self.cpus).topology
    }

    /// The CPUs a test declaring `declared` runs on; see the [module docs](self) for the rule.
    pub fn place(&self, declared: Topology) -> Placement {
        let want = declared.total_cpus() as usize;
        let cpus: Vec<usize> = if want >= self.cpus.len() {
            self.cpu_ids()
        } else {
            let decl = Declared::of(declared);
            let root = Group::build(&self.cpus.iter().collect::<Vec<_>>(), 0, 0);
            let mut v = root.take(0, want, &decl);
            v.sort_unstable();
            v
        };
        let chosen: Vec<HostCpu> =
            self.cpus.iter().copied().filter(|c| cpus.contains(&c.cpu)).collect();
        let layout = Layout::of(&chosen);
        let mismatch = (layout.topology != declared || !layout.even).then(|| {
            format!(
                "declared {declared}, but this host ({}) gives CPUs {} laid out as {}",
                Layout::of(&self.cpus).describe(),
                cpu_list(&cpus),
                layout.describe()
            )
        });
        Placement { confined: cpus.len() < self.cpus.len(), cpus, ran: layout.topology, mismatch }
    }
}

/// The declared shape as group sizes and fan-outs per level (0 node, 1 LLC, 2 core, 3 CPU).
struct Declared {
    /// CPUs in one declared group of each level.
    size: [usize; 4],
    /// Groups of the next level down in one declared group of each level (the root has
    /// `numa_nodes` nodes: index 0 of `fan_root`).
    fan: [usize; 3],
}

impl Declared {
    fn of(t: Topology) -> Declared {
        let (n, l, c, th) = (
            t.numa_nodes.max(1) as usize,
            t.llcs.max(1) as usize,
            t.cores_per_llc.max(1) as usize,
            t.threads_per_core.max(1) as usize,
        );
        let per_node = l.div_ceil(n);
        Declared { size: [per_node * c * th, c * th, th, 1], fan: [per_node, c, th] }
    }
}

/// A host group at some level with its CPUs and the groups of the level below.
struct Group {
    id: usize,
    cpus: usize,
    kids: Vec<Group>,
    leaf: Option<usize>,
}

impl Group {
    /// The group holding `cpus`, whose children are grouped by `level`'s key.
    fn build(cpus: &[&HostCpu], id: usize, level: usize) -> Group {
        if level == 4 {
            return Group { id, cpus: 1, kids: Vec::new(), leaf: Some(cpus[0].cpu) };
        }
        let mut by: BTreeMap<usize, Vec<&HostCpu>> = BTreeMap::new();
        for c in cpus {
            by.entry(c.key(level)).or_default().push(c);
        }
        let kids = by.into_iter().map(|(k, v)| Group::build(&v, k, level + 1)).collect();
        Group { id, cpus: cpus.len(), kids, leaf: None }
    }

    /// Whether this group (of `level`) holds the whole declared sub-shape of that level.
    fn fits(&self, level: usize, d: &Declared) -> bool {
        level == 3 || self.kids.iter().filter(|k| k.fits(level + 1, d)).count() >= d.fan[level]
    }

    /// `need` CPUs from this group, whose children are of `kid_level`.
    fn take(&self, kid_level: usize, need: usize, d: &Declared) -> Vec<usize> {
        if let Some(cpu) = self.leaf {
            return vec![cpu];
        }
        let per = d.size[kid_level];
        let mut kids: Vec<&Group> = self.kids.iter().collect();
        kids.sort_by_key(|k| (!k.fits(kid_level, d), std::cmp::Reverse(k.cpus), k.id));
        let whole: Vec<&Group> = kids.iter().copied().filter(|k| k.cpus >= per).collect();
        // One host group per declared group where there are enough; else pack the largest.
        let (pool, quota) =
            if whole.len() >= need.div_ceil(per) { (whole, per) } else { (kids, usize::MAX) };
        let mut out = Vec::with_capacity(need);
        for k in pool {
            let n = (need - out.len()).min(quota).min(k.cpus);
            if n == 0 {
                break;
            }
            out.extend(k.take(kid_level + 1, n, d));
        }
        out
    }
}

/// What a set of CPUs forms.
struct Layout {
    topology: Topology,
    /// Every node has as many LLCs, every LLC as many cores, every core as many threads.
    even: bool,
    cores_per_llc: BTreeSet<usize>,
    threads_per_core: BTreeSet<usize>,
    llcs_per_node: BTreeSet<usize>,
}

impl Layout {
    fn of(cpus: &[HostCpu]) -> Layout {
        let mut llcs: BTreeMap<usize, BTreeSet<(usize, usize)>> = BTreeMap::new();
        let mut cores: BTreeMap<(usize, usize), BTreeSet<usize>> = BTreeMap::new();
        let mut threads: BTreeMap<(usize, usize, usize), usize> = BTreeMap::new();
        for c in cpus {
            llcs.entry(c.node).or_default().insert((c.node, c.llc));
            cores.entry((c.node, c.llc)).or_default().insert(c.core);
            *threads.entry((c.node, c.llc, c.core)).or_default() += 1;
        }
        let llcs_per_node: BTreeSet<usize> = llcs.values().map(BTreeSet::len).collect();
        let cores_per_llc: BTreeSet<usize> = cores.values().map(BTreeSet::len).collect();
        let threads_per_core: BTreeSet<usize> = threads.values().copied().collect();
        let (n, l, k) = (llcs.len().max(1), cores.len().max(1), threads.len().max(1));
        Layout {
            topology: Topology::new(
                n as u32,
                l as u32,
                (k / l).max(1) as u32,
                (cpus.len() / k).max(1) as u32,
            ),
            even: llcs_per_node.len() <= 1
                && cores_per_llc.len() <= 1
                && threads_per_core.len() <= 1,
            cores_per_llc,
            threads_per_core,
            llcs_per_node,
        }
    }

    /// `1n2l2c1t`, or for an uneven set what varies, e.g. `1n2l2c1t-like, uneven (cores per
    /// LLC 1/2)`.
    fn describe(&self) -> String {
        if self.even {
            return self.topology.to_string();
        }
        let join =
            |s: &BTreeSet<usize>| s.iter().map(usize::to_string).collect::<Vec<_>>().join("/");
        let varies: Vec<String> = [
            ("LLCs per node", &self.llcs_per_node),
            ("cores per LLC", &self.cores_per_llc),
            ("threads per core", &self.threads_per_core),
        ]
        .into_iter()
        .filter(|(_, s)| s.len() > 1)
        .map(|(what, s)| format!("{what} {}", join(s)))
        .collect();
        format!("{}-like, uneven ({})", self.topology, varies.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A regular host: `nodes` × `llcs_per_node` × `cores` × `threads`, CPUs numbered in that
    /// order.
    fn host(nodes: usize, llcs_per_node: usize, cores: usize, threads: usize) -> HostShape {
        let mut v = Vec::new();
        for n in 0..nodes {
            for l in 0..llcs_per_node {
                for c in 0..cores {
                    for t in 0..threads {
                        let cpu = ((n * llcs_per_node + l) * cores + c) * threads + t;
                        let llc = (n * llcs_per_node + l) * cores * threads;
                        let core = ((n * llcs_per_node + l) * cores + c) * threads;
                        v.push(HostCpu { cpu, node: n, llc, core });
                    }
                }
            }
        }
        HostShape::new(v)
    }

    fn topo(s: &str) -> Topology {
        s.parse().unwrap()
    }

    #[test]
    fn a_declared_shape_the_host_holds_is_given_exactly() {
        // 2 nodes × 2 LLCs × 4 cores × 2 threads = 32 CPUs.
        let h = host(2, 2, 4, 2);
        let p = h.place(topo("1n1l2c1t"));
        assert_eq!(p.cpus, [0, 2], "two cores of one LLC, one thread each");
        assert!(p.confined && p.mismatch.is_none(), "{p:?}");
        assert_eq!(h.place(topo("1n1l1c2t")).cpus, [0, 1], "both threads of one core");
        assert_eq!(h.place(topo("1n2l1c1t")).cpus, [0, 8], "one core in each of two LLCs");
        let p = h.place(topo("2n2l1c1t"));
        assert_eq!(p.cpus, [0, 16], "one LLC in each node");
        assert_eq!(p.ran, topo("2n2l1c1t"));
        let p = h.place(topo("2n4l2c1t"));
        assert_eq!(p.cpus, [0, 2, 8, 10, 16, 18, 24, 26]);
        assert!(p.mismatch.is_none(), "{p:?}");
    }

    #[test]
    fn the_whole_host_is_not_confined() {
        let h = host(1, 1, 2, 1);
        let p = h.place(topo("1n1l2c1t"));
        assert_eq!(p.cpus, [0, 1]);
        assert!(!p.confined && p.mismatch.is_none(), "{p:?}");
    }

    #[test]
    fn on_this_kind_of_host_one_cpu_is_one_cpu() {
        let h = host(1, 1, 2, 1);
        let p = h.place(topo("1n1l1c1t"));
        assert_eq!(p.cpus, [0]);
        assert!(p.confined && p.mismatch.is_none(), "{p:?}");
        assert_eq!(p.ran, topo("1n1l1c1t"));
    }

    #[test]
    fn where_the_host_has_too_few_groups_the_cpus_are_packed_and_the_mismatch_named() {
        // One LLC of four cores: two declared LLCs land in the one there is.
        let h = host(1, 1, 4, 1);
        let p = h.place(topo("1n2l1c1t"));
        assert_eq!(p.cpus, [0, 1]);
        assert_eq!(p.ran, topo("1n1l2c1t"));
        assert_eq!(
            p.mismatch.as_deref(),
            Some("declared 1n2l1c1t, but this host (1n1l4c1t) gives CPUs 0-1 laid out as 1n1l2c1t")
        );
        // No SMT: a declared sibling pair becomes two cores.
        let p = h.place(topo("1n1l1c2t"));
        assert_eq!((p.cpus.as_slice(), p.ran), ([0, 1].as_slice(), topo("1n1l2c1t")));
        assert!(p.mismatch.is_some());
        // Two nodes asked of a one-node host.
        let p = h.place(topo("2n2l1c1t"));
        assert_eq!(p.ran, topo("1n1l2c1t"));
        assert!(p.mismatch.unwrap().starts_with("declared 2n2l1c1t"));
    }

    #[test]
    fn an_llc_too_small_for_the_declared_one_spills_into_the_next() {
        // 1 node, 2 LLCs of 2 cores: a 3-core LLC is one full LLC and one core of the next.
        let h = host(1, 2, 2, 1);
        let p = h.place(topo("1n1l3c1t"));
        assert_eq!(p.cpus, [0, 1, 2]);
        let m = p.mismatch.unwrap();
        assert!(m.ends_with("laid out as 1n2l1c1t-like, uneven (cores per LLC 1/2)"), "{m}");
    }

    #[test]
    fn groups_that_hold_the_whole_sub_shape_are_preferred_over_bigger_ones() {
        // Node 0: one LLC of 4 cores. Node 1: two LLCs of 1 core each.
        let mut v: Vec<HostCpu> =
            (0..4).map(|c| HostCpu { cpu: c, node: 0, llc: 0, core: c }).collect();
        v.push(HostCpu { cpu: 4, node: 1, llc: 4, core: 4 });
        v.push(HostCpu { cpu: 5, node: 1, llc: 5, core: 5 });
        let h = HostShape::new(v);
        let p = h.place(topo("1n2l1c1t"));
        assert_eq!(p.cpus, [4, 5], "node 1 has the two LLCs asked for");
        assert!(p.mismatch.is_none(), "{p:?}");
        assert_eq!(h.place(topo("1n1l2c1t")).cpus, [0, 1], "node 0 has an LLC of two cores");
    }

    #[test]
    fn the_host_topology_summarises_its_cpus() {
        assert_eq!(host(2, 2, 4, 2).topology(), topo("2n4l4c2t"));
        assert_eq!(host(1, 1, 2, 1).topology(), topo("1n1l2c1t"));
    }

    #[test]
    fn this_machine_reads_as_a_shape_of_its_usable_cpus() {
        let h = HostShape::read();
        assert!(!h.cpu_ids().is_empty());
        assert_eq!(h.topology().total_cpus() as usize, h.cpu_ids().len());
    }
}
