# Sourced by tests/vm/*.sh: the checks' counters and how each is said. Each line says
# when, in seconds since its script started, so that a run's log shows its pace (an
# emulated VM on a loaded machine runs many times slower) and where time went.
pass=0 fail=0
ok() { pass=$((pass + 1)); printf 'ok   %s [%ss]\n' "$*" "$SECONDS"; }
bad() { fail=$((fail + 1)); printf 'FAIL %s [%ss]\n' "$*" "$SECONDS"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
