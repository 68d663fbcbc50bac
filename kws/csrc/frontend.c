/* Frontend frames: window -> FFT -> |X|^2 -> mel bands -> dB (-> DCT).  See frontend.h.
 *
 * FFT: an iterative radix-2 complex FFT on split real/imaginary arrays (the inner loop over a
 * stage's twiddles is contiguous, so the compiler vectorises it).  A real frame of n = 2m samples
 * (n a power of two) is transformed as m complex samples (even, odd) and split into the n/2 + 1
 * bins; any other n uses Bluestein's chirp-z algorithm: the DFT as a convolution computed with
 * power-of-two FFTs of size L >= 2n - 1.  Everything is float64 (the same precision numpy's
 * pocketfft and librosa use), so the dB values match librosa to ~1e-7 relative after the float32
 * rounding.  Built with -ffp-contract=off: no fused multiply-adds, the same roundings on every
 * compiler and CPU. */
#include "frontend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AMIN 1e-10
/* 10 log10(s) as log(s) * 10/ln(10): glibc's log is faster than its log10 (a frame 5 % fewer
 * instructions on aarch64, x86 alike); the two differ by about an ulp of float64, which the
 * float32 result does not show. */
#define DB_PER_LN 4.3429448190325175

struct kws_frontend {
    size_t n_fft, n_bins, n_mels, n_out, n_weights;
    size_t m;              /* complex FFT size: n_fft/2 (real path) or L (Bluestein) */
    int bluestein;
    double *window;        /* [n_fft] */
    int32_t *first, *len;  /* [n_mels] */
    double *weight;        /* [n_weights] */
    double *dct;           /* [n_out * n_mels] or NULL */
    uint32_t *rev;         /* [m] bit reversal */
    double *tw_re, *tw_im; /* [m - 1]: stage h (1, 2, 4, ...) at [h - 1 + j], exp(-i pi j / h) */
    double *sp_re, *sp_im; /* real path: [m + 1] exp(-2 pi i k / n_fft); Bluestein: [n_fft] chirp */
    double *bq_re, *bq_im; /* Bluestein: [m] FFT of the chirp filter, divided by m */
};

static int is_pow2(size_t n) { return n && !(n & (n - 1)); }

static void *alloc_doubles(size_t n) { return malloc((n ? n : 1) * sizeof(double)); }

void kws_frontend_free(kws_frontend *fe)
{
    if (!fe)
        return;
    free(fe->window); free(fe->first); free(fe->len); free(fe->weight); free(fe->dct);
    free(fe->rev); free(fe->tw_re); free(fe->tw_im); free(fe->sp_re); free(fe->sp_im);
    free(fe->bq_re); free(fe->bq_im);
    free(fe);
}

/* In-place forward FFT of size m >= 4 on (re, im) given in bit-reversed order (fe->rev): the
 * first two stages as one radix-4 pass (their twiddles are 1 and -i: no multiplications), then
 * radix-2 stages whose inner loops run over contiguous twiddles. */
static void fft(const kws_frontend *fe, double *restrict re, double *restrict im)
{
    size_t m = fe->m;
    for (size_t s = 0; s < m; s += 4) {
        double b0r = re[s] + re[s + 1], b0i = im[s] + im[s + 1];
        double b1r = re[s] - re[s + 1], b1i = im[s] - im[s + 1];
        double b2r = re[s + 2] + re[s + 3], b2i = im[s + 2] + im[s + 3];
        double b3r = re[s + 2] - re[s + 3], b3i = im[s + 2] - im[s + 3];
        re[s] = b0r + b2r;     im[s] = b0i + b2i;
        re[s + 2] = b0r - b2r; im[s + 2] = b0i - b2i;
        re[s + 1] = b1r + b3i; im[s + 1] = b1i - b3r;      /* b1 + (-i) b3 */
        re[s + 3] = b1r - b3i; im[s + 3] = b1i + b3r;
    }
    for (size_t h = 4; h < m; h <<= 1) {
        const double *wr = fe->tw_re + h - 1, *wi = fe->tw_im + h - 1;
        for (size_t s = 0; s < m; s += 2 * h) {
            /* restrict: the halves never overlap, so the compiler may vectorise over j */
            double *restrict ar = re + s, *restrict ai = im + s;
            double *restrict br = re + s + h, *restrict bi = im + s + h;
            for (size_t j = 0; j < h; j++) {
                double xr = br[j] * wr[j] - bi[j] * wi[j];
                double xi = br[j] * wi[j] + bi[j] * wr[j];
                br[j] = ar[j] - xr;
                bi[j] = ai[j] - xi;
                ar[j] = ar[j] + xr;
                ai[j] = ai[j] + xi;
            }
        }
    }
}

kws_frontend *kws_frontend_new(size_t n_fft, size_t n_mels, size_t n_out, const double *window,
                               const int32_t *band_first, const int32_t *band_len,
                               const double *band_weight, const double *dct)
{
    if (n_fft < 8 || n_fft > (1u << 20) || !n_mels || !n_out || (!dct && n_out != n_mels))
        return NULL;
    size_t n_bins = n_fft / 2 + 1, n_weights = 0;
    for (size_t b = 0; b < n_mels; b++) {
        if (band_first[b] < 0 || band_len[b] < 0 || (size_t)band_first[b] + (size_t)band_len[b] > n_bins)
            return NULL;
        n_weights += (size_t)band_len[b];
    }
    kws_frontend *fe = calloc(1, sizeof *fe);
    if (!fe)
        return NULL;
    fe->n_fft = n_fft; fe->n_bins = n_bins; fe->n_mels = n_mels; fe->n_out = n_out;
    fe->n_weights = n_weights;
    fe->bluestein = !is_pow2(n_fft);
    size_t m = 1;
    if (fe->bluestein)
        while (m < 2 * n_fft - 1)
            m <<= 1;
    else
        m = n_fft / 2;
    fe->m = m;
    fe->window = alloc_doubles(n_fft);
    fe->first = malloc(n_mels * sizeof(int32_t));
    fe->len = malloc(n_mels * sizeof(int32_t));
    fe->weight = alloc_doubles(n_weights);
    fe->dct = dct ? alloc_doubles(n_out * n_mels) : NULL;
    fe->rev = malloc(m * sizeof(uint32_t));
    fe->tw_re = alloc_doubles(m);
    fe->tw_im = alloc_doubles(m);
    size_t nsp = fe->bluestein ? n_fft : m + 1;
    fe->sp_re = alloc_doubles(nsp);
    fe->sp_im = alloc_doubles(nsp);
    if (fe->bluestein) {
        fe->bq_re = alloc_doubles(m);
        fe->bq_im = alloc_doubles(m);
    }
    if (!fe->window || !fe->first || !fe->len || !fe->weight || (dct && !fe->dct) || !fe->rev
        || !fe->tw_re || !fe->tw_im || !fe->sp_re || !fe->sp_im
        || (fe->bluestein && (!fe->bq_re || !fe->bq_im))) {
        kws_frontend_free(fe);
        return NULL;
    }
    memcpy(fe->window, window, n_fft * sizeof(double));
    memcpy(fe->first, band_first, n_mels * sizeof(int32_t));
    memcpy(fe->len, band_len, n_mels * sizeof(int32_t));
    memcpy(fe->weight, band_weight, n_weights * sizeof(double));
    if (dct)
        memcpy(fe->dct, dct, n_out * n_mels * sizeof(double));

    unsigned bits = 0;
    while (((size_t)1 << bits) < m)
        bits++;
    for (size_t i = 0; i < m; i++) {
        uint32_t r = 0;
        for (unsigned b = 0; b < bits; b++)
            r |= (uint32_t)((i >> b) & 1u) << (bits - 1 - b);
        fe->rev[i] = r;
    }
    for (size_t h = 1; h < m; h <<= 1)
        for (size_t j = 0; j < h; j++) {
            double a = -M_PI * (double)j / (double)h;
            fe->tw_re[h - 1 + j] = cos(a);
            fe->tw_im[h - 1 + j] = sin(a);
        }
    if (!fe->bluestein) {
        for (size_t k = 0; k <= m; k++) {
            double a = -2.0 * M_PI * (double)k / (double)n_fft;
            fe->sp_re[k] = cos(a);
            fe->sp_im[k] = sin(a);
        }
        return fe;
    }
    /* chirp c_j = exp(i pi j^2 / n); j^2 taken mod 2n in integers keeps the angle exact */
    for (size_t j = 0; j < n_fft; j++) {
        double a = M_PI * (double)(((uint64_t)j * j) % (2 * (uint64_t)n_fft)) / (double)n_fft;
        fe->sp_re[j] = cos(a);
        fe->sp_im[j] = sin(a);
    }
    /* the filter b_t = c_t, b_{m-t} = c_t (t < n), zero between, given to fft() bit-reversed */
    memset(fe->bq_re, 0, m * sizeof(double));
    memset(fe->bq_im, 0, m * sizeof(double));
    for (size_t j = 0; j < n_fft; j++) {
        fe->bq_re[fe->rev[j]] = fe->sp_re[j];
        fe->bq_im[fe->rev[j]] = fe->sp_im[j];
        if (j) {
            fe->bq_re[fe->rev[m - j]] = fe->sp_re[j];
            fe->bq_im[fe->rev[m - j]] = fe->sp_im[j];
        }
    }
    fft(fe, fe->bq_re, fe->bq_im);
    for (size_t j = 0; j < m; j++) {
        fe->bq_re[j] /= (double)m;
        fe->bq_im[j] /= (double)m;
    }
    return fe;
}

/* power[k] = |X[k]|^2, k < n_bins, of the windowed frame x (real path). */
static void power_real(const kws_frontend *fe, const double *x, double *re, double *im,
                       double *power)
{
    size_t m = fe->m;
    const double *w = fe->window;
    for (size_t j = 0; j < m; j++) {
        re[fe->rev[j]] = x[2 * j] * w[2 * j];
        im[fe->rev[j]] = x[2 * j + 1] * w[2 * j + 1];
    }
    fft(fe, re, im);
    /* X[k] = E + W^k O with E = (Z[k] + conj Z[m-k]) / 2, O = (Z[k] - conj Z[m-k]) / 2i;
     * Z[m] = Z[0].  k = 0 and m: X = Re Z0 +- Im Z0 (real). */
    power[0] = (re[0] + im[0]) * (re[0] + im[0]);
    power[m] = (re[0] - im[0]) * (re[0] - im[0]);
    const double *spr = fe->sp_re, *spi = fe->sp_im;
    for (size_t k = 1; k < m; k++) {
        double zr = re[k], zi = im[k], cr = re[m - k], ci = -im[m - k];
        double er = 0.5 * (zr + cr), ei = 0.5 * (zi + ci);
        double or_ = 0.5 * (zi - ci), oi = -0.5 * (zr - cr);
        double xr = er + (spr[k] * or_ - spi[k] * oi);
        double xi = ei + (spr[k] * oi + spi[k] * or_);
        power[k] = xr * xr + xi * xi;
    }
}

/* The same by Bluestein: X[k] = conj(c_k) * sum_j (x_j conj(c_j)) c_{k-j}. */
static void power_bluestein(const kws_frontend *fe, const double *x, double *re, double *im,
                            double *tr, double *ti, double *power)
{
    size_t m = fe->m, n = fe->n_fft;
    memset(tr, 0, m * sizeof(double));
    memset(ti, 0, m * sizeof(double));
    for (size_t j = 0; j < n; j++) {
        double v = x[j] * fe->window[j];
        tr[fe->rev[j]] = v * fe->sp_re[j];
        ti[fe->rev[j]] = -v * fe->sp_im[j];
    }
    fft(fe, tr, ti);
    /* multiply by the filter's spectrum, then the inverse FFT as conj(FFT(conj(.))) */
    for (size_t j = 0; j < m; j++) {
        double ar = tr[j], ai = ti[j], br = fe->bq_re[j], bi = fe->bq_im[j];
        re[fe->rev[j]] = ar * br - ai * bi;
        im[fe->rev[j]] = -(ar * bi + ai * br);
    }
    fft(fe, re, im);
    for (size_t k = 0; k < fe->n_bins; k++) {
        /* |conj(c_k) * conj(y_k)| = |y_k|: the chirp has modulus 1 */
        power[k] = re[k] * re[k] + im[k] * im[k];
    }
}

int kws_frontend_run(const kws_frontend *fe, const double *x, size_t hop, size_t n_frames,
                     float *out, size_t ldo)
{
    size_t m = fe->m;
    double *buf = alloc_doubles(4 * m + fe->n_bins + fe->n_mels);
    if (!buf)
        return -1;
    double *re = buf, *im = re + m, *tr = im + m, *ti = tr + m, *power = ti + m;
    double *db = power + fe->n_bins;
    for (size_t f = 0; f < n_frames; f++) {
        if (fe->bluestein)
            power_bluestein(fe, x + f * hop, re, im, tr, ti, power);
        else
            power_real(fe, x + f * hop, re, im, power);
        const double *w = fe->weight;
        for (size_t b = 0; b < fe->n_mels; b++) {
            /* four partial sums: a single chain would wait on each addition's latency */
            const double *p = power + fe->first[b];
            int32_t len = fe->len[b], i = 0;
            double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
            for (; i + 4 <= len; i += 4) {
                s0 += w[i] * p[i];
                s1 += w[i + 1] * p[i + 1];
                s2 += w[i + 2] * p[i + 2];
                s3 += w[i + 3] * p[i + 3];
            }
            for (; i < len; i++)
                s0 += w[i] * p[i];
            double s = (s0 + s1) + (s2 + s3);
            w += len;
            db[b] = DB_PER_LN * log(s > AMIN ? s : AMIN);
        }
        float *o = out + f * ldo;
        if (!fe->dct) {
            for (size_t b = 0; b < fe->n_mels; b++)
                o[b] = (float)db[b];
            continue;
        }
        for (size_t j = 0; j < fe->n_out; j++) {
            const double *d = fe->dct + j * fe->n_mels;
            double s = 0.0;
            for (size_t b = 0; b < fe->n_mels; b++)
                s += d[b] * db[b];
            o[j] = (float)s;
        }
    }
    free(buf);
    return 0;
}
