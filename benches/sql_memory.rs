//! `stats sql` memory benchmark: runs the real `cargo-ktstr` binary on a query that generates
//! 10 million rows (a recursive CTE, so no data set is needed) with `--csv`, `--json` and the
//! default table, and prints each run's peak resident set size (the kernel's `ru_maxrss` for
//! the child, read with `wait4`), its wall time and the bytes it wrote.
//!
//! CSV and JSON stream row by row, so their peak must stay under 100 MB whatever the row
//! count; the process exits 1 when either does not. The table keeps its first 1000 rows, so
//! it is printed for reference.
//!
//! `cargo bench --bench sql_memory`; `KTSTR_BENCH_SQL_ROWS=N` changes the row count
//! (default 10,000,000).

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const DEFAULT_ROWS: u64 = 10_000_000;
const LIMIT_BYTES: u64 = 100 * 1024 * 1024;

/// What one run of the binary cost.
struct Measured {
    peak_rss_bytes: u64,
    wall: Duration,
    stdout_bytes: u64,
    stdout_lines: u64,
}

/// Run `cargo-ktstr ARGS` with stdout counted (not kept) and wait for it with `wait4`, which
/// reports the child's peak RSS.
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped with wait4, which also reports its peak RSS"
)]
fn measure(args: &[&str]) -> Measured {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-ktstr"))
        .args(args)
        .env_remove("KTSTR_DB")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn cargo-ktstr");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut buf = vec![0u8; 1 << 16];
    let (mut stdout_bytes, mut stdout_lines) = (0u64, 0u64);
    loop {
        let n = stdout.read(&mut buf).expect("read the child's stdout");
        if n == 0 {
            break;
        }
        stdout_bytes += n as u64;
        stdout_lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is a plain C struct for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (std's `Child` is never waited on), and
    // both out-pointers are valid for the call.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "cargo-ktstr {args:?} failed (wait status {status})"
    );
    Measured {
        // Linux reports ru_maxrss in KiB.
        peak_rss_bytes: usage.ru_maxrss as u64 * 1024,
        wall: started.elapsed(),
        stdout_bytes,
        stdout_lines,
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn make_warehouse(root: &Path) {
    std::fs::create_dir_all(root).expect("create the runs root");
    let root = root.to_str().expect("a UTF-8 temp path");
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-ktstr"))
        .args(["stats", "ingest", "--dir", root])
        .output()
        .expect("spawn cargo-ktstr");
    assert!(out.status.success(), "ingest: {}", String::from_utf8_lossy(&out.stderr));
}

fn main() -> ExitCode {
    let rows: u64 = std::env::var("KTSTR_BENCH_SQL_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ROWS);
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let root = tmp.path().join("runs");
    make_warehouse(&root);
    let root = root.to_str().expect("a UTF-8 temp path");
    let query = format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) \
         SELECT x AS id, x * 2.5 AS ratio, 'row-' || x AS label, NULL AS empty FROM c"
    );
    println!("stats sql over {rows} generated rows (4 columns), stdout counted and discarded");
    let mut over = Vec::new();
    for (name, flag, streams) in
        [("--csv", Some("--csv"), true), ("--json", Some("--json"), true), ("table", None, false)]
    {
        let mut args = vec!["stats", "sql", "--no-ingest", "--dir", root];
        args.extend(flag);
        args.push(&query);
        let m = measure(&args);
        let verdict = match (streams, m.peak_rss_bytes < LIMIT_BYTES) {
            (false, _) => "first 1000 rows only",
            (true, true) => "pass (< 100 MB)",
            (true, false) => "FAIL (>= 100 MB)",
        };
        println!(
            "  {name:<7} peak RSS {:>7.1} MB  wall {:>6.2} s  wrote {:>8.1} MB in {} lines  {verdict}",
            mb(m.peak_rss_bytes),
            m.wall.as_secs_f64(),
            mb(m.stdout_bytes),
            m.stdout_lines
        );
        if streams && m.peak_rss_bytes >= LIMIT_BYTES {
            over.push(name);
        }
        if streams && m.stdout_lines < rows {
            println!("  {name}: expected at least {rows} lines of output");
            over.push(name);
        }
    }
    if over.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
