"""`kws train --resume`: a run killed mid-epoch (in the teacher phase, then in the student phase)
and resumed ends with exactly the state of an uninterrupted run."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import toy_train_args  # noqa: E402
from kws.cli import main  # noqa: E402
from kws.fsmn.model import load_model  # noqa: E402


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_after_kills_equals_uninterrupted_run(toy_data, tmp_path):
    a, b = tmp_path / "a" / "m.kws", tmp_path / "b" / "m.kws"
    assert main(toy_train_args(toy_data, a)) == 0
    # killed in the teacher's first epoch (after 3 steps; 4 steps per epoch) ...
    assert main(toy_train_args(toy_data, b, "--stop-after", "3")) == 3
    ck = torch.load(b.with_name("m.work") / "teacher.pt", weights_only=True)
    assert (ck["phase"], ck["epoch"], ck["step"], ck["done"]) == ("teacher", 0, 3, False)
    # ... resumed, killed again in the student's first epoch (5 teacher + 2 student steps),
    # writing time-based checkpoints after every step on the way ...
    assert main(toy_train_args(toy_data, b, "--resume", "--stop-after", "7",
                               "--checkpoint-minutes", "0")) == 3
    ck = torch.load(b.with_name("m.work") / "student.pt", weights_only=True)
    assert (ck["phase"], ck["epoch"], ck["step"]) == ("student", 0, 2)
    # ... and resumed to the end
    assert main(toy_train_args(toy_data, b, "--resume")) == 0
    for name in ("teacher.pt", "student.pt"):
        ca = torch.load(a.with_name("m.work") / name, weights_only=True)
        cb = torch.load(b.with_name("m.work") / name, weights_only=True)
        assert ca["done"] and cb["done"] and ca["epoch"] == cb["epoch"] == 2
        _assert_same_state(ca["model"], cb["model"])
        for oa, ob in zip(ca["optimizers"], cb["optimizers"]):
            for k in oa["state"]:
                for kk, v in oa["state"][k].items():
                    assert torch.equal(torch.as_tensor(v), torch.as_tensor(ob["state"][k][kk]))
        assert ca["schedulers"] == cb["schedulers"]
        for ha, hb in zip(ca["history"], cb["history"]):
            assert ha["train_loss"] == hb["train_loss"] and ha["val_acc"] == hb["val_acc"]
    ma, mb = load_model(a), load_model(b)
    for k in ma.tensors:
        np.testing.assert_array_equal(ma.tensors[k], mb.tensors[k], err_msg=k)
    hist = json.loads(b.with_name("m.work").joinpath("history.json").read_text())
    assert [r["epoch"] for r in hist["teacher"]] == [1, 2] == [r["epoch"] for r in hist["student"]]


def test_existing_run_needs_resume(toy_data, tmp_path, capsys):
    out = tmp_path / "m.kws"
    assert main(toy_train_args(toy_data, out, "--stop-after", "1")) == 3
    assert main(toy_train_args(toy_data, out)) == 1
    assert "pass --resume" in capsys.readouterr().err


def test_resume_keeps_pcen_learning(toy_data, tmp_path, capsys):
    """--pcen-learn needs PCEN, and a run resumes only with the PCEN learning it started with."""
    out = tmp_path / "m.kws"
    assert main(toy_train_args(toy_data, out, "--pcen-learn")) == 1
    assert "--pcen-learn needs --input-norm pcen" in capsys.readouterr().err
    pcen = ("--input-norm", "pcen")
    assert main(toy_train_args(toy_data, out, *pcen, "--pcen-learn", "--stop-after", "1")) == 3
    assert main(toy_train_args(toy_data, out, *pcen, "--resume")) == 1
    assert "trained with --pcen-learn" in capsys.readouterr().err
    assert main(toy_train_args(toy_data, out, *pcen, "--pcen-learn", "--resume")) == 0
