/* Run-time ISA selection and the drivers shared by every ISA (dot products and epilogues). */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

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

const char *kws_best_isa(void) {
    static const char *order[] = {"avx512", "avx2", "neon", "scalar"};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (kws_isa_supported(order[i])) return order[i];
    return "scalar";
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

int kws_bgemm_scale(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                            size_t m, size_t n, size_t k, const float *scale, const float *bias,
                            float *out, size_t ldo) {
    const kws_epilogue e = {KWS_EPI_SCALE, out, ldo, scale, bias, NULL, NULL};
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
            for (size_t j = 0; j < n; j++) o[j] = (float)((int32_t)k - 2 * p[j]) * scale[j] + bias[j];
        }
    }
    if (pc != stack_buf) free(pc);
    return 0;
}

int kws_bgemm_threshold(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                                size_t m, size_t n, size_t k, const int32_t *thresh,
                                const uint8_t *flip, uint64_t *out, size_t ldo) {
    const kws_epilogue e = {KWS_EPI_THRESH, out, ldo, NULL, NULL, thresh, flip};
    if (kws_current()->gemm && kws_current()->gemm(a, lda, w, ldw, m, n, k, &e) == 0) return 0;
    int32_t stack_buf[ROW_BLOCK * 512];
    int32_t *pc = scratch_for(n, stack_buf, sizeof stack_buf / sizeof *stack_buf);
    if (!pc) return -1;
    const kws_isa *isa = kws_current();
    const size_t nw = KWS_WORDS(n);
    for (size_t i0 = 0; i0 < m; i0 += ROW_BLOCK) {
        const size_t mb = (m - i0 < ROW_BLOCK) ? m - i0 : ROW_BLOCK;
        isa->popcnt(a + i0 * lda, lda, w, ldw, mb, n, k, pc, n);
        for (size_t i = 0; i < mb; i++) {
            uint64_t *o = out + (i0 + i) * ldo;
            const int32_t *p = pc + i * n;
            for (size_t q = 0; q < nw; q++) {
                const size_t end = (n - q * 64 < 64) ? n - q * 64 : 64;
                uint64_t word = 0;
                for (size_t b = 0; b < end; b++) {
                    const size_t j = q * 64 + b;
                    /* bit 1 = -1: y = -1 iff (dot < thresh) XOR flip */
                    const int below = ((int32_t)k - 2 * p[j]) < thresh[j];
                    word |= (uint64_t)(below ^ (flip[j] != 0)) << b;
                }
                o[q] = word;
            }
        }
    }
    if (pc != stack_buf) free(pc);
    return 0;
}
