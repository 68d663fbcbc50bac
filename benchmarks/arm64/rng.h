/* Deterministic operands for the aarch64 instruction-count drivers: xorshift64, one stream. */
#ifndef KWS_BENCH_RNG_H
#define KWS_BENCH_RNG_H
#include <stdint.h>

static uint64_t state = 0x9E3779B97F4A7C15u;
static uint64_t next(void) {   /* xorshift64 */
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}
#endif
