/* test_losses.c - the contracts of ops_loss.c that gradcheck and the PyTorch comparison do not
 * cover: shape errors abort with a message naming the op and the shapes; grad mode off records
 * nothing; degenerate inputs (every row ignored or masked out, zero vectors, extreme logits) give
 * finite values; and a steady-state step through every loss performs no heap allocation.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "ctx.h"
#include "ops.h"
#include "check.h"
#include "support.h"

static Tensor *filled(Ctx *ctx, int ndim, const int *shape, float v, int grad)
{
	Tensor *t = ctx_tensor(ctx, ndim, shape);
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = v + 0.01f * (float)(i % 7);
	t->requires_grad = (uint8_t)grad;
	return t;
}

/* ---- shape errors abort, naming the op and the shapes --------------------------------------- */

typedef void (*bad_call_fn)(Ctx *ctx);

static void bad_mse(Ctx *ctx)
{
	op_mse(ctx, filled(ctx, 2, (int[]){ 2, 3 }, 0, 1), filled(ctx, 2, (int[]){ 3, 2 }, 0, 0));
}

static void bad_nt_xent(Ctx *ctx)
{
	op_nt_xent(ctx, filled(ctx, 2, (int[]){ 5, 4 }, 0, 1), 0.5f);
}

static void bad_label(Ctx *ctx)
{
	static const int labels[2] = { 1, 7 };
	op_cross_entropy(ctx, filled(ctx, 2, (int[]){ 2, 4 }, 0, 1), labels, 0.0f);
}

static void bad_infonce(Ctx *ctx)
{
	op_infonce(ctx, filled(ctx, 2, (int[]){ 3, 4 }, 0, 1), filled(ctx, 2, (int[]){ 3, 4 }, 0, 1),
	           filled(ctx, 2, (int[]){ 6, 5 }, 0, 0), 0.1f, NULL);
}

static void bad_cosine(Ctx *ctx)
{
	op_cosine_sim(ctx, filled(ctx, 2, (int[]){ 3, 4 }, 0, 1), filled(ctx, 2, (int[]){ 3, 5 }, 0, 1));
}

typedef struct BadCall {
	bad_call_fn f;
} BadCall;

static void run_bad_call(void *arg)
{
	((const BadCall *)arg)->f(ctx_new(1));
}

static void expect_abort(const char *label, bad_call_fn f, const char *const *needles, int n)
{
	char msg[1024];
	CHECK(test_aborts(run_bad_call, &(BadCall){ f }, msg, sizeof msg) == 1, "%s: did not abort", label);
	for (int i = 0; i < n; i++)
		CHECK(strstr(msg, needles[i]), "%s: message \"%s\" lacks \"%s\"", label, msg, needles[i]);
}

static void test_shape_errors(void)
{
	expect_abort("mse", bad_mse, (const char *const[]){ "op_mse", "(2,3)", "(3,2)" }, 3);
	expect_abort("nt_xent", bad_nt_xent, (const char *const[]){ "op_nt_xent", "(5,4)", "2N" }, 3);
	expect_abort("cross_entropy", bad_label,
	             (const char *const[]){ "op_cross_entropy", "label 7", "(2,4)" }, 3);
	expect_abort("infonce", bad_infonce, (const char *const[]){ "op_infonce", "(6,5)", "(3,4)" },
	             3);
	expect_abort("cosine", bad_cosine, (const char *const[]){ "op_cosine_sim", "(3,4)", "(3,5)" },
	             3);
}

/* ---- degenerate inputs and grad mode -------------------------------------------------------- */

static void test_degenerate(void)
{
	Ctx *ctx = ctx_new(3);
	/* every row ignored: 0, and a zero gradient */
	Tensor *x = filled(ctx, 2, (int[]){ 2, 3 }, 1.0f, 1);
	static const int ignored[2] = { -1, -1 };
	Tensor *l = op_cross_entropy(ctx, x, ignored, 0.1f);
	CHECK(l->data[0] == 0.0f, "all-ignored cross-entropy %g", (double)l->data[0]);
	CHECK(ctx_backward(ctx, l) == 0, "backward");
	for (size_t i = 0; i < x->size; i++)
		CHECK(x->grad[i] == 0.0f, "all-ignored grad %g", (double)x->grad[i]);
	/* extreme logits stay finite */
	ctx_reset(ctx);
	Tensor *big = filled(ctx, 2, (int[]){ 2, 3 }, 0.0f, 1);
	big->data[0] = 1e4f, big->data[4] = -1e4f;
	static const int labels[2] = { 1, 2 };
	l = op_cross_entropy(ctx, big, labels, 0.0f);
	CHECK(isfinite(l->data[0]) && fabsf(l->data[0] - 5000.0f) < 1.0f,
	      "cross-entropy with 1e4 logits: %g", (double)l->data[0]);
	Tensor *y = filled(ctx, 2, (int[]){ 2, 3 }, 0.5f, 0);
	Tensor *b = op_bce_logits(ctx, big, y);
	CHECK(isfinite(b->data[0]), "bce with 1e4 logits: %g", (double)b->data[0]);
	ctx_backward(ctx, op_add(ctx, l, b));
	for (size_t i = 0; i < big->size; i++)
		CHECK(isfinite(big->grad[i]), "grad not finite");
	/* zero vectors: cosine 0 and NT-Xent finite, gradients finite */
	ctx_reset(ctx);
	Tensor *z = filled(ctx, 2, (int[]){ 4, 3 }, 0.2f, 1);
	memset(z->data, 0, 3 * sizeof(float));
	Tensor *nt = op_nt_xent(ctx, z, 0.5f);
	CHECK(isfinite(nt->data[0]), "nt_xent with a zero row: %g", (double)nt->data[0]);
	Tensor *zero = filled(ctx, 2, (int[]){ 1, 3 }, 0.0f, 1);
	memset(zero->data, 0, 3 * sizeof(float));
	Tensor *c = op_cosine_sim(ctx, zero, filled(ctx, 2, (int[]){ 1, 3 }, 1.0f, 1));
	CHECK(c->data[0] == 0.0f, "cosine with a zero vector %g", (double)c->data[0]);
	ctx_backward(ctx, op_add(ctx, nt, op_sum(ctx, c, OP_ALL, 0)));
	for (size_t i = 0; i < z->size; i++)
		CHECK(isfinite(z->grad[i]), "nt_xent grad not finite");
	/* NT-Xent of perfectly aligned pairs far apart from the rest is near its minimum */
	ctx_reset(ctx);
	Tensor *p = ctx_zeros(ctx, 2, (int[]){ 4, 2 });
	p->data[0] = 1, p->data[3] = 1, p->data[4] = 1, p->data[7] = 1; /* rows: e0 e1 e0 e1 */
	Tensor *ntp = op_nt_xent(ctx, p, 0.1f);
	double want = log(1.0 + 2.0 * exp(-10.0));
	CHECK(fabs(ntp->data[0] - want) < 1e-6, "nt_xent aligned %g, expected %g",
	      (double)ntp->data[0], want);
	/* grad mode off: values, no tape */
	ctx_reset(ctx);
	ctx_set_grad_enabled(ctx, 0);
	Tensor *q = filled(ctx, 2, (int[]){ 2, 3 }, 0.3f, 1);
	Tensor *m = op_mse(ctx, q, filled(ctx, 2, (int[]){ 2, 3 }, 0.1f, 0));
	CHECK(!m->requires_grad, "grad mode off must not record");
	CHECK(fabsf(m->data[0] - 0.04f) < 1e-6f, "mse value %g", (double)m->data[0]);
	ctx_set_grad_enabled(ctx, 1);
	ctx_free(ctx);
}

/* ---- no heap allocation in a steady-state step ---------------------------------------------- */

static void one_step(Ctx *ctx)
{
	ctx_reset(ctx);
	Tensor *a = filled(ctx, 2, (int[]){ 64, 32 }, 0.1f, 1);
	Tensor *t = filled(ctx, 2, (int[]){ 64, 32 }, -0.1f, 0);
	static float mask[64];
	static int labels[64];
	for (int i = 0; i < 64; i++)
		mask[i] = (float)(i % 3 == 0), labels[i] = i % 32;
	Tensor *neg = filled(ctx, 2, (int[]){ 256, 32 }, 0.05f, 0);
	Tensor *parts[9] = {
		op_mse(ctx, a, t),
		op_masked_mse(ctx, a, t, mask),
		op_bce_logits(ctx, a, filled(ctx, 2, (int[]){ 64, 32 }, 0.5f, 0)),
		op_cross_entropy(ctx, a, labels, 0.1f),
		op_nt_xent(ctx, a, 0.5f),
		op_infonce(ctx, op_slice(ctx, a, 0, 0, 32), op_slice(ctx, a, 0, 32, 32), neg, 0.2f, NULL),
		op_infonce(ctx, op_slice(ctx, a, 0, 0, 32), op_slice(ctx, a, 0, 32, 32), NULL, 0.2f, NULL),
		op_kl_gaussian(ctx, a, t),
		op_sum(ctx, op_cosine_sim(ctx, a, t), OP_ALL, 0),
	};
	Tensor *loss = parts[0];
	for (int i = 1; i < 9; i++)
		loss = op_add(ctx, loss, parts[i]);
	ctx_backward(ctx, loss);
}

static void test_no_alloc(void)
{
	Ctx *ctx = ctx_new(9);
	for (int i = 0; i < 3; i++)
		one_step(ctx);
	uint64_t before = eng_alloc_count();
	for (int i = 0; i < 5; i++)
		one_step(ctx);
	uint64_t after = eng_alloc_count();
	CHECK(after == before, "%llu heap allocations in 5 steady-state steps",
	      (unsigned long long)(after - before));
	ctx_free(ctx);
}

int main(void)
{
	test_shape_errors();
	test_degenerate();
	test_no_alloc();
	return check_exit("test_losses");
}
