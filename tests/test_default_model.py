"""The shipped default model: loads with no argument, declares its operating points, and
recognises freshly synthesized keywords (new renders of training-allowed voices, a seed the
training data never used) at the full and at the 0.5x4 operating point (measured with the
shipped model v2: 59 of 60 at 1x8, 54 of 60 at 0.5x4; v1: 60 and 51)."""

import shutil

import numpy as np
import pytest

import kws
from kws.data.speech_commands import SpeechCommands
from kws.data.tasks import task_labels
from kws.detector import DEFAULT_MODEL
from kws.frontend import features
from kws.fsmn.runtime import BinaryFSMN

KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def test_default_model_ships_and_declares_its_operating_points():
    assert DEFAULT_MODEL.is_file(), "kws/models/default.kws is missing from the package"
    assert DEFAULT_MODEL.stat().st_size < 2_000_000        # small enough to ship
    det = kws.Detector()
    m = det.model
    assert list(m.labels) == task_labels("v1-12")
    names = [op.name for op in m.arch.operating_points]
    assert names == ["1x8", "1x4", "1x2", "0.5x8", "0.5x4", "0.5x2", "0.25x8", "0.25x4", "0.25x2"]
    assert sorted(det.keywords) == sorted(KEYWORDS)


@pytest.fixture(scope="module")
def fresh_clips(tmp_path_factory):
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.fail("espeak-ng and sox are needed (bash scripts/install-tts.sh)")
    from kws.cli import main
    out = tmp_path_factory.mktemp("fresh") / "data"
    rc = main(["data", "synth", "--out", str(out), "--words", ",".join(KEYWORDS), "--unknown-words", "none",
               "--per-word", "6", "--engines", "espeak-ng", "--seed", "9173", "--noise-seconds", "2",
               "--jobs", "2", "--no-progress"])
    assert rc == 0
    clips = []
    for split in ("training", "validation", "testing"):
        sc = SpeechCommands(out, split, "v1-12", silence_fraction=0.0)
        clips += [sc[i] for i in range(len(sc))]
    return clips


@pytest.mark.parametrize("width,blocks,need", [(1.0, 8, 0.9), (0.5, 4, 0.8)])
def test_default_model_recognises_fresh_keywords(fresh_clips, width, blocks, need):
    model = kws.load_model(DEFAULT_MODEL)
    net = BinaryFSMN(model)
    labels = list(model.labels)
    op = model.arch.operating_point(width, blocks)
    ok, n = 0, 0
    wrong = []
    for audio, y in fresh_clips:
        if labels[y] not in KEYWORDS:
            continue
        pred = int(np.argmax(net.logits(features(audio, model.frontend), op)))
        n += 1
        ok += pred == y
        if pred != y:
            wrong.append((labels[y], labels[pred]))
    assert n >= 50
    print(f"\n{width}x{blocks}: {ok}/{n} fresh keyword clips right; wrong (true, predicted): {wrong}")
    assert ok / n >= need, (ok, n, wrong)
