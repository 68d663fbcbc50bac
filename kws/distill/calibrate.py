"""`kws calibrate`: per-keyword firing thresholds for each operating point, tuned on validation
streams, written into the model file (`point_thresholds`; kws.Detector's default).

    r = calibrate(model, "data/v3", negative_streams=["val-speech.flac", "val-music.flac"],
                  backgrounds=["val-babble.flac", "val-music.flac"], snr_db=10,
                  points=["1x8", "0.5x4"], fa_per_hour=0.5)
    model.point_thresholds = r["point_thresholds"]

What it runs (numpy and the kernel runtime only):
  * keyword streams: the VALIDATION split's clips (voices never trained on, never tested on) in the
    evaluation's stream layout (kws.distill.evaluate.make_stream), once in a quiet room (the data
    set's noise files at -50 dBFS) and once over each background file at `snr_db` below the
    median keyword clip -- positives, and the gaps and `_unknown_` clips between them negatives;
  * negative streams: files without any keyword (`kws data stream --split validation`);
  * each stream goes once through a Detector at each operating point (`detector_trace`: smoothed
    posteriors every hop), and the Detector's trigger rule is replayed on the record
    (`evaluate.replay`) for every candidate threshold.
For each keyword on its own (the others switched off, so a keyword's false alarms are its own),
at every threshold of a grid (0.01 steps from `min_threshold` to 0.99, finer to 0.9999, `_grid`):
its hits on the keyword streams and its false alarms, counted on the negative streams when there
are any (what users count: keyword-free speech and music), else on all streams. A count of 0 or 1
says little (new audio exceeds the highest of N keyword-free peaks about once per N), so with
`extrapolate` (default) the count's tail is fitted, log(count) linear in logit(threshold) over the
highest thresholds with 2 or more (`tail_fit`), and above them the fitted value is the expected
number (`expected_false_alarms`). One keyword's count is a handful of events, and where it is
flat (confident false alarms at every threshold) or zero it says a low threshold costs nothing,
which new audio contradicts (v13's 'right' kept 0.40 over two confident validation false alarms
and fired at 0.41-0.57 on test speech); so each keyword's expected count is shrunk toward the
keywords' mean (`pool_expected`, weight `pool`, 0.3: on held-out validation speech it reaches
false-alarm rates the unpooled rule cannot, at about the same FRR where both reach; 0.5 was no
better; docs/default-model.md "Calibration cross-checked"). The budget (`fa_per_hour` x the
counted hours) is shared among the keywords where it buys the most hits (`allocate`: one price
per false alarm, each keyword at its best hits - price x expected false alarms), rather than in
equal shares: with an hour of validation audio an equal share of 0.5/h is 0.05 false alarms per
keyword, below what one hour can tell apart. The budget is for the false alarms a threshold can
avoid: each keyword's fewest (at the grid's top) are counted on top of it (`within_budget` false
where they alone exceed it), so one loud keyword does not push every other one to its highest
threshold, and a smaller budget never gives looser thresholds. The budget may buy a keyword a
threshold so high it never fires (0.998+: it then costs no false alarms); `max_threshold` caps
the grid so every keyword stays heard, at the price of the budget (default model candidate s12b
at 0.5x4 had 'go' at 0.997 and 'stop' at 0.9996 and missed both in the microphone test). The FRR
each threshold costs is reported, and for each point the trade-off: the FRR that budgets from
0.5 to 20 false alarms per hour would cost (`tradeoff`), to choose the budget from.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kws.errors import KwsError
from kws.fsmn.model import NON_KEYWORDS

GRID_STEP = 0.01
POOL = 0.3                  # weight of the keywords' mean in each keyword's expected false alarms
MAX_THRESHOLD = 0.9999      # the grid's top; a lower --max-threshold keeps every keyword alive


def _streams(model, data, backgrounds, snr_db: float, split: str, seed: int, max_clips=None):
    """[(name, audio, events, seconds)]: the split's keyword stream, quiet and over each background."""
    from kws.data.speech_commands import SpeechCommands
    from kws.distill.evaluate import keyword_stream, load_background, task_for_labels
    labels = list(model.labels)
    task, words = task_for_labels(labels)
    clips = SpeechCommands(Path(data), split, task, words, seed=seed)
    sr = model.frontend.sample_rate
    out = [("keywords, quiet", *keyword_stream(clips, labels, sr, None, -50.0, None, seed, max_clips)[:3])]
    for k, path in enumerate(backgrounds):
        out.append((f"keywords in {Path(path).name} at {snr_db:g} dB",
                    *keyword_stream(clips, labels, sr, load_background(path, sr), snr_db=snr_db,
                                    seed=seed + 1 + k, max_clips=max_clips)[:3]))
    return out


def _negative(model, path):
    from kws.distill.evaluate import read_negative_stream
    audio, rate = read_negative_stream(path, model.frontend.sample_rate)
    return f"negative {Path(path).name}", audio.astype(np.float32), [], len(audio) / rate


def _grid(min_threshold: float, max_threshold: float = MAX_THRESHOLD) -> np.ndarray:
    """Candidate thresholds: 0.01 steps up to 0.99, then 0.001 steps to 0.999 and 0.0001 steps to
    0.9999 (confident keywords' smoothed posteriors crowd near 1), none above `max_threshold`."""
    g = np.unique(np.round(np.concatenate([
        np.arange(min_threshold, 0.99 + 1e-9, GRID_STEP), np.arange(0.991, 0.999 + 1e-9, 0.001),
        np.arange(0.9991, 0.9999 + 1e-9, 0.0001)]), 4))
    return g[g <= max_threshold + 1e-9]


def tail_fit(rows, min_count: int = 2, points: int = 8):
    """(intercept, slope) of log(false alarms) against logit(threshold) over the highest thresholds
    with at least `min_count` false alarms (at most `points` of them, at least 3), or None: the
    false-alarm rate's tail, to extrapolate where the calibration audio has too few."""
    tail = [(math.log(t / (1 - t)), math.log(f)) for t, f, *_ in rows if f >= min_count][-points:]
    if len(tail) < 3 or len({x for x, _ in tail}) < 3:
        return None
    slope, intercept = np.polyfit(*zip(*tail), 1)
    return (float(intercept), float(slope)) if slope < 0 else None


TRADEOFF_BUDGETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)     # false alarms per hour, all keywords


def _rows(traces, labels, k, grid, refractory_s: float, counted):
    """[(threshold, false alarms, hits, positives)] of keyword k alone (the others switched off,
    so its false alarms are its own) at every grid threshold: hits over all traces, false alarms
    over the traces `counted` marks."""
    from kws.distill.evaluate import _match, replay
    c = labels.index(k)
    mine = [[e for e in events if e[0] == k] for _, _, events, _ in traces]
    pos = sum(map(len, mine))
    rows = []
    for thr in grid:
        th = np.full(len(labels), np.inf)
        th[c] = thr
        hits = fas = 0
        for (scores, times, _, _), own, counts in zip(traces, mine, counted):
            if not (own or counts):
                continue
            h, f = _match([(labels[i], t) for i, t in replay(scores, times, th, refractory_s)], own)
            hits, fas = hits + h, fas + (f if counts else 0)
        rows.append((float(thr), fas, hits, pos))
    return rows


def expected_false_alarms(rows, fit) -> np.ndarray:
    """The false alarms to expect at each row's threshold on audio like the calibration audio:
    the count itself where it is 2 or more, the fitted tail (`tail_fit`) above that, made
    non-increasing in the threshold."""
    e = np.array([f if f >= 2 or fit is None else
                  math.exp(fit[0] + fit[1] * math.log(t / (1 - t))) for t, f, *_ in rows], float)
    return np.minimum.accumulate(e)


def pool_expected(expected: dict, pool: float = POOL) -> dict:
    """Each keyword's expected false alarms (arrays over the same grid) shrunk toward the keywords'
    mean, (1 - pool) * own + pool * mean, kept non-increasing in the threshold: a keyword whose own
    count is flat or empty borrows the others' evidence that lower thresholds fire more."""
    if not 0 <= pool <= 1:
        raise KwsError(f"--pool must be in [0, 1], got {pool}")
    mean = np.mean(list(expected.values()), axis=0)
    return {k: np.minimum.accumulate((1 - pool) * e + pool * mean) for k, e in expected.items()}


def allocate(rows: dict, expected: dict, budget: float, lam_hi: float = 1e9):
    """{keyword: row index}: the thresholds that find the most keywords while the expected false
    alarms of all keywords together stay within `budget` (a count) on top of the fewest they can
    have (each keyword's at the grid's top); and whether those fewest alone fit the budget.
    Lagrangian: for a price lam per false alarm each keyword takes the row maximising
    hits - lam * expected; lam is the lowest price (bisection) whose choices fit the budget, so
    false alarms go to the keywords where they buy the most hits. Then what is left of the budget
    lowers thresholds that keep their hits (a margin for keywords said a little less clearly than
    the calibration ones), keyword by keyword."""
    def pick(lam):
        return {k: max(range(len(r)), key=lambda i: (r[i][2] - lam * expected[k][i], -i))
                for k, r in rows.items()}

    def total(ch):
        return sum(expected[k][i] for k, i in ch.items())

    best = pick(lam_hi)
    within = bool(total(best) <= budget)
    # what no threshold avoids (confident false alarms under a --max-threshold cap) is taken as
    # given and the budget shared on top: one loud keyword does not push every other one to its
    # highest threshold, and the thresholds are monotone in the budget
    budget += total(best)
    lo, hi = 0.0, lam_hi
    free = pick(lo)                           # false alarms cost nothing: the most hits
    if total(free) <= budget:
        best, hi = free, lo
    for _ in range(200 if hi > 0 else 0):     # geometric bisection over 21 decades
        mid = math.sqrt(lo * hi) if lo > 0 else hi * 1e-12
        ch = pick(mid)
        if total(ch) <= budget:
            hi, best = mid, ch
        else:
            lo = mid
        if hi - lo <= 1e-6 * hi:
            break
    left = budget - total(best)
    for k, i in best.items():
        j = i
        while j > 0 and rows[k][j - 1][2] == rows[k][i][2] and expected[k][j - 1] - expected[k][i] <= left:
            j -= 1
        left -= expected[k][j] - expected[k][i]
        best[k] = j
    return best, within


def choose(traces, labels, keywords, fa_per_hour: float, min_threshold: float,
           refractory_s: float, extrapolate: bool = True, tradeoff=None, fa_from=None,
           max_threshold: float = MAX_THRESHOLD, pool: float = POOL) -> dict:
    """{keyword: {"threshold", "false_alarms", "fa_per_hour", "hits", "positives", "frr", ...}}
    from traces [(scores, times, events, seconds)] (module doc). False alarms are counted, and the
    budget is per hour, on the traces where `fa_from` (one bool per trace; None: all) is true.
    With `tradeoff` (a list), appends to it, for each budget of TRADEOFF_BUDGETS, what the
    thresholds chosen for that budget would give (FRR over the keyword streams, each keyword
    replayed alone and summed; validation false alarms)."""
    counted = [True] * len(traces) if fa_from is None else [bool(c) for c in fa_from]
    if len(counted) != len(traces) or not any(counted):
        raise KwsError("fa_from must mark at least one of the traces")
    hours = sum(t[3] for t, c in zip(traces, counted) if c) / 3600.0
    grid = _grid(min_threshold, max_threshold)
    rows = {k: _rows(traces, labels, k, grid, refractory_s, counted) for k in keywords}
    fits = {k: tail_fit(r) if extrapolate else None for k, r in rows.items()}
    expected = pool_expected({k: expected_false_alarms(r, fits[k]) for k, r in rows.items()}, pool)

    def result(budget):
        chosen, ok = allocate(rows, expected, budget * hours)
        out = {}
        for k, i in chosen.items():
            thr, fas, hits, pos = rows[k][i]
            fit = fits[k]
            out[k] = {"threshold": thr, "false_alarms": fas, "fa_per_hour": fas / hours,
                      "expected_false_alarms": float(expected[k][i]),
                      "fitted_fa_per_hour": float(expected[k][i]) / hours,
                      "hits": hits, "positives": pos, "frr": 1.0 - hits / max(pos, 1),
                      "within_budget": ok,
                      "tail_fit": None if fit is None else {"intercept": fit[0], "slope": fit[1]}}
        return out

    for b in (TRADEOFF_BUDGETS if tradeoff is not None else ()):
        got = list(result(b).values())
        pos = sum(g["positives"] for g in got)
        tradeoff.append({"fa_per_hour_budget": b,
                         "frr": 1.0 - sum(g["hits"] for g in got) / max(pos, 1),
                         "false_alarms": sum(g["false_alarms"] for g in got),
                         "fa_per_hour": sum(g["false_alarms"] for g in got) / hours,
                         "expected_fa_per_hour": sum(g["expected_false_alarms"] for g in got) / hours,
                         "thresholds": {k: g["threshold"] for k, g in zip(keywords, got)}})
    return result(fa_per_hour)


def stream_counts(trace, labels, thresholds, refractory_s: float) -> dict:
    """{hits, positives, false_alarms, frr (None without keyword events), fa_per_hour} of a trace
    (scores, times, events, seconds) under per-class `thresholds` (the trigger rule replayed)."""
    from kws.distill.evaluate import _match, replay
    scores, times, events, seconds = trace
    hits, fas = _match([(labels[i], t) for i, t in replay(scores, times, thresholds, refractory_s)], events)
    return {"hits": hits, "positives": len(events), "false_alarms": fas,
            "frr": 1.0 - hits / len(events) if events else None, "fa_per_hour": fas / (seconds / 3600.0)}


def calibrate(model, data, negative_streams=(), backgrounds=(), snr_db: float = 10.0,
              points=None, fa_per_hour: float = 0.5, min_threshold: float = 0.4,
              split: str = "validation", seed: int = 0, max_clips: int | None = None,
              progress=None, extrapolate: bool = True, max_threshold: float = MAX_THRESHOLD,
              pool: float = POOL) -> dict:
    """Thresholds per operating point and keyword, and what they give on the streams (module doc).

    Returns {"point_thresholds": {point: {keyword: threshold}}, "points": {point: per-keyword
    results (`choose`) + "streams": totals per stream at the chosen thresholds + "tradeoff":
    FRR and false alarms at other budgets}, "streams":
    [{name, seconds, keyword_events}], "fa_per_hour_target", "min_threshold", "split"}."""
    from kws.detector import (HOP_MS, REFRACTORY_S, SMOOTHING_HOPS, Detector, resolve_model,
                              resolve_operating_point)
    from kws.distill.evaluate import detector_trace
    model = resolve_model(model)
    if not 0 < fa_per_hour:
        raise KwsError(f"--fa-per-hour must be > 0, got {fa_per_hour}")
    if not 0 < min_threshold < 0.99:
        raise KwsError(f"--min-threshold must be in (0, 0.99), got {min_threshold}")
    if not min_threshold <= max_threshold <= MAX_THRESHOLD:
        raise KwsError(f"--max-threshold must be in [--min-threshold, {MAX_THRESHOLD}], got {max_threshold}")
    if not 0 <= pool <= 1:
        raise KwsError(f"--pool must be in [0, 1], got {pool}")
    if split == "testing":
        raise KwsError("thresholds are tuned on the validation split, never on the testing split")
    for f in list(negative_streams) + list(backgrounds):
        if not Path(f).is_file():
            raise FileNotFoundError(f"stream not found: {f}")
    ops = [resolve_operating_point(model.arch, p) for p in (points or [model.arch.operating_points[0].name])]
    labels = list(model.labels)
    keywords = [l for l in labels if l not in NON_KEYWORDS]
    streams = _streams(model, data, backgrounds, snr_db, split, seed, max_clips)
    # false alarms are what keyword-free audio triggers: with negative streams, only they count
    # (the keyword streams' gaps are dense with `_unknown_` and confusable words, ~1,000 an hour,
    # far from what users hear); without them, every stream counts
    fa_from = [not negative_streams] * len(streams) + [True] * len(negative_streams)
    streams += [_negative(model, f) for f in negative_streams]
    result = {"split": split, "fa_per_hour_target": fa_per_hour, "min_threshold": min_threshold,
              "max_threshold": max_threshold,
              "extrapolate": extrapolate, "pool": pool,
              "detector": {"hop_ms": HOP_MS, "smoothing": SMOOTHING_HOPS, "refractory_s": REFRACTORY_S},
              "fa_streams": [n for (n, *_), c in zip(streams, fa_from) if c],
              "snr_db": snr_db, "streams": [{"name": n, "seconds": s, "keyword_events": len(e)}
                                            for n, _, e, s in streams],
              "points": {}, "point_thresholds": {}}
    for op in ops:
        traces = []
        for name, audio, events, seconds in streams:
            det = Detector(model, width=op.width, blocks=len(op.blocks), threshold=1.0)
            scores, times = detector_trace(det, audio)
            traces.append((scores, times, events, seconds))
        tradeoff = []
        chosen = choose(traces, labels, keywords, fa_per_hour, min_threshold, REFRACTORY_S, extrapolate,
                        tradeoff, fa_from, max_threshold, pool)
        th = np.array([chosen[l]["threshold"] if l in chosen else np.inf for l in labels])
        per_stream = {name: stream_counts(trace, labels, th, REFRACTORY_S)
                      for (name, *_), trace in zip(streams, traces)}
        result["points"][op.name] = {"keywords": chosen, "streams": per_stream, "tradeoff": tradeoff}
        result["point_thresholds"][op.name] = {k: v["threshold"] for k, v in chosen.items()}
        if progress:
            progress(f"{op.name}: " + ", ".join(f"{k} {v['threshold']:.4g}" for k, v in chosen.items()))
    return result
