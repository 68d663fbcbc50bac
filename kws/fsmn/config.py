"""The binary FSMN architecture: one config shared by the torch trainer and the kernel runtime.

The network (every step is the same math in kws.distill (torch) and kws.fsmn.runtime (kernels);
the two meet only in the .kws file and the parity tests):

    X  [T, F]  features (kws.frontend), normalised: (X - mean) / std per feature
         (input_norm "pcen": (PCEN(X) - mean) / std, PCEN of the window alone: kws/fsmn/pcen.py)
    stem (float): frames stacked in windows of `stem_kernel` with stride `stem_stride`
         -> [T', stem_kernel * F] (frame-major: all F of the first frame, then the next...)
         -> linear to the backbone width  -> affine (BN folded) -> PReLU  = h  [T', B]
    block b (binary, residual), for b in the operating point's block set:
        m  = memconv(h, sign(A_b))                       float h, +-1 taps `back` past .. `ahead`
                                                         future, zero padding at the clip ends
             (memory_input "binary": memconv(sign(h - mem_in_thresh), sign(A_b)), integers)
        h  = h + PReLU(m * mem_scale + mem_shift)        (per-channel scale and BN folded)
        z  = sign(h - up_in_thresh) . sign(W_up)^T       int [T', H]
             (up_planes P > 1: sum over p of sign(h - up_in_thresh[p]) . sign(W_up)^T, i.e. h
              quantised to P+1 levels by P thresholds per channel: P binary GEMMs, one weight)
        s  = sign(z * up_scale + up_shift)               BN folded -> integer threshold + flip
        y  = s . sign(W_down)^T                          int [T', B]
        h  = h + (y * down_scale + down_shift)
    head: g = mean over time of (h * head_scale + head_shift)   [B]
          logits = W_cls . g + cls_bias                   (float)
    sign(x) = +1 if x >= 0 else -1 (everywhere).

Thinnable at run time: an operating point is (width, block set). Width w uses the first w*B
backbone channels and w*H hidden channels of every weight (prefix views of the packed rows, no
copies); every operating point has its own affine/PReLU/threshold parameters (per-width BN of
slimmable networks, per-block-set BN of BiFSMN's TBA) and its own classifier bias; the binary
weights, the stem and the classifier weights are shared.

Deviations from the BiFSMN reference, and why: (1) a float 1-D stem over stacked frames replaces
the two 5x5 float convolutions + projection: it downsamples time by 2 like the reference, costs
~0.6 M float MACs instead of ~3.6 M, and streams frame by frame; (2) the head pools over time
instead of flattening: detections must not depend on where in the window the keyword falls;
(3) every pointwise layer is truly binary (the reference code's 1x1 layers were not); (4) the
memory convolution reads the float residual stream (its taps stay binary, so it only adds and
subtracts): it is depthwise, ~1 % of a block's MACs, and binarising its input cost the most
accuracy of any sign; (5) the signs of h compare with a learnt per-channel threshold (ReActNet's RSign)
instead of 0, because h is an un-normalised residual stream. Measured by
benchmarks/student_ablation.py (1x8 student from the teacher, 300 steps, validation slice): every
sign binary at 0: 69.4 %; thresholds: 79.0 %; float memory input: 90.0 %; both: 93.3 %.
Optionally (up_planes > 1) the up projection reads h in P + 1 levels (the sum of P signs), run as one
binary GEMM over the P planes side by side (docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from kws.errors import KwsError


@dataclass(frozen=True)
class OperatingPoint:
    """A sub-network: a width fraction and the (sorted) indices of the blocks it runs."""

    width: float
    blocks: tuple[int, ...]

    @property
    def name(self) -> str:
        """e.g. "0.5x4": width x number of blocks (the key used in eval JSON and the CLI)."""
        return f"{self.width:g}x{len(self.blocks)}"


def default_block_sets(n_blocks: int) -> tuple[tuple[int, ...], ...]:
    """All blocks, every 2nd, every 4th (BiFSMN's TBA: for 8 blocks (0..7), (1,3,5,7), (3,7))."""
    sets = []
    for step in (1, 2, 4):
        if n_blocks % step == 0 and n_blocks // step >= 1:
            s = tuple(range(step - 1, n_blocks, step))
            if s not in sets:
                sets.append(s)
    return tuple(sets)


@dataclass(frozen=True)
class ArchConfig:
    n_frames: int = 97            # input frames per window (1 s: 1 + (16000 - 512) // 160)
    n_features: int = 40          # features per frame (frontend n_mels / n_mfcc)
    stem_kernel: int = 3          # frames per stem window
    stem_stride: int = 2          # time downsampling of the stem
    backbone: int = 128           # B: residual stream / memory width
    hidden: int = 256             # H: pointwise expansion width
    n_blocks: int = 8
    back: int = 2                 # memory taps into the past
    ahead: int = 2                # memory taps into the future
    n_classes: int = 12
    widths: tuple[float, ...] = (1.0, 0.5, 0.25)
    block_sets: tuple[tuple[int, ...], ...] = field(default_factory=lambda: default_block_sets(8))
    memory_input: str = "float"   # what the memory conv reads: "float" h, or "binary" sign(h - t)
    up_planes: int = 1            # sign planes of h into the up projection (1: binary; 2: 3 levels)
    input_norm: str = "global"    # "global": (X - mean) / std; "pcen": PCEN of each window first

    def __post_init__(self):
        ints = ("n_frames", "n_features", "stem_kernel", "stem_stride", "backbone", "hidden",
                "n_blocks", "n_classes")
        for name in ints:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1 or v > 1_000_000:
                raise KwsError(f"architecture: {name} must be an integer in 1..1000000, got {v!r}")
        for name in ("back", "ahead"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > 60:
                raise KwsError(f"architecture: {name} must be an integer in 0..60, got {v!r}")
        if self.n_frames < self.stem_kernel:
            raise KwsError(f"architecture: n_frames ({self.n_frames}) < stem_kernel ({self.stem_kernel})")
        if isinstance(self.up_planes, bool) or not isinstance(self.up_planes, int) or not 1 <= self.up_planes <= 3:
            raise KwsError(f"architecture: up_planes must be 1, 2 or 3, got {self.up_planes!r}")
        if self.input_norm not in ("global", "pcen"):
            raise KwsError(f"architecture: input_norm must be 'global' or 'pcen', got {self.input_norm!r}")
        if self.memory_input not in ("float", "binary"):
            raise KwsError(f"architecture: memory_input must be 'float' or 'binary', got {self.memory_input!r}")
        if not self.widths or not self.block_sets:
            raise KwsError("architecture: widths and block_sets must not be empty")
        for w in self.widths:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 1:
                raise KwsError(f"architecture: width {w!r} must be in (0, 1]")
            for dim in (self.backbone, self.hidden):
                if not float(w * dim).is_integer():
                    raise KwsError(f"architecture: width {w} of {dim} channels is not a whole number")
        for s in self.block_sets:
            if not s or list(s) != sorted(set(s)) or not all(
                    isinstance(b, int) and not isinstance(b, bool) and 0 <= b < self.n_blocks for b in s):
                raise KwsError(f"architecture: block set {s!r} must be sorted distinct indices "
                               f"in 0..{self.n_blocks - 1}")

    # ------------------------------------------------------------------ derived sizes
    @property
    def stem_frames(self) -> int:
        """T': frames after the stem."""
        return (self.n_frames - self.stem_kernel) // self.stem_stride + 1

    @property
    def stem_inputs(self) -> int:
        return self.stem_kernel * self.n_features

    @property
    def taps(self) -> int:
        return self.back + 1 + self.ahead

    def channels(self, width: float) -> tuple[int, int]:
        """(backbone, hidden) channel counts at a width."""
        return int(round(width * self.backbone)), int(round(width * self.hidden))

    @property
    def operating_points(self) -> list[OperatingPoint]:
        """Every (width, block set) pair, widest and deepest first."""
        return [OperatingPoint(float(w), tuple(s))
                for w in sorted(self.widths, reverse=True)
                for s in sorted(self.block_sets, key=len, reverse=True)]

    def operating_point(self, width: float | None = None, blocks: int | None = None) -> OperatingPoint:
        """The operating point for a width and a NUMBER of blocks (None: the widest / deepest)."""
        width = max(self.widths) if width is None else width
        match_w = [w for w in self.widths if math.isclose(w, float(width))]
        if not match_w:
            raise ValueError(f"width {width!r} is not one this model supports: "
                             f"{', '.join(f'{w:g}' for w in sorted(self.widths, reverse=True))}")
        sets = sorted(self.block_sets, key=len, reverse=True)
        if blocks is None:
            chosen = sets[0]
        else:
            found = [s for s in sets if len(s) == blocks]
            if isinstance(blocks, bool) or not found:
                raise ValueError(f"blocks={blocks!r} is not one this model supports: "
                                 f"{', '.join(str(len(s)) for s in sets)}")
            chosen = found[0]
        return OperatingPoint(float(match_w[0]), tuple(chosen))

    # ------------------------------------------------------------------ costs
    def costs(self, op: OperatingPoint) -> dict:
        """Per-inference multiply-accumulates: float MACs and binary MACs (XNOR-popcount)."""
        b, h = self.channels(op.width)
        t = self.stem_frames
        memory = len(op.blocks) * t * self.taps * b     # float input: +-1 taps, adds only
        float_macs = t * self.stem_inputs * b + self.n_classes * b
        binary_macs = len(op.blocks) * t * (self.up_planes + 1) * b * h
        if self.memory_input == "float":
            float_macs += memory
        else:
            binary_macs += memory
        return {"float_macs": float_macs, "binary_macs": binary_macs,
                "params_binary_bits": self.n_blocks * (self.taps * self.backbone + 2 * self.backbone * self.hidden),
                "params_float": self.stem_inputs * self.backbone + self.n_classes * self.backbone}

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        d["block_sets"] = [list(s) for s in self.block_sets]
        if d["input_norm"] == "global":     # the default, left out: kws before format 4 reads the file
            del d["input_norm"]
        return d

    @classmethod
    def from_dict(cls, d) -> "ArchConfig":
        if not isinstance(d, dict):
            raise KwsError(f"architecture must be a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise KwsError(f"architecture: unknown keys {sorted(unknown)}")
        d = dict(d)
        d.setdefault("memory_input", "binary")   # files written before the float memory input
        try:
            if "widths" in d:
                d["widths"] = tuple(d["widths"])
            if "block_sets" in d:
                d["block_sets"] = tuple(tuple(s) for s in d["block_sets"])
        except TypeError as e:
            raise KwsError(f"architecture: widths/block_sets must be lists: {e}") from None
        return cls(**d)
