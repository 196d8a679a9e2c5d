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
# tests/status_page.rs renders the status page in headless Chromium (Debian's package).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# The power-cut tests (tests/lazyfs) mount a FUSE filesystem: as root with a
# direct mount, otherwise through fusermount3.
[ "$(id -u)" -ne 0 ] && ! command -v fusermount3 >/dev/null 2>&1 && need_apt+=(fuse3)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]} from apt"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# This script never stops or kills a process it did not start: the tests
# use promtool only (no Prometheus server), and every server they need
# (nats-server, the service, simulators) they start themselves on free
# loopback ports and stop by pid. A Prometheus or NATS server of the user's
# own keeps running untouched.

# pymodbus 3.11 (a Modbus peer nobody here wrote) for actors/tests/tls_pymodbus.rs
# (Modbus/TCP Security) and actors/tests/setpoint_writes.rs (writes and their read back).
if ! python3 -c 'import pymodbus, sys; sys.exit(not pymodbus.__version__.startswith("3.11."))' >/dev/null 2>&1; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3 python3-pip
  fi
  echo "test.sh: installing pymodbus 3.11 from PyPI"
  # Debian's system Python refuses plain pip installs (PEP 668): retry with its override.
  python3 -m pip install -q "pymodbus==3.11.*" \
    || python3 -m pip install -q --break-system-packages "pymodbus==3.11.*"
fi

command -v rustfmt >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
# tests/debian_package.rs builds the .deb with cargo-deb from the test
# build's binary (no second build). To check the release package instead:
#   INGESTOR_DEB=$(scripts/package.sh) cargo test --test debian_package
if ! cargo deb --version >/dev/null 2>&1; then
  echo "test.sh: installing cargo-deb (once per machine; a few minutes)"
  cargo install cargo-deb --locked
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== cargo test"
cargo test --workspace --all-targets --all-features
