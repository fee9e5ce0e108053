/* gradcheck_basic.c - gradient checks for every op of engine/ops_basic.c.
 *
 * Shapes are small (each element costs two forward passes) but chosen to reach every code path:
 * all four matmul transposes, each broadcasting pattern (same shape, bias, per-channel, outer
 * product, a broadcast on the left, scalar), reductions over every axis position, the tiled and
 * contiguous permute paths, concat with more inputs than a node holds. Inputs are drawn inside
 * each op's domain and away from kinks; it does not check forward values against references
 * (test_ctx does that for broadcasting and matmul).
 */
#include "gradcheck.h"

#include <stdio.h>

typedef struct Args {
	int i[6];
	float f[2];
	const int *idx;
	int nidx;
} Args;

#define ARGS(...) (&(Args){ __VA_ARGS__ })

/* ---------------------------------------------------------------------------------------------- */
/* build functions */

static Tensor *b_matmul(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_matmul(ctx, in[0], in[1], a->i[0], a->i[1]);
}

static Tensor *b_bmm(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_bmm(ctx, in[0], in[1], a->i[0], a->i[1]);
}

static Tensor *b_linear(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_linear(ctx, in[0], in[1], a->i[0] ? in[2] : NULL);
}

static Tensor *b_add(Ctx *ctx, Tensor **in, void *u) { return op_add(ctx, in[0], in[1]); }
static Tensor *b_sub(Ctx *ctx, Tensor **in, void *u) { return op_sub(ctx, in[0], in[1]); }
static Tensor *b_mul(Ctx *ctx, Tensor **in, void *u) { return op_mul(ctx, in[0], in[1]); }
static Tensor *b_div(Ctx *ctx, Tensor **in, void *u) { return op_div(ctx, in[0], in[1]); }
static Tensor *b_mul_self(Ctx *ctx, Tensor **in, void *u) { return op_mul(ctx, in[0], in[0]); }

static Tensor *b_scale(Ctx *ctx, Tensor **in, void *u) { return op_scale(ctx, in[0], -1.7f); }
static Tensor *b_add_scalar(Ctx *ctx, Tensor **in, void *u)
{
	return op_add_scalar(ctx, in[0], 0.3f);
}
static Tensor *b_square(Ctx *ctx, Tensor **in, void *u) { return op_square(ctx, in[0]); }
static Tensor *b_clamp(Ctx *ctx, Tensor **in, void *u) { return op_clamp(ctx, in[0], -0.5f, 0.7f); }

static Tensor *b_sum(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_sum(ctx, in[0], a->i[0], a->i[1]);
}
static Tensor *b_mean(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_mean(ctx, in[0], a->i[0], a->i[1]);
}
static Tensor *b_max(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_max(ctx, in[0], a->i[0], a->i[1]);
}

static Tensor *b_relu(Ctx *ctx, Tensor **in, void *u) { return op_relu(ctx, in[0]); }
static Tensor *b_leaky(Ctx *ctx, Tensor **in, void *u) { return op_leaky_relu(ctx, in[0], 0.1f); }
static Tensor *b_gelu(Ctx *ctx, Tensor **in, void *u) { return op_gelu(ctx, in[0]); }
static Tensor *b_tanh(Ctx *ctx, Tensor **in, void *u) { return op_tanh(ctx, in[0]); }
static Tensor *b_sigmoid(Ctx *ctx, Tensor **in, void *u) { return op_sigmoid(ctx, in[0]); }
static Tensor *b_exp(Ctx *ctx, Tensor **in, void *u) { return op_exp(ctx, in[0]); }
static Tensor *b_log(Ctx *ctx, Tensor **in, void *u) { return op_log(ctx, in[0]); }
static Tensor *b_sqrt(Ctx *ctx, Tensor **in, void *u) { return op_sqrt(ctx, in[0]); }
static Tensor *b_pow(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_pow(ctx, in[0], a->f[0]);
}
static Tensor *b_softmax(Ctx *ctx, Tensor **in, void *u) { return op_softmax(ctx, in[0]); }
static Tensor *b_log_softmax(Ctx *ctx, Tensor **in, void *u) { return op_log_softmax(ctx, in[0]); }

static Tensor *b_reshape(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_reshape(ctx, in[0], a->i[0], &a->i[1]);
}
/* two views of one tensor multiplied: each view's gradient must reach x (d = 2x) */
static Tensor *b_reshape_twice(Ctx *ctx, Tensor **in, void *u)
{
	Tensor *v1 = op_reshape(ctx, in[0], 1, SHP(-1));
	Tensor *v2 = op_reshape(ctx, in[0], 1, SHP((int)in[0]->size));
	return op_mul(ctx, v1, v2);
}

/* of an intermediate y used twice: the first backward stores into y's new gradient buffer, the
 * second adds to it */
static Tensor *b_permute_twice(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	Tensor *y = op_scale(ctx, in[0], 1.5f);
	return op_mul(ctx, op_permute(ctx, y, a->i), op_permute(ctx, y, a->i));
}

/* of intermediates, whose gradient buffers the product's backward is first to write */
static Tensor *b_matmul_fresh(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_matmul(ctx, op_scale(ctx, in[0], 1.5f), op_scale(ctx, in[1], -0.5f), a->i[0],
	                 a->i[1]);
}

static Tensor *b_permute(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_permute(ctx, in[0], a->i);
}
static Tensor *b_transpose(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_transpose(ctx, in[0], a->i[0], a->i[1]);
}

static Tensor *b_concat(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_concat(ctx, in, a->i[0], a->i[1]);
}
static Tensor *b_slice(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_slice(ctx, in[0], a->i[0], a->i[1], a->i[2]);
}
/* One process (the gradcheck's): the gather is a copy; across ranks the mpi suite checks it. */
static Tensor *b_dist_gather(Ctx *ctx, Tensor **in, void *u)
{
	return op_dist_gather_rows(ctx, in[0], ((const Args *)u)->i[0]);
}

static Tensor *b_gather(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_gather_rows(ctx, in[0], a->idx, a->nidx);
}
static Tensor *b_embedding(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_embedding(ctx, in[0], a->idx, a->nidx);
}
static Tensor *b_l2n(Ctx *ctx, Tensor **in, void *u)
{
	const Args *a = u;
	return op_l2_normalize(ctx, in[0], a->f[0]);
}

/* ---------------------------------------------------------------------------------------------- */

static void check2(const char *label, OpKind k, gc_build_fn f, void *u, Tensor *a, Tensor *b)
{
	Tensor *in[2] = { a, b };
	gc_check(label, k, f, u, in, 2, TOL);
}

static void check1(const char *label, OpKind k, gc_build_fn f, void *u, Tensor *a)
{
	gc_check(label, k, f, u, &a, 1, TOL);
}

static void cases_matmul(void)
{
	char label[64];
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			Tensor *a = ta ? IN(-1, 1, 4, 3) : IN(-1, 1, 3, 4);
			Tensor *b = tb ? IN(-1, 1, 5, 4) : IN(-1, 1, 4, 5);
			snprintf(label, sizeof label, "matmul ta=%d tb=%d", ta, tb);
			check2(label, OP_MATMUL, b_matmul, ARGS(.i = { ta, tb }), a, b);
		}
	check2("matmul 3-D a (2,3,4)x(4,5)", OP_MATMUL, b_matmul, ARGS(.i = { 0, 0 }),
	       IN(-1, 1, 2, 3, 4), IN(-1, 1, 4, 5));
	check2("matmul 3-D a x b^T", OP_MATMUL, b_matmul, ARGS(.i = { 0, 1 }),
	       IN(-1, 1, 2, 3, 4), IN(-1, 1, 5, 4));
	check2("matmul b constant", OP_MATMUL, b_matmul, ARGS(.i = { 0, 0 }),
	       IN(-1, 1, 3, 4), CONST(-1, 1, 4, 2));
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			Tensor *a = ta ? IN(-1, 1, 2, 4, 3) : IN(-1, 1, 2, 3, 4);
			Tensor *b = tb ? IN(-1, 1, 2, 5, 4) : IN(-1, 1, 2, 4, 5);
			snprintf(label, sizeof label, "bmm ta=%d tb=%d", ta, tb);
			check2(label, OP_MATMUL, b_bmm, ARGS(.i = { ta, tb }), a, b);
		}
	check2("bmm 4-D (2,2,3,4)x(2,2,3,4)^T", OP_MATMUL, b_bmm, ARGS(.i = { 0, 1 }),
	       IN(-1, 1, 2, 2, 3, 4), IN(-1, 1, 2, 2, 3, 4));
	check2("bmm shared 2-D b", OP_MATMUL, b_bmm, ARGS(.i = { 0, 0 }),
	       IN(-1, 1, 3, 2, 4), IN(-1, 1, 4, 3));
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			snprintf(label, sizeof label, "matmul of intermediates ta=%d tb=%d", ta, tb);
			check2(label, OP_MATMUL, b_matmul_fresh, ARGS(.i = { ta, tb }),
			       ta ? IN(-1, 1, 4, 3) : IN(-1, 1, 3, 4), tb ? IN(-1, 1, 5, 4) : IN(-1, 1, 4, 5));
		}
	gc_check("linear x (3,4) w (5,4) b (5)", OP_MATMUL, b_linear, ARGS(.i = { 1 }),
	         (Tensor *[]){ IN(-1, 1, 3, 4), IN(-1, 1, 5, 4), IN(-1, 1, 5) }, 3, TOL);
	gc_check("linear 3-D x (2,3,4), no bias", OP_MATMUL, b_linear, ARGS(.i = { 0 }),
	         (Tensor *[]){ IN(-1, 1, 2, 3, 4), IN(-1, 1, 5, 4) }, 2, TOL);
}

static void cases_binary(void)
{
	static const struct {
		OpKind kind;
		const char *name;
		gc_build_fn f;
	} ops[] = {
		{ OP_ADD, "add", b_add }, { OP_SUB, "sub", b_sub },
		{ OP_MUL, "mul", b_mul }, { OP_DIV, "div", b_div },
	};
	/* (shape of a, shape of b) pairs covering each broadcasting pattern */
	static const struct {
		const char *what;
		int na, a[4], nb, b[4];
	} pats[] = {
		{ "same (3,4)", 2, { 3, 4 }, 2, { 3, 4 } },
		{ "bias (3,4)+(4)", 2, { 3, 4 }, 1, { 4 } },
		{ "channel (2,3,2,2)+(1,3,1,1)", 4, { 2, 3, 2, 2 }, 4, { 1, 3, 1, 1 } },
		{ "column (3,4)+(3,1)", 2, { 3, 4 }, 2, { 3, 1 } },
		{ "outer (3,1)+(1,4)", 2, { 3, 1 }, 2, { 1, 4 } },
		{ "left (4)+(2,3,4)", 1, { 4 }, 3, { 2, 3, 4 } },
		{ "mixed (2,1,3)+(4,1)", 3, { 2, 1, 3 }, 2, { 4, 1 } },
		{ "scalar (3,4)+(1)", 2, { 3, 4 }, 1, { 1 } },
		{ "scalar left (1)+(2,3)", 1, { 1 }, 2, { 2, 3 } },
	};
	char label[96];
	for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
		for (size_t p = 0; p < sizeof pats / sizeof pats[0]; p++) {
			Tensor *a = gc_input(pats[p].na, pats[p].a, -1.0f, 1.0f);
			Tensor *b = ops[o].kind == OP_DIV ? gc_input(pats[p].nb, pats[p].b, 0.5f, 2.0f)
			                                   : gc_input(pats[p].nb, pats[p].b, -1.0f, 1.0f);
			snprintf(label, sizeof label, "%s %s", ops[o].name, pats[p].what);
			check2(label, ops[o].kind, ops[o].f, NULL, a, b);
		}
	check2("add, b constant", OP_ADD, b_add, NULL, IN(-1, 1, 3, 4), CONST(-1, 1, 4));
	check2("div, a constant", OP_DIV, b_div, NULL, CONST(-1, 1, 3, 4), IN(0.5f, 2, 3, 1));
	check1("mul x*x (same tensor twice)", OP_MUL, b_mul_self, NULL, IN(-1, 1, 3, 4));
}

static void cases_pointwise(void)
{
	check1("scale (3,4)", OP_SCALE, b_scale, NULL, IN(-1, 1, 3, 4));
	check1("add_scalar (3,4)", OP_ADD_SCALAR, b_add_scalar, NULL, IN(-1, 1, 3, 4));
	check1("square (3,4)", OP_SQUARE, b_square, NULL, IN(-2, 2, 3, 4));
	Tensor *c = IN(-1.5f, 1.5f, 4, 5);
	gc_keep_away(c, -0.5f, 0.05f);
	gc_keep_away(c, 0.7f, 0.05f);
	check1("clamp [-0.5,0.7] (4,5)", OP_CLAMP, b_clamp, NULL, c);
	Tensor *r = IN(-1, 1, 4, 5);
	gc_keep_away(r, 0.0f, 0.05f);
	check1("relu (4,5)", OP_RELU, b_relu, NULL, r);
	Tensor *l = IN(-1, 1, 4, 5);
	gc_keep_away(l, 0.0f, 0.05f);
	check1("leaky_relu 0.1 (4,5)", OP_LEAKY_RELU, b_leaky, NULL, l);
	check1("gelu (4,5)", OP_GELU, b_gelu, NULL, IN(-3, 3, 4, 5));
	check1("tanh (4,5)", OP_TANH, b_tanh, NULL, IN(-2, 2, 4, 5));
	check1("sigmoid (4,5)", OP_SIGMOID, b_sigmoid, NULL, IN(-4, 4, 4, 5));
	check1("exp (4,5)", OP_EXP, b_exp, NULL, IN(-2, 2, 4, 5));
	check1("log (4,5) in [0.2,3]", OP_LOG, b_log, NULL, IN(0.2f, 3, 4, 5));
	check1("sqrt (4,5) in [0.2,3]", OP_SQRT, b_sqrt, NULL, IN(0.2f, 3, 4, 5));
	check1("pow 2.5 (4,5) in [0.3,2]", OP_POW, b_pow, ARGS(.f = { 2.5f }), IN(0.3f, 2, 4, 5));
	check1("pow -1.5 (4,5) in [0.5,2]", OP_POW, b_pow, ARGS(.f = { -1.5f }), IN(0.5f, 2, 4, 5));
	check1("pow 3 (4,5) any sign", OP_POW, b_pow, ARGS(.f = { 3.0f }), IN(-1.5f, 1.5f, 4, 5));
	check1("softmax (3,5)", OP_SOFTMAX, b_softmax, NULL, IN(-3, 3, 3, 5));
	check1("softmax (2,3,4) large logits", OP_SOFTMAX, b_softmax, NULL, IN(40, 45, 2, 3, 4));
	check1("log_softmax (3,5)", OP_LOG_SOFTMAX, b_log_softmax, NULL, IN(-3, 3, 3, 5));
	check1("log_softmax (2,3,4)", OP_LOG_SOFTMAX, b_log_softmax, NULL, IN(-5, 5, 2, 3, 4));
	check1("softmax (2,37)", OP_SOFTMAX, b_softmax, NULL, IN(-3, 3, 2, 37));
	check1("log_softmax (2,37)", OP_LOG_SOFTMAX, b_log_softmax, NULL, IN(-3, 3, 2, 37));
}

static void cases_reduce(void)
{
	static const struct {
		OpKind kind;
		const char *name;
		gc_build_fn f;
	} ops[] = {
		{ OP_SUM, "sum", b_sum }, { OP_MEAN, "mean", b_mean }, { OP_MAX, "max", b_max },
	};
	static const int axes[] = { 0, 1, -1, OP_ALL };
	char label[96];
	for (size_t o = 0; o < 3; o++)
		for (size_t ai = 0; ai < sizeof axes / sizeof axes[0]; ai++)
			for (int keep = 0; keep < 2; keep++) {
				Tensor *x = IN(-1, 1, 2, 3, 4);
				if (ops[o].kind == OP_MAX)
					gc_fill_distinct(x, 0.1f);
				if (axes[ai] == OP_ALL)
					snprintf(label, sizeof label, "%s (2,3,4) all keepdim=%d", ops[o].name,
					         keep);
				else
					snprintf(label, sizeof label, "%s (2,3,4) axis %d keepdim=%d",
					         ops[o].name, axes[ai], keep);
				check1(label, ops[o].kind, ops[o].f, ARGS(.i = { axes[ai], keep }), x);
			}
	check1("sum (5) axis 0", OP_SUM, b_sum, ARGS(.i = { 0, 0 }), IN(-1, 1, 5));
	check1("mean (2,3,2,2) axis 2", OP_MEAN, b_mean, ARGS(.i = { 2, 0 }), IN(-1, 1, 2, 3, 2, 2));
	Tensor *m = IN(-1, 1, 2, 3, 2, 2);
	gc_fill_distinct(m, 0.1f);
	check1("max (2,3,2,2) axis 1", OP_MAX, b_max, ARGS(.i = { 1, 1 }), m);
	/* rows longer than the 8/16-lane partial reductions, with tails */
	Tensor *m21 = IN(-1, 1, 3, 21);
	gc_fill_distinct(m21, 0.05f);
	check1("max (3,21) axis -1", OP_MAX, b_max, ARGS(.i = { -1, 0 }), m21);
	check1("sum (2,37) axis 1", OP_SUM, b_sum, ARGS(.i = { 1, 0 }), IN(-1, 1, 2, 37));
	check1("mean (37,3) axis 0", OP_MEAN, b_mean, ARGS(.i = { 0, 0 }), IN(-1, 1, 37, 3));
}

static void cases_shape(void)
{
	check1("reshape (2,6)->(3,-1)", OP_RESHAPE, b_reshape, ARGS(.i = { 2, 3, -1 }),
	       IN(-1, 1, 2, 6));
	check1("reshape (2,3,4)->(4,6,1)", OP_RESHAPE, b_reshape, ARGS(.i = { 3, 4, 6, 1 }),
	       IN(-1, 1, 2, 3, 4));
	check1("reshape two views of x", OP_RESHAPE, b_reshape_twice, NULL, IN(-1, 1, 3, 4));
	check1("permute (2,3,4) (2,0,1)", OP_PERMUTE, b_permute, ARGS(.i = { 2, 0, 1 }),
	       IN(-1, 1, 2, 3, 4));
	check1("permute (2,3,2,5) (0,2,1,3)", OP_PERMUTE, b_permute, ARGS(.i = { 0, 2, 1, 3 }),
	       IN(-1, 1, 2, 3, 2, 5));
	check1("permute (2,3,2,5) (3,1,0,2)", OP_PERMUTE, b_permute, ARGS(.i = { 3, 1, 0, 2 }),
	       IN(-1, 1, 2, 3, 2, 5));
	check1("transpose (37,41) tiled", OP_PERMUTE, b_transpose, ARGS(.i = { 0, 1 }),
	       IN(-1, 1, 37, 41));
	check1("transpose (2,3,4) -1,-3", OP_PERMUTE, b_transpose, ARGS(.i = { -1, -3 }),
	       IN(-1, 1, 2, 3, 4));
	check1("permute of an intermediate, twice", OP_PERMUTE, b_permute_twice,
	       ARGS(.i = { 0, 2, 1, 3 }), IN(-1, 1, 2, 3, 2, 5));

	Tensor *c3[3] = { IN(-1, 1, 2, 1, 3), IN(-1, 1, 2, 2, 3), CONST(-1, 1, 2, 3, 3) };
	gc_check("concat 3 on axis 1 (one constant)", OP_CONCAT, b_concat, ARGS(.i = { 3, 1 }), c3,
	         3, TOL);
	Tensor *c7[7];
	for (int k = 0; k < 7; k++)
		c7[k] = IN(-1, 1, 1 + k % 3, 4);
	gc_check("concat 7 on axis 0 (> NODE_MAX_IN)", OP_CONCAT, b_concat, ARGS(.i = { 7, 0 }), c7,
	         7, TOL);
	Tensor *c2[2] = { IN(-1, 1, 3, 2), IN(-1, 1, 3, 3) };
	gc_check("concat 2 on axis -1", OP_CONCAT, b_concat, ARGS(.i = { 2, -1 }), c2, 2, TOL);

	check1("slice (3,5,2) axis 1 [1,4)", OP_SLICE, b_slice, ARGS(.i = { 1, 1, 3 }),
	       IN(-1, 1, 3, 5, 2));
	check1("slice (6,4) axis 0 [4,6)", OP_SLICE, b_slice, ARGS(.i = { 0, 4, 2 }), IN(-1, 1, 6, 4));
	check1("slice (3,5) axis -1 [0,1)", OP_SLICE, b_slice, ARGS(.i = { -1, 0, 1 }),
	       IN(-1, 1, 3, 5));

	static const int rows[] = { 3, 0, 3, 4, 1, 3 };
	check1("gather_rows (5,2,3) repeated rows", OP_GATHER_ROWS, b_gather,
	       ARGS(.idx = rows, .nidx = 6), IN(-1, 1, 5, 2, 3));
	static const int ids[] = { 2, 2, 0, 6, 1, 2, 5 };
	check1("embedding (7,4) repeated ids", OP_EMBEDDING, b_embedding,
	       ARGS(.idx = ids, .nidx = 7), IN(-1, 1, 7, 4));

	check1("l2_normalize (4,6)", OP_L2_NORMALIZE, b_l2n, ARGS(.f = { 1e-12f }), IN(-1, 1, 4, 6));
	Tensor *l2 = IN(-1, 1, 4, 6);
	gc_check_h("l2_normalize (4,6) h=1e-3", OP_L2_NORMALIZE, b_l2n, ARGS(.f = { 1e-12f }), &l2, 1,
	           1e-3, TOL);
	check1("l2_normalize (2,3,5)", OP_L2_NORMALIZE, b_l2n, ARGS(.f = { 1e-6f }),
	       IN(-2, 2, 2, 3, 5));
	check1("l2_normalize (2,37)", OP_L2_NORMALIZE, b_l2n, ARGS(.f = { 1e-12f }), IN(-1, 1, 2, 37));
	check1("l2_normalize below eps (3,3)", OP_L2_NORMALIZE, b_l2n, ARGS(.f = { 10.0f }),
	       IN(-1, 1, 3, 3));
}

void gradcheck_cases_basic(void)
{
	cases_matmul();
	cases_binary();
	cases_pointwise();
	cases_reduce();
	cases_shape();
}

/* Run after every other case, so its inputs do not shift the random inputs of the others. */
void gradcheck_cases_dist(void)
{
	check1("dist_gather_rows (6,3) in 2 blocks", OP_DIST_GATHER_ROWS, b_dist_gather,
	       ARGS(.i = { 2 }), IN(-1, 1, 6, 3));
}
