#!/usr/bin/env bash
# Instructions per publish and per delivery on the bus's common path (one publisher, one
# worker, fanout 1, untraced), counted by callgrind on bus/examples/hotpath.rs: counts, not
# time, so they are the same on a busy machine. Not part of the test command (an optimisation
# guide; docs/benchmarks.md quotes its output). Installs valgrind from Debian's packages when
# it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}

if ! command -v valgrind >/dev/null; then
  echo "installing valgrind" >&2
  sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)
  $sudo apt-get update -qq && $sudo apt-get install -y -qq valgrind >/dev/null
fi

cargo build --release --locked -q -p tracebus --example hotpath
bin=target/release/examples/hotpath
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Per publish: only publish_round is collected.
valgrind --tool=callgrind --callgrind-out-file="$out/publish" \
  --toggle-collect='hotpath::publish_round' "$bin" "$rounds" >/dev/null 2>"$out/publish.log"
publish=$(grep -o 'Collected : [0-9]*' "$out/publish.log" | grep -o '[0-9]*$')

# Per delivery: the worker thread's instructions (the thread that runs `Worker::run`; each thread
# is in a file of its own).
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out/thread" \
  "$bin" "$rounds" >/dev/null 2>"$out/thread.log"
worker=0
for f in "$out"/thread-*; do
  if grep -qF "tracebus::worker::Worker<S>::run" "$f"; then
    n=$(grep -m1 '^summary:' "$f" | grep -o '[0-9]*$')
    worker=$(( n > worker ? n : worker ))
  fi
done

messages=$(( rounds * 4000 ))
awk -v p="$publish" -v w="$worker" -v m="$messages" 'BEGIN {
  printf "instructions per publish (try_publish, fanout 1, untraced): %.1f\n", p / m
  printf "instructions per delivery (worker thread, idle polls between rounds included): %.1f\n", w / m
}'
