"""Switch the operating point at run time to stay within a CPU budget (no reload, no gap).

Feeds audio (a file, or noise) as a live stream would arrive, measures the CPU time each second of
audio costs, and moves to a thinner (width, blocks) point when over budget, back to a wider one
when well under it.

    python examples/cpu_budget.py [--model model.kws] [--budget 0.5] [--file speech.wav]
"""

import argparse
import time

import numpy as np
import soundfile as sf

import kws

ap = argparse.ArgumentParser()
ap.add_argument("--model", default=None)
ap.add_argument("--budget", type=float, default=0.5, help="% of one core per second of audio")
ap.add_argument("--file", default=None)
ap.add_argument("--seconds", type=float, default=20.0)
args = ap.parse_args()

detector = kws.Detector(args.model)
# the points the model declares, most expensive first
arch = detector.model.arch
ops = sorted(arch.operating_points, key=lambda op: -arch.costs(op)["binary_macs"])
points = [(op.width, len(op.blocks)) for op in ops]
if args.file:
    audio, rate = sf.read(args.file, dtype="float32")
    audio = audio if audio.ndim == 1 else audio.mean(axis=1)
else:
    rate = 16000
    audio = (0.05 * np.random.default_rng(0).standard_normal(int(args.seconds * rate))).astype(np.float32)

level = 0
for start in range(0, len(audio), rate):              # one second of audio at a time
    t0 = time.process_time()
    for d in detector.feed(audio[start:start + rate], sample_rate=rate):
        print(f"  {d.time_s:6.2f}s {d.label} ({d.score:.2f})")
    cpu = 100 * (time.process_time() - t0)              # % of a core for this second of audio
    print(f"{start // rate:3d}s  point {detector.operating_point.name:>6}  CPU {cpu:5.2f}%")
    if cpu > args.budget and level + 1 < len(points):
        level += 1
    elif cpu < args.budget / 3 and level > 0:
        level -= 1
    detector.width, detector.blocks = points[level]      # takes effect at the next hop
