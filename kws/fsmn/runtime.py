"""The binary FSMN on the kernels: features [T, F] -> class logits, at any operating point.

The math is written out in kws/fsmn/config.py and runs in kws/csrc/fsmn.c: one inference is one
C call (K.Network). Binary layers never leave bits between the up and the down projection
(bgemm_threshold hands packed bits to bgemm_scale); the residual stream h stays float32 because
the memory and pointwise outputs add into it. Switching the operating point
selects prefix views of the shared packed weights and that point's own folded parameters: nothing
is copied or reloaded.
"""

from __future__ import annotations

import numpy as np

from kws import _kernels as K
from kws.fsmn.config import OperatingPoint
from kws.fsmn.model import Model


class _Plan:
    """Views and parameters of one operating point, validated once into a K.Network."""

    def __init__(self, model: Model, op: OperatingPoint):
        arch, t = model.arch, model.tensors
        self.op = op
        self.bw, self.hw = arch.channels(op.width)
        p = model.op_tensors(op)
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
        self.body = K.BlockStack(self.blocks, *args, stem=(p["stem.scale"], p["stem.shift"], p["stem.prelu"]),
                                 head=(p["head.scale"], p["head.shift"]))
        # normalisation, stem, every block, head and classifier: one C call, GIL released
        self.net = K.Network(self.body, arch.n_frames, arch.n_features, arch.stem_kernel,
                             arch.stem_stride, t["frontend.mean"], t["frontend.std"],
                             t["stem.weight"][: self.bw].T, t["classifier.weight"][:, : self.bw],
                             p["classifier.bias"], pcen=t.get("frontend.pcen"))


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
        self.model = model
        self.arch = model.arch
        self._plans: dict[OperatingPoint, _Plan] = {}

    def plan(self, op: OperatingPoint) -> _Plan:
        plan = self._plans.get(op)
        if plan is None:
            if op not in self.arch.operating_points:
                raise ValueError(f"operating point {op.name} is not in this model: "
                                 f"{', '.join(o.name for o in self.arch.operating_points)}")
            plan = self._plans[op] = _Plan(self.model, op)
        return plan

    def logits(self, features: np.ndarray, op: OperatingPoint, trace: list | None = None) -> np.ndarray:
        """Class logits float32 [C] for one window of features [n_frames, n_features]: one C call
        (normalisation, stem, blocks, head, classifier), GIL released.

        trace: if a list, gets the residual stream h after each block (for tests).
        """
        pl = self.plan(op)
        a = self.arch
        if getattr(features, "shape", None) != (a.n_frames, a.n_features):
            raise ValueError(f"features must be [{a.n_frames}, {a.n_features}], got "
                             f"{getattr(features, 'shape', type(features).__name__)}")
        x = np.ascontiguousarray(features, dtype=np.float32)
        if trace is None:
            return pl.net.logits(x)
        logits, h = pl.net.trace(x)
        trace.extend(h[1:])
        return logits

    def scores(self, features: np.ndarray, op: OperatingPoint) -> np.ndarray:
        """Softmax of the logits: class probabilities float32 [C]."""
        return softmax(self.logits(features, op))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
