"""The `kws` command: help, version, `listen --file`, and one readable error line for bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from kws.fsmn.model import random_model

LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_"]


def kws(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "kws", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "random.kws"
    random_model(labels=LABELS, seed=4).save(p)
    return p


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    d = tmp_path_factory.mktemp("wav")
    rng = np.random.default_rng(0)
    mono = (0.1 * rng.standard_normal(3 * 16000)).astype(np.float32)
    sf.write(d / "mono.wav", mono, 16000)
    sf.write(d / "stereo48k.flac", (0.1 * rng.standard_normal((3 * 48000, 2))).astype(np.float32), 48000)
    (d / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return d


def test_help_and_version():
    r = kws("--help")
    assert r.returncode == 0 and "listen" in r.stdout and "devices" in r.stdout
    for sub in ("listen", "devices", "data", "train", "eval", "export"):
        r = kws(sub, "--help")
        assert r.returncode == 0 and "usage: kws" in r.stdout, sub
    r = kws("--version")
    assert r.returncode == 0 and r.stdout.startswith("kws ")


def test_listen_files_json(model_path, wavs):
    r = kws("listen", "--model", model_path, "--file", wavs / "mono.wav", wavs / "stereo48k.flac",
            "--json", "--threshold", "0.05", "--width", "0.5", "--blocks", "4")
    assert r.returncode == 0, r.stderr
    assert "2 channels mixed down" in r.stderr and "2 file(s)" in r.stderr
    for line in r.stdout.splitlines():
        d = json.loads(line)
        assert {"label", "score", "time_s"} <= set(d) and d["label"] in LABELS[:10]
        assert d["width"] == 0.5 and d["blocks"] == 4 and 0 < d["time_s"] <= 3.0


def test_listen_file_matches_detector(model_path, wavs):
    import kws as sdk
    audio, _ = sf.read(wavs / "mono.wav", dtype="float32")
    want = sdk.Detector(str(model_path), threshold=0.05).feed(audio)
    r = kws("listen", "--model", model_path, "--file", wavs / "mono.wav", "--json", "--threshold", "0.05")
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(d["label"], d["time_s"]) for d in got] == [(d.label, d.time_s) for d in want]


@pytest.mark.parametrize("args, code, message", [
    (["listen", "--file", "{wavs}/missing.wav"], 1, "not found"),
    (["listen", "--file", "{wavs}/broken.wav"], 1, "cannot read"),
    (["listen", "--width", "0.3", "--file", "{wavs}/mono.wav"], 1, "width 0.3"),
    (["listen", "--blocks", "3", "--file", "{wavs}/mono.wav"], 1, "blocks=3"),
    (["listen", "--threshold", "2", "--file", "{wavs}/mono.wav"], 1, "threshold"),
    (["listen", "--threshold", "yes=0.7,hello=0.5", "--file", "{wavs}/mono.wav"], 1, "unknown keyword"),
    (["listen", "--threshold", "yes=", "--file", "{wavs}/mono.wav"], 1, "label=value"),
    (["listen", "--keywords", "yes,hello", "--file", "{wavs}/mono.wav"], 1, "unknown keyword"),
    (["listen", "--duration", "-1", "--file", "{wavs}/mono.wav"], 1, "duration"),
])
def test_errors_are_one_line(model_path, wavs, args, code, message):
    args = [a.format(wavs=wavs) for a in args] + ["--model", str(model_path)]
    r = kws(*args)
    assert r.returncode == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kws: error:") and message in lines[0], r.stderr


def test_corrupt_model_is_one_line(tmp_path, wavs):
    bad = tmp_path / "bad.kws"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    r = kws("listen", "--model", bad, "--file", wavs / "mono.wav")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "kws: error:" in r.stderr


def test_usage_mistakes_are_one_line(tmp_path):
    """argparse's own errors (a bad choice, a missing argument) in a subcommand and a nested one."""
    for args in (("train", "--data", tmp_path, "--out", tmp_path / "m.kws", "--up-planes", "4"),
                 ("data", "stream", "--kind", "nosuch"), ("listen", "--width")):
        r = kws(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "error:" in r.stderr, (args, r.stderr)
        assert "--help" in r.stderr


def test_missing_microphone_names_devices(model_path):
    env = {"PULSE_SERVER": "unix:/nonexistent/pulse"}      # no sound server: no devices
    r = kws("listen", "--model", model_path, "--device", "no-such-mic", "--duration", "1", env=env)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "kws: error:" in r.stderr
