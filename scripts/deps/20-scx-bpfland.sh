#!/usr/bin/env bash
# scx_bpfland 1.1.4 from crates.io: the sched_ext scheduler the VM tests run under.
#
# Its BPF build refuses clang < 18 ("does not support -mcpu=v4 for BPF"), so this installs
# bookworm's clang-19/llvm-19 and builds with them first on PATH. The binary is cached at
# $KTSTR_CACHE_DIR/scx/bin/scx_bpfland (else $XDG_CACHE_HOME/ktstr/..., else ~/.cache/ktstr/...);
# a second run finds it and exits at once. Prints one line.
set -euo pipefail

version=1.1.4
cache="${KTSTR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ktstr}"
root="$cache/scx"
bin="$root/bin/scx_bpfland"
stamp="$root/scx_bpfland.version"

if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    echo "scx_bpfland $version: found $bin"
    exit 0
fi

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

need=()
for pkg in clang-19 llvm-19 libelf-dev zlib1g-dev pkg-config libseccomp-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
    $sudo_cmd apt-get update -qq >&2
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

llvm_bin="$(llvm-config-19 --bindir)"
llvm_lib="$(llvm-config-19 --libdir)"
mkdir -p "$root"
# cargo's progress goes to stderr; the one result line goes to stdout.
env BPF_CLANG="$llvm_bin/clang" PATH="$llvm_bin:$PATH" LIBCLANG_PATH="$llvm_lib" \
    cargo install scx_bpfland --version "$version" --locked --root "$root" --quiet >&2
echo "$version" >"$stamp"
echo "scx_bpfland $version: built $bin"
