"""scripts/merge_training_clips.py: extra clips reach the training split only; BASE's lists and
files are untouched; keyword clips (by the manifest) and held-out speakers stay out."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from kws.data.layout import split_of_speaker
from kws.distill.toydata import make_toy_dataset

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "merge_training_clips.py"


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("merge")
    # the same speaker ids spk000..spk039 in both: 3 and 4 of every 5 are BASE's validation/testing
    base = make_toy_dataset(root / "base", ["yes", "no", "cat"], per_word=40, seed=0, noise_seconds=0.5)
    extra = make_toy_dataset(root / "extra", ["cat", "dog", "yes"], per_word=40, seed=1, noise_seconds=0.5)
    fields = ["path", "word", "speaker", "keyword"]
    for d, words in ((base, ["yes", "no", "cat"]), (extra, ["cat", "dog", "yes"])):
        with open(d / "manifest.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            for word in words:
                for p in sorted((d / word).glob("*.wav")):
                    w.writerow({"path": f"{word}/{p.name}", "word": word, "speaker": p.name[:6],
                                "keyword": "1" if word == "yes" else "0"})
    return root, base, extra


def test_only_training_speakers_non_keyword_clips_are_added(sets):
    root, base, extra = sets
    before = {f: (base / f).read_bytes() for f in _files(base)}
    out = root / "out"
    r = _run("--base", base, "--extra", extra, "--out", out)
    assert r.returncode == 0, r.stderr
    held = {line.split("/")[1].split("_nohash_")[0] for f in ("validation_list.txt", "testing_list.txt")
            for line in (base / f).read_text().split()}
    expected = {f"{w}/spk{i:03d}_nohash_1000.wav" for w in ("cat", "dog") for i in range(40)
                if f"spk{i:03d}" not in held and split_of_speaker(f"spk{i:03d}") == "training"}
    # each rule leaves someone out: a listed speaker the hash calls training, an unlisted one it does not
    assert any(split_of_speaker(f"spk{i:03d}") == "training" for i in range(40) if f"spk{i:03d}" in held)
    assert any(split_of_speaker(f"spk{i:03d}") != "training" for i in range(40) if f"spk{i:03d}" not in held)
    assert expected
    added = set(_files(out)) - set(before)
    assert added == expected
    for f in added:                                     # the extra clip, byte for byte
        assert (out / f).read_bytes() == (extra / f.replace("_1000", "_0")).read_bytes()
    for f in ("validation_list.txt", "testing_list.txt"):
        assert (out / f).read_text() == (base / f).read_text()
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert {r["path"] for r in rows} == {r["path"] for r in csv.DictReader(open(base / "manifest.csv"))} | expected
    assert not (root / "out.tmp").exists()
    # BASE is untouched, even where OUT shares its files
    assert {f: (base / f).read_bytes() for f in _files(base)} == before
    assert f"{len(expected)} training clips added" in r.stdout


def test_refuses_an_existing_out_and_missing_folders(sets, tmp_path):
    root, base, extra = sets
    out = tmp_path / "out"
    out.mkdir()
    r = _run("--base", base, "--extra", extra, "--out", out)
    assert r.returncode != 0 and "exists" in r.stderr and "Traceback" not in r.stderr
    r = _run("--base", tmp_path / "nope", "--extra", extra, "--out", tmp_path / "o2")
    assert r.returncode != 0 and "--base" in r.stderr and "Traceback" not in r.stderr
