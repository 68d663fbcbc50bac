"""benchmarks/level_robustness.py: accuracy against the recording level (kws eval --gain)."""

import json
import sys

import pytest

from kws.bench import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
try:
    import level_robustness as lr
finally:
    sys.path.remove(str(ROOT / "benchmarks"))

pytest.importorskip("torch")


def test_models_and_teachers_at_every_gain(toy_data, tmp_path, capsys):
    from kws.cli import main
    from kws.distill.evaluate import evaluate
    from tests.conftest import toy_train_args
    out = tmp_path / "pcen.kws"
    assert main(toy_train_args(toy_data, out, "--input-norm", "pcen", "--spec-masks", "2", "--workdir", str(tmp_path / "w"),
                               epochs=1)) == 0
    teacher = tmp_path / "w" / "teacher.pt"
    capsys.readouterr()
    lr.main(["--data", str(toy_data), "--split", "testing", "--model", str(out), "--teacher", str(teacher),
             "--gains", "0,-20", "--points", "1x4,0.5x2", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [(r["network"].rsplit(" ", 1)[-1], r["gain_db"]) for r in rows] == [
        ("1x4", 0.0), ("0.5x2", 0.0), ("(teacher)", 0.0), ("1x4", -20.0), ("0.5x2", -20.0), ("(teacher)", -20.0)]
    assert all(0 <= r["accuracy"] <= 1 and "keyword_recall" in r for r in rows)
    # at gain 0 the model's figure is kws eval's
    ev = evaluate(str(out), str(toy_data), "testing", stream=False)
    assert rows[0]["accuracy"] == pytest.approx(ev["accuracy"]["1x4"])
    lr.main(["--data", str(toy_data), "--split", "testing", "--model", str(out), "--gains", "0",
             "--points", "1x4", "--snr", "10"])
    text = capsys.readouterr().out
    assert "keyword recall" in text and "10 dB SNR" in text and len(text.strip().splitlines()) == 3
    noisy = evaluate(str(out), str(toy_data), "testing", stream=False, snr=10.0)
    assert f"{noisy['accuracy']['1x4']:.4f}" in text
    with pytest.raises(SystemExit, match="comma-separated numbers"):
        lr.main(["--data", str(toy_data), "--gains", "0,x"])
