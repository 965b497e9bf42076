//! Archive-tool benchmark: on the generated archive of benches/support/archive.rs (100,000 sidecars by
//! default) it measures, in one run, `stats history` of one series, `stats report --html` of
//! a 1,000-vs-1,000 compare, and `stats merge` of the whole warehouse into an empty one next
//! to a cold ingest of the same files, plus a no-op re-merge; each figure is printed next to
//! its target.
//!
//! History and report run the real binary (process start included), as a user runs them;
//! history is also timed as the library call the command makes. Merge and ingest are the
//! library calls the commands make.
//!
//! `cargo bench --bench archive`; `KTSTR_BENCH_SIDECARS=N` changes the archive size.

#[path = "support/archive.rs"]
mod archive;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ktstr::cli::stats::history::series_reports;
use ktstr::compare::{Dim, PoolScope, SideFilter};
use ktstr::warehouse::Warehouse;
use ktstr::warehouse::history::{HistoryQuery, lookup_metric};
use ktstr::warehouse::ingest::ingest_root;
use ktstr::warehouse::merge::merge_warehouse;
use ktstr::warehouse::runs::stored_documents;

use archive::{commit, generate};

/// The series the history follows: the generator's slot 0 in every run (one sidecar per run).
const SERIES: [&str; 8] = [
    "--test",
    "test_00",
    "--scheduler",
    "scx_rusty",
    "--topology",
    "1n1l4c1t",
    "--work-type",
    "SpinWait",
];
const METRIC: &str = "worst_p99_wake_latency_us";

fn median_of(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| f()).collect();
    times.sort();
    times[times.len() / 2]
}

/// CPU time (user + system) used by this process's finished children so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage writes one rusage into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Run the binary: wall time, CPU time (what the command costs on an idle machine; wall
/// time on a loaded shared one is mostly waiting for a core), and its output.
fn cli(dir: &Path, args: &[&str]) -> (Duration, Duration, std::process::Output) {
    let cpu = children_cpu();
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-ktstr"))
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run cargo-ktstr");
    (t.elapsed(), children_cpu() - cpu, out)
}

fn main() {
    let n = bench_size();
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("runs");
    let db = tmp.path().join("warehouse.sqlite");
    let db_s = db.to_str().expect("utf-8 temp path");
    let t = Instant::now();
    let bytes = generate(&root, n);
    println!(
        "generated {n} sidecars ({:.1} MB) in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut wh = Warehouse::open(&db).expect("open warehouse");
    let cold = ingest_root(&mut wh, &root, None).expect("cold ingest");
    let ingest_time = t.elapsed();
    assert_eq!(cold.new_sidecars, n);
    println!("cold ingest: {:.2} s", ingest_time.as_secs_f64());

    // History: the library call the command makes (query, then trend), then the binary.
    let metric = lookup_metric(&wh, METRIC).expect("registry metric");
    let mut filter = SideFilter::default();
    for (dim, v) in
        [(Dim::Scheduler, SERIES[3]), (Dim::Topology, SERIES[5]), (Dim::WorkType, SERIES[7])]
    {
        filter.set(dim, vec![v.to_string()]);
    }
    let scope = PoolScope::default();
    let query = HistoryQuery {
        metric: &metric,
        test_name: Some(SERIES[1]),
        filter: &filter,
        scope: &scope,
    };
    let mut commits = 0;
    let lib_history = median_of(5, || {
        let t = Instant::now();
        let reports = series_reports(&wh, &query, None).expect("history");
        let d = t.elapsed();
        assert_eq!(reports.len(), 1, "one series");
        commits = reports[0].trend.points.len();
        d
    });
    let mut history_args =
        vec!["stats", "history", "--no-ingest", "--db", db_s, "--metric", METRIC, "--json"];
    history_args.extend(SERIES);
    let mut cpu = Vec::new();
    let cli_history = median_of(5, || {
        let (d, c, out) = cli(tmp.path(), &history_args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        cpu.push(c);
        d
    });
    let cpu_history = median_of(cpu.len(), || cpu.remove(0));
    println!(
        "history of {METRIC} for one series over {commits} commits: library {:.1} ms, \
         cargo-ktstr {:.1} ms wall, {:.1} ms CPU",
        lib_history.as_secs_f64() * 1e3,
        cli_history.as_secs_f64() * 1e3,
        cpu_history.as_secs_f64() * 1e3
    );

    // Report: two commits of ~1,000 sidecars each.
    let page = tmp.path().join("report.html");
    let (c0, c1) = (commit(0), commit(1));
    let report_args = [
        "stats",
        "report",
        "--no-ingest",
        "--db",
        db_s,
        "--html",
        page.to_str().unwrap(),
        "--a-project-commit",
        &c0,
        "--b-project-commit",
        &c1,
    ];
    let mut cpu = Vec::new();
    let report_time = median_of(3, || {
        let (d, c, out) = cli(tmp.path(), &report_args);
        cpu.push(c);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        d
    });
    let cpu_report = median_of(cpu.len(), || cpu.remove(0));
    let page_bytes = std::fs::metadata(&page).expect("report written").len();
    let html = std::fs::read_to_string(&page).expect("report readable");
    let plots = html.matches("<figure class=\"distribution\"").count();
    let trends = html.matches("<figure class=\"trend\"").count();
    println!(
        "report --html {c0} vs {c1}: {:.3} s wall, {:.3} s CPU, {:.2} MB, {plots} sample plots, \
         {trends} trends",
        report_time.as_secs_f64(),
        cpu_report.as_secs_f64(),
        page_bytes as f64 / 1e6
    );
    drop(wh);

    // Merge the whole warehouse into an empty one, then again (nothing new).
    let into = tmp.path().join("merged.sqlite");
    let mut merged = Warehouse::open(&into).expect("open merge target");
    let t = Instant::now();
    let first = merge_warehouse(&mut merged, &db).expect("merge");
    let merge_time = t.elapsed();
    assert_eq!(first.new_sidecars, n, "every sidecar is new to an empty warehouse");
    let t = Instant::now();
    let again = merge_warehouse(&mut merged, &db).expect("re-merge");
    let remerge_time = t.elapsed();
    assert_eq!((again.read, again.new_sidecars), (0, 0), "an unchanged file has nothing new");
    // The copied documents decode (through the copied dictionaries) to the original bytes.
    let run = format!("6.14.2-{}-r0", commit(0));
    let docs = stored_documents(&merged, &root, &run, None).expect("stored documents");
    assert!(!docs.is_empty() && docs.iter().all(|d| d.dict_id.is_some()), "dictionary-compressed");
    for d in &docs {
        let original = d.original(&merged).expect("a merged document decodes and matches its hash");
        let path = if d.path.is_absolute() { d.path.clone() } else { root.join(&d.path) };
        assert_eq!(original, std::fs::read(path).expect("the generated file"));
    }
    let compare = |db: &str| {
        let args = [
            "stats",
            "compare",
            "--no-ingest",
            "--json",
            "--db",
            db,
            "--a-project-commit",
            &c0,
            "--b-project-commit",
            &c1,
        ];
        let (d, _, out) = cli(tmp.path(), &args);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("compare json");
        (d, v["summary"].clone())
    };
    let (d, merged_summary) = compare(into.to_str().unwrap());
    let (_, original_summary) = compare(db_s);
    assert_eq!(merged_summary, original_summary, "the merged warehouse compares as the original");
    println!(
        "merge into an empty warehouse: {:.2} s; no-op re-merge: {:.4} s; compare on the merged \
         warehouse agrees ({:.0} ms)",
        merge_time.as_secs_f64(),
        remerge_time.as_secs_f64(),
        d.as_secs_f64() * 1e3
    );

    println!();
    println!("{:<52} {:>10}  verdict", "target", "measured");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    // Verdicts on CPU time: on an idle machine wall time is CPU time plus process start; on
    // a shared, loaded one it is mostly waiting for a core (both are printed above).
    println!(
        "{:<52} {:>8.1}ms  {}",
        "history (cargo-ktstr CPU, one series) <= 50 ms",
        ms(cpu_history),
        verdict(ms(cpu_history) <= 50.0)
    );
    println!(
        "{:<52} {:>9.3}s  {}",
        "report --html 1,000 vs 1,000 (CPU) <= 1 s",
        cpu_report.as_secs_f64(),
        verdict(cpu_report.as_secs_f64() <= 1.0)
    );
    let mb = page_bytes as f64 / 1e6;
    println!("{:<52} {:>8.2}MB  {}", "report --html file <= 5 MB", mb, verdict(mb <= 5.0));
    let r = merge_time.as_secs_f64() / ingest_time.as_secs_f64();
    println!("{:<52} {:>9.2}x  {}", "merge time <= cold ingest time (ratio)", r, verdict(r <= 1.0));
    let r2 = remerge_time.as_secs_f64() / merge_time.as_secs_f64();
    println!(
        "{:<52} {:>9.2}%  {}",
        "no-op re-merge <= 5% of merge",
        r2 * 100.0,
        verdict(r2 <= 0.05)
    );
}

/// The archive size: `KTSTR_BENCH_SIDECARS`, else 100,000.
fn bench_size() -> usize {
    std::env::var("KTSTR_BENCH_SIDECARS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

/// A target's verdict column.
fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}
