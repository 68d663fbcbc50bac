/* Fused binary D-FSMN blocks.  Per block (see kws/fsmn/config.py):
 *   m = memconv(sign h)            h += PReLU(m * mem_scale + mem_shift)
 *   bits = [sign(h) . W_up >= thresh] xor flip      (packed, never leaves bits)
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
static void memory_row(float *restrict h, const int8_t *restrict m, size_t bw,
                       const float *restrict scale, const float *restrict shift,
                       const float *restrict slope) {
    size_t c = 0;
#if defined(__SSE2__)
    for (; c + 16 <= bw; c += 16) {
        const __m128i b = _mm_loadu_si128((const __m128i *)(m + c));
        const __m128i lo16 = _mm_srai_epi16(_mm_unpacklo_epi8(b, b), 8);   /* int8 -> int16 */
        const __m128i hi16 = _mm_srai_epi16(_mm_unpackhi_epi8(b, b), 8);
        const __m128i q[4] = {_mm_srai_epi32(_mm_unpacklo_epi16(lo16, lo16), 16),
                              _mm_srai_epi32(_mm_unpackhi_epi16(lo16, lo16), 16),
                              _mm_srai_epi32(_mm_unpacklo_epi16(hi16, hi16), 16),
                              _mm_srai_epi32(_mm_unpackhi_epi16(hi16, hi16), 16)};
        for (int j = 0; j < 4; j++) {
            const size_t o = c + 4 * (size_t)j;
            __m128 u = _mm_mul_ps(_mm_cvtepi32_ps(q[j]), _mm_loadu_ps(scale + o));
            u = _mm_add_ps(u, _mm_loadu_ps(shift + o));
            const __m128 neg = _mm_mul_ps(u, _mm_loadu_ps(slope + o));
            const __m128 is_neg = _mm_cmplt_ps(u, _mm_setzero_ps());
            const __m128 sel = _mm_or_ps(_mm_and_ps(is_neg, neg), _mm_andnot_ps(is_neg, u));
            _mm_storeu_ps(h + o, _mm_add_ps(_mm_loadu_ps(h + o), sel));
        }
    }
#elif defined(__aarch64__)
    for (; c + 8 <= bw; c += 8) {
        const int16x8_t b = vmovl_s8(vld1_s8(m + c));
        const int32x4_t q[2] = {vmovl_s16(vget_low_s16(b)), vmovl_s16(vget_high_s16(b))};
        for (int j = 0; j < 2; j++) {
            const size_t o = c + 4 * (size_t)j;
            float32x4_t u = vmulq_f32(vcvtq_f32_s32(q[j]), vld1q_f32(scale + o));
            u = vaddq_f32(u, vld1q_f32(shift + o));
            const float32x4_t neg = vmulq_f32(u, vld1q_f32(slope + o));
            const float32x4_t sel = vbslq_f32(vcltzq_f32(u), neg, u);
            vst1q_f32(h + o, vaddq_f32(vld1q_f32(h + o), sel));
        }
    }
#endif
    for (; c < bw; c++) {
        const float u = (float)m[c] * scale[c] + shift[c];
        const float neg = u * slope[c];
        h[c] = h[c] + (u < 0 ? neg : u);
    }
}

static void memory_update(float *h, const int8_t *m, size_t t, size_t bw, const float *scale,
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
    int8_t *m = malloc(t * bw + 1);
    float *y = malloc(t * bw * sizeof(float) + 1);
    int rc = (hb && z && m && y) ? 0 : -1;
    for (size_t b = 0; b < n && rc == 0; b++) {
        const kws_block *k = &blocks[b];
        kws_pack_f32(h, bw, t, bw, hb, wb);
        kws_bmemconv(hb, wb, t, k->mem, k->ldm, back, ahead, bw, m, bw);
        memory_update(h, m, t, bw, k->mem_scale, k->mem_shift, k->mem_prelu);
        kws_pack_f32(h, bw, t, bw, hb, wb);
        rc |= kws_bgemm_threshold(hb, wb, k->up, k->ldu, t, hw, bw, k->up_thresh, k->up_flip, z, wh);
        rc |= kws_bgemm_scale(z, wh, k->down, k->ldd, t, bw, hw, k->down_scale, k->down_shift, y, bw);
        add_into(h, y, t * bw);
    }
    free(hb); free(z); free(m); free(y);
    return rc;
}
