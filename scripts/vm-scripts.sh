#!/usr/bin/env bash
# In the VM (scripts/vm-test.sh boots it): every tests/vm/*.sh, each under a time limit.
# A script that hangs is named, what the kernel shows of its processes is printed
# (scripts/vm-hang-report.sh), and it is killed with what it started and counted as failed.
#
# The whole stage has a budget too: a VM that something has wedged (a task stuck in the
# kernel holds a lock every later script needs) would otherwise run each later script to
# its own limit, and the CI job out of its time with no word of why.
set -u
rc=0
budget=${AGENTGUARD_VM_BUDGET:-3600}
# The kernel's hung-task detector names a task blocked this long, with its stack, in the
# log that a hang's report prints.
sysctl -qw kernel.hung_task_timeout_secs=60 2>/dev/null || true
for t in tests/vm/*.sh; do
    # z-integration limits each of its tests itself: its own limit is only a backstop,
    # above its usual half hour under emulation.
    case $t in
        *z-integration.sh) limit=2700 ;;
        *) limit=900 ;;
    esac
    left=$((budget - SECONDS))
    if [ "$left" -le 60 ]; then
        echo "FAIL $t not run: the VM stage's ${budget}s are spent"
        rc=1
        continue
    fi
    [ "$limit" -le "$left" ] || limit=$left
    echo "== $t"
    start=$SECONDS
    # In its own process group, so that it and the agentguard it started are killed as one.
    setsid bash "$t" &
    p=$!
    while kill -0 "$p" 2>/dev/null && [ $((SECONDS - start)) -lt "$limit" ]; do sleep 1; done
    if kill -0 "$p" 2>/dev/null; then
        echo "FAIL $t did not finish in ${limit}s; the last check above is where it stopped"
        bash scripts/vm-hang-report.sh
        kill -TERM -- "-$p" 2>/dev/null
        for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 1; done
        kill -KILL -- "-$p" 2>/dev/null
        s=124
    else
        wait "$p"
        s=$?
    fi
    echo "== $t: exit $s after $((SECONDS - start))s"
    [ "$s" -eq 0 ] || rc=1
done
# A task the detector saw blocked is a hang even when every script passed.
if dmesg | grep -q "blocked for more than"; then
    echo "FAIL the kernel saw a task blocked:"
    dmesg | grep -A 30 "blocked for more than" | head -n 120
    rc=1
fi
exit "$rc"
