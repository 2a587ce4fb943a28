#!/usr/bin/env bash
# `make run`: the embedded default (SQLite under var/, software keys, eager tasks) with a demo card.
# Sets up the PKI, issues a CPS4 on a virtual card (manage.py demo), then serves; the station, the
# virtual card (and a private pcscd when root) stay in the background and stop with the server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PY:-.venv/bin/python}"
ADDRESS="${RUN_ADDRESS:-127.0.0.1:8000}"
BASE="http://${ADDRESS}"

# shellcheck disable=SC1091
. scripts/local-env.sh
"$PY" manage.py migrate --no-input
"$PY" manage.py bootstrap_admin
"$PY" manage.py pki_init
"$PY" manage.py pki_publish

server=""
stop_all() {
  trap - EXIT INT TERM
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  "$PY" manage.py demo --stop-station || true
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$PY" manage.py demo --stop-station >/dev/null  # a station left by an earlier run that was killed
if ! "$PY" manage.py demo --keep-station --base-url "$BASE"; then
  echo "manage.py demo failed (see above); serving anyway" >&2
fi

echo "serving on ${BASE} (console: /console/, API docs: /api/docs/); Ctrl-C stops everything"
# In the background and waited for, so that a signal to this script also stops it (and then the
# station); no autoreloader, whose child would outlive its parent on SIGTERM.
"$PY" manage.py runserver "$ADDRESS" --noreload &
server=$!
wait "$server"
