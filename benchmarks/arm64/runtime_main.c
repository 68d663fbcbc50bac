/* Whole-inference instruction-count driver for one operating point (cross-compiled for aarch64
 * and run under qemu by benchmarks/pi_estimate.py, linked with every kws/csrc/*.c file).
 *
 *   runtime_main T F KS S B H BACK AHEAD NB BW HW C REPS
 *
 * T frames x F features in, stem windows of KS frames with stride S, full backbone B / hidden H
 * (the packed weight strides of the model file), NB blocks run at width BW / HW channels, C
 * classes.  Does REPS inferences of exactly what kws.fsmn.runtime.BinaryFSMN.logits does, on
 * random weights of those shapes:
 *   1. normalise the features and stack the stem windows    (numpy in the Python runtime)
 *   2. stem matmul [T', KS*F] x [KS*F, BW]                    (numpy -> OpenBLAS sgemm in the
 *      runtime; here stem_sgemm, a 4x16 register-tiled NEON FMLA loop like a BLAS micro-kernel)
 *   3. stem affine + PReLU, NB binary blocks, pooled head     (kws/csrc/fsmn.c: the same C call)
 *   4. classifier [C, BW] x g + bias                          (numpy in the runtime)
 * The Python glue around these calls is not here (see the README's Pi estimate).
 * Count with icount.sh (whole program, REPS=R minus REPS=0, or -f popcnt_neon for the kernel). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "fsmn.h"
#include <arm_neon.h>
#include "rng.h"

/* c[m, n] = a[m, k] . b[k, n] (row-major), 4 x 16 tiles of FMLA accumulators held in registers
 * over the whole depth, as BLAS sgemm micro-kernels do; scalar tails. */
__attribute__((noinline)) static void stem_sgemm(const float *a, size_t m, size_t k, const float *b, size_t n, float *c) {
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        size_t j = 0;
        for (; j + 16 <= n; j += 16) {
            float32x4_t acc[4][4];
            for (int r = 0; r < 4; r++)
                for (int v = 0; v < 4; v++) acc[r][v] = vdupq_n_f32(0);
            for (size_t q = 0; q < k; q++) {
                const float *bq = b + q * n + j;
                const float32x4_t b0 = vld1q_f32(bq), b1 = vld1q_f32(bq + 4),
                                  b2 = vld1q_f32(bq + 8), b3 = vld1q_f32(bq + 12);
                for (int r = 0; r < 4; r++) {
                    const float32x4_t av = vdupq_n_f32(a[(i + r) * k + q]);
                    acc[r][0] = vfmaq_f32(acc[r][0], av, b0);
                    acc[r][1] = vfmaq_f32(acc[r][1], av, b1);
                    acc[r][2] = vfmaq_f32(acc[r][2], av, b2);
                    acc[r][3] = vfmaq_f32(acc[r][3], av, b3);
                }
            }
            for (int r = 0; r < 4; r++)
                for (int v = 0; v < 4; v++) vst1q_f32(c + (i + r) * n + j + 4 * v, acc[r][v]);
        }
        for (; j < n; j++)
            for (int r = 0; r < 4; r++) {
                float s = 0;
                for (size_t q = 0; q < k; q++) s += a[(i + r) * k + q] * b[q * n + j];
                c[(i + r) * n + j] = s;
            }
    }
    for (; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            float s = 0;
            for (size_t q = 0; q < k; q++) s += a[i * k + q] * b[q * n + j];
            c[i * n + j] = s;
        }
}

static float unif(float lo, float hi) { return lo + (hi - lo) * (float)(next() >> 40) / (float)(1 << 24); }
static float *fvec(size_t n, float lo, float hi) {
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = unif(lo, hi);
    return v;
}
static uint64_t *bits(size_t n) {
    uint64_t *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = next();
    return v;
}

int main(int argc, char **argv) {
    if (argc != 14) {
        fprintf(stderr, "usage: %s T F KS S B H BACK AHEAD NB BW HW C REPS\n", argv[0]);
        return 2;
    }
    size_t a[13];
    for (int i = 0; i < 13; i++) a[i] = strtoull(argv[i + 1], 0, 10);
    const size_t T = a[0], F = a[1], KS = a[2], S = a[3], B = a[4], H = a[5], back = a[6],
                 ahead = a[7], NB = a[8], BW = a[9], HW = a[10], C = a[11], reps = a[12];
    if (!T || !F || !KS || !S || T < KS || !B || !H || !BW || !HW || BW > B || HW > H || !C) return 2;
    const size_t TS = (T - KS) / S + 1, KF = KS * F, L = back + 1 + ahead;
    const size_t wB = KWS_WORDS(B), wH = KWS_WORDS(H);

    /* model-shaped random parameters */
    float *mean = fvec(F, -60, -20), *std = fvec(F, 5, 15);
    float *stem_wt = fvec(KF * BW, -0.1f, 0.1f);               /* [KF, BW] (runtime's stem_wt) */
    float *stem_s = fvec(BW, 0.5f, 1.5f), *stem_b = fvec(BW, -0.1f, 0.1f), *stem_p = fvec(BW, 0.05f, 0.3f);
    float *head_s = fvec(BW, 0.5f, 1.5f), *head_b = fvec(BW, -0.1f, 0.1f);
    float *cls = fvec(C * BW, -0.1f, 0.1f), *cls_b = fvec(C, -0.1f, 0.1f);
    kws_block *blocks = calloc(NB ? NB : 1, sizeof *blocks);
    for (size_t b = 0; b < NB; b++) {
        int32_t *th = malloc(HW * sizeof *th);
        uint8_t *fl = malloc(HW);
        for (size_t j = 0; j < HW; j++) { th[j] = (int32_t)(next() % 23) - 11; fl[j] = (next() % 5) == 0; }
        float *taps = malloc(L * BW * sizeof *taps);           /* the default float memory input */
        for (size_t j = 0; j < L * BW; j++) taps[j] = (next() & 1) ? 1.0f : -1.0f;
        blocks[b] = (kws_block){
            .mem_taps = taps, .up_in = fvec(BW, -0.1f, 0.1f),
            .mem = bits(L * wB), .ldm = wB,
            .mem_scale = fvec(BW, 0.2f, 0.7f), .mem_shift = fvec(BW, -0.1f, 0.1f),
            .mem_prelu = fvec(BW, 0.05f, 0.3f),
            .up = bits(H * wB), .ldu = wB, .up_thresh = th, .up_flip = fl,   /* first HW rows used */
            .down = bits(B * wH), .ldd = wH,                                  /* first BW rows used */
            .down_scale = fvec(BW, 0.03f, 0.1f), .down_shift = fvec(BW, -0.1f, 0.1f)};
    }
    float *feat = fvec(T * F, -70, -10), *x = malloc(T * F * sizeof *x);
    float *stacked = malloc(TS * KF * sizeof *stacked), *h = malloc(TS * BW * sizeof *h);
    float *g = malloc(BW * sizeof *g), *logits = malloc(C * sizeof *logits);
    double checksum = 0;

    for (size_t r = 0; r < reps; r++) {
        feat[r % (T * F)] += 0.5f;                                   /* each inference differs */
        for (size_t i = 0; i < T * F; i++) x[i] = (feat[i] - mean[i % F]) / std[i % F];
        for (size_t t = 0; t < TS; t++)                              /* frame-major stem windows */
            memcpy(stacked + t * KF, x + t * S * F, KF * sizeof *x);
        stem_sgemm(stacked, TS, KF, stem_wt, BW, h);
        kws_affine_prelu(h, TS, BW, stem_s, stem_b, stem_p);
        if (kws_fsmn_blocks(h, TS, BW, HW, back, ahead, blocks, NB)) return 1;
        kws_affine_mean(h, TS, BW, head_s, head_b, g);
        for (size_t c = 0; c < C; c++) {
            float s = cls_b[c];
            for (size_t j = 0; j < BW; j++) s = s + cls[c * BW + j] * g[j];
            logits[c] = s;
        }
        checksum += logits[r % C];
    }
    printf("isa=%s T'=%zu BW=%zu HW=%zu blocks=%zu reps=%zu checksum=%.6g\n", kws_current()->name,
           TS, BW, HW, NB, reps, checksum);
    return 0;
}
