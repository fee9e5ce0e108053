/* test_ops_nn.c - unit tests for engine/ops_nn.c against plain-loop references.
 *
 * conv2d and conv_transpose2d forward (and their backward, through a weighted-sum loss) are
 * compared with direct loops in double precision over strides, paddings, output paddings,
 * non-square kernels, with and without bias, batch 1 and batch > 1 (the two lowering paths);
 * batchnorm's training statistics, running-statistics update and eval mode; the fused
 * batchnorm + ReLU against relu(batchnorm) (values and gradients, into a new gradient buffer and
 * into one that already holds gradient) and batchnorm + residual + ReLU against
 * add_relu(batchnorm) within derived bounds; attention against a
 * naive softmax(q k^T / sqrt(Dh)) v, causal and not; and that a shape error aborts with a message
 * naming the op and the shapes. Gradients against finite differences live in
 * gradcheck_nn.c; this file checks values. The sgemm-lowered ops are held to error bounds
 * derived from each reduction (tests/tolerance.h, attention_ref.h), so they pass whatever
 * summation order the CPU's OpenBLAS kernel uses.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx.h"
#include "ops.h"
#include "rng.h"
#include "tape.h"
#include "check.h"
#include "support.h"
#include "../tolerance.h"
#include "../support/wsum.h"
#include "attention_ref.h"

static Rng rng;

static Tensor *rand_tensor(Ctx *ctx, int ndim, const int *shape, int requires_grad)
{
	Tensor *t = ctx_tensor(ctx, ndim, shape);
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = rng_uniform_range(&rng, -1.0f, 1.0f);
	t->requires_grad = (uint8_t)requires_grad;
	return t;
}

/* n upstream gradient values in [-1, 1), in ctx's arena. */
static float *rand_grad(Ctx *ctx, size_t n)
{
	float *g = ctx_alloc(ctx, n * sizeof *g);
	for (size_t i = 0; i < n; i++)
		g[i] = rng_uniform_range(&rng, -1.0f, 1.0f);
	return g;
}

/* max |a - b| / (1 + |b|) */
static double max_rel_err(const float *a, const double *b, size_t n)
{
	double m = 0.0;
	for (size_t i = 0; i < n; i++) {
		const double e = fabs((double)a[i] - b[i]) / (1.0 + fabs(b[i]));
		if (!(e <= m))
			m = isnan(e) ? INFINITY : e;
	}
	return m;
}

/* ---------------------------------------------------------------------------------------------- */
/* conv2d */

typedef struct ConvCase {
	int N, C, H, W, O, kh, kw, stride, pad, bias;
} ConvCase;

/* y = conv2d(x, w) + b in double, and mag = the sum of |term| of each output (see tolerance.h) */
/* Reference gradients (double) of a convolution's input, weight and bias, and the magnitudes
 * that bound their roundings (m[0] for dx, m[1] for dw, m[2] for db). */
typedef struct GradRef {
	double *dx, *dw, *db, *m[3];
} GradRef;

static GradRef gradref_new(size_t nx, size_t nw, size_t nb)
{
	GradRef g = { calloc(nx, sizeof(double)), calloc(nw, sizeof(double)), calloc(nb, sizeof(double)),
		          { calloc(nx, sizeof(double)), calloc(nw, sizeof(double)), calloc(nb, sizeof(double)) } };
	return g;
}

/* x's, w's and (when b is given) b's gradients against g with k_dx, k_dw, k_db roundings each,
 * named "<op> case <t> dx", "... dw<dw_note>", "... db": the number of failures. */
static int gradref_check(const GradRef *g, const char *op, size_t t, const char *dw_note,
                         const Tensor *x, const Tensor *w, const Tensor *b, double k_dx,
                         double k_dw, double k_db)
{
	char what[64];
	int n = 0;
	snprintf(what, sizeof what, "%s case %zu dx", op, t);
	n += tol_check(what, x->grad, g->dx, g->m[0], x->size, k_dx);
	snprintf(what, sizeof what, "%s case %zu dw%s", op, t, dw_note);
	n += tol_check(what, w->grad, g->dw, g->m[1], w->size, k_dw);
	if (b) {
		snprintf(what, sizeof what, "%s case %zu db", op, t);
		n += tol_check(what, b->grad, g->db, g->m[2], b->size, k_db);
	}
	return n;
}

static void gradref_free(GradRef *g)
{
	free(g->dx);
	free(g->dw);
	free(g->db);
	for (int i = 0; i < 3; i++)
		free(g->m[i]);
}

static void ref_conv2d(const ConvCase *c, const float *x, const float *w, const float *b, int Ho,
                       int Wo, double *y, double *mag)
{
	for (int n = 0; n < c->N; n++)
		for (int o = 0; o < c->O; o++)
			for (int oh = 0; oh < Ho; oh++)
				for (int ow = 0; ow < Wo; ow++) {
					double s = b ? b[o] : 0.0, m = fabs(s);
					for (int ci = 0; ci < c->C; ci++)
						for (int i = 0; i < c->kh; i++)
							for (int j = 0; j < c->kw; j++) {
								const int ih = oh * c->stride - c->pad + i;
								const int iw = ow * c->stride - c->pad + j;
								if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W)
									continue;
								const double t =
									(double)x[((n * c->C + ci) * c->H + ih) * c->W + iw] *
									w[((o * c->C + ci) * c->kh + i) * c->kw + j];
								s += t;
								m += fabs(t);
							}
					y[((n * c->O + o) * Ho + oh) * Wo + ow] = s;
					mag[((n * c->O + o) * Ho + oh) * Wo + ow] = m;
				}
}

/* Backward reference: dL/dx, dL/dw, dL/db for L = sum(y * G), each with its magnitude array
 * (m[0] for dx, m[1] for dw, m[2] for db; added to, like the gradients). */
static void ref_conv2d_grad(const ConvCase *c, const float *x, const float *w, const float *G,
                            int Ho, int Wo, double *dx, double *dw, double *db, double *m[3])
{
	for (int n = 0; n < c->N; n++)
		for (int o = 0; o < c->O; o++)
			for (int oh = 0; oh < Ho; oh++)
				for (int ow = 0; ow < Wo; ow++) {
					const double g = G[((n * c->O + o) * Ho + oh) * Wo + ow];
					db[o] += g;
					m[2][o] += fabs(g);
					for (int ci = 0; ci < c->C; ci++)
						for (int i = 0; i < c->kh; i++)
							for (int j = 0; j < c->kw; j++) {
								const int ih = oh * c->stride - c->pad + i;
								const int iw = ow * c->stride - c->pad + j;
								if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W)
									continue;
								const size_t xi = ((size_t)(n * c->C + ci) * c->H + ih) * c->W + iw;
								const size_t wi = ((size_t)(o * c->C + ci) * c->kh + i) * c->kw + j;
								dx[xi] += g * w[wi];
								dw[wi] += g * x[xi];
								m[0][xi] += fabs(g * w[wi]);
								m[1][wi] += fabs(g * x[xi]);
							}
				}
}

static void test_conv2d(void)
{
	static const ConvCase cases[] = {
		{ 3, 2, 7, 6, 4, 3, 3, 1, 0, 1 },
		{ 3, 2, 7, 6, 4, 3, 3, 1, 1, 0 },
		{ 2, 3, 8, 8, 5, 3, 3, 2, 1, 1 },
		{ 2, 3, 9, 7, 2, 3, 3, 2, 0, 0 },
		{ 1, 2, 6, 5, 3, 3, 3, 1, 1, 1 },   /* batch 1: sgemm writes NCHW directly */
		{ 1, 3, 7, 7, 2, 2, 3, 3, 2, 1 },   /* non-square kernel, stride 3, wide pad */
		{ 4, 1, 5, 5, 6, 1, 1, 1, 0, 1 },   /* 1x1 */
		{ 2, 4, 5, 6, 3, 5, 5, 1, 2, 1 },   /* 5x5, pad 2 */
		{ 5, 2, 4, 4, 3, 4, 4, 1, 0, 0 },   /* kernel = input: 1x1 output */
		{ 2, 2, 1, 1, 3, 2, 2, 3, 2, 1 },   /* taps that see only padding */
		{ 2, 2, 4, 3, 3, 2, 2, 3, 2, 1 },   /* stride > kernel: some inputs never read */
		{ 19, 2, 32, 32, 3, 3, 3, 1, 1, 1 }, /* Ho*Wo >= 128: lowered one image at a time */
		{ 9, 1, 70, 70, 2, 3, 3, 1, 1, 1 },  /* the same, one thread's buffer per image */
		{ 45, 96, 10, 10, 2, 3, 3, 1, 1, 1 }, /* small planes: chunks of 20, 20 and 5 images */
	};
	for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
		const ConvCase *c = &cases[t];
		Ctx *ctx = ctx_new(1);
		Tensor *x = rand_tensor(ctx, 4, (int[]){ c->N, c->C, c->H, c->W }, 1);
		Tensor *w = rand_tensor(ctx, 4, (int[]){ c->O, c->C, c->kh, c->kw }, 1);
		Tensor *b = c->bias ? rand_tensor(ctx, 1, (int[]){ c->O }, 1) : NULL;
		Tensor *y = op_conv2d(ctx, x, w, b, c->stride, c->pad);
		const int Ho = (c->H + 2 * c->pad - c->kh) / c->stride + 1;
		const int Wo = (c->W + 2 * c->pad - c->kw) / c->stride + 1;
		CHECK(y->ndim == 4 && y->shape[0] == c->N && y->shape[1] == c->O && y->shape[2] == Ho &&
		      y->shape[3] == Wo, "conv2d case %zu: output shape", t);
		/* Roundings per element: C*kh*kw products summed (+1 for the bias); backward, dx sums
		 * O*kh*kw products (through dcol = w^T dy, then col2im), dw N*Ho*Wo (+1 for the value
		 * it accumulates into), db N*Ho*Wo. */
		const double k_y = c->C * c->kh * c->kw + 1, k_dx = c->O * c->kh * c->kw;
		const double k_dw = (double)c->N * Ho * Wo + 1, k_db = (double)c->N * Ho * Wo;
		char what[64];
		double *ref = calloc(y->size, sizeof *ref), *mag = calloc(y->size, sizeof *mag);
		ref_conv2d(c, x->data, w->data, b ? b->data : NULL, Ho, Wo, ref, mag);
		snprintf(what, sizeof what, "conv2d case %zu forward", t);
		failures += tol_check(what, y->data, ref, mag, y->size, k_y);

		float *G = rand_grad(ctx, y->size);
		/* Pre-fill a parameter grad to check that backward accumulates. */
		float *dw0 = ctx_grad(ctx, w);
		for (size_t i = 0; i < w->size; i++)
			dw0[i] = 0.5f;
		CHECK(ctx_backward(ctx, wsum(ctx, y, G)) == 0, "conv2d case %zu: backward", t);
		GradRef g = gradref_new(x->size, w->size, (size_t)c->O);
		ref_conv2d_grad(c, x->data, w->data, G, Ho, Wo, g.dx, g.dw, g.db, g.m);
		for (size_t i = 0; i < w->size; i++)
			g.dw[i] += 0.5, g.m[1][i] += 0.5;
		failures += gradref_check(&g, "conv2d", t, " (accumulated)", x, w, b, k_dx, k_dw, k_db);
		gradref_free(&g);
		free(ref);
		free(mag);
		ctx_free(ctx);
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* conv_transpose2d: y[n,o,ih*s-p+i, iw*s-p+j] += x[n,c,ih,iw] * w[c,o,i,j] */

typedef struct ConvTCase {
	int N, C, H, W, O, kh, kw, stride, pad, out_pad, bias;
} ConvTCase;

/* y and its magnitude array mag, as ref_conv2d */
static void ref_convt(const ConvTCase *c, const float *x, const float *w, const float *b, int Ho,
                      int Wo, double *y, double *mag)
{
	for (int n = 0; n < c->N; n++)
		for (int o = 0; o < c->O; o++)
			for (int p = 0; p < Ho * Wo; p++) {
				y[(size_t)(n * c->O + o) * Ho * Wo + p] = b ? b[o] : 0.0;
				mag[(size_t)(n * c->O + o) * Ho * Wo + p] = b ? fabsf(b[o]) : 0.0;
			}
	for (int n = 0; n < c->N; n++)
		for (int ci = 0; ci < c->C; ci++)
			for (int ih = 0; ih < c->H; ih++)
				for (int iw = 0; iw < c->W; iw++) {
					const double xv = x[((n * c->C + ci) * c->H + ih) * c->W + iw];
					for (int o = 0; o < c->O; o++)
						for (int i = 0; i < c->kh; i++)
							for (int j = 0; j < c->kw; j++) {
								const int oh = ih * c->stride - c->pad + i;
								const int ow = iw * c->stride - c->pad + j;
								if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo)
									continue;
								const double t = xv * w[((ci * c->O + o) * c->kh + i) * c->kw + j];
								y[((size_t)(n * c->O + o) * Ho + oh) * Wo + ow] += t;
								mag[((size_t)(n * c->O + o) * Ho + oh) * Wo + ow] += fabs(t);
							}
				}
}

/* gradients and their magnitude arrays, as ref_conv2d_grad */
static void ref_convt_grad(const ConvTCase *c, const float *x, const float *w, const float *G,
                           int Ho, int Wo, double *dx, double *dw, double *db, double *m[3])
{
	for (int n = 0; n < c->N; n++)
		for (int o = 0; o < c->O; o++)
			for (int p = 0; p < Ho * Wo; p++) {
				db[o] += G[(size_t)(n * c->O + o) * Ho * Wo + p];
				m[2][o] += fabsf(G[(size_t)(n * c->O + o) * Ho * Wo + p]);
			}
	for (int n = 0; n < c->N; n++)
		for (int ci = 0; ci < c->C; ci++)
			for (int ih = 0; ih < c->H; ih++)
				for (int iw = 0; iw < c->W; iw++) {
					const size_t xi = ((size_t)(n * c->C + ci) * c->H + ih) * c->W + iw;
					for (int o = 0; o < c->O; o++)
						for (int i = 0; i < c->kh; i++)
							for (int j = 0; j < c->kw; j++) {
								const int oh = ih * c->stride - c->pad + i;
								const int ow = iw * c->stride - c->pad + j;
								if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo)
									continue;
								const double g = G[((size_t)(n * c->O + o) * Ho + oh) * Wo + ow];
								const size_t wi = ((size_t)(ci * c->O + o) * c->kh + i) * c->kw + j;
								dx[xi] += g * w[wi];
								dw[wi] += g * x[xi];
								m[0][xi] += fabs(g * w[wi]);
								m[1][wi] += fabs(g * x[xi]);
							}
				}
}

static void test_conv_transpose2d(void)
{
	static const ConvTCase cases[] = {
		{ 2, 3, 4, 4, 2, 3, 3, 1, 0, 0, 1 },
		{ 2, 3, 4, 5, 2, 3, 3, 2, 1, 1, 1 },  /* the usual 2x upsampling decoder layer */
		{ 3, 2, 3, 3, 4, 4, 4, 2, 1, 0, 0 },
		{ 1, 2, 5, 4, 3, 3, 2, 2, 0, 1, 1 },  /* batch 1 path, non-square kernel */
		{ 2, 4, 7, 7, 1, 2, 2, 2, 0, 0, 1 },
		{ 1, 1, 3, 3, 2, 3, 3, 3, 1, 2, 0 },
		{ 19, 3, 32, 32, 2, 3, 3, 1, 1, 0, 1 }, /* several lowering chunks, the last one partial */
		{ 5, 2, 50, 50, 1, 2, 2, 2, 0, 0, 1 },  /* chunks of one image */
	};
	for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
		const ConvTCase *c = &cases[t];
		Ctx *ctx = ctx_new(2);
		Tensor *x = rand_tensor(ctx, 4, (int[]){ c->N, c->C, c->H, c->W }, 1);
		Tensor *w = rand_tensor(ctx, 4, (int[]){ c->C, c->O, c->kh, c->kw }, 1);
		Tensor *b = c->bias ? rand_tensor(ctx, 1, (int[]){ c->O }, 1) : NULL;
		Tensor *y = op_conv_transpose2d(ctx, x, w, b, c->stride, c->pad, c->out_pad);
		const int Ho = (c->H - 1) * c->stride - 2 * c->pad + c->kh + c->out_pad;
		const int Wo = (c->W - 1) * c->stride - 2 * c->pad + c->kw + c->out_pad;
		CHECK(y->ndim == 4 && y->shape[0] == c->N && y->shape[1] == c->O && y->shape[2] == Ho &&
		      y->shape[3] == Wo, "conv_transpose2d case %zu: output shape", t);
		/* Roundings per element: y sums at most C*kh*kw products (col = w^T x, then col2im;
		 * +1 for the bias); dx sums O*kh*kw (im2col of dy, then w . col), dw N*H*W, db
		 * N*Ho*Wo. */
		const double k_y = c->C * c->kh * c->kw + 1, k_dx = c->O * c->kh * c->kw;
		const double k_dw = (double)c->N * c->H * c->W, k_db = (double)c->N * Ho * Wo;
		char what[64];
		double *ref = calloc(y->size, sizeof *ref), *mag = calloc(y->size, sizeof *mag);
		ref_convt(c, x->data, w->data, b ? b->data : NULL, Ho, Wo, ref, mag);
		snprintf(what, sizeof what, "conv_transpose2d case %zu forward", t);
		failures += tol_check(what, y->data, ref, mag, y->size, k_y);

		float *G = rand_grad(ctx, y->size);
		CHECK(ctx_backward(ctx, wsum(ctx, y, G)) == 0, "conv_transpose2d case %zu: backward", t);
		GradRef g = gradref_new(x->size, w->size, (size_t)c->O);
		ref_convt_grad(c, x->data, w->data, G, Ho, Wo, g.dx, g.dw, g.db, g.m);
		failures += gradref_check(&g, "conv_transpose2d", t, "", x, w, b, k_dx, k_dw, k_db);
		gradref_free(&g);
		free(ref);
		free(mag);
		ctx_free(ctx);
	}
}

/* <conv2d(x; w), y> == <x, conv_transpose2d(y; w)>: the transpose really is the adjoint. */
static void test_conv_adjoint(void)
{
	const int N = 2, C = 3, O = 4, k = 3, s = 2, p = 1;
	Ctx *ctx = ctx_new(4);
	Tensor *x = rand_tensor(ctx, 4, (int[]){ N, C, 8, 8 }, 0);
	Tensor *w = rand_tensor(ctx, 4, (int[]){ O, C, k, k }, 0);
	Tensor *cx = op_conv2d(ctx, x, w, NULL, s, p); /* 8 -> 4 */
	Tensor *y = rand_tensor(ctx, 4, cx->shape, 0);
	/* conv_transpose2d wants w as (in=O, out=C, kh, kw): the same array. */
	Tensor *ty = op_conv_transpose2d(ctx, y, w, NULL, s, p, 1); /* 4 -> (3*2 - 2 + 3 + 1) = 8 */
	CHECK(tensor_same_shape(ty, x), "adjoint: transpose output shape");
	/* Both sides are exact dot products (in double) of float outputs whose elements are within
	 * k eps sum|term| of exact (tolerance.h): C*k*k terms per conv2d output, O*k*k per transpose
	 * output. The magnitudes sum|term| are the same ops on |x|, |w|, |y|. */
	Tensor *ax = rand_tensor(ctx, 4, x->shape, 0), *aw = rand_tensor(ctx, 4, w->shape, 0);
	Tensor *ay = rand_tensor(ctx, 4, y->shape, 0);
	for (size_t i = 0; i < x->size; i++)
		ax->data[i] = fabsf(x->data[i]);
	for (size_t i = 0; i < w->size; i++)
		aw->data[i] = fabsf(w->data[i]);
	for (size_t i = 0; i < y->size; i++)
		ay->data[i] = fabsf(y->data[i]);
	Tensor *mcx = op_conv2d(ctx, ax, aw, NULL, s, p);
	Tensor *mty = op_conv_transpose2d(ctx, ay, aw, NULL, s, p, 1);
	double lhs = 0.0, rhs = 0.0, bound = 0.0;
	for (size_t i = 0; i < cx->size; i++) {
		lhs += (double)cx->data[i] * y->data[i];
		bound += tol_bound(C * k * k, mcx->data[i]) * ay->data[i];
	}
	for (size_t i = 0; i < x->size; i++) {
		rhs += (double)x->data[i] * ty->data[i];
		bound += tol_bound(O * k * k, mty->data[i]) * ax->data[i];
	}
	/* the magnitudes are float sums themselves: 1% covers their own rounding */
	bound *= 1.01;
	CHECK(fabs(lhs - rhs) <= bound, "adjoint: <Ax,y>=%.9g <x,A^T y>=%.9g, differ by %g > bound %g",
	      lhs, rhs, fabs(lhs - rhs), bound);
	ctx_free(ctx);
}

/* ---------------------------------------------------------------------------------------------- */
/* batchnorm */

static void test_batchnorm(void)
{
	/* (N,C); (N,C,H,W) with small planes; large planes far from zero (variance stability);
	 * large planes whose means differ by far more than their spread (cfg 3: each plane's sums
	 * are shifted by the earlier planes' mean, far from its own). */
	for (int cfg = 0; cfg < 4; cfg++) {
		const int four_d = cfg > 0, big = cfg >= 2;
		const int N = 6, C = 3, H = big ? 16 : four_d ? 4 : 1, W = big ? 9 : four_d ? 5 : 1;
		const int S = H * W;
		const float scale = big ? 0.01f : 3.0f, shift = cfg == 2 ? 100.0f : 2.0f;
		const float momentum = 0.1f, eps = 1e-5f;
		Ctx *ctx = ctx_new(5);
		Tensor *x = four_d ? rand_tensor(ctx, 4, (int[]){ N, C, H, W }, 0)
		                   : rand_tensor(ctx, 2, (int[]){ N, C }, 0);
		for (size_t i = 0; i < x->size; i++)   /* non-zero mean, non-unit variance */
			x->data[i] = scale * x->data[i] + shift + (cfg == 3 ? 40.0f * (float)(i / (C * S)) : 0.0f);
		Tensor *g = rand_tensor(ctx, 1, (int[]){ C }, 0);
		Tensor *b = rand_tensor(ctx, 1, (int[]){ C }, 0);
		float rm[3] = { 0.5f, -0.25f, 1.0f }, rv[3] = { 2.0f, 0.5f, 1.5f };
		if (big) /* so the tiny batch variance is resolved in the running value */
			rv[0] = rv[1] = rv[2] = 0.0f;
		float rm0[3], rv0[3];
		memcpy(rm0, rm, sizeof rm);
		memcpy(rv0, rv, sizeof rv);

		/* Training: batch statistics, running update with the unbiased variance. */
		ctx_set_training(ctx, 1);
		Tensor *y = op_batchnorm(ctx, x, g, b, rm, rv, momentum, eps);
		double *ref = calloc(x->size, sizeof *ref);
		for (int c = 0; c < C; c++) {
			double m = 0.0, v = 0.0;
			for (int n = 0; n < N; n++)
				for (int k = 0; k < S; k++)
					m += x->data[(n * C + c) * S + k];
			m /= N * S;
			for (int n = 0; n < N; n++)
				for (int k = 0; k < S; k++) {
					const double d = x->data[(n * C + c) * S + k] - m;
					v += d * d;
				}
			const double vb = v / (N * S), vu = v / (N * S - 1);
			for (int n = 0; n < N; n++)
				for (int k = 0; k < S; k++) {
					const int i = (n * C + c) * S + k;
					ref[i] = (x->data[i] - m) / sqrt(vb + eps) * g->data[c] + b->data[c];
				}
			const double erm = (1 - momentum) * rm0[c] + momentum * m;
			const double erv = (1 - momentum) * rv0[c] + momentum * vu;
			CHECK(fabs(rm[c] - erm) < 1e-5, "batchnorm cfg %d running mean[%d] %g, expected %g",
			      cfg, c, rm[c], erm);
			CHECK(fabs(rv[c] - erv) < 1e-5 * (1.0 + fabs(erv) / (momentum * vu)) * momentum * vu,
			      "batchnorm cfg %d running var[%d] %g, expected %g", cfg, c, rv[c], erv);
			/* normalised output (before gamma/beta): zero mean, unit biased variance */
			double ym = 0.0, yv = 0.0;
			for (int n = 0; n < N; n++)
				for (int k = 0; k < S; k++)
					ym += (y->data[(n * C + c) * S + k] - b->data[c]) / g->data[c];
			ym /= N * S;
			for (int n = 0; n < N; n++)
				for (int k = 0; k < S; k++) {
					const double d = (y->data[(n * C + c) * S + k] - b->data[c]) / g->data[c] - ym;
					yv += d * d;
				}
			yv /= N * S;
			CHECK(fabs(ym) < 1e-3 && fabs(yv - vb / (vb + eps)) < 1e-3,
			      "batchnorm cfg %d channel %d: normalised mean %g variance %g (expected %g)", cfg,
			      c, ym, yv, vb / (vb + eps));
		}
		/* With |mean|/std ~ 2e4 (cfg 2) the float32 mean alone is off by half an ulp of 100,
		 * ~7e-4 std: that is the precision floor of any float32 batchnorm. */
		const double tol = cfg == 2 ? 2e-3 : 1e-5;
		double e = max_rel_err(y->data, ref, x->size);
		CHECK(e < tol, "batchnorm cfg %d training forward: max rel err %g", cfg, e);

		/* Eval: the running statistics, untouched by the call. */
		ctx_set_training(ctx, 0);
		float rm1[3], rv1[3];
		memcpy(rm1, rm, sizeof rm);
		memcpy(rv1, rv, sizeof rv);
		y = op_batchnorm(ctx, x, g, b, rm, rv, momentum, eps);
		for (int c = 0; c < C; c++)
			for (int n = 0; n < N; n++)
				for (int k = 0; k < S; k++) {
					const int i = (n * C + c) * S + k;
					ref[i] = (x->data[i] - rm[c]) / sqrt((double)rv[c] + eps) * g->data[c] +
					         b->data[c];
				}
		e = max_rel_err(y->data, ref, x->size);
		CHECK(e < 1e-5, "batchnorm cfg %d eval forward: max rel err %g", cfg, e);
		CHECK(memcmp(rm, rm1, sizeof rm) == 0 && memcmp(rv, rv1, sizeof rv) == 0,
		      "batchnorm cfg %d eval changed the running statistics", cfg);

		/* Eval without gamma/beta. */
		y = op_batchnorm(ctx, x, NULL, NULL, rm, rv, momentum, eps);
		for (size_t i = 0; i < x->size; i++) {
			const int c = (int)(i / S) % C;
			ref[i] = (x->data[i] - rm[c]) / sqrt((double)rv[c] + eps);
		}
		e = max_rel_err(y->data, ref, x->size);
		CHECK(e < 1e-5, "batchnorm cfg %d eval forward without affine: max rel err %g", cfg, e);
		free(ref);
		ctx_free(ctx);
	}
}

/* op_batchnorm_relu must equal op_relu(op_batchnorm(...)): forward, and backward both into a new
 * input gradient (stored) and into one that already holds gradient (accumulated). */
static void test_batchnorm_relu(void)
{
	for (int cfg = 0; cfg < 4; cfg++) {
		const int four_d = cfg & 1, training = !(cfg & 2);
		const int N = 5, C = 3, H = four_d ? 6 : 1, W = four_d ? 7 : 1;
		float rm[3] = { 0.1f, -0.2f, 0.3f }, rv[3] = { 1.5f, 0.7f, 1.1f };
		float out[2][2][5 * 3 * 6 * 7], gx[2][2][5 * 3 * 6 * 7], gg[2][2][3], gb[2][2][3];
		float xs[5 * 3 * 6 * 7], dys[5 * 3 * 6 * 7], gs[3];   /* the inputs (equal in every run) */
		size_t size = 0;
		for (int fused = 0; fused < 2; fused++)
			for (int prefilled = 0; prefilled < 2; prefilled++) {
				Ctx *ctx = ctx_new(5);
				rng_seed(&rng, 777 + (uint64_t)cfg);
				Tensor *x = four_d ? rand_tensor(ctx, 4, (int[]){ N, C, H, W }, 1)
				                   : rand_tensor(ctx, 2, (int[]){ N, C }, 1);
				Tensor *g = rand_tensor(ctx, 1, (int[]){ C }, 1);
				Tensor *b = rand_tensor(ctx, 1, (int[]){ C }, 1);
				float *G = rand_grad(ctx, x->size);
				if (prefilled) /* x's gradient already holds 0.5 from another consumer */
					for (size_t i = 0, n = x->size; i < n; i++)
						ctx_grad(ctx, x)[i] = 0.5f;
				ctx_set_training(ctx, training);
				float rm1[3], rv1[3];
				memcpy(rm1, rm, sizeof rm);
				memcpy(rv1, rv, sizeof rv);
				Tensor *y = fused ? op_batchnorm_relu(ctx, x, g, b, rm1, rv1, 0.1f, 1e-5f)
				                  : op_relu(ctx, op_batchnorm(ctx, x, g, b, rm1, rv1, 0.1f, 1e-5f));
				CHECK(ctx_backward(ctx, wsum(ctx, y, G)) == 0, "bn_relu cfg %d: backward", cfg);
				size = x->size;
				memcpy(xs, x->data, size * sizeof *xs);
				memcpy(dys, G, size * sizeof *dys);
				memcpy(gs, g->data, sizeof gs);
				for (size_t i = 0; i < size; i++) {
					out[fused][prefilled][i] = y->data[i];
					gx[fused][prefilled][i] = x->grad[i] - (prefilled ? 0.5f : 0.0f);
				}
				memcpy(gg[fused][prefilled], g->grad, sizeof gg[0][0]);
				memcpy(gb[fused][prefilled], b->grad, sizeof gb[0][0]);
				ctx_free(ctx);
			}
		/* The two paths sum the same terms in different orders. Per channel of n elements, with
		 * m = dy masked by the ReLU and xh the normalised input: dbeta = sum m, dgamma =
		 * sum m xh, each within (n + 2) eps sum|term| of exact on either path (tolerance.h), so
		 * twice that apart; dx = g inv (m - sum m / n - xh sum m xh / n) (training) inherits those
		 * sums' errors over n plus a few roundings of its own, and an accumulation into a
		 * prefilled gradient (0.5) one more. */
		const size_t S = (size_t)H * (size_t)W, n = (size_t)N * S;
		double bx[5 * 3 * 6 * 7], bgam[3], bbet[3];
		for (int c = 0; c < C; c++) {
			double mean = rm[c], var = rv[c];
			if (training) {
				double s1 = 0, s2 = 0;
				for (int k = 0; k < N; k++)
					for (size_t j = 0; j < S; j++)
						s1 += xs[((size_t)k * C + (size_t)c) * S + j];
				mean = s1 / (double)n;
				for (int k = 0; k < N; k++)
					for (size_t j = 0; j < S; j++) {
						double d = xs[((size_t)k * C + (size_t)c) * S + j] - mean;
						s2 += d * d;
					}
				var = s2 / (double)n;
			}
			const double inv = 1.0 / sqrt(var + 1e-5), ginv = fabs(gs[c]) * inv;
			double S1 = 0, S2 = 0;
			for (int k = 0; k < N; k++)
				for (size_t j = 0; j < S; j++) {
					size_t i = ((size_t)k * C + (size_t)c) * S + j;
					double m = out[0][0][i] > 0.0f ? dys[i] : 0.0, xh = (xs[i] - mean) * inv;
					S1 += fabs(m);
					S2 += fabs(m * xh);
				}
			bbet[c] = tol_bound(2.0 * (double)(n + 2), S1);
			bgam[c] = tol_bound(2.0 * (double)(n + 4), S2);
			for (int k = 0; k < N; k++)
				for (size_t j = 0; j < S; j++) {
					size_t i = ((size_t)k * C + (size_t)c) * S + j;
					double m = out[0][0][i] > 0.0f ? fabs(dys[i]) : 0.0, xh = fabs(xs[i] - mean) * inv;
					double d = training ? ginv * (bbet[c] + xh * bgam[c]) / (double)n +
					                      tol_bound(8, ginv * (m + S1 / (double)n + xh * S2 / (double)n))
					                    : tol_bound(8, ginv * m);
					bx[i] = d + tol_bound(2, 0.5 + ginv * (m + S1 / (double)n + xh * S2 / (double)n));
				}
		}
		for (int p = 0; p < 2; p++) {
			double ey = 0.0, ex = 0.0, ep = 0.0;   /* worst error as a fraction of its bound */
			int zeros = 0;
			for (size_t i = 0; i < size; i++) {
				ey = fmax(ey, fabs(out[1][p][i] - out[0][p][i]));
				ex = fmax(ex, fabs(gx[1][p][i] - gx[0][p][i]) / bx[i]);
				zeros += out[1][p][i] == 0.0f;
			}
			for (int c = 0; c < C; c++)
				ep = fmax(ep, fmax(fabs(gg[1][p][c] - gg[0][p][c]) / bgam[c],
				                   fabs(gb[1][p][c] - gb[0][p][c]) / bbet[c]));
			CHECK(ey == 0.0 && ex <= 1.0 && ep <= 1.0,
			      "bn_relu cfg %d %s: fused vs unfused: y max diff %g; dx and dgamma/dbeta at %.3g and "
			      "%.3g of their bounds", cfg, p ? "prefilled grad" : "new grad", ey, ex, ep);
			CHECK(zeros > 0 && zeros < (int)size, "bn_relu cfg %d: %d of %zu outputs clipped", cfg,
			      zeros, size);
		}
	}
}

/* Error bounds of one batchnorm backward given the gradient d reaching it (tests/tolerance.h):
 * dgamma[c], dbeta[c] are float sums of S terms per plane merged in double; dx = gs * (d - mdy -
 * xhat * mdyx) adds a few roundings to those of mdy and mdyx. Two float computations differ by
 * twice one's bound. Statistics in double: the batch's in training, the running ones in eval. */
static void bn_grad_bounds(const float *x, const float *gamma, const float *d, const float *rv,
                           int N, int C, int S, int training, double *bdx, double *bdg,
                           double *bdb)
{
	const double M = (double)N * S, eps = FLT_EPSILON, k = 2.0 * (S + 2);
	for (int c = 0; c < C; c++) {
		double mu = 0.0, var = 0.0, sd = 0.0, sdx = 0.0, ad = 0.0, adx = 0.0;
		for (int i = 0; i < N; i++)
			for (int s = 0; s < S; s++)
				mu += x[((size_t)i * C + c) * S + s];
		mu /= M;
		for (int i = 0; i < N; i++)
			for (int s = 0; s < S; s++) {
				const double e = x[((size_t)i * C + c) * S + s] - mu;
				var += e * e;
			}
		var /= M;
		if (!training) {
			mu = 0.0;   /* eval: only |xhat| enters the bound; bound it by the batch's own */
			var = rv[c];
		}
		const double rstd = 1.0 / sqrt(var + 1e-5), gs = fabs(gamma[c]) * rstd;
		for (int i = 0; i < N; i++)
			for (int s = 0; s < S; s++) {
				const size_t e = ((size_t)i * C + c) * S + s;
				const double xh = (x[e] - mu) * rstd;
				sd += d[e];
				sdx += d[e] * xh;
				ad += fabs(d[e]);
				adx += fabs(d[e] * xh);
			}
		bdg[c] = tol_bound(k, adx);
		bdb[c] = tol_bound(k, ad);
		for (int i = 0; i < N; i++)
			for (int s = 0; s < S; s++) {
				const size_t e = ((size_t)i * C + c) * S + s;
				const double xh = fabs((x[e] - mu) * rstd);
				bdx[e] = training ? 12.0 * eps * gs * (fabs(d[e]) + fabs(sd / M) + xh * fabs(sdx / M)) +
				                    tol_bound(k, gs * (ad / M + xh * adx / M))
				                  : 8.0 * eps * gs * fabs(d[e]);
			}
	}
}

/* op_batchnorm_add_relu(x, id) against op_add_relu(op_batchnorm(x), id): forward, running
 * statistics, and the gradients of x, gamma, beta and id, within bounds derived from each sum;
 * 2-D and 4-D, training and eval, id a leaf or (reuse_id) another batchnorm's output that the
 * fused op overwrites, x's gradient new (planes: it takes over dy's buffer) or prefilled. */
static void test_batchnorm_add_relu(void)
{
	enum { N = 5, C = 3, H = 6, W = 7, SZ = N * C * H * W };
	static float out[2][SZ], gx[2][SZ], gid[2][SZ], bnv[SZ], idv[SZ], xv[SZ], x2v[SZ], G[SZ];
	float gg[2][C], gb[2][C], rms[2][C], rvs[2][C];
	double ref[SZ], bound[SZ], bdx[SZ], bdg[C], bdb[C], bd2[SZ], bdg2[C], bdb2[C];
	for (int cfg = 0; cfg < 16; cfg++) {
		const int four_d = cfg & 1, training = !(cfg & 2), reuse = !!(cfg & 4);
		const int prefilled = !!(cfg & 8), S = four_d ? H * W : 1, n = N * C * S;
		const float rv0[C] = { 1.5f, 0.7f, 1.1f };
		float gamma[C], beta[C];
		for (int fused = 0; fused < 2; fused++) {
			Ctx *ctx = ctx_new(5);
			rng_seed(&rng, 9090 + (uint64_t)cfg);
			const int *shape = four_d ? (int[]){ N, C, H, W } : (int[]){ N, C };
			Tensor *x = rand_tensor(ctx, four_d ? 4 : 2, shape, 1);
			Tensor *x2 = rand_tensor(ctx, four_d ? 4 : 2, shape, 1);
			Tensor *g = rand_tensor(ctx, 1, (int[]){ C }, 1);
			Tensor *b = rand_tensor(ctx, 1, (int[]){ C }, 1);
			const float *Gr = rand_grad(ctx, x->size);
			memcpy(G, Gr, x->size * sizeof *G);
			if (prefilled) /* x's gradient already holds 0.5 from another consumer */
				for (size_t i = 0; i < x->size; i++)
					ctx_grad(ctx, x)[i] = 0.5f;
			ctx_set_training(ctx, training);
			float rm[C] = { 0.1f, -0.2f, 0.3f }, rv[C], rm2[C] = { 0 }, rv2[C];
			memcpy(rv, rv0, sizeof rv);
			memcpy(rv2, rv0, sizeof rv2);
			Tensor *id = reuse ? op_batchnorm(ctx, x2, NULL, NULL, rm2, rv2, 0.1f, 1e-5f) : x2;
			if (!fused)
				memcpy(idv, id->data, x->size * sizeof *idv);
			Tensor *bn = fused ? NULL : op_batchnorm(ctx, x, g, b, rm, rv, 0.1f, 1e-5f);
			Tensor *y = fused ? op_batchnorm_add_relu(ctx, x, g, b, rm, rv, 0.1f, 1e-5f, id, reuse)
			                  : op_add_relu(ctx, bn, id);
			CHECK(!reuse || !fused || y->data == id->data, "bn_add_relu cfg %d: reuse_id gave a "
			      "new output buffer", cfg);
			if (!fused)
				memcpy(bnv, bn->data, x->size * sizeof *bnv);
			memcpy(out[fused], y->data, x->size * sizeof out[0][0]);
			CHECK(ctx_backward(ctx, wsum(ctx, y, Gr)) == 0, "bn_add_relu cfg %d: backward", cfg);
			for (size_t i = 0; i < x->size; i++) {
				gx[fused][i] = x->grad[i];
				gid[fused][i] = x2->grad[i];
			}
			memcpy(gg[fused], g->grad, sizeof gg[0]);
			memcpy(gb[fused], b->grad, sizeof gb[0]);
			memcpy(rms[fused], rm, sizeof rm);
			memcpy(rvs[fused], rv, sizeof rv);
			memcpy(gamma, g->data, sizeof gamma);
			memcpy(beta, b->data, sizeof beta);
			memcpy(xv, x->data, x->size * sizeof *xv);
			memcpy(x2v, x2->data, x->size * sizeof *x2v);
			ctx_free(ctx);
		}
		char what[96];
		int bad = 0, zeros = 0;
		/* y = ((x - m) * a + b) + id: two roundings over terms of magnitude |(x - m) * a| =
		 * |bn - b|, |b| and |id|, on either side */
		for (int i = 0; i < n; i++) {
			const float bc = beta[(i / S) % C];
			ref[i] = out[0][i];
			bound[i] = tol_bound(4.0, fabs(bnv[i] - bc) + fabs(bc) + fabs(idv[i]));
			zeros += out[0][i] == 0.0f;
		}
		snprintf(what, sizeof what, "bn_add_relu cfg %d y", cfg);
		bad += tol_check_bound(what, out[1], ref, bound, n);
		/* the gradient reaching both batchnorms: G where the reference output is positive */
		float d[SZ];
		for (int i = 0; i < n; i++)
			d[i] = out[0][i] > 0.0f ? G[i] : 0.0f;
		bn_grad_bounds(xv, gamma, d, rv0, N, C, S, training, bdx, bdg, bdb);
		for (int i = 0; i < n; i++) {
			ref[i] = gx[0][i];
			bound[i] = 2.0 * bdx[i] + (prefilled ? tol_bound(2.0, 0.5 + fabs(gx[0][i])) : 0.0);
		}
		snprintf(what, sizeof what, "bn_add_relu cfg %d dx", cfg);
		bad += tol_check_bound(what, gx[1], ref, bound, n);
		double rg[C], rb[C], bg[C], bb[C];
		for (int c = 0; c < C; c++) {
			rg[c] = gg[0][c];
			rb[c] = gb[0][c];
			bg[c] = 2.0 * bdg[c];
			bb[c] = 2.0 * bdb[c];
		}
		snprintf(what, sizeof what, "bn_add_relu cfg %d dgamma", cfg);
		bad += tol_check_bound(what, gg[1], rg, bg, C);
		snprintf(what, sizeof what, "bn_add_relu cfg %d dbeta", cfg);
		bad += tol_check_bound(what, gb[1], rb, bb, C);
		/* id's gradient: exactly d for a leaf; through the same batchnorm backward for reuse_id */
		const float ones[C] = { 1.0f, 1.0f, 1.0f };
		if (reuse)
			bn_grad_bounds(x2v, ones, d, rv0, N, C, S, training, bd2, bdg2, bdb2);
		for (int i = 0; i < n; i++) {
			ref[i] = gid[0][i];
			bound[i] = reuse ? 2.0 * bd2[i] : 0.0;
		}
		snprintf(what, sizeof what, "bn_add_relu cfg %d did", cfg);
		bad += tol_check_bound(what, gid[1], ref, bound, n);
		/* the statistics come from the same code: equal */
		CHECK(memcmp(rms[0], rms[1], sizeof rms[0]) == 0 && memcmp(rvs[0], rvs[1], sizeof rvs[0]) == 0,
		      "bn_add_relu cfg %d: running statistics differ from the unfused op's", cfg);
		CHECK(bad == 0, "bn_add_relu cfg %d (%s, %s, %s, %s): %d checks out of bound", cfg,
		      four_d ? "4-D" : "2-D", training ? "train" : "eval", reuse ? "reuse id" : "leaf id",
		      prefilled ? "prefilled dx" : "new dx", bad);
		CHECK(zeros > 0 && zeros < n, "bn_add_relu cfg %d: %d of %d outputs clipped", cfg, zeros, n);
	}
}

/* op_add_relu must equal op_relu(op_add(a, b)) bit for bit: forward, and gradients both stored
 * into a new buffer and added into one that already holds gradient; on 2 threads over several
 * chunks, and for a + a (both gradients into one buffer). */
static void test_add_relu(void)
{
	enum { N = 4, C = 8, H = 40, W = 40, SZ = N * C * H * W };
	static float out[2][2][SZ], ga[2][2][SZ], gb[2][2][SZ];
	for (int self = 0; self < 2; self++) {
		for (int fused = 0; fused < 2; fused++)
			for (int prefilled = 0; prefilled < 2; prefilled++) {
				Ctx *ctx = ctx_new(5);
				ctx_set_threads(ctx, 2);
				rng_seed(&rng, 4242 + (uint64_t)self);
				Tensor *a = rand_tensor(ctx, 4, (int[]){ N, C, H, W }, 1);
				Tensor *b = self ? a : rand_tensor(ctx, 4, (int[]){ N, C, H, W }, 1);
				float *G = ctx_alloc(ctx, (size_t)SZ * sizeof *G);
				for (size_t i = 0; i < SZ; i++)
					G[i] = rng_uniform_range(&rng, -1.0f, 1.0f);
				if (prefilled) /* a's and b's gradients already hold 0.5 from other consumers */
					for (int t = 0; t < 2; t++)
						for (size_t i = 0; i < SZ; i++)
							ctx_grad(ctx, t ? b : a)[i] = t && self ? 1.0f : 0.5f;
				Tensor *y = fused ? op_add_relu(ctx, a, b) : op_relu(ctx, op_add(ctx, a, b));
				CHECK(ctx_backward(ctx, wsum(ctx, y, G)) == 0, "add_relu: backward");
				for (size_t i = 0; i < SZ; i++) {
					out[fused][prefilled][i] = y->data[i];
					ga[fused][prefilled][i] = a->grad[i];
					gb[fused][prefilled][i] = b->grad[i];
				}
				ctx_free(ctx);
			}
		for (int p = 0; p < 2; p++) {
			int diff = 0, zeros = 0;
			for (size_t i = 0; i < SZ; i++) {
				diff += out[1][p][i] != out[0][p][i] || ga[1][p][i] != ga[0][p][i] ||
				        gb[1][p][i] != gb[0][p][i];
				zeros += out[1][p][i] == 0.0f;
			}
			CHECK(diff == 0, "add_relu %s %s: %d of %d elements differ from relu(add)",
			      self ? "a + a" : "a + b", p ? "prefilled grad" : "new grad", diff, SZ);
			CHECK(zeros > 0 && zeros < SZ, "add_relu: %d of %d outputs clipped", zeros, SZ);
		}
	}
}

/* Layernorm forward against the definition. */
static void test_layernorm(void)
{
	Ctx *ctx = ctx_new(6);
	const int R = 5, D = 7;
	Tensor *x = rand_tensor(ctx, 2, (int[]){ R, D }, 0);
	Tensor *g = rand_tensor(ctx, 1, (int[]){ D }, 0);
	Tensor *b = rand_tensor(ctx, 1, (int[]){ D }, 0);
	Tensor *y = op_layernorm(ctx, x, g, b, 1e-5f);
	double ref[5 * 7];
	for (int r = 0; r < R; r++) {
		double m = 0.0, v = 0.0;
		for (int j = 0; j < D; j++)
			m += x->data[r * D + j];
		m /= D;
		for (int j = 0; j < D; j++)
			v += (x->data[r * D + j] - m) * (x->data[r * D + j] - m);
		v /= D;
		for (int j = 0; j < D; j++)
			ref[r * D + j] = (x->data[r * D + j] - m) / sqrt(v + 1e-5) * g->data[j] + b->data[j];
	}
	const double e = max_rel_err(y->data, ref, x->size);
	CHECK(e < 1e-5, "layernorm forward: max rel err %g", e);
	ctx_free(ctx);
}

/* Dropout: the kept fraction, the scaling, eval identity. */
static void test_dropout(void)
{
	Ctx *ctx = ctx_new(7);
	const int n = 20000;
	const float p = 0.3f;
	Tensor *x = ctx_tensor(ctx, 1, (int[]){ n });
	for (int i = 0; i < n; i++)
		x->data[i] = 2.0f;
	Tensor *y = op_dropout(ctx, x, p);
	int zeros = 0, bad = 0;
	for (int i = 0; i < n; i++) {
		if (y->data[i] == 0.0f)
			zeros++;
		else if (fabsf(y->data[i] - 2.0f / (1.0f - p)) > 1e-6f)
			bad++;
	}
	CHECK(bad == 0, "dropout: %d kept values not scaled by 1/(1-p)", bad);
	CHECK(fabs((double)zeros / n - p) < 0.015, "dropout: dropped fraction %g, expected %g",
	      (double)zeros / n, p);
	ctx_set_training(ctx, 0);
	y = op_dropout(ctx, x, p);
	CHECK(y->data[0] == 2.0f && y->data[n - 1] == 2.0f, "dropout: eval mode is not identity");
	ctx_free(ctx);
}

/* ---------------------------------------------------------------------------------------------- */
/* attention */

static void test_attention(void)
{
	static const int cases[][6] = { /* B, H, Tq, Tk, Dh, causal */
		{ 2, 3, 5, 5, 4, 0 }, { 2, 3, 5, 5, 4, 1 }, { 1, 2, 3, 7, 8, 0 }, { 3, 1, 16, 16, 8, 1 },
	};
	for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
		const int B = cases[t][0], H = cases[t][1], Tq = cases[t][2], Tk = cases[t][3];
		const int Dh = cases[t][4], causal = cases[t][5];
		Ctx *ctx = ctx_new(8);
		Tensor *q = rand_tensor(ctx, 4, (int[]){ B, H, Tq, Dh }, 0);
		Tensor *k = rand_tensor(ctx, 4, (int[]){ B, H, Tk, Dh }, 0);
		Tensor *v = rand_tensor(ctx, 4, (int[]){ B, H, Tk, Dh }, 0);
		for (size_t i = 0; i < q->size; i++)
			q->data[i] *= 3.0f; /* sharper softmax */
		Tensor *o = op_attention(ctx, q, k, v, causal);
		CHECK(tensor_same_shape(o, q), "attention case %zu: output shape", t);
		AttnRef r;
		CHECK(attention_ref(q->data, k->data, v->data, NULL, NULL, B * H, Tq, Tk, Dh, causal,
		                    &r) == 0, "attention case %zu: reference out of memory", t);
		char what[64];
		snprintf(what, sizeof what, "attention case %zu (causal %d)", t, causal);
		if (r.o)
			failures += tol_check_bound(what, o->data, r.o, r.bo, o->size);
		attention_ref_free(&r);
		ctx_free(ctx);
	}
	/* causal_mask alone */
	Ctx *ctx = ctx_new(9);
	Tensor *s = rand_tensor(ctx, 3, (int[]){ 2, 4, 4 }, 0);
	Tensor *m = op_causal_mask(ctx, s);
	int bad = 0;
	for (int b = 0; b < 2; b++)
		for (int i = 0; i < 4; i++)
			for (int j = 0; j < 4; j++) {
				const int idx = (b * 4 + i) * 4 + j;
				if (j > i ? !(isinf(m->data[idx]) && m->data[idx] < 0) : m->data[idx] != s->data[idx])
					bad++;
			}
	CHECK(bad == 0, "causal_mask: %d wrong entries", bad);
	ctx_free(ctx);
}

/* op_attention_qkv reads heads in place from a fused projection and writes them side by side:
 * its output and the gradient of every part of qkv against the double reference on the same
 * heads gathered into (B*H, T, Dh). T 40 causal runs a partial last block of queries. With
 * `acc`, a second term sum(qkv * G2) puts gradient into qkv's buffer first, so the op must add
 * to it rather than store. */
static void test_attention_qkv(void)
{
	static const int cases[][4] = { /* B, H, T, Dh */
		{ 2, 3, 40, 8 }, { 1, 2, 7, 4 },
	};
	for (size_t t = 0; t < 4 * sizeof cases / sizeof cases[0]; t++) {
		const int B = cases[t / 4][0], H = cases[t / 4][1], T = cases[t / 4][2];
		const int Dh = cases[t / 4][3], causal = (int)(t / 2 % 2), acc = (int)(t % 2);
		const int D = H * Dh, BH = B * H;
		Ctx *ctx = ctx_new(8);
		Tensor *qkv = rand_tensor(ctx, 2, (int[]){ B * T, 3 * D }, 1);
		Tensor *o = op_attention_qkv(ctx, qkv, B, H, causal);
		CHECK(o->ndim == 2 && o->shape[0] == B * T && o->shape[1] == D,
		      "attention_qkv case %zu: output shape", t);
		const float *G = rand_grad(ctx, o->size);
		const float *G2 = rand_grad(ctx, qkv->size);
		Tensor *loss = wsum(ctx, o, G);
		if (acc)
			loss = op_add(ctx, loss, wsum(ctx, qkv, G2));
		CHECK(ctx_backward(ctx, loss) == 0, "attention_qkv case %zu: backward", t);
		/* (b,t,part,h,d) of qkv and (b,t,h,d) of o and G to (part)(b,h,t,d) */
		const size_t hs = (size_t)BH * T * Dh;
		float *heads = ctx_alloc(ctx, 3 * hs * sizeof *heads), *dO = ctx_alloc(ctx, hs * sizeof *dO);
		float *oh = ctx_alloc(ctx, hs * sizeof *oh), *gh = ctx_alloc(ctx, 3 * hs * sizeof *gh);
		float *g2 = ctx_alloc(ctx, 3 * hs * sizeof *g2);
		for (int b = 0; b < B; b++)
			for (int i = 0; i < T; i++)
				for (int h = 0; h < H; h++)
					for (int d = 0; d < Dh; d++) {
						const size_t at = (((size_t)b * H + h) * T + i) * Dh + d;
						const size_t row = (size_t)b * T + i, col = (size_t)h * Dh + d;
						for (int p = 0; p < 3; p++) {
							heads[p * hs + at] = qkv->data[row * 3 * D + p * D + col];
							gh[p * hs + at] = qkv->grad[row * 3 * D + p * D + col];
							g2[p * hs + at] = acc ? G2[row * 3 * D + p * D + col] : 0.0f;
						}
						oh[at] = o->data[row * D + col];
						dO[at] = G[row * D + col];
					}
		AttnRef r;
		CHECK(attention_ref(heads, heads + hs, heads + 2 * hs, NULL, dO, BH, T, T, Dh, causal,
		                    &r) == 0, "attention_qkv case %zu: reference out of memory", t);
		const float *got[4] = { oh, gh, gh + hs, gh + 2 * hs };
		const double *ref[4] = { r.o, r.dq, r.dk, r.dv }, *bound[4] = { r.bo, r.bdq, r.bdk, r.bdv };
		static const char *const part[4] = { "output", "dq", "dk", "dv" };
		/* G2 comes in exactly; each block of 32 queries adds into it with one rounding */
		const double nb = causal ? (T + 31) / 32 : 1;
		for (size_t i = 0; r.o && acc && i < 3 * hs; i++) {
			double *rg = i < hs ? &r.dq[i] : i < 2 * hs ? &r.dk[i - hs] : &r.dv[i - 2 * hs];
			double *bg = i < hs ? &r.bdq[i] : i < 2 * hs ? &r.bdk[i - hs] : &r.bdv[i - 2 * hs];
			*rg += g2[i];
			*bg += nb * (double)FLT_EPSILON * (fabs(g2[i]) + fabs(*rg));
		}
		for (int p = 0; r.o && p < 4; p++) {
			char what[96];
			snprintf(what, sizeof what, "attention_qkv case %zu (causal %d, acc %d) %s", t,
			         causal, acc, part[p]);
			failures += tol_check_bound(what, got[p], ref[p], bound[p], hs);
		}
		attention_ref_free(&r);
		ctx_free(ctx);
	}
}

static void bad_attention_qkv(Ctx *ctx)
{
	op_attention_qkv(ctx, ctx_zeros(ctx, 2, (int[]){ 6, 20 }), 2, 2, 1);
}

/* ---------------------------------------------------------------------------------------------- */
/* pooling and upsampling forward */

static void test_pool_upsample(void)
{
	Ctx *ctx = ctx_new(10);
	const int N = 2, C = 3, H = 7, W = 6;
	Tensor *x = rand_tensor(ctx, 4, (int[]){ N, C, H, W }, 0);
	Tensor *mp = op_maxpool2d(ctx, x, 3, 2);
	Tensor *ap = op_avgpool2d(ctx, x, 2, 2);
	Tensor *gp = op_global_avgpool(ctx, x);
	Tensor *up = op_upsample_nearest(ctx, x, 2);
	CHECK(mp->shape[2] == 3 && mp->shape[3] == 2, "maxpool2d shape");
	CHECK(ap->shape[2] == 3 && ap->shape[3] == 3, "avgpool2d shape");
	CHECK(gp->ndim == 2 && gp->shape[0] == N && gp->shape[1] == C, "global_avgpool shape");
	CHECK(up->shape[2] == 2 * H && up->shape[3] == 2 * W, "upsample shape");
	int bad = 0;
	for (int p = 0; p < N * C; p++) {
		const float *xp = x->data + p * H * W;
		double gs = 0.0;
		for (int i = 0; i < H * W; i++)
			gs += xp[i];
		if (fabs(gp->data[p] - gs / (H * W)) > 1e-6)
			bad++;
		for (int oh = 0; oh < 3; oh++)
			for (int ow = 0; ow < 2; ow++) {
				float mx = -INFINITY;
				for (int i = 0; i < 3; i++)
					for (int j = 0; j < 3; j++)
						mx = fmaxf(mx, xp[(oh * 2 + i) * W + ow * 2 + j]);
				if (mp->data[(p * 3 + oh) * 2 + ow] != mx)
					bad++;
			}
		for (int oh = 0; oh < 3; oh++)
			for (int ow = 0; ow < 3; ow++) {
				double a = 0.0;
				for (int i = 0; i < 2; i++)
					for (int j = 0; j < 2; j++)
						a += xp[(oh * 2 + i) * W + ow * 2 + j];
				if (fabs(ap->data[(p * 3 + oh) * 3 + ow] - a / 4) > 1e-6)
					bad++;
			}
		for (int oh = 0; oh < 2 * H; oh++)
			for (int ow = 0; ow < 2 * W; ow++)
				if (up->data[(p * 2 * H + oh) * 2 * W + ow] != xp[(oh / 2) * W + ow / 2])
					bad++;
	}
	CHECK(bad == 0, "pooling/upsample: %d wrong values", bad);
	ctx_free(ctx);
}

/* Padded max pooling (the ResNet stem's 3x3 stride 2 pad 1) against a loop over the window
 * clipped to the image, on negative values so a padded zero would win if it were counted. */
static void test_maxpool_pad(void)
{
	Ctx *ctx = ctx_new(11);
	const int N = 2, C = 2, H = 7, W = 6, k = 3, s = 2, pad = 1;
	Tensor *x = rand_tensor(ctx, 4, (int[]){ N, C, H, W }, 0);
	for (size_t i = 0; i < x->size; i++)
		x->data[i] = -1.0f - fabsf(x->data[i]);
	Tensor *mp = op_maxpool2d_pad(ctx, x, k, s, pad);
	const int Ho = (H + 2 * pad - k) / s + 1, Wo = (W + 2 * pad - k) / s + 1;
	CHECK(mp->shape[2] == Ho && mp->shape[3] == Wo, "maxpool2d pad shape (%d,%d), expected "
	      "(%d,%d)", mp->shape[2], mp->shape[3], Ho, Wo);
	int bad = 0;
	for (int p = 0; p < N * C; p++)
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++) {
				float mx = -INFINITY;
				for (int i = oh * s - pad; i < oh * s - pad + k; i++)
					for (int j = ow * s - pad; j < ow * s - pad + k; j++)
						if (i >= 0 && i < H && j >= 0 && j < W)
							mx = fmaxf(mx, x->data[(p * H + i) * W + j]);
				if (mp->data[(p * Ho + oh) * Wo + ow] != mx)
					bad++;
			}
	CHECK(bad == 0, "maxpool2d pad: %d wrong values", bad);
	ctx_free(ctx);
}

/* ---------------------------------------------------------------------------------------------- */
/* shape errors: abort with a message naming the op and the shapes */

static void bad_conv_channels(Ctx *ctx)
{
	op_conv2d(ctx, ctx_zeros(ctx, 4, (int[]){ 2, 3, 8, 8 }), ctx_zeros(ctx, 4, (int[]){ 4, 2, 3, 3 }),
	          NULL, 1, 1);
}

static void bad_convt_outpad(Ctx *ctx)
{
	op_conv_transpose2d(ctx, ctx_zeros(ctx, 4, (int[]){ 1, 2, 4, 4 }),
	                    ctx_zeros(ctx, 4, (int[]){ 2, 3, 3, 3 }), NULL, 2, 1, 2);
}

static void bad_bn_eval(Ctx *ctx)
{
	ctx_set_training(ctx, 0);
	op_batchnorm(ctx, ctx_zeros(ctx, 2, (int[]){ 4, 3 }), NULL, NULL, NULL, NULL, 0.1f, 1e-5f);
}

static void bad_attention(Ctx *ctx)
{
	op_attention(ctx, ctx_zeros(ctx, 4, (int[]){ 1, 2, 5, 8 }),
	             ctx_zeros(ctx, 4, (int[]){ 1, 2, 5, 4 }), ctx_zeros(ctx, 4, (int[]){ 1, 2, 5, 4 }), 0);
}

static void bad_pool(Ctx *ctx)
{
	op_maxpool2d(ctx, ctx_zeros(ctx, 4, (int[]){ 1, 1, 2, 2 }), 3, 1);
}

typedef struct BadOp {
	void (*f)(Ctx *);
} BadOp;

static void run_bad_op(void *arg)
{
	((const BadOp *)arg)->f(ctx_new(1));
}

static void expect_abort(const char *what, void (*f)(Ctx *), const char *msg)
{
	char buf[512];
	CHECK(test_aborts(run_bad_op, &(BadOp){ f }, buf, sizeof buf) == 1, "%s did not abort", what);
	CHECK(strstr(buf, msg) != NULL, "%s: expected \"%s\" in: %s", what, msg, buf);
}

static void test_shape_errors(void)
{
	expect_abort("conv2d channel mismatch", bad_conv_channels,
	             "conv2d: channels of x and w differ: (2,3,8,8) vs (4,2,3,3)");
	expect_abort("conv_transpose2d out_pad >= stride", bad_convt_outpad, "conv_transpose2d: need");
	expect_abort("batchnorm eval without running stats", bad_bn_eval,
	             "batchnorm: eval mode needs running statistics: (4,3)");
	expect_abort("attention Dh mismatch", bad_attention, "attention: q, k, v must agree");
	expect_abort("attention_qkv width not 3 H Dh", bad_attention_qkv,
	             "attention_qkv: qkv must be (B*T, 3*H*Dh) for the given B and H: (6,20)");
	expect_abort("maxpool window > input", bad_pool, "maxpool2d: window larger than the input");
}

int main(void)
{
	rng_seed(&rng, 12345);
	test_conv2d();
	test_conv_transpose2d();
	test_conv_adjoint();
	test_batchnorm();
	test_batchnorm_relu();
	test_batchnorm_add_relu();
	test_add_relu();
	test_layernorm();
	test_dropout();
	test_attention();
	test_attention_qkv();
	test_pool_upsample();
	test_maxpool_pad();
	test_shape_errors();
	return check_exit("test_ops_nn");
}
