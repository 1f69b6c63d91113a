#!/usr/bin/env bash
# Runs every test: unit tests (no root needed) and the integration tests that load the BPF
# sensor and record real processes (root). Sets up the machine first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo test --release --locked
