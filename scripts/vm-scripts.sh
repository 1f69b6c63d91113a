#!/usr/bin/env bash
# In the VM (scripts/vm-test.sh boots it): every tests/vm/*.sh, each under a time limit.
# A script that hangs is killed with what it started, named, and counted as failed.
set -u
rc=0
for t in tests/vm/*.sh; do
    # z-integration limits each of its tests (900 s) itself: its own limit is only a
    # backstop, above its usual quarter of an hour even on a slow machine.
    case $t in
        *z-integration.sh) limit=3600 ;;
        *) limit=900 ;;
    esac
    echo "== $t"
    start=$SECONDS
    # timeout signals its whole process group: the script and the agentguard it started.
    timeout --kill-after=20 "$limit" bash "$t"
    s=$?
    if [ "$s" -eq 124 ] || [ "$s" -eq 137 ]; then
        echo "FAIL $t did not finish in ${limit}s (killed); the last check above is where it stopped"
    fi
    echo "== $t: exit $s after $((SECONDS - start))s"
    [ "$s" -eq 0 ] || rc=1
done
exit "$rc"
