"""kws.Detector: chunk invariance, run-time operating point switching, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kws
from kws import detector as detmod
from kws.fsmn.model import random_model

LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_"]


@pytest.fixture(scope="module")
def model():
    # a random model; the seed is one whose keywords win on the test audio (4 detections, 2
    # labels), so detection, timing, refractory and chunking are exercised. Re-pick it when
    # random_model's draws change (they did with model format 2).
    return random_model(labels=LABELS, seed=10)


@pytest.fixture(scope="module")
def audio(tone_bursts):
    return tone_bursts


def run(det, x, cuts):
    out = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        out += det.feed(x[a:b])
    return out


def test_detects_with_low_threshold_and_reports_times(model, audio):
    det = kws.Detector(model, threshold=0.05, refractory_s=0.5)
    dets = det.feed(audio)
    assert dets and all(d.label in LABELS[:10] for d in dets)
    assert all(0.99 <= d.time_s <= 3.0 for d in dets)
    assert det.hop_frames == 20                            # default hop: 200 ms
    assert det.inferences == 1 + (297 - 97) // 20          # one per hop once 1 s is in
    times = [d.time_s for d in dets]
    assert all(b - a >= 0.5 for a, b in zip(times, times[1:]))   # refractory period


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 5000), min_size=1, max_size=40), st.sampled_from([1.0, 0.5, 0.25]))
def test_results_do_not_depend_on_chunking(model, audio, sizes, width):
    whole = kws.Detector(model, width=width, threshold=0.05)
    want = whole.feed(audio)
    cuts = np.minimum(np.cumsum([0] + sizes), len(audio)).tolist() + [len(audio)]
    det = kws.Detector(model, width=width, threshold=0.05)
    assert run(det, audio, cuts) == want
    np.testing.assert_array_equal(det.last_scores, whole.last_scores)


def test_sample_by_sample_equals_whole(model, audio):
    x = audio[:20000]
    a = kws.Detector(model, threshold=0.05)
    want = a.feed(x)
    b = kws.Detector(model, threshold=0.05)
    got = []
    for i in range(len(x)):
        got += b.feed(x[i:i + 1])
    assert got == want and b.inferences == a.inferences
    np.testing.assert_array_equal(a.last_scores, b.last_scores)


def test_int16_and_float64_input(model, audio):
    pcm = np.round(audio * 32767).astype(np.int16)
    a = kws.Detector(model, threshold=0.05).feed(pcm)
    b = kws.Detector(model, threshold=0.05).feed(pcm.astype(np.float64) / 32768)
    assert a == b


def test_mixed_dtypes_in_one_stream(model, audio):
    pcm = np.round(audio * 32767).astype(np.int16)
    want = kws.Detector(model, threshold=0.05).feed(pcm)
    det = kws.Detector(model, threshold=0.05)
    got = []
    for i, start in enumerate(range(0, len(pcm), 700)):
        part = pcm[start:start + 700]
        got += det.feed(part if i % 3 == 0 else (part / 32768).astype([np.float32, np.float64][i % 2]))
    assert got == want


def test_switch_operating_point_at_run_time(model, audio):
    det = kws.Detector(model, threshold=0.05)
    det.feed(audio[:16000])
    full = det.last_scores.copy()
    det.width, det.blocks = 0.5, 4
    assert det.operating_point.name == "0.5x4" and det.width == 0.5 and det.blocks == 4
    det.feed(audio[16000:19200])                       # one more 200 ms hop
    assert not np.array_equal(det.last_scores, full)
    with pytest.raises(ValueError, match="width"):
        det.width = 0.3
    with pytest.raises(ValueError, match="blocks"):
        det.blocks = 3
    assert det.operating_point.name == "0.5x4"


def test_reset_restarts_time(model, audio):
    det = kws.Detector(model, threshold=0.05)
    first = det.feed(audio)
    det.reset()
    assert det.feed(audio) == first


def test_resampled_input_runs_at_the_right_pace(model, audio):
    import soxr
    x48 = soxr.resample(audio, 16000, 48000).astype(np.float32)
    det = kws.Detector(model, threshold=0.05)
    for i in range(0, len(x48), 4800):
        det.feed(x48[i:i + 4800], sample_rate=48000)
    ref = kws.Detector(model, threshold=0.05)
    ref.feed(audio)
    assert abs(det.inferences - ref.inferences) <= 1
    with pytest.raises(ValueError, match="sample_rate changed"):
        det.feed(audio[:100], sample_rate=16000)


@pytest.mark.parametrize("bad, match", [
    (np.array([0.0, np.nan], np.float32), "NaN"),
    (np.array([np.inf], np.float64), "NaN or infinite"),
    (np.zeros((100, 2), np.float32), "mix down"),
    (np.array(["a", "b"]), "numeric"),
    (np.zeros(10, np.complex64), "complex"),
    (np.zeros(10, np.int32), "int16"),
    ("hello", "numeric|1-D"),
])
def test_bad_audio(model, bad, match):
    with pytest.raises(ValueError, match=match):
        kws.Detector(model).feed(bad)


@pytest.mark.parametrize("rate", [0, -16000, 10**9, 16000.5, True, "16000", None])
def test_bad_sample_rate(model, rate):
    with pytest.raises(ValueError, match="sample_rate"):
        kws.Detector(model).feed(np.zeros(10, np.float32), sample_rate=rate)


@pytest.mark.parametrize("kwargs, match", [
    ({"keywords": ["yes", "hello"]}, "unknown keyword"),
    ({"keywords": ["_unknown_"]}, "unknown keyword"),
    ({"keywords": []}, "unknown keyword"),
    ({"threshold": 0}, "threshold"),
    ({"threshold": 1.5}, "threshold"),
    ({"threshold": {"yes": 0.7, "hello": 0.5}}, "unknown keyword"),
    ({"threshold": {"yes": 0}}, "threshold of 'yes'"),
    ({"threshold": {"_unknown_": 0.5}}, "unknown keyword"),
    ({"threshold": "yes=0.7,no"}, "label=value"),
    ({"threshold": "loud"}, "threshold must be"),
    ({"threshold": [0.5]}, "threshold"),
    ({"width": 0.7}, "width"),
    ({"blocks": 5}, "blocks"),
    ({"hop_ms": 15}, "hop_ms"),
    ({"hop_ms": 5000}, "hop_ms"),
    ({"smoothing": 0}, "smoothing"),
    ({"model": 42}, "model must be"),
])
def test_bad_arguments(model, kwargs, match):
    kwargs = {"model": model, **kwargs}
    with pytest.raises(ValueError, match=match):
        kws.Detector(**kwargs)


def test_keywords_filter(model, audio):
    det = kws.Detector(model, threshold=0.05, keywords="yes,no")
    assert det.keywords == ["yes", "no"]
    assert all(d.label in ("yes", "no") for d in det.feed(audio))


def test_empty_and_tiny_chunks(model):
    det = kws.Detector(model)
    assert det.feed(np.zeros(0, np.float32)) == []
    assert det.feed(np.zeros(1, np.int16)) == []


def test_missing_default_model_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(detmod, "DEFAULT_MODEL", tmp_path / "absent.kws")
    with pytest.raises(kws.KwsError, match="no default model"):
        kws.Detector()


def test_a_keyword_fires_again_only_after_its_score_fell_below_threshold(model):
    """The trigger rule on a scripted posterior sequence (the network's scores replaced): a
    keyword held above threshold longer than the refractory period fires once; after a dip below
    threshold it fires again; another keyword may fire as soon as the refractory period ends."""
    det = kws.Detector(model, threshold=0.5, smoothing=1, refractory_s=0.4, hop_ms=200)
    yes, no = LABELS.index("yes"), LABELS.index("no")

    def post(k, p):
        v = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1), np.float32)
        v[k] = p
        return v

    script = ([post(yes, 0.9)] * 6 + [post(yes, 0.3)] + [post(yes, 0.8)] * 2   # hold, dip, again
              + [post(no, 0.9)] + [post(yes, 0.9)] * 3)                         # switch, back
    seq = iter(script)
    det.net.scores = lambda window, op: next(seq)
    dets = det.feed(np.zeros(15872 + 3200 * (len(script) - 1) + 100, np.float32))  # 97 frames + 20 per hop
    assert det.inferences == len(script)
    got = [(d.label, round(d.time_s - dets[0].time_s, 1)) for d in dets]
    # hops every 0.2 s: yes at 0; held (no repeat at 0.4, 0.6, 0.8, 1.0); dip at 1.2; yes at 1.4;
    # no at 1.8 (refractory 0.4 s over); yes again at 2.2 (it differs from the held 'no')
    assert got == [("yes", 0.0), ("yes", 1.4), ("no", 1.8), ("yes", 2.2)]


def test_per_keyword_thresholds(model):
    """A {label: threshold} mapping: a score between two keywords' thresholds fires the keyword
    with the lower one only; labels left out keep the default; a string means the same."""
    yes, no = LABELS.index("yes"), LABELS.index("no")

    def post(k, p):
        v = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1), np.float32)
        v[k] = p
        return v

    def fired(threshold):
        det = kws.Detector(model, threshold=threshold, smoothing=1, refractory_s=0, hop_ms=200)
        seq = iter([post(yes, 0.6), post(no, 0.6), post(yes, 0.3), post(no, 0.3)])
        det.net.scores = lambda window, op: next(seq)
        return [d.label for d in det.feed(np.zeros(15872 + 3200 * 3 + 100, np.float32))]

    assert fired({"yes": 0.7}) == ["no"]                 # no keeps the default 0.5
    assert fired("yes=0.7") == ["no"]
    assert fired({"yes": 0.5, "no": 0.65}) == ["yes"]
    assert fired(0.25) == ["yes", "no", "yes", "no"]
    assert kws.Detector(model, threshold={"yes": 0.7}).threshold["yes"] == 0.7
    assert kws.Detector(model, threshold=0.6).threshold == 0.6
    assert kws.Detector(model).threshold == 0.5


@pytest.mark.parametrize("text, want", [
    ("0.6", 0.6), (" 1 ", 1.0), ("yes=0.7,no=0.8", {"yes": 0.7, "no": 0.8}),
    ("yes = 0.7 , ", {"yes": 0.7}),
])
def test_parse_thresholds(text, want):
    from kws.thresholds import parse_thresholds
    assert parse_thresholds(text) == want
