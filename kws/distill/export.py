"""Student network -> .kws model: packed binary weights, folded per-operating-point parameters.

The per-channel scales, BatchNorms and the up projection's sign fold as described in
kws/fsmn/config.py. The integer threshold and flip of the up projection are not derived by algebra
(a division that may round either way) but by evaluating, in float32, the very expression the
eval-mode student computes -- ``sign(z * up_scale + up_shift)`` -- on every integer ``z`` in
``[-k, k]`` (k = backbone channels at that width times the arch's up_planes, the range of the dot
product) and reading off
where it changes; the result is checked against all 2k+1 values, so the runtime's bits equal the
student's bits for every possible dot product.
"""

from __future__ import annotations

import numpy as np

from kws.errors import KwsError


def threshold_from_affine(scale: np.ndarray, shift: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer thresholds/flips equal to ``z*scale + shift >= 0`` (float32) for every int z in [-k, k].

    Returns (thresh int32 [n], flip uint8 [n]) with
    ``((z >= thresh) XOR flip) == (float32(z) * scale + shift >= 0)`` for all such z.

    >>> t, f = threshold_from_affine(np.float32([0.5, -2.0]), np.float32([1.0, 3.0]), 4)
    >>> t.tolist(), f.tolist()       # z >= -2;  not (z >= 2), i.e. z <= 1
    ([-2, 2], [0, 1])
    """
    scale = np.asarray(scale, np.float32)
    shift = np.asarray(shift, np.float32)
    if scale.shape != shift.shape or scale.ndim != 1:
        raise ValueError("scale and shift must be 1-D of the same length")
    if not (np.isfinite(scale).all() and np.isfinite(shift).all()):
        raise KwsError("export: non-finite folded up-projection scale/shift (diverged training?)")
    z = np.arange(-k, k + 1, dtype=np.int64)
    zf = z.astype(np.float32)
    v = zf[:, None] * scale[None, :]          # float32 multiply, then float32 add: the student's order
    v = v + shift[None, :]
    on = v >= 0                               # [2k+1, n]
    n = scale.shape[0]
    thresh = np.empty(n, np.int64)
    flip = np.zeros(n, np.uint8)
    for j in range(n):
        col = on[:, j]
        d = np.diff(col.astype(np.int8))
        if (d >= 0).all():                    # off ... off on ... on: z >= first "on"
            idx = np.flatnonzero(col)
            thresh[j] = z[idx[0]] if idx.size else k + 1
        elif (d <= 0).all():                  # on ... on off ... off: not (z >= first "off")
            idx = np.flatnonzero(~col)
            thresh[j] = z[idx[0]]
            flip[j] = 1
        else:                                 # impossible for finite IEEE float32 (monotone ops)
            raise KwsError(f"export: up projection channel {j} is not monotone in z")
    got = (z[:, None] >= thresh[None, :]) ^ flip.astype(bool)[None, :]
    if not np.array_equal(got, on):
        raise KwsError("export: integer thresholds do not reproduce the float32 signs")
    return thresh.astype(np.int32), flip


def export_model(net, frontend, labels, provenance: dict | None = None):
    """Build a kws.fsmn.model.Model from a binary student `net` (kws.distill.modules.FSMN)."""
    import torch

    from kws import _kernels as K
    from kws.fsmn.model import Model, op_prefix

    if not getattr(net, "binary", False):
        raise KwsError("export needs the binary student, not the float teacher")
    arch = net.arch
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            np32 = lambda t: np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))  # noqa: E731
            sgn = lambda t: np.where(t.detach().cpu().numpy() >= 0, 1.0, -1.0).astype(np.float32)  # noqa: E731
            t = {
                "frontend.mean": np32(net.feat_mean),
                "frontend.std": np32(net.feat_std),
                "stem.weight": np32(net.stem_weight),
                "classifier.weight": np32(net.cls_weight),
            }
            if arch.input_norm == "pcen":
                t["frontend.pcen"] = np32(net.pcen_params())
            for b in range(arch.n_blocks):
                t[f"block{b}.mem"] = K.pack(sgn(net.mem[b]))       # [L, B] taps past -> future
                t[f"block{b}.up"] = K.pack(sgn(net.up[b]))         # [H, B]
                t[f"block{b}.down"] = K.pack(sgn(net.down[b]))     # [B, H]
            for op in arch.operating_points:
                p = op_prefix(op)
                bw, _ = arch.channels(op.width)
                f = {k: v.cpu().numpy() for k, v in net.folded(op).items()}
                for blk in op.blocks:
                    th, fl = threshold_from_affine(f.pop(f"block{blk}.up_scale"),
                                                   f.pop(f"block{blk}.up_shift"), bw * arch.up_planes)
                    t[f"{p}block{blk}.up_thresh"] = th
                    t[f"{p}block{blk}.up_flip"] = fl
                for k, v in f.items():
                    t[p + k] = np.ascontiguousarray(v, dtype=np.float32)
    finally:
        net.train(was_training)
    return Model(arch=arch, frontend=frontend, labels=list(labels), tensors=t,
                 provenance=dict(provenance or {}))
