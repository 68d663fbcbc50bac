"""`kws data synth` on a small set (3 words, ~14 voices, every engine): layout, formats, split by
speaker, manifest vs disk, resume, determinism, the voice rule, engine errors; plan and loudness units.

Needs the TTS engines: run `scripts/install-tts.sh` first (CI does). A missing engine FAILS these
tests with that instruction; they are never skipped silently.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws.cli import main
from kws.data.clip import check_loudness
from kws.data.engines import RenderError, check_engines
from kws.data.layout import which_set
from kws.data.synth import make_plan
from kws.data.voices import ESPEAK_VARIANTS, all_voices, group_split, select_voices
from kws.errors import KwsError

REPO = Path(__file__).resolve().parents[1]
BINARIES = ("sox", "espeak-ng", "mbrola", "flite", "festival", "pico2wave", "RHVoice-test")


def _voice_patterns() -> list[str]:
    """espeak-ng en-us voices from every split + donors of every engine, some outside training."""
    pats = []
    for split, k in (("training", 4), ("validation", 2), ("testing", 2)):
        vs = [v for v in select_voices(["espeak-ng"]) if v.voice == "en-us"
              and group_split(v.group) == split]
        pats += [f"espeak-ng:{v.name}" for v in vs[:k]]
    pats += ["flite:kal16", "flite:awb", "festival:ked_diphone", "pico:en-GB", "mbrola:mb-us1",
             "rhvoice:bdl"]
    return pats


WORDS = "yes,hey kiwi"
ARGS = ["--words", WORDS, "--unknown-words", "bed", "--per-word", "16", "--unknown-per-word", "16",
        "--seed", "3", "--jobs", "2", "--silence-clips", "4", "--speech-clips", "6",
        "--noise-seconds", "4",
        "--no-progress"]


@pytest.fixture(scope="module")
def engines_installed():
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        pytest.fail(f"TTS engine(s) missing: {', '.join(missing)}; run scripts/install-tts.sh "
                    "(Debian, root/sudo) before the tests", pytrace=False)


@pytest.fixture(scope="module")
def synth(tmp_path_factory, engines_installed):
    out = tmp_path_factory.mktemp("synth") / "set"
    args = ["data", "synth", "--out", str(out), "--voices", ",".join(_voice_patterns()), *ARGS]
    t = time.time()
    assert main(args) == 0
    return {"out": out, "args": args, "seconds": time.time() - t}


def _manifest(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def _wavs(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*.wav")
            if not p.relative_to(out).as_posix().startswith("_background_noise_/")}


def test_layout_and_format(synth):
    out = synth["out"]
    assert synth["seconds"] < 60, "the small synth set should take well under a minute"
    for d in ("yes", "hey_kiwi", "bed", "_silence_", "_speech_", "_background_noise_"):
        assert (out / d).is_dir(), d
    for f in ("validation_list.txt", "testing_list.txt", "manifest.csv", "README.md",
              "synth_report.json", "_background_noise_/README.md"):
        assert (out / f).is_file(), f
    names = {p.stem for p in (out / "_background_noise_").glob("*.wav")}
    assert names == {"white_noise", "pink_noise", "brown_noise", "hum_50hz", "hum_60hz", "fan",
                     "running_tap", "clinks", "babble"}
    for p in (out / "_background_noise_").glob("*.wav"):
        info = sf.info(str(p))
        assert (info.samplerate, info.channels, info.subtype, info.frames) == \
            (16000, 1, "PCM_16", 4 * 16000)
    wavs = _wavs(out)
    assert len(wavs) == 16 * 3 + 4 + 6
    mask = os.umask(0)
    os.umask(mask)
    for p in [out / w for w in wavs] + [out / "manifest.csv", out / "validation_list.txt"]:
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask, p           # not private temp-file mode
    for rel in wavs:
        assert re.fullmatch(r"(yes|hey_kiwi|bed|_silence_|_speech_)/[0-9a-f]{8}_nohash_\d+\.wav",
                            rel), rel
        info = sf.info(str(out / rel))
        assert (info.samplerate, info.channels, info.subtype, info.frames, info.format) == \
            (16000, 1, "PCM_16", 16000, "WAV"), rel
        assert os.path.getsize(out / rel) == 32044
    # speech is centred, leveled, never clipped, and has a noise floor (no digital silence)
    for rel in sorted(wavs)[:20]:
        x, _ = sf.read(str(out / rel), dtype="float32")
        if rel.startswith(("_silence_", "_speech_")):
            continue
        assert np.abs(x).max() < 0.999 and np.abs(x[:400]).max() > 0
        e = np.convolve(x ** 2, np.ones(1600) / 1600, "same")
        assert 3000 < int(np.argmax(e)) < 13000


def test_running_speech_windows(synth):
    """`_speech_/` holds 1 s windows of sentences without a keyword, full of speech (not a word
    centred in silence), from the families in turn, and the loader counts them as `_unknown_`."""
    from kws.data.speech_commands import SpeechCommands
    out = synth["out"]
    rows = [r for r in _manifest(out) if r["word"] == "_speech_"]
    assert len(rows) == 6
    assert {r["engine"] for r in rows} >= {"espeak-ng"} and len({r["engine"] for r in rows}) >= 2
    for r in rows:
        words = set(re.findall(r"[a-z']+", r["text"].lower()))
        assert len(words) >= 3 and not words & {"yes", "hey", "kiwi"}, r["text"]
        x, _ = sf.read(str(out / r["path"]), dtype="float32")
        db = 10 * np.log10(np.mean(x[:16000 // 320 * 320].reshape(-1, 320) ** 2, axis=1) + 1e-12)
        active = db > np.percentile(db, 5) + 15          # 15 dB over the window's noise floor
        assert active.mean() > 0.3, r["path"]            # speech in much of the window
    ds = SpeechCommands(out, "training", task="custom", words="yes,hey kiwi")
    unk = ds.labels.index("_unknown_")
    speech = [lbl for rel, lbl in ds.items if rel and rel.startswith("_speech_/")]
    assert speech and set(speech) == {unk}


def test_split_by_speaker(synth):
    out = synth["out"]
    rows = _manifest(out)
    lists = {s: set((out / f"{s}_list.txt").read_text().split()) for s in ("validation", "testing")}
    assert not lists["validation"] & lists["testing"]
    split_of = {}
    voice_of = {}
    for r in rows:
        expected = next((s for s, l in lists.items() if r["path"] in l), "training")
        assert r["split"] == expected == which_set(r["path"])       # Speech Commands rule
        spk = r["path"].split("/")[1].split("_nohash_")[0]
        assert spk == r["speaker"]
        assert split_of.setdefault(spk, expected) == expected         # one split per speaker
        v = (r["engine"], r["voice"], r["variant"])
        assert voice_of.setdefault(spk, v) == v                       # one voice per speaker id
    # no voice in two splits, and voices that sound alike (same espeak-ng variant) share a split
    by_voice, by_variant = defaultdict(set), defaultdict(set)
    for r in rows:
        if r["engine"] == "noise":
            continue
        by_voice[(r["engine"], r["voice"], r["variant"])].add(r["split"])
        if r["engine"] == "espeak-ng":
            by_variant[r["variant"]].add(r["split"])
    assert all(len(s) == 1 for s in by_voice.values())
    assert all(len(s) == 1 for s in by_variant.values())
    word_splits = {r["split"] for r in rows if r["engine"] != "noise"}
    assert word_splits == {"training", "validation", "testing"}


def test_manifest_matches_disk(synth):
    out = synth["out"]
    rows = _manifest(out)
    with open(out / "manifest.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:6] == ["path", "word", "engine", "voice", "variant", "split"]
    assert {r["path"] for r in rows} == _wavs(out)
    assert len(rows) == len({r["path"] for r in rows})
    allowed = {v.key for v in all_voices()}
    engines = set()
    for r in rows:
        assert r["path"].split("/")[0] == r["word"]
        if r["engine"] == "noise":
            assert r["word"] == "_silence_"
            continue
        key = f"{r['engine']}:{r['voice']}" + (f"+{r['variant']}" if r["variant"] else "")
        assert key in allowed
        engines.add(r["engine"])
        if r["word"] != "_speech_":                          # those speak a sentence
            assert r["text"] == r["word"].replace("_", " ")
    assert engines == {"espeak-ng", "flite", "festival", "pico", "mbrola", "rhvoice"}
    report = json.loads((out / "synth_report.json").read_text())
    assert report["clips"]["total"] == 48 + 6 and report["clips"]["failed"] == 0
    assert set(report["rejections"]) == engines
    for d in report["rejections"].values():
        assert d["renders"] >= 1 and 0 <= d["rate"] <= 1


def test_reader_serves_synth(synth):
    from kws.data import SpeechCommands
    ds = SpeechCommands(synth["out"], split="training", task="custom", words=WORDS)
    assert ds.labels == ["yes", "hey_kiwi", "_unknown_", "_silence_"]
    counts = ds.class_counts()
    assert counts["yes"] > 0 and counts["hey_kiwi"] > 0 and counts["_unknown_"] > 0
    x, y = ds[0]
    assert x.shape == (16000,) and x.dtype == np.float32
    assert ds.scan() == []


def test_resume_writes_nothing_and_rebuilds_identically(synth):
    out = synth["out"]
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.rglob("*")
              if p.is_file() and p.name != "synth_report.json"}
    assert main(synth["args"]) == 0
    after = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.rglob("*")
             if p.is_file() and p.name != "synth_report.json"}
    assert after == before                       # nothing new, nothing rewritten
    report = json.loads((out / "synth_report.json").read_text())
    assert report["last_run"]["clips_written"] == 0
    assert report["last_run"]["clips_skipped"] == 48 + 6
    # an interrupted run: clips and the journal's tail lost -> the rerun makes the same bytes
    rows = [r for r in _manifest(out) if r["engine"] != "noise"]
    lost = [rows[0]["path"], rows[7]["path"], rows[-1]["path"]]
    saved = {p: (out / p).read_bytes() for p in lost}
    manifest = (out / "manifest.csv").read_text()
    for p in lost:
        (out / p).unlink()
    journal = out / ".synth_journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:-5]) + lines[-5][:10])            # torn last line
    (out / "_background_noise_" / "fan.wav").unlink()
    assert main(synth["args"]) == 0
    for p in lost:
        assert (out / p).read_bytes() == saved[p], p
    assert (out / "manifest.csv").read_text() == manifest
    assert (out / "_background_noise_" / "fan.wav").is_file()


def test_other_options_refused(synth, capsys):
    args = list(synth["args"])
    args[args.index("--seed") + 1] = "4"
    assert main(args) == 1
    assert "other options" in capsys.readouterr().err


def test_not_a_synth_folder_refused(tmp_path, capsys, engines_installed):
    (tmp_path / "x.txt").write_text("mine")
    assert main(["data", "synth", "--out", str(tmp_path), "--per-word", "1", "--no-progress",
                 "--voices", "en-us"]) == 1
    assert "not empty" in capsys.readouterr().err


@pytest.mark.parametrize("voice", ["flite:slt", "rhvoice:slt", "flite:awb_time", "espeak-ng:de",
                                   "espeak-ng:en-us+Mr", "pico:en-US", "nosuchvoice"])
def test_voice_rule_refuses_other_voices(tmp_path, capsys, voice):
    assert main(["data", "synth", "--out", str(tmp_path / "o"), "--voices", voice,
                 "--per-word", "1", "--no-progress"]) == 1
    assert "not on the allowed training list" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_allowed_list_matches_shared_table():
    tsv = REPO.parent / "shared" / "tools" / "speech-data" / "voices-check.tsv"
    if not tsv.is_file():
        pytest.skip(f"{tsv} not present (the shared tools live beside the repository)")
    rows = [ln.split("\t") for ln in tsv.read_text().splitlines()[1:] if ln.strip()]
    shared = set()
    for engine, voice, *_ in rows:
        if engine == "espeak-ng" and voice.startswith("mb-"):
            engine = "mbrola"
        shared.add(f"{engine}:{voice}")
    ours = {v.key for v in all_voices() if v.engine != "kokoro"}
    assert ours == shared and len(ours) == 840
    assert sum(v.engine == "kokoro" for v in all_voices()) == 405      # 5 packs + 400 mixes
    assert sum(v.restricted for v in all_voices()) == 22
    assert len(ESPEAK_VARIANTS) == 100


def test_missing_engine_names_install_command(monkeypatch):
    import kws.data.engines as engines
    real = shutil.which
    monkeypatch.setattr(engines.shutil, "which",
                        lambda b, *a, **k: None if b == "RHVoice-test" else real(b, *a, **k))
    with pytest.raises(KwsError, match=r"RHVoice-test not found.*scripts/install-tts\.sh"):
        check_engines(select_voices(["rhvoice", "espeak-ng"]))


def test_no_restricted_drops_licensed_voices():
    vs = select_voices(restricted=False)
    assert len(vs) == 818 + 405 and not any(v.engine == "mbrola" for v in vs)
    assert {v.voice for v in vs if v.engine == "rhvoice"} == {"alan", "bdl", "clb"}
    with pytest.raises(KwsError, match="excluded"):
        select_voices(["mbrola"], ["mb-us1"], restricted=False)


def test_speaker_ids_unique_and_group_consistent():
    vs = all_voices()
    ids = [v.speaker_id for v in vs]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[0-9a-f]{8}", i) for i in ids)
    for v in vs:
        assert which_set(f"w/{v.speaker_id}_nohash_0.wav") == group_split(v.group)
    # every split has formant, neural and human-donor voices, also without the restricted ones
    for restricted in (True, False):
        pool = select_voices(restricted=restricted)
        for split in ("training", "validation", "testing"):
            fams = {v.family for v in pool if group_split(v.group) == split}
            assert fams == {"formant", "donor", "neural"}, (restricted, split)


def test_default_plan_is_mostly_natural_voices():
    """The default V1-12 plan: natural-sounding voices (neural + human donors) speak at least half
    of every word's clips, over at least 300 distinct voices; `_speech_` windows keep the words'
    plans unchanged and speak the given sentences."""
    from kws.data.synth import default_unknown_words
    from kws.data.tasks import KEYWORDS_12
    words = list(KEYWORDS_12)
    unknown = default_unknown_words(words)
    sentences = ["the cat sat on a mat today", "a bird in the hand is worth two"]
    plan, _ = make_plan(words, unknown, 2000, 550, select_voices(), seed=0, speech_clips=300,
                        sentences=sentences)
    by_word = defaultdict(list)
    for c in plan:
        by_word[c.folder].append(c.voice)
    for word, voices in by_word.items():
        natural = [v for v in voices if v.family in ("neural", "donor")]
        assert len(natural) >= 0.5 * len(voices), word
    natural_voices = {v.key for vs in by_word.values() for v in vs if v.family != "formant"}
    assert len(natural_voices) >= 300
    speech = [c for c in plan if c.folder == "_speech_"]
    assert len(speech) == 300 and {c.text for c in speech} == set(sentences)
    plain, _ = make_plan(words, unknown, 2000, 550, select_voices(), seed=0)
    assert plan[:len(plain)] == plain
    with pytest.raises(KwsError, match="sentences"):
        make_plan(words, unknown, 5, 5, select_voices(), seed=0, speech_clips=3)


def test_plan_is_deterministic_and_prefix_stable():
    vs = select_voices()
    a, _ = make_plan(["yes"], ["bed"], 50, 30, vs, seed=1)
    b, _ = make_plan(["yes"], ["bed"], 50, 30, vs, seed=1)
    c, _ = make_plan(["yes"], ["bed"], 80, 30, vs, seed=1)
    d, _ = make_plan(["yes"], ["bed"], 50, 30, vs, seed=2)
    assert a == b
    assert c[:50] == a[:50]                       # more clips per word keep the first ones
    assert [x.rel() for x in a] != [x.rel() for x in d]
    assert len({x.rel() for x in c}) == len(c)    # one file per planned clip
    fams = [x.voice.family for x in a[:50]]
    assert (fams.count("formant"), fams.count("donor"), fams.count("neural")) == (17, 17, 16)
    assert len({x.voice.key for x in a[:50]}) == 50
    for x in a:
        assert 0.8 <= x.rate <= 1.25 and -3 <= x.pitch <= 3 and -35 <= x.level <= -15
        assert -100 <= x.shift_ms <= 100 and 25 <= x.floor_db <= 50


def test_loudness_check():
    sr = 16000
    t = np.arange(sr) / sr
    speech = np.zeros(sr, np.float32)
    speech[4000:9000] = 0.3 * np.sin(2 * np.pi * 220 * t[4000:9000])
    s0, s1, db = check_loudness(speech)
    assert abs(s0 - 4000) <= 320 and abs(s1 - 9000) <= 320 and -15 < db < -10
    for x, reason in [(speech * 0.005, "silent"),
                      (np.where((np.arange(sr) >= 4000) & (np.arange(sr) < 4320), speech, 0),
                       "too-short"),
                      (np.tile(speech[4000:9000], 4), "too-long")]:
        with pytest.raises(RenderError) as e:
            check_loudness(x.astype(np.float32))
        assert e.value.reason == reason
    with pytest.raises(RenderError) as e:
        check_loudness(speech, clipped_fraction=0.01)
    assert e.value.reason == "clipped"


def test_default_unknown_words_include_confusable_words():
    """Without --unknown-words, each keyword's confusable words (kws.data.confusable) join the
    Speech Commands words in `_unknown_`; --confusable 0 leaves them out; a keyword never."""
    from kws.data.synth import SynthOptions, default_unknown_words
    o = SynthOptions(out=Path("x"), words="up,stop", per_word=10).resolved()
    assert o.unknown_words[:len(default_unknown_words(["up", "stop"]))] == \
        default_unknown_words(["up", "stop"])
    assert {"cup", "top"} <= set(o.unknown_words) and not {"up", "stop"} & set(o.unknown_words)
    assert len(o.unknown_words) == len(set(o.unknown_words))
    plain = SynthOptions(out=Path("x"), words="up,stop", per_word=10, confusable=0).resolved()
    assert plain.unknown_words == default_unknown_words(["up", "stop"])
    given = SynthOptions(out=Path("x"), words="up", unknown_words="bed", per_word=10).resolved()
    assert given.unknown_words == ["bed"]
    with pytest.raises(KwsError, match="confusable"):
        SynthOptions(out=Path("x"), words="up", per_word=10, confusable=-1).resolved()
