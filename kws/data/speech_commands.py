"""`SpeechCommands`: a dataset over a folder in the Speech Commands layout (real or synthesized).

    ds = SpeechCommands("/work/data/v1-12", split="training", task="v1-12")
    audio, label = ds[0]          # float32 [16000] in [-1, 1], int index into ds.labels

Layout: `<word>/<speaker>_nohash_<n>.wav`, `_background_noise_/*.wav`, `validation_list.txt`,
`testing_list.txt` (clips in neither list are training). A missing list file is replaced by the
Speech Commands hash rule for that split (with a warning). An optional `_silence_/` folder (written by
`kws data synth --silence-clips N`) provides ready-made silence clips, split like the word clips.

Class proportions (tasks with `_unknown_` / `_silence_`, see kws.data.tasks):
  * `_silence_` items make up `silence_fraction` of the split (default 0.1, as in the TF recipe and
    the BiFSMN reference, "~10 % of each split"). They are 1 s windows of a random
    `_background_noise_` file at a random offset scaled by U(0, 1), drawn from (seed, epoch, index),
    or zeros when there is no noise file; `_silence_/` clips of the split are used first.
  * `_unknown_`: `unknown_fraction=None` (default) keeps every non-keyword clip, like the BiFSMN
    reference code (about 60 % of the 12-class splits on real V1); a number f keeps a seeded random
    subset so that unknown clips are f of the split (TF's speech_commands uses 0.1).
Unreadable files are skipped at access time: a warning names the file once, the next readable item
is returned instead (deterministically), and `failed` lists them; `scan()` checks every file up front.
"""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from kws.data.audio import CLIP_SAMPLES, SAMPLE_RATE, fit_length, load_wav
from kws.data.layout import LIST_FILES, SPLITS, read_list, which_set
from kws.data.tasks import BACKGROUND_NOISE, NEGATIVE_FOLDERS, SILENCE, TASKS, UNKNOWN, task_labels
from kws.errors import KwsError

Augmenter = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _is_wav(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() == ".wav" and not p.name.startswith(".")


def manifest_engines(root: Path) -> dict[str, str] | None:
    """{relative path: TTS engine} from the data set's `manifest.csv` (`kws data synth` writes one),
    or None when there is none."""
    import csv
    manifest = Path(root) / "manifest.csv"
    if not manifest.is_file():
        return None
    try:
        with open(manifest, newline="") as f:
            return {row["path"]: row["engine"] for row in csv.DictReader(f)}
    except (OSError, KeyError, csv.Error, UnicodeDecodeError) as e:
        raise KwsError(f"{manifest}: not a readable kws data manifest ({type(e).__name__}: {e})") from None


def family_filter(root: Path, families) -> Callable[[str], bool]:
    """A test `keep(rel)` that is False for clips whose voice is of one of `families` (formant,
    donor, neural: kws.data.voices.engine_family), by the manifest; for leave-one-family-out."""
    from kws.data.voices import engine_family
    families = set(families or ())
    if not families:
        return lambda rel: True
    bad = families - {"formant", "donor", "neural"}
    if bad:
        raise KwsError(f"unknown voice famil{'y' if len(bad) == 1 else 'ies'} {', '.join(sorted(bad))}; "
                       "choose from formant, donor, neural")
    engines = manifest_engines(root)
    if engines is None:
        raise KwsError(f"{root} has no manifest.csv: cannot tell which clips are of the "
                       f"{', '.join(sorted(families))} voices")
    return lambda rel: engine_family(engines.get(rel, "")) not in families \
        if rel in engines and rel.split("/")[0] != SILENCE else True


def word_folders(root: Path) -> dict[str, list[str]]:
    """Word folder name -> sorted relative paths (`word/file.wav`) of its WAV files.

    Folders whose name starts with `_` or `.` are not words, except `_speech_` (windows of running
    speech) and `_mined_` (`kws mine`'s hard negatives), which count as `_unknown_`; folders without
    WAV files are left out.
    """
    out: dict[str, list[str]] = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if d.name.startswith(("_", ".")) and d.name not in NEGATIVE_FOLDERS:
            continue
        files = sorted(f"{d.name}/{f.name}" for f in d.iterdir() if _is_wav(f))
        if files:
            out[d.name] = files
    return out


class SplitAssigner:
    """Split of a relative path from the list files, or the hash rule where a list file is missing."""

    def __init__(self, root: Path):
        self.lists = {s: read_list(root / f) for s, f in LIST_FILES.items()}
        self.missing = [LIST_FILES[s] for s, v in self.lists.items() if v is None]

    def __call__(self, rel: str) -> str:
        val, test = self.lists["validation"], self.lists["testing"]
        if val is not None and rel in val:
            return "validation"
        if test is not None and rel in test:
            return "testing"
        if val is not None and test is not None:
            return "training"
        by_hash = which_set(rel)
        if by_hash == "validation" and val is None:
            return "validation"
        if by_hash == "testing" and test is None:
            return "testing"
        return "training"


MAX_UNKNOWN_BOOST = 100     # SpeechCommands(unknown_boost=...): most times one word's clips repeat


class SpeechCommands:
    """A split of a Speech Commands-layout folder for one task.

    Args:
        root: the data set folder.
        split: "training", "validation" or "testing".
        task: "v1-12", "v2-12", "v2-35" or "custom" (see kws.data.tasks).
        words: the keywords of task "custom" (list or comma-separated; phrases become `hey_kiwi`).
        silence_fraction: share of `_silence_` items in the split (tasks with `_silence_` only).
        unknown_fraction: None keeps every `_unknown_` clip (reference BiFSMN); a float in [0, 1)
            keeps a seeded subset so unknown clips are that share of the split (TF uses 0.1);
            `set_epoch(e)` draws epoch e's subset, so training sees all of them over the epochs.
        seed: seeds the unknown subset and the silence windows.
        augment: optional callable(audio [16000] float32, rng) -> audio, e.g. kws.data.Augment;
            its rng is drawn from (seed, epoch, index): call `set_epoch(e)` for fresh draws.
        exclude_families: leave out the clips of these voice families (manifest.csv), e.g.
            ("neural",) to train without Kokoro and test on it (leave-one-family-out).
        silence_source: optional callable(rng) -> float32 [16000] making each `_silence_` item
            without a file (e.g. kws.data.acoustics.Acoustics.silence: music, ambient sounds);
            None: a window of a `_background_noise_` file at a random volume.
        unknown_boost: {word: k}: the clips of these `_unknown_` words are in the unknown pool k
            times (1-100), so near-words (lift, stock) are drawn as often as training needs them.
    Attributes:
        labels: class names, index = label. items: list of (relative path or None, label index)
        (None = a silence window made from the noise files). failed: files that could not be read.
    """

    def __init__(self, root: str | Path, split: str = "training", task: str = "v1-12",
                 words: str | list[str] | None = None, silence_fraction: float = 0.1,
                 unknown_fraction: float | None = None, seed: int = 0,
                 augment: Augmenter | None = None, exclude_families=(), silence_source=None,
                 unknown_boost: dict | None = None):
        self.root = Path(root)
        if split not in SPLITS:
            raise KwsError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        if task not in TASKS:
            raise KwsError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        if not 0.0 <= silence_fraction < 1.0:
            raise KwsError(f"silence_fraction must be in [0, 1), got {silence_fraction}")
        if unknown_fraction is not None and not 0.0 <= unknown_fraction < 1.0:
            raise KwsError(f"unknown_fraction must be None or in [0, 1), got {unknown_fraction}")
        if unknown_fraction is not None and silence_fraction + unknown_fraction >= 1.0:
            raise KwsError("silence_fraction + unknown_fraction must be below 1")
        boost = dict(unknown_boost or {})
        for w, k in boost.items():
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_UNKNOWN_BOOST:
                raise KwsError(f"unknown_boost: {w!r} must repeat 1 to {MAX_UNKNOWN_BOOST} times, got {k!r}")
        if not self.root.exists():
            raise KwsError(f"data folder {self.root} does not exist")
        if not self.root.is_dir():
            raise KwsError(f"data folder {self.root} is not a folder")
        self.split, self.task, self.seed = split, task, int(seed)
        self.silence_fraction = float(silence_fraction)
        self.unknown_fraction = unknown_fraction
        self.augment = augment
        self.silence_source = silence_source
        self.labels = task_labels(task, words)
        self.epoch = 0
        self._failed: dict[str, str] = {}
        self._noise: list[np.ndarray] | None = None

        folders = word_folders(self.root)
        if not folders:
            raise KwsError(
                f"no word folders with .wav files in {self.root}: expected the Speech Commands "
                "layout <word>/<speaker>_nohash_<n>.wav (make one with `kws data synth`)")
        has_unknown = UNKNOWN in self.labels
        classes = [w for w in self.labels if w not in (UNKNOWN, SILENCE)]
        missing = [w for w in classes if w not in folders]
        if missing:
            raise KwsError(f"{self.root} has no folder for {', '.join(missing)} (needed by task "
                           f"{task}); found: {', '.join(sorted(folders)) or 'none'}")
        extra = sorted(set(folders) - set(classes))
        if extra and not has_unknown:
            warnings.warn(f"{self.root}: task {task} ignores folders {', '.join(extra)}",
                          stacklevel=2)

        assign = SplitAssigner(self.root)
        if assign.missing:
            warnings.warn(f"{self.root}: no {' / '.join(assign.missing)}; those clips are split by "
                          "the Speech Commands hash rule", stacklevel=2)
        index = {w: i for i, w in enumerate(self.labels)}
        keep = family_filter(self.root, exclude_families)
        folders = {w: [f for f in files if keep(f)] for w, files in folders.items()}
        known: list[tuple[str, int]] = []
        unknown: list[tuple[str, int]] = []
        for word, files in folders.items():
            if word in index:
                known += [(f, index[word]) for f in files if assign(f) == split]
            elif has_unknown:   # a boosted word's clips are in the pool that many times
                unknown += [(f, index[UNKNOWN]) for f in files if assign(f) == split] * boost.get(word, 1)
        bad = sorted(set(boost) - (set(folders) - set(classes))) if boost else []
        if bad or (boost and not has_unknown):
            raise KwsError(f"unknown_boost: {', '.join(bad) or ', '.join(boost)} not an _unknown_ word "
                           f"folder of {self.root}")
        # a subset of `_unknown_` is redrawn by set_epoch: the balance is fixed, every clip serves
        self._known, self._unknown_pool, self._n_unk = known, unknown, len(unknown)
        if has_unknown and unknown_fraction is not None:
            n_unk = round(unknown_fraction * len(known) / (1.0 - silence_fraction - unknown_fraction))
            self._n_unk = min(n_unk, len(unknown))
        self.items: list[tuple[str | None, int]] = self._word_items(0)
        if SILENCE in self.labels:
            sil = index[SILENCE]
            sdir = self.root / SILENCE
            files = sorted(f"{SILENCE}/{f.name}" for f in sdir.iterdir() if _is_wav(f)) \
                if sdir.is_dir() else []
            files = [f for f in files if assign(f) == split]
            n_sil = round(silence_fraction * len(self.items) / (1.0 - silence_fraction))
            self.items += [(f, sil) for f in files]
            self.items += [(None, sil)] * max(0, n_sil - len(files))
        if not self.items:
            warnings.warn(f"{self.root}: the {split} split of task {task} is empty", stacklevel=2)

    # ------------------------------------------------------------------ container protocol
    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        """(audio float32 [16000] in [-1, 1], label index) of item i (after augmentation)."""
        n = len(self.items)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} items")
        i %= n
        for k in range(n):
            j = (i + k) % n
            rel, label = self.items[j]
            if rel is not None and rel in self._failed:
                continue
            try:
                x = self._silence(j) if rel is None else self.load(rel)
            except Exception as e:          # noqa: BLE001 - any unreadable file is skipped
                self._failed[rel] = f"{type(e).__name__}: {e}"
                warnings.warn(f"skipping unreadable file {self.root / rel} "
                              f"({len(self._failed)} so far): {e}", stacklevel=2)
                continue
            if self.augment is not None:
                rng = np.random.default_rng([self.seed, self.epoch, i, 1])
                x = np.asarray(self.augment(x, rng), dtype=np.float32)
            return x, label
        raise KwsError(f"no readable file in the {self.split} split of {self.root}")

    # ------------------------------------------------------------------ helpers
    @property
    def failed(self) -> list[str]:
        """Relative paths that could not be read so far (this process)."""
        return sorted(self._failed)

    def set_epoch(self, epoch: int) -> None:
        """Choose the draw of augmentation, silence windows and the `_unknown_` subset
        (deterministic per epoch; the number of items never changes)."""
        self.epoch = int(epoch)
        if self._n_unk < len(self._unknown_pool):
            n = len(self._known) + self._n_unk
            self.items[:n] = self._word_items(self.epoch)

    def _word_items(self, epoch: int) -> list[tuple[str, int]]:
        """The keyword clips plus this epoch's `_unknown_` subset, sorted by path."""
        unknown = self._unknown_pool
        if self._n_unk < len(unknown):
            key = [self.seed, zlib.crc32(self.split.encode())] + ([epoch] if epoch else [])
            keep = np.random.default_rng(key).permutation(len(unknown))[:self._n_unk]
            unknown = [unknown[k] for k in np.sort(keep)]
        return sorted(self._known + unknown, key=lambda it: it[0])

    def class_counts(self) -> dict[str, int]:
        """Items per class, in label order: {label name: count}."""
        counts = np.bincount([lab for _, lab in self.items], minlength=len(self.labels))
        return {name: int(c) for name, c in zip(self.labels, counts)}

    def load(self, rel: str) -> np.ndarray:
        """One file of the data set as float32 [16000] (16 kHz mono, centre-cropped / end-padded)."""
        return fit_length(load_wav(self.root / rel, SAMPLE_RATE), CLIP_SAMPLES)

    @property
    def noise(self) -> list[np.ndarray]:
        """The `_background_noise_` files as float32 16 kHz mono arrays (loaded once, lazily)."""
        if self._noise is None:
            self._noise = load_noise_dir(self.root / BACKGROUND_NOISE)
        return self._noise

    def _silence(self, j: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, j, 0])
        if self.silence_source is not None:
            return np.asarray(self.silence_source(rng), np.float32)
        noise = self.noise
        if not noise:
            return np.zeros(CLIP_SAMPLES, np.float32)
        x = noise[int(rng.integers(len(noise)))]
        start = int(rng.integers(x.size - CLIP_SAMPLES + 1))
        return (x[start:start + CLIP_SAMPLES] * np.float32(rng.uniform(0.0, 1.0))).astype(np.float32)

    def scan(self) -> list[str]:
        """Read every file of the split now; drop unreadable ones from `items` and warn once.

        Returns the relative paths that failed (their count is in the warning).
        """
        bad = []
        for rel, _ in self.items:
            if rel is None:
                continue
            try:
                self.load(rel)
            except Exception as e:          # noqa: BLE001
                self._failed[rel] = f"{type(e).__name__}: {e}"
                bad.append(rel)
        if bad:
            self.items = [it for it in self.items if it[0] not in self._failed]
            shown = ", ".join(bad[:10]) + (" ..." if len(bad) > 10 else "")
            warnings.warn(f"{self.root}: {len(bad)} unreadable file(s) skipped: {shown}",
                          stacklevel=2)
        return bad

    def __repr__(self) -> str:
        return (f"SpeechCommands({str(self.root)!r}, split={self.split!r}, task={self.task!r}, "
                f"items={len(self)})")


def load_noise_dir(folder: Path) -> list[np.ndarray]:
    """All readable WAVs of a `_background_noise_` folder, float32 16 kHz mono, each >= 1 s.

    Shorter files are zero-padded to 1 s; unreadable ones are skipped with a warning.
    """
    folder = Path(folder)
    out = []
    if not folder.is_dir():
        warnings.warn(f"no {folder}: silence items are zeros", stacklevel=3)
        return out
    for f in sorted(p for p in folder.iterdir() if _is_wav(p)):
        try:
            x = load_wav(f, SAMPLE_RATE)
        except Exception as e:              # noqa: BLE001
            warnings.warn(f"skipping unreadable noise file {f}: {e}", stacklevel=3)
            continue
        if x.size < CLIP_SAMPLES:
            x = fit_length(x, CLIP_SAMPLES)
        out.append(x)
    return out
