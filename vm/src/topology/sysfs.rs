//! Reads the CPU topology a running kernel sees back from sysfs and folds it into a
//! [`Topology`]: LLC groups from the last-level `cache/index*/shared_cpu_list`, SMT siblings
//! from `topology/thread_siblings_list`, NUMA nodes from `/sys/devices/system/node`.
//!
//! It takes a root directory so that tests can hand it a fake tree; the guest passes `/`.
//! A structure that no `{n}n{l}l{c}c{t}t` describes (uneven groups, an LLC spanning nodes) is
//! an error, never rounded to the nearest topology.

use super::Topology;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReadbackError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot parse CPU list '{text}' in {path}")]
    CpuList { path: PathBuf, text: String },
    #[error("CPU topology is irregular: {0}")]
    Irregular(String),
}

type CpuSet = BTreeSet<u32>;

/// The topology the kernel under `root` reports.
pub fn read_topology(root: &Path) -> Result<Topology, ReadbackError> {
    let cpu_dir = root.join("sys/devices/system/cpu");
    let cpus = read_cpu_list(&cpu_dir.join("online"))?;
    let mut siblings = BTreeSet::new();
    let mut llcs = BTreeSet::new();
    for cpu in &cpus {
        let dir = cpu_dir.join(format!("cpu{cpu}"));
        siblings.insert(read_cpu_list(&dir.join("topology/thread_siblings_list"))?);
        llcs.insert(read_cpu_list(&last_level_cache(&dir.join("cache"))?.join("shared_cpu_list"))?);
    }
    let nodes = read_nodes(&root.join("sys/devices/system/node"), &cpus)?;
    fold(&cpus, &siblings, &llcs, &nodes)
}

fn fold(
    cpus: &CpuSet,
    siblings: &BTreeSet<CpuSet>,
    llcs: &BTreeSet<CpuSet>,
    nodes: &[CpuSet],
) -> Result<Topology, ReadbackError> {
    let threads = uniform_size("SMT sibling groups", siblings)?;
    let llc_size = uniform_size("LLC groups", llcs)?;
    if llc_size % threads != 0 {
        return Err(irregular(format!("LLCs of {llc_size} CPUs hold cores of {threads} threads")));
    }
    let covered: CpuSet = llcs.iter().flatten().copied().collect();
    if &covered != cpus {
        return Err(irregular(format!(
            "LLC groups cover {covered:?} but online CPUs are {cpus:?}"
        )));
    }
    let mut llcs_per_node = BTreeSet::new();
    for node in nodes {
        let inside = llcs.iter().filter(|llc| llc.is_subset(node)).count();
        let touching = llcs.iter().filter(|llc| !llc.is_disjoint(node)).count();
        if inside != touching {
            return Err(irregular(format!("an LLC spans NUMA nodes (node CPUs {node:?})")));
        }
        llcs_per_node.insert(inside);
    }
    if llcs_per_node.len() > 1 {
        return Err(irregular(format!("NUMA nodes hold different LLC counts {llcs_per_node:?}")));
    }
    let found = Topology::new(
        nodes.len() as u32,
        llcs.len() as u32,
        (llc_size / threads) as u32,
        threads as u32,
    );
    found.validate().map_err(|e| irregular(e.to_string()))?;
    Ok(found)
}

fn irregular(what: String) -> ReadbackError {
    ReadbackError::Irregular(what)
}

fn uniform_size(what: &str, groups: &BTreeSet<CpuSet>) -> Result<usize, ReadbackError> {
    let sizes: BTreeSet<usize> = groups.iter().map(BTreeSet::len).collect();
    match (sizes.len(), sizes.first()) {
        (1, Some(&size)) if size > 0 => Ok(size),
        _ => Err(irregular(format!("{what} have sizes {sizes:?}"))),
    }
}

/// The `index*` directory with the highest `level` (index3 on x86 with an L3).
fn last_level_cache(cache_dir: &Path) -> Result<PathBuf, ReadbackError> {
    let entries = fs::read_dir(cache_dir).map_err(|source| io_err(cache_dir, source))?;
    let mut best: Option<(u32, PathBuf)> = None;
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with("index") {
            continue;
        }
        let level = read_trimmed(&path.join("level"))?.parse::<u32>().unwrap_or(0);
        if best.as_ref().is_none_or(|(l, _)| level > *l) {
            best = Some((level, path));
        }
    }
    best.map(|(_, p)| p)
        .ok_or_else(|| irregular(format!("no cache levels under {}", cache_dir.display())))
}

/// CPU sets of the online NUMA nodes; a kernel without NUMA has one node holding every CPU.
fn read_nodes(node_dir: &Path, cpus: &CpuSet) -> Result<Vec<CpuSet>, ReadbackError> {
    let online = node_dir.join("online");
    if !online.exists() {
        return Ok(vec![cpus.clone()]);
    }
    read_cpu_list(&online)?
        .iter()
        .map(|node| read_cpu_list(&node_dir.join(format!("node{node}/cpulist"))))
        .collect()
}

fn read_trimmed(path: &Path) -> Result<String, ReadbackError> {
    fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|source| io_err(path, source))
}

fn io_err(path: &Path, source: std::io::Error) -> ReadbackError {
    ReadbackError::Io { path: path.to_path_buf(), source }
}

fn read_cpu_list(path: &Path) -> Result<CpuSet, ReadbackError> {
    let text = read_trimmed(path)?;
    parse_cpu_list(&text).ok_or_else(|| ReadbackError::CpuList { path: path.to_path_buf(), text })
}

/// Parses the kernel's list format, e.g. `0-3,6,8-9`; an empty list is an empty set.
pub fn parse_cpu_list(text: &str) -> Option<CpuSet> {
    let mut set = CpuSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?);
                if a > b {
                    return None;
                }
                set.extend(a..=b);
            }
            None => {
                set.insert(part.parse().ok()?);
            }
        }
    }
    Some(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::cpus_per_llc;

    /// Writes a sysfs tree as QEMU presents `topology` (consecutive CPU numbering).
    fn fake_sysfs(root: &Path, t: &Topology, with_nodes: bool) {
        let cpu_dir = root.join("sys/devices/system/cpu");
        let n = t.total_cpus();
        let write = |p: PathBuf, s: String| {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s + "\n").unwrap();
        };
        write(cpu_dir.join("online"), format!("0-{}", n - 1));
        for cpu in 0..n {
            let core0 = cpu - cpu % t.threads_per_core;
            let llc0 = cpu - cpu % cpus_per_llc(t);
            let dir = cpu_dir.join(format!("cpu{cpu}"));
            write(
                dir.join("topology/thread_siblings_list"),
                format!("{core0}-{}", core0 + t.threads_per_core - 1),
            );
            for (index, level, first, count) in
                [(0, 1, core0, t.threads_per_core), (3, 3, llc0, cpus_per_llc(t))]
            {
                let idx = dir.join(format!("cache/index{index}"));
                write(idx.join("level"), level.to_string());
                write(idx.join("shared_cpu_list"), format!("{first}-{}", first + count - 1));
            }
        }
        if with_nodes {
            let node_dir = root.join("sys/devices/system/node");
            write(node_dir.join("online"), format!("0-{}", t.numa_nodes - 1));
            let per_node = n / t.numa_nodes;
            for node in 0..t.numa_nodes {
                let first = node * per_node;
                write(
                    node_dir.join(format!("node{node}/cpulist")),
                    format!("{first}-{}", first + per_node - 1),
                );
            }
        }
    }

    #[test]
    fn reads_back_what_qemu_declares() {
        for s in ["1n1l2c1t", "2n2l2c1t", "1n2l2c2t", "2n4l3c2t", "1n1l1c1t"] {
            let t: Topology = s.parse().unwrap();
            let dir = tempfile::tempdir().unwrap();
            fake_sysfs(dir.path(), &t, true);
            assert_eq!(read_topology(dir.path()).unwrap(), t, "{s}");
        }
    }

    #[test]
    fn a_kernel_without_numa_is_one_node() {
        let t: Topology = "1n2l2c1t".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        fake_sysfs(dir.path(), &t, false);
        assert_eq!(read_topology(dir.path()).unwrap(), t);
    }

    #[test]
    fn uneven_llcs_are_irregular_not_rounded() {
        let t: Topology = "1n2l2c1t".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        fake_sysfs(dir.path(), &t, true);
        let llc = dir.path().join("sys/devices/system/cpu/cpu3/cache/index3/shared_cpu_list");
        fs::write(&llc, "3\n").unwrap();
        let err = read_topology(dir.path()).unwrap_err();
        assert!(matches!(err, ReadbackError::Irregular(_)), "{err}");
    }

    #[test]
    fn an_llc_across_nodes_is_irregular() {
        let t: Topology = "2n2l2c1t".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        fake_sysfs(dir.path(), &t, true);
        let node_dir = dir.path().join("sys/devices/system/node");
        fs::write(node_dir.join("node0/cpulist"), "0\n").unwrap();
        fs::write(node_dir.join("node1/cpulist"), "1-3\n").unwrap();
        let err = read_topology(dir.path()).unwrap_err().to_string();
        assert!(err.contains("spans NUMA nodes"), "{err}");
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5,7-8").unwrap(), CpuSet::from([0, 1, 2, 5, 7, 8]));
        assert_eq!(parse_cpu_list("").unwrap(), CpuSet::new());
        assert!(parse_cpu_list("3-1").is_none());
        assert!(parse_cpu_list("a").is_none());
    }

    #[test]
    fn missing_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_topology(dir.path()).unwrap_err().to_string();
        assert!(err.contains("sys/devices/system/cpu/online"), "{err}");
    }
}
