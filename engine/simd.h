/* simd.h - the engine's hot element-wise and row kernels (GELU, the attention softmax, layer
 * normalisation, the cross-entropy rows, the AdamW update, batchnorm over rows and planes, the
 * NT-Xent exponentials) compiled for three x86-64 levels and chosen once at run time, so one
 * portable binary (built for x86-64-v2) runs AVX2 or AVX-512 code on the CPUs that have it.
 *
 *   const SimdKernels *k = simd();              // the CPU's widest level, or SSLD_SIMD's
 *   k->gelu(x, y, n);                           // y = gelu(x), n floats
 *
 * SSLD_SIMD=sse|avx2|avx512 (read once, on the first call) asks for a level; it is clamped to
 * what the CPU runs, and an unknown word is reported on stderr and ignored. Levels differ only in
 * rounding (vector width changes the order of each row's sums), never in what they compute.
 * Pointers returned are static tables: never freed.
 */
#ifndef SSLD_ENGINE_SIMD_H
#define SSLD_ENGINE_SIMD_H

#include <stddef.h>

typedef enum SimdLevel {
	SIMD_SSE,    /* x86-64-v2, the build's baseline (SSE4.2, 4 floats a vector) */
	SIMD_AVX2,   /* x86-64-v3: AVX2 + FMA, 8 floats */
	SIMD_AVX512, /* x86-64-v4: AVX-512 F/BW/DQ/VL, 16 floats */
	SIMD_LEVEL_COUNT
} SimdLevel;

/* The scalars of one AdamW update (optim.c): decay = 1 - lr wd, step = lr / (1 - b1^t),
 * rbc2 = 1 / sqrt(1 - b2^t). */
typedef struct SimdAdamW {
	float decay, step, rbc2, b1, b2, eps;
} SimdAdamW;

/* One batchnorm channel's scalars (bn_plane_*): mean, the forward's scale (rstd gamma) and shift,
 * rstd, and the backward's means of dy and of dy xhat. */
typedef struct SimdBn {
	float m, a, b, s, mdy, mdyx;
} SimdBn;

typedef struct SimdKernels {
	SimdLevel level;
	// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); x, y (n)
	void (*gelu)(const float *x, float *y, size_t n);
	// dx = g * gelu'(x) when fresh, else dx += g * gelu'(x); x, g, dx (n)
	void (*gelu_backward)(const float *x, const float *g, float *dx, size_t n, int fresh);
	// r (n) = softmax(r) in place, max-subtracted; n >= 1
	void (*softmax_row)(float *r, int n);
	// log(sum_c exp(x[c])) of x (n), max-subtracted, the sum in double; n >= 1
	double (*logsumexp_row)(const float *x, int n);
	// g (n) += s * (exp(x - lse) - off): a cross-entropy row's gradient, softmax minus the
	// smoothed target's off-label mass (the label's own one-hot term is the caller's)
	void (*softmax_grad_row)(const float *x, float lse, float s, float off, float *g, int n);
	// y (D) = (x - mean) * rstd * gamma + beta; gamma, beta (D) or NULL; *mean, *rstd written
	void (*layernorm_row)(const float *x, float *y, const float *gamma, const float *beta, int D,
	                      float eps, float *mean, float *rstd);
	// accumulates one row's dx (D), dgamma (D), dbeta (D) (each may be NULL; gamma may be NULL)
	void (*layernorm_backward_row)(const float *x, const float *dy, const float *gamma,
	                               float mean, float rstd, float *dx, float *dgamma,
	                               float *dbeta, int D);
	// AdamW on n floats, in place: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
	// w = w decay - step m / (sqrt(v) rbc2 + eps)
	void (*adamw)(float *w, const float *g, float *m, float *v, size_t n, const SimdAdamW *p);
	// x[i] = expf(x[i] - shift) in place; returns the sum of the results, added in double
	double (*exp_shifted)(float *x, size_t n, float shift);
	// Batchnorm over (N,C) rows (ops_nn.c), one row's n channels (callers offset every per-channel
	// array alike). pre = (x - m) * a + b is the affine map, computed by one expression at each
	// level so the backward's ReLU mask (pre > 0) is the one its forward applied:
	// y = pre, or max(pre, 0) with relu
	void (*bn_row_forward)(const float *x, const float *m, const float *a, const float *b,
	                       float *y, size_t n, int relu);
	// sum[c] += x[c], in double
	void (*bn_row_sum)(const float *x, double *sum, size_t n);
	// ss[c] += (x[c] - mean[c])^2, in double
	void (*bn_row_sqdev)(const float *x, const double *mean, double *ss, size_t n);
	// d = dy, zero where pre <= 0 with relu: sdy[c] += d, sdyx[c] += d * (x[c] - m[c]) (the
	// product in float, the sums in double)
	void (*bn_row_grad_sums)(const float *x, const float *dy, const float *m, const float *a,
	                         const float *b, double *sdy, double *sdyx, size_t n, int relu);
	// dx[c] = a[c] (d - mdy[c] - (x[c] - m[c]) s[c] mdyx[c]) when fresh, else dx[c] += that
	void (*bn_row_grad_dx)(const float *x, const float *dy, const float *m, const float *a,
	                       const float *b, const float *s, const float *mdy, const float *mdyx,
	                       float *dx, size_t n, int relu, int fresh);
	// Batchnorm over one (N,C,H,W) plane of S values, channel scalars in *p (pre as above, with
	// p's m, a, b): the shifted sums s1 = sum (x - pivot), s2 = sum (x - pivot)^2
	void (*bn_plane_stats)(const float *x, size_t S, float pivot, float *s1, float *s2);
	// y = pre, or max(pre, 0) with relu
	void (*bn_plane_forward)(const float *x, float *y, size_t S, const SimdBn *p, int relu);
	// d = dy masked as bn_row_grad_sums: *sdy = sum d, *sdyx = sum d (x - m)
	void (*bn_plane_grad_sums)(const float *x, const float *dy, size_t S, const SimdBn *p,
	                           int relu, float *sdy, float *sdyx);
	// dx = a (d - mdy - (x - m) s mdyx): mode 0 stores, 1 adds, 2 stores in place with dy read
	// from dx (dy then NULL)
	void (*bn_plane_grad_dx)(const float *x, const float *dy, float *dx, size_t S,
	                         const SimdBn *p, int relu, int mode);
} SimdKernels;

/* The kernels every caller uses: the CPU's widest level, lowered by SSLD_SIMD. Thread-safe. */
const SimdKernels *simd(void);
/* The kernels of one level, or NULL when this CPU cannot run it (tests walk every level). */
const SimdKernels *simd_at(SimdLevel level);
/* The widest level this CPU runs. */
SimdLevel simd_cpu_level(void);
/* "sse", "avx2", "avx512". */
const char *simd_level_name(SimdLevel level);

#endif
