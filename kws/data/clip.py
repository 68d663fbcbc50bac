"""Loudness check and finishing of one rendered clip (16 kHz float32 in, 1 s int16 out).

Loudness check (../shared/recipes/speech-data.md), on the render before any gain: 20 ms frames,
10 ms hop, frame level = RMS in dBFS; a frame is active if within 35 dB of the loudest frame and
above -55 dBFS. Rejected: loudest frame below -35 dBFS ("silent"), under 60 ms active ("too-short"),
active span over 1 s ("too-long"), more than 0.1 % of the engine's raw samples at full scale
("clipped").
"""

from __future__ import annotations

import numpy as np

from kws.data.engines import RenderError

SAMPLE_RATE = 16000
CLIP = 16000
FRAME, HOP = 320, 160                  # 20 ms, 10 ms at 16 kHz
SILENT_DBFS, FLOOR_DBFS, RANGE_DB = -35.0, -55.0, 35.0
MIN_ACTIVE_S, MAX_SPAN_S = 0.060, 1.0
MAX_CLIPPED = 0.001
MARGIN = 320                           # keep 20 ms around the active span when it fits
PEAK = 0.95                            # speech peak cap after gain (leaves room for the noise floor)


def frame_db(x: np.ndarray) -> np.ndarray:
    """RMS level in dBFS of 20 ms frames every 10 ms; x: float [samples] -> [frames]."""
    if x.size < FRAME:
        x = np.pad(x, (0, FRAME - x.size))
    n = 1 + (x.size - FRAME) // HOP
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
    p = np.mean(np.square(x[idx], dtype=np.float64), axis=1)
    return 10.0 * np.log10(np.maximum(p, 1e-20))


def _active(x: np.ndarray) -> tuple[int, int, float]:
    """(start, end) of the active frames of a render and their RMS level in dBFS; raises
    RenderError("silent" | "too-short")."""
    db = frame_db(x)
    peak = float(db.max())
    if peak < SILENT_DBFS:
        raise RenderError("silent", f"loudest frame {peak:.1f} dBFS")
    active = (db > peak - RANGE_DB) & (db > FLOOR_DBFS)
    if active.sum() * HOP / SAMPLE_RATE < MIN_ACTIVE_S:
        raise RenderError("too-short", f"{active.sum() * 10} ms active")
    on = np.flatnonzero(active)
    level = 10.0 * np.log10(np.mean(10.0 ** (db[active] / 10.0)))
    return int(on[0] * HOP), int(min(on[-1] * HOP + FRAME, x.size)), float(level)


def check_loudness(x: np.ndarray, clipped_fraction: float = 0.0) -> tuple[int, int, float]:
    """Apply the loudness check to a 16 kHz render.

    Returns (start, end) sample span of the active speech and its RMS level in dBFS (active frames).
    Raises RenderError("silent" | "too-short" | "too-long" | "clipped").
    """
    if clipped_fraction > MAX_CLIPPED:
        raise RenderError("clipped", f"{100 * clipped_fraction:.2f} % of samples at full scale")
    start, end, level = _active(x)
    if end - start > MAX_SPAN_S * SAMPLE_RATE:
        raise RenderError("too-long", f"active span {(end - start) / SAMPLE_RATE:.2f} s")
    return start, end, level


def speech_window(x: np.ndarray, rng: np.random.Generator, clipped_fraction: float = 0.0
                  ) -> tuple[np.ndarray, float]:
    """A 1 s window of a longer render of running speech, for `_unknown_` (`_speech_/` clips).

    The window starts at a random point from 0.1 s before the first active frame to 0.5 s before
    the end of the last, so at least half of it lies in the utterance, often cut mid-word as a
    streaming detector hears it.
    Returns (window float [16000], its speech level in dBFS) for `finish(w, (0, 16000), level, ...)`.
    Raises RenderError("silent" | "too-short" | "clipped") like `check_loudness`.
    """
    if clipped_fraction > MAX_CLIPPED:
        raise RenderError("clipped", f"{100 * clipped_fraction:.2f} % of samples at full scale")
    s0, s1, _ = _active(x)
    lo = s0 - SAMPLE_RATE // 10
    start = int(rng.integers(lo, max(lo, s1 - SAMPLE_RATE // 2) + 1))
    w = np.zeros(CLIP)
    a, b = max(0, start), min(x.size, start + CLIP)
    w[a - start:b - start] = x[a:b]
    return w, _active(w)[2]


def colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Unit-RMS noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), float32 [n]."""
    w = rng.standard_normal(n)
    if exponent:
        spec = np.fft.rfft(w)
        f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
        spec *= np.maximum(f, 20.0) ** (-exponent / 2.0)
        w = np.fft.irfft(spec, n)
    w -= w.mean()
    return (w / (np.sqrt(np.mean(w ** 2)) + 1e-20)).astype(np.float32)


def finish(x: np.ndarray, span: tuple[int, int], speech_db: float, level_dbfs: float,
           shift_ms: float, floor_db_below: float, rng: np.random.Generator
           ) -> tuple[np.ndarray, dict]:
    """Centre the active span in 1 s, shift it, set its level, add a faint noise floor.

    Args:
        x: float32 16 kHz render; span, speech_db: from check_loudness.
        level_dbfs: target RMS of the active speech (lowered if the peak would pass 0.95).
        shift_ms: offset of the speech from the centre (clamped so the span stays inside).
        floor_db_below: the stationary noise floor's RMS is this many dB below the speech level.
        rng: draws the noise floor (white, pink or brown).
    Returns:
        (int16 [16000], {"level_dbfs", "shift_ms"} as actually applied).
    """
    s0, s1 = span
    m = min(MARGIN, max(0, (CLIP - (s1 - s0)) // 2))
    s0, s1 = max(0, s0 - m), min(x.size, s1 + m)
    seg = x[s0:s1].astype(np.float64)
    room = CLIP - seg.size
    start = int(np.clip(room // 2 + round(shift_ms * SAMPLE_RATE / 1000.0), 0, room))
    gain = 10.0 ** ((level_dbfs - speech_db) / 20.0)
    peak = float(np.abs(seg).max()) or 1.0
    gain = min(gain, PEAK / peak)
    out = np.zeros(CLIP)
    out[start:start + seg.size] = seg * gain
    level = speech_db + 20.0 * np.log10(gain)
    colour = int(rng.integers(3))
    out += colored_noise(rng, CLIP, colour) * 10.0 ** ((level - floor_db_below) / 20.0)
    pcm = np.clip(np.round(out * 32767.0), -32768, 32767).astype(np.int16)
    return pcm, {"level_dbfs": round(level, 2),
                 "shift_ms": round((start - room // 2) * 1000.0 / SAMPLE_RATE, 1)}
