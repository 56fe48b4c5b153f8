#!/usr/bin/env bash
# Every test tracebus has, in one command: formatting and lints, unit, integration, property and
# doc tests of the whole workspace, then the loom models (in their own target dir, so the
# `--cfg tracebus_loom` build does not thrash the normal one), plus the ring under valgrind and
# Miri, and a bounded fuzz run of every parser.
# Needs only the Rust toolchain: any other tool is installed by the scripts it calls (nats-server
# for the NATS bridge's tests comes from Debian's packages through scripts/nats-server.sh; the
# nightly toolchain with Miri from rustup through scripts/miri.sh, which skips with a note where
# it cannot be installed).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path context/fuzz/Cargo.toml -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "nats-server for the bridge's integration tests (scripts/nats-server.sh install)"
scripts/nats-server.sh install

step "unit, integration, property and doc tests"
cargo test --workspace --exclude tracebus-loom-tests --locked

step "the libraries as users build them (no test hooks): clippy, warnings are errors"
cargo clippy -p tracebus-context -p tracebus -p tracebus-nats --locked -- -D warnings

step "the API docs, warnings are errors (dead links included)"
RUSTDOCFLAGS="-D warnings ${RUSTDOCFLAGS:-}" cargo doc --workspace --no-deps --locked

step "the ring's and the slot's tests under valgrind memcheck (scripts/valgrind.sh)"
scripts/valgrind.sh

step "the ring, the slot, tracebus-context and a small whole bus under Miri (scripts/miri.sh)"
scripts/miri.sh

step "fuzz every parser, bounded (cargo-fuzz on stable, installed by scripts/fuzz.sh)"
scripts/fuzz.sh

step "loom models (RUSTFLAGS=--cfg tracebus_loom, target/loom)"
RUSTFLAGS="--cfg tracebus_loom ${RUSTFLAGS:-}" cargo test -p tracebus-loom-tests --release --locked \
  --target-dir target/loom
