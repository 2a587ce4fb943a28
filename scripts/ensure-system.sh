#!/usr/bin/env bash
# Install the Debian packages the project needs (as root); otherwise name what is missing.
#   scripts/ensure-system.sh run    what `make run` needs (build pyscard, run a virtual card, reach
#                                   PostgreSQL; the server itself: scripts/ensure-local-db.sh)
#   scripts/ensure-system.sh test   that, and what the test suite talks to
set -euo pipefail
profile=${1:-test}

packages=(
  python3 python3-venv python3-dev gcc         # the virtual environment, packages that compile
  swig libpcsclite-dev                          # pyscard builds from source
  pcscd vsmartcard-vpcd openssl                 # PC/SC daemon and virtual reader driver; OpenSSL
  postgresql-client                             # psql, createdb, pg_dump (make run, backups)
)
if [ "$profile" = test ]; then
  packages+=(
    softhsm2 opensc pcsc-tools                  # PKCS#11 HSM, standard middleware
    libengine-pkcs11-openssl                    # OpenSSL engine for keys on a card (TLS client)
    redis-server                                # the Celery broker
    chromium                                    # console tests (Playwright drives it)
    poppler-utils                               # pdftoppm: PIN mailer tests render the PDFs
    nginx wrk nghttp2-client                    # the production topology's front, load generators
  )
fi
if [ "${WITH_POSTGRES_SERVER:-0}" = 1 ]; then packages+=(postgresql); fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (as root: apt-get install ${missing[*]})" >&2
  # `make run` can go on: the demo falls back to an in-process card without pcscd. The suite can't.
  [ "$profile" = run ] && exit 0
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
