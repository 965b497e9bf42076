//! Benchmark warehouses at archive scale (100k and 1M sidecars) for the read-path figures,
//! built once and cached under the target directory.
//!
//! The documents are benches/support/archive.rs's ([`archive::document`]), with the kernel
//! spread over [`KERNELS`] releases (40, by commit pair) instead of three: a long-lived
//! archive holds many commits and kernels, a few schedulers and topologies. Commits `2k` and
//! `2k+1` still share a kernel and hold ~1,000 sidecars each, so a commit-vs-commit compare
//! reads ~1k sidecars a side at any archive size, and the 100k archive is the first tenth of
//! the 1M one: the same compare at both sizes measures how its cost grows with the archive.
//!
//! A warehouse is built through the real ingest, [`CHUNK`] sidecars at a time: each chunk is
//! written as files into its own runs root, ingested, and deleted, so at most one chunk of
//! JSON is on disk (not the 1M archive's ~7 GB). The cache key is a hash of this module's
//! generator version, the document generator's source and the schema version: a change to
//! any of them builds anew (and removes the stale warehouses of that size). Not here: what
//! is measured on them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use ktstr::warehouse::Warehouse;
use ktstr::warehouse::ingest::ingest_root;

use super::archive::{commit, document};

/// Sidecars written and ingested per chunk: ~330 MB of JSON.
const CHUNK: usize = 50_000;

/// The kernel releases of the archive; commit pair `k` runs on release `k % KERNELS`.
pub const KERNELS: usize = 40;

/// The release of kernel `k`: 6.8.0 to 6.15.4.
pub fn kernel(k: usize) -> String {
    format!("6.{}.{}", 8 + k / 5, k % 5)
}

/// The kernel the sidecars of project commit `c` ran on.
pub fn kernel_of_commit(c: usize) -> String {
    kernel((c / 2) % KERNELS)
}

/// Sidecars per project commit (archive.rs: 200 per run, five runs per commit).
const PER_COMMIT: usize = 1_000;

/// Sidecar `i`: archive.rs's document on its commit pair's kernel.
fn scaled_document(i: usize) -> (String, ktstr::sidecar::SidecarResult) {
    let (rel, mut s) = document(i);
    let k = (i / PER_COMMIT / 2) % KERNELS;
    s.kernel_version = Some(kernel(k));
    s.kernel_commit = Some(commit(1000 + k));
    if let Some(host) = s.host.as_mut() {
        host.kernel_release = Some(kernel(k));
    }
    (rel, s)
}

/// Bump on any change to what this module generates (the documents or how they are
/// ingested); a change to archive.rs or to the schema is noticed without it.
const GENERATOR_VERSION: u32 = 1;

/// What a cached warehouse depends on: this generator's version, archive.rs's source and
/// its `KTSTR_BENCH_RANDOM_METRICS` mode, the schema version.
fn cache_key() -> String {
    let mut h = blake3::Hasher::new();
    h.update(&GENERATOR_VERSION.to_le_bytes());
    h.update(include_str!("archive.rs").as_bytes());
    h.update(&[u8::from(super::archive::random_metrics())]);
    h.update(&ktstr::warehouse::open::known_schema_version().to_le_bytes());
    h.finalize().to_hex()[..16].to_string()
}

/// The warehouse of `n` sidecars, built if it is not cached under `cache_dir`; reports on
/// stdout what it built.
pub fn warehouse(cache_dir: &Path, n: usize) -> PathBuf {
    let dir = cache_dir.join(format!("{n}-{}", cache_key()));
    let db = dir.join("warehouse.sqlite");
    if db.exists() {
        return db;
    }
    remove_stale(cache_dir, n);
    let building = cache_dir.join(format!("{n}-building"));
    let _ = fs::remove_dir_all(&building);
    fs::create_dir_all(&building).expect("create the cache directory");
    let partial = building.join("warehouse.sqlite");
    let started = Instant::now();
    let mut wh = Warehouse::open(&partial).expect("open the warehouse being built");
    let (mut json_bytes, mut chunks) = (0u64, 0);
    for first in (0..n).step_by(CHUNK) {
        let root = building.join(format!("chunk-{chunks:03}"));
        let range = first..(first + CHUNK).min(n);
        json_bytes += write_chunk(&root, range.clone());
        let report = ingest_root(&mut wh, &root, None).expect("ingest a chunk");
        assert_eq!(report.new_sidecars, range.len(), "every generated sidecar is new");
        fs::remove_dir_all(&root).expect("remove the ingested chunk");
        chunks += 1;
        println!(
            "  built {} of {n} sidecars ({:.0} s)",
            range.end,
            started.elapsed().as_secs_f64()
        );
    }
    drop(wh);
    let db_bytes = fs::metadata(&partial).expect("built warehouse").len();
    fs::rename(&building, &dir).expect("move the built warehouse into the cache");
    println!(
        "built the {n}-sidecar warehouse in {:.0} s: {:.0} MB of JSON ingested in {chunks} \
         chunks, database {:.0} MB",
        started.elapsed().as_secs_f64(),
        json_bytes as f64 / 1e6,
        db_bytes as f64 / 1e6
    );
    db
}

/// Write sidecars `range` under `root`; their JSON bytes.
fn write_chunk(root: &Path, range: std::ops::Range<usize>) -> u64 {
    range
        .into_par_iter()
        .map(|i| {
            let (rel, s) = scaled_document(i);
            let path = root.join(rel);
            fs::create_dir_all(path.parent().expect("generated paths have a parent"))
                .expect("create run dir");
            let body = s.to_json_pretty();
            fs::write(&path, &body).expect("write sidecar");
            body.len() as u64
        })
        .sum()
}

/// Remove cached warehouses of `n` sidecars built under another key (each is GBs at 1M).
fn remove_stale(cache_dir: &Path, n: usize) {
    let Ok(entries) = fs::read_dir(cache_dir) else { return };
    let prefix = format!("{n}-");
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}
