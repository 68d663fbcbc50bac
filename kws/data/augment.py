"""On-the-fly waveform augmentation: speed, time shift, volume, background noise (+ optional pitch).

    aug = Augment("/work/data/v1-12/_background_noise_", seed=0)
    y = aug(x, rng)               # x: float32 [16000] or a batch [B, 16000]; same shape out

Every random draw comes from the `rng` argument (a numpy Generator) or, when it is None, from the
object's own generator seeded with `seed`: the same rng state gives the same output, bit for bit.
All steps are vectorised over the batch (one gather for speed+shift, one for the noise windows).

Defaults follow the BiFSMN reference (../shared/reference/bifsmn.md): noise with probability 0.3 at a
scale drawn from U(0, 0.3) (noise files are used as they are, e.g. about -20 dBFS RMS for the
synthesized ones), volume U(0.7, 1.1), speed U(0.8, 1.2) (resampling: it changes pitch too, like the
reference's speed perturbation), time shift U(-0.2, 0.2) s. `snr_db=(lo, hi)` switches the noise to
a drawn signal-to-noise ratio instead (e.g. (0, 20) as in the speech-data recipe; silent inputs then
fall back to the scale range). `pitch_semitones=(lo, hi)` adds a pitch shift that keeps the duration
(numpy phase vocoder + soxr resampling, `pitch_shift`; per clip, a few ms; off by default like the
reference). `acoustics` (a kws.data.acoustics.Acoustics) adds rooms, realistic backgrounds and
microphone / channel effects after the volume step (`kws train --acoustics realistic`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from kws.errors import KwsError

SAMPLE_RATE = 16000


def _range(name: str, v, lo_ok: float = -np.inf) -> tuple[float, float]:
    lo, hi = (float(v), float(v)) if np.isscalar(v) else (float(v[0]), float(v[1]))
    if not (lo <= hi) or lo < lo_ok:
        raise KwsError(f"Augment: bad {name} range {v!r}")
    return lo, hi


class Augment:
    """Random speed / shift / volume / noise for 16 kHz clips (see the module doc for defaults).

    Args:
        noise: a `_background_noise_` folder, a list of float32 arrays (16 kHz mono), or None.
        p_noise: probability that a clip gets background noise.
        noise_scale: (lo, hi) of the factor the noise window is multiplied by.
        snr_db: (lo, hi) in dB; if given, the noise is scaled to this SNR instead of `noise_scale`.
        volume: (lo, hi) gain factor of the clip.
        speed: (lo, hi) speed factor (1.2 = 20 % faster, shorter); the centre of the clip is kept.
        shift_s: maximum time shift in seconds (uniform in [-shift_s, shift_s]; zeros fill in).
        pitch_semitones: optional (lo, hi) pitch shift keeping the duration; None = off.
        seed: seeds the generator used when `__call__` gets no rng.
        acoustics: optional callable(audio [B, N], rng) -> audio applied after the noise step
            (kws.data.acoustics.Acoustics: rooms, backgrounds, channel); its draws follow ours.
    """

    def __init__(self, noise: str | Path | Sequence[np.ndarray] | None = None, p_noise: float = 0.3,
                 noise_scale=(0.0, 0.3), snr_db=None, volume=(0.7, 1.1), speed=(0.8, 1.2),
                 shift_s: float = 0.2, pitch_semitones=None, seed: int = 0,
                 sample_rate: int = SAMPLE_RATE, acoustics=None):
        if isinstance(noise, (str, Path)):
            from kws.data.speech_commands import load_noise_dir
            if not Path(noise).is_dir():
                raise KwsError(f"Augment: noise folder {noise} does not exist")
            noise = load_noise_dir(Path(noise))
        self.noise = [np.asarray(n, dtype=np.float32).ravel() for n in (noise or [])]
        if not 0.0 <= p_noise <= 1.0:
            raise KwsError(f"Augment: p_noise must be in [0, 1], got {p_noise}")
        self.p_noise = float(p_noise) if self.noise else 0.0
        self.noise_scale = _range("noise_scale", noise_scale, 0.0)
        self.snr_db = None if snr_db is None else _range("snr_db", snr_db)
        self.volume = _range("volume", volume, 0.0)
        self.speed = _range("speed", speed, 1e-3)
        self.shift = int(round(float(shift_s) * sample_rate))
        if self.shift < 0:
            raise KwsError("Augment: shift_s must be >= 0")
        self.pitch = None if pitch_semitones is None else _range("pitch_semitones", pitch_semitones)
        self.sample_rate = int(sample_rate)
        self.seed = seed
        self.acoustics = acoustics
        self._rng = np.random.default_rng(seed)
        if self.noise:
            self._bank = np.concatenate(self.noise)
            self._starts = np.cumsum([0] + [n.size for n in self.noise[:-1]])
            self._lens = np.array([n.size for n in self.noise])

    def __call__(self, audio: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Augment one clip [N] or a batch [B, N] (float, in [-1, 1]); returns float32, same shape."""
        rng = self._rng if rng is None else rng
        x = np.asarray(audio, dtype=np.float32)
        single = x.ndim == 1
        x = x[None, :] if single else x
        if x.ndim != 2:
            raise KwsError(f"Augment: expected [N] or [B, N] audio, got shape {np.shape(audio)}")
        b, n = x.shape
        # all draws first, in a fixed order: identical rng state -> identical output
        speed = rng.uniform(*self.speed, size=b)
        shift = rng.integers(-self.shift, self.shift + 1, size=b)
        gain = rng.uniform(*self.volume, size=b)
        use_noise = rng.random(b) < self.p_noise
        pick = rng.integers(0, len(self.noise), size=b) if self.noise else np.zeros(b, np.int64)
        offset_u = rng.random(b)
        scale = rng.uniform(*self.noise_scale, size=b)
        snr = rng.uniform(*self.snr_db, size=b) if self.snr_db else None
        pitch = rng.uniform(*self.pitch, size=b) if self.pitch else None

        # speed + shift: one linear-interpolation gather around the clip centre
        c = (n - 1) / 2.0
        t = np.arange(n, dtype=np.float64)
        src = c + (t[None, :] - shift[:, None] - c) * speed[:, None]
        i0 = np.floor(src).astype(np.int64)
        frac = (src - i0).astype(np.float32)
        rows = np.arange(b)[:, None]
        xp = np.pad(x, ((0, 0), (2, 2)))            # source index -2 .. n+1 reads zeros
        i0c = np.clip(i0, -2, n) + 2
        y = xp[rows, i0c] * (1.0 - frac) + xp[rows, i0c + 1] * frac

        if pitch is not None:
            for r in range(b):
                if pitch[r] != 0.0:
                    y[r] = pitch_shift(y[r], float(pitch[r]), self.sample_rate)
        y *= gain[:, None].astype(np.float32)

        if self.noise and use_noise.any():
            lens = self._lens[pick]
            off = (offset_u * np.maximum(lens - n, 0)).astype(np.int64)
            idx = self._starts[pick][:, None] + np.minimum(off[:, None] + np.arange(n)[None, :],
                                                           lens[:, None] - 1)
            w = self._bank[idx]
            if snr is not None:
                ps = np.mean(y.astype(np.float64) ** 2, axis=1)
                pn = np.mean(w.astype(np.float64) ** 2, axis=1) + 1e-20
                by_snr = np.sqrt(ps / (pn * 10.0 ** (snr / 10.0)))
                scale = np.where(ps > 1e-10, by_snr, scale)
            y += (w * (scale * use_noise)[:, None]).astype(np.float32)
        if self.acoustics is not None:
            y = self.acoustics(y, rng)
        np.clip(y, -1.0, 1.0, out=y)
        y = y.astype(np.float32, copy=False)
        return y[0] if single else y


def pitch_shift(x: np.ndarray, semitones: float, sample_rate: int = SAMPLE_RATE,
                n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Shift the pitch of float audio [N] by `semitones`, keeping its length N (float32 out).

    Phase-vocoder time stretch by 2**(semitones/12) (Hann STFT, `n_fft`, `hop`), then soxr
    resampling back to N samples (librosa.effects.pitch_shift's method, without numba).
    """
    import soxr

    x = np.asarray(x, dtype=np.float64)
    n = x.size
    p = 2.0 ** (semitones / 12.0)
    win = np.hanning(n_fft + 1)[:-1]
    xp = np.pad(x, n_fft // 2)              # zeros, like librosa's stft default
    n_frames = 1 + (xp.size - n_fft) // hop
    if n_fft % hop or n_frames < 2 or semitones == 0.0:
        if n_fft % hop:
            raise KwsError("pitch_shift: n_fft must be a multiple of hop")
        return x.astype(np.float32)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.fft.rfft(xp[idx] * win, axis=1).T                       # [bins, frames]
    # phase vocoder: frames at fractional steps 0, 1/p, 2/p, ... (p times more frames)
    steps = np.arange(0.0, n_frames - 1, 1.0 / p)
    i0 = steps.astype(np.int64)
    frac = steps - i0
    c0, c1 = spec[:, i0], spec[:, i0 + 1]
    mag = (1.0 - frac) * np.abs(c0) + frac * np.abs(c1)
    omega = np.linspace(0.0, np.pi * hop, spec.shape[0])[:, None]     # expected advance per hop
    dphi = np.angle(c1) - np.angle(c0) - omega
    dphi -= 2.0 * np.pi * np.round(dphi / (2.0 * np.pi))
    phase = np.angle(spec[:, :1]) + np.concatenate(
        [np.zeros((spec.shape[0], 1)), np.cumsum(omega + dphi, axis=1)[:, :-1]], axis=1)
    frames = np.fft.irfft(mag * np.exp(1j * phase), n_fft, axis=0).T * win   # [frames, n_fft]
    # overlap-add in hop-sized blocks (n_fft is a multiple of hop)
    m, k = frames.shape[0], n_fft // hop
    blocks = np.zeros((m + k - 1, hop))
    wsum = np.zeros((m + k - 1, hop))
    w2 = (win ** 2).reshape(k, hop)
    fr = frames.reshape(m, k, hop)
    for j in range(k):
        blocks[j:j + m] += fr[:, j]
        wsum[j:j + m] += w2[j]
    y = (blocks / np.maximum(wsum, 1e-8)).ravel()
    y = y[n_fft // 2: n_fft // 2 + int(round(n * p))]
    y = soxr.resample(y, sample_rate * p, sample_rate, quality="HQ")
    out = np.zeros(n)
    out[:min(n, y.size)] = y[:n]
    return out.astype(np.float32)
