"""`kws eval`'s accuracy by voice source: clips mapped to engines through manifest.csv."""

from types import SimpleNamespace

import numpy as np
import pytest

from kws.distill.evaluate import accuracy_by_source, clip_sources
from kws.errors import KwsError


def test_sources_from_the_manifest(tmp_path):
    (tmp_path / "manifest.csv").write_text(
        "path,word,engine,voice\nyes/a_nohash_0.wav,yes,kokoro,mix\nno/b_nohash_0.wav,no,flite,kal16\n")
    clips = SimpleNamespace(root=tmp_path, items=[("yes/a_nohash_0.wav", 0), ("no/b_nohash_0.wav", 1),
                                                  ("no/real_nohash_0.wav", 1), (None, 3),
                                                  ("_silence_/s.wav", 3)])
    assert clip_sources(clips) == ["kokoro", "flite", "unlisted", "_silence_", "_silence_"]
    assert clip_sources(SimpleNamespace(root=tmp_path / "none", items=[])) is None


def test_a_bad_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "manifest.csv").write_text("file,who\nx,y\n")
    with pytest.raises(KwsError, match="not a readable kws data manifest"):
        clip_sources(SimpleNamespace(root=tmp_path, items=[("x", 0)]))


def test_accuracy_per_engine_and_family():
    sources = ["kokoro", "kokoro", "espeak-ng", "flite", "rhvoice", "_silence_"]
    y = np.array([0, 1, 0, 1, 1, 2])
    preds = {"1x8": np.array([0, 0, 0, 1, 0, 2]), "0.5x4": np.array([0, 1, 1, 1, 1, 0])}
    r = accuracy_by_source(sources, y, preds)
    assert r["engine"]["kokoro"] == {"n": 2, "accuracy": {"1x8": 0.5, "0.5x4": 1.0}}
    assert r["family"]["neural"] == r["engine"]["kokoro"]
    assert r["family"]["donor"] == {"n": 2, "accuracy": {"1x8": 0.5, "0.5x4": 1.0}}   # flite + rhvoice
    assert r["family"]["formant"] == {"n": 1, "accuracy": {"1x8": 1.0, "0.5x4": 0.0}}
    assert r["family"]["_silence_"]["n"] == 1
