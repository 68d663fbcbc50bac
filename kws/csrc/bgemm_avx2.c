/* x86-64 AVX2 micro-kernel: outputs in vector lanes, nibbles split ahead of time.
 *
 * BiFSMN layers are shallow (k = 128..512 bits = 2..8 words), so the classic "one output per
 * vector, reduce at the end" layout spends most of its time in horizontal sums.  Here each 64-bit
 * lane of a ymm is a different output: a panel of 8 rows of w is interleaved word by word and one
 * word of a row of a is broadcast to all lanes.
 * popcount(a ^ w) by the nibble look-up (vpshufb) needs the low and high nibble of every byte of
 * the XOR; since (a ^ w) >> 4 = (a >> 4) ^ (w >> 4), both operands are split into their masked
 * low/high nibbles once per call, which leaves 6 vector ops per 256 binary MACs in the inner
 * loop: 2 XOR (with memory operands), 2 vpshufb, 2 byte ADDs (the floor for a 4-bit LUT).
 * Bytes absorb 31 words (31 * 8 < 256) before vpsadbw turns them into per-lane 64-bit totals.
 * Tile: 4 rows of a x 8 rows of w, 8 byte accumulators in registers; the tile loop (asm) runs at
 * ~13 cycles per word on Zen 3, ~92% of its 4 vector pipes.  a is padded to a multiple of 4 rows
 * and each panel to 8 rows (zeros), so every tile is full; only the store is partial.
 * The tile store applies the driver's epilogue (popcount, dot = k - 2*popcount, float scale, or
 * packed threshold bits) while the results are in registers: no second pass over the output.
 * Bits >= k are cleared in the split copies of both operands, so the XOR of the last word is exact.
 * Tried and dropped (no gain on Zen 3): scalar POPCNT columns beside the vector tile (the front
 * end, 6 ops/cycle, is then the limit), panels held in registers, 2 x 16 tiles, byte-lane layouts
 * with per-nibble tables (vpshufb-bound at ~1.5/cycle).
 * Compiled with per-function target attributes: safe in a binary that runs on pre-AVX2 CPUs. */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,popcnt")))
#define INLINE static inline __attribute__((always_inline))
#define MR 4                                   /* rows of a per tile */
#define NR 8                                   /* rows of w per tile: 2 ymm of 4 lanes */
#define PB 8                                   /* panels per column block: 64 outputs */
#define LO4 UINT64_C(0x0f0f0f0f0f0f0f0f)

/* Split layouts (64-bit words):
 *   a: A[i][q] = {low nibbles of word q of row i, high nibbles shifted down};
 *   panel: P[q][16] = lo of rows 0 2 4 6 | lo of rows 1 3 5 7 | hi 0 2 4 6 | hi 1 3 5 7.
 * Even rows in one vector and odd rows in the other make vpsadbw + shift + or yield the 8 results
 * in natural order (no cross-lane permute in the store). */
#define P_LANE(r) (((r) & 1) * 4 + ((r) >> 1))

/* One depth word of one row (address expression AROW) against the panel at %[p]: 2 broadcasts,
 * 4 x (XOR, vpshufb, ADD) into the row's even/odd counters.  ROW0 is the first word: its
 * look-ups initialise the counters (no zeroing, 2 ADDs fewer). */
#define ROW(AROW, E, O)                                                                          \
    "vpbroadcastq " AROW ", %[t0]\n\t"                                                           \
    "vpbroadcastq 8" AROW ", %[t1]\n\t"                                                          \
    "vpxor (%[p]), %[t0], %[t2]\n\t"                                                             \
    "vpshufb %[t2], %[lut], %[t2]\n\t"                                                           \
    "vpaddb %[t2], %[" E "], %[" E "]\n\t"                                                       \
    "vpxor 32(%[p]), %[t0], %[t0]\n\t"                                                           \
    "vpshufb %[t0], %[lut], %[t0]\n\t"                                                           \
    "vpaddb %[t0], %[" O "], %[" O "]\n\t"                                                       \
    "vpxor 64(%[p]), %[t1], %[t2]\n\t"                                                           \
    "vpshufb %[t2], %[lut], %[t2]\n\t"                                                           \
    "vpaddb %[t2], %[" E "], %[" E "]\n\t"                                                       \
    "vpxor 96(%[p]), %[t1], %[t1]\n\t"                                                           \
    "vpshufb %[t1], %[lut], %[t1]\n\t"                                                           \
    "vpaddb %[t1], %[" O "], %[" O "]\n\t"
#define ROW0(AROW, E, O)                                                                         \
    "vpbroadcastq " AROW ", %[t0]\n\t"                                                           \
    "vpbroadcastq 8" AROW ", %[t1]\n\t"                                                          \
    "vpxor (%[p]), %[t0], %[t2]\n\t"                                                             \
    "vpshufb %[t2], %[lut], %[" E "]\n\t"                                                        \
    "vpxor 32(%[p]), %[t0], %[t0]\n\t"                                                           \
    "vpshufb %[t0], %[lut], %[" O "]\n\t"                                                        \
    "vpxor 64(%[p]), %[t1], %[t2]\n\t"                                                           \
    "vpshufb %[t2], %[lut], %[t2]\n\t"                                                           \
    "vpaddb %[t2], %[" E "], %[" E "]\n\t"                                                       \
    "vpxor 96(%[p]), %[t1], %[t1]\n\t"                                                           \
    "vpshufb %[t1], %[lut], %[t1]\n\t"                                                           \
    "vpaddb %[t1], %[" O "], %[" O "]\n\t"

/* acc[i][0/1] = byte counts of words [0, n) of the 4 split rows at A (row stride sa bytes)
 * against panel P; n >= 1.  In asm because gcc, given the unrolled tile in intrinsics, hoists
 * loads and addresses far ahead and spills accumulators; here 8 counters + LUT + 3 temporaries
 * fit the 16 ymm registers and the out-of-order core does the scheduling (~12.5 cycles per
 * word on Zen 3 against the 12 of its 4 vector pipes). */
TARGET INLINE void tile_words(const uint64_t *A, size_t sa, const uint64_t *P, size_t n,
                              __m256i lut, __m256i acc[MR][2]) {
    __m256i t0, t1, t2;
    const size_t sa3 = 3 * sa;
    __asm__(ROW0("(%[a])", "e0", "o0")
            ROW0("(%[a],%[sa],1)", "e1", "o1")
            ROW0("(%[a],%[sa],2)", "e2", "o2")
            ROW0("(%[a],%[sa3],1)", "e3", "o3")
            "dec %[n]\n\t"
            "jz 2f\n\t"
            "1:\n\t"
            "add $16, %[a]\n\t"
            "sub $-128, %[p]\n\t"
            ROW("(%[a])", "e0", "o0")
            ROW("(%[a],%[sa],1)", "e1", "o1")
            ROW("(%[a],%[sa],2)", "e2", "o2")
            ROW("(%[a],%[sa3],1)", "e3", "o3")
            "dec %[n]\n\t"
            "jnz 1b\n\t"
            "2:"
            : [e0] "=&x"(acc[0][0]), [o0] "=&x"(acc[0][1]), [e1] "=&x"(acc[1][0]), [o1] "=&x"(acc[1][1]),
              [e2] "=&x"(acc[2][0]), [o2] "=&x"(acc[2][1]), [e3] "=&x"(acc[3][0]), [o3] "=&x"(acc[3][1]),
              [t0] "=&x"(t0), [t1] "=&x"(t1), [t2] "=&x"(t2), [a] "+r"(A), [p] "+r"(P), [n] "+r"(n)
            : [lut] "x"(lut), [sa] "r"(sa), [sa3] "r"(sa3),
              /* what the asm reads (no "memory" clobber: the caller's pointers stay in registers) */
              "m"(*(const uint64_t(*)[])A), "m"(*(const uint64_t(*)[])P)
            : "cc");
}

/* The 8 int32 popcounts (in order) of each row of one MR x NR tile (doubled if lut is). */
TARGET INLINE void tile(const uint64_t *A, size_t kw, const uint64_t *P, __m256i lut, __m256i pc[MR]) {
    const __m256i zero = _mm256_setzero_si256();
    __m256i acc[MR][2];
    if (kw - 1 < 31) {   /* 1..31 words: bytes cannot overflow (every BiFSMN layer) */
        tile_words(A, 16 * kw, P, kw, lut, acc);
        for (int i = 0; i < MR; i++)
            pc[i] = _mm256_or_si256(_mm256_sad_epu8(acc[i][0], zero),
                                    _mm256_slli_epi64(_mm256_sad_epu8(acc[i][1], zero), 32));
        return;
    }
    __m256i tot[MR][2];  /* long rows (or k = 0): 64-bit totals every 31 words */
    for (int i = 0; i < MR; i++) tot[i][0] = tot[i][1] = zero;
    for (size_t q = 0; q < kw;) {
        const size_t words = (kw - q > 31) ? 31 : kw - q;
        tile_words(A + 2 * q, 16 * kw, P + 16 * q, words, lut, acc);
        q += words;
        for (int i = 0; i < MR; i++)
            for (int h = 0; h < 2; h++) tot[i][h] = _mm256_add_epi64(tot[i][h], _mm256_sad_epu8(acc[i][h], zero));
    }
    for (int i = 0; i < MR; i++) pc[i] = _mm256_or_si256(tot[i][0], _mm256_slli_epi64(tot[i][1], 32));
}

/* Per-panel epilogue constants, computed once per 8 columns and used for all rows. */
typedef struct {
    __m256i thresh, mask;      /* mask: lanes j < nr (partial panels) */
    __m256 scale, bias;
    unsigned flip, keep;       /* threshold: flip bits, valid bits of this panel's byte */
    size_t nr;
} panel_epi;

/* Store one tile row (8 int32 popcounts in order, doubled if DBL) into output row o (of the
 * KIND's element type), columns j0.. . */
TARGET INLINE void store_row(__m256i pc, __m256i k, char *o, const panel_epi *pe, size_t j0, int accumulate,
                             const int KIND, const int DBL) {
    const __m256i dot = _mm256_sub_epi32(k, DBL ? pc : _mm256_add_epi32(pc, pc));
    if (KIND == KWS_EPI_THRESH) {
        /* bit 1 = -1: y = -1 iff (dot < thresh) XOR flip; byte j0/8 of the LSB-first packed row */
        const unsigned below = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(pe->thresh, dot)));
        ((uint8_t *)o)[j0 / 8] = (uint8_t)((below ^ pe->flip) & pe->keep);
    } else if (KIND == KWS_EPI_SCALE) {
        /* separate multiply and add (no FMA): the same two roundings as the reference */
        __m256 y = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), pe->scale), pe->bias);
        float *const oj = (float *)o + j0;
        if (pe->nr == NR) {
            if (accumulate) y = _mm256_add_ps(_mm256_loadu_ps(oj), y);
            _mm256_storeu_ps(oj, y);
        } else {
            if (accumulate) y = _mm256_add_ps(_mm256_maskload_ps(oj, pe->mask), y);
            _mm256_maskstore_ps(oj, pe->mask, y);
        }
    } else {
        const __m256i v = KIND == KWS_EPI_DOT ? dot : pc;
        if (pe->nr == NR) _mm256_storeu_si256((__m256i *)((int32_t *)o + j0), v);
        else _mm256_maskstore_epi32((int *)o + j0, pe->mask, v);
    }
}

/* Split panel of the nr <= 8 rows of w at w (zeros for rows >= nr): two gathers per word. */
TARGET INLINE void build_panel(const uint64_t *w, size_t ldw, size_t nr, size_t kw, uint64_t last,
                               uint64_t *P) {
    const __m256i lo4 = _mm256_set1_epi64x((long long)LO4), zero = _mm256_setzero_si256();
    const long long l = (long long)ldw;
    const __m256i ie = _mm256_setr_epi64x(0, 2 * l, 4 * l, 6 * l), io = _mm256_setr_epi64x(l, 3 * l, 5 * l, 7 * l);
    const __m256i n = _mm256_set1_epi64x((long long)nr);
    const __m256i me = _mm256_cmpgt_epi64(n, _mm256_setr_epi64x(0, 2, 4, 6));
    const __m256i mo = _mm256_cmpgt_epi64(n, _mm256_setr_epi64x(1, 3, 5, 7));
    for (size_t q = 0; q < kw; q++) {
        const __m256i keep = _mm256_set1_epi64x(q + 1 == kw ? (long long)last : -1);
        const __m256i ve = _mm256_and_si256(keep, _mm256_mask_i64gather_epi64(zero, (const long long *)(w + q), ie, me, 8));
        const __m256i vo = _mm256_and_si256(keep, _mm256_mask_i64gather_epi64(zero, (const long long *)(w + q), io, mo, 8));
        __m256i *p = (__m256i *)(P + q * 16);
        _mm256_store_si256(p, _mm256_and_si256(ve, lo4));
        _mm256_store_si256(p + 1, _mm256_and_si256(vo, lo4));
        _mm256_store_si256(p + 2, _mm256_and_si256(_mm256_srli_epi64(ve, 4), lo4));
        _mm256_store_si256(p + 3, _mm256_and_si256(_mm256_srli_epi64(vo, 4), lo4));
    }
}

/* Everything after the split of a, for one epilogue KIND (a compile-time constant).
 * Loop order: blocks of 64 columns (8 panels, <= 8 KB: stay in L1 beside the split a), then row
 * tiles, then the block's panels.  Each tile row thus finishes whole 64-byte lines of the output
 * (one packed word for THRESH); sweeping one 8-column panel down all rows instead writes half
 * lines at a power-of-two stride, which maps every row to the same few L1 sets: the lines are
 * evicted before the next panel completes them, and the stores go to L2. */
TARGET INLINE void panels(const uint64_t *A, size_t mp, size_t m, size_t kw, uint64_t last,
                          const uint64_t *w, size_t ldw, size_t n, size_t k, uint64_t *P,
                          const kws_epilogue *e, const int KIND, const int DBL) {
    /* DBL: the look-up returns 2 * popcount, so the store needs no doubling for k - 2*popcount
     * (bytes then hold 2 * 8 * 15 < 256 at most: kw <= 15) */
    const __m256i lut = DBL ? _mm256_setr_epi8(0, 2, 2, 4, 2, 4, 4, 6, 2, 4, 4, 6, 4, 6, 6, 8,
                                               0, 2, 2, 4, 2, 4, 4, 6, 2, 4, 4, 6, 4, 6, 6, 8)
                            : _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                               0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i kv = _mm256_set1_epi32((int)k);
    char *const out = e->out;   /* row stride in bytes: */
    const size_t ldb = e->ldo * (KIND == KWS_EPI_THRESH ? sizeof(uint64_t) : sizeof(int32_t));
    panel_epi pe[PB];
    for (size_t jb = 0; jb < n; jb += PB * NR) {
        const size_t np = (n - jb + NR - 1) / NR < PB ? (n - jb + NR - 1) / NR : PB;
        for (size_t b = 0; b < np; b++) {
            const size_t j0 = jb + b * NR, nr = (n - j0 < NR) ? n - j0 : NR;
            uint64_t *Pb = P + b * 16 * kw;
            build_panel(w + j0 * ldw, ldw, nr, kw, last, Pb);
            pe[b].nr = nr;
            pe[b].mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            if (KIND == KWS_EPI_THRESH) {
                int32_t t[NR] = {0};
                unsigned flip = 0;
                for (size_t j = 0; j < nr; j++) {
                    t[j] = e->thresh[j0 + j];
                    flip |= (unsigned)(e->flip[j0 + j] != 0) << j;
                }
                pe[b].thresh = _mm256_loadu_si256((const __m256i *)t);
                pe[b].flip = flip;
                pe[b].keep = (1u << nr) - 1;
            } else if (KIND == KWS_EPI_SCALE) {
                pe[b].scale = _mm256_maskload_ps(e->scale + j0, pe[b].mask);
                pe[b].bias = _mm256_maskload_ps(e->bias + j0, pe[b].mask);
            }
        }
        for (size_t i0 = 0; i0 < mp; i0 += MR) {
            const size_t rows = (m - i0 < MR) ? m - i0 : MR;
            char *o = out + i0 * ldb;
            if (KIND == KWS_EPI_THRESH)   /* tiles write bytes: clear the padding bytes first */
                for (size_t i = 0; i < rows; i++) ((uint64_t *)(o + i * ldb))[jb / 64] = 0;
            for (size_t b = 0; b < np; b++) {
                __m256i pc[MR];
                tile(A + i0 * 2 * kw, kw, P + b * 16 * kw, lut, pc);
                if (rows == MR) {
                    for (int i = 0; i < MR; i++) store_row(pc[i], kv, o + i * ldb, &pe[b], jb + b * NR, e->accumulate, KIND, DBL);
                } else {
                    for (size_t i = 0; i < rows; i++) store_row(pc[i], kv, o + i * ldb, &pe[b], jb + b * NR, e->accumulate, KIND, DBL);
                }
            }
        }
    }
}

TARGET static int gemm_avx2(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                            size_t m, size_t n, size_t k, const kws_epilogue *e) {
    const size_t kw = KWS_WORDS(k);
    const uint64_t last = (k % 64) ? ((UINT64_C(1) << (k % 64)) - 1) : ~UINT64_C(0);
    const size_t mp = (m + MR - 1) / MR * MR;
    /* scratch: split a [mp][kw][2] and a block of split panels [PB][kw][16], 32-byte aligned;
     * small calls (every BiFSMN layer at M <= 100) stay on the stack: no allocator round trip */
    const size_t a_words = (mp * 2 * kw + 3) / 4 * 4, p_words = PB * kw * 16;
    uint64_t stack_buf[4096] __attribute__((aligned(32)));
    uint64_t *A = stack_buf;
    if (a_words + p_words > sizeof stack_buf / sizeof *stack_buf) {
        A = aligned_alloc(32, (a_words + p_words) * 8);
        if (!A) return -1;
    }
    uint64_t *P = A + a_words;
    const __m256i lo4 = _mm256_set1_epi64x((long long)LO4);
    const __m256i tail = _mm256_setr_epi64x(-1, -1, -1, (long long)last);
    for (size_t i = 0; i < mp; i++) {
        uint64_t *Ai = A + i * 2 * kw;
        if (i >= m) {
            memset(Ai, 0, 2 * kw * sizeof *Ai);
            continue;
        }
        const uint64_t *ai = a + i * lda;
        size_t q = 0;
        for (; q + 4 <= kw; q += 4) {   /* 4 words -> lo hi lo hi ... */
            __m256i v = _mm256_loadu_si256((const __m256i *)(ai + q));
            if (q + 4 == kw) v = _mm256_and_si256(v, tail);
            const __m256i lo = _mm256_and_si256(v, lo4), hi = _mm256_and_si256(_mm256_srli_epi64(v, 4), lo4);
            const __m256i x = _mm256_unpacklo_epi64(lo, hi), y = _mm256_unpackhi_epi64(lo, hi);
            _mm256_storeu_si256((__m256i *)(Ai + 2 * q), _mm256_permute2x128_si256(x, y, 0x20));
            _mm256_storeu_si256((__m256i *)(Ai + 2 * q + 4), _mm256_permute2x128_si256(x, y, 0x31));
        }
        for (; q < kw; q++) {
            const uint64_t v = ai[q] & (q + 1 == kw ? last : ~UINT64_C(0));
            Ai[2 * q] = v & LO4;
            Ai[2 * q + 1] = (v >> 4) & LO4;
        }
    }
    /* one specialised copy per epilogue (and look-up table), chosen once per call */
    const int dbl = kw <= 15;
    switch (e->kind * 2 + dbl) {
#define CASE(KIND, DBL) case KIND * 2 + DBL: panels(A, mp, m, kw, last, w, ldw, n, k, P, e, KIND, DBL); break;
        CASE(KWS_EPI_DOT, 0) CASE(KWS_EPI_DOT, 1)
        CASE(KWS_EPI_SCALE, 0) CASE(KWS_EPI_SCALE, 1)
        CASE(KWS_EPI_THRESH, 0) CASE(KWS_EPI_THRESH, 1)
#undef CASE
        default: panels(A, mp, m, kw, last, w, ldw, n, k, P, e, KWS_EPI_POPCNT, 0);
    }
    if (A != stack_buf) free(A);
    return 0;
}

TARGET static void popcnt_avx2(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                               size_t m, size_t n, size_t k, int32_t *out, size_t ldo) {
    const kws_epilogue e = {KWS_EPI_POPCNT, out, ldo, 0, 0, 0, 0, 0};
    if (gemm_avx2(a, lda, w, ldw, m, n, k, &e))   /* out of memory: the portable kernel needs none */
        kws_isa_scalar()->popcnt(a, lda, w, ldw, m, n, k, out, ldo);
}

static const kws_isa isa = {"avx2", popcnt_avx2, gemm_avx2};
const kws_isa *kws_isa_avx2(void) { return &isa; }
#else
const kws_isa *kws_isa_avx2(void) { return 0; }
#endif
