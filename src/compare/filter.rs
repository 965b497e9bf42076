//! Per-side filters: one value list per dimension, built with "more-specific replaces"
//! (§4.2), and the rule for whether a row matches.
//!
//! The warehouse applies the same rules in SQL; [`SideFilter::matches`] is the reference the
//! SQL is tested against and what in-memory callers use.

use super::{Dim, Row};

/// The value lists of one side; an empty list means "no constraint" on that dimension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideFilter {
    values: [Vec<String>; 8],
}

/// Both sides' filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideFilters {
    pub a: SideFilter,
    pub b: SideFilter,
}

impl SideFilters {
    /// Build from the shared lists and each side's own lists: for every dimension a side's
    /// non-empty list replaces the shared one for that side only.
    pub fn build(shared: &SideFilter, a_only: &SideFilter, b_only: &SideFilter) -> Self {
        let pick = |own: &SideFilter| {
            let mut out = SideFilter::default();
            for dim in Dim::ALL {
                let src = if own.get(dim).is_empty() { shared } else { own };
                out.values[dim.index()] = src.get(dim).to_vec();
            }
            out
        };
        SideFilters { a: pick(a_only), b: pick(b_only) }
    }
}

impl SideFilter {
    pub fn get(&self, dim: Dim) -> &[String] {
        &self.values[dim.index()]
    }

    pub fn set(&mut self, dim: Dim, values: Vec<String>) {
        self.values[dim.index()] = values;
    }

    pub fn with(mut self, dim: Dim, values: &[&str]) -> Self {
        self.set(dim, values.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Whether any dimension is constrained.
    pub fn is_empty(&self) -> bool {
        self.values.iter().all(Vec::is_empty)
    }

    /// Does `row` pass every constrained dimension? A null value never matches a populated
    /// list; flags need every listed flag (AND); the other dimensions need one listed value
    /// (OR), kernels by [`kernel_matches`].
    pub fn matches(&self, row: &Row) -> bool {
        Dim::ALL.iter().all(|&dim| {
            let wanted = self.get(dim);
            if wanted.is_empty() {
                return true;
            }
            if dim == Dim::Flags {
                return wanted.iter().all(|f| row.flags.contains(f));
            }
            let Some(have) = row.dim_value(dim) else {
                return false;
            };
            if dim == Dim::Kernel {
                wanted.iter().any(|w| kernel_matches(w, have))
            } else {
                wanted.iter().any(|w| w == have)
            }
        })
    }
}

/// A `M.m` filter (exactly two dot-separated parts) matches that release and every `M.m.x`;
/// anything else matches only itself. So `6.1` matches `6.1.5` but never `6.10.0`.
pub fn kernel_matches(filter: &str, version: &str) -> bool {
    if version == filter {
        return true;
    }
    kernel_prefix(filter).is_some_and(|prefix| version.starts_with(&prefix))
}

/// The `M.m.` prefix a major.minor filter also matches, or `None` for a strict filter.
pub fn kernel_prefix(filter: &str) -> Option<String> {
    let parts: Vec<&str> = filter.split('.').collect();
    (parts.len() == 2 && parts.iter().all(|p| !p.is_empty())).then(|| format!("{filter}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_filter_matches_major_minor_prefix() {
        assert!(kernel_matches("6.1", "6.1"));
        assert!(kernel_matches("6.1", "6.1.12"));
        assert!(!kernel_matches("6.1", "6.10.0"));
        assert!(!kernel_matches("6.1", "6.10"));
    }

    #[test]
    fn kernel_filter_matches_strict_for_three_plus_segments() {
        assert!(kernel_matches("6.1.2", "6.1.2"));
        assert!(!kernel_matches("6.1.2", "6.1.2.1"));
        assert!(!kernel_matches("6.1.2", "6.1.20"));
        assert!(!kernel_matches("6", "6.1"));
    }

    #[test]
    fn build_compare_filters_per_side_overrides_shared_for_that_side_only() {
        let shared =
            SideFilter::default().with(Dim::Kernel, &["6.14"]).with(Dim::Scheduler, &["x"]);
        let a = SideFilter::default().with(Dim::Kernel, &["6.13"]);
        let f = SideFilters::build(&shared, &a, &SideFilter::default());
        assert_eq!(f.a.get(Dim::Kernel), ["6.13"]);
        assert_eq!(f.b.get(Dim::Kernel), ["6.14"]);
        assert_eq!(f.a.get(Dim::Scheduler), ["x"]);
        assert_eq!(f.b.get(Dim::Scheduler), ["x"]);
    }

    #[test]
    fn null_never_matches_a_populated_filter_and_flags_and() {
        let mut row = Row::new("t");
        row.flags = vec!["llc".into(), "steal".into()];
        assert!(!SideFilter::default().with(Dim::ProjectCommit, &["abc1234"]).matches(&row));
        assert!(SideFilter::default().with(Dim::Flags, &["llc", "steal"]).matches(&row));
        assert!(!SideFilter::default().with(Dim::Flags, &["llc", "borrow"]).matches(&row));
        assert!(SideFilter::default().matches(&row));
        row.run_source = Some("ci".into());
        let f = SideFilter::default().with(Dim::RunSource, &["local", "ci"]);
        assert!(f.matches(&row), "values within one dimension are alternatives");
    }
}
