//! The gauntlet's named topology presets (ktstr's x86_64 list, harness-reference §3.2).
//!
//! Kept in the macro crate because the attribute resolves preset names at compile time, so a
//! typo is a compile error instead of a skipped variant. The runtime only sees the resolved
//! `GauntletVariant { preset, topology, flags }`.

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

/// A topology as `[numa_nodes, llcs, cores_per_llc, threads_per_core]`.
pub type Dims = [u32; 4];

/// Parses `{n}n{l}l{c}c{t}t` and checks it is a possible topology.
pub fn parse_topology(s: &str) -> Result<Dims, String> {
    let bad = || format!("invalid topology {s:?}: expected the form 1n2l4c2t");
    let mut rest = s;
    let mut dims = [0u32; 4];
    for (dim, suffix) in dims.iter_mut().zip(['n', 'l', 'c', 't']) {
        let end = rest.find(suffix).ok_or_else(bad)?;
        *dim = rest[..end].parse().map_err(|_| bad())?;
        rest = &rest[end + 1..];
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    check_dims(&dims).map_err(|e| format!("topology {s:?}: {e}"))?;
    Ok(dims)
}

/// The rules every topology obeys: no zero dimension, LLCs spread evenly over nodes.
pub fn check_dims(d: &Dims) -> Result<(), String> {
    let names = ["numa_nodes", "llcs", "cores", "threads"];
    if let Some(i) = d.iter().position(|v| *v == 0) {
        return Err(format!("`{}` must be greater than 0", names[i]));
    }
    if !d[1].is_multiple_of(d[0]) {
        return Err(format!("`llcs` ({}) must be a multiple of `numa_nodes` ({})", d[1], d[0]));
    }
    Ok(())
}

/// Resolves a gauntlet entry's topology part: a preset name or a literal topology string.
pub fn resolve(name: &str) -> Result<Dims, String> {
    if let Some((_, n, l, c, t)) = PRESETS.iter().find(|p| p.0 == name) {
        return Ok([*n, *l, *c, *t]);
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return parse_topology(name);
    }
    let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
    Err(format!(
        "unknown gauntlet preset {name:?}; use a topology like \"1n2l2c1t\" or one of: {}",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_unique() {
        for (i, p) in PRESETS.iter().enumerate() {
            check_dims(&[p.1, p.2, p.3, p.4]).unwrap_or_else(|e| panic!("{}: {e}", p.0));
            assert!(!PRESETS[..i].iter().any(|q| q.0 == p.0), "duplicate {}", p.0);
        }
        assert_eq!(PRESETS.len(), 24);
    }

    #[test]
    fn resolve_names_and_strings() {
        assert_eq!(resolve("smt-2llc").unwrap(), [1, 2, 2, 2]);
        assert_eq!(resolve("2n4l2c1t").unwrap(), [2, 4, 2, 1]);
        assert!(resolve("2n3l2c1t").unwrap_err().contains("multiple of `numa_nodes`"));
        assert!(resolve("tiny").unwrap_err().contains("tiny-1llc"));
        assert!(parse_topology("1n1l2c").is_err());
        assert!(parse_topology("1n0l2c1t").unwrap_err().contains("`llcs`"));
    }
}
