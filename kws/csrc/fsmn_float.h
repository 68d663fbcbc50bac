/* The float kernels of fsmn.c, written once for a vector width VL and compiled once per target
 * (fsmn.c includes this file with VL = that target's native float vector: 16 for AVX-512, 8 for
 * AVX2, 4 for SSE2 and NEON; GCC vectors wider than the hardware's spill to the stack: 4x the
 * instructions on NEON).  Every function but stem_matmul is a fixed sequence of IEEE
 * single-precision operations whatever VL is (elementwise vector ops, sums in index order, no
 * FMA but where it is exact: add_tap), so every build gives the same bits; stem_matmul contracts
 * to FMA (see there).  Names get the suffix SUFFIX; float_ops_SUFFIX collects them.
 * Needs: VL, SUFFIX; and NAME(x) to paste the suffix. */

typedef float NAME(vf) __attribute__((vector_size(VL * sizeof(float))));
typedef int32_t NAME(vi) __attribute__((vector_size(VL * sizeof(int32_t))));
#define vf NAME(vf)
#define vi NAME(vi)
#define ld NAME(ld)
#define st NAME(st)
#define prelu_v NAME(prelu_v)

static inline vf ld(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void st(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* u < 0 ? u * slope : u  (the product is computed either way, as in the reference) */
static inline vf prelu_v(vf u, vf slope) {
    const vi neg = u < 0;
    return (vf)(((vi)(u * slope) & neg) | ((vi)u & ~neg));
}

/* a + x * t for taps t = +-1: the product is exact, so one fused multiply-add rounds exactly as
 * the separate multiply and add do (the same bits, one instruction instead of two) */
static inline vf NAME(add_tap)(vf a, vf x, vf t) {
#if defined(__x86_64__) && VL == 16
    return (vf)_mm512_fmadd_ps((__m512)x, (__m512)t, (__m512)a);
#elif defined(__x86_64__) && VL == 8
    return (vf)_mm256_fmadd_ps((__m256)x, (__m256)t, (__m256)a);
#elif defined(__aarch64__) && VL == 4
    return (vf)vfmaq_f32((float32x4_t)a, (float32x4_t)x, (float32x4_t)t);
#else
    return a + x * t;
#endif
}

/* bit i = !(v[i] >= t[i]), lane 0 in bit 0: kws_pack_f32's sign bit (1 = -1, NaN -> 1) */
static inline unsigned NAME(neg_bits)(vf v, vf t) {
#if defined(__x86_64__) && VL == 16
    return _mm512_cmp_ps_mask((__m512)v, (__m512)t, _CMP_NGE_UQ);
#elif defined(__x86_64__) && VL == 8
    return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps((__m256)v, (__m256)t, _CMP_NGE_UQ));
#elif defined(__x86_64__) && VL == 4
    return (unsigned)_mm_movemask_ps(_mm_cmpnge_ps((__m128)v, (__m128)t));
#elif defined(__aarch64__) && VL == 4
    const uint32x4_t lane_bit = {1, 2, 4, 8};
    return vaddvq_u32(vbicq_u32(lane_bit, vcgeq_f32((float32x4_t)v, (float32x4_t)t)));
#else
    unsigned b = 0;
    for (int i = 0; i < VL; i++) b |= (unsigned)!(v[i] >= t[i]) << i;
    return b;
#endif
}

/* xn[n, f] = (x[n, f] - mean[f]) / std[f]: every frame once.  A stem window is then a row of
 * stem_kernel * F consecutive floats of xn starting at frame r * stride, read in place. */
static void NAME(normalise)(const float *restrict x, size_t frames, size_t f, const float *restrict mean,
                            const float *restrict std, float *restrict xn) {
    for (size_t n = 0; n < frames; n++) {
        const float *xr = x + n * f;
        float *xo = xn + n * f;
        size_t c = 0;
        for (; c + VL <= f; c += VL) st(xo + c, (ld(xr + c) - ld(mean + c)) / ld(std + c));
        for (; c < f; c++) xo[c] = (xr[c] - mean[c]) / std[c];
    }
}

/* h[r, c] = sum over i (in order) of s[r * lds + i] * wt[i, c] (rows of s may overlap).  Tiles of RT rows x TV vectors: RT * TV
 * independent accumulators hide the add latency and stay in registers (TV = 4 on NEON's 32
 * registers, 2 elsewhere; RT = 8 on AVX-512, 4 elsewhere); each weight vector loaded serves RT
 * rows.  The tile shape never changes the order of a sum, only which sums run side by side.
 * AVX-512 with 8 rows (Intel Xeon family 6 model 207, one thread, thread CPU time, 5 alternating
 * runs): a whole 1x8 inference 104 -> 87 us; 0.5x4 unchanged within noise (26 us). */
#ifndef TV
#define TV 2
#endif
/* noinline: benchmarks/pi_estimate.py counts its instructions by name.  The one float step with
 * fused multiply-adds where the target has them (AVX2, AVX-512, NEON): it is the largest float
 * layer, and FMA halves its instructions; so its rounding, like BLAS's, depends on the CPU (the
 * tests compare it with an exact sum, to 1e-5), while every step after it is bit-exact. */
/* RT rows per tile: 8 on AVX-512 (16 accumulators of its 32 registers), 4 elsewhere. */
#ifndef RT
#define RT (VL == 16 ? 8 : 4)
#endif
#define STEM_TILE NAME(stem_tile)
/* rows r..r+R-1 of h, every column block of TV vectors; the columns past the last block one by one */
static inline __attribute__((always_inline, optimize("fp-contract=fast"))) void STEM_TILE(
        const float *restrict s, size_t lds, size_t r, const int R, size_t k, const float *restrict wt,
        size_t bw, float *restrict h) {
    size_t c = 0;
    for (; c + TV * VL <= bw; c += TV * VL) {
        vf acc[RT][TV];      /* R <= RT rows used */
#pragma GCC unroll 16
        for (int q = 0; q < R; q++)
#pragma GCC unroll 16
            for (int v = 0; v < TV; v++) acc[q][v] = (vf){0};
        for (size_t i = 0; i < k; i++) {
            vf w[TV];
#pragma GCC unroll 16
            for (int v = 0; v < TV; v++) w[v] = ld(wt + i * bw + c + v * VL);
#pragma GCC unroll 16
            for (int q = 0; q < R; q++) {
                const float x = s[(r + q) * lds + i];
#pragma GCC unroll 16
                for (int v = 0; v < TV; v++) acc[q][v] = acc[q][v] + x * w[v];
            }
        }
#pragma GCC unroll 16
        for (int q = 0; q < R; q++)
#pragma GCC unroll 16
            for (int v = 0; v < TV; v++) st(h + (r + q) * bw + c + v * VL, acc[q][v]);
    }
    for (; c < bw; c++)
        for (int q = 0; q < R; q++) {
            float a = 0;
            for (size_t i = 0; i < k; i++) a = a + s[(r + q) * lds + i] * wt[i * bw + c];
            h[(r + q) * bw + c] = a;
        }
}

__attribute__((noinline, optimize("fp-contract=fast"))) static void NAME(stem_matmul)(
        const float *restrict s, size_t lds, size_t rows, size_t k, const float *restrict wt, size_t bw,
        float *restrict h) {
    size_t r = 0;
    for (; r + RT <= rows; r += RT) STEM_TILE(s, lds, r, RT, k, wt, bw, h);
    for (; r + 4 <= rows; r += 4) STEM_TILE(s, lds, r, 4, k, wt, bw, h);
    for (; r < rows; r++)
        for (size_t c = 0; c < bw; c++) {
            float a = 0;
            for (size_t i = 0; i < k; i++) a = a + s[r * lds + i] * wt[i * bw + c];
            h[r * bw + c] = a;
        }
}

static void NAME(affine_prelu)(float *restrict h, size_t t, size_t c, const float *restrict scale,
                             const float *restrict shift, const float *restrict slope) {
    for (size_t i = 0; i < t; i++) {
        float *restrict hi = h + i * c;
        size_t j = 0;
        for (; j + VL <= c; j += VL)
            st(hi + j, prelu_v(ld(hi + j) * ld(scale + j) + ld(shift + j), ld(slope + j)));
        for (; j < c; j++) hi[j] = prelu_s(hi[j] * scale[j] + shift[j], slope[j]);
    }
}

static void NAME(affine_mean)(const float *restrict h, size_t t, size_t c, const float *restrict scale,
                            const float *restrict shift, float *restrict g) {
    size_t j = 0;
    for (; j + VL <= c; j += VL) {
        const vf s = ld(scale + j), b = ld(shift + j);
        vf a = {0};
        for (size_t i = 0; i < t; i++) a = a + (ld(h + i * c + j) * s + b);
        st(g + j, a / (float)t);
    }
    for (; j < c; j++) {
        float a = 0;
        for (size_t i = 0; i < t; i++) a = a + (h[i * c + j] * scale[j] + shift[j]);
        g[j] = a / (float)t;
    }
}

/* m[r, c] = sum over taps i (past -> future) of x[r + i - back, c] * taps[i, c], x = 0 outside
 * the clip (rows there read `zero`, bw zeros): the products and the sum in the same order as the
 * torch memconv, so the float32 result is the same.  Row pointers are resolved once per row (no
 * branch in the vector loops); 4 vectors at a time: independent sums hide the add latency. */
static void NAME(float_memconv)(const float *restrict x, size_t t, size_t bw,
                                 const float *restrict taps, size_t back, size_t ahead,
                                 const float *restrict zero, float *restrict m) {
    enum { MAX_TAPS = 127 };
    const size_t L = back + 1 + ahead;
    const float *row[MAX_TAPS];
    for (size_t r = 0; r < t; r++) {
        float *restrict mr = m + r * bw;
        for (size_t i = 0; i < L; i++) {
            const long src = (long)r + (long)i - (long)back;
            row[i] = (src < 0 || src >= (long)t) ? zero : x + (size_t)src * bw;
        }
        size_t c = 0;
        for (; c + 4 * VL <= bw; c += 4 * VL) {
            vf a0 = ld(row[0] + c) * ld(taps + c), a1 = ld(row[0] + c + VL) * ld(taps + c + VL);
            vf a2 = ld(row[0] + c + 2 * VL) * ld(taps + c + 2 * VL);
            vf a3 = ld(row[0] + c + 3 * VL) * ld(taps + c + 3 * VL);
            for (size_t i = 1; i < L; i++) {
                const float *tap = taps + i * bw + c, *xr = row[i] + c;
                a0 = NAME(add_tap)(a0, ld(xr), ld(tap));
                a1 = NAME(add_tap)(a1, ld(xr + VL), ld(tap + VL));
                a2 = NAME(add_tap)(a2, ld(xr + 2 * VL), ld(tap + 2 * VL));
                a3 = NAME(add_tap)(a3, ld(xr + 3 * VL), ld(tap + 3 * VL));
            }
            st(mr + c, a0); st(mr + c + VL, a1); st(mr + c + 2 * VL, a2); st(mr + c + 3 * VL, a3);
        }
        for (; c + VL <= bw; c += VL) {
            vf a = ld(row[0] + c) * ld(taps + c);
            for (size_t i = 1; i < L; i++) a = NAME(add_tap)(a, ld(row[i] + c), ld(taps + i * bw + c));
            st(mr + c, a);
        }
        for (; c < bw; c++) {
            float a = row[0][c] * taps[c];
            for (size_t i = 1; i < L; i++) a = a + row[i][c] * taps[i * bw + c];
            mr[c] = a;
        }
    }
}

/* out = h + PReLU(m * scale + shift) */
static void NAME(memory_update)(const float *restrict h, const float *restrict m, size_t t, size_t bw,
                                 const float *restrict scale, const float *restrict shift,
                                 const float *restrict slope, float *restrict out) {
    for (size_t r = 0; r < t; r++) {
        const float *restrict hr = h + r * bw, *restrict mr = m + r * bw;
        float *restrict o = out + r * bw;
        size_t c = 0;
        for (; c + VL <= bw; c += VL)
            st(o + c, ld(hr + c) + prelu_v(ld(mr + c) * ld(scale + c) + ld(shift + c), ld(slope + c)));
        for (; c < bw; c++) o[c] = hr[c] + prelu_s(mr[c] * scale[c] + shift[c], slope[c]);
    }
}

/* out = h + PReLU(memconv(h) * scale + shift) in one pass for 5 taps (back + 1 + ahead = 5: the
 * default architecture's 2 + 1 + 2), the same operations in the same order as float_memconv then
 * memory_update, m never stored; and the signs of out against up_in packed into hb [t rows of ldb words]
 * as kws_pack_f32 packs them (the up GEMM's input), while out is in registers.  Blocks of CB
 * vectors of channels outermost, so the block's 5 taps and 4 parameter vectors are loaded once
 * and stay in registers down all t rows: per output vector 5 loads of h and one store, against
 * 16 loads and 2 stores for the two passes and a third pass to pack.  Other tap counts take the
 * passes.  (With the residual add in the down GEMM's epilogue, Intel Xeon family 6 model 207, one
 * thread, 4 alternating runs: 1x8 inference 69 -> 61 us, 0.5x4 20.0 -> 16.7 us; docs/performance.md.) */
#ifndef CB
#define CB (VL == 16 ? 2 : 1)      /* AVX-512: 2 x (5 taps + 4) of 32 zmm; AVX2/SSE2: 16 registers */
#endif
static void NAME(memory_block5)(const float *restrict h, size_t t, size_t bw,
                                const float *restrict taps, size_t back, const float *restrict zero,
                                const float *restrict scale, const float *restrict shift,
                                const float *restrict slope, float *restrict out,
                                const float *restrict up_in, uint64_t *restrict hb, size_t ldb,
                                const float **rows) {
    enum { L = MEM_TAPS };      /* fsmn.c */
    memset(hb, 0, t * ldb * sizeof *hb);    /* bits arrive in pieces of CB * VL (a divisor of 64); ldb: row
                                               stride in words (rows may hold further sign planes) */
    /* rows (scratch of t + L - 1 pointers): rows[r + i] = tap i's input row of output row r */
    for (size_t j = 0; j < t + L - 1; j++)
        rows[j] = (j < back || j - back >= t) ? zero : h + (j - back) * bw;
    size_t c = 0;
    for (; c + CB * VL <= bw; c += CB * VL) {
        vf tp[L][CB], sc[CB], sh[CB], sl[CB], ui[CB];
#pragma GCC unroll 16
        for (int v = 0; v < CB; v++) {
#pragma GCC unroll 16
            for (int i = 0; i < L; i++) tp[i][v] = ld(taps + i * bw + c + v * VL);
            sc[v] = ld(scale + c + v * VL); sh[v] = ld(shift + c + v * VL);
            sl[v] = ld(slope + c + v * VL); ui[v] = ld(up_in + c + v * VL);
        }
        for (size_t r = 0; r < t; r++) {
            const float *const *xr = rows + r;
            uint64_t bits = 0;
#pragma GCC unroll 16
            for (int v = 0; v < CB; v++) {
                const size_t j = c + v * VL;
                vf a = ld(xr[0] + j) * tp[0][v];
#pragma GCC unroll 16
                for (int i = 1; i < L; i++) a = NAME(add_tap)(a, ld(xr[i] + j), tp[i][v]);
                const vf y = ld(h + r * bw + j) + prelu_v(a * sc[v] + sh[v], sl[v]);
                st(out + r * bw + j, y);
                bits |= (uint64_t)NAME(neg_bits)(y, ui[v]) << (v * VL);
            }
            hb[r * ldb + c / 64] |= bits << (c % 64);
        }
    }
    for (; c < bw; c++)          /* channels past the last block (bw not a multiple of CB * VL) */
        for (size_t r = 0; r < t; r++) {
            float a = 0;
            for (int i = 0; i < L; i++) {
                const long src = (long)r + i - (long)back;
                const float x = (src < 0 || src >= (long)t) ? 0.0f : h[(size_t)src * bw + c];
                a = i == 0 ? x * taps[c] : a + x * taps[i * bw + c];
            }
            const float y = h[r * bw + c] + prelu_s(a * scale[c] + shift[c], slope[c]);
            out[r * bw + c] = y;
            hb[r * ldb + c / 64] |= (uint64_t)!(y >= up_in[c]) << (c % 64);
        }
}

/* PCEN of a window (kws/fsmn/pcen.py), VL bands at a time, the smoother M in a register as the
 * frames go by.  exp and log are our own (Cephes' single-precision polynomials after Cody-Waite
 * range reduction): only +, -, *, compares and bit operations, no FMA, so every target and the
 * scalar tail give the same bits, unlike libm, whose expf/logf differ between C libraries and
 * CPUs; ~1-2 ulp, and vectorised (libm's were 4 calls x 8 ns x 3,880 values per window).
 * Inputs are kept to normal floats (features floored at -200 dB, eps and delta validated), so
 * flushing denormals or not gives the same result. */
#define vsel NAME(vsel)
#define vexp NAME(vexp)
#define vlog NAME(vlog)
#define vsplat NAME(vsplat)
static inline vf vsel(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }
static inline vf vsplat(float a) { const vf zero = {0}; return zero + a; }

static inline vf vexp(vf x) {                   /* x in [-87, 88] (clamped) */
    const vf hi = vsplat(88.0f), lo = vsplat(-87.0f);
    x = vsel(x > hi, hi, x);
    x = vsel(x < lo, lo, x);
    const vf magic = vsplat(12582912.0f);       /* 1.5 * 2^23: adding it rounds to an integer */
    const vf k = (x * 1.44269504088896341f + magic) - magic;
    vf r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    vf p = vsplat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const vf y = p * (r * r) + r + 1.0f;
    const vi scale = (__builtin_convertvector(k, vi) + 127) << 23;     /* 2^k, k in [-126, 127] */
    return y * (vf)scale;
}

static inline vf vlog(vf x) {                   /* x a positive normal float */
    const vi bits = (vi)x;
    vi e = ((bits >> 23) & 0xff) - 126;
    vf m = (vf)((bits & 0x007fffff) | 0x3f000000);                   /* [0.5, 1) */
    const vi small = m < 0.707106781186547524f;
    e = e + small;                              /* the mask is -1 where m < sqrt(1/2) */
    m = vsel(small, m + m - 1.0f, m - 1.0f);
    const vf z = m * m;
    vf y = vsplat(7.0376836292e-2f);
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    const vf fe = __builtin_convertvector(e, vf);
    y = y + fe * -2.12194440e-4f;
    y = y - 0.5f * z;
    return (m + y) + fe * 0.693359375f;
}

static inline vf NAME(vsqrt)(vf x) {
#if defined(__x86_64__) && VL == 16
    return (vf)_mm512_sqrt_ps((__m512)x);
#elif defined(__x86_64__) && VL == 8
    return (vf)_mm256_sqrt_ps((__m256)x);
#elif defined(__x86_64__) && VL == 4
    return (vf)_mm_sqrt_ps((__m128)x);
#elif defined(__aarch64__) && VL == 4
    return (vf)vsqrtq_f32((float32x4_t)x);
#else
    vf y;
    for (int q = 0; q < VL; q++) y[q] = __builtin_sqrtf(x[q]);
    return y;
#endif
}

/* Lanes of row i of bands j.. (nb <= VL real ones; the rest read `pad`). */
static inline vf NAME(load_bands)(const float *row, size_t nb, float pad) {
    if (nb == VL) return ld(row);
    float tmp[VL];
    for (int q = 0; q < VL; q++) tmp[q] = (size_t)q < nb ? row[q] : pad;
    return ld(tmp);
}
static inline void NAME(store_bands)(float *row, size_t nb, vf v) {
    if (nb == VL) { st(row, v); return; }
    float tmp[VL];
    st(tmp, v);
    memcpy(row, tmp, nb * sizeof(float));
}

/* One block of VL bands starting at band j (nb <= VL of them real: padding lanes compute on
 * harmless values and are dropped).  Three passes over the frames, so that the long exp/log
 * chains of different frames overlap (only the smoother is a recurrence): out holds E, then
 * M (alpha 1: E / (eps + M)), then the result.  noinline, noclone: benchmarks/pi_estimate.py
 * counts its instructions by name. */
__attribute__((noinline, noclone)) static void NAME(pcen_bands)(const float *x, size_t t, size_t f, size_t j, size_t nb,
                             const float *params, const float *mean, const float *std, float *out) {
    float pv[7][VL];
    for (int q = 0; q < VL; q++) {
        const size_t b = j + ((size_t)q < nb ? (size_t)q : 0);
        for (int row = 0; row < 5; row++) pv[row][q] = params[row * f + b];
        pv[5][q] = mean ? mean[b] : 0.0f;
        pv[6][q] = mean ? std[b] : 1.0f;
    }
    const vf s = ld(pv[0]), alpha = ld(pv[1]), delta = ld(pv[2]), r = ld(pv[3]), eps = ld(pv[4]);
    const vf mu = ld(pv[5]), sd = ld(pv[6]), keep = 1.0f - s;
    const vf db_min = vsplat(-200.0f);
    const float c = 0.230258509299404568f;          /* ln(10) / 10: dB -> ln of power */
#define LN_E(i) ({ const vf xv_ = NAME(load_bands)(x + (i) * f + j, nb, -100.0f); \
                   vsel(xv_ < db_min, db_min, xv_) * c; })
    for (size_t i = 0; i < t; i++)                                   /* E */
        NAME(store_bands)(out + i * f + j, nb, vexp(LN_E(i)));
    int square_root = 1, full_gain = 1;   /* root 0.5 / alpha 1 in every lane: the fast paths */
    for (int q = 0; q < VL; q++) {
        square_root &= pv[3][q] == 0.5f;
        full_gain &= pv[1][q] == 1.0f;
    }
    /* M, and for alpha 1 at once E / (eps + M) (a division instead of a log and an exp) */
    vf m = NAME(load_bands)(out + j, nb, 1.0f);
    if (full_gain) NAME(store_bands)(out + j, nb, m / (eps + m));
    for (size_t i = 1; i < t; i++) {
        const vf e = NAME(load_bands)(out + i * f + j, nb, 1.0f);
        m = keep * m + s * e;
        NAME(store_bands)(out + i * f + j, nb, full_gain ? e / (eps + m) : m);
    }
    const vf floor_ = square_root ? NAME(vsqrt)(delta) : vexp(r * vlog(delta));
    for (size_t i = 0; i < t; i++) {                                 /* PCEN */
        const vf mi = NAME(load_bands)(out + i * f + j, nb, 1.0f);
        const vf q = (full_gain ? mi : vexp(LN_E(i) - alpha * vlog(eps + mi))) + delta;
        vf v = (square_root ? NAME(vsqrt)(q) : vexp(r * vlog(q))) - floor_;
        if (mean) v = (v - mu) / sd;
        NAME(store_bands)(out + i * f + j, nb, v);
    }
#undef LN_E
}

/* Bands are independent, so the last block overlaps the one before it (its shared bands are
 * computed twice, to the same bits) rather than running on padding: fewer than VL bands only
 * when there are fewer than VL in all. */
static void NAME(pcen)(const float *x, size_t t, size_t f, const float *params, const float *mean,
                       const float *std, float *out) {
    if (f < VL) {
        NAME(pcen_bands)(x, t, f, 0, f, params, mean, std, out);
        return;
    }
    for (size_t j = 0; j < f; j += VL)
        NAME(pcen_bands)(x, t, f, j + VL > f ? f - VL : j, VL, params, mean, std, out);
}
#undef vsel
#undef vsplat
#undef vexp
#undef vlog

static const kws_float_ops NAME(float_ops) = {
    NAME(normalise), NAME(stem_matmul), NAME(affine_prelu), NAME(affine_mean),
    NAME(float_memconv), NAME(memory_update), NAME(memory_block5), NAME(pcen)};

#undef TV
#undef RT
#undef CB
#undef STEM_TILE
#undef vf
#undef vi
#undef ld
#undef st
#undef prelu_v
