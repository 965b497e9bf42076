//! `stats compare`'s commit filters checked against the pool, once the warehouse is open:
//! literal hex values become the short forms the pool stores (case-insensitive, by prefix of
//! the full id; [`match_stored`]), a value that fits two commits is refused, and each value
//! of a repeated commit flag that matches no sidecar gets a warning (a repeated flag is OR-ed,
//! so a typo in one value would otherwise vanish silently).
//!
//! Turning revspecs into commit ids is [`CommitResolver`]'s; this module only looks at what
//! they became.

use crate::cli::ExitError;
use crate::compare::revspec::{CommitResolver, StoredCommit, StoredMatch, match_stored};
use crate::compare::{Dim, PoolScope, SideFilter, SideFilters};
use crate::exit_code;
use crate::warehouse::Warehouse;
use crate::warehouse::commit_ids::stored_commits;

/// One value of one commit flag as the user gave it, and the ids it resolved to.
#[derive(Debug, Clone)]
pub struct CommitInput {
    /// The flag without dashes, e.g. `a-project-commit`.
    pub flag: String,
    pub dim: Dim,
    pub input: String,
    pub resolved: Vec<String>,
    /// The flag was given more than once.
    pub repeated: bool,
}

/// Resolve every value of one flag, recording each value's ids in `inputs`.
pub fn resolve_each(
    resolver: &CommitResolver,
    flag: &str,
    dim: Dim,
    values: &[String],
    warnings: &mut Vec<String>,
    inputs: &mut Vec<CommitInput>,
) -> Vec<String> {
    let mut all = Vec::new();
    for value in values {
        let resolved = resolver.resolve_all(flag, std::slice::from_ref(value), warnings);
        all.extend(resolved.iter().cloned());
        inputs.push(CommitInput {
            flag: flag.to_string(),
            dim,
            input: value.clone(),
            resolved,
            repeated: values.len() > 1,
        });
    }
    all
}

/// Rewrite both sides' commit values to the stored short forms they fit; returns one warning
/// per value of a repeated flag that matches nothing, or the error for an ambiguous value.
pub fn match_pool(
    wh: &Warehouse,
    scope: &PoolScope,
    filters: &mut SideFilters,
    inputs: &[CommitInput],
) -> anyhow::Result<Vec<String>> {
    // Every value matched below: both sides' (rewritten next) and the flags' own.
    let asked = |dim: Dim| -> Vec<String> {
        let mut values = filters.a.get(dim).to_vec();
        values.extend(filters.b.get(dim).iter().cloned());
        let flags = inputs.iter().filter(|i| i.dim == dim).flat_map(|i| i.resolved.iter());
        values.extend(flags.cloned());
        values
    };
    let (project, kernel) =
        stored_commits(wh, scope, &asked(Dim::ProjectCommit), &asked(Dim::KernelCommit))?;
    let stored = |dim: Dim| if dim == Dim::ProjectCommit { &project } else { &kernel };
    for side in [&mut filters.a, &mut filters.b] {
        for dim in [Dim::ProjectCommit, Dim::KernelCommit] {
            rewrite(side, dim, stored(dim), inputs).map_err(|message| ExitError {
                code: exit_code::USAGE_OR_DATA_ERROR,
                message,
                hint: None,
            })?;
        }
    }
    let warnings = inputs
        .iter()
        .filter(|i| i.repeated && !i.resolved.is_empty())
        .filter(|i| {
            i.resolved.iter().all(|r| match_stored(r, stored(i.dim)) == StoredMatch::Nothing)
        })
        .map(|i| {
            format!(
                "warning: stats compare: --{} '{}' matches no sidecar in the pool; the flag's \
                 other values still apply",
                i.flag, i.input
            )
        })
        .collect();
    Ok(warnings)
}

fn rewrite(
    side: &mut SideFilter,
    dim: Dim,
    stored: &[StoredCommit],
    inputs: &[CommitInput],
) -> Result<(), String> {
    let mut out: Vec<String> = Vec::new();
    for value in side.get(dim) {
        let found = match match_stored(value, stored) {
            StoredMatch::Found(shorts) => shorts,
            StoredMatch::Nothing => vec![value.clone()],
            StoredMatch::Ambiguous(ids) => {
                let flag = inputs
                    .iter()
                    .find(|i| i.dim == dim && i.resolved.contains(value))
                    .map_or_else(|| dim.option().to_string(), |i| i.flag.clone());
                return Err(format!(
                    "stats compare: --{flag} '{value}' is ambiguous: it fits {} commits in the \
                     pool ({}); give the full id of the one you mean, or narrow the pool with \
                     --dir",
                    ids.len(),
                    ids.join(", ")
                ));
            }
        };
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    side.set(dim, out);
    Ok(())
}
