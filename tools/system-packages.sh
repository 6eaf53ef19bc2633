#!/usr/bin/env bash
# The Debian packages that `make test` needs, installed only when missing (a no-op when present):
#   chromium       the browser tests (Debian's build; never a downloaded browser)
#   poppler-utils  pdftotext and pdftoppm, to read the PDF reports back
#   postgresql     the server binaries; tests/test_sql_postgres.py starts a throwaway server of its own
#   fonts-dejavu-core, libpango-1.0-0, libpangoft2-1.0-0   what WeasyPrint needs for PDF reports
# Installing needs root (or sudo); without either, it says which packages to install and stops.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
for pkg in fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ "${#need[@]}" -eq 0 ] && exit 0
echo "make test: installing the Debian packages the tests need: ${need[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "Not root and no sudo. Fix: as root, run: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
