"""How well `kws calibrate` does on keyword-free speech it was not calibrated on, without test
audio: each validation speech stream in turn is held out, the thresholds are chosen on the others
(plus music, tones and any --extra streams) for each budget and each --pools weight, and the held-out
stream's false alarms are counted with the Detector's trigger rule replayed (all keywords on).

    python benchmarks/calibration_cv.py --model runs/v13/default.kws --data data/v3 --streams runs/v3 \
        [--speech val-speech.flac,val-speech-b.flac,val-speech-c.flac] [--pools 0,0.3] [--json F]

A calibration is better if it finds more keywords at the same held-out false-alarm rate, and honest
if the held-out rate follows the budget. The FRR is the validation keyword streams' (quiet, babble
and music at 10 dB: the audio the thresholds were chosen on, the same for every method).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, float_list, run_main, write_json  # noqa: E402
from teacher_ceiling import measure, traces_of, validation_streams  # noqa: E402

from kws.detector import Detector, resolve_model, resolve_operating_point  # noqa: E402
from kws.distill.calibrate import _negative  # noqa: E402
from kws.distill.evaluate import detector_trace  # noqa: E402


def folds(speech: list[str]):
    """[(held-out stream, calibration streams)]: each speech stream held out once."""
    return [(h, [s for s in speech if s != h]) for h in speech]


def summarise(rows: list[dict]) -> list[dict]:
    """Per (point, pool, budget): held-out false alarms per hour (pooled over folds), the worst fold,
    and the validation keyword streams' FRR (mean over folds)."""
    out = {}
    for r in rows:
        out.setdefault((r["point"], r["pool"], r["budget"]), []).append(r)
    return [{"point": p, "pool": q, "budget": b,
             "held_out_fa_per_hour": sum(f["held_out"]["false_alarms"] for f in fs)
             / sum(f["held_out"]["hours"] for f in fs),
             "worst_fold_fa_per_hour": max(f["held_out"]["fa_per_hour"] for f in fs),
             "validation_frr": float(np.mean([f["validation_frr"] for f in fs]))}
            for (p, q, b), fs in out.items()]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default="data/v3")
    ap.add_argument("--streams", default="runs/v3", help="folder of the val-* streams")
    ap.add_argument("--speech", default="val-speech.flac,val-speech-b.flac,val-speech-c.flac",
                    help="validation speech streams, each held out in turn (at least 2)")
    ap.add_argument("--negatives", default="val-music.flac,val-tones.flac",
                    help="keyword-free streams always in the calibration")
    ap.add_argument("--extra", default="", help="more keyword-free calibration streams (paths), never held out")
    ap.add_argument("--points", default="1x8,0.5x4")
    ap.add_argument("--budgets", default="0.5,1,2,5,10")
    ap.add_argument("--pools", default="0,0.3", help="kws calibrate --pool values to compare")
    ap.add_argument("--min-threshold", type=float, default=0.4)
    ap.add_argument("--max-threshold", type=float, default=0.95)
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    budgets = float_list(args.budgets, "calibration_cv.py: --budgets")
    pools = float_list(args.pools, "calibration_cv.py: --pools")
    speech = [s for s in args.speech.split(",") if s]
    if len(speech) < 2:
        raise SystemExit("calibration_cv.py: --speech needs at least 2 streams (one is held out)")
    model = resolve_model(args.model)
    labels = list(model.labels)
    streams = Path(args.streams)
    t0 = time.time()
    fixed = [n for n in args.negatives.split(",") if n]
    val, fa_from = validation_streams(model, args.data, streams, speech + fixed)
    extra = [_negative(model, p) for p in args.extra.split(",") if p]
    n_kw = fa_from.count(False)
    keyword_streams, negatives = val[:n_kw], dict(zip(speech + fixed, val[n_kw:]))
    print(f"streams: {sum(s[3] for s in val + extra) / 3600:.2f} h ({time.time() - t0:.0f} s)", flush=True)
    rows = []
    for p in args.points.split(","):
        op = resolve_operating_point(model.arch, p)
        traced = traces_of(lambda audio: detector_trace(
            Detector(model, width=op.width, blocks=len(op.blocks), threshold=1.0), audio),
            keyword_streams + list(negatives.values()) + extra)
        kw_tr, rest = traced[:n_kw], traced[n_kw:]
        by_name, extra_tr = dict(zip(negatives, rest)), rest[len(negatives):]
        for held, cal in folds(speech):
            cal_tr = [by_name[n] for n in cal + fixed] + extra_tr
            tests = kw_tr + [by_name[held]]
            names = [f"kw{i}" for i in range(n_kw)] + ["held"]
            for pool in pools:
                for r in measure(op.name, kw_tr + cal_tr, [False] * n_kw + [True] * len(cal_tr), tests,
                                 names, labels, budgets, args.min_threshold, args.max_threshold, pool):
                    hits = sum(r[f"kw{i}"]["hits"] for i in range(n_kw))
                    pos = sum(r[f"kw{i}"]["positives"] for i in range(n_kw))
                    rows.append({"point": op.name, "pool": pool, "budget": r["budget"], "held_out_stream": held,
                                 "thresholds": r["thresholds"], "validation_frr": 1 - hits / max(pos, 1),
                                 "held_out": {**r["held"], "hours": by_name[held][3] / 3600}})
        print(f"{op.name}: traced and cross-validated in {time.time() - t0:.0f} s", flush=True)
    summary = summarise(rows)
    print(f"\n{environment()['cpu']}; thresholds chosen without the held-out stream (cap {args.max_threshold})\n")
    print("| point | pool | budget | held-out speech FA/h | worst fold | validation FRR |")
    print("|---|---|---|---|---|---|")
    for s in summary:
        print(f"| {s['point']} | {s['pool']:g} | {s['budget']:g} | {s['held_out_fa_per_hour']:.2f} | "
              f"{s['worst_fold_fa_per_hour']:.1f} | {s['validation_frr'] * 100:.1f} % |")
    if args.json:
        out = {"environment": environment(), "model": args.model, "speech": speech, "negatives": fixed,
               "extra": args.extra, "min_threshold": args.min_threshold, "max_threshold": args.max_threshold,
               "summary": summary, "rows": rows}
        write_json(args.json, out)


if __name__ == "__main__":
    run_main(main, "calibration_cv.py")
