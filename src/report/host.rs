//! `stats show-host`: a host context as `key: value` lines (ktstr's `format_human` layout).

use std::fmt::Write as _;

use crate::sidecar::HostContext;

const UNKNOWN: &str = "(unknown)";

/// Every field in a fixed order, `(unknown)` for fields the sidecar did not record.
pub fn format_human(h: &HostContext) -> String {
    let mut out = String::new();
    let mut line = |key: &str, value: Option<String>| {
        let _ = writeln!(out, "{key}: {}", value.as_deref().unwrap_or(UNKNOWN));
    };
    let num = |n: Option<u64>| n.map(|n| n.to_string());
    line("kernel_name", h.kernel_name.clone());
    line("kernel_release", h.kernel_release.clone());
    line("arch", h.arch.clone());
    line("cpu_model", h.cpu_model.clone());
    line("cpu_vendor", h.cpu_vendor.clone());
    line("total_memory_kb", num(h.total_memory_kb));
    line("hugepages_total", num(h.hugepages_total));
    line("hugepages_free", num(h.hugepages_free));
    line("hugepages_size_kb", num(h.hugepages_size_kb));
    line("online_cpus", h.online_cpus.map(|n| n.to_string()));
    line("numa_nodes", h.numa_nodes.map(|n| n.to_string()));
    line("thp_enabled", h.thp_enabled.clone());
    line("thp_defrag", h.thp_defrag.clone());
    line("kernel_cmdline", h.kernel_cmdline.clone());

    if h.cpufreq_governor.is_empty() {
        out.push_str("cpufreq_governor: (empty)\n");
    } else {
        out.push_str("cpufreq_governor:\n");
        for (cpu, gov) in &h.cpufreq_governor {
            let _ = writeln!(out, "  cpu{cpu} = {gov}");
        }
    }
    match &h.sched_tunables {
        None => out.push_str("sched_tunables: (unknown)\n"),
        Some(t) if t.is_empty() => out.push_str("sched_tunables: (empty)\n"),
        Some(t) => {
            out.push_str("sched_tunables:\n");
            for (k, v) in t {
                let _ = writeln!(out, "  {k} = {v}");
            }
        }
    }
    match &h.heap_state {
        None => out.push_str("heap_state: (unknown)\n"),
        Some(hs) => {
            out.push_str("heap_state:\n");
            let fields = [
                ("active_bytes", hs.active_bytes),
                ("allocated_bytes", hs.allocated_bytes),
                ("resident_bytes", hs.resident_bytes),
                ("mapped_bytes", hs.mapped_bytes),
                ("narenas", hs.narenas.map(|n| n as u64)),
            ];
            for (k, v) in fields {
                let _ =
                    writeln!(out, "  {k}: {}", v.map_or(UNKNOWN.to_string(), |v| v.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_context_is_all_unknown() {
        let text = format_human(&HostContext::default());
        assert!(text.starts_with("kernel_name: (unknown)\nkernel_release: (unknown)\n"));
        assert!(text.ends_with(
            "kernel_cmdline: (unknown)\ncpufreq_governor: (empty)\nsched_tunables: (unknown)\n\
             heap_state: (unknown)\n"
        ));
        assert_eq!(text.lines().count(), 17);
    }

    #[test]
    fn maps_are_indented_in_key_order() {
        let mut h = HostContext::default();
        h.cpufreq_governor.insert(10, "powersave".into());
        h.cpufreq_governor.insert(2, "performance".into());
        h.sched_tunables = Some(Default::default());
        let text = format_human(&h);
        assert!(text.contains("cpufreq_governor:\n  cpu2 = performance\n  cpu10 = powersave\n"));
        assert!(text.contains("sched_tunables: (empty)\n"));
    }
}
