/* gradcheck.c - the finite-difference gradient-check harness (gradcheck.h) and the main of the
 * `gradcheck` test: it runs every case list, prints one line per op kind and exits non-zero if a
 * check failed or an op kind has no check.
 *
 * It deliberately knows no op beyond op_mul/op_sum (used to contract a non-scalar output with its
 * random weights): what to check, with which inputs and tolerances, lives in the case files.
 */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GC_GRAD_BIAS 0.25f /* input grads start here so an overwriting backward is caught */

static Rng gc_rng_state;
static int gc_rng_ready;
static Tensor **owned;
static int nowned, capowned;
static int runs[OP_COUNT], fails[OP_COUNT];
static int total_checks, total_failed;
static Ctx *gc_ctx;

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "gradcheck: out of memory (%zu bytes)\n", n);
		abort();
	}
	return p;
}

Rng *gc_rng(void)
{
	if (!gc_rng_ready) {
		rng_seed(&gc_rng_state, 20240601);
		gc_rng_ready = 1;
	}
	return &gc_rng_state;
}

/* ---------------------------------------------------------------------------------------------- */
/* inputs */

static Tensor *gc_alloc(int ndim, const int *shape, float lo, float hi, int grad)
{
	Tensor *t = xmalloc(sizeof *t);
	memset(t, 0, sizeof *t);
	tensor_set_shape(t, ndim, shape);
	t->data = xmalloc(t->size * sizeof(float));
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = rng_uniform_range(gc_rng(), lo, hi);
	if (grad) {
		t->grad = xmalloc(t->size * sizeof(float));
		memset(t->grad, 0, t->size * sizeof(float));
		t->requires_grad = 1;
		t->is_param = 1;
	}
	if (nowned == capowned) {
		capowned = capowned ? capowned * 2 : 64;
		Tensor **o = realloc(owned, (size_t)capowned * sizeof *o);
		if (!o)
			abort();
		owned = o;
	}
	owned[nowned++] = t;
	return t;
}

Tensor *gc_input(int ndim, const int *shape, float lo, float hi)
{
	return gc_alloc(ndim, shape, lo, hi, 1);
}

Tensor *gc_const(int ndim, const int *shape, float lo, float hi)
{
	return gc_alloc(ndim, shape, lo, hi, 0);
}

void gc_keep_away(Tensor *t, float point, float gap)
{
	for (size_t i = 0; i < t->size; i++) {
		float d = t->data[i] - point;
		if (fabsf(d) < gap)
			t->data[i] = point + (d >= 0.0f ? gap + d : -gap + d);
	}
}

void gc_fill_distinct(Tensor *t, float spacing)
{
	int *perm = xmalloc(t->size * sizeof(int));
	rng_permutation(gc_rng(), perm, (int)t->size);
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = ((float)perm[i] - 0.5f * (float)t->size) * spacing;
	free(perm);
}

/* ---------------------------------------------------------------------------------------------- */
/* evaluation */

typedef struct Eval {
	Ctx *ctx;
	Rng rng0;           /* context RNG state restored before every evaluation */
	gc_build_fn f;
	void *user;
	Tensor **in;
	float *w;           /* contraction weights, out_size floats (NULL for a scalar output) */
	size_t out_size;
} Eval;

/* The loss in double, forward only (grad mode off). Returns NAN if the output changed size. */
static double eval_loss(Eval *e)
{
	ctx_reset(e->ctx);
	*ctx_rng(e->ctx) = e->rng0;
	int prev = ctx_set_grad_enabled(e->ctx, 0);
	Tensor *out = e->f(e->ctx, e->in, e->user);
	ctx_set_grad_enabled(e->ctx, prev);
	if (!out || out->size != e->out_size)
		return NAN;
	if (!e->w)
		return (double)out->data[0];
	double l = 0.0;
	for (size_t i = 0; i < out->size; i++)
		l += (double)out->data[i] * (double)e->w[i];
	return l;
}

int gc_check(const char *label, OpKind kind, gc_build_fn f, void *user, Tensor **inputs, int n,
             double tol)
{
	return gc_check_h(label, kind, f, user, inputs, n, GC_STEP, tol);
}

int gc_check_h(const char *label, OpKind kind, gc_build_fn f, void *user, Tensor **inputs, int n,
               double h, double tol)
{
	Eval e = { .f = f, .user = user, .in = inputs };
	int failed = 0;
	char why[256] = "";
	double worst = 0.0, worst_a = 0.0, worst_n = 0.0;
	int worst_in = -1;
	size_t worst_j = 0;
	float **ana = xmalloc((size_t)n * sizeof *ana);
	memset(ana, 0, (size_t)n * sizeof *ana);

	/* one context for all checks: its arena is allocated once, not once per check */
	if (!gc_ctx && !(gc_ctx = ctx_new(1234))) {
		fprintf(stderr, "gradcheck: ctx_new failed\n");
		abort();
	}
	e.ctx = gc_ctx;
	ctx_reset(e.ctx);
	ctx_set_training(e.ctx, 1);
	ctx_set_grad_enabled(e.ctx, 1);
	rng_seed(ctx_rng(e.ctx), 1234);
	e.rng0 = *ctx_rng(e.ctx);

	/* analytic pass, with grad mode on */
	for (int i = 0; i < n; i++)
		if (inputs[i]->requires_grad)
			for (size_t j = 0; j < inputs[i]->size; j++)
				inputs[i]->grad[j] = GC_GRAD_BIAS;
	Tensor *out = f(e.ctx, inputs, user);
	if (!out) {
		snprintf(why, sizeof why, "build returned NULL");
		failed = 1;
		goto done;
	}
	e.out_size = out->size;
	if (!tape_covered(kind)) {
		snprintf(why, sizeof why, "no %s node was recorded", op_names[kind]);
		failed = 1;
		goto done;
	}
	Tensor *loss = out;
	if (out->size > 1) {
		e.w = xmalloc(out->size * sizeof(float));
		for (size_t i = 0; i < out->size; i++)
			e.w[i] = rng_uniform_range(gc_rng(), -1.0f, 1.0f);
		Tensor *wt = ctx_wrap(e.ctx, e.w, out->ndim, out->shape);
		loss = op_sum(e.ctx, op_mul(e.ctx, out, wt), OP_ALL, 0);
	}
	double loss_grad_on = (double)loss->data[0];
	if (ctx_backward(e.ctx, loss) != 0) {
		snprintf(why, sizeof why, "ctx_backward failed (output does not require grad?)");
		failed = 1;
		goto done;
	}
	for (int i = 0; i < n; i++) {
		if (!inputs[i]->requires_grad)
			continue;
		ana[i] = xmalloc(inputs[i]->size * sizeof(float));
		for (size_t j = 0; j < inputs[i]->size; j++)
			ana[i][j] = inputs[i]->grad[j] - GC_GRAD_BIAS;
	}

	/* the forward value must not depend on grad mode */
	double base = eval_loss(&e);
	if (!(fabs(base - loss_grad_on) <= 1e-5 * fmax(1.0, fabs(base)))) {
		snprintf(why, sizeof why, "forward differs with grad on/off: %.8g vs %.8g",
		         loss_grad_on, base);
		failed = 1;
		goto done;
	}

	/* central differences, one element at a time */
	int nbad = 0;
	for (int i = 0; i < n; i++) {
		if (!ana[i])
			continue;
		float *d = inputs[i]->data;
		for (size_t j = 0; j < inputs[i]->size; j++) {
			const float x0 = d[j], xp = x0 + (float)h, xm = x0 - (float)h;
			d[j] = xp;
			double lp = eval_loss(&e);
			d[j] = xm;
			double lm = eval_loss(&e);
			d[j] = x0;
			double num = (lp - lm) / ((double)xp - (double)xm);
			double a = ana[i][j];
			double den = fmax(fmax(fabs(a), fabs(num)), GC_FLOOR);
			double err = fabs(a - num) / den;
			if (isnan(err))
				err = INFINITY;
			if (err > tol && nbad++ < 4)
				fprintf(stderr, "    %s: in%d[%zu]: analytic %.6g numeric %.6g (err %.3g)\n",
				        label, i, j, a, num, err);
			if (err > worst || worst_in < 0) {
				worst = err, worst_a = a, worst_n = num;
				worst_in = i, worst_j = j;
			}
		}
	}
	if (worst_in < 0) {
		snprintf(why, sizeof why, "no input requires grad");
		failed = 1;
	} else if (worst > tol) {
		snprintf(why, sizeof why, "%d element(s) over tol %.1e", nbad, tol);
		failed = 1;
	}

done:
	if (worst_in >= 0)
		printf("%-6s %-40s max err %.2e at in%d[%zu] (analytic %.6g, numeric %.6g)%s%s\n",
		       failed ? "FAILED" : "ok", label, worst, worst_in, worst_j, worst_a, worst_n,
		       failed ? ": " : "", why);
	else
		printf("%-6s %-40s %s\n", failed ? "FAILED" : "ok", label, why);
	fflush(stdout);
	runs[kind]++;
	total_checks++;
	if (failed) {
		fails[kind]++;
		total_failed++;
	}
	for (int i = 0; i < n; i++)
		free(ana[i]);
	free(ana);
	free(e.w);
	ctx_reset(e.ctx);
	return failed ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------------- */

int gc_finish(void)
{
	int covered = 0;
	printf("\n%-20s %s\n", "op", "status");
	for (int k = 0; k < OP_COUNT; k++) {
		const char *status;
		if (fails[k])
			status = "FAILED";
		else if (runs[k] && tape_covered((OpKind)k))
			status = "ok", covered++;
		else
			status = "not covered";
		printf("%-20s %-12s (%d checks)\n", op_names[k], status, runs[k]);
	}
	printf("covered %d/%d ops, %d/%d checks failed\n", covered, OP_COUNT, total_failed,
	       total_checks);
	for (int i = 0; i < nowned; i++) {
		free(owned[i]->data);
		free(owned[i]->grad);
		free(owned[i]);
	}
	free(owned);
	ctx_free(gc_ctx);
	gc_ctx = NULL;
	owned = NULL;
	nowned = capowned = 0;
	return total_failed == 0 && covered == OP_COUNT ? 0 : 1;
}

int main(void)
{
	eng_set_threads(1);
	gradcheck_cases_basic();
	gradcheck_cases_nn();
	gradcheck_cases_loss();
	gradcheck_cases_dist();
	return gc_finish();
}
