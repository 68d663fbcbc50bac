"""Confusable words for keywords: English words that sound like a keyword or like part of it.

The negatives a keyword spotter needs most are the words it is most likely to fire on: rhymes
(cup/up), shared onsets (yet/yes), fragments (yesterday/yes, ago/go), near misses (lift/left,
in/on). This module finds them for any keyword or phrase, so a custom wake word gets its own.

* Vocabulary: words of Debian's `fortunes` text written in lower case at least MIN_COUNT times
  (common words, so TTS voices say them well) that are also lower-case entries of Debian's
  `wamerican` word list (drops "et", "linux", "nothin"), 1-MAX_SYLLABLES syllables. Both
  packages: scripts/install-tts.sh.
* Pronunciations: espeak-ng's US English IPA (`espeak-ng -q --ipa --sep=_ -v en-us -s 449
  --stdin`), one call for the whole vocabulary: one word per line, each ending in "!" so that
  every word is a sentence of its own (without it the words of a batch run together and function
  words lose their stress) and espeak-ng writes exactly one line per word (checked). Stress and
  length marks are dropped from the phonemes; espeak-ng's reduced vowels ɐ, ᵻ count as ə, ɪ.
* Distance: weighted Levenshtein over phonemes. Insertion and deletion cost 1; a vowel for another
  vowel VOWEL_SUBSTITUTION; a consonant for another by the features that differ (voicing 0.3,
  place 0.35, manner 0.35; `substitution_cost`); a vowel for a consonant 1. When one word is the
  start or end of the other (goal/go, ago/go, top/stop), the phonemes that stick out cost OVERHANG
  each instead of 1. The words of a phrase keyword are matched one by one too, the rest of the
  phrase counting as overhang ("hey" for "hey kiwi").
* Kind, the reason a word is listed (the first that holds): homophone (same phonemes); for a word
  of the keyword's syllable count, rhyme (same from the last stressed vowel on) or onset (same up
  to and including the first vowel); starts / ends (a longer word that begins / ends with the
  keyword's phonemes), part (a shorter word: the start or end of the keyword, or a word of a
  phrase); else near.
* Ranking: by distance, then the more common word, then spelling (deterministic). A list of 8
  or more first takes the closest word of each kind the issue names (rhyme, onset, fragment =
  starts/ends/part; one per 8 words) if it is within REACH of the plain list's last distance, so
  that all three show up; at most half a list are fragments, so that the many longer words that
  begin with a short keyword do not crowd out the same-length sound-alikes. One spelling per
  sound ("oh", not also "owe"); an inflection of another candidate is left out ("offer", not
  also "offers"). Homophones of a keyword are left out unless asked for: a homophone in `_unknown_` is
  the keyword's own sound with the wrong label.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kws.data.streams import FORTUNES
from kws.data.tasks import word_text
from kws.errors import KwsError

VOICE = "en-us"
# espeak-ng synthesizes (silently) even with -q, so a faster rate makes the call about twice as
# fast; the phonemes do not depend on it (the whole vocabulary compared with the default 175).
# 449: the fastest before espeak-ng switches to its sonic speed-up, which is slower again.
RATE = 449
WORD_LIST = Path("/usr/share/dict/american-english")      # Debian's wamerican
MIN_COUNT = 3            # lower-case occurrences in fortunes for a word to count as common
MAX_SYLLABLES = 3
OVERHANG = 0.2           # cost per phoneme outside the matched part (fragments, phrase parts)
VOWEL_SUBSTITUTION = 0.5
KINDS = ("homophone", "rhyme", "onset", "starts", "ends", "part", "near")
# the kinds the issue names (rhyme, onset, fragment); see the ranking above
CONTAINMENT = ("starts", "ends", "part")
GROUPS = (("rhyme",), ("onset",), CONTAINMENT)
REACH = 0.25           # how much farther than the plain n-th word a kind's first word may be

_VOWEL_CHARS = set("aeiouæɑɒɔəɛɜɪʊʌɚᵻɐ")
_SYLLABIC = "\u0329"     # n̩: a syllabic consonant, a syllable of its own
_REDUCED = {"ɐ": "ə", "ᵻ": "ɪ"}

# Consonants: (place, manner, voiced); see substitution_cost. The flap ɾ (US "butter") has a
# manner of its own, so it is near d (0.35) and t (0.65).
_CONSONANTS = {
    "p": ("lab", "stop", 0), "b": ("lab", "stop", 1), "m": ("lab", "nasal", 1),
    "f": ("lab", "fric", 0), "v": ("lab", "fric", 1), "w": ("lab", "approx", 1),
    "θ": ("dent", "fric", 0), "ð": ("dent", "fric", 1),
    "t": ("alv", "stop", 0), "d": ("alv", "stop", 1), "n": ("alv", "nasal", 1),
    "s": ("alv", "fric", 0), "z": ("alv", "fric", 1), "ɹ": ("alv", "approx", 1),
    "l": ("alv", "lateral", 1), "ɾ": ("alv", "flap", 1),
    "ʃ": ("post", "fric", 0), "ʒ": ("post", "fric", 1), "tʃ": ("post", "affr", 0),
    "dʒ": ("post", "affr", 1), "j": ("pal", "approx", 1),
    "k": ("vel", "stop", 0), "ɡ": ("vel", "stop", 1), "ŋ": ("vel", "nasal", 1),
    "h": ("glot", "fric", 0), "ʔ": ("glot", "stop", 0),
}


class Pronunciation(NamedTuple):
    ipa: str                      # as espeak-ng writes it, stress marks kept: "jˈɛs"
    phones: tuple[str, ...]       # phonemes without stress or length marks: ("j", "ɛ", "s")
    stress: tuple[int, ...]       # per phoneme: 1 primary, 2 secondary, 0 none


@dataclass(frozen=True)
class Confusable:
    word: str
    phonemes: str                 # espeak-ng IPA of the word
    distance: float               # weighted phoneme distance to the keyword (0: same sound)
    kind: str                     # one of KINDS
    target: str                   # the keyword, or the word of a phrase keyword the kind refers to


# ----------------------------------------------------------------------------- pronunciations
def is_vowel(phone: str) -> bool:
    return any(c in _VOWEL_CHARS for c in phone) or _SYLLABIC in phone


def _syllables(p: Pronunciation) -> int:
    return sum(map(is_vowel, p.phones))


def _parse(word_ipa: str) -> Pronunciation:
    """One word of `espeak-ng --ipa --sep=_` output ("j_ˈɛ_s") -> Pronunciation."""
    phones, stress = [], []
    for tok in word_ipa.split("_"):
        s = 1 if "ˈ" in tok else 2 if "ˌ" in tok else 0
        tok = re.sub("[ˈˌː\u200d]", "", tok)
        if not tok:               # espeak-ng writes "__" at some vowel-vowel boundaries
            continue
        if _SYLLABIC in tok:      # n̩ -> ən, like espeak-ng's own əl
            tok = "ə" + tok.replace(_SYLLABIC, "")
        phones.append(_REDUCED.get(tok, tok))
        stress.append(s)
    return Pronunciation(word_ipa.replace("_", ""), tuple(phones), tuple(stress))


def pronounce(texts: list[str]) -> list[list[Pronunciation]]:
    """espeak-ng's US English pronunciation of each text (a word or a phrase: one Pronunciation per
    spoken word), in ONE espeak-ng call. Texts: letters, spaces, "-" and "'" only."""
    if shutil.which("espeak-ng") is None:
        raise KwsError("confusable words need espeak-ng for pronunciations: apt-get install "
                       "espeak-ng (scripts/install-tts.sh installs it)")
    for t in texts:
        if not re.fullmatch(r"[A-Za-z][A-Za-z' -]*", t):
            raise KwsError(f"cannot pronounce {t!r}: letters, spaces, '-' and \"'\" only")
    if not texts:
        return []
    try:
        p = subprocess.run(["espeak-ng", "-q", "--ipa", "--sep=_", "-v", VOICE, "-s", str(RATE),
                            "--stdin"], input="".join(f"{t}!\n" for t in texts), capture_output=True,
                           text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise KwsError(f"espeak-ng failed: {e}") from None
    lines = p.stdout.splitlines()
    if p.returncode != 0 or len(lines) != len(texts):
        raise KwsError(f"espeak-ng wrote {len(lines)} lines for {len(texts)} words (exit "
                       f"{p.returncode}): {p.stderr.strip()[:200]}")
    return [[q for q in map(_parse, line.split()) if q.phones] for line in lines]


# ----------------------------------------------------------------------------- vocabulary
@lru_cache(maxsize=1)
def vocabulary() -> dict[str, tuple[Pronunciation, int]]:
    """Common English words -> (pronunciation, lower-case count in fortunes), most common first."""
    missing = [(path, pkg) for path, pkg in ((FORTUNES, "fortunes"), (WORD_LIST, "wamerican"))
               if not path.exists()]
    if missing:
        raise KwsError("confusable words need " + " and ".join(
            f"Debian's {pkg} ({path} is missing)" for path, pkg in missing) + ": apt-get install "
            + " ".join(pkg for _, pkg in missing) + " (scripts/install-tts.sh installs them)")
    known = set(WORD_LIST.read_text(encoding="utf-8", errors="ignore").split())
    counts: Counter[str] = Counter()
    for f in sorted(p for p in FORTUNES.iterdir() if p.is_file() and not p.suffix):
        counts.update(re.findall(r"(?<![A-Za-z'])[a-z]+(?![A-Za-z'])",
                                 f.read_text(encoding="utf-8", errors="ignore")))
    words = sorted((w for w, c in counts.items() if c >= MIN_COUNT and len(w) >= 2 and w in known),
                   key=lambda w: (-counts[w], w))
    vocab = {}
    for w, prons in zip(words, pronounce(words)):
        # one spoken word (not "vi" -> "roman six") of 1-MAX_SYLLABLES syllables
        if len(prons) == 1 and 1 <= _syllables(prons[0]) <= MAX_SYLLABLES:
            vocab[w] = (prons[0], counts[w])
    if not vocab:
        raise KwsError(f"no common words found in {FORTUNES}")
    return vocab


# ----------------------------------------------------------------------------- distance
def substitution_cost(a: str, b: str) -> float:
    """Cost of hearing phoneme `b` for `a`: 0 if equal; vowel for vowel VOWEL_SUBSTITUTION;
    consonant for consonant 0.3 if voicing differs + 0.35 per other feature that differs (place,
    manner), at most 1 (t/d 0.3, s/t 0.35, t/k 0.35, m/n 0.35, l/ɹ 0.35, f/z 0.65, p/z 1); 1 else."""
    if a == b:
        return 0.0
    if is_vowel(a) and is_vowel(b):
        return VOWEL_SUBSTITUTION
    fa, fb = _CONSONANTS.get(a), _CONSONANTS.get(b)
    if fa is None or fb is None:
        return 1.0
    return min(1.0, 0.35 * (fa[0] != fb[0]) + 0.35 * (fa[1] != fb[1]) + 0.3 * (fa[2] != fb[2]))


def phoneme_distance(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """Weighted Levenshtein distance between two phoneme sequences."""
    return float(_Batch([b]).tables(a)[0][len(a), len(b), 0])


class _Batch:
    """Many phoneme sequences, padded into integer arrays, aligned against one keyword at a time
    with the Levenshtein recurrence vectorised over the sequences."""

    def __init__(self, seqs: list[tuple[str, ...]]):
        self.inventory = sorted({ph for s in seqs for ph in s})
        self.lens = np.array([len(s) for s in seqs])
        width = int(self.lens.max())
        pad = len(self.inventory)              # id of "no phoneme" (never read: j <= len)
        ids = {ph: i for i, ph in enumerate(self.inventory)}
        self.fwd = np.full((len(seqs), width), pad)
        self.rev = np.full((len(seqs), width), pad)
        for r, s in enumerate(seqs):
            self.fwd[r, :len(s)] = [ids[ph] for ph in s]
            self.rev[r, :len(s)] = [ids[ph] for ph in reversed(s)]

    def tables(self, k: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """t[i, j, r] = distance(k[:i], seq_r[:j]) forwards, and the same over both reversed."""
        out = []
        for kk, seqs in ((k, self.fwd), (k[::-1], self.rev)):
            n_seq, width = seqs.shape
            t = np.zeros((len(kk) + 1, width + 1, n_seq))
            t[0] = np.arange(width + 1)[:, None]
            for i, ph in enumerate(kk, 1):
                sub = np.array([substitution_cost(ph, x) for x in self.inventory] + [1.0])[seqs]
                t[i, 0] = i
                for j in range(1, width + 1):
                    t[i, j] = np.minimum(np.minimum(t[i - 1, j] + 1, t[i, j - 1] + 1),
                                         t[i - 1, j - 1] + sub[:, j - 1])
            out.append(t)
        return out[0], out[1]

    def align(self, k: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Per sequence w: the best of distance(k, w) ("whole"), k at the start / end of a longer w
        ("starts" / "ends"), w at the start or end of a longer k ("part"), phonemes sticking out
        costing OVERHANG each. Returns (distance, how: index into ALIGNMENTS); ties keep the
        earlier alignment."""
        fwd, rev = self.tables(k)
        m, n, r = len(k), self.lens, np.arange(len(self.lens))
        best = fwd[m, n, r].copy()
        how = np.zeros(len(n), int)
        js = np.arange(fwd.shape[1])[:, None]
        for code, t, inside in ((1, fwd, True), (2, rev, True), (3, fwd, False), (3, rev, False)):
            if inside:     # k against w[:j] (or reversed), j in [m, n): the rest of w sticks out
                cand = np.where((js >= m) & (js < n), t[m] + OVERHANG * (n - js), np.inf).min(0)
            else:          # w against k[:i] (or reversed), i in [n, m): the rest of k sticks out
                cand = np.full(len(n), np.inf)
                for i in range(m):
                    cand = np.minimum(cand, np.where(n <= i, t[i, n, r] + OVERHANG * (m - i), np.inf))
            better = cand < best - 1e-9
            best[better], how[better] = cand[better], code
        return np.round(best, 4), how


ALIGNMENTS = ("whole", "starts", "ends", "part")


def _rhyme(p: Pronunciation) -> tuple[str, ...]:
    """From the last stressed vowel (the last vowel if none is stressed) to the end."""
    vowels = [i for i, ph in enumerate(p.phones) if is_vowel(ph)]
    stressed = [i for i in vowels if p.stress[i]] or vowels
    return p.phones[stressed[-1]:] if stressed else p.phones


def _onset(p: Pronunciation) -> tuple[str, ...]:
    """Up to and including the first vowel."""
    for i, ph in enumerate(p.phones):
        if is_vowel(ph):
            return p.phones[:i + 1]
    return p.phones


def _kind(k: Pronunciation, w: Pronunciation, how: str, exact: bool) -> str:
    """The reason w is confusable with k (see the module doc); `exact`: the alignment `how` costs
    only its overhang."""
    if k.phones == w.phones:
        return "homophone"
    if _syllables(k) == _syllables(w):
        if _rhyme(k) == _rhyme(w):
            return "rhyme"
        if _onset(k) == _onset(w):
            return "onset"
    return how if exact and how != "whole" else "near"


def _joined(prons: list[Pronunciation]) -> Pronunciation:
    return Pronunciation(" ".join(p.ipa for p in prons), sum((p.phones for p in prons), ()),
                         sum((p.stress for p in prons), ()))


def _word_forms(word: str) -> set[str]:
    """The word and its inflections (stops, stopped, stopping, goes, going): the keyword itself,
    not a confusable ("yesterday" and "goal" are confusables)."""
    stems = {word, word + word[-1]} | ({word[:-1]} if word.endswith("e") else set())
    return {word} | {s + suf for s in stems for suf in ("s", "es", "ed", "d", "ing")}


class _Candidates(NamedTuple):
    words: list[str]
    prons: list[Pronunciation]
    counts: np.ndarray            # lower-case count in fortunes (ties go to the more common word)
    batch: _Batch


@lru_cache(maxsize=1)
def _vocab_candidates() -> _Candidates:
    vocab = vocabulary()
    words = list(vocab)
    prons = [vocab[w][0] for w in words]
    return _Candidates(words, prons, np.array([vocab[w][1] for w in words]),
                       _Batch([p.phones for p in prons]))


def _with(a: _Candidates, words: list[str], prons: list[Pronunciation]) -> _Candidates:
    """`a` plus more words (count 0)."""
    if not words:
        return a
    prons = a.prons + prons
    return _Candidates(a.words + words, prons, np.concatenate([a.counts, np.zeros(len(words), int)]),
                       _Batch([p.phones for p in prons]))


# ----------------------------------------------------------------------------- API
def confusable_words(keywords: list[str], per_keyword: int = 8, exclude: set[str] = frozenset(),
                     *, homophones: bool = False) -> dict[str, list[Confusable]]:
    """The `per_keyword` common English words that sound most like each keyword (a word or a
    phrase) or like part of it, closest first, with the reason (see the module doc).

    Keys are the keywords as spoken ("hey_kiwi" -> "hey kiwi"). The words of a phrase keyword are
    candidates even when not in the vocabulary ("kiwi" for "hey kiwi"). No list holds a one-word
    keyword or its inflections (stops, stopped), or a word of `exclude`; homophones of a keyword
    (know for no) only with `homophones=True`. Raises KwsError for no keywords, a keyword that is
    not English letters, or espeak-ng or the word lists missing.
    """
    if isinstance(keywords, str):
        raise KwsError("keywords must be a list of words, not one string")
    texts: list[str] = []
    for k in keywords:
        t = word_text(k)                       # validates: letters, spaces, "-", "'"
        if t in texts:
            raise KwsError(f"keyword {k!r} is given twice")
        texts.append(t)
    if not texts:
        raise KwsError("no keywords given")
    if per_keyword < 1:
        raise KwsError(f"per_keyword must be at least 1, got {per_keyword}")
    cands = _vocab_candidates()
    kw_prons = pronounce(texts)
    banned = {w.lower() for w in exclude}
    phrase_words: dict[str, Pronunciation] = {}
    for t, kp in zip(texts, kw_prons):
        if not kp:
            raise KwsError(f"espeak-ng gives no pronunciation for keyword {t!r}")
        names = t.replace("-", " ").split()
        if len(names) == 1:
            banned |= _word_forms(t)
        elif len(names) == len(kp):
            phrase_words.update(zip(names, kp))
    extra = [w for w in phrase_words if w not in cands.words]
    cands = _with(cands, extra, [phrase_words[w] for w in extra])
    kw_sounds = {_joined(kp).phones for kp in kw_prons}
    allowed = [w not in banned and (homophones or p.phones not in kw_sounds)
               for w, p in zip(cands.words, cands.prons)]
    # an inflection of another allowed word is left out: "offer" stands for "offers", "offered"
    inflections = set().union(*(_word_forms(w) - {w} for w, a in zip(cands.words, allowed) if a))
    allowed = np.array([a and w not in inflections for w, a in zip(cands.words, allowed)])
    return {t: _rank(t, kp, cands, allowed, per_keyword) for t, kp in zip(texts, kw_prons)}


def _rank(text: str, kp: list[Pronunciation], cands: _Candidates, allowed: np.ndarray,
          n: int) -> list[Confusable]:
    whole = _joined(kp)
    # (name, pronunciation, cost of the rest of the phrase): the keyword, then a phrase's words
    targets = [(text, whole, 0.0)]
    names = text.replace("-", " ").split()
    if len(kp) > 1 and len(names) == len(kp):
        targets += [(w, p, OVERHANG * (len(whole.phones) - len(p.phones))) for w, p in zip(names, kp)]
    best = np.full(len(cands.words), np.inf)
    best_target = np.zeros(len(cands.words), int)
    best_how = np.zeros(len(cands.words), int)
    for ti, (_, target, rest) in enumerate(targets):
        d, how = cands.batch.align(target.phones)
        better = d + rest < best - 1e-9
        best[better], best_target[better], best_how[better] = d[better] + rest, ti, how[better]
    best = np.round(best, 4)
    order, sounds = [], set()
    for r in sorted(np.flatnonzero(allowed), key=lambda r: (best[r], -cands.counts[r], cands.words[r])):
        if cands.prons[r].phones not in sounds:    # one spelling per sound: "owe" adds nothing to "oh"
            sounds.add(cands.prons[r].phones)
            order.append(r)

    def confusable(r: int) -> Confusable:
        name, target, rest = targets[best_target[r]]
        pron = cands.prons[r]
        overhang = OVERHANG * abs(len(pron.phones) - len(target.phones))
        kind = _kind(target, pron, ALIGNMENTS[best_how[r]], abs(best[r] - rest - overhang) < 1e-6)
        if target is not whole and kind in ("homophone", "starts", "ends"):
            kind = "part"                  # the whole of (or more than) one word of a phrase
        return Confusable(cands.words[r], pron.ipa, float(best[r]), kind, name)

    return _pick(order, confusable, n)


def _pick(order: list[int], confusable, n: int) -> list[Confusable]:
    """`n` candidates of `order` (closest first): the closest, except that each list of 8 or more
    first takes the closest of each kind group of GROUPS (n // 8 of each) that is within REACH of
    the plain n-th distance; at most half the list (rounded up) containment kinds."""
    made: dict[int, Confusable] = {}

    def fill(chosen: dict[int, Confusable], group, want: int, reach: float) -> None:
        taken = 0
        for r in order:
            if len(chosen) == n or taken == want:
                return
            c = made[r] if r in made else made.setdefault(r, confusable(r))
            if c.distance > reach:
                return
            if r in chosen or (group is not None and c.kind not in group):
                continue
            if c.kind in CONTAINMENT and sum(x.kind in CONTAINMENT for x in chosen.values()) >= (n + 1) // 2:
                continue
            chosen[r] = c
            taken += 1

    plain: dict[int, Confusable] = {}
    fill(plain, None, n, np.inf)
    chosen: dict[int, Confusable] = {}
    if plain:
        reach = max(c.distance for c in plain.values()) + REACH
        for group in GROUPS:
            fill(chosen, group, n // 8, reach)
    fill(chosen, None, n, np.inf)
    return [chosen[r] for r in order if r in chosen]


def confusable_word_list(keywords: list[str], per_keyword: int = 8,
                         exclude: set[str] = frozenset(), *, homophones: bool = False) -> list[str]:
    """The words of `confusable_words` as one list: unique, in keyword order, closest first."""
    seen: dict[str, None] = {}
    for items in confusable_words(keywords, per_keyword, exclude, homophones=homophones).values():
        for c in items:
            seen.setdefault(c.word, None)
    return list(seen)
