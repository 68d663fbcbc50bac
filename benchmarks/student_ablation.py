"""Which binarisation choices the student can afford: a short, same-budget comparison.

Each variant starts the full-width, all-blocks (1x8) binary student from the same trained float
teacher and trains it alone for `--steps` Adam steps (lr 1e-3, batch 48, cross-entropy only) on the
same un-augmented training clips, then reports its accuracy on a slice of the validation split
(training-mode BatchNorm, so no calibration pass is needed). Variants:

    memory input   binary: memconv(sign(h - t), sign(A))     float: memconv(h, sign(A))
    thresholds t   zero: sign at 0 (learnt from 0)            mean: start at each channel's mean
    up planes      1: sign(h - t) into the up projection      P: sum of P signs (P + 1 levels)

--variants picks them as MEMORY/THRESHOLDS/PLANES, comma-separated (default: the first four, one
plane). The student has the teacher's sizes (backbone, hidden, blocks). Besides accuracy it reports
how many of the slice's `_unknown_` clips are taken for another class, nearly always a keyword
(near-words: docs/default-model.md).

It is a ranking under a small budget, not the final accuracy: the full recipe trains ~100x longer.

    python benchmarks/student_ablation.py --teacher runs/default/work/teacher.pt --data data/v1-12
    python benchmarks/student_ablation.py --teacher runs/v8/work/teacher.pt --data data/v3-near \
        --variants float/mean/1,float/mean/2,float/mean/3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from kws.data.speech_commands import SpeechCommands
from kws.distill.data import feature_matrix
from kws.distill.modules import FSMN, clamp_latent_, init_sign_thresholds_
from kws.distill.train import load_checkpoint, net_from_checkpoint
from kws.frontend import FrontendConfig
from kws.fsmn.config import ArchConfig

VARIANTS = "binary/zero/1,binary/mean/1,float/zero/1,float/mean/1"


def parse_variants(text: str) -> list[tuple[str, str, int]]:
    out = []
    for v in text.split(","):
        try:
            mem, init, planes = v.split("/")
            out.append((mem, init, int(planes)))
        except ValueError:
            raise SystemExit(f"error: --variants {v!r}: expected MEMORY/THRESHOLDS/PLANES, e.g. float/mean/2") from None
        if mem not in ("binary", "float") or init not in ("zero", "mean") or planes not in ("1", "2", "3"):
            raise SystemExit(f"error: --variants {v!r}: memory binary|float, thresholds zero|mean, planes 1-3")
    return out


def run_variant(teacher, x, y, xv, yv, memory_input, init, steps, planes=1, unknown=None, batch=48):
    torch.manual_seed(0)
    arch: ArchConfig = dataclasses.replace(teacher.arch, memory_input=memory_input, up_planes=planes)
    op = arch.operating_points[0]
    s = FSMN(arch, binary=True)
    s.init_from_teacher(teacher)
    if init == "mean":
        init_sign_thresholds_(s, x[:480])
    opt = torch.optim.Adam(s.parameters(), 1e-3)
    s.train()
    accs, t0 = [], time.monotonic()
    for k in range(steps):
        i = (k * batch) % (len(x) - batch)
        logits, _ = s(x[i:i + batch], op)
        loss = F.cross_entropy(logits, y[i:i + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        clamp_latent_(s)
        accs.append((logits.argmax(1) == y[i:i + batch]).float().mean().item())
    with torch.no_grad():
        pred = s(xv, op)[0].argmax(1)
    val = (pred == yv).float().mean().item()
    r = {"memory_input": memory_input, "thresholds": init, "up_planes": planes, "steps": steps,
         "train_acc_last50": float(np.mean(accs[-50:])), "val_acc": val, "seconds": time.monotonic() - t0}
    if unknown is not None and (yv == unknown).any():     # _unknown_ clips called anything else
        u = yv == unknown
        r["unknown_as_other"] = (pred[u] != unknown).float().mean().item()
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teacher", required=True, help="teacher checkpoint (kws train's teacher.pt)")
    ap.add_argument("--data", required=True, help="Speech Commands-style folder")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--train-clips", type=int, default=6000)
    ap.add_argument("--val-clips", type=int, default=480)
    ap.add_argument("--variants", default=VARIANTS, help="MEMORY/THRESHOLDS/PLANES,... (module doc)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    variants = parse_variants(a.variants)
    torch.set_num_threads(1)
    teacher, ck = net_from_checkpoint(load_checkpoint(a.teacher), "teacher")
    teacher.eval()
    fe = FrontendConfig.from_dict(ck["frontend"])
    task = ck.get("task", "v1-12")
    tr = SpeechCommands(a.data, "training", task, ck.get("words"))
    va = SpeechCommands(a.data, "validation", task, ck.get("words"))
    rng = np.random.default_rng(1)
    x, y = feature_matrix(tr, fe, rng.permutation(len(tr))[:a.train_clips])
    xv, yv = feature_matrix(va, fe, rng.permutation(len(va))[:a.val_clips])
    x, y, xv, yv = map(torch.from_numpy, (x, y, xv, yv))
    labels = list(ck["labels"])
    unknown = labels.index("_unknown_") if "_unknown_" in labels else None
    rows = []
    for memory_input, init, planes in variants:
        r = run_variant(teacher, x, y, xv, yv, memory_input, init, a.steps, planes, unknown)
        rows.append(r)
        if not a.json:
            extra = f"  unknown called something else {r['unknown_as_other']:.3f}" if "unknown_as_other" in r else ""
            print(f"memory input {memory_input:6s} thresholds {init:4s} planes {planes}: train (last 50 "
                  f"steps) {r['train_acc_last50']:.3f}  val {r['val_acc']:.3f}{extra}  ({r['seconds']:.0f} s)",
                  flush=True)
    if a.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
