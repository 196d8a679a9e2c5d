#!/usr/bin/env bash
# The one test command (README): installs what the tests need on a fresh
# Debian/Ubuntu machine, then runs formatting, lints and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
command -v socat >/dev/null 2>&1 || need_apt+=(socat)
command -v mbpoll >/dev/null 2>&1 || need_apt+=(mbpoll)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]} from apt"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# Debian's prometheus package starts a server on :9090 on install; our tests
# start their own, so stop that one only if this script just installed it.
if printf '%s\n' "${need_apt[@]:-}" | grep -qx prometheus; then
  (systemctl stop prometheus 2>/dev/null || pkill -x prometheus 2>/dev/null || true)
fi

command -v rustfmt >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== cargo test"
cargo test --workspace --all-targets --all-features
