#!/usr/bin/env bash
# Runs the tests that need BPF LSM (tests/vm/*.sh) in one VM booting Debian's stock kernel,
# where BPF LSM is active: this machine's kernel refuses LSM programs. scripts/setup.sh
# installs qemu, the kernel and virtme-ng. Software emulation: about 30 s to boot and run.
set -euo pipefail
cd "$(dirname "$0")/.."
kernel=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || { echo "vm-test: no Debian kernel in /boot (scripts/setup.sh installs linux-image-amd64)" >&2; exit 2; }
vng=.venv/bin/vng
[ -x "$vng" ] || { echo "vm-test: no $vng (scripts/setup.sh installs virtme-ng)" >&2; exit 2; }
# The integration test binary that tests/vm/z-integration.sh runs, as cargo names it.
INTEGRATION=$(cargo test --release --locked --no-run --message-format=json |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "integration" and m.get("executable"):
        print(m["executable"])')
[ -x "$INTEGRATION" ] || { echo "vm-test: cargo built no integration test binary" >&2; exit 2; }
work=$(mktemp -d /tmp/agentguard-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The adversarial suite's program (tests/vm/adversary.sh), built here: the VM has no
# compiler, and its writable directory is mounted noexec, so it goes beside the binary.
cc=$(command -v cc || command -v clang || command -v gcc)
mkdir -p target/vm
"$cc" -O1 -o target/vm/adversary tests/adversary/adversary.c -lpthread
# --disable-kvm: a KVM guest hangs at boot on these machines (shared/vm/README.md).
# Through a pipe: qemu opens its stdout chardev with O_TRUNC, which would cut a log file
# this script's output is redirected to (everything printed before the VM started).
# vng runs its helpers (virtme-run, ...) by name: they are beside it in the venv. The
# commands in the VM keep this script's PATH.
# Each script has a time limit (z-integration, the longest, about 15 minutes under
# emulation): a script that hangs fails by name, and the rest still run, instead of the
# whole CI job running out its time with no word of where.
PATH="$PWD/.venv/bin:$PATH" "$vng" --run "$kernel" --disable-kvm --user root -m 2G --cpus 2 --rwdir="$work" \
    --exec "cd $PWD && export VMWORK=$work ADVERSARY=$PWD/target/vm/adversary INTEGRATION=$INTEGRATION PATH=$PATH && bash scripts/vm-scripts.sh" 2>&1 | cat
