#!/usr/bin/env bash
# The whole test suite from a fresh clone (what .ci/run calls): installs what the tests need
# (package + extras, TTS engines; the virtual microphone and the arm64 tool chain are installed by
# their own fixtures/scripts), runs pytest, then the kernel tests on the NEON path under qemu.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
bash scripts/setup.sh
bash scripts/install-tts.sh >/dev/null
python3 -m pytest -q -p no:cacheprovider "$@"
bash scripts/test-arm64.sh
echo "test.sh: all passed in ${SECONDS} s"
