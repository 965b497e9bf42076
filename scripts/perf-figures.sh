#!/usr/bin/env bash
# Print every figure of issue 16 in one run, with the machine's load next to them:
#   - cold ingest, no-op re-ingest and database size (benches/warehouse.rs, 100,000 sidecars);
#   - stats compare --no-ingest and stats list-values on the 100,000- and 1,000,000-sidecar
#     warehouses, whole process on the release binary: wall, CPU and peak RSS, with the
#     1M/100k growth ratios (benches/read_scale.rs).
# The first run builds and caches the 1M warehouse under target/ (several minutes; later runs
# reuse it). Usage: ./scripts/perf-figures.sh
set -euo pipefail
cd "$(dirname "$0")/.."

load() { echo "load ($1): $(cat /proc/loadavg), $(nproc) CPUs"; }

load "start"
echo "== cold ingest, no-op re-ingest, database size (cargo bench --bench warehouse)"
cargo bench --locked --bench warehouse
load "after the ingest figures"
echo "== compare and list-values at 100k and 1M sidecars (cargo bench --bench read_scale)"
cargo bench --locked --bench read_scale
load "end"
