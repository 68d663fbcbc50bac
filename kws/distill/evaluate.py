"""`kws eval`: accuracy of a .kws model per operating point, confusion matrix, teacher accuracy, and
the streaming metric (false rejection rate at N false alarms per hour).

Clip accuracy runs the model file on the kernel runtime (kws.fsmn.runtime.BinaryFSMN) -- what a
user gets -- on every clip of a split (features from the model's own frontend), for every
(width, blocks) operating point. Needs numpy only; the teacher (a training checkpoint) needs torch.

The streaming metric (`streaming_metric`) runs kws.detector.Detector over one long stream:
  * the split's clips in a seeded random order, each preceded by a gap of 0.5-1.5 s (uniform),
    i.e. ~2 s of stream per clip; keyword clips are the positives, `_unknown_` / `_silence_`
    clips and the gaps are where false alarms happen;
  * background noise over the whole stream: the data set's `_background_noise_` files joined end
    to end (looped), scaled to `noise_dbfs` RMS (default -35 dBFS), or white noise at that level
    when the folder has none. That is a noisy stream: on the synthesized V1-12 stand-in (clips
    at -35..-15 dBFS) the keyword clips' SNR (clip power / noise power, as `--snr`) has median
    4.4 dB and a quarter of them are at or below 0 dB; `noise_dbfs=-50` (median ~19 dB) is a
    quiet room;
  * the stream is fed to a Detector with its defaults (200 ms hop, smoothing 3 hops, 1.5 s
    refractory, re-arm below threshold) in hop-sized chunks; after each hop its smoothed posteriors
    (Detector.last_scores) are recorded, and the Detector's own trigger rule (most likely class is a
    keyword, smoothed score >= threshold, refractory period) is replayed for every threshold on
    that record (one pass instead of one pass per threshold). The chosen threshold is then run
    through the Detector itself once and its counts are reported too (they agree with the replay);
  * a detection is a hit when its label is that of a keyword clip whose span [start, end] satisfies
    start + 0.25 s <= detection time <= end + 1.0 s (the detection time is the end of the 1 s
    window), each clip matched at most once; every other detection is a false alarm.
  * reported: FRR at the lowest threshold giving at most `fa_per_hour` false alarms per hour of
    stream, plus the (FA/h, FRR) curve; with a teacher checkpoint, the same for the float teacher
    on the same stream (`teacher_streaming_metric`: the part of the FRR binarization does not
    explain). The resolution is one false alarm per stream length: a
    test split of N clips gives about N * 2 s of stream.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kws.detector import HOP_MS, SMOOTHING_HOPS
from kws.errors import KwsError
from kws.fsmn.model import NON_KEYWORDS


def task_for_labels(labels: list[str]) -> tuple[str, list[str] | None]:
    """(task, words) of the SpeechCommands split a model's labels belong to."""
    from kws.data.tasks import task_labels
    if list(labels) == task_labels("v1-12"):
        return "v1-12", None
    if list(labels) == task_labels("v2-35"):
        return "v2-35", None
    if list(labels[-2:]) == ["_unknown_", "_silence_"]:
        return "custom", list(labels[:-2])
    raise KwsError(f"cannot tell which task the model's labels {labels} belong to")


class Perturbation:
    """What `kws eval --snr / --resample / --gain` does to every clip before its features (robustness).

    snr: background noise added at this signal-to-noise ratio in dB, the clip's power over its whole
         second against the noise's (noise: the data set's `_background_noise_` files joined and
         looped, a seeded offset per clip; white noise when there are none; a silent clip gets the
         noise at -35 dBFS);
    resample: the clip goes through this sample rate and back (soxr, high quality), e.g. 8000 keeps
         only the 0-4 kHz telephone band;
    gain: the recording level: everything (the clip and its noise) scaled by this many dB, last,
         then clipped to [-1, 1] as a converter would (e.g. -30: a far or quiet talker on a
         microphone set low; the synthetic clips' speech is at -35 to -15 dBFS RMS).
    """

    def __init__(self, snr: float | None = None, resample: int | None = None,
                 noise: list | None = None, seed: int = 0, sample_rate: int = 16000,
                 gain: float | None = None):
        if snr is not None and not math.isfinite(snr):
            raise KwsError(f"--snr must be a finite number of dB, got {snr}")
        if resample is not None and not 1000 <= resample < sample_rate:
            raise KwsError(f"--resample must be a rate in [1000, {sample_rate}) Hz, got {resample}")
        if gain is not None and not (math.isfinite(gain) and -100 <= gain <= 60):
            raise KwsError(f"--gain must be a number of dB in [-100, 60], got {gain}")
        self.snr, self.resample, self.seed, self.sr, self.gain = snr, resample, seed, sample_rate, gain
        self.bank = (np.concatenate([np.asarray(v, np.float32) for v in noise])
                     if snr is not None and noise else None)

    def __bool__(self) -> bool:
        return self.snr is not None or self.resample is not None or self.gain is not None

    def describe(self) -> dict:
        return {"snr_db": self.snr, "resample_hz": self.resample, "gain_db": self.gain}

    def __call__(self, audio: np.ndarray, index: int) -> np.ndarray:
        x = np.asarray(audio, np.float64)
        if self.snr is not None:
            rng = np.random.default_rng([self.seed, 31, index])
            if self.bank is not None and self.bank.size >= x.size:
                o = int(rng.integers(self.bank.size - x.size + 1))
                n = self.bank[o:o + x.size].astype(np.float64)
            else:
                n = rng.standard_normal(x.size)
            p_sig = float(np.mean(x ** 2))
            p_noise = float(np.mean(n ** 2)) or 1.0
            target = p_sig / 10 ** (self.snr / 10) if p_sig > 0 else 10 ** (-35 / 10)
            x = x + n * math.sqrt(target / p_noise)
        if self.resample is not None:
            import soxr
            y = soxr.resample(soxr.resample(x, self.sr, self.resample, "HQ"), self.resample, self.sr, "HQ")
            x = np.zeros_like(x)
            x[:min(len(y), len(x))] = y[:len(x)]
        if self.gain is not None:
            x = x * 10.0 ** (self.gain / 20.0)
        return np.clip(x, -1.0, 1.0).astype(np.float32)


def _features(clips, frontend, n_frames: int, perturb=None) -> tuple[np.ndarray, np.ndarray]:
    from kws.frontend import features
    xs, ys = [], []
    for i in range(len(clips)):
        audio, label = clips[i]
        if perturb:
            audio = perturb(audio, i)
        f = features(audio, frontend)
        if f.shape[0] != n_frames:
            raise KwsError(f"clip {i} gives {f.shape[0]} frames, the model expects {n_frames}")
        xs.append(f)
        ys.append(label)
    if not xs:
        raise KwsError("the split is empty: nothing to evaluate")
    return np.stack(xs), np.asarray(ys, np.int64)


def clip_sources(clips) -> list[str] | None:
    """The TTS engine of every item of a SpeechCommands split, from the data set's manifest.csv
    (`kws data synth` writes one): `_silence_` for silence items, `unlisted` for files the
    manifest does not name (e.g. real recordings added to the folder). None without a manifest."""
    from kws.data.speech_commands import manifest_engines
    engine = manifest_engines(Path(clips.root))
    if engine is None:
        return None
    return ["_silence_" if rel is None or rel.startswith("_silence_/") else engine.get(rel, "unlisted")
            for rel, _ in clips.items]


def accuracy_by_source(sources: list[str], y: np.ndarray, preds: dict[str, np.ndarray]) -> dict:
    """{"engine": {engine: {"n", "accuracy": {point: acc}}}, "family": {formant|donor|neural|...:
    the same}} over the clips of each voice source (kws.data.voices.engine_family)."""
    from kws.data.voices import ENGINES, engine_family
    src = np.asarray(sources)
    fam = np.asarray([engine_family(e) if e in ENGINES else e for e in sources])
    out = {}
    for kind, keys in (("engine", src), ("family", fam)):
        out[kind] = {}
        for name in sorted(set(keys)):
            m = keys == name
            out[kind][str(name)] = {"n": int(m.sum()),
                                    "accuracy": {op: float((p[m] == y[m]).mean()) for op, p in preds.items()}}
    return out


def unknown_words(clips, y: np.ndarray, preds: dict[str, np.ndarray], labels: list[str]) -> dict:
    """{word: {"n", "called_keyword": {point: share}, "most_called": {point: keyword or None}}} for
    every word of the `_unknown_` class (the clip's folder): how often each non-keyword is taken
    for a keyword, and for which. Near-words (lift / left, stock / stop) show up here first."""
    if "_unknown_" not in labels:
        return {}
    u = labels.index("_unknown_")
    words = np.asarray([rel.split("/")[0] if rel else "" for rel, _ in clips.items])
    keyword = np.asarray([lab not in NON_KEYWORDS for lab in labels])
    out = {}
    for word in sorted(set(words[y == u]) - {""}):
        m = (words == word) & (y == u)
        called, most = {}, {}
        for op, p in preds.items():
            hit = p[m][keyword[p[m]]]
            called[op] = float(len(hit) / m.sum())
            most[op] = labels[int(np.bincount(hit).argmax())] if len(hit) else None
        out[str(word)] = {"n": int(m.sum()), "called_keyword": called, "most_called": most}
    return out


def class_summary(y: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict:
    """{"keyword_recall", "unknown_called_keyword", "unknown_share"}: what the 12-class accuracy
    mixes. Keyword clips given their keyword; `_unknown_` clips given any keyword; the unknown
    clips' share of the split (its prior: docs/default-model.md, session 17). None where a class is
    absent."""
    keywords = [i for i, lab in enumerate(labels) if lab not in NON_KEYWORDS]
    kw = np.isin(y, keywords)
    u = labels.index("_unknown_") if "_unknown_" in labels else -1
    unk = y == u
    return {"keyword_recall": float((pred[kw] == y[kw]).mean()) if kw.any() else None,
            "unknown_called_keyword": float(np.isin(pred[unk], keywords).mean()) if unk.any() else None,
            "unknown_share": float(unk.mean()) if len(y) else None}


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """[n, n] counts: row = true class, column = predicted class."""
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def load_teacher(path, model):
    """The float teacher (torch, eval mode) of a training checkpoint, checked against the model:
    same labels and the same [n_frames, n_features] input."""
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        raise KwsError("--teacher needs PyTorch: pip install 'kws[train]'") from None
    from kws.distill.train import load_checkpoint, net_from_checkpoint
    net, ck = net_from_checkpoint(load_checkpoint(path), "teacher")
    if list(ck["labels"]) != list(model.labels):
        raise KwsError(f"--teacher {path} has other labels than the model: {ck['labels']}")
    want = (model.arch.n_frames, model.frontend.n_features)
    if (net.arch.n_frames, net.arch.n_features) != want:
        raise KwsError(f"--teacher {path} expects [{net.arch.n_frames}, {net.arch.n_features}] "
                       f"features, the model's frontend gives {list(want)}")
    return net.eval()


def teacher_accuracy(net, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of a float teacher (load_teacher) on features x."""
    import torch
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 256):
            logits, _ = net(torch.from_numpy(x[i:i + 256]))
            correct += int((logits.argmax(1).numpy() == y[i:i + 256]).sum())
    return correct / len(x)


# ---------------------------------------------------------------------------- streaming
def make_stream(clips, labels: list[str], noise: list[np.ndarray], noise_dbfs: float = -35.0,
                seed: int = 0, max_clips: int | None = None, sr: int = 16000):
    """(stream float32, events [(label, start_s, end_s)] of keyword clips, seconds) -- module doc."""
    rng = np.random.default_rng([seed, 5])
    order = rng.permutation(len(clips))
    if max_clips:
        order = order[:max_clips]
    parts, events, pos = [], [], 0
    for i in order:
        audio, label = clips[int(i)]
        gap = int(rng.uniform(0.5, 1.5) * sr)
        parts.append(np.zeros(gap, np.float32))
        pos += gap
        parts.append(np.asarray(audio, np.float32))
        if labels[label] not in NON_KEYWORDS:
            events.append((labels[label], pos / sr, (pos + len(audio)) / sr))
        pos += len(audio)
    parts.append(np.zeros(sr, np.float32))
    stream = np.concatenate(parts)
    n = stream.size
    if noise:
        bank = np.concatenate([np.asarray(v, np.float32) for v in noise])
        start = int(rng.integers(bank.size))
        reps = -(-(n + start) // bank.size)
        bed = np.tile(bank, reps)[start:start + n].astype(np.float64)
    else:
        bed = rng.standard_normal(n)
    rms = math.sqrt(float(np.mean(bed ** 2))) or 1.0
    bed *= 10 ** (noise_dbfs / 20) / rms
    stream = np.clip(stream + bed.astype(np.float32), -1, 1).astype(np.float32)
    return stream, events, n / sr


def _match(dets, events, start_tol=0.25, end_tol=1.0) -> tuple[int, int]:
    """(hits, false alarms) of detections [(label, time_s)] against keyword events."""
    used = [False] * len(events)
    starts = np.array([e[1] for e in events]) if events else np.zeros(0)
    hits = fas = 0
    for label, t in dets:
        hit = False
        lo = np.searchsorted(starts, t - 3.0)
        for k in range(lo, len(events)):
            lab, s, e = events[k]
            if s > t:
                break
            if not used[k] and lab == label and s + start_tol <= t <= e + end_tol:
                used[k] = hit = True
                break
        if hit:
            hits += 1
        else:
            fas += 1
    return hits, fas


def detector_trace(det, stream) -> tuple[np.ndarray, np.ndarray]:
    """(smoothed posteriors [hops, classes], window end times [hops] in s) of a Detector fed the
    stream in hop-sized chunks (its threshold should be 1.0 or above: nothing fires)."""
    fe, n_frames = det.model.frontend, det.model.arch.n_frames
    chunk = det.hop_frames * fe.hop_length
    scores, times = [], []
    for i in range(0, stream.size, chunk):
        before = det.inferences
        det.feed(stream[i:i + chunk])
        if det.inferences != before:
            if det.inferences - before != 1:
                raise KwsError("streaming metric: more than one hop per chunk")
            frames = n_frames + (det.inferences - 1) * det.hop_frames
            scores.append(np.array(det.last_scores, np.float64))
            times.append(((frames - 1) * fe.hop_length + fe.n_fft) / fe.sample_rate)
    return np.stack(scores), np.asarray(times)


def window_trace(model, stream, posteriors, hop_ms: float = HOP_MS,
                 smoothing: int = SMOOTHING_HOPS) -> tuple[np.ndarray, np.ndarray]:
    """What `detector_trace` records, for any classifier: the model's frontend over the whole
    stream (equal to the streaming frontend), the window the Detector would classify at every hop,
    `posteriors(x [N, n_frames, n_features]) -> [N, classes]`, averaged over `smoothing` hops."""
    from kws.frontend import features
    fe, n_frames = model.frontend, model.arch.n_frames
    hop = int(round(hop_ms / 1000 * fe.sample_rate / fe.hop_length))
    feats = features(stream, fe)
    starts = np.arange(0, feats.shape[0] - n_frames + 1, hop)
    if not starts.size:
        raise KwsError(f"the stream is shorter than one {n_frames}-frame window")
    probs = np.concatenate([posteriors(np.stack([feats[s:s + n_frames] for s in starts[i:i + 512]]))
                            for i in range(0, len(starts), 512)]).astype(np.float64)
    csum = np.cumsum(np.vstack([np.zeros((1, probs.shape[1])), probs]), axis=0)
    k = np.arange(1, len(probs) + 1)
    lo = np.maximum(k - smoothing, 0)
    scores = (csum[k] - csum[lo]) / (k - lo)[:, None]
    times = ((starts + n_frames - 1) * fe.hop_length + fe.n_fft) / fe.sample_rate
    return scores, times


def replay(scores, times, thresholds, refractory_s) -> list[tuple[int, float]]:
    """Detections [(class index, time s)] of kws.Detector's trigger rule replayed on a score trace
    (`detector_trace`): the most likely class fires when its smoothed score reaches its threshold
    (`thresholds` [classes]; inf = never), then nothing fires for `refractory_s`, and the same class
    again only after its score fell below its threshold (re-armed at the first such hop)."""
    best = scores.argmax(axis=1)
    best_score = scores[np.arange(len(best)), best]
    dets, quiet, held, rearm = [], -math.inf, None, math.inf
    for j in np.flatnonzero(best_score >= thresholds[best]):
        if held is not None and j >= rearm:
            held = None
        if times[j] < quiet or best[j] == held:
            continue
        quiet = times[j] + refractory_s
        held = best[j]
        # the first hop after j below the threshold: usually within a few hops, so look near first
        below = np.flatnonzero(scores[j + 1:j + 65, held] < thresholds[held])
        if not below.size:
            below = np.flatnonzero(scores[j + 1:, held] < thresholds[held])
        rearm = j + 1 + below[0] if below.size else math.inf
        dets.append((int(best[j]), float(times[j])))
    return dets


def _sweep(scores, times, events, labels, kw_idx, hours, refractory_s, fa_per_hour):
    """Threshold, FA/h, FRR (+ the curve) of a score trace: scores [hops, classes] of smoothed
    posteriors at `times` (end of each window, s); the Detector's trigger rule replayed for every
    candidate threshold, the lowest one with at most `fa_per_hour` chosen."""
    best = scores.argmax(axis=1)
    best_score = scores[np.arange(len(best)), best]
    is_kw = np.isin(best, kw_idx)
    n_pos = len(events)

    def replay_at(thr):
        thresholds = np.full(scores.shape[1], np.inf)
        thresholds[kw_idx] = thr
        return _match([(labels[c], t) for c, t in replay(scores, times, thresholds, refractory_s)], events)

    cand = np.unique(np.concatenate([best_score[is_kw], [1.0]]))
    cand = cand[cand > 0]
    if cand.size > 400:
        cand = np.unique(np.quantile(cand, np.linspace(0, 1, 400)))
    curve = []
    for thr in cand:
        hits, fas = replay_at(thr)
        curve.append((float(thr), fas / hours, 1.0 - hits / max(n_pos, 1)))
    ok = [c for c in curve if c[1] <= fa_per_hour]
    thr, fah, frr = min(ok, key=lambda c: c[0]) if ok else (1.0, float("nan"), 1.0)
    pts = sorted({round(c[1], 3): c for c in curve}.values(), key=lambda c: c[1])
    return {"fa_per_hour_target": fa_per_hour, "threshold": thr, "frr": frr, "fa_per_hour": fah,
            "keyword_clips": n_pos, "stream_hours": hours,
            "curve": [{"threshold": c[0], "fa_per_hour": c[1], "frr": c[2]} for c in pts[:50]]}


def streaming_metric(model, stream, events, seconds: float, width=None, blocks=None,
                     fa_per_hour: float = 1.0, hop_ms: float = HOP_MS, smoothing: int = SMOOTHING_HOPS,
                     refractory_s: float | None = None) -> dict:
    """FRR at `fa_per_hour` false alarms per hour over a stream of the split's clips (make_stream;
    module doc)."""
    from kws.detector import REFRACTORY_S, Detector
    refractory_s = REFRACTORY_S if refractory_s is None else refractory_s
    labels = list(model.labels)
    kw = dict(width=width if width is not None else max(model.arch.widths), blocks=blocks,
              hop_ms=hop_ms, smoothing=smoothing, refractory_s=refractory_s)
    det = Detector(model, threshold=1.0, **kw)
    kw_idx = np.array([labels.index(k) for k in det.keywords])
    scores, times = detector_trace(det, stream)
    chunk = det.hop_frames * model.frontend.hop_length
    hours, n_pos = seconds / 3600.0, len(events)
    res = _sweep(scores, times, events, labels, kw_idx, hours, refractory_s, fa_per_hour)
    # the chosen threshold through the Detector itself
    check = Detector(model, threshold=float(res["threshold"]), **kw)
    dets = []
    for i in range(0, stream.size, chunk):
        dets += [(d.label, d.time_s) for d in check.feed(stream[i:i + chunk])]
    hits, fas = _match(dets, events)
    # and at the thresholds a user gets: the model's own (kws.Detector's default)
    shipped = Detector(model, **kw)
    found = []
    for i in range(0, stream.size, chunk):
        found += [(d.label, d.time_s) for d in shipped.feed(stream[i:i + chunk])]
    s_hits, s_fas = _match(found, events)
    return {"operating_point": det.operating_point.name, **res,
            "detector_check": {"hits": hits, "false_alarms": fas, "frr": 1.0 - hits / max(n_pos, 1),
                               "fa_per_hour": fas / hours},
            "default_thresholds": {"thresholds": shipped.threshold, "hits": s_hits, "false_alarms": s_fas,
                                   "frr": 1.0 - s_hits / max(n_pos, 1), "fa_per_hour": s_fas / hours}}


def teacher_posteriors(net):
    """posteriors(x [N, n_frames, n_features]) -> [N, classes] (float64) of a float teacher
    (load_teacher), for window_trace."""
    import torch

    def posteriors(x):
        with torch.no_grad():
            logits, _ = net(torch.from_numpy(x))
        return torch.softmax(logits.double(), dim=1).numpy()
    return posteriors


def teacher_streaming_metric(net, model, stream, events, seconds: float, fa_per_hour: float = 1.0,
                             hop_ms: float = HOP_MS, smoothing: int = SMOOTHING_HOPS,
                             refractory_s: float | None = None) -> dict:
    """The same stream and trigger rule as `streaming_metric`, scored by a float teacher
    (load_teacher) instead of the binary model: how much of the FRR binarization costs.
    The teacher sees the windows the Detector would classify (the model's frontend over the whole
    stream, which equals the streaming frontend, a window every hop, posteriors averaged over
    `smoothing` hops)."""
    from kws.detector import REFRACTORY_S
    refractory_s = REFRACTORY_S if refractory_s is None else refractory_s
    labels = list(model.labels)
    scores, times = window_trace(model, stream, teacher_posteriors(net), hop_ms, smoothing)
    kw_idx = np.array([i for i, lab in enumerate(labels) if lab not in NON_KEYWORDS])
    return _sweep(scores, times, events, labels, kw_idx, seconds / 3600.0, refractory_s, fa_per_hour)


# ---------------------------------------------------------------------------- the whole evaluation
def _read_mono(path, what: str, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """(float32 mono audio, rate) of a sound file (channels averaged), at its own rate or
    resampled to `sample_rate`; not clipped (kws.data.audio.load_wav clips, the Detector takes
    any level). A missing file is FileNotFoundError, anything unreadable a KwsError naming `what`."""
    import soundfile as sf
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:                  # noqa: BLE001  unreadable or not audio
        raise KwsError(f"{path}: cannot read the {what} ({type(e).__name__}: {e})") from None
    x = x.mean(axis=1)
    if sample_rate and rate != sample_rate:
        import soxr
        x, rate = soxr.resample(x, rate, sample_rate), sample_rate
    return x, rate


def read_negative_stream(path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """(mono float32 audio, rate) of keyword-free audio (`_read_mono`), at least 1 s long, finite."""
    audio, rate = _read_mono(path, "negative stream", sample_rate)
    if len(audio) < rate:
        raise KwsError(f"{path}: a negative stream needs at least 1 s of audio, got {len(audio) / rate:.2f} s")
    if not np.isfinite(audio).all():
        raise KwsError(f"{path}: the stream holds NaN or infinite samples")
    return audio, rate


def stream_rows(path) -> list[dict]:
    """The rows of a `kws data stream` file's sidecar `<path>.csv` (what is where: start_s,
    end_s, kind, name, text), or [] when there is none or it cannot be read."""
    import csv
    try:
        with open(str(path) + ".csv", newline="", encoding="utf-8") as f:
            return [r for r in csv.DictReader(f) if r.get("start_s") and r.get("end_s")]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def heard_at(rows: list[dict], t: float, before: float = 1.0, after: float = 0.2) -> str:
    """What a stream's rows say was playing around a detection at t seconds (the 1 s window that
    fired ends at t): "kind name: text" of each row overlapping [t - before, t + after]."""
    out = []
    for r in rows:
        try:
            s, e = float(r["start_s"]), float(r["end_s"])
        except ValueError:
            continue
        if s <= t + after and e >= t - before:
            out.append(f"{r.get('kind', '')} {r.get('name', '')}: {r.get('text', '')}".strip())
    return " | ".join(out)


def negative_stream_metric(model, path, ops, chunk_s: float = 0.1) -> dict:
    """False alarms of the Detector (its default thresholds: the model's own, else 0.5) on an
    audio file that holds no keyword, per operating point: {point: {"false_alarms", "hours",
    "fa_per_hour", "by_label": {label: n}, "events": [{"label", "score", "time_s", "heard"}]}}.
    "heard" is what the stream's CSV (`kws data stream`) says was playing then ("" without one):
    which words a keyword was taken for. Multi-channel files are averaged to mono; any sample
    rate (the Detector resamples)."""
    from kws.detector import Detector
    audio, rate = read_negative_stream(path)
    rows = stream_rows(path)
    hours = len(audio) / rate / 3600
    out = {}
    step = max(1, int(chunk_s * rate))
    for op in ops:
        det = Detector(model, width=op.width, blocks=len(op.blocks))
        dets = []
        for i in range(0, len(audio), step):
            dets += det.feed(audio[i:i + step], sample_rate=rate)
        by = {}
        for d in dets:
            by[d.label] = by.get(d.label, 0) + 1
        out[op.name] = {"false_alarms": len(dets), "hours": hours, "fa_per_hour": len(dets) / hours,
                        "by_label": dict(sorted(by.items(), key=lambda kv: -kv[1])),
                        "thresholds": det.threshold,
                        "events": [{"label": d.label, "score": round(float(d.score), 4),
                                    "time_s": round(float(d.time_s), 2), "heard": heard_at(rows, d.time_s)}
                                   for d in dets]}
    return out


def load_background(path, sr: int = 16000) -> np.ndarray:
    """A background for the keyword stream from an audio file (e.g. `kws data stream --kind music`
    or `--kind babble`): mono (channels averaged), resampled to `sr`."""
    x, _ = _read_mono(path, "stream background", sr)
    if x.size < sr or not np.any(x):
        raise KwsError(f"{path}: a stream background needs at least 1 s of sound")
    return x.astype(np.float32)


def keyword_dbfs(clips, labels: list[str]) -> float:
    """Median power (dBFS) of the split's keyword clips: the reference of --stream-snr."""
    power = [10 * math.log10(float(np.mean(np.square(a, dtype=np.float64))) + 1e-20)
             for a, y in (clips[i] for i in range(len(clips))) if labels[y] not in NON_KEYWORDS]
    if not power:
        raise KwsError("the split has no keyword clip to set the stream's SNR against")
    return float(np.median(power))


def keyword_stream(clips, labels: list[str], sr: int, background=None, noise_dbfs: float = -35.0,
                   snr_db: float | None = None, seed: int = 0, max_clips: int | None = None):
    """(audio, events, seconds, noise_dbfs): the split's keyword stream (make_stream) over
    `background` (an array; None: the data set's noise files) at `noise_dbfs`, or, with `snr_db`,
    that many dB under the median keyword clip (keyword_dbfs). kws eval's, kws calibrate's and
    the benchmarks' keyword streams are all this one."""
    if snr_db is not None:
        noise_dbfs = keyword_dbfs(clips, labels) - snr_db
    noise = clips.noise if background is None else [background]
    return (*make_stream(clips, labels, noise, noise_dbfs, seed, max_clips, sr), noise_dbfs)


def evaluate(model, data, split: str = "testing", teacher=None, stream: bool = True,
             stream_ops: str = "main", fa_per_hour: float = 1.0, noise_dbfs: float = -35.0,
             stream_clips: int | None = None, seed: int = 0, progress=None,
             snr: float | None = None, resample: int | None = None, gain: float | None = None,
             negative_streams: list | tuple = (), stream_noise=None,
             stream_snr: float | None = None) -> dict:
    """Accuracy per operating point (+ confusion, teacher, streaming, false alarms per hour of
    each negative stream) of a model on a split."""
    from kws.data.speech_commands import SpeechCommands
    from kws.detector import resolve_model
    from kws.fsmn.runtime import BinaryFSMN

    model = resolve_model(model)
    labels = list(model.labels)
    teacher_net = load_teacher(teacher, model) if teacher else None      # fail before the work
    for f in negative_streams:                                           # ... and here too
        if not Path(f).is_file():
            raise FileNotFoundError(f"negative stream not found: {f}")
    background = load_background(stream_noise, model.frontend.sample_rate) if stream and stream_noise else None
    task, words = task_for_labels(labels)
    clips = SpeechCommands(Path(data), split, task, words, seed=seed)
    perturb = Perturbation(snr, resample, clips.noise if snr is not None else None, seed,
                           model.frontend.sample_rate, gain)
    x, y = _features(clips, model.frontend, model.arch.n_frames, perturb)
    net = BinaryFSMN(model)
    acc, conf, preds, summary = {}, {}, {}, {}
    for op in model.arch.operating_points:
        pred = preds[op.name] = np.array([int(np.argmax(net.logits(f, op))) for f in x])
        acc[op.name] = float((pred == y).mean())
        conf[op.name] = confusion(y, pred, len(labels)).tolist()
        summary[op.name] = class_summary(y, pred, labels)
        if progress:
            progress(f"{op.name}: accuracy {acc[op.name]:.4f}")
    out = {"model": str(getattr(model, "path", None)), "data": str(data), "split": split,
           "task": task, "n": int(len(y)), "labels": labels, "accuracy": acc, "classes": summary, "confusion": conf,
           "class_counts": np.bincount(y, minlength=len(labels)).tolist(),
           "perturbation": perturb.describe()}
    if len(clips.items) == len(y):
        out["unknown_words"] = unknown_words(clips, y, preds, labels)
    sources = clip_sources(clips)
    if sources is not None and len(sources) == len(y):
        out["accuracy_by_source"] = accuracy_by_source(sources, y, preds)
    if teacher:
        out["teacher_accuracy"] = teacher_accuracy(teacher_net, x, y)
    if stream:
        ops = model.arch.operating_points if stream_ops == "all" else model.arch.operating_points[:1]
        out["streaming"] = {}
        # one stream for every operating point and the teacher
        audio, events, seconds, noise_dbfs = keyword_stream(
            clips, labels, model.frontend.sample_rate, background, noise_dbfs, stream_snr, seed, stream_clips)
        out["stream_background"] = {"source": str(stream_noise) if stream_noise else "the data set's noise files",
                                    "noise_dbfs": noise_dbfs, "snr_db": stream_snr}
        for op in ops:
            r = {**streaming_metric(model, audio, events, seconds, op.width, len(op.blocks),
                                    fa_per_hour), "noise_dbfs": noise_dbfs}
            out["streaming"][op.name] = r
            if progress:
                progress(f"{op.name}: FRR {r['frr']:.4f} at {r['fa_per_hour']:.2f} FA/h "
                         f"(threshold {r['threshold']:.3f}, {r['stream_hours'] * 60:.1f} min stream)")
        if teacher:
            r = {**teacher_streaming_metric(teacher_net, model, audio, events, seconds, fa_per_hour),
                 "noise_dbfs": noise_dbfs}
            out["teacher_streaming"] = r
            if progress:
                progress(f"teacher: FRR {r['frr']:.4f} at {r['fa_per_hour']:.2f} FA/h "
                         f"(threshold {r['threshold']:.3f})")
    if negative_streams:
        ops = model.arch.operating_points if stream_ops == "all" else model.arch.operating_points[:1]
        out["negative_streams"] = {}
        for f in negative_streams:
            r = out["negative_streams"][str(f)] = negative_stream_metric(model, f, ops)
            if progress:
                for op, m in r.items():
                    progress(f"{f} {op}: {m['false_alarms']} false alarms in {m['hours'] * 60:.1f} min "
                             f"= {m['fa_per_hour']:.2f} per hour")
    return out
