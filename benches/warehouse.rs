//! Warehouse benchmark: generates a realistic sidecar archive and measures, in one run,
//! parse-only throughput, cold ingest, no-op re-ingest, list-values from the database vs a
//! JSON walk, database size vs JSON bytes, and a commit-vs-commit compare from the database
//! vs the same compare from a JSON walk, each printed next to its target.
//!
//! Both compares call `ktstr::compare::run`, the function `stats compare` calls; they differ
//! only in the row source (the warehouse, or a walk of the sidecar files), so the benchmark
//! measures the command's own pipeline and cannot drift from it.
//!
//! `cargo bench --bench warehouse`; `KTSTR_BENCH_SIDECARS=N` changes the archive size
//! (default 100,000), `KTSTR_BENCH_INGEST_ONLY=1` stops after the ingest figures (for a
//! profiler), `KTSTR_BENCH_KEEP=DIR` keeps the archive in DIR and `KTSTR_BENCH_REUSE=1`
//! ingests the one already there. Values are pseudo-random but deterministic (a fixed-seed xorshift); documents
//! are shaped like ktstr's multi-cgroup sidecars (see `support/archive.rs`).
//!
//! # Figures for scripts
//! Besides the human-readable lines, each headline figure is printed once on a line of its
//! own, `figure: <name>=<number>` (the name stable, the number without units or separators),
//! so a script can `grep '^figure: '`:
//! - `mean_document_bytes`: mean size of a generated sidecar;
//! - `cold_ingest_per_s`, `cold_ingest_mb_per_s`: cold ingest of the archive into an empty
//!   warehouse (wall clock: depends on the machine's load);
//! - `writer_cpu_us_per_sidecar`, `writer_ceiling_per_s`: CPU time of the single writer thread
//!   per sidecar (`getrusage(RUSAGE_THREAD)`), and its inverse, the rate no number of cores
//!   can exceed;
//! - `ingest_cpu_us_per_sidecar`, `two_core_ceiling_per_s`: CPU time of the whole process
//!   (every thread) per sidecar during the cold ingest, and the rate two cores allow at that
//!   cost; neither depends on the load;
//! - `noop_reingest_pct_of_cold`: re-ingest of the unchanged tree, as a % of the cold time;
//! - `db_bytes_per_json_byte`: warehouse size over the JSON it holds.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use rayon::prelude::*;

#[path = "support/archive.rs"]
mod archive;

use archive::{commit, generate};
use ktstr::compare::{
    self, CompareOptions, CompareReport, Dim, GateMode, NoiseSettings, PoolFacts, PoolScope, Row,
    RowSource, SideFilter, SideFilters,
};
use ktstr::dimension::ARCHIVE_SOURCE;
use ktstr::metric::METRICS;
use ktstr::sidecar::SidecarResult;
use ktstr::sidecar::read::{parse_bytes, pool_sidecar_paths, read_bytes};
use ktstr::warehouse::Warehouse;
use ktstr::warehouse::ingest::ingest_root;
use ktstr::warehouse::values::{dimension_values, test_names};

const DEFAULT_SIDECARS: usize = 100_000;

/// The sets `stats list-values` shows, computed from parsed sidecars.
#[derive(Debug, Default, PartialEq)]
struct Values(BTreeMap<&'static str, BTreeSet<String>>);

fn values_from_json(root: &Path) -> Values {
    let docs: Vec<SidecarResult> = pool_sidecar_paths(root)
        .into_par_iter()
        .filter_map(|p| read_bytes(&p).ok().and_then(|b| parse_bytes(&p, &b).ok()))
        .collect();
    let mut v = Values::default();
    for d in docs {
        let mut put = |k: &'static str, s: Option<&str>| {
            if let Some(s) = s {
                v.0.entry(k).or_default().insert(s.to_string());
            }
        };
        put("test_name", Some(&d.test_name));
        put("topology", Some(&d.topology));
        put("scheduler", Some(&d.scheduler));
        put("work_type", Some(&d.work_type));
        put("kernel_version", d.kernel_version.as_deref());
        put("kernel_commit", d.kernel_commit.as_deref());
        put("project_commit", d.project_commit.as_deref());
        put("run_source", d.run_source.as_deref());
        for f in &d.active_flags {
            put("flag", Some(f));
        }
    }
    v
}

fn values_from_db(wh: &Warehouse) -> Values {
    let d = dimension_values(wh).expect("list-values query runs");
    let mut v = Values::default();
    let optional = [
        ("kernel_version", d.kernel),
        ("project_commit", d.commit),
        ("kernel_commit", d.kernel_commit),
        ("run_source", d.source),
    ];
    for (k, vals) in optional {
        v.0.entry(k).or_default().extend(vals.into_iter().flatten());
    }
    let required = [
        ("test_name", test_names(wh).expect("test-name query runs")),
        ("topology", d.topology),
        ("scheduler", d.scheduler),
        ("work_type", d.work_type),
        ("flag", d.flags),
    ];
    for (k, vals) in required {
        v.0.entry(k).or_default().extend(vals);
    }
    v.0.retain(|_, set| !set.is_empty());
    v
}

/// The A/B contrast both compare paths run: two project commits on the same kernel, with the
/// command's defaults for everything else.
/// Commit 0 against commit 1 under the dual gate: the walk of the files present now keeps no
/// history (as ktstr's compare does), so the noise gate would judge more findings low-n on it
/// than on the warehouse. The two paths must agree on ktstr's verdicts.
fn compare_options() -> CompareOptions {
    let a = SideFilter::default().with(Dim::ProjectCommit, &[&commit(0)]);
    let b = SideFilter::default().with(Dim::ProjectCommit, &[&commit(1)]);
    let noise = NoiseSettings { gate: GateMode::Dual, ..NoiseSettings::default() };
    CompareOptions { filters: SideFilters { a, b }, noise, ..Default::default() }
}

/// Compare through the warehouse: one indexed query per side, then `stats compare`'s steps.
fn compare_from_db(wh: &Warehouse, options: &CompareOptions) -> CompareReport {
    compare::run(wh, options).expect("compare through the warehouse").report
}

/// The no-database pool: every sidecar of a runs root, walked and parsed up front.
struct WalkedPool {
    rows: Vec<Row>,
}

impl WalkedPool {
    fn walk(root: &Path) -> WalkedPool {
        let rows = pool_sidecar_paths(root)
            .into_par_iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let doc = read_bytes(&p).ok().and_then(|b| parse_bytes(&p, &b).ok())?;
                Some(row_of(i as i64 + 1, &doc))
            })
            .collect();
        WalkedPool { rows }
    }

    /// The pool as `scope` sees it: one walked root is the whole pool, relabelled under
    /// `--dir` as the warehouse does.
    fn scoped(&self, scope: &PoolScope) -> impl Iterator<Item = Row> + '_ {
        let archive = scope.archive_root.is_some();
        self.rows.iter().cloned().map(move |mut r| {
            if archive {
                r.run_source = Some(ARCHIVE_SOURCE.to_string());
            }
            r
        })
    }
}

impl RowSource for WalkedPool {
    type Error = Infallible;

    /// Filter in memory and order the rows as the warehouse does (test identity, timestamp,
    /// walk order).
    fn select_side(&self, scope: &PoolScope, f: &SideFilter) -> Result<Vec<Row>, Infallible> {
        let mut out: Vec<Row> = self.scoped(scope).filter(|r| f.matches(r)).collect();
        out.sort_by(|x, y| {
            (&x.scenario, &x.topology, &x.scheduler, &x.work_type, &x.timestamp, x.sidecar_id).cmp(
                &(&y.scenario, &y.topology, &y.scheduler, &y.work_type, &y.timestamp, y.sidecar_id),
            )
        });
        Ok(out)
    }

    fn pool_facts(&self, scope: &PoolScope) -> Result<PoolFacts, Infallible> {
        let mut facts = PoolFacts::default();
        for r in self.scoped(scope) {
            facts.total += 1;
            facts.project_commits.extend(r.project_commit);
            facts.kernel_commits.extend(r.kernel_commit);
            match r.run_source {
                Some(s) => {
                    facts.run_sources.insert(s);
                }
                None => facts.null_run_sources += 1,
            }
        }
        Ok(facts)
    }
}

/// Compare the no-database way: walk and parse the whole pool, then the same `compare::run`.
fn compare_from_json(root: &Path, options: &CompareOptions) -> CompareReport {
    let pool = WalkedPool::walk(root);
    compare::run(&pool, options).expect("compare over the walked pool").report
}

/// A parsed sidecar as compare sees it, by the rules ingest stores it with: a non-finite or
/// writer-replaced registry value is missing, a non-finite ext value reads as NaN.
fn row_of(id: i64, d: &SidecarResult) -> Row {
    let mut metrics = [None; METRICS.len()];
    for (slot, def) in metrics.iter_mut().zip(METRICS.iter()) {
        let v = (def.extract)(d);
        let replaced = d.provenance.non_finite_fields.iter().any(|p| {
            p.strip_prefix("stats.").or_else(|| p.strip_prefix("monitor.")) == Some(def.name)
        });
        *slot = (v.is_finite() && !replaced).then_some(v);
    }
    Row {
        sidecar_id: id,
        scenario: d.test_name.clone(),
        topology: d.topology.clone(),
        scheduler: d.scheduler.clone(),
        work_type: d.work_type.clone(),
        flags: d.active_flags.clone(),
        kernel_version: d.kernel_version.clone(),
        kernel_commit: d.kernel_commit.clone(),
        project_commit: d.project_commit.clone(),
        run_source: d.run_source.clone(),
        passed: d.passed,
        skipped: d.skipped,
        timestamp: d.timestamp.clone(),
        dirty_fingerprint: d.provenance.dirty_fingerprint.clone(),
        run_token: d.provenance.run_token.clone(),
        repeat: d.provenance.repeat,
        host_json: d.host.as_ref().and_then(|h| serde_json::to_string(h).ok()).map(Into::into),
        metrics,
        ext: d
            .stats
            .ext_metrics
            .iter()
            .map(|(k, v)| (k.clone(), if v.is_finite() { *v } else { f64::NAN }))
            .collect(),
    }
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(path) else { return 0 };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() { dir_bytes(&p) } else { e.metadata().map_or(0, |m| m.len()) }
        })
        .sum()
}

/// CPU time of every thread of this process so far (user and system).
fn process_cpu() -> Duration {
    // SAFETY: getrusage writes one rusage into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Cold ingest of `root` into the empty `wh`, then a no-op re-ingest: prints their figures and
/// returns (cold, no-op) wall times.
fn ingest_figures(
    wh: &mut Warehouse,
    root: &Path,
    n: usize,
    json_bytes: u64,
) -> (Duration, Duration) {
    let (t, cpu) = (Instant::now(), process_cpu());
    let cold = ingest_root(wh, root, None).expect("cold ingest");
    let (cold_time, cold_cpu) = (t.elapsed(), process_cpu() - cpu);
    assert_eq!(cold.new_sidecars, n, "cold ingest stores every sidecar");
    let cold_rate = n as f64 / secs(cold_time);
    let writer_us = secs(cold.writer_cpu) * 1e6 / n as f64;
    let cpu_us = secs(cold_cpu) * 1e6 / n as f64;
    println!(
        "cold ingest: {:.2} s, {cold_rate:.0} files/s, {:.1} MB/s of JSON; CPU per sidecar: \
         writer thread {writer_us:.1} us, whole process {cpu_us:.1} us",
        secs(cold_time),
        json_bytes as f64 / 1e6 / secs(cold_time)
    );
    println!("figure: cold_ingest_per_s={cold_rate:.0}");
    println!("figure: cold_ingest_mb_per_s={:.1}", json_bytes as f64 / 1e6 / secs(cold_time));
    println!("figure: writer_cpu_us_per_sidecar={writer_us:.1}");
    println!("figure: writer_ceiling_per_s={:.0}", 1e6 / writer_us.max(1e-9));
    println!("figure: ingest_cpu_us_per_sidecar={cpu_us:.1}");
    println!("figure: two_core_ceiling_per_s={:.0}", 2e6 / cpu_us.max(1e-9));

    let t = Instant::now();
    let again = ingest_root(wh, root, None).expect("re-ingest");
    let noop_time = t.elapsed();
    assert_eq!((again.parsed, again.new_sidecars), (0, 0), "an unchanged tree is stat-only");
    let pct = secs(noop_time) / secs(cold_time) * 100.0;
    println!("no-op re-ingest: {:.3} s ({pct:.2} % of cold)", secs(noop_time));
    println!("figure: noop_reingest_pct_of_cold={pct:.2}");
    (cold_time, noop_time)
}

/// The warehouse's bytes (database, WAL and all) next to the JSON's; returns them.
fn db_size_figure(base: &Path, root: &Path, json_bytes: u64) -> u64 {
    let db_bytes = dir_bytes(base) - dir_bytes(root);
    println!("database {:.1} MB vs JSON {:.1} MB", db_bytes as f64 / 1e6, json_bytes as f64 / 1e6);
    println!("figure: db_bytes_per_json_byte={:.3}", db_bytes as f64 / json_bytes as f64);
    db_bytes
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let n: usize = std::env::var("KTSTR_BENCH_SIDECARS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SIDECARS);
    let tmp = tempfile::tempdir().expect("temp dir");
    // `KTSTR_BENCH_KEEP=DIR`: build the archive and warehouse in DIR and leave them there, so
    // a profiler can run `stats compare --no-ingest` on the same warehouse afterwards.
    let kept = std::env::var_os("KTSTR_BENCH_KEEP").map(std::path::PathBuf::from);
    let base = kept.as_deref().unwrap_or(tmp.path());
    let root = base.join("runs");
    let db = base.join("warehouse.sqlite");

    // `KTSTR_BENCH_REUSE=1` (with `KTSTR_BENCH_KEEP`): ingest the archive a previous run left
    // in DIR instead of generating one, so two builds can be measured on the same files.
    let reuse = kept.is_some() && root.is_dir() && std::env::var_os("KTSTR_BENCH_REUSE").is_some();
    for stale in ["warehouse.sqlite", "warehouse.sqlite-wal", "warehouse.sqlite-shm"] {
        let _ = fs::remove_file(base.join(stale));
    }
    let t = Instant::now();
    let (n, json_bytes) = if reuse {
        (pool_sidecar_paths(&root).len(), dir_bytes(&root))
    } else {
        (n, generate(&root, n))
    };
    println!(
        "generated {n} sidecars ({:.1} MB, {:.0} bytes each) in {:.1} s on {} threads",
        json_bytes as f64 / 1e6,
        json_bytes as f64 / n as f64,
        secs(t.elapsed()),
        rayon::current_num_threads()
    );
    println!("figure: mean_document_bytes={:.0}", json_bytes as f64 / n as f64);

    let t = Instant::now();
    let parsed = pool_sidecar_paths(&root)
        .into_par_iter()
        .filter(|p| read_bytes(p).ok().and_then(|b| parse_bytes(p, &b).ok()).is_some())
        .count();
    let parse_time = t.elapsed();
    assert_eq!(parsed, n, "every generated sidecar parses");
    let parse_rate = n as f64 / secs(parse_time);
    println!(
        "parse-only (walk + read + parse, rayon): {:.2} s, {parse_rate:.0} files/s",
        secs(parse_time)
    );

    let mut wh = Warehouse::open(&db).expect("open warehouse");
    let (cold_time, noop_time) = ingest_figures(&mut wh, &root, n, json_bytes);
    if std::env::var_os("KTSTR_BENCH_INGEST_ONLY").is_some() {
        drop(wh);
        db_size_figure(base, &root, json_bytes);
        return;
    }

    let t = Instant::now();
    let from_db = values_from_db(&wh);
    let db_values_time = t.elapsed();
    let t = Instant::now();
    let from_json = values_from_json(&root);
    let json_values_time = t.elapsed();
    assert_eq!(from_db, from_json, "database and JSON walk agree on list-values");
    println!(
        "list-values: database {:.4} s, JSON walk {:.2} s",
        secs(db_values_time),
        secs(json_values_time)
    );

    // Warm once (statement cache, pages), then the median of five.
    let options = compare_options();
    let from_db = compare_from_db(&wh, &options);
    let mut db_times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let out = compare_from_db(&wh, &options);
            let d = t.elapsed();
            assert_eq!(
                out.comparison.summary, from_db.comparison.summary,
                "repeated compares agree"
            );
            d
        })
        .collect();
    db_times.sort();
    let db_compare_time = db_times[db_times.len() / 2];
    let t = Instant::now();
    let from_json = compare_from_json(&root, &options);
    let json_compare_time = t.elapsed();
    let (db_a, db_b) = (from_db.rows_a, from_db.rows_b);
    assert_eq!(
        (db_a, db_b),
        (from_json.rows_a, from_json.rows_b),
        "both paths select the same rows"
    );
    let (from_db, from_json) = (from_db.comparison, from_json.comparison);
    assert_eq!(from_db.summary, from_json.summary, "both compare paths reach the same verdicts");
    assert_eq!(from_db.findings.len(), from_json.findings.len(), "same findings");
    let s = &from_db.summary;
    println!(
        "compare {} vs {} ({db_a} vs {db_b} sidecars; {} regressions, {} improvements, {} \
         unchanged): database {:.4} s, JSON walk {:.2} s",
        commit(0),
        commit(1),
        s.regressions,
        s.improvements,
        s.unchanged,
        secs(db_compare_time),
        secs(json_compare_time)
    );

    // The same compare as a user runs it: process start, read-only open, select, gate, JSON.
    let cli_compare_time = {
        let mut times: Vec<Duration> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-ktstr"))
                    .args(["stats", "compare", "--no-ingest", "--gate", "dual", "--json", "--db"])
                    .arg(&db)
                    .args(["--a-project-commit", &commit(0), "--b-project-commit", &commit(1)])
                    .current_dir(base)
                    .env("RUST_BACKTRACE", "0")
                    .output()
                    .expect("run cargo-ktstr");
                let elapsed = t.elapsed();
                let json: serde_json::Value =
                    serde_json::from_slice(&out.stdout).expect("compare --json output");
                assert_eq!(
                    json["summary"]["regressions"].as_u64(),
                    Some(from_db.summary.regressions as u64),
                    "the CLI reaches the library's verdicts"
                );
                elapsed
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    };
    println!(
        "compare through cargo-ktstr (process start included): {:.4} s",
        secs(cli_compare_time)
    );

    drop(wh);
    let db_bytes = db_size_figure(base, &root, json_bytes);

    println!();
    let r1 = n as f64 / secs(cold_time) / parse_rate;
    let r2 = secs(noop_time) / secs(cold_time);
    let r3 = secs(json_values_time) / secs(db_values_time).max(1e-9);
    let r4 = db_bytes as f64 / json_bytes as f64;
    println!("{:<48} {:>10}  verdict", "target", "measured");
    println!(
        "{:<48} {:>9.2}x  {}",
        "cold ingest >= 0.5x parse-only throughput",
        r1,
        verdict(r1 >= 0.5)
    );
    println!(
        "{:<48} {:>9.2}%  {}",
        "no-op re-ingest <= 5% of cold ingest time",
        r2 * 100.0,
        verdict(r2 <= 0.05)
    );
    let rate = n as f64 / secs(cold_time);
    println!(
        "{:<48} {:>10.0}  {}",
        "cold ingest >= 20,000 sidecars/s (2 cores)",
        rate,
        verdict(rate >= 20_000.0)
    );
    println!(
        "{:<48} {:>9.0}x  {}",
        "list-values DB >= 50x faster than JSON walk",
        r3,
        verdict(r3 >= 50.0)
    );
    println!("{:<48} {:>9.2}x  {}", "DB bytes <= 0.3x JSON bytes", r4, verdict(r4 <= 0.3));
    let r5 = secs(json_compare_time) / secs(db_compare_time).max(1e-9);
    println!(
        "{:<48} {:>9.0}x  {}",
        "compare DB >= 20x faster than JSON walk",
        r5,
        verdict(r5 >= 20.0)
    );
    let ms = secs(db_compare_time) * 1e3;
    println!("{:<48} {:>8.1}ms  {}", "compare DB < 100 ms per compare", ms, verdict(ms < 100.0));
    let cli_ms = secs(cli_compare_time) * 1e3;
    println!(
        "{:<48} {:>8.1}ms  {}",
        "cargo-ktstr stats compare < 100 ms wall",
        cli_ms,
        verdict(cli_ms < 100.0)
    );
}
