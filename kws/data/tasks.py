"""Task definitions of Speech Commands: label lists and word-folder names (pure Python, cheap import).

Tasks (`TASKS`):
  "v1-12", "v2-12": the 10 keywords `yes no up down left right on off stop go`, then `_unknown_`
                    (every other word folder) and `_silence_` (1 s of background noise), in that
                    order: index 10 = `_unknown_`, 11 = `_silence_`. The two differ only in the data
                    set they are usually run on (V1: 30 words, V2: 35).
  "v2-35":          every one of the 35 V2 words is a class, sorted; no `_unknown_`, no `_silence_`.
  "custom":         the given words (folder names, in the given order) + `_unknown_` + `_silence_`.
"""

from __future__ import annotations

import re

from kws.errors import KwsError

TASKS = ("v1-12", "v2-12", "v2-35", "custom")

UNKNOWN = "_unknown_"
SILENCE = "_silence_"
BACKGROUND_NOISE = "_background_noise_"
# 1 s windows of keyword-free running speech (`kws data synth`): counted as `_unknown_`
RUNNING_SPEECH = "_speech_"
# 1 s windows of keyword-free training audio a model took for a keyword (`kws mine`): `_unknown_` too
MINED = "_mined_"
NEGATIVE_FOLDERS = (RUNNING_SPEECH, MINED)

KEYWORDS_12 = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
# the 20 non-keyword words of Speech Commands V1 and the 5 words V2 adds
V1_OTHER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                  "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow")
V2_NEW_WORDS = ("backward", "forward", "follow", "learn", "visual")
V1_WORDS = tuple(sorted(KEYWORDS_12 + V1_OTHER_WORDS))              # 30 words
V2_WORDS = tuple(sorted(KEYWORDS_12 + V1_OTHER_WORDS + V2_NEW_WORDS))  # 35 words

_WORD_RE = re.compile(r"^[a-z][a-z' -]*[a-z]$|^[a-z]$")


def word_folder(word: str) -> str:
    """Folder name of a word or phrase: lower case, spaces/hyphens -> `_`, apostrophes dropped.

    "hey kiwi" -> "hey_kiwi", "don't" -> "dont"; an existing folder name ("hey_kiwi") is returned
    unchanged. Raises KwsError for anything that is not English letters, spaces, `-`, `'` or `_`.
    """
    w = " ".join(str(word).strip().lower().replace("_", " ").split())
    if not w or not _WORD_RE.match(w):
        raise KwsError(f"invalid word {word!r}: use English letters, spaces, '-' or \"'\" "
                       "(e.g. 'yes' or 'hey kiwi')")
    return re.sub(r"[ -]+", "_", w).replace("'", "")


def word_text(word: str) -> str:
    """The text to speak for a word or folder name: "hey_kiwi" -> "hey kiwi"."""
    word_folder(word)                       # validates
    return " ".join(str(word).strip().lower().replace("_", " ").split())


def parse_words(words: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """A comma-separated string or a list of words -> list of folder names (order kept, unique)."""
    if words is None:
        return []
    if isinstance(words, str):
        words = [w for w in words.split(",")]
    out: list[str] = []
    for w in words:
        if not str(w).strip():
            continue
        f = word_folder(w)
        if f in out:
            raise KwsError(f"word {w!r} is given twice")
        out.append(f)
    return out


def task_labels(task: str, words: str | list[str] | None = None) -> list[str]:
    """The class names of a task, in label-index order.

    Args:
        task: one of TASKS.
        words: only for "custom": the keywords (list, or comma-separated string; phrases allowed).
    Returns:
        list of label names; `labels.index(name)` is the label index.
    """
    if task in ("v1-12", "v2-12"):
        if words:
            raise KwsError(f"task {task} has fixed keywords; use task 'custom' for your own words")
        return list(KEYWORDS_12) + [UNKNOWN, SILENCE]
    if task == "v2-35":
        if words:
            raise KwsError("task v2-35 has fixed words; use task 'custom' for your own words")
        return list(V2_WORDS)
    if task == "custom":
        ws = parse_words(words)
        if not ws:
            raise KwsError("task 'custom' needs words, e.g. words=['hey kiwi'] or --words 'hey kiwi'")
        bad = [w for w in ws if w.startswith("_")]
        if bad:
            raise KwsError(f"keyword folder names cannot start with '_': {bad}")
        return ws + [UNKNOWN, SILENCE]
    raise KwsError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
