/* ARMv8 NEON micro-kernel: FBCK (the BiFSMN "fast bitwise computation kernel").
 *
 * Operands are viewed as 16-bit chunks: with the LSB-first little-endian layout of kernels.h,
 * chunk c of a row (values 16c..16c+15) is uint16 element c of the row.  One FBCK step covers
 * 16 bits of depth for a whole output tile:
 *   A  (NA registers, LD1R)  one chunk of one W row, duplicated in all 8 lanes;
 *   B  (NB registers, LDR)   chunk c of 8 *different* rows of `a`, one row per lane;
 *   C  = CNT(EOR(A_i, B_j))  per-byte popcounts, NA*NB of them;
 *   D  += C                  NA*NB byte accumulators (ADD), at most 16 steps: 16*8 = 128 < 256;
 *   E  = UADALP(E, D)        NA*NB u16 accumulators: lane l of E[i][j] is the popcount of
 *                            (a row 8j+l) XOR (w row i) so far -- no horizontal reduction at all.
 * Tiles: 16 a-rows x 4 w-rows (NB=2, NA=4: the paper's 4 A + 2 B + 8 C + 8 D + 8 E registers) and,
 * for an 8-row remainder block of `a`, 8 x 8 (NB=1, NA=8).  Per step: NA LD1R + 1 load of B
 * (LDP for NB=2) + 3*NA*NB arithmetic, i.e. 3.6 (16x4) / 4.1 (8x8) instructions per 128 binary
 * MACs plus one UADALP per 16 steps and the loop branch.
 *
 * Gathering B ("8 rows' chunk c in one 128-bit load") needs an interleaved copy: per call, for
 * each block of 8 or 16 rows of `a` and each depth panel of KC chunks, the block is transposed
 * (8x8 u16 transposes with TRN1/TRN2) into a stack buffer buf[c][row] (16 KB at most).  The copy
 * is of `a`, not of W, on purpose: the epilogue drivers call this kernel with <= 8 rows of `a`
 * and ALL rows of W, so interleaving W would redo an n*k copy for every 8 rows; interleaving the
 * `a` block costs O(rows*k) once and is reused by all n rows of W (read in place with LD1R).
 * The panel also bounds E: a u16 lane gains <= 16 per chunk, KC = 512 chunks -> <= 8192 < 65536,
 * then E is widened to u32 and stored (first panel) or added (later panels) into `out`, so any
 * k the API accepts (popcount < 2^31) is exact.
 *
 * Ragged depth: the last chunk, if k % 16 != 0, is masked on both sides (zeroed bits >= k in the
 * buffer, AND on the LD1R'd W chunk).  No row is read past word ceil(k/64)-1: chunk loads stop
 * at chunk ceil(k/16)-1, 128-bit loads in the transpose only cover fully valid chunks.
 *
 * Small shapes: with fewer than 8 rows of `a` (streaming inference: m = 1) or fewer than 8 rows
 * of W, most FBCK lanes (or the interleave) would be wasted, so those rows use a plain NEON
 * row kernel: 128-bit loads of a 1-2 x 1-4 tile of rows, EOR + CNT + UADALP into u16 lanes
 * (summed out with UADDLV every 4000 steps), one masked last step.
 * Everything is force-inlined into popcnt_neon (no calls: instruction counts with
 * `icount.sh -f popcnt_neon` cover the whole kernel). */
#include "kernels.h"

#if defined(__aarch64__) && !defined(__AARCH64EB__)
#include <arm_neon.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))
#define KC 512                     /* depth panel in 16-bit chunks (8192 bits) */

/* ------------------------------------------------------------------ interleave (B operand) */
/* Transpose 8 rows x 8 chunks (rows r[0..7], 128 bits each) into 8 registers, chunk q of the
 * 8 rows in out[q] (lane = row). */
INLINE void transpose8(uint16x8_t r[8], uint16x8_t o[8]) {
    uint16x8_t t[8];
    for (int p = 0; p < 4; p++) {
        t[2 * p] = vtrn1q_u16(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = vtrn2q_u16(r[2 * p], r[2 * p + 1]);
    }
    uint32x4_t u[8];
    for (int h = 0; h < 2; h++) {   /* rows 0-3 then 4-7 */
        const uint32x4_t t0 = vreinterpretq_u32_u16(t[4 * h]), t1 = vreinterpretq_u32_u16(t[4 * h + 1]);
        const uint32x4_t t2 = vreinterpretq_u32_u16(t[4 * h + 2]), t3 = vreinterpretq_u32_u16(t[4 * h + 3]);
        u[4 * h + 0] = vtrn1q_u32(t0, t2);   /* chunks 0, 4 */
        u[4 * h + 1] = vtrn1q_u32(t1, t3);   /* chunks 1, 5 */
        u[4 * h + 2] = vtrn2q_u32(t0, t2);   /* chunks 2, 6 */
        u[4 * h + 3] = vtrn2q_u32(t1, t3);   /* chunks 3, 7 */
    }
    for (int q = 0; q < 4; q++) {
        const uint64x2_t lo = vreinterpretq_u64_u32(u[q]), hi = vreinterpretq_u64_u32(u[4 + q]);
        o[q] = vreinterpretq_u16_u64(vtrn1q_u64(lo, hi));
        o[q + 4] = vreinterpretq_u16_u64(vtrn2q_u64(lo, hi));
    }
}

/* buf[(c - c0) * R + r] = chunk c of row r, for c0 <= c < c0 + nch, r < R (8 or 16); the bits
 * >= k of the last chunk are zeroed. */
INLINE void interleave(const uint64_t *a, size_t lda, const int R, size_t c0, size_t nch,
                       size_t k, uint16_t *buf) {
    const size_t nfull = k / 16, cend = c0 + nch;
    size_t c = c0;
    for (; c + 8 <= cend && c + 8 <= nfull; c += 8) {   /* 8 whole chunks = 2 valid words */
        for (int h = 0; h < R; h += 8) {
            uint16x8_t r[8], o[8];
            for (int i = 0; i < 8; i++) r[i] = vld1q_u16((const uint16_t *)(a + (h + i) * lda) + c);
            transpose8(r, o);
            for (int q = 0; q < 8; q++) vst1q_u16(buf + (c - c0 + q) * R + h, o[q]);
        }
    }
    for (; c < cend; c++) {
        const uint16_t mask = c < nfull ? 0xffff : (uint16_t)((1u << (k % 16)) - 1);
        for (int i = 0; i < R; i++) {
            uint16_t v;
            memcpy(&v, (const uint16_t *)(a + i * lda) + c, sizeof v);
            buf[(c - c0) * R + i] = v & mask;
        }
    }
}

/* ------------------------------------------------------------------ FBCK tile */
/* LD1R with post-increment, as inline asm: from vld1q_dup_u16(p++) GCC 12 emits LDR h + DUP
 * (2 instructions) and hoists the loads far ahead (spills). */
#define LD1R_POST(v, p)                                                                         \
    __asm__("ld1r {%0.8h}, [%1], #2" : "=w"(v), "+r"(p) : "m"(*(const uint16_t(*)[1])(p)))

/* Add (or store, if first) 4 E registers -- w rows i..i+3, lanes = 8 a rows -- into out rows
 * 0..7 (stride ldo), columns 0..3: zip-transpose to one 4-lane vector per a row. */
INLINE void store4(uint16x8_t e0, uint16x8_t e1, uint16x8_t e2, uint16x8_t e3, int32_t *o,
                   size_t ldo, int first) {
    const uint32x4_t z01l = vreinterpretq_u32_u16(vzip1q_u16(e0, e1));
    const uint32x4_t z01h = vreinterpretq_u32_u16(vzip2q_u16(e0, e1));
    const uint32x4_t z23l = vreinterpretq_u32_u16(vzip1q_u16(e2, e3));
    const uint32x4_t z23h = vreinterpretq_u32_u16(vzip2q_u16(e2, e3));
    uint16x8_t rr[4];
    rr[0] = vreinterpretq_u16_u32(vzip1q_u32(z01l, z23l));   /* a rows 0 | 1 */
    rr[1] = vreinterpretq_u16_u32(vzip2q_u32(z01l, z23l));   /* 2 | 3 */
    rr[2] = vreinterpretq_u16_u32(vzip1q_u32(z01h, z23h));   /* 4 | 5 */
    rr[3] = vreinterpretq_u16_u32(vzip2q_u32(z01h, z23h));   /* 6 | 7 */
    for (int p = 0; p < 4; p++) {
        uint32x4_t lo = vmovl_u16(vget_low_u16(rr[p])), hi = vmovl_high_u16(rr[p]);
        uint32_t *o0 = (uint32_t *)(o + (2 * p) * ldo), *o1 = (uint32_t *)(o + (2 * p + 1) * ldo);
        if (!first) {
            lo = vaddq_u32(lo, vld1q_u32(o0));
            hi = vaddq_u32(hi, vld1q_u32(o1));
        }
        vst1q_u32(o0, lo);
        vst1q_u32(o1, hi);
    }
}

/* ---- the two main tiles' block loops, as inline asm.  From intrinsics GCC 12 turned LD1R into
 * LDR h + DUP, hoisted B loads across steps and spilled accumulators in the hot loop, so the loop
 * over 16-step blocks is written out with fixed registers (all listed as clobbers):
 *   E = v0..v7 (u16, pair p in v<p>, loaded from / stored to E[] around the loop),
 *   D = v16..v23 (u8, pair p in v<16+p>), A, B, C as noted per tile.
 * One 16-step block = 16 x (B load + NA LD1R + 8 EOR + 8 CNT) + 15 x 8 ADD + 8 UADALP + SUBS + B.NE
 * (the first step's CNT writes D directly: no zeroing). */
#define EOR_(d, a, b) "eor v" #d ".16b, v" #a ".16b, v" #b ".16b\n\t"
#define CNT_(d, s) "cnt v" #d ".16b, v" #s ".16b\n\t"
#define ADD_(d, s) "add v" #d ".16b, v" #d ".16b, v" #s ".16b\n\t"
#define LD1R_(a, w) "ld1r {v" #a ".8h}, [%[" #w "]], #2\n\t"
#define REP15(x) x x x x x x x x x x x x x x x
#define E_LOAD "ldp q0, q1, [%[e]]\n\tldp q2, q3, [%[e], #32]\n\t"                              \
               "ldp q4, q5, [%[e], #64]\n\tldp q6, q7, [%[e], #96]\n\t"
#define E_STORE "stp q0, q1, [%[e]]\n\tstp q2, q3, [%[e], #32]\n\t"                             \
                "stp q4, q5, [%[e], #64]\n\tstp q6, q7, [%[e], #96]\n\t"
#define FOLD_ALL                                                                                \
    "uadalp v0.8h, v16.16b\n\tuadalp v1.8h, v17.16b\n\tuadalp v2.8h, v18.16b\n\t"               \
    "uadalp v3.8h, v19.16b\n\tuadalp v4.8h, v20.16b\n\tuadalp v5.8h, v21.16b\n\t"               \
    "uadalp v6.8h, v22.16b\n\tuadalp v7.8h, v23.16b\n\t"
#define LOOP_END "subs %[n], %[n], #1\n\tb.ne 1b\n\t"
#define V_CLOBBERS "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v16", "v17",    \
    "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31"

/* 16 a-rows x 4 w-rows: B0 = v8, B1 = v9 (one LDP), A_i = v28+i; pair (i, 0) -> C = v24+i,
 * pair (i, 1) -> EOR in place into A_i (pair p = 2i + j). */
#define T42_EOR                                                                                 \
    "ldp q8, q9, [%[bp]], #32\n\t"                                                              \
    LD1R_(28, w0) LD1R_(29, w1) LD1R_(30, w2) LD1R_(31, w3)                                     \
    EOR_(24, 28, 8) EOR_(28, 28, 9) EOR_(25, 29, 8) EOR_(29, 29, 9)                             \
    EOR_(26, 30, 8) EOR_(30, 30, 9) EOR_(27, 31, 8) EOR_(31, 31, 9)
#define T42_FIRST T42_EOR                                                                       \
    CNT_(16, 24) CNT_(17, 28) CNT_(18, 25) CNT_(19, 29) CNT_(20, 26) CNT_(21, 30) CNT_(22, 27) CNT_(23, 31)
#define T42_NEXT T42_EOR                                                                        \
    CNT_(24, 24) CNT_(28, 28) CNT_(25, 25) CNT_(29, 29) CNT_(26, 26) CNT_(30, 30) CNT_(27, 27) CNT_(31, 31) \
    ADD_(16, 24) ADD_(17, 28) ADD_(18, 25) ADD_(19, 29) ADD_(20, 26) ADD_(21, 30) ADD_(22, 27) ADD_(23, 31)

/* 8 a-rows x 8 w-rows: B = v8 (LDR), A_i = v24+i, pair i -> EOR in place into A_i. */
#define T81_EOR                                                                                 \
    "ldr q8, [%[bp]], #16\n\t"                                                                  \
    LD1R_(24, w0) LD1R_(25, w1) LD1R_(26, w2) LD1R_(27, w3)                                     \
    LD1R_(28, w4) LD1R_(29, w5) LD1R_(30, w6) LD1R_(31, w7)                                     \
    EOR_(24, 24, 8) EOR_(25, 25, 8) EOR_(26, 26, 8) EOR_(27, 27, 8)                             \
    EOR_(28, 28, 8) EOR_(29, 29, 8) EOR_(30, 30, 8) EOR_(31, 31, 8)
#define T81_FIRST T81_EOR                                                                       \
    CNT_(16, 24) CNT_(17, 25) CNT_(18, 26) CNT_(19, 27) CNT_(20, 28) CNT_(21, 29) CNT_(22, 30) CNT_(23, 31)
#define T81_NEXT T81_EOR                                                                        \
    CNT_(24, 24) CNT_(25, 25) CNT_(26, 26) CNT_(27, 27) CNT_(28, 28) CNT_(29, 29) CNT_(30, 30) CNT_(31, 31) \
    ADD_(16, 24) ADD_(17, 25) ADD_(18, 26) ADD_(19, 27) ADD_(20, 28) ADD_(21, 29) ADD_(22, 30) ADD_(23, 31)

/* The 8 (A, B) pairs of a tile, as X(pair, A index if NB == 2, B index if NB == 2, A index if
 * NB == 1): pair p = i * NB + j.  Named variables, not arrays: GCC 12 kept arrays of vectors in
 * memory here (spills in the hot loop) even with constant NA, NB. */
#define FOR_PAIRS(X) X(0, 0, 0, 0) X(1, 0, 1, 1) X(2, 1, 0, 2) X(3, 1, 1, 3) \
                     X(4, 2, 0, 4) X(5, 2, 1, 5) X(6, 3, 0, 6) X(7, 3, 1, 7)
#define FOR_A(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* One tile: 8*NB rows of `a` (interleaved in buf, nch chunks of this panel) x NA rows of W
 * (starting at chunk c0 of each row); out[l][i] for a-row l, w-row i.  NA*NB <= 8. */
INLINE void fbck_tile(const uint16_t *buf, size_t nch, int masked_last, uint16x8_t tmask,
                      const uint64_t *w, size_t ldw, size_t c0, int32_t *out, size_t ldo,
                      int first, const int NA, const int NB) {
    const uint16x8_t z16 = vdupq_n_u16(0);
#define DECL_A(i)                                                                               \
    const uint16_t *wp##i = (const uint16_t *)(w + (NA > i ? i : 0) * ldw) + c0;                \
    uint16x8_t A##i = z16;
    FOR_A(DECL_A)
#define DECL_E(p, i2, j2, i1) uint16x8_t E##p = z16; uint8x16_t D##p = vreinterpretq_u8_u16(z16);
    FOR_PAIRS(DECL_E)
    uint16x8_t B0 = z16, B1 = z16;
    const uint16_t *bp = buf;

/* one step: NA LD1R, NB loads of B, NA*NB x (EOR, CNT, ADD or -- on the first step -- MOV) */
#define LOAD_A(i) if (NA > i) { LD1R_POST(A##i, wp##i); if (mask_) A##i = vandq_u16(A##i, tmask); }
#define PAIR(p, i2, j2, i1)                                                                     \
    if (NA * NB > p) {                                                                          \
        const uint8x16_t c_ = vcntq_u8(vreinterpretq_u8_u16(                                    \
            NB == 2 ? veorq_u16(A##i2, B##j2) : veorq_u16(A##i1, B0)));                         \
        D##p = init_ ? c_ : vaddq_u8(D##p, c_);                                                 \
    }
#define STEP(init, mask)                                                                        \
    do {                                                                                        \
        const int init_ = (init), mask_ = (mask);                                               \
        B0 = vld1q_u16(bp);                                                                     \
        if (NB == 2) B1 = vld1q_u16(bp + 8);                                                    \
        bp += 8 * NB;                                                                           \
        FOR_A(LOAD_A)                                                                           \
        FOR_PAIRS(PAIR)                                                                         \
    } while (0)
#define FOLD(p, i2, j2, i1) if (NA * NB > p) E##p = vpadalq_u8(E##p, D##p);
#define ZERO_D(p, i2, j2, i1) D##p = vreinterpretq_u8_u16(z16);

    const size_t plain = nch - (masked_last ? 1 : 0);
    size_t s = 0;
    if ((NA == 4 && NB == 2) || (NA == 8 && NB == 1)) {
        size_t nblk = plain / 16;
        if (nblk) {
            uint16x8_t Ev[8];   /* E is zero here; the asm keeps it in v0..v7 */
            for (int p = 0; p < 8; p++) Ev[p] = z16;
            if (NB == 2)
                __asm__ volatile(E_LOAD "1:\n\t" T42_FIRST REP15(T42_NEXT) FOLD_ALL LOOP_END E_STORE
                                 : [bp] "+r"(bp), [n] "+r"(nblk), [w0] "+r"(wp0), [w1] "+r"(wp1),
                                   [w2] "+r"(wp2), [w3] "+r"(wp3)
                                 : [e] "r"(Ev)
                                 : "memory", "cc", V_CLOBBERS);
            else
                __asm__ volatile(E_LOAD "1:\n\t" T81_FIRST REP15(T81_NEXT) FOLD_ALL LOOP_END E_STORE
                                 : [bp] "+r"(bp), [n] "+r"(nblk), [w0] "+r"(wp0), [w1] "+r"(wp1),
                                   [w2] "+r"(wp2), [w3] "+r"(wp3), [w4] "+r"(wp4), [w5] "+r"(wp5),
                                   [w6] "+r"(wp6), [w7] "+r"(wp7)
                                 : [e] "r"(Ev)
                                 : "memory", "cc", V_CLOBBERS);
            E0 = Ev[0]; E1 = Ev[1]; E2 = Ev[2]; E3 = Ev[3];
            E4 = Ev[4]; E5 = Ev[5]; E6 = Ev[6]; E7 = Ev[7];
            s = plain - plain % 16;
        }
    } else {
        for (; s + 16 <= plain; s += 16) {
            STEP(1, 0);
#pragma GCC unroll 15
            for (int t = 1; t < 16; t++) STEP(0, 0);
            FOR_PAIRS(FOLD)
        }
    }
    if (s < nch) {   /* < 16 plain steps left, then the masked one */
        FOR_PAIRS(ZERO_D)
        for (; s < plain; s++) STEP(0, 0);
        if (masked_last) STEP(0, 1);
        FOR_PAIRS(FOLD)
    }
    (void)B1;

    /* E -> out: lane l of E[i * NB + j] is a row 8j + l, w row i */
#define PUT_E(p, i2, j2, i1) E[p] = E##p;
    uint16x8_t E[8];
    FOR_PAIRS(PUT_E)
    for (int j = 0; j < NB; j++) {
        int32_t *o = out + (size_t)(8 * j) * ldo;
        int i = 0;
        for (; i + 4 <= NA; i += 4)
            store4(E[i * NB + j], E[(i + 1) * NB + j], E[(i + 2) * NB + j], E[(i + 3) * NB + j],
                   o + i, ldo, first);
        for (; i < NA; i++) {
            uint16_t v[8];
            vst1q_u16(v, E[i * NB + j]);
            for (int l = 0; l < 8; l++) {
                int32_t *d = o + (size_t)l * ldo + i;
                *d = first ? (int32_t)v[l] : (int32_t)((uint32_t)*d + v[l]);
            }
        }
    }
#undef DECL_A
#undef DECL_E
#undef LOAD_A
#undef PAIR
#undef STEP
#undef FOLD
#undef ZERO_D
#undef PUT_E
}

/* 8*NB rows of `a` x all n rows of W, whole depth. */
INLINE void fbck_block(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw, size_t n,
                       size_t k, int32_t *out, size_t ldo, const int NB) {
    uint16_t buf[KC * 16] __attribute__((aligned(16)));
    const size_t nchunks = (k + 15) / 16;
    const uint16x8_t tmask = vdupq_n_u16((uint16_t)((1u << (k % 16)) - 1));
    for (size_t c0 = 0; c0 < nchunks; c0 += KC) {
        const size_t nch = nchunks - c0 < KC ? nchunks - c0 : KC;
        const int masked = (k % 16) && c0 + nch == nchunks, first = c0 == 0;
        interleave(a, lda, 8 * NB, c0, nch, k, buf);
        size_t j = 0;
        if (NB == 2) {
            for (; j + 4 <= n; j += 4)
                fbck_tile(buf, nch, masked, tmask, w + j * ldw, ldw, c0, out + j, ldo, first, 4, 2);
            if (j + 2 <= n) {
                fbck_tile(buf, nch, masked, tmask, w + j * ldw, ldw, c0, out + j, ldo, first, 2, 2);
                j += 2;
            }
            if (j < n) fbck_tile(buf, nch, masked, tmask, w + j * ldw, ldw, c0, out + j, ldo, first, 1, 2);
        } else {
            for (; j + 8 <= n; j += 8)
                fbck_tile(buf, nch, masked, tmask, w + j * ldw, ldw, c0, out + j, ldo, first, 8, 1);
            if (j + 4 <= n) {
                fbck_tile(buf, nch, masked, tmask, w + j * ldw, ldw, c0, out + j, ldo, first, 4, 1);
                j += 4;
            }
            if (j + 2 <= n) {
                fbck_tile(buf, nch, masked, tmask, w + j * ldw, ldw, c0, out + j, ldo, first, 2, 1);
                j += 2;
            }
            if (j < n) fbck_tile(buf, nch, masked, tmask, w + j * ldw, ldw, c0, out + j, ldo, first, 1, 1);
        }
    }
}

/* ------------------------------------------------------------------ row kernel (small shapes) */
INLINE uint8x16_t load_tail(const uint64_t *p, size_t rem, uint64x2_t mask) {
    /* rem in 1..127 valid bits: one word if rem <= 64 (the second may be past the row) */
    const uint64x2_t v = rem > 64 ? vld1q_u64(p) : vcombine_u64(vld1_u64(p), vdup_n_u64(0));
    return vreinterpretq_u8_u64(vandq_u64(v, mask));
}

INLINE void row_tile(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw, size_t k,
                     int32_t *out, size_t ldo, const int MR, const int NR) {
    const size_t full = k / 128, rem = k % 128;
    uint32_t tot[8] = {0};          /* MR <= 2, NR <= 4 */
    size_t s = 0;
    do {
        /* u16 lanes gain <= 16 per step: 4000 steps + the tail step stay below 65536 */
        const size_t end = full - s > 4000 ? s + 4000 : full;
        uint16x8_t acc[8];
        for (int p = 0; p < MR * NR; p++) acc[p] = vdupq_n_u16(0);
#pragma GCC unroll 2
        for (; s < end; s++) {
            uint8x16_t av[2];
            for (int r = 0; r < MR; r++) av[r] = vld1q_u8((const uint8_t *)(a + r * lda + 2 * s));
            for (int c = 0; c < NR; c++) {
                const uint8x16_t wv = vld1q_u8((const uint8_t *)(w + c * ldw + 2 * s));
                for (int r = 0; r < MR; r++)
                    acc[r * NR + c] = vpadalq_u8(acc[r * NR + c], vcntq_u8(veorq_u8(av[r], wv)));
            }
        }
        if (s == full && rem) {   /* the masked last step */
            const uint64_t lo = rem >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << rem) - 1;
            const uint64_t hi = rem > 64 ? (UINT64_C(1) << (rem - 64)) - 1 : 0;
            const uint64x2_t mask = vcombine_u64(vcreate_u64(lo), vcreate_u64(hi));
            uint8x16_t av[2];
            for (int r = 0; r < MR; r++) av[r] = load_tail(a + r * lda + 2 * full, rem, mask);
            for (int c = 0; c < NR; c++) {
                const uint8x16_t wv = load_tail(w + c * ldw + 2 * full, rem, mask);
                for (int r = 0; r < MR; r++)
                    acc[r * NR + c] = vpadalq_u8(acc[r * NR + c], vcntq_u8(veorq_u8(av[r], wv)));
            }
        }
        for (int p = 0; p < MR * NR; p++) tot[p] += vaddlvq_u16(acc[p]);
    } while (s < full);
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++) out[r * ldo + c] = (int32_t)tot[r * NR + c];
}

INLINE void row_kernel(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw, size_t m,
                       size_t n, size_t k, int32_t *out, size_t ldo) {
    size_t i = 0;
    for (; i + 2 <= m; i += 2) {
        const uint64_t *ai = a + i * lda;
        int32_t *oi = out + i * ldo;
        size_t j = 0;
        for (; j + 4 <= n; j += 4) row_tile(ai, lda, w + j * ldw, ldw, k, oi + j, ldo, 2, 4);
        for (; j < n; j++) row_tile(ai, lda, w + j * ldw, ldw, k, oi + j, ldo, 2, 1);
    }
    if (i < m) {
        const uint64_t *ai = a + i * lda;
        int32_t *oi = out + i * ldo;
        size_t j = 0;
        for (; j + 4 <= n; j += 4) row_tile(ai, lda, w + j * ldw, ldw, k, oi + j, ldo, 1, 4);
        for (; j < n; j++) row_tile(ai, lda, w + j * ldw, ldw, k, oi + j, ldo, 1, 1);
    }
}

/* ------------------------------------------------------------------ entry */
static void popcnt_neon(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                        size_t m, size_t n, size_t k, int32_t *out, size_t ldo) {
    if (!m || !n) return;
    size_t i = 0;
    if (n >= 8 && k) {   /* FBCK; fewer W rows would not pay for the interleave */
        for (; i + 16 <= m; i += 16) fbck_block(a + i * lda, lda, w, ldw, n, k, out + i * ldo, ldo, 2);
        for (; i + 8 <= m; i += 8) fbck_block(a + i * lda, lda, w, ldw, n, k, out + i * ldo, ldo, 1);
    }
    if (i < m) row_kernel(a + i * lda, lda, w, ldw, m - i, n, k, out + i * ldo, ldo);
}

static const kws_isa isa = {.name = "neon", .popcnt = popcnt_neon};
const kws_isa *kws_isa_neon(void) { return &isa; }

#else
const kws_isa *kws_isa_neon(void) { return 0; }
#endif
