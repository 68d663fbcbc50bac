/* Frontend instruction-count driver (cross-compiled for aarch64 and run under qemu by
 * benchmarks/pi_estimate.py, linked with kws/csrc/frontend.c and the C library's log).
 *
 *   frontend_main N_FFT HOP N_OUT FRAMES FIRST:LEN ...
 *
 * Builds the frontend of one mel band per FIRST:LEN argument (the shipped model's bands; a DCT
 * of N_OUT rows when N_OUT is not the band count) on random window and weights, and computes
 * FRAMES frames of noise with kws_frontend_run, the one C call kws.frontend makes per block:
 * the product's code.  Count with icount.sh: FRAMES=F minus FRAMES=0 (set-up cancels). */
#include <stdio.h>
#include <stdlib.h>
#include "frontend.h"
#include "rng.h"

static double unif(void) { return (double)(next() >> 11) / 9007199254740992.0; }

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s N_FFT HOP N_OUT FRAMES FIRST:LEN ...\n", argv[0]);
        return 2;
    }
    size_t n_fft = strtoull(argv[1], 0, 10), hop = strtoull(argv[2], 0, 10);
    size_t n_out = strtoull(argv[3], 0, 10), frames = strtoull(argv[4], 0, 10);
    size_t n_mels = (size_t)argc - 5, n_w = 0;
    int32_t *first = malloc(n_mels * sizeof *first), *len = malloc(n_mels * sizeof *len);
    for (size_t b = 0; b < n_mels; b++) {
        if (sscanf(argv[5 + b], "%d:%d", &first[b], &len[b]) != 2) {
            fprintf(stderr, "bad band %s\n", argv[5 + b]);
            return 2;
        }
        n_w += (size_t)len[b];
    }
    double *window = malloc(n_fft * sizeof *window), *w = malloc((n_w + 1) * sizeof *w);
    double *dct = n_out == n_mels ? NULL : malloc(n_out * n_mels * sizeof *dct);
    for (size_t i = 0; i < n_fft; i++) window[i] = unif();
    for (size_t i = 0; i < n_w; i++) w[i] = unif() * 0.01;
    for (size_t i = 0; dct && i < n_out * n_mels; i++) dct[i] = unif() - 0.5;
    size_t n = (frames ? frames - 1 : 0) * hop + n_fft;
    double *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = 0.1 * (unif() - 0.5);
    float *out = malloc((frames + 1) * n_out * sizeof *out);
    kws_frontend *fe = kws_frontend_new(n_fft, n_mels, n_out, window, first, len, w, dct);
    if (!fe || kws_frontend_run(fe, x, hop, frames, out, n_out)) {
        fprintf(stderr, "frontend failed\n");
        return 1;
    }
    double s = 0;   /* keep the results live */
    for (size_t i = 0; i < frames * n_out; i++) s += out[i];
    printf("%g\n", s);
    kws_frontend_free(fe);
    return 0;
}
