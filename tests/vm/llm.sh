#!/usr/bin/env bash
# LLM visibility on Debian's 6.1 kernel, which has no multi-uprobe links: the TLS probes
# fall back to plain uprobes. A python client (the server in its own thread, outside the
# probes' interest only by being the same process) posts a chat completion over HTTPS.
set -u
ag=${AGENTGUARD:-$PWD/target/release/agentguard}
work=${VMWORK:?VMWORK names a writable directory}
t=$work/llm
rm -rf "$t" && mkdir -p "$t"
. scripts/vm-checks.sh

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$t/key.pem" -out "$t/cert.pem" 2>/dev/null
"$ag" record -q -o "$t/run.toml" --events "$t/run.jsonl" -- \
    /usr/bin/python3 tests/vm/llm_peer.py "$t/cert.pem" "$t/key.pem" 18443 > "$t/out" 2> "$t/err"
check "the client got its answer" grep -q run_shell "$t/out"
check "libssl was probed with plain uprobes" grep -q '"kind":"tls","status":"covered".*libssl' "$t/run.jsonl"
# The kernel loads a program that names the multi-uprobe attach type and only refuses the
# link: doctor asks for a link, and says there are none here.
check "doctor says this kernel makes no multi-uprobe links" sh -c "'$ag' doctor 2>/dev/null | grep -q '^  no   multi-uprobe links'"
check "the request was seen over TLS" grep -q '"kind":"llm.request".*"transport":"tls".*"tools":\["run_shell"\]' "$t/run.jsonl"
check "the tool call was seen with its arguments" grep -q '"kind":"llm.tool_call","id":"call_vm","name":"run_shell"' "$t/run.jsonl"
check "the API key was redacted" bash -c "! grep -q sk-vm-secret '$t/run.jsonl'"
check "the profile learned the tool" grep -q 'name = "run_shell"' "$t/run.toml"
echo "llm: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
