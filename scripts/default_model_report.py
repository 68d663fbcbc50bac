"""The default model's report: README table (markdown) and plot from `kws eval --json` results.

    python scripts/default_model_report.py --model kws/models/default.kws --report docs/default-model \
        [--history runs/default/work/history.json] [--finetune-history runs/default/finetune/history.json]

Reads <report>/clean.json (needed), snr10.json, snr0.json, 8khz.json, stream-quiet.json (a
`kws eval --noise-dbfs -50` run: the streaming metric in a quiet room) when present; measures the
latency of every operating point here (median of --runs single-clip inferences, one thread, ratio
to the full network in the same run); writes <report>/table.md and <report>/accuracy.png.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from kws.bench import cpu_model  # noqa: E402
from kws.distill.plots import accuracy_vs_cost, effective_ops  # noqa: E402
from kws.fsmn.model import load_model  # noqa: E402
from kws.fsmn.runtime import BinaryFSMN  # noqa: E402

CONDITIONS = [("clean", "clean"), ("snr10", "10 dB SNR"), ("snr0", "0 dB SNR"), ("8khz", "8 kHz band")]


def latencies(model, runs: int) -> dict:
    net = BinaryFSMN(model)
    x = np.random.default_rng(0).standard_normal((model.arch.n_frames, model.arch.n_features)).astype(np.float32)
    ops = model.arch.operating_points
    for op in ops:                                   # warm-up
        for _ in range(20):
            net.logits(x, op)
    times = {op.name: [] for op in ops}
    for _ in range(runs):                            # interleaved: drift hits every point alike
        for op in ops:
            t0 = time.perf_counter()
            net.logits(x, op)
            times[op.name].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="kws/models/default.kws")
    ap.add_argument("--report", default="docs/default-model")
    ap.add_argument("--history", help="history.json of the teacher + student run")
    ap.add_argument("--finetune-history", help="history.json of a student fine-tuning run (--init-student)")
    ap.add_argument("--runs", type=int, default=300)
    a = ap.parse_args()
    rep = Path(a.report)
    model = load_model(a.model)
    arch = model.arch
    res = {k: json.loads((rep / f"{k}.json").read_text()) for k, _ in CONDITIONS if (rep / f"{k}.json").exists()}
    clean = res["clean"]
    lat = latencies(model, a.runs)
    full = arch.operating_points[0].name
    lines = [f"Testing split: {clean['n']} clips, speakers never seen in training "
             f"({clean['split']} of {clean['data']}). Latency: median of {a.runs} single-clip inferences, "
             f"one thread, {cpu_model()}.", ""]
    head = ["width x blocks", "teacher (float)", "binary student", "drop, points", "float MACs",
            "binary MACs", "ops (paper: F + B/64)", "latency", "speed-up vs 1x8"]
    extra = [lab for k, lab in CONDITIONS[1:] if k in res]
    head += [f"student, {lab}" for lab in extra]
    stream = clean.get("streaming", {})
    quiet_res = json.loads((rep / "stream-quiet.json").read_text()) \
        if (rep / "stream-quiet.json").exists() else {}
    quiet = quiet_res.get("streaming", {})
    if stream:
        head.append("FRR @ 1 FA/h")
    if quiet:
        head.append(f"FRR @ 1 FA/h, quiet ({next(iter(quiet.values()))['noise_dbfs']:g} dBFS noise)")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    t = clean.get("teacher_accuracy")
    for op in arch.operating_points:
        c = arch.costs(op)
        s = clean["accuracy"][op.name]
        row = [op.name, f"{100 * t:.2f} %" if t is not None else "n/a", f"{100 * s:.2f} %",
               f"{100 * (t - s):.2f}" if t is not None else "n/a", f"{c['float_macs']:,}",
               f"{c['binary_macs']:,}", f"{effective_ops(arch, op):,.0f}",
               f"{1e6 * lat[op.name]:.0f} µs", f"{lat[full] / lat[op.name]:.2f}x"]
        row += [f"{100 * res[k]['accuracy'][op.name]:.2f} %" for k, _ in CONDITIONS[1:] if k in res]
        if stream:
            r = stream.get(op.name)
            row.append(f"{100 * r['frr']:.1f} % (thr {r['threshold']:.2f})" if r else "")
        if quiet:
            r = quiet.get(op.name)
            row.append(f"{100 * r['frr']:.1f} % (thr {r['threshold']:.2f})" if r else "")
        lines.append("| " + " | ".join(row) + " |")
    teach = [f"{lab}: {100 * res[k]['teacher_accuracy']:.2f} %" for k, lab in CONDITIONS
             if k in res and res[k].get("teacher_accuracy") is not None]
    if teach:
        lines += ["", "Float teacher: " + ", ".join(teach) + "."]
    if stream:
        r = stream[full]
        lines += [f"Streaming ({r['stream_hours'] * 60:.1f} min stream of {r['keyword_clips']} keyword clips "
                  f"and the rest of the split in noise at {r['noise_dbfs']:g} dBFS): FRR at <= 1 false alarm "
                  f"per hour per operating point above; threshold = the Detector's."]
    ts = [f"{100 * d['teacher_streaming']['frr']:.1f} % at {d['teacher_streaming']['noise_dbfs']:g} dBFS"
          for d in (clean, quiet_res) if "teacher_streaming" in d]
    if ts:
        lines += [f"The float teacher on the same streams (its windows at the same hops, same trigger "
                  f"rule): FRR at <= 1 false alarm per hour {', '.join(ts)}."]
    for path, names in ((a.history, {"teacher": "teacher", "student": "student"}),
                        (a.finetune_history, {"student": "student fine-tuning"})):
        if not path:
            continue
        h = json.loads(Path(path).read_text())
        for phase, name in names.items():
            ep = h.get(phase) or []
            if ep:
                secs = sum(e["epoch_s"] + e.get("val_s", 0) for e in ep)
                lines.append(f"{name}: {len(ep)} epochs, {secs / 3600:.2f} h of training "
                             f"({np.median([e['epoch_s'] for e in ep]):.0f} s median per epoch, "
                             f"{ep[-1]['processes']} processes)")
    (rep / "table.md").write_text("\n".join(lines) + "\n")
    accuracy_vs_cost([res[k] for k, _ in CONDITIONS if k in res], rep / "accuracy.png", model)
    print("\n".join(lines))
    print(f"wrote {rep / 'table.md'} and {rep / 'accuracy.png'}")


if __name__ == "__main__":
    main()
