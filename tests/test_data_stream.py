"""`kws data stream`: keyword-free test streams (speech over changing backgrounds, music alone)
with a CSV of what is where; deterministic from the seed; bad arguments are one-line errors.
Needs the TTS engines, fortunes and sonic-pi-samples (scripts/install-tts.sh; CI runs it)."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws.cli import main
from kws.data.tasks import KEYWORDS_12

SPEECH = ["--kind", "speech", "--minutes", "0.5", "--engines", "espeak-ng,festival,flite", "--seed", "3"]


def _rows(path: Path) -> list[dict]:
    with open(str(path) + ".csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    out = tmp_path_factory.mktemp("stream") / "speech.flac"
    assert main(["data", "stream", "--out", str(out), *SPEECH]) == 0
    return out


def test_speech_stream_and_its_csv(speech):
    x, sr = sf.read(speech, dtype="float32")
    assert sr == 16000 and x.ndim == 1 and len(x) == 30 * 16000
    rows = _rows(speech)
    spoken = [r for r in rows if r["kind"] == "speech"]
    background = [r for r in rows if r["kind"] != "speech"]
    assert len(spoken) >= 3 and {r["kind"] for r in background} <= {"quiet", "noise", "music", "babble"}
    for r in spoken:                         # no sentence holds a keyword
        assert r["name"].split(":")[0] in ("espeak-ng", "festival", "flite")
        assert not set(re.findall(r"[a-z']+", r["text"].lower())) & set(KEYWORDS_12), r["text"]
        assert 0 <= float(r["start_s"]) < float(r["end_s"]) <= 30.0
    # the background segments tile the stream
    edges = [(float(r["start_s"]), float(r["end_s"])) for r in background]
    assert edges[0][0] == 0 and edges[-1][1] == 30.0
    assert all(a[1] == b[0] for a, b in zip(edges, edges[1:]))
    for r in background:
        assert r["snr_db"] == "" or 0 <= float(r["snr_db"]) <= 20
    assert np.sqrt(np.mean(x ** 2)) > 1e-3 and np.abs(x).max() <= 1.0


def test_same_seed_same_stream(speech, tmp_path):
    again = tmp_path / "again.flac"
    assert main(["data", "stream", "--out", str(again), *SPEECH]) == 0
    digest = lambda p: hashlib.sha256(Path(p).read_bytes()).hexdigest()   # noqa: E731
    assert digest(again) == digest(speech) and _rows(again) == _rows(speech)


def test_music_stream(tmp_path):
    out = tmp_path / "music.wav"
    assert main(["data", "stream", "--out", str(out), "--kind", "music", "--minutes", "0.3"]) == 0
    x, sr = sf.read(out, dtype="float32")
    assert sr == 16000 and len(x) == 18 * 16000 and np.sqrt(np.mean(x ** 2)) > 1e-3
    rows = _rows(out)
    assert {r["kind"] for r in rows} == {"music"} and float(rows[-1]["end_s"]) == 18.0


def test_tones_stream(tmp_path):
    out, again = tmp_path / "tones.flac", tmp_path / "again.flac"
    for path in (out, again):
        assert main(["data", "stream", "--out", str(path), "--kind", "tones", "--minutes", "0.3", "--seed", "5"]) == 0
    x, sr = sf.read(out, dtype="float32")
    assert sr == 16000 and len(x) == 18 * 16000
    assert x.tobytes() == sf.read(again, dtype="float32")[0].tobytes()
    rows = _rows(out)
    assert [r["kind"] for r in rows] == ["tones"] * 3 and float(rows[-1]["end_s"]) == 18.0
    for r in rows:                 # each 8 s segment at an utterance level, -28 to -18 dBFS
        seg = x[int(float(r["start_s"]) * sr):int(float(r["end_s"]) * sr)].astype(np.float64)
        assert -28.5 <= 10 * np.log10(np.mean(seg ** 2)) <= -17.5


def test_the_default_model_on_a_speech_stream(speech):
    """The stream is what `kws eval --negative-stream` measures: false alarms per hour."""
    from kws.detector import resolve_model
    from kws.distill.evaluate import negative_stream_metric
    model = resolve_model(None)
    r = negative_stream_metric(model, speech, model.arch.operating_points[:1])["1x8"]
    assert r["hours"] == pytest.approx(30 / 3600) and r["fa_per_hour"] == r["false_alarms"] / r["hours"]


@pytest.mark.parametrize("args, message", [
    (["--out", "{tmp}/s.mp3"], "must end in .wav or .flac"),
    (["--out", "{tmp}/s.wav", "--minutes", "0"], "--minutes"),
    (["--out", "{tmp}/s.wav", "--engines", "nosuch"], "unknown engine"),
    (["--out", "{tmp}/s.wav", "--engines", "pico"], "no testing-split voice"),
])
def test_bad_arguments(tmp_path, capsys, args, message):
    assert main(["data", "stream", *[a.format(tmp=tmp_path) for a in args]]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_segments_have_exactly_their_length():
    """Sample counts made from seconds round either way (516,641 vs 516,640 crashed a 30 min
    stream): every background piece is fitted to its segment."""
    from kws.data.noise import make_noise
    from kws.data.streams import SAMPLE_RATE, fit, music
    rng = np.random.default_rng(0)
    short = 0
    for n in range(516_600, 516_700, 7):
        raw = make_noise("pink_noise", rng, n / SAMPLE_RATE)
        short += raw.size != n
        assert fit(raw, n).size == n
        assert fit(music(n / SAMPLE_RATE, rng)[0], n).size == n
    assert short > 0                       # the rounding the fix is for does happen
    np.testing.assert_array_equal(fit(np.ones(3), 5), [1, 1, 1, 0, 0])


def test_validation_streams_share_nothing_with_the_test_streams(speech, tmp_path):
    """--split validation (for tuning thresholds): validation-split voices, the training part of
    the sentences and of the music samples -- none of what the testing streams use."""
    from kws.data.streams import sample_split, sentences
    from kws.data.voices import find_voice, group_split
    val = tmp_path / "val.flac"
    assert main(["data", "stream", "--out", str(val), *SPEECH, "--split", "validation"]) == 0
    test_rows, val_rows = _rows(speech), _rows(val)
    for rows, split in ((test_rows, "testing"), (val_rows, "validation")):
        spoken = [r for r in rows if r["kind"] == "speech"]
        assert spoken and all(group_split(find_voice(r["name"]).group) == split for r in spoken)
    train_text = set(sentences(set(KEYWORDS_12), "training"))
    assert all(r["text"] in train_text for r in val_rows if r["kind"] == "speech")
    assert not any(r["text"] in train_text for r in test_rows if r["kind"] == "speech")
    music = tmp_path / "music.wav"
    assert main(["data", "stream", "--out", str(music), "--kind", "music", "--minutes", "0.3",
                 "--split", "validation"]) == 0
    names = {n for r in _rows(music) for n in r["name"].split("+")}
    from kws.data.streams import MUSIC_DIR
    evaluation = {n for kind in sample_split(p.stem for p in MUSIC_DIR.glob("*.flac"))["evaluation"].values()
                  for n in kind}
    assert names and not names & evaluation


def test_babble_stream_reports_progress(tmp_path, capsys):
    """A babble stream long enough for 10+ segments (20-40 s each) logs its progress, as the
    background phase of a speech stream does (both are minutes of rendered speech)."""
    out = tmp_path / "babble.flac"
    assert main(["data", "stream", "--out", str(out), "--kind", "babble", "--minutes", "6",
                 "--engines", "espeak-ng", "--seed", "3"]) == 0
    assert re.search(r"backgrounds \d+\.\d of 6 min", capsys.readouterr().err)
    assert len(_rows(out)) >= 10
