"""Hard negatives: the windows of keyword-free audio a model takes for a keyword (`kws mine`).

A detector that fires on running speech has been shown too few of the windows it fires on:
`kws data synth`'s `_speech_` clips are one random 1 s window per sentence. Mining scores every
window of long keyword-free audio (`kws data stream --split training`: training voices, the
training part of the sentences and music) the way the Detector does (one 1 s window every
`hop_ms`), keeps the windows where a keyword's posterior reaches `threshold` at any of the given
operating points (the highest-scoring window within `min_gap_s` of another is kept), and writes each
as a 1 s clip to the data set's `_mined_/` folder, which counts as `_unknown_` like `_speech_`.
Training on them again (teacher and student: the teacher hands its confusions to the student) is
hard-negative mining as in wake-word systems.

Only training audio may be mined: a stream whose CSV (`kws data stream`) names a voice of the
validation or testing split, a voice the project does not allow, or music outside the training
part of the samples is refused, so nothing thresholds are tuned on or models are judged on reaches
training. Mined clips get speaker ids that the Speech Commands hash rule puts in the training split
(and that no split list names), so they never enter validation or testing either.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
from pathlib import Path

import numpy as np

from kws.data.layout import LIST_FILES, read_list, split_of_speaker
from kws.data.tasks import MINED
from kws.errors import KwsError
from kws.fileio import atomic_path

MINED_CSV = "mined.csv"
CSV_COLUMNS = ("path", "stream", "start_sample", "time_s", "label", "score", "point", "heard")


def check_training_stream(path, rows: list[dict]) -> None:
    """Refuse a stream whose CSV names audio outside the training split (module doc)."""
    from kws.data.streams import MUSIC_DIR, sample_split
    from kws.data.voices import find_voice, group_split
    training_samples = None
    for r in rows:
        kind, name = r.get("kind", ""), r.get("name", "")
        if kind == "speech":
            v = find_voice(name)
            if v is None:
                raise KwsError(f"{path}: speaks {name!r}, not a voice this project may train on; "
                               "mine only `kws data stream --split training` audio")
            split = group_split(v.group)
            if split != "training":
                raise KwsError(f"{path}: speaks {name} of the {split} split (reserved for "
                               f"{'tuning thresholds' if split == 'validation' else 'the yardsticks'}); "
                               "mine only `kws data stream --split training` audio")
        elif kind == "music" and name:
            if training_samples is None:
                split = sample_split(p.stem for p in MUSIC_DIR.glob("*.flac"))["training"]
                training_samples = {n for names in split.values() for n in names}
            bad = [n for n in name.split("+") if n not in training_samples]
            if bad:
                raise KwsError(f"{path}: plays {bad[0]}, a sample of the evaluation part; mine only "
                               "`kws data stream --split training` audio")


def training_speaker(stem: str, listed: set[str]) -> str:
    """A speaker id from `stem` that the Speech Commands hash rule puts in the training split
    (deterministic: the first salt that does), for the clips of one mined stream."""
    for salt in range(1000):
        sid = "mined" + hashlib.sha1(f"{stem}:{salt}".encode()).hexdigest()[:8]
        if split_of_speaker(sid) == "training" and not any(p.split("/")[-1].startswith(sid) for p in listed):
            return sid
    raise KwsError("mine: no training speaker id found")     # 1000 tries at 80 % each: never


def peaks(scores: np.ndarray, times: np.ndarray, threshold: float, min_gap_s: float) -> list[int]:
    """Indices of the hops whose score reaches `threshold`, greedily highest first, none within
    `min_gap_s` of a kept one (non-maximum suppression)."""
    kept, kept_t = [], []                  # kept_t sorted: the nearest kept times by bisection
    for j in np.argsort(-scores, kind="stable"):
        if scores[j] < threshold:
            break
        i = bisect.bisect_left(kept_t, times[j])
        if all(abs(times[j] - kept_t[k]) >= min_gap_s for k in (i - 1, i) if 0 <= k < len(kept_t)):
            kept_t.insert(i, times[j])
            kept.append(int(j))
    return sorted(kept)


def mine(model, streams, data, points=None, threshold: float = 0.5, hop_ms: float = 100.0,
         min_gap_s: float = 1.0, max_per_stream: int | None = None, keep_earlier: bool = False,
         progress=None) -> dict:
    """Write the windows of `streams` (keyword-free training audio) that the model at `points`
    scores as a keyword >= `threshold` to `data`/_mined_/ (module doc).

    Returns {"clips": n, "streams": {path: {"hours", "windows", "clips", "by_label", "by_point"}}}.
    Each stream's clips replace that stream's earlier ones (same speaker id), so mining again with
    another model or threshold does not pile up duplicates. `keep_earlier` is for rounds (mine
    with the model trained on the last round's clips): the earlier clips stay, and only windows
    farther than `min_gap_s` from each of them are added.
    """
    from kws.detector import resolve_operating_point
    from kws.data.synth import write_wav
    from kws.distill.evaluate import heard_at, read_negative_stream, stream_rows, window_trace
    from kws.fsmn.model import NON_KEYWORDS
    from kws.fsmn.runtime import BinaryFSMN, softmax
    from kws.thresholds import check_threshold

    threshold = check_threshold(threshold, "mine: threshold")
    if min_gap_s < 0 or hop_ms <= 0:
        raise KwsError("mine: min_gap_s must be >= 0 and hop_ms > 0")
    if max_per_stream is not None and max_per_stream < 1:
        raise KwsError(f"--max-per-stream must be at least 1, got {max_per_stream}")
    data = Path(data)
    if not data.is_dir():
        raise KwsError(f"mine: data set folder {data} not found")
    ops = [resolve_operating_point(model.arch, p) for p in (points or [model.arch.operating_points[0].name])]
    labels = list(model.labels)
    kw = np.array([i for i, l in enumerate(labels) if l not in NON_KEYWORDS])
    if not kw.size:
        raise KwsError("mine: the model has no keyword class")
    sr = model.frontend.sample_rate
    if sr != 16000:
        raise KwsError(f"mine: data sets are 16 kHz; this model's frontend runs at {sr} Hz")
    net = BinaryFSMN(model)
    listed = set().union(*(read_list(data / f) or set() for f in LIST_FILES.values()))
    folder = data / MINED
    report = {"clips": 0, "threshold": threshold, "hop_ms": hop_ms, "min_gap_s": min_gap_s,
              "points": [op.name for op in ops], "streams": {}}
    table = _read_table(folder)
    for path in streams:
        rows = stream_rows(path)
        check_training_stream(path, rows)
        audio, _ = read_negative_stream(path, sr)
        audio = audio.astype(np.float32)
        # one pass over the stream's features: every window's posteriors at each point, side by side
        def posteriors(x):
            return np.hstack([softmax(np.stack([net.logits(w, op) for w in x])) for op in ops])
        scores, times = window_trace(model, audio, posteriors, hop_ms=hop_ms, smoothing=1)
        per_point = scores.reshape(len(times), len(ops), len(labels))[:, :, kw]     # [hops, points, keywords]
        flat = per_point.reshape(len(times), -1).argmax(axis=1)     # the best (point, keyword) per hop
        point_of, kw_of = np.divmod(flat, kw.size)
        # per hop: (highest keyword score over the points, its class, its point); the first point wins ties
        best = np.stack([per_point[np.arange(len(times)), point_of, kw_of], kw[kw_of], point_of], axis=1)
        keep = peaks(best[:, 0], times, threshold, min_gap_s)
        sid = training_speaker(Path(path).name, listed)
        fe, n_frames = model.frontend, model.arch.n_frames
        # the 1 s clip from the window's first sample: its features are the window's frames
        starts = np.round(times * sr).astype(np.int64) - (n_frames - 1) * fe.hop_length - fe.n_fft
        prefix = f"{MINED}/{sid}_"
        ours = [r for r in table if r["path"].startswith(prefix)]      # this stream's earlier clips
        first = 0
        if keep_earlier:
            earlier = np.array([int(r["start_sample"]) for r in ours], np.int64)
            keep = [j for j in keep if not earlier.size or
                    np.abs(earlier - starts[j]).min() >= min_gap_s * sr]
            first = 1 + max((int(Path(r["path"]).stem.rsplit("_", 1)[1]) for r in ours), default=-1)
        else:
            for old in folder.glob(f"{sid}_nohash_*.wav") if folder.is_dir() else ():
                old.unlink()
            table = [r for r in table if not r["path"].startswith(prefix)]
        if max_per_stream is not None:
            keep = sorted(sorted(keep, key=lambda j: -best[j, 0])[:max_per_stream])
        by_label, by_point = {}, {}
        for n, j in enumerate(keep, start=first):
            start = int(starts[j])
            w = np.zeros(sr, np.float32)
            seg = audio[start:start + sr]
            w[:seg.size] = seg
            rel = f"{MINED}/{sid}_nohash_{n}.wav"
            write_wav(data / rel, np.clip(np.round(w * 32767), -32768, 32767).astype(np.int16))
            label, point = labels[int(best[j, 1])], ops[int(best[j, 2])].name
            by_label[label] = by_label.get(label, 0) + 1
            by_point[point] = by_point.get(point, 0) + 1
            table.append({"path": rel, "stream": str(path), "start_sample": start,
                          "time_s": f"{times[j]:.2f}", "label": label, "score": f"{best[j, 0]:.4f}",
                          "point": point, "heard": heard_at(rows, times[j])})
        report["streams"][str(path)] = {"hours": len(audio) / sr / 3600, "windows": len(times),
                                        "clips": len(keep), "speaker": sid,
                                        "by_label": dict(sorted(by_label.items(), key=lambda kv: -kv[1])),
                                        "by_point": by_point}
        report["clips"] += len(keep)
        if progress:
            progress(f"kws mine: {path}: {len(keep)} windows of {len(times)} at {threshold:g} or more")
    if table:
        _write_table(folder, table)
    return report


def _read_table(folder: Path) -> list[dict]:
    try:
        with open(folder / MINED_CSV, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def _write_table(folder: Path, table: list[dict]) -> None:
    with atomic_path(folder / MINED_CSV) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            w.writeheader()
            w.writerows(sorted(table, key=lambda r: r["path"]))
