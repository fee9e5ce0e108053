/* test_threads_nn.c - the threaded paths of engine/ops_nn.c give the one-thread results.
 *
 * test_ops_nn checks the ops' values against plain loops on one thread and on sizes too small to
 * split; this file runs conv2d, conv_transpose2d and attention (forward and backward) on sizes
 * large enough that im2col/col2im, the NCHW reorders, the split sgemm and the (b,h) loop of
 * attention really run on two threads, and compares outputs and gradients with the same inputs
 * on one thread. The split sgemm may block OpenBLAS's summation differently, so the comparison is
 * to error bounds derived from each reduction (tests/tolerance.h), not bitwise: for the
 * convolutions the two results may differ by twice k eps sum|term|, with the magnitudes sum|term|
 * given by the same op run on |x|, |w|, |b| and |G|; attention's results on either thread count
 * must lie within attention_ref.h's bounds of a double-precision reference. A chunk written
 * twice, skipped or raced shows as O(1).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "ops.h"
#include "rng.h"
#include "check.h"
#include "../tolerance.h"
#include "attention_ref.h"

enum { OP_CONV, OP_CONVT, OP_ATTN };

typedef struct Case {
	const char *name;
	int op;
	int a[8];   /* conv: N C H W O k stride pad; attention: B H Tq Tk Dh causal */
} Case;

/* Results of one run: output, then every input's gradient, concatenated; where each part starts
 * (part[0] = 0, part[1] the first gradient, ...). */
typedef struct Run {
	float *v;
	size_t n;
	size_t part[5];
	int nparts;
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
	r->part[r->nparts++] = r->n;
	r->n += n;
}

/* Run the case on `threads` threads; with `absolute`, on |inputs| and |G| (the magnitudes of
 * every sum the op makes, for the bounds). With `ref`, attention cases also fill the double
 * reference of output and gradients (on the signed inputs). */
static Run run_case(const Case *c, int threads, int absolute, AttnRef *ref)
{
	Run r = { 0 };
	Rng rng;
	rng_seed(&rng, 77);
	Ctx *ctx = ctx_new(3);
	ctx_set_threads(ctx, threads);
	const int *a = c->a;
	Tensor *in[3] = { 0 }, *y = NULL;
	int nin = 3;
	if (c->op == OP_CONV || c->op == OP_CONVT) {
		in[0] = ctx_tensor(ctx, 4, (int[]){ a[0], a[1], a[2], a[3] });
		/* conv2d: w (O, C, k, k); conv_transpose2d: w (C, O, k, k) */
		in[1] = c->op == OP_CONV ? ctx_tensor(ctx, 4, (int[]){ a[4], a[1], a[5], a[5] }) :
		                           ctx_tensor(ctx, 4, (int[]){ a[1], a[4], a[5], a[5] });
		in[2] = ctx_tensor(ctx, 1, (int[]){ a[4] });
	} else {
		for (int i = 0; i < 3; i++)
			in[i] = ctx_tensor(ctx, 4, (int[]){ a[0], a[1], i == 0 ? a[2] : a[3], a[4] });
	}
	for (int i = 0; i < nin; i++) {
		fill(in[i], &rng);
		for (size_t j = 0; absolute && j < in[i]->size; j++)
			in[i]->data[j] = fabsf(in[i]->data[j]);
	}
	if (c->op == OP_CONV)
		y = op_conv2d(ctx, in[0], in[1], in[2], a[6], a[7]);
	else if (c->op == OP_CONVT)
		y = op_conv_transpose2d(ctx, in[0], in[1], in[2], a[6], a[7], a[6] - 1);
	else
		y = op_attention(ctx, in[0], in[1], in[2], a[5]);
	/* L = sum(y * G) with a fixed random G: every element of dy differs */
	Tensor *G = ctx_tensor_like(ctx, y);
	for (size_t i = 0; i < G->size; i++) {
		G->data[i] = rng_uniform_range(&rng, -1.0f, 1.0f);
		if (absolute)
			G->data[i] = fabsf(G->data[i]);
	}
	if (ref && c->op == OP_ATTN &&
	    attention_ref(in[0]->data, in[1]->data, in[2]->data, NULL, G->data, a[0] * a[1], a[2], a[3],
	                  a[4], a[5], ref) != 0) {
		fprintf(stderr, "test_threads_nn: out of memory\n");
		exit(1);
	}
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

/* Roundings on the longest path into each part of a convolution's results (tolerance.h): the
 * output sums C*k*k products and the bias; dx O*k*k products; dw one product per output pixel
 * of every image; db one term per output pixel. conv_transpose2d swaps the roles of x and y. */
static void conv_k(const Case *c, double k[4])
{
	const int *a = c->a, N = a[0], C = a[1], H = a[2], W = a[3], O = a[4], kk = a[5] * a[5];
	const int s = a[6], p = a[7];
	/* conv_transpose2d runs with out_pad = stride - 1 */
	const int conv = c->op == OP_CONV;
	const double Ho = conv ? (H + 2 * p - a[5]) / s + 1 : (H - 1) * s - 2 * p + a[5] + s - 1;
	const double Wo = conv ? (W + 2 * p - a[5]) / s + 1 : (W - 1) * s - 2 * p + a[5] + s - 1;
	k[0] = (double)C * kk + 1;
	k[1] = (double)O * kk;
	k[2] = conv ? N * Ho * Wo : (double)N * H * W;
	k[3] = N * Ho * Wo;
}

static const char *const part_names[4] = { "output", "d input 0", "d input 1", "d input 2" };

static void check_case(const Case *c)
{
	AttnRef ref = { 0 };
	Run one = run_case(c, 1, 0, &ref), two = run_case(c, 2, 0, NULL);
	CHECK(one.n == two.n && one.n > 0 && one.nparts == 4 && two.nparts == 4,
	      "%s: result sizes %zu vs %zu", c->name, one.n, two.n);
	if (one.n != two.n || one.nparts != 4 || two.nparts != 4)
		goto done;
	char what[96];
	if (c->op == OP_ATTN) {
		const double *want[4] = { ref.o, ref.dq, ref.dk, ref.dv };
		const double *bound[4] = { ref.bo, ref.bdq, ref.bdk, ref.bdv };
		for (int t = 1; t <= 2; t++)
			for (int p = 0; p < 4; p++) {
				const Run *r = t == 1 ? &one : &two;
				const size_t end = p < 3 ? r->part[p + 1] : r->n;
				snprintf(what, sizeof what, "%s %s, %d thread(s)", c->name, part_names[p], t);
				failures += tol_check_bound(what, r->v + r->part[p], want[p], bound[p],
				                            end - r->part[p]);
			}
	} else {
		/* |one - two| <= |one - exact| + |two - exact| <= 2 k eps mag */
		Run mag = run_case(c, 1, 1, NULL);
		double k[4];
		conv_k(c, k);
		for (int p = 0; p < 4; p++) {
			const size_t b = one.part[p], n = (p < 3 ? one.part[p + 1] : one.n) - b;
			double *ref1 = malloc(n * sizeof *ref1), *bnd = malloc(n * sizeof *bnd);
			if (!ref1 || !bnd) {
				fprintf(stderr, "test_threads_nn: out of memory\n");
				exit(1);
			}
			/* the magnitudes are float sums themselves: 1% covers their own rounding */
			for (size_t i = 0; i < n; i++) {
				ref1[i] = one.v[b + i];
				bnd[i] = 2.02 * tol_bound(k[p], mag.v[b + i]);
			}
			snprintf(what, sizeof what, "%s %s, 2 threads vs 1", c->name, part_names[p]);
			failures += tol_check_bound(what, two.v + b, ref1, bnd, n);
			free(ref1);
			free(bnd);
		}
		free(mag.v);
	}
done:
	attention_ref_free(&ref);
	free(one.v);
	free(two.v);
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
	for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++)
		check_case(&cases[t]);
	return check_exit("test_threads_nn");
}
