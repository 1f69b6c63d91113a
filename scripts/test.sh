#!/usr/bin/env bash
# Runs every test: unit tests (no root needed), the integration tests that load the BPF
# sensor and record real processes (root), and the enforcement tests in a VM with BPF LSM.
# Sets up the machine first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo test --release --locked
# BPF LSM enforcement, in a VM whose kernel allows it (see scripts/vm-test.sh).
scripts/vm-test.sh
