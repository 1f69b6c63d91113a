#!/usr/bin/env bash
# The main job on the bundled example: sets up the machine, records examples/basic/agent.sh
# and prints the profile it wrote. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
out=${AGENTGUARD_DEMO_DIR:-/tmp/agentguard-demo}
mkdir -p "$out"
target/release/agentguard record -o "$out/run.toml" --events "$out/run.jsonl" -- examples/basic/agent.sh
echo
echo "=== $out/run.toml"
cat "$out/run.toml"
