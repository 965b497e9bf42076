//! `cargo ktstr kernel fetch [VERSION]` and `cargo ktstr kernel list`: the kernel cache that
//! `cargo ktstr test --kernel` boots from. Fetching and the cache itself are `ktstr_vm`'s.

use clap::{Args, Subcommand};

use ktstr_vm::kernel::cache::KernelCache;
use ktstr_vm::kernel::fetch::{FetchRequest, Flavour, fetch};

use crate::cli::ExitError;
use crate::exit_code;

/// Fetch and list the kernels `cargo ktstr test --kernel` boots.
#[derive(Debug, Args)]
pub struct KernelArgs {
    #[command(subcommand)]
    pub command: KernelCommand,
}

#[derive(Debug, Subcommand)]
pub enum KernelCommand {
    /// Put a Debian kernel of a series (default 7.3, which has sched_ext) into the kernel cache;
    /// a cached kernel of that series is reused without network access unless --refresh.
    /// `fetch 6.12 --suite trixie` gets an EEVDF-only kernel (no CONFIG_SCHED_CLASS_EXT)
    Fetch {
        /// Kernel series, e.g. 7.3
        #[arg(value_name = "VERSION", default_value = "7.3")]
        version: String,
        /// Debian flavour of the image
        #[arg(long, default_value = "cloud", value_parser = ["cloud", "generic"])]
        flavour: String,
        /// Debian suite to fetch from (trixie-backports has 7.x, trixie 6.12)
        #[arg(long, default_value = ktstr_vm::kernel::fetch::SUITE)]
        suite: String,
        /// Ask apt for a newer package even if one of the series is cached
        #[arg(long)]
        refresh: bool,
    },
    /// List the cached kernels: key, release, sched_ext, whether they boot through PVH
    List,
}

pub fn run(args: KernelArgs) -> anyhow::Result<u8> {
    let cache = KernelCache::default_location();
    match args.command {
        KernelCommand::Fetch { version, flavour, suite, refresh } => {
            let flavour = if flavour == "generic" { Flavour::Generic } else { Flavour::Cloud };
            let request = FetchRequest { series: version, flavour, suite, refresh };
            let entry = fetch(&cache, &request).map_err(|e| ExitError {
                code: exit_code::USAGE_OR_DATA_ERROR,
                message: e.to_string(),
                hint: None,
            })?;
            let m = &entry.manifest;
            println!("{}\t{}\tsched_ext={}", m.key, m.release, yes_no(m.sched_ext));
        }
        KernelCommand::List => {
            let entries = cache.list();
            if entries.is_empty() {
                eprintln!(
                    "no kernels in {}; run `cargo ktstr kernel fetch`",
                    cache.dir().display()
                );
            }
            for entry in entries {
                let m = &entry.manifest;
                let boot = if m.vmlinux.is_some() { "pvh" } else { "bzimage" };
                println!("{}\t{}\tsched_ext={}\t{boot}", m.key, m.release, yes_no(m.sched_ext));
            }
        }
    }
    Ok(exit_code::SUCCESS)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
