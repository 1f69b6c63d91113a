#!/usr/bin/env bash
# In the VM: the integration tests that need BPF LSM, from the test binary that cargo built
# on the host (scripts/vm-test.sh names it in $INTEGRATION: cargo's own answer, not the
# newest file in target/): the property test that holds the kernel's decisions against the
# matcher's (tests/kernel_agreement.rs), doctor against the suite's own BPF LSM check, and
# enforce on a kernel that takes BPF LSM decisions (the enforce tests say "skipping" on the host),
# the record-then-enforce loops (tests/learned.rs, the example agent) and each shipped
# include on a real program (tests/includes.rs) under BPF LSM, and an agent's hooks reporting
# under its learned baseline (tests/hooks.rs).
#
# Each test runs alone under a time limit of its own, its output streamed as it comes: a
# test that hangs fails by name with what it printed, and the ones after it still run.
set -u
bin=${INTEGRATION:?INTEGRATION names the integration test binary}
[ -x "$bin" ] || { echo "no integration test binary $bin"; echo "0 passed, 1 failed"; exit 1; }
export TMPDIR=${VMWORK:?}
# Scratch directories kept out of /tmp (tests/util.rs, scratch_outside_tmp), as a user's
# HOME is: /srv, which vng overlays with a writable layer in the VM.
export AGENTGUARD_TEST_OUTSIDE_TMP=/srv/agentguard-test
mkdir -p "$AGENTGUARD_TEST_OUTSIDE_TMP"
passed=0 failed=0
# The processes running now that are not in the list of pids $1, nor kernel threads, nor
# this listing's own (the subshell that runs it, ps, awk): "pid state args" lines.
new_processes() {
    local me=$BASHPID
    ps -eo pid=,stat=,args= | awk -v before="$1" -v me="$me" '
        BEGIN { n = split(before, p, "\n"); for (i = 1; i <= n; i++) old[p[i]] = 1 }
        !($1 in old) && $1 != me && $3 !~ /^\[/ && $3 != "ps" && $3 != "awk" { print }'
}
# run LIMIT [--ignored] FILTER...: every test the filters name, one at a time.
run() {
    local limit=$1; shift
    local ignored=()
    if [ "$1" = --ignored ]; then ignored=(--ignored); shift; fi
    local tests
    tests=$("$bin" --list --format terse "${ignored[@]}" "$@" | sed -n 's/: test$//p')
    # A filter that matches no test would pass having proved nothing.
    if [ -z "$tests" ]; then echo "FAIL no test matched: $*"; failed=$((failed + 1)); return; fi
    local t s start
    for t in $tests; do
        start=$SECONDS
        echo "-- $t"
        local before
        before=$(ps -eo pid= | tr -d ' ')
        # Into a file, shown as it grows, not through a pipe: a process the test left
        # behind (a tree in its own session, one stuck in the kernel) that kept the pipe
        # open would hold the reader, and this script, past every limit.
        : > "$VMWORK/test.log" # emptied first: tail must not show the last test's output
        timeout --kill-after=20 "$limit" "$bin" "${ignored[@]}" --exact "$t" --test-threads 1 --nocapture \
            > "$VMWORK/test.log" 2>&1 &
        local p=$!
        tail -n +1 -f --pid="$p" "$VMWORK/test.log"
        wait "$p"
        s=$?
        # What outlived the test (timeout signals its process group once, and a member
        # that handles SIGTERM, as agentguard does, is not killed after it): the processes
        # that were not there before it, kernel threads aside, named and then killed, so
        # that the next test does not run beside them (that a tree ends with its
        # enforcement is tests/vm/enforce.sh's to check). A watchdog still ending its tree
        # is given ten seconds.
        local left i
        for i in $(seq 20); do
            left=$(new_processes "$before")
            [ -n "$left" ] || break
            sleep 0.5
        done
        if [ -n "$left" ]; then
            printf 'left running after %s:\n%s\n' "$t" "$left"
            kill -9 $(printf '%s\n' "$left" | awk '{print $1}') 2>/dev/null
        fi
        if [ "$s" -eq 124 ] || [ "$s" -eq 137 ]; then
            echo "FAIL $t did not finish in ${limit}s (killed)"
            bash scripts/vm-hang-report.sh
        # A test that needs BPF LSM and skipped here would prove nothing: it must have run.
        elif grep -q "skipping: [a-z_:]*: needs BPF LSM" "$VMWORK/test.log"; then
            echo "FAIL $t skipped in the VM, where what it needs is present"; s=1
        fi
        if [ "$s" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
        echo "-- $t: $([ "$s" -eq 0 ] && echo ok || echo FAILED) in $((SECONDS - start))s"
    done
}
run 900 --ignored kernel_agreement::kernel_decisions_equal_the_matchers
# The endpoint checks in brief: the host puts them through every mode (tests/endpoints.rs).
export AGENTGUARD_TEST_ENDPOINTS_BRIEF=1
run 600 doctor:: enforce:: learned:: includes:: endpoints:: hooks::a_hooked_agent
# The example agent's loop under BPF LSM: the baseline the host's run of the test learned
# from four recorded runs (recording them again here would take ten minutes of emulation),
# enforced on one held-out seed and two attacks (a credential sent to a sink, a shell
# start-up file written); every attack runs on the host, under Landlock.
export AGENTGUARD_TEST_EXAMPLE_BASELINE="$PWD/target/tmp/example-baseline.toml"
export AGENTGUARD_TEST_HELD_OUT=1 AGENTGUARD_TEST_ATTACKS=exfil_credentials,shell_startup
run 900 example::the_example_agent_runs_under_its_learned_baseline_and_no_attack_has_an_effect
echo "integration in the VM: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
