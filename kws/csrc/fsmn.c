/* Fused binary D-FSMN blocks.  Per block (see kws/fsmn/config.py):
 *   m = memconv(sign h)            h += PReLU(m * mem_scale + mem_shift)
 *   bits = [sign(h) . W_up >= thresh] xor flip      (packed, never leaves bits)
 *   h += (bits . W_down) * down_scale + down_shift
 * The float steps are the same IEEE single-precision operations, in the same order, as the
 * numpy/torch formulation (build flags forbid FMA contraction), so results match bit for bit. */
#include <stdlib.h>
#include "kernels.h"
#include "fsmn.h"

int kws_fsmn_blocks(float *h, size_t t, size_t bw, size_t hw, size_t back, size_t ahead,
                    const kws_block *blocks, size_t n) {
    const size_t wb = KWS_WORDS(bw), wh = KWS_WORDS(hw);
    uint64_t *hb = malloc(t * wb * sizeof(uint64_t) + 1);
    uint64_t *z = malloc(t * wh * sizeof(uint64_t) + 1);
    int8_t *m = malloc(t * bw + 1);
    float *y = malloc(t * bw * sizeof(float) + 1);
    int rc = (hb && z && m && y) ? 0 : -1;
    for (size_t b = 0; b < n && rc == 0; b++) {
        const kws_block *k = &blocks[b];
        kws_pack_f32(h, bw, t, bw, hb, wb);
        kws_bmemconv(hb, wb, t, k->mem, k->ldm, back, ahead, bw, m, bw);
        for (size_t i = 0; i < t; i++) {
            float *hi = h + i * bw;
            const int8_t *mi = m + i * bw;
            for (size_t c = 0; c < bw; c++) {
                float u = (float)mi[c] * k->mem_scale[c];
                u = u + k->mem_shift[c];
                if (u < 0) u = u * k->mem_prelu[c];
                hi[c] = hi[c] + u;
            }
        }
        kws_pack_f32(h, bw, t, bw, hb, wb);
        rc |= kws_bgemm_threshold(hb, wb, k->up, k->ldu, t, hw, bw, k->up_thresh, k->up_flip, z, wh);
        rc |= kws_bgemm_scale(z, wh, k->down, k->ldd, t, bw, hw, k->down_scale, k->down_shift, y, bw);
        for (size_t i = 0; i < t * bw; i++) h[i] = h[i] + y[i];
    }
    free(hb); free(z); free(m); free(y);
    return rc;
}
