//! A CPU topology and its string form `{n}n{l}l{c}c{t}t` (NUMA nodes, LLCs in total, cores per
//! LLC, threads per core), e.g. `1n2l4c2t`: parsing, rendering and the rules every topology
//! obeys (no zero dimension, LLCs spread evenly over the nodes).
//!
//! Errors name dimensions by their `#[ktstr_test]` attribute keys (`numa_nodes`, `llcs`,
//! `cores`, `threads`), since that is where users write them. Named presets are
//! [`crate::presets`]'s; what a topology means for a run (host capacity, gauntlet
//! constraints) is the runtime's.

use std::fmt;
use std::str::FromStr;

/// The attribute keys of the four dimensions, in [`Topology::new`]'s argument order.
pub const DIM_KEYS: [&str; 4] = ["numa_nodes", "llcs", "cores", "threads"];

/// A CPU topology: `numa_nodes` nodes holding `llcs` last-level caches in total, each with
/// `cores_per_llc` cores of `threads_per_core` hardware threads. Renders as `{n}n{l}l{c}c{t}t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Topology {
    pub numa_nodes: u32,
    pub llcs: u32,
    pub cores_per_llc: u32,
    pub threads_per_core: u32,
}

impl Topology {
    /// ktstr's default when neither the test nor its scheduler says otherwise: `1n1l2c1t`.
    pub const DEFAULT: Topology = Topology::new(1, 1, 2, 1);

    pub const fn new(
        numa_nodes: u32,
        llcs: u32,
        cores_per_llc: u32,
        threads_per_core: u32,
    ) -> Self {
        Topology { numa_nodes, llcs, cores_per_llc, threads_per_core }
    }

    /// Logical CPUs this topology has (saturating, so a silly declaration cannot overflow).
    pub const fn total_cpus(&self) -> u32 {
        self.llcs.saturating_mul(self.cores_per_llc).saturating_mul(self.threads_per_core)
    }

    /// The rule this topology breaks, if any, without saying which topology it is (for callers
    /// that point at the offending value themselves).
    pub fn check(&self) -> Result<(), Impossible> {
        let dims = [self.numa_nodes, self.llcs, self.cores_per_llc, self.threads_per_core];
        if let Some(i) = dims.iter().position(|v| *v == 0) {
            return Err(Impossible::ZeroDimension(DIM_KEYS[i]));
        }
        if !self.llcs.is_multiple_of(self.numa_nodes) {
            return Err(Impossible::LlcsNotMultipleOfNodes {
                llcs: self.llcs,
                numa_nodes: self.numa_nodes,
            });
        }
        Ok(())
    }

    /// Why this topology is impossible, if it is, naming it.
    pub fn validate(&self) -> Result<(), TopologyError> {
        self.check().map_err(|why| TopologyError::Impossible { input: self.to_string(), why })
    }
}

impl Default for Topology {
    fn default() -> Self {
        Topology::DEFAULT
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}n{}l{}c{}t",
            self.numa_nodes, self.llcs, self.cores_per_llc, self.threads_per_core
        )
    }
}

impl FromStr for Topology {
    type Err = TopologyError;

    /// Parses `{n}n{l}l{c}c{t}t`, e.g. `1n2l4c2t`, and checks it is a possible topology.
    fn from_str(s: &str) -> Result<Self, TopologyError> {
        let malformed = || TopologyError::Malformed(s.to_string());
        let mut rest = s;
        let mut dims = [0u32; 4];
        for (dim, suffix) in dims.iter_mut().zip(['n', 'l', 'c', 't']) {
            let end = rest.find(suffix).ok_or_else(malformed)?;
            *dim = rest[..end].parse().map_err(|_| malformed())?;
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            return Err(malformed());
        }
        let topo = Topology::new(dims[0], dims[1], dims[2], dims[3]);
        topo.check().map_err(|why| TopologyError::Impossible { input: s.to_string(), why })?;
        Ok(topo)
    }
}

/// A rule a topology breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impossible {
    /// The dimension (by attribute key) is zero.
    ZeroDimension(&'static str),
    /// The LLCs cannot be spread evenly over the nodes.
    LlcsNotMultipleOfNodes { llcs: u32, numa_nodes: u32 },
}

impl fmt::Display for Impossible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Impossible::ZeroDimension(key) => write!(f, "`{key}` must be greater than 0"),
            Impossible::LlcsNotMultipleOfNodes { llcs, numa_nodes } => {
                write!(f, "`llcs` ({llcs}) must be a multiple of `numa_nodes` ({numa_nodes})")
            }
        }
    }
}

/// Why a topology string or preset name was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopologyError {
    /// Not of the form `{n}n{l}l{c}c{t}t` with four `u32` numbers.
    Malformed(String),
    /// Well formed, but no machine looks like that.
    Impossible { input: String, why: Impossible },
    /// Neither a gauntlet preset name nor a topology string.
    UnknownPreset(String),
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopologyError::Malformed(s) => {
                write!(f, "invalid topology {s:?}: expected the form 1n2l4c2t")
            }
            TopologyError::Impossible { input, why } => write!(f, "topology {input:?}: {why}"),
            TopologyError::UnknownPreset(name) => {
                let names: Vec<&str> = crate::presets::PRESETS.iter().map(|p| p.0).collect();
                write!(
                    f,
                    "unknown gauntlet preset {name:?}; use a topology like \"1n2l2c1t\" or one \
                     of: {}",
                    names.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for TopologyError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Topology, TopologyError> {
        s.parse()
    }

    fn malformed(s: &str) -> TopologyError {
        TopologyError::Malformed(s.to_string())
    }

    #[test]
    fn valid_strings_round_trip() {
        let t = parse("2n4l4c2t").unwrap();
        assert_eq!(t, Topology::new(2, 4, 4, 2));
        assert_eq!(t.to_string(), "2n4l4c2t");
        assert_eq!(t.total_cpus(), 32);
        assert_eq!(parse("1n3l2c1t").unwrap(), Topology::new(1, 3, 2, 1));
        assert_eq!(parse(&Topology::DEFAULT.to_string()).unwrap(), Topology::DEFAULT);
        assert_eq!(Topology::default(), Topology::new(1, 1, 2, 1));
    }

    #[test]
    fn malformed_strings_are_rejected_with_the_expected_form() {
        for s in [
            "",
            "1n1l2c",
            "1n1l2c1tx",
            "1n1l2c1t1t",
            "1l1n2c1t",
            "n1l2c1t",
            "1n1l2c t",
            " 1n1l2c1t",
            "-1n1l2c1t",
            "1.5n1l2c1t",
            "1N1L2C1T",
        ] {
            assert_eq!(parse(s), Err(malformed(s)), "{s:?}");
        }
        assert_eq!(
            parse("1n2l2c").unwrap_err().to_string(),
            "invalid topology \"1n2l2c\": expected the form 1n2l4c2t"
        );
    }

    #[test]
    fn each_zero_dimension_is_named_by_its_attribute_key() {
        for (s, key) in [
            ("0n1l2c1t", "numa_nodes"),
            ("1n0l2c1t", "llcs"),
            ("1n1l0c1t", "cores"),
            ("1n1l2c0t", "threads"),
        ] {
            let why = Impossible::ZeroDimension(key);
            assert_eq!(parse(s), Err(TopologyError::Impossible { input: s.into(), why }));
        }
        assert_eq!(
            parse("1n0l2c1t").unwrap_err().to_string(),
            "topology \"1n0l2c1t\": `llcs` must be greater than 0"
        );
    }

    #[test]
    fn llcs_must_spread_evenly_over_nodes() {
        let err = parse("2n3l2c1t").unwrap_err();
        let why = Impossible::LlcsNotMultipleOfNodes { llcs: 3, numa_nodes: 2 };
        assert_eq!(err, TopologyError::Impossible { input: "2n3l2c1t".into(), why });
        assert_eq!(
            err.to_string(),
            "topology \"2n3l2c1t\": `llcs` (3) must be a multiple of `numa_nodes` (2)"
        );
        assert_eq!(
            Topology::new(2, 3, 2, 1).validate().unwrap_err().to_string(),
            "topology \"2n3l2c1t\": `llcs` (3) must be a multiple of `numa_nodes` (2)"
        );
        assert!(Topology::new(2, 4, 1, 1).validate().is_ok());
    }

    #[test]
    fn numbers_are_u32_and_cpu_counts_saturate() {
        let max = u32::MAX;
        let t = parse(&format!("{max}n{max}l{max}c{max}t")).unwrap();
        assert_eq!(t.total_cpus(), u32::MAX);
        let over = format!("{}n1l2c1t", u64::from(max) + 1);
        assert_eq!(parse(&over), Err(malformed(&over)));
        // Leading zeros are still the same number.
        assert_eq!(parse("01n02l2c1t").unwrap(), Topology::new(1, 2, 2, 1));
    }
}
