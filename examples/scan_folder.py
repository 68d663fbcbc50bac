"""Scan a folder of WAV/FLAC files and list the keywords found in each.

    python examples/scan_folder.py FOLDER [--model model.kws] [--width 0.5 --blocks 4]
"""

import argparse
from pathlib import Path

import soundfile as sf

import kws

ap = argparse.ArgumentParser()
ap.add_argument("folder")
ap.add_argument("--model", default=None)
ap.add_argument("--width", type=float, default=1.0)
ap.add_argument("--blocks", type=int, default=None)
args = ap.parse_args()

detector = kws.Detector(args.model, width=args.width, blocks=args.blocks)
files = sorted(p for p in Path(args.folder).rglob("*") if p.suffix.lower() in (".wav", ".flac"))
for path in files:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    detector.reset()                                   # times restart at 0 for every file
    found = detector.feed(audio.mean(axis=1), sample_rate=rate)
    words = ", ".join(f"{d.label}@{d.time_s:.2f}s" for d in found) or "-"
    print(f"{path}: {words}")
print(f"{len(files)} file(s) scanned")
