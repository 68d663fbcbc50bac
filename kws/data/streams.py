"""Long keyword-free test streams (`kws data stream`), for `kws eval --negative-stream`:

* `speech`: running speech (sentences without any keyword) from the TESTING split's voices (never
  trained or tuned on), over a background that changes every 20-40 s between quiet, synthetic
  noise, music and babble of 3-8 testing-split talkers, at 0-20 dB SNR; half of the utterances
  pass through a simulated room (pyroomacoustics shoebox, RT60 0.2-0.9 s).
* `music`: music alone (real instrument recordings of Debian's `sonic-pi-samples`: a drum or
  instrument loop with one or two ambient, guitar or bass samples over it, 8 s segments).
Both use only the evaluation ~30 % of the sonic-pi samples (`sample_split`) and of the sentences
(`sentences`); training (kws.data.acoustics, `kws data synth`'s `_speech_`) uses the rest.
`kws data stream --split validation` makes streams for tuning instead (`kws calibrate`): the
VALIDATION split's voices with the training part of the samples and sentences, so nothing a
threshold is tuned on is in the test streams.

Every stream comes with a CSV (`FILE.csv`) of what is where: one row per utterance (voice, text,
reverberation) and per background segment (kind, name, SNR). Everything is drawn from the seed.
Sentences: Debian's `fortunes` when installed (`/usr/share/games/fortunes`), filtered to 4-30
words without any keyword, digit or stray symbol; else everyday word salad (kws.data.noise).
"""

from __future__ import annotations

import hashlib
import math
import re
import zlib
from pathlib import Path

import numpy as np

from kws.errors import KwsError

SAMPLE_RATE = 16000
FORTUNES = Path("/usr/share/games/fortunes")
MUSIC_DIR = Path("/usr/share/sonic-pi/samples")
BACKGROUNDS = ("quiet", "noise", "music", "babble")
NOISES = ("white_noise", "pink_noise", "brown_noise", "hum_50hz", "fan", "running_tap", "clinks")
SPEECH_DBFS = (-28.0, -18.0)          # utterance RMS
QUIET_DBFS = -55.0                     # the floor of every segment


def _rms(x) -> float:
    return math.sqrt(float(np.mean(np.square(x, dtype=np.float64)))) or 1e-12


def fit(x, n: int) -> np.ndarray:
    """`x` cut or zero-padded to exactly `n` samples (sample counts from seconds can round either
    way: a 30 min stream once failed on a segment one sample short)."""
    x = np.asarray(x, np.float32)[:n]
    return x if x.size == n else np.concatenate([x, np.zeros(n - x.size, np.float32)])


def _at_dbfs(x, dbfs: float) -> np.ndarray:
    return (np.asarray(x, np.float64) * (10 ** (dbfs / 20) / _rms(x))).astype(np.float32)


# ---------------------------------------------------------------------------- text
def sentences(exclude: set[str], part: str | None = None) -> list[str]:
    """Candidate sentences without any word of `exclude` (lower case), from `fortunes`; [] when
    it is not installed. `part`: "training" (70 %, for `kws data synth`'s `_speech_` windows) or
    "evaluation" (the other 30 %, for the test streams), split by a hash of the sentence so no
    sentence is both trained on and tested; None: all."""
    if part not in (None, "training", "evaluation"):
        raise KwsError(f"sentences: part must be 'training' or 'evaluation', got {part!r}")
    if not FORTUNES.is_dir():
        return []
    out = []
    for f in sorted(p for p in FORTUNES.iterdir() if p.is_file() and not p.suffix):
        try:
            text = f.read_text(encoding="utf-8", errors="ignore")
        except OSError:
            continue
        for entry in text.split("\n%\n"):
            for s in re.split(r"(?<=[.!?])\s+", " ".join(entry.split())):
                words = re.findall(r"[a-z']+", s.lower())
                if (4 <= len(words) <= 30 and not set(words) & exclude
                        and re.fullmatch(r"[A-Za-z ,.;:!?'\"()-]+", s)
                        and (part is None or (zlib.crc32(s.encode()) % 10 < 7) == (part == "training"))):
                    out.append(s)
    return out


# ---------------------------------------------------------------------------- rooms and music
def random_rir(rng: np.random.Generator, rt60=(0.2, 0.9), max_order: int = 20) -> tuple[np.ndarray, dict]:
    """(impulse response float64, {"rt60_s", "room_m", "direct"}) of a random shoebox room, simulated with
    pyroomacoustics' image source method: 3-10 x 3-8 x 2.4-4 m, absorption for an RT60 drawn from
    U(rt60) s by Sabine's formula, source and microphone at random places 0.5 m or more from the
    walls. `max_order` caps the reflections (cost; the tail of the most reverberant rooms is cut:
    measured RT60 / target RT60 had median 1.03 with 30 over 40 rooms of 0.15-0.9 s). "direct": the
    sample of the direct path (distance / c, plus pyroomacoustics' fractional-delay filter's half
    length); the response's largest sample is often a later pile-up of reflections (15 ms later in
    1 of 12 rooms tried), so it is computed from the geometry."""
    import pyroomacoustics as pra
    dims = [rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.4, 4)]
    target = float(rng.uniform(*rt60))
    try:
        absorption, order = pra.inverse_sabine(target, dims)
    except ValueError:                       # the room cannot be that reverberant: a livelier one
        absorption, order = 0.3, 12
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(order, max_order))
    pos = lambda: [rng.uniform(0.5, d - 0.5) for d in dims]     # noqa: E731
    room.add_source(pos())
    room.add_microphone(pos())
    room.compute_rir()
    distance = float(np.linalg.norm(room.sources[0].position - room.mic_array.R[:, 0]))
    direct = int(round(distance / room.c * SAMPLE_RATE + (pra.constants.get("frac_delay_length") - 1) / 2))
    return np.asarray(room.rir[0][0], np.float64), {"rt60_s": round(target, 2), "room_m": [round(d, 1) for d in dims],
                                                    "direct": direct}


def room_reverb(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """`x` as heard in a random shoebox room (`random_rir`), same RMS, 0.5 s of tail kept."""
    from scipy.signal import fftconvolve
    rir, info = random_rir(rng)
    y = fftconvolve(x.astype(np.float64), rir)[: len(x) + SAMPLE_RATE // 2]
    return _at_dbfs(y, 20 * math.log10(_rms(x))), info


# sonic-pi-samples by kind (file name prefix); `music` plays loops with tonal and "ambi" samples over them
SAMPLE_KINDS = {"loops": ("loop",), "tonal": ("guit", "bass"), "ambient": ("ambi", "vinyl", "misc")}
EVALUATION_SHARE = 0.3


def sample_split(names) -> dict[str, dict[str, list[str]]]:
    """{"training": {kind: [names]}, "evaluation": {kind: [names]}} of sonic-pi sample names (file
    stems; other names are left out): in each kind of SAMPLE_KINDS the names sorted by SHA-256 of
    the name, the first ~30 % (at least one when there are two or more) for evaluation (the `kws
    data stream` streams), the rest for training (`kws train --acoustics realistic`), so no sample
    is both trained on and tested. Depends only on the names, not on their order."""
    names = set(names)
    out: dict[str, dict[str, list[str]]] = {"training": {}, "evaluation": {}}
    for kind, prefixes in SAMPLE_KINDS.items():
        members = sorted((n for n in names if n.split("_")[0] in prefixes),
                         key=lambda n: hashlib.sha256(n.encode()).hexdigest())
        k = max(1, round(EVALUATION_SHARE * len(members))) if len(members) >= 2 else 0
        out["evaluation"][kind] = sorted(members[:k])
        out["training"][kind] = sorted(members[k:])
    return out


def sonic_pi_samples(part: str) -> dict[str, list[tuple[np.ndarray, str]]]:
    """{kind: [(float32 16 kHz mono audio, name)]} of one part ("training" or "evaluation") of
    `sample_split` over the installed sonic-pi-samples."""
    import soundfile as sf
    import soxr
    if part not in ("training", "evaluation"):
        raise KwsError(f"sonic_pi_samples: part must be 'training' or 'evaluation', got {part!r}")
    if not MUSIC_DIR.is_dir():
        raise KwsError(f"music and ambient sounds need Debian's sonic-pi-samples ({MUSIC_DIR} is "
                       "missing): apt-get install sonic-pi-samples (scripts/install-tts.sh installs it)")

    def load(name):
        x, sr = sf.read(MUSIC_DIR / f"{name}.flac", dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        return (soxr.resample(x, sr, SAMPLE_RATE) if sr != SAMPLE_RATE else x), name

    split = sample_split(p.stem for p in MUSIC_DIR.glob("*.flac"))[part]
    return {kind: [load(n) for n in names] for kind, names in split.items()}


def music_samples(part: str = "evaluation", samples: dict | None = None):
    """(loops, tonal) for `music` from one part of `sample_split` (or from `samples`, what
    `sonic_pi_samples` returned); tonal: guitar, bass and "ambi" samples."""
    s = samples or sonic_pi_samples(part)
    return s["loops"], s["tonal"] + [a for a in s["ambient"] if a[1].startswith("ambi_")]


def varispeed(x: np.ndarray, semitones: float) -> np.ndarray:
    """`x` played `semitones` higher (and faster by the same factor), as a tape or turntable does:
    a resampling (soxr), float32."""
    import soxr
    if semitones == 0:
        return np.asarray(x, np.float32)
    return soxr.resample(np.asarray(x, np.float32), SAMPLE_RATE, SAMPLE_RATE * 2.0 ** (-semitones / 12.0))


def music(seconds: float, rng: np.random.Generator, samples=None,
          repitch: float = 0.0) -> tuple[np.ndarray, list[str]]:
    """`seconds` of music at -20 dBFS: 8 s segments of a loop with one or two tonal samples over
    it; returns (audio, names of the samples used). `repitch` > 0: every sample of a segment played
    U(-repitch, repitch) semitones off (`varispeed`), for training banks that vary more than their
    few source samples (the test streams keep 0)."""
    loops, tonal = samples or music_samples()
    seg, out, names = 8 * SAMPLE_RATE, [], []
    shift = (lambda x: varispeed(x, rng.uniform(-repitch, repitch))) if repitch > 0 else (lambda x: x)
    for _ in range(int(math.ceil(seconds / 8))):
        loop, name = loops[rng.integers(len(loops))]
        loop = shift(loop)
        x = np.tile(loop, 1 + seg // max(1, len(loop)))[:seg].astype(np.float64) / _rms(loop)
        names.append(name)
        for _ in range(int(rng.integers(1, 3))):
            t, tname = tonal[rng.integers(len(tonal))]
            t = shift(t)[:seg]
            at = int(rng.integers(0, seg - t.size + 1))
            x[at:at + t.size] += t / _rms(t)
            names.append(tname)
        out.append(_at_dbfs(x, -20.0))
    return np.clip(np.concatenate(out)[: int(seconds * SAMPLE_RATE)], -1, 1), names


# ---------------------------------------------------------------------------- streams
def _babble_segment(say, order, rng, exclude, seconds: float):
    """(audio or None, description) of 3-8 talkers of `order` saying word salad together."""
    from kws.data.noise import babble, babble_text
    talkers = [t for t in (say(order[int(rng.integers(len(order)))], babble_text(rng, exclude, words=60))
                           for _ in range(int(rng.integers(3, 9)))) if t is not None]
    return (babble(talkers, rng, seconds), f"{len(talkers)} talkers") if talkers else (None, "none")


def _voice_order(voices, rng) -> list:
    """The voices in a seeded order, families taking turns (formant voices outnumber the rest
    25 to 1)."""
    fams = {}
    for i in rng.permutation(len(voices)):
        fams.setdefault(voices[i].family, []).append(voices[i])
    return [f[j % len(f)] for j in range(max(map(len, fams.values()))) for f in fams.values()]


def _sayer(renderer):
    from kws.data.engines import RenderError

    def say(voice, text):
        try:
            x, _ = renderer.render(voice, text)
        except RenderError:
            return None
        return x if x.size and _rms(x) > 1e-4 else None
    return say


def _exclude(keywords) -> set[str]:
    return {w for k in keywords for w in re.findall(r"[a-z']+", k.lower().replace("_", " "))}


def babble_stream(minutes: float, voices, keywords, seed: int = 0, log=None) -> tuple[np.ndarray, list[dict]]:
    """(audio, rows) of `minutes` of babble: 3-8 talkers of `voices` (word salad without the
    keywords), a new set every 20-40 s, at -22 dBFS over a -55 dBFS pink floor. `log`: None, or
    called with a progress line every 10 segments."""
    from kws.data.engines import Renderer
    from kws.data.noise import make_noise
    rng = np.random.default_rng([seed, 3])
    n, rows, parts, start = int(minutes * 60 * SAMPLE_RATE), [], [], 0
    order, exclude = _voice_order(voices, rng), _exclude(keywords)
    try:
        say = _sayer(Renderer.for_thread())
        while start < n:
            length = min(n - start, int(rng.uniform(20, 40) * SAMPLE_RATE))
            bg, name = _babble_segment(say, order, rng, exclude, length / SAMPLE_RATE)
            seg = _at_dbfs(fit(make_noise("pink_noise", rng, length / SAMPLE_RATE), length), QUIET_DBFS)
            if bg is not None:
                seg = seg + _at_dbfs(fit(bg, length), -22.0)
            parts.append(seg)
            rows.append({"start_s": round(start / SAMPLE_RATE, 3), "end_s": round((start + length) / SAMPLE_RATE, 3),
                         "kind": "babble", "name": name, "text": "", "snr_db": "", "detail": ""})
            start += length
            if log and len(rows) % 10 == 0:        # babble segments are rendered speech: minutes
                log(f"kws data stream: backgrounds {start / SAMPLE_RATE / 60:.1f} of {minutes:g} min")
    finally:
        Renderer.close_all()
    return np.clip(np.concatenate(parts), -1, 1), rows


def speech_stream(minutes: float, voices, keywords, seed: int = 0, log=None,
                  part: str = "evaluation") -> tuple[np.ndarray, list[dict]]:
    """(audio float32 16 kHz, rows) of `minutes` of keyword-free running speech over changing
    backgrounds (see the module doc). `voices`: the voices to speak (the caller passes testing-split
    ones); `keywords`: words no sentence may contain."""
    from kws.data.engines import Renderer
    from kws.data.noise import babble_text, make_noise
    rng = np.random.default_rng([seed, 1])
    n = int(minutes * 60 * SAMPLE_RATE)
    exclude = _exclude(keywords)
    pool = sentences(exclude, part)
    order = _voice_order(voices, rng)
    rows = []
    track, pos, k = np.zeros(n + SAMPLE_RATE, np.float32), 0, 0
    try:
        say = _sayer(Renderer.for_thread())
        while pos < n:                                          # the speech track
            voice = order[k % len(order)]
            k += 1
            text = pool[rng.integers(len(pool))] if pool else babble_text(rng, exclude, words=int(rng.integers(6, 20)))
            x = say(voice, text)
            if x is None:
                continue
            info = {}
            if rng.random() < 0.5:
                x, info = room_reverb(x, rng)
            x = _at_dbfs(x, rng.uniform(*SPEECH_DBFS))[: n - pos]
            track[pos:pos + x.size] += x
            rows.append({"start_s": round(pos / SAMPLE_RATE, 3), "end_s": round((pos + x.size) / SAMPLE_RATE, 3),
                         "kind": "speech", "name": voice.key, "text": text, "snr_db": "",
                         "detail": f"rt60 {info['rt60_s']} s" if info else "dry"})
            pos += x.size + int(rng.uniform(0.3, 1.5) * SAMPLE_RATE)
            if log and len(rows) % 50 == 0:
                log(f"kws data stream: {pos / SAMPLE_RATE / 60:.1f} of {minutes:g} min of speech")
        track = track[:n]
        samples = None
        start, speech_dbfs = 0, float(np.mean(SPEECH_DBFS))
        while start < n:                                        # the background, segment by segment
            length = min(n - start, int(rng.uniform(20, 40) * SAMPLE_RATE))
            kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
            snr = float(rng.uniform(0, 20))
            sec = length / SAMPLE_RATE
            if kind == "noise":
                name = NOISES[rng.integers(len(NOISES))]
                bg = make_noise(name, rng, sec)
            elif kind == "music":
                samples = samples or music_samples(part)
                bg, used = music(sec, rng, samples)
                name = "+".join(dict.fromkeys(used))[:200]
            elif kind == "babble":
                bg, name = _babble_segment(say, order, rng, exclude, sec)
            else:
                bg, name = None, "floor"
            seg = np.zeros(length, np.float32) if bg is None else _at_dbfs(fit(bg, length), speech_dbfs - snr)
            floor = fit(make_noise("pink_noise", rng, sec), length)
            track[start:start + length] += seg + _at_dbfs(floor, QUIET_DBFS)
            rows.append({"start_s": round(start / SAMPLE_RATE, 3), "end_s": round((start + length) / SAMPLE_RATE, 3),
                         "kind": kind, "name": name, "text": "", "snr_db": "" if bg is None else round(snr, 1),
                         "detail": ""})
            start += length
            if log and len(rows) % 10 == 0:        # babble segments are rendered speech: minutes
                log(f"kws data stream: backgrounds {start / SAMPLE_RATE / 60:.1f} of {minutes:g} min")
    finally:
        Renderer.close_all()
    return np.clip(track, -1, 1), rows


def music_stream(minutes: float, seed: int = 0, part: str = "evaluation") -> tuple[np.ndarray, list[dict]]:
    """(audio, rows) of `minutes` of music alone at -28 to -18 dBFS, 8 s segments."""
    rng = np.random.default_rng([seed, 2])
    samples = music_samples(part)
    out, rows, pos = [], [], 0
    n = int(minutes * 60 * SAMPLE_RATE)
    while pos < n:
        seconds = min(8.0, (n - pos) / SAMPLE_RATE)
        x, names = music(seconds, rng, samples)
        x = _at_dbfs(x, rng.uniform(*SPEECH_DBFS))
        rows.append({"start_s": round(pos / SAMPLE_RATE, 3), "end_s": round((pos + x.size) / SAMPLE_RATE, 3),
                     "kind": "music", "name": "+".join(dict.fromkeys(names)), "text": "", "snr_db": "", "detail": ""})
        out.append(x)
        pos += x.size
    return np.clip(np.concatenate(out)[:n], -1, 1), rows


def tones_stream(minutes: float, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    """(audio, rows) of `minutes` of synthetic harmonic tones alone (kws.data.noise.tones), 8 s
    segments at -28 to -18 dBFS: negatives for `kws calibrate` (synthetic, so no split to keep)."""
    from kws.data.noise import tones
    rng = np.random.default_rng([seed, 3])
    n = int(minutes * 60 * SAMPLE_RATE)
    x, rows, seg = tones(rng, n / SAMPLE_RATE).astype(np.float64), [], 8 * SAMPLE_RATE
    for pos in range(0, n, seg):
        x[pos:pos + seg] = _at_dbfs(x[pos:pos + seg], rng.uniform(*SPEECH_DBFS))
        rows.append({"start_s": round(pos / SAMPLE_RATE, 3), "end_s": round(min(n, pos + seg) / SAMPLE_RATE, 3),
                     "kind": "tones", "name": "tones", "text": "", "snr_db": "", "detail": ""})
    return np.clip(x, -1, 1).astype(np.float32), rows


def write_stream(path: Path, audio: np.ndarray, rows: list[dict]) -> None:
    """The audio (by suffix: .wav or .flac, 16-bit) and `<path>.csv`, each written atomically."""
    import csv
    import io
    import soundfile as sf
    from kws.fileio import atomic_path
    path = Path(path)
    fmt = {".wav": "WAV", ".flac": "FLAC"}.get(path.suffix.lower())
    if fmt is None:
        raise KwsError(f"{path}: the stream file must end in .wav or .flac")
    with atomic_path(path) as tmp:
        sf.write(str(tmp), audio, SAMPLE_RATE, format=fmt, subtype="PCM_16")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["start_s", "end_s", "kind", "name", "text", "snr_db", "detail"])
    w.writeheader()
    w.writerows(rows)
    with atomic_path(Path(str(path) + ".csv")) as tmp:
        Path(tmp).write_text(buf.getvalue())
