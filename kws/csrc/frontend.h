/* The streaming frontend's per-frame math (kws/frontend.py documents the definitions): Hann
 * window, real FFT, power spectrum, mel filterbank, 10*log10(max(S, 1e-10)) and, for MFCC, a DCT
 * matrix, all in float64 and rounded once to float32.  Each frame is computed on its own by the
 * same code, so a frame's features never depend on how many frames a call covers: streaming in
 * any chunking gives bit-identical results. */
#ifndef KWS_FRONTEND_H
#define KWS_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct kws_frontend kws_frontend;

/* A plan for frames of n_fft samples (8 <= n_fft <= 2**20; a power of two takes the real-FFT path, any
 * other size Bluestein's algorithm on a power-of-two FFT).  window: [n_fft]; band b sums
 * band_weight[offset_b + i] * power[band_first[b] + i] for i < band_len[b] (offset_b = sum of the
 * earlier lengths; every bin index < n_fft/2 + 1); dct: NULL (log-mel, n_out = n_mels) or
 * [n_out, n_mels] row-major.  The arrays are copied.  Returns NULL when memory runs out or an
 * argument is out of range. */
kws_frontend *kws_frontend_new(size_t n_fft, size_t n_mels, size_t n_out, const double *window,
                               const int32_t *band_first, const int32_t *band_len,
                               const double *band_weight, const double *dct);
void kws_frontend_free(kws_frontend *fe);

/* Features of n_frames frames, frame f being x[f*hop .. f*hop + n_fft), into out[f*ldo ..
 * f*ldo + n_out).  Thread-safe (scratch is per call).  Returns 0, or -1 when memory runs out. */
int kws_frontend_run(const kws_frontend *fe, const double *x, size_t hop, size_t n_frames,
                     float *out, size_t ldo);

#endif
