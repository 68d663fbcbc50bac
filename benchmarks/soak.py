"""Soak test: run the Detector over many hours of audio (faster than real time) and watch memory,
detections and time keeping.

    python benchmarks/soak.py [--hours 24] [--model PATH] [--data DIR] [--every-s 20] [--json]

The stream is background noise (the data set's `_background_noise_` files when --data is given,
else synthetic pink noise) at -35 dBFS RMS with, every --every-s seconds, one keyword clip from the
data set's testing split (speakers never used in training) mixed in at a random level. Audio is
made and fed in 100 ms chunks, as a microphone would deliver it; nothing is kept, so the process's
memory should stay flat. Reported per hour of audio: resident memory (current, from
/proc/self/statm), detections, keyword hits (detected within 1.5 s after the clip's start, right
label) and false alarms, and the Detector's clock (time_s of its last hop) against the number of
samples fed (drift: must be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ensure_single_thread_env  # noqa: E402

ensure_single_thread_env()

RATE = 16000
CHUNK = 1600


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def pink_noise(n: int, rng) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
    x = np.fft.irfft(spec, n)
    return (x / np.sqrt(np.mean(x ** 2))).astype(np.float32)


def load_sources(data, keywords, rng):
    """(noise loops, [(label, clip)]) from a data folder, or synthetic noise and no clips."""
    import soundfile as sf
    noises, clips = [], []
    if data:
        root = Path(data)
        for p in sorted((root / "_background_noise_").glob("*.wav")):
            x, sr = sf.read(p, dtype="float32")
            if sr == RATE and x.ndim == 1 and np.any(x):
                noises.append(x / np.sqrt(np.mean(x ** 2)))
        listed = (root / "testing_list.txt").read_text().split() if (root / "testing_list.txt").exists() else []
        for rel in listed:
            label = rel.split("/")[0]
            if label in keywords:
                clips.append((label, rel))
        rng.shuffle(clips)
        clips = [(label, sf.read(root / rel, dtype="float32")[0]) for label, rel in clips[:400]]
    if not noises:
        noises = [pink_noise(60 * RATE, rng)]
    return noises, clips


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--model", default=None, help=".kws model (default: the shipped one)")
    ap.add_argument("--data", default=None, help="Speech Commands-layout folder for noise and keyword clips")
    ap.add_argument("--every-s", type=float, default=20.0, help="seconds between keyword clips")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--blocks", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import kws
    det = kws.Detector(args.model, width=args.width, blocks=args.blocks)
    rng = np.random.default_rng(args.seed)
    noises, clips = load_sources(args.data, set(det.keywords), rng)
    noise_level = 10 ** (-35 / 20)
    total = int(args.hours * 3600 * RATE)
    every = int(args.every_s * RATE)
    pending = []          # (start sample, label) of inserted clips not yet matched
    stats = {"hits": 0, "misses": 0, "false_alarms": 0, "detections": 0}
    hourly = []
    t0, cpu0 = time.time(), time.process_time()
    fed, next_report, noise_i, noise_pos = 0, 3600 * RATE, 0, 0
    clip_i, next_clip = 0, every // 2
    active = None         # (clip, offset into the chunk stream)

    def report(final=False):
        row = {"audio_h": round(fed / RATE / 3600, 3), "rss_mb": round(rss_mb(), 1),
               "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               "cpu_pct_of_audio": round(100 * (time.process_time() - cpu0) / (fed / RATE), 3),
               "wall_s": round(time.time() - t0, 1), **stats,
               # the Detector's clock is its sample/frame count: it must account for every sample
               "clock_drift_s": (fed - det._frontend.samples_seen - det._pending_n) / RATE,
               "frames_consistent": det._frames == det._frontend.frames_emitted
               == det.model.frontend.frames(det._frontend.samples_seen)}
        hourly.append(row)
        if not args.json:
            print(f"{row['audio_h']:7.2f} h  RSS {row['rss_mb']:6.1f} MB (max {row['max_rss_mb']:.1f})  "
                  f"CPU {row['cpu_pct_of_audio']:.3f}% of audio time  detections {row['detections']}  "
                  f"hits {row['hits']}  misses {row['misses']}  false alarms {row['false_alarms']}  "
                  f"wall {row['wall_s']:.0f} s", flush=True)

    while fed < total:
        n = min(CHUNK, total - fed)
        src = noises[noise_i]
        take = src[noise_pos:noise_pos + n]
        if len(take) < n:                      # loop through the noise files
            noise_i, noise_pos = (noise_i + 1) % len(noises), 0
            take = np.concatenate([take, noises[noise_i][: n - len(take)]])
        noise_pos += n
        chunk = noise_level * take
        if clips and active is None and fed >= next_clip:
            label, clip = clips[clip_i % len(clips)]
            clip_i += 1
            gain = 10 ** (rng.uniform(-6, 6) / 20)
            active = [clip * gain, 0]
            pending.append((fed, label))
            next_clip += every
        if active is not None:
            c, off = active
            part = c[off:off + n]
            chunk[: len(part)] += part
            active[1] += n
            if active[1] >= len(c):
                active = None
        for d in det.feed(chunk.astype(np.float32)):
            stats["detections"] += 1
            at = int(d.time_s * RATE)
            match = [p for p in pending if p[0] <= at <= p[0] + int(1.5 * RATE) + RATE and p[1] == d.label]
            if match:
                stats["hits"] += 1
                pending.remove(match[0])
            else:
                stats["false_alarms"] += 1
        fed += n
        while pending and pending[0][0] + 3 * RATE < fed:     # too late to be detected now
            pending.pop(0)
            stats["misses"] += 1
        if fed >= next_report:
            report()
            next_report += 3600 * RATE
    if not hourly or hourly[-1]["audio_h"] != round(fed / RATE / 3600, 3):
        report(final=True)
    summary = {"hours": args.hours, "model": args.model or "default", "inserted": clip_i,
               "rss_growth_mb": round(hourly[-1]["rss_mb"] - hourly[0]["rss_mb"], 1), "hourly": hourly}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"RSS growth first -> last report: {summary['rss_growth_mb']} MB; keyword clips inserted: {clip_i}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
