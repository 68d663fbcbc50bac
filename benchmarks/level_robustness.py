"""Accuracy against the recording level: the same clips played quieter or louder.

    python benchmarks/level_robustness.py --data data/v3 --split validation \\
        [--model default] [--model other.kws] [--teacher run.work/teacher.pt ...] \\
        [--gains 0,-10,-20,-30,10] [--snr 10] [--points 1x8,0.5x4] [--json]

Every clip of the split (the clip and its own noise floor) is scaled by each gain in dB, then
clipped to [-1, 1] (kws eval --gain, kws.distill.evaluate.Perturbation), and each network's
argmax is scored: 12-class accuracy, keyword recall, and the share of `_unknown_` clips called a
keyword. `--snr`: the data set's background noise mixed in at that SNR first (kws eval --snr),
so the level moves the noise with the speech. The synthetic clips' speech is at -35 to -15 dBFS, and training varies it by about +-8 dB
more, so -20 dB puts it where a talker a few metres from a microphone at a low gain is. Networks:
.kws models (binary runtime, at --points) and float teachers of training checkpoints (torch; PCEN
teachers and global-normalisation ones side by side).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import float_list  # noqa: E402


def _teacher_logits(net, x: np.ndarray) -> np.ndarray:
    import torch
    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(x[i:i + 256]))[0].numpy() for i in range(0, len(x), 256)])


def main(argv=None) -> None:
    from kws.data.speech_commands import SpeechCommands
    from kws.detector import resolve_model, resolve_operating_point
    from kws.distill.evaluate import Perturbation, _features, class_summary, task_for_labels
    from kws.fsmn.runtime import BinaryFSMN

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="validation", choices=["training", "validation", "testing"])
    ap.add_argument("--model", action="append", default=[], help=".kws file or 'default' (repeatable)")
    ap.add_argument("--teacher", action="append", default=[], help="a training checkpoint's float teacher (repeatable)")
    ap.add_argument("--gains", default="0,-10,-20,-30,10")
    ap.add_argument("--snr", type=float, help="background noise at this SNR in dB before the gain")
    ap.add_argument("--points", default="1x8,0.5x4")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    gains = float_list(a.gains, "level_robustness.py: --gains")
    if not a.model and not a.teacher:
        a.model = ["default"]
    models = [(m, resolve_model(m)) for m in a.model]
    teachers = []
    if a.teacher:
        from kws.distill.train import load_checkpoint, net_from_checkpoint
        for path in a.teacher:
            net, ck = net_from_checkpoint(load_checkpoint(path), "teacher")
            teachers.append((path, net.eval(), list(ck["labels"])))
    labels = list(models[0][1].labels) if models else teachers[0][2]
    frontend = models[0][1].frontend if models else None
    if frontend is None:
        from kws.frontend import FrontendConfig
        frontend = FrontendConfig()
    for name, m in models:
        if list(m.labels) != labels or m.frontend != frontend:
            raise SystemExit(f"level_robustness.py: {name} has other labels or another frontend")
    for name, _, lab in teachers:
        if lab != labels:
            raise SystemExit(f"level_robustness.py: {name} has other labels")
    n_frames = models[0][1].arch.n_frames if models else teachers[0][1].arch.n_frames
    task, words = task_for_labels(labels)
    clips = SpeechCommands(Path(a.data), a.split, task, words, seed=0)
    rows = []
    for g in gains:
        perturb = Perturbation(snr=a.snr, noise=clips.noise if a.snr is not None else None,
                               gain=g if g else None)
        x, y = _features(clips, frontend, n_frames, perturb or None)
        preds = {}
        for name, m in models:
            net = BinaryFSMN(m)
            for p in a.points.split(","):
                op = resolve_operating_point(m.arch, p.strip())
                preds[f"{name} {op.name}"] = np.array([int(np.argmax(net.logits(f, op))) for f in x])
        for name, net, _ in teachers:
            preds[f"{name} (teacher)"] = _teacher_logits(net, x).argmax(axis=1)
        for net_name, pred in preds.items():
            rows.append({"network": net_name, "gain_db": g, "snr_db": a.snr, "accuracy": float((pred == y).mean()),
                         **class_summary(y, pred, labels)})
        if not a.json:
            print(f"gain {g:+g} dB done", file=sys.stderr)
    if a.json:
        print(json.dumps(rows))
        return
    print(f"# {a.data} ({a.split}, {len(y)} clips{'' if a.snr is None else f', noise at {a.snr:g} dB SNR'})")
    print(f"{'network':<48} {'gain':>6}  accuracy  keyword recall  unknown->keyword")
    for r in sorted(rows, key=lambda r: (r["network"], -r["gain_db"])):
        print(f"{r['network'][-48:]:<48} {r['gain_db']:+6g}  {r['accuracy']:.4f}    {r['keyword_recall']:.4f}"
              f"          {r['unknown_called_keyword']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
