"""Per-channel energy normalisation (PCEN) of each window, the network's optional first step.

Arch `input_norm="pcen"` (`kws train --input-norm pcen`): before the usual (x - mean) / std, every
window of log-mel features x [T, F] (dB, kws.frontend) is replaced by

    E[t]  = 10 ** (x[t] / 10)                      the mel power back from dB
    M[0]  = E[0];  M[t] = (1 - s) * M[t-1] + s * E[t]     a first-order smoother over the window
    P[t]  = (E[t] / (eps + M[t]) ** alpha + delta) ** r - delta ** r

per band, with per-band parameters s, alpha, delta, r, eps (the model file's `frontend.pcen`,
float32 [5, F], rows in that order). This is librosa.pcen (Wang et al. 2017, "Trainable frontend
for robust and far-field keyword spotting") of the mel power with b = s, gain = alpha, bias =
delta, power = r, eps, and the smoother started as if the signal had always been at its first
frame (zi = scipy.signal.lfilter_zi([s], [1, s - 1]) * E[0]; librosa's default starts it at 1.0,
which would make the first frames depend on the level), run on each window alone.

Why per window: the Detector scores a 1 s window every hop; a smoother that ran through the
whole stream would give streaming windows a history that training clips never have. Restarted
on each window, the features of a window depend on that window only, so training and streaming
see the same function and the result does not depend on how the audio was chunked.

Why: the dB features shift by the recording gain, so a network normalised with one global mean
and std hears a talker 20 dB quieter than its training clips as a different input (default model
v4.1 loses a quarter of its keyword recall at -20 dB, docs/default-model.md). E / M ** alpha is
unchanged by a gain g up to g ** (1 - alpha): alpha is 1 here (librosa's 0.98 keeps that trace of
the level, a factor 0.87 for 1000x quieter, and costs a log and an exp per value more: with alpha
1 the runtime divides), and the smoother removes a band's steady level (a microphone's colour, a
hum) while onsets stand out. eps is the floor below which nothing is amplified (1e-8: -80 dB in
the features' scale, under the quietest speech a microphone delivers and above digital silence's
-100 dB).

The runtime computes it in C (kws._kernels.pcen, also inside the network's one C call), the
trainer in torch (kws.distill.modules.pcen_torch), the ONNX export with ONNX operators; this
module holds the parameters and the float64 numpy reference the tests hold them to.
"""

from __future__ import annotations

import math

import numpy as np

from kws.errors import KwsError

ROWS = ("smooth", "alpha", "delta", "root", "eps")
LN10_OVER_10 = math.log(10.0) / 10.0
DB_MIN = -200.0         # features below count as this (the frontend's own floor is -100 dB)


def smoothing_coefficient(time_constant_s: float = 0.4, hop_s: float = 0.01) -> float:
    """librosa.pcen's s for a time constant (its formula: the pole that gives that time constant)."""
    t = time_constant_s / hop_s
    return (math.sqrt(1 + 4 * t ** 2) - 1) / (2 * t ** 2)


def default_params(n_features: int, hop_s: float = 0.01) -> np.ndarray:
    """float32 [5, F]: librosa's defaults (time constant 0.4 s, delta 2, r 0.5) but alpha 1, and
    eps 1e-8 for features in dB of full-scale power (see the module doc)."""
    col = [smoothing_coefficient(0.4, hop_s), 1.0, 2.0, 0.5, 1e-8]
    return np.repeat(np.asarray(col, np.float32)[:, None], n_features, axis=1)


def check_params(p, n_features: int) -> np.ndarray:
    """The parameters as float32 [5, F], or KwsError naming what is wrong."""
    p = np.asarray(p)
    if p.dtype != np.float32 or p.shape != (len(ROWS), n_features):
        raise KwsError(f"PCEN parameters must be float32 [{len(ROWS)}, {n_features}], got {p.dtype} {p.shape}")
    if not np.isfinite(p).all():
        raise KwsError("PCEN parameters must be finite")
    s, alpha, delta, r, eps = p
    for name, ok in (("smooth", (s > 0) & (s <= 1)), ("alpha", (alpha >= 0) & (alpha <= 1)),
                     ("delta", (delta >= 1e-6) & (delta <= 1e6)), ("root", (r > 0) & (r <= 1)),
                     ("eps", (eps >= 1e-20) & (eps <= 1e6))):
        if not ok.all():
            raise KwsError(f"PCEN parameter {name} out of range: smooth in (0, 1], alpha in [0, 1], "
                           "delta in [1e-6, 1e6], root in (0, 1], eps in [1e-20, 1e6]")
    return p


def reference(x_db: np.ndarray, params: np.ndarray) -> np.ndarray:
    """float64 PCEN of one window [T, F] or a batch [N, T, F] of dB features (the definition)."""
    x = np.maximum(np.asarray(x_db, np.float64), DB_MIN)
    s, alpha, delta, r, eps = (np.asarray(v, np.float64) for v in params)
    e = np.exp(x * LN10_OVER_10)
    m = np.empty_like(e)
    m[..., 0, :] = e[..., 0, :]
    for t in range(1, e.shape[-2]):
        m[..., t, :] = (1 - s) * m[..., t - 1, :] + s * e[..., t, :]
    return (e / (eps + m) ** alpha + delta) ** r - delta ** r


def apply(x_db: np.ndarray, params: np.ndarray) -> np.ndarray:
    """float32 PCEN of a window [T, F] or a batch [N, T, F], as the runtime computes it (C)."""
    from kws import _kernels as K
    x = np.ascontiguousarray(x_db, dtype=np.float32)
    if x.ndim == 2:
        return K.pcen(x, params)
    return np.stack([K.pcen(w, params) for w in x]) if len(x) else x.copy()
