/* gradcheck_lm.c - finite-difference gradient checks (suite gradcheck) of the language-model
 * networks above the op level, where tests/engine/gradcheck_nn.c stops: the pre-LN Transformer
 * block with bidirectional and causal attention (every parameter and the input), and the two
 * method losses end to end - masked_lm (gathered target rows, dense + GELU + LayerNorm head,
 * decoder tied to the byte embedding plus a bias) and autoregressive_lm (causal Transformer, LM
 * head tied to the embedding, so the embedding's gradient is the sum of two paths).
 *
 * Analytic gradients come from ctx_backward; numeric ones from central differences with the loss
 * accumulated in double. Parameters start from their initialisation plus noise (so LayerNorm
 * weights are not all 1). Per-element error |a - n| / max(|a|, |n|, FLOOR) must stay under tol.
 *
 * Step 5e-2 with Richardson extrapolation, tol 2e-2: the extrapolation removes the h^2 term, so
 * the truncation left is O(h^4) (~1e-6 |f'''''|); the larger step divides the float32 forward's
 * rounding by more. That rounding, through two blocks, LayerNorm and a cross-entropy over 256
 * classes, is ~1e-7 relative per output (sums of <= 32 terms, tests/tolerance.h), ~1e-6 in
 * the loss, ~1e-5 in the derivative after /2h: a twentieth of the 2e-4 absolute allowed at
 * FLOOR. Measured worst 6.9e-3 (an absolute 7e-5 on a near-zero embedding gradient), the same
 * under every OpenBLAS core type (Prescott ... Cooperlake) and 1 or 2 BLAS threads.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "data/dataset.h"
#include "layers.h"
#include "methods/method.h"
#include "ops.h"
#include "params.h"
#include "lm_config.h"

#define FLOOR 1e-2

typedef Tensor *(*build_fn)(Ctx *ctx, void *user);

typedef struct Check {
	Ctx *ctx;
	build_fn f;
	void *user;
	float *w;          /* contraction weights for a non-scalar output */
	size_t out_size;
} Check;

static double loss_value(Check *c)
{
	ctx_reset(c->ctx);
	int prev = ctx_set_grad_enabled(c->ctx, 0);
	Tensor *out = c->f(c->ctx, c->user);
	ctx_set_grad_enabled(c->ctx, prev);
	if (out->size != c->out_size)
		return NAN;
	if (out->size == 1)
		return out->data[0];
	double l = 0.0;
	for (size_t i = 0; i < out->size; i++)
		l += (double)out->data[i] * c->w[i];
	return l;
}

static double central(Check *c, float *x, double h)
{
	float x0 = *x, xp = x0 + (float)h, xm = x0 - (float)h;
	*x = xp;
	double lp = loss_value(c);
	*x = xm;
	double lm = loss_value(c);
	*x = x0;
	return (lp - lm) / ((double)xp - (double)xm);
}

/* Richardson extrapolation of two central differences (h and h/2): the O(h^2) truncation error
 * cancels, which matters through LayerNorm and softmax at the step sizes float32 allows. */
static double richardson(Check *c, float *x, double h)
{
	return (4.0 * central(c, x, h / 2) - central(c, x, h)) / 3.0;
}

/* Checks d(loss)/d(every trainable element of ps). */
static int check(const char *label, Ctx *ctx, ParamSet *ps, build_fn f, void *user, double h,
                 double tol)
{
	Check c = { .ctx = ctx, .f = f, .user = user };
	Rng wr;
	rng_seed(&wr, 99);
	paramset_zero_grad(ps);
	ctx_reset(ctx);
	ctx_set_grad_enabled(ctx, 1);
	Tensor *out = f(ctx, user);
	c.out_size = out->size;
	Tensor *loss = out;
	if (out->size > 1) {
		c.w = malloc(out->size * sizeof(float));
		for (size_t i = 0; i < out->size; i++)
			c.w[i] = rng_uniform_range(&wr, -1.0f, 1.0f);
		Tensor *wt = ctx_wrap(ctx, c.w, out->ndim, out->shape);
		loss = op_sum(ctx, op_mul(ctx, out, wt), OP_ALL, 0);
	}
	if (ctx_backward(ctx, loss) != 0) {
		printf("FAILED %-44s ctx_backward failed\n", label);
		free(c.w);
		return -1;
	}
	double worst = 0.0, wa = 0, wn = 0;
	const char *wname = "?";
	size_t wj = 0, checked = 0;
	int nbad = 0;
	for (int p = 0; p < paramset_count(ps); p++) {
		Tensor *t = paramset_at(ps, p);
		if (!t->requires_grad || !t->grad)
			continue;
		float *ana = malloc(t->size * sizeof *ana);
		memcpy(ana, t->grad, t->size * sizeof *ana);
		for (size_t j = 0; j < t->size; j++) {
			double num = richardson(&c, &t->data[j], h);
			double den = fmax(fmax(fabs(ana[j]), fabs(num)), FLOOR);
			double err = fabs(ana[j] - num) / den;
			if (isnan(err))
				err = INFINITY;
			if (err > tol && nbad++ < 4)
				fprintf(stderr, "    %s: %s[%zu]: analytic %.6g numeric %.6g (err %.3g)\n", label,
				        t->name, j, ana[j], num, err);
			if (err > worst || checked == 0) {
				worst = err, wa = ana[j], wn = num, wname = t->name, wj = j;
			}
			checked++;
		}
		free(ana);
	}
	int failed = nbad > 0 || checked == 0;
	printf("%-6s %-44s %zu elements, max err %.2e at %s[%zu] (analytic %.6g, numeric %.6g)\n",
	       failed ? "FAILED" : "ok", label, checked, worst, wname, wj, wa, wn);
	fflush(stdout);
	free(c.w);
	paramset_zero_grad(ps);
	return failed ? -1 : 0;
}

static void perturb(ParamSet *ps, Rng *rng, float amount)
{
	for (int p = 0; p < paramset_count(ps); p++) {
		Tensor *t = paramset_at(ps, p);
		for (size_t j = 0; j < t->size; j++)
			t->data[j] += rng_uniform_range(rng, -amount, amount);
	}
}

/* ---- the Transformer block ------------------------------------------------------------------ */

typedef struct BlockCase {
	Block blk;
	Tensor *x;   /* (B,T,D) a parameter of the set, so its gradient is checked too */
} BlockCase;

static Tensor *build_block(Ctx *ctx, void *user)
{
	BlockCase *bc = user;
	return block_forward(ctx, &bc->blk, bc->x);   // (B,T,D)
}

static int block_case(Ctx *ctx, int causal)
{
	ParamSet *ps = paramset_new();
	Rng rng;
	rng_seed(&rng, 7 + (uint64_t)causal);
	BlockCase bc;
	int B = 2, T = 5, D = 8;
	if (block_init(&bc.blk, ps, "blk", D, 2, 2, causal, 0.0f, &rng) < 0 ||
	    !(bc.x = paramset_add(ps, "x", 3, (int[]){ B, T, D }, 0))) {
		fprintf(stderr, "block_init failed\n");
		exit(1);
	}
	perturb(ps, &rng, 0.5f);
	char label[64];
	snprintf(label, sizeof label, "transformer block %s (2,5,8) 2 heads",
	         causal ? "causal" : "bidirectional");
	int rc = check(label, ctx, ps, build_block, &bc, 5e-2, 2e-2);
	paramset_free(ps);
	return rc;
}

/* ---- the two methods' losses ------------------------------------------------------------------ */

/* A method's config (lm_config.h) with this test's masking probability, 0.3. */
static const void *method_config(const PretextMethod *m, unsigned char *cfg)
{
	if (lm_method_config(m, cfg, 0.3) < 0)
		exit(1);
	return cfg;
}

typedef struct MethodCase {
	const PretextMethod *m;
	void *st;
	Batch b;
} MethodCase;

static Tensor *build_method(Ctx *ctx, void *user)
{
	MethodCase *mc = user;
	return mc->m->loss(ctx, mc->st, NULL, &mc->b, NULL);
}

static int method_case(Ctx *ctx, const char *name, Dataset *ds)
{
	EncoderConfig ec;
	encoder_config_default(&ec, ENC_TRANSFORMER);
	ec.dim = 8;
	ec.depth = 2;
	ec.heads = 2;
	ec.mlp_ratio = 2;
	ec.context = 6;
	ec.causal = strcmp(name, "autoregressive_lm") == 0;
	Rng rng;
	rng_seed(&rng, 11);
	MethodCase mc = { .m = method_find(name) };
	_Alignas(max_align_t) unsigned char cfg[METHOD_CONFIG_MAX];
	MethodEnv env = { .encoder = &ec, .in_c = 1, .in_h = 1, .in_w = ec.context, .ds = ds,
	                  .config = method_config(mc.m, cfg), .rng = &rng, .total_steps = 1,
	                  .batch_size = 2 };
	char err[256];
	ParamSet *ps = paramset_new();
	if (!mc.m || mc.m->create(&env, ps, &mc.st, err, sizeof err) < 0 ||
	    mc.m->make_batch(mc.st, ds, 3, 0, &mc.b, err, sizeof err) < 0) {
		fprintf(stderr, "%s: %s\n", name, mc.m ? err : "not registered");
		exit(1);
	}
	perturb(ps, &rng, 0.2f);
	char label[64];
	snprintf(label, sizeof label, "%s loss (B 2, T 6, dim 8, depth 2)", name);
	int rc = check(label, ctx, ps, build_method, &mc, 5e-2, 2e-2);
	mc.m->destroy(mc.st);
	paramset_free(ps);
	return rc;
}

int main(void)
{
	Ctx *ctx = ctx_new(5);
	if (!ctx)
		return 1;
	ctx_set_training(ctx, 1);
	int fails = 0;
	fails += block_case(ctx, 0) < 0;
	fails += block_case(ctx, 1) < 0;

	/* a byte stream in memory, as DATASET_TEXT holds it */
	static const char text[] = "It is a truth universally acknowledged, that a single man in "
	                           "possession of a good fortune, must be in want of a wife.\n";
	Dataset ds;
	memset(&ds, 0, sizeof ds);
	ds.kind = DATASET_TEXT;
	ds.text_train = (uint8_t *)text;
	ds.text_train_len = sizeof text - 1;
	ds.text_test = (uint8_t *)text;
	ds.text_test_len = sizeof text - 1;
	fails += method_case(ctx, "masked_lm", &ds) < 0;
	fails += method_case(ctx, "autoregressive_lm", &ds) < 0;
	ctx_free(ctx);
	if (fails)
		printf("%d gradient check(s) failed\n", fails);
	return fails ? 1 : 0;
}
