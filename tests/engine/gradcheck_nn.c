/* gradcheck_nn.c - gradient checks for every op of engine/ops_nn.c.
 *
 * Shapes are small (each input element costs two forward passes) but reach each code path: layer
 * norm with and without gamma/beta; batchnorm (N,C) and (N,C,H,W) with batch statistics (the
 * exact backward through the mean and variance) and in eval mode, and fused with a ReLU (its input
 * an op's output, so the new-gradient store path runs too); dropout with the context RNG
 * replayed by the harness; conv2d over stride 1/2, pad 0/1, bias or not, one image and several
 * (the two lowering paths), non-square and 1x1 kernels, and 3x3 ones through the Winograd path
 * (forced); its transpose with out_pad; upsampling;
 * max/avg pooling with disjoint and overlapping windows, max pooling padded; global average
 * pooling; the causal mask (through a softmax, since the masked entries are -inf); attention causal
 * and not, with queries and keys of different lengths. Forward values are checked against loops in test_ops_nn.c.
 */
#include "gradcheck.h"
#include "conv_winograd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct Args {
	int i[4];
	float f[2];
} Args;

#define ARGS(...) (&(Args){ __VA_ARGS__ })

static void check(const char *label, OpKind k, gc_build_fn f, void *u, Tensor *a, Tensor *b,
                  Tensor *c)
{
	Tensor *in[3] = { a, b, c };
	const int n = c ? 3 : b ? 2 : 1;
	gc_check(label, k, f, u, in, n, TOL);
}

/* ---------------------------------------------------------------------------------------------- */
/* normalisation and dropout */

/* in: x [gamma [beta]]; i[0]: 1 = gamma given, i[1]: 1 = beta given (taken in order from in[]) */
static Tensor *b_layernorm(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	Tensor *g = a->i[0] ? in[1] : NULL;
	Tensor *b = a->i[1] ? in[1 + a->i[0]] : NULL;
	return op_layernorm(ctx, in[0], g, b, 1e-5f);
}

/* i[0]: gamma/beta given; i[1]: training mode. Running statistics are a scratch buffer. */
static Tensor *b_batchnorm(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	float rm[8] = { 0.1f, -0.2f, 0.3f, 0.0f, 0.5f, -0.1f, 0.2f, 0.0f };
	float rv[8] = { 1.5f, 0.7f, 1.1f, 0.9f, 1.2f, 0.8f, 1.0f, 2.0f };
	const int prev = ctx_training(ctx);
	ctx_set_training(ctx, a->i[1]);
	Tensor *y = op_batchnorm(ctx, in[0], a->i[0] ? in[1] : NULL, a->i[0] ? in[2] : NULL, rm, rv,
	                         0.1f, 1e-5f);
	ctx_set_training(ctx, prev);
	return y;
}

/* The running statistics (eval mode) of b_batchnorm_relu and b_batchnorm_add_relu. */
static const float add_relu_rm[8] = { 0.1f, -0.2f, 0.3f, 0.0f, 0.5f, -0.1f, 0.2f, 0.0f };
static const float add_relu_rv[8] = { 1.5f, 0.7f, 1.1f, 0.9f, 1.2f, 0.8f, 1.0f, 2.0f };

/* i[1]: training mode. x enters through a scale by 1 so its batchnorm gradient is a new buffer
 * (stored) before the scale adds it into the input's. */
static Tensor *b_batchnorm_relu(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	float rm[8], rv[8];
	memcpy(rm, add_relu_rm, sizeof rm);
	memcpy(rv, add_relu_rv, sizeof rv);
	const int prev = ctx_training(ctx);
	ctx_set_training(ctx, a->i[1]);
	Tensor *y = op_batchnorm_relu(ctx, op_scale(ctx, in[0], 1.0f), in[1], in[2], rm, rv, 0.1f,
	                              1e-5f);
	ctx_set_training(ctx, prev);
	return y;
}

/* i[1]: training mode; i[2]: id is a batchnorm's output the op writes over (reuse_id). */
static Tensor *b_batchnorm_add_relu(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	float rm[8], rv[8];
	memcpy(rm, add_relu_rm, sizeof rm);
	memcpy(rv, add_relu_rv, sizeof rv);
	float rm2[8] = { 0.0f }, rv2[8] = { 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f };
	const int prev = ctx_training(ctx);
	ctx_set_training(ctx, a->i[1]);
	Tensor *id = a->i[2] ? op_batchnorm(ctx, in[3], NULL, NULL, rm2, rv2, 0.1f, 1e-5f) : in[3];
	Tensor *y = op_batchnorm_add_relu(ctx, in[0], in[1], in[2], rm, rv, 0.1f, 1e-5f, id,
	                                  a->i[2]);
	ctx_set_training(ctx, prev);
	return y;
}

/* Per-channel mean and 1/sqrt(var + eps) of t (N,C) or (N,C,H,W) over its batch, in double. */
static void channel_stats(const Tensor *t, int c, double *mean, double *inv)
{
	const int N = t->shape[0], C = t->shape[1];
	const size_t S = t->size / ((size_t)N * (size_t)C);
	double sum = 0, sq = 0;
	for (int n = 0; n < N; n++)
		for (size_t k = 0; k < S; k++)
			sum += t->data[((size_t)n * (size_t)C + (size_t)c) * S + k];
	*mean = sum / (double)((size_t)N * S);
	for (int n = 0; n < N; n++)
		for (size_t k = 0; k < S; k++) {
			double d = t->data[((size_t)n * (size_t)C + (size_t)c) * S + k] - *mean;
			sq += d * d;
		}
	*inv = 1.0 / sqrt(sq / (double)((size_t)N * S) + 1e-5);
}

/* The smallest |bn(x) + id| of b_batchnorm_add_relu's inputs, or |bn(x)| of b_batchnorm_relu's
 * (in[3] NULL; the two share their running statistics), computed in double: how far the ReLU is
 * from its kink, where a finite difference of step GC_STEP is not a derivative. */
static double add_relu_margin(Tensor **in, int train, int reuse)
{
	const Tensor *x = in[0], *g = in[1], *b = in[2], *id = in[3];
	const int N = x->shape[0], C = x->shape[1];
	const size_t S = x->size / ((size_t)N * (size_t)C);
	double margin = INFINITY;
	for (int c = 0; c < C; c++) {
		double m = add_relu_rm[c], inv = 1.0 / sqrt((double)add_relu_rv[c] + 1e-5), im = 0,
		       iinv = 1.0 / sqrt(1.0 + 1e-5);
		if (train) channel_stats(x, c, &m, &inv);
		if (id && reuse) channel_stats(id, c, &im, &iinv);
		for (int n = 0; n < N; n++)
			for (size_t k = 0; k < S; k++) {
				size_t i = ((size_t)n * (size_t)C + (size_t)c) * S + k;
				double v = g->data[c] * (x->data[i] - m) * inv + b->data[c] +
				           (!id ? 0 : reuse ? (id->data[i] - im) * iinv : id->data[i]);
				margin = fmin(margin, fabs(v));
			}
	}
	return margin;
}

/* i[0]: 1 = a + a */
static Tensor *b_add_relu(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_add_relu(ctx, in[0], a->i[0] ? in[0] : in[1]);
}

static Tensor *b_dropout(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_dropout(ctx, in[0], a->f[0]);
}

static void cases_norm(void)
{
	check("layernorm (3,5) gamma beta", OP_LAYERNORM, b_layernorm, ARGS(.i = { 1, 1 }),
	      IN(-2, 2, 3, 5), IN(0.5f, 1.5f, 5), IN(-1, 1, 5));
	check("layernorm (2,3,4) no affine", OP_LAYERNORM, b_layernorm, ARGS(.i = { 0, 0 }),
	      IN(-2, 2, 2, 3, 4), NULL, NULL);
	check("layernorm (4,6) gamma only", OP_LAYERNORM, b_layernorm, ARGS(.i = { 1, 0 }),
	      IN(-2, 2, 4, 6), IN(0.5f, 1.5f, 6), NULL);
	check("layernorm (4,6) const gamma beta", OP_LAYERNORM, b_layernorm, ARGS(.i = { 1, 1 }),
	      IN(-2, 2, 4, 6), CONST(0.5f, 1.5f, 6), CONST(-1, 1, 6));

	check("batchnorm (6,4) train", OP_BATCHNORM, b_batchnorm, ARGS(.i = { 1, 1 }),
	      IN(-2, 2, 6, 4), IN(0.5f, 1.5f, 4), IN(-1, 1, 4));
	check("batchnorm (3,2,3,3) train", OP_BATCHNORM, b_batchnorm, ARGS(.i = { 1, 1 }),
	      IN(-2, 2, 3, 2, 3, 3), IN(0.5f, 1.5f, 2), IN(-1, 1, 2));
	check("batchnorm (2,2,4,5) train (per-plane merge)", OP_BATCHNORM, b_batchnorm,
	      ARGS(.i = { 1, 1 }), IN(-2, 2, 2, 2, 4, 5), IN(0.5f, 1.5f, 2), IN(-1, 1, 2));
	check("batchnorm (2,3,2,2) train no affine", OP_BATCHNORM, b_batchnorm, ARGS(.i = { 0, 1 }),
	      IN(-2, 2, 2, 3, 2, 2), NULL, NULL);
	check("batchnorm (5,3) eval", OP_BATCHNORM, b_batchnorm, ARGS(.i = { 1, 0 }),
	      IN(-2, 2, 5, 3), IN(0.5f, 1.5f, 3), IN(-1, 1, 3));
	check("batchnorm (2,3,2,3) eval", OP_BATCHNORM, b_batchnorm, ARGS(.i = { 1, 0 }),
	      IN(-2, 2, 2, 3, 2, 3), IN(0.5f, 1.5f, 3), IN(-1, 1, 3));

	for (int c = 0; c < 3; c++) {   /* drawn until 0.1 from relu's kink, as below */
		static const char *const labels[3] = { "batchnorm+relu (6,4) train",
			"batchnorm+relu (3,2,3,3) train", "batchnorm+relu (5,3) eval" };
		const int train = c < 2, C = c == 1 ? 2 : c == 2 ? 3 : 4;
		Tensor *in[4] = { NULL };
		for (int draw = 0;; draw++) {
			in[0] = c == 1 ? IN(-2, 2, 3, 2, 3, 3) : c == 2 ? IN(-2, 2, 5, 3) : IN(-2, 2, 6, 4);
			in[1] = gc_input(1, (int[]){ C }, 0.5f, 1.5f);
			in[2] = gc_input(1, (int[]){ C }, -0.5f, 0.5f);
			if (add_relu_margin(in, train, 0) >= 0.1 || draw == 1000) break;
		}
		gc_check(labels[c], OP_BATCHNORM, b_batchnorm_relu, ARGS(.i = { 1, train }), in, 3, TOL);
	}

	for (int c = 0; c < 6; c++) {   /* 2-D and 4-D; train, eval; leaf id and reuse_id */
		static const char *const labels[6] = {
			"batchnorm+add+relu (6,4) train", "batchnorm+add+relu (3,2,3,3) train",
			"batchnorm+add+relu (5,3) eval", "batchnorm+add+relu (2,2,3,3) eval",
			"batchnorm+add+relu (6,4) train, id a batchnorm's output, reused",
			"batchnorm+add+relu (3,2,3,3) train, id a batchnorm's output, reused",
		};
		const int four_d = c & 1, train = c != 2 && c != 3, reuse = c >= 4;
		const int C = four_d ? 2 : c == 2 ? 3 : 4;
		Tensor *in[4];
		/* Drawn again until every pre-activation is 0.1 from relu's kink: a step of GC_STEP in
		 * any input moves one by at most ~0.03 (|gamma| <= 1.5 over a std above 0.5). */
		for (int draw = 0;; draw++) {
			Tensor *x = four_d ? (c == 3 ? IN(-2, 2, 2, 2, 3, 3) : IN(-2, 2, 3, 2, 3, 3))
			                   : (c == 2 ? IN(-2, 2, 5, 3) : IN(-2, 2, 6, 4));
			in[0] = x;
			in[1] = gc_input(1, (int[]){ C }, 0.5f, 1.5f);
			in[2] = gc_input(1, (int[]){ C }, -0.5f, 0.5f);
			in[3] = gc_input(x->ndim, x->shape, -1.0f, 1.0f);
			if (add_relu_margin(in, train, reuse) >= 0.1 || draw == 1000) break;
		}
		gc_check(labels[c], OP_BATCHNORM, b_batchnorm_add_relu,
		         ARGS(.i = { 0, train, reuse }), in, 4, TOL);
	}

	Tensor *ra = IN(-1, 1, 2, 3, 3, 3);   /* a + b kept away from relu's kink */
	gc_keep_away(ra, 0.0f, 0.3f);
	check("add_relu (2,3,3,3)", OP_ADD, b_add_relu, ARGS(.i = { 0 }), ra, IN(-0.1f, 0.1f, 2, 3, 3, 3),
	      NULL);
	Tensor *rs = IN(-1, 1, 3, 4);
	gc_keep_away(rs, 0.0f, 0.05f);
	check("add_relu a + a (3,4)", OP_ADD, b_add_relu, ARGS(.i = { 1 }), rs, NULL, NULL);

	check("dropout p=0.3 (4,5)", OP_DROPOUT, b_dropout, ARGS(.f = { 0.3f }), IN(-1, 1, 4, 5),
	      NULL, NULL);
	check("dropout p=0.5 (2,3,3,3)", OP_DROPOUT, b_dropout, ARGS(.f = { 0.5f }),
	      IN(-1, 1, 2, 3, 3, 3), NULL, NULL);
}

/* ---------------------------------------------------------------------------------------------- */
/* convolution */

/* i: stride, pad, out_pad (transpose), has bias */
static Tensor *b_conv(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_conv2d(ctx, in[0], in[1], a->i[3] ? in[2] : NULL, a->i[0], a->i[1]);
}

/* b_conv through the Winograd path (conv_winograd.h), whatever SSLD_CONV says */
static Tensor *b_conv_wino(Ctx *ctx, Tensor **in, void *u)
{
	conv_algo_set(CONV_ALGO_WINOGRAD);
	Tensor *y = b_conv(ctx, in, u);
	conv_algo_set(CONV_ALGO_COUNT);
	return y;
}

static Tensor *b_convt(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_conv_transpose2d(ctx, in[0], in[1], a->i[3] ? in[2] : NULL, a->i[0], a->i[1],
	                           a->i[2]);
}

static void cases_conv(void)
{
	static const struct {
		int N, C, H, W, O, kh, kw, stride, pad, bias;
	} cc[] = {
		{ 2, 2, 5, 5, 3, 3, 3, 1, 0, 1 },
		{ 2, 2, 5, 4, 3, 3, 3, 1, 1, 0 },
		{ 2, 2, 6, 5, 2, 3, 3, 2, 1, 1 },
		{ 2, 3, 5, 5, 2, 3, 3, 2, 0, 0 },
		{ 1, 2, 4, 5, 3, 3, 3, 1, 1, 1 },  /* one image: sgemm straight into NCHW */
		{ 2, 2, 5, 6, 2, 2, 3, 2, 1, 1 },  /* non-square kernel */
		{ 3, 4, 3, 3, 2, 1, 1, 1, 0, 1 },  /* 1x1 */
		{ 2, 1, 12, 11, 2, 3, 3, 1, 1, 1 }, /* Ho*Wo >= 128: lowered one image at a time */
	};
	char label[96];
	for (size_t t = 0; t < sizeof cc / sizeof cc[0]; t++) {
		snprintf(label, sizeof label, "conv2d x(%d,%d,%d,%d) w(%d,%d,%d,%d) s%d p%d%s", cc[t].N,
		         cc[t].C, cc[t].H, cc[t].W, cc[t].O, cc[t].C, cc[t].kh, cc[t].kw, cc[t].stride,
		         cc[t].pad, cc[t].bias ? " +b" : "");
		check(label, OP_CONV2D, b_conv, ARGS(.i = { cc[t].stride, cc[t].pad, 0, cc[t].bias }),
		      IN(-1, 1, cc[t].N, cc[t].C, cc[t].H, cc[t].W),
		      IN(-1, 1, cc[t].O, cc[t].C, cc[t].kh, cc[t].kw),
		      cc[t].bias ? IN(-1, 1, cc[t].O) : NULL);
	}
	check("conv2d constant x (weight grads only)", OP_CONV2D, b_conv, ARGS(.i = { 1, 1, 0, 1 }),
	      CONST(-1, 1, 2, 2, 4, 4), IN(-1, 1, 2, 2, 3, 3), IN(-1, 1, 2));
	check("conv2d constant w (input grad only)", OP_CONV2D, b_conv, ARGS(.i = { 2, 1, 0, 0 }),
	      IN(-1, 1, 2, 2, 5, 5), CONST(-1, 1, 2, 2, 3, 3), NULL);
	/* Winograd F(2x2,3x3): dX through the flipped-filter transform, odd and even planes */
	check("conv2d winograd x(2,3,5,6) w(4,3,3,3) +b", OP_CONV2D, b_conv_wino,
	      ARGS(.i = { 1, 1, 0, 1 }), IN(-1, 1, 2, 3, 5, 6), IN(-1, 1, 4, 3, 3, 3), IN(-1, 1, 4));
	check("conv2d winograd x(1,2,12,11) w(2,2,3,3)", OP_CONV2D, b_conv_wino,
	      ARGS(.i = { 1, 1, 0, 0 }), IN(-1, 1, 1, 2, 12, 11), IN(-1, 1, 2, 2, 3, 3), NULL);

	static const struct {
		int N, C, H, W, O, kh, kw, stride, pad, out_pad, bias;
	} ct[] = {
		{ 2, 2, 3, 3, 2, 3, 3, 1, 0, 0, 1 },
		{ 2, 3, 3, 2, 2, 3, 3, 2, 1, 1, 1 },  /* the usual 2x upsampling decoder layer */
		{ 2, 2, 2, 3, 3, 4, 4, 2, 1, 0, 0 },
		{ 1, 2, 3, 3, 2, 2, 3, 2, 0, 1, 1 },  /* one image, non-square kernel */
		{ 2, 3, 2, 2, 2, 2, 2, 2, 0, 0, 0 },
	};
	for (size_t t = 0; t < sizeof ct / sizeof ct[0]; t++) {
		snprintf(label, sizeof label, "conv_t2d x(%d,%d,%d,%d) w(%d,%d,%d,%d) s%d p%d op%d%s",
		         ct[t].N, ct[t].C, ct[t].H, ct[t].W, ct[t].C, ct[t].O, ct[t].kh, ct[t].kw,
		         ct[t].stride, ct[t].pad, ct[t].out_pad, ct[t].bias ? " +b" : "");
		check(label, OP_CONV_TRANSPOSE2D, b_convt,
		      ARGS(.i = { ct[t].stride, ct[t].pad, ct[t].out_pad, ct[t].bias }),
		      IN(-1, 1, ct[t].N, ct[t].C, ct[t].H, ct[t].W),
		      IN(-1, 1, ct[t].C, ct[t].O, ct[t].kh, ct[t].kw),
		      ct[t].bias ? IN(-1, 1, ct[t].O) : NULL);
	}
	check("conv_t2d constant x (weight grads only)", OP_CONV_TRANSPOSE2D, b_convt,
	      ARGS(.i = { 2, 1, 1, 1 }), CONST(-1, 1, 2, 2, 3, 3), IN(-1, 1, 2, 2, 3, 3),
	      IN(-1, 1, 2));
}

/* ---------------------------------------------------------------------------------------------- */
/* upsampling and pooling */

static Tensor *b_upsample(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_upsample_nearest(ctx, in[0], a->i[0]);
}

static Tensor *b_maxpool(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return a->i[2] ? op_maxpool2d_pad(ctx, in[0], a->i[0], a->i[1], a->i[2])
	               : op_maxpool2d(ctx, in[0], a->i[0], a->i[1]);
}

static Tensor *b_avgpool(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_avgpool2d(ctx, in[0], a->i[0], a->i[1]);
}

static Tensor *b_gap(Ctx *ctx, Tensor **in, void *u) { return op_global_avgpool(ctx, in[0]); }

static void cases_pool(void)
{
	check("upsample x2 (2,2,3,3)", OP_UPSAMPLE_NEAREST, b_upsample, ARGS(.i = { 2 }),
	      IN(-1, 1, 2, 2, 3, 3), NULL, NULL);
	check("upsample x3 (1,2,2,3)", OP_UPSAMPLE_NEAREST, b_upsample, ARGS(.i = { 3 }),
	      IN(-1, 1, 1, 2, 2, 3), NULL, NULL);

	/* Distinct values 0.05 apart (> 2h) so no perturbation changes a window's argmax. */
	Tensor *x = IN(-1, 1, 2, 2, 4, 4);
	gc_fill_distinct(x, 0.05f);
	check("maxpool k2 s2 (2,2,4,4)", OP_MAXPOOL2D, b_maxpool, ARGS(.i = { 2, 2 }), x, NULL, NULL);
	x = IN(-1, 1, 1, 2, 5, 6);
	gc_fill_distinct(x, 0.05f);
	check("maxpool k3 s2 overlapping (1,2,5,6)", OP_MAXPOOL2D, b_maxpool, ARGS(.i = { 3, 2 }), x,
	      NULL, NULL);
	x = IN(-1, 1, 2, 1, 5, 5);
	gc_fill_distinct(x, 0.05f);
	check("maxpool k2 s3 gaps (2,1,5,5)", OP_MAXPOOL2D, b_maxpool, ARGS(.i = { 2, 3 }), x, NULL,
	      NULL);
	/* padded (the ResNet stem): negative values, so a padded cell would win if it counted */
	x = IN(-1, 1, 2, 2, 5, 6);
	gc_fill_distinct(x, 0.05f);
	for (size_t i = 0; i < x->size; i++)
		x->data[i] -= 2.0f;
	check("maxpool k3 s2 pad 1 (2,2,5,6)", OP_MAXPOOL2D, b_maxpool, ARGS(.i = { 3, 2, 1 }), x,
	      NULL, NULL);

	check("avgpool k2 s2 (2,2,4,4)", OP_AVGPOOL2D, b_avgpool, ARGS(.i = { 2, 2 }),
	      IN(-1, 1, 2, 2, 4, 4), NULL, NULL);
	check("avgpool k3 s1 overlapping (1,2,5,4)", OP_AVGPOOL2D, b_avgpool, ARGS(.i = { 3, 1 }),
	      IN(-1, 1, 1, 2, 5, 4), NULL, NULL);

	check("global_avgpool (2,3,4,4)", OP_GLOBAL_AVGPOOL, b_gap, NULL, IN(-1, 1, 2, 3, 4, 4), NULL,
	      NULL);
}

/* ---------------------------------------------------------------------------------------------- */
/* causal mask and attention */

/* The masked entries are -inf, so differentiate through a softmax as attention would. */
static Tensor *b_causal(Ctx *ctx, Tensor **in, void *u)
{
	return op_softmax(ctx, op_causal_mask(ctx, in[0]));
}

static Tensor *b_attention(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_attention(ctx, in[0], in[1], in[2], a->i[0]);
}

static Tensor *b_attention_qkv(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_attention_qkv(ctx, in[0], a->i[0], a->i[1], a->i[2]);
}

static void cases_attention(void)
{
	check("causal_mask+softmax (2,4,4)", OP_CAUSAL_MASK, b_causal, NULL, IN(-2, 2, 2, 4, 4), NULL,
	      NULL);
	check("causal_mask+softmax (1,2,3,3)", OP_CAUSAL_MASK, b_causal, NULL, IN(-2, 2, 1, 2, 3, 3),
	      NULL, NULL);

	check("attention (2,2,4,3)", OP_ATTENTION, b_attention, ARGS(.i = { 0 }),
	      IN(-1, 1, 2, 2, 4, 3), IN(-1, 1, 2, 2, 4, 3), IN(-1, 1, 2, 2, 4, 3));
	check("attention causal (2,2,4,3)", OP_ATTENTION, b_attention, ARGS(.i = { 1 }),
	      IN(-1, 1, 2, 2, 4, 3), IN(-1, 1, 2, 2, 4, 3), IN(-1, 1, 2, 2, 4, 3));
	check("attention causal (1,1,5,4) sharp", OP_ATTENTION, b_attention, ARGS(.i = { 1 }),
	      IN(-2, 2, 1, 1, 5, 4), IN(-2, 2, 1, 1, 5, 4), IN(-1, 1, 1, 1, 5, 4));
	check("attention Tq=3 Tk=5 (1,2,.,4)", OP_ATTENTION, b_attention, ARGS(.i = { 0 }),
	      IN(-1, 1, 1, 2, 3, 4), IN(-1, 1, 1, 2, 5, 4), IN(-1, 1, 1, 2, 5, 4));
	check("attention constant v", OP_ATTENTION, b_attention, ARGS(.i = { 1 }),
	      IN(-1, 1, 1, 2, 4, 2), IN(-1, 1, 1, 2, 4, 2), CONST(-1, 1, 1, 2, 4, 2));
	/* the fused projection (B*T, 3*H*Dh); T 34 causal crosses a block of 32 queries */
	check("attention_qkv B 2 H 2 T 4 Dh 3", OP_ATTENTION, b_attention_qkv, ARGS(.i = { 2, 2, 0 }),
	      IN(-1, 1, 8, 18), NULL, NULL);
	check("attention_qkv causal B 2 H 2 T 4 Dh 3", OP_ATTENTION, b_attention_qkv,
	      ARGS(.i = { 2, 2, 1 }), IN(-1, 1, 8, 18), NULL, NULL);
	check("attention_qkv causal B 1 H 1 T 34 Dh 2", OP_ATTENTION, b_attention_qkv,
	      ARGS(.i = { 1, 1, 1 }), IN(-1, 1, 34, 6), NULL, NULL);
}

void gradcheck_cases_nn(void)
{
	cases_norm();
	cases_conv();
	cases_pool();
	cases_attention();
}
