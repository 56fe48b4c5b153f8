#!/usr/bin/env bash
# Miri, the interpreter that checks Rust's rules on every access (undefined behaviour, data races
# with its weak-memory emulation, leaks), on what it can run:
# - the ring's, the slot's and the fences' unit tests, and tracebus-context's unit tests, once;
# - the concurrent tests (bus/tests/miri_bus.rs, a whole bus with two workers, two publishers
#   and onward publishes; bus/tests/ring_stress.rs, two threads through one ring) on
#   MIRI_SEEDS scheduler seeds, with sizes lowered under `cfg(miri)`.
# Under Miri the bus runs on its documented fallbacks (`SeqCst` fences instead of membarrier,
# a plain clock instead of the TSC, rings from `alloc_zeroed` instead of mappings), each chosen
# with `cfg(miri)` where it is made. The other tests stay with the other steps: Miri has no
# `membarrier` syscall and no inline assembly (the TSC), its isolation refuses the wall clock
# and files (the span pipeline, `/sys` core lists), and proptest, the soak, timing and memory
# tests are too long interpreted or measure the real machine.
#
# Installs the pinned nightly with miri and rust-src through rustup on first use (Miri is
# nightly-only), then its sysroot (`cargo miri setup`). Where that cannot be done (no rustup,
# no network, no miri in that nightly), it prints one line saying Miri was skipped and why, and
# exits 0; a Miri error in a test fails the script.
#
#   scripts/miri.sh                       # seeds 0..8
#   MIRI_SEEDS=0..64 scripts/miri.sh      # a longer search of the concurrent tests
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLCHAIN=${MIRI_TOOLCHAIN:-nightly-2026-10-30}
SEEDS=${MIRI_SEEDS:-0..8}
# Strict provenance: no pointer made from an integer, in tracebus or in what it calls.
export MIRIFLAGS="-Zmiri-strict-provenance ${MIRIFLAGS:-}"

skip() {
  echo "miri: SKIPPED, $*" >&2
  exit 0
}

if ! cargo "+$TOOLCHAIN" miri --version >/dev/null 2>&1; then
  command -v rustup >/dev/null || skip "no rustup to install $TOOLCHAIN with miri"
  echo "installing $TOOLCHAIN with miri and rust-src (rustup)" >&2
  RUST_BACKTRACE=0 rustup toolchain install "$TOOLCHAIN" --profile minimal \
    --component miri,rust-src --no-self-update >&2 ||
    skip "rustup could not install $TOOLCHAIN with miri (no network, or no miri in that nightly)"
fi
miri=(cargo "+$TOOLCHAIN" miri)
"${miri[@]}" setup >&2 || skip "cargo miri setup failed (building Miri's sysroot needs crates.io)"

echo "miri: tracebus-context unit tests" >&2
"${miri[@]}" test --locked -p tracebus-context --lib -- --quiet

echo "miri: the ring's, the slot's and the fences' unit tests" >&2
"${miri[@]}" test --locked -p tracebus --lib -- --quiet ring:: slot:: barrier::

echo "miri: a whole bus, and two threads through one ring, on seeds $SEEDS" >&2
# Miri runs the seeds in parallel and their outputs interleave, so they go to a log, shown
# whole when a seed fails.
log=${CARGO_TARGET_DIR:-target}/miri/seeds.log
mkdir -p "$(dirname "$log")"
if ! MIRIFLAGS="$MIRIFLAGS -Zmiri-many-seeds=$SEEDS" \
  "${miri[@]}" test --locked -p tracebus --test miri_bus --test ring_stress -- --quiet \
  >"$log" 2>&1; then
  cat "$log" >&2
  echo "miri: FAILED on a seed (its report is above; the log is $log)" >&2
  exit 1
fi
# One line per test binary, with the number of seeds it ran on.
awk 'function done() { if (bin != "") printf "miri: %s passed on %d seeds\n", bin, n }
  /Running/ { done(); bin = $2; n = 0 } { n += gsub(/Trying seed: [0-9]+/, "") } END { done() }' \
  "$log" >&2
