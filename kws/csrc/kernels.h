/* kws binary compute core: the kernel contract.
 *
 * Bit convention (all kernels, pack/unpack, the model file and the torch exporter):
 *   A row of K values in {+1, -1} is stored in ceil(K/64) little-endian uint64 words.
 *   Value j lives in word j/64, bit j%64 (LSB first); bit = 1 means -1, bit = 0 means +1
 *   (pack: bit = !(x >= 0), so x >= 0 -> +1).  Viewed as uint16, chunk c holds values 16c..16c+15
 *   (what the NEON FBCK kernel loads), viewed as bytes, byte b holds values 8b..8b+7.
 *   Then  a.w = K - 2 * popcount(a XOR w)  over the first K bits.
 * Padding: bits at positions >= k are IGNORED by every kernel whatever they hold (kernels mask
 *   them), so the first k' bits / first N' rows of a packed matrix are a valid narrower layer:
 *   a run-time width prefix is a view, never a copy.  pack() writes zeros there.
 * Strides: matrices are row-major with a row stride in uint64 words (>= ceil(k/64)); rows need
 *   not be adjacent, so column-prefix views are accepted.
 * No allocation in the hot loops except one scratch row block in the driver; no Python objects.
 */
#ifndef KWS_KERNELS_H
#define KWS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define KWS_WORDS(k) (((size_t)(k) + 63) / 64)

/* An ISA's micro-kernel: out[i*ldo + j] = popcount over the first k bits of (a_i XOR w_j)
 * for i < m, j < n.  (Dot products are derived from this by the shared driver.) */
typedef void (*kws_popcnt_fn)(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                              size_t m, size_t n, size_t k, int32_t *out, size_t ldo);

/* Optional fused entry point of an ISA: the same products with the driver's epilogue applied
 * while a tile is still in registers (no second pass over the output).  Returns 0, or -1 if out
 * of memory (the driver then falls back to popcnt + its own pass).  ISAs without one leave it
 * NULL; the popcnt contract above is all an ISA must provide. */
enum { KWS_EPI_POPCNT, KWS_EPI_DOT, KWS_EPI_SCALE, KWS_EPI_THRESH };
typedef struct {
    int kind;                 /* KWS_EPI_*: what out[i*ldo + ...] receives */
    void *out;                /* int32 (POPCNT, DOT: k - 2*popcount), float (SCALE), or packed
                                 uint64 bits (THRESH: kws_bgemm_threshold's layout) */
    size_t ldo;               /* row stride in elements of out's type */
    const float *scale, *bias;            /* SCALE: dot * scale[j] + bias[j] */
    const int32_t *thresh;                /* THRESH: bit 1 (= -1) iff (dot < thresh[j]) XOR flip[j] */
    const uint8_t *flip;
    int accumulate;                       /* SCALE: out += dot * scale[j] + bias[j] instead */
} kws_epilogue;
/* The THRESH test as a popcount bound: dot < t  <=>  k - 2 pc < t  <=>  pc > floor((k - t) / 2).
 * pc is in [0, k], so the bound is clamped to [-1, k] (always / never) without changing any answer
 * and it fits an int32 whatever t is. */
static inline int32_t kws_popcount_bound(size_t k, int32_t t) {
    const int64_t u = (int64_t)k - t;
    const int64_t f = u >= 0 ? u / 2 : -((1 - u) / 2);          /* floor(u / 2) */
    return (int32_t)(f < -1 ? -1 : f > (int64_t)k ? (int64_t)k : f);
}

typedef int (*kws_gemm_fn)(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                           size_t m, size_t n, size_t k, const kws_epilogue *e);

typedef struct {
    const char *name;        /* "scalar", "avx2", "avx512", "neon" */
    kws_popcnt_fn popcnt;
    kws_gemm_fn gemm;        /* optional (NULL) */
} kws_isa;

/* ---- per-ISA micro-kernels (NULL-returning getters when not compiled for this arch) ---- */
const kws_isa *kws_isa_scalar(void);
const kws_isa *kws_isa_avx2(void);      /* NULL off x86-64 */
const kws_isa *kws_isa_avx512(void);    /* NULL off x86-64 */
const kws_isa *kws_isa_neon(void);      /* NULL off aarch64 */

/* ---- dispatch.c ---- */
/* Is the ISA compiled in AND supported by this CPU (run-time feature detection)? */
int kws_isa_supported(const char *name);
/* Select by name; returns 0 on success, -1 if unknown/unsupported. */
int kws_select(const char *name);
/* The fastest ISA on this CPU: measured once on first use when more than one SIMD kernel is
 * supported (see dispatch.c), else the only one; scalar only without any.  Not thread-safe on
 * the very first call (the Python layer calls it at import). */
const char *kws_best_isa(void);
/* ns the dispatch measurement took on that ISA (best of its rounds); 0 if it was not measured. */
double kws_isa_probe_ns(const char *name);
const kws_isa *kws_current(void);

/* ---- drivers (dispatch.c): everything the Python layer calls ---- */
/* int32 dot products: out[M,N] (row stride ldo) = k - 2*popcount. */
void kws_bgemm(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
               size_t m, size_t n, size_t k, int32_t *out, size_t ldo);
/* float epilogue: out = (float)dot * scale[j] + bias[j].  Returns -1 if out of memory. */
int kws_bgemm_scale(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                     size_t m, size_t n, size_t k, const float *scale, const float *bias,
                            float *out, size_t ldo);
/* the same added into out: out += (float)dot * scale[j] + bias[j] (a residual connection). */
int kws_bgemm_scale_add(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                        size_t m, size_t n, size_t k, const float *scale, const float *bias,
                        float *out, size_t ldo);
/* binary epilogue: y_j = +1 iff (dot >= thresh[j]) XOR flip[j]; packed into out (row stride
 * ldo words, ceil(n/64) words written per row, padding bits zero).  -1 if out of memory. */
int kws_bgemm_threshold(const uint64_t *a, size_t lda, const uint64_t *w, size_t ldw,
                         size_t m, size_t n, size_t k, const int32_t *thresh,
                         const uint8_t *flip, uint64_t *out, size_t ldo);

/* ---- pack.c ---- */
/* Return the number of NaN values seen (packed as -1); the caller rejects NaN input.
 * kws_pack_f32 compares column j with thresh[j] instead of 0 when thresh is not NULL. */
size_t kws_pack_f32(const float *x, size_t ldx, size_t m, size_t k, const float *thresh,
                    uint64_t *out, size_t ldo);
size_t kws_pack_f64(const double *x, size_t ldx, size_t m, size_t k, uint64_t *out, size_t ldo);
void kws_pack_i8(const int8_t *x, size_t ldx, size_t m, size_t k, uint64_t *out, size_t ldo);
void kws_unpack_i8(const uint64_t *p, size_t ldp, size_t m, size_t k, int8_t *out, size_t ldo);

/* ---- memconv.c: binary depthwise temporal ("memory") convolution of the FSMN blocks ----
 * h: packed [T, c] (time-major, channels in bits), taps: packed [L, c] with L = back + 1 + ahead.
 * out[t, ch] = sum_{i=-back..ahead, 0 <= t+i < T} h[t+i, ch] * taps[i+back, ch]   (int8; zero
 * padding outside the sequence contributes 0).  Requires L <= 127. */
void kws_bmemconv(const uint64_t *h, size_t ldh, size_t t, const uint64_t *taps, size_t ldt,
                  size_t back, size_t ahead, size_t c, int8_t *out, size_t ldo);

#endif
