/* x86-64 AVX2 micro-kernel: 2x4 output tiles, 256 bits of depth per step.
 *
 * popcount of a ymm by the nibble look-up table (vpshufb) into byte counters; bytes absorb up to
 * 31 steps (31 * 8 < 256) before vpsadbw folds them into 64-bit lanes.  The ragged end of a row
 * (k not a multiple of 256) is one masked step: vpmaskmovq never touches words past the row and
 * a bit mask clears bits >= k, so no scalar tail loop is needed.  Compiled with per-function
 * target attributes: the file is safe to build into a binary that runs on pre-AVX2 CPUs. */
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,popcnt")))
#define INLINE static inline __attribute__((always_inline))

TARGET INLINE __m256i popcnt_bytes(__m256i x, __m256i lut, __m256i low4) {
    const __m256i lo = _mm256_and_si256(x, low4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

/* 4 vectors of 4 u64 partial sums -> one vector of their 4 totals (as u32) */
TARGET INLINE __m128i hsum4(__m256i s0, __m256i s1, __m256i s2, __m256i s3) {
    const __m256i s01 = _mm256_or_si256(s0, _mm256_slli_epi64(s1, 32));  /* [a0 b0 a1 b1 ..] */
    const __m256i s23 = _mm256_or_si256(s2, _mm256_slli_epi64(s3, 32));
    const __m256i x = _mm256_add_epi32(_mm256_unpacklo_epi64(s01, s23),
                                       _mm256_unpackhi_epi64(s01, s23));
    return _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
}

TARGET INLINE int32_t hsum1(__m256i s) {
    const __m128i x = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return (int32_t)(_mm_cvtsi128_si64(x) + _mm_extract_epi64(x, 1));
}

/* One MR x NR tile over the whole depth.  MR, NR are compile-time constants at every call site,
 * so the accumulator arrays live in registers. */
TARGET INLINE void tile(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw, size_t k,
                        int32_t *out, size_t ldo, const int MR, const int NR) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i zero = _mm256_setzero_si256();
    __m256i acc8[MR * NR], acc64[MR * NR];
    for (int t = 0; t < MR * NR; t++) acc8[t] = acc64[t] = zero;

    const size_t full = k / 256;
    int pending = 0;   /* steps accumulated in the byte counters */
    for (size_t s = 0; s < full; s++) {
        __m256i av[MR];
        for (int i = 0; i < MR; i++) av[i] = _mm256_loadu_si256((const __m256i *)(a + i * lda + 4 * s));
        for (int j = 0; j < NR; j++) {
            const __m256i wv = _mm256_loadu_si256((const __m256i *)(w + j * ldw + 4 * s));
            for (int i = 0; i < MR; i++)
                acc8[i * NR + j] = _mm256_add_epi8(acc8[i * NR + j],
                                                   popcnt_bytes(_mm256_xor_si256(av[i], wv), lut, low4));
        }
        if (++pending == 31) {
            for (int t = 0; t < MR * NR; t++) {
                acc64[t] = _mm256_add_epi64(acc64[t], _mm256_sad_epu8(acc8[t], zero));
                acc8[t] = zero;
            }
            pending = 0;
        }
    }
    const size_t rest = k - full * 256;
    if (rest) {   /* the masked last step */
        long long bits[4], load[4];
        for (int q = 0; q < 4; q++) {
            const long long valid = (long long)rest - 64 * q;
            bits[q] = valid >= 64 ? -1LL : valid <= 0 ? 0 : (long long)((UINT64_C(1) << valid) - 1);
            load[q] = valid > 0 ? -1LL : 0;
        }
        const __m256i bmask = _mm256_loadu_si256((const __m256i *)bits);
        const __m256i lmask = _mm256_loadu_si256((const __m256i *)load);
        __m256i av[MR];
        for (int i = 0; i < MR; i++)
            av[i] = _mm256_maskload_epi64((const long long *)(a + i * lda + 4 * full), lmask);
        for (int j = 0; j < NR; j++) {
            const __m256i wv = _mm256_maskload_epi64((const long long *)(w + j * ldw + 4 * full), lmask);
            for (int i = 0; i < MR; i++)
                acc8[i * NR + j] = _mm256_add_epi8(
                    acc8[i * NR + j],
                    popcnt_bytes(_mm256_and_si256(_mm256_xor_si256(av[i], wv), bmask), lut, low4));
        }
    }
    for (int t = 0; t < MR * NR; t++) acc64[t] = _mm256_add_epi64(acc64[t], _mm256_sad_epu8(acc8[t], zero));
    for (int i = 0; i < MR; i++) {
        if (NR == 4) {
            _mm_storeu_si128((__m128i *)(out + i * ldo),
                             hsum4(acc64[i * NR], acc64[i * NR + 1], acc64[i * NR + 2], acc64[i * NR + 3]));
        } else {
            for (int j = 0; j < NR; j++) out[i * ldo + j] = hsum1(acc64[i * NR + j]);
        }
    }
}

TARGET static void popcnt_avx2(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                               size_t m, size_t n, size_t k, int32_t *out, size_t ldo) {
    size_t i = 0;
    for (; i + 2 <= m; i += 2) {
        size_t j = 0;
        for (; j + 4 <= n; j += 4) tile(a + i * lda, lda, w + j * ldw, ldw, k, out + i * ldo + j, ldo, 2, 4);
        for (; j < n; j++) tile(a + i * lda, lda, w + j * ldw, ldw, k, out + i * ldo + j, ldo, 2, 1);
    }
    for (; i < m; i++) {
        size_t j = 0;
        for (; j + 4 <= n; j += 4) tile(a + i * lda, lda, w + j * ldw, ldw, k, out + i * ldo + j, ldo, 1, 4);
        for (; j < n; j++) tile(a + i * lda, lda, w + j * ldw, ldw, k, out + i * ldo + j, ldo, 1, 1);
    }
}

static const kws_isa isa = {"avx2", popcnt_avx2};
const kws_isa *kws_isa_avx2(void) { return &isa; }
#else
const kws_isa *kws_isa_avx2(void) { return 0; }
#endif
