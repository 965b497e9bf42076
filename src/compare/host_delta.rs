//! The host delta (§4.12): how the machine behind side A differs from the one behind side B,
//! as a typed list of field changes.
//!
//! Each side is represented by its first row (pool order) that recorded a host context. The
//! fields and the placeholder values (`(unknown)`, `(absent)`, …) are ktstr's; the text
//! layout is `crate::report::host_delta`'s. The delta never affects the verdict.

use std::collections::{BTreeMap, BTreeSet};

use super::{Row, Side};
use crate::sidecar::HostContext;

/// What the report says about the two sides' hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostDelta {
    /// Neither side recorded a host context: the report has no host section.
    NotRecorded,
    /// Only this side recorded one, so there is nothing to compare it with.
    OnlyIn(Side),
    /// Both recorded one and no compared field differs; `arch` when both name it.
    Identical { arch: Option<String> },
    /// Both recorded one and these fields differ, in report order (never empty).
    Differs(Vec<HostFieldChange>),
}

/// One field whose value differs between the two hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFieldChange {
    /// The field's dotted path: `cpu_model`, `cpufreq_governor.cpu3`,
    /// `sched_tunables.sched_nr_migrate`, `heap_state.active_bytes`, or `sched_tunables` /
    /// `heap_state` when only one side recorded that map or block at all.
    pub field: String,
    /// Side A's value as shown: `(unknown)` for a field not recorded, `(absent)` for a CPU
    /// or tunable missing from a recorded map, `(N entries)` / `(present)` for a whole map or
    /// block the other side lacks.
    pub a: String,
    /// Side B's value, shown the same way.
    pub b: String,
}

/// The host context of the first row that recorded one (pool order), if any.
pub fn first_host(rows: &[Row]) -> Option<HostContext> {
    rows.iter().find_map(|r| r.host_json.as_deref().and_then(|j| serde_json::from_str(j).ok()))
}

/// Compare side A's host with side B's.
pub fn host_delta(a: Option<&HostContext>, b: Option<&HostContext>) -> HostDelta {
    match (a, b) {
        (None, None) => HostDelta::NotRecorded,
        (Some(_), None) => HostDelta::OnlyIn(Side::A),
        (None, Some(_)) => HostDelta::OnlyIn(Side::B),
        (Some(a), Some(b)) => {
            let changes = host_changes(a, b);
            if changes.is_empty() {
                // `arch` is a compared field, so here both sides name the same one or neither does.
                HostDelta::Identical { arch: a.arch.clone() }
            } else {
                HostDelta::Differs(changes)
            }
        }
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "(unknown)".to_string(), T::to_string)
}

fn absent(v: Option<&String>) -> String {
    v.cloned().unwrap_or_else(|| "(absent)".to_string())
}

/// Every differing field, in ktstr's order: scalars, governors by CPU, tunables by name, heap.
fn host_changes(a: &HostContext, b: &HostContext) -> Vec<HostFieldChange> {
    let mut out = Vec::new();
    let mut field = |name: String, x: String, y: String| {
        if x != y {
            out.push(HostFieldChange { field: name, a: x, b: y });
        }
    };
    let scalars = [
        ("kernel_name", opt(&a.kernel_name), opt(&b.kernel_name)),
        ("kernel_release", opt(&a.kernel_release), opt(&b.kernel_release)),
        ("arch", opt(&a.arch), opt(&b.arch)),
        ("cpu_model", opt(&a.cpu_model), opt(&b.cpu_model)),
        ("cpu_vendor", opt(&a.cpu_vendor), opt(&b.cpu_vendor)),
        ("total_memory_kb", opt(&a.total_memory_kb), opt(&b.total_memory_kb)),
        ("hugepages_total", opt(&a.hugepages_total), opt(&b.hugepages_total)),
        ("hugepages_free", opt(&a.hugepages_free), opt(&b.hugepages_free)),
        ("hugepages_size_kb", opt(&a.hugepages_size_kb), opt(&b.hugepages_size_kb)),
        ("online_cpus", opt(&a.online_cpus), opt(&b.online_cpus)),
        ("numa_nodes", opt(&a.numa_nodes), opt(&b.numa_nodes)),
        ("thp_enabled", opt(&a.thp_enabled), opt(&b.thp_enabled)),
        ("thp_defrag", opt(&a.thp_defrag), opt(&b.thp_defrag)),
        ("kernel_cmdline", opt(&a.kernel_cmdline), opt(&b.kernel_cmdline)),
    ];
    for (name, x, y) in scalars {
        field(name.to_string(), x, y);
    }
    let cpus: BTreeSet<u32> =
        a.cpufreq_governor.keys().chain(b.cpufreq_governor.keys()).copied().collect();
    for cpu in cpus {
        field(
            format!("cpufreq_governor.cpu{cpu}"),
            absent(a.cpufreq_governor.get(&cpu)),
            absent(b.cpufreq_governor.get(&cpu)),
        );
    }
    match (&a.sched_tunables, &b.sched_tunables) {
        (Some(x), Some(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                field(format!("sched_tunables.{k}"), absent(x.get(k)), absent(y.get(k)));
            }
        }
        (None, None) => {}
        (x, y) => field("sched_tunables".to_string(), describe_map(x), describe_map(y)),
    }
    match (&a.heap_state, &b.heap_state) {
        (Some(x), Some(y)) if x != y => {
            let pairs = [
                ("active_bytes", opt(&x.active_bytes), opt(&y.active_bytes)),
                ("allocated_bytes", opt(&x.allocated_bytes), opt(&y.allocated_bytes)),
                ("resident_bytes", opt(&x.resident_bytes), opt(&y.resident_bytes)),
                ("mapped_bytes", opt(&x.mapped_bytes), opt(&y.mapped_bytes)),
                ("narenas", opt(&x.narenas), opt(&y.narenas)),
            ];
            for (k, vx, vy) in pairs {
                field(format!("heap_state.{k}"), vx, vy);
            }
        }
        (Some(_), None) => field("heap_state".into(), "(present)".into(), "(unknown)".into()),
        (None, Some(_)) => field("heap_state".into(), "(unknown)".into(), "(present)".into()),
        _ => {}
    }
    out
}

/// A whole tunables map as one value, for when the other side recorded none.
fn describe_map(m: &Option<BTreeMap<String, String>>) -> String {
    match m {
        None => "(unknown)".to_string(),
        Some(m) if m.is_empty() => "(empty)".to_string(),
        Some(m) if m.len() == 1 => "(1 entry)".to_string(),
        Some(m) => format!("({} entries)", m.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::model::HostHeapState;

    fn change(field: &str, a: &str, b: &str) -> HostFieldChange {
        HostFieldChange { field: field.into(), a: a.into(), b: b.into() }
    }

    #[test]
    fn sides_without_a_host_and_identical_hosts() {
        let x86 = HostContext { arch: Some("x86_64".into()), ..Default::default() };
        assert_eq!(host_delta(None, None), HostDelta::NotRecorded);
        assert_eq!(host_delta(Some(&x86), None), HostDelta::OnlyIn(Side::A));
        assert_eq!(host_delta(None, Some(&x86)), HostDelta::OnlyIn(Side::B));
        assert_eq!(
            host_delta(Some(&x86), Some(&x86)),
            HostDelta::Identical { arch: Some("x86_64".into()) }
        );
        let bare = HostContext::default();
        assert_eq!(host_delta(Some(&bare), Some(&bare)), HostDelta::Identical { arch: None });
    }

    #[test]
    fn changes_are_typed_per_field_in_report_order() {
        let mut a = HostContext { online_cpus: Some(4), ..Default::default() };
        a.cpufreq_governor.insert(0, "performance".into());
        a.sched_tunables = Some([("x".to_string(), "1".to_string())].into());
        a.heap_state = Some(HostHeapState { active_bytes: Some(10), ..Default::default() });
        let mut b = HostContext { cpu_model: Some("Xeon".into()), ..Default::default() };
        b.cpufreq_governor.insert(1, "powersave".into());
        b.heap_state = Some(HostHeapState { active_bytes: Some(11), ..Default::default() });
        let HostDelta::Differs(changes) = host_delta(Some(&a), Some(&b)) else {
            panic!("hosts differ");
        };
        assert_eq!(
            changes,
            [
                change("cpu_model", "(unknown)", "Xeon"),
                change("online_cpus", "4", "(unknown)"),
                change("cpufreq_governor.cpu0", "performance", "(absent)"),
                change("cpufreq_governor.cpu1", "(absent)", "powersave"),
                change("sched_tunables", "(1 entry)", "(unknown)"),
                change("heap_state.active_bytes", "10", "11"),
            ]
        );
        b.heap_state = None;
        b.sched_tunables = Some([("x".to_string(), "2".to_string())].into());
        let HostDelta::Differs(changes) = host_delta(Some(&a), Some(&b)) else {
            panic!("hosts differ");
        };
        assert_eq!(
            changes[4..],
            [change("sched_tunables.x", "1", "2"), change("heap_state", "(present)", "(unknown)")]
        );
    }

    #[test]
    fn the_first_row_with_a_host_represents_its_side() {
        let mut rows = vec![Row::new("t"), Row::new("t"), Row::new("t")];
        rows[1].host_json = Some(r#"{"arch":"aarch64"}"#.into());
        rows[2].host_json = Some(r#"{"arch":"x86_64"}"#.into());
        assert_eq!(first_host(&rows).and_then(|h| h.arch).as_deref(), Some("aarch64"));
        assert_eq!(first_host(&rows[..1]), None);
    }
}
