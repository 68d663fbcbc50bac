"""The cascade: a cheap operating point listens, a wide one confirms (kws.Detector(confirm=...))."""

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kws
from kws.detector import resolve_operating_point
from kws.fsmn.model import random_model

LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_"]
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "audio" / "keywords.flac"


@pytest.fixture(scope="module")
def model():
    # a random model whose 0.25x2 point fires 5 times on this audio at threshold 0.1 and 1x8 agrees
    # with one of them: both outcomes of the confirmation are exercised
    return random_model(labels=LABELS, seed=1)


@pytest.fixture(scope="module")
def audio(tone_bursts):
    return np.tile(tone_bursts, 3)


@pytest.fixture(scope="module")
def example():
    import soundfile as sf
    x, sr = sf.read(EXAMPLE, dtype="float32")
    assert sr == 16000
    return x


def trace(model, op, audio, **kw):
    """Smoothed posteriors of every hop of a plain Detector at `op` (it never fires)."""
    det = kws.Detector(model, width=op.width, blocks=len(op.blocks), threshold=1.0, **kw)
    hop = det.hop_frames * model.frontend.hop_length
    out = []
    for i in range(0, len(audio), hop):
        before = det.inferences
        det.feed(audio[i:i + hop])
        if det.inferences != before:
            out.append(det.last_scores.copy())
    return np.array(out)


def replay(listen, confirm, thresholds, times, refractory_s, smoothing):
    """The cascade's rule written out over two score traces: the listening point would fire (its
    trigger rule), and the confirm point's most likely class is the same keyword at or above its
    threshold. Returns [(label index, time)] and the hops the confirm point had to score."""
    out, scored, quiet, held = [], set(), -math.inf, None
    for k, (s, c) in enumerate(zip(listen, confirm)):
        if held is not None and s[held] < thresholds[held]:
            held = None
        best = int(np.argmax(s))
        if times[k] < quiet or s[best] < thresholds[best] or best == held:
            continue
        scored.update(range(max(0, k - smoothing + 1), k + 1))
        if int(np.argmax(c)) == best and c[best] >= thresholds[best]:
            quiet, held = times[k] + refractory_s, best
            out.append((best, times[k]))
    return out, scored


@pytest.mark.parametrize("case", ["random model", "default model"])
def test_cascade_equals_the_rule_over_both_points_and_never_reports_a_rejected_detection(
        case, model, audio, example):
    # random: 0.25x2 fires 5 times, 1x8 agrees once. Default model on the example recording at
    # threshold 0.2: 0.25x4 takes the "no" for an "up", which 1x8 rejects (v9's 0.5x4 fires on
    # nothing but the five keywords there, even at 0.1).
    m, x, width, blocks, thr = ((model, audio, 0.25, 2, 0.1) if case == "random model" else
                                (kws.detector.resolve_model(None), example, 0.25, 4, 0.2))
    kw = dict(threshold=thr, refractory_s=0.5)
    det = kws.Detector(m, width=width, blocks=blocks, confirm="1x8", **kw)
    got = det.feed(x)
    plain = kws.Detector(m, width=width, blocks=blocks, **kw).feed(x)
    assert got and len(got) < len(plain)            # some confirmed, some rejected
    listen = trace(m, det.operating_point, x)
    confirm = trace(m, m.arch.operating_point(1.0, 8), x)
    fe = m.frontend
    frames = m.arch.n_frames + np.arange(len(listen)) * det.hop_frames    # at each hop
    times = np.round(((frames - 1) * fe.hop_length + fe.n_fft) / fe.sample_rate, 3)
    labels = list(m.labels)
    for d in got:                                   # the confirm point alone fires this label here
        k = int(np.flatnonzero(times == d.time_s)[0])
        c, i = confirm[k], labels.index(d.label)
        assert d.confirmed_by == "1x8"
        assert int(np.argmax(c)) == i and c[i] >= thr
        assert d.confirm_score == float(c[i]) and d.score == float(listen[k][i])
    want, scored = replay(listen, confirm, det._thresh, times, 0.5, det.smoothing)
    assert [(labels.index(d.label), d.time_s) for d in got] == want
    assert det.confirm_inferences == len(scored)    # each needed hop scored once, no other


def test_default_model_cascade_drops_the_listening_points_wrong_label(example):
    """On the example recording ("yes, stop, go, left, no") 0.25x4 at threshold 0.2 takes the "no"
    for an "up"; 1x8 does not agree, so it is not reported (default model v9; v4 at 0.5x4 heard a
    "go" after the "no" where there is none, v3 a stray "yes" between "go" and "left")."""
    plain = kws.Detector(width=0.25, blocks=4, threshold=0.2, refractory_s=0.5).feed(example)
    got = kws.Detector(width=0.25, blocks=4, threshold=0.2, refractory_s=0.5, confirm="1x8").feed(example)
    assert [d.label for d in plain] == ["yes", "stop", "go", "left", "up"]
    assert [d.label for d in got] == ["yes", "stop", "go", "left"]
    # each confirmed at the listening point's hop or a few hops later (1x8 must reach the threshold
    # too; a rejected firing starts no refractory period, so the next hop tries again)
    assert all(0 <= g.time_s - p.time_s <= 0.6 for g, p in zip(got, plain))
    assert all(d.confirmed_by == "1x8" and d.confirm_score >= 0.2 for d in got)
    # at the shipped (calibrated) thresholds 1x8 agrees with every detection of 0.5x4, at its hop
    # or up to two hops later (where 1x8's smoothed score reaches its own threshold too); v4.1's
    # thresholds find all five keywords at 0.5x4 (v4's missed "go": its 0.5x4 threshold was 0.94)
    plain_05 = kws.Detector(width=0.5, blocks=4).feed(example)
    got_05 = kws.Detector(width=0.5, blocks=4, confirm="1x8").feed(example)
    assert [d.label for d in plain_05] == [d.label for d in got_05] == ["yes", "stop", "go", "left", "no"]
    assert all(0 <= g.time_s - p.time_s <= 0.4 for g, p in zip(got_05, plain_05))


class Counter:
    """Wraps a Detector's net.scores and counts the calls per operating point."""

    def __init__(self, det):
        self.calls, self.scores = {}, det.net.scores

        def counted(window, op):
            self.calls[op.name] = self.calls.get(op.name, 0) + 1
            return self.scores(window, op)
        det.net.scores = counted


def test_confirm_point_never_runs_where_the_listening_point_does_not_fire(model, audio, example):
    quiet = (0.01 * np.random.default_rng(3).standard_normal(5 * 16000)).astype(np.float32)
    det = kws.Detector(width=0.5, blocks=4, confirm="1x8")
    n = Counter(det)
    assert det.feed(quiet) == [] and det.feed(example[:12000]) == []     # silence, then no keyword yet
    assert n.calls == {"0.5x4": det.inferences} and det.confirm_inferences == 0
    assert det.feed(example[12000:]) != []                               # keywords: now it runs
    assert n.calls["1x8"] == det.confirm_inferences > 0
    assert n.calls["0.5x4"] == det.inferences
    # each hop is scored at the confirm point at most once, however often the listener fires
    det = kws.Detector(model, width=0.25, blocks=2, threshold=0.1, refractory_s=0.5, confirm="1x8")
    n = Counter(det)
    det.feed(audio)
    assert 0 < n.calls["1x8"] <= det.inferences
    assert n.calls["0.25x2"] == det.inferences


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 5000), min_size=1, max_size=40), st.sampled_from([1, 2, 3]))
def test_cascade_results_do_not_depend_on_chunking(model, audio, sizes, smoothing):
    kw = dict(width=0.25, blocks=2, threshold=0.1, refractory_s=0.5, smoothing=smoothing, confirm="1x8")
    whole = kws.Detector(model, **kw)
    want = whole.feed(audio)
    cuts = np.minimum(np.cumsum([0] + sizes), len(audio)).tolist() + [len(audio)]
    det = kws.Detector(model, **kw)
    got = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        got += det.feed(audio[a:b])
    assert got == want
    assert det.confirm_inferences == whole.confirm_inferences and det.inferences == whole.inferences


def test_without_confirm_nothing_changes(model, audio):
    det = kws.Detector(model, width=0.25, blocks=2, threshold=0.1, refractory_s=0.5)
    assert det.confirm is None
    assert all(d.confirmed_by is None and d.confirm_score is None for d in det.feed(audio))
    assert det.confirm_inferences == 0


@pytest.mark.parametrize("spec, want", [("1x8", "1x8"), ("1.0x8", "1x8"), (" 0.5x4 ", "0.5x4")])
def test_resolve_operating_point(model, spec, want):
    assert resolve_operating_point(model.arch, spec).name == want
    assert kws.Detector(model, confirm=spec).confirm.name == want


@pytest.mark.parametrize("spec, match", [("3x8", "expected width x blocks, one of 1x8"),
                                         ("1x5", "one of 1x8"), ("wide", "expected width x blocks"),
                                         ("", "expected"), (8, "a string like '1x8'")])
def test_bad_confirm_point(model, spec, match):
    with pytest.raises(ValueError, match=match):
        kws.Detector(model, confirm=spec)


def test_bench_reports_the_cascade_beside_its_listening_point():
    from kws.bench import bench_cascade
    from kws.detector import resolve_model
    m = resolve_model(None)
    ops = [m.arch.operating_point(1.0, 8), m.arch.operating_point(0.5, 4)]
    c = bench_cascade(m, ops, seconds=3.0, say=lambda s: None, rounds=1)
    assert c["confirm"] == "1x8" and [r["point"] for r in c["rows"]] == ["0.5x4>1x8"]
    r = c["rows"][0]
    assert r["confirm_per_hop_keyword_free"] == 0.0          # noise: the listener never fires
    assert r["confirm_per_hop_dense_keywords"] > 0           # keywords: 1x8 confirms them
    for key in ("keyword_free", "dense_keywords"):
        assert r[f"cpu_per_audio_s_{key}"] > 0 and r[f"listening_point_cpu_{key}"] > 0
        assert r[f"cpu_ratio_{key}"] == r[f"cpu_per_audio_s_{key}"] / r[f"listening_point_cpu_{key}"]


def test_pi_cascade_estimate_adds_the_confirm_point_per_hop():
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from pi_estimate import cascade_estimate
    listen = {"point": "0.5x4", "instructions": 1_000_000}
    confirm = {"point": "1x8", "instructions": 3_000_000}
    e = cascade_estimate(listen, confirm, 0.1, hop_s=0.2, ipc=1.0, clock_hz=1.2e9)
    assert e["instructions_per_audio_s"] == 6_500_000              # (1 M + 0.1 x 3 M) x 5 hops/s
    assert e["ms_per_audio_s"] == pytest.approx(6.5e6 / 1.2e9 * 1e3, abs=1e-3)
    assert cascade_estimate(listen, None, 0.0)["instructions_per_audio_s"] == 5_000_000


def listen(*args):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "kws", "listen", "--file", str(EXAMPLE), "--json", *args],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    import json
    return r, [json.loads(line) for line in r.stdout.splitlines()] if r.returncode == 0 else None


def test_listen_confirm_flag():
    point = ["--width", "0.25", "--blocks", "4", "--threshold", "0.2"]
    r, auto = listen(*point)                               # default: narrower points confirm with 1x8
    assert r.returncode == 0 and "operating point 0.25x4 confirmed by 1x8" in r.stderr
    assert [(d["label"], d["confirmed_by"]) for d in auto] == [("yes", "1x8"), ("stop", "1x8"), ("go", "1x8"),
                                                               ("left", "1x8")]
    r, explicit = listen(*point, "--confirm", "1x8")
    assert explicit == auto
    r, off = listen(*point, "--confirm", "none")
    assert [d["label"] for d in off] == ["yes", "stop", "go", "left", "up"] and "confirmed_by" not in off[0]
    r, full = listen()                                     # the widest point listens alone
    assert "confirmed by" not in r.stderr and len(full) == 5 and "confirmed_by" not in full[0]
    r, _ = listen(*point, "--confirm", "3x3")
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1].startswith("kws: error: operating point '3x3'")


def test_the_confirm_point_uses_its_own_calibrated_thresholds(audio):
    """With per-point thresholds (kws calibrate) the listening point fires at its own and the
    confirm point agrees only at or above ITS own: a confirm threshold just above the score it
    reached silences the cascade, one just below lets the detection through."""
    m = random_model(labels=LABELS, seed=4)      # 0.25x2 fires once here, 0.5x4 confirms at ~0.33
    keywords = LABELS[:10]
    low = {k: 0.1 for k in keywords}
    base = kws.Detector(m, width=0.25, blocks=2, threshold=0.1, confirm="0.5x4", smoothing=2).feed(audio)
    assert len(base) == 1 and 0.2 < base[0].confirm_score < 0.9
    c = base[0].confirm_score
    for confirm_thr, fires in ((c + 0.01, False), (c - 0.01, True)):
        m.point_thresholds = {"0.25x2": low, "0.5x4": {k: confirm_thr for k in keywords}}
        det = kws.Detector(m, width=0.25, blocks=2, confirm="0.5x4", smoothing=2)
        assert det.thresholds == low
        assert (det.feed(audio) == base) is fires
