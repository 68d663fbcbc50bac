/* The fused binary D-FSMN network.  Per window (see kws/fsmn/config.py):
 *   x = (features - mean) / std, stacked into stem windows S [T', stem_kernel * F]
 *   h = PReLU((S . stem_wt) * stem_scale + stem_shift)      float stem
 *   per block:
 *     m = memconv(h)  (float, +-1 taps; or memconv(sign(h - mem_in)) in bits)
 *     h += PReLU(m * mem_scale + mem_shift)
 *     bits = [sign(h - up_in) . W_up >= thresh] xor flip      (packed, never leaves bits)
 *     h += (bits . W_down) * down_scale + down_shift
 *   g = mean over time of (h * head_scale + head_shift);  logits = W_cls . g + cls_b
 * Every float step is a fixed sequence of IEEE single-precision operations (build flags forbid
 * FMA contraction; sums run in index order), the same on every CPU and at every vector width, so
 * the numpy reference in the tests reproduces them bit for bit.
 * The float loops use GCC vector extensions (16 floats) and are compiled once per x86-64 level
 * (target_clones: AVX-512, AVX2, baseline SSE2), picked by the loader; on aarch64 they map to
 * NEON.  The binary layers go through the run-time-selected kernels of kernels.h. */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "fsmn.h"

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

#define VL 16
typedef float vf __attribute__((vector_size(VL * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(VL * sizeof(int32_t))));
static inline vf ld(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void st(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* u < 0 ? u * slope : u  (the product is computed either way, as in the reference) */
static inline vf prelu_v(vf u, vf slope) {
    const vi neg = u < 0;
    return (vf)(((vi)(u * slope) & neg) | ((vi)u & ~neg));
}
static inline float prelu_s(float u, float slope) {
    const float neg = u * slope;
    return u < 0 ? neg : u;
}

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

/* S[r, j*F + f] = (x[r*stride + j, f] - mean[f]) / std[f] */
CLONES static void stem_input(const float *restrict x, size_t rows, size_t f, size_t kernel,
                              size_t stride, const float *restrict mean, const float *restrict std,
                              float *restrict s) {
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < kernel; j++) {
            const float *xr = x + (r * stride + j) * f;
            float *sr = s + (r * kernel + j) * f;
            for (size_t c = 0; c < f; c++) sr[c] = (xr[c] - mean[c]) / std[c];
        }
}

/* h[r, c] = sum over i (in order) of s[r, i] * wt[i, c].  Tiles of 4 rows x 32 outputs keep 8
 * independent accumulators in registers: enough to hide the add latency (one chain per row
 * would wait on it), few enough for 16 registers in the 8-wide AVX2 build. */
/* noinline: benchmarks/pi_estimate.py counts its instructions by name */
CLONES __attribute__((noinline)) static void stem_matmul(const float *restrict s, size_t rows, size_t k,
                               const float *restrict wt, size_t bw, float *restrict h) {
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *s0 = s + r * k, *s1 = s0 + k, *s2 = s1 + k, *s3 = s2 + k;
        size_t c = 0;
        for (; c + 2 * VL <= bw; c += 2 * VL) {
            vf a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0}, a30 = {0}, a31 = {0};
            for (size_t i = 0; i < k; i++) {
                const vf w0 = ld(wt + i * bw + c), w1 = ld(wt + i * bw + c + VL);
                a00 = a00 + s0[i] * w0; a01 = a01 + s0[i] * w1;
                a10 = a10 + s1[i] * w0; a11 = a11 + s1[i] * w1;
                a20 = a20 + s2[i] * w0; a21 = a21 + s2[i] * w1;
                a30 = a30 + s3[i] * w0; a31 = a31 + s3[i] * w1;
            }
            float *hr = h + r * bw + c;
            st(hr, a00); st(hr + VL, a01); hr += bw;
            st(hr, a10); st(hr + VL, a11); hr += bw;
            st(hr, a20); st(hr + VL, a21); hr += bw;
            st(hr, a30); st(hr + VL, a31);
        }
        for (; c < bw; c++)
            for (size_t q = 0; q < 4; q++) {
                float a = 0;
                for (size_t i = 0; i < k; i++) a = a + s[(r + q) * k + i] * wt[i * bw + c];
                h[(r + q) * bw + c] = a;
            }
    }
    for (; r < rows; r++)
        for (size_t c = 0; c < bw; c++) {
            float a = 0;
            for (size_t i = 0; i < k; i++) a = a + s[r * k + i] * wt[i * bw + c];
            h[r * bw + c] = a;
        }
}

CLONES void kws_affine_prelu(float *restrict h, size_t t, size_t c, const float *restrict scale,
                             const float *restrict shift, const float *restrict slope) {
    for (size_t i = 0; i < t; i++) {
        float *restrict hi = h + i * c;
        size_t j = 0;
        for (; j + VL <= c; j += VL)
            st(hi + j, prelu_v(ld(hi + j) * ld(scale + j) + ld(shift + j), ld(slope + j)));
        for (; j < c; j++) hi[j] = prelu_s(hi[j] * scale[j] + shift[j], slope[j]);
    }
}

CLONES void kws_affine_mean(const float *restrict h, size_t t, size_t c, const float *restrict scale,
                            const float *restrict shift, float *restrict g) {
    size_t j = 0;
    for (; j + VL <= c; j += VL) {
        const vf s = ld(scale + j), b = ld(shift + j);
        vf a = {0};
        for (size_t i = 0; i < t; i++) a = a + (ld(h + i * c + j) * s + b);
        st(g + j, a / (float)t);
    }
    for (; j < c; j++) {
        float a = 0;
        for (size_t i = 0; i < t; i++) a = a + (h[i * c + j] * scale[j] + shift[j]);
        g[j] = a / (float)t;
    }
}

/* m[r, c] = sum over taps i (past -> future) of x[r + i - back, c] * taps[i, c], x = 0 outside
 * the clip: the products and the sum in the same order as the torch memconv, so the float32
 * result is the same.  4 vectors of a row at a time: independent sums hide the add latency. */
static inline vf tap_v(const float *x, long src, size_t t, size_t bw, size_t c, const float *tap) {
    const vf v = (src < 0 || src >= (long)t) ? (vf){0} : ld(x + (size_t)src * bw + c);
    return v * ld(tap + c);
}

CLONES static void float_memconv(const float *restrict x, size_t t, size_t bw,
                                 const float *restrict taps, size_t back, size_t ahead,
                                 float *restrict m) {
    const size_t L = back + 1 + ahead;
    for (size_t r = 0; r < t; r++) {
        float *restrict mr = m + r * bw;
        const long src0 = (long)r - (long)back;
        size_t c = 0;
        for (; c + 4 * VL <= bw; c += 4 * VL) {
            vf a0 = tap_v(x, src0, t, bw, c, taps), a1 = tap_v(x, src0, t, bw, c + VL, taps);
            vf a2 = tap_v(x, src0, t, bw, c + 2 * VL, taps), a3 = tap_v(x, src0, t, bw, c + 3 * VL, taps);
            for (size_t i = 1; i < L; i++) {
                const float *tap = taps + i * bw;
                a0 = a0 + tap_v(x, src0 + (long)i, t, bw, c, tap);
                a1 = a1 + tap_v(x, src0 + (long)i, t, bw, c + VL, tap);
                a2 = a2 + tap_v(x, src0 + (long)i, t, bw, c + 2 * VL, tap);
                a3 = a3 + tap_v(x, src0 + (long)i, t, bw, c + 3 * VL, tap);
            }
            st(mr + c, a0); st(mr + c + VL, a1); st(mr + c + 2 * VL, a2); st(mr + c + 3 * VL, a3);
        }
        for (; c + VL <= bw; c += VL) {
            vf a = tap_v(x, src0, t, bw, c, taps);
            for (size_t i = 1; i < L; i++) a = a + tap_v(x, src0 + (long)i, t, bw, c, taps + i * bw);
            st(mr + c, a);
        }
        for (; c < bw; c++) {
            float a = 0;
            for (size_t i = 0; i < L; i++) {
                const long src = src0 + (long)i;
                const float v = (src < 0 || src >= (long)t) ? 0.0f : x[(size_t)src * bw + c];
                a = i ? a + v * taps[i * bw + c] : v * taps[i * bw + c];
            }
            mr[c] = a;
        }
    }
}

/* h += PReLU(m * scale + shift) */
CLONES static void memory_update(float *restrict h, const float *restrict m, size_t t, size_t bw,
                                 const float *restrict scale, const float *restrict shift,
                                 const float *restrict slope) {
    for (size_t r = 0; r < t; r++) {
        float *restrict hr = h + r * bw;
        const float *restrict mr = m + r * bw;
        size_t c = 0;
        for (; c + VL <= bw; c += VL)
            st(hr + c, ld(hr + c) + prelu_v(ld(mr + c) * ld(scale + c) + ld(shift + c), ld(slope + c)));
        for (; c < bw; c++) hr[c] = hr[c] + prelu_s(mr[c] * scale[c] + shift[c], slope[c]);
    }
}

CLONES static void add_into(float *restrict h, const float *restrict y, size_t n) {
    for (size_t i = 0; i < n; i++) h[i] = h[i] + y[i];
}

/* Scratch of the block stack for t rows: one allocation. */
typedef struct {
    uint64_t *hb, *z;
    int8_t *mi;
    float *m, *y;
} block_scratch;

static size_t block_scratch_bytes(size_t t, size_t bw, size_t hw) {
    return t * (KWS_WORDS(bw) + KWS_WORDS(hw)) * sizeof(uint64_t) + 2 * t * bw * sizeof(float) + t * bw;
}

static block_scratch block_scratch_at(void *p, size_t t, size_t bw, size_t hw) {
    block_scratch s;
    s.hb = p;
    s.z = s.hb + t * KWS_WORDS(bw);
    s.m = (float *)(s.z + t * KWS_WORDS(hw));
    s.y = s.m + t * bw;
    s.mi = (int8_t *)(s.y + t * bw);
    return s;
}

static int run_blocks(float *h, size_t t, size_t bw, size_t hw, size_t back, size_t ahead,
                      const kws_block *blocks, size_t n, const block_scratch *s, float *trace) {
    const size_t wb = KWS_WORDS(bw), wh = KWS_WORDS(hw);
    int rc = 0;
    for (size_t b = 0; b < n && rc == 0; b++) {
        const kws_block *k = &blocks[b];
        if (k->mem_taps) {
            float_memconv(h, t, bw, k->mem_taps, back, ahead, s->m);
        } else {
            kws_pack_f32(h, bw, t, bw, k->mem_in, s->hb, wb);
            kws_bmemconv(s->hb, wb, t, k->mem, k->ldm, back, ahead, bw, s->mi, bw);
            for (size_t i = 0; i < t * bw; i++) s->m[i] = (float)s->mi[i];    /* exact */
        }
        memory_update(h, s->m, t, bw, k->mem_scale, k->mem_shift, k->mem_prelu);
        kws_pack_f32(h, bw, t, bw, k->up_in, s->hb, wb);
        rc |= kws_bgemm_threshold(s->hb, wb, k->up, k->ldu, t, hw, bw, k->up_thresh, k->up_flip, s->z, wh);
        rc |= kws_bgemm_scale(s->z, wh, k->down, k->ldd, t, bw, hw, k->down_scale, k->down_shift, s->y, bw);
        add_into(h, s->y, t * bw);
        if (trace) memcpy(trace + b * t * bw, h, t * bw * sizeof *h);
    }
    return rc;
}

int kws_fsmn_blocks(float *h, size_t t, size_t bw, size_t hw, size_t back, size_t ahead,
                    const kws_block *blocks, size_t n) {
    void *p = malloc(block_scratch_bytes(t, bw, hw) + 1);
    if (!p) return -1;
    const block_scratch s = block_scratch_at(p, t, bw, hw);
    const unsigned long long mode = fp_enter();
    const int rc = run_blocks(h, t, bw, hw, back, ahead, blocks, n, &s, NULL);
    fp_leave(mode);
    free(p);
    return rc;
}

size_t kws_fsmn_stem_frames(const kws_fsmn_net *net) {
    return (net->n_frames - net->stem_kernel) / net->stem_stride + 1;
}

int kws_fsmn_forward(const kws_fsmn_net *net, const float *features, float *logits, float *trace) {
    const size_t t = kws_fsmn_stem_frames(net), bw = net->bw, k = net->stem_kernel * net->n_features;
    /* scratch: stem windows [t, k], h [t, bw], g [bw], the blocks' scratch; one allocation */
    const size_t floats = t * k + t * bw + bw;
    float *p = malloc(floats * sizeof(float) + block_scratch_bytes(t, bw, net->hw) + 8);
    if (!p) return -1;
    float *s = p, *h = s + t * k, *g = h + t * bw;
    const block_scratch bs = block_scratch_at(p + floats + (floats & 1), t, bw, net->hw);   /* 8-byte aligned */
    const unsigned long long mode = fp_enter();
    stem_input(features, t, net->n_features, net->stem_kernel, net->stem_stride, net->mean, net->std, s);
    stem_matmul(s, t, k, net->stem_wt, bw, h);
    kws_affine_prelu(h, t, bw, net->stem_scale, net->stem_shift, net->stem_prelu);
    if (trace) memcpy(trace, h, t * bw * sizeof *h);
    int rc = run_blocks(h, t, bw, net->hw, net->back, net->ahead, net->blocks, net->n_blocks, &bs,
                        trace ? trace + t * bw : NULL);
    if (rc == 0) {
        kws_affine_mean(h, t, bw, net->head_scale, net->head_shift, g);
        for (size_t c = 0; c < net->n_classes; c++) {
            const float *w = net->cls_w + c * net->ldc;
            float a = 0;
            for (size_t j = 0; j < bw; j++) a = a + w[j] * g[j];
            logits[c] = a + net->cls_b[c];
        }
    }
    fp_leave(mode);
    free(p);
    return rc;
}
