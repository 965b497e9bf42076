#!/usr/bin/env bash
# The VM backend's needs: QEMU (Debian's qemu-system-x86; qemu-system-data brings the qboot
# firmware NUMA guests boot with) and a sched_ext kernel (Debian trixie-backports 7.3, cloud
# flavour) in the ktstr kernel cache ($KTSTR_CACHE_DIR, else $XDG_CACHE_HOME/ktstr/kernels,
# else ~/.cache/ktstr/kernels).
#
#   ./scripts/deps/10-vm.sh            QEMU + kernel
#   ./scripts/deps/10-vm.sh --refresh  also ask Debian for a newer 7.3 kernel
#
# Idempotent: packages already installed are not touched, and a cached 7.3 kernel is found
# with a file test, without building or running anything. The kernel is fetched by
# `cargo ktstr kernel fetch` through a private apt source list; the host's /etc/apt
# configuration is never changed.
set -euo pipefail
cd "$(dirname "$0")/../.."

refresh=""
[ "${1:-}" = "--refresh" ] && refresh="--refresh"

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

for tool in dpkg apt-get ldd; do
    command -v "$tool" >/dev/null 2>&1 || { echo "10-vm: $tool not found; the VM backend needs a Debian-based host" >&2; exit 1; }
done
need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
[ -f /usr/share/qemu/qboot.rom ] || need+=(qemu-system-data)
if [ "${#need[@]}" -gt 0 ]; then
    $sudo_cmd apt-get update -q
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi

cache="${KTSTR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ktstr/kernels}"
cached=""
for manifest in "$cache"/*/kernel.json; do
    [ -f "$manifest" ] || continue
    if grep -q '"release": "7\.3\.' "$manifest" && grep -q '"sched_ext": true' "$manifest"; then
        cached="$(dirname "$manifest")"
        break
    fi
done
if [ -z "$cached" ] || [ -n "$refresh" ]; then
    kernel="$(cargo run --quiet --locked --bin cargo-ktstr -- ktstr kernel fetch 7.3 $refresh)"
else
    kernel="$(basename "$cached") (cached)"
fi
echo "10-vm: $(qemu-system-x86_64 --version | head -n 1); kernel ${kernel%%$'\t'*}"
