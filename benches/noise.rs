//! Noise gate benchmark, in one run on the same data: false alarms of random 5-vs-5 A/A
//! splits of the committed corpus (`tests/fixtures/noise-corpus`), power against the corpus'
//! injected regressions, and the cost of the noise gate on the warehouse benchmark's
//! generated archive (~1,000 vs 1,000 sidecars), each printed next to its target.
//!
//! Every compare is `ktstr::compare::run`, the function `stats compare` calls, over rows in
//! memory: the corpus is ingested once into a temporary warehouse, then each draw relabels
//! the chosen runs' project commit to `aaaaaaa` (side A) or `bbbbbbb` (side B). A run's repeat
//! is its place among its test's runs in write order, and a draw takes whole repeats, as a
//! real `--repeat 5` run would.
//!
//! `cargo bench --bench noise`; `KTSTR_BENCH_SIDECARS=N` changes the archive size (default
//! 100,000), `KTSTR_BENCH_DRAWS=N` the draws per figure (default 200).

#[path = "support/archive.rs"]
mod archive;

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::time::{Duration, Instant};

use ktstr::compare::calibrate::SplitRng;
use ktstr::compare::noise::Verdict;
use ktstr::compare::{
    self, CompareOptions, CompareReport, Dim, GateMode, NoiseSettings, PoolFacts, PoolScope, Row,
    RowSource, SideFilter, SideFilters,
};
use ktstr::warehouse::Warehouse;
use ktstr::warehouse::ingest::ingest_root;

/// The corpus' commits (see its README): the baseline and three changes.
const BASELINE: &str = "3e45189";
const CHANGES: [(&str, &str); 3] = [
    ("6965bb7", "spinners hold a tenth of the step (-90 % spin work)"),
    ("8c0f93c", "SPIN_CPUS = 1 (spinners confined to one CPU)"),
    ("2e18b0a", "spinners hold 90 % of the step (-10 % spin work)"),
];
const PER_SIDE: usize = 5;

/// Rows in memory, filtered by the reference matcher.
struct Pool(Vec<Row>);

impl RowSource for Pool {
    type Error = Infallible;

    fn select_side(&self, _: &PoolScope, f: &SideFilter) -> Result<Vec<Row>, Infallible> {
        Ok(self.0.iter().filter(|r| f.matches(r)).cloned().collect())
    }

    fn pool_facts(&self, _: &PoolScope) -> Result<PoolFacts, Infallible> {
        Ok(PoolFacts { total: self.0.len(), ..Default::default() })
    }
}

/// A commit's runs grouped by repeat: `repeats[i]` holds the i-th run of every test.
fn by_repeat(rows: &[Row]) -> Vec<Vec<Row>> {
    let mut per_test: HashMap<(String, String, Vec<String>), Vec<&Row>> = HashMap::new();
    for r in rows {
        per_test
            .entry((r.scenario.clone(), r.topology.clone(), r.flags.clone()))
            .or_default()
            .push(r);
    }
    let mut repeats: Vec<Vec<Row>> = Vec::new();
    for runs in per_test.values_mut() {
        runs.sort_by(|x, y| (&x.timestamp, x.sidecar_id).cmp(&(&y.timestamp, y.sidecar_id)));
        for (i, r) in runs.iter().enumerate() {
            if repeats.len() <= i {
                repeats.resize_with(i + 1, Vec::new);
            }
            repeats[i].push((*r).clone());
        }
    }
    repeats
}

fn relabel(repeats: &[Vec<Row>], picked: &[usize], commit: &str, out: &mut Vec<Row>) {
    for &i in picked {
        for r in &repeats[i] {
            let mut r = r.clone();
            r.project_commit = Some(commit.to_string());
            out.push(r);
        }
    }
}

/// `n` distinct indices below `len`, at random.
fn pick(rng: &mut SplitRng, len: usize, n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        idx.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    idx.truncate(n);
    idx
}

fn options(noise: NoiseSettings, a: &str, b: &str) -> CompareOptions {
    let filters = SideFilters {
        a: SideFilter::default().with(Dim::ProjectCommit, &[a]),
        b: SideFilter::default().with(Dim::ProjectCommit, &[b]),
    };
    CompareOptions { filters, noise, ..Default::default() }
}

fn report(pool: &Pool, noise: NoiseSettings) -> CompareReport {
    compare::run(pool, &options(noise, "aaaaaaa", "bbbbbbb")).expect("compare a draw").report
}

/// The injected change shows: a spinner test's `total_iterations` regressed.
fn caught(r: &CompareReport) -> bool {
    r.comparison.findings.iter().any(|f| {
        f.verdict == Verdict::Regression
            && f.metric == "total_iterations"
            && f.key.0[0].starts_with("spin_")
    })
}

fn settings_under_test() -> Vec<(&'static str, NoiseSettings)> {
    let noise = |alpha: f64, fdr: Option<f64>| NoiseSettings { gate: GateMode::Noise, alpha, fdr };
    vec![
        ("default", NoiseSettings::default()),
        ("dual gate (ktstr)", NoiseSettings { gate: GateMode::Dual, ..Default::default() }),
        ("alpha 0.05", noise(0.05, None)),
        ("alpha 0.01", noise(0.01, None)),
        ("fdr 0.05", noise(0.05, Some(0.05))),
    ]
}

fn share(hits: usize, draws: usize) -> f64 {
    hits as f64 / draws as f64 * 100.0
}

fn corpus_figures(draws: usize) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut wh = Warehouse::open(&tmp.path().join("corpus.sqlite")).expect("open warehouse");
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/noise-corpus/runs");
    ingest_root(&mut wh, &corpus, None).expect("ingest the corpus");
    let side = |commit: &str| {
        let f = SideFilter::default().with(Dim::ProjectCommit, &[commit]);
        let mut rows = wh.select_side(&PoolScope::default(), &f).expect("corpus rows");
        rows.retain(Row::is_pass);
        by_repeat(&rows)
    };
    let base = side(BASELINE);
    let configs = settings_under_test();
    println!(
        "corpus: {} repeats of the demo suite at {BASELINE}; {draws} draws of {PER_SIDE} vs \
         {PER_SIDE} repeats per figure",
        base.len()
    );
    let mut rng = SplitRng(0x5eed);
    let mut alarms = vec![0usize; configs.len()];
    for _ in 0..draws {
        let idx = pick(&mut rng, base.len(), 2 * PER_SIDE);
        let mut rows = Vec::new();
        relabel(&base, &idx[..PER_SIDE], "aaaaaaa", &mut rows);
        relabel(&base, &idx[PER_SIDE..], "bbbbbbb", &mut rows);
        let pool = Pool(rows);
        for (n, (_, s)) in configs.iter().enumerate() {
            alarms[n] += usize::from(report(&pool, *s).comparison.summary.regressions > 0);
        }
    }
    for ((name, _), hits) in configs.iter().zip(&alarms) {
        let pct = share(*hits, draws);
        let target = if *name == "default" {
            if pct <= 5.0 { "  (target <= 5 %: PASS)" } else { "  (target <= 5 %: FAIL)" }
        } else {
            ""
        };
        println!(
            "false alarms, A/A 5v5, {name:<18} {pct:>5.1} % of draws report a regression{target}"
        );
    }
    for (commit, what) in CHANGES {
        let changed = side(commit);
        let mut hits = vec![0usize; configs.len()];
        for _ in 0..draws {
            let mut rows = Vec::new();
            relabel(&base, &pick(&mut rng, base.len(), PER_SIDE), "aaaaaaa", &mut rows);
            relabel(&changed, &pick(&mut rng, changed.len(), PER_SIDE), "bbbbbbb", &mut rows);
            let pool = Pool(rows);
            for (n, (_, s)) in configs.iter().enumerate() {
                hits[n] += usize::from(caught(&report(&pool, *s)));
            }
        }
        println!("power vs {commit} ({what}; {} repeats):", changed.len());
        for ((name, _), h) in configs.iter().zip(&hits) {
            println!(
                "  {name:<18} {:>5.1} % of draws catch the spinners' total_iterations regression",
                share(*h, draws)
            );
        }
    }
}

fn median_time(mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[2]
}

fn cost_figures(n: usize) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("runs");
    archive::generate(&root, n);
    let mut wh = Warehouse::open(&tmp.path().join("warehouse.sqlite")).expect("open warehouse");
    ingest_root(&mut wh, &root, None).expect("ingest the archive");
    let (a, b) = (archive::commit(0), archive::commit(1));
    let run = |noise: NoiseSettings| compare::run(&wh, &options(noise, &a, &b)).expect("compare");
    let noise_on = run(NoiseSettings::default()).report;
    let dual = NoiseSettings { gate: GateMode::Dual, ..Default::default() };
    let off = median_time(|| drop(run(dual)));
    let on = median_time(|| drop(run(NoiseSettings::default())));
    let (ms_on, ms_off) = (on.as_secs_f64() * 1e3, off.as_secs_f64() * 1e3);
    let s = &noise_on.comparison.summary;
    println!(
        "cost: compare {a} vs {b} of {n} sidecars ({} vs {} sidecars, {} findings: {} regressions, \
         {} noise): noise gate on {ms_on:.1} ms, off (--gate dual) {ms_off:.1} ms",
        noise_on.rows_a,
        noise_on.rows_b,
        noise_on.comparison.findings.len(),
        s.regressions,
        s.noise
    );
    let ratio = ms_on / ms_off.max(1e-9);
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!("cost: on/off {ratio:.2}x (target <= 2x: {})", verdict(ratio <= 2.0));
    println!("cost: on {ms_on:.1} ms (target < 100 ms: {})", verdict(ms_on < 100.0));
}

fn main() {
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    corpus_figures(env("KTSTR_BENCH_DRAWS", 200));
    cost_figures(env("KTSTR_BENCH_SIDECARS", 100_000));
}
