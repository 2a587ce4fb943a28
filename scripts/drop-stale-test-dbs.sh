#!/usr/bin/env bash
# Drop test databases left behind by killed pytest runs (their name ends with the run's PID).
set -euo pipefail
for db in $(psql -h 127.0.0.1 -U postgres -d postgres -Atc \
    "SELECT datname FROM pg_database WHERE datname ~ '^test_cps_cms_[0-9]+$'"); do
  pid=${db##*_}
  if ! kill -0 "$pid" 2>/dev/null; then
    dropdb -h 127.0.0.1 -U postgres --force --if-exists "$db"
  fi
done
