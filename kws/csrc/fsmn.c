/* Fused binary D-FSMN blocks.  Per block (see kws/fsmn/config.py):
 *   m = memconv(h)  (float, +-1 taps; or memconv(sign(h - mem_in)) in bits)
 *   h += PReLU(m * mem_scale + mem_shift)
 *   bits = [sign(h - up_in) . W_up >= thresh] xor flip      (packed, never leaves bits)
 *   h += (bits . W_down) * down_scale + down_shift
 * The float steps are the same IEEE single-precision operations, in the same order, as the
 * numpy/torch formulation (build flags forbid FMA contraction), so results match bit for bit. */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "fsmn.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

/* h += PReLU(m * scale + shift) for one row.  Explicit SIMD (SSE2 / NEON, the baselines of
 * x86-64 / aarch64): compilers leave this scalar and branchy, and the branch on the sign is a
 * coin flip.  Same IEEE operations in the same order as the scalar tail. */
static void memory_row(float *restrict h, const float *restrict m, size_t bw,
                       const float *restrict scale, const float *restrict shift,
                       const float *restrict slope) {
    size_t c = 0;
#if defined(__SSE2__)
    for (; c + 4 <= bw; c += 4) {
        __m128 u = _mm_mul_ps(_mm_loadu_ps(m + c), _mm_loadu_ps(scale + c));
        u = _mm_add_ps(u, _mm_loadu_ps(shift + c));
        const __m128 neg = _mm_mul_ps(u, _mm_loadu_ps(slope + c));
        const __m128 is_neg = _mm_cmplt_ps(u, _mm_setzero_ps());
        const __m128 sel = _mm_or_ps(_mm_and_ps(is_neg, neg), _mm_andnot_ps(is_neg, u));
        _mm_storeu_ps(h + c, _mm_add_ps(_mm_loadu_ps(h + c), sel));
    }
#elif defined(__aarch64__)
    for (; c + 4 <= bw; c += 4) {
        float32x4_t u = vmulq_f32(vld1q_f32(m + c), vld1q_f32(scale + c));
        u = vaddq_f32(u, vld1q_f32(shift + c));
        const float32x4_t neg = vmulq_f32(u, vld1q_f32(slope + c));
        const float32x4_t sel = vbslq_f32(vcltzq_f32(u), neg, u);
        vst1q_f32(h + c, vaddq_f32(vld1q_f32(h + c), sel));
    }
#endif
    for (; c < bw; c++) {
        const float u = m[c] * scale[c] + shift[c];
        const float neg = u * slope[c];
        h[c] = h[c] + (u < 0 ? neg : u);
    }
}

/* m[r, c] = sum over taps i (past -> future) of x[r + i - back, c] * taps[i, c], x = 0 outside
 * the clip: the products and the sum in the same order as the torch memconv, so the float32
 * result is the same. */
static void float_memconv(const float *restrict x, size_t t, size_t bw, const float *restrict taps,
                          size_t back, size_t ahead, float *restrict m) {
    for (size_t r = 0; r < t; r++) {
        float *restrict mr = m + r * bw;
        for (size_t i = 0; i < back + 1 + ahead; i++) {
            const float *tap = taps + i * bw;
            const long src = (long)r + (long)i - (long)back;
            if (src < 0 || src >= (long)t) {
                for (size_t c = 0; c < bw; c++) mr[c] = i ? mr[c] + 0.0f * tap[c] : 0.0f * tap[c];
            } else {
                const float *xr = x + (size_t)src * bw;
                for (size_t c = 0; c < bw; c++) mr[c] = i ? mr[c] + xr[c] * tap[c] : xr[c] * tap[c];
            }
        }
    }
}

static void memory_update(float *h, const float *m, size_t t, size_t bw, const float *scale,
                          const float *shift, const float *slope) {
    for (size_t i = 0; i < t; i++) memory_row(h + i * bw, m + i * bw, bw, scale, shift, slope);
}

void kws_affine_prelu(float *restrict h, size_t t, size_t c, const float *restrict scale,
                      const float *restrict shift, const float *restrict slope) {
    for (size_t i = 0; i < t; i++) {
        float *restrict hi = h + i * c;
        for (size_t j = 0; j < c; j++) {
            const float u = hi[j] * scale[j] + shift[j];
            const float neg = u * slope[j];
            hi[j] = u < 0 ? neg : u;
        }
    }
}

void kws_affine_mean(const float *restrict h, size_t t, size_t c, const float *restrict scale,
                     const float *restrict shift, float *restrict g) {
    for (size_t j = 0; j < c; j++) g[j] = 0;
    for (size_t i = 0; i < t; i++)
        for (size_t j = 0; j < c; j++) g[j] = g[j] + (h[i * c + j] * scale[j] + shift[j]);
    for (size_t j = 0; j < c; j++) g[j] = g[j] / (float)t;
}

static void add_into(float *restrict h, const float *restrict y, size_t n) {
    for (size_t i = 0; i < n; i++) h[i] = h[i] + y[i];
}

int kws_fsmn_blocks(float *h, size_t t, size_t bw, size_t hw, size_t back, size_t ahead,
                    const kws_block *blocks, size_t n) {
    const size_t wb = KWS_WORDS(bw), wh = KWS_WORDS(hw);
    uint64_t *hb = malloc(t * wb * sizeof(uint64_t) + 1);
    uint64_t *z = malloc(t * wh * sizeof(uint64_t) + 1);
    int8_t *mi = malloc(t * bw + 1);
    float *m = malloc(t * bw * sizeof(float) + 1);
    float *y = malloc(t * bw * sizeof(float) + 1);
    int rc = (hb && z && mi && m && y) ? 0 : -1;
    for (size_t b = 0; b < n && rc == 0; b++) {
        const kws_block *k = &blocks[b];
        if (k->mem_taps) {
            float_memconv(h, t, bw, k->mem_taps, back, ahead, m);
        } else {
            kws_pack_f32(h, bw, t, bw, k->mem_in, hb, wb);
            kws_bmemconv(hb, wb, t, k->mem, k->ldm, back, ahead, bw, mi, bw);
            for (size_t i = 0; i < t * bw; i++) m[i] = (float)mi[i];    /* exact */
        }
        memory_update(h, m, t, bw, k->mem_scale, k->mem_shift, k->mem_prelu);
        kws_pack_f32(h, bw, t, bw, k->up_in, hb, wb);
        rc |= kws_bgemm_threshold(hb, wb, k->up, k->ldu, t, hw, bw, k->up_thresh, k->up_flip, z, wh);
        rc |= kws_bgemm_scale(z, wh, k->down, k->ldd, t, bw, hw, k->down_scale, k->down_shift, y, bw);
        add_into(h, y, t * bw);
    }
    free(hb); free(z); free(mi); free(m); free(y);
    return rc;
}
