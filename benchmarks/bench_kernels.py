"""Binary GEMM vs numpy float32 matmul on the BiFSMN layer shapes, same run, one thread.

    python benchmarks/bench_kernels.py [--json] [--runs 200] [--stat median|min] [--arm64-icount] [--avx2-only]

Per shape (M frames, K -> N at widths 1.0/0.5/0.25): median (or min) ms of kws._kernels.bgemm
(packed operands, preallocated int32 output) and of numpy float32 matmul (preallocated output),
timed call by call in alternation, their ratio, and the binary GMAC/s. Packing the activations is not included (in the network the binary
layers hand packed bits to each other through the threshold epilogue).
--arm64-icount adds guest instruction counts of the NEON and scalar kernels under qemu.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ensure_single_thread_env  # noqa: E402

ensure_single_thread_env()

import numpy as np  # noqa: E402

from common import add_avx2_only_flag, environment, interleaved_times  # noqa: E402
from kws import _kernels as K  # noqa: E402

LAYERS = [(128, 256), (256, 128), (256, 512), (512, 256), (400, 256)]
FRAMES = [32, 100]
WIDTHS = [1.0, 0.5, 0.25]


def paired_ms(f, g, runs: int, stat: str = "median", warmup: int = 20) -> tuple[float, float]:
    """Wall times of f() and g() in ms, timed alternately (call by call) so that both see the same
    load on a shared machine: the ratio stays fair when other processes come and go."""
    tf, tg = interleaved_times([f, g], runs, warmup)
    pick = np.min if stat == "min" else np.median
    return float(pick(tf) * 1e3), float(pick(tg) * 1e3)


def bench_shape(m: int, k: int, n: int, runs: int, rng, stat: str = "median") -> dict:
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    wt = np.ascontiguousarray(w.T)
    a, wp = K.pack(x), K.pack(w)
    out_f, out_i = np.empty((m, n), np.float32), np.empty((m, n), np.int32)
    float_ms, binary_ms = paired_ms(lambda: np.matmul(x, wt, out=out_f),
                                   lambda: K.bgemm(a, wp, k, out=out_i), runs, stat)
    return {"shape": f"{m}x{k}->{n}", "m": m, "k": k, "n": n, "binary_ms": binary_ms,
            "float_ms": float_ms, "ratio": float_ms / binary_ms,
            "binary_gmacs": m * k * n / binary_ms / 1e6, "float_gmacs": m * k * n / float_ms / 1e6}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--runs", type=int, default=200, help="timed calls per measurement")
    ap.add_argument("--stat", choices=("median", "min"), default="median",
                    help="statistic over the runs (min: least disturbed by other processes)")
    ap.add_argument("--arm64-icount", action="store_true",
                    help="also count NEON/scalar guest instructions per 128 binary MACs under qemu")
    add_avx2_only_flag(ap)
    args = ap.parse_args(argv)
    env = environment()
    if args.json:
        print(json.dumps({"environment": env}))
    else:
        print(f"# CPU: {env['cpu']} | kernel: {env['kernel_isa']} (available {env['kernels_available']})")
        print(f"# BLAS: {env['blas']} | numpy {env['numpy']} | {args.stat} of {args.runs} runs "
              f"(binary and float calls alternate), 1 thread")
        print(f"{'shape':>16} {'width':>5} {'binary ms':>10} {'float ms':>9} {'float/bin':>9} {'bin GMAC/s':>10}")
    rng = np.random.default_rng(0)
    for m in FRAMES:
        for k0, n0 in LAYERS:
            for width in WIDTHS:
                k, n = max(1, round(k0 * width)), max(1, round(n0 * width))
                r = bench_shape(m, k, n, args.runs, rng, args.stat)
                r["width"] = width
                if args.json:
                    print(json.dumps(r))
                else:
                    print(f"{r['shape']:>16} {width:>5} {r['binary_ms']:>10.4f} {r['float_ms']:>9.4f} "
                          f"{r['ratio']:>9.1f} {r['binary_gmacs']:>10.0f}")
    if args.arm64_icount:
        from arm64_icount import arm64_icount
        counts = arm64_icount()
        print(json.dumps({"arm64_icount": counts}) if args.json else
              f"# arm64 (qemu cortex-a53), k={counts['k']}: NEON {counts['neon_instr_per_128_macs']:.2f}, "
              f"scalar {counts['scalar_instr_per_128_macs']:.2f} instructions per 128 binary MACs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
