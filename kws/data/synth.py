"""`kws data synth`: a Speech Commands-layout data set from offline TTS, noise and variation.

Design (../shared/recipes/speech-data.md, "A generator design that worked"):
  * Words: the keywords, the `_unknown_` words (default: the Speech Commands non-keywords,
    EXTRA_UNKNOWN_WORDS and each keyword's confusable words, kws.data.confusable) and `_speech_`
    (SPEECH_SHARE of the word clips: 1 s windows of keyword-free sentences, `_sentences`).
  * Plan, per word: clip i takes turns between the voice families selected: an espeak-ng formant
    voice, a human-donor voice (MBROLA, flite, festival, pico, RHVoice) and a Kokoro neural voice
    (a third each with every engine), each family cycling a seeded permutation of its voices. Each
    clip draws rate 0.8-1.25 (log-uniform), pitch -3..+3 semitones, level -35..-15 dBFS, shift
    -100..+100 ms and a stationary noise floor 25-50 dB below the speech, from
    rng(seed, word, i): the same options give the same plan, clip by clip.
  * Render, check loudness (kws.data.clip), centre in 1 s (a `_speech_` clip: a 1 s window of the
    sentence, kws.data.clip.speech_window), write 16 kHz mono int16 WAV
    `OUT/<word>/<speaker>_nohash_<n>.wav`; n = that speaker's repeat of that word.
  * A rejected render is retried with the same voice at rate 1 / pitch 0, then with up to
    MAX_ALTERNATES other voices of the same family (rate 1, pitch 0). Alternates are resolved after the
    main pass, in plan order, so their n (after the planned ones) is deterministic.
  * Splits: `validation_list.txt` / `testing_list.txt` by the Speech Commands SHA-1 rule on the speaker
    id; speaker ids are chosen so that voices that sound alike share a split (kws.data.voices).
  * `_background_noise_/`: 9 synthetic noises incl. babble of 6 training-split TTS talkers;
    `_silence_/` (only with --silence-clips N): 1 s cuts of them at random volume U(0, 1).
  * `manifest.csv`, `synth_report.json` (counts, rejection rate per engine, timing, disk),
    `README.md`, `synth_config.json` (the options; a rerun must use the same ones).
  * Resumable: every finished clip is journalled (`.synth_journal.jsonl`, appended by the main
    thread); a rerun skips journalled clips whose file exists and files that exist already.
    All files are written atomically (temp + rename).
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import io
import json
import math
import os
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from kws.data.clip import check_loudness, finish, speech_window
from kws.data.engines import INSTALL_HINT, Renderer, RenderError, check_engines, cpu_count
from kws.data.layout import LIST_FILES, format_list, split_of_speaker, which_set
from kws.data.noise import DESCRIPTIONS, NOISE_NAMES, babble, babble_text, make_noise
from kws.data.tasks import (BACKGROUND_NOISE, RUNNING_SPEECH, SILENCE, V1_OTHER_WORDS,
                            V2_NEW_WORDS, V2_WORDS, parse_words, word_text)
from kws.data.voices import Voice, select_voices
from kws.errors import KwsError
from kws.fileio import atomic_path

GENERATOR_VERSION = 1
SAMPLE_RATE = 16000
MAX_ALTERNATES = 6
# `_speech_` windows of running speech (sentences without a keyword), as a share of the word clips:
# the v2 model's false alarms came from running speech it had never been shown
SPEECH_SHARE = 0.15
# more everyday words for `_unknown_` beyond the Speech Commands words
EXTRA_UNKNOWN_WORDS = ("hello", "okay", "please", "thanks", "music", "water", "light", "table",
                       "window", "morning", "yellow", "number", "open", "close", "paper")
MANIFEST_COLUMNS = ("path", "word", "engine", "voice", "variant", "split", "speaker", "text",
                    "keyword", "attempt", "rate", "pitch_semitones", "level_dbfs", "shift_ms",
                    "noise_floor_db")
JOURNAL = ".synth_journal.jsonl"
CONFIG = "synth_config.json"
REPORT = "synth_report.json"


def default_unknown_words(keywords: list[str]) -> list[str]:
    """Speech Commands' non-keyword words (V1, then the V2 additions, then the 10 standard keywords
    when they are not keywords here) plus EXTRA_UNKNOWN_WORDS, minus `keywords`."""
    pool = list(V1_OTHER_WORDS) + list(V2_NEW_WORDS) + [w for w in V2_WORDS
                                                        if w not in V1_OTHER_WORDS + V2_NEW_WORDS]
    pool += list(EXTRA_UNKNOWN_WORDS)
    return [w for w in pool if w not in set(keywords)]


@dataclass
class SynthOptions:
    """Options of one `kws data synth` run (see kws.data.cli for the flags)."""

    out: Path
    words: list[str]                            # keyword folders ("hey_kiwi")
    unknown_words: list[str] | None = None      # None: default_unknown_words(words)
    per_word: int = 2000
    unknown_per_word: int | None = None         # None: so that unknown clips are 60 % of all
    engines: list[str] | None = None
    voices: list[str] | None = None             # patterns (kws.data.voices.select_voices)
    seed: int = 0
    jobs: int = 0                               # 0: number of CPUs
    silence_clips: int = 0
    speech_clips: int | None = None             # `_speech_` windows; None: SPEECH_SHARE of words'
    confusable: int = 8                         # default unknown words + this many per keyword
    restricted: bool = True
    noise_seconds: float = 60.0
    progress: bool = True

    def resolved(self) -> "SynthOptions":
        o = SynthOptions(**{k: getattr(self, k) for k in self.__dataclass_fields__})
        o.out = Path(o.out)
        o.words = parse_words(o.words)
        if not o.words:
            raise KwsError("no keywords: give --words, e.g. --words yes,no or --words 'hey kiwi'")
        bad = [w for w in o.words if w.startswith("_")]
        if bad:
            raise KwsError(f"word folder names cannot start with '_': {bad}")
        if o.confusable < 0:
            raise KwsError("--confusable must be >= 0")
        unk = parse_words(o.unknown_words)
        if o.unknown_words is None:
            unk = default_unknown_words(o.words)
            if o.confusable:        # words that sound like a keyword: the negatives that matter
                from kws.data.confusable import confusable_word_list
                unk += [w for w in confusable_word_list([word_text(w) for w in o.words], o.confusable)
                        if w not in unk]
        o.unknown_words = [w for w in unk if w not in o.words]
        if o.per_word < 1:
            raise KwsError("--per-word must be >= 1")
        if o.unknown_per_word is None:
            o.unknown_per_word = (math.ceil(1.5 * o.per_word * len(o.words) / len(o.unknown_words))
                                  if o.unknown_words else 0)
        if o.speech_clips is None:
            o.speech_clips = round(SPEECH_SHARE * (o.per_word * len(o.words)
                                                   + o.unknown_per_word * len(o.unknown_words)))
        if o.unknown_per_word < 0 or o.silence_clips < 0 or o.speech_clips < 0:
            raise KwsError("--unknown-per-word, --silence-clips and --speech-clips must be >= 0")
        if not 1.0 <= o.noise_seconds <= 3600.0:
            raise KwsError("--noise-seconds must be between 1 and 3600")
        o.jobs = o.jobs if o.jobs and o.jobs > 0 else cpu_count()
        return o


# ---------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Clip:
    """One planned clip; `voice` / `n` are the planned speaker and repeat (alternates may differ)."""

    key: str
    folder: str
    text: str
    keyword: bool
    index: int
    voice: Voice
    n: int
    rate: float
    pitch: float
    level: float
    shift_ms: float
    floor_db: float
    noise_seed: int

    def rel(self, voice: Voice | None = None, n: int | None = None) -> str:
        v = voice or self.voice
        return f"{self.folder}/{v.speaker_id}_nohash_{self.n if n is None else n}.wav"


def _crc(s: str) -> int:
    return zlib.crc32(s.encode("utf-8"))


def make_plan(words: list[str], unknown_words: list[str], per_word: int, unknown_per_word: int,
              voices: list[Voice], seed: int, speech_clips: int = 0,
              sentences: list[str] | None = None) -> tuple[list[Clip], Counter]:
    """All clips, in order (keywords, unknown words, then `_speech_` windows of `sentences`), and
    planned uses per (speaker, folder).

    The clips of a word take turns between the voice families present (formant, donor, neural:
    a third each when all are selected), each family's voices in a seeded order."""
    clips: list[Clip] = []
    uses: Counter = Counter()
    if speech_clips and not sentences:
        raise KwsError("make_plan: speech clips need sentences")
    for folder, count, kw in [(w, per_word, True) for w in words] + \
                             [(w, unknown_per_word, False) for w in unknown_words] + \
                             [(RUNNING_SPEECH, speech_clips, False)]:
        wseed = _crc(folder)
        pools = []
        for fam, stream in (("formant", 1), ("donor", 2), ("neural", 5)):
            pool = [v for v in voices if v.family == fam]
            if pool:
                r = np.random.default_rng([seed, wseed, stream])
                pools.append([pool[k] for k in r.permutation(len(pool))])
        for i in range(count):
            pool = pools[i % len(pools)]
            j = i // len(pools)
            voice, n = pool[j % len(pool)], j // len(pool)
            r = np.random.default_rng([seed, wseed, i, 3])
            rate = math.exp(r.uniform(math.log(0.8), math.log(1.25)))
            text = sentences[int(r.integers(len(sentences)))] if folder == RUNNING_SPEECH \
                else word_text(folder)
            clips.append(Clip(
                key=f"{folder}#{i}", folder=folder, text=text, keyword=kw, index=i,
                voice=voice, n=n, rate=round(rate, 4), pitch=round(r.uniform(-3.0, 3.0), 3),
                level=round(r.uniform(-35.0, -15.0), 2), shift_ms=round(r.uniform(-100, 100), 1),
                floor_db=round(r.uniform(25.0, 50.0), 2), noise_seed=int(r.integers(2 ** 62))))
            uses[(voice.speaker_id, folder)] += 1
    return clips, uses


def alternates(clip: Clip, voices: list[Voice], seed: int) -> list[Voice]:
    """Other voices of the clip's family, in a seeded order (at most MAX_ALTERNATES)."""
    pool = [v for v in voices if v.family == clip.voice.family and v.key != clip.voice.key]
    r = np.random.default_rng([seed, _crc(clip.folder), clip.index, 4])
    return [pool[k] for k in r.permutation(len(pool))[:MAX_ALTERNATES]]


# ---------------------------------------------------------------------------- rendering
@dataclass
class Result:
    clip: Clip
    ok: bool
    attempt: int = -1
    voice: Voice | None = None
    rate: float = 1.0
    pitch: float = 0.0
    pcm: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    rejections: list = field(default_factory=list)    # [voice key, reason]
    path: str | None = None


def write_wav(path: Path, pcm: np.ndarray) -> None:
    """16 kHz mono 16-bit PCM WAV, written atomically."""
    import soundfile as sf
    with atomic_path(path) as tmp:
        sf.write(tmp, pcm, SAMPLE_RATE, format="WAV", subtype="PCM_16")


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def render_clip(clip: Clip, candidates: list[tuple[int, Voice, float, float]],
                out: Path | None) -> Result:
    """Try candidates (attempt, voice, rate, pitch) in order; write the first good one to
    `out / clip.rel()` when `out` is given (planned voice only), else return its samples."""
    renderer = Renderer.for_thread()
    rejections = []
    for attempt, voice, rate, pitch in candidates:
        try:
            x, clipped = renderer.render(voice, clip.text, rate, pitch)
            rng = np.random.default_rng(clip.noise_seed)
            if clip.folder == RUNNING_SPEECH:       # a 1 s window of the sentence, not centred
                x, db = speech_window(x, rng, clipped)
                s0, s1, shift = 0, x.size, 0.0
            else:
                (s0, s1, db), shift = check_loudness(x, clipped), clip.shift_ms
            pcm, info = finish(x, (s0, s1), db, clip.level, shift, clip.floor_db, rng)
        except RenderError as e:
            rejections.append([voice.key, e.reason])
            continue
        res = Result(clip, True, attempt, voice, rate, pitch, pcm, info, rejections)
        if out is not None:
            res.path = clip.rel()
            write_wav(out / res.path, pcm)
            res.pcm = None
        return res
    return Result(clip, False, rejections=rejections)


class Journal:
    """Append-only record of finished clips (JSON lines); the last record of a key wins."""

    def __init__(self, path: Path):
        self.path = path
        self.records: dict[str, dict] = {}
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                    self.records[rec["k"]] = rec
                except (ValueError, KeyError, TypeError):
                    continue                      # a torn last line after a crash
        self._f = open(path, "a", buffering=1)

    def add(self, rec: dict) -> None:
        self.records[rec["k"]] = rec
        self._f.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


def _record(res: Result, prior_rejections: list) -> dict:
    rej = prior_rejections + res.rejections
    if not res.ok:
        return {"k": res.clip.key, "s": "fail", "rej": rej}
    return {"k": res.clip.key, "s": "ok", "p": res.path, "a": res.attempt, "v": res.voice.key,
            "r": res.rate, "pi": res.pitch, "l": res.info["level_dbfs"],
            "sh": res.info["shift_ms"], "rej": rej}


# ---------------------------------------------------------------------------- helpers
def _write_text_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text() == text:
        return False
    _write_text(path, text)
    return True


def _config(o: SynthOptions, voices: list[Voice]) -> dict:
    keys = sorted(v.key for v in voices)
    return {"generator": GENERATOR_VERSION, "words": o.words, "unknown_words": o.unknown_words,
            "per_word": o.per_word, "unknown_per_word": o.unknown_per_word,
            "engines": sorted({v.engine for v in voices}), "voices": len(keys),
            "voices_sha1": hashlib.sha1("\n".join(keys).encode()).hexdigest(), "seed": o.seed,
            "restricted": o.restricted, "silence_clips": o.silence_clips,
            "noise_seconds": o.noise_seconds,
            # only when used: data sets made before `_speech_` existed still resume
            **({"speech_clips": o.speech_clips} if o.speech_clips else {})}


def _prepare_out(o: SynthOptions, config: dict) -> None:
    out = o.out
    if out.exists() and not out.is_dir():
        raise KwsError(f"--out {out} is a file, not a folder")
    cfg_path = out / CONFIG
    if cfg_path.is_file():
        try:
            old = json.loads(cfg_path.read_text())
        except ValueError:
            old = {}
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        if diff:
            raise KwsError(f"{out} holds a data set made with other options (differs in: "
                           f"{', '.join(diff)}); rerun with the same options to resume, or choose "
                           "another --out")
    elif out.is_dir() and any(out.iterdir()):
        raise KwsError(f"--out {out} is not empty and was not made by `kws data synth`; choose a "
                       "new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    _write_text_if_changed(cfg_path, json.dumps(config, indent=1) + "\n")


def _preflight(voices: list[Voice], text: str) -> None:
    """One render per engine: a broken engine fails here with a clear message, not 50k times."""
    r = Renderer.for_thread()
    for eng in sorted({v.engine for v in voices}):
        errors = []
        for v in [v for v in voices if v.engine == eng][:3]:
            try:
                r.render(v, text)
                break
            except RenderError as e:
                errors.append(f"{v.name}: {e}")
        else:
            raise KwsError(f"engine {eng} failed its test render ({'; '.join(errors)[:300]}); "
                           f"{INSTALL_HINT}")


def _du(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


# ---------------------------------------------------------------------------- main entry
def synthesize(options: SynthOptions, log=print) -> dict:
    """Build (or complete) the data set; returns the report (also written to synth_report.json)."""
    from tqdm import tqdm

    t0 = time.time()
    o = options.resolved()
    voices = select_voices(o.engines, o.voices, o.restricted)
    check_engines(voices)
    config = _config(o, voices)
    _prepare_out(o, config)
    out = o.out
    clips, uses = make_plan(o.words, o.unknown_words, o.per_word, o.unknown_per_word, voices,
                            o.seed, o.speech_clips, _sentences(o) if o.speech_clips else None)
    by_key = {v.key: v for v in voices}
    journal = Journal(out / JOURNAL)
    stats = Counter()
    try:
        def done(c: Clip) -> bool:
            rec = journal.records.get(c.key)
            return bool(rec and rec["s"] == "ok" and (out / rec["p"]).is_file())

        pending_a = [c for c in clips if not done(c)
                     and journal.records.get(c.key, {}).get("s") not in ("failA", "fail")]
        stats["skipped"] = sum(done(c) for c in clips)
        if pending_a or any(not done(c) for c in clips):
            _preflight(voices, clips[0].text)
        log(f"kws data synth: {len(clips)} clips planned ({len(o.words)} keyword(s) x "
            f"{o.per_word}, {len(o.unknown_words)} unknown word(s) x {o.unknown_per_word}, "
            f"{o.speech_clips} running-speech windows) from "
            f"{len(voices)} voices; {stats['skipped']} already done; {o.jobs} job(s) -> {out}")

        # phase A: planned voice, drawn prosody, then neutral prosody; workers write the files
        t_render = time.time()
        with cf.ThreadPoolExecutor(o.jobs) as pool, \
                tqdm(total=len(pending_a), unit="clip", desc="synth", disable=not o.progress,
                     smoothing=0.05) as bar:
            futs = [pool.submit(render_clip, c, [(0, c.voice, c.rate, c.pitch),
                                                 (1, c.voice, 1.0, 0.0)], out) for c in pending_a]
            try:
                for f in cf.as_completed(futs):
                    res = f.result()
                    rec = _record(res, [])
                    if not res.ok:
                        rec["s"] = "failA"
                    journal.add(rec)
                    stats["rendered"] += 1
                    stats["written"] += res.ok
                    bar.update(1)
            except BaseException:
                for f in futs:
                    f.cancel()
                raise

        # phase B: other voices of the family for what phase A could not make, in plan order
        need_b = [c for c in clips if not done(c)
                  and journal.records.get(c.key, {}).get("s") != "fail"]
        if need_b:
            next_n: dict = dict(uses)
            for c in clips:                       # n already taken by earlier alternates
                rec = journal.records.get(c.key)
                if rec and rec["s"] == "ok" and int(rec.get("a", 0)) >= 2:
                    v = by_key.get(rec["v"])
                    if v is not None:
                        n = int(rec["p"].rsplit("_nohash_", 1)[1].split(".")[0])
                        k = (v.speaker_id, c.folder)
                        next_n[k] = max(next_n.get(k, 0), n + 1)
            with cf.ThreadPoolExecutor(o.jobs) as pool:
                futs = [(c, pool.submit(render_clip, c, [(2 + i, v, 1.0, 0.0) for i, v in
                                                         enumerate(alternates(c, voices, o.seed))],
                                        None)) for c in need_b]
                for c, f in futs:
                    res = f.result()
                    prior = journal.records.get(c.key, {}).get("rej", [])
                    if res.ok:
                        k = (res.voice.speaker_id, c.folder)
                        n = next_n.get(k, 0)
                        next_n[k] = n + 1
                        res.path = c.rel(res.voice, n)
                        write_wav(out / res.path, res.pcm)
                    journal.add(_record(res, prior))
                    stats["rendered_alternates"] += 1
                    stats["written"] += res.ok
        missing_words = sorted({c.folder for c in clips} - {
            c.folder for c in clips if journal.records.get(c.key, {}).get("s") == "ok"})

        stats["render_seconds"] = time.time() - t_render
        # background noise, silence clips
        t_noise = time.time()
        noise = _make_noise_files(o, voices, stats, log)
        silence_rows = _make_silence(o, noise)
        stats["noise_seconds"] = time.time() - t_noise

        # manifest, lists, README, report
        rows = []
        for c in clips:
            rec = journal.records.get(c.key)
            if not rec or rec["s"] != "ok":
                continue
            v = by_key[rec["v"]]
            rows.append({"path": rec["p"], "word": c.folder, "engine": v.engine, "voice": v.voice,
                         "variant": v.variant, "split": which_set(rec["p"]),
                         "speaker": v.speaker_id, "text": c.text, "keyword": int(c.keyword),
                         "attempt": rec["a"], "rate": rec["r"], "pitch_semitones": rec["pi"],
                         "level_dbfs": rec["l"], "shift_ms": rec["sh"],
                         "noise_floor_db": c.floor_db})
        rows += silence_rows
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        _write_text_if_changed(out / "manifest.csv", buf.getvalue())
        for split, fname in LIST_FILES.items():
            _write_text_if_changed(out / fname,
                                   format_list(r["path"] for r in rows if r["split"] == split))
        report = _report(o, config, voices, clips, journal, rows, stats, t0)
        _write_text_if_changed(out / "README.md", _readme(o, config, report))
        report["disk_bytes"] = _du(out)
        _write_text(out / REPORT, json.dumps(report, indent=1) + "\n")
        _print_summary(report, log)
        if missing_words:
            raise KwsError(f"no voice could render {', '.join(missing_words)} (see "
                           f"{out / REPORT} for the rejection reasons)")
        return report
    finally:
        journal.close()
        Renderer.close_all()


def _sentences(o: SynthOptions) -> list[str]:
    """Sentences for the `_speech_` windows: the training part of `fortunes` without any keyword
    (kws.data.streams.sentences), else seeded everyday word salad (kws.data.noise)."""
    from kws.data.streams import sentences
    exclude = {t for w in o.words for t in word_text(w).split()}
    # short ones: only a 1 s window of each is kept, and rendering time grows with the length
    pool = [t for t in sentences(exclude, "training") if len(t.split()) <= 12]
    if not pool:
        rng = np.random.default_rng([o.seed, 11])
        pool = [babble_text(rng, exclude, words=int(rng.integers(5, 13))) for _ in range(2000)]
    return pool


def _make_noise_files(o: SynthOptions, voices: list[Voice], stats: Counter, log
                      ) -> dict[str, np.ndarray]:
    from kws.data.audio import load_wav
    folder = o.out / BACKGROUND_NOISE
    out: dict[str, np.ndarray] = {}
    for name in NOISE_NAMES:
        path = folder / f"{name}.wav"
        if path.is_file():
            try:
                out[name] = load_wav(path)
                continue
            except Exception:                 # noqa: BLE001 - a broken file is made again
                pass
        rng = np.random.default_rng([o.seed, _crc(name), 5])
        if name == "babble":
            x = _make_babble(o, voices, rng, log)
            if x is None:
                continue
        else:
            x = make_noise(name, rng, o.noise_seconds)
        write_wav(path, np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16))
        out[name] = x
        stats["noise_files"] += 1
    lines = ["# Background noise (synthetic)", "",
             "Made by `kws data synth`; 16 kHz mono 16-bit, RMS about -20 dBFS.", ""]
    lines += [f"- `{n}.wav`: {DESCRIPTIONS[n]}" for n in NOISE_NAMES if n in out]
    _write_text_if_changed(folder / "README.md", "\n".join(lines) + "\n")
    return out


def _make_babble(o: SynthOptions, voices: list[Voice], rng: np.random.Generator, log
                 ) -> np.ndarray | None:
    train = [v for v in voices if split_of_speaker(v.speaker_id) == "training"] or list(voices)
    order = [train[k] for k in rng.permutation(len(train))]
    donors = [v for v in order if v.family == "donor"]
    formant = [v for v in order if v.family == "formant"]
    neural = [v for v in order if v.family == "neural"]      # last: slow, and one call is capped
    picks = (donors[:3] + formant[:3] + donors[3:] + formant[3:] + neural)   # at ~500 phonemes
    exclude = {t for w in o.words + o.unknown_words for t in word_text(w).split()}
    renderer = Renderer.for_thread()
    talkers = []
    for v in picks:
        if len(talkers) == 6:
            break
        try:
            text = babble_text(rng, exclude, words=int(10 + 3.7 * o.noise_seconds))
            x, _ = renderer.render(v, text, 1.0, 0.0)
        except RenderError:
            continue
        if np.sqrt(np.mean(np.square(x))) > 1e-3:
            talkers.append(x)
    if not talkers:
        log("kws data synth: warning: no babble (no voice rendered the babble text)")
        return None
    return babble(talkers, rng, o.noise_seconds)


def _make_silence(o: SynthOptions, noise: dict[str, np.ndarray]) -> list[dict]:
    rows = []
    if o.silence_clips <= 0:
        return rows
    names = sorted(noise)
    if not names:
        raise KwsError("--silence-clips needs background noise files, and none could be made")
    for i in range(o.silence_clips):
        r = np.random.default_rng([o.seed, i, 7])
        name = names[int(r.integers(len(names)))]
        x = noise[name]
        start = int(r.integers(max(1, x.size - SAMPLE_RATE + 1)))
        vol = float(r.uniform(0.0, 1.0))
        spk = hashlib.sha1(f"kws-silence:{o.seed}:{i}".encode()).hexdigest()[:8]
        rel = f"{SILENCE}/{spk}_nohash_0.wav"
        path = o.out / rel
        if not path.is_file():
            seg = np.zeros(SAMPLE_RATE, np.float32)
            part = x[start:start + SAMPLE_RATE]
            seg[:part.size] = part
            write_wav(path, np.clip(np.round(seg * vol * 32767), -32768, 32767).astype(np.int16))
        rows.append({"path": rel, "word": SILENCE, "engine": "noise", "voice": name, "variant": "",
                     "split": which_set(rel), "speaker": spk, "text": "", "keyword": 0,
                     "attempt": 0, "rate": "", "pitch_semitones": "",
                     "level_dbfs": round(20 * math.log10(max(vol, 1e-6)) - 20.0, 2),
                     "shift_ms": "", "noise_floor_db": ""})
    return rows


def _report(o: SynthOptions, config: dict, voices: list[Voice], clips: list[Clip],
            journal: Journal, rows: list[dict], stats: Counter, t0: float) -> dict:
    by_key = {v.key: v for v in voices}
    eng = defaultdict(lambda: {"renders": 0, "rejected": 0, "reasons": Counter()})
    failed = []
    for c in clips:
        rec = journal.records.get(c.key)
        if not rec:
            continue
        for vkey, reason in rec.get("rej", []):
            e = vkey.split(":", 1)[0]
            eng[e]["renders"] += 1
            eng[e]["rejected"] += 1
            eng[e]["reasons"][reason] += 1
        if rec["s"] == "ok":
            eng[by_key[rec["v"]].engine if rec["v"] in by_key else rec["v"].split(":")[0]][
                "renders"] += 1
        else:
            failed.append(c.key)
    word_rows = [r for r in rows if r["word"] != SILENCE]
    per_word = Counter(r["word"] for r in word_rows)
    per_split = Counter(r["split"] for r in word_rows)
    n_kw = sum(1 for r in word_rows if r["keyword"])
    speakers = {r["speaker"] for r in word_rows}
    used = {(r["engine"], r["voice"], r["variant"]) for r in word_rows}
    seconds = time.time() - t0
    return {
        "out": str(o.out), "options": config,
        "clips": {"total": len(word_rows), "keyword": n_kw, "unknown": len(word_rows) - n_kw,
                  "unknown_share": round((len(word_rows) - n_kw) / max(1, len(word_rows)), 4),
                  "per_word": dict(per_word), "per_split": dict(per_split),
                  "silence_clips": len(rows) - len(word_rows), "failed": len(failed),
                  "failed_keys": failed[:50]},
        "voices": {"selected": len(voices), "distinct_used": len(used),
                   "speaker_ids": len(speakers),
                   "used_per_engine": dict(Counter(e for e, _, _ in used)),
                   "restricted_included": o.restricted},
        "rejections": {e: {"renders": d["renders"], "rejected": d["rejected"],
                           "rate": round(d["rejected"] / max(1, d["renders"]), 5),
                           "reasons": dict(d["reasons"])} for e, d in sorted(eng.items())},
        "last_run": {"finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "seconds": round(seconds, 1), "jobs": o.jobs,
                     "clips_written": stats["written"],
                     "clips_retried_with_other_voice": stats["rendered_alternates"],
                     "clips_skipped": stats["skipped"], "noise_files_made": stats["noise_files"],
                     "render_seconds": round(stats["render_seconds"], 1),
                     "noise_seconds": round(stats["noise_seconds"], 1),
                     "clips_per_s": round(stats["written"] / max(stats["render_seconds"], 1e-9), 1)},
    }


def _readme(o: SynthOptions, config: dict, report: dict) -> str:
    c = report["clips"]
    return "\n".join([
        "# Synthetic Speech Commands-style data set", "",
        "Made offline by `kws data synth` from text-to-speech engines (allowed training voices only,",
        "see ../shared/recipes/speech-data.md), synthetic noise and random rate / pitch / level /",
        "shift. Layout as Google Speech Commands: `<word>/<speaker>_nohash_<n>.wav` (16 kHz mono",
        "16-bit, 1 s), `_background_noise_/`, `validation_list.txt`, `testing_list.txt` (split by",
        "speaker with the Speech Commands SHA-1 rule). `manifest.csv` says how each clip was made.", "",
        f"- keywords: {', '.join(o.words)} ({o.per_word} clips each)",
        f"- unknown words: {', '.join(o.unknown_words) or 'none'} ({o.unknown_per_word} each)",
        f"- `_speech_/`: {o.speech_clips} 1 s windows of running speech without a keyword "
        "(sentences of Debian's fortunes), counted as `_unknown_`",
        f"- clips: {c['total']} (unknown share {c['unknown_share']:.1%}); splits: "
        + ", ".join(f"{k} {v}" for k, v in sorted(c["per_split"].items())),
        f"- voices: {config['voices']} selected from engines {', '.join(config['engines'])}; "
        f"seed {o.seed}",
        "- licences: " + ("includes MBROLA / RHVoice evgeniy-eng, lyubov voices (not for a sold "
                          "product without permission; rebuild with --no-restricted)"
                          if o.restricted else "restricted voices excluded (--no-restricted)"),
        "", "Synthetic test-split accuracy is optimistic: evaluate on real recordings.", ""])


def _print_summary(report: dict, log) -> None:
    c, r = report["clips"], report["last_run"]
    log(f"kws data synth: {c['total']} clips ({c['keyword']} keyword, {c['unknown']} unknown = "
        f"{c['unknown_share']:.1%}), {c['silence_clips']} silence clips, {c['failed']} failed; "
        f"splits " + ", ".join(f"{k} {v}" for k, v in sorted(c["per_split"].items())))
    log(f"  voices: {report['voices']['distinct_used']} distinct used of "
        f"{report['voices']['selected']} selected; this run: {r['clips_written']} written, "
        f"{r['clips_skipped']} skipped, {r['seconds']} s with {r['jobs']} job(s) (render "
        f"{r['render_seconds']} s = {r['clips_per_s']} clips/s, noise {r['noise_seconds']} s); "
        f"disk {report['disk_bytes'] / 2 ** 20:.1f} MiB")
    for e, d in report["rejections"].items():
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(d["reasons"].items())) or "-"
        log(f"  {e:<10} renders {d['renders']:>7}  rejected {d['rejected']:>5} "
            f"({100 * d['rate']:.2f} %)  {reasons}")
