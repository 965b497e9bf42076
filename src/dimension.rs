//! The eight filterable dimensions of a sidecar, and every spelling each one has: compare's
//! name and its `--X`/`--a-X`/`--b-X` option, the label `stats list-values` prints (also the
//! key of the warehouse's `dimension_value` rows), and the `ingested_sidecar` column.
//!
//! One table ([`Dim::spec`]) so the spellings cannot drift apart. This module knows nothing
//! about matching rules ([`crate::compare::filter`]), SQL statements or storage
//! ([`crate::warehouse`]); both import it from here, so compare never imports the warehouse.

/// The eight filterable dimensions, declared in ktstr's canonical order (stats-reference
/// §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    Kernel,
    Scheduler,
    Topology,
    WorkType,
    ProjectCommit,
    KernelCommit,
    RunSource,
    Flags,
}

/// Every spelling of one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DimSpec {
    /// compare's name for it: slicing lists, JSON output (`work-type`, `flags`).
    pub name: &'static str,
    /// The X of compare's `--X`, `--a-X` and `--b-X` options (`work-type`, and `flag`: one
    /// flag per occurrence).
    pub option: &'static str,
    /// The heading `stats list-values` prints and the `dimension_value.dim` key
    /// (`work_type`, `commit`).
    pub label: &'static str,
    /// The `ingested_sidecar` column holding it (`work_type`, `project_commit`); for flags the
    /// JSON array, while filtering reads the `sidecar_flag` rows.
    pub column: &'static str,
    /// Whether a sidecar may have no value (a null).
    pub nullable: bool,
}

const fn spec(
    name: &'static str,
    option: &'static str,
    label: &'static str,
    column: &'static str,
    nullable: bool,
) -> DimSpec {
    DimSpec { name, option, label, column, nullable }
}

impl Dim {
    /// Every dimension in canonical order.
    pub const ALL: [Dim; 8] = [
        Dim::Kernel,
        Dim::Scheduler,
        Dim::Topology,
        Dim::WorkType,
        Dim::ProjectCommit,
        Dim::KernelCommit,
        Dim::RunSource,
        Dim::Flags,
    ];

    /// The order `stats list-values` prints them in (ktstr's): the nullable four first.
    pub const LISTED: [Dim; 8] = [
        Dim::Kernel,
        Dim::ProjectCommit,
        Dim::KernelCommit,
        Dim::RunSource,
        Dim::Scheduler,
        Dim::Topology,
        Dim::WorkType,
        Dim::Flags,
    ];

    /// The table: one row per dimension.
    pub const fn spec(self) -> DimSpec {
        match self {
            Dim::Kernel => spec("kernel", "kernel", "kernel", "kernel_version", true),
            Dim::Scheduler => spec("scheduler", "scheduler", "scheduler", "scheduler", false),
            Dim::Topology => spec("topology", "topology", "topology", "topology", false),
            Dim::WorkType => spec("work-type", "work-type", "work_type", "work_type", false),
            Dim::ProjectCommit => {
                spec("project-commit", "project-commit", "commit", "project_commit", true)
            }
            Dim::KernelCommit => {
                spec("kernel-commit", "kernel-commit", "kernel_commit", "kernel_commit", true)
            }
            Dim::RunSource => spec("run-source", "run-source", "source", "run_source", true),
            Dim::Flags => spec("flags", "flag", "flags", "flags", false),
        }
    }

    /// compare's name for the dimension (see [`DimSpec::name`]).
    pub const fn name(self) -> &'static str {
        self.spec().name
    }

    /// The X of `--a-X` (see [`DimSpec::option`]).
    pub const fn option(self) -> &'static str {
        self.spec().option
    }

    /// `stats list-values`'s label (see [`DimSpec::label`]).
    pub const fn label(self) -> &'static str {
        self.spec().label
    }

    /// The `ingested_sidecar` column (see [`DimSpec::column`]).
    pub const fn column(self) -> &'static str {
        self.spec().column
    }

    /// Position in [`Dim::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The run source every sidecar reads as under `--dir` (ktstr's archive override): an
/// archived pool has no `local`/`ci` distinction left.
pub const ARCHIVE_SOURCE: &str = "archive";

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn all_is_the_declaration_order_and_listed_is_a_permutation_of_it() {
        for (i, dim) in Dim::ALL.iter().enumerate() {
            assert_eq!(dim.index(), i);
        }
        let listed: BTreeSet<Dim> = Dim::LISTED.into_iter().collect();
        assert_eq!(listed, Dim::ALL.into_iter().collect());
        assert_eq!(listed.len(), 8);
    }

    #[test]
    fn every_spelling_is_unique_per_kind() {
        let kinds: [fn(DimSpec) -> &'static str; 4] =
            [|s| s.name, |s| s.option, |s| s.label, |s| s.column];
        for kind in kinds {
            let spelled: BTreeSet<&str> = Dim::ALL.iter().map(|d| kind(d.spec())).collect();
            assert_eq!(spelled.len(), 8, "{spelled:?}");
        }
    }

    #[test]
    fn the_canonical_names_are_the_reference_s() {
        let names: Vec<&str> = Dim::ALL.iter().map(|d| d.name()).collect();
        assert_eq!(
            names.join(", "),
            "kernel, scheduler, topology, work-type, project-commit, kernel-commit, run-source, \
             flags"
        );
        let labels: Vec<&str> = Dim::LISTED.iter().map(|d| d.label()).collect();
        assert_eq!(
            labels,
            [
                "kernel",
                "commit",
                "kernel_commit",
                "source",
                "scheduler",
                "topology",
                "work_type",
                "flags"
            ]
        );
        let nullable: Vec<Dim> = Dim::LISTED.into_iter().filter(|d| d.spec().nullable).collect();
        assert_eq!(nullable, Dim::LISTED[..4]);
    }
}
