#!/usr/bin/env bash
# The whole test suite from a fresh clone (what .ci/run calls): installs what the tests need
# (package + extras, TTS engines, the audio packages of the microphone path and its virtual-mic tests
# (scripts/install-audio.sh; tests/test_listen_mic.py starts the mic itself); the arm64 tool chain
# is installed before pytest, for the Pi-estimate tests), runs pytest, then the kernel tests on the NEON path under qemu.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
bash scripts/setup.sh
bash scripts/install-tts.sh >/dev/null
bash scripts/install-audio.sh
# the cross compiler and qemu-user before pytest: tests/test_bench.py's Pi-estimate tests need them
# (they skip without; test-arm64.sh below would install them only after pytest)
bash ../shared/tools/arm64/setup-cross.sh >/dev/null
python3 -m pytest -q -p no:cacheprovider "$@"
bash scripts/test-arm64.sh
echo "test.sh: all passed in ${SECONDS} s"
