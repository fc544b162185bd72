#!/usr/bin/env bash
# Starts, stops and describes the PostgreSQL and Redis servers the demo and the tests use.
#
#   scripts/services.sh start    start both (reused when already running), print their URLs
#   scripts/services.sh stop     stop both
#   scripts/services.sh status   say what is running
#   scripts/services.sh env      print DATABASE_URL and REDIS_URL lines for `eval`
#   scripts/services.sh start-redis | stop-redis   only Redis (for tests that stop and restart it)
#   scripts/services.sh start-pg | stop-pg         only PostgreSQL (likewise)
#
# REDIS_PERSISTENCE=off starts Redis without its append-only file (a restart loses every key).
# PG_STOP_MODE=fast|immediate picks how stop-pg stops PostgreSQL (fast: a clean shutdown;
# immediate: no checkpoint, like a crash, recovered from the WAL on the next start).
#
# Private instances for tests that stop and restart servers: set SERVICES_DIR, PG_PORT and
# REDIS_PORT to other values. Servers listen on 127.0.0.1 only; data is throwaway.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
checkout_key=$(printf '%s' "$here" | cksum | cut -d' ' -f1)
SERVICES_DIR=${SERVICES_DIR:-${TMPDIR:-/tmp}/typeorm-es-$checkout_key}
PG_PORT=${PG_PORT:-5433}
REDIS_PORT=${REDIS_PORT:-6380}
PG_DIR=$SERVICES_DIR/pg
REDIS_DIR=$SERVICES_DIR/redis

say() { printf 'services: %s\n' "$*" >&2; }

find_pg_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return 0
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

install_missing() {
  local pkgs=()
  find_pg_bin >/dev/null || pkgs+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
  [ ${#pkgs[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${pkgs[*]} with apt-get"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
    # Debian's packages start their own servers on the default ports; ours run apart from them.
    return 0
  fi
  cat >&2 <<MSG
services: missing ${pkgs[*]}.
  Debian/Ubuntu:  sudo apt-get install postgresql redis-server
  macOS:          brew install postgresql@15 redis
  Docker:         docker compose up -d, then
                  export DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres
                  export REDIS_URL=redis://127.0.0.1:$REDIS_PORT
MSG
  exit 1
}

# PostgreSQL refuses to run as root: as root, run it as the postgres user.
as_pg_user() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    su postgres -s /bin/bash -c "$*"
  else
    bash -c "$*"
  fi
}

pg_running() { [ -f "$PG_DIR/data/postmaster.pid" ] && as_pg_user "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' status" >/dev/null 2>&1; }
redis_running() { [ -f "$REDIS_DIR/redis.pid" ] && kill -0 "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null; }

start_pg() {
  mkdir -p "$PG_DIR"
  chmod 755 "$SERVICES_DIR" "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
  if pg_running; then return 0; fi
  local isready="$PG_BIN/pg_isready"
  [ -x "$isready" ] || isready=$(command -v pg_isready || echo false)
  if "$isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; then
    say "reusing the PostgreSQL already listening on 127.0.0.1:$PG_PORT"; return 0
  fi
  if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
    as_pg_user "'$PG_BIN/initdb' -D '$PG_DIR/data' -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >"$PG_DIR/initdb.log" 2>&1 \
      || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
  fi
  as_pg_user "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' -l '$PG_DIR/pg.log' -w -t 60 start \
    -o \"-p $PG_PORT -k '$PG_DIR' -c listen_addresses=127.0.0.1 -c max_connections=200\"" >/dev/null \
    || { tail -n 20 "$PG_DIR/pg.log" >&2; exit 1; }
}

start_redis() {
  mkdir -p "$REDIS_DIR"
  if redis_running; then return 0; fi
  if [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
    say "reusing the Redis already listening on 127.0.0.1:$REDIS_PORT"; return 0
  fi
  # BullMQ needs noeviction (an evicted key breaks a queue) and the AOF so that waiting jobs
  # survive a restart; REDIS_PERSISTENCE=off makes a Redis that forgets, for tests of that case.
  local persistence
  case "${REDIS_PERSISTENCE:-on}" in
    on) persistence=(--appendonly yes --appendfsync everysec) ;;
    off) persistence=(--appendonly no) ;;
    *) say "REDIS_PERSISTENCE must be on or off, not $REDIS_PERSISTENCE"; exit 2 ;;
  esac
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save '' "${persistence[@]}" \
    --maxmemory-policy noeviction \
    --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log"
  for _ in $(seq 1 100); do
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  say "redis did not answer on 127.0.0.1:$REDIS_PORT"; tail -n 20 "$REDIS_DIR/redis.log" >&2; exit 1
}

stop_redis() {
  if redis_running; then
    local pid; pid=$(cat "$REDIS_DIR/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
}

stop_pg() {
  local mode=${PG_STOP_MODE:-fast}
  case "$mode" in fast|immediate) ;; *) say "PG_STOP_MODE must be fast or immediate, not $mode"; exit 2 ;; esac
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    as_pg_user "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' -m $mode -w -t 60 stop" >/dev/null 2>&1 || true
  fi
}

stop_all() {
  stop_pg
  stop_redis
}

print_env() {
  echo "DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
}

case "${1:-start}" in
  start)
    install_missing
    PG_BIN=$(find_pg_bin)
    start_pg
    start_redis
    print_env
    ;;
  stop)
    PG_BIN=$(find_pg_bin || echo /nonexistent)
    stop_all
    ;;
  status)
    PG_BIN=$(find_pg_bin || echo /nonexistent)
    pg_running && echo "postgres: running on 127.0.0.1:$PG_PORT" || echo "postgres: stopped"
    redis_running && echo "redis: running on 127.0.0.1:$REDIS_PORT" || echo "redis: stopped"
    ;;
  start-redis)
    install_missing
    start_redis
    echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
    ;;
  stop-redis) stop_redis ;;
  start-pg)
    install_missing
    PG_BIN=$(find_pg_bin)
    start_pg
    echo "DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    ;;
  stop-pg)
    PG_BIN=$(find_pg_bin || echo /nonexistent)
    stop_pg
    ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|status|env|start-redis|stop-redis|start-pg|stop-pg" >&2; exit 2 ;;
esac
