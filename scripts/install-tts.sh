#!/usr/bin/env bash
# install-tts.sh - install the offline TTS engines `kws data synth` uses (idempotent, Debian, root/sudo).
#
#   scripts/install-tts.sh            # all engines: sox, espeak-ng, flite, festival, MBROLA, pico, RHVoice
#   scripts/install-tts.sh --free     # Debian main only (sox, espeak-ng, flite, festival)
#
# A thin wrapper around the shared installer ../shared/tools/speech-data/install-tts.sh (relative to
# the repository root); options are passed through. Installed packages are skipped (a re-run with
# everything present takes ~2 s and touches no network). CI runs this before the test suite.
# KWS_TTS_INSTALLER=/path/to/install-tts.sh overrides the installer's location.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
installer=${KWS_TTS_INSTALLER:-$repo/../shared/tools/speech-data/install-tts.sh}
if [ ! -f "$installer" ]; then
  echo "install-tts.sh: shared installer not found at $installer" >&2
  echo "  (expected ../shared/tools/speech-data/ beside the repository; or set KWS_TTS_INSTALLER)" >&2
  exit 1
fi
exec bash "$installer" "$@"
