# Included by _kernels.pyx: the fused D-FSMN network (kws/csrc/fsmn.c): BlockStack (the binary
# blocks, validated once) and Network (stem, blocks, head and classifier: one C call per window).

from libc.stdlib cimport calloc, free

cdef extern from "fsmn.h" nogil:
    ctypedef struct kws_block:
        const float *mem_taps
        const uint64_t *mem
        size_t ldm
        const float *mem_in
        const float *up_in
        size_t up_planes
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
    ctypedef struct kws_fsmn_net:
        size_t n_frames, n_features, stem_kernel, stem_stride, bw, hw, back, ahead
        const float *mean
        const float *std
        const float *pcen
        const float *stem_wt
        const float *stem_scale
        const float *stem_shift
        const float *stem_prelu
        const kws_block *blocks
        size_t n_blocks
        const float *head_scale
        const float *head_shift
        const float *cls_w
        size_t ldc
        const float *cls_b
        size_t n_classes
    void kws_pcen(const float *x, size_t t, size_t f, const float *params, const float *mean,
                  const float *std, float *out)
    size_t kws_fsmn_stem_frames(const kws_fsmn_net *net)
    size_t kws_fsmn_scratch_bytes(const kws_fsmn_net *net)
    int kws_fsmn_forward(const kws_fsmn_net *net, const float *features, float *logits, float *trace,
                         void *scratch)
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
    shapes as in kws/fsmn/model.py, packed weights may be prefix views. up_in_thresh float32
    [P, bw] (P > 1 sign planes of h into the up projection: z = sum over planes of
    sign(h - up_in_thresh[p]) . W_up, and up_thresh thresholds that z) or [bw] (one plane).
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
            vectors = ["mem_scale", "mem_shift", "mem_prelu", "down_scale",
                       "down_shift"] + ([] if float_memory else ["mem_in_thresh"])
            arrays = {name: _vector(d[name], np.float32, bw, name) for name in vectors}
            up_in = np.asarray(d["up_in_thresh"])
            planes = up_in.shape[0] if up_in.ndim == 2 else 1
            if not 1 <= planes <= 3:
                raise ValueError(f"up_in_thresh must be float32 [bw] or [planes 1..3, bw], got {up_in.shape}")
            arrays["up_in_thresh"] = _vector(up_in.reshape(-1), np.float32, planes * bw, "up_in_thresh")
            arrays.update(mem=d["mem"], up=d["up"], down=d["down"])
            arrays["up_thresh"] = _vector(d["up_thresh"], np.int32, hw, "up_thresh")
            if planes > 1:
                # fsmn.h: the GEMM reads W_up once per plane, each copy padded to whole words, and
                # counts the padding bits between copies as agreements: the threshold moves by them
                _packed_ptr(d["up"], hw, bw, "up")
                one = pack(unpack(d["up"], bw))
                arrays["up"] = np.ascontiguousarray(np.tile(one, (1, planes)))
                arrays["up_thresh"] = (arrays["up_thresh"].astype(np.int64)
                                       + (planes - 1) * (64 * words(bw) - bw)).astype(np.int32)
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
            k.up = _packed_ptr(arrays["up"], hw, (planes - 1) * 64 * words(bw) + bw, "up")
            k.up_planes = planes
            k.ldu = _ld(arrays["up"])
            k.down = _packed_ptr(arrays["down"], bw, hw, "down")
            k.ldd = _ld(arrays["down"])
            if float_memory:
                k.mem_taps = <const float *><size_t>arrays["mem_taps"].ctypes.data
                k.mem_in = NULL
            else:
                k.mem_taps = NULL
                k.mem_in = _f32_ptr(arrays["mem_in_thresh"], bw, "mem_in_thresh")
            k.up_in = _f32_ptr(arrays["up_in_thresh"], planes * bw, "up_in_thresh")
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


cdef class Network:
    """A whole operating point of a binary FSMN: one C call per window, GIL released.

    Network(stack, n_frames, n_features, stem_kernel, stem_stride, mean, std, stem_wt, cls_w,
    cls_b, pcen=None): `stack` is a BlockStack built with stem= and head= (its blocks, widths and folded
    parameters); mean, std float32 [n_features]; pcen None or float32 [5, n_features] (PCEN
    parameters: the window is PCEN-normalised before (x - mean) / std, see `pcen`); stem_wt float32 [stem_kernel * n_features, bw]
    (the transposed stem weight); cls_w float32 [n_classes, >= bw] (row stride may exceed bw:
    width-prefix views); cls_b float32 [n_classes].
    `logits(features)` -> float32 [n_classes] for features float32 [n_frames, n_features];
    `trace(features)` -> (logits, h) with h float32 [1 + blocks, T', bw]: the residual stream
    after the stem and after each block (for tests).
    """
    cdef kws_fsmn_net net
    cdef BlockStack stack
    cdef list _keep
    cdef object _scratch      # one call's scratch, reused (uint64 array: 8-byte aligned)
    cdef bint _busy           # a call is using _scratch (another thread then allocates its own)
    cdef readonly size_t n_classes, stem_frames

    def __init__(self, BlockStack stack, size_t n_frames, size_t n_features, size_t stem_kernel,
                 size_t stem_stride, mean, std, stem_wt, cls_w, cls_b, pcen=None):
        if stack.stem[0] == NULL or stack.head[0] == NULL:
            raise ValueError("Network needs a BlockStack built with stem= and head=")
        if n_features == 0 or stem_kernel == 0 or stem_stride == 0 or n_frames < stem_kernel:
            raise ValueError(f"need n_features, stem_kernel, stem_stride > 0 and n_frames >= "
                             f"stem_kernel, got {n_frames}, {n_features}, {stem_kernel}, {stem_stride}")
        cdef size_t bw = stack.bw, k = stem_kernel * n_features
        self.stack = stack
        self.stem_frames = (n_frames - stem_kernel) // stem_stride + 1
        if self.stem_frames != stack.t:
            raise ValueError(f"the stem makes {self.stem_frames} frames, the blocks run on {stack.t}")
        mean = _vector(mean, np.float32, n_features, "mean")
        std = _vector(std, np.float32, n_features, "std")
        stem_wt = np.asarray(stem_wt)
        if stem_wt.dtype != np.float32 or stem_wt.shape != (k, bw):
            raise ValueError(f"stem_wt must be float32 [{k}, {bw}], got {stem_wt.dtype} {stem_wt.shape}")
        stem_wt = np.ascontiguousarray(stem_wt)
        cls_w = np.asarray(cls_w)
        if cls_w.dtype != np.float32 or cls_w.ndim != 2 or cls_w.shape[0] == 0 \
                or <size_t>cls_w.shape[1] < bw:
            raise ValueError(f"cls_w must be float32 [classes, >= {bw}], got {cls_w.dtype} {cls_w.shape}")
        cls_w = np.ascontiguousarray(cls_w)
        self.n_classes = cls_w.shape[0]
        cls_b = _vector(cls_b, np.float32, self.n_classes, "cls_b")
        self._keep = [mean, std, stem_wt, cls_w, cls_b]
        self.net.pcen = NULL
        if pcen is not None:
            pcen = _pcen_params(pcen, n_features)
            self._keep.append(pcen)
            self.net.pcen = <const float *><size_t>pcen.ctypes.data
        self.net.n_frames, self.net.n_features = n_frames, n_features
        self.net.stem_kernel, self.net.stem_stride = stem_kernel, stem_stride
        self.net.bw, self.net.hw, self.net.back, self.net.ahead = bw, stack.hw, stack.back, stack.ahead
        self.net.mean = _f32_ptr(mean, n_features, "mean")
        self.net.std = _f32_ptr(std, n_features, "std")
        self.net.stem_wt = <const float *><size_t>stem_wt.ctypes.data
        self.net.stem_scale, self.net.stem_shift, self.net.stem_prelu = stack.stem[0], stack.stem[1], stack.stem[2]
        self.net.blocks, self.net.n_blocks = stack.blocks, stack.n
        self.net.head_scale, self.net.head_shift = stack.head[0], stack.head[1]
        self.net.cls_w = <const float *><size_t>cls_w.ctypes.data
        self.net.ldc = cls_w.shape[1]
        self.net.cls_b = _f32_ptr(cls_b, self.n_classes, "cls_b")
        self.net.n_classes = self.n_classes
        self._scratch = np.empty((kws_fsmn_scratch_bytes(&self.net) + 7) // 8, np.uint64)
        self._busy = False

    cdef const float *_features(self, x) except NULL:
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 \
                or x.shape != (self.net.n_frames, self.net.n_features) or not x.flags.c_contiguous:
            raise ValueError(f"features must be a C-contiguous float32 array of shape "
                             f"({self.net.n_frames}, {self.net.n_features})")
        return <const float *><size_t>x.ctypes.data

    cdef int _forward(self, const float *x, float *out, float *trace):
        """One forward on this object's scratch, or on its own allocation if another thread
        is using it (the check and the claim happen under the GIL)."""
        cdef uint64_t[::1] sv = self._scratch
        cdef void *scratch = NULL
        cdef int rc
        cdef bint mine = not self._busy
        if mine:
            self._busy = True
            scratch = &sv[0]
        try:
            with nogil:
                rc = kws_fsmn_forward(&self.net, x, out, trace, scratch)
        finally:
            if mine:
                self._busy = False
        if rc:
            raise MemoryError("fsmn network: out of memory for scratch buffers")
        return rc

    def logits(self, features):
        """Class logits float32 [n_classes] of one window (a new array)."""
        cdef const float *x = self._features(features)
        out = np.empty(self.n_classes, np.float32)
        cdef float[::1] ov = out
        self._forward(x, &ov[0], NULL)
        return out

    def trace(self, features):
        """(logits, h): h float32 [1 + blocks, T', bw], the residual stream after the stem and
        after each block."""
        cdef const float *x = self._features(features)
        out = np.empty(self.n_classes, np.float32)
        h = np.empty((1 + self.net.n_blocks, self.stem_frames, self.net.bw), np.float32)
        cdef float[::1] ov = out
        cdef float[:, :, ::1] hv = h
        self._forward(x, &ov[0], &hv[0, 0, 0])
        return out, h


cdef object _pcen_params(object p, size_t f):
    p = np.asarray(p)
    if p.dtype != np.float32 or p.shape != (5, f):
        raise ValueError(f"pcen parameters must be float32 [5, {f}], got {p.dtype} {p.shape}")
    return np.ascontiguousarray(p)


def pcen(x, params):
    """PCEN of one window x float32 [t, f] of dB features (kws/fsmn/pcen.py defines it; params
    float32 [5, f]: smooth, alpha, delta, root, eps per band) -> float32 [t, f], GIL released.
    The same C function the network runs on each window when it has PCEN parameters."""
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"pcen input must be float32 [frames > 0, features > 0], got {x.dtype} {x.shape}")
    x = np.ascontiguousarray(x)
    cdef size_t t = x.shape[0], f = x.shape[1]
    params = _pcen_params(params, f)
    out = np.empty((t, f), np.float32)
    cdef const float *xp = <const float *><size_t>x.ctypes.data
    cdef const float *pp = <const float *><size_t>params.ctypes.data
    cdef float *op = <float *><size_t>out.ctypes.data
    with nogil:
        kws_pcen(xp, t, f, pp, NULL, NULL, op)
    return out
