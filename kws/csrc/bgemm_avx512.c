/* x86-64 AVX-512 micro-kernel (needs AVX512F + AVX512VPOPCNTDQ): 4x4 output tiles, 512 bits of
 * depth per step, vpopcntq straight into 64-bit lane counters (no byte LUT, no overflow care).
 * The ragged end is one masked step (zero-masked loads never read past the row, then a bit mask
 * clears bits >= k).  Per-function target attributes: safe in a binary for any x86-64 CPU. */
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vpopcntdq")))
#define INLINE static inline __attribute__((always_inline))

TARGET INLINE void tile(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw, size_t k,
                        int32_t *out, size_t ldo, const int MR, const int NR) {
    __m512i acc[MR * NR];
    for (int t = 0; t < MR * NR; t++) acc[t] = _mm512_setzero_si512();
    const size_t full = k / 512;
    for (size_t s = 0; s < full; s++) {
        __m512i av[MR];
        for (int i = 0; i < MR; i++) av[i] = _mm512_loadu_si512((const void *)(a + i * lda + 8 * s));
        for (int j = 0; j < NR; j++) {
            const __m512i wv = _mm512_loadu_si512((const void *)(w + j * ldw + 8 * s));
            for (int i = 0; i < MR; i++)
                acc[i * NR + j] = _mm512_add_epi64(acc[i * NR + j],
                                                   _mm512_popcnt_epi64(_mm512_xor_si512(av[i], wv)));
        }
    }
    const size_t rest = k - full * 512;
    if (rest) {
        uint64_t bits[8];
        __mmask8 lmask = 0;
        for (int q = 0; q < 8; q++) {
            const long long valid = (long long)rest - 64 * q;
            bits[q] = valid >= 64 ? ~UINT64_C(0) : valid <= 0 ? 0 : (UINT64_C(1) << valid) - 1;
            if (valid > 0) lmask |= (__mmask8)(1u << q);
        }
        const __m512i bmask = _mm512_loadu_si512((const void *)bits);
        __m512i av[MR];
        for (int i = 0; i < MR; i++) av[i] = _mm512_maskz_loadu_epi64(lmask, a + i * lda + 8 * full);
        for (int j = 0; j < NR; j++) {
            const __m512i wv = _mm512_maskz_loadu_epi64(lmask, w + j * ldw + 8 * full);
            for (int i = 0; i < MR; i++)
                acc[i * NR + j] = _mm512_add_epi64(
                    acc[i * NR + j],
                    _mm512_popcnt_epi64(_mm512_and_si512(_mm512_xor_si512(av[i], wv), bmask)));
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) out[i * ldo + j] = (int32_t)_mm512_reduce_add_epi64(acc[i * NR + j]);
}

TARGET static void popcnt_avx512(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                                 size_t m, size_t n, size_t k, int32_t *out, size_t ldo) {
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        size_t j = 0;
        for (; j + 4 <= n; j += 4) tile(a + i * lda, lda, w + j * ldw, ldw, k, out + i * ldo + j, ldo, 4, 4);
        for (; j < n; j++) tile(a + i * lda, lda, w + j * ldw, ldw, k, out + i * ldo + j, ldo, 4, 1);
    }
    for (; i < m; i++) {
        size_t j = 0;
        for (; j + 4 <= n; j += 4) tile(a + i * lda, lda, w + j * ldw, ldw, k, out + i * ldo + j, ldo, 1, 4);
        for (; j < n; j++) tile(a + i * lda, lda, w + j * ldw, ldw, k, out + i * ldo + j, ldo, 1, 1);
    }
}

static const kws_isa isa = {"avx512", popcnt_avx512};
const kws_isa *kws_isa_avx512(void) { return &isa; }
#else
const kws_isa *kws_isa_avx512(void) { return 0; }
#endif
