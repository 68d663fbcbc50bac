"""What every benchmark prints beside its numbers: the CPU, the kernel ISA, the BLAS in use; and
one way to time things (median after warm-up)."""

from __future__ import annotations

import os
import sys

# A fair single-thread float baseline: one BLAS thread, and no user overrides of OpenBLAS's own
# kernel/cache choice.  These must be set before numpy loads OpenBLAS, so the benchmark re-executes
# itself when the environment is not already clean.
_CLEAN_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# `--avx2-only` (bench_kernels, bench_runtime): the pair of kernels an AVX2-only machine runs,
# measured on this CPU: kws's avx2 kernel against OpenBLAS's Haswell (AVX2) sgemm
AVX2_ONLY = {"OPENBLAS_CORETYPE": "Haswell", "KWS_KERNEL": "avx2"}


def float_list(text: str, what: str) -> list[float]:
    """Comma-separated numbers (a benchmark's option, e.g. --gains 0,-20), or SystemExit naming
    `what` (e.g. "level_robustness.py: --gains")."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"{what} must be comma-separated numbers, got {text!r}") from None


def add_avx2_only_flag(ap) -> None:
    """--avx2-only on a benchmark's parser (ensure_single_thread_env acts on it before parsing)."""
    ap.add_argument("--avx2-only", action="store_true",
                    help="what an AVX2-only machine runs, on this CPU: the avx2 kernel against "
                         "OpenBLAS's Haswell (AVX2) sgemm (KWS_KERNEL=avx2, OPENBLAS_CORETYPE=Haswell)")


def ensure_single_thread_env() -> None:
    """Re-exec this script with a clean, single-threaded BLAS environment if needed (with
    AVX2_ONLY's settings when --avx2-only is on the command line)."""
    want = dict(_CLEAN_ENV, **(AVX2_ONLY if "--avx2-only" in sys.argv else {}))
    dirty = any(os.environ.get(k) != v for k, v in want.items()) or \
        any(k in os.environ and k not in want for k in _UNSET)
    if dirty and not os.environ.get("KWS_BENCH_REEXEC"):
        env = {k: v for k, v in os.environ.items() if k not in _UNSET}
        env.update(want, KWS_BENCH_REEXEC="1")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


# what every figure is printed beside, and the timing helpers: shared with `kws bench`
from kws.bench import blas_info, cpu_model, environment, interleaved_times, median_ms  # noqa: E402,F401


def write_json(path: str, obj) -> None:
    """A benchmark's --json file, written atomically (temp + rename)."""
    import json
    from kws.fileio import write_text_atomic
    write_text_atomic(path, json.dumps(obj, indent=1))


def run_main(main, name: str) -> None:
    """main() with a missing file or a bad model as one readable line `name: ...`, exit 1."""
    from kws.errors import KwsError
    try:
        main()
    except (KwsError, FileNotFoundError) as e:
        raise SystemExit(f"{name}: {e}") from None
