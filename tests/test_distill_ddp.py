"""`torchrun --nproc_per_node 2 -m kws train ...` (DDP, gloo on CPU) completes and writes a model."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

from kws.distill.toydata import make_toy_dataset  # noqa: E402
from kws.fsmn.model import load_model  # noqa: E402


@pytest.mark.parametrize("extra", [[], ["--input-norm", "pcen", "--pcen-learn", "--spec-masks", "2"]],
                         ids=["global", "pcen-masks"])
def test_torchrun_two_processes(tmp_path, extra):
    """Also PCEN (learnt by the teacher: its offsets among DDP's synchronised parameters) with
    SpecAugment masks: DDP hands the masked batch (a Masked tuple) through."""
    data = make_toy_dataset(tmp_path / "data", ["yes", "no", "cat", "dog"], per_word=12, seed=4)
    out = tmp_path / "m.kws"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "kws", "train", "--data", str(data), "--task", "custom", "--words", "yes,no",
           "--out", str(out), "--epochs", "1", "--teacher-epochs", "1", "--batch-size", "8",
           "--backbone", "64", "--hidden", "64", "--n-blocks", "4", "--no-progress", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    model = load_model(out)
    assert len(model.arch.operating_points) == 9
    assert model.arch.input_norm == ("pcen" if extra else "global")
    hist = json.loads((tmp_path / "m.work" / "history.json").read_text())
    assert hist["student"][0]["processes"] == 2
    assert set(hist["student_calibrated"]["val_acc"]) == {op.name for op in model.arch.operating_points}
    # rank 0 alone prints the summary and writes files
    assert r.stdout.count("model: ") == 1
    assert sorted(p.name for p in (tmp_path / "m.work").iterdir()) == ["history.json", "student.pt",
                                                                      "teacher.pt"]
