//! A snapshot of the machine a test ran on: the sidecar's `host` object (stats-reference §2.6).
//!
//! Read from procfs, sysfs and `uname(2)`. Anything that cannot be read or parsed stays `None`
//! (or empty); nothing is ever guessed, because `compare` reports host differences and an
//! invented value would show up as a difference that never existed. `heap_state` is left
//! `None`: it describes ktstr's own allocator, which we do not have.
//!
//! The functions taking a root directory exist so parsing is tested on fixture trees; the
//! public entry point reads the real `/`.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fs;
use std::path::Path;

use crate::sidecar::model::{CpuGovernors, HostContext};

/// Capture the host context of the machine this process runs on.
pub fn capture_host_context() -> HostContext {
    let mut ctx = capture_from_root(Path::new("/"));
    if let Some(u) = uname() {
        ctx.kernel_name = Some(u.sysname);
        ctx.kernel_release = Some(u.release);
        ctx.arch = Some(u.machine);
    }
    ctx
}

/// Everything except `uname`, read from files under `root` (normally `/`).
pub fn capture_from_root(root: &Path) -> HostContext {
    let read = |rel: &str| fs::read_to_string(root.join(rel)).ok();
    let trimmed = |rel: &str| read(rel).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());

    let cpuinfo = read("proc/cpuinfo").unwrap_or_default();
    let meminfo = read("proc/meminfo").unwrap_or_default();
    let online = read("sys/devices/system/cpu/online").and_then(|s| parse_cpu_list(s.trim()));

    HostContext {
        cpu_model: cpuinfo_field(&cpuinfo, "model name"),
        cpu_vendor: cpuinfo_field(&cpuinfo, "vendor_id"),
        total_memory_kb: meminfo_field(&meminfo, "MemTotal"),
        hugepages_total: meminfo_field(&meminfo, "HugePages_Total"),
        hugepages_free: meminfo_field(&meminfo, "HugePages_Free"),
        hugepages_size_kb: meminfo_field(&meminfo, "Hugepagesize"),
        thp_enabled: trimmed("sys/kernel/mm/transparent_hugepage/enabled"),
        thp_defrag: trimmed("sys/kernel/mm/transparent_hugepage/defrag"),
        sched_tunables: sched_tunables(&root.join("proc/sys/kernel")),
        online_cpus: online.as_ref().map(Vec::len),
        numa_nodes: numa_nodes(&root.join("sys/devices/system/node")),
        cpufreq_governor: governors(root, online.as_deref().unwrap_or(&[])),
        kernel_name: None,
        kernel_release: None,
        arch: None,
        kernel_cmdline: trimmed("proc/cmdline"),
        heap_state: None,
    }
}

/// The first `key : value` line of /proc/cpuinfo with this key.
fn cpuinfo_field(cpuinfo: &str, key: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string()).filter(|v| !v.is_empty())
    })
}

/// A /proc/meminfo value as its number (the `kB` unit is dropped; counts have none).
fn meminfo_field(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Every `sched_*` file directly in /proc/sys/kernel, trimmed. `None` when the directory is
/// unreadable; an empty map when it holds no such file.
fn sched_tunables(dir: &Path) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("sched_") {
            continue;
        }
        // Some entries are write-only or need privileges; skip those rather than invent.
        if let Ok(v) = fs::read_to_string(entry.path()) {
            out.insert(name, v.trim().to_string());
        }
    }
    Some(out)
}

/// Number of `nodeN` directories; `None` when the directory is missing (no NUMA support).
fn numa_nodes(dir: &Path) -> Option<usize> {
    let n = fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("node")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    (n > 0).then_some(n)
}

fn governors(root: &Path, online: &[u32]) -> CpuGovernors {
    online
        .iter()
        .filter_map(|&cpu| {
            let rel = format!("sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor");
            let gov = fs::read_to_string(root.join(rel)).ok()?;
            let gov = gov.trim();
            (!gov.is_empty()).then(|| (cpu, gov.to_string()))
        })
        .collect()
}

/// Parse a kernel CPU list such as `0-3,8,10-11`. `None` on any malformed part.
pub fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    if s.is_empty() {
        return Some(out);
    }
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

struct Uname {
    sysname: String,
    release: String,
    machine: String,
}

fn uname() -> Option<Uname> {
    // SAFETY: `utsname` is plain bytes, so all-zero is a valid value, and `uname` only writes
    // NUL-terminated strings into the buffer we own.
    let mut buf: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut buf) } != 0 {
        return None;
    }
    let field = |chars: &[libc::c_char]| {
        // SAFETY: the kernel NUL-terminates each field within its fixed-size array.
        let s = unsafe { CStr::from_ptr(chars.as_ptr()) };
        s.to_string_lossy().into_owned()
    };
    Some(Uname {
        sysname: field(&buf.sysname),
        release: field(&buf.release),
        machine: field(&buf.machine),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn fixture_tree_is_read_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        put(
            r,
            "proc/cpuinfo",
            "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon X\n\nprocessor\t: 1\nmodel name\t: Other\n",
        );
        put(
            r,
            "proc/meminfo",
            "MemTotal:       16384 kB\nHugePages_Total:       4\nHugePages_Free:        2\nHugepagesize:       2048 kB\n",
        );
        put(r, "sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n");
        put(r, "sys/kernel/mm/transparent_hugepage/defrag", "[always] defer\n");
        put(r, "proc/sys/kernel/sched_autogroup_enabled", "1\n");
        put(r, "proc/sys/kernel/sched_child_runs_first", "0\n");
        put(r, "proc/sys/kernel/hostname", "h\n");
        put(r, "sys/devices/system/cpu/online", "0-1,10\n");
        put(r, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "performance\n");
        put(r, "sys/devices/system/cpu/cpu10/cpufreq/scaling_governor", "powersave\n");
        fs::create_dir_all(r.join("sys/devices/system/node/node0")).unwrap();
        fs::create_dir_all(r.join("sys/devices/system/node/node1")).unwrap();
        put(r, "sys/devices/system/node/possible", "0-1\n");
        put(r, "proc/cmdline", "BOOT_IMAGE=/vmlinuz quiet\n");

        let ctx = capture_from_root(r);
        assert_eq!(ctx.cpu_model.as_deref(), Some("Xeon X"));
        assert_eq!(ctx.cpu_vendor.as_deref(), Some("GenuineIntel"));
        assert_eq!(ctx.total_memory_kb, Some(16384));
        assert_eq!(ctx.hugepages_total, Some(4));
        assert_eq!(ctx.hugepages_free, Some(2));
        assert_eq!(ctx.hugepages_size_kb, Some(2048));
        assert_eq!(ctx.thp_enabled.as_deref(), Some("always [madvise] never"));
        assert_eq!(ctx.thp_defrag.as_deref(), Some("[always] defer"));
        let tunables = ctx.sched_tunables.as_ref().unwrap();
        assert_eq!(tunables.len(), 2);
        assert_eq!(tunables["sched_autogroup_enabled"], "1");
        assert_eq!(ctx.online_cpus, Some(3));
        assert_eq!(ctx.numa_nodes, Some(2));
        assert_eq!(ctx.cpufreq_governor.len(), 2);
        assert_eq!(ctx.cpufreq_governor[&10], "powersave");
        assert_eq!(ctx.kernel_cmdline.as_deref(), Some("BOOT_IMAGE=/vmlinuz quiet"));
        assert_eq!(ctx.heap_state, None);

        let json = serde_json::to_string(&ctx).unwrap();
        assert!(json.contains(r#""cpufreq_governor":{"0":"performance","10":"powersave"}"#));
    }

    #[test]
    fn missing_sources_stay_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = capture_from_root(dir.path());
        assert_eq!(ctx, HostContext::default());
        assert_eq!(serde_json::to_string(&ctx).unwrap(), "{}");
    }

    #[test]
    fn arm64_cpuinfo_without_vendor_leaves_vendor_unknown() {
        let dir = tempfile::tempdir().unwrap();
        put(dir.path(), "proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 50.00\n");
        let ctx = capture_from_root(dir.path());
        assert_eq!(ctx.cpu_vendor, None);
        assert_eq!(ctx.cpu_model, None);
    }

    #[test]
    fn cpu_lists_parse_and_reject_garbage() {
        assert_eq!(parse_cpu_list("0-3,8,10-11"), Some(vec![0, 1, 2, 3, 8, 10, 11]));
        assert_eq!(parse_cpu_list("5"), Some(vec![5]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("a"), None);
    }

    #[test]
    fn live_capture_reads_uname() {
        let ctx = capture_host_context();
        assert_eq!(ctx.kernel_name.as_deref(), Some("Linux"));
        assert!(ctx.arch.as_deref().is_some_and(|a| !a.is_empty()));
        assert!(ctx.kernel_release.as_deref().is_some_and(|r| !r.is_empty()));
    }
}
