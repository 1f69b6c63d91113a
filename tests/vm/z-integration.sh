#!/usr/bin/env bash
# In the VM: the integration tests that need BPF LSM, from the test binary that cargo built
# on the host (scripts/vm-test.sh names it in $INTEGRATION: cargo's own answer, not the
# newest file in target/): the property test that holds the kernel's decisions against the
# matcher's (tests/kernel_agreement.rs), doctor against the suite's own BPF LSM check, and
# enforce on a kernel that takes BPF LSM decisions (the enforce tests say "skipping" on the host),
# the record-then-enforce loops (tests/learned.rs, the example agent) and each shipped
# include on a real program (tests/includes.rs) under BPF LSM.
set -u
bin=${INTEGRATION:?INTEGRATION names the integration test binary}
[ -x "$bin" ] || { echo "no integration test binary $bin"; echo "0 passed, 1 failed"; exit 1; }
export TMPDIR=${VMWORK:?}
# Scratch directories kept out of /tmp (tests/util.rs, scratch_outside_tmp), as a user's
# HOME is: /srv, which vng overlays with a writable layer in the VM.
export AGENTGUARD_TEST_OUTSIDE_TMP=/srv/agentguard-test
mkdir -p "$AGENTGUARD_TEST_OUTSIDE_TMP"
status=0
run() {
    "$bin" "$@" --test-threads 1 --nocapture > "$VMWORK/integration.log" 2>&1
    local s=$?
    # All of it when something failed (the reason is above the summary), else the summary.
    if [ "$s" -eq 0 ]; then tail -n 25 "$VMWORK/integration.log"; else cat "$VMWORK/integration.log"; fi
    # A test that needs BPF LSM and skipped here would prove nothing: it must have run.
    # A filter that matches no test would pass having proved nothing.
    if grep -q "^running 0 tests" "$VMWORK/integration.log"; then
        echo "FAIL no test matched: $*"; s=1
    fi
    if grep -q "skipping: [a-z_:]*: needs BPF LSM" "$VMWORK/integration.log"; then
        echo "FAIL a test skipped in the VM, where what it needs is present"; s=1
    fi
    [ "$s" -eq 0 ] || status=1
}
run --ignored --exact kernel_agreement::kernel_decisions_equal_the_matchers
run doctor:: enforce:: learned:: includes::
# The example agent's loop under BPF LSM: the baseline the host's run of the test learned
# from four recorded runs (recording them again here would take ten minutes of emulation),
# enforced on one held-out seed and two attacks (a credential sent to a sink, a shell
# start-up file written); every attack runs on the host, under Landlock.
export AGENTGUARD_TEST_EXAMPLE_BASELINE="$PWD/target/tmp/example-baseline.toml"
export AGENTGUARD_TEST_HELD_OUT=1 AGENTGUARD_TEST_ATTACKS=exfil_credentials,shell_startup
run --exact example::the_example_agent_runs_under_its_learned_baseline_and_no_attack_has_an_effect
if [ "$status" -eq 0 ]; then echo "integration in the VM: passed"; else echo "integration in the VM: FAILED"; fi
exit "$status"
