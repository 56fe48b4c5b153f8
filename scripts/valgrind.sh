#!/usr/bin/env bash
# The ring's and the slot's tests under valgrind memcheck: every unsafe block in tracebus is in
# the ring, and these tests reach each of them (pushes, claims, pops, peeks, chunk reads and
# releases, drops of unread values, wrap-around, close). Any invalid read or write, use of
# uninitialised memory, or definite leak fails the run.
#
# Installs valgrind from Debian's packages when it is missing. Sizes are lowered so that the
# run takes a couple of minutes under valgrind's serialised threads.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
  echo "installing valgrind" >&2
  sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)
  $sudo apt-get update -qq && $sudo apt-get install -y -qq valgrind >/dev/null
fi

# Build the test binaries and collect their paths from cargo's JSON messages.
mapfile -t bins < <(cargo test -p tracebus --locked --no-run --message-format=json \
    --lib --test ring_vs_rtrb --test ring_stress 2>/dev/null |
  grep -o '"executable":"[^"]*"' | sed 's/"executable":"\(.*\)"/\1/')
[ ${#bins[@]} -eq 3 ] || { echo "expected 3 test binaries, found ${#bins[@]}" >&2; exit 1; }

export PROPTEST_CASES=${PROPTEST_CASES:-64}
export RING_STRESS_MESSAGES=${RING_STRESS_MESSAGES:-200000}
for bin in "${bins[@]}"; do
  filter=()
  # The library's unit tests: only the ring's and the slot's (the runtime's are not unsafe).
  case "$(basename "$bin")" in tracebus-*) filter=(ring:: slot::) ;; esac
  echo "valgrind memcheck: $(basename "$bin") ${filter[*]}" >&2
  # --fair-sched: valgrind runs one thread at a time, and its default lock can hand the CPU
  # back to a thread that yields; the stress test's spinning sides then crawl (minutes).
  valgrind --quiet --fair-sched=yes --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite "$bin" --quiet --test-threads=1 "${filter[@]}"
done
