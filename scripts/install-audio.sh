#!/usr/bin/env bash
# install-audio.sh - the system packages of the microphone path and of its tests (idempotent,
# Debian, root or sudo):
#   libportaudio2       PortAudio, which `sounddevice` (hence `kws listen` / `kws devices`) loads
#   pulseaudio, pulseaudio-utils, libasound2-plugins
#                       the virtual microphone of tests/test_listen_mic.py (a PulseAudio daemon in
#                       user mode, ../shared/tools/virtual-mic/start.sh; paplay; ALSA's pulse plugin)
# Installed packages are skipped (a re-run touches no network); `apt-get update` runs only if
# the install fails without it. No recommends. CI (scripts/test.sh) runs this before pytest.
set -euo pipefail
PKGS="libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "install-audio.sh: all installed ($PKGS)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-audio.sh: need root or sudo to install:$missing" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
APT="$SUDO apt-get -o DPkg::Lock::Timeout=600 -y -q"
log=$(mktemp); trap 'rm -f "$log"' EXIT
echo "install-audio.sh: installing$missing"
# shellcheck disable=SC2086  # $missing is a word list
if ! $APT install --no-install-recommends $missing >"$log" 2>&1; then
  echo "install-audio.sh: install failed, running apt-get update and retrying"
  $APT update >>"$log" 2>&1 || true
  # shellcheck disable=SC2086
  $APT install --no-install-recommends $missing >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; echo "install-audio.sh: apt-get install failed" >&2; exit 1; }
fi
echo "install-audio.sh: installed$missing"
