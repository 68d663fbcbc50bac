# Included by _kernels.pyx: the fused D-FSMN block stack (kws/csrc/fsmn.c).

from libc.stdlib cimport calloc, free

cdef extern from "fsmn.h" nogil:
    ctypedef struct kws_block:
        const float *mem_taps
        const uint64_t *mem
        size_t ldm
        const float *mem_in
        const float *up_in
        const float *mem_scale
        const float *mem_shift
        const float *mem_prelu
        const uint64_t *up
        size_t ldu
        const int32_t *up_thresh
        const uint8_t *up_flip
        const uint64_t *down
        size_t ldd
        const float *down_scale
        const float *down_shift
    int kws_fsmn_blocks(float *h, size_t t, size_t bw, size_t hw, size_t back, size_t ahead,
                        const kws_block *blocks, size_t n)
    void kws_affine_prelu(float *h, size_t t, size_t c, const float *scale, const float *shift,
                          const float *slope)
    void kws_affine_mean(const float *h, size_t t, size_t c, const float *scale, const float *shift,
                         float *g)


cdef const uint64_t *_packed_ptr(object p, size_t rows, size_t bits, str name) except NULL:
    _packed(p, name)
    if <size_t>p.shape[0] != rows or 64 * <size_t>p.shape[1] < bits or rows == 0:
        raise ValueError(f"{name} must be packed [{rows}, >= {words(bits)}], got {p.shape}")
    cdef const uint64_t[:, :] v = p
    return &v[0, 0]


cdef const float *_f32_ptr(object v, size_t n, str name) except NULL:
    v = _vector(v, np.float32, n, name)
    cdef const float[::1] mv = v
    return &mv[0]


cdef class BlockStack:
    """A sequence of binary D-FSMN blocks validated once and run in one C call.

    BlockStack(blocks, t, bw, hw, back, ahead, stem=None, head=None): `blocks` is a list of
    dicts with the keys mem, up_in_thresh, mem_scale, mem_shift, mem_prelu, up, up_thresh, up_flip,
    down, down_scale, down_shift, and either mem_taps (float32 [back+1+ahead, bw] of +-1: the
    memory conv reads float h) or mem_in_thresh (float32 [bw]: it reads sign(h - mem_in_thresh));
    shapes as in kws/fsmn/model.py, packed weights may be prefix views.
    stem = (scale, shift, slope): h = PReLU(h * scale + shift) first; head = (scale, shift):
    return the time mean of h * scale + shift (float32 [bw]) instead of h.
    `run(h)` updates the float32 [t, bw] stream h in place, GIL released.
    """
    cdef const float *stem[3]
    cdef const float *head[2]
    cdef object _g
    cdef kws_block *blocks
    cdef size_t n, t, bw, hw, back, ahead
    cdef list _keep

    def __cinit__(self):
        self.blocks = NULL

    def __init__(self, list blocks, size_t t, size_t bw, size_t hw, size_t back, size_t ahead,
                 stem=None, head=None):
        if t == 0 or bw == 0 or hw == 0:
            raise ValueError("t, bw and hw must be positive")
        if back + 1 + ahead > 127:
            raise ValueError("at most 127 memory taps")
        self.n, self.t, self.bw, self.hw, self.back, self.ahead = len(blocks), t, bw, hw, back, ahead
        self.blocks = <kws_block *>calloc(max(1, self.n), sizeof(kws_block))
        if self.blocks == NULL:
            raise MemoryError()
        self._keep = []
        cdef int j
        self.stem[0] = self.stem[1] = self.stem[2] = NULL
        self.head[0] = self.head[1] = NULL
        if stem is not None:
            vs = [_vector(v, np.float32, bw, "stem") for v in stem]
            self._keep.append(vs)
            for j in range(3):
                self.stem[j] = _f32_ptr(vs[j], bw, "stem")
        if head is not None:
            vh = [_vector(v, np.float32, bw, "head") for v in head]
            self._keep.append(vh)
            for j in range(2):
                self.head[j] = _f32_ptr(vh[j], bw, "head")
        self._g = np.empty(bw, np.float32)
        cdef kws_block *k
        for i, d in enumerate(blocks):
            k = &self.blocks[i]
            float_memory = "mem_taps" in d
            if float_memory == ("mem_in_thresh" in d):
                raise ValueError("a block needs exactly one of mem_taps (float memory input) and "
                                 "mem_in_thresh (binary memory input)")
            vectors = ["up_in_thresh", "mem_scale", "mem_shift", "mem_prelu", "down_scale",
                       "down_shift"] + ([] if float_memory else ["mem_in_thresh"])
            arrays = {name: _vector(d[name], np.float32, bw, name) for name in vectors}
            arrays.update(mem=d["mem"], up=d["up"], down=d["down"])
            arrays["up_thresh"] = _vector(d["up_thresh"], np.int32, hw, "up_thresh")
            flip = np.asarray(d["up_flip"])
            arrays["up_flip"] = _vector(flip.view(np.uint8) if flip.dtype == np.bool_ else flip,
                                        np.uint8, hw, "up_flip")
            if float_memory:
                taps = np.asarray(d["mem_taps"])
                if taps.dtype != np.float32 or taps.shape != (back + 1 + ahead, bw) \
                        or not np.isin(taps, (-1.0, 1.0)).all():
                    raise ValueError(f"mem_taps must be float32 [{back + 1 + ahead}, {bw}] of +-1")
                arrays["mem_taps"] = np.ascontiguousarray(taps)
            self._keep.append(arrays)       # keeps every buffer alive as long as the pointers
            k.mem = _packed_ptr(arrays["mem"], back + 1 + ahead, bw, "mem")
            k.ldm = _ld(arrays["mem"])
            k.up = _packed_ptr(arrays["up"], hw, bw, "up")
            k.ldu = _ld(arrays["up"])
            k.down = _packed_ptr(arrays["down"], bw, hw, "down")
            k.ldd = _ld(arrays["down"])
            if float_memory:
                k.mem_taps = <const float *><size_t>arrays["mem_taps"].ctypes.data
                k.mem_in = NULL
            else:
                k.mem_taps = NULL
                k.mem_in = _f32_ptr(arrays["mem_in_thresh"], bw, "mem_in_thresh")
            k.up_in = _f32_ptr(arrays["up_in_thresh"], bw, "up_in_thresh")
            k.mem_scale = _f32_ptr(arrays["mem_scale"], bw, "mem_scale")
            k.mem_shift = _f32_ptr(arrays["mem_shift"], bw, "mem_shift")
            k.mem_prelu = _f32_ptr(arrays["mem_prelu"], bw, "mem_prelu")
            k.down_scale = _f32_ptr(arrays["down_scale"], bw, "down_scale")
            k.down_shift = _f32_ptr(arrays["down_shift"], bw, "down_shift")
            tv = arrays["up_thresh"]
            fv = arrays["up_flip"]
            k.up_thresh = <const int32_t *><size_t>tv.ctypes.data
            k.up_flip = <const uint8_t *><size_t>fv.ctypes.data

    def __dealloc__(self):
        free(self.blocks)

    def run(self, h):
        """Run (stem,) every block (, head) on h (float32 [t, bw], C-contiguous, writeable) in
        place; returns h, or the pooled head output (a buffer reused by the next call)."""
        if not isinstance(h, np.ndarray) or h.dtype != np.float32 or h.shape != (self.t, self.bw) \
                or not h.flags.c_contiguous or not h.flags.writeable:
            raise ValueError(f"h must be a writeable C-contiguous float32 array of shape "
                             f"({self.t}, {self.bw})")
        cdef float[:, ::1] hv = h
        cdef float[::1] gv = self._g
        cdef int rc
        with nogil:
            if self.stem[0] != NULL:
                kws_affine_prelu(&hv[0, 0], self.t, self.bw, self.stem[0], self.stem[1], self.stem[2])
            rc = kws_fsmn_blocks(&hv[0, 0], self.t, self.bw, self.hw, self.back, self.ahead,
                                 self.blocks, self.n)
            if rc == 0 and self.head[0] != NULL:
                kws_affine_mean(&hv[0, 0], self.t, self.bw, self.head[0], self.head[1], &gv[0])
        if rc:
            raise MemoryError("fsmn blocks: out of memory for scratch buffers")
        return self._g if self.head[0] != NULL else h
