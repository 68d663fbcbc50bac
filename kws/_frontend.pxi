# Included by _kernels.pyx: the frontend's per-frame math in C (kws/csrc/frontend.c); kws/frontend.py
# builds it from a model file's matrices and feeds it frames.

cdef extern from "frontend.h" nogil:
    ctypedef struct kws_frontend:
        pass
    kws_frontend *kws_frontend_new(size_t n_fft, size_t n_mels, size_t n_out, const double *window,
                                   const int32_t *band_first, const int32_t *band_len,
                                   const double *band_weight, const double *dct)
    void kws_frontend_free(kws_frontend *fe)
    int kws_frontend_run(const kws_frontend *fe, const double *x, size_t hop, size_t n_frames,
                         float *out, size_t ldo)


cdef class FrontendCore:
    """FrontendCore(n_fft, window, band_first, band_len, band_weight, dct=None).

    window float64 [n_fft]; band_first, band_len int32 [n_mels] (band b covers FFT bins
    band_first[b] .. band_first[b] + band_len[b] - 1, all < n_fft // 2 + 1); band_weight float64
    [sum(band_len)] (the bands' weights, band after band); dct None or float64 [n_out, n_mels].
    `run(samples, offset, hop, n_frames, out)` writes frame f = samples[offset + f*hop :
    offset + f*hop + n_fft] as row f of out (float32 [>= n_frames, n_out], C-contiguous), with
    the GIL released.  Every frame is computed alone by the same code: results never depend on
    the number of frames per call.  Thread-safe.
    """
    cdef kws_frontend *fe
    cdef readonly size_t n_fft, n_mels, n_out

    def __cinit__(self):
        self.fe = NULL

    def __init__(self, size_t n_fft, window, band_first, band_len, band_weight, dct=None):
        if n_fft < 8 or n_fft > 1 << 20:
            raise ValueError(f"n_fft must be in [8, 2**20], got {n_fft}")
        cdef const double[::1] wv = _vector(window, np.float64, n_fft, "window")
        first = np.ascontiguousarray(band_first, dtype=np.int32)
        length = np.ascontiguousarray(band_len, dtype=np.int32)
        if first.ndim != 1 or first.shape != length.shape or first.shape[0] == 0:
            raise ValueError("band_first and band_len must be 1-D int32 arrays of the same non-zero length")
        n_bins = n_fft // 2 + 1
        if (first < 0).any() or (length < 0).any() or (first.astype(np.int64) + length > n_bins).any():
            raise ValueError(f"mel bands must lie within the {n_bins} FFT bins")
        cdef size_t n_mels = first.shape[0]
        cdef const double[::1] bw = _vector(band_weight, np.float64, int(length.sum()), "band_weight")
        cdef const int32_t[::1] fv = first
        cdef const int32_t[::1] lv = length
        cdef const double[:, ::1] dv
        cdef const double *dp = NULL
        cdef size_t n_out = n_mels
        if dct is not None:
            dct = np.asarray(dct)
            if dct.dtype != np.float64 or dct.ndim != 2 or dct.shape[1] != n_mels or dct.shape[0] == 0:
                raise ValueError(f"dct must be float64 [n_out, {n_mels}], got {dct.dtype} {dct.shape}")
            dv = np.ascontiguousarray(dct)
            dp = &dv[0, 0]
            n_out = dct.shape[0]
        cdef const double *bp = &bw[0] if bw.shape[0] else NULL
        self.fe = kws_frontend_new(n_fft, n_mels, n_out, &wv[0], &fv[0], &lv[0], bp, dp)
        if self.fe == NULL:
            raise MemoryError("frontend: out of memory for its tables")
        self.n_fft, self.n_mels, self.n_out = n_fft, n_mels, n_out

    def __dealloc__(self):
        kws_frontend_free(self.fe)

    def run(self, samples, size_t offset, size_t hop, size_t n_frames, out):
        cdef const double[::1] x = samples
        cdef float[:, ::1] o = out
        if hop == 0:
            raise ValueError("hop must be > 0")
        if n_frames == 0:
            return
        if <size_t>o.shape[0] < n_frames or <size_t>o.shape[1] != self.n_out:
            raise ValueError(f"out must be float32 [>= {n_frames}, {self.n_out}], got {out.shape}")
        if offset + (n_frames - 1) * hop + self.n_fft > <size_t>x.shape[0]:
            raise ValueError(f"{n_frames} frames from sample {offset} need "
                             f"{offset + (n_frames - 1) * hop + self.n_fft} samples, got {x.shape[0]}")
        cdef int rc
        with nogil:
            rc = kws_frontend_run(self.fe, &x[offset], hop, n_frames, &o[0, 0], self.n_out)
        if rc:
            raise MemoryError("frontend: out of memory for scratch buffers")
