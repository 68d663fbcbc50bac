/* Scalar reference micro-kernel: plain C, any CPU.  The bit-exact yardstick for the SIMD ones. */
#include "kernels.h"

/* Mask of the valid bits of the last word of a k-bit row (all ones when k % 64 == 0). */
static inline uint64_t tail_mask(size_t k) {
    return (k % 64) ? ((UINT64_C(1) << (k % 64)) - 1) : ~UINT64_C(0);
}

static void popcnt_scalar(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                          size_t m, size_t n, size_t k, int32_t *out, size_t ldo) {
    const size_t kw = KWS_WORDS(k);
    const uint64_t last = tail_mask(k);
    for (size_t i = 0; i < m; i++) {
        const uint64_t *ai = a + i * lda;
        for (size_t j = 0; j < n; j++) {
            const uint64_t *wj = w + j * ldw;
            int32_t c = 0;
            for (size_t q = 0; q + 1 < kw; q++) c += __builtin_popcountll(ai[q] ^ wj[q]);
            if (kw) c += __builtin_popcountll((ai[kw - 1] ^ wj[kw - 1]) & last);
            out[i * ldo + j] = c;
        }
    }
}

static const kws_isa isa = {"scalar", popcnt_scalar};
const kws_isa *kws_isa_scalar(void) { return &isa; }
