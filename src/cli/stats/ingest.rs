//! `stats ingest`: index a runs root into the warehouse, once or continuously (`--watch`).
//!
//! The walk, parse and insert are [`crate::warehouse::ingest`]'s and the event loop is
//! [`crate::warehouse::watch`]'s and Ctrl-C handling is [`crate::cli::interrupt`]'s; this
//! file resolves the location, stops the watch on SIGINT/SIGTERM, and renders reports (a summary paragraph or JSON on stdout, problems on stderr).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::Args;

use crate::cli::warehouse::{Location, ingest_quietly, lock_wait_notice, report_problems};
use crate::cli::{interrupt, output};
use crate::exit_code;
use crate::warehouse::Warehouse;
use crate::warehouse::ingest::{IngestOptions, IngestReport};
use crate::warehouse::watch::{WatchOptions, watch_root};

#[derive(Debug, Args)]
#[command(after_help = "\
Exit status: 0 when the ingest ran (files that could not be used are listed on stderr and \
in the report, and do not fail the run); 2 when it could not run (missing runs root, \
unusable database).")]
pub struct IngestArgs {
    /// Runs root to ingest [default: {CARGO_TARGET_DIR or target}/ktstr]
    #[arg(long, value_name = "ROOT")]
    pub dir: Option<PathBuf>,
    /// SQLite warehouse file [default: warehouse.sqlite inside the runs root]
    #[arg(long, env = "KTSTR_DB", value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Keep running and ingest sidecars as they appear, until interrupted (Ctrl-C)
    #[arg(long)]
    pub watch: bool,
    /// Print the ingest report as JSON (with --watch: one JSON object per line per ingest)
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: IngestArgs) -> anyhow::Result<u8> {
    let loc = Location::resolve(args.dir.as_deref(), args.db.as_deref());
    // Check the root first so a typo does not leave a new empty database behind.
    if let Some(e) = crate::warehouse::ingest::IngestError::check_root(&loc.root) {
        return Err(e.into());
    }
    let mut wh = Warehouse::open(&loc.db)?;
    if !args.watch {
        let report = ingest_quietly(&mut wh, &loc.root)?;
        output::write_stdout(|o| write_report(o, &report, &loc, args.json, true))?;
        return Ok(exit_code::SUCCESS);
    }

    interrupt::install(&[libc::SIGINT, libc::SIGTERM])?;
    let stop = interrupt::stop_flag();
    let mut first = true;
    let mut out_err: Option<std::io::Error> = None;
    let on_wait = lock_wait_notice(&wh);
    let opts = IngestOptions { stop: Some(stop), on_lock_wait: Some(&on_wait), progress: None };
    watch_root(&mut wh, &loc.root, WatchOptions::default(), &opts, &mut |report| {
        report_problems(report);
        let initial = std::mem::take(&mut first);
        if (initial || report.new_sidecars > 0)
            && let Err(e) = print_watch_report(report, &loc, args.json, initial)
        {
            // stdout is gone (e.g. a closed pipe): stop watching.
            out_err.get_or_insert(e);
            stop.store(true, Ordering::SeqCst);
        }
    })?;
    if let Some(e) = out_err {
        return Err(e.into());
    }
    Ok(exit_code::SUCCESS)
}

/// One `--watch` report on stdout. Unlike [`output::write_stdout`], a closed stdout is an
/// error here: the caller stops watching, since nobody reads what it would print.
fn print_watch_report(
    report: &IngestReport,
    loc: &Location,
    json: bool,
    full: bool,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    write_report(&mut out, report, loc, json, full)?;
    out.flush()
}

/// A report as one JSON line, the full summary paragraph, or the one-line `--watch` form.
fn write_report(
    out: &mut dyn Write,
    report: &IngestReport,
    loc: &Location,
    json: bool,
    full: bool,
) -> std::io::Result<()> {
    if json {
        let text = serde_json::to_string(report).map_err(std::io::Error::other)?;
        writeln!(out, "{text}")?;
    } else if full {
        writeln!(out, "{}", summary(report, loc))?;
    } else {
        writeln!(out, "{}", one_line(report))?;
    }
    Ok(())
}

/// The one-paragraph human summary of a whole ingest.
pub fn summary(r: &IngestReport, loc: &Location) -> String {
    let mut s = format!(
        "Ingested {} into {}: {} seen, {} new {}, {} already stored, {} unchanged",
        r.root.display(),
        loc.db.display(),
        plural(r.files_seen, "sidecar file"),
        r.new_sidecars,
        if r.new_sidecars == 1 { "sidecar" } else { "sidecars" },
        r.duplicates,
        r.unchanged,
    );
    if r.problems.is_empty() {
        s.push_str(", no problems");
    } else {
        let mid_write = r.problems.iter().filter(|p| p.looks_mid_write()).count();
        let unreadable = r.problems.iter().filter(|p| p.will_retry).count() - mid_write;
        s.push_str(&format!(", {} (listed on stderr", plural(r.problems.len(), "problem")));
        if mid_write > 0 {
            s.push_str(&format!("; {mid_write} look mid-write and will be retried"));
        }
        if unreadable > 0 {
            s.push_str(&format!("; {unreadable} unreadable for now, retried on the next ingest"));
        }
        s.push(')');
    }
    if r.known_corrupt > 0 {
        s.push_str(&format!(
            ", {} still unreadable since an earlier ingest",
            plural(r.known_corrupt, "file")
        ));
    }
    if r.vanished > 0 {
        s.push_str(&format!(
            ", {} gone from disk (kept in the warehouse as history)",
            plural(r.vanished, "file")
        ));
    }
    if r.lock_wait_ms >= 1000 {
        s.push_str(&format!(", after waiting {} for another ingest", elapsed(r.lock_wait_ms)));
    }
    if r.interrupted {
        s.push_str(", interrupted (the next ingest does the rest)");
    }
    s.push_str(&format!(", in {}.", elapsed(r.elapsed_ms)));
    s
}

/// One line for a `--watch` ingest that added something.
fn one_line(r: &IngestReport) -> String {
    format!(
        "{} ingested: {} new, {} already stored, {} {}",
        crate::timefmt::now_iso8601(),
        r.new_sidecars,
        r.duplicates,
        plural(r.problems.len(), "problem"),
        format_args!("({})", elapsed(r.elapsed_ms)),
    )
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

fn elapsed(ms: u64) -> String {
    if ms < 1000 { format!("{ms} ms") } else { format!("{:.1} s", ms as f64 / 1000.0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::ingest::FileProblem;

    #[test]
    fn the_summary_names_every_count_that_matters() {
        let loc = Location { root: "/r".into(), db: "/r/w.sqlite".into() };
        let mut r = IngestReport {
            root: "/r".into(),
            files_seen: 5,
            new_sidecars: 1,
            duplicates: 2,
            unchanged: 1,
            vanished: 3,
            elapsed_ms: 1500,
            ..Default::default()
        };
        r.problems.push(FileProblem {
            path: "/r/x.ktstr.json".into(),
            kind: "not-json",
            reason: "bad".into(),
            will_retry: false,
        });
        let s = summary(&r, &loc);
        assert_eq!(
            s,
            "Ingested /r into /r/w.sqlite: 5 sidecar files seen, 1 new sidecar, 2 already \
             stored, 1 unchanged, 1 problem (listed on stderr), 3 files gone from disk (kept in \
             the warehouse as history), in 1.5 s."
        );
    }
}
