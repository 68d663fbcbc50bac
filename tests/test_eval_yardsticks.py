"""`kws eval`'s yardsticks beyond clip accuracy: accuracy by voice source (clips mapped to engines
through manifest.csv) and false alarms per hour of negative streams."""

from types import SimpleNamespace

import numpy as np
import pytest

from kws.distill.evaluate import (accuracy_by_source, class_summary, clip_sources, negative_stream_metric,
                                 unknown_words)
from kws.errors import KwsError


def test_sources_from_the_manifest(tmp_path):
    (tmp_path / "manifest.csv").write_text(
        "path,word,engine,voice\nyes/a_nohash_0.wav,yes,kokoro,mix\nno/b_nohash_0.wav,no,flite,kal16\n")
    clips = SimpleNamespace(root=tmp_path, items=[("yes/a_nohash_0.wav", 0), ("no/b_nohash_0.wav", 1),
                                                  ("no/real_nohash_0.wav", 1), (None, 3),
                                                  ("_silence_/s.wav", 3)])
    assert clip_sources(clips) == ["kokoro", "flite", "unlisted", "_silence_", "_silence_"]
    assert clip_sources(SimpleNamespace(root=tmp_path / "none", items=[])) is None


def test_a_bad_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "manifest.csv").write_text("file,who\nx,y\n")
    with pytest.raises(KwsError, match="not a readable kws data manifest"):
        clip_sources(SimpleNamespace(root=tmp_path, items=[("x", 0)]))


def test_accuracy_per_engine_and_family():
    sources = ["kokoro", "kokoro", "espeak-ng", "flite", "rhvoice", "_silence_"]
    y = np.array([0, 1, 0, 1, 1, 2])
    preds = {"1x8": np.array([0, 0, 0, 1, 0, 2]), "0.5x4": np.array([0, 1, 1, 1, 1, 0])}
    r = accuracy_by_source(sources, y, preds)
    assert r["engine"]["kokoro"] == {"n": 2, "accuracy": {"1x8": 0.5, "0.5x4": 1.0}}
    assert r["family"]["neural"] == r["engine"]["kokoro"]
    assert r["family"]["donor"] == {"n": 2, "accuracy": {"1x8": 0.5, "0.5x4": 1.0}}   # flite + rhvoice
    assert r["family"]["formant"] == {"n": 1, "accuracy": {"1x8": 1.0, "0.5x4": 0.0}}
    assert r["family"]["_silence_"]["n"] == 1


def test_unknown_words_taken_for_keywords():
    labels = ["yes", "no", "_unknown_", "_silence_"]
    clips = SimpleNamespace(items=[("yes/a.wav", 0), ("lift/a.wav", 2), ("lift/b.wav", 2), ("lift/c.wav", 2),
                                   ("cat/a.wav", 2), ("cat/b.wav", 2), (None, 3), ("lift/d.wav", 2)])
    y = np.array([0, 2, 2, 2, 2, 2, 3, 2])
    preds = {"1x8": np.array([0, 0, 0, 1, 2, 3, 3, 2]),      # lift: yes, yes, no, unknown; cat: -, silence
             "0.5x4": np.array([1, 2, 2, 2, 2, 2, 2, 2])}
    r = unknown_words(clips, y, preds, labels)
    assert set(r) == {"lift", "cat"}                        # keywords and silence items are not listed
    assert r["lift"] == {"n": 4, "called_keyword": {"1x8": 0.75, "0.5x4": 0.0},
                         "most_called": {"1x8": "yes", "0.5x4": None}}
    assert r["cat"] == {"n": 2, "called_keyword": {"1x8": 0.0, "0.5x4": 0.0},   # silence is no keyword
                        "most_called": {"1x8": None, "0.5x4": None}}
    assert unknown_words(clips, y, preds, ["yes", "no", "other", "_silence_"]) == {}


def test_class_summary_splits_the_accuracy():
    labels = ["yes", "no", "_unknown_", "_silence_"]
    y = np.array([0, 0, 1, 1, 2, 2, 2, 2, 3, 3])
    pred = np.array([0, 2, 1, 0, 2, 0, 1, 3, 3, 2])
    assert class_summary(y, pred, labels) == {"keyword_recall": 0.5,           # yes, no right; no->yes wrong
                                              "unknown_called_keyword": 0.5,   # 2 of 4 (silence is no keyword)
                                              "unknown_share": 0.4}
    assert class_summary(y[:4], pred[:4], labels)["unknown_called_keyword"] is None
    assert class_summary(y, pred, ["yes", "no", "other", "_silence_"])["unknown_share"] == 0.0


EXAMPLE = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples" / "audio" / "keywords.flac"


def test_negative_stream_counts_every_detection_as_a_false_alarm(tmp_path):
    """The example recording (5 keywords) played as if it held none: its detections, as the
    Detector makes them, are the false alarms; a stereo copy at 48 kHz gives the same."""
    import soundfile as sf
    import kws
    from kws.detector import resolve_model
    model = resolve_model(None)
    ops = [model.arch.operating_point(1.0, 8), model.arch.operating_point(0.5, 4)]
    audio, rate = sf.read(EXAMPLE, dtype="float32")
    r = negative_stream_metric(model, EXAMPLE, ops)
    for op in ops:
        want = kws.Detector(model, width=op.width, blocks=len(op.blocks)).feed(audio, sample_rate=rate)
        m = r[op.name]
        assert m["false_alarms"] == len(want) == sum(m["by_label"].values()) > 0
        assert m["hours"] == pytest.approx(len(audio) / rate / 3600)
        assert m["fa_per_hour"] == pytest.approx(len(want) / m["hours"])
        assert [(e["label"], e["time_s"]) for e in m["events"]] == [(d.label, round(d.time_s, 2)) for d in want]
        assert all(e["heard"] == "" for e in m["events"])        # no CSV beside the example
    import soxr
    stereo = np.stack([soxr.resample(audio, rate, 48000)] * 2, axis=1)
    sf.write(tmp_path / "stereo.wav", stereo, 48000)
    r2 = negative_stream_metric(model, tmp_path / "stereo.wav", ops[:1])
    assert r2["1x8"]["by_label"] == r["1x8"]["by_label"]


def test_negative_stream_events_say_what_was_heard(tmp_path, capsys):
    """With a `kws data stream` CSV beside the audio, every false alarm names the rows playing in
    the second before it; an unreadable CSV leaves "heard" empty instead of failing."""
    import shutil
    from kws.detector import resolve_model
    model = resolve_model(None)
    audio = tmp_path / "talk.flac"
    shutil.copy(EXAMPLE, audio)
    csv = tmp_path / "talk.flac.csv"
    csv.write_text("start_s,end_s,kind,name,text,snr_db,detail\n"
                   "0.0,5.0,speech,kokoro:mix+1,first half,,dry\n5.0,12.0,music,loop,,,\n")
    ev = negative_stream_metric(model, audio, model.arch.operating_points[:1])["1x8"]["events"]
    assert ev and all(e["heard"] for e in ev)
    for e in ev:
        assert ("first half" in e["heard"]) == (e["time_s"] - 1.0 <= 5.0)
        assert ("music loop" in e["heard"]) == (e["time_s"] + 0.2 >= 5.0)
    from kws.distill.cli import MAX_EVENTS_SHOWN, print_negative_streams
    m = negative_stream_metric(model, audio, model.arch.operating_points[:1])
    m["1x8"]["events"] = m["1x8"]["events"] * MAX_EVENTS_SHOWN       # more than the report lists
    print_negative_streams({"talk.flac": m})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("negative stream talk.flac (0.2 min), 1x8: ")
    assert len(lines) == 2 + MAX_EVENTS_SHOWN and "heard: " in lines[1] and "more in --json" in lines[-1]
    csv.write_bytes(b"\xff\xfe\x00garbage")
    ev = negative_stream_metric(model, audio, model.arch.operating_points[:1])["1x8"]["events"]
    assert ev and all(e["heard"] == "" for e in ev)


def test_negative_stream_bad_files(tmp_path):
    from kws.detector import resolve_model
    model = resolve_model(None)
    ops = model.arch.operating_points[:1]
    with pytest.raises(FileNotFoundError, match="negative stream not found"):
        negative_stream_metric(model, tmp_path / "missing.wav", ops)
    (tmp_path / "junk.wav").write_bytes(b"RIFF....not audio")
    with pytest.raises(KwsError, match="cannot read the negative stream"):
        negative_stream_metric(model, tmp_path / "junk.wav", ops)
    import soundfile as sf
    sf.write(tmp_path / "short.wav", np.zeros(800, np.float32), 16000)
    with pytest.raises(KwsError, match="at least 1 s"):
        negative_stream_metric(model, tmp_path / "short.wav", ops)


def test_eval_refuses_a_missing_negative_stream_before_the_work(tmp_path, capsys):
    from kws.cli import main
    (tmp_path / "yes").mkdir()
    assert main(["eval", "--data", str(tmp_path), "--negative-stream", str(tmp_path / "nope.wav")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "negative stream not found" in err


def test_stream_background_files(tmp_path):
    import soundfile as sf
    from kws.distill.evaluate import load_background
    with pytest.raises(FileNotFoundError, match="stream background not found"):
        load_background(tmp_path / "none.wav")
    (tmp_path / "junk.flac").write_bytes(b"fLaC junk")
    with pytest.raises(KwsError, match="cannot read the stream background"):
        load_background(tmp_path / "junk.flac")
    sf.write(tmp_path / "silent.wav", np.zeros(32000, np.float32), 16000)
    with pytest.raises(KwsError, match="at least 1 s of sound"):
        load_background(tmp_path / "silent.wav")
    tone = np.sin(np.arange(48000 * 2) * 0.05).astype(np.float32)
    sf.write(tmp_path / "stereo48k.wav", np.stack([tone, tone], 1), 48000)
    x = load_background(tmp_path / "stereo48k.wav")
    assert x.dtype == np.float32 and x.ndim == 1 and abs(len(x) - 32000) <= 1
