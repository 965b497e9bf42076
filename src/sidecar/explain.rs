//! `explain-sidecar`'s analysis: which of a sidecar's ten optional fields are null, why that
//! happens, and whether the user can do anything about it.
//!
//! Input is what the caller read (parsed sidecars and read errors, from files or from the
//! warehouse's stored documents); output is an [`Explanation`]. Rendering is
//! [`crate::report::explain`]'s job.

use std::path::PathBuf;

use crate::sidecar::SidecarResult;
use crate::sidecar::read::{ReadError, ReadErrorKind};

/// Whether a null is normal for some runs, or points at something to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    Expected,
    Actionable,
}

impl Classification {
    pub fn label(self) -> &'static str {
        match self {
            Classification::Expected => "expected",
            Classification::Actionable => "actionable",
        }
    }
}

/// One optional field: how to tell it is null, and what a null means.
#[derive(Debug)]
pub struct OptionalField {
    pub name: &'static str,
    pub classification: Classification,
    pub causes: &'static [&'static str],
    pub fix: Option<&'static str>,
    pub is_none: fn(&SidecarResult) -> bool,
}

use Classification::{Actionable, Expected};

/// The ten optional sidecar fields, in the sidecar's field order.
pub static OPTIONAL_FIELDS: [OptionalField; 10] = [
    OptionalField {
        name: "scheduler_commit",
        classification: Expected,
        causes: &["no scheduler binary reports its source commit to the harness yet, so this is \
             always null today"],
        fix: None,
        is_none: |s| s.scheduler_commit.is_none(),
    },
    OptionalField {
        name: "project_commit",
        classification: Actionable,
        causes: &[
            "the test ran outside a git working tree",
            "the git tree had no commit yet (HEAD unborn)",
            "HEAD could not be read (corrupt repository or permissions)",
        ],
        fix: Some("run the tests from inside a git-tracked tree that has at least one commit"),
        is_none: |s| s.project_commit.is_none(),
    },
    OptionalField {
        name: "payload",
        classification: Expected,
        causes: &["the test ran only the scheduler scenario, without a payload binary"],
        fix: None,
        is_none: |s| s.payload.is_none(),
    },
    OptionalField {
        name: "monitor",
        classification: Actionable,
        causes: &[
            "the test was skipped or failed before the monitor took its first sample",
            "the run was too short for the monitor to collect a sample",
            "the monitor could not read the guest's scheduler state",
        ],
        fix: None,
        is_none: |s| s.monitor.is_none(),
    },
    OptionalField {
        name: "kvm_stats",
        classification: Actionable,
        causes: &[
            "the test did not run in a VM, or the VM exited before stats were read",
            "the host kernel does not expose KVM stats file descriptors",
        ],
        fix: None,
        is_none: |s| s.kvm_stats.is_none(),
    },
    OptionalField {
        name: "kernel_version",
        classification: Actionable,
        causes: &[
            "the kernel image was given without a source tree or metadata to read its version \
             from",
            "the kernel's version file could not be parsed",
        ],
        fix: None,
        is_none: |s| s.kernel_version.is_none(),
    },
    OptionalField {
        name: "kernel_commit",
        classification: Actionable,
        causes: &[
            "KTSTR_KERNEL was unset or pointed at an image or cache entry, not a git tree",
            "the kernel tree's HEAD could not be read",
        ],
        fix: Some("set KTSTR_KERNEL to a local kernel git tree"),
        is_none: |s| s.kernel_commit.is_none(),
    },
    OptionalField {
        name: "host",
        classification: Actionable,
        causes: &["the sidecar was written before host context was recorded"],
        fix: Some("re-run the test; archives from before host recording cannot be backfilled"),
        is_none: |s| s.host.is_none(),
    },
    OptionalField {
        name: "cleanup_duration_ms",
        classification: Actionable,
        causes: &[
            "the test was skipped or did not reach teardown",
            "teardown timing was not measured for this test's backend",
        ],
        fix: None,
        is_none: |s| s.cleanup_duration_ms.is_none(),
    },
    OptionalField {
        name: "run_source",
        classification: Actionable,
        causes: &[
            "the sidecar was written before run_source was recorded",
            "an old writer stored it under the key `source`, which is no longer read",
        ],
        fix: Some("re-run the test, or rename the on-disk `source` key to `run_source`"),
        is_none: |s| s.run_source.is_none(),
    },
];

/// One valid sidecar's null report.
#[derive(Debug, Clone)]
pub struct SidecarNulls {
    pub test_name: String,
    pub topology: String,
    pub scheduler: String,
    pub run_id: String,
    pub arch: Option<String>,
    pub populated: Vec<&'static str>,
    /// Indices into [`OPTIONAL_FIELDS`].
    pub none: Vec<usize>,
}

/// A file that could not be parsed.
#[derive(Debug, Clone)]
pub struct CorruptFile {
    pub path: PathBuf,
    pub error: String,
    /// A longer explanation, when the failure has a known cause.
    pub enriched: Option<String>,
}

/// A file that could not be read.
#[derive(Debug, Clone)]
pub struct UnreadableFile {
    pub path: PathBuf,
    pub error: String,
}

/// Per-field totals across the valid sidecars.
#[derive(Debug, Clone, Copy)]
pub struct FieldCount {
    pub field: &'static OptionalField,
    pub none_count: usize,
    pub some_count: usize,
}

/// Everything `explain-sidecar` reports.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub walked: usize,
    pub sidecars: Vec<SidecarNulls>,
    pub corrupt: Vec<CorruptFile>,
    pub io_errors: Vec<UnreadableFile>,
}

impl Explanation {
    pub fn valid(&self) -> usize {
        self.sidecars.len()
    }

    /// Totals per field, in [`OPTIONAL_FIELDS`] order.
    pub fn field_counts(&self) -> Vec<FieldCount> {
        OPTIONAL_FIELDS
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let none_count = self.sidecars.iter().filter(|s| s.none.contains(&i)).count();
                FieldCount { field, none_count, some_count: self.sidecars.len() - none_count }
            })
            .collect()
    }
}

/// Analyse what was read. Every input counts as walked; valid sidecars are sorted by
/// (test name, run id) so the report does not depend on read order.
pub fn explain(inputs: Vec<Result<SidecarResult, ReadError>>) -> Explanation {
    let mut out =
        Explanation { walked: inputs.len(), sidecars: vec![], corrupt: vec![], io_errors: vec![] };
    for input in inputs {
        match input {
            Ok(doc) => out.sidecars.push(nulls_of(&doc)),
            Err(ReadError { path, kind: ReadErrorKind::Io(e) }) => {
                out.io_errors.push(UnreadableFile { path, error: e })
            }
            Err(ReadError { path, kind }) => out.corrupt.push(corrupt(path, kind)),
        }
    }
    out.sidecars.sort_by(|a, b| (&a.test_name, &a.run_id).cmp(&(&b.test_name, &b.run_id)));
    out
}

fn nulls_of(doc: &SidecarResult) -> SidecarNulls {
    let mut populated = Vec::new();
    let mut none = Vec::new();
    for (i, f) in OPTIONAL_FIELDS.iter().enumerate() {
        if (f.is_none)(doc) {
            none.push(i);
        } else {
            populated.push(f.name);
        }
    }
    SidecarNulls {
        test_name: doc.test_name.clone(),
        topology: doc.topology.clone(),
        scheduler: doc.scheduler.clone(),
        run_id: doc.run_id.clone(),
        arch: doc.host.as_ref().and_then(|h| h.arch.clone()),
        populated,
        none,
    }
}

fn corrupt(path: PathBuf, kind: ReadErrorKind) -> CorruptFile {
    let (error, enriched) = match &kind {
        ReadErrorKind::Truncated(e) | ReadErrorKind::NotJson(e) | ReadErrorKind::Schema(e) => {
            (e.clone(), None)
        }
        ReadErrorKind::MissingField(name) => {
            (format!("missing field `{name}`"), Some(kind.to_string()))
        }
        _ => (kind.to_string(), None),
    };
    CorruptFile { path, error, enriched }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::HostContext;
    use std::path::Path;

    #[test]
    fn nulls_are_counted_per_field_and_sidecars_sorted() {
        let mut full = SidecarResult::empty("b_test");
        full.project_commit = Some("abc1234".into());
        full.run_source = Some("local".into());
        full.host = Some(HostContext { arch: Some("x86_64".into()), ..Default::default() });
        let bare = SidecarResult::empty("a_test");
        let bad = ReadError {
            path: "x.ktstr.json".into(),
            kind: ReadErrorKind::MissingField("host".into()),
        };
        let io =
            ReadError { path: "y.ktstr.json".into(), kind: ReadErrorKind::Io("denied".into()) };
        let ex = explain(vec![Ok(full), Ok(bare), Err(bad), Err(io)]);
        assert_eq!((ex.walked, ex.valid()), (4, 2));
        assert_eq!(ex.sidecars[0].test_name, "a_test");
        assert_eq!(ex.sidecars[0].none.len(), 10);
        assert_eq!(ex.sidecars[1].populated, vec!["project_commit", "host", "run_source"]);
        assert_eq!(ex.sidecars[1].arch.as_deref(), Some("x86_64"));
        let counts = ex.field_counts();
        let pc = counts.iter().find(|c| c.field.name == "project_commit").unwrap();
        assert_eq!((pc.none_count, pc.some_count), (1, 1));
        assert_eq!(ex.corrupt[0].error, "missing field `host`");
        assert!(ex.corrupt[0].enriched.is_some());
        assert_eq!(ex.io_errors[0].path, Path::new("y.ktstr.json"));
    }

    #[test]
    fn every_field_has_causes_and_the_catalog_matches_the_reference() {
        for f in &OPTIONAL_FIELDS {
            assert!((1..=5).contains(&f.causes.len()), "{}", f.name);
        }
        let expected: Vec<_> = OPTIONAL_FIELDS
            .iter()
            .filter(|f| f.classification == Expected)
            .map(|f| f.name)
            .collect();
        assert_eq!(expected, vec!["scheduler_commit", "payload"]);
        let with_fix: Vec<_> =
            OPTIONAL_FIELDS.iter().filter(|f| f.fix.is_some()).map(|f| f.name).collect();
        assert_eq!(with_fix, vec!["project_commit", "kernel_commit", "host", "run_source"]);
    }
}
