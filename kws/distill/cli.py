"""`kws train`, `kws eval`, `kws export`, `kws calibrate`, `kws mine`. Registration is cheap: torch
is imported inside the commands.

    kws train --data DIR --task v1-12 --out model.kws [--epochs 30] [--resume] ...
    torchrun --nproc_per_node 2 -m kws train ...          (same command, 2 processes, DDP/gloo)
    kws export --checkpoint model.work/student.pt --out model.kws
    kws eval --model model.kws --data DIR [--split testing] [--json] [--teacher model.work/teacher.pt]
"""

from __future__ import annotations

import argparse
import json
import sys

from kws.errors import KwsError

MAX_EVENTS_SHOWN = 20      # false alarms listed per stream and point in the text report


def _need_torch(what: str):
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        raise KwsError(f"`kws {what}` needs PyTorch: pip install 'kws[train]'") from None


def register(sub) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter

    # ------------------------------------------------------------------ train
    p = sub.add_parser("train", formatter_class=fmt,
                       help="train a float teacher, then the thinnable binary student; export .kws",
                       description="Train the float D-FSMN teacher (unless --teacher), then the binary "
                       "student with TBA depth and width thinning and HED distillation, and export "
                       "the .kws model. Checkpoints go to --workdir; --resume continues a killed run. "
                       "Runs unchanged under `torchrun --nproc_per_node N -m kws train ...`.")
    p.add_argument("--data", required=True, help="data set folder in the Speech Commands layout")
    p.add_argument("--task", default="v1-12", choices=["v1-12", "v2-12", "v2-35", "custom"])
    p.add_argument("--words", help="keywords of --task custom, comma-separated")
    p.add_argument("--out", required=True, help="the .kws model file to write")
    p.add_argument("--teacher", help="a trained teacher checkpoint (teacher.pt or student.pt of "
                   "an earlier run): skips teacher training")
    p.add_argument("--epochs", type=int, default=30,
                   help="student epochs (0: train the teacher only, into the work folder's teacher.pt; "
                        "--out is then not written)")
    p.add_argument("--teacher-epochs", type=int, help="teacher epochs (default: --epochs)")
    p.add_argument("--batch-size", type=int, default=96, help="global batch (split over processes)")
    p.add_argument("--width-set", default="1,0.5,0.25", help="widths the model supports")
    p.add_argument("--block-sets", default="all,2,4",
                   help="block sets: 'all', N (every N-th block, ending at the last) or explicit "
                        "@i-j-k (e.g. @1-3-5-7), comma-separated")
    p.add_argument("--memory-input", choices=("float", "binary"), default="float",
                   help="what the memory convolution reads: the float residual stream (default; "
                        "its taps stay binary) or its signs (cheaper, less accurate)")
    p.add_argument("--up-planes", type=int, choices=(1, 2, 3), default=1,
                   help="sign planes of the residual stream into each up projection: 1 binary "
                        "(default), 2 three levels, 3 four levels (each plane one more binary GEMM "
                        "of the up projection's size)")
    p.add_argument("--input-norm", choices=("global", "pcen"), default="global",
                   help="the network's first step: 'global' normalises the log-mel features with "
                        "one mean and std per band; 'pcen' applies per-channel energy normalisation "
                        "to each 1 s window first (level-invariant; kws/fsmn/pcen.py)")
    p.add_argument("--pcen-learn", action="store_true",
                   help="with --input-norm pcen: the teacher learns each band's PCEN smoothing and "
                        "delta (alpha 1 and root 0.5 stay fixed); the student takes the teacher's")
    p.add_argument("--resume", action="store_true", help="continue the run in --workdir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", help="checkpoints and history (default: <out stem>.work next to --out)")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam", "bop"],
                   help="student binary weights: latent weights with SGD/Adam, or Bop")
    p.add_argument("--lr", type=float, help="learning rate (default 5e-3 for SGD, 1e-3 for Adam)")
    p.add_argument("--rest-optimizer", default="sgd", choices=["sgd", "adam"],
                   help="with --optimizer bop: optimizer of the non-binary parameters")
    p.add_argument("--bop-gamma", type=float, default=1e-4, help="Bop gradient EMA rate")
    p.add_argument("--bop-tau", type=float, default=1e-8, help="Bop flip threshold")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--hed-weight", type=float, default=0.01, help="HED distillation weight (0: off)")
    p.add_argument("--logit-kd", type=float, default=0.0, help="logit distillation weight (0: off)")
    p.add_argument("--kd-temperature", type=float, default=4.0)
    p.add_argument("--inplace-kd", type=float, default=0.0,
                   help="in-place distillation weight: the widest operating point's logits teach the "
                        "thinner ones in the same batch (slimmable networks; 0: off)")
    p.add_argument("--center-weight", type=float, default=1.0,
                   help="loss weight of the central point with --student-plan center")
    p.add_argument("--spec-masks", type=int, default=0,
                   help="SpecAugment: this many time masks (<= 10%% of the frames) and frequency masks "
                        "(<= 15%% of the features) per training clip (0: off)")
    p.add_argument("--backbone", type=int, default=128, help="backbone (memory) channels")
    p.add_argument("--hidden", type=int, default=256, help="hidden (pointwise) channels")
    p.add_argument("--n-blocks", type=int, default=8, help="FSMN blocks")
    p.add_argument("--features", default="logmel", choices=["logmel", "mfcc"])
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    p.add_argument("--student-lr", type=float,
                   help="learning rate of the student phase (default: --lr)")
    p.add_argument("--student-plan", default="sandwich", choices=["sandwich", "center", "all"],
                   help="operating points trained per batch: sandwich = the largest, the smallest and "
                        "one other at random (default, ~2x cheaper than all); center = the sandwich "
                        "plus the central point (0.5x4 by default) in every batch (~1.2x); all = every "
                        "block set of the widest, narrowest and a random width (slower)")
    p.add_argument("--init-student", help="start the student from this student checkpoint's weights "
                   "(fine-tuning with a new optimizer and schedule) instead of from the teacher; "
                   "needs --teacher or --init-teacher")
    p.add_argument("--init-teacher", help="start the teacher from this checkpoint's teacher (a teacher.pt, "
                   "or the teacher a student.pt was trained with) and train it --teacher-epochs more "
                   "with a new optimizer and schedule, e.g. on data with new words")
    p.add_argument("--noise-prob", type=float,
                   help="share of training clips mixed with a background (default 0.3; 0.8 with "
                        "--acoustics realistic)")
    p.add_argument("--noise-snr", help="LO,HI: mix the noise at an SNR drawn from [LO, HI] dB (e.g. "
                   "0,20 as in the data recipe) instead of at a scale drawn from U(0, 0.3) "
                   "(--acoustics realistic: 0,20 by default)")
    p.add_argument("--acoustics", choices=("basic", "realistic"), default="basic",
                   help="basic: speed, shift, volume, _background_noise_ (as before); realistic: also "
                        "simulated rooms, backgrounds of noise, real ambient sounds, music and babble "
                        "at an SNR, and microphone / channel effects (docs/training.md)")
    p.add_argument("--reverb-prob", type=float,
                   help="--acoustics realistic: share of clips in a simulated room (default 0.5)")
    p.add_argument("--channel-prob", type=float,
                   help="--acoustics realistic: share of clips with microphone / channel effects "
                        "(default 0.5)")
    p.add_argument("--backgrounds",
                   help="--acoustics realistic: background kinds, comma-separated, of noise, ambient, "
                        "music, babble, tones (default noise,ambient,music,babble)")
    p.add_argument("--bank-seconds", type=float,
                   help="--acoustics realistic: seconds of music and of ambient scenes built from the "
                        "samples (default 240)")
    p.add_argument("--music-repitch", type=float,
                   help="--acoustics realistic: in the music and ambient scenes, play each sample up to "
                        "this many semitones higher or lower (and faster or slower), drawn anew every "
                        "time a scene uses it (default 0)")
    p.add_argument("--bn-calibration", type=int, default=40,
                   help="batches per operating point to re-estimate BatchNorm statistics after "
                        "training (0: off)")
    p.add_argument("--unknown-fraction", type=float,
                   help="_unknown_ training clips are this share of each epoch, a fresh seeded subset "
                        "every epoch (default: all of them every epoch, as the reference; TF uses 0.1)")
    p.add_argument("--boost-words", default="",
                   help="comma-separated _unknown_ words (folders) whose training clips are drawn "
                        "--boost-factor times as often: near-words of the keywords (lift, stock; "
                        "`kws eval --json`'s unknown_words lists the ones a model confuses)")
    p.add_argument("--boost-factor", type=int, default=4,
                   help="how many times as often --boost-words are drawn (1-100, default 4)")
    p.add_argument("--exclude-families", default="",
                   help="comma-separated voice families (formant, donor, neural) left out of training "
                        "and validation, by the data set's manifest.csv: leave-one-family-out")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes per process")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads per process (0: OMP_NUM_THREADS or 1; for more cores run more "
                        "processes with torchrun, which measured much faster than threads)")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0,
                   help="also checkpoint inside an epoch every this many minutes")
    p.add_argument("--stop-after", type=int, default=0,
                   help="stop (as if killed) after this many steps, checkpoint written; for tests")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    # ------------------------------------------------------------------ export
    p = sub.add_parser("export", formatter_class=fmt, help="student checkpoint -> .kws model",
                       description="Fold a trained student checkpoint into a .kws model file "
                       "(packed binary weights, per-operating-point thresholds and scales).")
    p.add_argument("--checkpoint", required=True, help="student checkpoint (e.g. model.work/student.pt)")
    p.add_argument("--out", required=True, help="the .kws file to write")
    p.set_defaults(func=_export)

    # ------------------------------------------------------------------ calibrate
    p = sub.add_parser("calibrate", formatter_class=fmt,
                       help="tune per-keyword thresholds for each operating point on validation streams",
                       description="Choose every keyword's firing threshold at each operating point "
                       "on VALIDATION audio (keyword streams quiet and over --background files at "
                       "--snr, plus keyword-free --negative-stream files from `kws data stream "
                       "--split validation`): the thresholds that find the most keywords while the "
                       "false alarms of all keywords on the negative streams stay within "
                       "--fa-per-hour. Writes the model with them "
                       "(point_thresholds: kws.Detector's default) and reports what they give.")
    p.add_argument("--model", default="default", help="a .kws file, or 'default'")
    p.add_argument("--data", required=True, help="data set folder (its validation split is used)")
    p.add_argument("--out", required=True, help="the calibrated .kws file to write")
    p.add_argument("--negative-stream", action="append", default=[],
                   help="keyword-free audio (repeatable), e.g. from `kws data stream --split validation`")
    p.add_argument("--background", action="append", default=[],
                   help="a background for the keyword stream (repeatable), e.g. babble or music")
    p.add_argument("--snr", type=float, default=10.0,
                   help="the backgrounds this many dB under the median keyword clip")
    p.add_argument("--points", default=None,
                   help="comma-separated operating points to calibrate (default: all the model has)")
    p.add_argument("--fa-per-hour", type=float, default=0.5,
                   help="false alarms per hour allowed, all keywords together")
    p.add_argument("--min-threshold", type=float, default=0.4, help="the lowest threshold considered")
    p.add_argument("--max-threshold", type=float, default=0.9999,
                   help="the highest threshold considered: below ~0.99 no keyword is tuned out of "
                        "hearing, even when the --fa-per-hour budget then cannot be met")
    p.add_argument("--max-clips", type=int, default=None,
                   help="use at most this many validation clips per keyword stream")
    p.add_argument("--no-extrapolate", action="store_true",
                   help="count false alarms on the calibration audio as they are, without "
                        "extrapolating the false-alarm rate's tail (docs/training.md)")
    p.add_argument("--pool", type=float, default=None,
                   help="weight (0-1) of all keywords' mean false-alarm count in each keyword's "
                        "(default 0.3): a keyword with few validation false alarms is not taken to "
                        "have none at low thresholds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=_calibrate)

    # ------------------------------------------------------------------ mine
    p = sub.add_parser("mine", formatter_class=fmt,
                       help="hard negatives: write the windows of keyword-free training audio a model "
                            "takes for a keyword to the data set's _mined_/ folder",
                       description="Score every 1 s window (one every --hop-ms) of keyword-free "
                       "TRAINING audio (`kws data stream --split training`) at --points and write the "
                       "ones where a keyword's posterior reaches --threshold to DATA/_mined_/ as "
                       "training clips of `_unknown_` (with mined.csv: where each came from, what the "
                       "model took it for, what was said). Streams of validation or testing voices "
                       "are refused. Train again on DATA to teach the model what it fired on.")
    p.add_argument("--model", default="default", help="a .kws file, or 'default'")
    p.add_argument("--data", required=True, help="the data set folder to add _mined_/ clips to")
    p.add_argument("--stream", action="append", required=True, metavar="AUDIO",
                   help="keyword-free training audio (repeatable)")
    p.add_argument("--points", default=None,
                   help="comma-separated operating points to mine with (default: the widest)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="keep windows whose highest keyword posterior reaches this")
    p.add_argument("--hop-ms", type=float, default=100.0, help="one window every this many ms")
    p.add_argument("--min-gap", type=float, default=1.0,
                   help="seconds between kept windows (the highest-scoring one of a run is kept)")
    p.add_argument("--max-per-stream", type=int, default=None,
                   help="keep at most this many windows of each stream (the highest-scoring; "
                        "with --keep-earlier: add at most this many)")
    p.add_argument("--keep-earlier", action="store_true",
                   help="a further round: keep the stream's clips mined before and add only windows "
                        "more than --min-gap from them (default: replace them)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=_mine)

    # ------------------------------------------------------------------ eval
    p = sub.add_parser("eval", formatter_class=fmt,
                       help="accuracy per (width, blocks), confusion matrix, streaming FRR at N FA/h",
                       description="Evaluate a .kws model on a split of a Speech Commands-layout "
                       "folder with the kernel runtime: accuracy for every operating point, the "
                       "confusion matrix, the teacher's accuracy (--teacher), and the false "
                       "rejection rate at --fa-per-hour false alarms per hour on a stream of the "
                       "split's clips in background noise, run through kws.Detector.")
    p.add_argument("--model", default="default", help="a .kws file, or 'default'")
    p.add_argument("--data", required=True, help="data set folder (Speech Commands layout)")
    p.add_argument("--split", default="testing", choices=["training", "validation", "testing"])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--teacher", help="a training checkpoint whose float teacher to evaluate too "
                   "(clip accuracy, and the streaming FRR of the main stream)")
    p.add_argument("--no-stream", action="store_true", help="skip the streaming metric")
    p.add_argument("--stream-ops", default="main", choices=["main", "all"],
                   help="streaming metric for the widest/deepest point only, or all of them")
    p.add_argument("--fa-per-hour", type=float, default=1.0)
    p.add_argument("--negative-stream", action="append", default=[], metavar="AUDIO",
                   help="an audio file with no keyword in it (speech, music, TV): report the "
                        "Detector's false alarms per hour on it at its default thresholds "
                        "(repeat for several; --stream-ops sets the operating points)")
    p.add_argument("--noise-dbfs", type=float, default=-35.0, help="stream noise level (RMS dBFS)")
    p.add_argument("--stream-noise", metavar="AUDIO",
                   help="the keyword stream's background from this file (e.g. `kws data stream "
                        "--kind music` or `--kind babble`) instead of the data set's noise files")
    p.add_argument("--stream-snr", type=float, metavar="DB",
                   help="set the background this many dB under the median keyword clip's power "
                        "(instead of --noise-dbfs), e.g. 10")
    p.add_argument("--stream-clips", type=int, help="use at most this many clips in the stream")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--snr", type=float,
                   help="robustness: add background noise to every clip at this SNR in dB (e.g. 10, 0)")
    p.add_argument("--resample", type=int,
                   help="robustness: pass every clip through this sample rate (e.g. 8000: telephone band)")
    p.add_argument("--gain", type=float, metavar="DB",
                   help="robustness: scale every clip (after --snr's noise) by this many dB, then clip "
                        "to [-1, 1]: the recording level, e.g. -30 (quiet) or +12 (hot)")
    p.add_argument("--plot", help="write a PNG of accuracy vs cost (MACs) per operating point")
    p.set_defaults(func=_eval)


def _train(args) -> int:
    _need_torch("train")
    from kws.distill.train import Stopped, TrainOptions, run
    if args.task == "custom" and not args.words:
        raise KwsError("--task custom needs --words, e.g. --words 'hey kiwi,lights on'")
    opts = TrainOptions(
        data=args.data, task=args.task, words=args.words, out=args.out, teacher=args.teacher,
        epochs=args.epochs, teacher_epochs=args.teacher_epochs, batch_size=args.batch_size,
        widths=args.width_set, block_sets=args.block_sets, memory_input=args.memory_input,
        up_planes=args.up_planes, input_norm=args.input_norm,
        pcen_learn=args.pcen_learn, resume=args.resume, seed=args.seed,
        workdir=args.workdir, optimizer=args.optimizer, lr=args.lr,
        rest_optimizer=args.rest_optimizer, bop_gamma=args.bop_gamma, bop_tau=args.bop_tau,
        weight_decay=args.weight_decay, hed_weight=args.hed_weight, logit_kd=args.logit_kd,
        kd_temperature=args.kd_temperature, inplace_kd=args.inplace_kd,
        center_weight=args.center_weight, spec_masks=args.spec_masks, backbone=args.backbone, hidden=args.hidden,
        n_blocks=args.n_blocks, features=args.features, augment=not args.no_augment,
        noise_prob=args.noise_prob, noise_snr=_snr_range(args.noise_snr), init_student=args.init_student,
        init_teacher=args.init_teacher,
        acoustics=args.acoustics, reverb_prob=args.reverb_prob, channel_prob=args.channel_prob,
        backgrounds=args.backgrounds, bank_seconds=args.bank_seconds, music_repitch=args.music_repitch,
        unknown_fraction=args.unknown_fraction,
        boost_words=tuple(w.strip() for w in args.boost_words.split(",") if w.strip()),
        boost_factor=args.boost_factor,
        exclude_families=tuple(f.strip() for f in args.exclude_families.split(",") if f.strip()),
        student_lr=args.student_lr, student_plan=args.student_plan, bn_calibration=args.bn_calibration,
        workers=args.workers, threads=args.threads, checkpoint_minutes=args.checkpoint_minutes,
        stop_after=args.stop_after, progress=not args.no_progress)
    try:
        summary = run(opts)
    except Stopped as e:
        print(f"kws train: {e}", file=sys.stderr)
        return 3
    import os
    if os.environ.get("RANK", "0") == "0":
        print(_summary_text(summary))
    return 0


def _snr_range(spec):
    if spec is None:
        return None
    try:
        lo, hi = (float(v) for v in spec.split(","))
    except ValueError:
        raise KwsError(f"--noise-snr must be LO,HI in dB, e.g. 0,20; got {spec!r}") from None
    if not lo <= hi:
        raise KwsError(f"--noise-snr: LO must not exceed HI, got {spec!r}")
    return (lo, hi)


def _summary_text(summary: dict) -> str:
    lines = [f"model: {summary['out']}" if summary["out"] else f"teacher: {summary['teacher']}"]
    t = summary.get("teacher_val")
    if t:
        lines.append("teacher validation accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in t.items()))
    s = summary.get("student_val") or {}
    for k, v in s.items():
        lines.append(f"  {k:>8}  {v:.4f}")
    return "\n".join(lines)


def _export(args) -> int:
    _need_torch("export")
    from kws.distill.export import export_model
    from kws.distill.train import load_checkpoint, net_from_checkpoint
    from kws.frontend import FrontendConfig
    ck = load_checkpoint(args.checkpoint)
    if ck["phase"] != "student":
        raise KwsError(f"{args.checkpoint} is a {ck['phase']} checkpoint; export needs the student's "
                       f"(student.pt)")
    net, ck = net_from_checkpoint(ck)
    hist = ck.get("history") or []
    prov = {"trainer": "kws.distill", "checkpoint": str(args.checkpoint), "epochs_done": ck["epoch"],
            "options": ck.get("options"),
            "val_accuracy": hist[-1]["val_acc"] if hist else None}
    model = export_model(net, FrontendConfig.from_dict(ck["frontend"]), ck["labels"], prov)
    model.save(args.out)
    print(f"wrote {args.out} ({len(model.arch.operating_points)} operating points: "
          f"{', '.join(op.name for op in model.arch.operating_points)})")
    return 0


def _point_names(spec: str | None) -> list[str] | None:
    """--points "1x8, 0.5x4" -> ["1x8", "0.5x4"]; None or empty -> None (the command's default)."""
    names = [p.strip() for p in (spec or "").split(",") if p.strip()]
    return names or None


def _calibrate(args) -> int:
    from kws.detector import resolve_model
    from kws.distill.calibrate import POOL, calibrate
    model = resolve_model(args.model)
    points = _point_names(args.points) or [op.name for op in model.arch.operating_points]
    progress = None if args.json else (lambda m: print(m, file=sys.stderr))
    r = calibrate(model, args.data, args.negative_stream, args.background, args.snr, points,
                  args.fa_per_hour, args.min_threshold, seed=args.seed, max_clips=args.max_clips,
                  progress=progress, extrapolate=not args.no_extrapolate, max_threshold=args.max_threshold,
                  pool=POOL if args.pool is None else args.pool)
    pt = r["point_thresholds"]
    # model-wide fallback for points left out: the strictest calibrated value of each keyword
    model.thresholds = {k: max(t[k] for t in pt.values()) for k in next(iter(pt.values()))}
    model.point_thresholds = pt
    model.provenance = {**model.provenance, "calibration": {
        k: r[k] for k in ("split", "fa_per_hour_target", "min_threshold", "max_threshold", "extrapolate",
                          "pool", "snr_db", "streams", "fa_streams", "detector")}}
    model.save(args.out)
    if args.json:
        print(json.dumps(r))
        return 0
    for name, p in r["points"].items():
        print(f"{name}: threshold / validation false alarms / FRR per keyword")
        for k, v in p["keywords"].items():
            print(f"  {k:>10}  {v['threshold']:.4f}  {v['false_alarms']:>3} FA, expected "
                  f"{v['fitted_fa_per_hour']:.2f}/h  FRR {v['frr']:.3f}"
                  + ("" if v["within_budget"] else "  (over the budget even at the top)"))
        for s, v in p["streams"].items():
            frr = "" if v["frr"] is None else f", FRR {v['frr']:.3f}"
            print(f"  {s}: {v['false_alarms']} FA ({v['fa_per_hour']:.2f}/h){frr}")
        print("  trade-off, budget FA/h -> keyword-stream FRR: " + ", ".join(
            f"{t['fa_per_hour_budget']:g} -> {t['frr']:.3f}" for t in p["tradeoff"]))
    print(f"wrote {args.out}")
    return 0


def _mine(args) -> int:
    from kws.detector import resolve_model
    from kws.distill.mine import mine
    model = resolve_model(args.model)
    points = _point_names(args.points)
    progress = None if args.json else (lambda m: print(m, file=sys.stderr))
    r = mine(model, args.stream, args.data, points, args.threshold, args.hop_ms, args.min_gap,
             args.max_per_stream, args.keep_earlier, progress=progress)
    if args.json:
        print(json.dumps(r))
        return 0
    for path, m in r["streams"].items():
        labels = ", ".join(f"{k} {v}" for k, v in m["by_label"].items()) or "none"
        print(f"{path} ({m['hours'] * 60:.1f} min): {m['clips']} clips ({labels})")
    print(f"kws mine: {r['clips']} clip(s) in {args.data}/_mined_ at {', '.join(r['points'])}, "
          f"threshold {r['threshold']:g}")
    return 0


def _eval(args) -> int:
    from kws.distill.evaluate import evaluate
    progress = None if args.json else (lambda m: print(m, file=sys.stderr))
    r = evaluate(args.model, args.data, args.split, teacher=args.teacher, stream=not args.no_stream,
                 stream_ops=args.stream_ops, fa_per_hour=args.fa_per_hour, noise_dbfs=args.noise_dbfs,
                 stream_clips=args.stream_clips, seed=args.seed, progress=progress,
                 snr=args.snr, resample=args.resample, gain=args.gain, negative_streams=args.negative_stream,
                 stream_noise=args.stream_noise, stream_snr=args.stream_snr)
    if args.plot:
        from kws.distill.plots import accuracy_vs_cost
        accuracy_vs_cost([r], args.plot, args.model)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"{r['model']} on {r['data']} ({r['split']}, {r['n']} clips, task {r['task']})")
    pct = lambda v: "   -  " if v is None else f"{v:.4f}"      # noqa: E731
    share = next(iter(r.get("classes", {}).values()), {}).get("unknown_share")
    print("accuracy per operating point (width x blocks); keyword clips given their keyword; "
          f"_unknown_ clips ({pct(share)} of all) given a keyword:")
    for k, v in r["accuracy"].items():
        c = r.get("classes", {}).get(k, {})
        print(f"  {k:>8}  {v:.4f}  keywords {pct(c.get('keyword_recall'))}  "
              f"unknown -> keyword {pct(c.get('unknown_called_keyword'))}")
    if "teacher_accuracy" in r:
        print(f"  teacher   {r['teacher_accuracy']:.4f}")
    main = next(iter(r["accuracy"]))
    for kind, groups in r.get("accuracy_by_source", {}).items():
        print(f"accuracy by voice {kind} (from manifest.csv):")
        for name, g in groups.items():
            print(f"  {name:>12} ({g['n']:>5} clips)  " +
                  "  ".join(f"{op} {a:.4f}" for op, a in g["accuracy"].items()))
    near = sorted(((g["called_keyword"][main], w, g["most_called"][main])
                   for w, g in r.get("unknown_words", {}).items()), reverse=True)
    if near:
        print(f"non-keywords most often taken for a keyword at {main}: " +
              ", ".join(f"{w} {share:.0%} ({k})" for share, w, k in near[:12] if share > 0))
    print(f"confusion matrix of {main} (rows: true, columns: predicted):")
    labels = r["labels"]
    w = max(6, max(len(s) for s in labels))
    print(" " * (w + 1) + " ".join(f"{i:>5}" for i in range(len(labels))))
    for i, (lab, row) in enumerate(zip(labels, r["confusion"][main])):
        print(f"{lab:>{w}} " + " ".join(f"{c:>5}" for c in row) + f"   ({i})")
    if "stream_background" in r:
        b = r["stream_background"]
        print(f"stream background: {b['source']} at {b['noise_dbfs']:.1f} dBFS"
              + (f" ({b['snr_db']:g} dB under the median keyword clip)" if b["snr_db"] is not None else ""))
    for k, s in r.get("streaming", {}).items():
        print(f"streaming {k}: FRR {s['frr']:.4f} at {s['fa_per_hour']:.2f} FA/h (target "
              f"{s['fa_per_hour_target']:g}, threshold {s['threshold']:.3f}; Detector check: FRR "
              f"{s['detector_check']['frr']:.4f}, {s['detector_check']['fa_per_hour']:.2f} FA/h; "
              f"{s['keyword_clips']} keyword clips in {s['stream_hours'] * 60:.1f} min)")
        d = s["default_thresholds"]
        print(f"  at the model's default thresholds: FRR {d['frr']:.4f}, {d['fa_per_hour']:.2f} FA/h")
    if "teacher_streaming" in r:
        s = r["teacher_streaming"]
        print(f"streaming, float teacher: FRR {s['frr']:.4f} at {s['fa_per_hour']:.2f} FA/h "
              f"(threshold {s['threshold']:.3f})")
    print_negative_streams(r.get("negative_streams", {}))
    return 0


def print_negative_streams(streams: dict) -> None:
    """kws eval's text report of the negative streams: false alarms per point, then each one (at
    most MAX_EVENTS_SHOWN) with what the stream's CSV says was heard."""
    for f, per_op in streams.items():
        for op, m in per_op.items():
            print(f"negative stream {f} ({m['hours'] * 60:.1f} min), {op}: {m['false_alarms']} false "
                  f"alarms = {m['fa_per_hour']:.2f} per hour ({', '.join(f'{k} {v}' for k, v in m['by_label'].items()) or 'none'})")
            events = m.get("events", [])
            for e in events[:MAX_EVENTS_SHOWN]:
                heard = f"  heard: {e['heard'][:120]}" if e["heard"] else ""
                print(f"  {e['time_s']:9.1f} s  {e['label']} {e['score']:.2f}{heard}")
            if len(events) > MAX_EVENTS_SHOWN:
                print(f"  ... {len(events) - MAX_EVENTS_SHOWN} more in --json")
