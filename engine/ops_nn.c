/* ops_nn.c - the neural-network ops of ops.h: layer and batch normalisation (alone, + ReLU, and
 * a residual block's batchnorm + shortcut + ReLU), dropout, 2-D convolution and its transpose,
 * nearest upsampling, max/avg/global pooling, the causal mask, fused scaled dot-product
 * attention and a fused add + ReLU, each a forward that records a node and a backward that
 * accumulates (+=) into its inputs' gradients.
 *
 * Convolution on planes of at least CONV_IMAGE_MIN output pixels is lowered one image at a time
 * (each image's product is already NCHW; see conv2d_img_backward). Smaller planes are lowered a
 * chunk of images at a time: im2col of the chunk into a
 * (C*kh*kw, nb*H'*W') arena matrix (thousands of columns, a few MB, so it stays in cache), one
 * sgemm for the whole chunk (parallel_sgemm: split across the context's threads, since the engine
 * keeps OpenBLAS itself at one thread), then a cheap reorder to NCHW; per-image small sgemms are
 * avoided. im2col, col2im and the reorders are split across the same threads (parallel_for),
 * each output element written by exactly one chunk, so results do not depend on the thread count. Backward walks the chunks again with the forward's buffers: dW is one sgemm per chunk
 * against recomputed columns, dX one sgemm into the column buffer followed by col2im. The
 * transposed convolution is the exact adjoint and uses the same lowering the other way round.
 * 3x3 / stride 1 / pad 1 convolutions may instead go through Winograd F(2x2,3x3)
 * (conv_winograd.h, chosen by SSLD_CONV): forward and dX there, dW still by im2col here.
 *
 * Deliberately not here: dilation, groups, pooling with padding, and double backward (backward may overwrite saved buffers). A shape error
 * is a programming error: it prints the op and the shapes and aborts (see ops.h).
 */
#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_winograd.h"
#include "dist.h"
#include "ops.h"
#include "parallel.h"
#include "simd.h"
#include "tape.h"

/* ---------------------------------------------------------------------------------------------- */
/* helpers */

static _Noreturn void nn_abort(const char *op, const char *why, const Tensor *a, const Tensor *b)
{
	char sa[64] = "", sb[64] = "";
	if (a)
		tensor_shape_str(a, sa, sizeof sa);
	if (b)
		tensor_shape_str(b, sb, sizeof sb);
	fprintf(stderr, "ssld engine: %s: %s: %s%s%s\n", op, why, sa, b ? " vs " : "", sb);
	abort();
}

static float *arena_floats(Ctx *ctx, size_t n)
{
	return ctx_alloc(ctx, n * sizeof(float));
}

/* Sum in double: bias gradients reduce tens of thousands of terms. */
static double sum_floats(const float *x, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += x[i];
	return s;
}

/* ---------------------------------------------------------------------------------------------- */
/* layernorm: y = (x - mean) * rstd * gamma + beta over the last axis. saved: mean, rstd per row. */

static void layernorm_backward(Ctx *ctx, Node *n)
{
	Tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
	const float *mean = n->saved, *rstd = n->saved2;
	const int D = n->i[0];
	const size_t R = x->size / (size_t)D;
	const float *dy = n->out->grad;
	float *dx = tape_grad_in(ctx, x);
	float *dg = tape_grad_in(ctx, gamma);
	float *db = tape_grad_in(ctx, beta);
	const float *g = gamma ? gamma->data : NULL;
	const SimdKernels *k = simd();
	for (size_t r = 0; r < R; r++)
		k->layernorm_backward_row(x->data + r * D, dy + r * D, g, mean[r], rstd[r],
		                          dx ? dx + r * D : NULL, dg, db, D);
}

// x (..., D), gamma (D) or NULL, beta (D) or NULL -> (..., D)
Tensor *op_layernorm(Ctx *ctx, Tensor *x, Tensor *gamma, Tensor *beta, float eps)
{
	const int D = tensor_dim(x, -1);
	if (D <= 0)
		nn_abort("layernorm", "empty last axis", x, NULL);
	if (gamma && gamma->size != (size_t)D)
		nn_abort("layernorm", "gamma must have the size of the last axis of x", x, gamma);
	if (beta && beta->size != (size_t)D)
		nn_abort("layernorm", "beta must have the size of the last axis of x", x, beta);
	const size_t R = x->size / (size_t)D;
	Tensor *out = ctx_tensor_like(ctx, x);
	float *mean = arena_floats(ctx, R), *rstd = arena_floats(ctx, R);
	const float *g = gamma ? gamma->data : NULL, *b = beta ? beta->data : NULL;

	const SimdKernels *k = simd();
	for (size_t r = 0; r < R; r++)
		k->layernorm_row(x->data + r * D, out->data + r * D, g, b, D, eps, &mean[r], &rstd[r]);

	Tensor *in[3] = { x, gamma, beta };
	if (tape_wants_grad(ctx, in, 3)) {
		Node *n = tape_record(ctx, OP_LAYERNORM, layernorm_backward, out, in, 3);
		n->i[0] = D;
		n->f[0] = eps;
		n->saved = mean;
		n->saved2 = rstd;
	}
	return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* batchnorm over (N,C) or (N,C,H,W): channel c is every x[n][c][s]. saved: mean, rstd per channel
 * (batch statistics in training mode, running statistics in eval mode). i: N, C, S, batch_stats,
 * relu. With relu (op_batchnorm_relu) the output is max(0, bn(x)) and backward masks dy where
 * the forward clamped: one pass over the activation instead of three, no separate pre-ReLU tensor
 * and gradient, and the ReLU runs on the channel split too. The mask is recomputed from x with
 * the forward's own float expression ((x - mean) * scale + shift > 0) rather than read from y:
 * backward then streams x and dy only (a third fewer bytes than x, dy and y).
 *
 * Work is split by channels across the context's threads: every channel's statistics are summed
 * by one thread in a fixed order, so results do not depend on the thread count. Planes (S > 1)
 * are walked per channel; the (N,C) case (S = 1) walks rows and keeps per-channel accumulators
 * for a slice of channels, so memory is read row by row instead of with a stride of C, through
 * the row kernels of simd.h (scalar double sums would cost the MLP a sixth of its step;
 * BENCHMARKS.md). Relu 0 and 1 apply the affine map and recompute the backward's mask through
 * the same kernel table (planes: bn_plane_*), so the mask is the one the forward applied. */

typedef struct BnJob {
	const float *x, *dy, *gamma, *beta;
	const float *id;          /* relu 2: the residual added before the ReLU (may alias y) */
	float *y, *dx, *mean, *rstd;
	float *did;               /* relu 2: id's gradient, or NULL */
	float *running_mean, *running_var;
	double *acc0, *acc1;      /* (C) per-channel sums, each slice written by one thread */
	float *scratch;           /* (3C) per-channel coefficients of the (N,C) case */
	float *dg, *db;
	int N, C, S, batch_stats;
	int relu;                 /* 1: fused ReLU after the affine map; 2: ReLU of it plus id */
	int dx_fresh;             /* dx is a new buffer: store instead of adding */
	int did_fresh;            /* did is a new buffer: it ends up holding the masked dy */
	int dx_in_dy;             /* dx is dy's own buffer (planes only): dx[k] replaces dy[k] */
	float momentum, eps;
	double M;                 /* values per channel over the whole batch: N*S, times the ranks */
	int stats_given;          /* forward: mean, rstd already set (distributed statistics) */
	int phase;                /* backward: 0 all; 1 the sums, dgamma, dbeta; 2 dx from the sums */
	int pass;                 /* bn_dist_sums_part: 0 sum of x, 1 sum of squared deviations */
} BnJob;

/* Statistics of channels [c0, c1) over N planes of S (S > 1), into acc0 (mean) and acc1 (sum of
 * squared deviations). S >= 16: each plane's mean and squared deviations in one pass of float
 * sums of d = x - pivot and d * d (the shifted-data method: the pivot is the mean of the
 * channel's earlier planes, so the sums stay of the order of the deviations and s2 - s1^2/S
 * loses nothing to cancellation), merged across planes in double (Chan et al.). S < 16: two
 * passes in double over the channel. Images are the outer loop and a thread's channels the
 * inner one, so memory is read in one forward sweep per pass (a channel-major walk reads N short
 * planes C*S floats apart); each channel still takes its planes in image order, so the sums do
 * not depend on how channels are split across threads. */
static void bn_plane_stats(const BnJob *j, size_t c0, size_t c1)
{
	const int N = j->N, C = j->C, S = j->S;
	double *cm = j->acc0, *m2 = j->acc1;
	for (size_t c = c0; c < c1; c++)
		cm[c] = m2[c] = 0.0;
	if (S >= 16) {
		const SimdKernels *sk = simd();
		for (int i = 0; i < N; i++) {
			const double na = (double)i * S;
			for (size_t c = c0; c < c1; c++) {
				const float *xp = j->x + ((size_t)i * C + c) * S;
				/* shift: the mean of the channel's earlier planes (the first plane: its
				 * first value), near this plane's mean unless images differ wildly */
				const float pivot = i ? (float)cm[c] : xp[0];
				float s1, s2;
				sk->bn_plane_stats(xp, (size_t)S, pivot, &s1, &s2);
				const double pm = (double)pivot + (double)s1 / S;
				const double pq = (double)s2 - (double)s1 * s1 / S;
				const double delta = pm - cm[c];
				cm[c] += delta * S / (na + S);
				m2[c] += pq + delta * delta * na * S / (na + S);
			}
		}
		return;
	}
	const double M = (double)N * S;
	for (int i = 0; i < N; i++)
		for (size_t c = c0; c < c1; c++)
			cm[c] += sum_floats(j->x + ((size_t)i * C + c) * S, (size_t)S);
	for (size_t c = c0; c < c1; c++)
		cm[c] /= M;
	for (int i = 0; i < N; i++)
		for (size_t c = c0; c < c1; c++) {
			const float *xp = j->x + ((size_t)i * C + c) * S;
			const double mu = cm[c];
			double ss = m2[c];
			for (int k = 0; k < S; k++) {
				const double d = (double)xp[k] - mu;
				ss += d * d;
			}
			m2[c] = ss;
		}
}

/* Mean and rstd of channel c from its statistics; running statistics updated. */
static void bn_set_stats(const BnJob *j, int c, double dm, double var)
{
	const double M = j->M;
	const float m = (float)dm, mo = j->momentum;
	j->mean[c] = m;
	j->rstd[c] = (float)(1.0 / sqrt(var + j->eps));
	if (j->running_mean)
		j->running_mean[c] = (1.0f - mo) * j->running_mean[c] + mo * m;
	if (j->running_var)
		j->running_var[c] = (1.0f - mo) * j->running_var[c] +
		                    mo * (float)(var * M / (M - 1.0));
}

/* The forward's per-channel scale and shift of the ReLU test. */
static inline float bn_scale(const BnJob *j, size_t c)
{
	return j->rstd[c] * (j->gamma ? j->gamma[c] : 1.0f);
}

static inline float bn_shift(const BnJob *j, size_t c)
{
	return j->beta ? j->beta[c] : 0.0f;
}

// channels [c0, c1): statistics (training) or running statistics (eval), then y
static void bn_forward_part(void *arg, size_t c0, size_t c1, int tid)
{
	const BnJob *j = arg;
	const int N = j->N, C = j->C, S = j->S;
	(void)tid;
	if (j->stats_given) {
		/* set by bn_dist_stats */
	} else if (!j->batch_stats) {
		for (size_t c = c0; c < c1; c++) {
			j->mean[c] = j->running_mean[c];
			j->rstd[c] = 1.0f / sqrtf(j->running_var[c] + j->eps);
		}
	} else if (S > 1) {
		bn_plane_stats(j, c0, c1);
		for (size_t c = c0; c < c1; c++)
			bn_set_stats(j, (int)c, j->acc0[c], j->acc1[c] / ((double)N * S));
	} else {
		/* (N,C): the same two passes in double as bn_plane_stats, row by row */
		const SimdKernels *k = simd();
		double *sum = j->acc0, *ss = j->acc1;
		const size_t nc = c1 - c0;
		for (size_t c = c0; c < c1; c++)
			sum[c] = ss[c] = 0.0;
		for (int i = 0; i < N; i++)
			k->bn_row_sum(j->x + (size_t)i * C + c0, sum + c0, nc);
		for (size_t c = c0; c < c1; c++)
			sum[c] /= (double)N;
		for (int i = 0; i < N; i++)
			k->bn_row_sqdev(j->x + (size_t)i * C + c0, sum + c0, ss + c0, nc);
		for (size_t c = c0; c < c1; c++)
			bn_set_stats(j, (int)c, sum[c], ss[c] / (double)N);
	}
	/* (x - mean) first: folding the mean into the shift loses digits when |mean| >> std */
	if (S > 1) {
		for (int i = 0; i < N; i++)
			for (size_t c = c0; c < c1; c++) {
				const float a = j->rstd[c] * (j->gamma ? j->gamma[c] : 1.0f);
				const float m = j->mean[c], b = j->beta ? j->beta[c] : 0.0f;
				const size_t off = ((size_t)i * C + c) * S;
				const float *restrict xp = j->x + off;
				if (j->relu == 2) {   /* y may be id's own buffer: element k read, then written */
					const float *idp = j->id + off;
					float *yp = j->y + off;
					for (int k = 0; k < S; k++) {
						const float v = (xp[k] - m) * a + b + idp[k];
						yp[k] = v > 0.0f ? v : 0.0f;
					}
					continue;
				}
				/* the backward recomputes the ReLU mask through the same kernel table */
				const SimdBn p = { .m = m, .a = a, .b = b };
				simd()->bn_plane_forward(xp, j->y + off, (size_t)S, &p, j->relu);
			}
		return;
	}
	float *a = j->scratch, *sh = a + C;   /* per-channel scale and shift */
	for (size_t c = c0; c < c1; c++) {
		a[c] = bn_scale(j, c);
		sh[c] = bn_shift(j, c);
	}
	if (j->relu == 2) {   /* as the plane case: y may be id's buffer */
		for (int i = 0; i < N; i++) {
			const float *xr = j->x + (size_t)i * C, *idr = j->id + (size_t)i * C;
			float *yr = j->y + (size_t)i * C;
			for (size_t c = c0; c < c1; c++) {
				const float v = (xr[c] - j->mean[c]) * a[c] + bn_shift(j, c) + idr[c];
				yr[c] = v > 0.0f ? v : 0.0f;
			}
		}
		return;
	}
	/* the backward recomputes the ReLU mask with the same kernel table's expression */
	const SimdKernels *k = simd();
	for (int i = 0; i < N; i++)
		k->bn_row_forward(j->x + (size_t)i * C + c0, j->mean + c0, a + c0, sh + c0,
		                  j->y + (size_t)i * C + c0, c1 - c0, j->relu);
}

/* dy masked by the fused ReLU: the gradient reaching the batchnorm (as an unfused relu would
 * pass it: dy * 1 where the forward's pre-activation was > 0, dy * 0 elsewhere). relu 1: the
 * pre-activation v = (x - m) * a + b is bn_forward_part's expression on the same floats, so the
 * mask is the one the forward applied. relu 2: v + id is not recomputable once y has overwritten
 * id, so the mask is read from y (y > 0 exactly where v + id > 0). */
#define BN_DY(j, dyp, xp, yp, k, m, a, b)                                                    \
	((j)->relu == 1 ? (dyp)[k] * (((xp)[k] - (m)) * (a) + (b) > 0.0f ? 1.0f : 0.0f)         \
	 : (j)->relu == 2 ? (dyp)[k] * ((yp)[k] > 0.0f ? 1.0f : 0.0f) : (dyp)[k])

// channels [c0, c1) of the backward
static void bn_backward_part(void *arg, size_t c0, size_t c1, int tid)
{
	const BnJob *j = arg;
	const int N = j->N, C = j->C, S = j->S;
	const double M = j->M;
	(void)tid;
	double *sdy = j->acc0, *sdyx = j->acc1;   /* sum dy, sum dy * (x - mean) */
	/* relu 2 with a new id gradient: the sums pass leaves the masked dy there, and the dx pass
	 * reads it instead of dy and y (one stream fewer) */
	const float *dmask = j->relu == 2 && j->did && j->did_fresh ? j->did : NULL;
	if (j->phase == 2) {
		/* the sums are given (all ranks'); the (N,C) case below wants its scale and shift */
		float *sa = j->scratch, *sb = sa + C;
		for (size_t c = c0; c < c1; c++) {
			sa[c] = bn_scale(j, c);
			sb[c] = bn_shift(j, c);
		}
	} else if (S > 1) {   /* images outer, as bn_plane_stats: each channel's planes in image order */
		for (size_t c = c0; c < c1; c++)
			sdy[c] = sdyx[c] = 0.0;
		for (int i = 0; i < N; i++)
			for (size_t c = c0; c < c1; c++) {
				const float m = j->mean[c], sa = bn_scale(j, c), sb = bn_shift(j, c);
				const size_t off = ((size_t)i * C + c) * S;
				const float *xp = j->x + off, *dyp = j->dy + off;
				const float *yp = j->relu == 2 ? j->y + off : NULL;
				float *gp = j->did ? j->did + off : NULL;
				float a = 0.0f, bsum = 0.0f;
				if (j->relu != 2) {   /* relu 0, 1: no id, the mask from x */
					const SimdBn p = { .m = m, .a = sa, .b = sb };
					simd()->bn_plane_grad_sums(xp, dyp, (size_t)S, &p, j->relu, &a, &bsum);
				} else if (gp && j->did_fresh)
					for (int k = 0; k < S; k++) {
						const float d = BN_DY(j, dyp, xp, yp, k, m, sa, sb);
						gp[k] = d;
						a += d;
						bsum += d * (xp[k] - m);
					}
				else if (gp)
					for (int k = 0; k < S; k++) {
						const float d = BN_DY(j, dyp, xp, yp, k, m, sa, sb);
						gp[k] += d;
						a += d;
						bsum += d * (xp[k] - m);
					}
				else if (j->relu)
					for (int k = 0; k < S; k++) {
						const float d = BN_DY(j, dyp, xp, yp, k, m, sa, sb);
						a += d;
						bsum += d * (xp[k] - m);
					}
				else
					for (int k = 0; k < S; k++) {
						a += dyp[k];
						bsum += dyp[k] * (xp[k] - m);
					}
				sdy[c] += a;
				sdyx[c] += bsum;
			}
	} else {
		for (size_t c = c0; c < c1; c++)
			sdy[c] = sdyx[c] = 0.0;
		float *sa = j->scratch, *sb = sa + C;   /* the forward's scale and shift */
		for (size_t c = c0; c < c1; c++) {
			sa[c] = bn_scale(j, c);
			sb[c] = bn_shift(j, c);
		}
		const SimdKernels *k = simd();
		for (int i = 0; i < N && j->relu != 2; i++) {   /* relu 0, 1: no id, mask from x */
			const size_t off = (size_t)i * C + c0;
			k->bn_row_grad_sums(j->x + off, j->dy + off, j->mean + c0, sa + c0, sb + c0,
			                    sdy + c0, sdyx + c0, c1 - c0, j->relu);
		}
		for (int i = 0; i < N && j->relu == 2; i++) {
			const float *xr = j->x + (size_t)i * C, *dyr = j->dy + (size_t)i * C;
			const float *yr = j->relu == 2 ? j->y + (size_t)i * C : NULL;
			float *gr = j->did ? j->did + (size_t)i * C : NULL;
			const float *m = j->mean;
			for (size_t c = c0; c < c1; c++) {
				const float d = BN_DY(j, dyr, xr, yr, c, m[c], sa[c], sb[c]);
				if (gr)
					gr[c] = j->did_fresh ? d : gr[c] + d;
				sdy[c] += d;
				sdyx[c] += d * (xr[c] - m[c]);
			}
		}
	}
	for (size_t c = c0; c < c1 && j->phase != 2; c++) {
		sdyx[c] *= j->rstd[c];
		if (j->dg)
			j->dg[c] += (float)sdyx[c];
		if (j->db)
			j->db[c] += (float)sdy[c];
	}
	if (!j->dx || j->phase == 1)
		return;
	/* batch stats: dx = gamma*rstd*(dy - mean(dy) - xhat*mean(dy*xhat)); eval: gamma*rstd*dy */
	if (S > 1) {
		for (int i = 0; i < N; i++)
			for (size_t c = c0; c < c1; c++) {
				const float m = j->mean[c], s = j->rstd[c];
				const float sa = bn_scale(j, c), sb = bn_shift(j, c);
				const float gs = (j->gamma ? j->gamma[c] : 1.0f) * s;
				const float mdy = j->batch_stats ? (float)(sdy[c] / M) : 0.0f;
				const float mdyx = j->batch_stats ? (float)(sdyx[c] / M) : 0.0f;
				const size_t off = ((size_t)i * C + c) * S;
				const float *restrict xp = j->x + off, *restrict dyp = j->dy + off;
				const float *restrict yp = j->relu == 2 ? j->y + off : NULL;
				float *restrict dxp = j->dx + off;
				if (j->relu != 2) {
					const SimdBn p = { .m = m, .a = sa, .b = sb, .s = s, .mdy = mdy,
					                   .mdyx = mdyx };
					simd()->bn_plane_grad_dx(xp, j->dx_in_dy ? NULL : dyp, j->dx + off,
					                         (size_t)S, &p, j->relu,
					                         j->dx_in_dy ? 2 : j->dx_fresh ? 0 : 1);
				} else if (j->dx_in_dy && !dmask) {   /* dy[k] is read from dx[k], then replaced */
					float *gp = j->dx + off;
					if (j->relu)
						for (int k = 0; k < S; k++)
							gp[k] = gs * (BN_DY(j, gp, xp, yp, k, m, sa, sb) - mdy -
							              (xp[k] - m) * s * mdyx);
					else
						for (int k = 0; k < S; k++)
							gp[k] = gs * (gp[k] - mdy - (xp[k] - m) * s * mdyx);
				} else if (dmask) {
					const float *restrict dm = dmask + off;
					if (j->dx_fresh)
						for (int k = 0; k < S; k++)
							dxp[k] = gs * (dm[k] - mdy - (xp[k] - m) * s * mdyx);
					else
						for (int k = 0; k < S; k++)
							dxp[k] += gs * (dm[k] - mdy - (xp[k] - m) * s * mdyx);
				} else if (j->relu && j->dx_fresh)
					for (int k = 0; k < S; k++)
						dxp[k] = gs * (BN_DY(j, dyp, xp, yp, k, m, sa, sb) - mdy -
						               (xp[k] - m) * s * mdyx);
				else if (j->relu)
					for (int k = 0; k < S; k++)
						dxp[k] += gs * (BN_DY(j, dyp, xp, yp, k, m, sa, sb) - mdy -
						                (xp[k] - m) * s * mdyx);
				else if (j->dx_fresh)
					for (int k = 0; k < S; k++)
						dxp[k] = gs * (dyp[k] - mdy - (xp[k] - m) * s * mdyx);
				else
					for (int k = 0; k < S; k++)
						dxp[k] += gs * (dyp[k] - mdy - (xp[k] - m) * s * mdyx);
			}
		return;
	}
	/* per-channel coefficients first, then one pass over the rows (the same float arithmetic
	 * as the plane case) */
	float *sa = j->scratch, *sb = sa + C, *mdyv = sb + C, *mdyxv = mdyv + C;
	for (size_t c = c0; c < c1; c++) {   /* sa, sb: set by the sums above */
		mdyv[c] = j->batch_stats ? (float)(sdy[c] / M) : 0.0f;
		mdyxv[c] = j->batch_stats ? (float)(sdyx[c] / M) : 0.0f;
	}
	if (j->relu != 2) {
		const SimdKernels *k = simd();
		for (int i = 0; i < N; i++) {
			const size_t off = (size_t)i * C + c0;
			k->bn_row_grad_dx(j->x + off, j->dy + off, j->mean + c0, sa + c0, sb + c0,
			                  j->rstd + c0, mdyv + c0, mdyxv + c0, j->dx + off, c1 - c0,
			                  j->relu, j->dx_fresh);
		}
		return;
	}
	for (int i = 0; i < N; i++) {
		const float *restrict xr = j->x + (size_t)i * C, *restrict dyr = j->dy + (size_t)i * C;
		const float *restrict yr = j->relu == 2 ? j->y + (size_t)i * C : NULL;
		const float *restrict m = j->mean, *restrict s = j->rstd;
		float *restrict dxr = j->dx + (size_t)i * C;
		if (dmask)   /* the masked dy the sums left in did */
			dyr = dmask + (size_t)i * C;
		/* gs = gamma * rstd = the forward's scale */
		if (dmask && j->dx_fresh)
			for (size_t c = c0; c < c1; c++)
				dxr[c] = sa[c] * (dyr[c] - mdyv[c] - (xr[c] - m[c]) * s[c] * mdyxv[c]);
		else if (dmask)
			for (size_t c = c0; c < c1; c++)
				dxr[c] += sa[c] * (dyr[c] - mdyv[c] - (xr[c] - m[c]) * s[c] * mdyxv[c]);
		else if (j->dx_fresh)
			for (size_t c = c0; c < c1; c++)
				dxr[c] = sa[c] * (BN_DY(j, dyr, xr, yr, c, m[c], sa[c], sb[c]) - mdyv[c] -
				                  (xr[c] - m[c]) * s[c] * mdyxv[c]);
		else
			for (size_t c = c0; c < c1; c++)
				dxr[c] += sa[c] * (BN_DY(j, dyr, xr, yr, c, m[c], sa[c], sb[c]) - mdyv[c] -
				                   (xr[c] - m[c]) * s[c] * mdyxv[c]);
	}
}

static void batchnorm_backward(Ctx *ctx, Node *n)
{
	Tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
	const int C = n->i[1];
	BnJob j = { .x = x->data, .dy = n->out->grad, .gamma = gamma ? gamma->data : NULL,
	            .beta = beta ? beta->data : NULL, .dg = tape_grad_in(ctx, gamma),
	            .db = tape_grad_in(ctx, beta), .mean = n->saved, .rstd = n->saved2,
	            .N = n->i[0], .C = C, .S = n->i[2], .batch_stats = n->i[3], .relu = n->i[4] };
	/* Planes: x takes over dy's buffer when it has no gradient yet (every element of dx depends
	 * on dy at the same index only, and dy is dead afterwards): one gradient buffer fewer in
	 * flight. */
	if (j.S > 1 && tape_grad_pass(ctx, x, n->out)) {
		j.dx = x->grad;
		j.dx_fresh = j.dx_in_dy = 1;
	} else {
		j.dx = tape_grad_in_fresh(ctx, x, &j.dx_fresh);
	}
	if (j.relu == 2) {
		j.y = n->out->data;
		j.did = tape_grad_in_fresh(ctx, n->in[3], &j.did_fresh);
	}
	j.acc0 = ctx_alloc(ctx, 2 * (size_t)C * sizeof(double));
	j.acc1 = j.acc0 + C;
	j.scratch = arena_floats(ctx, 4 * (size_t)C);
	size_t per_c = (size_t)j.N * j.S, grain = per_c >= 32768 ? 1 : (32768 + per_c - 1) / per_c;
	j.M = (double)per_c * n->i[5];
	if (n->i[5] == 1 || !j.batch_stats) {
		parallel_for(ctx, (size_t)C, grain, bn_backward_part, &j);
		return;
	}
	/* Distributed: dgamma and dbeta from this rank's sums (dist_allreduce_grads adds the ranks
	 * up), dx from every rank's sums - the mean of dy and of dy * xhat over the global batch. */
	j.phase = 1;
	parallel_for(ctx, (size_t)C, grain, bn_backward_part, &j);
	dist_allreduce_sum_f64(j.acc0, 2 * (size_t)C, "batchnorm gradient sums");
	j.phase = 2;
	parallel_for(ctx, (size_t)C, grain, bn_backward_part, &j);
}

/* Distributed statistics of channels [c0, c1): pass 0 sums x into acc0; pass 1 sums the squared
 * deviations from acc0 (by then the global mean) into acc1. Two passes in double, as the (N,C)
 * case of one process. */
static void bn_dist_sums_part(void *arg, size_t c0, size_t c1, int tid)
{
	const BnJob *j = arg;
	const int N = j->N, C = j->C, S = j->S;
	double *acc = j->pass ? j->acc1 : j->acc0;
	(void)tid;
	for (size_t c = c0; c < c1; c++)
		acc[c] = 0.0;
	for (int i = 0; i < N; i++)
		for (size_t c = c0; c < c1; c++) {
			const float *xp = j->x + ((size_t)i * C + c) * S;
			double a = 0.0;
			if (j->pass) {
				const double mu = j->acc0[c];
				for (int k = 0; k < S; k++) {
					const double d = (double)xp[k] - mu;
					a += d * d;
				}
			} else {
				for (int k = 0; k < S; k++)
					a += xp[k];
			}
			acc[c] += a;
		}
}

/* Batch statistics over every rank's shard (ctx_distributed): the sums of x, then of the squared
 * deviations from the global mean, each summed over the ranks; mean, rstd and the running
 * statistics then as one process computes them from the whole batch. */
static void bn_dist_stats(Ctx *ctx, BnJob *j, size_t grain)
{
	const int C = j->C;
	j->pass = 0;
	parallel_for(ctx, (size_t)C, grain, bn_dist_sums_part, j);
	dist_allreduce_sum_f64(j->acc0, (size_t)C, "batchnorm statistics");
	for (int c = 0; c < C; c++)
		j->acc0[c] /= j->M;
	j->pass = 1;
	parallel_for(ctx, (size_t)C, grain, bn_dist_sums_part, j);
	dist_allreduce_sum_f64(j->acc1, (size_t)C, "batchnorm statistics");
	for (int c = 0; c < C; c++)
		bn_set_stats(j, c, j->acc0[c], j->acc1[c] / j->M);
	j->stats_given = 1;
}
// x (N,C) or (N,C,H,W), gamma (C) or NULL, beta (C) or NULL, running_mean/var (C) or NULL
static Tensor *batchnorm_impl(Ctx *ctx, Tensor *x, Tensor *gamma, Tensor *beta,
                              float *running_mean, float *running_var, float momentum, float eps,
                              int relu, Tensor *id, int reuse_id)
{
	if (x->ndim != 2 && x->ndim != 4)
		nn_abort("batchnorm", "x must be (N,C) or (N,C,H,W)", x, NULL);
	const int N = x->shape[0], C = x->shape[1];
	const int S = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
	if (gamma && gamma->size != (size_t)C)
		nn_abort("batchnorm", "gamma must have C entries", x, gamma);
	if (beta && beta->size != (size_t)C)
		nn_abort("batchnorm", "beta must have C entries", x, beta);
	const int batch_stats = ctx_training(ctx);
	const size_t M = (size_t)N * S;
	if (batch_stats && M < 2)
		nn_abort("batchnorm", "training needs more than one value per channel", x, NULL);
	if (!batch_stats && (!running_mean || !running_var))
		nn_abort("batchnorm", "eval mode needs running statistics", x, NULL);

	if (id && (id == x || id->ndim != x->ndim || id->size != x->size ||
	           memcmp(id->shape, x->shape, (size_t)x->ndim * sizeof x->shape[0]) != 0))
		nn_abort("batchnorm_add_relu", "id must have x's shape and be another tensor", x, id);
	Tensor *out = reuse_id ? ctx_wrap(ctx, id->data, x->ndim, x->shape) : ctx_tensor_like(ctx, x);
	BnJob j = { .x = x->data, .y = out->data, .gamma = gamma ? gamma->data : NULL,
	            .id = id ? id->data : NULL,
	            .beta = beta ? beta->data : NULL, .running_mean = running_mean,
	            .running_var = running_var, .N = N, .C = C, .S = S, .batch_stats = batch_stats,
	            .relu = relu, .momentum = momentum, .eps = eps };
	j.mean = arena_floats(ctx, C);
	j.rstd = arena_floats(ctx, C);
	j.scratch = arena_floats(ctx, 2 * (size_t)C);
	if (batch_stats) {
		j.acc0 = ctx_alloc(ctx, 2 * (size_t)C * sizeof(double));
		j.acc1 = j.acc0 + C;
	}
	const int ranks = batch_stats && ctx_distributed(ctx) ? dist_size() : 1;
	j.M = (double)M * ranks;
	size_t grain = M >= 32768 ? 1 : (32768 + M - 1) / M;
	if (ranks > 1)
		bn_dist_stats(ctx, &j, grain);
	parallel_for(ctx, (size_t)C, grain, bn_forward_part, &j);

	Tensor *in[4] = { x, gamma, beta, id };
	if (tape_wants_grad(ctx, in, id ? 4 : 3)) {
		Node *n = tape_record(ctx, OP_BATCHNORM, batchnorm_backward, out, in, id ? 4 : 3);
		n->i[0] = N;
		n->i[1] = C;
		n->i[2] = S;
		n->i[3] = batch_stats;
		n->i[4] = relu;
		n->i[5] = ranks;
		n->f[0] = eps;
		n->saved = j.mean;
		n->saved2 = j.rstd;
	}
	return out;
}

Tensor *op_batchnorm(Ctx *ctx, Tensor *x, Tensor *gamma, Tensor *beta,
                     float *running_mean, float *running_var, float momentum, float eps)
{
	return batchnorm_impl(ctx, x, gamma, beta, running_mean, running_var, momentum, eps, 0, NULL,
	                      0);
}

Tensor *op_batchnorm_relu(Ctx *ctx, Tensor *x, Tensor *gamma, Tensor *beta,
                          float *running_mean, float *running_var, float momentum, float eps)
{
	return batchnorm_impl(ctx, x, gamma, beta, running_mean, running_var, momentum, eps, 1, NULL,
	                      0);
}

Tensor *op_batchnorm_add_relu(Ctx *ctx, Tensor *x, Tensor *gamma, Tensor *beta,
                              float *running_mean, float *running_var, float momentum, float eps,
                              Tensor *id, int reuse_id)
{
	return batchnorm_impl(ctx, x, gamma, beta, running_mean, running_var, momentum, eps, 2, id,
	                      reuse_id);
}

/* ---------------------------------------------------------------------------------------------- */
/* add_relu: y = relu(a + b) for a and b of one shape (a residual block's output), one threaded
 * pass instead of add then relu, and no pre-ReLU tensor. Backward: dy where y > 0 goes to both
 * inputs (stored into a new gradient, added into an existing one). */

#define ADD_RELU_GRAIN 32768   /* floats per chunk at least */

typedef struct AddReluJob {
	const float *a, *b, *y, *dy;
	float *out, *ga, *gb;
	int ga_fresh, gb_fresh;
} AddReluJob;

static void add_relu_part(void *arg, size_t i0, size_t i1, int tid)
{
	const AddReluJob *j = arg;
	const float *restrict a = j->a, *restrict b = j->b;
	float *restrict y = j->out;
	(void)tid;
	for (size_t i = i0; i < i1; i++) {
		const float v = a[i] + b[i];
		y[i] = v > 0.0f ? v : 0.0f;
	}
}

/* g (NULL: not wanted) = or += dy where y > 0 (a product, as relu's backward, so the loop has no
 * branch); one input per loop, so a + a adds twice. */
static void add_relu_grad(const float *restrict y, const float *restrict dy, float *restrict g,
                          int fresh, size_t i0, size_t i1)
{
	if (!g)
		return;
	if (fresh)
		for (size_t i = i0; i < i1; i++)
			g[i] = dy[i] * (y[i] > 0.0f ? 1.0f : 0.0f);
	else
		for (size_t i = i0; i < i1; i++)
			g[i] += dy[i] * (y[i] > 0.0f ? 1.0f : 0.0f);
}

static void add_relu_backward_part(void *arg, size_t i0, size_t i1, int tid)
{
	const AddReluJob *j = arg;
	(void)tid;
	add_relu_grad(j->y, j->dy, j->ga, j->ga_fresh, i0, i1);
	add_relu_grad(j->y, j->dy, j->gb, j->gb_fresh, i0, i1);
}

static void add_relu_backward(Ctx *ctx, Node *n)
{
	AddReluJob j = { .y = n->out->data, .dy = n->out->grad };
	j.ga = tape_grad_in_fresh(ctx, n->in[0], &j.ga_fresh);
	if (n->in[1] == n->in[0]) { /* a + a: the second pass adds into the first's gradient */
		j.gb = j.ga;
		j.gb_fresh = 0;
	} else {
		j.gb = tape_grad_in_fresh(ctx, n->in[1], &j.gb_fresh);
	}
	parallel_for(ctx, n->out->size, ADD_RELU_GRAIN, add_relu_backward_part, &j);
}

Tensor *op_add_relu(Ctx *ctx, Tensor *a, Tensor *b)
{
	if (a->ndim != b->ndim || a->size != b->size)
		nn_abort("add_relu", "a and b must have one shape", a, b);
	for (int d = 0; d < a->ndim; d++)
		if (a->shape[d] != b->shape[d])
			nn_abort("add_relu", "a and b must have one shape", a, b);
	Tensor *out = ctx_tensor(ctx, a->ndim, a->shape);
	AddReluJob j = { .a = a->data, .b = b->data, .out = out->data };
	parallel_for(ctx, out->size, ADD_RELU_GRAIN, add_relu_part, &j);
	Tensor *in[2] = { a, b };
	if (tape_wants_grad(ctx, in, 2))
		tape_record(ctx, OP_ADD, add_relu_backward, out, in, 2);
	return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* dropout: saved is the multiplier per element (0 or 1/(1-p)). */

static void dropout_backward(Ctx *ctx, Node *n)
{
	float *dx = tape_grad_in(ctx, n->in[0]);
	if (!dx)
		return;
	const float *mask = n->saved, *dy = n->out->grad;
	for (size_t i = 0; i < n->out->size; i++)
		dx[i] += dy[i] * mask[i];
}

// x (any) -> same shape. Identity (returns x itself, no copy, no node) outside training or p <= 0.
Tensor *op_dropout(Ctx *ctx, Tensor *x, float p)
{
	if (!(p >= 0.0f && p <= 1.0f))
		nn_abort("dropout", "p must lie in [0, 1]", x, NULL);
	if (!ctx_training(ctx) || p <= 0.0f)
		return x;
	const float keep = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
	Rng *rng = ctx_rng(ctx);
	Tensor *out = ctx_tensor_like(ctx, x);
	float *mask = arena_floats(ctx, x->size);
	for (size_t i = 0; i < x->size; i++) {
		mask[i] = rng_uniform(rng) < p ? 0.0f : keep;
		out->data[i] = x->data[i] * mask[i];
	}
	Tensor *in[1] = { x };
	if (tape_wants_grad(ctx, in, 1)) {
		Node *n = tape_record(ctx, OP_DROPOUT, dropout_backward, out, in, 1);
		n->f[0] = p;
		n->saved = mask;
	}
	return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* im2col / col2im over a chunk of images.
 *
 * The image is (N,C,H,W); the convolution output is (Ho,Wo) per image; the column matrix is
 * (C*kh*kw, N*Ho*Wo), row (c*kh + i)*kw + j, column (n*Ho + oh)*Wo + ow, which matches a weight
 * (O, C, kh, kw) read as an (O, C*kh*kw) matrix.
 *
 * The batch is lowered in chunks of images (conv_chunk): each chunk's column block is large enough
 * for an efficient sgemm (thousands of columns) yet stays in the last-level cache, so im2col,
 * sgemm, the reorder and col2im work on cached memory instead of streaming a column matrix of the
 * whole batch (115 MB for 512 images of 32x14x14 under a 3x3 kernel) through DRAM twice. Backward
 * recomputes a chunk's columns rather than keeping them: cheaper than the memory traffic. */

typedef struct ConvGeom {
	int N, C, H, W;   /* the image side (N = images in this chunk) */
	int kh, kw, stride, pad;
	int Ho, Wo;       /* the column side */
} ConvGeom;

/* Images per chunk for K column rows of Ho*Wo columns per image. */
static int conv_chunk(int N, size_t HoWo, size_t K)
{
	size_t cols = ((size_t)6 << 20) / (K * sizeof(float)); /* ~6 MB of columns */
	if (cols < 2048)
		cols = 2048;
	if (cols > 16384)
		cols = 16384;
	size_t nb = cols / HoWo;
	if (nb < 1)
		nb = 1;
	return nb < (size_t)N ? (int)nb : N;
}

/* Output columns [lo, hi) whose input column ow*stride - pad + kj lies inside [0, W). */
static void conv_valid_range(const ConvGeom *g, int kj, int *lo, int *hi)
{
	const int s = g->stride, a = g->pad - kj;
	int l = a > 0 ? (a + s - 1) / s : 0;
	const int num = g->W - 1 + a;
	int h = num >= 0 ? num / s + 1 : 0;
	if (h > g->Wo)
		h = g->Wo;
	if (l > h)
		l = h;
	*lo = l;
	*hi = h;
}

/* dst[i] = src[i*s], i < n; strides 1 and 2 spelled out so the compiler vectorises them. */
static inline void gather_row(float *restrict dst, const float *restrict src, int n, int s)
{
	if (s == 1)
		for (int i = 0; i < n; i++)
			dst[i] = src[i];
	else if (s == 2)
		for (int i = 0; i < n; i++)
			dst[i] = src[2 * i];
	else
		for (int i = 0; i < n; i++)
			dst[i] = src[i * s];
}

/* dst[i*s] += src[i], i < n */
static inline void scatter_add_row(float *restrict dst, const float *restrict src, int n, int s)
{
	if (s == 1)
		for (int i = 0; i < n; i++)
			dst[i] += src[i];
	else if (s == 2)
		for (int i = 0; i < n; i++)
			dst[2 * i] += src[i];
	else
		for (int i = 0; i < n; i++)
			dst[i * s] += src[i];
}

/* Output rows [lo, hi) whose input row oh*stride - pad + ki lies inside [0, H). */
static void conv_valid_rows(const ConvGeom *g, int ki, int *lo, int *hi)
{
	const int s = g->stride, a = g->pad - ki;
	int l = a > 0 ? (a + s - 1) / s : 0;
	const int num = g->H - 1 + a;
	int h = num >= 0 ? num / s + 1 : 0;
	if (h > g->Ho)
		h = g->Ho;
	if (l > h)
		l = h;
	*lo = l;
	*hi = h;
}

/* One tap of one image: dst (Ho,Wo) = the input plane sampled at (oh*s + ki - pad,
 * ow*s + kj - pad), zero outside. Rows and columns out of range are computed once, so the inner
 * loop is a plain (vectorisable) copy for strides 1 and 2. */
static void im2col_plane(const ConvGeom *g, const float *restrict plane, float *restrict dst,
                         int ki, int kj, int r0, int r1, int c0, int c1)
{
	const int Wo = g->Wo, s = g->stride, n = c1 - c0;
	if (r0 >= r1) {
		memset(dst, 0, (size_t)g->Ho * Wo * sizeof(float));
		return;
	}
	if (r0 > 0)
		memset(dst, 0, (size_t)r0 * Wo * sizeof(float));
	float *d = dst + (size_t)r0 * Wo;
	if (s == 1 && Wo == g->W) {
		/* Stride 1, same width: rows r0..r1 are one shifted copy of the plane (a column
		 * outside [0, W) reads the neighbouring row or past the plane's ends: zeroed after). */
		const ptrdiff_t delta = kj - g->pad, base = (ptrdiff_t)(r0 + ki - g->pad) * Wo + delta;
		const ptrdiff_t L = (ptrdiff_t)(r1 - r0) * Wo, HW = (ptrdiff_t)g->H * g->W;
		const ptrdiff_t lo = base < 0 ? -base : 0, hi = HW - base < L ? HW - base : L;
		memcpy(d + lo, plane + base + lo, (size_t)(hi - lo) * sizeof(float));
		for (ptrdiff_t i = 0; i < lo; i++)
			d[i] = 0.0f;
		for (ptrdiff_t i = hi; i < L; i++)
			d[i] = 0.0f;
		if (c0 > 0 || c1 < Wo)
			for (int oh = r0; oh < r1; oh++, d += Wo) {
				for (int i = 0; i < c0; i++)
					d[i] = 0.0f;
				for (int i = c1; i < Wo; i++)
					d[i] = 0.0f;
			}
		if (r1 < g->Ho)
			memset(dst + (size_t)r1 * Wo, 0, (size_t)(g->Ho - r1) * Wo * sizeof(float));
		return;
	}
	const float *src = plane + (ptrdiff_t)(r0 * s + ki - g->pad) * g->W + (c0 * s + kj - g->pad);
	const ptrdiff_t sstep = (ptrdiff_t)s * g->W;
	if (c0 == 0 && c1 == Wo && s == 1) {
		for (int oh = r0; oh < r1; oh++, d += Wo, src += sstep)
			for (int i = 0; i < Wo; i++)
				d[i] = src[i];
	} else if (c0 == 0 && c1 == Wo && s == 2) {
		for (int oh = r0; oh < r1; oh++, d += Wo, src += sstep)
			for (int i = 0; i < Wo; i++)
				d[i] = src[2 * i];
	} else {
		for (int oh = r0; oh < r1; oh++, d += Wo, src += sstep) {
			for (int i = 0; i < c0; i++)
				d[i] = 0.0f;
			gather_row(d + c0, src, n, s);
			for (int i = c1; i < Wo; i++)
				d[i] = 0.0f;
		}
	}
	if (r1 < g->Ho)
		memset(dst + (size_t)r1 * Wo, 0, (size_t)(g->Ho - r1) * Wo * sizeof(float));
}

/* Work items below this many floats are not worth waking a thread for. */
#define CONV_GRAIN_FLOATS 32768

static size_t conv_grain(size_t floats_per_item)
{
	return floats_per_item >= CONV_GRAIN_FLOATS ? 1 :
	       (CONV_GRAIN_FLOATS + floats_per_item - 1) / floats_per_item;
}

typedef struct ColJob {
	const ConvGeom *g;
	const float *img;
	float *col;
	const float *bias;   /* rns_to_nrs only */
	int accumulate;      /* rns_to_nrs; col2im: 0 = img is uninitialised, zero it first */
	int R;               /* rows per image (reorders) */
	size_t S;            /* floats per row (reorders) */
	size_t row0;         /* im2col: col holds rows [row0, ...) only */
} ColJob;

/* Column rows [r_begin, r_end) (row = (c*kh + ki)*kw + kj) of im2col. */
static void im2col_part(void *arg, size_t r_begin, size_t r_end, int tid)
{
	const ColJob *j = arg;
	const ConvGeom *g = j->g;
	const size_t HoWo = (size_t)g->Ho * g->Wo, P = (size_t)g->N * HoWo;
	const size_t HW = (size_t)g->H * g->W;
	(void)tid;
	for (size_t r = r_begin; r < r_end; r++) {
		const int c = (int)(r / ((size_t)g->kh * g->kw)), k = (int)(r % ((size_t)g->kh * g->kw));
		const int ki = k / g->kw, kj = k % g->kw;
		int r0, r1, c0, c1;
		conv_valid_rows(g, ki, &r0, &r1);
		conv_valid_range(g, kj, &c0, &c1);
		float *row = j->col + (r - j->row0) * P;
		if (c0 == c1) {
			memset(row, 0, P * sizeof(float));
			continue;
		}
		for (int n = 0; n < g->N; n++)
			im2col_plane(g, j->img + ((size_t)n * g->C + c) * HW, row + (size_t)n * HoWo,
			             ki, kj, r0, r1, c0, c1);
	}
}

// img (N,C,H,W) -> col (C*kh*kw, N*Ho*Wo), overwritten; rows split across the threads
static void im2col(Ctx *ctx, const ConvGeom *g, const float *img, float *col)
{
	const size_t rows = (size_t)g->C * g->kh * g->kw, P = (size_t)g->N * g->Ho * g->Wo;
	ColJob j = { .g = g, .img = img, .col = col };
	parallel_for(ctx, rows, conv_grain(P), im2col_part, &j);
}

/* Channels [c_begin, c_end) of col2im_add: a channel's kh*kw column rows all add into that
 * channel's planes, so the split is by channel. */
static void col2im_part(void *arg, size_t c_begin, size_t c_end, int tid)
{
	const ColJob *j = arg;
	const ConvGeom *g = j->g;
	const float *col = j->col;
	float *img = (float *)j->img;
	const size_t HoWo = (size_t)g->Ho * g->Wo, P = (size_t)g->N * HoWo;
	const size_t HW = (size_t)g->H * g->W;
	const int Wo = g->Wo, s = g->stride;
	const ptrdiff_t sstep = (ptrdiff_t)s * g->W;
	(void)tid;
	if (!j->accumulate)
		for (int i = 0; i < g->N; i++)
			memset(img + ((size_t)i * g->C + c_begin) * HW, 0,
			       (c_end - c_begin) * HW * sizeof(float));
	for (int c = (int)c_begin; c < (int)c_end; c++)
		for (int ki = 0; ki < g->kh; ki++) {
			int r0, r1;
			conv_valid_rows(g, ki, &r0, &r1);
			for (int kj = 0; kj < g->kw; kj++) {
				const float *row = col + ((size_t)(c * g->kh + ki) * g->kw + kj) * P;
				int c0, c1;
				conv_valid_range(g, kj, &c0, &c1);
				if (c0 == c1 || r0 == r1)
					continue;
				const int n = c1 - c0;
				const ptrdiff_t off = (ptrdiff_t)(r0 * s + ki - g->pad) * g->W + (c0 * s + kj - g->pad);
				for (int i = 0; i < g->N; i++) {
					float *dst = img + ((size_t)i * g->C + c) * HW + off;
					const float *src = row + (size_t)i * HoWo + (size_t)r0 * Wo + c0;
					if (s == 1)
						for (int oh = r0; oh < r1; oh++, dst += sstep, src += Wo)
							scatter_add_row(dst, src, n, 1);
					else if (s == 2)
						for (int oh = r0; oh < r1; oh++, dst += sstep, src += Wo)
							scatter_add_row(dst, src, n, 2);
					else
						for (int oh = r0; oh < r1; oh++, dst += sstep, src += Wo)
							scatter_add_row(dst, src, n, s);
				}
			}
		}
}

// col (C*kh*kw, N*Ho*Wo) -> img (N,C,H,W), accumulated (+=); the adjoint of im2col. With
// accumulate 0, img's old contents are ignored (each chunk zeroes its channels first).
static void col2im_add(Ctx *ctx, const ConvGeom *g, const float *col, float *img, int accumulate)
{
	const size_t per_c = (size_t)g->kh * g->kw * g->N * g->Ho * g->Wo;
	ColJob j = { .g = g, .img = img, .col = (float *)col, .accumulate = accumulate };
	parallel_for(ctx, (size_t)g->C, conv_grain(per_c), col2im_part, &j);
}

/* The reorders below split by image n (each image's rows are written by one chunk); ColJob's img
 * is the (N,R,S) side, col the (R,N*S) side, g->N the images. */
static void nrs_to_rns_part(void *arg, size_t n_begin, size_t n_end, int tid)
{
	const ColJob *j = arg;
	const int N = j->g->N, R = j->R;
	const size_t S = j->S;
	(void)tid;
	for (size_t n = n_begin; n < n_end; n++)
		for (int r = 0; r < R; r++)
			memcpy(j->col + ((size_t)r * N + n) * S, j->img + (n * R + r) * S, S * sizeof(float));
}

// a (N, R, S) -> b (R, N*S): b[r][n*S + s] = a[n][r][s]
static void nrs_to_rns(Ctx *ctx, const float *a, float *b, int N, int R, size_t S)
{
	ConvGeom g = { .N = N };
	ColJob j = { .g = &g, .img = a, .col = b, .R = R, .S = S };
	parallel_for(ctx, (size_t)N, conv_grain((size_t)R * S), nrs_to_rns_part, &j);
}

static void rns_to_nrs_part(void *arg, size_t n_begin, size_t n_end, int tid)
{
	const ColJob *j = arg;
	const float *b = j->col, *bias = j->bias;
	float *a = (float *)j->img;
	const int N = j->g->N, R = j->R, accumulate = j->accumulate;
	const size_t S = j->S;
	(void)tid;
	for (int n = (int)n_begin; n < (int)n_end; n++)
		for (int r = 0; r < R; r++) {
			const float *src = b + ((size_t)r * N + n) * S;
			float *dst = a + ((size_t)n * R + r) * S;
			const float bv = bias ? bias[r] : 0.0f;
			if (accumulate)
				for (size_t i = 0; i < S; i++)
					dst[i] += src[i];
			else
				for (size_t i = 0; i < S; i++)
					dst[i] = src[i] + bv;
		}
}

// b (R, N*S) -> a (N, R, S), plus bias[r] (or NULL) when set, else accumulated into a
static void rns_to_nrs(Ctx *ctx, const float *b, float *a, int N, int R, size_t S,
                       const float *bias, int accumulate)
{
	ConvGeom g = { .N = N };
	ColJob j = { .g = &g, .img = a, .col = (float *)b, .bias = bias, .accumulate = accumulate,
	             .R = R, .S = S };
	parallel_for(ctx, (size_t)N, conv_grain((size_t)R * S), rns_to_nrs_part, &j);
}

/* ---------------------------------------------------------------------------------------------- */
/* conv2d on large planes, one image at a time (Ho*Wo >= CONV_IMAGE_MIN): each image's product
 * (O, Ho*Wo) is already NCHW, so the forward is im2col of one image into a per-thread buffer
 * (K, Ho*Wo), still in cache, and one single-threaded sgemm straight into y; images are split
 * across the threads. No reorder pass, no product buffer. Backward: dX the same way per image
 * (dcol = W^T . dY_n from y's own layout, then col2im into dx_n); dW split by column blocks of
 * (O, K), each block summing its images' products in image order (im2col of the block's rows of
 * each image), so every element of dW sums its images in one order whatever the thread count
 * (inside each product, up to OpenBLAS's blocking, as parallel_sgemm).
 * Below CONV_IMAGE_MIN a per-image sgemm is too narrow to be efficient and the chunked lowering
 * further down is used. */

#define CONV_IMAGE_MIN 128

typedef struct ConvImgJob {
	ConvGeom g;            /* g.N = 1: one image */
	int O, K;
	const float *x, *w, *bias, *dy;
	float *y, *dx, *dw;
	float *bufs;           /* per thread (K, Ho*Wo) */
	int dx_accumulate;
} ConvImgJob;

static float *conv_img_buf(const ConvImgJob *j, int tid)
{
	return j->bufs + (size_t)tid * j->K * j->g.Ho * j->g.Wo;
}

// images [n0, n1): y_n (O, HoWo) = W (O,K) . im2col(x_n) (K, HoWo) + b
static void conv_img_forward_part(void *arg, size_t n0, size_t n1, int tid)
{
	const ConvImgJob *j = arg;
	const size_t HoWo = (size_t)j->g.Ho * j->g.Wo, CHW = (size_t)j->g.C * j->g.H * j->g.W;
	float *col = conv_img_buf(j, tid);
	for (size_t n = n0; n < n1; n++) {
		ColJob cj = { .g = &j->g, .img = j->x + n * CHW, .col = col };
		im2col_part(&cj, 0, (size_t)j->K, tid);
		float *yn = j->y + n * j->O * HoWo;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->O, (int)HoWo, j->K, 1.0f, j->w,
		            j->K, col, (int)HoWo, 0.0f, yn, (int)HoWo);
		if (j->bias)
			for (int o = 0; o < j->O; o++)
				for (size_t p = 0; p < HoWo; p++)
					yn[(size_t)o * HoWo + p] += j->bias[o];
	}
}

// images [n0, n1): dx_n += col2im(W^T (K,O) . dY_n (O,HoWo))
static void conv_img_dx_part(void *arg, size_t n0, size_t n1, int tid)
{
	const ConvImgJob *j = arg;
	const size_t HoWo = (size_t)j->g.Ho * j->g.Wo, CHW = (size_t)j->g.C * j->g.H * j->g.W;
	float *col = conv_img_buf(j, tid);
	for (size_t n = n0; n < n1; n++) {
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, j->K, (int)HoWo, j->O, 1.0f, j->w,
		            j->K, j->dy + n * j->O * HoWo, (int)HoWo, 0.0f, col, (int)HoWo);
		ColJob cj = { .g = &j->g, .img = j->dx + n * CHW, .col = col,
		              .accumulate = j->dx_accumulate };
		col2im_part(&cj, 0, (size_t)j->g.C, tid);
	}
}

// dW columns [k0, k1): dW[:, k0:k1] += sum over images, in order, of dY_n . im2col(x_n)[k0:k1]^T
static void conv_img_dw_part(void *arg, size_t k0, size_t k1, int tid)
{
	const ConvImgJob *j = arg;
	const size_t HoWo = (size_t)j->g.Ho * j->g.Wo, CHW = (size_t)j->g.C * j->g.H * j->g.W;
	float *col = conv_img_buf(j, tid);
	for (int n = 0; n < j->g.N; n++) {
		ConvGeom g1 = j->g;
		g1.N = 1;
		ColJob cj = { .g = &g1, .img = j->x + n * CHW, .col = col, .row0 = k0 };
		im2col_part(&cj, k0, k1, tid);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->O, (int)(k1 - k0), (int)HoWo,
		            1.0f, j->dy + (size_t)n * j->O * HoWo, (int)HoWo, col, (int)HoWo, 1.0f,
		            j->dw + k0, j->K);
	}
}

// channels [o0, o1): db[o] += the sum of dY over images and plane
static void conv_img_db_part(void *arg, size_t o0, size_t o1, int tid)
{
	const ConvImgJob *j = arg;
	const size_t HoWo = (size_t)j->g.Ho * j->g.Wo;
	(void)tid;
	for (size_t o = o0; o < o1; o++) {
		double acc = 0.0;
		for (int n = 0; n < j->g.N; n++)
			acc += sum_floats(j->dy + ((size_t)n * j->O + o) * HoWo, HoWo);
		j->dw[o] += (float)acc;   /* dw is db here */
	}
}

// with_dx 0: dW and db only (the Winograd path computes dX itself)
static void conv2d_img_backward(Ctx *ctx, Node *n, const ConvGeom *g, int with_dx)
{
	Tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
	const int O = w->shape[0], K = g->C * g->kh * g->kw;
	int dx_fresh = 0;
	ConvImgJob j = { .g = *g, .O = O, .K = K, .x = x->data, .w = w->data, .dy = n->out->grad,
	                 .bufs = n->saved };
	if (!j.bufs || ctx_threads(ctx) > n->i[3])   /* threads added since the forward */
		j.bufs = arena_floats(ctx, (size_t)ctx_threads(ctx) * K * g->Ho * g->Wo);
	j.g.N = 1;
	float *dx = with_dx ? tape_grad_in_fresh(ctx, x, &dx_fresh) : NULL;
	float *dw = tape_grad_in(ctx, w), *db = tape_grad_in(ctx, b);
	if (db) {
		ConvImgJob jb = j;
		jb.g.N = g->N;
		jb.dw = db;
		parallel_for(ctx, (size_t)O, conv_grain((size_t)g->N * g->Ho * g->Wo), conv_img_db_part,
		             &jb);
	}
	if (dw) {
		ConvImgJob jw = j;
		jw.g.N = g->N;
		jw.dw = dw;
		const int t = ctx_threads(ctx);
		size_t grain = ((size_t)K + (size_t)t - 1) / (size_t)t;
		parallel_for(ctx, (size_t)K, grain < 16 ? 16 : grain, conv_img_dw_part, &jw);
	}
	if (dx) {
		j.dx = dx;
		j.dx_accumulate = !dx_fresh;
		parallel_for(ctx, (size_t)g->N, 1, conv_img_dx_part, &j);
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* conv2d, per chunk of nb images: col = im2col(x) (K, nb*Ho*Wo); prod = W . col (O, nb*Ho*Wo);
 * y = reorder(prod) + b. With one image per chunk prod is already NCHW and is written in place.
 * The node keeps both buffers: backward reuses them (no new arena memory). */

static ConvGeom conv2d_geom(const Tensor *x, const Tensor *w, const Tensor *y, int stride, int pad)
{
	return (ConvGeom){
		.N = x->shape[0], .C = x->shape[1], .H = x->shape[2], .W = x->shape[3],
		.kh = w->shape[2], .kw = w->shape[3], .stride = stride, .pad = pad,
		.Ho = y->shape[2], .Wo = y->shape[3],
	};
}

/* The chunked backward: col (K, nb*Ho*Wo) and dyr_buf (O, nb*Ho*Wo) are the forward's buffers
 * (cols_valid: col still holds the last chunk's columns, so chunks run last to first and the first
 * one skips its im2col) or fresh ones (cols_valid 0). with_dx 0: dW and db only. */
static void conv2d_chunks_backward(Ctx *ctx, Node *n, const ConvGeom *g, int nb, float *col,
                                   float *dyr_buf, int cols_valid, int with_dx)
{
	Tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
	const int O = w->shape[0], K = g->C * g->kh * g->kw;
	const size_t HoWo = (size_t)g->Ho * g->Wo, CHW = (size_t)g->C * g->H * g->W;
	const float *dy = n->out->grad;
	int dx_fresh = 0;
	float *dx = with_dx ? tape_grad_in_fresh(ctx, x, &dx_fresh) : NULL;
	float *dw = tape_grad_in(ctx, w), *db = tape_grad_in(ctx, b);
	const int last = g->N > 0 ? (g->N - 1) / nb * nb : 0;

	for (int n0 = last; n0 >= 0 && g->N > 0; n0 -= nb) {
		ConvGeom gc = *g;
		gc.N = g->N - n0 < nb ? g->N - n0 : nb;
		const int P = (int)((size_t)gc.N * HoWo);
		const float *dyc = dy + (size_t)n0 * O * HoWo;
		const float *dyr = dyc; /* (O, P) */
		if (gc.N > 1) {
			nrs_to_rns(ctx, dyc, dyr_buf, gc.N, O, HoWo);
			dyr = dyr_buf;
		}
		if (db)
			for (int o = 0; o < O; o++)
				db[o] += (float)sum_floats(dyr + (size_t)o * P, (size_t)P);
		if (dw) { // dW (O,K) += dY (O,P) . col^T (P,K)
			if (n0 != last || !cols_valid)
				im2col(ctx, &gc, x->data + (size_t)n0 * CHW, col);
			parallel_sgemm(ctx, 0, 1, O, K, P, 1.0f, dyr, P, col, P, 1.0f, dw, K);
		}
		if (dx) { // dcol (K,P) = W^T (K,O) . dY (O,P); dx += col2im(dcol)
			parallel_sgemm(ctx, 1, 0, K, P, O, 1.0f, w->data, K, dyr, P, 0.0f, col, P);
			col2im_add(ctx, &gc, col, dx + (size_t)n0 * CHW, !dx_fresh);
		}
	}
}

/* A convolution whose forward ran through conv_winograd (n->i[2] == -1): dX the same way (the
 * convolution of dY by the flipped filter), dW by conv_winograd_dw where that pays, else (and db
 * always) by the im2col lowerings above, with buffers of their own. */
static void conv2d_winograd_backward(Ctx *ctx, Node *n, const ConvGeom *g)
{
	Tensor *x = n->in[0], *w = n->in[1];
	const int O = w->shape[0], K = g->C * g->kh * g->kw;
	const size_t HoWo = (size_t)g->Ho * g->Wo;
	int dx_fresh;
	float *dx = tape_grad_in_fresh(ctx, x, &dx_fresh);
	if (dx)
		conv_winograd(ctx, n->out->grad, w->data, 1, NULL, dx, g->N, O, g->H, g->W, g->C,
		              !dx_fresh);
	float *dw = tape_grad_in(ctx, w), *db = tape_grad_in(ctx, n->in[2]);
	if (dw && conv_winograd_dw_chosen(g->C, O, g->H, g->W)) {
		conv_winograd_dw(ctx, x->data, n->out->grad, dw, g->N, g->C, g->H, g->W, O);
		if (db) {
			ConvImgJob jb = { .g = *g, .O = O, .dy = n->out->grad, .dw = db };
			parallel_for(ctx, (size_t)O, conv_grain((size_t)g->N * HoWo), conv_img_db_part, &jb);
		}
		return;
	}
	if (!dw && !db)
		return;
	if (HoWo >= CONV_IMAGE_MIN) {
		conv2d_img_backward(ctx, n, g, 0);
		return;
	}
	const int nb = conv_chunk(g->N, HoWo, (size_t)K);
	float *col = arena_floats(ctx, (size_t)K * nb * HoWo);
	float *dyr = nb > 1 ? arena_floats(ctx, (size_t)O * nb * HoWo) : NULL;
	conv2d_chunks_backward(ctx, n, g, nb, col, dyr, 0, 0);
}

static void conv2d_backward(Ctx *ctx, Node *n)
{
	Tensor *x = n->in[0], *w = n->in[1];
	const ConvGeom g = conv2d_geom(x, w, n->out, n->i[0], n->i[1]);
	if (n->i[2] < 0)
		conv2d_winograd_backward(ctx, n, &g);
	else if (n->i[2] == 0)
		conv2d_img_backward(ctx, n, &g, 1);
	else
		conv2d_chunks_backward(ctx, n, &g, n->i[2], n->saved, n->saved2, 1, 1);
}

// x (N,C,H,W), w (O,C,kh,kw), b (O) or NULL -> (N,O,Ho,Wo)
Tensor *op_conv2d(Ctx *ctx, Tensor *x, Tensor *w, Tensor *b, int stride, int pad)
{
	if (x->ndim != 4 || w->ndim != 4)
		nn_abort("conv2d", "x must be (N,C,H,W) and w (O,C,kh,kw)", x, w);
	if (w->shape[1] != x->shape[1])
		nn_abort("conv2d", "channels of x and w differ", x, w);
	if (stride < 1 || pad < 0)
		nn_abort("conv2d", "stride must be >= 1 and pad >= 0", x, w);
	const int O = w->shape[0];
	if (b && b->size != (size_t)O)
		nn_abort("conv2d", "bias must have O entries", w, b);
	const int N = x->shape[0], H = x->shape[2], W = x->shape[3], kh = w->shape[2];
	const int kw = w->shape[3];
	if (H + 2 * pad < kh || W + 2 * pad < kw)
		nn_abort("conv2d", "kernel larger than the padded input", x, w);
	const int Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
	Tensor *out = ctx_tensor(ctx, 4, (int[]){ N, O, Ho, Wo });
	const ConvGeom g = conv2d_geom(x, w, out, stride, pad);
	const int K = g.C * kh * kw;
	const size_t HoWo = (size_t)Ho * Wo, CHW = (size_t)g.C * H * W;
	if (conv_winograd_chosen(g.C, O, H, W, kh, kw, stride, pad)) {
		const ArenaMark scratch = ctx_scratch_mark(ctx);
		conv_winograd(ctx, x->data, w->data, 0, b ? b->data : NULL, out->data, N, g.C, H, W, O, 0);
		ctx_scratch_release(ctx, scratch);
		Tensor *in[3] = { x, w, b };
		if (tape_wants_grad(ctx, in, 3)) {
			Node *n = tape_record(ctx, OP_CONV2D, conv2d_backward, out, in, 3);
			n->i[0] = stride;
			n->i[1] = pad;
			n->i[2] = -1;     /* Winograd; backward allocates its own buffers */
			n->i[3] = 0;
			n->saved = NULL;
		}
		return out;
	}
	if (HoWo >= CONV_IMAGE_MIN && HoWo <= 0x7fffffff) {
		float *bufs = arena_floats(ctx, (size_t)ctx_threads(ctx) * K * HoWo);
		ConvImgJob j = { .g = g, .O = O, .K = K, .x = x->data, .w = w->data,
		                 .bias = b ? b->data : NULL, .y = out->data, .bufs = bufs };
		j.g.N = 1;
		parallel_for(ctx, (size_t)N, 1, conv_img_forward_part, &j);
		Tensor *in[3] = { x, w, b };
		if (tape_wants_grad(ctx, in, 3)) {
			Node *n = tape_record(ctx, OP_CONV2D, conv2d_backward, out, in, 3);
			n->i[0] = stride;
			n->i[1] = pad;
			n->i[2] = 0;      /* the per-image lowering */
			n->i[3] = ctx_threads(ctx);
			n->saved = bufs;  /* per-thread (K, Ho*Wo) scratch */
		}
		return out;
	}
	const int nb = conv_chunk(N, HoWo, (size_t)K);
	if ((size_t)nb * HoWo > 0x7fffffff)
		nn_abort("conv2d", "one image too large for sgemm", x, w);
	float *col = arena_floats(ctx, (size_t)K * nb * HoWo);
	float *prod = nb > 1 ? arena_floats(ctx, (size_t)O * nb * HoWo) : NULL;

	for (int n0 = 0; n0 < N; n0 += nb) {
		ConvGeom gc = g;
		gc.N = N - n0 < nb ? N - n0 : nb;
		const int P = (int)((size_t)gc.N * HoWo);
		float *yc = out->data + (size_t)n0 * O * HoWo;
		im2col(ctx, &gc, x->data + (size_t)n0 * CHW, col);
		float *dst = gc.N > 1 ? prod : yc;
		parallel_sgemm(ctx, 0, 0, O, P, K, 1.0f, w->data, K, col, P, 0.0f, dst, P);
		if (gc.N > 1)
			rns_to_nrs(ctx, prod, yc, gc.N, O, HoWo, b ? b->data : NULL, 0);
		else if (b)
			for (int o = 0; o < O; o++)
				for (size_t p = 0; p < HoWo; p++)
					yc[(size_t)o * HoWo + p] += b->data[o];
	}

	Tensor *in[3] = { x, w, b };
	if (tape_wants_grad(ctx, in, 3)) {
		Node *n = tape_record(ctx, OP_CONV2D, conv2d_backward, out, in, 3);
		n->i[0] = stride;
		n->i[1] = pad;
		n->i[2] = nb;
		n->saved = col;   /* (K, nb*Ho*Wo), holding the last chunk's columns */
		n->saved2 = prod; /* (O, nb*Ho*Wo) scratch, NULL when nb == 1 */
	}
	return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* conv_transpose2d: the adjoint of conv2d. With the output y (N,O,Ho,Wo) as the convolution's
 * image and x (N,C,H,W) as its output, per chunk: xr = reorder(x) (C, nb*H*W);
 * col = W^T . xr (O*kh*kw, nb*H*W); y = col2im(col) + b. Backward reuses both buffers. */

static ConvGeom convt_geom(const Tensor *x, const Tensor *w, const Tensor *y, int stride, int pad)
{
	return (ConvGeom){
		.N = x->shape[0], .C = w->shape[1], .H = y->shape[2], .W = y->shape[3],
		.kh = w->shape[2], .kw = w->shape[3], .stride = stride, .pad = pad,
		.Ho = x->shape[2], .Wo = x->shape[3],
	};
}

static void conv_transpose2d_backward(Ctx *ctx, Node *n)
{
	Tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
	const ConvGeom g = convt_geom(x, w, n->out, n->i[0], n->i[1]);
	const int Cin = x->shape[1], O = g.C, K = O * g.kh * g.kw;
	const size_t HW = (size_t)g.Ho * g.Wo, plane = (size_t)g.H * g.W;
	const float *dy = n->out->grad;
	float *dx = tape_grad_in(ctx, x), *dw = tape_grad_in(ctx, w), *db = tape_grad_in(ctx, b);

	if (db)
		for (int o = 0; o < O; o++) {
			double s = 0.0;
			for (int i = 0; i < g.N; i++)
				s += sum_floats(dy + ((size_t)i * O + o) * plane, plane);
			db[o] += (float)s;
		}
	if (!dw && !dx)
		return;
	/* The forward's buffers; xr_buf still holds the last chunk's reordered x, so chunks run
	 * last to first and the first one skips its reorder. */
	const int nb = n->i[3];
	float *col = n->saved, *xr_buf = n->saved2;
	const int last = g.N > 0 ? (g.N - 1) / nb * nb : 0;

	for (int n0 = last; n0 >= 0 && g.N > 0; n0 -= nb) {
		ConvGeom gc = g;
		gc.N = g.N - n0 < nb ? g.N - n0 : nb;
		const int P = (int)((size_t)gc.N * HW);
		const float *xc = x->data + (size_t)n0 * Cin * HW;
		im2col(ctx, &gc, dy + (size_t)n0 * O * plane, col); /* dcol (K,P) */
		if (dw) { // dW (C,K) += xr (C,P) . dcol^T (P,K)
			const float *xr = xc;
			if (gc.N > 1) {
				if (n0 != last)
					nrs_to_rns(ctx, xc, xr_buf, gc.N, Cin, HW);
				xr = xr_buf;
			}
			parallel_sgemm(ctx, 0, 1, Cin, K, P, 1.0f, xr, P, col, P, 1.0f, dw, K);
		}
		if (!dx)
			continue;
		float *dxc = dx + (size_t)n0 * Cin * HW;
		if (gc.N == 1) { // dx (C, H*W) += W (C,K) . dcol (K,P)
			parallel_sgemm(ctx, 0, 0, Cin, P, K, 1.0f, w->data, K, col, P, 1.0f, dxc, P);
		} else {
			parallel_sgemm(ctx, 0, 0, Cin, P, K, 1.0f, w->data, K, col, P, 0.0f, xr_buf, P);
			rns_to_nrs(ctx, xr_buf, dxc, gc.N, Cin, HW, NULL, 1);
		}
	}
}

// x (N,C,H,W), w (C,O,kh,kw), b (O) or NULL -> (N,O,(H-1)*stride - 2*pad + kh + out_pad, ...)
Tensor *op_conv_transpose2d(Ctx *ctx, Tensor *x, Tensor *w, Tensor *b, int stride, int pad,
                            int out_pad)
{
	if (x->ndim != 4 || w->ndim != 4)
		nn_abort("conv_transpose2d", "x must be (N,C,H,W) and w (C,O,kh,kw)", x, w);
	if (w->shape[0] != x->shape[1])
		nn_abort("conv_transpose2d", "channels of x and w (dim 0) differ", x, w);
	if (stride < 1 || pad < 0 || out_pad < 0 || out_pad >= stride)
		nn_abort("conv_transpose2d", "need stride >= 1, pad >= 0, 0 <= out_pad < stride", x, w);
	const int N = x->shape[0], Cin = x->shape[1], H = x->shape[2], W = x->shape[3];
	const int O = w->shape[1], kh = w->shape[2], kw = w->shape[3];
	if (b && b->size != (size_t)O)
		nn_abort("conv_transpose2d", "bias must have O entries", w, b);
	const int Ho = (H - 1) * stride - 2 * pad + kh + out_pad;
	const int Wo = (W - 1) * stride - 2 * pad + kw + out_pad;
	if (Ho < 1 || Wo < 1)
		nn_abort("conv_transpose2d", "padding leaves an empty output", x, w);
	Tensor *out = ctx_zeros(ctx, 4, (int[]){ N, O, Ho, Wo });
	const ConvGeom g = convt_geom(x, w, out, stride, pad);
	const int K = O * kh * kw;
	const size_t HW = (size_t)H * W, plane = (size_t)Ho * Wo;
	const int nb = conv_chunk(N, HW, (size_t)K);
	if ((size_t)nb * HW > 0x7fffffff)
		nn_abort("conv_transpose2d", "one image too large for sgemm", x, w);
	float *col = arena_floats(ctx, (size_t)K * nb * HW);
	float *xr_buf = nb > 1 ? arena_floats(ctx, (size_t)Cin * nb * HW) : NULL;

	for (int n0 = 0; n0 < N; n0 += nb) {
		ConvGeom gc = g;
		gc.N = N - n0 < nb ? N - n0 : nb;
		const int P = (int)((size_t)gc.N * HW);
		const float *xr = x->data + (size_t)n0 * Cin * HW;
		if (gc.N > 1) {
			nrs_to_rns(ctx, xr, xr_buf, gc.N, Cin, HW);
			xr = xr_buf;
		}
		// col (K,P) = W^T (K,C) . xr (C,P)
		parallel_sgemm(ctx, 1, 0, K, P, Cin, 1.0f, w->data, K, xr, P, 0.0f, col, P);
		col2im_add(ctx, &gc, col, out->data + (size_t)n0 * O * plane, 1);
	}
	if (b)
		for (int i = 0; i < N; i++)
			for (int o = 0; o < O; o++) {
				float *dst = out->data + ((size_t)i * O + o) * plane;
				for (size_t p = 0; p < plane; p++)
					dst[p] += b->data[o];
			}

	Tensor *in[3] = { x, w, b };
	if (tape_wants_grad(ctx, in, 3)) {
		Node *n = tape_record(ctx, OP_CONV_TRANSPOSE2D, conv_transpose2d_backward, out, in, 3);
		n->i[0] = stride;
		n->i[1] = pad;
		n->i[2] = out_pad;
		n->i[3] = nb;
		n->saved = col;     /* (O*kh*kw, nb*H*W) scratch */
		n->saved2 = xr_buf; /* (C, nb*H*W), the last chunk's x reordered; NULL when nb == 1 */
	}
	return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* upsample_nearest */

static void upsample_backward(Ctx *ctx, Node *n)
{
	Tensor *x = n->in[0];
	float *dx = tape_grad_in(ctx, x);
	if (!dx)
		return;
	const int f = n->i[0], H = x->shape[2], W = x->shape[3];
	const int Wo = W * f;
	const size_t planes = (size_t)x->shape[0] * x->shape[1];
	const float *dy = n->out->grad;
	for (size_t p = 0; p < planes; p++) {
		float *d = dx + p * H * W;
		const float *g = dy + p * H * W * f * f;
		for (int oh = 0; oh < H * f; oh++) {
			float *drow = d + (size_t)(oh / f) * W;
			const float *grow = g + (size_t)oh * Wo;
			for (int ow = 0; ow < Wo; ow++)
				drow[ow / f] += grow[ow];
		}
	}
}

// x (N,C,H,W) -> (N,C,H*f,W*f)
Tensor *op_upsample_nearest(Ctx *ctx, Tensor *x, int factor)
{
	if (x->ndim != 4 || factor < 1)
		nn_abort("upsample_nearest", "x must be (N,C,H,W) and factor >= 1", x, NULL);
	const int f = factor, H = x->shape[2], W = x->shape[3];
	Tensor *out = ctx_tensor(ctx, 4, (int[]){ x->shape[0], x->shape[1], H * f, W * f });
	const size_t planes = (size_t)x->shape[0] * x->shape[1];
	const int Wo = W * f;
	for (size_t p = 0; p < planes; p++) {
		const float *s = x->data + p * H * W;
		float *d = out->data + p * H * W * f * f;
		for (int ih = 0; ih < H; ih++) {
			float *row = d + (size_t)ih * f * Wo;
			for (int ow = 0; ow < Wo; ow++)
				row[ow] = s[(size_t)ih * W + ow / f];
			for (int r = 1; r < f; r++)
				memcpy(row + (size_t)r * Wo, row, (size_t)Wo * sizeof(float));
		}
	}
	Tensor *in[1] = { x };
	if (tape_wants_grad(ctx, in, 1)) {
		Node *n = tape_record(ctx, OP_UPSAMPLE_NEAREST, upsample_backward, out, in, 1);
		n->i[0] = f;
	}
	return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* pooling: max keeps the argmax offset within the plane per output (saved), so its backward does
 * not care about padding; max pooling may pad (PyTorch's -inf padding: padded cells never win),
 * average pooling does not. */

static void pool_dims(const char *op, Tensor *x, int k, int stride, int pad, int *Ho, int *Wo)
{
	if (x->ndim != 4 || k < 1 || stride < 1 || pad < 0 || 2 * pad > k)
		nn_abort(op, "x must be (N,C,H,W), k >= 1, stride >= 1 and 0 <= pad <= k/2", x, NULL);
	if (x->shape[2] + 2 * pad < k || x->shape[3] + 2 * pad < k)
		nn_abort(op, "window larger than the input", x, NULL);
	*Ho = (x->shape[2] + 2 * pad - k) / stride + 1;
	*Wo = (x->shape[3] + 2 * pad - k) / stride + 1;
}

static void maxpool_backward(Ctx *ctx, Node *n)
{
	Tensor *x = n->in[0];
	float *dx = tape_grad_in(ctx, x);
	if (!dx)
		return;
	const int *arg = n->saved;
	const size_t planes = (size_t)x->shape[0] * x->shape[1];
	const size_t HW = (size_t)x->shape[2] * x->shape[3];
	const size_t OHW = (size_t)n->out->shape[2] * n->out->shape[3];
	const float *dy = n->out->grad;
	for (size_t p = 0; p < planes; p++)
		for (size_t o = 0; o < OHW; o++)
			dx[p * HW + arg[p * OHW + o]] += dy[p * OHW + o];
}

// x (N,C,H,W) -> (N,C,(H-k)/stride+1,(W-k)/stride+1)
Tensor *op_maxpool2d(Ctx *ctx, Tensor *x, int k, int stride)
{
	return op_maxpool2d_pad(ctx, x, k, stride, 0);
}

// x (N,C,H,W) -> (N,C,(H+2*pad-k)/stride+1,(W+2*pad-k)/stride+1)
Tensor *op_maxpool2d_pad(Ctx *ctx, Tensor *x, int k, int stride, int pad)
{
	int Ho, Wo;
	pool_dims("maxpool2d", x, k, stride, pad, &Ho, &Wo);
	const int H = x->shape[2], W = x->shape[3];
	Tensor *out = ctx_tensor(ctx, 4, (int[]){ x->shape[0], x->shape[1], Ho, Wo });
	const size_t planes = (size_t)x->shape[0] * x->shape[1];
	const size_t OHW = (size_t)Ho * Wo;
	int *arg = ctx_alloc(ctx, out->size * sizeof(int));
	for (size_t p = 0; p < planes; p++) {
		const float *s = x->data + p * H * W;
		float *d = out->data + p * OHW;
		int *a = arg + p * OHW;
		for (int oh = 0; oh < Ho; oh++) {
			/* the window clipped to the image; pad <= k/2 keeps it non-empty */
			const int h0 = oh * stride - pad;
			const int i0 = h0 < 0 ? 0 : h0, i1 = h0 + k > H ? H : h0 + k;
			for (int ow = 0; ow < Wo; ow++) {
				const int w0 = ow * stride - pad;
				const int j0 = w0 < 0 ? 0 : w0, j1 = w0 + k > W ? W : w0 + k;
				int best = i0 * W + j0;
				float bv = s[best];
				for (int i = i0; i < i1; i++)
					for (int j = j0; j < j1; j++)
						if (s[i * W + j] > bv) {
							bv = s[i * W + j];
							best = i * W + j;
						}
				d[oh * Wo + ow] = bv;
				a[oh * Wo + ow] = best;
			}
		}
	}
	Tensor *in[1] = { x };
	if (tape_wants_grad(ctx, in, 1)) {
		Node *n = tape_record(ctx, OP_MAXPOOL2D, maxpool_backward, out, in, 1);
		n->i[0] = k;
		n->i[1] = stride;
		n->i[2] = pad;
		n->saved = arg;
	}
	return out;
}

static void avgpool_backward(Ctx *ctx, Node *n)
{
	Tensor *x = n->in[0];
	float *dx = tape_grad_in(ctx, x);
	if (!dx)
		return;
	const int k = n->i[0], stride = n->i[1];
	const int H = x->shape[2], W = x->shape[3], Ho = n->out->shape[2], Wo = n->out->shape[3];
	const size_t planes = (size_t)x->shape[0] * x->shape[1];
	const float inv = 1.0f / (float)(k * k);
	const float *dy = n->out->grad;
	for (size_t p = 0; p < planes; p++) {
		float *d = dx + p * H * W;
		const float *g = dy + p * Ho * Wo;
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++) {
				const float v = g[oh * Wo + ow] * inv;
				for (int i = 0; i < k; i++) {
					float *r = d + (oh * stride + i) * W + ow * stride;
					for (int j = 0; j < k; j++)
						r[j] += v;
				}
			}
	}
}

// x (N,C,H,W) -> (N,C,(H-k)/stride+1,(W-k)/stride+1)
Tensor *op_avgpool2d(Ctx *ctx, Tensor *x, int k, int stride)
{
	int Ho, Wo;
	pool_dims("avgpool2d", x, k, stride, 0, &Ho, &Wo);
	const int H = x->shape[2], W = x->shape[3];
	Tensor *out = ctx_tensor(ctx, 4, (int[]){ x->shape[0], x->shape[1], Ho, Wo });
	const size_t planes = (size_t)x->shape[0] * x->shape[1];
	const float inv = 1.0f / (float)(k * k);
	for (size_t p = 0; p < planes; p++) {
		const float *s = x->data + p * H * W;
		float *d = out->data + p * Ho * Wo;
		for (int oh = 0; oh < Ho; oh++)
			for (int ow = 0; ow < Wo; ow++) {
				float acc = 0.0f;
				for (int i = 0; i < k; i++) {
					const float *r = s + (oh * stride + i) * W + ow * stride;
					for (int j = 0; j < k; j++)
						acc += r[j];
				}
				d[oh * Wo + ow] = acc * inv;
			}
	}
	Tensor *in[1] = { x };
	if (tape_wants_grad(ctx, in, 1)) {
		Node *n = tape_record(ctx, OP_AVGPOOL2D, avgpool_backward, out, in, 1);
		n->i[0] = k;
		n->i[1] = stride;
	}
	return out;
}

static void global_avgpool_backward(Ctx *ctx, Node *n)
{
	Tensor *x = n->in[0];
	float *dx = tape_grad_in(ctx, x);
	if (!dx)
		return;
	const size_t planes = (size_t)x->shape[0] * x->shape[1];
	const size_t HW = (size_t)x->shape[2] * x->shape[3];
	const float *dy = n->out->grad;
	for (size_t p = 0; p < planes; p++) {
		const float v = dy[p] / (float)HW;
		float *d = dx + p * HW;
		for (size_t i = 0; i < HW; i++)
			d[i] += v;
	}
}

// x (N,C,H,W) -> (N,C)
Tensor *op_global_avgpool(Ctx *ctx, Tensor *x)
{
	if (x->ndim != 4)
		nn_abort("global_avgpool", "x must be (N,C,H,W)", x, NULL);
	Tensor *out = ctx_tensor(ctx, 2, (int[]){ x->shape[0], x->shape[1] });
	const size_t planes = (size_t)x->shape[0] * x->shape[1];
	const size_t HW = (size_t)x->shape[2] * x->shape[3];
	for (size_t p = 0; p < planes; p++) {
		const float *s = x->data + p * HW;
		float acc = 0.0f;
		for (size_t i = 0; i < HW; i++)
			acc += s[i];
		out->data[p] = acc / (float)HW;
	}
	Tensor *in[1] = { x };
	if (tape_wants_grad(ctx, in, 1))
		tape_record(ctx, OP_GLOBAL_AVGPOOL, global_avgpool_backward, out, in, 1);
	return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* causal mask */

static void causal_mask_backward(Ctx *ctx, Node *n)
{
	float *dx = tape_grad_in(ctx, n->in[0]);
	if (!dx)
		return;
	const int T = n->i[0];
	const size_t mats = n->out->size / ((size_t)T * T);
	const float *dy = n->out->grad;
	for (size_t m = 0; m < mats; m++)
		for (int q = 0; q < T; q++) {
			const size_t r = (m * T + q) * T;
			for (int k = 0; k <= q; k++)
				dx[r + k] += dy[r + k];
		}
}

// scores (B,T,T) or (B,H,T,T) -> same shape, -inf where key > query
Tensor *op_causal_mask(Ctx *ctx, Tensor *scores)
{
	if ((scores->ndim != 3 && scores->ndim != 4) || tensor_dim(scores, -1) != tensor_dim(scores, -2))
		nn_abort("causal_mask", "scores must be (B,T,T) or (B,H,T,T)", scores, NULL);
	const int T = tensor_dim(scores, -1);
	Tensor *out = ctx_tensor_like(ctx, scores);
	const size_t mats = scores->size / ((size_t)T * T);
	for (size_t m = 0; m < mats; m++)
		for (int q = 0; q < T; q++) {
			const size_t r = (m * T + q) * T;
			for (int k = 0; k < T; k++)
				out->data[r + k] = k <= q ? scores->data[r + k] : -INFINITY;
		}
	Tensor *in[1] = { scores };
	if (tape_wants_grad(ctx, in, 1)) {
		Node *n = tape_record(ctx, OP_CAUSAL_MASK, causal_mask_backward, out, in, 1);
		n->i[0] = T;
	}
	return out;
}

/* attention: per (b,h), S = q k^T * scale [masked], P = softmax(S), O = P v. saved: P for every
 * (b,h), (B*H, Tq, Tk), zero above the diagonal when causal. k and v may have a different length
 * Tk from q when not causal. The (b,h) pairs are independent (each writes only its own slices)
 * and are split across the context's threads; per-thread scratch (P without a tape, dS in
 * backward) is indexed by tid.
 *
 * q, k, v and O come in one of two layouts: separate (B,H,T,Dh) tensors (op_attention), or the
 * rows of a fused projection, (B*T, 3*H*Dh) in and (B*T, H*Dh) out (op_attention_qkv). The
 * products read and write either in place through sgemm's leading dimensions (AttnLayout says
 * where head (b,h) starts and how far apart its rows are), so no head is copied out or back.
 * Causal attention goes in blocks of ATTN_ROW_BLOCK queries: block [r0,r1) needs keys [0,r1)
 * only, so the products skip most of the masked upper triangle. */

#define ATTN_ROW_BLOCK 32

typedef struct AttnLayout {
	size_t b, h; /* floats from one batch item / head to the next */
	int ld;      /* floats from one time step (row) to the next */
} AttnLayout;

typedef struct AttnJob {
	const float *q, *k, *v, *P, *dO;
	float *Pbuf, *out, *dS, *dq, *dk, *dv;
	AttnLayout lq, lk, lo; /* q and dq; k, v, dk and dv; out and dO */
	int H, Tq, Tk, Dh, causal, rec;
	float scale;
} AttnJob;

static inline size_t attn_at(const AttnLayout *l, int H, size_t m)
{
	return m / (size_t)H * l->b + m % (size_t)H * l->h;
}

static inline int attn_row_end(const AttnJob *j, int r0)
{
	return j->causal && r0 + ATTN_ROW_BLOCK < j->Tq ? r0 + ATTN_ROW_BLOCK : j->Tq;
}

static void attention_backward_part(void *arg, size_t m_begin, size_t m_end, int tid)
{
	const AttnJob *j = arg;
	const int Tq = j->Tq, Tk = j->Tk, Dh = j->Dh;
	const int lq = j->lq.ld, lk = j->lk.ld, lo = j->lo.ld;
	const float scale = j->scale;
	const size_t ps = (size_t)Tq * Tk;
	float *dS = j->dS + (size_t)tid * ps;
	for (size_t m = m_begin; m < m_end; m++) {
		const size_t oq = attn_at(&j->lq, j->H, m), ok = attn_at(&j->lk, j->H, m);
		const float *Pm = j->P + m * ps, *dOm = j->dO + attn_at(&j->lo, j->H, m);
		for (int r0 = 0, r1; r0 < Tq; r0 = r1) {
			r1 = attn_row_end(j, r0);
			const int rows = r1 - r0, kl = j->causal ? r1 : Tk;
			const float *Pb = Pm + (size_t)r0 * Tk, *dOb = dOm + (size_t)r0 * lo;
			float *dSb = dS + (size_t)r0 * Tk;
			if (j->dv) // dv (kl,Dh) += P^T (kl,rows) . dO (rows,Dh)
				cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kl, Dh, rows, 1.0f, Pb, Tk,
				            dOb, lo, 1.0f, j->dv + ok, lk);
			if (!j->dq && !j->dk)
				continue;
			// dP (rows,kl) = dO (rows,Dh) . v^T (Dh,kl)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, kl, Dh, 1.0f, dOb, lo,
			            j->v + ok, lk, 0.0f, dSb, Tk);
			// dS = P * (dP - rowsum(P * dP)) * scale; P is 0 past a causal row's diagonal
			for (int i = 0; i < rows; i++) {
				const float *pr = Pb + (size_t)i * Tk;
				float *dr = dSb + (size_t)i * Tk;
				const int len = j->causal ? r0 + i + 1 : Tk;
				float dot = 0.0f;
				for (int c = 0; c < len; c++)
					dot += pr[c] * dr[c];
				for (int c = 0; c < len; c++)
					dr[c] = pr[c] * (dr[c] - dot) * scale;
				for (int c = len; c < kl; c++)
					dr[c] = 0.0f;
			}
			if (j->dq) // dq (rows,Dh) += dS (rows,kl) . k (kl,Dh)
				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, Dh, kl, 1.0f, dSb,
				            Tk, j->k + ok, lk, 1.0f, j->dq + oq + (size_t)r0 * lq, lq);
			if (j->dk) // dk (kl,Dh) += dS^T (kl,rows) . q (rows,Dh)
				cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kl, Dh, rows, 1.0f, dSb, Tk,
				            j->q + oq + (size_t)r0 * lq, lq, 1.0f, j->dk + ok, lk);
		}
	}
}

/* saved: the forward's AttnJob (P in .P); i[0] = 0 for separate q, k, v, or the fused
 * projection's width per part (k and v sit that far and twice that far after q in its row). */
static void attention_backward(Ctx *ctx, Node *n)
{
	AttnJob j = *(const AttnJob *)n->saved;
	const size_t D = (size_t)n->i[0];
	if (D) {
		float *g = tape_grad_in(ctx, n->in[0]);
		if (!g)
			return;
		j.dq = g, j.dk = g + D, j.dv = g + 2 * D;
	} else {
		j.dq = tape_grad_in(ctx, n->in[0]);
		j.dk = tape_grad_in(ctx, n->in[1]);
		j.dv = tape_grad_in(ctx, n->in[2]);
	}
	const size_t qs = (size_t)j.Tq * j.Dh, ps = (size_t)j.Tq * j.Tk;
	j.dO = n->out->grad;
	j.dS = arena_floats(ctx, ps * (size_t)ctx_threads(ctx));
	parallel_for(ctx, n->out->size / qs, conv_grain(2 * ps + qs), attention_backward_part, &j);
}

static void attention_forward_part(void *arg, size_t m_begin, size_t m_end, int tid)
{
	const AttnJob *j = arg;
	const int Tq = j->Tq, Tk = j->Tk, Dh = j->Dh;
	const int lq = j->lq.ld, lk = j->lk.ld, lo = j->lo.ld;
	const size_t ps = (size_t)Tq * Tk;
	const SimdKernels *sk = simd();
	for (size_t m = m_begin; m < m_end; m++) {
		float *Pm = j->rec ? j->Pbuf + m * ps : j->Pbuf + (size_t)tid * ps;
		const size_t oq = attn_at(&j->lq, j->H, m), ok = attn_at(&j->lk, j->H, m);
		float *Om = j->out + attn_at(&j->lo, j->H, m);
		for (int r0 = 0, r1; r0 < Tq; r0 = r1) {
			r1 = attn_row_end(j, r0);
			const int rows = r1 - r0, kl = j->causal ? r1 : Tk;
			float *Pb = Pm + (size_t)r0 * Tk;
			// S (rows,kl) = scale * q (rows,Dh) . k^T (Dh,kl)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, kl, Dh, j->scale,
			            j->q + oq + (size_t)r0 * lq, lq, j->k + ok, lk, 0.0f, Pb, Tk);
			for (int i = 0; i < rows; i++) {
				float *r = Pb + (size_t)i * Tk;
				const int len = j->causal ? r0 + i + 1 : Tk;
				sk->softmax_row(r, len);
				for (int c = len; c < Tk; c++)
					r[c] = 0.0f;
			}
			// O (rows,Dh) = P (rows,kl) . v (kl,Dh)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, Dh, kl, 1.0f, Pb, Tk,
			            j->v + ok, lk, 0.0f, Om + (size_t)r0 * lo, lo);
		}
	}
}

/* Runs the forward of j (layouts, q/k/v/out and shapes filled in) over BH heads and records the
 * node; D as in attention_backward. */
static void attention_run(Ctx *ctx, AttnJob *j, int BH, Tensor *out, Tensor **in, int nin, int D)
{
	j->scale = 1.0f / sqrtf((float)j->Dh);
	j->rec = tape_wants_grad(ctx, in, nin);
	const size_t qs = (size_t)j->Tq * j->Dh, ps = (size_t)j->Tq * j->Tk;
	j->Pbuf = arena_floats(ctx, (j->rec ? (size_t)BH : (size_t)ctx_threads(ctx)) * ps);
	parallel_for(ctx, (size_t)BH, conv_grain(2 * ps + qs), attention_forward_part, j);
	if (j->rec) {
		Node *n = tape_record(ctx, OP_ATTENTION, attention_backward, out, in, nin);
		AttnJob *saved = ctx_alloc(ctx, sizeof *saved);
		*saved = *j;
		saved->P = j->Pbuf;
		n->i[0] = D;
		n->saved = saved;
	}
}

// q (B,H,Tq,Dh), k (B,H,Tk,Dh), v (B,H,Tk,Dh) -> (B,H,Tq,Dh); causal needs Tq == Tk
Tensor *op_attention(Ctx *ctx, Tensor *q, Tensor *k, Tensor *v, int causal)
{
	if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4)
		nn_abort("attention", "q, k, v must be (B,H,T,Dh)", q, k);
	if (!tensor_same_shape(k, v) || k->shape[0] != q->shape[0] || k->shape[1] != q->shape[1] ||
	    k->shape[3] != q->shape[3])
		nn_abort("attention", "q, k, v must agree in B, H and Dh (k and v in shape)", q, k);
	if (causal && q->shape[2] != k->shape[2])
		nn_abort("attention", "causal attention needs as many queries as keys", q, k);
	const int H = q->shape[1], Tq = q->shape[2], Tk = k->shape[2], Dh = q->shape[3];
	Tensor *out = ctx_tensor_like(ctx, q);
	AttnJob j = { .q = q->data, .k = k->data, .v = v->data, .out = out->data,
	              .lq = { (size_t)H * Tq * Dh, (size_t)Tq * Dh, Dh },
	              .lk = { (size_t)H * Tk * Dh, (size_t)Tk * Dh, Dh },
	              .lo = { (size_t)H * Tq * Dh, (size_t)Tq * Dh, Dh },
	              .H = H, .Tq = Tq, .Tk = Tk, .Dh = Dh, .causal = causal };
	Tensor *in[3] = { q, k, v };
	attention_run(ctx, &j, q->shape[0] * H, out, in, 3, 0);
	return out;
}

// qkv (B*T, 3*H*Dh) -> (B*T, H*Dh)
Tensor *op_attention_qkv(Ctx *ctx, Tensor *qkv, int B, int H, int causal)
{
	const int C = qkv->ndim == 2 ? qkv->shape[1] : 0;
	if (B < 1 || H < 1 || C < 1 || C % (3 * H) != 0 || qkv->shape[0] % B != 0)
		nn_abort("attention_qkv", "qkv must be (B*T, 3*H*Dh) for the given B and H", qkv, NULL);
	const int T = qkv->shape[0] / B, D = C / 3, Dh = D / H;
	Tensor *out = ctx_tensor(ctx, 2, (int[]){ B * T, D });
	AttnJob j = { .q = qkv->data, .k = qkv->data + D, .v = qkv->data + 2 * D, .out = out->data,
	              .lq = { (size_t)T * C, (size_t)Dh, C },
	              .lk = { (size_t)T * C, (size_t)Dh, C },
	              .lo = { (size_t)T * D, (size_t)Dh, D },
	              .H = H, .Tq = T, .Tk = T, .Dh = Dh, .causal = causal };
	attention_run(ctx, &j, B * H, out, &qkv, 1, D);
	return out;
}
