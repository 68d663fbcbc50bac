"""The examples that need no microphone run as written."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws.fsmn.model import random_model

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "random.kws"
    random_model(labels=LABELS, seed=9).save(p)
    return str(p)


def run(script, *args):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / script), *map(str, args)],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_scan_folder(model_path, tmp_path):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "a.wav", (0.1 * rng.standard_normal(32000)).astype(np.float32), 16000)
    (tmp_path / "sub").mkdir()
    sf.write(tmp_path / "sub" / "b.flac", (0.1 * rng.standard_normal((44100, 2))).astype(np.float32), 44100)
    out = run("scan_folder.py", tmp_path, "--model", model_path, "--width", "0.5", "--blocks", "4")
    assert "a.wav:" in out and "b.flac:" in out and "2 file(s) scanned" in out


def test_cpu_budget_switches_points(model_path):
    out = run("cpu_budget.py", "--model", model_path, "--seconds", "5", "--budget", "0.0001")
    points = [line.split("point")[1].split()[0] for line in out.splitlines() if "point" in line]
    assert len(points) == 5 and points[0] == "1x8" and len(set(points)) > 1   # over budget: thinner
