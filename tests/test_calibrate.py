"""`kws calibrate`: per-keyword thresholds per operating point from validation streams.

The choice rule on hand-made score traces (exact), then the whole command on a small synthesized
validation split with the shipped model: the thresholds land in the model file, the Detector uses
them, and the false alarms the report gives are the Detector's own on the same audio."""

import json

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

import kws
from kws.cli import main
from kws.distill.calibrate import TRADEOFF_BUDGETS, allocate, choose
from kws.fsmn.model import load_model

LABELS = ["yes", "no", "_unknown_", "_silence_"]


def _trace(peaks, hop=0.2, n=400):
    """scores [n, 4] (background: _silence_ 0.9) with bumps {hop index: (class, score)}."""
    scores = np.full((n, 4), 0.1 / 3)
    scores[:, 3] = 0.9
    for j, (c, s) in peaks.items():
        scores[j] = (1 - s) / 3
        scores[j, c] = s
    return scores, hop * (np.arange(n) + 5), n * hop


def _two_keywords():
    """A keyword stream ("yes" said at 0.9 and 0.62, a stray "yes" at 0.7 in a gap, "no" said at
    0.55 and 0.95) and keyword-free audio ("yes" peaks at 0.66, "no" at 0.3): the two traces."""
    s, t, sec = _trace({20: (0, 0.9), 60: (0, 0.62), 100: (0, 0.7), 140: (1, 0.55), 180: (1, 0.95)})
    events = [("yes", t[20] - 1.0, t[20]), ("yes", t[60] - 1.0, t[60]),
              ("no", t[140] - 1.0, t[140]), ("no", t[180] - 1.0, t[180])]
    neg_s, neg_t, neg_sec = _trace({50: (0, 0.66), 90: (1, 0.3)})
    return [(s, t, events, sec), (neg_s, neg_t, [], neg_sec)]


def test_over_budget_the_unavoidable_false_alarms_are_taken_as_given():
    """One keyword's fewest expected false alarms (1.5) exceed the whole budget (1): the other
    keyword must not be pushed to its highest threshold for it; the budget is shared on top."""
    from kws.distill.calibrate import allocate
    rows = {"a": [(0.5, 3, 10, 10), (0.7, 2, 9, 10), (0.9, 1, 8, 10)],
            "b": [(0.5, 1, 10, 10), (0.7, 0, 6, 10), (0.9, 0, 2, 10)]}
    expected = {"a": np.array([3.0, 2.0, 1.5]), "b": np.array([0.5, 0.1, 0.01])}
    chosen, within = allocate(rows, expected, budget=1.0)
    assert not within and chosen == {"a": 1, "b": 0}     # 2.5 expected: 1.51 given + 1 of budget


def test_choose_stops_just_above_the_highest_keyword_free_score():
    traces = _two_keywords()
    r = choose(traces, LABELS, ["yes", "no"], fa_per_hour=0.5, min_threshold=0.4, refractory_s=1.5,
               pool=0)
    assert r["yes"]["threshold"] == pytest.approx(0.71)        # above the stray 0.70
    assert (r["yes"]["hits"], r["yes"]["positives"], r["yes"]["false_alarms"]) == (1, 2, 0)
    assert r["no"]["threshold"] == pytest.approx(0.4)          # nothing to avoid: the floor
    assert (r["no"]["hits"], r["no"]["frr"]) == (2, 0.0)
    # a budget of 2 false alarms over these 160 s: "no" needs none, so "yes" gets both and finds
    # its 0.62 too (equal shares would have stopped it at 0.67: one each)
    loose = choose(traces, LABELS, ["yes", "no"], fa_per_hour=2 * 3600 / 160, min_threshold=0.4,
                   refractory_s=1.5, pool=0)
    assert loose["yes"]["threshold"] == pytest.approx(0.4)
    assert (loose["yes"]["false_alarms"], loose["yes"]["hits"]) == (2, 2)
    one = choose(traces, LABELS, ["yes", "no"], fa_per_hour=1 * 3600 / 160, min_threshold=0.4,
                 refractory_s=1.5, pool=0)
    assert one["yes"]["threshold"] == pytest.approx(0.67) and one["yes"]["false_alarms"] == 1
    # a cap keeps "yes" within hearing when the budget would need it higher: over budget, flagged
    capped = choose(traces, LABELS, ["yes", "no"], fa_per_hour=0.5, min_threshold=0.4, refractory_s=1.5,
                    max_threshold=0.68, pool=0)
    assert capped["yes"]["threshold"] == pytest.approx(0.67) and capped["yes"]["false_alarms"] == 1
    assert not capped["yes"]["within_budget"] and capped["no"]["threshold"] == pytest.approx(0.4)
    # nothing within budget even at 0.99: the fewest false alarms (then the lowest), flagged
    bad = _trace({10: (0, 1.0), 50: (0, 0.8)})
    r = choose([bad[:2] + ([],) + bad[2:]], LABELS, ["yes"], 0.5, 0.4, 1.5)
    assert r["yes"]["threshold"] == pytest.approx(0.81) and r["yes"]["false_alarms"] == 1
    assert not r["yes"]["within_budget"]


def test_false_alarms_count_on_the_streams_fa_from_marks():
    # the stray "yes" at 0.70 sits in the keyword stream's gap (an _unknown_ word); counted on the
    # keyword-free trace alone, "yes" may go down to just above that trace's 0.66
    traces = _two_keywords()
    r = choose(traces, LABELS, ["yes", "no"], 0.5, 0.4, 1.5, fa_from=[False, True], pool=0)
    assert r["yes"]["threshold"] == pytest.approx(0.67) and r["yes"]["false_alarms"] == 0
    assert (r["yes"]["hits"], r["yes"]["positives"]) == (1, 2)       # hits still from the keywords
    # the budget is per hour of the counted audio: 1 false alarm in 80 s is 45/h
    one = choose(traces, LABELS, ["yes"], 45.0, 0.4, 1.5, fa_from=[False, True], extrapolate=False)
    assert one["yes"]["threshold"] == pytest.approx(0.4) and one["yes"]["fa_per_hour"] == pytest.approx(45.0)
    with pytest.raises(kws.KwsError, match="fa_from"):
        choose(traces, LABELS, ["yes"], 0.5, 0.4, 1.5, fa_from=[False, False])


def test_the_tradeoff_gives_each_budget_what_choosing_for_it_gives():
    traces = _two_keywords()
    tradeoff = []
    choose(traces, LABELS, ["yes", "no"], 0.5, 0.4, 1.5, tradeoff=tradeoff, pool=0)
    assert [r["fa_per_hour_budget"] for r in tradeoff] == list(TRADEOFF_BUDGETS)
    for row in tradeoff:
        alone = choose(traces, LABELS, ["yes", "no"], row["fa_per_hour_budget"], 0.4, 1.5, pool=0)
        assert row["thresholds"] == {k: v["threshold"] for k, v in alone.items()}
        assert row["false_alarms"] == sum(v["false_alarms"] for v in alone.values())
        assert row["frr"] == pytest.approx(1 - sum(v["hits"] for v in alone.values()) / 4)
    frr = [r["frr"] for r in tradeoff]
    assert frr == sorted(frr, reverse=True)     # a larger budget never costs more misses
    # at 0.5/h: the first test's choice, just above the stray 0.70
    assert tradeoff[0]["thresholds"]["yes"] == pytest.approx(0.71)


def test_the_false_alarm_tail_is_extrapolated_beyond_the_calibration_audio():
    """32 keyword-free peaks of "yes" with log(count above t) = 4 - logit(t): on this audio no
    false alarm is left just above the highest peak (logit 4: 0.982), but the fitted tail expects
    the budget (0.1 false alarm) to be met only near logit 6.3 (0.998)."""
    import math
    peaks = {10 * i: (0, 1 / (1 + math.exp(-(4 - math.log(i))))) for i in range(1, 33)}
    s, t, sec = _trace(peaks)
    hours = sec / 3600
    # "yes" said at 0.95 and 0.9997 in a keyword stream whose gaps do not count
    ks, kt, ksec = _trace({100: (0, 0.95), 300: (0, 0.9997)})
    events = [("yes", kt[100] - 1.0, kt[100]), ("yes", kt[300] - 1.0, kt[300])]
    traces = [(s, t, [], sec), (ks, kt, events, ksec)]
    r = choose(traces, LABELS, ["yes"], fa_per_hour=0.1 / hours, min_threshold=0.4, refractory_s=1.5,
               fa_from=[True, False])["yes"]
    assert r["tail_fit"]["slope"] == pytest.approx(-1.0, abs=0.2)
    assert 0.997 <= r["threshold"] <= 0.999 and r["false_alarms"] == 0 and r["hits"] == 1
    assert r["expected_false_alarms"] <= 0.1 + 1e-9 and r["within_budget"]
    # without the fit, 0 false alarms is taken at its word: just above the highest peak
    plain = choose(traces, LABELS, ["yes"], 0.1 / hours, 0.4, 1.5, extrapolate=False,
                   fa_from=[True, False])["yes"]
    assert plain["threshold"] == pytest.approx(0.99) and plain["tail_fit"] is None


def test_allocate_spends_the_budget_where_it_buys_hits():
    # rows (threshold, false alarms, hits, positives): "a" gains 5 hits for 2 false alarms,
    # "b" 1 hit for 2; a budget of 2 goes to "a"
    a = [(0.4, 2, 9, 10), (0.6, 0, 4, 10), (0.8, 0, 4, 10)]
    b = [(0.4, 2, 5, 10), (0.6, 0, 4, 10), (0.8, 0, 3, 10)]
    rows = {"a": a, "b": b}
    exp = {k: np.array([r[1] for r in v], float) for k, v in rows.items()}
    assert allocate(rows, exp, 2.0) == ({"a": 0, "b": 1}, True)
    assert allocate(rows, exp, 4.0) == ({"a": 0, "b": 0}, True)
    assert allocate(rows, exp, 1.0) == ({"a": 1, "b": 1}, True)     # 0.6: lowest with those hits
    # a fractional expected count: the leftover lowers "b" only while its hits stay
    exp["b"] = np.array([2.0, 0.5, 0.0])
    assert allocate(rows, exp, 2.2) == ({"a": 0, "b": 2}, True)
    assert allocate(rows, exp, 2.6) == ({"a": 0, "b": 1}, True)
    # over budget even at the top of the grid: the fewest, flagged
    exp["a"] = np.array([3.0, 2.0, 1.0])
    assert allocate(rows, exp, 0.5) == ({"a": 2, "b": 2}, False)


@pytest.fixture(scope="module")
def validation_set(tmp_path_factory):
    """Every clip in the validation split: the 10 keywords x 3 + unknown, validation voices only."""
    from kws.data.voices import group_split, select_voices
    voices = [f"espeak-ng:{v.name}" for v in select_voices(["espeak-ng"])
              if group_split(v.group) == "validation"][:12]
    out = tmp_path_factory.mktemp("cal") / "data"
    assert main(["data", "synth", "--out", str(out), "--voices", ",".join(voices), "--per-word", "3",
                 "--unknown-words", "bed,cat", "--unknown-per-word", "3", "--speech-clips", "0",
                 "--noise-seconds", "3", "--jobs", "2", "--seed", "5", "--no-progress"]) == 0
    rng = np.random.default_rng(0)
    neg = out.parent / "negative.wav"
    sf.write(neg, (0.05 * rng.standard_normal(40 * 16000)).astype(np.float32), 16000)
    return out, neg


def test_calibrate_writes_thresholds_the_detector_uses(validation_set, tmp_path, capsys):
    data, neg = validation_set
    out = tmp_path / "cal.kws"
    assert main(["calibrate", "--data", str(data), "--out", str(out), "--negative-stream", str(neg),
                 "--background", str(neg), "--snr", "5", "--points", "1x8,0.5x4", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    m = load_model(out)
    assert set(m.point_thresholds) == {"1x8", "0.5x4"} == set(r["point_thresholds"])
    assert m.point_thresholds == r["point_thresholds"]
    assert m.thresholds == {k: max(m.point_thresholds["1x8"][k], m.point_thresholds["0.5x4"][k])
                            for k in m.thresholds}
    assert m.provenance["calibration"]["split"] == "validation"
    assert m.provenance["calibration"]["pool"] == 0.3        # the pooling the thresholds were chosen with
    # the trigger rule the thresholds were tuned for (the Detector's defaults)
    assert m.provenance["calibration"]["detector"] == {"hop_ms": 200.0, "smoothing": 3, "refractory_s": 1.5}
    assert r["streams"][0]["keyword_events"] == 30
    assert [t["fa_per_hour_budget"] for t in r["points"]["0.5x4"]["tradeoff"]] == list(TRADEOFF_BUDGETS)
    audio, _ = sf.read(neg, dtype="float32")
    for point, (w, b) in (("1x8", (1.0, 8)), ("0.5x4", (0.5, 4))):
        det = kws.Detector(m, width=w, blocks=b)
        assert det.thresholds == m.point_thresholds[point]
        # the replayed count is what the Detector itself does on the negative stream
        found = []
        for i in range(0, audio.size, 3200):
            found += det.feed(audio[i:i + 3200])
        assert len(found) == r["points"][point]["streams"][f"negative {neg.name}"]["false_alarms"]


@pytest.mark.parametrize("extra, message", [
    (["--negative-stream", "missing.flac"], "not found: missing.flac"),
    (["--fa-per-hour", "0"], "--fa-per-hour must be > 0"),
    (["--min-threshold", "1.5"], "--min-threshold must be in"),
    (["--max-threshold", "0.3"], "--max-threshold must be in"),
    (["--pool", "2"], "--pool must be in [0, 1]"),
    (["--points", "0.3x9"], "0.3x9"),
])
def test_bad_calibrate_arguments(validation_set, tmp_path, capsys, extra, message):
    data, _ = validation_set
    assert main(["calibrate", "--data", str(data), "--out", str(tmp_path / "x.kws"), *extra]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not (tmp_path / "x.kws").exists()


def test_pooling_shrinks_each_keywords_count_toward_the_keywords_mean():
    from kws.distill.calibrate import pool_expected
    # "flat": two confident false alarms at every threshold (its own count says a low threshold
    # costs nothing); "busy": a count that falls with the threshold
    exp = {"flat": np.array([2.0, 2.0, 2.0, 2.0]), "busy": np.array([10.0, 6.0, 2.0, 0.0])}
    got = pool_expected(exp, 0.3)
    mean = np.array([6.0, 4.0, 2.0, 1.0])
    np.testing.assert_allclose(got["flat"], 0.7 * 2 + 0.3 * mean)      # now falls: 3.2 -> 1.7
    np.testing.assert_allclose(got["busy"], 0.7 * exp["busy"] + 0.3 * mean)
    assert all(np.all(np.diff(v) <= 0) for v in got.values())
    assert {k: list(v) for k, v in pool_expected(exp, 0).items()} == {k: list(v) for k, v in exp.items()}
    with pytest.raises(kws.KwsError, match="--pool"):
        pool_expected(exp, 1.5)


def test_a_keyword_with_only_confident_false_alarms_is_raised_when_pooled():
    """"yes" fires once on keyword-free audio at 0.99, above every threshold (cap 0.95); "no" at
    0.45-0.65. Alone, the count of "yes" is flat, so it keeps the floor and its weak 0.5 hit; pooled,
    lower thresholds of "yes" are expected to fire like the others' (0.7 x 1 + 0.3 x the mean: 1.45
    at 0.5, 1.3 at 0.51), and with "no" at 0.66 (0.15) a budget of 0.5 on top of the fewest (0.85 +
    0.15) leaves 1.35 for "yes": it goes above its weak hit."""
    neg_s, neg_t, neg_sec = _trace({20: (0, 0.99), 60: (1, 0.45), 100: (1, 0.5), 140: (1, 0.55),
                                    180: (1, 0.6), 220: (1, 0.65)})
    s, t, sec = _trace({20: (0, 0.5), 60: (0, 0.9), 100: (1, 0.94), 140: (1, 0.9)})
    events = [("yes", t[20] - 1.0, t[20]), ("yes", t[60] - 1.0, t[60]),
              ("no", t[100] - 1.0, t[100]), ("no", t[140] - 1.0, t[140])]
    traces = [(s, t, events, sec), (neg_s, neg_t, [], neg_sec)]
    budget = 0.5 / (neg_sec / 3600)          # 0.5 avoidable false alarms on this audio
    args = dict(min_threshold=0.4, refractory_s=1.5, fa_from=[False, True], max_threshold=0.95,
                extrapolate=False)
    alone = choose(traces, LABELS, ["yes", "no"], budget, pool=0, **args)
    pooled = choose(traces, LABELS, ["yes", "no"], budget, pool=0.3, **args)
    assert alone["yes"]["threshold"] == pytest.approx(0.4) and alone["yes"]["hits"] == 2
    assert pooled["yes"]["threshold"] == pytest.approx(0.51) and pooled["yes"]["hits"] == 1
    assert pooled["no"]["threshold"] == pytest.approx(0.66) and pooled["no"]["hits"] == 2
    assert alone["no"]["threshold"] == pytest.approx(0.66)


def test_a_smaller_budget_never_gives_looser_thresholds():
    """Once the fewest false alarms of "a" (1.5) fit a budget of 2 but not of 1, a budget of 1 must
    not end looser than 2 (before: 1.51 given + 1 on top = 2.51 > 2)."""
    rows = {"a": [(0.5, 3, 10, 10), (0.7, 2, 9, 10), (0.9, 1, 8, 10)],
            "b": [(0.5, 1, 10, 10), (0.7, 0, 6, 10), (0.9, 0, 2, 10)]}
    expected = {"a": np.array([3.0, 2.0, 1.5]), "b": np.array([1.0, 0.1, 0.01])}

    def spent(budget):
        ch, _ = allocate(rows, expected, budget)
        return sum(expected[k][i] for k, i in ch.items()), sum(rows[k][i][2] for k, i in ch.items())

    got = [spent(b) for b in (0.5, 1.0, 1.6, 2.0, 3.0, 5.0)]
    assert [g[0] for g in got] == sorted(g[0] for g in got)
    assert [g[1] for g in got] == sorted(g[1] for g in got)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 6), min_size=4, max_size=4), min_size=1, max_size=4),
       st.floats(0.1, 8), st.floats(1.01, 4))
def test_allocate_is_monotone_in_the_budget(curves, budget, factor):
    """Random non-increasing false-alarm counts and non-increasing hits: a larger budget never
    finds fewer keywords, nor spends fewer expected false alarms... (each keyword's choice moves
    one way as the price falls)."""
    rows, expected = {}, {}
    for j, c in enumerate(curves):
        fa = np.sort(np.array(c, float))[::-1]
        hits = [10 - i for i in range(4)]
        rows[f"k{j}"] = [(0.5 + 0.1 * i, fa[i], hits[i], 10) for i in range(4)]
        expected[f"k{j}"] = fa
    hits = []
    for b in (budget, budget * factor):
        ch, _ = allocate(rows, expected, b)
        hits.append(sum(rows[k][i][2] for k, i in ch.items()))
    assert hits[0] <= hits[1]
