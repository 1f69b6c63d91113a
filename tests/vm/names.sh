#!/usr/bin/env bash
# Egress by name under BPF LSM: the tree resolves through a DNS server on loopback (its own
# resolv.conf, bound in a private mount namespace); a host rule's name connects, also after
# its address changes; an unlisted name, a listed name without `private` that resolves to
# loopback, and an address no answer gave are denied; *.svc.test admits names under it.
set -u
ag=${AGENTGUARD:-$PWD/target/release/agentguard}
work=${VMWORK:?VMWORK names a writable directory}
t=$work/names
rm -rf "$t" && mkdir -p "$t"
. scripts/vm-checks.sh

ip link set lo up 2>/dev/null
echo '{"api.test": ["127.0.0.21", "127.0.0.23"], "other.test": "127.0.0.22", "plain.test": "127.0.0.22", "db.svc.test": "127.0.0.25", "svc.test": "127.0.0.26"}' > "$t/names.json"
printf 'nameserver 127.0.0.153\noptions attempts:1 timeout:2\n' > "$t/resolv.conf"
/usr/bin/python3 tests/dns/server.py --dns 127.0.0.153 --table "$t/names.json" \
    --listen 127.0.0.21:18090 --listen 127.0.0.22:18090 --listen 127.0.0.23:18090 --listen 127.0.0.24:18090 \
    --listen 127.0.0.25:18090 --listen 127.0.0.26:18090 \
    > "$t/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do grep -q ready "$t/server.log" && break; sleep 0.1; done

cat > "$t/p.toml" <<TOML
version = 1
include = ["resolver", "locale"]

[[exec]]
path = "/usr/bin/python3.11"

[[file]]
path = "/usr/lib/python3{,.11}"
access = ["read", "list"]

[[file]]
path = "/usr/lib/python3{,.11}/**"
access = ["read", "list"]

[[file]]
path = "/lib/python3.11{,/**}"
access = ["read", "list"]

[[file]]
path = "/usr/local/lib/python3.11/**"
access = ["read", "list"]

[[file]]
path = "/usr/bin/{python3.11,pyvenv.cfg}"
access = ["read"]

[[file]]
path = "/etc/{ld.so.cache,passwd,group}"
access = ["read"]

[[file]]
path = "/usr/lib/x86_64-linux-gnu/*"
access = ["read"]

[[file]]
path = "$PWD/tests/dns/client.py"
access = ["read"]

[[net]]
op = "connect"
proto = "udp"
addr = "127.0.0.153"
port = 53

[[net]]
op = "connect"
proto = "tcp"
host = "api.test"
port = 18090
private = true

[[net]]
op = "connect"
proto = "tcp"
host = "plain.test"
port = 18090

[[net]]
op = "connect"
proto = "tcp"
host = "*.svc.test"
port = 18090
private = true
TOML

unshare -m sh -c "mount --bind $t/resolv.conf /etc/resolv.conf && exec $ag enforce --deny-at new --backend bpf-lsm -q --profile $t/p.toml -- \
    /usr/bin/python3 tests/dns/client.py api.test:18090 api.test:18090 other.test:18090 plain.test:18090 127.0.0.24:18090 \
    db.svc.test:18090 svc.test:18090" \
    > "$t/out" 2> "$t/err"
cat "$t/out"
check "an allowed name connects" grep -q "^api.test 127.0.0.21 ok" "$t/out"
check "and again at its new address" grep -q "^api.test 127.0.0.23 ok" "$t/out"
check "an unlisted name is denied" grep -q "^other.test 127.0.0.22 error .*Operation not permitted" "$t/out"
check "a listed name resolving to loopback without private is denied" grep -q "^plain.test 127.0.0.22 error .*Operation not permitted" "$t/out"
check "an address no answer gave is denied" grep -q "^127.0.0.24 127.0.0.24 error .*Operation not permitted" "$t/out"
check "a wildcard admits a name under it" grep -q "^db.svc.test 127.0.0.25 ok" "$t/out"
check "but not the name itself" grep -q "^svc.test 127.0.0.26 error .*Operation not permitted" "$t/out"
check "the denials are reported" grep -q "DENIED connect 127.0.0.22:18090" "$t/err"

# The tree forges the answer: it asks for api.test while a second thread keeps writing an
# answer that gives 127.0.0.24 into the receive buffer. The answer is read from the
# datagram, not that buffer, so 127.0.0.24 stays denied. The same hand-made query for a
# name with one address, the forger writing that same address, connects: the answer
# counted.
adv=${ADVERSARY:?ADVERSARY names the built tests/adversary/adversary.c}
cp "$t/p.toml" "$t/adv.toml"
printf '\n[[exec]]\npath = "%s"\n\n[[file]]\npath = "%s"\naccess = ["read"]\n' "$adv" "$adv" >> "$t/adv.toml"
race() { "$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/adv.toml" -- "$adv" dns_race 127.0.0.153 "$1" > "$t/out" 2> "$t/err"; }
race api.test=127.0.0.24:18090
check "a forged answer in the receive buffer allows nothing" grep -q "^dns_race denied: Operation not permitted" "$t/out"
# (db.svc.test has one address; the server rotates api.test's two.)
race db.svc.test=127.0.0.25:18090
check "while the real answer to the same query allows its address" grep -q "^dns_race ok" "$t/out"
kill "$server" 2>/dev/null
echo "names: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
