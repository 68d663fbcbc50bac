"""kws.data.confusable: confusable words per keyword from espeak-ng pronunciations of common words
(fortunes + wamerican, scripts/install-tts.sh; CI runs it). The vocabulary is pronounced once per
test process (~6 s)."""

from __future__ import annotations

import json
import subprocess

import pytest

from kws.cli import main
from kws.data import confusable as C
from kws.data.tasks import KEYWORDS_12
from kws.errors import KwsError

# the issue's examples (#16): the confusable word each keyword should get
ISSUE_EXAMPLES = {"yes": "yet", "no": "know", "up": "cup", "down": "town", "left": "lift",
                  "right": "write", "on": "in", "off": "of", "stop": "top", "go": "goal"}
HOMOPHONES = {"no": "know", "right": "write"}


@pytest.fixture(scope="module")
def ten():
    return C.confusable_words(list(KEYWORDS_12), per_keyword=8)


@pytest.fixture(scope="module")
def ten_with_homophones():
    return C.confusable_words(list(KEYWORDS_12), per_keyword=8, homophones=True)


def _words(items):
    return [c.word for c in items]


def test_issue_examples_in_the_top_8(ten, ten_with_homophones):
    hits = [k for k, w in ISSUE_EXAMPLES.items() if w in _words(ten_with_homophones[k])]
    assert len(hits) >= 8, {k: _words(v) for k, v in ten_with_homophones.items()}
    # without homophones (the default) know and write are left out; the others still come
    assert all(HOMOPHONES[k] not in _words(ten[k]) for k in HOMOPHONES)
    hits = [k for k, w in ISSUE_EXAMPLES.items() if k not in HOMOPHONES and w in _words(ten[k])]
    assert len(hits) >= 6, {k: _words(v) for k, v in ten.items()}


def test_kinds_and_reasons(ten, ten_with_homophones):
    def find(result, k, w):
        return next(c for c in result[k] if c.word == w)
    assert find(ten, "up", "cup").kind == "rhyme"
    assert find(ten, "stop", "top").kind == "rhyme"
    assert find(ten, "yes", "yet").kind == "onset"
    assert find(ten, "go", "goal").kind == "onset"
    assert find(ten, "yes", "yesterday").kind == "starts"
    assert find(ten, "go", "ago").kind == "ends"
    assert find(ten, "left", "lift").kind == "near"
    know = find(ten_with_homophones, "no", "know")
    assert know.kind == "homophone" and know.distance == 0 and know.phonemes == "nˈoʊ"
    for items in ten.values():
        assert len(items) == 8
        assert all(c.kind in C.KINDS for c in items)
        # closest first; at most half of a list containment kinds
        assert [c.distance for c in items] == sorted(c.distance for c in items)
        assert sum(c.kind in C.CONTAINMENT for c in items) <= 4


def test_no_keyword_inflection_or_excluded_word(ten):
    for k, items in ten.items():
        for c in items:
            assert c.word not in KEYWORDS_12
            assert not any(c.word in C._word_forms(kw) for kw in KEYWORDS_12), (k, c.word)
    assert "yet" in _words(ten["yes"])
    assert "yet" not in _words(C.confusable_words(["yes"], 8, exclude={"yet"})["yes"])
    # inflections of a keyword are the keyword, not a confusable ("stops", "going"): with only
    # "stop" as the keyword, neither may appear in a long list
    many = _words(C.confusable_words(["stop", "go"], 40)["stop"])
    assert len(many) == 40 and not {"stops", "stopped", "stopping"} & set(many)


def test_phrase_keyword_gets_its_parts():
    r = C.confusable_words(["hey_kiwi"], per_keyword=8)
    assert list(r) == ["hey kiwi"]
    by_word = {c.word: c for c in r["hey kiwi"]}
    # its own words (kiwi is not in the vocabulary) and part of one ("key" for kiwi)
    assert {"hey", "kiwi", "key"} <= set(by_word), list(by_word)
    assert by_word["kiwi"].kind == by_word["hey"].kind == by_word["key"].kind == "part"
    assert by_word["key"].target == "kiwi"
    # a phrase keyword with one of its words also a keyword: that word is then a keyword
    r = C.confusable_words(["hey kiwi", "kiwi"], per_keyword=8)
    assert "kiwi" not in _words(r["hey kiwi"]) and "hey" in _words(r["hey kiwi"])


def test_deterministic_and_the_flat_list(ten):
    again = C.confusable_words(list(KEYWORDS_12), per_keyword=8)
    assert again == ten
    flat = C.confusable_word_list(list(KEYWORDS_12), per_keyword=8)
    expected = list(dict.fromkeys(c.word for items in ten.values() for c in items))
    assert flat == expected and len(flat) == len(set(flat))
    assert C.confusable_word_list(["yes"], 3) == _words(ten["yes"])[:3]


def test_distance_table():
    d = C.phoneme_distance
    assert d(("j", "ɛ", "s"), ("j", "ɛ", "s")) == 0
    assert d(("t", "aʊ", "n"), ("d", "aʊ", "n")) == pytest.approx(0.3)       # voicing only
    assert d(("j", "ɛ", "s"), ("j", "ɛ", "t")) == pytest.approx(0.35)        # manner only
    assert d(("l", "ɛ", "f", "t"), ("l", "ɪ", "f", "t")) == pytest.approx(0.5)  # a vowel
    assert d(("ʌ", "p"), ("k", "ʌ", "p")) == pytest.approx(1.0)              # an insertion
    assert d(("p",), ("z",)) == pytest.approx(1.0) and d(("ʌ",), ("p",)) == 1.0
    assert d(("s", "t", "ɑ", "p"), ("t", "ɑ", "p")) == d(("t", "ɑ", "p"), ("s", "t", "ɑ", "p"))


def test_batch_pronunciation_matches_one_by_one():
    """One espeak-ng call for many words gives each word its own line: the same as calling it
    word by word, also for words espeak-ng expands ("vi" -> "roman six")."""
    words = ["yes", "the", "a", "of", "hey kiwi", "vi", "butter", "st", "yesterday", "reality"]
    batch = C.pronounce(words)
    assert batch == [C.pronounce([w])[0] for w in words]
    assert [len(p) for p in batch] == [1, 1, 1, 1, 2, 2, 1, 1, 1, 1]
    yes = batch[0][0]
    assert yes.phones == ("j", "ɛ", "s") and yes.stress == (0, 1, 0) and yes.ipa == "jˈɛs"
    assert batch[3][0].phones == ("ʌ", "v")          # stressed "of", not the weak form in a run
    assert all("" not in p.phones for prons in batch for p in prons)
    # the fast rate (C.RATE) changes no phoneme: the same as espeak-ng's default rate
    default = subprocess.run(["espeak-ng", "-q", "--ipa", "--sep=_", "-v", C.VOICE, "--stdin"],
                             input="".join(f"{w}!\n" for w in words), capture_output=True,
                             text=True, check=True).stdout.splitlines()
    assert [[p.ipa for p in prons] for prons in batch] == [line.replace("_", "").split()
                                                           for line in default]


def test_bad_input_is_a_clear_error():
    for bad, msg in (([], "no keywords"), (["y3s"], "invalid word"), ("yes", "list of words"),
                     (["yes", "Yes"], "twice"), ([" "], "invalid word")):
        with pytest.raises(KwsError, match=msg):
            C.confusable_words(bad)
    with pytest.raises(KwsError, match="at least 1"):
        C.confusable_words(["yes"], per_keyword=0)


def test_missing_espeak_or_word_lists(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KwsError, match="apt-get install espeak-ng"):
        C.pronounce(["yes"])
    monkeypatch.undo()
    monkeypatch.setattr(C, "FORTUNES", tmp_path / "fortunes")
    monkeypatch.setattr(C, "WORD_LIST", tmp_path / "words")
    with pytest.raises(KwsError, match="fortunes .* and Debian's wamerican .*"
                                       "apt-get install fortunes wamerican"):
        C.vocabulary.__wrapped__()          # the uncached function: the cache stays as it is


def test_cli_table_json_and_errors(capsys):
    assert main(["data", "confusable", "--words", "up,hey kiwi", "--per-word", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["keyword", "word", "phonemes", "distance", "kind"]
    assert out[1].split()[:2] == ["up", "cup"] and len(out) == 1 + 3 + 3
    assert main(["data", "confusable", "--words", "up", "--per-word", "2", "--json",
                 "--exclude", "cup"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert list(got) == ["up"] and len(got["up"]) == 2 and "cup" not in [c["word"] for c in got["up"]]
    assert set(got["up"][0]) == {"word", "phonemes", "distance", "kind", "target"}
    assert main(["data", "confusable", "--words", "y3s"]) == 1
    assert capsys.readouterr().err.startswith("kws: error: invalid word 'y3s'")
