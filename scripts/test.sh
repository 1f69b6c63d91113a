#!/usr/bin/env bash
# Runs every test: unit tests (no root needed), the integration tests that load the BPF
# sensor and record real processes (root), and the enforcement tests in a VM with BPF LSM.
# Sets up the machine first.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each stage says how long it took: a CI job has a time limit, and a slow stage is found here.
stage() {
    local start=$SECONDS
    echo "== test.sh: $*"
    "$@"
    echo "== test.sh: $* took $((SECONDS - start))s"
}
stage scripts/setup.sh
stage cargo fmt --all -- --check
stage cargo test --release --locked
# BPF LSM enforcement, in a VM whose kernel allows it (see scripts/vm-test.sh).
stage scripts/vm-test.sh
