//! The gauntlet's named topology presets (ktstr's x86_64 list, harness-reference §3.2), and
//! resolving a gauntlet entry's topology part (a preset name or a literal topology string).
//!
//! The proc-macro resolves preset names at compile time, so a typo is a compile error instead
//! of a skipped variant; the runtime only sees the resolved topology.

use crate::topology::{Topology, TopologyError};

/// `(name, numa_nodes, llcs, cores_per_llc, threads_per_core)`.
pub const PRESETS: &[(&str, u32, u32, u32, u32)] = &[
    ("tiny-1llc", 1, 1, 4, 1),
    ("tiny-2llc", 1, 2, 2, 1),
    ("odd-3llc", 1, 3, 3, 1),
    ("odd-5llc", 1, 5, 3, 1),
    ("odd-7llc", 1, 7, 2, 1),
    ("smt-2llc", 1, 2, 2, 2),
    ("smt-3llc", 1, 3, 2, 2),
    ("medium-4llc", 1, 4, 4, 2),
    ("medium-8llc", 1, 8, 4, 2),
    ("large-4llc", 1, 4, 16, 2),
    ("large-8llc", 1, 8, 8, 2),
    ("near-max-llc", 1, 15, 8, 2),
    ("max-cpu", 1, 14, 9, 2),
    ("medium-4llc-nosmt", 1, 4, 8, 1),
    ("medium-8llc-nosmt", 1, 8, 8, 1),
    ("large-4llc-nosmt", 1, 4, 32, 1),
    ("large-8llc-nosmt", 1, 8, 16, 1),
    ("near-max-llc-nosmt", 1, 15, 16, 1),
    ("max-cpu-nosmt", 1, 14, 18, 1),
    ("numa2-4llc", 2, 4, 4, 1),
    ("numa2-8llc", 2, 8, 8, 2),
    ("numa2-8llc-nosmt", 2, 8, 16, 1),
    ("numa4-8llc", 4, 8, 4, 1),
    ("numa4-12llc", 4, 12, 8, 2),
];

/// A preset's topology, or the topology a string starting with a digit spells.
pub fn resolve(name: &str) -> Result<Topology, TopologyError> {
    if let Some((_, n, l, c, t)) = PRESETS.iter().find(|p| p.0 == name) {
        return Ok(Topology::new(*n, *l, *c, *t));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return name.parse();
    }
    Err(TopologyError::UnknownPreset(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_unique() {
        for (i, p) in PRESETS.iter().enumerate() {
            Topology::new(p.1, p.2, p.3, p.4).check().unwrap_or_else(|e| panic!("{}: {e}", p.0));
            assert!(!PRESETS[..i].iter().any(|q| q.0 == p.0), "duplicate {}", p.0);
        }
        assert_eq!(PRESETS.len(), 24);
    }

    #[test]
    fn resolve_names_and_strings() {
        assert_eq!(resolve("smt-2llc").unwrap(), Topology::new(1, 2, 2, 2));
        assert_eq!(resolve("2n4l2c1t").unwrap(), Topology::new(2, 4, 2, 1));
        let not_multiple = resolve("2n3l2c1t").unwrap_err().to_string();
        assert!(not_multiple.contains("multiple of `numa_nodes`"), "{not_multiple}");
        let unknown = resolve("tiny").unwrap_err();
        assert_eq!(unknown, TopologyError::UnknownPreset("tiny".into()));
        let text = unknown.to_string();
        assert!(
            text.starts_with("unknown gauntlet preset \"tiny\"; use a topology like"),
            "{text}"
        );
        assert!(text.contains("tiny-1llc") && text.ends_with("numa4-12llc"), "{text}");
        assert!(resolve("1n1l2c").is_err());
        assert!(resolve("1n0l2c1t").unwrap_err().to_string().contains("`llcs`"));
    }
}
