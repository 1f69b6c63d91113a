#!/usr/bin/env bash
# The enforcement tests, run inside a VM whose kernel has BPF LSM (scripts/vm-test.sh boots
# it). Real processes under real LSM programs; each check says what the kernel did.
# Ends with "N passed, M failed"; exits non-zero when a check failed.
set -u
ag=${AGENTGUARD:-$PWD/target/release/agentguard}
work=${VMWORK:?VMWORK names a writable directory}
t=$work/enforce
rm -rf "$t" && mkdir -p "$t/data/.ssh" "$t/logs"
mount -t securityfs none /sys/kernel/security 2>/dev/null || true
. scripts/vm-checks.sh

echo allowed > "$t/data/allowed.txt"
echo secret > "$t/data/denied.txt"
echo key > "$t/data/.ssh/id_ed25519"
echo a > "$t/data/a.txt"
echo b > "$t/data/b.txt"

# What any shell command here needs: the shells, core utilities and their libraries.
base() {
    cat <<TOML
version = 1
include = ["coreutils", "locale"]

[[exec]]
path = "/usr/bin/{dash,bash,sh,sleep,id}"

[[file]]
path = "/etc/{ld.so.cache,nsswitch.conf,passwd,group}"
access = ["read"]

[[file]]
path = "/usr/lib/x86_64-linux-gnu/*"
access = ["read"]

[[file]]
path = "/dev/{null,tty}"
access = ["read", "write", "truncate"]

[[file]]
path = "$t/logs/*"
access = ["write", "create", "truncate"]
TOML
}

# 1. A denied read beside an allowed read.
{ base; printf '\n[[file]]\npath = "%s/data/allowed.txt"\naccess = ["read"]\n' "$t"; } > "$t/read.toml"
"$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/read.toml" --events "$t/logs/read.jsonl" -- \
    /bin/sh -c "cat $t/data/allowed.txt > $t/logs/read.out; cat $t/data/denied.txt > $t/logs/denied.out 2> $t/logs/denied.err; echo \$? > $t/logs/denied.rc" \
    2> "$t/logs/read.stderr"
check "an allowed read works" grep -q allowed "$t/logs/read.out"
check "a denied read fails with EPERM" grep -q "Operation not permitted" "$t/logs/denied.err"
check "the denied file's content did not leak" test ! -s "$t/logs/denied.out"
check "the denial is reported live, naming the file" grep -q "DENIED open $t/data/denied.txt (read)" "$t/logs/read.stderr"
check "the denial is an event" grep -q '"kind":"deny".*denied.txt' "$t/logs/read.jsonl"

# 2. A denied exec while an allowed program runs (the resolved file is checked).
{ base | sed 's#{dash,bash,sh,sleep,id}#{dash,bash,sh,sleep}#'; printf '\n[[file]]\npath = "%s/data/a.txt"\naccess = ["read"]\n' "$t"; } > "$t/exec.toml"
"$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/exec.toml" -- /bin/sh -c "cat $t/data/a.txt > $t/logs/exec.out; nproc > $t/logs/nproc.out 2> $t/logs/nproc.err" 2> "$t/logs/exec.stderr"
check "an allowed program runs" grep -q a "$t/logs/exec.out"
check "a denied exec fails" grep -q "Operation not permitted\|Permission denied" "$t/logs/nproc.err"
check "the denied exec is reported, by resolved path" grep -q "DENIED exec /usr/bin/nproc" "$t/logs/exec.stderr"

# 3. A denied connect to a loopback listener while an allowed port works.
python3 -c '
import socket, threading, time
def serve(port):
    s = socket.create_server(("127.0.0.1", port))
    while True:
        c, _ = s.accept(); c.close()
for p in (18201, 18202):
    threading.Thread(target=serve, args=(p,), daemon=True).start()
time.sleep(60)' &
listener=$!
# Both ports up (each listens from its own thread) before the tree tries them.
for _ in $(seq 150); do
    (echo > /dev/tcp/127.0.0.1/18201) 2>/dev/null && (echo > /dev/tcp/127.0.0.1/18202) 2>/dev/null && break
    sleep 0.2
done
{ base; printf '\n[[net]]\nop = "connect"\nproto = "tcp"\naddr = "127.0.0.1"\nport = 18201\n'; } > "$t/net.toml"
"$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/net.toml" -- /bin/bash -c \
    "echo > /dev/tcp/127.0.0.1/18201 && echo ok > $t/logs/net-allowed.out; { echo > /dev/tcp/127.0.0.1/18202; } 2> $t/logs/net-denied.err" \
    2> "$t/logs/net.stderr"
check "an allowed connect works" grep -q ok "$t/logs/net-allowed.out"
check "a denied connect fails with EPERM" grep -q "Operation not permitted" "$t/logs/net-denied.err"
check "the denied connect names the destination" grep -q "DENIED connect 127.0.0.1:18202" "$t/logs/net.stderr"
# An unconnected datagram to an address the profile does not name.
"$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/net.toml" -- /bin/bash -c "{ echo x > /dev/udp/127.0.0.1/18203; } 2> $t/logs/udp.err" 2> "$t/logs/udp.stderr"
check "a datagram to a denied destination is denied" grep -q "DENIED connect 127.0.0.1:18203" "$t/logs/udp.stderr"
{ cat "$t/net.toml"; printf '\n[[exec]]\npath = "/usr/bin/perl*"\n[[file]]\npath = "/usr/{lib/x86_64-linux-gnu,share}/perl*/**"\naccess = ["read", "list"]\n'; } > "$t/perl.toml"
"$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/perl.toml" -- perl -MSocket -e \
    'socket(S, PF_INET, SOCK_DGRAM, 0) or die; send(S, "x", 0, pack_sockaddr_in(18204, inet_aton("127.0.0.1"))) or print "denied: $!\n"' \
    > "$t/logs/sendto.out" 2> "$t/logs/sendto.stderr"
check "sendto without connect to a denied destination fails" grep -q "denied: Operation not permitted" "$t/logs/sendto.out"
check "and is reported" grep -q "DENIED connect 127.0.0.1:18204" "$t/logs/sendto.stderr"
kill $listener 2>/dev/null
[ -s "$t/logs/net-allowed.out" ] || cat "$t/logs/net.stderr"

# 4. Audit: denies nothing, reports what it would have denied.
"$ag" enforce --deny-at new --backend bpf-lsm -q --audit --profile "$t/read.toml" -- /bin/sh -c "cat $t/data/denied.txt > $t/logs/audit.out" 2> "$t/logs/audit.stderr"
check "audit denies nothing" grep -q secret "$t/logs/audit.out"
check "audit reports the would-be denial" grep -q "WOULD DENY open $t/data/denied.txt" "$t/logs/audit.stderr"

# 5. The protected set: a learned rule does not admit a key; a hand-written one does.
{ base; printf '\n[[file]]\npath = "%s/data/**"\naccess = ["read"]\nlearned = true\n' "$t"; } > "$t/prot.toml"
"$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/prot.toml" -- /bin/sh -c "cat $t/data/.ssh/id_ed25519 > $t/logs/key.out 2> $t/logs/key.err; cat $t/data/a.txt > $t/logs/prot-a.out" 2> "$t/logs/prot.stderr"
check "a learned pattern still admits ordinary files" grep -q a "$t/logs/prot-a.out"
check "a learned pattern does not admit a protected path" grep -q "Operation not permitted" "$t/logs/key.err"
check "the protected denial says why" grep -q "protected path (credentials)" "$t/logs/prot.stderr"
{ cat "$t/prot.toml"; printf '\n[[file]]\npath = "%s/data/.ssh/id_ed25519"\naccess = ["read"]\n' "$t"; } > "$t/prot-hand.toml"
"$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/prot-hand.toml" -- /bin/sh -c "cat $t/data/.ssh/id_ed25519 > $t/logs/key2.out" 2>/dev/null
check "a hand-written rule admits a protected path" grep -q key "$t/logs/key2.out"

# 6. Two trees at once, each under its own profile.
{ base; printf '\n[[file]]\npath = "%s/data/a.txt"\naccess = ["read"]\n' "$t"; } > "$t/A.toml"
{ base; printf '\n[[file]]\npath = "%s/data/b.txt"\naccess = ["read"]\n' "$t"; } > "$t/B.toml"
# Both trees run at once: each waits for `both-go`, made only once both are running.
both=": > $t/logs/up-\$\$; while [ ! -e $t/logs/both-go ]; do sleep 0.05; done; cat $t/data/a.txt; cat $t/data/b.txt"
"$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/A.toml" -- /bin/sh -c "$both" > "$t/logs/A.out" 2>/dev/null &
a=$!
"$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/B.toml" -- /bin/sh -c "$both" > "$t/logs/B.out" 2>/dev/null &
b=$!
for _ in $(seq 600); do [ "$(ls "$t"/logs/up-* 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.1; done
check "two trees ran at once" test "$(ls "$t"/logs/up-* | wc -l)" -ge 2
touch "$t/logs/both-go"
wait $a $b
check "tree A reads only a" test "$(cat "$t/logs/A.out")" = a
check "tree B reads only b" test "$(cat "$t/logs/B.out")" = b

# 7. Names and modes: a file written where it may be cannot be renamed or hard-linked onto
# a protected path; deletes, mkdir and chmod need their own grants.
mkdir -p "$t/data/home"
echo "# rc" > "$t/data/home/.bashrc"
{ base; printf '\n[[file]]\npath = "%s/data/scratch/*"\naccess = ["read", "write", "create", "truncate", "rename", "delete"]\n[[exec]]\npath = "/usr/bin/{mv,ln,rm,mkdir,chmod}"\n' "$t"; } > "$t/names.toml"
mkdir -p "$t/data/scratch"
"$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/names.toml" -- /bin/sh -c "
    echo evil > $t/data/scratch/x
    mv $t/data/scratch/x $t/data/home/.bashrc 2> $t/logs/mv.err
    ln $t/data/.ssh/id_ed25519 $t/data/scratch/key 2> $t/logs/ln.err
    rm $t/data/a.txt 2> $t/logs/rm.err
    mkdir $t/data/newdir 2> $t/logs/mkdir.err
    chmod 777 $t/data/b.txt 2> $t/logs/chmod.err
    echo y > $t/data/scratch/y; rm $t/data/scratch/y && echo ok > $t/logs/rm-allowed.out" 2> "$t/logs/names.stderr"
check "a rename onto a protected path is denied" grep -q "# rc" "$t/data/home/.bashrc"
check "and reported" grep -q "DENIED path $t/data/home/.bashrc (create)" "$t/logs/names.stderr"
check "a hard link to a protected file is denied" test ! -e "$t/data/scratch/key"
check "a delete the profile does not grant is denied" test -e "$t/data/a.txt"
check "a mkdir the profile does not grant is denied" test ! -e "$t/data/newdir"
check "a chmod the profile does not grant is denied" test "$(stat -c %a "$t/data/b.txt")" != 777
check "a delete the profile grants works" grep -q ok "$t/logs/rm-allowed.out"

# 8. --on-deny kill: the offending process is killed instead.
"$ag" enforce --deny-at new --backend bpf-lsm -q --on-deny kill --profile "$t/read.toml" -- /bin/sh -c "cat $t/data/denied.txt > /dev/null; echo \$? > $t/logs/kill.rc; echo survived > $t/logs/kill.out" 2> "$t/logs/kill.stderr"
check "--on-deny kill: the denied process died of SIGKILL" grep -q 137 "$t/logs/kill.rc"
check "--on-deny kill kills the process that was denied, not its parent" grep -q survived "$t/logs/kill.out"
[ -s "$t/logs/kill.out" ] || cat "$t/logs/kill.stderr"
check "and reports the denial" grep -q "DENIED open $t/data/denied.txt" "$t/logs/kill.stderr"
# Seen failing once in CI (not reproduced): show what agentguard said when it does.
grep -q "DENIED open $t/data/denied.txt" "$t/logs/kill.stderr" || { echo "--- kill.stderr:"; cat "$t/logs/kill.stderr"; }

# 9. --pid: a running tree is enforced from then on.
/bin/sh -c "while [ ! -e $t/logs/go ]; do sleep 0.1; done; cat $t/data/denied.txt > $t/logs/pid-denied.out 2> $t/logs/pid.err; cat $t/data/allowed.txt > $t/logs/pid.out" &
running=$!
"$ag" enforce --deny-at new --backend bpf-lsm --profile "$t/read.toml" --pid $running 2> "$t/logs/pid.stderr" &
enf=$!
# Wait until the running tree is in scope (record says so once it tracks it), not just loaded.
for _ in $(seq 150); do grep -q "recording pid" "$t/logs/pid.stderr" 2>/dev/null && break; sleep 0.2; done
touch "$t/logs/go"
wait $running
wait $enf
check "--pid: the running tree's denied read fails" grep -q "Operation not permitted" "$t/logs/pid.err"
grep -q "Operation not permitted" "$t/logs/pid.err" || { echo "--- pid.stderr:"; cat "$t/logs/pid.stderr" "$t/logs/pid.err"; }
check "--pid: and its allowed read works" grep -q allowed "$t/logs/pid.out"

# 10. agentguard killed with SIGKILL: the tree does not go on unenforced.
"$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/read.toml" -- /bin/sh -c "sleep 300; sleep 301" 2>/dev/null &
ag_pid=$!
# The tree runs (it is released only once enforced).
for _ in $(seq 300); do tree=$(pgrep -fx "sleep 300") && break; sleep 0.1; done
echo "killing agentguard $ag_pid: $(ps -o pid,cmd -p $ag_pid | tail -n 1)"
kill -9 $ag_pid
for _ in $(seq 150); do [ -z "$(pgrep -f 'sleep 30[01]' | grep -v "^$ag_pid\$")" ] && break; sleep 0.2; done
check "the tree was running under enforce" test -n "$tree"
left=$(pgrep -f 'sleep 30[01]' | grep -v "^$ag_pid\$")
[ -z "$left" ] || ps -o pid,ppid,cmd -p $left
check "the tree is gone once agentguard is killed" test -z "$left"
check "its cgroup is removed" test -z "$(ls -d /sys/fs/cgroup/agentguard-* 2>/dev/null)"

# 11. The kernel side outlives agentguard until the tree is dead: agentguard hands its BPF
# links to the watchdog. With the watchdog stopped (by root, from outside the tree) and
# agentguard killed, the tree's denied read is still denied; once the watchdog runs again
# it kills the tree.
# A file, not a FIFO, for the handshake: the VM's shared directory makes no FIFOs.
rm -f "$t/logs/go11"
"$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/read.toml" -- /bin/sh -c "while [ ! -e $t/logs/go11 ]; do sleep 0.1; done; cat $t/data/denied.txt > $t/logs/held.out 2> $t/logs/held.err; sleep 302" 2>/dev/null &
ag_pid=$!
wd=""
for _ in $(seq 300); do
    for k in $(cat /proc/$ag_pid/task/$ag_pid/children 2>/dev/null); do [ "$(cat /proc/$k/comm 2>/dev/null)" = agentguard ] && wd=$k; done
    # and the tree released (its shell runs), not only forked
    [ -n "$wd" ] && pgrep -P "$ag_pid" -x sh > /dev/null && break
    sleep 0.1
done
check "the watchdog holds agentguard's BPF links" test -n "$(ls -l /proc/$wd/fd 2>/dev/null | grep bpf_link)"
kill -STOP "$wd"
kill -9 "$ag_pid"
wait "$ag_pid" 2>/dev/null
touch "$t/logs/go11"
for _ in $(seq 150); do [ -s "$t/logs/held.err" ] || [ -s "$t/logs/held.out" ] && break; sleep 0.1; done
check "with agentguard killed, a denied read is still denied" grep -q "Operation not permitted" "$t/logs/held.err"
kill -CONT "$wd"
for _ in $(seq 150); do [ -z "$(pgrep -f 'sleep 302')" ] && break; sleep 0.2; done
check "and the watchdog then kills the tree" test -z "$(pgrep -f 'sleep 302')"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
