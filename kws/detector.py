"""Streaming keyword detector: audio chunks in, keyword events out.

    >>> import kws, numpy as np
    >>> det = kws.Detector()                            # the default model shipped with kws
    >>> det.feed(np.zeros(1600, np.int16))              # any chunk size, any number of calls
    []

How it works: a streaming frontend turns samples into feature frames (each frame computed once,
bit-identical whatever the chunking); every `hop_ms` the binary FSMN classifies the last window
(model.arch.n_frames frames, 1 s by default); the class posteriors are averaged over the last
`smoothing` hops; a keyword fires when its smoothed posterior reaches `threshold` and it is the
most likely class, then nothing fires for `refractory_s`, and the same keyword fires again only
after its smoothed posterior has dropped below `threshold` (a word's tail still in the next 1 s
window must not count twice): one detection per spoken keyword.
Results depend only on the audio, never on how it was cut into chunks.

Cascade (`confirm="1x8"`): the operating point (`width` x `blocks`) listens; when it would fire,
the same windows (the last `smoothing` hops, from frames already computed: no second frontend) are
scored at the confirm point and smoothed the same way, and the detection is reported only if the
confirm point would fire the same label too (most likely class, at or above its threshold). A
rejected firing changes nothing (no refractory period, not held), so the next hop may try again.
Confirm scores are kept per hop, so a hop is scored at the confirm point at most once, and never
while the listening point stays quiet: the cost stays close to the listening point's. The two
points err on different audio (docs/cascade.md: agreement removed most false alarms of 0.5x4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws.errors import KwsError
from kws.thresholds import resolve_thresholds
from kws.frontend import Frontend, _check_audio
from kws.fsmn.model import NON_KEYWORDS, Model, frontend_matrices, load_model
from kws.fsmn.runtime import BinaryFSMN

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "default.kws"
MAX_SAMPLE_RATE = 768_000
# The network fires on a word's rising edge, ~0.2-0.5 s into it, and the word's tail stays in the
# 1 s window for up to ~1.3 s after that; fragments of it can look like another keyword (the "op" of
# "stop" read as "up" 1.0 s after "stop" fired, found by the microphone test with default model v2).
# 1.5 s covers the tail; two keywords spoken less than 1.5 s apart lose the second.
REFRACTORY_S = 1.5
# Posteriors are averaged over the last 3 hops (600 ms at the 200 ms hop) before a threshold: a
# keyword keeps its score over several hops while a confusable word or a note of music peaks for
# one or two. Chosen on validation audio (calibrate's trade-off, default model v2, 1x8): keyword
# streams' FRR at 5 / 10 / 20 false alarms per hour of keyword-free speech and music 76.8 / 70.7 /
# 65.4 % with 2 hops, 71.0 / 66.5 / 60.7 % with 3; 4 hops of 100 ms (400 ms) 76.0 / 71.0 / 64.9 %;
# 4 hops of 200 ms 72.4 / 65.8 / 59.3 % (better at 0.5x4 by 1-3 points, worse at 1-2 false alarms
# per hour at 1x8: 89.3 against 82.3 / 77.2 %) and 200 ms more delay: 3 it is.
SMOOTHING_HOPS = 3
HOP_MS = 200.0          # how often the network runs by default (the Detector's hop_ms)


@dataclass(frozen=True)
class Detection:
    """A keyword event: `label`, smoothed posterior `score` in [0, 1], and `time_s`, the end of
    the audio window that fired, in seconds since the stream started (or since reset())."""

    label: str
    score: float
    time_s: float
    confirmed_by: str | None = None     # cascade: the confirm point's name ("1x8"), else None
    confirm_score: float | None = None  # its smoothed posterior of `label`


def resolve_operating_point(arch, point):
    """An OperatingPoint of `arch` from "1x8" / "0.5x4" (width x number of blocks) or an
    OperatingPoint; a clear ValueError for anything the model does not declare."""
    from kws.fsmn.config import OperatingPoint
    names = ", ".join(op.name for op in arch.operating_points)
    if isinstance(point, OperatingPoint):
        if point not in arch.operating_points:
            raise ValueError(f"operating point {point.name} is not one this model declares: {names}")
        return point
    if not isinstance(point, str):
        raise ValueError(f"an operating point is a string like '1x8' (width x blocks), "
                         f"got {type(point).__name__}")
    width, x, blocks = point.strip().partition("x")
    try:
        if not x:
            raise ValueError
        return arch.operating_point(float(width), int(blocks))
    except ValueError:
        raise ValueError(f"operating point {point!r}: expected width x blocks, one of {names}") from None


def default_model_path() -> Path:
    if not DEFAULT_MODEL.exists():
        raise KwsError(f"no default model is installed ({DEFAULT_MODEL} is missing); pass "
                       f"model='path/to/model.kws' (train one with `kws train`)")
    return DEFAULT_MODEL


def resolve_model(model) -> Model:
    """None / 'default' -> the shipped model; a path -> loaded; a Model -> itself."""
    if isinstance(model, Model):
        return model
    if model is None or (isinstance(model, str) and model == "default"):
        return load_model(default_model_path())
    if isinstance(model, (str, Path)):
        return load_model(model)
    raise ValueError(f"model must be None, 'default', a path or a kws Model, got {type(model).__name__}")


class Detector:
    """Streaming keyword spotting on a binary FSMN.

    Args:
        model: None or "default" (the model shipped in kws/models/), a .kws path, or a Model.
        width: channel fraction of the operating point (e.g. 1.0, 0.5, 0.25: the model's widths).
        blocks: number of FSMN blocks (e.g. 8, 4, 2: the model's block sets); None = all.
        threshold: smoothed posterior a keyword needs to fire, in (0, 1]: one float for every
            keyword, or a {label: threshold} mapping (keywords it leaves out keep DEFAULT_THRESHOLD),
            or a string as `kws listen --threshold` takes it ("0.6" or "yes=0.7,no=0.8");
            None: the model's calibrated thresholds (model file metadata) at the operating point
            in use (they follow `width` / `blocks` changes) where it has them, else
            DEFAULT_THRESHOLD (0.5).
        keywords: labels to report (default: every label except _unknown_ and _silence_).
        hop_ms: how often the network runs, in milliseconds of audio. 200 ms keeps the default
            operating point under 0.3 % of a core on a 2020s x86 server core (100 ms: ~0.5 %); a
            spoken keyword stays whole inside the 1 s window for several hops either way.
        smoothing: number of hops the posteriors are averaged over (SMOOTHING_HOPS: 3 x 200 ms).
        refractory_s: after a detection, seconds during which nothing else fires (REFRACTORY_S).
        confirm: None, or an operating point the model declares ("1x8", or an OperatingPoint)
            that must agree before a detection is reported (cascade: see the module doc).

    `width` and `blocks` can be changed at any time; the next hop uses them (no reload).
    """

    def __init__(self, model=None, width: float = 1.0, blocks: int | None = None,
                 threshold=None, keywords=None, hop_ms: float = HOP_MS,
                 smoothing: int = SMOOTHING_HOPS, refractory_s: float = REFRACTORY_S, confirm=None):
        self.model = resolve_model(model)
        self.net = BinaryFSMN(self.model)
        self.labels = list(self.model.labels)
        arch, fe = self.model.arch, self.model.frontend
        self.sample_rate = fe.sample_rate
        self._op = arch.operating_point(width, blocks)     # validates both
        self._confirm = None if confirm is None else resolve_operating_point(arch, confirm)
        allowed = [l for l in self.labels if l not in NON_KEYWORDS]
        if keywords is None:
            keywords = allowed
        elif isinstance(keywords, str):
            keywords = [k.strip() for k in keywords.split(",") if k.strip()]
        keywords = list(keywords)
        bad = [k for k in keywords if k not in allowed]
        if bad or not keywords:
            raise ValueError(f"unknown keyword(s) {bad or keywords!r}: this model detects "
                             f"{', '.join(allowed)}")
        self.keywords = keywords
        self._is_keyword = np.zeros(len(self.labels), bool)    # per class: reported?
        self._is_keyword[[self.labels.index(k) for k in keywords]] = True
        self._threshold_arg = threshold
        self._set_thresholds()
        hop_frames = hop_ms / 1000 * fe.sample_rate / fe.hop_length
        if not 1 <= hop_frames <= arch.n_frames or not math.isclose(hop_frames, round(hop_frames)):
            raise ValueError(f"hop_ms={hop_ms} must be a whole number of {1000 * fe.hop_length / fe.sample_rate:g} ms "
                             f"frames between 1 and the window ({arch.n_frames} frames)")
        self.hop_frames = int(round(hop_frames))
        if isinstance(smoothing, bool) or not isinstance(smoothing, int) or smoothing < 1:
            raise ValueError(f"smoothing must be a positive number of hops, got {smoothing!r}")
        self.smoothing = smoothing
        if not isinstance(refractory_s, (int, float)) or refractory_s < 0:
            raise ValueError(f"refractory_s must be >= 0 seconds, got {refractory_s!r}")
        self.refractory_s = float(refractory_s)
        self.reset()

    def _set_thresholds(self) -> None:
        allowed = [l for l in self.labels if l not in NON_KEYWORDS]
        self.thresholds = resolve_thresholds(self._threshold_arg, allowed,
                                             self.model.thresholds_for(self._op))
        # per class, so one comparison serves every label (non-keywords never fire)
        self._thresh = np.array([self.thresholds.get(l, math.inf) for l in self.labels])
        # a cascade's confirm point fires at its own calibrated thresholds
        own = self.thresholds if self._confirm is None else resolve_thresholds(
            self._threshold_arg, allowed, self.model.thresholds_for(self._confirm))
        self._confirm_thresh = np.array([own.get(l, math.inf) for l in self.labels])

    @property
    def threshold(self) -> float | dict[str, float]:
        """The firing threshold: one float if every keyword shares it, else {label: threshold}."""
        values = {self.thresholds[k] for k in self.keywords}
        return values.pop() if len(values) == 1 else {k: self.thresholds[k] for k in self.keywords}

    # ------------------------------------------------------------------ operating point
    @property
    def width(self) -> float:
        return self._op.width

    @width.setter
    def width(self, value: float) -> None:
        self._op = self.model.arch.operating_point(value, len(self._op.blocks))
        self._set_thresholds()

    @property
    def blocks(self) -> int:
        return len(self._op.blocks)

    @blocks.setter
    def blocks(self, value: int | None) -> None:
        self._op = self.model.arch.operating_point(self._op.width, value)
        self._set_thresholds()

    @property
    def operating_point(self):
        return self._op

    @property
    def confirm(self):
        """The confirm point (an OperatingPoint) of a cascade, or None."""
        return self._confirm

    # ------------------------------------------------------------------ streaming
    def reset(self) -> None:
        """Forget all audio: times restart at 0."""
        arch = self.model.arch
        self._frontend = Frontend(self.model.frontend, frontend_matrices(self.model))
        # the last frames: one window, plus (smoothing - 1) hops of history when a confirm point
        # re-scores past windows; the network's window is a view of its end
        history = 0 if self._confirm is None else (self.smoothing - 1) * self.hop_frames
        self._ring = np.zeros((arch.n_frames + history, arch.n_features), np.float32)
        self._window = self._ring[history:]
        self._frames = 0                  # frames produced since reset
        self._next_run = arch.n_frames    # frame count at which the network runs next
        # the last `smoothing` hops' posteriors, oldest first (rows shift up; the mean adds them
        # in that order, as np.mean over the list of them did)
        self._recent = np.zeros((self.smoothing, len(self.labels)), np.float32)
        self._quiet_until = -math.inf
        self._held = None        # index of the last keyword fired, until its score drops below threshold
        self._resampler = None
        self._pending, self._pending_n = [], 0   # samples not yet given to the frontend
        self._in_rate = self.sample_rate
        self.last_scores = None           # smoothed posteriors of the last hop (for UIs)
        self.inferences = 0
        self._confirmed = {}              # hop index -> scores at the confirm point
        self.confirm_inferences = 0

    def feed(self, audio, sample_rate: int = 16000) -> list[Detection]:
        """Feed mono audio (int16, float32 or float64; any length) and return new detections.

        Audio at another `sample_rate` is resampled (soxr, streaming) to the model's rate.
        """
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
                or not 0 < sample_rate <= MAX_SAMPLE_RATE:
            raise ValueError(f"sample_rate must be a positive integer number of Hz up to "
                             f"{MAX_SAMPLE_RATE}, got {sample_rate!r}")
        x = _check_audio(audio)
        # float64 is exact for int16 / 32768 and float32, and what the frontend computes in
        x = x.astype(np.float64) * (1.0 / 32768.0) if x.dtype == np.int16 else x.astype(np.float64, copy=False)
        if sample_rate != self.sample_rate:
            x = self._resample(x, int(sample_rate))
        elif self._resampler is not None:
            raise ValueError("sample_rate changed in the middle of a stream; call reset() first")
        # Hold samples until the next scheduled inference has all its frames: each frontend call
        # has a fixed cost (~4 us of its ~7 us for one frame), and the frames (hence results) are
        # the same either way.
        self._pending.append(x)
        self._pending_n += len(x)
        fe = self.model.frontend
        if self._frontend.samples_seen + self._pending_n < (self._next_run - 1) * fe.hop_length + fe.n_fft:
            return []
        chunk = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        self._pending, self._pending_n = [], 0
        return self._consume(self._frontend._process(chunk))   # checked above

    def _resample(self, x: np.ndarray, rate: int) -> np.ndarray:
        import soxr
        if self._resampler is None:
            if self._frontend.samples_seen or self._pending_n:
                raise ValueError("sample_rate changed in the middle of a stream; call reset() first")
            self._resampler = soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32")
            self._in_rate = rate
        elif rate != self._in_rate:
            raise ValueError("sample_rate changed in the middle of a stream; call reset() first")
        return self._resampler.resample_chunk(np.ascontiguousarray(x, dtype=np.float32)).astype(np.float64)

    def _consume(self, frames: np.ndarray) -> list[Detection]:
        out = []
        ring = self._ring
        n_ring = ring.shape[0]
        fe = self.model.frontend
        i = 0
        while i < len(frames):
            # copy frames up to the next scheduled run into the sliding ring
            take = min(len(frames) - i, self._next_run - self._frames)
            chunk = frames[i:i + take]
            if take >= n_ring:
                ring[:] = chunk[-n_ring:]
            else:    # slide left by `take` frames (numpy copes with the overlap)
                ring[:-take] = ring[take:]
                ring[-take:] = chunk
            self._frames += take
            i += take
            if self._frames == self._next_run:
                self._next_run += self.hop_frames
                end_s = ((self._frames - 1) * fe.hop_length + fe.n_fft) / fe.sample_rate
                det = self._hop(end_s)
                if det:
                    out.append(det)
        return out

    def _hop(self, end_s: float) -> Detection | None:
        scores = self.net.scores(self._window, self._op)
        self.inferences += 1
        recent = self._recent
        recent[:-1] = recent[1:]
        recent[-1] = scores
        n = self._n_recent()
        smooth = np.add.reduce(recent[-n:], axis=0) / n
        self.last_scores = smooth
        if self._held is not None and smooth[self._held] < self._thresh[self._held]:
            self._held = None                                   # re-armed
        if end_s < self._quiet_until:
            return None
        best = int(np.argmax(smooth))
        if self._is_keyword[best] and smooth[best] >= self._thresh[best] and best != self._held:
            confirm = None
            if self._confirm is not None:
                confirm = self._confirm_scores()
                if int(np.argmax(confirm)) != best or confirm[best] < self._confirm_thresh[best]:
                    return None                                 # the confirm point disagrees
            self._quiet_until = end_s + self.refractory_s
            self._held = best
            if confirm is None:
                return Detection(self.labels[best], float(smooth[best]), round(end_s, 3))
            return Detection(self.labels[best], float(smooth[best]), round(end_s, 3),
                             self._confirm.name, float(confirm[best]))
        return None

    def _n_recent(self) -> int:
        """Hops in the smoothing buffer: every hop since reset(), at most the buffer's rows."""
        return min(self.inferences, self._recent.shape[0])

    def _confirm_scores(self) -> np.ndarray:
        """Confirm-point posteriors averaged over the windows the listening point's smoothing
        covered (the last _n_recent() hops), each hop scored at most once."""
        hop = self.inferences - 1
        wanted = range(hop - self._n_recent() + 1, hop + 1)
        self._confirmed = {h: self._confirmed[h] for h in wanted if h in self._confirmed}
        n_win, n_ring = self._window.shape[0], self._ring.shape[0]
        for h in wanted:
            if h not in self._confirmed:
                end = n_ring - (hop - h) * self.hop_frames
                self._confirmed[h] = self.net.scores(self._ring[end - n_win:end], self._confirm)
                self.confirm_inferences += 1
        return np.mean([self._confirmed[h] for h in wanted], axis=0)
