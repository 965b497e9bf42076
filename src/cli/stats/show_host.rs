//! `stats show-host`: the host context a run recorded.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use super::run_lookup::{check_key, known_runs, not_found};
use crate::cli::warehouse::{Location, open_for_read};
use crate::cli::{WarehouseArgs, output};
use crate::report::host::format_human;
use crate::warehouse::runs::{RunHost, run_host};

#[derive(Debug, Args)]
pub struct ShowHostArgs {
    /// Run directory name (see `cargo ktstr stats list`)
    #[arg(long, value_name = "ID")]
    pub run: String,
    /// Runs root to look in instead of the default
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

pub fn run(args: ShowHostArgs) -> anyhow::Result<u8> {
    let id = args.run.as_str();
    check_key(id, 1)?;
    let opened = open_for_read(args.dir.as_deref(), &args.warehouse)?;
    let (wh, root) = match &opened {
        Some((wh, loc, _)) => (Some(wh), loc.root.clone()),
        None => (None, Location::resolve(args.dir.as_deref(), None).root),
    };
    let runs = known_runs(wh, &root)?;
    if !runs.iter().any(|r| r == id) {
        return Err(not_found(id, &root, &runs));
    }
    let RunHost { sidecars, host } = match wh {
        Some(wh) => run_host(wh, &root, id)?,
        None => RunHost { sidecars: 0, host: None },
    };
    if sidecars == 0 {
        bail!("run '{id}' has no sidecar data");
    }
    let Some(host) = host else {
        bail!(
            "run '{id}' has {sidecars} sidecar(s) but none carries a populated host context; \
             this usually means the run predates host-context enrichment. Re-run the test to \
             produce a sidecar with the current schema."
        );
    };
    output::write_stdout(|o| o.write_all(format_human(&host).as_bytes()))?;
    Ok(crate::exit_code::SUCCESS)
}
