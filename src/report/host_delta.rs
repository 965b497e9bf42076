//! The compare report's host section: [`HostDelta`] as ktstr's text (§4.12, byte for byte)
//! and as the `host_delta` object of the `--json` document.
//!
//! Which fields differ is decided in `crate::compare::host_delta`; this module only lays the
//! changes out. Heap-state fields (`heap_state.*`) are shown as a nested block, as ktstr does.

use serde::{Deserialize, Serialize};

use crate::compare::{HostDelta, HostFieldChange, Side};

const HEAP_STATE_PREFIX: &str = "heap_state.";

/// The host section: text starting with a newline, or empty when neither side has a host.
pub fn host_delta_text(delta: &HostDelta, label_a: &str, label_b: &str) -> String {
    match delta {
        HostDelta::NotRecorded => String::new(),
        HostDelta::OnlyIn(side) => {
            let label = if *side == Side::A { label_a } else { label_b };
            format!("\nhost: captured in '{label}' only, delta unavailable")
        }
        HostDelta::Identical { arch: Some(arch) } => {
            format!("\nhost: identical between '{label_a}' and '{label_b}' (arch: {arch})")
        }
        HostDelta::Identical { arch: None } => {
            format!("\nhost: identical between '{label_a}' and '{label_b}'")
        }
        HostDelta::Differs(changes) => {
            let mut out = format!("\nhost delta ('{label_a}' → '{label_b}'):");
            let mut in_heap_block = false;
            for c in changes {
                match c.field.strip_prefix(HEAP_STATE_PREFIX) {
                    Some(key) => {
                        if !std::mem::replace(&mut in_heap_block, true) {
                            out.push_str("\n  heap_state:");
                        }
                        out.push_str(&format!("\n    {key}: {} → {}", c.a, c.b));
                    }
                    None => out.push_str(&format!("\n  {}: {} → {}", c.field, c.a, c.b)),
                }
            }
            out
        }
    }
}

/// The `host_delta` object: `{"state": "not_recorded" | "only_a" | "only_b"}`,
/// `{"state": "identical", "arch": …}` or `{"state": "differs", "changes": [{field, a, b}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JsonHostDelta {
    NotRecorded,
    OnlyA,
    OnlyB,
    Identical { arch: Option<String> },
    Differs { changes: Vec<JsonHostChange> },
}

/// One differing field; values as the text report shows them (`(unknown)` when not recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonHostChange {
    pub field: String,
    pub a: String,
    pub b: String,
}

impl From<&HostDelta> for JsonHostDelta {
    fn from(delta: &HostDelta) -> Self {
        match delta {
            HostDelta::NotRecorded => JsonHostDelta::NotRecorded,
            HostDelta::OnlyIn(Side::A) => JsonHostDelta::OnlyA,
            HostDelta::OnlyIn(Side::B) => JsonHostDelta::OnlyB,
            HostDelta::Identical { arch } => JsonHostDelta::Identical { arch: arch.clone() },
            HostDelta::Differs(changes) => JsonHostDelta::Differs {
                changes: changes.iter().map(JsonHostChange::from).collect(),
            },
        }
    }
}

impl From<&HostFieldChange> for JsonHostChange {
    fn from(c: &HostFieldChange) -> Self {
        JsonHostChange { field: c.field.clone(), a: c.a.clone(), b: c.b.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::host_delta::host_delta;
    use crate::sidecar::HostContext;
    use crate::sidecar::model::HostHeapState;

    /// The text for two hosts, as the report prints it.
    fn text(
        label_a: &str,
        label_b: &str,
        a: Option<&HostContext>,
        b: Option<&HostContext>,
    ) -> String {
        host_delta_text(&host_delta(a, b), label_a, label_b)
    }

    #[test]
    fn format_host_delta_identical_partial_arch_falls_back() {
        let a = HostContext { arch: Some("x86_64".into()), ..Default::default() };
        let b = HostContext { arch: Some("x86_64".into()), ..Default::default() };
        assert_eq!(
            text("A", "B", Some(&a), Some(&b)),
            "\nhost: identical between 'A' and 'B' (arch: x86_64)"
        );
        let none = HostContext::default();
        assert_eq!(
            text("A", "B", Some(&none), Some(&none)),
            "\nhost: identical between 'A' and 'B'"
        );
        assert_eq!(
            text("A", "B", None, Some(&a)),
            "\nhost: captured in 'B' only, delta unavailable"
        );
        assert_eq!(text("A", "B", None, None), "");
    }

    #[test]
    fn host_delta_shapes() {
        let mut a = HostContext { online_cpus: Some(4), ..Default::default() };
        a.cpufreq_governor.insert(0, "performance".into());
        a.sched_tunables = Some([("x".to_string(), "1".to_string())].into());
        let mut b = HostContext { online_cpus: None, ..Default::default() };
        b.cpufreq_governor.insert(1, "powersave".into());
        let d = text("6.14", "6.15", Some(&a), Some(&b));
        assert_eq!(
            d,
            "\nhost delta ('6.14' → '6.15'):\n  online_cpus: 4 → (unknown)\n  \
             cpufreq_governor.cpu0: performance → (absent)\n  cpufreq_governor.cpu1: (absent) \
             → powersave\n  sched_tunables: (1 entry) → (unknown)"
        );
    }

    #[test]
    fn heap_state_changes_are_one_nested_block_after_the_flat_fields() {
        let mut a = HostContext { cpu_model: Some("EPYC".into()), ..Default::default() };
        a.heap_state =
            Some(HostHeapState { active_bytes: Some(10), narenas: Some(2), ..Default::default() });
        let mut b = HostContext { cpu_model: Some("Xeon".into()), ..Default::default() };
        b.heap_state = Some(HostHeapState {
            active_bytes: Some(11),
            mapped_bytes: Some(5),
            narenas: Some(2),
            ..Default::default()
        });
        b.sched_tunables = Some([("k".to_string(), "v".to_string())].into());
        assert_eq!(
            text("A", "B", Some(&a), Some(&b)),
            "\nhost delta ('A' → 'B'):\n  cpu_model: EPYC → Xeon\n  sched_tunables: (unknown) → \
             (1 entry)\n  heap_state:\n    active_bytes: 10 → 11\n    mapped_bytes: (unknown) → 5"
        );
        let only_b_heap = HostContext { heap_state: b.heap_state.clone(), ..Default::default() };
        assert_eq!(
            text("A", "B", Some(&HostContext::default()), Some(&only_b_heap)),
            "\nhost delta ('A' → 'B'):\n  heap_state: (unknown) → (present)"
        );
    }

    #[test]
    fn json_carries_each_state_and_every_change() {
        let a =
            HostContext { arch: Some("x86_64".into()), online_cpus: Some(4), ..Default::default() };
        let b = HostContext {
            arch: Some("aarch64".into()),
            online_cpus: Some(4),
            ..Default::default()
        };
        let json = |d: &HostDelta| serde_json::to_value(JsonHostDelta::from(d)).unwrap();
        assert_eq!(
            json(&host_delta(Some(&a), Some(&b))),
            serde_json::json!({
                "state": "differs",
                "changes": [{"field": "arch", "a": "x86_64", "b": "aarch64"}]
            })
        );
        assert_eq!(
            json(&host_delta(Some(&a), Some(&a))),
            serde_json::json!({"state": "identical", "arch": "x86_64"})
        );
        assert_eq!(json(&host_delta(None, Some(&a))), serde_json::json!({"state": "only_b"}));
        assert_eq!(json(&host_delta(Some(&a), None)), serde_json::json!({"state": "only_a"}));
        assert_eq!(json(&host_delta(None, None)), serde_json::json!({"state": "not_recorded"}));
    }
}
