#!/usr/bin/env bash
# Drop test databases left behind by killed pytest runs: test_cps_cms_<pid> (pytest-django's) and
# test_cps_cms_<pid>_<suffix> (tests that hand a database of their own to subprocesses).
set -euo pipefail
for db in $(psql -h 127.0.0.1 -U postgres -d postgres -Atc \
    "SELECT datname FROM pg_database WHERE datname ~ '^test_cps_cms_[0-9]+(_[0-9a-z]+)?$'"); do
  pid=${db#test_cps_cms_}
  pid=${pid%%_*}
  if ! kill -0 "$pid" 2>/dev/null; then
    dropdb -h 127.0.0.1 -U postgres --force --if-exists "$db"
  fi
done
