"""A tiny generated data set in the Speech Commands layout (tests and smoke runs; no TTS needed).

Each "word" is a fixed sequence of two or three tone bursts (its own frequencies), rendered with
random timing, pitch, level and a little noise, so that a network can tell the words apart after a
few steps. Not speech: for real keywords use `kws data synth` (TTS) or Speech Commands.

    make_toy_dataset("/tmp/toy", words=["yes", "no", "cat"], per_word=12)

writes `<word>/<speaker>_nohash_<n>.wav` (16 kHz int16), `_background_noise_/` (two 5 s noise files),
and `validation_list.txt` / `testing_list.txt` (speakers split 60/20/20 %).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from kws.fileio import atomic_path

SR = 16000


def _word_signature(word: str) -> list[float]:
    r = np.random.default_rng(zlib.crc32(word.encode()))
    n = 2 + int(r.integers(0, 2))
    return list(r.uniform(250.0, 3500.0, size=n))


def toy_clip(word: str, rng: np.random.Generator) -> np.ndarray:
    """One 1 s float32 clip of a toy word (tone bursts, jittered), peak <= 0.9."""
    freqs = _word_signature(word)
    pitch = rng.uniform(0.93, 1.07)
    dur = rng.uniform(0.09, 0.14)
    start = rng.uniform(0.15, 0.35)
    t = np.arange(SR) / SR
    x = np.zeros(SR)
    for k, f in enumerate(freqs):
        t0 = start + k * (dur + rng.uniform(0.02, 0.05))
        env = np.clip(1 - np.abs((t - t0 - dur / 2) / (dur / 2)), 0, None) ** 0.5
        x += env * (np.sin(2 * np.pi * f * pitch * t) + 0.3 * np.sin(4 * np.pi * f * pitch * t))
    x *= rng.uniform(0.1, 0.5) / max(np.abs(x).max(), 1e-9)
    x += rng.standard_normal(SR) * rng.uniform(0.001, 0.01)
    return np.clip(x, -0.9, 0.9).astype(np.float32)


def _write(path: Path, x: np.ndarray) -> None:
    import soundfile as sf
    with atomic_path(path) as tmp:
        sf.write(tmp, (np.clip(x, -1, 1) * 32767).astype(np.int16), SR, format="WAV", subtype="PCM_16")


def make_toy_dataset(root, words, per_word: int = 12, seed: int = 0, noise_seconds: float = 5.0) -> Path:
    """Write a toy data set (see module doc) and return its folder."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    val, test = [], []
    for word in words:
        (root / word).mkdir(parents=True, exist_ok=True)
        for i in range(per_word):
            rel = f"{word}/spk{i:03d}_nohash_0.wav"
            _write(root / rel, toy_clip(word, rng))
            r = i % 5
            if r == 3:
                val.append(rel)
            elif r == 4:
                test.append(rel)
    nd = root / "_background_noise_"
    nd.mkdir(parents=True, exist_ok=True)
    n = int(noise_seconds * SR)
    white = rng.standard_normal(n) * 0.1
    brown = np.cumsum(rng.standard_normal(n))
    brown = (brown - np.convolve(brown, np.ones(400) / 400, mode="same"))
    brown *= 0.1 / max(brown.std(), 1e-9)
    _write(nd / "white_noise.wav", white)
    _write(nd / "brown_noise.wav", brown)
    with atomic_path(root / "validation_list.txt") as tmp:
        Path(tmp).write_text("".join(f"{r}\n" for r in sorted(val)))
    with atomic_path(root / "testing_list.txt") as tmp:
        Path(tmp).write_text("".join(f"{r}\n" for r in sorted(test)))
    return root
