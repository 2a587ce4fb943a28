#!/usr/bin/env bash
# Install the Debian packages the project needs, when run as root; otherwise name what is missing.
set -euo pipefail

packages=(
  pcscd vsmartcard-vpcd libpcsclite-dev swig   # PC/SC daemon, virtual reader driver, pyscard build
  softhsm2 opensc pcsc-tools                    # PKCS#11 HSM for tests, standard middleware
  openssl postgresql-client                     # CRL/OCSP/certificate checks, psql
  chromium                                      # console tests (Playwright drives it)
)
if [ "${WITH_POSTGRES_SERVER:-0}" = 1 ]; then packages+=(postgresql); fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
