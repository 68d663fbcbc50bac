/* Sign packing: bit = !(x >= 0), LSB first (see kernels.h).  NaN packs as -1 and is counted so
 * the Python layer can reject it. */
#include <string.h>
#include "kernels.h"

#define PACK_BODY(T)                                                          \
    size_t nans = 0;                                                          \
    const size_t kw = KWS_WORDS(k);                                           \
    for (size_t i = 0; i < m; i++) {                                          \
        const T *xi = x + i * ldx;                                            \
        uint64_t *oi = out + i * ldo;                                         \
        for (size_t q = 0; q < kw; q++) {                                     \
            const size_t base = q * 64, end = (k - base < 64) ? k - base : 64; \
            uint64_t word = 0;                                                \
            for (size_t b = 0; b < end; b++) {                                \
                const T v = xi[base + b];                                     \
                word |= (uint64_t)(!(v >= 0)) << b;                           \
                nans += (v != v);                                             \
            }                                                                 \
            oi[q] = word;                                                     \
        }                                                                     \
    }                                                                         \
    return nans;

size_t kws_pack_f32(const float *x, size_t ldx, size_t m, size_t k, uint64_t *out, size_t ldo) {
    PACK_BODY(float)
}

size_t kws_pack_f64(const double *x, size_t ldx, size_t m, size_t k, uint64_t *out, size_t ldo) {
    PACK_BODY(double)
}

void kws_pack_i8(const int8_t *x, size_t ldx, size_t m, size_t k, uint64_t *out, size_t ldo) {
    const size_t kw = KWS_WORDS(k);
    for (size_t i = 0; i < m; i++) {
        const int8_t *xi = x + i * ldx;
        uint64_t *oi = out + i * ldo;
        for (size_t q = 0; q < kw; q++) {
            const size_t base = q * 64, end = (k - base < 64) ? k - base : 64;
            uint64_t word = 0;
            for (size_t b = 0; b < end; b++) word |= (uint64_t)(xi[base + b] < 0) << b;
            oi[q] = word;
        }
    }
}

void kws_unpack_i8(const uint64_t *p, size_t ldp, size_t m, size_t k, int8_t *out, size_t ldo) {
    for (size_t i = 0; i < m; i++) {
        const uint64_t *pi = p + i * ldp;
        int8_t *oi = out + i * ldo;
        for (size_t j = 0; j < k; j++) oi[j] = ((pi[j / 64] >> (j % 64)) & 1) ? -1 : 1;
    }
}
