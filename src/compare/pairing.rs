//! The pairing key that joins an A group to a B group, its printed label, and the `-E`
//! haystack (§4.6).

use super::{Dim, Row};

/// `[scenario] ++ [value(d) for d in pairing dims]`; two rows pair iff keys are equal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PairingKey(pub Vec<String>);

impl PairingKey {
    pub fn of(row: &Row, pairing_dims: &[Dim]) -> Self {
        let mut parts = Vec::with_capacity(pairing_dims.len() + 1);
        parts.push(row.scenario.clone());
        for &dim in pairing_dims {
            parts.push(match dim {
                Dim::ProjectCommit | Dim::KernelCommit => {
                    strip_dirty(row.dim_value(dim).unwrap_or("")).to_string()
                }
                Dim::Flags => {
                    let mut flags = row.flags.clone();
                    flags.sort();
                    flags.join("|")
                }
                _ => row.dim_value(dim).unwrap_or("").to_string(),
            });
        }
        PairingKey(parts)
    }

    /// Parts joined with `/` (empty parts leave `//`).
    pub fn label(&self) -> String {
        self.0.join("/")
    }
}

/// One trailing `-dirty` removed, so clean and dirty runs of one HEAD pair together.
pub fn strip_dirty(commit: &str) -> &str {
    commit.strip_suffix("-dirty").unwrap_or(commit)
}

/// What `-E` matches against: scenario, topology, scheduler, work type and the flags in stored
/// order joined by `,` — never kernel, commits or run source.
pub fn filter_haystack(row: &Row) -> String {
    format!(
        "{} {} {} {} {}",
        row.scenario,
        row.topology,
        row.scheduler,
        row.work_type,
        row.flags.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_key_from_row_strips_dirty_suffix_on_commit_and_kernel_commit() {
        let mut clean = Row::new("t");
        clean.project_commit = Some("abc1234".into());
        clean.kernel_commit = Some("def5678".into());
        let mut dirty = clean.clone();
        dirty.project_commit = Some("abc1234-dirty".into());
        dirty.kernel_commit = Some("def5678-dirty".into());
        let dims = [Dim::ProjectCommit, Dim::KernelCommit];
        assert_eq!(PairingKey::of(&clean, &dims), PairingKey::of(&dirty, &dims));
        assert_eq!(PairingKey::of(&dirty, &dims).label(), "t/abc1234/def5678");
        dirty.project_commit = Some("abc1234-dirty-dirty".into());
        assert_eq!(PairingKey::of(&dirty, &dims).0[1], "abc1234-dirty", "only one suffix");
    }

    #[test]
    fn flags_are_sorted_in_the_key_and_nulls_leave_empty_parts() {
        let mut row = Row::new("t");
        row.flags = vec!["steal".into(), "llc".into()];
        let key = PairingKey::of(&row, &[Dim::Kernel, Dim::Flags]);
        assert_eq!(key.label(), "t//llc|steal");
        assert_eq!(filter_haystack(&row), "t 1n1l1c1t eevdf CpuSpin steal,llc");
    }
}
