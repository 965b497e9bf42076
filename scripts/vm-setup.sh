#!/usr/bin/env bash
# Provision the VM backend: QEMU (Debian's qemu-system-x86; its dependencies bring the qboot
# and SeaBIOS firmware) and a sched_ext kernel (Debian trixie-backports 7.3, cloud flavour) in
# the ktstr kernel cache ($KTSTR_CACHE_DIR, else $XDG_CACHE_HOME/ktstr/kernels, else
# ~/.cache/ktstr/kernels).
#
#   ./scripts/vm-setup.sh            QEMU + kernel
#   ./scripts/vm-setup.sh --refresh  also ask Debian for a newer 7.3 kernel
#
# Safe to re-run: packages already installed are not touched, and a cached kernel is reused
# without network access. The kernel is fetched by `ktstr-vm kernel fetch` through a private
# apt source list; the host's /etc/apt configuration is never changed.
set -euo pipefail
cd "$(dirname "$0")/.."

fetch_args=()
[ "${1:-}" = "--refresh" ] && fetch_args+=(--refresh)

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
[ -f /usr/share/qemu/qboot.rom ] || need+=(qemu-system-data)
for tool in dpkg apt-get ldd; do
    command -v "$tool" >/dev/null 2>&1 || { echo "vm-setup: $tool not found; the VM backend needs a Debian-based host" >&2; exit 1; }
done
if [ "${#need[@]}" -gt 0 ]; then
    $sudo_cmd apt-get update -q
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi
qemu-system-x86_64 --version | head -n 1

cargo run --quiet --locked -p ktstr-vm --bin ktstr-vm -- kernel fetch "${fetch_args[@]}"
