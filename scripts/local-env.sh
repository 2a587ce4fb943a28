#!/usr/bin/env bash
# The embedded default's secrets: generated once into var/local.env (mode 600; CMS_VAR_DIR moves
# var/), never committed. Prints nothing; source it (`. scripts/local-env.sh`) to export them.
umask 077
env_file="${CMS_VAR_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/var}/local.env"
mkdir -p "$(dirname "$env_file")"
if [ ! -f "$env_file" ]; then
  {
    echo "DJANGO_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
    echo "PKI_KEY_PASSPHRASE=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
  } > "$env_file"
fi
set -a
# shellcheck disable=SC1090
. "$env_file"
set +a
