"""benchmarks/teacher_ceiling.py: each scorer's thresholds are kws calibrate's choice for each
budget, and the test counts are the Detector's trigger rule replayed on the test traces."""

import sys

import numpy as np
import pytest

from kws.bench import ROOT
from kws.detector import REFRACTORY_S
from kws.distill.calibrate import choose
from tests.test_calibrate import LABELS, _trace     # the hand-made score traces of kws calibrate's tests

sys.path.insert(0, str(ROOT / "benchmarks"))
try:
    import teacher_ceiling as tc
finally:
    sys.path.remove(str(ROOT / "benchmarks"))


def _keyword_trace(peaks):
    s, t, sec = _trace(peaks)
    events = [(LABELS[c], t[j] - 1.0, t[j]) for j, (c, score) in peaks.items() if score >= 0.5 or c == 1]
    return s, t, events, sec


def test_thresholds_are_calibrates_and_test_counts_are_replayed():
    # validation: "yes" said at 0.9 and 0.62, "no" at 0.55 and 0.95; keyword-free audio with a
    # "yes" at 0.66 (a false alarm below 0.67) and a "no" at 0.3
    val_kw = _keyword_trace({20: (0, 0.9), 60: (0, 0.62), 140: (1, 0.55), 180: (1, 0.95)})
    val_neg = (*_trace({50: (0, 0.66), 90: (1, 0.3)})[:2], [], 80.0)
    val, fa_from = [val_kw, val_neg], [False, True]
    # test: "yes" at 0.8 and 0.64, "no" at 0.45; keyword-free: "yes" at 0.75, "no" at 0.5
    test_kw = _keyword_trace({30: (0, 0.8), 70: (0, 0.64), 150: (1, 0.45)})
    test_neg = (*_trace({40: (0, 0.75), 120: (1, 0.5)})[:2], [], 80.0)
    # min threshold 0.4, cap 0.95, pool 0: the choice rule alone
    rows = tc.measure("s", val, fa_from, [test_kw, test_neg], ["kw", "neg"], LABELS, [0.5, 3.0, 60.0],
                      0.4, 0.95, 0.0)
    assert [r["budget"] for r in rows] == [0.5, 3.0, 60.0]
    for r in rows:                       # 0.5 and 60 from the trade-off pass, 3 chosen on its own
        want = choose(val, LABELS, ["yes", "no"], r["budget"], 0.4, REFRACTORY_S, True, None, fa_from, 0.95, 0.0)
        assert r["thresholds"] == {k: v["threshold"] for k, v in want.items()}
    low, high = rows[0], rows[2]
    # 0.5 an hour of 80 s keyword-free audio: no false alarm bought, "yes" above 0.66, "no" at the floor
    assert low["thresholds"]["yes"] == pytest.approx(0.67) and low["thresholds"]["no"] == pytest.approx(0.4)
    assert (low["kw"]["hits"], low["kw"]["positives"]) == (2, 3)          # yes 0.8, no 0.45; not yes 0.64
    assert low["kw"]["frr"] == pytest.approx(1 / 3)
    assert (low["neg"]["false_alarms"], low["neg"]["frr"]) == (2, None)   # yes 0.75 and no 0.5
    assert low["neg"]["fa_per_hour"] == pytest.approx(2 / (80 / 3600))
    # 60 an hour buys the stray "yes": its threshold drops below 0.62 and the 0.64 is heard
    assert high["thresholds"]["yes"] < 0.62 and high["kw"]["hits"] == 3
