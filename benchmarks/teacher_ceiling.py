"""How far the float teacher is from issue #17's stream targets, beside the binary student: the same
calibration (`kws calibrate`'s thresholds on validation streams) and the same test yardsticks
(train-default.sh step 5: false alarms on the test speech and music, FRR of the testing split's
keyword stream quiet and in babble / music at 10 dB SNR), for the float teacher and for the
model's operating points, at several false-alarm budgets.

    python benchmarks/teacher_ceiling.py --model runs/v9/default.kws --teacher runs/v9/work/teacher.pt \
        --data data/v3 --streams runs/v3 [--budgets 0.5,1,5] [--json F]

Why: the student is distilled from the teacher, so where the teacher misses too, a better binary
network alone cannot reach a target; where only the student misses, binarization (capacity) is the
lever. Only the scorer differs between the rows: the teacher's trace is its posteriors of the
window the Detector would classify at every hop, smoothed alike (kws.distill.evaluate.window_trace;
it needs torch); each point's is a real kws.Detector's (detector_trace, as kws calibrate). Each
scorer gets its own per-keyword thresholds for each budget from the validation traces
(kws.distill.calibrate.choose: the budget per hour of all negative audio, tail extrapolation,
`--max-threshold` as shipped), then the Detector's trigger rule is replayed on the test traces
(evaluate.replay). At the shipped budget (5) the student's rows equal its model file's yardsticks.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, float_list, run_main, write_json  # noqa: E402

from kws.detector import REFRACTORY_S, Detector, resolve_model, resolve_operating_point  # noqa: E402
from kws.distill.calibrate import POOL, _negative, _streams, choose, stream_counts  # noqa: E402
from kws.distill.evaluate import (detector_trace, keyword_stream, load_background, load_teacher,  # noqa: E402
                                  teacher_posteriors, window_trace)
from kws.fsmn.model import NON_KEYWORDS  # noqa: E402


def yardstick_streams(model, data, streams: Path, also=()):
    """The yardsticks' streams (train-default.sh step 5, kws eval's defaults: seed 0): the testing
    split's keyword stream quiet (noise files at -50 dBFS) and over the test babble / music 10 dB
    under the median keyword clip, then the keyword-free test speech and music, and the keyword-free
    streams `also` (file names in `streams`; e.g. validation speech held out of the calibration)."""
    from kws.data.speech_commands import SpeechCommands
    from kws.distill.evaluate import task_for_labels
    labels = list(model.labels)
    task, words = task_for_labels(labels)
    clips = SpeechCommands(Path(data), "testing", task, words, seed=0)
    sr = model.frontend.sample_rate
    out = [("keywords quiet", *keyword_stream(clips, labels, sr, None, -50.0)[:3])]
    for kind in ("babble", "music"):
        bg = load_background(streams / f"test-{kind}.flac", sr)
        out.append((f"keywords {kind} 10 dB", *keyword_stream(clips, labels, sr, bg, snr_db=10.0)[:3]))
    for name in ("test-speech.flac", "test-music.flac", *also):
        out.append(_negative(model, streams / name))
    return out


NEGATIVES = "val-speech.flac,val-speech-b.flac,val-music.flac,val-tones.flac"   # train-default.sh step 4's


def validation_streams(model, data, streams: Path, negs=NEGATIVES.split(",")):
    """kws calibrate's streams as train-default.sh step 4 gives them (VAL_SPEECH_B=60), with the
    keyword-free streams `negs` (file names in `streams`)."""
    out = _streams(model, data, [streams / "val-babble.flac", streams / "val-music.flac"], 10.0,
                   "validation", 0)
    fa_from = [False] * len(out) + [True] * len(negs)
    return out + [_negative(model, streams / n) for n in negs], fa_from


def traces_of(scorer, streams):
    return [(*scorer(audio), events, seconds) for _, audio, events, seconds in streams]


def measure(name, val, fa_from, test, test_names, labels, budgets, min_threshold: float,
            max_threshold: float, pool: float) -> list[dict]:
    """Rows of one scorer: for each budget, its thresholds (calibrate.choose on the validation
    traces) and what they give on each test trace."""
    keywords = [k for k in labels if k not in NON_KEYWORDS]
    tradeoff: list = []         # the thresholds of TRADEOFF_BUDGETS from one pass over the grid
    choose(val, labels, keywords, 5.0, min_threshold, REFRACTORY_S, True, tradeoff, fa_from,
           max_threshold, pool)
    rows = []
    for b in budgets:
        thr = next((t["thresholds"] for t in tradeoff if t["fa_per_hour_budget"] == b), None)
        if thr is None:
            got = choose(val, labels, keywords, b, min_threshold, REFRACTORY_S, True, None,
                         fa_from, max_threshold, pool)
            thr = {k: g["threshold"] for k, g in got.items()}
        th = np.array([thr.get(l, np.inf) for l in labels])
        row = {"scorer": name, "budget": b, "thresholds": thr}
        row.update({sname: stream_counts(trace, labels, th, REFRACTORY_S)
                    for sname, trace in zip(test_names, test)})
        rows.append(row)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a calibrated .kws (its points are measured)")
    ap.add_argument("--teacher", help="the training checkpoint of its float teacher (without it: the points only)")
    ap.add_argument("--data", default="data/v3")
    ap.add_argument("--streams", default="runs/v3", help="folder of the val-* and test-* streams")
    ap.add_argument("--points", default="1x8,0.5x4")
    ap.add_argument("--budgets", default="0.5,1,5", help="false alarms per hour to calibrate for")
    ap.add_argument("--min-threshold", type=float, default=0.4)
    ap.add_argument("--max-threshold", type=float, default=0.95)
    ap.add_argument("--pool", type=float, default=POOL, help="kws calibrate --pool")
    ap.add_argument("--negatives", default=NEGATIVES,
                    help="the keyword-free validation streams (in --streams) the thresholds are calibrated on")
    ap.add_argument("--count-also", default="",
                    help="more keyword-free streams (in --streams) to count false alarms on, e.g. the "
                         "validation speech left out of --negatives (a check that needs no test audio)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    budgets = float_list(args.budgets, "teacher_ceiling.py: --budgets")
    model = resolve_model(args.model)
    labels = list(model.labels)
    if args.teacher:
        import torch
        torch.set_num_threads(1)
        net = load_teacher(args.teacher, model)
    streams = Path(args.streams)
    t0 = time.time()
    val, fa_from = validation_streams(model, args.data, streams, [n for n in args.negatives.split(",") if n])
    test = yardstick_streams(model, args.data, streams, [n for n in args.count_also.split(",") if n])
    names = [n for n, *_ in test]
    print(f"streams: validation {sum(s[3] for s in val) / 3600:.2f} h, test {sum(s[3] for s in test) / 3600:.2f} h "
          f"({time.time() - t0:.0f} s)", flush=True)

    scorers = [("float teacher", lambda audio: window_trace(model, audio, teacher_posteriors(net)))] \
        if args.teacher else []
    for p in args.points.split(","):
        op = resolve_operating_point(model.arch, p)
        scorers.append((op.name, lambda audio, op=op: detector_trace(
            Detector(model, width=op.width, blocks=len(op.blocks), threshold=1.0), audio)))
    rows = []
    for name, scorer in scorers:
        t0 = time.time()
        rows += measure(name, traces_of(scorer, val), fa_from, traces_of(scorer, test), names, labels,
                        budgets, args.min_threshold, args.max_threshold, args.pool)
        print(f"{name}: traced and calibrated in {time.time() - t0:.0f} s", flush=True)
    print(f"\n{environment()['cpu']}; thresholds from validation at each budget (FA per hour of all "
          f"negative audio, cap {args.max_threshold})\n")
    print("| scorer | budget | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for r in rows:
        cells = [f"FRR {r[c]['frr'] * 100:.1f} %" if r[c]["frr"] is not None else
                 f"{r[c]['false_alarms']} FA ({r[c]['fa_per_hour']:.1f}/h)" for c in names]
        print(f"| {r['scorer']} | {r['budget']:g} | " + " | ".join(cells) + " |")
    if args.json:
        out = {"environment": environment(), "model": args.model, "teacher": args.teacher,
               "max_threshold": args.max_threshold, "pool": args.pool, "rows": rows}
        write_json(args.json, out)


if __name__ == "__main__":
    run_main(main, "teacher_ceiling.py")
