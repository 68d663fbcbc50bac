/* x86-64 AVX2 micro-kernel: outputs in vector lanes, nibbles split ahead of time.
 *
 * BiFSMN layers are shallow (k = 128..512 bits = 2..8 words), so the classic "one output per
 * vector, reduce at the end" layout spends most of its time in horizontal sums.  Here each 64-bit
 * lane of a ymm is a different output: a panel of 8 rows of w is interleaved word by word
 * (P[q][r] = w[r][q]) and one word of a row of a is broadcast to all lanes.
 * popcount(a ^ w) by the nibble look-up (vpshufb) needs the low and high nibble of every byte of
 * the XOR; since (a ^ w) >> 4 = (a >> 4) ^ (w >> 4), both operands are split into their masked
 * low/high nibbles once per call (scratch buffers), which leaves 6 vector ops per 256 binary MACs
 * in the inner loop: 2 XOR (with memory operands), 2 vpshufb, 2 byte ADDs.  Bytes absorb 31 words
 * (31 * 8 < 256) before vpsadbw turns them into per-lane 64-bit totals = the 8 outputs of a tile
 * row.  Tile: 4 rows of a x 8 rows of w (8 accumulators stay in registers).  Bits >= k are
 * cleared in the split copies of both operands, so the XOR of the last word is exact.
 * Compiled with per-function target attributes: safe in a binary that runs on pre-AVX2 CPUs. */
#include <stdlib.h>
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,popcnt")))
#define INLINE static inline __attribute__((always_inline))
#define NR 8                                   /* outputs per tile row: 2 ymm of 4 lanes */
#define LO4 UINT64_C(0x0f0f0f0f0f0f0f0f)

/* MR rows of split a (A[i][q] = {lo, hi}) against one split panel P[q][{lo,hi}][8]. */
TARGET INLINE void tile(const uint64_t *A, size_t kw, const uint64_t *P, int32_t *out, size_t ldo,
                        size_t nr, const int MR) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i zero = _mm256_setzero_si256();
    __m256i acc8[MR][2];
    /* 64-bit totals live in memory: only touched every 31 words, and keeping them out of
     * registers leaves all 16 ymm to the inner loop (no spills of the byte counters) */
    uint64_t tot[MR][NR] __attribute__((aligned(32)));
    const int long_k = kw > 31;     /* BiFSMN layers (k <= 1984) never need the memory totals */
    for (int i = 0; i < MR; i++) {
        acc8[i][0] = acc8[i][1] = zero;
        if (long_k) {
            _mm256_store_si256((__m256i *)&tot[i][0], zero);
            _mm256_store_si256((__m256i *)&tot[i][4], zero);
        }
    }

    size_t q = 0;
    while (q < kw) {
        const size_t stop = (kw - q > 31) ? q + 31 : kw;
        for (; q < stop; q++) {
            const __m256i *p = (const __m256i *)(P + q * 2 * NR);   /* lo0 lo1 hi0 hi1 */
            for (int i = 0; i < MR; i++) {
                const __m256i alo = _mm256_set1_epi64x((long long)A[(i * kw + q) * 2]);
                const __m256i ahi = _mm256_set1_epi64x((long long)A[(i * kw + q) * 2 + 1]);
                for (int h = 0; h < 2; h++) {
                    const __m256i lo = _mm256_xor_si256(alo, _mm256_loadu_si256(p + h));
                    const __m256i hi = _mm256_xor_si256(ahi, _mm256_loadu_si256(p + 2 + h));
                    acc8[i][h] = _mm256_add_epi8(acc8[i][h], _mm256_shuffle_epi8(lut, lo));
                    acc8[i][h] = _mm256_add_epi8(acc8[i][h], _mm256_shuffle_epi8(lut, hi));
                }
            }
        }
        if (q == kw) break;           /* last block: summed straight from registers below */
        for (int i = 0; i < MR; i++)
            for (int h = 0; h < 2; h++) {
                __m256i *t = (__m256i *)&tot[i][4 * h];
                _mm256_store_si256(t, _mm256_add_epi64(_mm256_load_si256(t), _mm256_sad_epu8(acc8[i][h], zero)));
                acc8[i][h] = zero;
            }
    }
    /* [c0 . c1 . c2 . c3 .] | [. c4 . c5 . c6 . c7] -> c0..c7 as int32 */
    const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    for (int i = 0; i < MR; i++) {
        __m256i t0 = _mm256_sad_epu8(acc8[i][0], zero), t1 = _mm256_sad_epu8(acc8[i][1], zero);
        if (long_k) {
            t0 = _mm256_add_epi64(t0, _mm256_load_si256((const __m256i *)&tot[i][0]));
            t1 = _mm256_add_epi64(t1, _mm256_load_si256((const __m256i *)&tot[i][4]));
        }
        const __m256i both = _mm256_or_si256(t0, _mm256_slli_epi64(t1, 32));
        const __m256i c = _mm256_permutevar8x32_epi32(both, order);
        if (nr == NR) {
            _mm256_storeu_si256((__m256i *)(out + i * ldo), c);
        } else {
            int32_t tmp[NR];
            _mm256_storeu_si256((__m256i *)tmp, c);
            for (size_t j = 0; j < nr; j++) out[i * ldo + j] = tmp[j];
        }
    }
}

TARGET static void popcnt_avx2(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                               size_t m, size_t n, size_t k, int32_t *out, size_t ldo) {
    const size_t kw = KWS_WORDS(k);
    const uint64_t last = (k % 64) ? ((UINT64_C(1) << (k % 64)) - 1) : ~UINT64_C(0);
    /* scratch: split a [m][kw][2] and one split panel [kw][2][NR], 32-byte aligned */
    const size_t a_words = m * kw * 2, p_words = kw * 2 * NR;
    uint64_t *A = aligned_alloc(32, ((a_words + p_words) * 8 + 31) / 32 * 32);
    if (!A) {   /* out of memory: the portable kernel needs no scratch */
        kws_isa_scalar()->popcnt(a, lda, w, ldw, m, n, k, out, ldo);
        return;
    }
    uint64_t *P = A + a_words;
    for (size_t i = 0; i < m; i++)
        for (size_t q = 0; q < kw; q++) {
            const uint64_t v = a[i * lda + q] & (q + 1 == kw ? last : ~UINT64_C(0));
            A[(i * kw + q) * 2] = v & LO4;
            A[(i * kw + q) * 2 + 1] = (v >> 4) & LO4;
        }
    for (size_t j0 = 0; j0 < n; j0 += NR) {
        const size_t nr = (n - j0 < NR) ? n - j0 : NR;
        for (size_t q = 0; q < kw; q++)
            for (size_t r = 0; r < NR; r++) {
                const uint64_t v = (r < nr) ? w[(j0 + r) * ldw + q] & (q + 1 == kw ? last : ~UINT64_C(0)) : 0;
                P[q * 2 * NR + r] = v & LO4;            /* lo half: lanes 0..7 */
                P[q * 2 * NR + NR + r] = (v >> 4) & LO4; /* hi half */
            }
        size_t i = 0;
        for (; i + 4 <= m; i += 4) tile(A + i * kw * 2, kw, P, out + i * ldo + j0, ldo, nr, 4);
        switch (m - i) {
            case 3: tile(A + i * kw * 2, kw, P, out + i * ldo + j0, ldo, nr, 3); break;
            case 2: tile(A + i * kw * 2, kw, P, out + i * ldo + j0, ldo, nr, 2); break;
            case 1: tile(A + i * kw * 2, kw, P, out + i * ldo + j0, ldo, nr, 1); break;
        }
    }
    free(A);
}

static const kws_isa isa = {"avx2", popcnt_avx2};
const kws_isa *kws_isa_avx2(void) { return &isa; }
#else
const kws_isa *kws_isa_avx2(void) { return 0; }
#endif
