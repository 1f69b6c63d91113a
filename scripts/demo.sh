#!/usr/bin/env bash
# The main job, on the bundled LangChain example agent (examples/agent): sets up the
# machine, records three benign runs, merges them into a baseline, runs a prompt-injected
# run that exfiltrates a planted credential, and shows the diff that catches it. As root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ag=target/release/agentguard
out=${AGENTGUARD_DEMO_DIR:-/tmp/agentguard-demo}
rm -rf "$out"
mkdir -p "$out"
for seed in 1 2 3; do
    echo "== benign run, seed $seed"
    python3 examples/agent/run.py --seed "$seed" --state "$out/state" --agentguard "record -o $out/run-$seed.toml"
done
$ag merge "$out"/run-*.toml -o "$out/baseline.toml"
echo
$ag show "$out/baseline.toml" | head -30
echo "   ... (agentguard show $out/baseline.toml for all of it)"
echo
echo "== attacked run: a document's injected instruction makes the agent post ~/.aws/credentials"
python3 examples/agent/run.py --seed 7 --attack exfil_credentials --state "$out/state" \
    --agentguard "record -q -o $out/attack.toml --events $out/attack.jsonl"
echo
$ag diff "$out/baseline.toml" "$out/attack.jsonl" --fail-on high && status=0 || status=$?
echo "(diff exit status $status: 1 means the gate caught it)"
