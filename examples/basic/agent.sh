#!/bin/sh
# A stand-in for an agent's tool calls, until the LangChain example arrives: it lists and
# reads files, runs ordinary commands, writes a report, and calls a local HTTP API.
set -eu
work=$(mktemp -d /tmp/agent-work.XXXXXX)
port=${AGENT_DEMO_PORT:-18765}

ls /etc > "$work/listing.txt"
head -n 3 /etc/os-release > "$work/report.txt"
wc -l "$work/listing.txt" >> "$work/report.txt"

# A local "internal API" and a client that calls it: everything stays on loopback.
python3 -m http.server --bind 127.0.0.1 "$port" --directory "$work" >/dev/null 2>&1 &
server=$!
python3 - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(50):
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/report.txt", timeout=2).read()
        print(f"agent: fetched {len(body)} bytes from the local API")
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("agent: the local API never answered")
PY
kill "$server"
wait "$server" 2>/dev/null || true
rm -rf "$work"
