"""SpeechCommands reader on a hand-built folder: splits, tasks, proportions, bad files, formats."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from kws.data import KEYWORDS_12, SILENCE, UNKNOWN, task_labels
from kws.data.audio import fit_length, load_wav
from kws.data.layout import which_set
from kws.data.speech_commands import SpeechCommands
from kws.errors import KwsError

SR = 16000
UNKNOWN_WORDS = ("bed", "cat", "dog")


def tone(seconds=0.5, freq=440.0, sr=SR, amp=0.3):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def sc_dir(tmp_path):
    """10 keywords + 3 unknown words x 6 speakers, odd files, a noise file, one split list."""
    root = tmp_path / "sc"
    val = []
    for w_i, word in enumerate(KEYWORDS_12 + UNKNOWN_WORDS):
        (root / word).mkdir(parents=True)
        for s in range(6):
            rel = f"{word}/{s:08x}_nohash_0.wav"
            sf.write(root / rel, tone(0.5, 200 + 20 * w_i), SR, subtype="PCM_16")
            if s == 0:
                val.append(rel)
    # odd files: stereo, 8 kHz, too long, corrupt, empty, a non-wav file
    sf.write(root / "no" / "stereo00_nohash_0.wav", np.stack([tone(), -tone()], 1), SR)
    sf.write(root / "up" / "rate8k00_nohash_0.wav", tone(0.5, sr=8000), 8000, subtype="PCM_16")
    sf.write(root / "go" / "longlong_nohash_0.wav", np.linspace(-1, 1, 24000, dtype=np.float32),
             SR, subtype="FLOAT")
    (root / "yes" / "corrupt0_nohash_0.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    (root / "yes" / "empty000_nohash_0.wav").write_bytes(b"")
    (root / "yes" / "notes.txt").write_text("not audio")
    (root / "_background_noise_").mkdir()
    rng = np.random.default_rng(0)
    sf.write(root / "_background_noise_" / "white_noise.wav",
             (0.1 * rng.standard_normal(3 * SR)).astype(np.float32), SR, subtype="PCM_16")
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    # testing_list.txt deliberately missing: the hash rule decides
    return root


def _all_items(root, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {s: SpeechCommands(root, split=s, **kw) for s in ("training", "validation", "testing")}


def test_task_labels():
    assert task_labels("v1-12") == list(KEYWORDS_12) + [UNKNOWN, SILENCE]
    assert task_labels("v1-12").index(UNKNOWN) == 10 and task_labels("v2-12")[11] == SILENCE
    v35 = task_labels("v2-35")
    assert len(v35) == 35 and v35 == sorted(v35) and "visual" in v35 and UNKNOWN not in v35
    assert task_labels("custom", "hey kiwi, stop") == ["hey_kiwi", "stop", UNKNOWN, SILENCE]
    assert task_labels("custom", ["Hey Kiwi"])[0] == "hey_kiwi"
    for bad in [("v1-13", None), ("custom", None), ("custom", "a,a"), ("v1-12", "yes"),
                ("custom", "héllo")]:
        with pytest.raises(KwsError):
            task_labels(*bad)


def test_splits_lists_and_hash_rule(sc_dir):
    with pytest.warns(UserWarning, match="testing_list.txt"):
        SpeechCommands(sc_dir, split="training")
    ds = _all_items(sc_dir, silence_fraction=0.0)
    paths = {s: {p for p, _ in d.items} for s, d in ds.items()}
    assert not (paths["training"] & paths["validation"]) and not (paths["training"] & paths["testing"])
    assert not (paths["validation"] & paths["testing"])
    listed = set((sc_dir / "validation_list.txt").read_text().split())
    assert paths["validation"] == listed
    # without a testing list: testing = hash rule says testing (and not in the validation list)
    for p in paths["testing"]:
        assert which_set(p) == "testing"
    for p in paths["training"]:
        assert which_set(p) != "testing" or p in listed


def test_which_set_rule():
    # one speaker -> one split, whatever the repeat number; about 80/10/10 over many speakers
    assert which_set("yes/0a7c2a8d_nohash_0.wav") == which_set("no/0a7c2a8d_nohash_3.wav")
    c = Counter(which_set(f"x/{i:08x}_nohash_0.wav") for i in range(20000))
    assert abs(c["validation"] / 20000 - 0.1) < 0.01 and abs(c["testing"] / 20000 - 0.1) < 0.01


def test_v1_12_labels_and_proportions(sc_dir):
    ds = _all_items(sc_dir)["training"]
    assert ds.labels == task_labels("v1-12")
    counts = ds.class_counts()
    assert list(counts) == ds.labels
    n_word = sum(v for k, v in counts.items() if k != SILENCE)
    # silence = 10 % of the split
    assert counts[SILENCE] == round(0.1 * n_word / 0.9)
    # unknown: all kept by default (3 unknown words' training clips)
    unk_paths = [p for p, lab in ds.items if lab == 10]
    assert {p.split("/")[0] for p in unk_paths} == set(UNKNOWN_WORDS)
    # every item's label matches its folder
    for p, lab in ds.items:
        if p is None:
            assert lab == 11
        else:
            word = p.split("/")[0]
            assert ds.labels[lab] == (word if word in KEYWORDS_12 else UNKNOWN)


def test_unknown_fraction_subsamples(sc_dir):
    full = _all_items(sc_dir)["training"]
    ds = _all_items(sc_dir, unknown_fraction=0.1, silence_fraction=0.1)["training"]
    c = ds.class_counts()
    known = sum(c[w] for w in KEYWORDS_12)
    assert c[UNKNOWN] == min(full.class_counts()[UNKNOWN], round(0.1 * known / 0.8))
    assert abs(c[UNKNOWN] / len(ds) - 0.1) < 0.03 and abs(c[SILENCE] / len(ds) - 0.1) < 0.03
    again = _all_items(sc_dir, unknown_fraction=0.1)["training"]
    assert again.items == ds.items                              # seeded, reproducible
    other = _all_items(sc_dir, unknown_fraction=0.1, seed=5)["training"]
    assert {p for p, _ in other.items} != {p for p, _ in ds.items}


def test_unknown_boost_draws_near_words_more_often(sc_dir):
    word = UNKNOWN_WORDS[0]
    plain = _all_items(sc_dir)["training"]
    boosted = _all_items(sc_dir, unknown_boost={word: 3})["training"]
    mine = [p for p, _ in plain.items if p and p.startswith(word + "/")]
    assert mine and sorted(p for p, _ in boosted.items if p and p.startswith(word + "/")) == sorted(mine * 3)
    others = [p for p, _ in plain.items if p and not p.startswith(word + "/")]
    assert [p for p, _ in boosted.items if p and not p.startswith(word + "/")] == others
    # with a subset per epoch the boosted word takes a bigger share of it
    sub = _all_items(sc_dir, unknown_fraction=0.1, unknown_boost={word: 50})["training"]
    unk = [p for p, lab in sub.items if p and lab == sub.labels.index(UNKNOWN)]
    assert sum(p.startswith(word + "/") for p in unk) / len(unk) > 0.8
    for boost, msg in [({KEYWORDS_12[0]: 2}, "not an _unknown_ word"), ({"nope": 2}, "not an _unknown_ word"),
                       ({word: 0}, "must repeat 1 to 100 times"), ({word: 2.5}, "must repeat 1 to 100 times")]:
        with pytest.raises(KwsError, match=msg):
            SpeechCommands(sc_dir, split="training", unknown_boost=boost)


def test_unknown_subset_redrawn_each_epoch(sc_dir):
    ds = _all_items(sc_dir, unknown_fraction=0.1, silence_fraction=0.1)["training"]
    first, counts = list(ds.items), ds.class_counts()
    unk = lambda: {p for p, lab in ds.items if ds.labels[lab] == UNKNOWN}
    seen = unk()
    ds.set_epoch(3)
    assert ds.class_counts() == counts and len(ds) == len(first)      # same balance, same length
    assert unk() != seen                                               # a fresh subset ...
    assert [it for it in ds.items if ds.labels[it[1]] != UNKNOWN] == \
        [it for it in first if ds.labels[it[1]] != UNKNOWN]            # ... and nothing else moved
    third = list(ds.items)
    ds.set_epoch(0)
    assert ds.items == first                                           # deterministic per epoch
    ds.set_epoch(3)
    assert ds.items == third
    full = _all_items(sc_dir)["training"]
    for e in range(1, 12):
        ds.set_epoch(e)
        seen |= unk()
    pool = {p for p, lab in full.items if full.labels[lab] == UNKNOWN}
    assert len(pool) > counts[UNKNOWN] and seen == pool               # over epochs, every clip serves


def test_v2_35_requires_all_words(sc_dir):
    with pytest.raises(KwsError, match="no folder for"):
        SpeechCommands(sc_dir, task="v2-35")


def test_custom_task(sc_dir):
    ds = _all_items(sc_dir, task="custom", words=["yes", "bed"])["training"]
    assert ds.labels == ["yes", "bed", UNKNOWN, SILENCE]
    assert {p.split("/")[0] for p, lab in ds.items if lab == 2} == \
        (set(KEYWORDS_12) | set(UNKNOWN_WORDS)) - {"yes", "bed"}


def test_getitem_shapes_and_formats(sc_dir):
    ds = _all_items(sc_dir)["training"]
    for i in range(len(ds)):
        p, lab = ds.items[i]
        if p is not None and ("corrupt" in p or "empty" in p):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, y = ds[i]
        assert x.shape == (SR,) and x.dtype == np.float32 and y == lab
        assert np.abs(x).max() <= 1.0
    # stereo: averaged to mono (L + R = 0 here), with a warning naming the file
    with pytest.warns(UserWarning, match="stereo00"):
        x = load_wav(sc_dir / "no" / "stereo00_nohash_0.wav")
    assert x.shape == (SR // 2,) and np.abs(x).max() < 1e-4
    # 8 kHz: resampled to 16 kHz
    x = load_wav(sc_dir / "up" / "rate8k00_nohash_0.wav")
    assert x.shape == (SR // 2,)
    ref = tone(0.5)
    assert np.corrcoef(x[200:-200], ref[200:-200])[0, 1] > 0.99
    # 1.5 s: centre crop to 1 s; 0.5 s: zero-padded at the end
    long = fit_length(load_wav(sc_dir / "go" / "longlong_nohash_0.wav"))
    assert long.shape == (SR,) and abs(long[SR // 2 - 1]) < 1e-3        # centre of the ramp kept
    short = fit_length(tone(0.5))
    assert np.all(short[SR // 2:] == 0)


def test_corrupt_files_skipped_with_warning(sc_dir):
    ds = _all_items(sc_dir, silence_fraction=0.0)
    split = next(s for s, d in ds.items() if any(p and "corrupt" in p for p, _ in d.items))
    d = ds[split]
    i = next(k for k, (p, _) in enumerate(d.items) if "corrupt" in p)
    with pytest.warns(UserWarning) as rec:
        x, y = d[i]
    assert any("corrupt0_nohash_0.wav" in str(w.message) for w in rec)
    assert x.shape == (SR,)
    # the item returned is the next readable one, deterministically
    j = (i + 1) % len(d)                           # wraps around at the end
    while "corrupt" in d.items[j][0] or "empty" in d.items[j][0]:
        j = (j + 1) % len(d)
    assert y == d.items[j][1]
    np.testing.assert_array_equal(x, d.load(d.items[j][0]))
    assert any("corrupt" in f for f in d.failed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # already known: no second warning
        d[i]
    # scan: every bad file found up front, removed from items, counted in one warning
    fresh = _all_items(sc_dir, silence_fraction=0.0)[split]
    n_before = len(fresh)
    with pytest.warns(UserWarning) as rec:
        bad = fresh.scan()
    assert any(f"{len(bad)} unreadable file(s)" in str(w.message) for w in rec)
    assert any("corrupt" in b for b in bad)
    assert len(fresh) == n_before - len(bad)
    assert all(p not in bad for p, _ in fresh.items)


def test_silence_items_reproducible(sc_dir):
    a = _all_items(sc_dir, seed=3)["training"]
    b = _all_items(sc_dir, seed=3)["training"]
    sil = [i for i, (p, lab) in enumerate(a.items) if p is None]
    assert len(sil) >= 2
    x0, y0 = a[sil[0]]
    np.testing.assert_array_equal(x0, b[sil[0]][0])
    assert y0 == 11 and np.abs(x0).max() > 0
    assert not np.array_equal(x0, a[sil[1]][0])
    a.set_epoch(1)
    assert not np.array_equal(x0, a[sil[0]][0])


def test_silence_without_noise_is_zeros(sc_dir):
    import shutil
    shutil.rmtree(sc_dir / "_background_noise_")
    ds = _all_items(sc_dir)["training"]
    i = next(k for k, (p, _) in enumerate(ds.items) if p is None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, y = ds[i]
    assert y == 11 and not x.any()


def test_augment_hook_is_seeded(sc_dir):
    from kws.data.augment import Augment
    mk = lambda: _all_items(sc_dir, augment=Augment(sc_dir / "_background_noise_",  # noqa: E731
                                                    p_noise=1.0))["training"]
    a, b = mk(), mk()
    np.testing.assert_array_equal(a[0][0], b[0][0])
    a.set_epoch(2)
    assert not np.array_equal(a[0][0], b[0][0])


def test_bad_folders(tmp_path):
    with pytest.raises(KwsError, match="does not exist"):
        SpeechCommands(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(KwsError, match="not a folder"):
        SpeechCommands(tmp_path / "file")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KwsError, match="no word folders"):
        SpeechCommands(empty)
    wrong = tmp_path / "wrong"
    (wrong / "_background_noise_").mkdir(parents=True)
    (wrong / "docs").mkdir()
    (wrong / "docs" / "a.txt").write_text("x")
    with pytest.raises(KwsError, match="no word folders"):
        SpeechCommands(wrong)
    with pytest.raises(KwsError, match="split"):
        SpeechCommands(wrong, split="train")


def test_missing_keyword_folder(sc_dir):
    import shutil
    shutil.rmtree(sc_dir / "stop")
    with pytest.raises(KwsError, match="stop"):
        SpeechCommands(sc_dir, task="v1-12")
