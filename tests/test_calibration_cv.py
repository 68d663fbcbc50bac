"""benchmarks/calibration_cv.py: every validation speech stream is held out once, and the summary
pools the held-out false alarms over the folds' hours (not a mean of rates)."""

import subprocess
import sys

import pytest

from kws.bench import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
try:
    import calibration_cv as cv
finally:
    sys.path.remove(str(ROOT / "benchmarks"))


def test_each_speech_stream_is_held_out_once_and_never_calibrated_on():
    got = cv.folds(["a", "b", "c"])
    assert [h for h, _ in got] == ["a", "b", "c"]
    for held, cal in got:
        assert held not in cal and sorted(cal + [held]) == ["a", "b", "c"]


def test_the_summary_pools_false_alarms_over_the_held_out_hours():
    def row(pool, held, fas, hours, frr):
        return {"point": "1x8", "pool": pool, "budget": 5.0, "held_out_stream": held, "validation_frr": frr,
                "held_out": {"false_alarms": fas, "hours": hours, "fa_per_hour": fas / hours}}
    rows = [row(0.0, "a", 2, 0.5, 0.4), row(0.0, "b", 3, 1.0, 0.5), row(0.3, "a", 0, 0.5, 0.6),
            row(0.3, "b", 1, 1.0, 0.7)]
    s = {r["pool"]: r for r in cv.summarise(rows)}
    assert s[0.0]["held_out_fa_per_hour"] == pytest.approx(5 / 1.5)      # not (4 + 3) / 2
    assert s[0.0]["worst_fold_fa_per_hour"] == pytest.approx(4.0)
    assert s[0.3]["held_out_fa_per_hour"] == pytest.approx(1 / 1.5)
    assert s[0.3]["validation_frr"] == pytest.approx(0.65)


def test_missing_streams_give_one_line():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "calibration_cv.py"), "--model", "default",
                        "--streams", "/nonexistent", "--data", "/nonexistent"], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("calibration_cv.py: ") and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "calibration_cv.py"), "--model", "default",
                        "--speech", "only.flac"], capture_output=True, text=True)
    assert r.returncode == 1 and "at least 2" in r.stderr
