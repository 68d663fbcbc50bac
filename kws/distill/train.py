"""`kws train`: float teacher first, then the thinnable binary student with HED, then export to .kws.

    from kws.distill.train import TrainOptions, run
    run(TrainOptions(data="/data/sc-v1", task="v1-12", out="model.kws", epochs=30))

Phases (each resumable on its own; files in the work folder, default `<out stem>.work/`):
    teacher.pt   the float teacher's checkpoint (skipped when --teacher gives one)
    student.pt   the binary student's checkpoint (holds a copy of the teacher: self-contained)
    history.json per-epoch loss / accuracy / timing of both phases
and finally the model file `--out` (kws.distill.export).

Thinnable training, per batch (one forward/backward over all of it), `student_plan`:
    sandwich (default): three (width, block set) operating points -- the largest (widest, every
            block), one of the others drawn at random and the smallest (narrowest, fewest blocks)
            (seeded by (seed, epoch, step), the same on every process), each with loss weight 1;
    center: the sandwich plus, in every batch, the central point (median width x median block
            set: 0.5 x 4 blocks by default), which the sandwich trains in only 1 of 7 batches;
            4 forwards per batch (~1.2x the time: 431 vs 359 s median per epoch, measured);
    all:    widths by the sandwich rule (widest, narrowest, one other at random) x every block
            set (TBA) with loss weights 1, 0.5, 0.25 by decreasing depth: 9 forwards per batch with
            the default architecture, ~2x the time of the sandwich plan for no measured gain on our
            budget;
    every chosen operating point contributes weight * (CE + 0.01 * HED [+ logit KD]).
After training, every operating point's BatchNorm statistics are re-estimated on training batches
drawn through the run's augmentation (`bn_calibration`): with the sandwich plan an operating point
sees only some batches, and the noisy share of the data must be in the statistics. The
student's per-epoch validation runs on a copy calibrated the same way on fewer batches
(`PROBE_BATCHES`), so the log shows what an export at that epoch would score.

Checkpoints are written atomically by rank 0 at the end of every epoch, every
`checkpoint_minutes` and when stopping; `resume=True` restores model, optimizer, scheduler, epoch,
position inside the epoch and RNG states. Data order (DistributedSampler seeded by seed/epoch),
augmentation draws (seeded by seed/epoch/index) and width draws are functions of the position, so
a resumed run computes the same steps as an uninterrupted one.

Distributed: under `torchrun --nproc_per_node N -m kws train ...` each process takes 1/N of every
batch (DistributedSampler), gradients are averaged by DDP (gloo on CPU), validation is sharded and
summed; only rank 0 prints and writes files.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from kws.distill.bop import Bop
from kws.distill.hed import HED_WEIGHT, hed_loss, hed_target, logit_kd
from kws.distill.specaug import Masked, spec_keep, spec_masks
from kws.distill.modules import FSMN, clamp_latent_, init_sign_thresholds_, op_key, teacher_arch
from kws.errors import KwsError
from kws.fileio import atomic_path, write_text_atomic
from kws.frontend import FrontendConfig
from kws.fsmn.config import ArchConfig, OperatingPoint

CKPT_FORMAT = "kws-train-checkpoint"
CKPT_VERSION = 1
DEFAULT_LR = {"sgd": 5e-3, "adam": 1e-3}
# BN calibration data; a checkpoint calibrated otherwise (clean clips, before 2026-11-23) is redone
CALIBRATION = "augmented training clips"
PROBE_BATCHES = 10                  # calibration batches per operating point, per-epoch validation


class Stopped(Exception):
    """Raised (and caught by run) when --stop-after steps were done: a checkpoint was written."""


# ---------------------------------------------------------------------------- options
@dataclass
class TrainOptions:
    data: str
    task: str = "v1-12"
    words: list | None = None
    out: str = "model.kws"
    teacher: str | None = None            # a teacher checkpoint (teacher.pt or student.pt)
    epochs: int = 30
    teacher_epochs: int | None = None     # None: same as epochs
    batch_size: int = 96                  # global batch (split across processes)
    widths: tuple = (1.0, 0.5, 0.25)
    block_sets: str = "all,2,4"
    memory_input: str = "float"           # float | binary (what the memory conv reads)
    up_planes: int = 1                    # sign planes of h into the up projection (ArchConfig)
    input_norm: str = "global"            # global | pcen (PCEN of each window first: ArchConfig)
    pcen_learn: bool = False              # the teacher learns PCEN's per-band smoothing and delta
    resume: bool = False
    seed: int = 0
    workdir: str | None = None
    optimizer: str = "sgd"                # sgd | adam | bop
    lr: float | None = None               # None: 5e-3 for SGD, 1e-3 for Adam
    student_lr: float | None = None       # None: same as lr
    student_plan: str = "sandwich"        # sandwich | center | all (module doc)
    init_student: str | None = None       # start the student from this student checkpoint's weights
    init_teacher: str | None = None       # start the teacher from this checkpoint's teacher weights
    bn_calibration: int = 40              # batches per operating point to re-estimate BN stats, 0: off
    rest_optimizer: str = "sgd"           # with --optimizer bop: optimizer for non-binary params
    weight_decay: float = 1e-4
    momentum: float = 0.9
    bop_gamma: float = 1e-4
    bop_tau: float = 1e-8
    hed_weight: float = HED_WEIGHT
    logit_kd: float = 0.0                 # weight of logit distillation (0: off)
    inplace_kd: float = 0.0               # weight of in-place distillation: the widest point's
                                          # logits teach the others in the same batch (0: off)
    center_weight: float = 1.0            # loss weight of the central point (student_plan center)
    spec_masks: int = 0                   # SpecAugment time and frequency masks per clip (0: off)
    kd_temperature: float = 4.0
    backbone: int = 128
    hidden: int = 256
    n_blocks: int = 8
    features: str = "logmel"              # logmel | mfcc
    augment: bool = True
    noise_prob: float | None = None       # share of training clips with background; None: 0.3 (0.8 realistic)
    noise_snr: tuple | None = None        # (lo, hi) dB: noise at a drawn SNR; None: scale U(0, 0.3) (realistic: 0-20 dB)
    acoustics: str = "basic"              # basic | realistic (rooms, real backgrounds, channel: kws.data.acoustics)
    reverb_prob: float | None = None      # realistic: share of clips in a simulated room (None: 0.5)
    channel_prob: float | None = None     # realistic: share with microphone / channel effects (None: 0.5)
    backgrounds: str | None = None        # realistic: comma-separated kinds (None: noise,ambient,music,babble)
    bank_seconds: float | None = None     # realistic: seconds of music / ambient scenes built (None: 240)
    music_repitch: float | None = None    # realistic: their samples played up to this many semitones off (None: 0)
    unknown_fraction: float | None = None  # None: every _unknown_ clip (reference); else its share
    boost_words: tuple = ()               # _unknown_ words drawn boost_factor times as often (training)
    boost_factor: int = 4
    exclude_families: tuple = ()          # voice families left out of training and validation
    workers: int = 0
    threads: int = 0                      # torch threads per process, 0: OMP_NUM_THREADS or 1
    checkpoint_minutes: float = 10.0
    stop_after: int = 0                   # testing: stop (as if killed) after N steps, 0 = never
    progress: bool = True


def parse_widths(spec) -> tuple:
    if isinstance(spec, str):
        try:
            ws = [float(s) for s in spec.split(",") if s.strip()]
        except ValueError:
            raise KwsError(f"--width-set must be comma-separated numbers, e.g. 1,0.5,0.25; got {spec!r}") from None
    else:
        ws = [float(w) for w in spec]
    if not ws or any(not 0 < w <= 1 for w in ws) or len(set(ws)) != len(ws):
        raise KwsError(f"--width-set needs distinct widths in (0, 1], got {spec!r}")
    return tuple(sorted(ws, reverse=True))


def parse_block_sets(spec: str, n_blocks: int) -> tuple:
    """'all,2,4' -> all blocks, every 2nd, every 4th (ending at the last block); explicit sets as
    '@1-3-5-7' (dash-joined block indices, as in the model file's operating point names)."""
    sets = []
    for tok in str(spec).split(","):
        tok = tok.strip()
        if not tok:
            continue
        if tok == "all":
            s = tuple(range(n_blocks))
        elif tok.startswith("@"):
            try:
                s = tuple(sorted({int(v) for v in tok[1:].split("-")}))
            except ValueError:
                raise KwsError(f"--block-sets: bad explicit set {tok!r} (write e.g. @1-3-5-7)") from None
            if not s or s[0] < 0 or s[-1] >= n_blocks:
                raise KwsError(f"--block-sets: {tok!r} needs block indices in 0..{n_blocks - 1}")
        else:
            try:
                step = int(tok)
            except ValueError:
                raise KwsError(f"--block-sets: {tok!r} is not 'all', a step (2, 4) or @i-j-k") from None
            if step < 1 or step > n_blocks:
                raise KwsError(f"--block-sets: step {step} must be in 1..{n_blocks}")
            s = tuple(range(step - 1, n_blocks, step))
        if s not in sets:
            sets.append(s)
    if not sets:
        raise KwsError("--block-sets is empty")
    return tuple(sets)


# ---------------------------------------------------------------------------- distributed
class _Dist:
    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.owned = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("gloo")
            self.owned = True
        self.main = self.rank == 0

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    def sum(self, values: list) -> list:
        if self.world == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def close(self):
        if self.owned and dist.is_initialized():
            dist.destroy_process_group()


def _threads(world: int, threads: int = 0) -> None:
    """torch threads per process: `threads`, else OMP_NUM_THREADS, else 1.

    One thread per process is the default because it measured fastest: one student epoch of the
    default architecture on 2 cores took 160 s with 1 process x 1 thread, 489 s with 1 process x
    2 threads (OpenMP workers spin-waiting on the many small BatchNorm / elementwise ops) and 67 s
    with 2 processes x 1 thread (torchrun). Use processes, not threads, for more cores.
    """
    if threads > 0:
        torch.set_num_threads(threads)
    elif "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


# ---------------------------------------------------------------------------- checkpoints
def _rng_state() -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos,
                                                      has_gauss, cached],
            "python": random.getstate()}


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    name, keys, pos, has_gauss, cached = s["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(s["python"])


def load_checkpoint(path) -> dict:
    """Read a training checkpoint (torch weights-only unpickler: plain data and tensors only)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:            # noqa: BLE001 - corrupt or foreign file
        raise KwsError(f"{path}: not a readable kws training checkpoint ({type(e).__name__}: "
                       f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
    if not isinstance(ck, dict) or ck.get("format") != CKPT_FORMAT:
        raise KwsError(f"{path}: not a kws training checkpoint")
    if ck.get("version") != CKPT_VERSION:
        raise KwsError(f"{path}: checkpoint version {ck.get('version')} is not supported")
    return ck


def save_checkpoint(path, ck: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(ck, tmp)


def learnt_pcen(state: dict) -> bool:
    """Whether a network's state dict is of one that learns PCEN (FSMN's `pcen_offset`)."""
    return "pcen_offset" in state


def net_from_checkpoint(ck: dict, which: str = "model") -> tuple[FSMN, dict]:
    """(network, checkpoint) for ck["model"] (its phase's net) or which="teacher" (a student
    checkpoint's embedded teacher, or a teacher checkpoint's own net)."""
    if which == "teacher" and ck["phase"] == "student":
        arch = ArchConfig.from_dict(ck["teacher_arch"])
        net = FSMN(arch, binary=False, learn_pcen=learnt_pcen(ck["teacher_model"]))
        net.load_state_dict(ck["teacher_model"])
        return net, ck
    if which == "teacher" and ck["phase"] != "teacher":
        raise KwsError("not a teacher checkpoint")
    arch = ArchConfig.from_dict(ck["arch"])
    net = FSMN(arch, binary=ck["phase"] == "student", learn_pcen=learnt_pcen(ck["model"]))
    net.load_state_dict(ck["model"])
    return net, ck


def _tensors_to_py(d):
    return json.loads(json.dumps(d, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


# ---------------------------------------------------------------------------- the run
class Trainer:
    def __init__(self, opts: TrainOptions, env: _Dist):
        from kws.data.augment import Augment
        from kws.data.speech_commands import MAX_UNKNOWN_BOOST, SpeechCommands
        from kws.data.tasks import task_labels

        self.o, self.env = opts, env
        o = opts
        if o.epochs < 0:
            raise KwsError("--epochs must be at least 0 (0: the teacher only)")
        if o.epochs == 0 and (o.teacher or o.init_student):
            raise KwsError("--epochs 0 trains the teacher only: --teacher and --init-student are for a student")
        if o.student_plan not in ("sandwich", "center", "all"):
            raise KwsError(f"--student-plan must be sandwich, center or all, got {o.student_plan!r}")
        if o.inplace_kd < 0 or o.spec_masks < 0 or not o.center_weight > 0:
            raise KwsError("--inplace-kd and --spec-masks must be >= 0, --center-weight > 0")
        if o.center_weight != 1.0 and o.student_plan != "center":
            raise KwsError("--center-weight needs --student-plan center")
        if o.init_teacher and o.teacher:
            raise KwsError("--init-teacher trains a teacher further; --teacher uses one as it is: "
                           "give one of them")
        if o.init_student and not (o.teacher or o.init_teacher):
            raise KwsError("--init-student needs --teacher or --init-teacher (the teacher to distil "
                           "from; the same student.pt gives the teacher it was trained with)")
        if o.boost_words and (isinstance(o.boost_factor, bool) or not isinstance(o.boost_factor, int)
                              or not 1 <= o.boost_factor <= MAX_UNKNOWN_BOOST):
            # SpeechCommands checks it too; here the message names the flag
            raise KwsError(f"--boost-factor must be a whole number in [1, {MAX_UNKNOWN_BOOST}], "
                           f"got {o.boost_factor!r}")
        if o.acoustics not in ("basic", "realistic"):
            raise KwsError(f"--acoustics must be basic or realistic, got {o.acoustics!r}")
        realistic = o.acoustics == "realistic"
        only_realistic = [f for f, v in (("--reverb-prob", o.reverb_prob), ("--channel-prob", o.channel_prob),
                                         ("--backgrounds", o.backgrounds), ("--bank-seconds", o.bank_seconds),
                                         ("--music-repitch", o.music_repitch)) if v is not None]
        if only_realistic and not realistic:
            raise KwsError(f"{', '.join(only_realistic)}: only with --acoustics realistic")
        if realistic and not o.augment:
            raise KwsError("--acoustics realistic is an augmentation: drop --no-augment")
        self.noise_prob = (0.8 if realistic else 0.3) if o.noise_prob is None else o.noise_prob
        for flag, v in (("--noise-prob", self.noise_prob), ("--reverb-prob", o.reverb_prob),
                        ("--channel-prob", o.channel_prob)):
            if v is not None and not 0.0 <= v <= 1.0:
                raise KwsError(f"{flag} must be in [0, 1], got {v}")
        self.teacher_epochs = o.epochs if o.teacher_epochs is None else o.teacher_epochs
        if self.teacher_epochs < 1 and not o.teacher:
            raise KwsError("--teacher-epochs must be at least 1 (or give --teacher)")
        if o.optimizer not in ("sgd", "adam", "bop"):
            raise KwsError(f"--optimizer must be sgd, adam or bop, got {o.optimizer!r}")
        if o.rest_optimizer not in ("sgd", "adam"):
            raise KwsError(f"--rest-optimizer must be sgd or adam, got {o.rest_optimizer!r}")
        if o.batch_size < 2 or o.batch_size % env.world:
            raise KwsError(f"--batch-size {o.batch_size} must be >= 2 and divisible by the number of "
                           f"processes ({env.world})")
        self.local_batch = o.batch_size // env.world
        self.labels = task_labels(o.task, o.words)
        self.frontend = FrontendConfig(kind=o.features)
        self.arch = ArchConfig(n_frames=self.frontend.frames(16000), n_features=self.frontend.n_features,
                               backbone=o.backbone, hidden=o.hidden, n_blocks=o.n_blocks,
                               n_classes=len(self.labels), widths=parse_widths(o.widths),
                               block_sets=parse_block_sets(o.block_sets, o.n_blocks),
                               memory_input=o.memory_input, up_planes=o.up_planes,
                               input_norm=o.input_norm)
        if o.input_norm == "pcen" and self.frontend.kind != "logmel":
            raise KwsError("--input-norm pcen needs log-mel features (--features logmel): PCEN "
                           "works on the mel power")
        if o.pcen_learn and o.input_norm != "pcen":
            raise KwsError("--pcen-learn needs --input-norm pcen")
        out = Path(o.out)
        self.out = out
        self.workdir = Path(o.workdir) if o.workdir else out.with_name(out.stem + ".work")
        self.teacher_ckpt = self.workdir / "teacher.pt"
        self.student_ckpt = self.workdir / "student.pt"
        if not o.resume:
            for p in ((self.student_ckpt,) if o.teacher else (self.teacher_ckpt, self.student_ckpt)):
                if p.exists():
                    raise KwsError(f"{p} exists from an earlier run: pass --resume to continue it, "
                                   f"or use another --workdir")
        data = Path(o.data)
        noise = data / "_background_noise_"
        self.acoustics = None
        if realistic:
            from kws.data.acoustics import BANK_SECONDS, DEFAULT_KINDS, Acoustics
            self.acoustics = Acoustics.for_data(
                data, seed=o.seed, kinds=DEFAULT_KINDS if o.backgrounds is None else
                [k.strip() for k in o.backgrounds.split(",") if k.strip()],
                p_reverb=0.5 if o.reverb_prob is None else o.reverb_prob, p_background=self.noise_prob,
                snr_db=o.noise_snr or (0.0, 20.0), p_channel=0.5 if o.channel_prob is None else o.channel_prob,
                log=self.log, exclude_families=o.exclude_families,
                bank_seconds=BANK_SECONDS if o.bank_seconds is None else o.bank_seconds,
                repitch=o.music_repitch or 0.0)
            aug = Augment(None, seed=o.seed, acoustics=self.acoustics)
        else:
            aug = Augment(noise if noise.is_dir() else None, p_noise=self.noise_prob, snr_db=o.noise_snr,
                          seed=o.seed) if o.augment else None
        sc = dict(task=o.task, words=o.words, seed=o.seed, exclude_families=o.exclude_families)
        uf = dict(unknown_fraction=o.unknown_fraction) if o.unknown_fraction is not None else {}
        # realistic: `_silence_` items are also music and ambient sounds alone, not only noise
        silence = dict(silence_source=self.acoustics.silence) if self.acoustics else {}
        if o.boost_words:       # training only: validation keeps the data set's balance
            uf["unknown_boost"] = {w: o.boost_factor for w in o.boost_words}
        self.train_clips = SpeechCommands(data, "training", augment=aug, **sc, **uf, **silence)
        self.plain_train = SpeechCommands(data, "training", **sc, **uf)
        # BN calibration draws: the training augmentation, on its own copy (own epoch state)
        self.calib_train = SpeechCommands(data, "training", augment=aug, **sc, **uf, **silence) if aug else None
        self.val_clips = SpeechCommands(data, "validation", **sc)
        if len(self.train_clips) < o.batch_size:
            raise KwsError(f"the training split has {len(self.train_clips)} items, fewer than "
                           f"--batch-size {o.batch_size}")
        self.history: dict = {"teacher": [], "student": []}
        self.steps_this_run = 0
        self._val = None
        self._calib: dict = {}                 # n -> BN calibration batches

    # ------------------------------------------------------------------ output
    def log(self, msg: str) -> None:
        if self.env.main:
            from tqdm import tqdm
            tqdm.write(msg, file=sys.stderr)

    # ------------------------------------------------------------------ validation data
    def val_shard(self):
        """This rank's share of the validation features (computed once, un-augmented)."""
        if self._val is None:
            from kws.distill.data import feature_matrix
            self.val_clips.set_epoch(0)
            t0 = time.monotonic()
            idx = range(self.env.rank, len(self.val_clips), self.env.world)
            x, y = feature_matrix(self.val_clips, self.frontend, idx)
            self._val = (torch.from_numpy(x), torch.from_numpy(y))
            self.val_feature_s = time.monotonic() - t0
        return self._val

    @torch.no_grad()
    def validate(self, net: FSMN, ops) -> dict:
        x, y = self.val_shard()
        was = net.training
        net.eval()
        counts = []
        for op in ops:
            correct = 0
            for i in range(0, x.shape[0], 256):
                logits, _ = net(x[i:i + 256], op)
                correct += int((logits.argmax(1) == y[i:i + 256]).sum())
            counts.append(correct)
        counts = self.env.sum(counts + [x.shape[0]])
        net.train(was)
        n = max(counts[-1], 1)
        return {op.name: counts[k] / n for k, op in enumerate(ops)}

    # ------------------------------------------------------------------ optimizers
    def _ordinary(self, params, kind: str, phase: str = "teacher"):
        lr = self.o.student_lr if phase == "student" and self.o.student_lr is not None else self.o.lr
        lr = lr if lr is not None else DEFAULT_LR[kind]
        if kind == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=self.o.momentum, weight_decay=self.o.weight_decay)
        return torch.optim.Adam(params, lr=lr, weight_decay=self.o.weight_decay)

    def optimizers(self, net: FSMN, phase: str) -> list:
        o = self.o
        if phase == "teacher":
            return [self._ordinary(net.parameters(), "adam" if o.optimizer == "adam" else "sgd")]
        if o.optimizer == "bop":
            binary = {id(p) for p in net.binary_parameters()}
            rest = [p for p in net.parameters() if id(p) not in binary]
            return [Bop(net.binary_parameters(), gamma=o.bop_gamma, tau=o.bop_tau),
                    self._ordinary(rest, o.rest_optimizer, phase)]
        return [self._ordinary(net.parameters(), o.optimizer, phase)]

    # ------------------------------------------------------------------ per-batch plan
    def plan(self, phase: str, net: FSMN, epoch: int, step: int):
        """[(operating point, loss weight)] of one batch (module doc)."""
        if phase == "teacher":
            return [(net.arch.operating_points[0], 1.0)]
        rng = np.random.default_rng([self.o.seed, epoch, step, 11])

        def sandwich(xs):            # the first, one of the middle ones at random, the last
            mid = [xs[1 + int(rng.integers(len(xs) - 2))]] if len(xs) > 2 else []
            return xs[:1] + mid + xs[1:][-1:]

        sets = sorted(net.arch.block_sets, key=len, reverse=True)
        ws = sorted(net.arch.widths, reverse=True)
        if self.o.student_plan == "all":
            return [(OperatingPoint(float(w), tuple(s)), 0.5 ** i)
                    for w in sandwich(ws) for i, s in enumerate(sets)]
        # sandwich over (width, block set) pairs: the largest, one other at random, the smallest
        grid = [OperatingPoint(float(w), tuple(s)) for w in ws for s in sets]
        if self.o.student_plan == "center" and len(grid) > 3:
            center = OperatingPoint(float(ws[len(ws) // 2]), tuple(sets[len(sets) // 2]))
            rest = [op for op in grid if op != center]
            plan = sandwich(rest)
            return [(op, 1.0) for op in plan[:-1]] + [(center, self.o.center_weight)] + \
                [(op, 1.0) for op in plan[-1:]]
        return [(op, 1.0) for op in sandwich(grid)]

    @torch.no_grad()
    def training_batches(self, n: int, salt: int = 23, augmented: bool = False) -> list:
        """n batches of training features, un-augmented or through the run's augmentation (one
        fixed draw per salt), the same in every process."""
        from kws.distill.data import ClipFeatures
        clips = self.plain_train
        if augmented and self.calib_train is not None:
            clips = self.calib_train
            clips.set_epoch(1_000_000 + salt)      # a draw no training epoch uses
        ds = ClipFeatures(clips, self.frontend, self.arch.n_frames)
        order = np.random.default_rng([self.o.seed, salt]).permutation(len(ds))[:n * self.o.batch_size]
        batches = []
        for i in range(0, len(order) - self.o.batch_size + 1, self.o.batch_size):
            items = [ds[int(k)] for k in order[i:i + self.o.batch_size]]
            batches.append(torch.stack([torch.as_tensor(x) for x, _ in items]))
        return batches

    def probe(self, net: FSMN) -> FSMN:
        """A copy of the student with BN statistics re-estimated on `PROBE_BATCHES` batches,
        for the per-epoch validation: the running statistics of a point trained in a fraction of
        the batches lag its weights (validation at 1x8 swung between 4 % and 96 % from epoch to
        epoch with them), the calibrated figures track what the exported model will do."""
        if self.o.bn_calibration <= 0:
            return net
        probe = copy.deepcopy(net)
        self.calibrate_bn(probe, min(PROBE_BATCHES, self.o.bn_calibration))
        return probe

    def calibrate_bn(self, net: FSMN, n_batches: int | None = None) -> None:
        """Re-estimate every operating point's BatchNorm statistics with its final weights.

        With the sandwich plan an operating point sees a fraction of the batches, so its running
        statistics lag its weights; a pass over `bn_calibration` training batches per operating
        point (cumulative average, as for slimmable networks) fixes that. The batches go through
        the run's own augmentation (CALIBRATION): statistics of clean clips only cost the default
        student 13 points at 0 dB SNR (1x8 on 960 validation clips: 67.4 % vs 80.2 %; clean 95.8
        vs 96.4 %). Every process computes the same statistics from the same batches.
        """
        n = self.o.bn_calibration if n_batches is None else n_batches
        if n not in self._calib:
            self._calib[n] = self.training_batches(n, augmented=True)
        batches = self._calib[n]
        was = net.training
        net.train()
        for op in net.arch.operating_points:
            bns = [m for m in net.ops[op_key(op)].modules() if isinstance(m, nn.BatchNorm1d)]
            saved = [m.momentum for m in bns]
            for m in bns:
                m.reset_running_stats()
                m.momentum = None          # cumulative moving average over the calibration batches
            for x in batches:
                net(x, op)
            for m, mo in zip(bns, saved):
                m.momentum = mo
        net.train(was)

    # ------------------------------------------------------------------ one phase
    def fit(self, phase: str, net: FSMN, epochs: int, ckpt_path: Path, ck: dict | None,
            teacher: FSMN | None = None) -> None:
        o, env = self.o, self.env
        from torch.utils.data import BatchSampler, DataLoader, DistributedSampler
        from tqdm import tqdm

        from kws.distill.data import ClipFeatures

        ds = ClipFeatures(self.train_clips, self.frontend, self.arch.n_frames)
        sampler = DistributedSampler(ds, num_replicas=env.world, rank=env.rank, shuffle=True,
                                     seed=o.seed, drop_last=True)
        steps = len(sampler) // self.local_batch
        if steps == 0:
            raise KwsError("not a single full batch per process: lower --batch-size")
        opts = self.optimizers(net, phase)
        total = steps * epochs

        def cosine(k):
            return 0.5 * (1.0 + math.cos(math.pi * min(k, total) / total))

        scheds = [torch.optim.lr_scheduler.LambdaLR(op, cosine) for op in opts if not isinstance(op, Bop)]
        epoch, step, gstep = 0, 0, 0
        run_stats = None
        if ck is not None:
            for op, s in zip(opts, ck["optimizers"]):
                op.load_state_dict(s)
            for sc, s in zip(scheds, ck["schedulers"]):
                sc.load_state_dict(s)
            epoch, step, gstep = ck["epoch"], ck["step"], ck["global_step"]
            run_stats = ck.get("epoch_stats")
            self.history[phase] = list(ck.get("history", []))
            _set_rng_state(ck["rng"])
            if ck.get("world_size") != env.world:
                self.log(f"note: {ckpt_path} was written with {ck.get('world_size')} process(es), "
                         f"now {env.world}: the rest of the run will not be bit-identical")
            if epoch >= epochs:
                self.log(f"{phase}: already trained ({epochs} epochs) -- {ckpt_path}")
                return
            self.log(f"{phase}: resuming at epoch {epoch + 1}, step {step}/{steps}")
        objective = _Objective(net, phase, o, teacher)
        model = objective
        if env.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            # a batch trains only some operating points' BN/PReLU: DDP must not wait for the rest
            model = DDP(objective, find_unused_parameters=phase == "student" and (
                o.student_plan != "all" or len(self.arch.widths) > 3))
        eval_ops = net.arch.operating_points
        last_save = time.monotonic()

        def checkpoint(ep, st, stats, done=False):
            if env.main:
                save_checkpoint(ckpt_path, self.state(phase, net, opts, scheds, ep, st, gstep, stats,
                                                      done, teacher))

        while epoch < epochs:
            self.train_clips.set_epoch(epoch)
            sampler.set_epoch(epoch)
            batches = list(BatchSampler(list(iter(sampler)), self.local_batch, drop_last=True))[step:]
            loader = DataLoader(ds, batch_sampler=batches, num_workers=o.workers) if batches else []
            stats = dict(run_stats or {"loss": 0.0, "correct": 0, "seen": 0, "data_s": 0.0,
                                       "step_s": 0.0, "cpu_s": 0.0, "steps": 0, "flips": 0})
            cpu0 = time.process_time()
            run_stats = None
            bar = tqdm(total=steps, initial=step, desc=f"{phase} {epoch + 1}/{epochs}", unit="batch",
                       disable=not (env.main and o.progress), leave=False, dynamic_ncols=True)
            net.train()
            t_data = time.monotonic()
            for x, y in loader:
                t0 = time.monotonic()
                stats["data_s"] += t0 - t_data
                plan = self.plan(phase, net, epoch, step)
                if o.spec_masks:
                    g = torch.Generator().manual_seed(
                        int(np.random.SeedSequence([o.seed, epoch, step, env.rank, 13]).generate_state(1)[0]))
                    if net.arch.input_norm == "pcen":    # masks after PCEN (specaug module doc)
                        x = Masked(x, spec_keep(x.shape, o.spec_masks, generator=g))
                    else:
                        x = spec_masks(x, net.feat_mean, o.spec_masks, generator=g)
                loss, logits = model(x, y, plan)
                for op in opts:
                    op.zero_grad(set_to_none=True)
                loss.backward()
                for op in opts:
                    op.step()
                    if isinstance(op, Bop):
                        stats["flips"] += op.last_flips
                if phase == "student" and o.optimizer != "bop":
                    clamp_latent_(net)
                for sc in scheds:
                    sc.step()
                step += 1
                gstep += 1
                self.steps_this_run += 1
                c = int((logits.detach().argmax(1) == y).sum())
                lv = float(loss.detach())
                if not math.isfinite(lv):
                    raise KwsError(f"{phase}: the loss became {lv} at epoch {epoch + 1} step {step}; "
                                   f"lower --lr")
                stats["loss"] += lv * len(y)
                stats["correct"] += c
                stats["seen"] += len(y)
                stats["steps"] += 1
                t_data = time.monotonic()
                stats["step_s"] += t_data - t0
                bar.update(1)
                bar.set_postfix(loss=f"{stats['loss'] / stats['seen']:.3f}",
                                acc=f"{stats['correct'] / stats['seen']:.3f}")
                if o.stop_after and self.steps_this_run >= o.stop_after:
                    stats["cpu_s"] += time.process_time() - cpu0
                    checkpoint(epoch, step, stats)
                    env.barrier()
                    bar.close()
                    raise Stopped(f"stopped after {self.steps_this_run} steps as asked (--stop-after); "
                                  f"continue with --resume")
                if env.main and time.monotonic() - last_save > o.checkpoint_minutes * 60:
                    now = time.process_time()
                    stats["cpu_s"] += now - cpu0
                    cpu0 = now
                    checkpoint(epoch, step, stats)
                    last_save = time.monotonic()
            bar.close()
            stats["cpu_s"] += time.process_time() - cpu0
            t0 = time.monotonic()
            val = self.validate(self.probe(net) if phase == "student" else net, eval_ops)
            tot = self.env.sum([stats["loss"], stats["correct"], stats["seen"]])
            rec = {"epoch": epoch + 1, "train_loss": tot[0] / max(tot[2], 1),
                   "train_acc": tot[1] / max(tot[2], 1), "val_acc": val,
                   "lr": scheds[0].get_last_lr()[0] if scheds else None,
                   "epoch_s": stats["data_s"] + stats["step_s"], "data_s": stats["data_s"],
                   "step_s": stats["step_s"], "cpu_s": stats["cpu_s"], "val_s": time.monotonic() - t0,
                   "steps": stats["steps"], "processes": env.world}
            if phase == "student" and o.optimizer == "bop":
                rec["bop_flips"] = stats["flips"]
            self.history[phase].append(rec)
            self.log(f"{phase} epoch {epoch + 1}/{epochs}: loss {rec['train_loss']:.4f} "
                     f"train acc {rec['train_acc']:.4f} | val " +
                     " ".join(f"{k} {v:.4f}" for k, v in val.items()) +
                     f" | {rec['epoch_s']:.1f}s (data {rec['data_s']:.1f}s, cpu {rec['cpu_s']:.1f}s) "
                     f"val {rec['val_s']:.1f}s")
            epoch += 1
            step = 0
            checkpoint(epoch, 0, None, done=epoch >= epochs)
            last_save = time.monotonic()
            if env.main:
                write_text_atomic(self.workdir / "history.json",
                                  json.dumps(_tensors_to_py(self.history), indent=1))
        env.barrier()

    def state(self, phase, net, opts, scheds, epoch, step, gstep, stats, done, teacher) -> dict:
        ck = {"format": CKPT_FORMAT, "version": CKPT_VERSION, "phase": phase,
              "arch": net.arch.to_dict(), "frontend": self.frontend.to_dict(), "labels": self.labels,
              "task": self.o.task, "words": self.o.words,
              "model": net.state_dict(), "optimizers": [op.state_dict() for op in opts],
              "schedulers": [sc.state_dict() for sc in scheds],
              "epoch": epoch, "step": step, "global_step": gstep, "epoch_stats": stats,
              "done": bool(done), "rng": _rng_state(), "history": self.history[phase],
              "world_size": self.env.world,
              "options": _tensors_to_py(dataclasses.asdict(self.o))}
        if teacher is not None:
            ck["teacher_arch"] = teacher.arch.to_dict()
            ck["teacher_model"] = teacher.state_dict()
        return ck

    # ------------------------------------------------------------------ whole run
    def run(self) -> dict:
        o, env = self.o, self.env
        torch.manual_seed(o.seed)
        np.random.seed(o.seed)
        random.seed(o.seed)
        if env.main:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.log(f"kws train: {len(self.train_clips)} training / {len(self.val_clips)} validation "
                     f"items, {len(self.labels)} classes, {env.world} process(es) x "
                     f"{torch.get_num_threads()} thread(s), work folder {self.workdir}")
        # ---------------- teacher
        teacher = None
        if o.teacher:
            teacher = self._teacher_from(o.teacher, "--teacher")
        else:
            teacher = FSMN(teacher_arch(self.arch), binary=False, learn_pcen=o.pcen_learn)
            ck = load_checkpoint(self.teacher_ckpt) if (o.resume and self.teacher_ckpt.exists()) else None
            if ck is not None:
                self._same_pcen_learning(ck["model"], self.teacher_ckpt)
                teacher.load_state_dict(ck["model"])
            elif o.init_teacher:
                # fine-tuning: an earlier teacher's weights and normalisation; new optimizer and schedule
                earlier = self._earlier_teacher(o.init_teacher).state_dict()
                self._same_pcen_learning(earlier, o.init_teacher)
                teacher.load_state_dict(earlier)
            else:
                from kws.distill.data import normalisation
                pcen = teacher.pcen_params().detach().numpy() if self.arch.input_norm == "pcen" else None
                mean, std = normalisation(self.plain_train, self.frontend, seed=o.seed, pcen=pcen)
                teacher.set_normalisation(mean, std)
            self.fit("teacher", teacher, self.teacher_epochs, self.teacher_ckpt, ck)
        teacher.eval()
        teacher_val = self.history["teacher"][-1]["val_acc"] if self.history["teacher"] else None
        if o.epochs == 0:
            # the teacher only (e.g. one trained further before a student is distilled from it)
            if env.main:
                self.log(f"teacher only (--epochs 0): {self.teacher_ckpt}")
            env.barrier()
            return {"out": None, "teacher": str(self.teacher_ckpt), "workdir": str(self.workdir),
                    "teacher_val": teacher_val, "student_val": None, "history": self.history}
        # ---------------- student
        student = FSMN(self.arch, binary=True)
        ck = load_checkpoint(self.student_ckpt) if (o.resume and self.student_ckpt.exists()) else None
        if ck is not None:
            if ArchConfig.from_dict(ck["arch"]) != self.arch:
                raise KwsError(f"{self.student_ckpt} was trained with another architecture "
                               f"(widths/block sets/sizes); use another --workdir")
            student.load_state_dict(ck["model"])
            if not o.teacher:
                self._same_pcen_learning(ck["teacher_model"], self.student_ckpt)
            teacher.load_state_dict(ck["teacher_model"])
        elif o.init_student:
            # fine-tuning: an earlier student's weights, thresholds and BN; new optimizer and schedule
            sck = load_checkpoint(o.init_student)
            if sck.get("phase") != "student" or ArchConfig.from_dict(sck["arch"]) != self.arch:
                raise KwsError(f"--init-student {o.init_student} is not a student checkpoint of this "
                               f"architecture (widths/block sets/sizes/memory input)")
            student.load_state_dict(sck["model"])
        else:
            student.init_from_teacher(teacher, bop=o.optimizer == "bop")
            # sign thresholds start at the channel means of h (5 batches, same in every process)
            init_sign_thresholds_(student, torch.cat(self.training_batches(5, salt=29)))
        self.fit("student", student, o.epochs, self.student_ckpt, ck, teacher=teacher)
        if o.bn_calibration > 0:
            self.calibrated(student)
        # ---------------- export
        summary = {"out": str(self.out), "workdir": str(self.workdir),
                   "teacher_val": teacher_val,
                   "student_val": (self.history["student_calibrated"]["val_acc"]
                                   if "student_calibrated" in self.history else
                                   self.history["student"][-1]["val_acc"] if self.history["student"] else None),
                   "history": self.history}
        if env.main:
            from kws.distill.export import export_model
            flush_denormals_(student)       # as training saw them (run: denormals flushed)
            model = export_model(student, self.frontend, self.labels, self.provenance(summary))
            model.save(self.out)
            self.log(f"wrote {self.out}")
        env.barrier()
        return summary

    def calibrated(self, student: FSMN) -> None:
        """BN calibration once (module doc); the checkpoint then holds the calibrated statistics."""
        ck = load_checkpoint(self.student_ckpt)
        if (ck.get("bn_calibrated") or {}).get("data") == CALIBRATION:
            student.load_state_dict(ck["model"])
            self.history["student_calibrated"] = ck["bn_calibrated"]
            return
        t0 = time.monotonic()
        self.calibrate_bn(student)
        val = self.validate(student, student.arch.operating_points)
        rec = {"val_acc": val, "batches": self.o.bn_calibration, "data": CALIBRATION,
               "seconds": time.monotonic() - t0}
        self.history["student_calibrated"] = rec
        self.log("student after BN calibration: val " + " ".join(f"{k} {v:.4f}" for k, v in val.items()))
        if self.env.main:
            ck["model"] = student.state_dict()
            ck["bn_calibrated"] = rec
            save_checkpoint(self.student_ckpt, ck)
            write_text_atomic(self.workdir / "history.json", json.dumps(_tensors_to_py(self.history), indent=1))
        self.env.barrier()

    def provenance(self, summary) -> dict:
        o = self.o
        return _tensors_to_py({
            "trainer": "kws.distill", "task": o.task, "words": o.words, "data": str(o.data),
            "epochs": o.epochs, "teacher_epochs": None if o.teacher else self.teacher_epochs,
            "teacher": o.teacher, "optimizer": o.optimizer, "lr": o.lr, "batch_size": o.batch_size,
            "seed": o.seed, "hed_weight": o.hed_weight, "logit_kd": o.logit_kd,
            "exclude_families": list(o.exclude_families),
            **({"boost_words": list(o.boost_words), "boost_factor": o.boost_factor} if o.boost_words else {}),
            "inplace_kd": o.inplace_kd, "center_weight": o.center_weight, "spec_masks": o.spec_masks,
            "augment": o.augment, "noise_prob": self.noise_prob, "acoustics": o.acoustics,
            "noise_snr": list(self.acoustics.snr_db) if self.acoustics else o.noise_snr,
            **({"realistic_acoustics": self.acoustics.describe()} if self.acoustics else {}),
            "init_student": o.init_student, "init_teacher": o.init_teacher, "student_plan": o.student_plan,
            "processes": self.env.world, "torch": torch.__version__,
            "val_accuracy": summary["student_val"], "teacher_val_accuracy": summary["teacher_val"]})

    def _same_pcen_learning(self, state: dict, path) -> None:
        """A teacher's state (checkpoint `path`) learnt PCEN exactly when this run does."""
        learnt = learnt_pcen(state)
        if learnt != self.o.pcen_learn:
            how = "with" if learnt else "without"
            raise KwsError(f"{path}: its teacher was trained {how} --pcen-learn; run it {how} that "
                           "flag or use another --workdir")

    def _teacher_from(self, path, flag: str) -> FSMN:
        """The float teacher in `path` (a teacher.pt, or a student.pt's embedded teacher), checked to
        fit this run's labels, frontend and sizes; errors name `flag`."""
        teacher, tck = net_from_checkpoint(load_checkpoint(path), "teacher")
        self._check_teacher(teacher, tck, path, flag)
        return teacher

    def _earlier_teacher(self, path) -> FSMN:
        """`_teacher_from` for --init-teacher: also the same architecture as this run's teacher, whose
        weights it becomes."""
        teacher = self._teacher_from(path, "--init-teacher")
        if teacher.arch != teacher_arch(self.arch):
            raise KwsError(f"--init-teacher {path}: its teacher has another architecture than this run's teacher "
                           f"(widths/block sets/memory input)")
        return teacher

    def _check_teacher(self, teacher: FSMN, tck: dict, path, flag: str) -> None:
        ta = teacher.arch
        for name in ("n_frames", "n_features", "stem_kernel", "stem_stride", "backbone", "hidden",
                     "n_blocks", "back", "ahead", "n_classes"):
            if getattr(ta, name) != getattr(self.arch, name):
                raise KwsError(f"{flag} {path}: its {name} is {getattr(ta, name)}, the student's "
                               f"is {getattr(self.arch, name)} (match --backbone/--hidden/--n-blocks)")
        if list(tck["labels"]) != list(self.labels):
            raise KwsError(f"{flag} {path} was trained on other labels: {tck['labels']}")
        if FrontendConfig.from_dict(tck["frontend"]) != self.frontend:
            raise KwsError(f"{flag} {path} was trained with another frontend (--features)")


class _Objective(nn.Module):
    """The loss of one batch over its plan: a single module call, so DDP sees one forward."""

    def __init__(self, net: FSMN, phase: str, opts: TrainOptions, teacher: FSMN | None):
        super().__init__()
        self.net = net
        self.phase = phase
        self.o = opts
        self._teacher = [teacher]          # a list: not a registered submodule (not trained)

    def forward(self, x, y, plan):
        net, o = self.net, self.o
        if self.phase == "teacher":
            op, _ = plan[0]
            logits, _ = net(x, op)
            return F.cross_entropy(logits, y), logits
        teacher = self._teacher[0]
        need_maps = o.hed_weight > 0
        if need_maps or o.logit_kd > 0:
            with torch.no_grad():
                t_logits, t_maps = teacher(x, teacher.arch.operating_points[0])
        targets: dict = {}
        total = y.new_zeros((), dtype=torch.float32)
        first = None
        for op, w in plan:
            logits, maps = net(x, op)
            if first is None:
                first = logits
            loss = F.cross_entropy(logits, y)
            if need_maps:
                bw = net.arch.channels(op.width)[0]
                tt = []
                for b in op.blocks:
                    key = (b, bw)
                    if key not in targets:
                        targets[key] = hed_target(t_maps[b][..., :bw])
                    tt.append(targets[key])
                loss = loss + o.hed_weight * hed_loss(maps, tt)
            if o.logit_kd > 0:
                loss = loss + o.logit_kd * logit_kd(logits, t_logits, o.kd_temperature)
            if o.inplace_kd > 0 and logits is not first:    # the plan's first point is the widest
                loss = loss + o.inplace_kd * logit_kd(logits, first.detach(), o.kd_temperature)
            total = total + w * loss
        return total, first


def flush_denormals_(net) -> int:
    """Set the float parameters and buffers of `net` that are denormal (or zero) to +0, in place;
    returns how many were denormal. Training runs with denormals flushed (`run`), so it treats
    them as 0; the exported model must too (sign(+0) = +1, sign(-1e-40) = -1 without the flush)."""
    tiny = torch.finfo(torch.float32).tiny
    n = 0
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                small = t.abs() < tiny
                n += int((small & (t != 0)).sum())
                t[small] = 0.0
    return n


def run(opts: TrainOptions) -> dict:
    """Train teacher and student and export; returns a summary (rank 0's view).

    Denormal floats are flushed to zero for the run: late in a student run ~6 % of the weights and
    of Adam's moments sink into the denormal range, and every operation on them takes a slow path
    (one training step of the v3 student at 1x8 + 0.5x4, batch 48, one thread, Intel Xeon family 6
    model 207: 1.23 s CPU without the flush, 0.29-0.33 s with it)."""
    env = _Dist()
    _threads(env.world, opts.threads)
    torch.set_flush_denormal(True)
    try:
        return Trainer(opts, env).run()
    finally:
        torch.set_flush_denormal(False)
        env.close()
