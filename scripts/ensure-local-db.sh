#!/usr/bin/env bash
# The PostgreSQL database of `make run` (the embedded default). One engine everywhere: there is no
# SQLite fallback.
#   scripts/ensure-local-db.sh start   prints the DATABASE_URL to use (nothing else on stdout),
#                                      creating the database when it is missing
#   scripts/ensure-local-db.sh stop    stops the private cluster if `start` started one
# Where the database lives, in order:
#   1. DATABASE_URL from the environment, as it is;
#   2. the local server `make test` uses, 127.0.0.1:5432 (as root it is installed and started when
#      missing), database LOCAL_DB_NAME (cps_cms_local);
#   3. without root and without that server, or with LOCAL_DB_PRIVATE=1: a private cluster under
#      var/pg (initdb, pg_ctl, its Unix socket in var/pg, no TCP port), started here and stopped
#      by `stop`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
NAME=${LOCAL_DB_NAME:-cps_cms_local}
CLUSTER="${CMS_VAR_DIR:-$ROOT/var}/pg"
say() { echo "$*" >&2; }

pg_bin() {  # the server binaries are not on PATH on Debian
  local tool=$1 found
  found=$(command -v "$tool" 2>/dev/null || true)
  if [ -z "$found" ]; then
    found=$(ls -d /usr/lib/postgresql/*/bin/"$tool" 2>/dev/null | sort -V | tail -n1 || true)
  fi
  echo "$found"
}

need_client() {
  local tool
  for tool in psql createdb pg_isready; do
    if [ -z "$(pg_bin "$tool")" ]; then
      say "the PostgreSQL client tools are missing ($tool); as root: apt-get install postgresql-client"
      exit 1
    fi
  done
}

create_if_missing() {  # create_if_missing <psql connection options...>
  if [ "$("$(pg_bin psql)" "$@" -d postgres -XAtc \
      "SELECT 1 FROM pg_database WHERE datname = '$NAME'")" != 1 ]; then
    say "creating database $NAME"
    "$(pg_bin createdb)" "$@" "$NAME"
  fi
}

private_cluster() {
  local initdb pg_ctl
  initdb=$(pg_bin initdb)
  pg_ctl=$(pg_bin pg_ctl)
  if [ -z "$initdb" ] || [ -z "$pg_ctl" ]; then
    say "no PostgreSQL answers on 127.0.0.1:5432 and the server binaries (initdb, pg_ctl) are"
    say "missing for a private cluster under var/pg; as root: apt-get install postgresql"
    exit 1
  fi
  # A Unix socket path is limited to 107 bytes (".s.PGSQL.5432" included).
  if [ $(( ${#CLUSTER} + 14 )) -gt 107 ]; then
    say "the project path is too long for a PostgreSQL socket under $CLUSTER; move the checkout"
    exit 1
  fi
  if [ ! -f "$CLUSTER/data/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster under var/pg"
    mkdir -p "$CLUSTER"
    "$initdb" -D "$CLUSTER/data" -U cms --auth=trust --encoding=UTF8 >"$CLUSTER/initdb.log"
  fi
  if ! "$pg_ctl" -D "$CLUSTER/data" status >/dev/null 2>&1; then
    say "starting the private PostgreSQL cluster (socket in var/pg)"
    "$pg_ctl" -D "$CLUSTER/data" -l "$CLUSTER/server.log" -w -t 60 \
      -o "-c listen_addresses='' -k '$CLUSTER'" start >/dev/null
    touch "$CLUSTER/started-by-run"
  fi
  create_if_missing -h "$CLUSTER" -U cms
  echo "postgresql://cms@/$NAME?host=$CLUSTER"
}

start() {
  if [ -n "${DATABASE_URL:-}" ]; then
    case "$DATABASE_URL" in
      postgres://*|postgresql://*) echo "$DATABASE_URL"; return ;;
      *) say "DATABASE_URL must be a postgresql:// URL (PostgreSQL is the only engine)"; exit 1 ;;
    esac
  fi
  if [ "${LOCAL_DB_PRIVATE:-0}" = 1 ]; then
    need_client
    private_cluster
    return
  fi
  if [ -x "$(pg_bin pg_isready)" ] && "$(pg_bin pg_isready)" -q -h 127.0.0.1 -p 5432; then
    need_client
    create_if_missing -h 127.0.0.1 -p 5432 -U postgres
    echo "postgresql://postgres@127.0.0.1:5432/$NAME"
    return
  fi
  if [ "$(id -u)" -eq 0 ]; then
    scripts/ensure-services.sh postgres >&2
    need_client
    create_if_missing -h 127.0.0.1 -p 5432 -U postgres
    echo "postgresql://postgres@127.0.0.1:5432/$NAME"
    return
  fi
  need_client
  private_cluster
}

stop() {
  if [ -f "$CLUSTER/started-by-run" ]; then
    "$(pg_bin pg_ctl)" -D "$CLUSTER/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -f "$CLUSTER/started-by-run"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) say "usage: $0 start|stop"; exit 2 ;;
esac
