#!/usr/bin/env bash
# Bounded coverage-guided fuzzing of every parser in tracebus-context (context/fuzz): the
# traceparent text form, the 29-byte W3C binary form, raw header bytes and the fast filter.
#
# Installs cargo-fuzz (pinned) into target/tools on first use, builds the targets on stable Rust
# with `--sanitizer none` (libFuzzer's coverage guidance; no nightly-only sanitizer), and runs
# each target for a fixed number of executions from the committed seeds plus a scratch corpus.
# A crash fails the script and leaves the input under target/fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh                # FUZZ_RUNS executions per target (default 5,000,000)
#   FUZZ_RUNS=50000000 scripts/fuzz.sh traceparent   # a longer run of one target
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
RUNS=${FUZZ_RUNS:-5000000}
SEED=${FUZZ_SEED:-1}
TOOLS=target/tools
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(traceparent binary header filter)

if ! "$TOOLS/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS" >&2
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$TOOLS" --quiet
fi
FUZZ="$PWD/$TOOLS/bin/cargo-fuzz"

for t in "${TARGETS[@]}"; do
  corpus=target/fuzz/corpus/$t
  artifacts=target/fuzz/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  echo "fuzz $t: $RUNS executions (seed $SEED)" >&2
  log=target/fuzz/$t.log
  status=0
  "$FUZZ" run --fuzz-dir context/fuzz --target-dir target/fuzz/build --sanitizer none \
    "$t" "$corpus" "context/fuzz/seeds/$t" -- \
    -runs="$RUNS" -seed="$SEED" -max_len=256 -artifact_prefix="$artifacts/" \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^(Done|stat::number_of_executed_units|SUMMARY)|INFO: seed corpus|panicked" "$log" >&2 || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz $t FAILED (exit $status); the input is saved under $artifacts" >&2
    exit 1
  fi
done
