//! Per-test cgroup trees on cgroup v1 or v2, detected at run time.
//!
//! A [`CgroupTree`] is `ktstr-<pid>-<n>/` under the chosen hierarchy with one child per
//! declared cgroup; it owns the directories and removes them on drop, killing any task still
//! inside first. v1 uses the `cpu` and `cpuset` controller mounts (`cpuset.cpus/mems`,
//! `cpu.shares`, `tasks`); v2 uses one unified directory (`cgroup.procs`, `cpuset.cpus`,
//! `cpu.weight`, controllers enabled through `cgroup.subtree_control`). Which processes go
//! where is [`super::scenario`]'s decision; forking them is [`super::worker`]'s. A tree can be
//! confined to a set of CPUs as a whole ([`CgroupTree::create_within`]): which set is
//! [`super::host_cpus`]'s choice.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A cgroup hierarchy to create test trees in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// Per-controller mounts; either may be absent.
    V1 { cpu: Option<PathBuf>, cpuset: Option<PathBuf> },
    /// One unified directory (a cgroup2 mount or a delegated subtree of one).
    V2 { root: PathBuf },
}

/// What went wrong with cgroups: one line naming the path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "no usable cgroup hierarchy: neither cgroup v1 cpu/cpuset mounts nor a cgroup2 mount \
         with the cpu or cpuset controller was found in /proc/self/mountinfo; mount one or set \
         KTSTR_CGROUP_ROOT"
    )]
    NotFound,
    #[error(
        "cannot write cgroup directory {path}: permission denied; run as root or point \
         KTSTR_CGROUP_ROOT at a cgroup delegated to this user"
    )]
    Permission { path: PathBuf },
    #[error("the {controller} controller is not available in {path}: {hint}")]
    Controller { controller: &'static str, path: PathBuf, hint: &'static str },
    #[error("cgroup {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cgroup name {0:?} is invalid: use letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error(
        "cgroup {name} asks for CPUs {cpus}, but this run is confined to CPUs {allowed}: pick \
         its CPUs from ctx.cpus()"
    )]
    OutsideRunCpus { name: String, cpus: String, allowed: String },
}

fn io_err(path: &Path, source: io::Error) -> CgroupError {
    if source.kind() == io::ErrorKind::PermissionDenied {
        CgroupError::Permission { path: path.to_path_buf() }
    } else {
        CgroupError::Io { path: path.to_path_buf(), source }
    }
}

/// Write a control file that must already exist (cgroupfs creates them; never create one).
fn write_ctl(path: &Path, value: &str) -> Result<(), CgroupError> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new().write(true).open(path).map_err(|e| io_err(path, e))?;
    f.write_all(value.as_bytes()).map_err(|e| io_err(path, e))
}

fn read_ctl(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|e| io_err(path, e))
}

impl Hierarchy {
    /// The system's hierarchy: v1 `cpu`/`cpuset` mounts if any (their controllers cannot be
    /// on v2 at the same time), else a cgroup2 mount that offers `cpu` or `cpuset`.
    /// `KTSTR_CGROUP_ROOT` overrides detection (see [`Hierarchy::at`]).
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        if let Some(root) = std::env::var_os("KTSTR_CGROUP_ROOT").filter(|v| !v.is_empty()) {
            return Ok(Hierarchy::at(Path::new(&root)));
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| io_err(Path::new("/proc/self/mountinfo"), e))?;
        Hierarchy::from_mountinfo(&mountinfo).ok_or(CgroupError::NotFound)
    }

    /// Pick a hierarchy from `/proc/self/mountinfo` text.
    pub fn from_mountinfo(text: &str) -> Option<Hierarchy> {
        let (mut cpu, mut cpuset, mut v2) = (None, None, None);
        for line in text.lines() {
            // Fields: id parent maj:min root mountpoint opts [optional...] - fstype src superopts
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let mountpoint = left.split(' ').nth(4).map(unescape_mount);
            let mut r = right.split(' ');
            let (fstype, superopts) = (r.next(), r.nth(1).unwrap_or(""));
            let Some(mp) = mountpoint else { continue };
            match fstype {
                Some("cgroup") => {
                    for opt in superopts.split(',') {
                        match opt {
                            "cpu" if cpu.is_none() => cpu = Some(PathBuf::from(&mp)),
                            "cpuset" if cpuset.is_none() => cpuset = Some(PathBuf::from(&mp)),
                            _ => {}
                        }
                    }
                }
                Some("cgroup2") if v2.is_none() => {
                    let root = PathBuf::from(&mp);
                    let ctl =
                        fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
                    if ctl.split_whitespace().any(|c| c == "cpu" || c == "cpuset") {
                        v2 = Some(root);
                    }
                }
                _ => {}
            }
        }
        if cpu.is_some() || cpuset.is_some() {
            Some(Hierarchy::V1 { cpu, cpuset })
        } else {
            v2.map(|root| Hierarchy::V2 { root })
        }
    }

    /// A hierarchy rooted at `root`: v2 when `root/cgroup.controllers` exists, else v1 with
    /// controller directories `root/cpu` and `root/cpuset` (each used if it exists).
    pub fn at(root: &Path) -> Hierarchy {
        if root.join("cgroup.controllers").exists() {
            return Hierarchy::V2 { root: root.to_path_buf() };
        }
        let sub = |name: &str| Some(root.join(name)).filter(|p| p.is_dir());
        Hierarchy::V1 { cpu: sub("cpu"), cpuset: sub("cpuset") }
    }

    /// The directories test trees are created in: each v1 controller mount, or the v2 root.
    pub fn roots(&self) -> Vec<PathBuf> {
        match self {
            Hierarchy::V1 { cpu, cpuset } => cpu.iter().chain(cpuset).cloned().collect(),
            Hierarchy::V2 { root } => vec![root.clone()],
        }
    }

    /// `"v1"` or `"v2"`.
    pub fn version(&self) -> &'static str {
        match self {
            Hierarchy::V1 { .. } => "v1",
            Hierarchy::V2 { .. } => "v2",
        }
    }
}

/// Mount points in mountinfo escape space, tab, newline and backslash as octal.
fn unescape_mount(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(v as char);
            i += 4;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Settings for one child cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupSpec {
    pub name: String,
    /// CPUs the cgroup may use; `None` = inherit the parent's.
    pub cpus: Option<Vec<usize>>,
    /// v2 `cpu.weight` (1..=10000, default 100); v1 gets the equivalent `cpu.shares`.
    pub weight: Option<u32>,
}

/// Render a CPU list the way cpuset files take it (`0,2-4`).
pub fn cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        parts.push(if sorted[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", sorted[i])
        });
        i += 1;
    }
    parts.join(",")
}

static TREE_SEQ: AtomicU32 = AtomicU32::new(0);

/// A per-test cgroup tree. Dropping it kills leftover tasks and removes every directory.
#[derive(Debug)]
pub struct CgroupTree {
    hierarchy: Hierarchy,
    /// Top directories (one per v1 controller mount, one on v2), created by us.
    tops: Vec<PathBuf>,
    /// Child name → directories (one per v1 controller, one on v2), in creation order.
    children: Vec<(String, Vec<PathBuf>)>,
}

impl CgroupTree {
    /// Create `ktstr-<pid>-<n>` with one child per spec.
    pub fn create(hierarchy: &Hierarchy, specs: &[CgroupSpec]) -> Result<CgroupTree, CgroupError> {
        CgroupTree::create_within(hierarchy, specs, None)
    }

    /// [`CgroupTree::create`], with the whole tree confined to `within` when given: the top
    /// directory's cpuset is those CPUs, children without CPUs of their own inherit them, and
    /// a child asking for CPUs outside them is an error.
    pub fn create_within(
        hierarchy: &Hierarchy,
        specs: &[CgroupSpec],
        within: Option<&[usize]>,
    ) -> Result<CgroupTree, CgroupError> {
        for s in specs {
            if let (Some(allowed), Some(cpus)) = (within, &s.cpus)
                && cpus.iter().any(|c| !allowed.contains(c))
            {
                return Err(CgroupError::OutsideRunCpus {
                    name: s.name.clone(),
                    cpus: cpu_list(cpus),
                    allowed: cpu_list(allowed),
                });
            }
        }
        for s in specs {
            let ok = !s.name.is_empty()
                && s.name != "."
                && s.name != ".."
                && s.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(CgroupError::BadName(s.name.clone()));
            }
        }
        let top_name =
            format!("ktstr-{}-{}", std::process::id(), TREE_SEQ.fetch_add(1, Ordering::Relaxed));
        let mut tree =
            CgroupTree { hierarchy: hierarchy.clone(), tops: Vec::new(), children: Vec::new() };
        let within = within.map(cpu_list);
        match hierarchy {
            Hierarchy::V1 { cpu, cpuset } => {
                tree.create_v1(cpu, cpuset, &top_name, specs, within)?;
            }
            Hierarchy::V2 { root } => tree.create_v2(root, &top_name, specs, within)?,
        }
        Ok(tree)
    }

    fn mkdir(&mut self, path: &Path, top: bool) -> Result<(), CgroupError> {
        fs::create_dir(path).map_err(|e| io_err(path, e))?;
        if top {
            self.tops.push(path.to_path_buf());
        }
        Ok(())
    }

    fn create_v1(
        &mut self,
        cpu: &Option<PathBuf>,
        cpuset: &Option<PathBuf>,
        top_name: &str,
        specs: &[CgroupSpec],
        within: Option<String>,
    ) -> Result<(), CgroupError> {
        if cpu.is_none() && cpuset.is_none() {
            return Err(CgroupError::NotFound);
        }
        let needs_cpuset = within.is_some() || specs.iter().any(|s| s.cpus.is_some());
        if needs_cpuset && cpuset.is_none() {
            return Err(CgroupError::Controller {
                controller: "cpuset",
                path: cpu.clone().unwrap_or_default(),
                hint: "mount the v1 cpuset controller",
            });
        }
        if let Some(mount) = cpu {
            let top = mount.join(top_name);
            self.mkdir(&top, true)?;
            for s in specs {
                let dir = top.join(&s.name);
                self.mkdir(&dir, false)?;
                self.add_child_dir(&s.name, &dir);
                if let Some(w) = s.weight {
                    // v2 weight 100 = v1 shares 1024.
                    let shares = (u64::from(w) * 1024 / 100).max(2);
                    write_ctl(&dir.join("cpu.shares"), &shares.to_string())?;
                }
            }
        }
        if let Some(mount) = cpuset {
            // A new v1 cpuset starts empty; tasks cannot join until cpus and mems are set.
            let all_cpus = match within {
                Some(cpus) => cpus,
                None => read_ctl(&mount.join("cpuset.cpus"))?,
            };
            let mems = read_ctl(&mount.join("cpuset.mems"))?;
            let top = mount.join(top_name);
            self.mkdir(&top, true)?;
            write_ctl(&top.join("cpuset.cpus"), &all_cpus)?;
            write_ctl(&top.join("cpuset.mems"), &mems)?;
            for s in specs {
                let dir = top.join(&s.name);
                self.mkdir(&dir, false)?;
                self.add_child_dir(&s.name, &dir);
                let cpus = s.cpus.as_deref().map_or(all_cpus.clone(), cpu_list);
                write_ctl(&dir.join("cpuset.cpus"), &cpus)?;
                write_ctl(&dir.join("cpuset.mems"), &mems)?;
            }
        }
        Ok(())
    }

    /// Record `dir` as one of child `name`'s directories right after it was created, so a
    /// failure later in [`CgroupTree::create`] still removes it on drop.
    fn add_child_dir(&mut self, name: &str, dir: &Path) {
        match self.children.iter_mut().find(|(n, _)| n == name) {
            Some((_, dirs)) => dirs.push(dir.to_path_buf()),
            None => self.children.push((name.to_string(), vec![dir.to_path_buf()])),
        }
    }

    fn create_v2(
        &mut self,
        root: &Path,
        top_name: &str,
        specs: &[CgroupSpec],
        within: Option<String>,
    ) -> Result<(), CgroupError> {
        let available = read_ctl(&root.join("cgroup.controllers"))?;
        let has = |c: &str| available.split_whitespace().any(|a| a == c);
        let mut wanted = Vec::new();
        if within.is_some() || specs.iter().any(|s| s.cpus.is_some()) {
            if !has("cpuset") {
                return Err(CgroupError::Controller {
                    controller: "cpuset",
                    path: root.join("cgroup.controllers"),
                    hint: "enable it in the parent's cgroup.subtree_control or delegate it",
                });
            }
            wanted.push("cpuset");
        }
        if specs.iter().any(|s| s.weight.is_some()) {
            if !has("cpu") {
                return Err(CgroupError::Controller {
                    controller: "cpu",
                    path: root.join("cgroup.controllers"),
                    hint: "enable it in the parent's cgroup.subtree_control or delegate it",
                });
            }
            wanted.push("cpu");
        }
        // Controllers must be enabled in `root` for `top` to have them, and in `top` for the
        // children. Writing an already-enabled controller is harmless.
        for c in &wanted {
            write_ctl(&root.join("cgroup.subtree_control"), &format!("+{c}"))?;
        }
        let top = root.join(top_name);
        self.mkdir(&top, true)?;
        if let Some(cpus) = &within {
            write_ctl(&top.join("cpuset.cpus"), cpus)?;
        }
        for c in &wanted {
            write_ctl(&top.join("cgroup.subtree_control"), &format!("+{c}"))?;
        }
        for s in specs {
            let dir = top.join(&s.name);
            self.mkdir(&dir, false)?;
            self.add_child_dir(&s.name, &dir);
            if let Some(cpus) = &s.cpus {
                write_ctl(&dir.join("cpuset.cpus"), &cpu_list(cpus))?;
            }
            if let Some(w) = s.weight {
                write_ctl(&dir.join("cpu.weight"), &w.clamp(1, 10_000).to_string())?;
            }
        }
        Ok(())
    }

    /// The tree's top directories (removed on drop).
    pub fn tops(&self) -> &[PathBuf] {
        &self.tops
    }

    /// Every directory of the tree in removal order: children, then the tops.
    pub fn all_dirs(&self) -> Vec<PathBuf> {
        self.children.iter().flat_map(|(_, d)| d.iter().cloned()).chain(self.tops.clone()).collect()
    }

    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// Directories of child `name` (one per v1 controller; one on v2).
    pub fn dirs(&self, name: &str) -> Option<&[PathBuf]> {
        self.children.iter().find(|(n, _)| n == name).map(|(_, d)| d.as_slice())
    }

    /// Move process `pid` into child `name` (every controller's directory on v1).
    pub fn add_pid(&self, name: &str, pid: i32) -> Result<(), CgroupError> {
        let dirs = self.dirs(name).ok_or_else(|| CgroupError::BadName(name.to_string()))?;
        let file = match self.hierarchy {
            Hierarchy::V1 { .. } => "tasks",
            Hierarchy::V2 { .. } => "cgroup.procs",
        };
        for d in dirs {
            write_ctl(&d.join(file), &pid.to_string())?;
        }
        Ok(())
    }

    /// Pids currently in child `name` (union over controllers).
    pub fn pids(&self, name: &str) -> Vec<i32> {
        let mut out: Vec<i32> = self
            .dirs(name)
            .unwrap_or(&[])
            .iter()
            .flat_map(|d| {
                fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Kill everything left in the tree and remove its directories. Called by `Drop`; call
    /// it directly to see the errors.
    pub fn remove(&mut self) -> Result<(), CgroupError> {
        let mut first_err = None;
        let names: Vec<String> = self.children.iter().map(|(n, _)| n.clone()).collect();
        for name in &names {
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                let pids = self.pids(name);
                if pids.is_empty() || Instant::now() > deadline {
                    break;
                }
                for pid in pids {
                    // SAFETY: kill has no memory-safety preconditions; these are our workers
                    // (or their descendants), which must not outlive the test.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let dirs: Vec<PathBuf> =
            self.children.drain(..).flat_map(|(_, d)| d).chain(self.tops.drain(..)).collect();
        for d in dirs {
            if let Err(e) = rmdir_retry(&d) {
                first_err.get_or_insert(io_err(&d, e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// One stale tree [`sweep_stale_trees`] found: its top directory and whether removing it
/// (with every task inside) worked.
#[derive(Debug)]
pub struct Swept {
    pub top: PathBuf,
    pub result: Result<(), CgroupError>,
}

/// Remove every `ktstr-<pid>-<n>` tree under `h` whose creating process `<pid>` no longer
/// exists, killing any task still inside first. Such trees are left when a test process is
/// killed (Ctrl-C, SIGKILL) before its drops run; the workers inside normally died with it
/// (`PR_SET_PDEATHSIG`), but anything that escaped is killed here. Trees of live processes,
/// e.g. a test running concurrently, are left alone.
pub fn sweep_stale_trees(h: &Hierarchy) -> Vec<Swept> {
    sweep_trees(h, |pid| !Path::new(&format!("/proc/{pid}")).exists())
}

/// Remove every `ktstr-<pid>-<n>` tree under `h`, whoever made it. Only for a machine that
/// runs nothing but one test at a time (a VM guest between two tests).
pub fn sweep_all_trees(h: &Hierarchy) -> Vec<Swept> {
    sweep_trees(h, |_| true)
}

/// Remove every `ktstr-<pid>-<n>` tree under `h` whose `<pid>` `remove` accepts.
fn sweep_trees(h: &Hierarchy, remove: impl Fn(u32) -> bool) -> Vec<Swept> {
    let mut out = Vec::new();
    for root in h.roots() {
        let Ok(entries) = fs::read_dir(&root) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(pid) = tree_owner(&name) else { continue };
            if !remove(pid) || !e.path().is_dir() {
                continue;
            }
            let top = e.path();
            let result = remove_tree(&top).map_err(|err| io_err(&top, err));
            out.push(Swept { top, result });
        }
    }
    out
}

/// `<pid>` of a `ktstr-<pid>-<n>` directory name.
fn tree_owner(name: &str) -> Option<u32> {
    let (pid, n) = name.strip_prefix("ktstr-")?.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Depth first: children (kill their tasks, rmdir) before `dir` itself.
fn remove_tree(dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(dir)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path())?;
        }
    }
    kill_and_remove_dir(dir)
}

/// SIGKILL every task in cgroup directory `dir` and remove it (a missing directory is
/// fine). For a caller that no longer has the [`CgroupTree`], e.g. the watchdog.
pub fn kill_and_remove_dir(dir: &Path) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in pids {
            // SAFETY: kill has no memory-safety preconditions; tasks in a test's own cgroup
            // must not outlive it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    rmdir_retry(dir)
}

/// rmdir with a short retry: a just-killed task can keep a cgroup busy for a moment.
fn rmdir_retry(d: &Path) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

impl Drop for CgroupTree {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            // Drop cannot return the error; leaving a directory behind must not go unnoticed.
            eprintln!("ktstr_test: cleanup: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_owner_parses_only_our_tree_names() {
        assert_eq!(tree_owner("ktstr-123-0"), Some(123));
        assert_eq!(tree_owner("ktstr-123-x"), None);
        assert_eq!(tree_owner("ktstr-abc-1"), None);
        assert_eq!(tree_owner("system.slice"), None);
    }

    #[test]
    fn cpu_list_ranges() {
        assert_eq!(cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(cpu_list(&[3]), "3");
        assert_eq!(cpu_list(&[1, 0, 1]), "0-1");
        assert_eq!(cpu_list(&[]), "");
    }

    #[test]
    fn mountinfo_prefers_v1_controllers() {
        let v1 = "30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu\n\
                  31 25 0:27 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n\
                  32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            Hierarchy::from_mountinfo(v1),
            Some(Hierarchy::V1 {
                cpu: Some("/sys/fs/cgroup/cpu".into()),
                cpuset: Some("/sys/fs/cgroup/cpuset".into())
            })
        );
        assert_eq!(Hierarchy::from_mountinfo("1 0 0:1 / / rw - ext4 /dev/x rw\n"), None);
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount("/a\\040b"), "/a b");
        assert_eq!(unescape_mount("/plain"), "/plain");
    }

    /// `ktstr-<this pid>-*` trees under the system's v1 controllers holding a child `name`.
    fn our_trees_with_child(h: &Hierarchy, name: &str) -> Vec<PathBuf> {
        let prefix = format!("ktstr-{}-", std::process::id());
        h.roots()
            .iter()
            .flat_map(|r| fs::read_dir(r).into_iter().flatten().flatten())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .filter(|top| top.join(name).exists())
            .collect()
    }

    #[test]
    fn a_v1_tree_that_fails_partway_leaves_no_directory_behind() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root to create cgroups");
            return;
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let h = match Hierarchy::from_mountinfo(&mountinfo) {
            Some(h @ Hierarchy::V1 { cpu: Some(_), cpuset: Some(_) }) => h,
            _ => {
                eprintln!("skipped: needs a cgroup v1 host with cpu and cpuset mounted");
                return;
            }
        };
        // The first child is fully set up under both controllers; the second fails writing
        // cpuset.cpus (no such CPU), after its directories under cpu and cpuset exist.
        let specs = [
            CgroupSpec { name: "leak-probe-ok".into(), ..Default::default() },
            CgroupSpec { name: "leak-probe-bad".into(), cpus: Some(vec![9999]), weight: None },
        ];
        let err = CgroupTree::create(&h, &specs).unwrap_err();
        assert!(matches!(err, CgroupError::Io { .. }), "{err}");
        assert!(err.to_string().contains("leak-probe-bad"), "{err}");
        for name in ["leak-probe-ok", "leak-probe-bad"] {
            let left = our_trees_with_child(&h, name);
            assert!(left.is_empty(), "the failed tree was left behind: {left:?}");
        }
    }

    #[test]
    fn bad_names_are_rejected_before_touching_disk() {
        let h = Hierarchy::V2 { root: "/nonexistent".into() };
        let err =
            CgroupTree::create(&h, &[CgroupSpec { name: "../x".into(), ..Default::default() }]);
        assert!(matches!(err, Err(CgroupError::BadName(_))));
    }
}
