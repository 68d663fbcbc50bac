/* Whole-inference instruction-count driver for one operating point (cross-compiled for aarch64
 * and run under qemu by benchmarks/pi_estimate.py, linked with every kws/csrc/*.c file).
 *
 *   runtime_main T F KS S B H BACK AHEAD NB BW HW C REPS [P]
 *
 * T frames x F features in, stem windows of KS frames with stride S, full backbone B / hidden H
 * (the packed weight strides of the model file), NB blocks run at width BW / HW channels, C
 * classes, P sign planes into the up projection (default 1; P > 1: the runtime's per-width tiled
 * up matrix, P x words(BW) words a row).  Does REPS inferences on random weights of those shapes through kws_fsmn_forward, the
 * one C call kws.fsmn.runtime.BinaryFSMN.logits makes (normalisation, stem windows, stem matmul,
 * blocks with the NEON kernels, head, classifier): the product's code, nothing stands in for it.
 * The Python glue around that call is not here (see docs/performance.md's Pi estimate).
 * Count with icount.sh (whole program, REPS=R minus REPS=0, or -f popcnt_neon for the kernel,
 * -f stem_matmul for the float stem). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "fsmn.h"
#include "rng.h"

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
    if (argc < 14 || argc > 16) {
        fprintf(stderr, "usage: %s T F KS S B H BACK AHEAD NB BW HW C REPS [P [PCEN]]\n", argv[0]);
        return 2;
    }
    const size_t P = argc >= 15 ? strtoull(argv[14], 0, 10) : 1;
    const int with_pcen = argc == 16 && strtoull(argv[15], 0, 10) != 0;   /* arch input_norm "pcen" */
    if (P < 1 || P > 3) return 2;
    size_t a[13];
    for (int i = 0; i < 13; i++) a[i] = strtoull(argv[i + 1], 0, 10);
    const size_t T = a[0], F = a[1], KS = a[2], S = a[3], B = a[4], H = a[5], back = a[6],
                 ahead = a[7], NB = a[8], BW = a[9], HW = a[10], C = a[11], reps = a[12];
    if (!T || !F || !KS || !S || T < KS || !B || !H || !BW || !HW || BW > B || HW > H || !C) return 2;
    const size_t TS = (T - KS) / S + 1, KF = KS * F, L = back + 1 + ahead;
    const size_t wB = KWS_WORDS(B), wH = KWS_WORDS(H), wU = P > 1 ? P * KWS_WORDS(BW) : wB;

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
            .mem_taps = taps, .up_in = fvec(P * BW, -0.1f, 0.1f), .up_planes = P,
            .mem = bits(L * wB), .ldm = wB,
            .mem_scale = fvec(BW, 0.2f, 0.7f), .mem_shift = fvec(BW, -0.1f, 0.1f),
            .mem_prelu = fvec(BW, 0.05f, 0.3f),
            .up = bits(H * wU), .ldu = wU, .up_thresh = th, .up_flip = fl,   /* first HW rows used */
            .down = bits(B * wH), .ldd = wH,                                  /* first BW rows used */
            .down_scale = fvec(BW, 0.03f, 0.1f), .down_shift = fvec(BW, -0.1f, 0.1f)};
    }
    float *feat = fvec(T * F, -70, -10), *logits = malloc(C * sizeof *logits);
    float *pcen = malloc(5 * F * sizeof *pcen);   /* kws/fsmn/pcen.py default_params */
    const float pcen_col[5] = {0.024693f, 1.0f, 2.0f, 0.5f, 1e-8f};
    for (size_t r = 0; r < 5; r++)
        for (size_t j = 0; j < F; j++) pcen[r * F + j] = pcen_col[r];
    const kws_fsmn_net net = {
        .n_frames = T, .n_features = F, .stem_kernel = KS, .stem_stride = S,
        .bw = BW, .hw = HW, .back = back, .ahead = ahead, .mean = mean, .std = std,
        .pcen = with_pcen ? pcen : NULL,
        .stem_wt = stem_wt, .stem_scale = stem_s, .stem_shift = stem_b, .stem_prelu = stem_p,
        .blocks = blocks, .n_blocks = NB, .head_scale = head_s, .head_shift = head_b,
        .cls_w = cls, .ldc = BW, .cls_b = cls_b, .n_classes = C};
    void *scratch = malloc(kws_fsmn_scratch_bytes(&net));   /* reused, as K.Network does */
    double checksum = 0;

    for (size_t r = 0; r < reps; r++) {
        feat[r % (T * F)] += 0.5f;                                   /* each inference differs */
        if (kws_fsmn_forward(&net, feat, logits, NULL, scratch)) return 1;
        checksum += logits[r % C];
    }
    printf("isa=%s T'=%zu BW=%zu HW=%zu blocks=%zu reps=%zu checksum=%.6g\n", kws_current()->name,
           TS, BW, HW, NB, reps, checksum);
    return 0;
}
