/* test_ctx.c - unit tests for the training context and the forward values of the basic ops: arena
 * (reset keeps capacity, 64-byte alignment, consolidation so a repeated step allocates nothing,
 * intermediate gradients and backward scratch released during backward so the step's peak stays
 * near the activations),
 * RNG determinism, detach and grad mode stopping gradients, broadcasting against hand-computed
 * values, matmul/bmm and linear (forward and backward) against plain loops, and the abort on a
 * shape error.
 *
 * It does not check gradients by finite differences (the gradcheck suite does).
 */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "ctx.h"
#include "ops.h"
#include "rng.h"
#include "check.h"
#include "../tolerance.h"

/* A heap tensor that outlives ctx_reset, like a parameter (persistent grad when grad). */
static Tensor *heap_tensor(int ndim, const int *shape, int grad)
{
	Tensor *t = calloc(1, sizeof *t);
	if (!t)
		abort();
	tensor_set_shape(t, ndim, shape);
	t->data = calloc(t->size, sizeof(float));
	if (!t->data)
		abort();
	if (grad) {
		t->grad = calloc(t->size, sizeof(float));
		if (!t->grad)
			abort();
		t->requires_grad = 1;
		t->is_param = 1;
	}
	return t;
}

static void heap_free(Tensor *t)
{
	if (!t)
		return;
	free(t->data);
	free(t->grad);
	free(t);
}

static void fill_uniform(Tensor *t, Rng *r, float lo, float hi)
{
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = rng_uniform_range(r, lo, hi);
}

static int close_to(float a, float b, float tol)
{
	return fabsf(a - b) <= tol * fmaxf(1.0f, fmaxf(fabsf(a), fabsf(b)));
}

/* ---------------------------------------------------------------------------------------------- */
/* arena */

typedef struct Mlp {
	Tensor *x, *w1, *b1, *w2, *big;
} Mlp;

/* One training-like step: a small MLP with softmax plus a wide element-wise branch that pushes
 * the step past the arena's first block, so the first step needs several blocks. */
static float mlp_step(Ctx *ctx, Mlp *m)
{
	ctx_reset(ctx);
	Tensor *h = op_relu(ctx, op_add(ctx, op_matmul(ctx, m->x, m->w1, 0, 1), m->b1)); // (B,H)
	Tensor *z = op_matmul(ctx, h, m->w2, 0, 1);                                       // (B,O)
	Tensor *lp = op_log_softmax(ctx, z);
	Tensor *l1 = op_scale(ctx, op_mean(ctx, lp, OP_ALL, 0), -1.0f);
	Tensor *w = op_tanh(ctx, op_mul(ctx, m->big, m->big));
	Tensor *l2 = op_mean(ctx, op_reshape(ctx, w, 1, (int[]){ -1 }), 0, 0);
	Tensor *loss = op_add(ctx, l1, l2);
	Tensor *params[] = { m->w1, m->b1, m->w2, m->big };
	for (int i = 0; i < 4; i++)
		memset(params[i]->grad, 0, params[i]->size * sizeof(float));
	CHECK(ctx_backward(ctx, loss) == 0, "backward failed");
	return loss->data[0];
}

static void test_arena(void)
{
	Ctx *ctx = ctx_new(7);
	CHECK(ctx != NULL, "ctx_new");
	if (!ctx)
		return;

	/* alignment */
	for (int i = 0; i < 8; i++) {
		void *p = ctx_alloc(ctx, (size_t)(3 + 17 * i));
		CHECK(((uintptr_t)p & 63) == 0, "ctx_alloc(%d) not 64-byte aligned: %p", 3 + 17 * i, p);
	}
	Tensor *t = ctx_tensor(ctx, 2, (int[]){ 3, 5 });
	CHECK(((uintptr_t)t->data & 63) == 0, "tensor data not aligned");
	Tensor *zz = ctx_zeros(ctx, 1, (int[]){ 37 });
	int allzero = 1;
	for (int i = 0; i < 37; i++)
		allzero &= zz->data[i] == 0.0f;
	CHECK(allzero, "ctx_zeros not zero");

	/* reset keeps capacity */
	size_t cap = ctx_arena_capacity(ctx);
	CHECK(ctx_arena_used(ctx) > 0, "used after allocations");
	ctx_reset(ctx);
	CHECK(ctx_arena_used(ctx) == 0, "used after reset = %zu", ctx_arena_used(ctx));
	CHECK(ctx_arena_capacity(ctx) == cap, "capacity %zu -> %zu after reset", cap,
	      ctx_arena_capacity(ctx));

	/* consolidation: a repeated step performs no heap allocation */
	Rng r;
	rng_seed(&r, 11);
	Mlp m = {
		.x = heap_tensor(2, (int[]){ 32, 64 }, 0),
		.w1 = heap_tensor(2, (int[]){ 48, 64 }, 1),
		.b1 = heap_tensor(1, (int[]){ 48 }, 1),
		.w2 = heap_tensor(2, (int[]){ 10, 48 }, 1),
		.big = heap_tensor(2, (int[]){ 2048, 1024 }, 1),
	};
	fill_uniform(m.x, &r, -1, 1);
	fill_uniform(m.w1, &r, -0.2f, 0.2f);
	fill_uniform(m.b1, &r, -0.1f, 0.1f);
	fill_uniform(m.w2, &r, -0.2f, 0.2f);
	fill_uniform(m.big, &r, -1, 1);

	float l0 = mlp_step(ctx, &m);
	size_t need = ctx_arena_used(ctx);
	CHECK(need > (16u << 20), "the warm-up step should span several blocks (used %zu)", need);
	ctx_reset(ctx); /* consolidates into one block */
	size_t cap1 = ctx_arena_capacity(ctx);
	CHECK(cap1 >= need, "consolidated capacity %zu < step need %zu", cap1, need);
	float gw1 = m.w1->grad[5];

	uint64_t before = eng_alloc_count();
	float l1 = mlp_step(ctx, &m);
	float l2 = mlp_step(ctx, &m);
	ctx_reset(ctx);
	uint64_t after = eng_alloc_count();
	CHECK(after == before, "repeated steps performed %llu heap allocations",
	      (unsigned long long)(after - before));
	CHECK(ctx_arena_capacity(ctx) == cap1, "capacity changed in steady state");
	CHECK(l0 == l1 && l1 == l2, "same step, different loss: %g %g %g", l0, l1, l2);
	CHECK(m.w1->grad[5] == gw1 && gw1 != 0.0f, "same step, different grad: %g vs %g",
	      m.w1->grad[5], gw1);
	printf("arena: warm-up step %.1f MB, consolidated capacity %.1f MB, steady-state allocations %llu\n",
	       need / 1048576.0, cap1 / 1048576.0, (unsigned long long)(after - before));

	/* trim gives the arena back; the next step grows it again and computes the same */
	ctx_trim(ctx);
	CHECK(ctx_arena_capacity(ctx) == 0 && ctx_arena_used(ctx) == 0,
	      "after ctx_trim: capacity %zu, used %zu", ctx_arena_capacity(ctx), ctx_arena_used(ctx));
	float l3 = mlp_step(ctx, &m);
	CHECK(l3 == l0 && m.w1->grad[5] == gw1, "a step after ctx_trim: loss %g (was %g)", l3, l0);

	heap_free(m.x);
	heap_free(m.w1);
	heap_free(m.b1);
	heap_free(m.w2);
	heap_free(m.big);
	ctx_free(ctx);
	ctx_free(NULL);
}

/* A chain of 16 element-wise ops on 4 MB activations: every activation must stay (tanh's backward
 * reads its output), but each intermediate gradient dies once its producer's backward has run, so
 * backward should need a few gradient buffers, not 16. The gradient must be unchanged. */
static void test_grad_reuse(void)
{
	enum { ROWS = 1024, COLS = 1024, DEPTH = 16 };
	const size_t act = (size_t)ROWS * COLS * sizeof(float);
	Ctx *ctx = ctx_new(3);
	Rng r;
	rng_seed(&r, 5);
	Tensor *x = heap_tensor(2, (int[]){ ROWS, COLS }, 1);
	fill_uniform(x, &r, -1, 1);
	float g[3] = { 0 };
	size_t fwd = 0, peak = 0;
	uint64_t before = 0;
	for (int step = 0; step < 3; step++) {
		if (step == 2)
			before = eng_alloc_count();
		ctx_reset(ctx);
		memset(x->grad, 0, act);
		Tensor *h = x;
		for (int i = 0; i < DEPTH; i++)
			h = op_tanh(ctx, op_reshape(ctx, h, 2, (int[]){ COLS, ROWS }));
		Tensor *loss = op_sum(ctx, h, OP_ALL, 0);
		fwd = ctx_arena_used(ctx);
		CHECK(ctx_backward(ctx, loss) == 0, "backward");
		peak = ctx_arena_used(ctx);
		g[step] = x->grad[12345];
	}
	CHECK(eng_alloc_count() == before, "steady-state steps allocated %llu times",
	      (unsigned long long)(eng_alloc_count() - before));
	/* reference: d/dx of tanh^16(x) at one element, by the chain rule in double */
	double v = x->data[12345], d = 1.0;
	for (int i = 0; i < DEPTH; i++) {
		v = tanh(v);
		d *= 1.0 - v * v;
	}
	CHECK(fabs(g[2] - d) < 1e-5 && g[0] == g[2], "gradient %g (first step %g), want %g",
	      (double)g[2], (double)g[0], d);
	CHECK(fwd >= DEPTH * act, "forward used %zu bytes for %d activations", fwd, DEPTH);
	CHECK(peak <= fwd + 3 * act, "backward grew the step from %.1f to %.1f MB (more than 3 gradients"
	      " of %.1f MB live)", fwd / 1048576.0, peak / 1048576.0, act / 1048576.0);
	printf("grad reuse: forward %.1f MB, step peak %.1f MB (%d intermediate gradients of %.1f MB)\n",
	       fwd / 1048576.0, peak / 1048576.0, 2 * DEPTH, act / 1048576.0);
	heap_free(x);
	ctx_free(ctx);
}

/* ---------------------------------------------------------------------------------------------- */
/* RNG */

static void test_rng(void)
{
	Rng a, b, c;
	rng_seed(&a, 42);
	rng_seed(&b, 42);
	rng_seed(&c, 43);
	int same = 1, differ = 0;
	for (int i = 0; i < 1000; i++) {
		uint64_t x = rng_u64(&a), y = rng_u64(&b), z = rng_u64(&c);
		same &= x == y;
		differ |= x != z;
	}
	CHECK(same, "same seed gives different streams");
	CHECK(differ, "different seeds give the same stream");

	Ctx *c1 = ctx_new(5), *c2 = ctx_new(5);
	CHECK(rng_u64(ctx_rng(c1)) == rng_u64(ctx_rng(c2)), "contexts with one seed differ");
	ctx_free(c1);
	ctx_free(c2);

	/* the saved state replays exactly (checkpoints rely on this) */
	Rng saved = a;
	float u1 = rng_uniform(&a), n1 = rng_normal(&a);
	a = saved;
	CHECK(rng_uniform(&a) == u1 && rng_normal(&a) == n1, "restored state does not replay");

	double sum = 0, sq = 0;
	int in_range = 1;
	const int N = 200000;
	for (int i = 0; i < N; i++) {
		float u = rng_uniform(&a);
		in_range &= u >= 0.0f && u < 1.0f;
		double z = rng_normal(&a);
		sum += z;
		sq += z * z;
	}
	double mean = sum / N, var = sq / N - mean * mean;
	CHECK(in_range, "uniform out of [0,1)");
	CHECK(fabs(mean) < 0.01 && fabs(var - 1.0) < 0.02, "normal mean %g var %g", mean, var);

	int perm[100], seen[100] = { 0 }, ok = 1;
	rng_permutation(&a, perm, 100);
	for (int i = 0; i < 100; i++) {
		ok &= perm[i] >= 0 && perm[i] < 100 && !seen[perm[i]];
		if (perm[i] >= 0 && perm[i] < 100)
			seen[perm[i]] = 1;
	}
	CHECK(ok, "rng_permutation is not a permutation");
	int below_ok = 1;
	for (int i = 0; i < 10000; i++)
		below_ok &= rng_below(&a, 7) < 7;
	CHECK(below_ok, "rng_below out of range");

	Rng p1, p2;
	rng_seed(&p1, 9);
	rng_seed(&p2, 9);
	Rng f1 = rng_fork(&p1), f2 = rng_fork(&p2);
	CHECK(rng_u64(&f1) == rng_u64(&f2), "fork not deterministic");
	CHECK(rng_u64(&f1) != rng_u64(&p1), "fork equals parent stream");
}

/* ---------------------------------------------------------------------------------------------- */
/* detach and grad mode */

static void test_detach(void)
{
	Ctx *ctx = ctx_new(1);
	Tensor *x = heap_tensor(1, (int[]){ 4 }, 1);
	for (int i = 0; i < 4; i++)
		x->data[i] = (float)i - 1.5f;

	Tensor *d = op_detach(ctx, x);
	CHECK(d->data == x->data, "detach copied the data");
	CHECK(!d->requires_grad, "detached tensor requires grad");
	Tensor *only = op_exp(ctx, d);
	CHECK(!only->requires_grad, "op on a detached tensor requires grad");

	/* loss = sum(x*x + detach(x)) -> d/dx = 2x, not 2x + 1 */
	Tensor *y = op_add(ctx, op_mul(ctx, x, x), d);
	Tensor *loss = op_sum(ctx, y, OP_ALL, 0);
	CHECK(ctx_backward(ctx, loss) == 0, "backward");
	for (int i = 0; i < 4; i++)
		CHECK(close_to(x->grad[i], 2.0f * x->data[i], 1e-6f), "grad[%d] %g want %g", i,
		      x->grad[i], 2.0f * x->data[i]);

	/* grad mode off: nothing is recorded */
	ctx_reset(ctx);
	int prev = ctx_set_grad_enabled(ctx, 0);
	CHECK(prev == 1, "grad mode should start on");
	Tensor *e = op_tanh(ctx, x);
	CHECK(!e->requires_grad, "grad mode off but output requires grad");
	CHECK(ctx_backward(ctx, op_sum(ctx, e, OP_ALL, 0)) != 0, "backward without a tape succeeded");
	ctx_set_grad_enabled(ctx, prev);

	/* reshape shares data but has its own grad */
	ctx_reset(ctx);
	memset(x->grad, 0, 4 * sizeof(float));
	Tensor *r = op_reshape(ctx, x, 2, (int[]){ 2, -1 });
	CHECK(r->data == x->data && r->shape[1] == 2, "reshape view");
	CHECK(ctx_backward(ctx, op_sum(ctx, op_scale(ctx, r, 3.0f), OP_ALL, 0)) == 0, "backward");
	CHECK(r->grad != x->grad, "reshape shares the grad buffer");
	for (int i = 0; i < 4; i++)
		CHECK(x->grad[i] == 3.0f, "grad through reshape %g", x->grad[i]);

	heap_free(x);
	ctx_free(ctx);
}

/* ---------------------------------------------------------------------------------------------- */
/* broadcasting and other forward values against hand-computed numbers */

static Tensor *from(Ctx *ctx, int ndim, const int *shape, const float *v)
{
	Tensor *t = ctx_tensor(ctx, ndim, shape);
	memcpy(t->data, v, t->size * sizeof(float));
	return t;
}

static void expect(const char *what, const Tensor *t, int ndim, const int *shape, const float *v)
{
	int ok = t->ndim == ndim;
	for (int d = 0; ok && d < ndim; d++)
		ok = t->shape[d] == shape[d];
	char buf[64];
	CHECK(ok, "%s: shape %s", what, tensor_shape_str(t, buf, sizeof buf));
	if (!ok)
		return;
	for (size_t i = 0; i < t->size; i++)
		CHECK(close_to(t->data[i], v[i], 1e-6f), "%s[%zu] = %g, want %g", what, i, t->data[i],
		      v[i]);
}

static void test_broadcast(void)
{
	Ctx *ctx = ctx_new(1);
	Tensor *a = from(ctx, 2, (int[]){ 2, 3 }, (float[]){ 1, 2, 3, 4, 5, 6 });
	Tensor *row = from(ctx, 1, (int[]){ 3 }, (float[]){ 10, 20, 30 });
	Tensor *col = from(ctx, 2, (int[]){ 2, 1 }, (float[]){ 100, 200 });
	Tensor *one = from(ctx, 1, (int[]){ 1 }, (float[]){ 2 });

	expect("add (2,3)+(3)", op_add(ctx, a, row), 2, (int[]){ 2, 3 },
	       (float[]){ 11, 22, 33, 14, 25, 36 });
	expect("sub (2,3)-(2,1)", op_sub(ctx, a, col), 2, (int[]){ 2, 3 },
	       (float[]){ -99, -98, -97, -196, -195, -194 });
	expect("sub (3)-(2,3)", op_sub(ctx, row, a), 2, (int[]){ 2, 3 },
	       (float[]){ 9, 18, 27, 6, 15, 24 });
	expect("mul (2,1)*(3)", op_mul(ctx, col, row), 2, (int[]){ 2, 3 },
	       (float[]){ 1000, 2000, 3000, 2000, 4000, 6000 });
	expect("div (2,3)/(1)", op_div(ctx, a, one), 2, (int[]){ 2, 3 },
	       (float[]){ 0.5f, 1, 1.5f, 2, 2.5f, 3 });
	expect("div (1)/(2,3)", op_div(ctx, one, a), 2, (int[]){ 2, 3 },
	       (float[]){ 2, 1, 2.0f / 3, 0.5f, 0.4f, 2.0f / 6 });

	/* (2,2,1,2) + (1,2,1,1): per-channel */
	Tensor *x4 = from(ctx, 4, (int[]){ 2, 2, 1, 2 }, (float[]){ 1, 2, 3, 4, 5, 6, 7, 8 });
	Tensor *ch = from(ctx, 4, (int[]){ 1, 2, 1, 1 }, (float[]){ 10, 20 });
	expect("add channel", op_add(ctx, x4, ch), 4, (int[]){ 2, 2, 1, 2 },
	       (float[]){ 11, 12, 23, 24, 15, 16, 27, 28 });
	/* (2,1,3) * (2,1) -> (2,2,3) */
	Tensor *p = from(ctx, 3, (int[]){ 2, 1, 3 }, (float[]){ 1, 2, 3, 4, 5, 6 });
	Tensor *q = from(ctx, 2, (int[]){ 2, 1 }, (float[]){ 1, -1 });
	expect("mul (2,1,3)*(2,1)", op_mul(ctx, p, q), 3, (int[]){ 2, 2, 3 },
	       (float[]){ 1, 2, 3, -1, -2, -3, 4, 5, 6, -4, -5, -6 });

	/* backward reduces the broadcast dims: d sum(a*row)/d row = column sums of a */
	Tensor *ra = heap_tensor(1, (int[]){ 3 }, 1);
	memcpy(ra->data, (float[]){ 10, 20, 30 }, sizeof(float[3]));
	Tensor *ca = heap_tensor(2, (int[]){ 2, 1 }, 1);
	memcpy(ca->data, (float[]){ 1, 2 }, sizeof(float[2]));
	Tensor *l = op_sum(ctx, op_div(ctx, op_mul(ctx, a, ra), ca), OP_ALL, 0);
	CHECK(ctx_backward(ctx, l) == 0, "backward");
	/* l = sum_ij a_ij r_j / c_i; dl/dr_j = sum_i a_ij / c_i; dl/dc_i = -sum_j a_ij r_j / c_i^2 */
	const float want_r[3] = { 1 + 4 / 2.0f, 2 + 5 / 2.0f, 3 + 6 / 2.0f };
	const float want_c[2] = { -(10 + 40 + 90) / 1.0f, -(40 + 100 + 180) / 4.0f };
	for (int j = 0; j < 3; j++)
		CHECK(close_to(ra->grad[j], want_r[j], 1e-5f), "d row[%d] %g want %g", j, ra->grad[j],
		      want_r[j]);
	for (int i = 0; i < 2; i++)
		CHECK(close_to(ca->grad[i], want_c[i], 1e-5f), "d col[%d] %g want %g", i, ca->grad[i],
		      want_c[i]);

	/* reductions, softmax, shape ops */
	expect("sum axis 0", op_sum(ctx, a, 0, 0), 1, (int[]){ 3 }, (float[]){ 5, 7, 9 });
	expect("mean axis 1 keepdim", op_mean(ctx, a, 1, 1), 2, (int[]){ 2, 1 }, (float[]){ 2, 5 });
	expect("max axis -1", op_max(ctx, a, -1, 0), 1, (int[]){ 2 }, (float[]){ 3, 6 });
	expect("sum all", op_sum(ctx, a, OP_ALL, 0), 1, (int[]){ 1 }, (float[]){ 21 });
	float e1 = expf(1), e2 = expf(2), e3 = expf(3), s = e1 + e2 + e3;
	expect("softmax", op_softmax(ctx, a), 2, (int[]){ 2, 3 },
	       (float[]){ e1 / s, e2 / s, e3 / s, e1 / s, e2 / s, e3 / s });
	expect("log_softmax", op_log_softmax(ctx, a), 2, (int[]){ 2, 3 },
	       (float[]){ 1 - logf(s), 2 - logf(s), 3 - logf(s), 1 - logf(s), 2 - logf(s),
	                  3 - logf(s) });
	expect("transpose", op_transpose(ctx, a, 0, 1), 2, (int[]){ 3, 2 },
	       (float[]){ 1, 4, 2, 5, 3, 6 });
	expect("concat axis 1", op_concat(ctx, (Tensor *[]){ a, col }, 2, 1), 2, (int[]){ 2, 4 },
	       (float[]){ 1, 2, 3, 100, 4, 5, 6, 200 });
	expect("slice axis 1", op_slice(ctx, a, 1, 1, 2), 2, (int[]){ 2, 2 },
	       (float[]){ 2, 3, 5, 6 });
	expect("gather rows", op_gather_rows(ctx, a, (int[]){ 1, 1, 0 }, 3), 2, (int[]){ 3, 3 },
	       (float[]){ 4, 5, 6, 4, 5, 6, 1, 2, 3 });
	expect("l2_normalize", op_l2_normalize(ctx, from(ctx, 1, (int[]){ 2 }, (float[]){ 3, 4 }), 1e-12f),
	       1, (int[]){ 2 }, (float[]){ 0.6f, 0.8f });
	expect("clamp", op_clamp(ctx, a, 2, 5), 2, (int[]){ 2, 3 }, (float[]){ 2, 2, 3, 4, 5, 5 });
	expect("gelu", op_gelu(ctx, from(ctx, 1, (int[]){ 3 }, (float[]){ -1, 0, 1 })), 1, (int[]){ 3 },
	       (float[]){ -0.158808f, 0.0f, 0.841192f });
	/* large logits must not overflow */
	Tensor *big = from(ctx, 1, (int[]){ 2 }, (float[]){ 1000, 1000 });
	expect("softmax large", op_softmax(ctx, big), 1, (int[]){ 2 }, (float[]){ 0.5f, 0.5f });

	heap_free(ra);
	heap_free(ca);
	ctx_free(ctx);
}

/* ---------------------------------------------------------------------------------------------- */
/* matmul against plain loops */

/* op(A)[i][k] for A stored row-major as (M,K), or (K,M) when ta */
static float at(const float *a, int ta, int rows, int cols, int i, int k)
{
	return ta ? a[(size_t)k * rows + i] : a[(size_t)i * cols + k];
}

static void check_mm(Ctx *ctx, Rng *r, int batch, int M, int N, int K, int ta, int tb, int use_bmm)
{
	ctx_reset(ctx);
	int sa[3] = { batch, ta ? K : M, ta ? M : K }, sb[3] = { batch, tb ? N : K, tb ? K : N };
	Tensor *a = heap_tensor(use_bmm ? 3 : 2, use_bmm ? sa : sa + 1, 1);
	Tensor *b = heap_tensor(use_bmm ? 3 : 2, use_bmm ? sb : sb + 1, 1);
	fill_uniform(a, r, -1, 1);
	fill_uniform(b, r, -1, 1);
	Tensor *c = use_bmm ? op_bmm(ctx, a, b, ta, tb) : op_matmul(ctx, a, b, ta, tb);
	Tensor *g = ctx_tensor_like(ctx, c);
	fill_uniform(g, r, -1, 1);
	CHECK(ctx_backward(ctx, op_sum(ctx, op_mul(ctx, c, g), OP_ALL, 0)) == 0, "backward");

	/* reference and sum |term| of every element of c, dA, dB (tolerance.h): an element of c
	 * sums K products, of dA N, of dB M */
	const size_t nc = (size_t)batch * M * N, na = (size_t)batch * M * K, nb = (size_t)batch * K * N;
	double *ref = calloc(nc + na + nb, sizeof *ref), *mag = calloc(nc + na + nb, sizeof *mag);
	if (!ref || !mag) {
		CHECK(0, "out of memory");
		goto done;
	}
	double *rc = ref, *ra = ref + nc, *rb = ra + na, *mc = mag, *ma = mag + nc, *mb = ma + na;
	for (int bi = 0; bi < batch; bi++) {
		const float *ab = a->data + (size_t)bi * M * K, *bb = b->data + (size_t)bi * K * N;
		const float *gb = g->data + (size_t)bi * M * N;
		for (int i = 0; i < M; i++)
			for (int j = 0; j < N; j++) {
				double acc = 0, m = 0;
				for (int k = 0; k < K; k++) {
					const double t = (double)at(ab, ta, M, K, i, k) * at(bb, tb, K, N, k, j);
					acc += t, m += fabs(t);
				}
				rc[((size_t)bi * M + i) * N + j] = acc, mc[((size_t)bi * M + i) * N + j] = m;
			}
		/* dA[i][k] = sum_j g[i][j] op(B)[k][j], stored transposed when ta */
		for (int i = 0; i < M; i++)
			for (int k = 0; k < K; k++) {
				double acc = 0, m = 0;
				for (int j = 0; j < N; j++) {
					const double t = (double)gb[i * N + j] * at(bb, tb, K, N, k, j);
					acc += t, m += fabs(t);
				}
				size_t idx = (size_t)bi * M * K + (ta ? (size_t)k * M + i : (size_t)i * K + k);
				ra[idx] = acc, ma[idx] = m;
			}
		for (int k = 0; k < K; k++)
			for (int j = 0; j < N; j++) {
				double acc = 0, m = 0;
				for (int i = 0; i < M; i++) {
					const double t = (double)at(ab, ta, M, K, i, k) * gb[i * N + j];
					acc += t, m += fabs(t);
				}
				size_t idx = (size_t)bi * K * N + (tb ? (size_t)j * K + k : (size_t)k * N + j);
				rb[idx] = acc, mb[idx] = m;
			}
	}
	char what[96];
	const char *op = use_bmm ? "bmm" : "matmul";
	snprintf(what, sizeof what, "%s batch=%d M=%d N=%d K=%d ta=%d tb=%d", op, batch, M, N, K, ta,
	         tb);
	failures += tol_check(what, c->data, rc, mc, nc, K);
	snprintf(what, sizeof what, "%s batch=%d M=%d N=%d K=%d ta=%d tb=%d dA", op, batch, M, N, K, ta,
	         tb);
	failures += tol_check(what, a->grad, ra, ma, na, N);
	snprintf(what, sizeof what, "%s batch=%d M=%d N=%d K=%d ta=%d tb=%d dB", op, batch, M, N, K, ta,
	         tb);
	failures += tol_check(what, b->grad, rb, mb, nb, M);
done:
	free(ref);
	free(mag);
	heap_free(a);
	heap_free(b);
}

static void test_matmul(void)
{
	Ctx *ctx = ctx_new(3);
	Rng r;
	rng_seed(&r, 99);
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			check_mm(ctx, &r, 1, 7, 5, 9, ta, tb, 0);
			check_mm(ctx, &r, 1, 33, 65, 17, ta, tb, 0);
			check_mm(ctx, &r, 3, 6, 4, 5, ta, tb, 1);
		}
	/* 3-D a with 2-D b is (B*M,K) x (K,N) */
	ctx_reset(ctx);
	Tensor *a = ctx_tensor(ctx, 3, (int[]){ 2, 3, 4 });
	Tensor *b = ctx_tensor(ctx, 2, (int[]){ 4, 5 });
	fill_uniform(a, &r, -1, 1);
	fill_uniform(b, &r, -1, 1);
	Tensor *c = op_matmul(ctx, a, b, 0, 0);
	CHECK(c->ndim == 3 && c->shape[0] == 2 && c->shape[1] == 3 && c->shape[2] == 5,
	      "3-D matmul shape");
	double ref[30], mag[30];
	for (int i = 0; i < 6; i++)
		for (int j = 0; j < 5; j++) {
			double acc = 0, m = 0;
			for (int k = 0; k < 4; k++) {
				const double t = (double)a->data[i * 4 + k] * b->data[k * 5 + j];
				acc += t, m += fabs(t);
			}
			ref[i * 5 + j] = acc, mag[i * 5 + j] = m;
		}
	failures += tol_check("3-D matmul", c->data, ref, mag, 30, 4);
	ctx_free(ctx);
}

/* ---------------------------------------------------------------------------------------------- */
/* op_linear (the bias written into sgemm's output) against plain loops. fresh: x, w and b are
 * intermediates whose gradient buffers op_linear's backward is the first to write (sgemm stores,
 * db starts from dy's first row); else x also feeds a later op whose backward runs first, and w,
 * b are parameters whose gradients already hold a value, so all three must be added to. */

static void check_linear(Ctx *ctx, Rng *r, int M, int N, int K, int bias, int x3d, int fresh)
{
	ctx_reset(ctx);
	Tensor *x0 = heap_tensor(2, (int[]){ M, K }, 1), *w0 = heap_tensor(2, (int[]){ N, K }, 1);
	Tensor *b0 = heap_tensor(1, (int[]){ N }, 1);
	fill_uniform(x0, r, -1, 1);
	fill_uniform(w0, r, -1, 1);
	fill_uniform(b0, r, -1, 1);
	float *gw0 = calloc(w0->size, sizeof *gw0), *gb0 = calloc(N, sizeof *gb0);
	if (!fresh) {
		for (size_t i = 0; i < w0->size; i++)
			gw0[i] = w0->grad[i] = rng_uniform_range(r, -1, 1);
		for (int j = 0; j < N; j++)
			gb0[j] = b0->grad[j] = rng_uniform_range(r, -1, 1);
	}
	Tensor *x = op_scale(ctx, x0, 1.0f);
	if (x3d)
		x = op_reshape(ctx, x, 3, (int[]){ 1, M, K });
	Tensor *w = fresh ? op_scale(ctx, w0, 1.0f) : w0;
	Tensor *b = bias ? (fresh ? op_scale(ctx, b0, 1.0f) : b0) : NULL;
	Tensor *y = op_linear(ctx, x, w, b);
	CHECK(y->ndim == (x3d ? 3 : 2) && y->shape[y->ndim - 1] == N &&
	      y->shape[y->ndim - 2] == M, "op_linear shape");
	Tensor *g = ctx_tensor_like(ctx, y), *h = ctx_tensor_like(ctx, x);
	fill_uniform(g, r, -1, 1);
	fill_uniform(h, r, -1, 1);
	Tensor *loss = op_sum(ctx, op_mul(ctx, y, g), OP_ALL, 0);
	if (!fresh)
		loss = op_add(ctx, loss, op_sum(ctx, op_mul(ctx, x, h), OP_ALL, 0));
	CHECK(ctx_backward(ctx, loss) == 0, "backward");

	const size_t ny = (size_t)M * N, nx = (size_t)M * K, nw = (size_t)N * K;
	double *ref = calloc(ny + nx + nw + N, sizeof *ref), *mag = calloc(ny + nx + nw + N, sizeof *mag);
	if (!ref || !mag || !gw0 || !gb0) {
		CHECK(0, "out of memory");
		goto done;
	}
	double *ry = ref, *rx = ry + ny, *rw = rx + nx, *rb = rw + nw;
	double *my = mag, *mx = my + ny, *mw = mx + nx, *mb = mw + nw;
	const float *xd = x0->data, *wd = w0->data, *gd = g->data;
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			double acc = bias ? b0->data[j] : 0.0, m = fabs(acc);
			for (int k = 0; k < K; k++) {
				const double t = (double)xd[(size_t)i * K + k] * wd[(size_t)j * K + k];
				acc += t, m += fabs(t);
			}
			ry[(size_t)i * N + j] = acc, my[(size_t)i * N + j] = m;
		}
	for (int i = 0; i < M; i++)
		for (int k = 0; k < K; k++) {
			double acc = fresh ? 0.0 : h->data[(size_t)i * K + k], m = fabs(acc);
			for (int j = 0; j < N; j++) {
				const double t = (double)gd[(size_t)i * N + j] * wd[(size_t)j * K + k];
				acc += t, m += fabs(t);
			}
			rx[(size_t)i * K + k] = acc, mx[(size_t)i * K + k] = m;
		}
	for (int j = 0; j < N; j++) {
		for (int k = 0; k < K; k++) {
			double acc = gw0[(size_t)j * K + k], m = fabs(acc);
			for (int i = 0; i < M; i++) {
				const double t = (double)gd[(size_t)i * N + j] * xd[(size_t)i * K + k];
				acc += t, m += fabs(t);
			}
			rw[(size_t)j * K + k] = acc, mw[(size_t)j * K + k] = m;
		}
		double acc = gb0[j], m = fabs(acc);
		for (int i = 0; i < M; i++)
			acc += gd[(size_t)i * N + j], m += fabs(gd[(size_t)i * N + j]);
		rb[j] = acc, mb[j] = m;
	}
	char what[96];
	snprintf(what, sizeof what, "linear M=%d N=%d K=%d bias=%d x3d=%d fresh=%d", M, N, K, bias,
	         x3d, fresh);
	/* each element sums K products (y), N (dx), M (dw, db), plus the bias or the earlier value */
	failures += tol_check(what, y->data, ry, my, ny, K + 1);
	failures += tol_check(what, x0->grad, rx, mx, nx, N + 1);
	failures += tol_check(what, w0->grad, rw, mw, nw, M + 1);
	if (bias)
		failures += tol_check(what, b0->grad, rb, mb, (size_t)N, M + 1);
	else
		for (int j = 0; j < N; j++)
			CHECK(b0->grad[j] == gb0[j], "%s: unused bias got a gradient", what);
done:
	free(ref);
	free(mag);
	free(gw0);
	free(gb0);
	heap_free(x0);
	heap_free(w0);
	heap_free(b0);
}

static void test_linear(void)
{
	Ctx *ctx = ctx_new(3);
	Rng r;
	rng_seed(&r, 7);
	for (int fresh = 0; fresh < 2; fresh++)
		for (int bias = 0; bias < 2; bias++) {
			check_linear(ctx, &r, 5, 3, 4, bias, 0, fresh);
			/* over parallel_sgemm's split threshold: the product runs in parts on 3 threads */
			check_linear(ctx, &r, 257, 130, 70, bias, fresh, fresh);
		}
	ctx_free(ctx);
}

/* ---------------------------------------------------------------------------------------------- */
/* shape errors abort with a message naming the op and both shapes */

/* bad() must abort with a message on stderr that contains want. */
static void expect_abort(void (*bad)(void), const char *want)
{
	int fds[2];
	if (pipe(fds) != 0) {
		CHECK(0, "pipe failed");
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		bad();
		_exit(0); /* not reached when the op aborts */
	}
	close(fds[1]);
	char buf[512] = "";
	size_t got = 0;
	ssize_t k;
	while (got < sizeof buf - 1 && (k = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)k;
	buf[got] = 0;
	close(fds[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "%s: no abort", want);
	CHECK(strstr(buf, want) != NULL, "unexpected message: %s", buf);
}

static void bad_add(void)
{
	Ctx *ctx = ctx_new(1);
	op_add(ctx, ctx_zeros(ctx, 2, (int[]){ 2, 3 }), ctx_zeros(ctx, 2, (int[]){ 4, 3 }));
}

static void bad_linear(void)
{
	Ctx *ctx = ctx_new(1);
	op_linear(ctx, ctx_zeros(ctx, 2, (int[]){ 2, 3 }), ctx_zeros(ctx, 2, (int[]){ 4, 5 }),
	          ctx_zeros(ctx, 1, (int[]){ 4 }));
}

static void test_shape_error(void)
{
	expect_abort(bad_add, "op_add: shapes (2,3) and (4,3) do not broadcast");
	expect_abort(bad_linear, "op_linear: x (2,3), weight (4,5) and bias (4) do not match");
}

int main(void)
{
	eng_set_threads(1);
	test_arena();
	test_grad_reuse();
	test_rng();
	test_detach();
	test_broadcast();
	test_matmul();
	test_linear();
	test_shape_error();
	return check_exit("test_ctx");
}
