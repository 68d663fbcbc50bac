# cython: language_level=3, boundscheck=False, wraparound=False
"""Bit-packed binary kernels (see kws/csrc/kernels.h for the bit convention).

A row of K values in {+1, -1} is ceil(K/64) uint64 words, value j at bit j%64 of word j//64, bit 1
meaning -1. Every function checks its arguments and raises ValueError with a clear message; the
GIL is released around every kernel call. Bits beyond k are ignored, so ``w[:n2]`` and
``a[:, :words(k2)]`` are valid narrower operands (views, no copies).

Example:
    >>> import numpy as np
    >>> from kws import _kernels as K
    >>> a = K.pack(np.array([[1., -1., 1.]], np.float32))
    >>> w = K.pack(np.array([[1., 1., 1.], [-1., -1., 1.]], np.float32))
    >>> K.bgemm(a, w, 3).tolist()
    [[1, 1]]
"""

import os

import numpy as np

from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_STRIDES, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from libc.stdint cimport int8_t, int32_t, uint8_t, uint64_t


cdef extern from "kernels.h" nogil:
    int kws_isa_supported(const char *name)
    int kws_select(const char *name)
    const char *kws_best_isa()
    double kws_isa_probe_ns(const char *name)
    ctypedef struct kws_isa:
        const char *name
    const kws_isa *kws_current()
    void kws_bgemm(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                   size_t m, size_t n, size_t k, int32_t *out, size_t ldo)
    int kws_bgemm_scale(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                        size_t m, size_t n, size_t k, const float *scale, const float *bias,
                        float *out, size_t ldo)
    int kws_bgemm_scale_add(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                            size_t m, size_t n, size_t k, const float *scale, const float *bias,
                            float *out, size_t ldo)
    int kws_bgemm_threshold(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                            size_t m, size_t n, size_t k, const int32_t *thresh,
                            const uint8_t *flip, uint64_t *out, size_t ldo)
    size_t kws_pack_f32(const float *x, size_t ldx, size_t m, size_t k, const float *thresh,
                        uint64_t *out, size_t ldo)
    size_t kws_pack_f64(const double *x, size_t ldx, size_t m, size_t k, uint64_t *out, size_t ldo)
    void kws_pack_i8(const int8_t *x, size_t ldx, size_t m, size_t k, uint64_t *out, size_t ldo)
    void kws_unpack_i8(const uint64_t *p, size_t ldp, size_t m, size_t k, int8_t *out, size_t ldo)
    void kws_bmemconv(const uint64_t *h, size_t ldh, size_t t, const uint64_t *taps, size_t ldt,
                      size_t back, size_t ahead, size_t c, int8_t *out, size_t ldo)


ISAS = ("scalar", "avx2", "avx512", "neon")


def available():
    """ISAs compiled into this build and supported by this CPU, best last."""
    return [n for n in ISAS if kws_isa_supported(n.encode())]


def isa():
    """Name of the ISA every kernel call uses now."""
    return kws_current().name.decode()


def set_isa(name):
    """Force one ISA for this process (tests, benchmarks). Not thread-safe against running calls."""
    if name not in ISAS:
        raise ValueError(f"unknown ISA {name!r}: choose one of {', '.join(ISAS)}")
    if kws_select(name.encode()) != 0:
        raise ValueError(f"ISA {name!r} is not supported on this CPU/build "
                         f"(available: {', '.join(available())})")


def info():
    """Which kernel runs and why: {'isa': in use, 'available': [...], 'best': the automatic
    choice, 'forced': KWS_KERNEL or None, 'probe_us': {isa: microseconds of the dispatch
    measurement} (empty when only one SIMD kernel could run), 'reason': one sentence}."""
    best = kws_best_isa().decode()
    probe = {n: us for n in available() if (us := kws_isa_probe_ns(n.encode()) / 1e3) > 0}
    forced = os.environ.get("KWS_KERNEL") or None
    if forced:
        reason = f"forced by KWS_KERNEL={forced}"
    elif probe:
        reason = (f"fastest of {', '.join(sorted(probe))} on this CPU, measured at import on the "
                  f"BiFSMN layer shapes: " + ", ".join(f"{n} {us:.1f} us" for n, us in sorted(probe.items(), key=lambda kv: kv[1])))
    else:
        reason = (f"the only SIMD kernel this CPU supports" if best != "scalar"
                  else "no SIMD kernel is supported on this CPU/build")
    return {"isa": isa(), "available": available(), "best": best, "forced": forced,
            "probe_us": probe, "reason": reason}


def words(k):
    """uint64 words per packed row of k values."""
    return (int(k) + 63) // 64


# ---------------------------------------------------------------------------- argument checks
cdef object _packed(object p, str name):
    if not isinstance(p, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of packed bits (uint64), got {type(p).__name__}")
    if p.dtype != np.uint64:
        raise ValueError(f"{name} must be uint64 packed bits (see kws._kernels.pack), got dtype {p.dtype}")
    if p.ndim != 2:
        raise ValueError(f"{name} must be 2-D [rows, words], got shape {p.shape}")
    if p.size and (p.shape[1] > 1 and p.strides[1] != 8 or
                   p.shape[0] > 1 and (p.strides[0] < 0 or p.strides[0] % 8)):
        raise ValueError(f"{name}: each row must be contiguous words with a positive row stride "
                         f"(strides {p.strides}); use np.ascontiguousarray")
    return p


cdef size_t _ld(object p):
    return <size_t>(p.strides[0] // 8) if p.shape[0] > 1 else <size_t>p.shape[1]


cdef object _nonempty(object p):
    """Operands with zero words per row (only valid with k == 0) get one ignored word."""
    return p if p.shape[1] else np.zeros((p.shape[0], 1), np.uint64)


cdef object _output(object out, tuple shape, object dtype):
    """A fresh result array, or the caller's preallocated one (reused buffers avoid page faults
    on every call: a 200 kB result costs more to fault in than to compute)."""
    if out is None:
        return np.empty(shape, dtype)
    if not isinstance(out, np.ndarray) or out.dtype != dtype or out.shape != shape \
            or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"out must be a writeable C-contiguous {np.dtype(dtype).name} array of "
                         f"shape {shape}")
    return out


cdef size_t _check_k(object k, object a, object w) except? 0:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer number of values, got {k!r}")
    k = int(k)
    limit = 64 * min(a.shape[1], w.shape[1])
    if k < 0 or k > limit:
        raise ValueError(f"k={k} out of range: operands hold {a.shape[1]} and {w.shape[1]} words "
                         f"per row, so 0 <= k <= {limit}")
    return <size_t>k


cdef object _vector(object v, object dtype, size_t n, str name):
    """v as a contiguous 1-D array of n elements of dtype, or a ValueError naming it."""
    v = np.asarray(v)
    if v.dtype != dtype or v.ndim != 1 or <size_t>v.shape[0] != n:
        raise ValueError(f"{name} must be {np.dtype(dtype).name} of shape ({n},), got {v.dtype} {v.shape}")
    return np.ascontiguousarray(v)


# ---------------------------------------------------------------------------- fast operand views
# The GEMM entry points run once per layer per frame block, where a microsecond of argument
# handling is a few percent of the kernel: they read pointers, shapes and strides through the
# buffer protocol (one C call per array) instead of typed memoryviews and attribute lookups.
# The checks and messages are those of _packed / _output above.  The buffer is released at once:
# the caller keeps a reference to the array for the whole call, which keeps its memory alive.
cdef object _U64 = np.dtype(np.uint64)
cdef object _I32 = np.dtype(np.int32)
cdef object _F32 = np.dtype(np.float32)
cdef object _U8 = np.dtype(np.uint8)
cdef uint64_t _ZERO_WORDS[1]


cdef struct _mat:
    char *ptr
    size_t rows, cols, ld          # ld: row stride in elements


cdef int _operand(object p, str name, _mat *o) except -1:
    cdef Py_buffer buf
    if not isinstance(p, np.ndarray) or (p.dtype is not _U64 and p.dtype != _U64):
        _packed(p, name)               # raises the descriptive error
    PyObject_GetBuffer(p, &buf, PyBUF_STRIDES)
    cdef bint ok = buf.ndim == 2
    if ok:
        o.ptr = <char *>buf.buf
        o.rows = <size_t>buf.shape[0]
        o.cols = <size_t>buf.shape[1]
        ok = (o.rows == 0 or o.cols == 0 or
              not (o.cols > 1 and buf.strides[1] != 8 or
                   o.rows > 1 and (buf.strides[0] < 0 or buf.strides[0] % 8)))
        o.ld = <size_t>(buf.strides[0] // 8) if o.rows > 1 else o.cols
        if o.cols == 0:                # zero words per row (only valid with k == 0)
            o.ptr, o.ld = <char *>_ZERO_WORDS, 0
    PyBuffer_Release(&buf)
    if not ok:
        _packed(p, name)
    return 0


cdef size_t _depth(object k, size_t wa, size_t ww) except? 0:
    if type(k) is int and 0 <= k <= 64 * min(wa, ww):
        return <size_t>k
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer number of values, got {k!r}")
    k = int(k)
    limit = 64 * min(wa, ww)
    if k < 0 or k > limit:
        raise ValueError(f"k={k} out of range: operands hold {wa} and {ww} words "
                         f"per row, so 0 <= k <= {limit}")
    return <size_t>k


cdef object _result(object out, size_t m, size_t cols, object dtype, _mat *o):
    """Like _output, plus the data pointer (row stride = cols)."""
    cdef Py_buffer buf
    if out is None:
        out = np.empty((m, cols), dtype)
    elif not isinstance(out, np.ndarray) or (out.dtype is not dtype and out.dtype != dtype):
        _output(out, (m, cols), dtype)   # raises
    try:
        PyObject_GetBuffer(out, &buf, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS)
    except (BufferError, ValueError):
        _output(out, (m, cols), dtype)   # raises (read-only or not C-contiguous)
        raise
    cdef bint ok = buf.ndim == 2 and <size_t>buf.shape[0] == m and <size_t>buf.shape[1] == cols
    o.ptr = <char *>buf.buf
    PyBuffer_Release(&buf)
    if not ok:
        _output(out, (m, cols), dtype)   # raises (shape)
    return out


cdef object _vec(object v, object dtype, size_t n, str name, void **ptr):
    """Like _vector, plus the data pointer (fast path: a contiguous 1-D array of that dtype)."""
    cdef Py_buffer buf
    if not (isinstance(v, np.ndarray) and v.dtype is dtype):
        v = _vector(v, dtype, n, name)
    PyObject_GetBuffer(v, &buf, PyBUF_STRIDES)
    cdef bint ok = buf.ndim == 1 and <size_t>buf.shape[0] == n and (n < 2 or buf.strides[0] == buf.itemsize)
    ptr[0] = buf.buf
    PyBuffer_Release(&buf)
    if not ok:
        v = _vector(v, dtype, n, name)   # raises, or makes a contiguous copy
        PyObject_GetBuffer(v, &buf, PyBUF_STRIDES)
        ptr[0] = buf.buf
        PyBuffer_Release(&buf)
    return v


# ---------------------------------------------------------------------------- packing
def pack(x, thresh=None):
    """Pack a [M, K] float32/float64/int8 array by sign (x >= 0 -> +1) into uint64 [M, ceil(K/64)].

    thresh: optional float32 [K] per-column thresholds (float32 x only): x[:, j] >= thresh[j] -> +1.
    NaN is rejected (its sign is undefined). Padding bits of the last word are zero.
    """
    if not isinstance(x, np.ndarray):
        raise ValueError(f"pack expects a numpy array, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"pack expects a 2-D [rows, values] array, got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64, np.int8):
        raise ValueError(f"pack expects float32, float64 or int8 values, got dtype {x.dtype}")
    x = np.ascontiguousarray(x)
    cdef size_t m = x.shape[0], k = x.shape[1], kw = words(k), nans = 0
    cdef const float *tp = NULL
    cdef const float[::1] tv
    if thresh is not None:
        if x.dtype != np.float32:
            raise ValueError(f"pack: thresholds need float32 values, got dtype {x.dtype}")
        thresh = _vector(thresh, np.float32, k, "thresh")
        if not np.isfinite(thresh).all():
            raise ValueError("pack: thresholds must be finite")
        if k:
            tv = thresh
            tp = &tv[0]
    out = np.zeros((m, kw), np.uint64)
    if m == 0 or kw == 0:
        return out
    cdef uint64_t[:, ::1] o = out
    cdef const float[:, ::1] xf
    cdef const double[:, ::1] xd
    cdef const int8_t[:, ::1] xi
    if x.dtype == np.float32:
        xf = x
        with nogil:
            nans = kws_pack_f32(&xf[0, 0], k, m, k, tp, &o[0, 0], kw)
    elif x.dtype == np.float64:
        xd = x
        with nogil:
            nans = kws_pack_f64(&xd[0, 0], k, m, k, &o[0, 0], kw)
    else:
        xi = x
        with nogil:
            kws_pack_i8(&xi[0, 0], k, m, k, &o[0, 0], kw)
    if nans:
        raise ValueError(f"pack: input holds {nans} NaN value(s); their sign is undefined")
    return out


def unpack(p, k):
    """Packed uint64 [M, W] -> int8 [M, k] of +1/-1 (first k values of each row)."""
    _packed(p, "p")
    cdef size_t kk = _check_k(k, p, p), m = p.shape[0]
    out = np.empty((m, kk), np.int8)
    if m == 0 or kk == 0:
        return out
    cdef const uint64_t[:, :] pv = p
    cdef int8_t[:, ::1] o = out
    cdef size_t ld = _ld(p)
    with nogil:
        kws_unpack_i8(&pv[0, 0], ld, m, kk, &o[0, 0], kk)
    return out


# ---------------------------------------------------------------------------- binary GEMM
def bgemm(a, w, k, out=None):
    """Exact +-1 dot products of the first k values: int32 [M, N] = k - 2*popcount(a XOR w).

    ``out``: optional preallocated int32 [M, N] result (C-contiguous), returned.
    """
    cdef _mat av, wv, ov
    _operand(a, "a", &av)
    _operand(w, "w", &wv)
    cdef size_t kk = _depth(k, av.cols, wv.cols), m = av.rows, n = wv.rows
    out = _result(out, m, n, _I32, &ov)
    if m == 0 or n == 0:
        return out
    with nogil:
        kws_bgemm(<const uint64_t *>av.ptr, av.ld, <const uint64_t *>wv.ptr, wv.ld, m, n, kk,
                  <int32_t *>ov.ptr, n)
    return out


def bgemm_scale(a, w, k, scale, bias, out=None, accumulate=False):
    """float32 [M, N] = bgemm(a, w, k) * scale[n] + bias[n] (float32 scale/bias of length N).

    accumulate=True adds that into `out` (required then) instead: out += ..., the residual
    connection of an FSMN block, fused into the GEMM's epilogue.
    """
    if accumulate and out is None:
        raise ValueError("bgemm_scale: accumulate=True adds into out: pass out")
    cdef bint acc = bool(accumulate)
    cdef _mat av, wv, ov
    _operand(a, "a", &av)
    _operand(w, "w", &wv)
    cdef size_t kk = _depth(k, av.cols, wv.cols), m = av.rows, n = wv.rows
    cdef void *sp
    cdef void *bp
    scale = _vec(scale, _F32, n, "scale", &sp)
    bias = _vec(bias, _F32, n, "bias", &bp)
    out = _result(out, m, n, _F32, &ov)
    if m == 0 or n == 0:
        return out
    cdef int rc
    with nogil:
        if acc:
            rc = kws_bgemm_scale_add(<const uint64_t *>av.ptr, av.ld, <const uint64_t *>wv.ptr, wv.ld, m, n,
                                     kk, <const float *>sp, <const float *>bp, <float *>ov.ptr, n)
        else:
            rc = kws_bgemm_scale(<const uint64_t *>av.ptr, av.ld, <const uint64_t *>wv.ptr, wv.ld, m, n, kk,
                                 <const float *>sp, <const float *>bp, <float *>ov.ptr, n)
    if rc:
        raise MemoryError("bgemm_scale: out of memory for the scratch buffer")
    return out


def bgemm_threshold(a, w, k, thresh, flip, out=None):
    """Packed uint64 [M, ceil(N/64)]: output n is +1 iff (dot >= thresh[n]) XOR flip[n].

    thresh is int32 [N] (dot products are integers), flip is uint8/bool [N]. The result feeds the
    next binary layer directly (BN + scale + sign folded into the threshold).
    """
    cdef _mat av, wv, ov
    _operand(a, "a", &av)
    _operand(w, "w", &wv)
    cdef size_t kk = _depth(k, av.cols, wv.cols), m = av.rows, n = wv.rows, nw = words(wv.rows)
    cdef void *tp
    cdef void *fp
    thresh = _vec(thresh, _I32, n, "thresh", &tp)
    if not (isinstance(flip, np.ndarray) and flip.dtype is _U8):
        flip = np.asarray(flip)
        if flip.dtype == np.bool_:
            flip = flip.view(np.uint8)
    flip = _vec(flip, _U8, n, "flip", &fp)
    out = _result(out, m, nw, _U64, &ov)
    if m == 0 or n == 0:
        return out
    cdef int rc = 0
    with nogil:
        rc = kws_bgemm_threshold(<const uint64_t *>av.ptr, av.ld, <const uint64_t *>wv.ptr, wv.ld, m, n,
                                 kk, <const int32_t *>tp, <const uint8_t *>fp, <uint64_t *>ov.ptr, nw)
    if rc:
        raise MemoryError("bgemm_threshold: out of memory for the scratch buffer")
    return out


# ---------------------------------------------------------------------------- memory convolution
def bmemconv(h, taps, c, back, ahead, out=None):
    """Binary depthwise temporal convolution over packed channels (FSMN memory block).

    h: packed [T, >= words(c)] frames; taps: packed [back+1+ahead, >= words(c)] per-channel weights.
    Returns int8 [T, c]: out[t, ch] = sum over i in [-back, ahead] with 0 <= t+i < T of
    h[t+i, ch] * taps[i+back, ch] (zero padding outside the sequence).
    """
    _packed(h, "h"); _packed(taps, "taps")
    for name, v in (("c", c), ("back", back), ("ahead", ahead)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    cdef size_t L = back + 1 + ahead
    if L > 127:
        raise ValueError(f"memory convolution with {L} taps: at most 127 are supported (int8 output)")
    if <size_t>taps.shape[0] != L:
        raise ValueError(f"taps must have back+1+ahead = {L} rows, got {taps.shape[0]}")
    cdef size_t cc = _check_k(c, h, taps), t = h.shape[0]
    out = _output(out, (t, cc), np.int8)
    if t == 0 or cc == 0:
        return out
    cdef const uint64_t[:, :] hv = h
    cdef const uint64_t[:, :] tv = taps
    cdef int8_t[:, ::1] o = out
    cdef size_t ldh = _ld(h), ldt = _ld(taps), b = back, a_ = ahead
    with nogil:
        kws_bmemconv(&hv[0, 0], ldh, t, &tv[0, 0], ldt, b, a_, cc, &o[0, 0], cc)
    return out


# ---------------------------------------------------------------------------- import-time selection
def _select_from_env():
    forced = os.environ.get("KWS_KERNEL")
    if not forced:
        kws_current()        # measure and select now, under the GIL (not in a released call)
        return
    if forced not in ISAS:
        raise ImportError(f"KWS_KERNEL={forced!r} is not a kernel: choose one of {', '.join(ISAS)}")
    if kws_select(forced.encode()) != 0:
        raise ImportError(f"KWS_KERNEL={forced!r} is not supported on this CPU/build "
                          f"(available: {', '.join(available())}); unset it to auto-select")


_select_from_env()
include "_fsmn_blocks.pxi"
include "_frontend.pxi"
