"""What the `_unknown_` class's prior does to the accuracy yardstick, and what it does not do to detection.

    python benchmarks/unknown_prior.py --model default --data data/v3 --split validation \\
        [--points 1x8,0.5x4] [--biases -1,0,0.5,1,1.5,2,3] [--json]

A classifier trained with a different `_unknown_` share than the test set's (kws train's
`--unknown-fraction 0.4`, against ~59 % unknown clips in the v3 stand-in's splits) scores as if a
bias b were added to its `_unknown_` logit. For each b this prints, per operating point: the
12-class argmax accuracy (the yardstick), by voice family, keyword recall, the share of `_unknown_`
clips called a keyword; and a detection figure that the prior cannot move much: each keyword's
recall at the posterior threshold that 1 % (and 0.2 %) of the split's other clips exceed, the
mean over keywords (one window per clip, no streaming; the Detector thresholds posteriors per
keyword the same way). The model's logits are computed once (kws.fsmn.runtime) and re-scored.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import float_list  # noqa: E402

FPRS = (0.01, 0.002)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def recall_at_fpr(p: np.ndarray, y: np.ndarray, keywords: list[int], fpr: float) -> float:
    """Mean over keywords k of the recall of k's clips at the threshold on p[:, k] that a share
    `fpr` of the other clips exceed."""
    rec = []
    for k in keywords:
        neg = np.sort(p[y != k, k])[::-1]
        if not len(neg) or not (y == k).any():
            continue
        thr = neg[min(int(fpr * len(neg)), len(neg) - 1)]
        rec.append(float((p[y == k, k] > thr).mean()))
    return float(np.mean(rec)) if rec else float("nan")


def score(z: np.ndarray, y: np.ndarray, labels: list[str], bias: float, sources=None) -> dict:
    """The figures of one bias (module doc); `sources`: the TTS engine of every clip (optional,
    kws.distill.evaluate.clip_sources), for the accuracy by voice family."""
    from kws.distill.evaluate import accuracy_by_source, class_summary
    from kws.fsmn.model import NON_KEYWORDS
    u = labels.index("_unknown_")
    keywords = [i for i, lab in enumerate(labels) if lab not in NON_KEYWORDS]
    zb = z.astype(np.float64, copy=True)
    zb[:, u] += bias
    pred = zb.argmax(axis=1)
    out = {"bias": bias, "accuracy": float((pred == y).mean()), **class_summary(y, pred, labels)}
    if sources is not None:
        fam = accuracy_by_source(sources, y, {"b": pred})["family"]
        out["accuracy_by_family"] = {f: g["accuracy"]["b"] for f, g in sorted(fam.items())}
    p = softmax(zb)
    out["recall_at_fpr"] = {str(f): recall_at_fpr(p, y, keywords, f) for f in FPRS}
    return out


def logits(model, data: str, split: str, points: list[str]):
    """({point: logits [N, C]}, labels y [N], the TTS engine of every clip or None)."""
    from kws.data.speech_commands import SpeechCommands
    from kws.detector import resolve_operating_point
    from kws.distill.evaluate import _features, clip_sources, task_for_labels
    from kws.fsmn.runtime import BinaryFSMN
    task, words = task_for_labels(list(model.labels))
    clips = SpeechCommands(Path(data), split, task, words, seed=0)
    x, y = _features(clips, model.frontend, model.arch.n_frames)
    net = BinaryFSMN(model)
    z = {}
    for name in points:
        op = resolve_operating_point(model.arch, name)
        z[name] = np.stack([net.logits(f, op) for f in x])
    src = clip_sources(clips)
    return z, y, (src if src is not None and len(src) == len(y) else None)


def main(argv=None) -> None:
    from kws.detector import resolve_model
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="validation", choices=["training", "validation", "testing"])
    ap.add_argument("--points", default="1x8,0.5x4")
    ap.add_argument("--biases", default="-1,0,0.5,1,1.5,2,3")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    biases = float_list(a.biases, "unknown_prior.py: --biases")
    model = resolve_model(a.model)
    if "_unknown_" not in model.labels:
        raise SystemExit("unknown_prior.py: the model has no _unknown_ class")
    points = [p.strip() for p in a.points.split(",") if p.strip()]
    z, y, fam = logits(model, a.data, a.split, points)
    rows = [{"point": name, **score(z[name], y, list(model.labels), b, fam)} for name in points for b in biases]
    if a.json:
        print(json.dumps(rows))
        return
    print(f"# {a.model} on {a.data} ({a.split}, {len(y)} clips)")
    print("point   bias  accuracy  keyword recall  unknown->keyword  recall@1%  recall@0.2%  by family")
    f = lambda v: "  -   " if v is None else f"{v:.4f}"        # noqa: E731
    for r in rows:
        fams = " ".join(f"{k} {v:.3f}" for k, v in (r.get("accuracy_by_family") or {}).items())
        print(f"{r['point']:>6} {r['bias']:5.2f}  {f(r['accuracy'])}    {f(r['keyword_recall'])}"
              f"          {f(r['unknown_called_keyword'])}       {f(r['recall_at_fpr']['0.01'])}"
              f"     {f(r['recall_at_fpr']['0.002'])}   {fams}")


if __name__ == "__main__":
    main(sys.argv[1:])
