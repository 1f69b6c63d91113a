#!/usr/bin/env bash
# Installs what agentguard needs to build and test on a fresh Debian 12 machine, then
# builds it. Run as root. Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh installs packages and must run as root (sudo scripts/setup.sh)" >&2
    exit 2
fi

pkgs=(clang llvm libelf-dev zlib1g-dev pkg-config make python3 python3-venv bash perl tmux
      # certificates for the HTTPS model server of the example and the LLM tests
      openssl libssl3
      # programs the record-then-enforce tests learn (tests/learned.rs)
      curl
      # the VM that runs the BPF LSM tests (scripts/vm-test.sh): this kernel refuses LSM programs;
      # virtme-ng runs `file` on the kernel and busybox; the VM scripts use pgrep and ip
      qemu-system-x86 linux-image-amd64 busybox-static kmod file procps iproute2)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The real agents' tests (tests/agents.rs) install Claude Code and Codex with npm, and Codex's
# launcher runs on Node.js. Asked for as commands, not packages: a machine with Node.js from
# elsewhere (whose npm comes with it) has them already, and Debian's npm cannot install beside
# that Node.js.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
    echo "setup: no Rust toolchain: install one with rustup (Rust 1.88 or newer), then run this again" >&2
    exit 2
fi

if [ ! -r /sys/kernel/btf/vmlinux ]; then
    echo "setup: warning: this kernel has no BTF (/sys/kernel/btf/vmlinux): the sensor will not load here" >&2
fi

cargo build --release --locked
echo "setup: built target/release/agentguard"

# The example agent's Python dependencies, in a virtualenv git ignores (.venv). Reinstalled
# only when one of the requirements files changes.
# virtme-ng (vng) runs the VM tests; it goes there too, with what the tests read their
# outputs back with (tests/requirements.txt: junitparser).
reqs=(examples/agent/requirements.txt tests/vm/requirements.txt tests/requirements.txt)
stamp=.venv/.requirements
if ! cat "${reqs[@]}" | cmp -s - "$stamp" 2>/dev/null; then
    echo "setup: creating .venv ($(cat "${reqs[@]}" | tr '\n' ' '))"
    rm -rf .venv
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check "${reqs[@]/#/-r}"
    cat "${reqs[@]}" > "$stamp"
fi
