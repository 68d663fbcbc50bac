"""Realistic acoustic conditions for training clips (`kws train --acoustics realistic`).

    ac = Acoustics.for_data("/work/data/v1-12", seed=0)
    aug = Augment(None, acoustics=ac)      # speed / shift / volume, then rooms, backgrounds, channel
    y = aug(x, rng)

Per clip (float32 [N] or a batch [B, N]), three steps, each with its own probability:

1. room (`p_reverb`): convolution (scipy.signal.fftconvolve) with one impulse response of a bank
   of `n_rirs` simulated shoebox rooms (kws.data.streams.random_rir: pyroomacoustics, 3-10 x 3-8 x
   2.4-4 m, RT60 U(0.15, 0.9) s, random source and microphone places), built once from the seed.
   The output is aligned on the response's direct path (from the room's geometry: the largest
   sample is often a later pile-up of reflections), so the keyword stays where it was in the 1 s
   window, and has the clip's RMS.
2. background (`p_background`): one kind, drawn uniformly from those available, at an SNR drawn
   from U(`snr_db`) over the whole clip (a silent clip gets it at -45 to -20 dBFS instead):
     noise    the data set's `_background_noise_` files;
     ambient  real recordings (sonic-pi-samples `ambi_*`, `vinyl_*`, `misc_*`): 8 s scenes of one
              sample looped with one or two others over it (kws.data.streams.music's recipe);
     music    kws.data.streams.music (a drum or instrument loop with tonal samples over it);
     babble   3-8 random 1 s clips of the data set's `_speech_` folder (its training split: running
              speech of training voices), each at U(-6, 6) dB; without `_speech_`, windows of the
              `babble.wav` noise file; without either, no babble;
     tones    kws.data.noise.tones: sustained harmonic tones, steady, gliding or with vibrato (only
              when asked for: not in DEFAULT_KINDS).
   Ambient and music use only the training part of kws.data.streams.sample_split (~70 % of the
   samples); the test streams of `kws data stream` use the other ~30 %. Windows are drawn from a
   10 ms grid of positions whose 1 s window is not near silent.
3. channel (`p_channel`): a microphone / line: high-pass (2nd-order Butterworth, U(50, 400) Hz),
   low-pass (4th order, U(3, 7.6) kHz; 8 kHz is the Nyquist frequency), one or two peaking EQ
   filters (RBJ cookbook biquad, 200-6000 Hz log-uniform, U(-9, 9) dB, Q U(0.5, 3)), gain U(-6, 6)
   dB, and in half of them light clipping of the loudest 0-2 % of samples. scipy.signal rather
   than audiomentations: 1.7 vs 2.8 ms per clip measured for the same chain, audiomentations 0.43
   requires soxr < 1 (this project runs soxr 1.x) and draws from the global random state.

Every draw comes from the rng passed to `__call__` (all of them first, in a fixed order, whatever
the clip holds): the same rng state gives the same output, bit for bit. The banks (RIRs, windows,
babble clips) are functions of the seed.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from kws.errors import KwsError

SAMPLE_RATE = 16000
CLIP = 16000
KINDS = ("noise", "ambient", "music", "babble", "tones")
DEFAULT_KINDS = KINDS[:4]           # tones came later: older recipes stay as they were
RT60 = (0.15, 0.9)                  # s, training rooms
MAX_ORDER = 30                      # image source order cap: ~15 ms per room (see random_rir)
GRID = 160                          # window starts on a 10 ms grid
BANK_SECONDS = 240                  # music and ambient scenes built per run
MAX_TALKER_CLIPS = 1000             # `_speech_` clips kept in memory for babble (64 MB at most)
TALKERS = (3, 8)
TALKER_DB = 6.0
SILENT_INPUT_DBFS = (-45.0, -20.0)  # background level for clips without signal
SILENCE_DBFS = (-45.0, -15.0)       # level of a `_silence_` item made of a background (`silence`)
HIGH_PASS_HZ = (50.0, 400.0)
LOW_PASS_HZ = (3000.0, 7600.0)
PEAK_HZ = (200.0, 6000.0)
PEAK_DB = 9.0
PEAK_Q = (0.5, 3.0)
CHANNEL_GAIN_DB = 6.0
CLIP_PROB, CLIP_FRACTION = 0.5, 0.02


def _prob(name: str, p) -> float:
    if not 0.0 <= float(p) <= 1.0:
        raise KwsError(f"{name} must be in [0, 1], got {p}")
    return float(p)


def _power(x) -> np.ndarray:
    return np.mean(np.square(x, dtype=np.float64), axis=-1)


# ---------------------------------------------------------------------------- rooms
def rir_bank(n: int, seed: int, rt60=RT60) -> list[tuple[np.ndarray, int]]:
    """`n` room impulse responses (streams.random_rir) as (float32 response cut CLIP samples after
    its direct path, index of the direct path), from the seed."""
    from kws.data.streams import random_rir
    rng = np.random.default_rng([seed, 61])
    out = []
    for _ in range(n):
        h, info = random_rir(rng, rt60=rt60, max_order=MAX_ORDER)
        out.append((h[:info["direct"] + CLIP].astype(np.float32), info["direct"]))
    return out


def reverberate(x: np.ndarray, rir: np.ndarray, direct: int) -> np.ndarray:
    """`x` [N] convolved with `rir`, aligned on its `direct` path (what sample k of `x` sends
    straight to the microphone stays at k; the reverberant tail past N is dropped), at the RMS of
    `x`; float32 [N]."""
    from scipy.signal import fftconvolve
    n = x.size
    y = fftconvolve(x.astype(np.float32), rir)[direct:direct + n]
    py = float(_power(y))
    return (y * np.sqrt(float(_power(x)) / py)).astype(np.float32) if py > 0 else y.astype(np.float32)


# ---------------------------------------------------------------------------- channel
def _peaking_sos(f0: float, gain_db: float, q: float) -> np.ndarray:
    """One second-order section of a peaking EQ (RBJ Audio EQ Cookbook; not in scipy.signal)."""
    a = 10.0 ** (gain_db / 40.0)
    w = 2.0 * math.pi * f0 / SAMPLE_RATE
    alpha, c = math.sin(w) / (2.0 * q), math.cos(w)
    b0, b1, b2 = 1.0 + alpha * a, -2.0 * c, 1.0 - alpha * a
    a0, a1, a2 = 1.0 + alpha / a, -2.0 * c, 1.0 - alpha / a
    return np.array([[b0 / a0, b1 / a0, b2 / a0, 1.0, a1 / a0, a2 / a0]])


def channel(x: np.ndarray, high_hz: float, low_hz: float, peaks, gain_db: float,
            clip_fraction: float) -> np.ndarray:
    """`x` [N] through a microphone / line: Butterworth high-pass (order 2) at `high_hz` and
    low-pass (order 4) at `low_hz`, peaking filters `peaks` [(hz, dB, Q)], gain, then the
    loudest `clip_fraction` of the samples clipped; float32 [N]."""
    from scipy.signal import butter, sosfilt
    sos = np.concatenate([butter(2, high_hz, "highpass", fs=SAMPLE_RATE, output="sos"),
                          butter(4, low_hz, "lowpass", fs=SAMPLE_RATE, output="sos"),
                          *(_peaking_sos(f, g, q) for f, g, q in peaks)])
    y = sosfilt(sos, x.astype(np.float64)) * 10.0 ** (gain_db / 20.0)
    k = int(clip_fraction * y.size)
    if k > 0:
        t = np.partition(np.abs(y), y.size - k - 1)[y.size - k - 1]
        np.clip(y, -t, t, out=y)
    return y.astype(np.float32)


# ---------------------------------------------------------------------------- backgrounds
class WindowBank:
    """1 s windows of a list of recordings: all of them end to end, and the starts (on a 10 ms
    grid) of the windows that lie inside one recording and are not near silent (power at least
    -60 dBFS and 1 % of the recording's mean power)."""

    def __init__(self, items, n: int = CLIP):
        from kws.data.streams import fit
        parts, starts, off = [], [], 0
        for x in items:
            x = np.asarray(x, np.float32).ravel()
            x = fit(x, n) if x.size < n else x
            cs = np.concatenate([[0.0], np.cumsum(np.square(x, dtype=np.float64))])
            s = np.arange(0, x.size - n + 1, GRID)
            p = (cs[s + n] - cs[s]) / n
            ok = (p >= 1e-6) & (p >= 0.01 * cs[-1] / x.size)
            parts.append(x)
            starts.append(off + s[ok])
            off += x.size
        self.n = n
        self.audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        self.starts = np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return int(self.starts.size)

    def window(self, u: float) -> np.ndarray:
        """The window at fraction `u` in [0, 1) of the valid starts."""
        s = self.starts[min(int(u * self.starts.size), self.starts.size - 1)]
        return self.audio[s:s + self.n]


def speech_clips(root: Path, seed: int, limit: int = MAX_TALKER_CLIPS,
                 exclude_families=()) -> tuple[np.ndarray, int]:
    """(float32 [M, CLIP] at unit RMS, number of training clips) of the data set's `_speech_`
    folder: a seeded subset of at most `limit` of its training-split clips (silent ones and those of
    `exclude_families` left out); an empty array when there is no such folder."""
    from kws.data.audio import fit_length, load_wav
    from kws.data.speech_commands import SplitAssigner, family_filter
    from kws.data.tasks import RUNNING_SPEECH
    folder = Path(root) / RUNNING_SPEECH
    if not folder.is_dir():
        return np.zeros((0, CLIP), np.float32), 0
    assign = SplitAssigner(Path(root))
    files = sorted(f"{RUNNING_SPEECH}/{p.name}" for p in folder.iterdir()
                   if p.suffix.lower() == ".wav" and not p.name.startswith("."))
    keep = family_filter(Path(root), exclude_families)
    files = [f for f in files if assign(f) == "training" and keep(f)]
    keep = np.sort(np.random.default_rng([seed, 67]).permutation(len(files))[:limit])
    clips = []
    for k in keep:
        x = fit_length(load_wav(Path(root) / files[k], SAMPLE_RATE), CLIP).astype(np.float64)
        p = float(_power(x))
        if p > 1e-8:
            clips.append((x / math.sqrt(p)).astype(np.float32))
    return (np.stack(clips) if clips else np.zeros((0, CLIP), np.float32)), len(files)


# ---------------------------------------------------------------------------- the whole
class Acoustics:
    """Rooms, backgrounds and channel for training clips (module doc); call as acoustics(y, rng).

    Args:
        rirs: [(response, index of its direct path)] (`rir_bank`); empty: no reverberation.
        banks: {kind: WindowBank} for "noise", "ambient", "music" and, without `talkers`, "babble".
        talkers: float32 [M, N] unit-RMS speech clips summed into babble (`speech_clips`).
        p_reverb, p_background, p_channel: probabilities per clip; snr_db: (lo, hi) in dB.
        info: what the banks were built from (for the model's provenance).
    """

    def __init__(self, rirs=(), banks=None, talkers=None, p_reverb: float = 0.5,
                 p_background: float = 0.8, snr_db=(0.0, 20.0), p_channel: float = 0.5,
                 info: dict | None = None):
        self.rirs = list(rirs)
        self.talkers = np.zeros((0, CLIP), np.float32) if talkers is None else np.asarray(talkers, np.float32)
        self.banks = {k: b for k, b in (banks or {}).items() if len(b)}
        bad = set(self.banks) - set(KINDS)
        if bad:
            raise KwsError(f"Acoustics: unknown background kinds {sorted(bad)}; known: {', '.join(KINDS)}")
        self.kinds = [k for k in KINDS if k in self.banks or (k == "babble" and len(self.talkers))]
        self.p_reverb = _prob("reverb probability", p_reverb) if self.rirs else 0.0
        self.p_background = _prob("background probability", p_background) if self.kinds else 0.0
        self.p_channel = _prob("channel probability", p_channel)
        lo, hi = (float(v) for v in snr_db)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise KwsError(f"Acoustics: bad SNR range {snr_db!r} (LO,HI in dB, LO <= HI)")
        self.snr_db = (lo, hi)
        self.info = dict(info or {})

    @classmethod
    def for_data(cls, root, seed: int = 0, kinds=DEFAULT_KINDS, n_rirs: int = 300, p_reverb: float = 0.5,
                 p_background: float = 0.8, snr_db=(0.0, 20.0), p_channel: float = 0.5,
                 log=None, exclude_families=(), bank_seconds: float = BANK_SECONDS,
                 repitch: float = 0.0) -> Acoustics:
        """The conditions for training on the data set folder `root`: its `_background_noise_`
        and `_speech_` folders, the training part of the sonic-pi samples, `n_rirs` rooms; banks
        drawn from `seed`. `kinds`: the background kinds to use (a subset of KINDS; a kind whose
        source is missing is left out, except ambient and music, which need sonic-pi-samples).
        `bank_seconds` of music and of ambient scenes are built, each sample played up to `repitch`
        semitones off (streams.music): ~20 source samples of each kind are few to learn "not a
        keyword" from (default model s11a at 0.5x4 fired on unseen music samples)."""
        from kws.data.audio import load_wav
        from kws.data.speech_commands import load_noise_dir
        from kws.data.streams import music, music_samples, sonic_pi_samples
        from kws.data.tasks import BACKGROUND_NOISE
        kinds = list(kinds)
        bad = [k for k in kinds if k not in KINDS]
        if bad or not kinds:
            raise KwsError(f"unknown background kind(s) {', '.join(bad) or '(none given)'}; choose "
                           f"from {', '.join(KINDS)}")
        if n_rirs < 0:
            raise KwsError(f"n_rirs must be >= 0, got {n_rirs}")
        if not (8 <= bank_seconds <= 3600 and 0 <= repitch <= 12):
            raise KwsError(f"music banks: seconds must be in [8, 3600] and repitch in [0, 12] semitones, "
                           f"got {bank_seconds} and {repitch}")
        root = Path(root)
        if not root.is_dir():
            raise KwsError(f"data folder {root} does not exist")
        info: dict = {"rooms": n_rirs, "rt60_s": list(RT60), "backgrounds": {},
                      "bank_seconds": bank_seconds, "repitch_semitones": repitch}
        banks: dict = {}
        noise_dir = root / BACKGROUND_NOISE
        if "noise" in kinds and noise_dir.is_dir():
            noise = load_noise_dir(noise_dir)
            if noise:
                banks["noise"] = WindowBank(noise)
                info["backgrounds"]["noise"] = f"{len(noise)} files of {BACKGROUND_NOISE}"
        if "ambient" in kinds or "music" in kinds:
            try:
                samples = sonic_pi_samples("training")
            except KwsError as e:
                raise KwsError(f"{e}; or leave ambient and music out: --backgrounds noise,babble") from None
            rng = np.random.default_rng([seed, 71])
            if "ambient" in kinds:
                # streams.music's recipe on ambient sounds: one looped, one or two over it
                banks["ambient"] = WindowBank([music(bank_seconds, rng, (samples["ambient"],) * 2, repitch)[0]])
                info["backgrounds"]["ambient"] = [n for _, n in samples["ambient"]]
            if "music" in kinds:
                loops, tonal = music_samples(samples=samples)
                banks["music"] = WindowBank([music(bank_seconds, rng, (loops, tonal), repitch)[0]])
                info["backgrounds"]["music"] = [n for _, n in loops + tonal]
        if "tones" in kinds:
            from kws.data.noise import tones
            banks["tones"] = WindowBank([tones(np.random.default_rng([seed, 73]), bank_seconds)])
            info["backgrounds"]["tones"] = f"{bank_seconds:g} s of synthetic harmonic tones"
        talkers = None
        if "babble" in kinds:
            talkers, n_files = speech_clips(root, seed, exclude_families=exclude_families)
            if len(talkers):
                info["backgrounds"]["babble"] = f"{len(talkers)} of {n_files} training clips of _speech_"
            elif (noise_dir / "babble.wav").is_file():
                banks["babble"] = WindowBank([load_wav(noise_dir / "babble.wav", SAMPLE_RATE)])
                info["backgrounds"]["babble"] = "babble.wav of _background_noise_ (no _speech_ folder)"
            elif log:
                log(f"kws train: no {root / '_speech_'} and no babble.wav: training without babble")
        t0 = time.monotonic()
        rirs = rir_bank(n_rirs, seed)
        if log:
            log(f"kws train: {n_rirs} rooms simulated in {time.monotonic() - t0:.1f} s; "
                f"backgrounds: {', '.join(info['backgrounds']) or 'none'}")
        return cls(rirs, banks, talkers, p_reverb=p_reverb, p_background=p_background,
                   snr_db=snr_db, p_channel=p_channel, info=info)

    def describe(self) -> dict:
        """The settings and sources, for the model's provenance."""
        return {"reverb_prob": self.p_reverb, "background_prob": self.p_background,
                "snr_db": list(self.snr_db), "channel_prob": self.p_channel, **self.info}

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Rooms, backgrounds, channel for [N] or [B, N] float audio; float32, same shape (not
        clipped to [-1, 1]: kws.data.augment.Augment does that last)."""
        x = np.asarray(audio, np.float32)
        single = x.ndim == 1
        y = x[None, :].copy() if single else x.copy()
        if y.ndim != 2:
            raise KwsError(f"Acoustics: expected [N] or [B, N] audio, got shape {np.shape(audio)}")
        b, n = y.shape
        d = self.draw(rng, b)
        for r in range(b):
            if d["reverb"][r]:
                y[r] = reverberate(y[r], *self.rirs[d["room"][r]])
            if d["background"][r]:
                w = self.background(self.kinds[d["kind"][r]], d["where"][r], d["n_talkers"][r],
                                    d["talker"][r], d["talker_db"][r], n)
                ps, pw = float(_power(y[r])), float(_power(w))
                if pw > 0:
                    scale = math.sqrt(ps / (pw * 10.0 ** (d["snr_db"][r] / 10.0))) if ps > 1e-10 else \
                        10.0 ** (d["quiet_dbfs"][r] / 20.0) / math.sqrt(pw)
                    y[r] += (w * scale).astype(np.float32)
            if d["channel"][r]:
                peaks = [(d["peak_hz"][r, j], d["peak_db"][r, j], d["peak_q"][r, j]) for j in range(d["n_peaks"][r])]
                y[r] = channel(y[r], d["high_hz"][r], d["low_hz"][r], peaks, d["gain_db"][r], d["clip_fraction"][r])
        return y[0] if single else y

    def draw(self, rng: np.random.Generator, b: int) -> dict:
        """Every random choice for `b` clips ({name: array [b] or [b, k]}), in a fixed order and
        number whatever the clips hold: the same rng state gives the same draws."""
        t, logf = TALKERS[1], (math.log(PEAK_HZ[0]), math.log(PEAK_HZ[1]))
        return {"reverb": rng.random(b) < self.p_reverb,
                "room": rng.integers(0, max(1, len(self.rirs)), size=b),
                "background": rng.random(b) < self.p_background,
                "kind": rng.integers(0, max(1, len(self.kinds)), size=b),
                "snr_db": rng.uniform(*self.snr_db, size=b),
                "quiet_dbfs": rng.uniform(*SILENT_INPUT_DBFS, size=b),
                "where": rng.random(b),
                "n_talkers": rng.integers(TALKERS[0], TALKERS[1] + 1, size=b),
                "talker": rng.integers(0, max(1, len(self.talkers)), size=(b, t)),
                "talker_db": rng.uniform(-TALKER_DB, TALKER_DB, size=(b, t)),
                "channel": rng.random(b) < self.p_channel,
                "high_hz": rng.uniform(*HIGH_PASS_HZ, size=b),
                "low_hz": rng.uniform(*LOW_PASS_HZ, size=b),
                "n_peaks": rng.integers(1, 3, size=b),
                "peak_hz": np.exp(rng.uniform(*logf, size=(b, 2))),
                "peak_db": rng.uniform(-PEAK_DB, PEAK_DB, size=(b, 2)),
                "peak_q": rng.uniform(*PEAK_Q, size=(b, 2)),
                "gain_db": rng.uniform(-CHANNEL_GAIN_DB, CHANNEL_GAIN_DB, size=b),
                "clip_fraction": np.where(rng.random(b) < CLIP_PROB, rng.uniform(0.0, CLIP_FRACTION, size=b), 0.0)}

    def silence(self, rng: np.random.Generator, n: int = CLIP) -> np.ndarray:
        """A `_silence_` item (no keyword, no speech) for the trainer: a window of one background
        kind other than babble (noise, ambient, music or tones, drawn uniformly among those available) at
        U(SILENCE_DBFS) RMS, float32 [n]. Without it v2 never saw music alone as a non-keyword and
        fired on music hundreds of times an hour. All zeros when there is no such kind."""
        kinds = [k for k in self.kinds if k != "babble" and k in self.banks]
        kind, where, dbfs = int(rng.integers(0, max(1, len(kinds)))), rng.random(), rng.uniform(*SILENCE_DBFS)
        if not kinds:
            return np.zeros(n, np.float32)
        w = self.background(kinds[kind], where, 0, (), (), n)
        p = float(_power(w))
        return (w * (10.0 ** (dbfs / 20.0) / math.sqrt(p)) if p > 0 else w).astype(np.float32)

    def background(self, kind: str, where: float, n_talkers: int, talker, talker_db, n: int) -> np.ndarray:
        """One window [n] of background `kind` (float64; its level is set by the caller)."""
        if kind == "babble" and len(self.talkers):         # summed from the talkers per clip
            g = 10.0 ** (np.asarray(talker_db[:n_talkers]) / 20.0)
            w = (self.talkers[np.asarray(talker[:n_talkers])].astype(np.float64) * g[:, None]).sum(0)
        else:
            w = self.banks[kind].window(where).astype(np.float64)
        return w if w.size == n else np.resize(w, n)          # other clip lengths: cut or repeat
