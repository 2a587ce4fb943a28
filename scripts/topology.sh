#!/usr/bin/env bash
# The production topology on this machine, for tests and benchmarks (deploy/, DESIGN.md §9):
# nginx (TLS, mutual TLS for stations, OCSP cache) -> gunicorn -> PostgreSQL, Celery workers for
# the `default` and `signing` queues and beat on Redis. PostgreSQL and Redis are private ones
# (own ports, own data), so that restarting them in a fault test harms no one else.
#
#   scripts/topology.sh up        start everything (fresh database, PKI, TLS certificates)
#   scripts/topology.sh down      stop everything; no process is left
#   scripts/topology.sh status    one line per component
#   scripts/topology.sh restart postgres|redis|web|nginx|worker-default|worker-signing|beat
#   scripts/topology.sh kill9 worker-default|worker-signing|beat|web
#   scripts/topology.sh start worker-default|worker-signing|beat
#   scripts/topology.sh ocsp-cache on|off   nginx with or without the OCSP cache (reloaded)
#   scripts/topology.sh manage ARGS...   manage.py with the topology's settings
#
# TOPOLOGY_DIR (default var/topology) holds everything: logs, pid files, keys, the nginx cache,
# and topology.env, the settings every process of the topology reads (source it to talk to it).
# Ports: unique free ports on 127.0.0.1, chosen at `up`. Other knobs, read at `up`:
# TOPOLOGY_OCSP_MAX_AGE (default 60), TOPOLOGY_OCSP_CACHE (1; 0: nginx passes /ocsp uncached),
# TOPOLOGY_WEB_REPLICAS (2 gunicorn processes), TOPOLOGY_WEB_THREADS (4), TOPOLOGY_NGINX_WORKERS
# (1), TOPOLOGY_PUBLISH_TICK (300 s), TOPOLOGY_FULL_CRL_INTERVAL (6 h), TOPOLOGY_DELTA_CRL_INTERVAL
# (1 h), TOPOLOGY_VISIBILITY_TIMEOUT (600 s: an unacknowledged task goes back to its queue),
# TOPOLOGY_AUTH_CACHE (30: API_AUTH_CACHE_SECONDS; 0: every request looks its token up).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
# initdb and pg_ctl of the newest PostgreSQL installed (Debian keeps them off the PATH)
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
[ -n "$PG_BIN" ] && PATH="$PG_BIN:$PATH"
BIN="$(dirname "$PY")"
DIR="$(mkdir -p "${TOPOLOGY_DIR:-var/topology}" && cd "${TOPOLOGY_DIR:-var/topology}" && pwd)"
ENV_FILE="$DIR/topology.env"
RUN="$DIR/run"
LOG="$DIR/log"

say() { echo "topology: $*" >&2; }
die() { say "$*"; exit 1; }

wait_for() {  # wait_for SECONDS "what" command...
  local seconds=$1 what=$2; shift 2
  local tries=$((seconds * 5))
  for _ in $(seq 1 "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$what did not come up within ${seconds}s (logs: $LOG)"
}

load_env() {
  [ -f "$ENV_FILE" ] || die "not set up: $ENV_FILE is missing (scripts/topology.sh up)"
  set -a
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  set +a
}

as_pg() {  # PostgreSQL refuses to run as root: its cluster belongs to the postgres account then
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pid() {  # stop_pid PIDFILE NAME [SIGNAL]: signal, wait up to 30 s, then SIGKILL
  local file=$1 name=$2 signal=${3:-TERM}
  pid_alive "$file" || { rm -f "$file"; return 0; }
  local pid; pid=$(cat "$file")
  if [ "$signal" = KILL ] && [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]; then
    # a daemon leading its own process group (celery --detach, gunicorn --daemon): kill -9
    # takes its children with it, as the OOM killer or systemd would
    kill -KILL -- "-$pid" 2>/dev/null || true
  else
    kill "-$signal" "$pid" 2>/dev/null || true
  fi
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || { rm -f "$file"; return 0; }; sleep 0.2; done
  say "$name ($pid) did not stop: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

free_ports() {  # N distinct free ports on 127.0.0.1
  "$PY" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

write_env() {
  local pg redis http https web
  local replicas=${TOPOLOGY_WEB_REPLICAS:-2}
  read -r pg redis http https web <<<"$(free_ports $((4 + replicas)))"
  local pgdata="$DIR/pg"
  if [ "$(id -u)" -eq 0 ]; then
    # the postgres account must reach its data: TOPOLOGY_DIR may sit under a private (0700) dir
    pgdata="$(mktemp -d -t cms-topology-pg.XXXXXX)"  # under $TMPDIR
  fi
  umask 077
  cat >"$ENV_FILE" <<ENV
DJANGO_SETTINGS_MODULE=config.settings.topology
DJANGO_SECRET_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(48))')
DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost
PKI_KEY_PASSPHRASE=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')
CMS_VAR_DIR=$DIR/var
PERSONALIZATION_EMAIL_DOMAIN=cps.mssante.invalid
TOPOLOGY_PG_PORT=$pg
TOPOLOGY_PG_DATA=$pgdata
TOPOLOGY_REDIS_PORT=$redis
TOPOLOGY_WEB_PORT=${web%% *}
TOPOLOGY_WEB_PORTS="$web"
TOPOLOGY_HTTP_PORT=$http
TOPOLOGY_HTTPS_PORT=$https
DATABASE_URL=postgresql://postgres@127.0.0.1:$pg/cms
CELERY_BROKER_URL=redis://127.0.0.1:$redis/0
CELERY_VISIBILITY_TIMEOUT=${TOPOLOGY_VISIBILITY_TIMEOUT:-600}
CACHE_URL=redis://127.0.0.1:$redis/1
PKI_PUBLIC_BASE_URL=http://127.0.0.1:$http
CMS_TRUSTED_PROXIES=127.0.0.1
STATION_CERTIFICATE_BINDING=true
PKI_OCSP_CACHE_MAX_AGE=${TOPOLOGY_OCSP_MAX_AGE:-60}
PKI_PUBLISH_TICK_SECONDS=${TOPOLOGY_PUBLISH_TICK:-300}
PKI_FULL_CRL_INTERVAL_SECONDS=${TOPOLOGY_FULL_CRL_INTERVAL:-21600}
PKI_DELTA_CRL_INTERVAL_SECONDS=${TOPOLOGY_DELTA_CRL_INTERVAL:-3600}
GUNICORN_THREADS=${TOPOLOGY_WEB_THREADS:-4}
API_AUTH_CACHE_SECONDS=${TOPOLOGY_AUTH_CACHE:-30}
TOPOLOGY_NGINX_WORKERS=${TOPOLOGY_NGINX_WORKERS:-1}
TOPOLOGY_OCSP_CACHE=${TOPOLOGY_OCSP_CACHE:-1}
TOPOLOGY_TLS_CA=$DIR/tls/ca.pem
ENV
  umask 022
}

# --- components ------------------------------------------------------------------------------
postgres_start() {
  if [ ! -f "$TOPOLOGY_PG_DATA/PG_VERSION" ]; then
    [ "$(id -u)" -eq 0 ] && chown postgres: "$TOPOLOGY_PG_DATA"
    as_pg initdb -D "$TOPOLOGY_PG_DATA" -U postgres --auth=trust --no-sync -E UTF8 >"$LOG/initdb.log"
  fi
  as_pg pg_ctl -D "$TOPOLOGY_PG_DATA" -l "$TOPOLOGY_PG_DATA/server.log" -w -t 60 start \
    -o "-p $TOPOLOGY_PG_PORT -c listen_addresses=127.0.0.1 -k $TOPOLOGY_PG_DATA" >/dev/null
  wait_for 60 "PostgreSQL" pg_isready -q -h 127.0.0.1 -p "$TOPOLOGY_PG_PORT"
}

postgres_stop() {
  [ -f "$TOPOLOGY_PG_DATA/postmaster.pid" ] || return 0
  as_pg pg_ctl -D "$TOPOLOGY_PG_DATA" -m fast -w -t 60 stop >/dev/null || true
}

redis_start() {
  mkdir -p "$DIR/redis"
  # the broker's queues survive a restart: append-only file, written before each reply
  redis-server --daemonize yes --bind 127.0.0.1 --port "$TOPOLOGY_REDIS_PORT" \
    --dir "$DIR/redis" --pidfile "$RUN/redis.pid" --logfile "$LOG/redis.log" \
    --save "" --appendonly yes --appendfsync always
  wait_for 30 "Redis" redis-cli -p "$TOPOLOGY_REDIS_PORT" ping
}

redis_stop() {
  pid_alive "$RUN/redis.pid" || return 0
  redis-cli -p "$TOPOLOGY_REDIS_PORT" shutdown >/dev/null 2>&1 || true
  stop_pid "$RUN/redis.pid" redis
}

web_start() {  # one gunicorn process per port (deploy/gunicorn.conf.py says why)
  local port
  for port in $TOPOLOGY_WEB_PORTS; do
    GUNICORN_BIND="127.0.0.1:$port" "$BIN/gunicorn" -c deploy/gunicorn.conf.py --daemon \
      --pid "$RUN/web-$port.pid" --error-logfile "$LOG/web-$port.log" config.wsgi:application
  done
  for port in $TOPOLOGY_WEB_PORTS; do
    wait_for 60 "gunicorn on $port" curl -s -o /dev/null "http://127.0.0.1:$port/pki/ca/none.cer"
  done
}

web_stop() {
  local port
  for port in $TOPOLOGY_WEB_PORTS; do stop_pid "$RUN/web-$port.pid" "gunicorn $port" "${1:-TERM}"; done
}

worker_start() {  # worker_start QUEUE
  local queue=$1
  "$BIN/celery" -A config worker -Q "$queue" -n "$queue@%h" --concurrency 1 \
    --without-gossip --without-mingle --detach --pidfile "$RUN/worker-$queue.pid" \
    --logfile "$LOG/worker-$queue.log" --loglevel INFO
  wait_for 60 "worker $queue" pid_alive "$RUN/worker-$queue.pid"
}

beat_start() {
  "$BIN/celery" -A config beat --detach --pidfile "$RUN/beat.pid" --logfile "$LOG/beat.log" \
    --schedule "$DIR/var/beat-schedule" --loglevel INFO
  wait_for 60 "beat" pid_alive "$RUN/beat.pid"
}

tls_make() {  # a CA of this test front and a server certificate for 127.0.0.1 and localhost
  local tls="$DIR/tls"
  mkdir -p "$tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=CMS topology test CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$tls/ext.cnf"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
    -CAcreateserial -days 30 -extfile "$tls/ext.cnf" -out "$tls/server.pem" 2>/dev/null
  # the CAs nginx accepts client certificates from: those issuing station_client, and their roots
  "$PY" manage.py shell -c "
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pki.models import CertificateAuthority
cas = {ca.pk: ca for ca in CertificateAuthority.objects.all()}
chosen = {}
for ca in cas.values():
    if 'station_client' in (ca.profiles or []):
        while ca is not None:
            chosen[ca.pk] = ca
            ca = cas.get(ca.parent_id)
for ca in chosen.values():
    cert = x509.load_der_x509_certificate(bytes(ca.certificate_der))
    print(cert.public_bytes(Encoding.PEM).decode(), end='')
" >"$tls/station-ca.pem"
  [ -s "$tls/station-ca.pem" ] || die "no CA issues the station_client profile"
}

nginx_render() {
  local conf="$RUN/cms.conf" ocsp="$RUN/ocsp.conf"
  mkdir -p "$DIR/nginx-cache" "$RUN"/{client_body,proxy,fastcgi,uwsgi,scgi}
  cp deploy/nginx/proxy-params.conf "$RUN/proxy-params.conf"
  if [ "$TOPOLOGY_OCSP_CACHE" = 1 ]; then
    sed "s|@PROXY_PARAMS@|$RUN/proxy-params.conf|" deploy/nginx/ocsp-location.conf >"$ocsp"
  else  # the same front without the cache (bench: "cache off")
    grep -v -E '^proxy_cache|^proxy_no_cache' deploy/nginx/ocsp-location.conf \
      | sed "s|@PROXY_PARAMS@|$RUN/proxy-params.conf|" >"$ocsp"
  fi
  local servers="" port
  for port in $TOPOLOGY_WEB_PORTS; do servers+="    server 127.0.0.1:$port;\\n"; done
  sed -e "s|@UPSTREAM_SERVERS@|$servers|" \
      -e "s|@CACHE_DIR@|$DIR/nginx-cache|" \
      -e "s|@LOG_DIR@|$LOG|g" \
      -e "s|@HTTP_LISTEN@|127.0.0.1:$TOPOLOGY_HTTP_PORT|" \
      -e "s|@HTTPS_LISTEN@|127.0.0.1:$TOPOLOGY_HTTPS_PORT|" \
      -e "s|@HTTPS_PORT@|$TOPOLOGY_HTTPS_PORT|" \
      -e "s|@OCSP_INCLUDE@|$ocsp|g" \
      -e "s|@PROXY_PARAMS@|$RUN/proxy-params.conf|g" \
      -e "s|@TLS_CERT@|$DIR/tls/server.pem|" \
      -e "s|@TLS_KEY@|$DIR/tls/server.key|" \
      -e "s|@STATION_CA@|$DIR/tls/station-ca.pem|" \
      -e "s|@STATIC_ROOT@|$CMS_VAR_DIR/static|" \
      deploy/nginx/cms.conf.in >"$conf"
  sed -e "s|@USER@|$(id -un)|" -e "s|@WORKERS@|$TOPOLOGY_NGINX_WORKERS|" \
      -e "s|@RUN_DIR@|$RUN|g" -e "s|@LOG_DIR@|$LOG|g" \
      deploy/nginx/standalone.conf.in >"$RUN/nginx.conf"
  if grep -q '@[A-Z_][A-Z_]*@' "$conf" "$ocsp" "$RUN/nginx.conf"; then die "unfilled placeholder in nginx config"; fi
}

nginx_start() {
  nginx -t -q -p "$RUN" -c "$RUN/nginx.conf" -e "$LOG/error.log"
  nginx -p "$RUN" -c "$RUN/nginx.conf" -e "$LOG/error.log"
  wait_for 30 "nginx" curl -sf --cacert "$DIR/tls/ca.pem" \
    "https://127.0.0.1:$TOPOLOGY_HTTPS_PORT/api/schema/" -o /dev/null
}

# --- commands --------------------------------------------------------------------------------
component_start() {
  case "$1" in
    postgres) postgres_start ;;
    redis) redis_start ;;
    web) web_start ;;
    nginx) nginx_start ;;
    worker-default) worker_start default ;;
    worker-signing) worker_start signing ;;
    beat) beat_start ;;
    *) die "unknown component $1" ;;
  esac
}

component_stop() {  # component_stop NAME [SIGNAL]
  local signal=${2:-TERM}
  case "$1" in
    postgres) if [ "$signal" = KILL ]; then
                [ -f "$TOPOLOGY_PG_DATA/postmaster.pid" ] && kill -KILL "$(head -1 "$TOPOLOGY_PG_DATA/postmaster.pid")"
              else postgres_stop; fi ;;
    redis) if [ "$signal" = KILL ]; then stop_pid "$RUN/redis.pid" redis KILL; else redis_stop; fi ;;
    web) web_stop "$signal" ;;
    nginx) stop_pid "$RUN/nginx.pid" nginx "$([ "$signal" = TERM ] && echo QUIT || echo "$signal")" ;;
    worker-default) stop_pid "$RUN/worker-default.pid" "worker default" "$signal" ;;
    worker-signing) stop_pid "$RUN/worker-signing.pid" "worker signing" "$signal" ;;
    beat) stop_pid "$RUN/beat.pid" beat "$signal" ;;
    *) die "unknown component $1" ;;
  esac
}

COMPONENTS=(postgres redis web worker-default worker-signing beat nginx)

up() {
  if [ -f "$ENV_FILE" ] && pid_alive "$RUN/nginx.pid"; then die "already up in $DIR (down first)"; fi
  for tool in nginx redis-server initdb pg_ctl openssl curl; do
    command -v "$tool" >/dev/null || die "$tool is missing (make system and make services install it)"
  done
  rm -rf "$RUN" "$LOG" "$DIR/var" "$DIR/tls" "$DIR/redis" "$DIR/nginx-cache" "$DIR/pg"
  mkdir -p "$RUN" "$LOG" "$DIR/var"
  write_env
  load_env
  # a failed start leaves nothing running
  trap 'status=$?; if [ "$status" -ne 0 ] \
    && [ "${TOPOLOGY_KEEP_ON_FAILURE:-0}" != 1 ]; then say "start failed; stopping what was started"; down_all; fi' EXIT
  postgres_start
  "$BIN/python" - <<PY
import psycopg
with psycopg.connect("postgresql://postgres@127.0.0.1:$TOPOLOGY_PG_PORT/postgres", autocommit=True) as c:
    c.execute("CREATE DATABASE cms")
PY
  redis_start
  "$PY" manage.py migrate --no-input >"$LOG/migrate.log"
  "$PY" manage.py pki_init >"$LOG/pki_init.log"
  "$PY" manage.py pki_publish >"$LOG/pki_publish.log"
  "$PY" manage.py collectstatic --no-input >"$LOG/collectstatic.log"
  tls_make
  nginx_render
  web_start
  worker_start default
  worker_start signing
  beat_start
  nginx_start
  trap - EXIT
  say "up: https://127.0.0.1:$TOPOLOGY_HTTPS_PORT (API, console, stations), http://127.0.0.1:$TOPOLOGY_HTTP_PORT (/pki, /ocsp); settings in $ENV_FILE"
}

down_all() {
  local i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do component_stop "${COMPONENTS[$i]}" || true; done
  if [ "$(id -u)" -eq 0 ] && [[ "$(basename "$TOPOLOGY_PG_DATA")" == cms-topology-pg.* ]]; then
    rm -rf "$TOPOLOGY_PG_DATA"
  fi
}

status() {
  local name file
  for name in "${COMPONENTS[@]}"; do
    case "$name" in
      postgres) file="$TOPOLOGY_PG_DATA/postmaster.pid" ;;
      web)
        local port
        for port in $TOPOLOGY_WEB_PORTS; do
          file="$RUN/web-$port.pid"
          if pid_alive "$file"; then echo "web-$port up $(cat "$file")"; else echo "web-$port down"; fi
        done
        continue ;;
      *) file="$RUN/$name.pid" ;;
    esac
    if [ -f "$file" ] && kill -0 "$(head -1 "$file")" 2>/dev/null; then
      echo "$name up $(head -1 "$file")"
    else
      echo "$name down"
    fi
  done
}

case "${1:-}" in
  up) up ;;
  down) [ -f "$ENV_FILE" ] || exit 0; load_env; down_all ;;
  status) load_env; status ;;
  restart) load_env; component_stop "$2"; component_start "$2" ;;
  kill9) load_env; component_stop "$2" KILL ;;
  stop) load_env; component_stop "$2" ;;
  start) load_env; component_start "$2" ;;
  ocsp-cache)
    load_env
    case "${2:-}" in on) TOPOLOGY_OCSP_CACHE=1 ;; off) TOPOLOGY_OCSP_CACHE=0 ;; *) die "on or off" ;; esac
    nginx_render
    nginx -p "$RUN" -c "$RUN/nginx.conf" -e "$LOG/error.log" -s reload ;;
  manage) load_env; shift; exec "$PY" manage.py "$@" ;;
  *) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
