#!/usr/bin/env bash
# The adversarial suite, enforce side: each case of tests/adversary/adversary.c under
# BPF LSM, with a profile that allows the program and a work directory but not what the
# case reaches for. Each must be denied. scripts/vm-test.sh builds the program ($ADVERSARY).
set -u
ag=${AGENTGUARD:-$PWD/target/release/agentguard}
work=${VMWORK:?VMWORK names a writable directory}
adv=${ADVERSARY:?ADVERSARY names the built tests/adversary/adversary.c}
t=$work/adversary
rm -rf "$t" && mkdir -p "$t/work" "$t/logs"
. scripts/vm-checks.sh

# Unix sockets cannot be made on the work directory (9p): a directory of tmpfs for them.
u=$(mktemp -d /dev/shm/agentguard-adversary.XXXXXX)
trap 'rm -rf "$u"' EXIT
echo secret > "$t/secret.txt"
echo allowed > "$t/work/allowed.txt"
cat > "$t/p.toml" <<TOML
version = 1
include = ["locale"]

[[exec]]
path = "$adv"

[[file]]
path = "$adv"
access = ["read"]

[[file]]
path = "/usr/lib/x86_64-linux-gnu/*"
access = ["read"]

[[file]]
path = "/etc/ld.so.cache"
access = ["read"]

[[file]]
path = "$t/work"
access = ["read", "list"]

[[file]]
path = "$t/work/*"
access = ["read", "write", "create", "truncate", "symlink", "mkdir"]

# What the guard cases read to find the watchdog, and the cgroup root they open: allowed,
# so that what denies them is the signal and the clone themselves.
[[file]]
path = "/proc/*/task/*/children"
access = ["read"]

[[file]]
path = "/sys/fs/cgroup"
access = ["read", "list"]

# Unix sockets the cases may reach by these names: an abstract one, and a path where the
# symlink case puts its link.
[[net]]
op = "connect"
proto = "stream"
addr = "@agentguard-vm"

[[net]]
op = "connect"
proto = "stream"
addr = "$u/link.sock"

[[file]]
path = "$u/*"
access = ["create", "symlink"]
TOML

# Most cases run in one enforce start, as children of `adversary batch` (each a fresh
# process): under emulation a start costs seconds of BPF verification. The cases that
# need agentguard as their parent (kill_guard), another profile or other flags run alone.
#
# denied WHAT CASE ARGS...: expects "<case> denied: Operation not permitted" in the
# case's output: EPERM is what agentguard's hooks return, so a case that failed for
# another reason (a missing file, a refused connection) does not count as denied.
# expect_ok WHAT CASE ARGS...: the same, for a case that must work: "<case> ok".
# reported PATTERN WHAT: a denial line on agentguard's standard error said why (so the
# case was denied by that check); the pattern names the case's object.
n=0
: > "$t/work/batch"
queue() {
    n=$((n + 1)); kind[$n]=$1; what[$n]=$2; shift 2
    echo "$*" >> "$t/work/batch"; case_of[$n]=$1
}
denied() { local w=$1; shift; queue denied "$w" "$@"; }
expect_ok() { local w=$1; shift; queue ok "$w" "$@"; }
reports=()
reported() { reports+=("$1" "$2"); }
# One case's output: the lines between its "@@ N" and the next case's.
section() { awk -v i="$1" '$0 == "@@ " i { on = 1; next } /^@@ [0-9]+$/ { on = 0 } on' "$t/logs/out"; }
run_batch() {
    "$ag" enforce --deny-at new --backend bpf-lsm -q --profile "$t/p.toml" -- "$adv" batch "$t/work/batch" > "$t/logs/out" 2> "$t/logs/err"
    local i want
    for i in $(seq "$n"); do
        if [ "${kind[$i]}" = denied ]; then want="${case_of[$i]} denied: Operation not permitted"; else want="${case_of[$i]} ok"; fi
        if section "$i" | grep -q "^$want"; then ok "${what[$i]}"; else bad "${what[$i]}"; section "$i" | head -5; fi
    done
    for ((i = 0; i < ${#reports[@]}; i += 2)); do
        if grep -q "${reports[i]}" "$t/logs/err"; then ok "${reports[i + 1]}"; else bad "${reports[i + 1]}"; grep DENIED "$t/logs/err" | head -5; fi
    done
}

sleep 300 & outsider=$!
denied "io_uring: an open through io_uring is denied" io_uring_open "$t/secret.txt"
denied "openat2 with RESOLVE flags is denied" openat2 "$t/secret.txt"
denied "execveat of an fd of a program not allowed is denied" execveat_fd /usr/bin/id
denied "exec of a memfd is denied" exec_memfd /usr/bin/id
denied "a symlink made after the start to a denied file: its read is denied" symlink_read "$t/secret.txt" "$t/work/sl"
denied "a hard link to a denied file is denied" hardlink_read "$t/secret.txt" "$t/work/hl"
denied "a rename the profile does not grant, of a file opened before, is denied" rename_after_open "$t/work/allowed.txt" "$t/work/moved.txt"
denied "a relative open after fchdir is denied" fchdir_relative "$t" secret.txt
denied "a path longer than 4,096 bytes is denied (uncheckable)" long_path "$t/work" 25
denied "a non-UTF-8 name outside the profile is denied" non_utf8 "$t"
denied "a v4-mapped connect is denied" v4mapped_connect 127.0.0.1:9
denied "a v4-compatible connect is denied" v4compat_connect 127.0.0.1:9
denied "UDP sendto without connect is denied" udp_sendto 127.0.0.1:9
denied "UDP sendmsg without connect is denied" udp_sendmsg 127.0.0.1:9
# The unix cases listen themselves, so that the connect reaches a socket: the check is on
# the socket the kernel found.
denied "a unix socket path is denied" unix_self "$u/other.sock"
denied "an abstract unix socket is denied" unix_self @agentguard-adversary
denied "a symlink at an allowed unix socket name, to another socket, is denied" unix_symlink "$u/real.sock" "$u/link.sock"
reported "DENIED connect unix socket $u/real.sock" "by the socket reached, not the name passed"
denied "an abstract name that extends an allowed one past a NUL is denied" unix_nul @agentguard-vm
expect_ok "an allowed abstract unix socket is reached" unix_self @agentguard-vm
denied "a routing change through netlink is denied" netlink_route -
denied "after setsid and a double fork, still denied" setsid_double_fork "$t/secret.txt"
denied "under a subreaper, still denied" subreaper "$t/secret.txt"
denied "from a thread, denied" thread_open "$t/secret.txt"
denied "vfork and exec of a program not allowed is denied" vfork_exec /usr/bin/id
denied "clone3 into another cgroup is denied" clone3_cgroup /sys/fs/cgroup "$t/work/allowed.txt"
reported "DENIED clone" "by the clone check (task_alloc), with the cgroup readable"
denied "ptrace of a process outside the tree is denied" ptrace_outside "$outsider"
denied "writing /proc/PID/mem is denied" proc_mem_write "$outsider"
denied "a signal to a process outside the tree is denied" signal_outside "$outsider"
denied "making a process outside the tree a SIGIO owner is denied" setown_outside "$outsider"
denied "limits on a process outside the tree are denied" prlimit_outside "$outsider"
denied "TIOCSTI is denied" tiocsti -
denied "a raw IP socket is denied" raw_socket 127.0.0.1:9
denied "a packet socket is denied" packet_socket -
# Its own port: the other cases' denials name 127.0.0.1:9.
denied "a datagram addressed AF_UNSPEC is checked as AF_INET: denied" udp_unspec 127.0.0.1:11
reported "DENIED connect 127.0.0.1:11" "as a connection to 127.0.0.1:11"
denied "binding port 53 (a DNS server of the tree's own) is denied" bind_dns 127.0.0.99
denied "mknod of /dev/mem's device in the workspace is denied" mknod_mem "$t/work/mem"
denied "setting a security.* attribute is denied" setxattr_security "$t/work/allowed.txt"
denied "chown of a file the profile does not grant is denied" chown "$t/secret.txt"
# A file's times: inode_setattr has no mount, so each mount of the file system above the
# file is a name it has; the change is allowed when one of those names is granted.
denied "back-dating a file the profile does not grant (utimes) is denied" utimes "$t/secret.txt"
reported "DENIED path .*secret.txt (times)" "as a change of times"
expect_ok "setting the times of a file the profile grants writes to works" utimes "$t/work/allowed.txt"
mkdir -p "$u/b" && mount --bind "$t" "$u/b"
denied "through a bind mount, a denied file's times are still denied" utimes "$u/b/secret.txt"
expect_ok "through a bind mount, a granted file's times can be set (by its granted name)" utimes "$u/b/work/allowed.txt"
run_batch
umount "$u/b"
kill -0 "$outsider" && ok "the process outside the tree is still there" || bad "the outsider was signalled or killed"

# Alone: these need another profile, other flags, or agentguard as their parent.
alone() { "$ag" enforce --deny-at new --backend bpf-lsm -q "$@" > "$t/logs/out" 2> "$t/logs/err"; }
# open_by_handle_at needs a file system that makes file handles: the VM's shared ones do
# not, so the file is put on a tmpfs mounted here.
mkdir -p "$t/work/fs" && mount -t tmpfs none "$t/work/fs" && echo secret > "$t/work/fs/secret.txt"
cp "$t/p.toml" "$t/handle.toml"
printf '\n[[file]]\npath = "%s/work/fs"\naccess = ["list"]\n' "$t" >> "$t/handle.toml"
alone --profile "$t/handle.toml" -- "$adv" open_by_handle_at "$t/work/fs/secret.txt"
if grep -q "^open_by_handle_at denied: Operation not permitted" "$t/logs/out"; then ok "open_by_handle_at is denied"; else bad "open_by_handle_at is denied"; cat "$t/logs/out" "$t/logs/err" | head -5; fi
umount "$t/work/fs"
# Alone, so that its denial line is its own: long_path's is uncheckable too.
alone --profile "$t/p.toml" -- "$adv" detached_read "$t" secret.txt
if grep -q "^detached_read denied: Operation not permitted" "$t/logs/out"; then ok "a read through a detached mount (open_tree) is denied: uncheckable"; else bad "detached_read"; cat "$t/logs/out" "$t/logs/err" | head -5; fi
grep -q "DENIED uncheckable" "$t/logs/err" && ok "as uncheckable" || { bad "detached_read: no DENIED uncheckable line"; head -5 "$t/logs/err"; }
# The watchdog is agentguard's other child: the case finds it through its parent.
alone --profile "$t/p.toml" -- "$adv" kill_guard -
if grep -q "^kill_guard denied: Operation not permitted" "$t/logs/out"; then ok "stopping the watchdog and killing agentguard is denied"; else bad "kill_guard"; cat "$t/logs/out" "$t/logs/err" | head -5; fi
grep -q "DENIED signal" "$t/logs/err" && ok "and reported" || { bad "kill_guard: no DENIED line"; head -5 "$t/logs/err"; }
alone --max-procs 8 --profile "$t/p.toml" -- "$adv" fork_many 20
if grep -q "^fork_many denied: Operation not permitted" "$t/logs/out" && grep -q "process map is full" "$t/logs/err"; then ok "with the process map full, a fork is refused"; else bad "fork_many"; cat "$t/logs/out" "$t/logs/err" | head -5; fi
# A fork bomb meets the pids controller first: --max-tasks is the cgroup's pids.max.
"$ag" enforce --deny-at new --backend bpf-lsm --max-tasks 6 --profile "$t/p.toml" -- "$adv" fork_many 20 > "$t/logs/out" 2> "$t/logs/err"
if grep -q "^fork_many denied: Resource temporarily unavailable" "$t/logs/out" && ! grep -q "max-tasks is not applied" "$t/logs/err"; then ok "past --max-tasks, a fork fails (pids.max)"; else bad "max-tasks"; cat "$t/logs/out" "$t/logs/err" | head -5; fi
kill "$outsider" 2>/dev/null

# The ring buffer flooded: agentguard is stopped (SIGSTOP) so nothing reads the 1 MiB ring
# while the tree runs an open storm; records are lost and counted, and the denial that
# follows is still a denial: decisions are the kernel's, not the reader's.
cp "$t/p.toml" "$t/flood.toml"
cat >> "$t/flood.toml" <<TOML

[[exec]]
path = "/usr/bin/dash"

[[exec]]
path = "$ag"

[[file]]
path = "$ag"
access = ["read"]

[[file]]
path = "$t/work/*"
access = ["delete"]

[[file]]
path = "/dev/null"
access = ["write", "truncate"]
TOML
"$ag" enforce --deny-at new --backend bpf-lsm --ring-buffer-mb 1 --events "$t/logs/flood.jsonl" --profile "$t/flood.toml" -- \
    /bin/sh -c ": > $t/work/started; while [ ! -e $t/work/go ]; do :; done; TMPDIR=$t/work $ag __storm open 30000 > /dev/null; $adv openat2 $t/secret.txt > $t/work/result" \
    > "$t/logs/out" 2> "$t/logs/err" &
enf=$!
for _ in $(seq 300); do [ -e "$t/work/started" ] && break; sleep 0.1; done
kill -STOP "$enf"
touch "$t/work/go"
for _ in $(seq 1200); do [ -s "$t/work/result" ] && break; sleep 0.1; done
kill -CONT "$enf"
wait "$enf"
if grep -q "^openat2 denied: Operation not permitted" "$t/work/result"; then ok "with the ring buffer flooded, a denied open is still denied"; else bad "flood: denied open"; cat "$t/work/result" "$t/logs/err" | tail -5; fi
if grep -q '"kind":"lost"' "$t/logs/flood.jsonl"; then ok "and the lost records were counted"; else bad "flood: no lost records counted"; tail -3 "$t/logs/err"; grep -o "\"kind\":\"[a-z]*\"[^}]\{0,160\}" "$t/logs/flood.jsonl" | tail -12; fi
echo "adversary: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
