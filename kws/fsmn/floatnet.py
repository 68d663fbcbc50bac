"""The same network in float32 numpy (the baseline the binary runtime is compared with).

Same topology and shapes as kws.fsmn.runtime at an operating point: stem, blocks with a float
depthwise memory convolution and float pointwise layers (PReLU where the binary network has a
sign), pooled head and classifier; weights are random (only speed is measured with it).
"""

from __future__ import annotations

import numpy as np

from kws.fsmn.config import ArchConfig, OperatingPoint


class FloatFSMN:
    def __init__(self, arch: ArchConfig, op: OperatingPoint, seed: int = 0):
        rng = np.random.default_rng(seed)
        b, h = arch.channels(op.width)
        f32 = lambda *s: (rng.standard_normal(s) / np.sqrt(s[-1])).astype(np.float32)
        self.arch, self.t = arch, arch.stem_frames
        self.mean, self.std = np.zeros(arch.n_features, np.float32), np.ones(arch.n_features, np.float32)
        self.stem_wt = np.ascontiguousarray(f32(b, arch.stem_inputs).T)
        self.vec = lambda n: rng.uniform(0.5, 1.5, n).astype(np.float32)
        self.stem = (self.vec(b), self.vec(b), self.vec(b))
        self.blocks = [dict(taps=f32(arch.taps, b), mem=(self.vec(b), self.vec(b), self.vec(b)),
                            up_t=np.ascontiguousarray(f32(h, b).T), up=(self.vec(h), self.vec(h), self.vec(h)),
                            down_t=np.ascontiguousarray(f32(b, h).T), down=(self.vec(b), self.vec(b)))
                       for _ in op.blocks]
        self.cls = f32(arch.n_classes, b)
        self.bias = np.zeros(arch.n_classes, np.float32)
        self.buf_h = np.empty((self.t, b), np.float32)
        self.buf_z = np.empty((self.t, h), np.float32)
        self.buf_y = np.empty((self.t, b), np.float32)
        self.buf_m = np.empty((self.t, b), np.float32)

    @staticmethod
    def _affine_prelu(x, scale, shift, slope):
        x *= scale
        x += shift
        np.copyto(x, np.where(x < 0, x * slope, x))

    def logits(self, features: np.ndarray) -> np.ndarray:
        a = self.arch
        x = (features - self.mean) / self.std
        win = np.lib.stride_tricks.sliding_window_view(x, a.stem_kernel, axis=0)[:: a.stem_stride]
        stacked = np.ascontiguousarray(win.transpose(0, 2, 1)).reshape(self.t, a.stem_inputs)
        h = np.matmul(stacked, self.stem_wt, out=self.buf_h)
        self._affine_prelu(h, *self.stem)
        for blk in self.blocks:
            m = self.buf_m
            m[:] = 0
            for i in range(-a.back, a.ahead + 1):       # depthwise conv over time, zero padding
                lo, hi = max(0, -i), min(self.t, self.t - i)
                m[lo:hi] += h[lo + i:hi + i] * blk["taps"][i + a.back]
            self._affine_prelu(m, *blk["mem"])
            h += m
            z = np.matmul(h, blk["up_t"], out=self.buf_z)
            self._affine_prelu(z, *blk["up"])
            y = np.matmul(z, blk["down_t"], out=self.buf_y)
            y *= blk["down"][0]
            y += blk["down"][1]
            h += y
        g = h.mean(axis=0)
        return self.cls @ g + self.bias
