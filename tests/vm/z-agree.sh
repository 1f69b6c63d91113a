#!/usr/bin/env bash
# In the VM: the property test that holds the kernel's decisions against the matcher's
# (tests/kernel_agreement.rs), from the integration test binary cargo built on the host.
set -u
bin=$(ls -t target/release/deps/integration-* 2>/dev/null | grep -v '\.d$' | head -n 1)
[ -x "$bin" ] || { echo "no integration test binary: run cargo test --release first"; echo "0 passed, 1 failed"; exit 1; }
export TMPDIR=${VMWORK:?}
"$bin" --ignored --exact kernel_agreement::kernel_decisions_equal_the_matchers --nocapture 2>&1 | tail -n 25
status=${PIPESTATUS[0]}
if [ "$status" -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit "$status"
