"""What every benchmark prints beside its numbers: the CPU, the kernel ISA, the BLAS in use; and
one way to time things (median after warm-up)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import numpy as np

# A fair single-thread float baseline: one BLAS thread, and no user overrides of OpenBLAS's own
# kernel/cache choice.  These must be set before numpy loads OpenBLAS, so the benchmark re-executes
# itself when the environment is not already clean.
_CLEAN_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def ensure_single_thread_env() -> None:
    """Re-exec this script with a clean, single-threaded BLAS environment if needed."""
    dirty = any(os.environ.get(k) != v for k, v in _CLEAN_ENV.items()) or any(k in os.environ for k in _UNSET)
    if dirty and not os.environ.get("KWS_BENCH_REEXEC"):
        env = {k: v for k, v in os.environ.items() if k not in _UNSET}
        env.update(_CLEAN_ENV, KWS_BENCH_REEXEC="1")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl)"
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"threads={i.get('num_threads')}" for i in infos) or "none found"


def environment() -> dict:
    from kws import _kernels
    return {"cpu": cpu_model(), "machine": platform.machine(), "kernel_isa": _kernels.isa(),
            "kernels_available": _kernels.available(), "blas": blas_info(),
            "python": platform.python_version(), "numpy": np.__version__}


def median_ms(fn, runs: int = 200, warmup: int = 20) -> float:
    """Median wall time of fn() in milliseconds over `runs` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.median(times) * 1e3)
