#!/usr/bin/env bash
# Regenerates src/bpf/vmlinux.h from the running kernel's BTF.
# The header is committed because the BPF side is compiled once, with CO-RE relocations,
# and then runs on any kernel with BTF: the types in it only need to be a superset of what
# src/bpf/*.bpf.c reads. Regenerate it when the BPF code starts using a newer kernel type.
set -euo pipefail
btf=${1:-/sys/kernel/btf/vmlinux}
out=$(dirname "$0")/../src/bpf/vmlinux.h
command -v bpftool >/dev/null || { echo "bpftool is needed (apt-get install bpftool)" >&2; exit 2; }
bpftool btf dump file "$btf" format c > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out from $btf ($(wc -l < "$out") lines)"
