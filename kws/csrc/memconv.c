/* Binary depthwise temporal convolution (FSMN memory block), on packed channels.
 * The sign bits of the frames and of the taps are spread to one byte per channel (0 = +1,
 * 1 = -1) through a 256-entry table, 8 channels per lookup; then for every output frame the
 * valid taps add their XORs byte-wise (a loop compilers vectorise), and
 * sum = valid - 2 * (number of -1 products). */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

static uint64_t spread[256];      /* byte b -> 8 bytes, byte i = bit i of b */

static void init_spread(void) {
    for (unsigned b = 0; b < 256; b++) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++) v |= (uint64_t)((b >> i) & 1) << (8 * i);
        spread[b] = v;
    }
}

/* packed row of c bits -> c bytes of 0/1 */
static void spread_row(const uint64_t *p, size_t c, uint8_t *out) {
    const uint8_t *bytes = (const uint8_t *)p;      /* little-endian words: byte j = bits 8j.. */
    size_t j = 0;
    for (; j + 8 <= c; j += 8) memcpy(out + j, &spread[bytes[j / 8]], 8);
    if (j < c) {
        const uint64_t v = spread[bytes[j / 8]];
        memcpy(out + j, &v, c - j);
    }
}

void kws_bmemconv(const uint64_t *h, size_t ldh, size_t t, const uint64_t *taps, size_t ldt,
                  size_t back, size_t ahead, size_t c, int8_t *out, size_t ldo) {
    if (!spread[1]) init_spread();    /* idempotent, so a benign race between threads */
    const size_t L = back + 1 + ahead;
    uint8_t *hs = malloc(t * c + 1), *ts = malloc(L * c + 1), *cnt = malloc(c + 1);
    if (!hs || !ts || !cnt) {         /* out of memory: the slow path needs none */
        free(hs); free(ts); free(cnt);
        for (size_t f = 0; f < t; f++)
            for (size_t ch = 0; ch < c; ch++) {
                int s = 0;
                for (size_t i = 0; i < L; i++) {
                    const size_t u = f + i;               /* source frame + back */
                    if (u < back || u - back >= t) continue;
                    const int x = (h[(u - back) * ldh + ch / 64] >> (ch % 64)) & 1;
                    const int w = (taps[i * ldt + ch / 64] >> (ch % 64)) & 1;
                    s += (x ^ w) ? -1 : 1;
                }
                out[f * ldo + ch] = (int8_t)s;
            }
        return;
    }
    for (size_t f = 0; f < t; f++) spread_row(h + f * ldh, c, hs + f * c);
    for (size_t i = 0; i < L; i++) spread_row(taps + i * ldt, c, ts + i * c);
    for (size_t f = 0; f < t; f++) {
        const size_t lo = f >= back ? f - back : 0;           /* first valid source frame */
        const size_t hi = f + ahead < t ? f + ahead : t - 1;  /* last valid source frame */
        memset(cnt, 0, c);
        for (size_t u = lo; u <= hi; u++) {
            const uint8_t *x = hs + u * c, *w = ts + (u + back - f) * c;
            for (size_t ch = 0; ch < c; ch++) cnt[ch] += x[ch] ^ w[ch];
        }
        const int valid = (int)(hi - lo + 1);
        int8_t *o = out + f * ldo;
        for (size_t ch = 0; ch < c; ch++) o[ch] = (int8_t)(valid - 2 * cnt[ch]);
    }
    free(hs); free(ts); free(cnt);
}
