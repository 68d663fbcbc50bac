"""Speech Commands folder layout: the split rule, speaker ids and the split lists (pure Python).

A data set folder holds `<word>/<speaker>_nohash_<n>.wav`, `_background_noise_/*.wav`,
`validation_list.txt` and `testing_list.txt` (one relative path a line, `/` separated); every clip in
neither list is training. The lists are made with the rule of the real data set: the part of the file
name before `_nohash_` (the speaker id) is SHA-1 hashed, so one speaker's clips share a split.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

SPLITS = ("training", "validation", "testing")
LIST_FILES = {"validation": "validation_list.txt", "testing": "testing_list.txt"}
MAX_NUM_WAVS_PER_CLASS = 2 ** 27 - 1    # the constant of the Speech Commands README / TF code


def speaker_of(filename: str) -> str:
    """Speaker id of a clip file name: the part before `_nohash_` (the whole stem if absent)."""
    base = Path(filename).name
    return re.sub(r"_nohash_.*$", "", base) if "_nohash_" in base else Path(base).stem


def which_set(filename: str, validation_percentage: float = 10.0,
              testing_percentage: float = 10.0) -> str:
    """Split of a clip by the Speech Commands rule (hash of the speaker id of `filename`).

    `sha1(speaker) -> (int(hex, 16) % 2**27) * 100 / (2**27 - 1)`: below 10 -> "validation",
    below 20 -> "testing", else "training".
    """
    return split_of_speaker(speaker_of(filename), validation_percentage, testing_percentage)


def split_of_speaker(speaker: str, validation_percentage: float = 10.0,
                     testing_percentage: float = 10.0) -> str:
    """Split of a speaker id (the string before `_nohash_`) by the Speech Commands hash rule."""
    h = hashlib.sha1(speaker.encode("utf-8")).hexdigest()
    pct = (int(h, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if pct < validation_percentage:
        return "validation"
    if pct < validation_percentage + testing_percentage:
        return "testing"
    return "training"


def read_list(path: Path) -> set[str] | None:
    """Relative paths of a split list (`/` separated, blank lines ignored); None if the file is absent."""
    path = Path(path)
    if not path.is_file():
        return None
    return {ln.strip().replace("\\", "/") for ln in path.read_text().splitlines() if ln.strip()}


def format_list(paths) -> str:
    """Text of a split list: sorted relative paths, one a line."""
    return "".join(f"{p}\n" for p in sorted(paths))
