#!/usr/bin/env bash
# `make run`: the embedded default (PostgreSQL, software keys, eager tasks) with a demo card.
# Picks the database (scripts/ensure-local-db.sh), sets up the PKI, issues a CPS4 on a virtual card
# (manage.py demo), then serves; the station, the virtual card (and a private pcscd when root)
# stay in the background. Ctrl-C or SIGTERM (to this script or its whole process group) stops all
# of them, and the private PostgreSQL cluster if this script started one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PY:-.venv/bin/python}"
ADDRESS="${RUN_ADDRESS:-127.0.0.1:8000}"
BASE="http://${ADDRESS}"
VAR="${CMS_VAR_DIR:-var}"  # as config.settings.base reads it
RIG="$VAR/demo/rig.json"

child=""     # the foreground step running now (demo or server), waited for in the background
stopping=""

gone() {  # gone PID...: true when none of them runs any more (zombies count as gone)
  local pid state
  for pid in "$@"; do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    [ -z "$state" ] || [ "$state" = Z ] || return 1
  done
}

stop_pids() {  # SIGTERM, up to 15 s, then SIGKILL
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 1 150); do gone "$@" && return 0; sleep 0.1; done
  echo "still running after SIGTERM, killing: $*" >&2
  kill -KILL "$@" 2>/dev/null || true
}

descendants() {  # descendants PID: its children, their children...
  local pid
  for pid in $(pgrep -P "$1" || true); do echo "$pid"; descendants "$pid"; done
}

stop_all() {
  [ -z "$stopping" ] || return 0
  stopping=1
  # A signal handler that does nothing (not "ignore", which children would inherit): make sends
  # SIGTERM again to this script, and a second signal must not cut the clean-up short.
  trap 'true' INT TERM
  # The running step and everything it started: the demo starts a private pcscd and the virtual
  # card in sessions of their own, so they are found as its descendants, before it goes.
  if [ -n "$child" ]; then
    local step=("$child" $(descendants "$child"))
    kill -TERM -- "-$child" 2>/dev/null || true
    stop_pids "${step[@]}"
  fi
  # The kept rig (station, virtual card, private pcscd): stopped, and waited for.
  local pids=()
  if [ -f "$RIG" ]; then
    mapfile -t pids < <("$PY" -c 'import json,sys; print(*json.load(open(sys.argv[1]))["pids"].values(), sep="\n")' "$RIG" 2>/dev/null || true)
  fi
  "$PY" manage.py demo --stop-station >/dev/null 2>&1 || true
  stop_pids "${pids[@]}"
  scripts/ensure-local-db.sh stop || true
}

run_step() {  # run_step COMMAND...: in a session of its own (its process group), so that a
  # signal to make's process group reaches this script only and the steps stop in order; waited
  # for in the background, so that the trap runs at once.
  setsid "$@" &
  child=$!
  local code=0
  wait "$child" || code=$?
  # wait returns early when a trapped signal arrives; the trap has stopped the child by then.
  child=""
  return "$code"
}

trap stop_all EXIT
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM

DATABASE_URL=$(scripts/ensure-local-db.sh start)
export DATABASE_URL
# the embedded default's settings, named here: config/wsgi.py and asgi.py default to production
export DJANGO_SETTINGS_MODULE=config.settings.local
# shellcheck disable=SC1091
. scripts/local-env.sh
"$PY" manage.py migrate --no-input
"$PY" manage.py bootstrap_admin
"$PY" manage.py pki_init
"$PY" manage.py pki_publish

"$PY" manage.py demo --stop-station >/dev/null  # a station left by an earlier run that was killed
if ! run_step "$PY" manage.py demo --keep-station --base-url "$BASE"; then
  [ -n "$stopping" ] && exit 143
  echo "manage.py demo failed (see above); serving anyway" >&2
fi

echo "serving on ${BASE} (console: /console/, API docs: /api/docs/); Ctrl-C stops everything"
# No autoreloader: its child would outlive its parent on SIGTERM.
run_step "$PY" manage.py runserver "$ADDRESS" --noreload
