/* test_threads_nn.c - the threaded paths of engine/ops_nn.c give the one-thread results.
 *
 * test_ops_nn checks the ops' values against plain loops on one thread and on sizes too small to
 * split; this file runs conv2d, conv_transpose2d and attention (forward and backward) on sizes
 * large enough that im2col/col2im, the NCHW reorders, the split sgemm and the (b,h) loop of
 * attention really run on two threads, and compares outputs and gradients with the same inputs
 * on one thread. The split sgemm may block OpenBLAS's summation differently (dW sums 12,544
 * products here, and differs by ~2e-5), so the comparison is to a relative 1e-4, not bitwise; a
 * chunk written twice, skipped or raced shows as O(1).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "ops.h"
#include "rng.h"
#include "check.h"

enum { OP_CONV, OP_CONVT, OP_ATTN };

typedef struct Case {
	const char *name;
	int op;
	int a[8];   /* conv: N C H W O k stride pad; attention: B H Tq Tk Dh causal */
} Case;

/* Results of one run: output, then every input's gradient, concatenated. */
typedef struct Run {
	float *v;
	size_t n;
} Run;

static void fill(Tensor *t, Rng *rng)
{
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = rng_uniform_range(rng, -1.0f, 1.0f);
	t->requires_grad = 1;
}

static void append(Run *r, const float *x, size_t n)
{
	r->v = realloc(r->v, (r->n + n) * sizeof *r->v);
	if (!r->v) {
		fprintf(stderr, "test_threads_nn: out of memory\n");
		exit(1);
	}
	memcpy(r->v + r->n, x, n * sizeof *x);
	r->n += n;
}

static Run run_case(const Case *c, int threads)
{
	Run r = { 0 };
	Rng rng;
	rng_seed(&rng, 77);
	Ctx *ctx = ctx_new(3);
	ctx_set_threads(ctx, threads);
	const int *a = c->a;
	Tensor *in[3] = { 0 }, *y = NULL;
	int nin = 0;
	if (c->op == OP_CONV || c->op == OP_CONVT) {
		in[0] = ctx_tensor(ctx, 4, (int[]){ a[0], a[1], a[2], a[3] });
		/* conv2d: w (O, C, k, k); conv_transpose2d: w (C, O, k, k) */
		in[1] = c->op == OP_CONV ? ctx_tensor(ctx, 4, (int[]){ a[4], a[1], a[5], a[5] }) :
		                           ctx_tensor(ctx, 4, (int[]){ a[1], a[4], a[5], a[5] });
		in[2] = ctx_tensor(ctx, 1, (int[]){ a[4] });
		nin = 3;
		for (int i = 0; i < nin; i++)
			fill(in[i], &rng);
		y = c->op == OP_CONV ? op_conv2d(ctx, in[0], in[1], in[2], a[6], a[7]) :
		                       op_conv_transpose2d(ctx, in[0], in[1], in[2], a[6], a[7], a[6] - 1);
	} else {
		for (int i = 0; i < 3; i++) {
			in[i] = ctx_tensor(ctx, 4, (int[]){ a[0], a[1], i == 0 ? a[2] : a[3], a[4] });
			fill(in[i], &rng);
		}
		nin = 3;
		y = op_attention(ctx, in[0], in[1], in[2], a[5]);
	}
	/* L = sum(y * G) with a fixed random G: every element of dy differs */
	Tensor *G = ctx_tensor_like(ctx, y);
	for (size_t i = 0; i < G->size; i++)
		G->data[i] = rng_uniform_range(&rng, -1.0f, 1.0f);
	Tensor *loss = op_sum(ctx, op_mul(ctx, y, G), OP_ALL, 0);
	append(&r, y->data, y->size);
	if (ctx_backward(ctx, loss) != 0) {
		fprintf(stderr, "FAIL %s: backward failed\n", c->name);
		failures++;
	}
	for (int i = 0; i < nin; i++)
		append(&r, in[i]->grad, in[i]->size);
	ctx_free(ctx);
	return r;
}

int main(void)
{
	static const Case cases[] = {
		/* N C H W O k s p: one chunk, column and row splits of the sgemm */
		{ "conv2d 3x3 s1", OP_CONV, { 64, 8, 14, 14, 16, 3, 1, 1 } },
		{ "conv2d 3x3 s2", OP_CONV, { 64, 16, 14, 14, 32, 3, 2, 1 } },
		{ "conv2d C=1 (first layer)", OP_CONV, { 48, 1, 28, 28, 32, 3, 1, 1 } },
		{ "conv2d several chunks", OP_CONV, { 200, 32, 14, 14, 8, 3, 1, 1 } },
		{ "conv_transpose2d s2", OP_CONVT, { 64, 16, 7, 7, 8, 3, 2, 1 } },
		/* B H Tq Tk Dh causal */
		{ "attention causal", OP_ATTN, { 4, 4, 64, 64, 16, 1 } },
		{ "attention cross", OP_ATTN, { 3, 4, 48, 80, 16, 0 } },
	};
	for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
		const Case *c = &cases[t];
		Run one = run_case(c, 1), two = run_case(c, 2);
		CHECK(one.n == two.n && one.n > 0, "%s: result sizes %zu vs %zu", c->name, one.n, two.n);
		double worst = 0.0;
		size_t at = 0;
		for (size_t i = 0; i < one.n && i < two.n; i++) {
			const double e = fabs((double)one.v[i] - two.v[i]) / (1.0 + fabs((double)one.v[i]));
			if (!(e <= worst)) {
				worst = isnan(e) ? INFINITY : e;
				at = i;
			}
		}
		CHECK(worst < 1e-4, "%s: 2 threads differ from 1 by %g at element %zu of %zu", c->name,
		      worst, at, one.n);
		free(one.v);
		free(two.v);
	}
	return check_exit("test_threads_nn");
}
