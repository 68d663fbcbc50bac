"""benchmarks/unknown_prior.py: the `_unknown_` bias sweep (docs/default-model.md, session 17)."""

import dataclasses
import json
import sys

import numpy as np
import pytest

from kws.bench import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
try:
    import unknown_prior as up
finally:
    sys.path.remove(str(ROOT / "benchmarks"))

LABELS = ["yes", "no", "_unknown_", "_silence_"]


def _logits(seed=0, n=400):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    z = rng.standard_normal((n, 4)) + 2.0 * np.eye(4)[y]       # the true class a little ahead
    return z.astype(np.float32), y


def test_bias_zero_is_the_argmax_and_a_huge_bias_calls_everything_unknown():
    z, y = _logits()
    r = up.score(z, y, LABELS, 0.0)
    assert r["accuracy"] == pytest.approx(float((z.argmax(1) == y).mean()))
    kw = np.isin(y, [0, 1])
    assert r["keyword_recall"] == pytest.approx(float((z.argmax(1)[kw] == y[kw]).mean()))
    big = up.score(z, y, LABELS, 1e3)
    assert big["accuracy"] == pytest.approx(float((y == 2).mean()))
    assert big["keyword_recall"] == 0.0 and big["unknown_called_keyword"] == 0.0
    assert up.score(z, y, LABELS, -1e3)["unknown_called_keyword"] > r["unknown_called_keyword"]


def test_recall_at_a_false_positive_rate():
    y = np.array([0] * 10 + [2] * 100)
    p = np.zeros((110, 4))
    p[:10, 0] = np.linspace(0.6, 0.9, 10)             # keyword clips
    p[10:, 0] = np.linspace(0.0, 0.7, 100)            # the others: the top one at 0.7
    # 1 % of 100 others: the threshold is the second highest other (0.693), 7 of 10 above it
    assert up.recall_at_fpr(p, y, [0], 0.01) == pytest.approx(0.7)
    p[10:, 0] *= 0.5                                  # separable: every keyword clip found
    assert up.recall_at_fpr(p, y, [0], 0.01) == 1.0


def test_the_script_on_a_toy_data_set(toy_data, capsys):
    from kws.fsmn.config import ArchConfig
    from kws.fsmn.model import random_model
    model = random_model(dataclasses.replace(ArchConfig(), n_classes=4), labels=LABELS, seed=1)
    path = toy_data.parent / "toy.kws"
    model.save(path)
    up.main(["--model", str(path), "--data", str(toy_data), "--split", "testing",
             "--points", "1x8,0.5x4", "--biases", "0,2", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [(r["point"], r["bias"]) for r in rows] == [("1x8", 0.0), ("1x8", 2.0), ("0.5x4", 0.0), ("0.5x4", 2.0)]
    for r in rows:
        assert 0 <= r["accuracy"] <= 1 and set(r["recall_at_fpr"]) == {"0.01", "0.002"}
    up.main(["--model", str(path), "--data", str(toy_data), "--split", "testing", "--biases", "0"])
    text = capsys.readouterr().out                   # the table: a header and one row per point
    assert "keyword recall" in text and len(text.strip().splitlines()) == 2 + 2
    with pytest.raises(SystemExit, match="comma-separated numbers"):
        up.main(["--model", str(path), "--data", str(toy_data), "--biases", "0,x"])
