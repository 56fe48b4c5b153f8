#!/usr/bin/env bash
# The NATS server for the bridge's tests, its example and busbench: Debian's `nats-server`.
#
#   scripts/nats-server.sh install      install nats-server from Debian's packages if missing
#   scripts/nats-server.sh start        install if needed, start a server on a free loopback port
#                                       with JetStream in a new temporary directory, and print
#                                         NATS_URL=nats://127.0.0.1:PORT
#                                         NATS_PID=PID
#                                       (so `eval "$(scripts/nats-server.sh start)"` works)
#   scripts/nats-server.sh stop PID     stop that server by its process id, remove its directory
#
# This script is the one place that installs the server. The integration tests start and kill
# `nats-server` themselves (they restart it mid-stream), after `install` has run (test-all.sh).
set -euo pipefail

die() { echo "nats-server.sh: $*" >&2; exit 1; }

install_server() {
  if command -v nats-server >/dev/null 2>&1; then
    return 0
  fi
  echo "nats-server.sh: installing nats-server from Debian's packages" >&2
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "nats-server is missing and installing it needs root (apt-get install nats-server)"
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq nats-server >&2
  command -v nats-server >/dev/null 2>&1 || die "apt-get installed no nats-server binary"
}

start_server() {
  install_server
  local dir
  dir="$(mktemp -d "${TMPDIR:-/tmp}/tracebus-nats.XXXXXX")"
  # -p -1: the server picks a free port and writes it to the ports file.
  nats-server -a 127.0.0.1 -p -1 -js -sd "$dir/js" --ports_file_dir "$dir" -l "$dir/server.log" \
    </dev/null >/dev/null 2>&1 &
  local pid=$!
  local ports="$dir/nats-server_$pid.ports" i
  for i in $(seq 1 100); do
    if [ -s "$ports" ]; then
      break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$dir/server.log" >&2 || true
      die "nats-server exited at start"
    fi
    sleep 0.05
  done
  [ -s "$ports" ] || { kill "$pid" 2>/dev/null || true; die "no ports file after 5 s (log: $dir/server.log)"; }
  local url
  url="$(grep -o 'nats://[^"]*' "$ports" | head -n 1)"
  [ -n "$url" ] || { kill "$pid" 2>/dev/null || true; die "no client URL in $ports"; }
  echo "NATS_URL=$url"
  echo "NATS_PID=$pid"
  echo "nats-server.sh: server $pid at $url, data in $dir; stop it with: $0 stop $pid" >&2
}

stop_server() {
  local pid="${1:-}"
  [[ "$pid" =~ ^[0-9]+$ ]] || die "usage: $0 stop PID"
  # Only ever stop a nats-server this script started: its store directory is ours.
  local cmdline dir=""
  cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || die "no process $pid"
  case "$cmdline" in
    nats-server*) ;;
    *) die "process $pid is not a nats-server" ;;
  esac
  dir="$(sed -n 's/.*-sd \([^ ]*\)\/js .*/\1/p' <<<"$cmdline")"
  kill "$pid"
  local i
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null || true
  fi
  case "$dir" in
    "${TMPDIR:-/tmp}"/tracebus-nats.*) rm -rf "$dir" ;;
  esac
  echo "nats-server.sh: stopped $pid" >&2
}

case "${1:-}" in
  install) install_server; command -v nats-server ;;
  start) start_server ;;
  stop) stop_server "${2:-}" ;;
  *) die "usage: $0 install | start | stop PID" ;;
esac
