#!/usr/bin/env bash
# Set up ktstr on a fresh Debian or Ubuntu machine, then run the main job once on the bundled
# sample archive so you can see what a comparison looks like.
#
#   ./scripts/setup.sh              everything
#   ./scripts/setup.sh --deps-only  system packages, toolchain and scripts/deps/* only (what the tests need)
#
# Safe to re-run: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

deps_only=false
[ "${1:-}" = "--deps-only" ] && deps_only=true

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

# System packages: a C compiler for the bundled SQLite, git for commit discovery in tests,
# pkg-config and curl for the toolchain install below.
need=()
for pkg in build-essential git pkg-config curl ca-certificates; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
    $sudo_cmd apt-get update
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi

# Rust 1.92 or newer (refinery 0.10's minimum). Debian's packaged rustc is too old.
if ! command -v cargo >/dev/null 2>&1; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

# cargo-nextest runs the suite (`cargo ktstr test` drives it too).
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi

# What the tests need beyond the toolchain (QEMU and a sched_ext kernel, a scheduler,
# a headless browser): one idempotent installer per need in scripts/deps/, run in name order.
# Each is fast when its result is already there.
for dep in scripts/deps/*.sh; do
    [ -e "$dep" ] || continue
    echo "== $dep"
    bash "$dep"
done

if $deps_only; then
    exit 0
fi

# cargo-ktstr, so `cargo ktstr …` works from any project.
cargo install --path . --locked

# The main job on the embedded default: compare the two commits of the bundled sample archive.
echo
echo "== cargo ktstr stats compare on examples/sample-runs (exit 1 means a regression was found)"
db="$(mktemp -d)/warehouse.sqlite"
set +e
cargo ktstr stats compare --dir examples/sample-runs --db "$db" \
    --a-project-commit "$(cat examples/sample-runs/COMMIT_A)" \
    --b-project-commit "$(cat examples/sample-runs/COMMIT_B)"
status=$?
set -e
echo "(stats compare exited with $status)"
