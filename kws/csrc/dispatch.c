/* Run-time ISA selection and the drivers shared by every ISA (dot products and epilogues).
 *
 * Which kernel runs is decided by a measurement, not by the newest instruction set: the CPUs this
 * runs on disagree (AVX-512 is the faster kernel on Intel Xeon and AMD Zen 4 since it keeps
 * outputs in lanes, but a core that splits 512-bit ops or throttles its clock under them could
 * lose to AVX2).  On first use every SIMD kernel the CPU supports runs the two BiFSMN layer
 * shapes (up: 48 x 128 -> 256 bits with the threshold epilogue, down: 48 x 256 -> 128 with the
 * float epilogue) in alternation, best of 9 rounds each in thread CPU time (immune to being
 * descheduled on a shared machine), and the fastest total wins: about 0.2 ms, once per process.
 * With a single SIMD kernel (AVX2-only x86, NEON) nothing is measured.  The portable scalar
 * kernel is the reference and never chosen when a SIMD kernel exists.  KWS_KERNEL (in the
 * Python layer) overrides the choice. */
#define _POSIX_C_SOURCE 199309L
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the packed bit layout assumes little-endian");

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#include <asm/hwcap.h>
#endif

static const kws_isa *current = NULL;

static const kws_isa *lookup(const char *name) {
    if (!strcmp(name, "scalar")) return kws_isa_scalar();
    if (!strcmp(name, "avx2")) return kws_isa_avx2();
    if (!strcmp(name, "avx512")) return kws_isa_avx512();
    if (!strcmp(name, "neon")) return kws_isa_neon();
    return NULL;
}

int kws_isa_supported(const char *name) {
    if (!lookup(name)) return 0;              /* unknown, or not compiled for this arch */
    if (!strcmp(name, "scalar")) return 1;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!strcmp(name, "avx2"))
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
    if (!strcmp(name, "avx512"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq");
#endif
#if defined(__aarch64__)
    if (!strcmp(name, "neon")) {
#if defined(__linux__)
        return (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
#else
        return 1;                             /* Advanced SIMD is mandatory in ARMv8-A */
#endif
    }
#endif
    return 0;
}

static const char *const candidates[] = {"avx512", "avx2", "neon"};
#define N_CAND (sizeof candidates / sizeof *candidates)
static double timing_ns[N_CAND];       /* measured cost of the probe per candidate; 0 = not run */
static const char *best = NULL;

static double thread_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

/* ns of the probe (both layer shapes) on one ISA. */
static double probe(const kws_isa *isa, const uint64_t *a, const uint64_t *w, void *out,
                    const int32_t *thresh, const uint8_t *flip, const float *scale) {
    enum { M = 48, K1 = 128, N1 = 256, K2 = 256, N2 = 128 };
    const kws_epilogue up = {KWS_EPI_THRESH, out, KWS_WORDS(N1), NULL, NULL, thresh, flip};
    const kws_epilogue down = {KWS_EPI_SCALE, out, N2, scale, scale, NULL, NULL};
    const double t0 = thread_ns();
    if (!isa->gemm) {                                       /* popcount-only ISA: its raw kernel */
        isa->popcnt(a, KWS_WORDS(K1), w, KWS_WORDS(K1), M, N1, K1, out, N1);
        isa->popcnt(a, KWS_WORDS(K2), w, KWS_WORDS(K2), M, N2, K2, out, N2);
    } else if (isa->gemm(a, KWS_WORDS(K1), w, KWS_WORDS(K1), M, N1, K1, &up) ||
               isa->gemm(a, KWS_WORDS(K2), w, KWS_WORDS(K2), M, N2, K2, &down)) {
        return 1e30;                                        /* out of memory: never chosen */
    }
    return thread_ns() - t0;
}

static const char *measure_best(void) {
    const char *only = NULL;
    size_t n = 0;
    for (size_t c = 0; c < N_CAND; c++)
        if (kws_isa_supported(candidates[c])) { only = candidates[c]; n++; }
    if (n == 0) return "scalar";
    if (n == 1) return only;
    enum { ROUNDS = 9, WORDS = 48 * 4 + 256 * 4 };
    uint64_t *bits = malloc(WORDS * sizeof *bits);
    float *fout = malloc(48 * 256 * sizeof *fout);          /* also int32 for popcnt */
    int32_t thresh[256];
    uint8_t flip[256];
    float scale[256];
    if (!bits || !fout) { free(bits); free(fout); return only; }
    uint64_t x = 0x9E3779B97F4A7C15u;                       /* xorshift: fixed random bits */
    for (size_t i = 0; i < WORDS; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; bits[i] = x; }
    for (int j = 0; j < 256; j++) { thresh[j] = (j % 9) - 4; flip[j] = j % 5 == 0; scale[j] = 0.01f * j; }
    double t[N_CAND];
    for (size_t c = 0; c < N_CAND; c++) t[c] = 1e30;
    for (int r = 0; r < ROUNDS; r++)
        for (size_t c = 0; c < N_CAND; c++) {
            if (!kws_isa_supported(candidates[c])) continue;
            const double ns = probe(lookup(candidates[c]), bits, bits + 48 * 4, fout, thresh, flip, scale);
            if (ns < t[c]) t[c] = ns;
        }
    free(bits);
    free(fout);
    size_t win = N_CAND;
    for (size_t c = 0; c < N_CAND; c++)
        if (t[c] < 1e30) {
            timing_ns[c] = t[c];
            if (win == N_CAND || t[c] < t[win]) win = c;
        }
    return win == N_CAND ? only : candidates[win];
}

const char *kws_best_isa(void) {
    if (!best) best = measure_best();
    return best;
}

double kws_isa_probe_ns(const char *name) {
    kws_best_isa();
    for (size_t c = 0; c < N_CAND; c++)
        if (!strcmp(name, candidates[c])) return timing_ns[c];
    return 0;
}

int kws_select(const char *name) {
    if (!kws_isa_supported(name)) return -1;
    current = lookup(name);
    return 0;
}

const kws_isa *kws_current(void) {
    if (!current) current = lookup(kws_best_isa());
    return current;
}

void kws_bgemm(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
               size_t m, size_t n, size_t k, int32_t *out, size_t ldo) {
    const kws_isa *isa = kws_current();
    const kws_epilogue e = {KWS_EPI_DOT, out, ldo, NULL, NULL, NULL, NULL};
    if (isa->gemm && isa->gemm(a, lda, w, ldw, m, n, k, &e) == 0) return;
    isa->popcnt(a, lda, w, ldw, m, n, k, out, ldo);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) out[i * ldo + j] = (int32_t)k - 2 * out[i * ldo + j];
}

/* Epilogue drivers work on blocks of rows through a scratch buffer that stays in L1/L2. */
#define ROW_BLOCK 8

static int32_t *scratch_for(size_t n, int32_t *stack_buf, size_t stack_len) {
    return (ROW_BLOCK * n <= stack_len) ? stack_buf : malloc(ROW_BLOCK * n * sizeof(int32_t));
}

static int bgemm_scale(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw, size_t m,
                       size_t n, size_t k, const float *scale, const float *bias, float *out,
                       size_t ldo, int accumulate) {
    const kws_epilogue e = {KWS_EPI_SCALE, out, ldo, scale, bias, NULL, NULL, accumulate};
    if (kws_current()->gemm && kws_current()->gemm(a, lda, w, ldw, m, n, k, &e) == 0) return 0;
    int32_t stack_buf[ROW_BLOCK * 512];
    int32_t *pc = scratch_for(n, stack_buf, sizeof stack_buf / sizeof *stack_buf);
    if (!pc) return -1;
    const kws_isa *isa = kws_current();
    for (size_t i0 = 0; i0 < m; i0 += ROW_BLOCK) {
        const size_t mb = (m - i0 < ROW_BLOCK) ? m - i0 : ROW_BLOCK;
        isa->popcnt(a + i0 * lda, lda, w, ldw, mb, n, k, pc, n);
        for (size_t i = 0; i < mb; i++) {
            float *o = out + (i0 + i) * ldo;
            const int32_t *p = pc + i * n;
            for (size_t j = 0; j < n; j++) {
                const float y = (float)((int32_t)k - 2 * p[j]) * scale[j] + bias[j];
                o[j] = accumulate ? o[j] + y : y;
            }
        }
    }
    if (pc != stack_buf) free(pc);
    return 0;
}

int kws_bgemm_scale(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                    size_t m, size_t n, size_t k, const float *scale, const float *bias,
                    float *out, size_t ldo) {
    return bgemm_scale(a, lda, w, ldw, m, n, k, scale, bias, out, ldo, 0);
}

int kws_bgemm_scale_add(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                        size_t m, size_t n, size_t k, const float *scale, const float *bias,
                        float *out, size_t ldo) {
    return bgemm_scale(a, lda, w, ldw, m, n, k, scale, bias, out, ldo, 1);
}

#if defined(__aarch64__)
#include <arm_neon.h>
/* 16 threshold bits (bit b = column c + b) from 16 popcounts: 2 loads of 4 vectors, 4 compares,
 * 3 narrowings to bytes, the flip, the bit weights and 2 across-lane adds (the portable byte loop
 * below took ~3 instructions per output on NEON). */
static inline uint16_t thresh_bits16(const int32_t *p, const int32_t *bound, const uint8_t *flip) {
    const int32x4x4_t v = vld1q_s32_x4(p), t = vld1q_s32_x4(bound);
    const uint16x8_t lo = vcombine_u16(vmovn_u32(vcgtq_s32(v.val[0], t.val[0])), vmovn_u32(vcgtq_s32(v.val[1], t.val[1])));
    const uint16x8_t hi = vcombine_u16(vmovn_u32(vcgtq_s32(v.val[2], t.val[2])), vmovn_u32(vcgtq_s32(v.val[3], t.val[3])));
    const uint8x16_t weight = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t b = vandq_u8(veorq_u8(vcombine_u8(vmovn_u16(lo), vmovn_u16(hi)), vld1q_u8(flip)), weight);
    return (uint16_t)(vaddv_u8(vget_low_u8(b)) | (unsigned)vaddv_u8(vget_high_u8(b)) << 8);
}
#endif

int kws_bgemm_threshold(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                                size_t m, size_t n, size_t k, const int32_t *thresh,
                                const uint8_t *flip, uint64_t *out, size_t ldo) {
    const kws_epilogue e = {KWS_EPI_THRESH, out, ldo, NULL, NULL, thresh, flip};
    if (kws_current()->gemm && kws_current()->gemm(a, lda, w, ldw, m, n, k, &e) == 0) return 0;
    /* scratch: popcounts of ROW_BLOCK rows, then per column (once per call, not per row) the
     * popcount bound (kws_popcount_bound) and the flip as a byte 0 / 0xff */
    int32_t stack_buf[ROW_BLOCK * 512 + 512 + 128];
    const size_t words = ROW_BLOCK * n + n + (n + 3) / 4;
    int32_t *pc = words <= sizeof stack_buf / sizeof *stack_buf ? stack_buf : malloc(words * sizeof *pc);
    if (!pc) return -1;
    int32_t *bound = pc + ROW_BLOCK * n;
    uint8_t *fl = (uint8_t *)(bound + n);
    for (size_t j = 0; j < n; j++) {
        bound[j] = kws_popcount_bound(k, thresh[j]);
        fl[j] = flip[j] ? 0xff : 0;
    }
    const kws_isa *isa = kws_current();
    const size_t nw = KWS_WORDS(n);
    for (size_t i0 = 0; i0 < m; i0 += ROW_BLOCK) {
        const size_t mb = (m - i0 < ROW_BLOCK) ? m - i0 : ROW_BLOCK;
        isa->popcnt(a + i0 * lda, lda, w, ldw, mb, n, k, pc, n);
        for (size_t i = 0; i < mb; i++) {
            uint64_t *o = out + (i0 + i) * ldo;
            const int32_t *p = pc + i * n;
            for (size_t q = 0; q < nw; q++) {
                const size_t c0 = q * 64, end = (n - c0 < 64) ? n - c0 : 64;
                /* bit 1 = -1: y = -1 iff (pc > bound) XOR flip */
                uint64_t word = 0;
                size_t b = 0;
#if defined(__aarch64__)
                for (; b + 16 <= end; b += 16)
                    word |= (uint64_t)thresh_bits16(p + c0 + b, bound + c0 + b, fl + c0 + b) << b;
#else
                /* one byte per output first (a loop compilers vectorise), then 8 bytes of 0/1 to
                 * 8 bits by one multiply: byte i lands on bit 56 + i, with no carries */
                uint8_t bits[64] __attribute__((aligned(8)));
                for (size_t j = 0; j < end; j++) bits[j] = (uint8_t)((p[c0 + j] > bound[c0 + j]) ^ (fl[c0 + j] & 1));
                for (size_t j = end; j < 64; j++) bits[j] = 0;
                for (size_t g = 0; g < 8; g++) {
                    uint64_t v;
                    memcpy(&v, bits + 8 * g, 8);     /* little-endian: byte i = output 8g + i */
                    word |= ((v * UINT64_C(0x0102040810204080)) >> 56) << (8 * g);
                }
                b = end;
#endif
                for (; b < end; b++)
                    word |= (uint64_t)((p[c0 + b] > bound[c0 + b]) ^ (fl[c0 + b] & 1)) << b;
                o[q] = word;
            }
        }
    }
    if (pc != stack_buf) free(pc);
    return 0;
}
