"""Streaming log-mel / MFCC front-end, numerically librosa's, bit-identical however the audio is chunked.

Two entry points share one code path:

* ``features(audio, config)`` -- a whole clip at once, float32 ``[frames, n_features]``;
* ``Frontend(config).process(chunk)`` -- streaming: feed chunks of any length (0 and 1 sample
  included) and get back the frames that became complete, float32 ``[new_frames, n_features]``.

Feeding the same samples in any chunking gives ``np.array_equal`` results (not merely close),
and both equal librosa's batch functions with ``center=False`` to ~1e-7 relative::

    S  = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length,
                                        win_length=win_length, center=False, power=2.0,
                                        n_mels=n_mels, fmin=fmin, fmax=fmax)
    logmel = librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)       # kind="logmel"
    mfcc   = librosa.feature.mfcc(S=logmel, n_mfcc=n_mfcc, dct_type=2, norm="ortho")  # kind="mfcc"

(librosa returns ``[n_features, frames]``; kws returns the transpose, one row per frame.)

Definitions
-----------
Frame ``i`` covers samples ``[i*hop_length, i*hop_length + n_fft)`` (no centring, no padding), so
a clip of ``n`` samples gives ``0 if n < n_fft else 1 + (n - n_fft) // hop_length`` frames
(``FrontendConfig.frames``).  Each frame is multiplied by a periodic Hann window of
``win_length`` samples zero-padded (centred) to ``n_fft`` (``librosa.filters.get_window`` +
``librosa.util.pad_center``), transformed with a real FFT, turned into the power spectrum
``|X|^2``, weighted by the mel filterbank ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)``
(Slaney mel scale, ``htk=False``, ``norm="slaney"``), and compressed with
``10 * log10(max(S, 1e-10))`` -- i.e. ``librosa.power_to_db(S, ref=1.0, amin=1e-10,
top_db=None)``.  ``kind="mfcc"`` then applies the orthonormal DCT-II along the mel axis and keeps
the first ``n_mfcc`` coefficients (exactly the transform ``librosa.feature.mfcc`` applies,
``scipy.fft.dct(type=2, norm="ortho")``), taken here as a matrix.

``top_db`` is ``None``, not librosa's default 80: ``top_db`` clips every value to
``clip_max - 80 dB``, and that maximum is over the *whole* clip, so a frame's value would depend
on audio that has not arrived yet -- it cannot stream.  The fixed floor ``amin=1e-10`` (-100 dB)
plays its role.  Values are in dB relative to full scale power 1.0 (audio in [-1, 1]).

Default configuration and why
-----------------------------
16 kHz mono; 25 ms Hann window (``win_length=400``) every 10 ms (``hop_length=160``, 100 frames
per second) in a 512-point FFT (the next power of two above 400: the cheapest FFT size that holds
the window, 31.25 Hz bins); 40 mel bands from 20 Hz to 7600 Hz; log-mel features.

* Accuracy: 25 ms / 10 ms with about 40 mel bands is the standard speech front-end (Kaldi's frame
  defaults, most small-footprint keyword-spotting work): long enough to resolve the harmonics and
  formants of voiced speech, short enough to follow consonant transitions, and a 10 ms hop gives
  the detector a fine time grid.  (BiFSMN's reference code uses 32 bands from 2048-sample windows
  with hop 512, i.e. 32 frames per second -- too coarse for a detector that streams.)
* ``fmax=7600`` rather than ``sample_rate/2``: the top 400 Hz is where resamplers' anti-aliasing
  filters (audio arriving at 44.1/48 kHz, resampled with soxr) and many microphones and codecs
  roll off, so a band there would describe the recording chain rather than the word; many Kaldi
  recipes use the same ``--high-freq=-400``.  ``fmin=20`` drops DC and rumble.
* Cost: per frame one 512-point real FFT plus a 40-band filterbank (the widest band spans 34
  bins) and, for MFCC, a 40 x 40 DCT; see "Cost" below.  More bands would cost proportionally
  more here and in the network's first layer.

How streaming stays bit-identical
---------------------------------
The per-frame math runs in C (``kws/csrc/frontend.c``, one call per ``features`` or ``process``
call, GIL released): every frame is computed alone by the same code, in float64, and rounded once
to float32 at the end, so a frame's values depend only on its samples and the config, never on
how many frames a call covers -- ``features`` and ``Frontend.process`` in any chunking give
``np.array_equal`` results.  (A numpy version needs care here: BLAS products such as
``frames @ mel.T`` round differently per shape, so their rows change with the chunking.)  The FFT
is a radix-2 real FFT for power-of-two ``n_fft`` and Bluestein's algorithm on top of it for other
sizes; the C file is built with ``-ffp-contract=off`` (no fused multiply-adds), so the roundings
do not depend on the instructions the compiler picks.  The tests check ``np.array_equal`` between
streaming and batch for random partitions including 0- and 1-sample chunks, that each frame
computed alone equals its row in a batch, parity with librosa, and the C code against
``np.fft.rfft`` for every FFT size from 8 to 2048.  The features equal, bit for bit, those of the
numpy implementation that trained the default models (checked on the example recording, noise
and near-silence when the C code replaced it).

Cost
----
About 2.2 us of CPU per frame on the development machine (Intel Xeon, x86-64, one thread,
default config), i.e. ~0.22-0.26 ms per second of 16 kHz audio (the numpy version: ~0.6 ms): the
FFT about half, the mel bands and the log the rest.  The Detector hands the frontend 200 ms at a
time, so the fixed cost of a call (~2 us) hardly counts.  On a Raspberry Pi 3 (Cortex-A53,
counted under qemu by ``benchmarks/pi_estimate.py``) ~26,000 instructions per frame, ~2.2 ms per
second of audio.  The filterbank and DCT matrices are built once per config
(``functools.lru_cache``); librosa is imported only then, never per chunk.

>>> import numpy as np
>>> from kws.frontend import FrontendConfig, Frontend, features
>>> y = np.zeros(16000, dtype=np.float32)           # 1 s of silence at 16 kHz
>>> features(y).shape                                # (frames, n_mels)
(97, 40)
>>> fe = Frontend()
>>> [fe.process(c).shape[0] for c in np.array_split(y, 4)]
[22, 25, 25, 25]
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from kws import _kernels
from kws.errors import KwsError

__all__ = ["FrontendConfig", "Frontend", "features", "AMIN"]

AMIN = 1e-10
"""Power floor before the log (librosa ``power_to_db(amin=...)``): features are >= -100 dB."""

_KINDS = ("logmel", "mfcc")


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------

# field -> (lo, hi), inclusive; the bounds keep a hostile model file from asking for absurd
# allocations.
_INT_RANGES = {
    "sample_rate": (1000, 384000),
    "n_fft": (16, 32768),
    "win_length": (1, 32768),
    "hop_length": (1, 65536),
    "n_mels": (1, 1024),
    "n_mfcc": (1, 1024),
}
_FLOAT_FIELDS = ("fmin", "fmax")


@dataclass(frozen=True)
class FrontendConfig:
    """Front-end parameters; immutable and hashable, stored in every model file.

    Parameters
    ----------
    sample_rate : int
        Audio sample rate in Hz (default 16000).
    n_fft : int
        FFT size in samples (default 512 = 32 ms); also the span of one frame.
    win_length : int
        Hann window length in samples, <= n_fft, centred in the FFT frame (default 400 = 25 ms).
    hop_length : int
        Samples between frame starts (default 160 = 10 ms, i.e. 100 frames per second).
    n_mels : int
        Number of mel bands (default 40).
    n_mfcc : int
        Number of DCT coefficients kept when ``kind == "mfcc"`` (default 40; must be <= n_mels
        then, ignored for log-mel).
    fmin, fmax : float
        Lowest / highest filterbank frequency in Hz, 0 <= fmin < fmax <= sample_rate / 2
        (defaults 20.0 and 7600.0; see the module docstring for why not 8000).
    kind : str
        ``"logmel"`` (default; dB, ``[frames, n_mels]``) or ``"mfcc"`` (``[frames, n_mfcc]``).

    Invalid values raise ``kws.KwsError`` (a ValueError).  The reasons for the defaults are in
    the module docstring.

    >>> cfg = FrontendConfig(kind="mfcc", n_mfcc=13)
    >>> cfg.n_features, cfg.frames(16000)
    (13, 97)
    >>> FrontendConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 40
    n_mfcc: int = 40
    fmin: float = 20.0
    fmax: float = 7600.0
    kind: str = "logmel"

    def __post_init__(self) -> None:
        for name, (lo, hi) in _INT_RANGES.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise KwsError(f"FrontendConfig.{name} must be an int, got {type(v).__name__} {v!r}")
            v = int(v)
            if not lo <= v <= hi:
                raise KwsError(f"FrontendConfig.{name}={v} is out of range [{lo}, {hi}]")
            object.__setattr__(self, name, v)
        for name in _FLOAT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise KwsError(f"FrontendConfig.{name} must be a number (Hz), got {type(v).__name__} {v!r}")
            try:
                v = float(v)
            except (OverflowError, ValueError):
                v = math.inf
            if not math.isfinite(v):
                raise KwsError(f"FrontendConfig.{name} must be finite, got {v!r}")
            object.__setattr__(self, name, v)
        if not isinstance(self.kind, str) or self.kind not in _KINDS:
            raise KwsError(f"FrontendConfig.kind must be one of {_KINDS}, got {self.kind!r}")
        if self.win_length > self.n_fft:
            raise KwsError(f"FrontendConfig.win_length={self.win_length} must be <= n_fft={self.n_fft}")
        nyquist = self.sample_rate / 2
        if not 0.0 <= self.fmin < self.fmax <= nyquist:
            raise KwsError(f"FrontendConfig needs 0 <= fmin < fmax <= sample_rate/2 = {nyquist:g} Hz, "
                           f"got fmin={self.fmin:g}, fmax={self.fmax:g}")
        if self.n_mels > self.n_fft // 2 + 1:
            raise KwsError(f"FrontendConfig.n_mels={self.n_mels} exceeds the {self.n_fft // 2 + 1} "
                           f"FFT bins of n_fft={self.n_fft}")
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            raise KwsError(f"FrontendConfig.n_mfcc={self.n_mfcc} must be <= n_mels={self.n_mels}")

    @property
    def n_features(self) -> int:
        """Features per frame: ``n_mels`` for log-mel, ``n_mfcc`` for MFCC."""
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    def frames(self, n_samples: int) -> int:
        """Number of frames a clip of ``n_samples`` samples gives (``center=False``).

        ``0 if n_samples < n_fft else 1 + (n_samples - n_fft) // hop_length``.

        >>> FrontendConfig().frames(16000), FrontendConfig().frames(511), FrontendConfig().frames(512)
        (97, 0, 1)
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 0:
            raise ValueError(f"n_samples must be a non-negative int, got {n_samples!r}")
        n = int(n_samples)
        return 0 if n < self.n_fft else 1 + (n - self.n_fft) // self.hop_length

    def to_dict(self) -> dict:
        """All fields as a JSON-ready dict (ints, floats, str); ``from_dict`` inverts it."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FrontendConfig":
        """Build a config from a dict read from an untrusted file (e.g. model metadata JSON).

        Unknown keys, wrong types (ints must be int -- not bool, float or str; fmin/fmax int or
        float; kind str) and out-of-range values raise ``kws.KwsError`` naming the key.  Keys
        that are missing take the defaults (``to_dict`` always writes all of them).

        >>> FrontendConfig.from_dict({"kind": "mfcc", "n_mfcc": 13}).n_features
        13
        """
        if not isinstance(d, Mapping):
            raise KwsError(f"frontend config must be a JSON object / dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = [k for k in d if not (isinstance(k, str) and k in known)]
        if unknown:
            shown = ", ".join(repr(k)[:60] for k in unknown[:5])
            raise KwsError(f"unknown frontend config key(s): {shown}; expected a subset of {sorted(known)}")
        for k, v in d.items():
            if k in _INT_RANGES:
                ok = isinstance(v, int) and not isinstance(v, bool)
                want = "an int"
            elif k in _FLOAT_FIELDS:
                ok = isinstance(v, (int, float)) and not isinstance(v, bool)
                want = "a number"
            else:  # kind
                ok = isinstance(v, str)
                want = "a string"
            if not ok:
                raise KwsError(f"frontend config key {k!r} must be {want}, got {type(v).__name__} {repr(v)[:60]}")
        return cls(**dict(d))


# --------------------------------------------------------------------------------------------
# per-config constants (built once) and the shared block computation
# --------------------------------------------------------------------------------------------

def librosa_matrices(config: "FrontendConfig") -> dict:
    """The front-end's constants as librosa defines them, for a config:
    ``window`` float64 [n_fft] (periodic Hann of win_length, centred), ``mel`` float32
    [n_mels, n_fft//2+1] (``librosa.filters.mel``, Slaney), and for ``kind="mfcc"`` ``dct``
    float64 [n_mfcc, n_mels] (the orthonormal DCT-II ``librosa.feature.mfcc`` applies).
    Model files carry these matrices, so inference never needs librosa (nor its ~200 MB of
    numba/scipy in memory)."""
    import librosa
    import scipy.fft

    c = config
    win = librosa.filters.get_window("hann", c.win_length, fftbins=True)
    out = {"window": np.ascontiguousarray(librosa.util.pad_center(win, size=c.n_fft), dtype=np.float64)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty filters are reported as KwsError by _Plan
        out["mel"] = librosa.filters.mel(sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels,
                                         fmin=c.fmin, fmax=c.fmax).astype(np.float32)
    if c.kind == "mfcc":
        out["dct"] = scipy.fft.dct(np.eye(c.n_mels), type=2, norm="ortho", axis=0)[: c.n_mfcc]
    return out


def matrix_shapes(config: "FrontendConfig") -> dict:
    """name -> (dtype name, shape) of the matrices a config needs (see librosa_matrices)."""
    c = config
    shapes = {"window": ("float64", (c.n_fft,)), "mel": ("float32", (c.n_mels, c.n_fft // 2 + 1))}
    if c.kind == "mfcc":
        shapes["dct"] = ("float64", (c.n_mfcc, c.n_mels))
    return shapes


class _Plan:
    """Immutable per-config constants: window, gathered mel weights, DCT, reduction trees."""

    def __init__(self, config: FrontendConfig, matrices: dict | None = None):
        m = librosa_matrices(config) if matrices is None else matrices
        for name, (dtype, shape) in matrix_shapes(config).items():
            a = m.get(name)
            if not isinstance(a, np.ndarray) or a.shape != shape or a.dtype != dtype \
                    or not np.isfinite(a).all():
                raise KwsError(f"frontend matrix {name!r} must be finite {dtype} {shape}")
        c = config
        self.config = c
        self.n_fft, self.hop = c.n_fft, c.hop_length
        self.n_bins = c.n_fft // 2 + 1
        self.n_mels, self.n_features = c.n_mels, c.n_features
        self.mfcc = c.kind == "mfcc"
        self.window = np.ascontiguousarray(m["window"], dtype=np.float64)
        mel = m["mel"]
        if (mel < 0).any():
            raise KwsError("frontend matrix 'mel' has negative weights")
        nz = mel > 0
        empty = np.flatnonzero(~nz.any(axis=1))
        if empty.size:
            raise KwsError(f"mel filterbank has {empty.size} empty band(s) (e.g. band {empty[0]}): "
                           f"n_mels={c.n_mels} is too many for n_fft={c.n_fft} between "
                           f"{c.fmin:g} and {c.fmax:g} Hz; use fewer bands or a larger n_fft")
        self.mel_matrix = mel  # librosa's matrix, [n_mels, n_bins], kept for reference/tests
        # each band as its run of bins from the first to the last non-zero weight
        first = nz.argmax(axis=1)
        last = self.n_bins - 1 - nz[:, ::-1].argmax(axis=1)
        weights = np.concatenate([mel[b, first[b]:last[b] + 1] for b in range(c.n_mels)])
        if self.mfcc:
            self.dct_matrix = np.ascontiguousarray(m["dct"], dtype=np.float64)  # [n_mfcc, n_mels]
        else:
            self.dct_matrix = None
        self.band_first = first.astype(np.int32)
        self.band_len = (last - first + 1).astype(np.int32)
        self.band_weight = weights.astype(np.float64)
        self.core = _kernels.FrontendCore(c.n_fft, self.window, self.band_first, self.band_len,
                                          self.band_weight, self.dct_matrix)
        for a in (self.window, self.mel_matrix, self.dct_matrix, self.band_first, self.band_len,
                  self.band_weight):
            if a is not None:
                a.flags.writeable = False


@functools.lru_cache(maxsize=16)
def _plan(config: FrontendConfig) -> _Plan:
    return _Plan(config)


def _run(p: _Plan, samples: np.ndarray, offset: int, n_frames: int, out: np.ndarray) -> None:
    """Frames ``0..n_frames-1`` starting at ``samples[offset]`` (C-contiguous float64) into
    ``out``: one C call, each frame computed alone."""
    p.core.run(samples, offset, p.hop, n_frames, out)


# --------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------

MAX_ABS = 1e30
"""Largest accepted |sample| (audio is nominally in [-1, 1]); keeps every intermediate finite."""


_INT16 = np.dtype(np.int16)


def _check_audio(audio: Any, what: str = "audio") -> np.ndarray:
    """``audio`` as a validated 1-D real float or int16 array (not converted, no copy).

    Raises ValueError (with what to do) for anything ``features``/``Frontend.process`` refuse;
    ``kws.detector`` uses it to check audio before resampling.
    """
    if isinstance(audio, np.ndarray):
        a = audio
    else:
        try:
            a = np.asarray(audio)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{what} must be a 1-D numeric array of samples: {e}") from None
    dt = a.dtype
    if dt.kind == "f" or dt == _INT16:
        if a.ndim != 1:
            hint = ""
            if a.ndim == 2:
                hint = (f"; for multi-channel audio of shape {a.shape} mix down with x.mean(axis=1) "
                        f"or pick one channel with x[:, 0] (frames x channels layout)")
            raise ValueError(f"{what} must be 1-D mono samples, got a {a.ndim}-D array{hint}")
        # Refuse samples that are NaN, inf or beyond MAX_ABS: a per-sample rule, so batch and
        # streaming refuse the same audio.  (min/max propagate NaN, which fails both tests.)
        if dt.kind == "f" and a.shape[0] and not (
                -MAX_ABS <= float(np.minimum.reduce(a)) and float(np.maximum.reduce(a)) <= MAX_ABS):
            bad = ~np.isfinite(a)
            if bad.any():
                raise ValueError(f"{what} contains NaN or infinite values (first at sample "
                                 f"{int(np.flatnonzero(bad)[0])})")
            raise ValueError(f"{what} has samples of magnitude up to {float(np.abs(a).max()):.3g}; "
                             f"audio must be within [-1, 1] (anything beyond {MAX_ABS:g} is refused)")
        return a
    if dt.kind == "c":
        raise ValueError(f"{what} is complex ({dt}); pass real samples (e.g. np.real(x) if that is meant)")
    if dt.kind in "iu":
        raise ValueError(f"{what} has integer dtype {dt}; only int16 PCM is accepted -- convert other "
                         f"integer formats to float32 in [-1, 1]")
    raise ValueError(f"{what} must be numeric samples (float32/float64 in [-1, 1] or int16), "
                     f"got dtype {dt}")


def _store(dst: np.ndarray, a: np.ndarray) -> None:
    """Copy checked samples into float64 ``dst``: exact for float16/32/64; int16 * 2**-15 exact."""
    np.copyto(dst, a, casting="same_kind")
    if a.dtype == _INT16:
        np.multiply(dst, 1.0 / 32768.0, dst)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------

def features(audio: Any, config: FrontendConfig = FrontendConfig(),
             matrices: dict | None = None) -> np.ndarray:
    """Front-end features of a whole clip.

    Parameters
    ----------
    audio : np.ndarray, 1-D
        Mono samples at ``config.sample_rate``: float32/float64 nominally in [-1, 1], or int16
        (scaled by 1/32768).  2-D, complex, non-numeric, NaN or infinite input raises ValueError.
    config : FrontendConfig

    Returns
    -------
    np.ndarray, float32, shape ``[config.frames(len(audio)), config.n_features]``
        Log-mel energies in dB (``kind="logmel"``) or MFCCs (``kind="mfcc"``), one row per
        10 ms hop by default.  Fewer than ``n_fft`` samples give shape ``(0, n_features)``.
        Bit-identical to feeding the same samples through ``Frontend(config).process`` in any
        chunking.

    >>> import numpy as np
    >>> t = np.arange(16000) / 16000
    >>> x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    >>> f = features(x)
    >>> f.shape, f.dtype
    ((97, 40), dtype('float32'))
    >>> int(f[0].argmax())        # 440 Hz falls in mel band 5
    5
    """
    if not isinstance(config, FrontendConfig):
        raise TypeError(f"config must be a FrontendConfig, got {type(config).__name__}")
    a = _check_audio(audio)
    p = _plan(config) if matrices is None else _Plan(config, matrices)
    n = config.frames(a.shape[0])
    out = np.empty((n, p.n_features), np.float32)
    if n:
        x = np.empty(a.shape[0], np.float64)
        _store(x, a)
        _run(p, x, 0, n, out)
    return out


class Frontend:
    """Streaming front-end: ``process(chunk)`` returns the frames completed by ``chunk``.

    Frame ``i`` covers samples ``[i*hop_length, i*hop_length + n_fft)`` of everything fed since
    construction or ``reset()``; it is returned by the call that supplies its last sample.  The
    concatenated outputs are bit-identical to ``features(all_samples, config)``.  Keeps fewer than
    ``n_fft`` pending samples between calls.  Not thread-safe (one instance per stream).

    Attributes
    ----------
    config : FrontendConfig
    samples_seen : int
        Samples received (all ``process`` calls since construction / ``reset``).
    frames_emitted : int
        Frames returned so far; the next frame starts at sample ``frames_emitted * hop_length``.

    >>> import numpy as np
    >>> fe = Frontend(FrontendConfig(kind="mfcc", n_mfcc=13))
    >>> fe.process(np.zeros(400, np.float32)).shape    # not a full 512-sample frame yet
    (0, 13)
    >>> fe.process(np.zeros(1200, np.int16)).shape     # 1600 samples -> frames 0..6
    (7, 13)
    >>> fe.samples_seen, fe.frames_emitted
    (1600, 7)
    """

    def __init__(self, config: FrontendConfig = FrontendConfig(), matrices: dict | None = None):
        if not isinstance(config, FrontendConfig):
            raise TypeError(f"config must be a FrontendConfig, got {type(config).__name__}")
        self.config = config
        self._p = _plan(config) if matrices is None else _Plan(config, matrices)
        self.reset()

    def reset(self) -> None:
        """Forget all audio: the next sample fed is sample 0 of a new stream."""
        p = self._p
        self._cap = p.n_fft + max(p.hop, min(32 * p.hop, 16384))  # usual buffer size
        self._buf = np.empty(self._cap, np.float64)
        self._start = 0  # _buf[_start:_end] pending; _buf[_start] is the next frame's first sample
        self._end = 0
        self._skip = 0   # samples still to drop before the next frame (only if hop_length > n_fft)
        self.samples_seen = 0
        self.frames_emitted = 0

    def process(self, chunk: Any) -> np.ndarray:
        """Feed ``chunk`` and return the frames it completes.

        Parameters
        ----------
        chunk : np.ndarray, 1-D
            The next mono samples at ``config.sample_rate``, any length including 0:
            float32/float64 nominally in [-1, 1], or int16 (scaled by 1/32768).  Bad input
            raises ValueError and leaves the stream unchanged.

        Returns
        -------
        np.ndarray, float32, shape ``[new_frames, n_features]``
            Frames ``frames_emitted .. frames_emitted + new_frames - 1`` (counted before the
            call), i.e. every frame whose last sample has now arrived.

        >>> import numpy as np
        >>> fe = Frontend()
        >>> sum(fe.process(np.zeros(1, np.float32)).shape[0] for _ in range(16000))
        97
        """
        return self._process(_check_audio(chunk, "chunk"))

    def _process(self, a: np.ndarray) -> np.ndarray:
        """``process`` of samples ``_check_audio`` already accepted (the Detector checks them
        once, as they arrive)."""
        n = a.shape[0]
        self.samples_seen += n
        if self._skip:
            k = min(self._skip, n)
            a = a[k:]
            n -= k
            self._skip -= k
        p = self._p
        start, end = self._start, self._end
        buf = self._buf
        if end + n > buf.shape[0]:  # compact (pending < n_fft samples) or grow for a big chunk
            have = end - start
            new = np.empty(max(self._cap, have + n), np.float64)
            new[:have] = buf[start:end]
            self._buf = buf = new
            start, end = 0, have
        _store(buf[end:end + n], a)
        end += n
        avail = end - start
        if avail < p.n_fft:
            self._start, self._end = start, end
            return np.empty((0, p.n_features), np.float32)
        nf = 1 + (avail - p.n_fft) // p.hop
        out = np.empty((nf, p.n_features), np.float32)
        _run(p, buf, start, nf, out)
        self.frames_emitted += nf
        used = nf * p.hop
        if used >= avail:
            self._skip = used - avail
            start = end = 0
        else:
            start += used
            if buf.shape[0] > self._cap:  # drop the big buffer a big chunk needed
                have = end - start
                self._buf = np.empty(self._cap, np.float64)
                self._buf[:have] = buf[start:end]
                start, end = 0, have
        self._start, self._end = start, end
        return out
