/* Sign packing: bit = !(x >= t), LSB first (see kernels.h); t = 0, or a per-column threshold.
 * NaN packs as -1 and is counted so the Python layer can reject it.  float32 rows use the baseline
 * SIMD of each architecture (SSE2 movemask on x86-64, NEON on aarch64: both always present) 4
 * values at a time. */
#include <string.h>
#include "kernels.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#if defined(__SSE2__)
/* Set bits of a 4-bit mask, by table: __builtin_popcount is a libgcc call in a baseline x86-64
 * build (no POPCNT), and was 6 % of a whole inference here. */
static const unsigned char bits4[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};
#endif

/* 4 floats -> 4 sign bits (bit i = !(x[i] >= t[i])) and the number of NaNs among them. */
static inline unsigned signs4(const float *x, const float *t, size_t *nans) {
#if defined(__SSE2__)
    const __m128 v = _mm_loadu_ps(x);
    *nans += bits4[_mm_movemask_ps(_mm_cmpunord_ps(v, v))];
    return (unsigned)_mm_movemask_ps(_mm_cmpnge_ps(v, t ? _mm_loadu_ps(t) : _mm_setzero_ps()));
#elif defined(__aarch64__)
    const float32x4_t v = vld1q_f32(x);
    const uint32x4_t ge = vcgeq_f32(v, t ? vld1q_f32(t) : vdupq_n_f32(0.0f));  /* all-ones lanes */
    const uint32x4_t ord = vceqq_f32(v, v);
    const uint32x4_t w = {1, 2, 4, 8};
    *nans += 4 - (vaddvq_u32(vandq_u32(ord, vdupq_n_u32(1))));
    return vaddvq_u32(vbicq_u32(w, ge));                               /* bits where !(x >= t) */
#else
    unsigned b = 0;
    for (int i = 0; i < 4; i++) {
        b |= (unsigned)(!(x[i] >= (t ? t[i] : 0.0f))) << i;
        *nans += (x[i] != x[i]);
    }
    return b;
#endif
}

/* Bits b.. end-1 of one packed word (values base + b ...), 4 at a time then one by one: the
 * portable path, and the tail of the AVX2 path. */
static inline uint64_t signs_from(const float *xi, const float *thresh, size_t base, size_t b,
                                  size_t end, size_t *nans) {
    uint64_t word = 0;
    for (; b + 4 <= end; b += 4)
        word |= (uint64_t)signs4(xi + base + b, thresh ? thresh + base + b : NULL, nans) << b;
    for (; b < end; b++) {
        const float v = xi[base + b];
        word |= (uint64_t)(!(v >= (thresh ? thresh[base + b] : 0.0f))) << b;
        *nans += (v != v);
    }
    return word;
}

#if defined(__x86_64__)
#include <immintrin.h>
/* AVX-512: 16 signs per compare straight into a mask register (the residual stream is packed
 * twice per block: with SSE2's 4 per movemask it was 8 % of a whole inference).  Lanes past k
 * are masked out of the load, the bits and the NaN count. */
__attribute__((target("avx512f,popcnt")))
static size_t pack_f32_avx512(const float *x, size_t ldx, size_t m, size_t k, const float *thresh,
                              uint64_t *out, size_t ldo) {
    size_t nans = 0;
    const size_t kw = KWS_WORDS(k);
    for (size_t i = 0; i < m; i++) {
        const float *xi = x + i * ldx;
        for (size_t q = 0; q < kw; q++) {
            uint64_t word = 0;
            for (size_t b = 0; b < 64 && q * 64 + b < k; b += 16) {
                const size_t j = q * 64 + b, left = k - j;
                const __mmask16 valid = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
                const __m512 v = _mm512_maskz_loadu_ps(valid, xi + j);
                const __m512 t = thresh ? _mm512_maskz_loadu_ps(valid, thresh + j) : _mm512_setzero_ps();
                const __mmask16 neg = _mm512_mask_cmp_ps_mask(valid, v, t, _CMP_NGE_UQ);   /* !(v >= t) */
                nans += (size_t)__builtin_popcount(_mm512_mask_cmp_ps_mask(valid, v, v, _CMP_UNORD_Q));
                word |= (uint64_t)neg << b;
            }
            out[i * ldo + q] = word;
        }
    }
    return nans;
}

/* AVX2: 8 signs per compare and movemask (SSE2's 4 per movemask cost 4 instructions per float,
 * 11 % of a 0.5x4 inference's instructions under valgrind); the last < 8 values of a word go
 * through signs_from. */
__attribute__((target("avx2,popcnt")))
static size_t pack_f32_avx2(const float *x, size_t ldx, size_t m, size_t k, const float *thresh,
                            uint64_t *out, size_t ldo) {
    size_t nans = 0;
    const size_t kw = KWS_WORDS(k);
    for (size_t i = 0; i < m; i++) {
        const float *xi = x + i * ldx;
        for (size_t q = 0; q < kw; q++) {
            const size_t base = q * 64, end = (k - base < 64) ? k - base : 64;
            uint64_t word = 0;
            size_t b = 0;
            for (; b + 8 <= end; b += 8) {
                const __m256 v = _mm256_loadu_ps(xi + base + b);
                const __m256 t = thresh ? _mm256_loadu_ps(thresh + base + b) : _mm256_setzero_ps();
                nans += (size_t)__builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
                word |= (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, t, _CMP_NGE_UQ)) << b;
            }
            out[i * ldo + q] = word | signs_from(xi, thresh, base, b, end, &nans);
        }
    }
    return nans;
}
#endif

size_t kws_pack_f32(const float *x, size_t ldx, size_t m, size_t k, const float *thresh,
                    uint64_t *out, size_t ldo) {
#if defined(__x86_64__)
    /* with the AVX-512 or AVX2 kernels selected (so KWS_KERNEL=scalar tests the portable path) */
    const kws_isa *isa = kws_current();
    if (isa == kws_isa_avx512()) return pack_f32_avx512(x, ldx, m, k, thresh, out, ldo);
    if (isa == kws_isa_avx2()) return pack_f32_avx2(x, ldx, m, k, thresh, out, ldo);
#endif
    size_t nans = 0;
    const size_t kw = KWS_WORDS(k);
    for (size_t i = 0; i < m; i++) {
        const float *xi = x + i * ldx;
        uint64_t *oi = out + i * ldo;
        for (size_t q = 0; q < kw; q++) {
            const size_t base = q * 64, end = (k - base < 64) ? k - base : 64;
            oi[q] = signs_from(xi, thresh, base, 0, end, &nans);
        }
    }
    return nans;
}

size_t kws_pack_f64(const double *x, size_t ldx, size_t m, size_t k, uint64_t *out, size_t ldo) {
    size_t nans = 0;
    const size_t kw = KWS_WORDS(k);
    for (size_t i = 0; i < m; i++) {
        const double *xi = x + i * ldx;
        uint64_t *oi = out + i * ldo;
        for (size_t q = 0; q < kw; q++) {
            const size_t base = q * 64, end = (k - base < 64) ? k - base : 64;
            uint64_t word = 0;
            for (size_t b = 0; b < end; b++) {
                const double v = xi[base + b];
                word |= (uint64_t)(!(v >= 0)) << b;
                nans += (v != v);
            }
            oi[q] = word;
        }
    }
    return nans;
}

void kws_pack_i8(const int8_t *x, size_t ldx, size_t m, size_t k, uint64_t *out, size_t ldo) {
    const size_t kw = KWS_WORDS(k);
    for (size_t i = 0; i < m; i++) {
        const int8_t *xi = x + i * ldx;
        uint64_t *oi = out + i * ldo;
        for (size_t q = 0; q < kw; q++) {
            const size_t base = q * 64, end = (k - base < 64) ? k - base : 64;
            uint64_t word = 0;
            for (size_t b = 0; b < end; b++) word |= (uint64_t)(xi[base + b] < 0) << b;
            oi[q] = word;
        }
    }
}

void kws_unpack_i8(const uint64_t *p, size_t ldp, size_t m, size_t k, int8_t *out, size_t ldo) {
    for (size_t i = 0; i < m; i++) {
        const uint64_t *pi = p + i * ldp;
        int8_t *oi = out + i * ldo;
        for (size_t j = 0; j < k; j++) oi[j] = ((pi[j / 64] >> (j % 64)) & 1) ? -1 : 1;
    }
}
