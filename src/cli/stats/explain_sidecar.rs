//! `stats explain-sidecar`: which optional fields are null in a run's sidecars, and why.
//!
//! It explains *files*: the run directory is read as it is on disk, without touching the
//! warehouse. Only when the directory is gone does it fall back to the documents the
//! warehouse kept from it, and says so on stderr.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use super::run_lookup::{check_key, known_runs, not_found};
use crate::cli::warehouse::{Location, open_for_read};
use crate::cli::{WarehouseArgs, output};
use crate::report::explain as render;
use crate::sidecar::SidecarResult;
use crate::sidecar::explain::explain;
use crate::sidecar::read::{
    ReadError, ReadErrorKind, parse_bytes, read_sidecar, run_dir_sidecar_paths,
};
use crate::warehouse::runs::stored_documents;

#[derive(Debug, Args)]
pub struct ExplainSidecarArgs {
    /// Run directory name, or `run/job` for a job subdirectory
    #[arg(long, value_name = "ID")]
    pub run: String,
    /// Runs root to look in instead of the default
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

pub fn run(args: ExplainSidecarArgs) -> anyhow::Result<u8> {
    let id = args.run.as_str();
    check_key(id, 2)?;
    let root = Location::resolve(args.dir.as_deref(), args.warehouse.db.as_deref()).root;
    let run_dir = root.join(id);
    let inputs = if run_dir.is_dir() {
        let paths = run_dir_sidecar_paths(&run_dir);
        if paths.is_empty() {
            bail!("run '{id}' has no sidecar data (searched {})", run_dir.display());
        }
        paths.iter().map(|p| read_sidecar(p)).collect()
    } else {
        stored_inputs(&args, id)?
    };
    let ex = explain(inputs);
    output::emit(args.json, |o| render::write_json(o, &ex), |o| render::write_text(o, &ex))?;
    Ok(crate::exit_code::SUCCESS)
}

/// The run's documents as the warehouse stored them, for a run directory that is gone.
fn stored_inputs(
    args: &ExplainSidecarArgs,
    id: &str,
) -> anyhow::Result<Vec<Result<SidecarResult, ReadError>>> {
    let opened = open_for_read(args.dir.as_deref(), &args.warehouse)?;
    let (wh, root) = match &opened {
        Some((wh, loc, _)) => (Some(wh), loc.root.clone()),
        None => (None, Location::resolve(args.dir.as_deref(), None).root),
    };
    let (run, job) = match id.split_once('/') {
        Some((run, job)) => (run, Some(job)),
        None => (id, None),
    };
    let docs: Vec<Result<SidecarResult, ReadError>> = match wh {
        Some(wh) => stored_documents(wh, &root, run, job)?
            .into_iter()
            .map(|d| match d.original(wh) {
                Ok(bytes) => parse_bytes(&d.path, &bytes),
                Err(e) => Err(ReadError { path: d.path, kind: ReadErrorKind::Io(e.to_string()) }),
            })
            .collect(),
        None => Vec::new(),
    };
    if docs.is_empty() {
        return Err(not_found(id, &root, &known_runs(wh, &root)?));
    }
    eprintln!(
        "ktstr: {} no longer exists; explaining the {} sidecar(s) the warehouse kept from it",
        root.join(id).display(),
        docs.len()
    );
    Ok(docs)
}
