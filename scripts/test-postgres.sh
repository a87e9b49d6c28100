#!/usr/bin/env bash
# A throw-away PostgreSQL for the tests: a cluster in a temp dir on a free loopback port,
# password (scram) auth for a superuser, run as the unprivileged `postgres` user when
# invoked as root. Debian's `postgresql` package provides the binaries.
#
#   eval "$(scripts/test-postgres.sh start)"   # starts one (or reuses the running one)
#   scripts/test-postgres.sh env                 # prints the export line again
#   scripts/test-postgres.sh stop                # stops it and removes its directory
#
# `start` and `env` print `export PERSONIO_SYNC_TEST_PG_URL=postgres://...` on stdout
# (everything else goes to stderr). The state file (dir, port, URL) is per checkout, so
# several checkouts on one machine each have their own cluster; override its path with
# PERSONIO_SYNC_TEST_PG_STATE.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
state="${PERSONIO_SYNC_TEST_PG_STATE:-${TMPDIR:-/tmp}/personio-sync-test-pg-$(id -u)-$(printf '%s' "$root" | sha256sum | cut -c1-12)}"

say() { echo "test-postgres: $*" >&2; }
die() { say "$*"; exit 1; }

bin_dir() {
  local initdb
  initdb="$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)"
  [ -n "$initdb" ] || die "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb); install them with: apt-get install postgresql"
  dirname "$initdb"
}

# Runs a server binary as the cluster's owner (from /: the caller's directory may be
# closed to it).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

running() {
  [ -f "$state" ] || return 1
  # shellcheck disable=SC1090
  . "$state"
  [ -d "$PG_DIR/data" ] && as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1
}

print_env() {
  # shellcheck disable=SC1090
  . "$state"
  echo "export PERSONIO_SYNC_TEST_PG_URL=$PG_URL"
}

start() {
  if running; then
    say "already running on port $PG_PORT ($PG_DIR)"
    print_env
    return
  fi
  [ -f "$state" ] && stop
  local bin dir password port user=personio_sync_test
  bin="$(bin_dir)"
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    die "running as root needs the 'postgres' user (apt-get install postgresql creates it)"
  fi
  dir="$(mktemp -d "${TMPDIR:-/tmp}/personio-sync-pg.XXXXXX")"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s\n' "$password" >"$dir/pwfile"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/pwfile"
  chmod 600 "$dir/pwfile"
  as_owner "$bin/initdb" -D "$dir/data" -U "$user" --pwfile="$dir/pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; die "initdb failed"; }
  rm -f "$dir/pwfile"
  local attempt
  for attempt in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    port_free "$port" || continue
    # Throw-away data: no fsync; many test databases with their own pools.
    if as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/server.log" \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >/dev/null 2>&1; then
      cat >"$state" <<EOF
PG_BIN=$bin
PG_DIR=$dir
PG_PORT=$port
PG_URL=postgres://$user:$password@127.0.0.1:$port/postgres
EOF
      chmod 600 "$state"
      say "started on port $port ($dir)"
      print_env
      return
    fi
    say "port $port: start failed (attempt $attempt), trying another"
  done
  tail -n 20 "$dir/server.log" >&2 || true
  rm -rf "$dir"
  die "could not start PostgreSQL"
}

stop() {
  if [ ! -f "$state" ]; then
    say "nothing to stop"
    return
  fi
  # shellcheck disable=SC1090
  . "$state"
  if [ -d "$PG_DIR/data" ]; then
    as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  case "$PG_DIR" in
    */personio-sync-pg.*) rm -rf "$PG_DIR" ;;
  esac
  rm -f "$state"
  say "stopped (port $PG_PORT)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env)
    running || die "not running; start one with: eval \"\$(scripts/test-postgres.sh start)\""
    print_env
    ;;
  *) die "usage: $0 start|stop|env" ;;
esac
