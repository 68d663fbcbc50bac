#!/usr/bin/env bash
# scripts/test-arm64.sh - run the kernel tests on the NEON path of an aarch64 build, on an x86-64
# host, under qemu-user.  Idempotent; safe to re-run (warm run: about a minute).
#   1. ../shared/tools/arm64/setup-cross.sh      cross gcc + qemu-user (apt, only what is missing)
#   2. python-rootfs.sh $KWS_ARM64_PY            arm64 Debian Python 3.11 + numpy + pytest (reused)
#   3. pip-aarch64.sh                            Cython 3 + hypothesis wheels into the rootfs (once)
#   4. build-ext.sh                              setup.py build_ext --inplace under the emulated
#      python (the project's setup.py and sources; cross gcc).  Only kws/_kernels.cpython-311-
#      aarch64-linux-gnu.so lands in the checkout (next to the x86 .so, different EXT_SUFFIX);
#      build temp/lib dirs live in $KWS_ARM64_BUILD.  Skipped when the .so is newer than setup.py,
#      kws/*.pyx|pxi|pxd and kws/csrc/*.
#   5. per cpu in $ARM64_CPUS (default "cortex-a53 cortex-a72"): print `isa=...` as reported by
#      kws._kernels.info() under qemu (must be neon), then
#      pytest -q tests/test_kernels.py tests/test_runtime.py tests/test_arm64_dispatch.py tests/test_pcen.py
#      tests/test_frontend.py (HYPOTHESIS_PROFILE=arm64): the kernels, the whole fused network
#      (kws/csrc/fsmn.c) bit-exact against its numpy reference, and the C frontend
#      (kws/csrc/frontend.c) against librosa and numpy's FFT, streaming == batch
# Exit status non-zero on any failure.
#   KWS_ARM64_PY     rootfs dir   (default ~/.cache/kws-arm64-py)
#   KWS_ARM64_BUILD  build dir    (default ~/.cache/kws-arm64-build)
#   ARM64_CPUS       qemu cpu models to test (never `max`: it would hide SIGILLs)
#   HYPOTHESIS_PROFILE  default arm64 (tests/conftest.py: fewer examples under emulation)
# Tests that start `sys.executable` in a subprocess: without binfmt_misc an emulated process
# cannot exec an aarch64 binary, so python is started with argv[0] = a small x86 wrapper script
# (qemu -0): sys.executable is that wrapper, which re-enters qemu.  No host-wide binfmt needed.
set -euo pipefail
cd "$(dirname "$0")/.."
T=../shared/tools/arm64
R=${KWS_ARM64_PY:-$HOME/.cache/kws-arm64-py}
B=${KWS_ARM64_BUILD:-$HOME/.cache/kws-arm64-build}
CPUS=${ARM64_CPUS:-cortex-a53 cortex-a72}
# librosa: random_model's frontend matrices; safetensors: model files (benchmarks/pi_detector_count.py)
DEPS=('cython>=3,<4' 'hypothesis>=6,<7' 'librosa>=0.10,<0.12' 'safetensors>=0.4')
SECONDS=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
step() { printf '%-8s %s\n' "[$SECONDS s]" "$*"; }
quiet() { "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "test-arm64: FAILED: $*" >&2; exit 1; }; }

[ -d "$T" ] || { echo "test-arm64: $T not found (shared arm64 tools)" >&2; exit 2; }

step "setup-cross"
quiet "$T/setup-cross.sh"

step "python rootfs $R"
mkdir -p "$R"
quiet "$T/python-rootfs.sh" "$R"

site=$R/usr/local/lib/python3.11/dist-packages
stamp=$site/.kws-test-deps
if [ "$(cat "$stamp" 2>/dev/null || true)" != "${DEPS[*]}" ]; then
  step "pip-aarch64 ${DEPS[*]}"
  quiet "$T/pip-aarch64.sh" "$R" "${DEPS[@]}"
  echo "${DEPS[*]}" >"$stamp"
fi

# argv[0] shims (see the header): python3-qemu is what sys.executable will name
mkdir -p "$B/bin"
cat >"$R/usr/bin/python3-qemu" <<EOF
#!/bin/sh
# x86 wrapper: run the rootfs' aarch64 python under qemu-user (written by kws scripts/test-arm64.sh)
exec \${QEMU_REAL:-qemu-aarch64} -L "\${QEMU_LD_PREFIX:-$R}" -cpu "\${QEMU_CPU:-cortex-a53}" -0 "\$0" "$R/usr/bin/python3" "\$@"
EOF
cat >"$B/bin/qemu-argv0" <<EOF
#!/bin/sh
exec \${QEMU_REAL:-qemu-aarch64} -0 "$R/usr/bin/python3-qemu" "\$@"
EOF
chmod +x "$R/usr/bin/python3-qemu" "$B/bin/qemu-argv0"
export QEMU=$B/bin/qemu-argv0          # py.sh's emulator
unset KWS_KERNEL

so=kws/_kernels.cpython-311-aarch64-linux-gnu.so
srcs=(setup.py kws/csrc)
for f in kws/*.pyx kws/*.pxi kws/*.pxd; do if [ -e "$f" ]; then srcs+=("$f"); fi; done
if [ -f "$so" ] && [ -z "$(find "${srcs[@]}" -newer "$so" -print -quit)" ]; then
  step "aarch64 extension up to date ($so)"
else
  step "build aarch64 extension (build-ext.sh: setup.py build_ext under qemu)"
  quiet "$T/build-ext.sh" "$R" build_ext --inplace --build-temp "$B/temp" --build-lib "$B/lib"
  [ -f "$so" ] || { echo "test-arm64: $so was not built" >&2; exit 1; }
fi

export HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-arm64}
fail=0
for cpu in $CPUS; do
  export ARM64_CPU=$cpu
  step "== $cpu"
  t0=$SECONDS
  isa=$("$T/py.sh" "$R" -c 'import kws._kernels as K; print(K.info()["isa"])' 2>"$log") ||
    { cat "$log" >&2; isa="(import failed)"; }
  echo "isa=$isa"
  [ "$isa" = neon ] || { echo "test-arm64: $cpu: expected isa=neon" >&2; fail=1; }
  rc=0
  "$T/py.sh" "$R" -m pytest -q -p no:cacheprovider tests/test_kernels.py tests/test_runtime.py tests/test_arm64_dispatch.py tests/test_pcen.py \
    tests/test_frontend.py >"$log" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then cat "$log"; fail=1; fi
  summary=$(grep -E '(passed|failed|error|skipped)' "$log" | tail -n 1 || true)
  echo "$cpu: ${summary:-no pytest summary (rc=$rc)} [$((SECONDS - t0)) s]"
done
step "done: $([ "$fail" = 0 ] && echo PASS || echo FAIL)"
exit "$fail"
