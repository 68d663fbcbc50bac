"""Per operating point: the binary runtime vs the same network in float (numpy), same run, and
the Detector's CPU time per second of audio.

    python benchmarks/bench_runtime.py [--json] [--model PATH] [--runs 200] [--avx2-only]

binary_ms / float_ms: median latency of one inference (one 1 s window), one thread.
rtf: CPU seconds the Detector spends per second of audio (feeding 100 ms chunks of noise at its
default hop), i.e. the fraction of one core; rtf * 100 = % of a core.
Without --model: the shipped default model if there is one, else a random model of the default
architecture (same cost).
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

from common import add_avx2_only_flag, environment, median_ms  # noqa: E402
from kws.bench import detector_cpu, load_bench_model  # noqa: E402


def run(model, runs: int):
    from kws.fsmn.floatnet import FloatFSMN
    from kws.fsmn.runtime import BinaryFSMN
    net = BinaryFSMN(model)
    a = model.arch
    x = (np.random.default_rng(1).standard_normal((a.n_frames, a.n_features)) * 10 - 40).astype(np.float32)
    for op in a.operating_points:
        flt = FloatFSMN(model, op)
        binary_ms = median_ms(lambda: net.logits(x, op), runs)
        float_ms = median_ms(lambda: flt.logits(x), runs)
        yield {"width": op.width, "blocks": len(op.blocks), "point": op.name,
               "binary_ms": binary_ms, "float_ms": float_ms, "ratio": float_ms / binary_ms,
               "rtf": detector_cpu(model, op), **a.costs(op)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--model")
    ap.add_argument("--runs", type=int, default=200)
    add_avx2_only_flag(ap)
    args = ap.parse_args(argv)
    model, name, _ = load_bench_model(args.model)
    env = environment()
    if args.json:
        print(json.dumps({"environment": env, "model": name}))
    else:
        print(f"# CPU: {env['cpu']} | kernel: {env['kernel_isa']} | BLAS: {env['blas']}")
        print(f"# model: {name}; median of {args.runs} inferences, 1 thread; rtf = CPU s per s of audio")
        print(f"{'point':>7} {'binary ms':>9} {'float ms':>9} {'float/bin':>9} {'rtf %':>7} {'bin MMAC':>9} {'flt MMAC':>9}")
    for r in run(model, args.runs):
        if args.json:
            print(json.dumps(r))
        else:
            print(f"{r['point']:>7} {r['binary_ms']:>9.3f} {r['float_ms']:>9.3f} {r['ratio']:>9.1f} "
                  f"{100 * r['rtf']:>7.2f} {r['binary_macs'] / 1e6:>9.2f} {r['float_macs'] / 1e6:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
