"""`kws mine`: the windows of keyword-free training audio a model takes for a keyword become
`_unknown_` training clips (hard negatives). The clips are exactly the stream's windows the model
scored, reach the training split only, replace the same stream's earlier clips, and audio of
validation or testing voices (or the evaluation music) is refused. `kws data stream --split
training` makes the audio to mine (needs the TTS engines: scripts/install-tts.sh)."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from kws.cli import main
from kws.data.layout import which_set
from kws.data.speech_commands import SpeechCommands
from kws.data.tasks import MINED, UNKNOWN
from kws.detector import Detector, resolve_model
from kws.distill.mine import check_training_stream, mine, peaks, training_speaker
from kws.frontend import features
from kws.fsmn.runtime import BinaryFSMN

EXAMPLE = "examples/audio/keywords.flac"      # 5 keywords: mined as if keyword-free (no CSV)


def _table(data):
    with open(data / MINED / "mined.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_peaks_keeps_the_highest_of_each_run_and_nothing_below():
    s = np.array([0.1, 0.6, 0.9, 0.7, 0.2, 0.55, 0.1, 0.8, 0.85, 0.3])
    t = np.arange(10) * 0.1
    assert peaks(s, t, 0.5, 0.25) == [2, 5, 8]
    assert peaks(s, t, 0.5, 0.0) == [1, 2, 3, 5, 7, 8]
    assert peaks(s, t, 0.5, 1.0) == [2]
    assert peaks(s, t, 0.95, 0.1) == []


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 100)), min_size=1, max_size=60),
       st.integers(0, 20), st.integers(0, 30))
def test_peaks_is_greedy_non_maximum_suppression(hops, thr, gap):
    """The kept hops are what the plain rule keeps: highest first, each at least `gap` from all
    kept before it (ties by index); the fast version looks at the two nearest kept times only."""
    s = np.array([a / 20 for a, _ in hops])
    t = np.array(sorted(b / 10 for _, b in hops))
    want = []
    for j in np.argsort(-s, kind="stable"):
        if s[j] < thr / 20:
            break
        if all(abs(t[j] - t[k]) >= gap / 10 for k in want):
            want.append(int(j))
    assert peaks(s, t, thr / 20, gap / 10) == sorted(want)


def test_speaker_ids_are_training_ones_and_not_listed():
    sid = training_speaker("s.flac", set())
    assert which_set(f"{MINED}/{sid}_nohash_0.wav") == "training"
    assert sid == training_speaker("s.flac", set())                 # deterministic
    other = training_speaker("s.flac", {f"{MINED}/{sid}_nohash_3.wav"})
    assert other != sid and which_set(f"{MINED}/{other}_nohash_0.wav") == "training"


def _voice_of(split):
    from kws.data.voices import all_voices, group_split
    return next(v.key for v in all_voices() if group_split(v.group) == split)


def test_audio_outside_the_training_split_is_refused():
    from kws.data.streams import MUSIC_DIR, sample_split
    from kws.errors import KwsError
    ok = [{"kind": "speech", "name": _voice_of("training")}, {"kind": "babble", "name": "4 talkers"}]
    check_training_stream("s.flac", ok)
    for split, why in (("validation", "tuning thresholds"), ("testing", "the yardsticks")):
        with pytest.raises(KwsError, match=f"of the {split} split.*{why}"):
            check_training_stream("s.flac", ok + [{"kind": "speech", "name": _voice_of(split)}])
    with pytest.raises(KwsError, match="not a voice this project may train on"):
        check_training_stream("s.flac", [{"kind": "speech", "name": "espeak-ng:nobody"}])
    split = sample_split(p.stem for p in MUSIC_DIR.glob("*.flac"))
    train = next(n for names in split["training"].values() for n in names)
    held = next(n for names in split["evaluation"].values() for n in names)
    check_training_stream("s.flac", [{"kind": "music", "name": train}])
    with pytest.raises(KwsError, match="evaluation part"):
        check_training_stream("s.flac", [{"kind": "music", "name": f"{train}+{held}"}])


@pytest.fixture()
def data(toy_data, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(toy_data, out)
    return out


def test_mined_clips_are_the_windows_the_model_scored(data):
    model = resolve_model("default")
    r = mine(model, [EXAMPLE], data, ["1x8", "0.5x4"], threshold=0.5, hop_ms=100, min_gap_s=1.0)
    audio, sr = sf.read(EXAMPLE, dtype="float32")
    rows = _table(data)
    assert r["clips"] == len(rows) >= 5 and r["streams"][EXAMPLE]["clips"] == len(rows)
    assert sum(r["streams"][EXAMPLE]["by_label"].values()) == len(rows)
    net, ops = BinaryFSMN(model), {op.name: op for op in model.arch.operating_points}
    times = sorted(float(row["time_s"]) for row in rows)
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(times, times[1:]))
    feats, n = features(audio, model.frontend), model.arch.n_frames
    hop = model.frontend.hop_length
    for row in rows:
        clip, rate = sf.read(data / row["path"], dtype="float32")
        start = int(row["start_sample"])
        window = audio[start:start + sr]
        assert rate == sr and clip.shape == (sr,) and window.size == sr and start % hop == 0
        np.testing.assert_allclose(clip, window, atol=0.5 / 32767 + 1e-7)     # the window, as int16
        # ... whose features are the frames the model scored, ending at time_s
        f0 = start // hop
        np.testing.assert_array_equal(features(window, model.frontend), feats[f0:f0 + n])
        end = (f0 + n - 1) * hop + model.frontend.n_fft
        assert float(row["time_s"]) == pytest.approx(end / sr, abs=0.005)
        p = np.exp(net.logits(feats[f0:f0 + n], ops[row["point"]]).astype(np.float64))
        p /= p.sum()
        assert p[list(model.labels).index(row["label"])] == pytest.approx(float(row["score"]), abs=1e-4)
        assert float(row["score"]) >= 0.5 and row["label"] in Detector(model).keywords


def test_mined_clips_are_unknown_training_items_only(data):
    model = resolve_model("default")
    before = {s: len(SpeechCommands(data, s, "custom", ["yes", "no"]).items)
              for s in ("training", "validation", "testing")}
    n = mine(model, [EXAMPLE], data, threshold=0.5)["clips"]
    assert n > 0
    train = SpeechCommands(data, "training", "custom", ["yes", "no"])
    mined = [(f, y) for f, y in train.items if f and f.startswith(MINED + "/")]
    assert len(mined) == n and {train.labels[y] for _, y in mined} == {UNKNOWN}
    for s in ("validation", "testing"):
        assert len(SpeechCommands(data, s, "custom", ["yes", "no"]).items) == before[s]
    boosted = SpeechCommands(data, "training", "custom", ["yes", "no"], unknown_boost={MINED: 3})
    assert sum(1 for f, _ in boosted.items if f and f.startswith(MINED)) == 3 * n


def test_mining_again_replaces_the_streams_clips(data, tmp_path):
    model = resolve_model("default")
    mine(model, [EXAMPLE], data, threshold=0.3)
    other = tmp_path / "other.flac"
    shutil.copy(EXAMPLE, other)
    b = mine(model, [other], data, threshold=0.5)["clips"]
    r = mine(model, [EXAMPLE], data, threshold=0.5, max_per_stream=2)
    rows = _table(data)
    files = sorted(f"{MINED}/{p.name}" for p in (data / MINED).glob("*.wav"))
    assert r["clips"] == 2 and b > 2 and files == sorted(x["path"] for x in rows) and len(rows) == 2 + b
    mine_rows = [x for x in rows if x["stream"] == EXAMPLE]
    other_rows = [x for x in rows if x["stream"] == str(other)]
    assert len(mine_rows) == 2 and len(other_rows) == b
    # the two kept are the two highest-scoring windows of the same audio mined at 0.5
    assert sorted(x["score"] for x in mine_rows) == sorted((x["score"] for x in other_rows), key=float)[-2:]


def test_a_further_round_keeps_the_earlier_clips_and_adds_only_new_windows(data, tmp_path):
    model = resolve_model("default")
    fresh = _table_of(model, data, tmp_path, threshold=0.5)
    first = mine(model, [EXAMPLE], data, threshold=0.5, max_per_stream=1)["clips"]
    before = {x["path"]: (data / x["path"]).read_bytes() for x in _table(data)}
    added = mine(model, [EXAMPLE], data, threshold=0.5, keep_earlier=True)["clips"]
    rows = _table(data)
    files = sorted(f"{MINED}/{p.name}" for p in (data / MINED).glob("*.wav"))
    assert first == 1 and added == len(fresh) - 1 and files == sorted(x["path"] for x in rows)
    # round 1's clip is untouched, and the union is what one round at 0.5 finds
    assert all((data / k).read_bytes() == v for k, v in before.items())
    assert sorted(int(x["start_sample"]) for x in rows) == sorted(int(x["start_sample"]) for x in fresh)
    # nothing new when the same model mines again
    assert mine(model, [EXAMPLE], data, threshold=0.5, keep_earlier=True)["clips"] == 0
    assert len(_table(data)) == len(fresh)


def _table_of(model, data, tmp_path, **kw):
    """The table one round of mining writes into a fresh copy of `data`."""
    copy = tmp_path / "fresh"
    shutil.copytree(data, copy)
    mine(model, [EXAMPLE], copy, **kw)
    return _table(copy)


def test_cli_refuses_testing_audio_and_bad_arguments(data, tmp_path, capsys):
    stream = tmp_path / "s.wav"
    sf.write(stream, np.zeros(32000, np.float32), 16000)
    with open(str(stream) + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["start_s", "end_s", "kind", "name", "text", "snr_db", "detail"])
        w.writeheader()
        w.writerow({"start_s": 0, "end_s": 1, "kind": "speech", "name": _voice_of("testing"), "text": "hi"})
    for args, message in (([], "of the testing split"),
                          (["--threshold", "0"], "threshold must be in"),
                          (["--points", "3x9"], "3x9"),
                          (["--max-per-stream", "0"], "--max-per-stream must be at least 1")):
        assert main(["mine", "--data", str(data), "--stream", str(stream), *args]) != 0
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    bad = tmp_path / "nan.wav"
    sf.write(bad, np.full(32000, np.nan, np.float32), 16000, subtype="FLOAT")
    for args, message in (([str(bad)], "NaN or infinite"), ([str(tmp_path / "none.wav")], "not found"),
                          ([str(stream) + ".csv"], "cannot read")):
        assert main(["mine", "--data", str(data), "--stream", *args]) != 0
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert main(["mine", "--data", str(tmp_path / "nowhere"), "--stream", EXAMPLE]) != 0
    assert "data set folder" in capsys.readouterr().err
    assert not (data / MINED).exists()


def test_a_training_stream_is_mined(data, tmp_path, capsys):
    """`kws data stream --split training`: training voices, the training part of the sentences;
    `kws mine` takes it and writes what the model fired on."""
    from kws.data.streams import sentences
    from kws.data.tasks import KEYWORDS_12
    from kws.data.voices import find_voice, group_split
    out = tmp_path / "train.flac"
    assert main(["data", "stream", "--out", str(out), "--kind", "speech", "--minutes", "0.5",
                 "--engines", "espeak-ng,festival,flite", "--seed", "3", "--split", "training"]) == 0
    with open(str(out) + ".csv", newline="") as f:
        spoken = [r for r in csv.DictReader(f) if r["kind"] == "speech"]
    assert spoken and all(group_split(find_voice(r["name"]).group) == "training" for r in spoken)
    train_text = set(sentences(set(KEYWORDS_12), "training"))
    assert all(r["text"] in train_text for r in spoken)
    capsys.readouterr()
    assert main(["mine", "--data", str(data), "--stream", str(out), "--threshold", "0.05",
                 "--points", "1x8,0.5x4"]) == 0
    printed = capsys.readouterr().out
    rows = _table(data)
    assert rows and f"kws mine: {len(rows)} clip(s)" in printed
    assert {x["point"] for x in rows} <= {"1x8", "0.5x4"} and all(x["heard"] for x in rows)
