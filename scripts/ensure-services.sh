#!/usr/bin/env bash
# Make sure the services the test suite talks to are up: PostgreSQL, Redis (Celery broker), pcscd.
# Starts what is down; installs PostgreSQL when it is absent (as root).
set -euo pipefail

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(postgres redis pcscd)

wait_for() {  # wait_for "description" command...
  local what=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "$what did not come up" >&2
  return 1
}

start_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "PostgreSQL is not installed: installing it"
    WITH_POSTGRES_SERVER=1 "$(dirname "$0")/ensure-system.sh"
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    # A fresh cluster: let local connections in without a password, as on the project's machines.
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' \
      "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  wait_for "PostgreSQL on 127.0.0.1:5432" pg_isready -h 127.0.0.1 -p 5432
}

start_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  command -v redis-server >/dev/null || { echo "redis-server is missing (make system)" >&2; return 1; }
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for "Redis on 127.0.0.1:6379" redis-cli -h 127.0.0.1 -p 6379 ping
}

start_pcscd() {
  if [ -S /run/pcscd/pcscd.comm ] && pgrep -x pcscd >/dev/null; then return 0; fi
  [ "$(id -u)" -eq 0 ] || { echo "pcscd is not running and only root can start it" >&2; return 1; }
  echo "starting pcscd (vpcd readers on 127.0.0.1:35963 and 35964)"
  rm -f /run/pcscd/pcscd.comm
  # Daemonizes; no --auto-exit, so it stays up between tests. The caller's descriptors beyond the
  # standard three are closed: a daemon that kept one (a lock the caller holds) would hold it on.
  pcscd 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
  wait_for "pcscd socket" test -S /run/pcscd/pcscd.comm
}

for service in "${want[@]}"; do
  case "$service" in
    postgres) start_postgres ;;
    redis) start_redis ;;
    pcscd) start_pcscd ;;
    *) echo "unknown service $service" >&2; exit 2 ;;
  esac
done
