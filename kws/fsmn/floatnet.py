"""The same network in float32 (numpy): the baseline the binary runtime is measured against.

Same topology, shapes and weights as kws.fsmn.runtime at an operating point, with every binary
step made float: the memory convolution and both pointwise layers run on float activations with
the model's +-1 weights as float32; the up layer's folded threshold becomes an affine + PReLU
(z = PReLU((h.W_up - thresh) * s), s = +-1/sqrt(Bw), negative where the bit was flipped), so the
hidden activations keep a unit scale; the per-channel thresholds of the signs of h go with the
signs. Everything else (normalisation, stem, per-point affine/PReLU
parameters, pooled head, classifier) is the model's own.

It computes what a user would run without binary kernels; its logits are NOT the binary network's
(sign() is gone), which is why it is only used for speed and as the reference of the ONNX export
(kws.fsmn.onnx_export, same parameters, outputs checked against this in tests).

    >>> from kws.fsmn.model import random_model
    >>> m = random_model()
    >>> net = FloatFSMN(m, m.arch.operating_point(0.5, 4))
    >>> net.logits(np.zeros((m.arch.n_frames, m.arch.n_features), np.float32)).shape
    (12,)
"""

from __future__ import annotations

import numpy as np

from kws.fsmn.config import OperatingPoint
from kws.fsmn.model import Model
from kws.fsmn.pcen import apply as apply_pcen

UP_SLOPE = 0.25       # PReLU slope standing in for the sign after the up projection


def _pm1(packed: np.ndarray, rows: int, k: int) -> np.ndarray:
    """Rows x k float32 +-1 matrix from packed bits (prefix of rows and bits)."""
    from kws import _kernels as K
    return K.unpack(np.ascontiguousarray(packed[:rows]), k).astype(np.float32)


def float_params(model: Model, op: OperatingPoint) -> dict:
    """Every float32 parameter of the float network at `op` (shared by numpy and ONNX)."""
    a, t = model.arch, model.tensors
    if op not in a.operating_points:
        raise ValueError(f"operating point {op.name} is not in this model")
    bw, hw = a.channels(op.width)
    p = model.op_tensors(op)
    blocks = []
    for b in op.blocks:
        s = np.where(p[f"block{b}.up_flip"] != 0, -1.0, 1.0).astype(np.float32) / np.float32(np.sqrt(bw))
        blocks.append(dict(
            taps=_pm1(t[f"block{b}.mem"], a.taps, bw),                    # [L, Bw]
            mem=(p[f"block{b}.mem_scale"], p[f"block{b}.mem_shift"], p[f"block{b}.mem_prelu"]),
            up=_pm1(t[f"block{b}.up"], hw, bw),                           # [Hw, Bw]
            up_affine=(s, (-p[f"block{b}.up_thresh"].astype(np.float32) * s).astype(np.float32),
                       np.full(hw, UP_SLOPE, np.float32)),
            down=_pm1(t[f"block{b}.down"], bw, hw),                       # [Bw, Hw]
            down_affine=(p[f"block{b}.down_scale"], p[f"block{b}.down_shift"]),
        ))
    return dict(mean=t["frontend.mean"], std=t["frontend.std"], pcen=t.get("frontend.pcen"),
                stem=np.ascontiguousarray(t["stem.weight"][:bw]),          # [Bw, stem_inputs]
                stem_affine=(p["stem.scale"], p["stem.shift"], p["stem.prelu"]),
                blocks=blocks, head=(p["head.scale"], p["head.shift"]),
                cls=np.ascontiguousarray(t["classifier.weight"][:, :bw]), bias=p["classifier.bias"])


class FloatFSMN:
    """The float32 network of a Model at one operating point, in numpy (preallocated buffers)."""

    def __init__(self, model: Model, op: OperatingPoint):
        a = self.arch = model.arch
        self.op = op
        self.params = P = float_params(model, op)
        bw, hw = a.channels(op.width)
        self.t = a.stem_frames
        self.stem_wt = np.ascontiguousarray(P["stem"].T)
        self.blocks = [dict(blk, up_t=np.ascontiguousarray(blk["up"].T),
                            down_t=np.ascontiguousarray(blk["down"].T)) for blk in P["blocks"]]
        self.buf_h = np.empty((self.t, bw), np.float32)
        self.buf_z = np.empty((self.t, hw), np.float32)
        self.buf_y = np.empty((self.t, bw), np.float32)
        self.buf_m = np.empty((self.t, bw), np.float32)

    @staticmethod
    def _affine_prelu(x, scale, shift, slope):
        x *= scale
        x += shift
        np.copyto(x, np.where(x < 0, x * slope, x))

    def logits(self, features: np.ndarray) -> np.ndarray:
        a, P = self.arch, self.params
        x = features.astype(np.float32, copy=False)
        if P["pcen"] is not None:
            x = apply_pcen(x, P["pcen"])
        x = (x - P["mean"]) / P["std"]
        win = np.lib.stride_tricks.sliding_window_view(x, a.stem_kernel, axis=0)[:: a.stem_stride]
        stacked = np.ascontiguousarray(win[: self.t].transpose(0, 2, 1)).reshape(self.t, a.stem_inputs)
        h = np.matmul(stacked, self.stem_wt, out=self.buf_h)
        self._affine_prelu(h, *P["stem_affine"])
        for blk in self.blocks:
            m = self.buf_m
            m[:] = 0
            for i in range(-a.back, a.ahead + 1):       # depthwise conv over time, zero padding
                lo, hi = max(0, -i), min(self.t, self.t - i)
                m[lo:hi] += h[lo + i:hi + i] * blk["taps"][i + a.back]
            self._affine_prelu(m, *blk["mem"])
            h += m
            z = np.matmul(h, blk["up_t"], out=self.buf_z)
            self._affine_prelu(z, *blk["up_affine"])
            y = np.matmul(z, blk["down_t"], out=self.buf_y)
            y *= blk["down_affine"][0]
            y += blk["down_affine"][1]
            h += y
        g = (h * P["head"][0] + P["head"][1]).mean(axis=0)
        return P["cls"] @ g + P["bias"]
