"""The .kws file: round trip, atomic save, and a clear KwsError for every kind of bad file."""

import json
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import kws
from kws.errors import KwsError
from kws.fsmn.config import ArchConfig
from kws.fsmn.model import Model, load_model, model_from_bytes, random_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from fuzz_model import fuzz, tiny_model_bytes  # noqa: E402


def test_round_trip(tmp_path):
    m = random_model(seed=5)
    path = tmp_path / "m.kws"
    m.save(path)
    back = load_model(path)
    assert back.arch == m.arch and back.frontend == m.frontend and back.labels == m.labels
    assert set(back.tensors) == set(m.tensors)
    for k, v in m.tensors.items():
        np.testing.assert_array_equal(back.tensors[k], v)
    assert [p.name for p in back.operating_points][:3] == ["1x8", "1x4", "1x2"]
    assert kws.load_model is load_model
    assert not [p for p in tmp_path.iterdir() if p.name != "m.kws"]     # no temp files left


def test_format_1_files_load_as_binary_memory_with_zero_thresholds(tmp_path):
    """kws <= 0.1 wrote format 1: no memory_input in the arch (binary memory), no sign thresholds.
    Such a file must load and run exactly as before: sign at 0."""
    from safetensors.numpy import save_file
    from kws.fsmn.runtime import BinaryFSMN
    arch = ArchConfig(backbone=64, hidden=64, n_blocks=2, widths=(1.0,), block_sets=((0, 1),),
                      memory_input="binary")
    m = random_model(arch, seed=3)
    tensors = {k: v for k, v in m.tensors.items() if not k.endswith("_in_thresh")}
    meta = m.metadata()
    meta["format_version"] = 1
    del meta["arch"]["memory_input"]
    save_file(tensors, str(tmp_path / "v1.kws"), metadata={"kws": json.dumps(meta)})
    old = load_model(tmp_path / "v1.kws")
    assert old.arch.memory_input == "binary"
    zeroed = {k: (np.zeros_like(v) if k.endswith("_in_thresh") else v) for k, v in m.tensors.items()}
    assert set(old.tensors) == set(zeroed)
    for k, v in zeroed.items():
        np.testing.assert_array_equal(old.tensors[k], v)
    x = np.random.default_rng(0).standard_normal((arch.n_frames, arch.n_features)).astype(np.float32)
    op = arch.operating_points[0]
    same = Model(arch=arch, frontend=m.frontend, labels=m.labels, tensors=zeroed)
    np.testing.assert_array_equal(BinaryFSMN(old).logits(x, op), BinaryFSMN(same).logits(x, op))


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.kws"
    random_model(seed=1).save(path)
    before = path.read_bytes()
    import safetensors.numpy

    def broken(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(safetensors.numpy, "save_file", broken)
    with pytest.raises(OSError):
        random_model(seed=2).save(path)
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


def rewrite_metadata(data: bytes, edit) -> bytes:
    """Change the kws metadata JSON inside a model file's header, keeping it well-formed."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    info = json.loads(header["__metadata__"]["kws"])
    edit(info, header)
    header["__metadata__"]["kws"] = json.dumps(info)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    body = data[8 + n:]
    return struct.pack("<Q", len(raw)) + raw + body


@pytest.fixture(scope="module")
def good_bytes():
    return tiny_model_bytes()


@pytest.mark.parametrize("case, message", [
    (lambda d: d[:5], "shorter than"),
    (lambda d: d[: len(d) // 2], "truncated|corrupt"),
    (lambda d: struct.pack("<Q", 2**60) + d[8:], "header length"),
    (lambda d: struct.pack("<Q", 10) + b"[1, 2, 3] " + d[18:], "header"),
    (lambda d: pickle.dumps({"a": 1}), "header|not a kws"),
    (lambda d: b"\x00" * 64, "header|not a kws|kws metadata"),
    (lambda d: struct.pack("<Q", 2000) + b"[" * 2000 + b"\x00" * 100, "header"),   # nesting bomb
    (lambda d: rewrite_metadata(d, lambda i, h: i.update(format_version=99)), "version 99"),
    (lambda d: rewrite_metadata(d, lambda i, h: i.update(format="other")), "not a kws model"),
    (lambda d: rewrite_metadata(d, lambda i, h: i["arch"].update(backbone=-3)), "backbone"),
    (lambda d: rewrite_metadata(d, lambda i, h: i["arch"].update(evil=1)), "unknown keys"),
    (lambda d: rewrite_metadata(d, lambda i, h: i.update(labels=["a"])), "labels"),
    (lambda d: rewrite_metadata(d, lambda i, h: i["frontend"].update(n_mels="x")), "n_mels"),
    (lambda d: rewrite_metadata(d, lambda i, h: i["arch"].update(hidden=64)), "tensor|must be"),
    (lambda d: rewrite_metadata(d, lambda i, h: h.pop("stem.weight")), "missing tensor|corrupt"),
])
def test_bad_files_raise_kws_error(good_bytes, case, message):
    with pytest.raises(KwsError, match=message):
        model_from_bytes(case(good_bytes))


def test_wrong_tensor_values_are_refused():
    m = random_model(seed=0)
    t = dict(m.tensors)
    t["stem.weight"] = t["stem.weight"].astype(np.float64)
    with pytest.raises(KwsError, match="stem.weight"):
        Model(m.arch, m.frontend, m.labels, t)
    t = dict(m.tensors)
    t["frontend.std"] = np.zeros_like(t["frontend.std"])
    with pytest.raises(KwsError, match="std"):
        Model(m.arch, m.frontend, m.labels, t)
    t = dict(m.tensors)
    t["classifier.weight"] = t["classifier.weight"].copy()
    t["classifier.weight"][0, 0] = np.nan
    with pytest.raises(KwsError, match="NaN"):
        Model(m.arch, m.frontend, m.labels, t)


def test_load_model_paths(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nope.kws")
    with pytest.raises(KwsError, match="folder"):
        load_model(tmp_path)
    p = tmp_path / "x.kws"
    p.write_bytes(pickle.dumps(random_model().tensors))       # a pickle is never loaded
    with pytest.raises(KwsError):
        load_model(p)


def test_missing_safetensors_is_not_called_a_corrupt_file(good_bytes, monkeypatch):
    # seen on an arm64 root file system without the package: "corrupt tensor data"
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)     # import fails
    with pytest.raises(KwsError, match=r"without the safetensors package .*pip install"):
        model_from_bytes(good_bytes, "m.kws")


def test_fuzz_10000_mutations_only_kws_error(good_bytes):
    """Mutated files (bit flips, truncation, splices, header edits): parse or raise KwsError."""
    outcomes = fuzz(good_bytes, 10_000, seed=2024)      # raises on anything but KwsError
    assert outcomes["KwsError"] > 5000, outcomes        # most mutations must be caught


KEYWORD_LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_"]


def test_thresholds_round_trip_and_are_the_detectors_default(tmp_path):
    m = random_model(labels=KEYWORD_LABELS, seed=5)
    assert m.thresholds is None and "thresholds" not in m.metadata()   # old files: no key
    m.thresholds = {"yes": 0.8, "go": 0.65}
    m.save(tmp_path / "m.kws")
    back = load_model(tmp_path / "m.kws")
    assert back.thresholds == {"yes": 0.8, "go": 0.65}
    det = kws.Detector(back)
    assert det.thresholds["yes"] == 0.8 and det.thresholds["go"] == 0.65 and det.thresholds["no"] == 0.5
    assert kws.Detector(back, threshold=0.6).threshold == 0.6                 # an explicit value wins
    assert kws.Detector(back, threshold={"no": 0.9}).thresholds["yes"] == 0.5  # ... and replaces all
    assert kws.Detector(m.__class__(**{**m.__dict__, "thresholds": None})).threshold == 0.5


def test_point_thresholds_follow_the_operating_point(tmp_path):
    """Calibrated per operating point (`kws calibrate`): the Detector takes those of the point it
    runs, falls back to the model-wide ones, and switches when width / blocks change."""
    m = random_model(labels=KEYWORD_LABELS, seed=5)
    m.thresholds = {"yes": 0.8, "go": 0.65}
    m.point_thresholds = {"0.5x4": {"yes": 0.9, "no": 0.7}}
    m.save(tmp_path / "m.kws")
    back = load_model(tmp_path / "m.kws")
    assert back.point_thresholds == {"0.5x4": {"yes": 0.9, "no": 0.7}}
    wide = kws.Detector(back)
    assert (wide.thresholds["yes"], wide.thresholds["no"], wide.thresholds["go"]) == (0.8, 0.5, 0.65)
    thin = kws.Detector(back, width=0.5, blocks=4)
    assert (thin.thresholds["yes"], thin.thresholds["no"], thin.thresholds["go"]) == (0.9, 0.7, 0.65)
    wide.width, wide.blocks = 0.5, 4
    assert wide.thresholds == thin.thresholds
    wide.width = 1.0
    assert wide.thresholds["yes"] == 0.8
    fixed = kws.Detector(back, width=0.5, blocks=4, threshold=0.6)           # an explicit value wins
    fixed.width = 1.0
    assert fixed.threshold == 0.6


@pytest.mark.parametrize("key, thresholds, message", [
    ("thresholds", {"_unknown_": 0.5}, "keyword labels"),
    ("thresholds", {"hello": 0.5}, "keyword labels"),
    ("thresholds", {"yes": 0.0}, "threshold of 'yes'"),
    ("thresholds", {"yes": 1.5}, "threshold of 'yes'"),
    ("thresholds", {"yes": "high"}, "threshold of 'yes'"),
    ("thresholds", [0.5], "keyword labels"),
    ("point_thresholds", {"0.3x4": {"yes": 0.5}}, "operating points"),
    ("point_thresholds", {"0.5x4": {"yes": 2.0}}, r"point_thresholds\[0.5x4\]: threshold of 'yes'"),
    ("point_thresholds", {"0.5x4": 0.7}, "keyword labels"),
])
def test_bad_thresholds_in_a_file_are_refused(tmp_path, key, thresholds, message):
    import json
    import struct
    m = random_model(labels=KEYWORD_LABELS, seed=5)
    m.save(tmp_path / "m.kws")
    data = (tmp_path / "m.kws").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = json.loads(header["__metadata__"]["kws"])
    meta[key] = thresholds
    header["__metadata__"]["kws"] = json.dumps(meta)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    (tmp_path / "bad.kws").write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
    with pytest.raises(kws.KwsError, match=message):
        load_model(tmp_path / "bad.kws")
