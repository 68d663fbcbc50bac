/* The fused binary D-FSMN network.  Per window (see kws/fsmn/config.py):
 *   x = (features - mean) / std, or (PCEN(features) - mean) / std; stem window r = frames r*stride .. +stem_kernel-1 of x, in place
 *   h = PReLU((S . stem_wt) * stem_scale + stem_shift)      float stem
 *   per block:
 *     m = memconv(h)  (float, +-1 taps; or memconv(sign(h - mem_in)) in bits)
 *     h += PReLU(m * mem_scale + mem_shift)
 *     bits = [sign(h - up_in) . W_up >= thresh] xor flip      (packed, never leaves bits)
 *       (up_planes P > 1: the P sign planes side by side in one row of P * words(bw) words, one GEMM)
 *     h += (bits . W_down) * down_scale + down_shift
 *   g = mean over time of (h * head_scale + head_shift);  logits = W_cls . g + cls_b
 * Every float step after the stem matmul is a fixed sequence of IEEE single-precision operations
 * (build flags forbid FMA contraction; sums run in index order), the same on every CPU and at
 * every vector width, so the numpy reference in the tests reproduces them bit for bit; the stem
 * matmul alone uses FMA where the CPU has it (fsmn_float.h says why).
 * The float loops (fsmn_float.h) use GCC vector extensions at each target's native width and are
 * compiled for AVX-512, AVX2 and the baseline (SSE2 on x86-64, NEON on aarch64); the set used
 * follows the run-time-selected binary kernel of kernels.h (so KWS_KERNEL forces both). */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "fsmn.h"

#if defined(__x86_64__)
#include <immintrin.h>       /* per-target regions below use AVX2/AVX-512 intrinsics */
#elif defined(__SSE2__)
#include <xmmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif


/* Denormals flushed to zero (inputs and results) for the duration of a call. */
static unsigned long long fp_enter(void) {
#if defined(__SSE2__)
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040);                                   /* FTZ | DAZ */
    return csr;
#elif defined(__aarch64__)
    unsigned long long fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (1ull << 24)));   /* FZ */
    return fpcr;
#else
    return 0;
#endif
}
static void fp_leave(unsigned long long saved) {
#if defined(__SSE2__)
    _mm_setcsr((unsigned)saved);
#elif defined(__aarch64__)
    __asm__ volatile("msr fpcr, %0" : : "r"(saved));
#else
    (void)saved;
#endif
}

/* The float kernels, one set per target (fsmn_float.h); float_ops() below picks the set. */
typedef struct {
    void (*normalise)(const float *, size_t, size_t, const float *, const float *, float *);
    void (*stem_matmul)(const float *, size_t, size_t, size_t, const float *, size_t, float *);
    void (*affine_prelu)(float *, size_t, size_t, const float *, const float *, const float *);
    void (*affine_mean)(const float *, size_t, size_t, const float *, const float *, float *);
    void (*memconv)(const float *, size_t, size_t, const float *, size_t, size_t, const float *, float *);
    void (*memory_update)(const float *, const float *, size_t, size_t, const float *, const float *,
                          const float *, float *);
    void (*memory_block5)(const float *, size_t, size_t, const float *, size_t, const float *,
                          const float *, const float *, const float *, float *, const float *,
                          uint64_t *, size_t, const float **);
    void (*pcen)(const float *, size_t, size_t, const float *, const float *, const float *, float *);
} kws_float_ops;

#define MEM_TAPS 5      /* taps of the one-pass float memory block (fsmn_float.h: memory_block5) */

static inline float prelu_s(float u, float slope) {
    const float neg = u * slope;
    return u < 0 ? neg : u;
}

#define PASTE_(a, b) a##_##b
#define PASTE(a, b) PASTE_(a, b)
#define NAME(x) PASTE(x, SUFFIX)
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4")
#define VL 16
#define SUFFIX avx512
#include "fsmn_float.h"
#undef VL
#undef SUFFIX
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
#define VL 8
#define SUFFIX avx2
#include "fsmn_float.h"
#undef VL
#undef SUFFIX
#pragma GCC pop_options
#endif
#define VL 4          /* SSE2 (x86-64 baseline), NEON (aarch64), or plain C elsewhere */
#if defined(__aarch64__)
#define TV 4          /* stem tile: 16 accumulators of NEON's 32 registers */
#define CB 2          /* memory block: 2 x (5 taps + 4 parameters) of NEON's 32 registers */
#endif
#define SUFFIX base
#include "fsmn_float.h"
#undef VL
#undef SUFFIX

/* The float kernels of the binary kernel's instruction set: AVX-512 with the avx512 kernel, AVX2
 * with avx2, the baseline with scalar and neon.  So KWS_KERNEL / kws._kernels.set_isa force the
 * whole inference onto one instruction set (the tests run every set this CPU has). */
static const kws_float_ops *float_ops(void) {
#if defined(__x86_64__)
    const kws_isa *isa = kws_current();
    if (isa == kws_isa_avx512() && __builtin_cpu_supports("x86-64-v4")) return &float_ops_avx512;
    if (isa == kws_isa_avx2() && __builtin_cpu_supports("x86-64-v3")) return &float_ops_avx2;
#endif
    return &float_ops_base;
}

void kws_affine_prelu(float *h, size_t t, size_t c, const float *scale, const float *shift,
                      const float *slope) {
    float_ops()->affine_prelu(h, t, c, scale, shift, slope);
}

void kws_affine_mean(const float *h, size_t t, size_t c, const float *scale, const float *shift,
                     float *g) {
    float_ops()->affine_mean(h, t, c, scale, shift, g);
}

/* Scratch of the block stack for t rows: one allocation. */
typedef struct {
    const float **rows;          /* t + MEM_TAPS - 1 row pointers of the one-pass memory block */
    uint64_t *hb, *z;
    int8_t *mi;
    float *m, *h2, *zero;        /* h2: the other residual buffer; zero: bw zeros, the memory
                                    conv's rows outside the clip */
} block_scratch;

static size_t planes_of(const kws_block *k) { return k->up_planes > 1 ? k->up_planes : 1; }

static size_t max_planes(const kws_block *blocks, size_t n) {
    size_t p = 1;
    for (size_t b = 0; b < n; b++) p = planes_of(&blocks[b]) > p ? planes_of(&blocks[b]) : p;
    return p;
}

/* planes: the most sign planes of h any block packs (hb holds that many per row) */
static size_t block_scratch_bytes(size_t t, size_t bw, size_t hw, size_t planes) {
    return (t + MEM_TAPS - 1) * sizeof(float *) + t * (planes * KWS_WORDS(bw) + KWS_WORDS(hw)) * sizeof(uint64_t) +
           (2 * t + 1) * bw * sizeof(float) + t * bw;
}

static block_scratch block_scratch_at(void *p, size_t t, size_t bw, size_t hw, size_t planes) {
    block_scratch s;
    s.rows = p;
    s.hb = (uint64_t *)(s.rows + t + MEM_TAPS - 1);
    s.z = s.hb + t * planes * KWS_WORDS(bw);
    s.m = (float *)(s.z + t * KWS_WORDS(hw));
    s.h2 = s.m + t * bw;
    s.zero = s.h2 + t * bw;
    s.mi = (int8_t *)(s.zero + bw);
    memset(s.zero, 0, bw * sizeof(float));
    return s;
}

/* The residual stream alternates between h and s->h2: each block reads one and writes the
 * other (its memory step cannot update rows in place: later rows still read the old ones), and
 * the down GEMM adds its output into it in its epilogue.  Ends in h. */
static int run_blocks(float *h, size_t t, size_t bw, size_t hw, size_t back, size_t ahead,
                      const kws_block *blocks, size_t n, const block_scratch *s, float *trace) {
    const size_t wb = KWS_WORDS(bw), wh = KWS_WORDS(hw);
    const kws_float_ops *ops = float_ops();
    float *cur = h, *next = s->h2;
    int rc = 0;
    for (size_t b = 0; b < n && rc == 0; b++) {
        const kws_block *k = &blocks[b];
        const size_t planes = planes_of(k), lda = planes * wb;      /* hb's row: every plane */
        const int one_pass = k->mem_taps && back + 1 + ahead == MEM_TAPS;
        if (one_pass) {         /* also packs the first plane, sign(h - up_in), into hb */
            ops->memory_block5(cur, t, bw, k->mem_taps, back, s->zero, k->mem_scale, k->mem_shift,
                               k->mem_prelu, next, k->up_in, s->hb, lda, s->rows);
        } else {
            if (k->mem_taps) {
                ops->memconv(cur, t, bw, k->mem_taps, back, ahead, s->zero, s->m);
            } else {
                kws_pack_f32(cur, bw, t, bw, k->mem_in, s->hb, wb);
                kws_bmemconv(s->hb, wb, t, k->mem, k->ldm, back, ahead, bw, s->mi, bw);
                for (size_t i = 0; i < t * bw; i++) s->m[i] = (float)s->mi[i];    /* exact */
            }
            ops->memory_update(cur, s->m, t, bw, k->mem_scale, k->mem_shift, k->mem_prelu, next);
        }
        float *const done = cur;
        cur = next;
        next = done;
        for (size_t p = one_pass; p < planes; p++)
            kws_pack_f32(cur, bw, t, bw, k->up_in + p * bw, s->hb + p * wb, lda);
        rc |= kws_bgemm_threshold(s->hb, lda, k->up, k->ldu, t, hw, (planes - 1) * 64 * wb + bw,
                                  k->up_thresh, k->up_flip, s->z, wh);
        rc |= kws_bgemm_scale_add(s->z, wh, k->down, k->ldd, t, bw, hw, k->down_scale, k->down_shift, cur, bw);
        if (trace) memcpy(trace + b * t * bw, cur, t * bw * sizeof *cur);
    }
    if (cur != h) memcpy(h, cur, t * bw * sizeof *h);
    return rc;
}

int kws_fsmn_blocks(float *h, size_t t, size_t bw, size_t hw, size_t back, size_t ahead,
                    const kws_block *blocks, size_t n) {
    const size_t planes = max_planes(blocks, n);
    void *p = malloc(block_scratch_bytes(t, bw, hw, planes) + 1);
    if (!p) return -1;
    const block_scratch s = block_scratch_at(p, t, bw, hw, planes);
    const unsigned long long mode = fp_enter();
    const int rc = run_blocks(h, t, bw, hw, back, ahead, blocks, n, &s, NULL);
    fp_leave(mode);
    free(p);
    return rc;
}

void kws_pcen(const float *x, size_t t, size_t f, const float *params, const float *mean,
              const float *std, float *out) {
    float_ops()->pcen(x, t, f, params, mean, std, out);
}

size_t kws_fsmn_stem_frames(const kws_fsmn_net *net) {
    return (net->n_frames - net->stem_kernel) / net->stem_stride + 1;
}

/* scratch of one forward: normalised frames [n_frames, F], h [t, bw], g [bw], then the blocks' */
static size_t forward_floats(const kws_fsmn_net *net) {
    const size_t t = kws_fsmn_stem_frames(net);
    return net->n_frames * net->n_features + t * net->bw + net->bw;
}

size_t kws_fsmn_scratch_bytes(const kws_fsmn_net *net) {
    return forward_floats(net) * sizeof(float) +
           block_scratch_bytes(kws_fsmn_stem_frames(net), net->bw, net->hw, max_planes(net->blocks, net->n_blocks)) + 8;
}

int kws_fsmn_forward(const kws_fsmn_net *net, const float *features, float *logits, float *trace,
                     void *scratch) {
    const size_t t = kws_fsmn_stem_frames(net), bw = net->bw, k = net->stem_kernel * net->n_features;
    const size_t floats = forward_floats(net);
    float *p = scratch ? scratch : malloc(kws_fsmn_scratch_bytes(net));
    if (!p) return -1;
    float *s = p, *h = s + net->n_frames * net->n_features, *g = h + t * bw;
    const block_scratch bs = block_scratch_at(p + floats + (floats & 1), t, bw, net->hw,
                                              max_planes(net->blocks, net->n_blocks));   /* 8-byte aligned */
    const unsigned long long mode = fp_enter();
    const kws_float_ops *ops = float_ops();
    /* the stem windows are rows of the normalised frames: window r starts at frame r * stride */
    if (net->pcen)
        ops->pcen(features, net->n_frames, net->n_features, net->pcen, net->mean, net->std, s);
    else
        ops->normalise(features, net->n_frames, net->n_features, net->mean, net->std, s);
    ops->stem_matmul(s, net->stem_stride * net->n_features, t, k, net->stem_wt, bw, h);
    ops->affine_prelu(h, t, bw, net->stem_scale, net->stem_shift, net->stem_prelu);
    if (trace) memcpy(trace, h, t * bw * sizeof *h);
    int rc = run_blocks(h, t, bw, net->hw, net->back, net->ahead, net->blocks, net->n_blocks, &bs,
                        trace ? trace + t * bw : NULL);
    if (rc == 0) {
        ops->affine_mean(h, t, bw, net->head_scale, net->head_shift, g);
        for (size_t c = 0; c < net->n_classes; c++) {
            const float *w = net->cls_w + c * net->ldc;
            float a = 0;
            for (size_t j = 0; j < bw; j++) a = a + w[j] * g[j];
            logits[c] = a + net->cls_b[c];
        }
    }
    fp_leave(mode);
    if (!scratch) free(p);
    return rc;
}
