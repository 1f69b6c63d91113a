#!/usr/bin/env bash
# The enforcement benchmark, in the VM with BPF LSM (one boot): storms bare and under
# enforce with a 5,000-rule profile. Figures, not a test. Under software emulation the
# storms are slow, so they are scaled down (--scale, default 0.2).
set -euo pipefail
cd "$(dirname "$0")/.."
kernel=$(ls /boot/vmlinuz-*-amd64 | sort -V | tail -n 1)
work=$(mktemp -d /tmp/agentguard-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
.venv/bin/vng --run "$kernel" --disable-kvm --user root -m 2G --cpus 2 --rwdir="$work" \
    --exec "cd $PWD && TMPDIR=$work target/release/agentguard bench --what enforce --scale ${1:-0.2}" 2>&1 | cat
