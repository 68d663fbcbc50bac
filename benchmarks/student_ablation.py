"""Which binarisation choices the student can afford: a short, same-budget comparison.

Each variant starts the full-width, all-blocks (1x8) binary student from the same trained float
teacher and trains it alone for `--steps` Adam steps (lr 1e-3, batch 48, cross-entropy only) on the
same un-augmented training clips, then reports its accuracy on a slice of the validation split
(training-mode BatchNorm, so no calibration pass is needed). Variants:

    memory input   binary: memconv(sign(h - t), sign(A))     float: memconv(h, sign(A))
    thresholds t   zero: sign at 0 (learnt from 0)            mean: start at each channel's mean

It is a ranking under a small budget, not the final accuracy: the full recipe trains ~100x longer.

    python benchmarks/student_ablation.py --teacher runs/default/work/teacher.pt --data data/v1-12
"""

from __future__ import annotations

import argparse
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

VARIANTS = [("binary", "zero"), ("binary", "mean"), ("float", "zero"), ("float", "mean")]


def run_variant(teacher, x, y, xv, yv, memory_input, init, steps, batch=48):
    torch.manual_seed(0)
    arch = ArchConfig(n_frames=teacher.arch.n_frames, n_features=teacher.arch.n_features,
                      n_classes=teacher.arch.n_classes, memory_input=memory_input)
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
        val = (s(xv, op)[0].argmax(1) == yv).float().mean().item()
    return {"memory_input": memory_input, "thresholds": init, "steps": steps,
            "train_acc_last50": float(np.mean(accs[-50:])), "val_acc": val,
            "seconds": time.monotonic() - t0}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teacher", required=True, help="teacher checkpoint (kws train's teacher.pt)")
    ap.add_argument("--data", required=True, help="Speech Commands-style folder")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--train-clips", type=int, default=6000)
    ap.add_argument("--val-clips", type=int, default=480)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    teacher, ck = net_from_checkpoint(load_checkpoint(a.teacher), "teacher")
    teacher.eval()
    fe = FrontendConfig.from_dict(ck["frontend"])
    task = ck.get("task", "v1-12")
    tr = SpeechCommands(a.data, "training", task)
    va = SpeechCommands(a.data, "validation", task)
    rng = np.random.default_rng(1)
    x, y = feature_matrix(tr, fe, rng.permutation(len(tr))[:a.train_clips])
    xv, yv = feature_matrix(va, fe, rng.permutation(len(va))[:a.val_clips])
    x, y, xv, yv = map(torch.from_numpy, (x, y, xv, yv))
    rows = []
    for memory_input, init in VARIANTS:
        r = run_variant(teacher, x, y, xv, yv, memory_input, init, a.steps)
        rows.append(r)
        if not a.json:
            print(f"memory input {memory_input:6s} thresholds {init:4s}: train (last 50 steps) "
                  f"{r['train_acc_last50']:.3f}  val {r['val_acc']:.3f}  ({r['seconds']:.0f} s)", flush=True)
    if a.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
