#!/usr/bin/env bash
# Builds the Debian package from a release build:
#   target/debian/ingestor_<version>-1_<arch>.deb   (path printed last)
# Install it on a plant PC with `sudo apt install ./ingestor_*.deb`.
# Extra arguments go to cargo-deb (e.g. --target aarch64-unknown-linux-gnu).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
  echo "package.sh: installing cargo-deb (once; a few minutes)" >&2
  cargo install cargo-deb --locked
fi
command -v dpkg-deb >/dev/null 2>&1 || { echo "package.sh: dpkg-deb missing (apt install dpkg)" >&2; exit 1; }

# --strip: the release profile keeps line tables for backtraces during
# development; the package ships a stripped binary.
cargo deb --locked --strip "$@" | tail -n 1
