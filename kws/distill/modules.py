"""Torch networks that compute the math of kws/fsmn/config.py: the float teacher and the binary student.

One class, `FSMN`, serves both (``binary=False``: teacher, ``binary=True``: student). Input is a
batch of feature windows ``[N, n_frames, n_features]``; `forward(x, op)` returns
``(logits [N, C], block_outputs)`` for an operating point (width, block set), where
``block_outputs[i]`` is the residual stream ``h`` ``[N, T', Bw]`` after the i-th block the point runs
(the maps HED distils).

Shared parameters (one copy for every operating point; a width uses the leading channel prefix):
    stem_weight [B, stem_kernel*F], mem[b] [L, B] (taps past -> future), up[b] [H, B],
    down[b] [B, H], cls_weight [C, B]; buffers feat_mean / feat_std [F] (input normalisation).
Per operating point (``ops[op_key(op)]``): BatchNorm + PReLU of the stem, per block BatchNorm of
the memory output + its PReLU, BatchNorm of the up projection, BatchNorm of the down projection,
(student) the per-channel thresholds t_mem, t_up of the two signs of h, BatchNorm of the head,
classifier bias.

Student, training mode (batch statistics, straight-through gradients):
    h = PReLU(BN(stack(x) W_stem^T))
    per block:  m = memconv(h, sgn(A)) * alpha_A                 alpha_A = mean_taps |A| (per channel)
                    (arch.memory_input "binary": memconv(sgn(h - t_mem), sgn(A)) * alpha_A)
                h = h + PReLU(BN(m))
                z = (sgn(h - t_up) sgn(W_up)^T) * alpha_up       alpha_up = mean |W_up row|
                    (arch.up_planes P > 1: sum_p sgn(h - t_up[p]) in place of sgn(h - t_up): h
                     in P + 1 levels, thresholds started at the channel's normal quantiles)
                s = sgn(BN(z))
                y = (s sgn(W_down)^T) * alpha_down
                h = h + BN(y)
    logits = mean_t(BN(h)) W_cls^T + bias
sgn is sign with sgn(x) = +1 iff x >= 0 forward, clipped straight-through backward (gradient passed
where |x| <= 1), for activations and latent weights alike. The alphas are per-channel scales of the
binary layers (XNOR-Net style, mean |w| of the row actually used at that width); they are detached
because a BatchNorm follows each of them (in training mode BN(alpha * v) == BN(v)), but they are
part of the folded inference scales. The thresholds t (ReActNet's RSign) matter because h is the
un-normalised residual stream: with sign at 0, a channel whose values sit mostly on one side of 0
carries almost no information in its bits. They start at each channel's mean
(`init_sign_thresholds_`) and are learnt (benchmarks/student_ablation.py: 79.0 % instead of
69.4 % with sign at 0, 300 steps of the 1x8 point from the teacher, binary memory input).

Student, eval mode: exactly the runtime's computation (kws.fsmn.runtime) with the folded float32
parameters of `folded(op)`: ``h = h * scale`` then ``h = h + shift`` as separate float32 ops (no
fused multiply-add), PReLU as ``where(h >= 0, h, h * slope)``, memory and pointwise products on
+-1 values (exact integers in float32), the up projection's sign taken of ``z * up_scale + up_shift``
in float32 (export turns that into an integer threshold + flip by evaluating this very expression
on every integer z, so the bits agree exactly). The only float differences left against the
runtime are the summation orders of the stem matmul, the time mean and the classifier (float32
rounding, ~1e-6 relative).

Teacher (binary=False): the same topology in float: the memory convolution and both projections
use the real-valued h and weights, the hidden activation is hardtanh (the float relative of the
student's sign; the reference's teacher used ReLU there), no alphas. It has a single operating
point (width 1, all blocks) and BatchNorm in the usual train/eval modes.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from kws.fsmn.config import ArchConfig, OperatingPoint


# ---------------------------------------------------------------------------- binarisation
class _SignSTE(torch.autograd.Function):
    """sign(x) (+1 iff x >= 0) forward; gradient passed where |x| <= 1 (clipped STE)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return sign(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.abs().le_(1)          # in place: a float 1/0 mask, no bool tensor to convert


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """+1 where x >= 0 else -1, with the clipped straight-through gradient."""
    return _SignSTE.apply(x)


def sign(x: torch.Tensor) -> torch.Tensor:
    """+1 where x >= 0 (-0.0 included) else -1 (no gradient): the kernels' convention (bit 1 = -1).
    Written as sign(sign(x) + 0.5), which maps 0 to +1: on CPU torch.where and comparisons run
    ~5-20x slower than these arithmetic passes, and signs are most of a student step's elementwise work."""
    return torch.sign(torch.sign(x).add_(0.5))


def prelu(x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """x where x >= 0 else slope * x, per channel (last axis) -- the runtime's PReLU (the same
    float operation: one multiply where x < 0), as torch's fused prelu on a channels-second view."""
    return F.prelu(x.transpose(1, -1), slope).transpose(1, -1)


def memconv(h: torch.Tensor, taps: torch.Tensor, back: int, ahead: int) -> torch.Tensor:
    """Depthwise temporal convolution: out[n, t, c] = sum_i h[n, t+i, c] taps[i+back, c] for
    i in [-back, ahead], zero padding outside the sequence.  h [N, T, C], taps [L, C]."""
    t = h.shape[1]
    hp = F.pad(h, (0, 0, back, ahead))
    out = hp[:, 0:t, :] * taps[0]
    for i in range(1, back + 1 + ahead):
        out = out + hp[:, i:i + t, :] * taps[i]
    return out


def op_key(op: OperatingPoint) -> str:
    """ModuleDict key of an operating point (no dots allowed): "w0_5_b1-3-5-7"."""
    return f"w{op.width:g}".replace(".", "_") + "_b" + "-".join(map(str, op.blocks))


def teacher_arch(arch: ArchConfig) -> ArchConfig:
    """The teacher's architecture: the same network with one operating point (width 1, all blocks)."""
    import dataclasses
    return dataclasses.replace(arch, widths=(1.0,), block_sets=(tuple(range(arch.n_blocks)),), up_planes=1)


# ---------------------------------------------------------------------------- parameters
def _bn(c: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(c, eps=1e-5, momentum=0.1)


def _apply_bn(x: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
    """BatchNorm over every (sample, frame) per channel; x [N, T, C]."""
    n, t, c = x.shape
    return bn(x.reshape(n * t, c)).view(n, t, c)


class BlockOpParams(nn.Module):
    def __init__(self, bw: int, hw: int, binary: bool, binary_memory: bool, up_planes: int = 1):
        super().__init__()
        if binary:      # thresholds of the signs of h (the float teacher takes no sign there)
            if binary_memory:
                self.mem_in_thresh = nn.Parameter(torch.zeros(bw))
            self.up_in_thresh = nn.Parameter(torch.zeros(bw) if up_planes == 1 else torch.zeros(up_planes, bw))
        self.mem_bn = _bn(bw)
        self.mem_prelu = nn.Parameter(torch.full((bw,), 0.25))
        self.up_bn = _bn(hw)
        self.down_bn = _bn(bw)


class OpParams(nn.Module):
    """The parameters one operating point owns (per-width and per-block-set BN, PReLU, bias)."""

    def __init__(self, arch: ArchConfig, op: OperatingPoint, binary: bool):
        super().__init__()
        bw, hw = arch.channels(op.width)
        self.stem_bn = _bn(bw)
        self.stem_prelu = nn.Parameter(torch.full((bw,), 0.25))
        self.blocks = nn.ModuleDict({str(b): BlockOpParams(bw, hw, binary, arch.memory_input == "binary",
                                                           arch.up_planes) for b in op.blocks})
        self.head_bn = _bn(bw)
        self.cls_bias = nn.Parameter(torch.zeros(arch.n_classes))


def _fold_bn(bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) float64 with BN_eval(v) = v * scale + shift."""
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    shift = bn.bias.double() - bn.running_mean.double() * scale
    return scale, shift


def pcen_torch(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """PCEN of each window of dB features x [N, T, F] (kws/fsmn/pcen.py; the runtime's is C):
    the same steps in float32, the smoother as a loop over the T frames."""
    from kws.fsmn.pcen import DB_MIN, LN10_OVER_10
    s, alpha, delta, root, eps = params
    ln_e = x.clamp(min=DB_MIN) * LN10_OVER_10
    e = torch.exp(ln_e)
    m = [e[:, 0]]
    for t in range(1, x.shape[1]):
        m.append((1 - s) * m[-1] + s * e[:, t])
    m = torch.stack(m, dim=1)
    # alpha 1 and r 0.5 (the defaults): a division and a square root, as the runtime computes them
    q = e / (eps + m) if bool((alpha == 1).all()) else torch.exp(ln_e - alpha * torch.log(eps + m))
    if bool((root == 0.5).all()):
        return torch.sqrt(q + delta) - torch.sqrt(delta)
    return torch.pow(q + delta, root) - torch.pow(delta, root)


# ---------------------------------------------------------------------------- the network
class FSMN(nn.Module):
    """Float teacher (binary=False) or thinnable binary student (binary=True); see module doc."""

    def __init__(self, arch: ArchConfig, binary: bool = True, learn_pcen: bool = False):
        super().__init__()
        if not isinstance(arch, ArchConfig):
            raise TypeError("arch must be a kws.fsmn.config.ArchConfig")
        if learn_pcen and arch.input_norm != "pcen":
            raise ValueError("learn_pcen needs an architecture with input_norm 'pcen'")
        self.arch = arch
        self.binary = bool(binary)
        B, H, L, C = arch.backbone, arch.hidden, arch.taps, arch.n_classes
        self.register_buffer("feat_mean", torch.zeros(arch.n_features))
        self.register_buffer("feat_std", torch.ones(arch.n_features))
        self.pcen_offset = None
        if arch.input_norm == "pcen":       # per-band PCEN parameters (kws/fsmn/pcen.py)
            from kws.fsmn.pcen import default_params
            self.register_buffer("pcen", torch.from_numpy(default_params(arch.n_features)))
            # learn_pcen: each band's smoothing and delta learnt as offsets from `pcen` (logit of
            # s, log of delta; zero = the buffer's values, where weight decay pulls them back);
            # alpha 1 and r 0.5 stay fixed (exact level invariance, the runtime's fast paths)
            self.pcen_offset = nn.Parameter(torch.zeros(2, arch.n_features)) if learn_pcen else None
        self.stem_weight = nn.Parameter(torch.empty(B, arch.stem_inputs))
        self.mem = nn.ParameterList([nn.Parameter(torch.empty(L, B)) for _ in range(arch.n_blocks)])
        self.up = nn.ParameterList([nn.Parameter(torch.empty(H, B)) for _ in range(arch.n_blocks)])
        self.down = nn.ParameterList([nn.Parameter(torch.empty(B, H)) for _ in range(arch.n_blocks)])
        self.cls_weight = nn.Parameter(torch.empty(C, B))
        self.ops = nn.ModuleDict({op_key(op): OpParams(arch, op, self.binary)
                                  for op in arch.operating_points})
        self._init_thresholds = False   # set by init_sign_thresholds_
        self.reset_parameters()

    def reset_parameters(self) -> None:
        a = self.arch

        def uniform(p, fan_in):
            bound = 1.0 / math.sqrt(fan_in)
            with torch.no_grad():
                p.uniform_(-bound, bound)

        uniform(self.stem_weight, a.stem_inputs)
        for b in range(a.n_blocks):
            uniform(self.mem[b], a.taps)
            uniform(self.up[b], a.backbone)
            uniform(self.down[b], a.hidden)
        uniform(self.cls_weight, a.backbone)

    # ------------------------------------------------------------------ helpers
    def binary_parameters(self) -> list[nn.Parameter]:
        """The weights that are binary in the student (memory taps, up and down projections)."""
        return list(self.mem) + list(self.up) + list(self.down)

    def op_params(self, op: OperatingPoint) -> OpParams:
        try:
            return self.ops[op_key(op)]
        except KeyError:
            raise ValueError(f"operating point {op.name} {op.blocks} is not in this network") from None

    def set_normalisation(self, mean, std) -> None:
        with torch.no_grad():
            self.feat_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            self.feat_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def pcen_params(self) -> torch.Tensor:
        """float32 [5, F]: the PCEN parameters this network applies (kws/fsmn/pcen.py rows),
        with the learnt offsets of smoothing and delta when it learns them."""
        if self.pcen_offset is None:
            return self.pcen
        s, alpha, delta, root, eps = self.pcen
        s = torch.sigmoid(torch.logit(s.double()).float() + self.pcen_offset[0])
        return torch.stack([s, alpha, delta * torch.exp(self.pcen_offset[1]), root, eps])

    def stem_input(self, x) -> torch.Tensor:
        """[N, n_frames, F] features (or kws.distill.specaug.Masked: features and where to keep
        them after the normalisation) -> normalised, stacked stem windows [N, T', k*F] (frame-major)."""
        a = self.arch
        keep = None
        if isinstance(x, tuple):
            x, keep = x
        if x.dim() != 3 or x.shape[1:] != (a.n_frames, a.n_features):
            raise ValueError(f"features must be [N, {a.n_frames}, {a.n_features}], got {tuple(x.shape)}")
        if self.arch.input_norm == "pcen":
            x = pcen_torch(x, self.pcen_params())
        x = (x - self.feat_mean) / self.feat_std
        if keep is not None:
            x = torch.where(keep, x, torch.zeros((), dtype=x.dtype))
        w = x.unfold(1, a.stem_kernel, a.stem_stride)            # [N, T', F, k]
        return w.transpose(2, 3).reshape(x.shape[0], a.stem_frames, a.stem_inputs)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, op: OperatingPoint | None = None):
        """(logits [N, C], [h after each block of op, [N, T', Bw]]) for features x [N, T, F]."""
        op = op or self.arch.operating_points[0]
        if self.binary and not self.training:
            return self.forward_folded(x, op)
        a, P = self.arch, self.op_params(op)
        bw, hw = a.channels(op.width)
        h = torch.matmul(self.stem_input(x), self.stem_weight[:bw].t())
        h = prelu(_apply_bn(h, P.stem_bn), P.stem_prelu)
        outs = []
        for b in op.blocks:
            Pb = P.blocks[str(b)]
            A, Wu, Wd = self.mem[b][:, :bw], self.up[b][:hw, :bw], self.down[b][:bw, :hw]
            if self.binary:
                if a.memory_input == "float":
                    m = memconv(h, sign_ste(A), a.back, a.ahead)
                else:
                    m = memconv(sign_ste(self._below(h, Pb.mem_in_thresh)), sign_ste(A), a.back, a.ahead)
                m = m * A.detach().abs().mean(0)
            else:
                m = memconv(h, A, a.back, a.ahead)
            h = h + prelu(_apply_bn(m, Pb.mem_bn), Pb.mem_prelu)
            if self.binary:
                z = torch.matmul(self._up_input(h, Pb.up_in_thresh), sign_ste(Wu).t()) \
                    * Wu.detach().abs().mean(1)
                s = sign_ste(_apply_bn(z, Pb.up_bn))
                y = torch.matmul(s, sign_ste(Wd).t()) * Wd.detach().abs().mean(1)
            else:
                s = F.hardtanh(_apply_bn(torch.matmul(h, Wu.t()), Pb.up_bn))
                y = torch.matmul(s, Wd.t())
            h = h + _apply_bn(y, Pb.down_bn)
            outs.append(h)
        g = _apply_bn(h, P.head_bn).mean(dim=1)
        logits = torch.matmul(g, self.cls_weight[:, :bw].t()) + P.cls_bias
        return logits, outs

    def _below(self, h: torch.Tensor, thresh: nn.Parameter) -> torch.Tensor:
        """h - thresh (what a thresholded sign is taken of); while init_sign_thresholds_ runs,
        the threshold is first set to this batch's per-channel mean of h."""
        if self._init_thresholds:
            thresh.data.copy_(h.detach().mean(dim=(0, 1)))
        return h - thresh

    def _up_input(self, h: torch.Tensor, thresh: nn.Parameter) -> torch.Tensor:
        """The up projection's input: sgn(h - t) for one plane; for P planes (thresh [P, Bw])
        the sum of the P signs, h in P + 1 levels. While init_sign_thresholds_ runs, P > 1
        thresholds start at the channel's mean + std * the normal quantiles k / (P + 1), so each
        level first holds about as many values."""
        if thresh.dim() == 1:
            return sign_ste(self._below(h, thresh))
        if self._init_thresholds:
            from statistics import NormalDist
            q = torch.tensor([NormalDist().inv_cdf(k / (len(thresh) + 1)) for k in range(1, len(thresh) + 1)])
            hd = h.detach()
            thresh.data.copy_(hd.mean(dim=(0, 1)) + q[:, None] * hd.std(dim=(0, 1)))
        out = sign_ste(h - thresh[0])
        for t in thresh[1:]:
            out = out + sign_ste(h - t)
        return out

    # ------------------------------------------------------------------ inference (folded)
    @torch.no_grad()
    def folded(self, op: OperatingPoint) -> dict[str, torch.Tensor]:
        """The float32 per-operating-point parameters of the runtime, folded from BN and alphas.

        Keys as in the model file without the op prefix (stem.scale, block3.mem_shift, ...,
        classifier.bias), plus block{b}.up_scale / up_shift: the float32 affine whose sign the up
        projection takes (export turns it into block{b}.up_thresh / up_flip).
        """
        if not self.binary:
            raise ValueError("folded parameters exist for the binary student only")
        a, P = self.arch, self.op_params(op)
        bw, hw = a.channels(op.width)
        f32 = lambda t: t.detach().to(torch.float32).clone()  # noqa: E731
        out = {}
        s, b = _fold_bn(P.stem_bn)
        out["stem.scale"], out["stem.shift"], out["stem.prelu"] = f32(s), f32(b), f32(P.stem_prelu)
        for blk in op.blocks:
            Pb = P.blocks[str(blk)]
            A, Wu, Wd = self.mem[blk][:, :bw], self.up[blk][:hw, :bw], self.down[blk][:bw, :hw]
            if a.memory_input == "binary":
                out[f"block{blk}.mem_in_thresh"] = f32(Pb.mem_in_thresh)
            out[f"block{blk}.up_in_thresh"] = f32(Pb.up_in_thresh)
            s, b = _fold_bn(Pb.mem_bn)
            out[f"block{blk}.mem_scale"] = f32(A.double().abs().mean(0) * s)
            out[f"block{blk}.mem_shift"] = f32(b)
            out[f"block{blk}.mem_prelu"] = f32(Pb.mem_prelu)
            s, b = _fold_bn(Pb.up_bn)
            out[f"block{blk}.up_scale"] = f32(Wu.double().abs().mean(1) * s)
            out[f"block{blk}.up_shift"] = f32(b)
            s, b = _fold_bn(Pb.down_bn)
            out[f"block{blk}.down_scale"] = f32(Wd.double().abs().mean(1) * s)
            out[f"block{blk}.down_shift"] = f32(b)
        s, b = _fold_bn(P.head_bn)
        out["head.scale"], out["head.shift"] = f32(s), f32(b)
        out["classifier.bias"] = f32(P.cls_bias)
        return out

    @torch.no_grad()
    def forward_folded(self, x: torch.Tensor, op: OperatingPoint, probe: dict | None = None):
        """Eval-mode student: the runtime's exact sequence of float32 operations (module doc).

        probe: optional dict; receives "margin" [N], the smallest |value| any activation sign was
        taken of (values that close to 0 may take the other sign in the runtime, whose stem matmul
        rounds differently) -- the parity test uses it to tell rounding from real mismatches.
        """
        a = self.arch
        bw, hw = a.channels(op.width)
        p = self.folded(op)
        h = torch.matmul(self.stem_input(x), self.stem_weight[:bw].t())
        h = h * p["stem.scale"]
        h = h + p["stem.shift"]
        h = prelu(h, p["stem.prelu"])
        outs = []
        margin = torch.full((x.shape[0],), float("inf"))
        for blk in op.blocks:
            A, Wu, Wd = sign(self.mem[blk][:, :bw]), sign(self.up[blk][:hw, :bw]), sign(self.down[blk][:bw, :hw])
            t_up = p[f"block{blk}.up_in_thresh"]
            if a.memory_input == "float":
                m = memconv(h, A, a.back, a.ahead)
            else:
                t_mem = p[f"block{blk}.mem_in_thresh"]
                if probe is not None:
                    margin = torch.minimum(margin, (h - t_mem).abs().amin(dim=(1, 2)))
                m = memconv(torch.where(h >= t_mem, 1.0, -1.0), A, a.back, a.ahead)
            u = m * p[f"block{blk}.mem_scale"]
            u = u + p[f"block{blk}.mem_shift"]
            h = h + prelu(u, p[f"block{blk}.mem_prelu"])
            q = 0
            for t in t_up.reshape(-1, bw):           # one sign plane, or P of them: h in P + 1 levels
                if probe is not None:
                    margin = torch.minimum(margin, (h - t).abs().amin(dim=(1, 2)))
                q = q + torch.where(h >= t, 1.0, -1.0)
            z = torch.matmul(q, Wu.t())
            v = z * p[f"block{blk}.up_scale"]
            v = v + p[f"block{blk}.up_shift"]
            y = torch.matmul(sign(v), Wd.t())
            y = y * p[f"block{blk}.down_scale"]
            y = y + p[f"block{blk}.down_shift"]
            h = h + y
            outs.append(h)
        g = h * p["head.scale"]
        g = g + p["head.shift"]
        g = g.mean(dim=1)
        logits = torch.matmul(g, self.cls_weight[:, :bw].t())
        logits = logits + p["classifier.bias"]
        if probe is not None:
            probe["margin"] = margin
        return logits, outs

    # ------------------------------------------------------------------ initialisation
    @torch.no_grad()
    def init_from_teacher(self, teacher: "FSMN", bop: bool = False) -> None:
        """Start the student from a trained teacher: shared weights copied (sign of them with
        bop=True: Bop keeps binary weights only), every operating point's BN affine / PReLU / bias
        copied from the teacher's (channel prefixes), normalisation copied. BN running statistics
        are left to be re-estimated (the binary layers change their scale)."""
        a, ta = self.arch, teacher.arch
        for name in ("n_frames", "n_features", "stem_kernel", "stem_stride", "backbone", "hidden",
                     "n_blocks", "back", "ahead", "n_classes", "input_norm"):
            if getattr(a, name) != getattr(ta, name):
                raise ValueError(f"teacher and student differ in {name}: "
                                 f"{getattr(ta, name)} vs {getattr(a, name)}")
        self.feat_mean.copy_(teacher.feat_mean)
        self.feat_std.copy_(teacher.feat_std)
        if a.input_norm == "pcen":
            self.pcen.copy_(teacher.pcen_params())
        self.stem_weight.copy_(teacher.stem_weight)
        self.cls_weight.copy_(teacher.cls_weight)
        for mine, theirs in zip(self.binary_parameters(), teacher.binary_parameters()):
            mine.copy_(sign(theirs) if bop else theirs.clamp(-1, 1))
        T = teacher.op_params(ta.operating_points[0])

        def copy_bn(dst: nn.BatchNorm1d, src: nn.BatchNorm1d):
            n = dst.num_features
            dst.weight.copy_(src.weight[:n])
            dst.bias.copy_(src.bias[:n])

        for op in a.operating_points:
            P = self.op_params(op)
            bw, _ = a.channels(op.width)
            copy_bn(P.stem_bn, T.stem_bn)
            P.stem_prelu.copy_(T.stem_prelu[:bw])
            for b in op.blocks:
                Pb, Tb = P.blocks[str(b)], T.blocks[str(b)]
                copy_bn(Pb.mem_bn, Tb.mem_bn)
                Pb.mem_prelu.copy_(Tb.mem_prelu[:bw])
                copy_bn(Pb.up_bn, Tb.up_bn)
                copy_bn(Pb.down_bn, Tb.down_bn)
            copy_bn(P.head_bn, T.head_bn)
            P.cls_bias.copy_(T.cls_bias)


@torch.no_grad()
def init_sign_thresholds_(net: FSMN, x: torch.Tensor) -> None:
    """Set every operating point's sign thresholds to the per-channel mean of h at that sign,
    measured on the batch x in training mode (batch statistics), block by block in order."""
    was_training = net.training
    net.train()
    net._init_thresholds = True
    try:
        for op in net.arch.operating_points:
            net(x, op)
    finally:
        net._init_thresholds = False
        net.train(was_training)


def clamp_latent_(net: FSMN) -> None:
    """Keep latent binary weights in [-1, 1] (outside, the clipped STE passes no gradient)."""
    with torch.no_grad():
        for p in net.binary_parameters():
            p.clamp_(-1.0, 1.0)
