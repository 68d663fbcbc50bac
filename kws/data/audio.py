"""WAV reading for the data sets: any readable file -> float32 mono at 16 kHz, fitted to 1 s."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000          # 1 s at 16 kHz


def load_wav(path: str | Path, sample_rate: int = SAMPLE_RATE, *, warn_channels: bool = True
             ) -> np.ndarray:
    """Read a sound file as float32 mono in [-1, 1] at `sample_rate` Hz.

    Multi-channel files are averaged to mono (with a warning naming the file); other rates are
    resampled with soxr (high quality). Raises the reader's error (soundfile.LibsndfileError,
    RuntimeError, ...) for a corrupt or unreadable file; callers decide how to skip it.
    Returns: float32 array, shape [samples].
    """
    import soundfile as sf

    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if data.shape[1] != 1:
        if warn_channels:
            warnings.warn(f"{path}: {data.shape[1]} channels, averaged to mono", stacklevel=2)
        data = data.mean(axis=1, keepdims=True)
    x = np.ascontiguousarray(data[:, 0])
    if sr != sample_rate and x.size:
        import soxr
        x = soxr.resample(x, sr, sample_rate, quality="HQ").astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{path}: non-finite samples")
    return np.clip(x, -1.0, 1.0, out=x)


def fit_length(x: np.ndarray, n: int = CLIP_SAMPLES) -> np.ndarray:
    """Pad with zeros at the end or crop the centre so that the last axis has `n` samples.

    Shape [..., m] -> [..., n]; the input is not modified.
    """
    m = x.shape[-1]
    if m == n:
        return x
    if m > n:
        start = (m - n) // 2
        return x[..., start:start + n]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, n - m)]
    return np.pad(x, pad)
