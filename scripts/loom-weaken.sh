#!/usr/bin/env bash
# Weakens each Acquire/Release of the ring to Relaxed, removes each asymmetric fence of the
# runtime (barrier.rs's light and heavy, at every call site) and weakens the SeqCst fence loom
# runs for each to AcqRel, one at a time, in a scratch copy of the
# tree, runs the loom models, and prints which models fail. Every line must name at least one
# model: an ordering no model needs is either redundant or a hole in the models. Not part of the
# test command (it rebuilds the loom suite once per ordering); run it after changing the ring.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# file | exact text whose ordering is weakened [| replacement; default: the text with Acquire and
# Release turned into Relaxed]
sites=(
  "bus/src/ring/producer.rs|stamp.store(next, Ordering::Release)"
  "bus/src/ring/producer.rs|fence(Ordering::Release);|"
  "bus/src/ring/producer.rs|self.shared.head.load(Ordering::Acquire)"
  "bus/src/ring/producer.rs|self.shared.producer_closed.store(true, Ordering::Release)"
  "bus/src/ring/producer.rs|self.shared.tail.store(self.tail, Ordering::Release)"
  "bus/src/ring/mod.rs|self.cell(p).stamp.load(Ordering::Acquire)"
  "bus/src/ring/consumer.rs|self.shared.head.store(self.head, Ordering::Release)"
  "bus/src/ring/consumer.rs|c.shared.head.store(c.head, Ordering::Release)"
  "bus/src/ring/consumer.rs|self.shared.producer_closed.load(Ordering::Acquire)"
  "bus/src/ring/consumer.rs|self.cached_tail = self.shared.tail.load(Ordering::Acquire)"
  "bus/src/ring/consumer.rs|let tail = self.shared.tail.load(Ordering::Acquire)"
  "bus/src/wait.rs|heavy(); // worker: flag before the re-check|"
  "bus/src/wait.rs|light(); // publisher: commits before the flag loads|"
  "bus/src/gate.rs|light(); // enter: count before closed|"
  "bus/src/gate.rs|heavy(); // close: closed before the counts|"
  "bus/src/barrier.rs|Ordering::SeqCst); // loom: light|Ordering::AcqRel); // loom: light"
  "bus/src/barrier.rs|Ordering::SeqCst); // loom: heavy|Ordering::AcqRel); // loom: heavy"
  "bus/src/drain.rs|self.0.store(handled, Ordering::Release)"
  "bus/src/drain.rs|self.0.load(Ordering::Acquire)"
  "bus/src/telemetry.rs|self.epoch.fetch_add(1, Ordering::Release)"
  "bus/src/routing.rs|let seen = self.epoch.load(Ordering::Acquire)"
)

status=0
for site in "${sites[@]}"; do
  file=${site%%|*}
  rest=${site#*|}
  text=${rest%%|*}
  rm -rf "$scratch/tree"
  mkdir "$scratch/tree"
  git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$scratch/tree"
  if [ "$rest" != "$text" ]; then
    weak=${rest#*|}
  else
    weak=${text//Ordering::Acquire/Ordering::Relaxed}
    weak=${weak//Ordering::Release/Ordering::Relaxed}
  fi
  count=$(grep -cF "$text" "$scratch/tree/$file" || true)
  if [ "$count" != 1 ]; then
    echo "site not found exactly once ($count): $file: $text" >&2
    exit 2
  fi
  python3 - "$scratch/tree/$file" "$text" "$weak" <<'PY'
import sys
p, old, new = sys.argv[1:]
s = open(p).read()
open(p, "w").write(s.replace(old, new, 1))
PY
  # Build once, then run each model in its own process: a loom failure can abort the whole
  # test binary (a panic while a cell guard unwinds), which would hide the other results.
  if ! (cd "$scratch/tree" && RUSTFLAGS="--cfg tracebus_loom" cargo test -p tracebus-loom-tests \
      --release --target-dir "$root/target/loom-weaken" --no-run >/dev/null 2>&1); then
    echo "BUILD FAILED  $file: $text"
    status=1
    continue
  fi
  failed=""
  for t in $(cd "$scratch/tree" && RUSTFLAGS="--cfg tracebus_loom" cargo test -p tracebus-loom-tests \
      --release --target-dir "$root/target/loom-weaken" -q -- --list 2>/dev/null \
      | sed -n 's/: test$//p'); do
    if ! (cd "$scratch/tree" && RUSTFLAGS="--cfg tracebus_loom" cargo test -p tracebus-loom-tests \
        --release --target-dir "$root/target/loom-weaken" -q -- --exact "$t" >/dev/null 2>&1); then
      failed+="$t "
    fi
  done
  if [ -z "$failed" ]; then
    echo "NOT CAUGHT  $file: $text -> ${weak:-(removed)}"
    status=1
  else
    echo "caught      $file: $text -> ${weak:-(removed)}  by: $failed"
  fi
done
exit $status
