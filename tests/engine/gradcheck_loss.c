/* gradcheck_loss.c - finite-difference checks for every loss in ops_loss.c (see gradcheck.h).
 *
 * Each loss is checked with respect to every input that can carry a gradient (targets too, since
 * methods such as BYOL or MSE-to-a-learned-target differentiate them), on small shapes, with its
 * options (label smoothing, ignore index, row mask, learnable temperature, MoCo and CLIP forms).
 */
#include "gradcheck.h"

/* ---- builders ------------------------------------------------------------------------------- */

static Tensor *b_mse(Ctx *ctx, Tensor **in, void *u)
{
	return op_mse(ctx, in[0], in[1]);
}

static Tensor *b_masked_mse(Ctx *ctx, Tensor **in, void *u)
{
	return op_masked_mse(ctx, in[0], in[1], (const float *)u);
}

static Tensor *b_bce(Ctx *ctx, Tensor **in, void *u)
{
	return op_bce_logits(ctx, in[0], in[1]);
}

typedef struct CeArgs {
	const int *labels;
	float smoothing;
} CeArgs;

static Tensor *b_ce(Ctx *ctx, Tensor **in, void *u)
{
	const CeArgs *a = u;
	return op_cross_entropy(ctx, in[0], a->labels, a->smoothing);
}

static Tensor *b_nt_xent(Ctx *ctx, Tensor **in, void *u)
{
	return op_nt_xent(ctx, in[0], *(const float *)u);
}

/* in: q, k, neg (or unused), inv_temperature (or unused); u: {use_neg, use_inv_t} */
static Tensor *b_infonce(Ctx *ctx, Tensor **in, void *u)
{
	const int *o = u;
	return op_infonce(ctx, in[0], in[1], o[0] ? in[2] : NULL, 0.2f, o[1] ? in[3] : NULL);
}

static Tensor *b_kl(Ctx *ctx, Tensor **in, void *u)
{
	return op_kl_gaussian(ctx, in[0], in[1]);
}

static Tensor *b_cos(Ctx *ctx, Tensor **in, void *u)
{
	return op_cosine_sim(ctx, in[0], in[1]);
}

/* ---- cases ---------------------------------------------------------------------------------- */

void gradcheck_cases_loss(void)
{
	{
		Tensor *in[2] = { gc_input(2, (int[]){ 3, 4 }, -1.0f, 1.0f),
		                  gc_input(2, (int[]){ 3, 4 }, -1.0f, 1.0f) };
		gc_check("mse (3,4) pred+target", OP_MSE, b_mse, NULL, in, 2, 1e-2);
	}
	{
		static const float mask[4] = { 1, 0, 1, 1 };
		Tensor *in[2] = { gc_input(2, (int[]){ 4, 3 }, -1.0f, 1.0f),
		                  gc_input(2, (int[]){ 4, 3 }, -1.0f, 1.0f) };
		gc_check("masked_mse (4,3) mask 1011", OP_MASKED_MSE, b_masked_mse, (void *)mask, in, 2,
		         1e-2);
		static const float none[2] = { 0, 0 };
		Tensor *in2[2] = { gc_input(3, (int[]){ 2, 2, 3 }, -1.0f, 1.0f),
		                   gc_const(3, (int[]){ 2, 2, 3 }, -1.0f, 1.0f) };
		static const float mask3[4] = { 0, 1, 1, 0 };
		gc_check("masked_mse (2,2,3) rows of last axis", OP_MASKED_MSE, b_masked_mse,
		         (void *)mask3, in2, 2, 1e-2);
		Tensor *in3[2] = { gc_input(2, (int[]){ 2, 3 }, -1.0f, 1.0f),
		                   gc_const(2, (int[]){ 2, 3 }, -1.0f, 1.0f) };
		gc_check("masked_mse (2,3) empty mask", OP_MASKED_MSE, b_masked_mse, (void *)none, in3, 2,
		         1e-2);
	}
	{
		Tensor *in[2] = { gc_input(2, (int[]){ 3, 5 }, -4.0f, 4.0f),
		                  gc_input(2, (int[]){ 3, 5 }, 0.0f, 1.0f) };
		gc_check("bce_logits (3,5) logits+target", OP_BCE_LOGITS, b_bce, NULL, in, 2, 1e-2);
		Tensor *big[2] = { gc_input(1, (int[]){ 4 }, -1.0f, 1.0f),
		                   gc_const(1, (int[]){ 4 }, 0.0f, 1.0f) };
		big[0]->data[0] = 40.0f; /* far in the tails: the stable form must not overflow */
		big[0]->data[1] = -40.0f;
		gc_check("bce_logits (4) with +-40 logits", OP_BCE_LOGITS, b_bce, NULL, big, 2, 1e-2);
	}
	{
		static const int labels[4] = { 2, 0, -1, 4 };
		CeArgs a = { labels, 0.0f };
		Tensor *x = gc_input(2, (int[]){ 4, 5 }, -2.0f, 2.0f);
		gc_check("cross_entropy (4,5) ignore -1", OP_CROSS_ENTROPY, b_ce, &a, &x, 1, 1e-2);
		CeArgs s = { labels, 0.1f };
		Tensor *x2 = gc_input(2, (int[]){ 4, 5 }, -2.0f, 2.0f);
		gc_check("cross_entropy (4,5) smoothing 0.1", OP_CROSS_ENTROPY, b_ce, &s, &x2, 1, 1e-2);
		static const int l6[6] = { 1, 3, 0, 2, -1, 3 };
		CeArgs t = { l6, 0.2f };
		Tensor *x3 = gc_input(3, (int[]){ 2, 3, 4 }, -3.0f, 3.0f);
		gc_check("cross_entropy (2,3,4) tokens", OP_CROSS_ENTROPY, b_ce, &t, &x3, 1, 1e-2);
	}
	{
		static const float t05 = 0.5f, t01 = 0.1f;
		Tensor *z = gc_input(2, (int[]){ 6, 4 }, -1.0f, 1.0f);
		gc_check("nt_xent (6,4) tau 0.5", OP_NT_XENT, b_nt_xent, (void *)&t05, &z, 1, 1e-2);
		/* logits are similarities / 0.1, so the third derivative grows ~1/tau^3 = 1000:
		 * h^2 |f'''|/6 would be ~2e-2 at h = 1e-2 and is ~7e-4 at h = 2e-3, where the forward's
		 * rounding over 2h grows fivefold (~5e-5, gradcheck.h); tol 2e-2 covers both. */
		Tensor *z2 = gc_input(2, (int[]){ 4, 3 }, -1.0f, 1.0f);
		gc_check_h("nt_xent (4,3) tau 0.1", OP_NT_XENT, b_nt_xent, (void *)&t01, &z2, 1, 2e-3,
		           2e-2);
	}
	{
		static const int moco[2] = { 1, 0 }, moco_t[2] = { 1, 1 }, clip[2] = { 0, 1 },
		                 clip_f[2] = { 0, 0 };
		Tensor *in[4] = { gc_input(2, (int[]){ 3, 4 }, -0.5f, 0.5f),
		                  gc_input(2, (int[]){ 3, 4 }, -0.5f, 0.5f),
		                  gc_input(2, (int[]){ 5, 4 }, -0.5f, 0.5f),
		                  gc_const(1, (int[]){ 1 }, 1.0f, 1.0f) };
		gc_check("infonce moco q(3,4) k neg(5,4) tau 0.2", OP_INFONCE, b_infonce, (void *)moco,
		         in, 4, 1e-2);
		Tensor *in2[4] = { gc_input(2, (int[]){ 3, 4 }, -0.5f, 0.5f),
		                   gc_input(2, (int[]){ 3, 4 }, -0.5f, 0.5f),
		                   gc_input(2, (int[]){ 2, 4 }, -0.5f, 0.5f),
		                   gc_input(1, (int[]){ 1 }, 2.0f, 4.0f) };
		gc_check("infonce moco learnable 1/tau", OP_INFONCE, b_infonce, (void *)moco_t, in2, 4,
		         1e-2);
		Tensor *in3[4] = { gc_input(2, (int[]){ 4, 3 }, -0.5f, 0.5f),
		                   gc_input(2, (int[]){ 4, 3 }, -0.5f, 0.5f),
		                   gc_const(1, (int[]){ 1 }, 0.0f, 1.0f),
		                   gc_input(1, (int[]){ 1 }, 2.0f, 4.0f) };
		gc_check("infonce clip (4,3) learnable 1/tau", OP_INFONCE, b_infonce, (void *)clip, in3,
		         4, 1e-2);
		Tensor *in4[4] = { gc_input(2, (int[]){ 4, 3 }, -0.5f, 0.5f),
		                   gc_input(2, (int[]){ 4, 3 }, -0.5f, 0.5f),
		                   gc_const(1, (int[]){ 1 }, 0.0f, 1.0f),
		                   gc_const(1, (int[]){ 1 }, 0.0f, 1.0f) };
		gc_check("infonce clip (4,3) tau 0.2", OP_INFONCE, b_infonce, (void *)clip_f, in4, 4,
		         1e-2);
	}
	{
		Tensor *in[2] = { gc_input(2, (int[]){ 3, 4 }, -1.0f, 1.0f),
		                  gc_input(2, (int[]){ 3, 4 }, -1.5f, 1.0f) };
		gc_check("kl_gaussian (3,4)", OP_KL_GAUSSIAN, b_kl, NULL, in, 2, 1e-2);
	}
	{
		Tensor *in[2] = { gc_input(2, (int[]){ 3, 5 }, -1.0f, 1.0f),
		                  gc_input(2, (int[]){ 3, 5 }, -1.0f, 1.0f) };
		gc_check("cosine_sim (3,5) -> (3)", OP_COSINE_SIM, b_cos, NULL, in, 2, 1e-2);
		Tensor *in1[2] = { gc_input(1, (int[]){ 6 }, -1.0f, 1.0f),
		                   gc_input(1, (int[]){ 6 }, -1.0f, 1.0f) };
		gc_check("cosine_sim (6) -> (1)", OP_COSINE_SIM, b_cos, NULL, in1, 2, 1e-2);
	}
}
