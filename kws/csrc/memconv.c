/* Binary depthwise temporal convolution (FSMN memory block), on packed channels.
 * For each frame and 64-channel word, the per-channel products of the valid taps are XOR bits
 * (1 = product -1); a bit-sliced counter (4 planes, up to 15 taps at once) adds them across taps
 * for all 64 channels in parallel, then one pass turns counts into sums: valid - 2*count. */
#include "kernels.h"

void kws_bmemconv(const uint64_t *h, size_t ldh, size_t t, const uint64_t *taps, size_t ldt,
                  size_t back, size_t ahead, size_t c, int8_t *out, size_t ldo) {
    const size_t kw = KWS_WORDS(c);
    for (size_t f = 0; f < t; f++) {
        const size_t lo = f >= back ? f - back : 0;          /* first valid source frame */
        const size_t hi = f + ahead < t ? f + ahead : t - 1;  /* last valid source frame */
        const int valid = (int)(hi - lo + 1);
        for (size_t q = 0; q < kw; q++) {
            int8_t *o = out + f * ldo + q * 64;
            const size_t nb = (c - q * 64 < 64) ? c - q * 64 : 64;
            int cnt[64] = {0};
            size_t s = lo;
            while (s <= hi) {   /* chunks of <= 15 taps into a 4-bit sliced counter */
                uint64_t p0 = 0, p1 = 0, p2 = 0, p3 = 0;
                size_t e = s + 15 <= hi + 1 ? s + 15 : hi + 1;
                for (size_t u = s; u < e; u++) {
                    uint64_t x = h[u * ldh + q] ^ taps[(u + back - f) * ldt + q];
                    uint64_t c0 = p0 & x; p0 ^= x;
                    uint64_t c1 = p1 & c0; p1 ^= c0;
                    uint64_t c2 = p2 & c1; p2 ^= c1;
                    p3 ^= c2;
                }
                for (size_t b = 0; b < nb; b++)
                    cnt[b] += (int)((p0 >> b) & 1) | (int)((p1 >> b) & 1) << 1 |
                              (int)((p2 >> b) & 1) << 2 | (int)((p3 >> b) & 1) << 3;
                s = e;
            }
            for (size_t b = 0; b < nb; b++) o[b] = (int8_t)(valid - 2 * cnt[b]);
        }
    }
}
