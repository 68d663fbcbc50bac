"""Minimal app: detect keywords on the default microphone with kws.Detector.

    python examples/mic_app.py [--model model.kws] [--seconds 30]
"""

import argparse
import queue

import sounddevice as sd

import kws

ap = argparse.ArgumentParser()
ap.add_argument("--model", default=None, help="a .kws file (default: the model shipped with kws)")
ap.add_argument("--seconds", type=float, default=30.0)
args = ap.parse_args()

detector = kws.Detector(args.model, width=0.5, blocks=4)
blocks = queue.Queue()


def on_audio(indata, frames, time, status):      # PortAudio thread: only hand the audio over
    blocks.put(indata[:, 0].copy())


with sd.InputStream(samplerate=16000, channels=1, dtype="float32", blocksize=1600, callback=on_audio):
    print(f"listening for {', '.join(detector.keywords)} ...")
    heard = 0.0
    while heard < args.seconds:
        chunk = blocks.get()
        heard += len(chunk) / 16000
        for d in detector.feed(chunk):
            print(f"{d.time_s:6.2f}s  {d.label}  ({d.score:.2f})")
