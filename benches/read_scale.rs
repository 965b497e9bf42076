//! Read-path benchmark at archive scale: `stats compare --no-ingest` and `stats list-values`
//! on the 100k- and 1M-sidecar warehouses of benches/support/scale_archive.rs (built once,
//! cached under the target directory), each run as the release binary in its own process.
//!
//! Per command and size: the median wall time and CPU time (user + system) of seven runs after
//! one warm-up, and the highest peak RSS, from `getrusage(RUSAGE_CHILDREN)` in a small helper
//! process that runs the binary (see [`run_child`]). Printed next to the targets of issue 16,
//! with the 1M/100k ratios of the same run and the machine's load (`/proc/loadavg`) before
//! and after.
//!
//! `cargo bench --bench read_scale`; `KTSTR_BENCH_SCALES=100000,1000000` picks the sizes.
//! `scripts/perf-figures.sh` runs it together with the ingest benchmark.

#[path = "support/archive.rs"]
#[expect(dead_code, reason = "the read benchmark builds its archive through scale_archive")]
mod archive;
#[path = "support/scale_archive.rs"]
mod scale_archive;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use archive::commit;

/// Timed runs per command, after one warm-up run.
const RUNS: usize = 7;

/// One finished child: what it cost and how it ended.
struct Measured {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: u64,
    code: i32,
}

/// Run the release binary with `args`, stdout to `out`, through a copy of this benchmark in
/// [`MEASURE_CHILD`] mode: a child's peak RSS counts the memory of the process it was forked
/// from, and this one holds the archive it built, so the binary is forked from a small helper
/// that reports `getrusage(RUSAGE_CHILDREN)` after reaping it.
fn run_child(cwd: &Path, args: &[String], out: &Path) -> Measured {
    let helper = std::env::current_exe().expect("this benchmark's path");
    let report = Command::new(helper)
        .arg(MEASURE_CHILD)
        .arg(out)
        .arg(env!("CARGO_BIN_EXE_cargo-ktstr"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the measuring helper");
    let text = String::from_utf8_lossy(&report.stdout);
    let fields: Vec<u64> = text.split_whitespace().map(|f| f.parse().expect("a count")).collect();
    let [wall_ns, cpu_ns, max_rss_kib, code] = fields[..] else {
        panic!("the measuring helper printed {text:?}")
    };
    Measured {
        wall: Duration::from_nanos(wall_ns),
        cpu: Duration::from_nanos(cpu_ns),
        max_rss_kib,
        code: code as i32,
    }
}

/// The first argument that makes this benchmark the measuring helper of [`run_child`]:
/// `MEASURE_CHILD OUT PROGRAM ARGS...` runs PROGRAM with stdout to OUT and prints its wall
/// time and CPU time in ns, its peak RSS in KiB and its exit code.
const MEASURE_CHILD: &str = "--measure-child";

fn measure_child(args: &[String]) {
    let [out, program, rest @ ..] = args else { panic!("{MEASURE_CHILD} OUT PROGRAM ARGS...") };
    let stdout = File::create(out).expect("create the output file");
    let started = Instant::now();
    let status = Command::new(program)
        .args(rest)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .status()
        .expect("run the measured program");
    let wall = started.elapsed();
    // SAFETY: getrusage writes one rusage into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    let code = status.code().map_or(u64::MAX, |c| c as u64);
    println!("{} {} {} {code}", wall.as_nanos(), ns(ru.ru_utime) + ns(ru.ru_stime), ru.ru_maxrss);
}

/// Median wall, median CPU and the highest peak RSS of [`RUNS`] runs (after a warm-up whose
/// exit code must be in `codes`); the output of the last run is left in `out`.
fn measure(cwd: &Path, args: &[String], out: &Path, codes: &[i32]) -> (Duration, Duration, u64) {
    let warm = run_child(cwd, args, out);
    assert!(
        codes.contains(&warm.code),
        "cargo-ktstr {} exited {}: {}",
        args.join(" "),
        warm.code,
        std::fs::read_to_string(out).unwrap_or_default()
    );
    let runs: Vec<Measured> = (0..RUNS).map(|_| run_child(cwd, args, out)).collect();
    assert!(runs.iter().all(|r| r.code == warm.code), "the same exit code every run");
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    (
        median(runs.iter().map(|r| r.wall).collect()),
        median(runs.iter().map(|r| r.cpu).collect()),
        runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0),
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string()
}

/// The figures of one archive size.
struct Figures {
    n: usize,
    compare: (Duration, Duration, u64),
    values: (Duration, Duration, u64),
    sides: String,
}

fn figures(db: &Path, n: usize, cwd: &Path) -> Figures {
    let db = db.to_str().expect("utf-8 cache path").to_string();
    let (a, b) = (commit(0), commit(1));
    let args = |rest: &[&str]| -> Vec<String> { rest.iter().map(|s| s.to_string()).collect() };
    let compare = args(&[
        "stats",
        "compare",
        "--no-ingest",
        "--db",
        &db,
        "--a-project-commit",
        &a,
        "--b-project-commit",
        &b,
        "--kernel",
        &scale_archive::kernel_of_commit(0),
    ]);
    let out = cwd.join("compare.out");
    let compare = measure(cwd, &compare, &out, &[0, 1]);
    let text = std::fs::read_to_string(&out).expect("compare output");
    let sides = text
        .lines()
        .find(|l| l.starts_with("averaged across"))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "(no sidecar count line)".into());
    let values = args(&["stats", "list-values", "--no-ingest", "--db", &db]);
    let out = cwd.join("values.out");
    let values = measure(cwd, &values, &out, &[0]);
    let listed = std::fs::read_to_string(&out).expect("list-values output");
    assert!(listed.contains(&scale_archive::kernel(0)), "list-values lists the kernels");
    Figures { n, compare, values, sides }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some(MEASURE_CHILD) {
        return measure_child(&argv[1..]);
    }
    let sizes: Vec<usize> = std::env::var("KTSTR_BENCH_SCALES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("KTSTR_BENCH_SCALES: comma-separated counts"))
        .collect();
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ktstr-bench-archives");
    // Outside any git repository, so commit resolution is what a compare of hex ids costs.
    let cwd = tempfile::tempdir().expect("temp dir");
    println!("load before: {}", loadavg());
    let mut all = Vec::new();
    for &n in &sizes {
        let db = scale_archive::warehouse(&cache, n);
        println!("load at {n}: {}", loadavg());
        let f = figures(&db, n, cwd.path());
        println!(
            "{n} sidecars: compare {:.1} ms wall, {:.1} ms CPU, {:.1} MiB peak; list-values \
             {:.1} ms wall, {:.1} ms CPU, {:.1} MiB peak ({})",
            ms(f.compare.0),
            ms(f.compare.1),
            mib(f.compare.2),
            ms(f.values.0),
            ms(f.values.1),
            mib(f.values.2),
            f.sides
        );
        all.push(f);
    }
    println!("load after: {}", loadavg());
    println!();
    println!(
        "{:<56} {:>10} {:>10}  verdict",
        "target (release binary, whole process)", "wall", "CPU"
    );
    for f in &all {
        let (wall_target, label) =
            if f.n >= 1_000_000 { (100.0, "<= 100 ms") } else { (50.0, "<= 50 ms") };
        let (w, c, rss) = f.compare;
        println!(
            "{:<56} {:>8.1}ms {:>8.1}ms  {}",
            format!("compare --no-ingest, {} sidecars, {label}", f.n),
            ms(w),
            ms(c),
            verdict(ms(w) <= wall_target)
        );
        let (w, c, vrss) = f.values;
        println!(
            "{:<56} {:>8.1}ms {:>8.1}ms  {}",
            format!("list-values, {} sidecars, <= 30 ms", f.n),
            ms(w),
            ms(c),
            verdict(ms(w) <= 30.0)
        );
        if f.n >= 1_000_000 {
            for (what, kib) in [("compare", rss), ("list-values", vrss)] {
                println!(
                    "{:<56} {:>8.1}MiB {:>10}  {}",
                    format!("{what} peak RSS, {} sidecars, <= 64 MiB", f.n),
                    mib(kib),
                    "",
                    verdict(mib(kib) <= 64.0)
                );
            }
        }
    }
    if let (Some(small), Some(big)) = (all.first(), all.last())
        && big.n > small.n
    {
        let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
        println!(
            "growth {} -> {} sidecars: compare wall x{:.2}, CPU x{:.2}, RSS x{:.2}; list-values \
             wall x{:.2}, CPU x{:.2}",
            small.n,
            big.n,
            ratio(small.compare.0, big.compare.0),
            ratio(small.compare.1, big.compare.1),
            big.compare.2 as f64 / small.compare.2 as f64,
            ratio(small.values.0, big.values.0),
            ratio(small.values.1, big.values.1)
        );
    }
}
