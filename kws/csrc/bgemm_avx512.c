/* x86-64 AVX-512 micro-kernel (AVX512F/BW/VL + VPOPCNTDQ): outputs in vector lanes, the AVX2
 * kernel's layout with a real popcount instruction.
 *
 * Each 64-bit lane of a zmm is a different output: a panel of 8 rows of w is interleaved word by
 * word (P[q][r] = word q of row r) and one word of a row of a is broadcast to all lanes, so one
 * depth word of 8 outputs costs 3 vector ops (vpxorq, vpopcntq, vpaddq) with no horizontal sum
 * and no partial steps: k = 256 is 4 full steps, whatever k is.  (The previous kernel kept one
 * 512-bit accumulator per output and reduced it at the end: 2-5x slower on BiFSMN's k = 64..512.)
 * vpopcntq was chosen over vpopcntb + vpaddb + vpsadbw: the same 3 ops per step, the 64-bit lanes
 * hold finished counts (no byte overflow care, no final vpsadbw), and measured a few percent
 * faster on Intel Xeon fam 6 model 207 (docs/performance.md).
 * Tile: 4 rows of a x 4 panels (32 outputs), 16 accumulators + 4 panel words + temporaries in
 * the 32 zmm registers; per depth word 8 loads (4 panel vectors, 4 broadcasts) feed 48 ALU ops,
 * so the tile runs at the vector ALU ports' rate.
 * The store applies the driver's epilogue (popcount, dot = k - 2*popcount, float scale, or packed
 * threshold bits) on 16 outputs at a time while they are in registers: two panels' 64-bit counts
 * are narrowed into one zmm of 16 int32 by one vpermt2d.
 * a is copied with bits >= k cleared and padded to a multiple of 4 rows; panels are built per
 * column block of 64 outputs (8 panels, <= 4 KB for k <= 512) with bits >= k cleared and zero
 * rows past n, so every tile is full and only the stores are masked.
 * Per-function target attributes: safe in a binary for any x86-64 CPU. */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vpopcntdq")))
#define INLINE static inline __attribute__((always_inline))
#define MR 4            /* rows of a per tile */
#define NP 4            /* panels (of 8 rows of w) per tile: 32 outputs */
#define PB 8            /* panels per column block: 64 outputs, one packed word of THRESH output */

/* acc[i][j] = 64-bit popcounts of row i of A (kw >= 1 words each) against panel j of P (kw * 8
 * words per panel).  The first word's counts start the accumulators (no zeroing, no add): at
 * k = 256 (4 words) that was 1/13 of the tile's vector ops; 100x256->512 3-5 % faster. */
TARGET INLINE void tile(const uint64_t *A, size_t kw, const uint64_t *P, __m512i acc[MR][NP]) {
    {   /* depth word 0 starts the counts: no zeroing, no add */
        __m512i pv[NP];
        for (int j = 0; j < NP; j++) pv[j] = _mm512_load_si512((const void *)(P + j * kw * 8));
        for (int i = 0; i < MR; i++) {
            const __m512i av = _mm512_set1_epi64((long long)A[i * kw]);
            for (int j = 0; j < NP; j++) acc[i][j] = _mm512_popcnt_epi64(_mm512_xor_si512(av, pv[j]));
        }
    }
    for (size_t q = 1; q < kw; q++) {
        __m512i pv[NP];
        for (int j = 0; j < NP; j++) pv[j] = _mm512_load_si512((const void *)(P + (j * kw + q) * 8));
        for (int i = 0; i < MR; i++) {
            const __m512i av = _mm512_set1_epi64((long long)A[i * kw + q]);
            for (int j = 0; j < NP; j++)
                acc[i][j] = _mm512_add_epi64(acc[i][j], _mm512_popcnt_epi64(_mm512_xor_si512(av, pv[j])));
        }
    }
}

/* The epilogue's constants for 16 columns c0..c0+15, made once per column block and used by
 * every row (in the store they were reloaded per row: the output's char stores may alias them). */
typedef struct {
    __m512i thr;          /* THRESH: -1 iff popcount > thr (dot < thresh; see group_at) */
    __m512 scale, bias;   /* SCALE */
    __mmask16 valid, flip;
} group_epi;

TARGET INLINE group_epi group_at(const kws_epilogue *e, size_t k, size_t c0, size_t nc, const int KIND) {
    group_epi g;
    g.valid = nc >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nc) - 1);
    if (KIND == KWS_EPI_THRESH) {
        int32_t thr[16] __attribute__((aligned(64))) = {0};
        unsigned flip = 0;
        for (size_t j = 0; j < nc && j < 16; j++) {
            thr[j] = kws_popcount_bound(k, e->thresh[c0 + j]);
            flip |= (unsigned)(e->flip[c0 + j] != 0) << j;
        }
        g.thr = _mm512_load_si512((const void *)thr);
        g.flip = (__mmask16)flip;
    } else if (KIND == KWS_EPI_SCALE) {
        g.scale = _mm512_maskz_loadu_ps(g.valid, e->scale + c0);
        g.bias = _mm512_maskz_loadu_ps(g.valid, e->bias + c0);
    }
    return g;
}

/* Store 16 outputs (int32 popcounts pc of columns c0..c0+15) of one output row o (of the KIND's
 * element type) through the epilogue. */
TARGET INLINE void store16(__m512i pc, __m512i kv, char *o, size_t c0, const group_epi *g,
                           int accumulate, const int KIND) {
    if (KIND == KWS_EPI_THRESH) {
        /* bit 1 = -1: y = -1 iff (dot < thresh) XOR flip; c0 is a multiple of 16 */
        const __mmask16 below = _mm512_cmpgt_epi32_mask(pc, g->thr);
        ((uint16_t *)o)[c0 / 16] = (uint16_t)((below ^ g->flip) & g->valid);
        return;
    }
    const __m512i dot = _mm512_sub_epi32(kv, _mm512_add_epi32(pc, pc));
    if (KIND == KWS_EPI_SCALE) {
        /* separate multiply and add (no FMA): the same two roundings as the reference */
        __m512 y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), g->scale), g->bias);
        if (accumulate) y = _mm512_add_ps(_mm512_maskz_loadu_ps(g->valid, (float *)o + c0), y);
        _mm512_mask_storeu_ps((float *)o + c0, g->valid, y);
    } else {
        _mm512_mask_storeu_epi32((int32_t *)o + c0, g->valid, KIND == KWS_EPI_DOT ? dot : pc);
    }
}

/* Interleave the nr <= 8 rows of w (row stride ldw) into a panel P[q][8] (bits >= k cleared in the
 * last word, zero rows past nr).  Plain copies: gathers are microcoded and slow on some cores. */
INLINE void build_panel(const uint64_t *w, size_t ldw, size_t nr, size_t kw, uint64_t last, uint64_t *P) {
    for (size_t q = 0; q < kw; q++) {
        const uint64_t keep = q + 1 == kw ? last : ~UINT64_C(0);
        for (size_t r = 0; r < 8; r++) P[q * 8 + r] = r < nr ? w[r * ldw + q] & keep : 0;
    }
}

/* Everything after the copy of a, for one epilogue KIND (a compile-time constant).  Loop order as
 * in the AVX2 kernel: blocks of 64 columns (panels stay in L1), then row tiles, then the block's
 * tiles: each tile row completes whole cache lines of the output (one word for THRESH). */
TARGET INLINE void panels(const uint64_t *A, size_t mp, size_t m, size_t kw, uint64_t last,
                          const uint64_t *w, size_t ldw, size_t n, size_t k, uint64_t *P,
                          const kws_epilogue *e, const int KIND) {
    const __m512i kv = _mm512_set1_epi32((int)k);
    /* narrows two panels' 64-bit counts into 16 int32 in column order */
    const __m512i lo32 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    char *const out = e->out;
    const size_t ldb = e->ldo * (KIND == KWS_EPI_THRESH ? sizeof(uint64_t) : sizeof(int32_t));
    for (size_t jb = 0; jb < n; jb += PB * 8) {
        const size_t cols = n - jb < PB * 8 ? n - jb : PB * 8;
        const size_t np = (cols + 7) / 8, tiles = (np + NP - 1) / NP;
        for (size_t b = 0; b < tiles * NP; b++) {      /* panels past n: zeros (never stored) */
            const size_t j0 = jb + b * 8;
            build_panel(w + j0 * ldw, ldw, b < np ? (n - j0 < 8 ? n - j0 : 8) : 0, kw, last, P + b * 8 * kw);
        }
        group_epi g[PB / 2];
        for (size_t q = 0; q < (cols + 15) / 16; q++) g[q] = group_at(e, k, jb + 16 * q, cols - 16 * q, KIND);
        for (size_t i0 = 0; i0 < mp; i0 += MR) {
            const size_t rows = m - i0 < MR ? m - i0 : MR;
            char *o = out + i0 * ldb;
            if (KIND == KWS_EPI_THRESH)   /* stores write 16-bit pieces: clear the padding first */
                for (size_t i = 0; i < rows; i++) ((uint64_t *)(o + i * ldb))[jb / 64] = 0;
            for (size_t t = 0; t < tiles; t++) {
                __m512i acc[MR][NP];
                tile(A + i0 * kw, kw, P + t * NP * 8 * kw, acc);
                /* constant trip counts with early exits: unrolled, so acc stays in registers
                 * (a loop to `rows` made the compiler spill the 16 accumulators every tile) */
#pragma GCC unroll 4
                for (int i = 0; i < MR; i++) {
                    if ((size_t)i >= rows) break;
#pragma GCC unroll 4
                    for (int j = 0; j < NP; j += 2) {
                        const size_t c0 = jb + (t * NP + j) * 8;
                        if (c0 >= n) break;
                        const __m512i pc = _mm512_permutex2var_epi32(acc[i][j], lo32, acc[i][j + 1]);
                        store16(pc, kv, o + i * ldb, c0, &g[(t * NP + j) / 2], e->accumulate, KIND);
                    }
                }
            }
        }
    }
}

TARGET static int gemm_avx512(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                              size_t m, size_t n, size_t k, const kws_epilogue *e) {
    const size_t kw = KWS_WORDS(k);
    if (kw == 0) return -1;           /* k = 0: the driver's portable path */
    const uint64_t last = (k % 64) ? ((UINT64_C(1) << (k % 64)) - 1) : ~UINT64_C(0);
    const size_t mp = (m + MR - 1) / MR * MR;
    /* scratch: a copy of a [mp][kw] and one block of panels [PB][kw][8], 64-byte aligned; every
     * BiFSMN layer (M <= 100, k <= 512) stays on the stack */
    const size_t a_words = (mp * kw + 7) / 8 * 8, p_words = PB * kw * 8;
    uint64_t stack_buf[4096] __attribute__((aligned(64)));
    uint64_t *A = stack_buf;
    if (a_words + p_words > sizeof stack_buf / sizeof *stack_buf) {
        A = aligned_alloc(64, (a_words + p_words) * 8);
        if (!A) return -1;
    }
    uint64_t *P = A + a_words;
    for (size_t i = 0; i < mp; i++) {
        uint64_t *Ai = A + i * kw;
        if (i >= m) {
            memset(Ai, 0, kw * sizeof *Ai);
            continue;
        }
        memcpy(Ai, a + i * lda, kw * sizeof *Ai);
        Ai[kw - 1] &= last;
    }
    switch (e->kind) {
        case KWS_EPI_DOT: panels(A, mp, m, kw, last, w, ldw, n, k, P, e, KWS_EPI_DOT); break;
        case KWS_EPI_SCALE: panels(A, mp, m, kw, last, w, ldw, n, k, P, e, KWS_EPI_SCALE); break;
        case KWS_EPI_THRESH: panels(A, mp, m, kw, last, w, ldw, n, k, P, e, KWS_EPI_THRESH); break;
        default: panels(A, mp, m, kw, last, w, ldw, n, k, P, e, KWS_EPI_POPCNT);
    }
    if (A != stack_buf) free(A);
    return 0;
}

static void popcnt_avx512(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                          size_t m, size_t n, size_t k, int32_t *out, size_t ldo) {
    const kws_epilogue e = {KWS_EPI_POPCNT, out, ldo, 0, 0, 0, 0, 0};
    if (gemm_avx512(a, lda, w, ldw, m, n, k, &e))   /* k = 0 or out of memory */
        kws_isa_scalar()->popcnt(a, lda, w, ldw, m, n, k, out, ldo);
}

static const kws_isa isa = {"avx512", popcnt_avx512, gemm_avx512};
const kws_isa *kws_isa_avx512(void) { return &isa; }
#else
const kws_isa *kws_isa_avx512(void) { return 0; }
#endif
