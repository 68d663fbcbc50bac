/* The binary D-FSMN block stack (math in kws/fsmn/config.py), fused into one call so that a
 * whole sub-network runs without returning to Python between layers. */
#ifndef KWS_FSMN_H
#define KWS_FSMN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const float *mem_taps;                /* [back+1+ahead, bw] +-1: memconv reads float h; or NULL: */
    const uint64_t *mem;  size_t ldm;     /* packed taps [back+1+ahead, >= words(bw)] read sign(h-mem_in) */
    const float *mem_in, *up_in;          /* [bw] thresholds of the signs of h (mem_in: binary only) */
    const float *mem_scale, *mem_shift, *mem_prelu;          /* [bw] */
    const uint64_t *up;   size_t ldu;     /* packed [hw rows, >= words(bw)] */
    const int32_t *up_thresh; const uint8_t *up_flip;        /* [hw] */
    const uint64_t *down; size_t ldd;     /* packed [bw rows, >= words(hw)] */
    const float *down_scale, *down_shift;                    /* [bw] */
} kws_block;

/* Run n blocks in order on the residual stream h [t, bw] (contiguous float32, updated in place).
 * Returns 0, or -1 when scratch memory cannot be allocated (h is then unspecified). */
int kws_fsmn_blocks(float *h, size_t t, size_t bw, size_t hw, size_t back, size_t ahead,
                    const kws_block *blocks, size_t n);

/* h = PReLU(h * scale + shift), in place, [t, c]. */
void kws_affine_prelu(float *h, size_t t, size_t c, const float *scale, const float *shift,
                      const float *slope);

/* g[c] = mean over t of (h[t, c] * scale[c] + shift[c]), summed in time order in float32. */
void kws_affine_mean(const float *h, size_t t, size_t c, const float *scale, const float *shift,
                     float *g);

#endif
