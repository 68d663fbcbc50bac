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
exec bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" install-audio.sh \
  libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins
