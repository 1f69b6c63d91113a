#!/usr/bin/env bash
# Makes the entries of src/sensor/boring_builds.toml: installs each npm package named on
# the command line (default: the builds the table holds) into a scratch prefix, finds
# BoringSSL's SSL_write and SSL_read, or the AEAD's seal and open, in its executables by
# their signature
# (`agentguard doctor --tls`), and prints one [[build]] entry per executable. Paste the
# output into the table. Needs npm and a built target/release/agentguard.
#
#   scripts/tls-builds.sh @anthropic-ai/claude-code-linux-x64@2.1.332 @oven/bun-linux-x64@1.4.5
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/agentguard
[ -x "$bin" ] || { echo "tls-builds.sh: build agentguard first (cargo build --release)" >&2; exit 2; }
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(
    @anthropic-ai/claude-code-linux-x64@2.1.332
    @anthropic-ai/claude-code-linux-x64@2.1.250
    @anthropic-ai/claude-code-linux-x64@2.1.113
    @oven/bun-linux-x64@1.4.5
)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for pkg in "${pkgs[@]}"; do
    prefix="$work/$(echo "$pkg" | tr '/@' '__')"
    # --force: the platform packages declare their os and cpu; this is the one they name.
    npm install --silent --no-audit --no-fund --force --prefix "$prefix" "$pkg" >&2
    name=${pkg%@*}
    for exe in $(find "$prefix/node_modules/$name" -type f -perm -u+x -size +10M); do
        # doctor --tls searches by the signature even for a build the table holds, and
        # fails when the two disagree.
        out=$("$bin" doctor --tls "$exe") || { echo "# $pkg: $exe: $out" >&2; continue; }
        id=$(sed -n 's/^id = "\(.*\)"$/\1/p' <<<"$out")
        library=$(sed -n 's/^library = "\(.*\)"$/\1/p' <<<"$out")
        write=$(sed -n 's/^write = //p' <<<"$out")
        read=$(sed -n 's/^read = //p' <<<"$out")
        [ -n "$id" ] || { echo "# $pkg: $exe: no signature find: $out" >&2; continue; }
        printf '\n[[build]]\nid = "%s"\nlibrary = "%s"\nwhat = "%s (%s)"\nwrite = %s\nread = %s\n' \
            "$id" "$library" "$pkg" "${exe#"$prefix"/node_modules/}" "$write" "$read"
    done
done
