#!/usr/bin/env bash
# The VM backend's needs: QEMU (Debian's qemu-system-x86; qemu-system-data brings the qboot
# firmware NUMA guests boot with), a sched_ext kernel (Debian trixie-backports 7.3, cloud
# flavour) and an EEVDF-only kernel (trixie's 6.12, built without CONFIG_SCHED_CLASS_EXT, for
# the tests of a scheduler test on a kernel without sched_ext) in the ktstr kernel cache
# ($KTSTR_CACHE_DIR, else $XDG_CACHE_HOME/ktstr/kernels, else ~/.cache/ktstr/kernels).
#
#   ./scripts/deps/10-vm.sh            QEMU + kernels
#   ./scripts/deps/10-vm.sh --refresh  also ask Debian for newer 7.3 and 6.12 kernels
#
# Idempotent: packages already installed are not touched, and cached kernels are found with
# a file test, without building or running anything. The kernel is fetched by
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
# The cached kernel of series $1 whose manifest says "sched_ext": $2, if any.
cached_kernel() {
    local manifest series="${1//./\\.}"
    for manifest in "$cache"/*/kernel.json; do
        [ -f "$manifest" ] || continue
        if grep -q "\"release\": \"$series\\." "$manifest" && grep -q "\"sched_ext\": $2" "$manifest"; then
            basename "$(dirname "$manifest")"
            return
        fi
    done
}
# Fetches series $1 from suite $2 unless a kernel of it (with sched_ext $3) is cached.
ensure_kernel() {
    local found
    found="$(cached_kernel "$1" "$3")"
    if [ -z "$found" ] || [ -n "$refresh" ]; then
        found="$(cargo run --quiet --locked --bin cargo-ktstr -- ktstr kernel fetch "$1" --suite "$2" $refresh)"
        echo "${found%%$'\t'*}"
    else
        echo "$found (cached)"
    fi
}
scx_kernel="$(ensure_kernel 7.3 trixie-backports true)"
eevdf_kernel="$(ensure_kernel 6.12 trixie false)"
echo "10-vm: $(qemu-system-x86_64 --version | head -n 1); kernels $scx_kernel, $eevdf_kernel"
