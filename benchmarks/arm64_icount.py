"""Guest instructions per 128 binary MACs of the NEON (FBCK) and scalar micro-kernels on aarch64.

No ARM hardware needed: benchmarks/arm64/icount_main.c is cross-compiled together with the
project's kws/csrc/bgemm_neon.c and bgemm_scalar.c (same flags as setup.py on aarch64), and
../shared/tools/arm64/icount.sh runs it under qemu-user (cortex-a53) counting only the
instructions executed inside the micro-kernel function (``-f popcnt_neon`` / ``-f popcnt_scalar``; ``-x``: two runs, counts must be
identical).  The harness calls the kernel ``reps`` times on random m x k and n x k operands, so

    instr per 128 MACs = count / reps / (m * n * k / 128)

exactly: operand set-up happens outside the counted function, nothing needs subtracting, and
count % reps == 0 is checked.  Everything the kernel does per call is included (for NEON: the
interleaving of the a-row block, tile edges, the stores).  The default shape m=16, n=64 fills
the NEON kernel's main 16 x 4 tile; it is checked NEON == scalar first.

Counts are instructions, not cycles (identical for every -cpu).  Needs the cross toolchain and
qemu-user (../shared/tools/arm64/setup-cross.sh is run when they are missing).

    python benchmarks/arm64_icount.py [--json] [--k 4096] [--m 16] [--n 64] [--reps 3]

    from benchmarks.arm64_icount import arm64_icount   # or with benchmarks/ on sys.path
    arm64_icount(k=4096) -> {"k": 4096, "neon_instr_per_128_macs": ..., "scalar_instr_per_128_macs":
                             ..., "ratio": scalar / neon, ...}
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "benchmarks" / "arm64" / "icount_main.c"
CFLAGS = ["-O3", "-ffp-contract=off", "-fno-strict-aliasing", "-std=gnu11", "-march=armv8-a"]
CC = "aarch64-linux-gnu-gcc"
KERNEL_SOURCES = ("bgemm_neon.c", "bgemm_scalar.c")   # the two micro-kernels


def _tools():
    """The shared arm64 tools: ../shared/tools/arm64 from the repo root (env KWS_ARM64_TOOLS)."""
    t = Path(os.environ.get("KWS_ARM64_TOOLS") or ROOT.parent / "shared" / "tools" / "arm64")
    if not (t / "icount.sh").is_file():
        raise RuntimeError(f"arm64 tools not found at {t} (set KWS_ARM64_TOOLS)")
    return t


def _run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r


def _ensure_toolchain(tools):
    if shutil.which(CC) and (shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")):
        return
    _run([tools / "setup-cross.sh"])


def build_harness(out_dir):
    """Cross-compile the harness with the project's kernel sources; returns the binary's path."""
    binary = Path(out_dir) / "icount_main"
    sources = [HARNESS] + [ROOT / "kws" / "csrc" / f for f in KERNEL_SOURCES]
    _run([CC, *CFLAGS, "-I", ROOT / "kws" / "csrc", *sources, "-o", binary])
    return binary


def icount(binary, args, func=None, cpu="cortex-a53", tools=None, twice=True):
    """Guest instructions executed by `binary args` under qemu (deterministic): the whole
    program, or only inside function `func` (callees excluded).  twice: run twice, counts equal."""
    tools = tools or _tools()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "count"
        flags = (["-x"] if twice else []) + ["-c", cpu] + (["-f", func] if func else [])
        _run([tools / "icount.sh", *flags, "-o", out, binary, *args],
             env={**os.environ, "ARM64_CPU": cpu})
        return int(out.read_text().split()[0])


def count_calls(binary, isa, m, n, k, reps, cpu="cortex-a53", tools=None):
    """Guest instructions executed inside popcnt_<isa> over `reps` calls (deterministic)."""
    return icount(binary, ["bench", isa, m, n, k, reps], f"popcnt_{isa}", cpu, tools)


def arm64_icount(k=4096, m=16, n=64, reps=3, cpu="cortex-a53"):
    """Instructions per 128 binary MACs of the NEON and scalar micro-kernels (m x n x k, qemu)."""
    if min(k, m, n, reps) < 1:
        raise ValueError("k, m, n, reps must be >= 1")
    tools = _tools()
    _ensure_toolchain(tools)
    with tempfile.TemporaryDirectory(prefix="kws-icount-") as tmp:
        binary = build_harness(tmp)
        _run([tools / "run.sh", binary, "check", m, n, k], env={**os.environ, "ARM64_CPU": cpu})
        units = m * n * k / 128
        result = {"k": k, "m": m, "n": n, "reps": reps, "cpu": cpu}
        for isa in ("neon", "scalar"):
            total = count_calls(binary, isa, m, n, k, reps, cpu, tools)
            if total % reps:
                raise RuntimeError(f"{isa}: {total} instructions over {reps} calls is not a multiple")
            result[f"{isa}_instr_per_call"] = total // reps
            result[f"{isa}_instr_per_128_macs"] = round(total / reps / units, 3)
    result["ratio"] = round(result["scalar_instr_per_128_macs"] / result["neon_instr_per_128_macs"], 2)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--k", type=int, default=4096, help="depth in bits (default 4096)")
    p.add_argument("--m", type=int, default=16, help="rows of a (default 16)")
    p.add_argument("--n", type=int, default=64, help="rows of w (default 64)")
    p.add_argument("--reps", type=int, default=3, help="kernel calls per counted run (default 3)")
    p.add_argument("--cpu", default="cortex-a53", help="qemu cpu model (default cortex-a53)")
    args = p.parse_args(argv)
    try:
        r = arm64_icount(k=args.k, m=args.m, n=args.n, reps=args.reps, cpu=args.cpu)
    except (RuntimeError, ValueError) as e:
        print(f"arm64_icount: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(r))
    else:
        print(f"aarch64 ({r['cpu']}, qemu), m={r['m']} n={r['n']} k={r['k']}, "
              f"guest instructions per 128 binary MACs:")
        print(f"  neon   {r['neon_instr_per_128_macs']:8.3f}   ({r['neon_instr_per_call']} per call)")
        print(f"  scalar {r['scalar_instr_per_128_macs']:8.3f}   ({r['scalar_instr_per_call']} per call)")
        print(f"  ratio  {r['ratio']:8.2f}x fewer with NEON")
    return 0


if __name__ == "__main__":
    sys.exit(main())
