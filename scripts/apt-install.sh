#!/usr/bin/env bash
# apt-install.sh WHO PKG... - install the Debian packages not yet installed (idempotent, root or
# sudo). Installed packages are skipped (a re-run touches no network); `apt-get update` runs only if
# the install fails without it. No recommends. WHO names the caller in the messages.
set -euo pipefail
who=$1; shift
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "$who: all installed ($*)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "$who: need root or sudo to install:$missing" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
APT="$SUDO apt-get -o DPkg::Lock::Timeout=600 -y -q"
log=$(mktemp); trap 'rm -f "$log"' EXIT
echo "$who: installing$missing"
# shellcheck disable=SC2086  # $missing is a word list
if ! $APT install --no-install-recommends $missing >"$log" 2>&1; then
  echo "$who: install failed, running apt-get update and retrying"
  $APT update >>"$log" 2>&1 || true
  # shellcheck disable=SC2086
  $APT install --no-install-recommends $missing >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; echo "$who: apt-get install failed" >&2; exit 1; }
fi
echo "$who: installed$missing"
