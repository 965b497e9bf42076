//! Slicing: the dimensions on which the two sides' filters differ, the messages ktstr prints
//! about them, and the side labels built from them (§4.1 steps 4–6, §4.11).

use std::collections::BTreeSet;

use super::{Dim, Side, SideFilters};

/// The reference's error when both sides select the same rows.
pub const IDENTICAL_SIDES: &str = "stats compare: A and B select identical rows. Specify at \
least one per-side filter (e.g. --a-kernel 6.14 --b-kernel 6.15) to define what dimension \
separates the two sides.";

/// Dimensions whose A and B lists differ as sets, in canonical order.
pub fn derive_slicing_dims(filters: &SideFilters) -> Vec<Dim> {
    let as_set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    Dim::ALL.into_iter().filter(|&d| as_set(filters.a.get(d)) != as_set(filters.b.get(d))).collect()
}

/// The dimensions that are not slicing, in canonical order.
pub fn pairing_dims(slicing: &[Dim]) -> Vec<Dim> {
    Dim::ALL.into_iter().filter(|d| !slicing.contains(d)).collect()
}

/// The stderr warning for slicing on more than one dimension, or `None`.
pub fn multi_slice_warning(slicing: &[Dim]) -> Option<String> {
    (slicing.len() > 1).then(|| {
        let names: Vec<_> = slicing.iter().map(|d| d.name()).collect();
        format!(
            "warning: stats compare: slicing on {} dimensions [{}]; results compress multiple \
             axes into a single A/B contrast.",
            slicing.len(),
            names.join(", ")
        )
    })
}

/// A side's label: per slicing dimension the side's list (sorted, deduplicated, `|`-joined)
/// when it has 1–3 values, else the bare side letter; dimensions joined with `:`.
pub fn side_label(filters: &SideFilters, slicing: &[Dim], side: Side) -> String {
    let filter = match side {
        Side::A => &filters.a,
        Side::B => &filters.b,
    };
    let parts: Vec<String> = slicing
        .iter()
        .map(|&d| {
            let set: BTreeSet<&str> = filter.get(d).iter().map(String::as_str).collect();
            if (1..=3).contains(&set.len()) {
                set.into_iter().collect::<Vec<_>>().join("|")
            } else {
                side.letter().to_string()
            }
        })
        .collect();
    if parts.is_empty() { side.letter().to_string() } else { parts.join(":") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::SideFilter;

    fn filters(a: SideFilter, b: SideFilter) -> SideFilters {
        SideFilters::build(&SideFilter::default(), &a, &b)
    }

    #[test]
    fn derive_slicing_dims_vec_compares_as_set() {
        let f = filters(
            SideFilter::default().with(Dim::Kernel, &["6.14", "6.15", "6.14"]),
            SideFilter::default().with(Dim::Kernel, &["6.15", "6.14"]),
        );
        assert!(derive_slicing_dims(&f).is_empty());
        let f = filters(
            SideFilter::default().with(Dim::RunSource, &["a"]).with(Dim::Kernel, &["6.1"]),
            SideFilter::default(),
        );
        assert_eq!(derive_slicing_dims(&f), [Dim::Kernel, Dim::RunSource]);
        assert_eq!(
            multi_slice_warning(&derive_slicing_dims(&f)).unwrap(),
            "warning: stats compare: slicing on 2 dimensions [kernel, run-source]; results \
             compress multiple axes into a single A/B contrast."
        );
        assert_eq!(pairing_dims(&[Dim::Kernel]).len(), 7);
    }

    #[test]
    fn render_side_label_vec_dim_long_collapses_to_bare() {
        let f = filters(
            SideFilter::default()
                .with(Dim::Kernel, &["6.14"])
                .with(Dim::Scheduler, &["d", "c", "b", "a"]),
            SideFilter::default().with(Dim::Kernel, &["6.15", "6.13"]).with(Dim::Scheduler, &["x"]),
        );
        let slicing = derive_slicing_dims(&f);
        assert_eq!(side_label(&f, &slicing, Side::A), "6.14:A");
        assert_eq!(side_label(&f, &slicing, Side::B), "6.13|6.15:x");
        let f = filters(SideFilter::default().with(Dim::Kernel, &["6.1"]), SideFilter::default());
        assert_eq!(side_label(&f, &[Dim::Kernel], Side::B), "B", "empty list renders bare");
    }
}
