"""The binary FSMN on the kernels: features [T, F] -> class logits, at any operating point.

The math is written out in kws/fsmn/config.py. Binary layers never leave bits between the up and
the down projection (bgemm_threshold hands packed bits to bgemm_scale); the residual stream h
stays float32 because the memory and pointwise outputs add into it. Switching the operating point
selects prefix views of the shared packed weights and that point's own folded parameters: nothing
is copied or reloaded.
"""

from __future__ import annotations

import numpy as np

from kws import _kernels as K
from kws.fsmn.config import OperatingPoint
from kws.fsmn.model import Model


class _Plan:
    """Views and parameters of one operating point, plus its scratch buffers."""

    def __init__(self, model: Model, op: OperatingPoint):
        arch, t = model.arch, model.tensors
        self.op = op
        self.bw, self.hw = arch.channels(op.width)
        p = model.op_tensors(op)
        self.stem_wt = np.ascontiguousarray(t["stem.weight"][: self.bw].T)     # [stem_inputs, Bw]
        self.blocks = []
        for b in op.blocks:
            if arch.memory_input == "float":     # the memory conv reads float h: +-1 taps as floats
                memory = dict(mem_taps=K.unpack(t[f"block{b}.mem"], self.bw).astype(np.float32))
            else:
                memory = dict(mem_in_thresh=p[f"block{b}.mem_in_thresh"])
            self.blocks.append(dict(
                **memory, up_in_thresh=p[f"block{b}.up_in_thresh"],
                mem=t[f"block{b}.mem"],
                up=t[f"block{b}.up"][: self.hw],                  # view: first Hw rows
                down=t[f"block{b}.down"][: self.bw],              # view: first Bw rows
                mem_scale=p[f"block{b}.mem_scale"], mem_shift=p[f"block{b}.mem_shift"],
                mem_prelu=p[f"block{b}.mem_prelu"],
                up_thresh=p[f"block{b}.up_thresh"], up_flip=p[f"block{b}.up_flip"],
                down_scale=p[f"block{b}.down_scale"], down_shift=p[f"block{b}.down_shift"],
            ))
        args = (arch.stem_frames, self.bw, self.hw, arch.back, arch.ahead)
        stem = (p["stem.scale"], p["stem.shift"], p["stem.prelu"])
        head = (p["head.scale"], p["head.shift"])
        # stem affine + PReLU, every block, pooled head: one C call, GIL released
        self.body = K.BlockStack(self.blocks, *args, stem=stem, head=head)
        # the same pieces one at a time, for tracing the residual stream in tests
        self.stem_only = K.BlockStack([], *args, stem=stem)
        self.per_block = [K.BlockStack([blk], *args) for blk in self.blocks]
        self.head_only = K.BlockStack([], *args, head=head)
        self.cls_w = np.ascontiguousarray(t["classifier.weight"][:, : self.bw])  # [C, Bw]
        self.cls_b = p["classifier.bias"]
        self.h = np.empty((arch.stem_frames, self.bw), np.float32)


class BinaryFSMN:
    """Run a Model on the binary kernels.

    Example:
        >>> from kws.fsmn.model import random_model
        >>> net = BinaryFSMN(random_model())
        >>> x = np.zeros((net.arch.n_frames, net.arch.n_features), np.float32)
        >>> net.logits(x, net.arch.operating_point(0.5, 4)).shape
        (12,)
    """

    def __init__(self, model: Model):
        from threadpoolctl import ThreadpoolController
        # BLAS runs single-threaded during our calls: the float layers are too small to gain
        # from threads, whose spinning between inferences costs most of a core.  (Only limited
        # per call when BLAS is multi-threaded: limiting costs ~20 us.)
        blas = ThreadpoolController().select(user_api="blas")
        self._blas = blas if any(i["num_threads"] > 1 for i in blas.info()) else None
        self.model = model
        self.arch = model.arch
        self._mean = model.tensors["frontend.mean"]
        self._std = model.tensors["frontend.std"]
        self._plans: dict[OperatingPoint, _Plan] = {}
        self._stacked = np.empty((self.arch.stem_frames, self.arch.stem_inputs), np.float32)

    def plan(self, op: OperatingPoint) -> _Plan:
        plan = self._plans.get(op)
        if plan is None:
            if op not in self.arch.operating_points:
                raise ValueError(f"operating point {op.name} is not in this model: "
                                 f"{', '.join(o.name for o in self.arch.operating_points)}")
            plan = self._plans[op] = _Plan(self.model, op)
        return plan

    def stem_input(self, features: np.ndarray) -> np.ndarray:
        """Normalised features stacked into stem windows: [T', stem_kernel * F]."""
        a = self.arch
        if features.shape != (a.n_frames, a.n_features):
            raise ValueError(f"features must be [{a.n_frames}, {a.n_features}], got {features.shape}")
        x = (features.astype(np.float32, copy=False) - self._mean) / self._std
        out, f, n = self._stacked, a.n_features, a.stem_frames
        for j in range(a.stem_kernel):      # window frame j of every stem frame: one strided copy
            out[:, j * f:(j + 1) * f] = x[j: j + a.stem_stride * (n - 1) + 1: a.stem_stride]
        return out

    def logits(self, features: np.ndarray, op: OperatingPoint, trace: list | None = None) -> np.ndarray:
        """Class logits float32 [C] for one window of features [n_frames, n_features].

        trace: if a list, gets a copy of the residual stream h after each block (for tests).
        """
        pl = self.plan(op)
        if self._blas is None:
            return self._logits(features, pl, trace)
        with self._blas.limit(limits=1):
            return self._logits(features, pl, trace)

    def _logits(self, features, pl, trace):
        h = np.matmul(self.stem_input(features), pl.stem_wt, out=pl.h)
        if trace is None:
            g = pl.body.run(h)
        else:
            pl.stem_only.run(h)
            for one in pl.per_block:
                trace.append(one.run(h).copy())
            g = pl.head_only.run(h)
        return pl.cls_w @ g + pl.cls_b

    def scores(self, features: np.ndarray, op: OperatingPoint) -> np.ndarray:
        """Softmax of the logits: class probabilities float32 [C]."""
        return softmax(self.logits(features, op))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
