//! Shared by the commands that take `--run ID`: validating the key, listing the runs that
//! exist, and the "not found, did you mean" error.

use std::path::Path;

use crate::cli::ExitError;
use crate::exit_code;
use crate::sidecar::run_key;
use crate::warehouse::Warehouse;
use crate::warehouse::runs::stored_runs;

/// Refuse a key that is empty or could leave the runs root, before it is joined to a path.
pub fn check_key(id: &str, max_components: usize) -> anyhow::Result<()> {
    run_key::validate(id, max_components).map_err(|e| {
        ExitError { code: exit_code::USAGE_OR_DATA_ERROR, message: e.to_string(), hint: None }
            .into()
    })
}

/// Run directory names directly under `root` (dot-directories are not runs), sorted.
pub fn disk_runs(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Every run known on disk or to the warehouse, sorted and deduplicated.
pub fn known_runs(wh: Option<&Warehouse>, root: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = disk_runs(root);
    if let Some(wh) = wh {
        names.extend(stored_runs(wh, root)?.into_iter().map(|r| r.run));
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// ktstr's error for an unknown run, with the nearest known run suggested when one is close.
pub fn not_found(id: &str, root: &Path, candidates: &[String]) -> anyhow::Error {
    let suggestion = run_key::suggest(id, candidates.iter().map(String::as_str))
        .map(|s| format!(" Did you mean `{s}`?"))
        .unwrap_or_default();
    anyhow::anyhow!(
        "run '{id}' not found under {}.{suggestion} Run `cargo ktstr stats list` to enumerate \
         available run keys.",
        root.display()
    )
}
