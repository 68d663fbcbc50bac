"""Larq Compute Engine side of `kws bench` (runs inside the LCE venv of benchmarks/peers/setup.sh).

    <lce venv>/bin/python lce_runner.py --pairs 48:128:256,48:64:128 [--threads 1]

For each pair M:B:H it builds the binary pointwise pair of one kws FSMN block with larq (the same
GEMM shapes: M frames, B -> H -> B channels):

    x [1, M, 1, B] float -> QuantConv2D(H, 1x1, ste_sign input and kernel) -> BatchNorm
                         -> QuantConv2D(B, 1x1, ste_sign input and kernel) -> BatchNorm -> float

converts it with larq_compute_engine.convert_keras_model (LceQuantize -> LceBconv2d with bitpacked
output and the BN folded into thresholds -> LceBconv2d with float output), and loads it in
lce.testing.Interpreter(num_threads=T) twice: with use_indirect_bgemm=True and False.  This is
the same work as kws's pack -> bgemm_threshold -> bgemm_scale on the same shapes.

Protocol (JSON lines): prints {"ready": ...} once the interpreters exist, then for every request
line {"pair": i, "indirect": bool, "runs": n} on stdin answers {"times_s": [...]} (wall time of n
interpreter invocations, one each), so the caller can interleave its own timings with these.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build_pair(m: int, b: int, h: int, seed: int):
    import larq as lq
    import numpy as np
    import tensorflow as tf
    tf.random.set_seed(seed)
    q = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign",
             kernel_constraint="weight_clip", use_bias=False, padding="valid")
    x = tf.keras.Input((m, 1, b), batch_size=1)
    y = lq.layers.QuantConv2D(h, (1, 1), **q)(x)
    y = tf.keras.layers.BatchNormalization()(y)
    y = lq.layers.QuantConv2D(b, (1, 1), **q)(y)
    y = tf.keras.layers.BatchNormalization()(y)
    model = tf.keras.Model(x, y)
    rng = np.random.default_rng(seed)
    for layer in model.layers:              # non-trivial BN statistics: real thresholds / scales
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                               rng.normal(0, 1, n), rng.uniform(0.5, 2, n)])
    return model


def lce_ops(flatbuffer: bytes) -> list[str]:
    """Custom LCE op names present in the converted flatbuffer."""
    return [op for op in ("LceQuantize", "LceBconv2d", "LceDequantize", "LceBMaxPool2d")
            if op.encode() in flatbuffer]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", required=True, help="comma-separated M:B:H")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args(argv)
    from importlib.metadata import version
    import larq
    import larq_compute_engine as lce
    import numpy as np
    import tensorflow as tf
    pairs = [tuple(int(v) for v in p.split(":")) for p in args.pairs.split(",")]
    interps, info = {}, []
    for i, (m, b, h) in enumerate(pairs):
        fb = lce.convert_keras_model(build_pair(m, b, h, seed=i))
        x = np.random.default_rng(i).standard_normal((1, m, 1, b)).astype(np.float32)
        outs = {}
        for indirect in (True, False):
            it = lce.testing.Interpreter(fb, num_threads=args.threads, use_indirect_bgemm=indirect)
            raw = it.interpreter              # the C++ wrapper: no per-call Python batching
            for _ in range(args.warmup):
                out = raw.predict([x])
            outs[indirect] = out[0]
            interps[(i, indirect)] = (raw, x)
        info.append({"pair": f"{m}:{b}:{h}", "m": m, "b": b, "h": h, "ops": lce_ops(fb),
                     "flatbuffer_bytes": len(fb), "binary_macs": 2 * m * b * h,
                     "indirect_matches_direct": bool(np.array_equal(outs[True], outs[False]))})
    print(json.dumps({"ready": True, "tensorflow": tf.__version__, "larq": larq.__version__,
                      "lce": version("larq-compute-engine"), "threads": args.threads,
                      "pairs": info}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        raw, x = interps[(int(req["pair"]), bool(req["indirect"]))]
        times = []
        for _ in range(int(req["runs"])):
            t0 = time.perf_counter()
            raw.predict([x])
            times.append(time.perf_counter() - t0)
        print(json.dumps({"times_s": times}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
