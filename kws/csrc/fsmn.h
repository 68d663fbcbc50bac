/* The binary D-FSMN network (math in kws/fsmn/config.py), fused so that one inference is one C
 * call: features in, class logits out, no return to Python between layers. */
#ifndef KWS_FSMN_H
#define KWS_FSMN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const float *mem_taps;                /* [back+1+ahead, bw] +-1: memconv reads float h; or NULL: */
    const uint64_t *mem;  size_t ldm;     /* packed taps [back+1+ahead, >= words(bw)] read sign(h-mem_in) */
    const float *mem_in, *up_in;          /* [bw] thresholds of the signs of h (mem_in: binary only);
                                             up_in: [up_planes, bw] */
    size_t up_planes;                     /* sign planes of h into the up GEMM (0 or 1: one) */
    const float *mem_scale, *mem_shift, *mem_prelu;          /* [bw] */
    const uint64_t *up;   size_t ldu;     /* packed [hw rows, >= up_planes * words(bw)]: with several
                                             planes the row is W_up once per plane, each copy
                                             padded with zeros to whole words; the GEMM's k is
                                             (up_planes - 1) * 64 * words(bw) + bw, so up_thresh
                                             counts those padding bits as agreements */
    const int32_t *up_thresh; const uint8_t *up_flip;        /* [hw] */
    const uint64_t *down; size_t ldd;     /* packed [bw rows, >= words(hw)] */
    const float *down_scale, *down_shift;                    /* [bw] */
} kws_block;

/* One operating point of a network, every pointer valid for the life of the struct. */
typedef struct {
    size_t n_frames, n_features;          /* input window [n_frames, n_features] */
    size_t stem_kernel, stem_stride;      /* stem windows: stem_kernel frames, every stem_stride */
    size_t bw, hw, back, ahead;           /* channels at this width; memory taps */
    const float *mean, *std;              /* [n_features]: x = (features - mean) / std */
    const float *pcen;                    /* NULL, or [5, n_features]: x = (PCEN(features) - mean) / std
                                             (kws_pcen, arch input_norm "pcen") */
    const float *stem_wt;                 /* [stem_kernel * n_features, bw] (transposed weight) */
    const float *stem_scale, *stem_shift, *stem_prelu;       /* [bw] */
    const kws_block *blocks; size_t n_blocks;
    const float *head_scale, *head_shift;                    /* [bw] */
    const float *cls_w; size_t ldc;       /* [n_classes rows, >= bw] */
    const float *cls_b; size_t n_classes;
} kws_fsmn_net;

/* PCEN of one window x [t, f] of dB features (kws/fsmn/pcen.py defines it): params [5, f] rows
 * smooth, alpha, delta, root, eps; then (value - mean) / std when mean and std are not NULL.
 * out [t, f] must not overlap x.  Features below -200 dB count as -200 dB.  Single precision, the
 * same bits on every CPU and vector width (its own exp and log: fsmn_float.h). */
void kws_pcen(const float *x, size_t t, size_t f, const float *params, const float *mean,
              const float *std, float *out);

/* T' = stem frames of a window. */
size_t kws_fsmn_stem_frames(const kws_fsmn_net *net);

/* Bytes of scratch memory one kws_fsmn_forward needs (8-byte aligned). */
size_t kws_fsmn_scratch_bytes(const kws_fsmn_net *net);

/* logits[n_classes] of one window of features [n_frames, n_features] (contiguous float32).
 * trace: NULL, or [(1 + n_blocks) * T' * bw] floats receiving the residual stream h after the
 * stem and after each block (for tests).  scratch: kws_fsmn_scratch_bytes(net) bytes, 8-byte
 * aligned, used by one call at a time; or NULL to allocate per call (a fresh allocation of
 * ~100 KB can cost page faults every call once the allocator returned it to the system).
 * Returns 0, or -1 when scratch memory cannot be allocated.  Denormal floats are flushed to zero during the call (they cost ~100x per operation
 * on x86, and a few of a trained model's folded parameters are denormal); the caller's
 * floating-point mode is restored before it returns. */
int kws_fsmn_forward(const kws_fsmn_net *net, const float *features, float *logits, float *trace,
                     void *scratch);

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
