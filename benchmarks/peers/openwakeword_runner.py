"""openWakeWord side of `kws bench` (runs inside the openwakeword venv of benchmarks/peers/setup.sh).

    <oww venv>/bin/python openwakeword_runner.py [--seconds 30] [--framework tflite|onnx] [--models hey_jarvis]

Streams `seconds` of 16 kHz int16 audio (seeded noise with a few louder bursts, so every model
stage has work: openWakeWord's cost does not depend on the content) through
openwakeword.Model.predict in 80 ms chunks (1280 samples, the size its docs recommend), with the
models bundled in the openwakeword 0.5.1 wheel (melspectrogram + embedding + the wake-word models
named; nothing is downloaded), and prints one JSON object: CPU seconds (time.process_time) per
second of audio, and the median wall time of one 80 ms predict call.  Threads: its feature
models get ncpu=--threads (default 1, openWakeWord's own default); its wake-word models always
run on one (tflite num_threads=1, onnxruntime intra/inter_op 1, fixed in openwakeword 0.5.1).
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--framework", choices=("tflite", "onnx"), default="tflite")
    ap.add_argument("--models", default="hey_jarvis", help="comma-separated bundled model names")
    ap.add_argument("--warmup", type=int, default=25, help="80 ms chunks fed before timing")
    ap.add_argument("--threads", type=int, default=1, help="ncpu of its feature models")
    args = ap.parse_args(argv)
    import numpy as np
    import openwakeword
    from importlib.metadata import version
    names = [n for n in args.models.split(",") if n]
    paths = []
    for n in names:
        if n not in openwakeword.models:
            raise SystemExit(f"unknown bundled model {n!r}: {sorted(openwakeword.models)}")
        p = openwakeword.models[n]["model_path"]
        paths.append(p.replace(".tflite", ".onnx") if args.framework == "onnx" else p)
    model = openwakeword.Model(wakeword_models=paths, inference_framework=args.framework, ncpu=args.threads)
    rng = np.random.default_rng(0)
    chunk = 1280
    n_chunks = int(round(args.seconds * 16000 / chunk))
    audio = rng.normal(0, 300, (args.warmup + n_chunks) * chunk)
    for i in range(0, len(audio), 16000):               # a 0.3 s louder burst every second
        audio[i:i + 4800] *= 10
    audio = np.clip(audio, -32768, 32767).astype(np.int16)
    for i in range(args.warmup):
        model.predict(audio[i * chunk:(i + 1) * chunk])
    walls = np.empty(n_chunks)
    c0 = time.process_time()
    for j in range(n_chunks):
        i = args.warmup + j
        t0 = time.perf_counter()
        model.predict(audio[i * chunk:(i + 1) * chunk])
        walls[j] = time.perf_counter() - t0
    cpu = time.process_time() - c0
    seconds = n_chunks * chunk / 16000
    print(json.dumps({"openwakeword": version("openwakeword"), "framework": args.framework,
                      "models": names, "threads": args.threads, "seconds": seconds, "chunks": n_chunks,
                      "cpu_per_audio_s": cpu / seconds, "chunk_ms_median": float(np.median(walls) * 1e3),
                      "numpy": np.__version__}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
