/* test_resnet_gradcheck.c - a finite-difference gradient check of whole ResNets (suite gradcheck):
 * the per-op checks in tests/engine prove each op; this proves the network composes them right
 * (shortcuts, downsample paths, the padded max-pool stem, bottlenecks, BN in both modes).
 *
 * Each case builds a one-block-per-stage ResNet at width 1/16 on a tiny batch, sets every BN
 * weight and bias away from its init (zero-init would silence the residual branches and their
 * gradients), contracts the features with fixed random weights (loss = sum(f * W), summed in
 * double) and compares ctx_backward's gradient with central differences for every input element
 * and an even sample of the elements of several parameters:
 *     err = |analytic - numeric| / max(|analytic|, |numeric|, FLOOR, noise / TOL)  <= TOL
 * The network runs in float32, so each loss evaluation carries a rounding error of a few float32
 * ulps of sum |f_i w_i| (the features agree with a float64 PyTorch to ~4 ulps; errors in shared
 * BatchNorm statistics add up coherently), and the central difference divides it by 2h:
 *     noise = NOISE_K * FLT_EPSILON * sum |f_i w_i| / h,
 * below which a difference means nothing; h = 1e-3 balances it against curvature.
 * A ReLU or max-pool kink crossed by a perturbation makes one numeric derivative wrong, so at
 * most KINK_SHARE of the elements may exceed TOL (and as many 10x TOL). That is why no case
 * checks a stem conv weight in training mode: each of its elements moves every activation of the
 * network, so some kink is always crossed. A wrong backward is wrong almost everywhere (dropping
 * the shortcut's gradient fails 40-60 % of the elements of the basic-block cases).
 * The train-mode input gradient is also compared with PyTorch autograd in test_torchvision.c.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "ops.h"
#include "params.h"
#include "resnet.h"

#define STEP 1e-3
#define FLOOR 1e-2
#define NOISE_K 8.0
static double noise;   /* per case: the float32 noise of a central difference (see above) */
#define TOL 2e-2
#define KINK_SHARE 0.01
#define SAMPLE 48   /* elements checked per parameter tensor */

static int failures;

typedef struct Case {
	const char *label;
	int depth;          /* preset whose block kind is used (18 basic, 50 bottleneck) */
	ResnetStem stem;
	int in_c, hw, batch;
	int training;
	const char *params[6];
} Case;

typedef struct Net {
	Resnet *r;
	Tensor *x;          /* heap, requires grad */
	float *w;           /* contraction weights, (B, out_dim) */
	Ctx *ctx;
	int training;
} Net;

static double loss_double(Net *n)
{
	ctx_reset(n->ctx);
	int prev = ctx_set_grad_enabled(n->ctx, 0);
	Tensor *f = resnet_forward(n->ctx, n->r, n->x);
	ctx_set_grad_enabled(n->ctx, prev);
	double l = 0.0;
	for (size_t i = 0; i < f->size; i++)
		l += (double)f->data[i] * (double)n->w[i];
	return l;
}

/* Compare the analytic gradient ana[] of the elements idx[0..n) of t with central differences;
 * returns the number of elements over TOL and updates *worst. */
static int check_tensor(Net *n, const char *label, const char *what, Tensor *t, const float *ana,
                        const size_t *idx, int cnt, double *worst, int *gross)
{
	int bad = 0;
	for (int k = 0; k < cnt; k++) {
		size_t j = idx[k];
		const float x0 = t->data[j], xp = x0 + (float)STEP, xm = x0 - (float)STEP;
		t->data[j] = xp;
		double lp = loss_double(n);
		t->data[j] = xm;
		double lm = loss_double(n);
		t->data[j] = x0;
		double num = (lp - lm) / ((double)xp - (double)xm);
		double a = ana[j];
		double err = fabs(a - num) / fmax(fmax(fmax(fabs(a), fabs(num)), FLOOR), noise / TOL);
		if (isnan(err))
			err = INFINITY;
		if (err > TOL) {
			if (bad < 3)
				fprintf(stderr, "    %s: %s[%zu]: analytic %.6g numeric %.6g (err %.3g)\n", label,
				        what, j, a, num, err);
			bad++;
		}
		if (err > 10 * TOL)
			(*gross)++;
		if (err > *worst)
			*worst = err;
	}
	return bad;
}

static void run_case(const Case *c)
{
	ResnetConfig rc;
	resnet_config_preset(&rc, c->depth);
	rc.stem = c->stem;
	rc.width = 0.0625f;
	for (int s = 0; s < RESNET_STAGES; s++)
		rc.blocks[s] = 1;
	ParamSet *ps = paramset_new();
	Rng rng;
	rng_seed(&rng, 42);
	char err[256] = "";
	Net n = { .training = c->training };
	if (resnet_new(&rc, ps, "encoder", c->in_c, c->hw, c->hw, &rng, &n.r, err, sizeof err) < 0) {
		fprintf(stderr, "FAILED %s: %s\n", c->label, err);
		failures++;
		paramset_free(ps);
		return;
	}
	/* non-zero residual BN weights and biases; eval mode gets non-trivial running statistics */
	for (int i = 0; i < paramset_count(ps); i++) {
		Tensor *t = paramset_at(ps, i);
		const char *nm = t->name;
		size_t len = strlen(nm);
#define ENDS(s) (len >= strlen(s) && strcmp(nm + len - strlen(s), s) == 0)
		for (size_t j = 0; j < t->size; j++) {
			if (ENDS(".running_var"))
				t->data[j] = rng_uniform_range(&rng, 0.5f, 2.0f);
			else if (ENDS(".running_mean"))
				t->data[j] = 0.2f * rng_normal(&rng);
			else if (ENDS(".weight") && t->ndim == 1)
				t->data[j] = rng_uniform_range(&rng, 0.5f, 1.5f);
			else if (ENDS(".bias"))
				t->data[j] = rng_uniform_range(&rng, -0.3f, 0.3f);
		}
#undef ENDS
	}
	const int B = c->batch, D = resnet_out_dim(n.r);
	float *xbuf = malloc((size_t)B * c->in_c * c->hw * c->hw * sizeof(float));
	float *xgrad = calloc((size_t)B * c->in_c * c->hw * c->hw, sizeof(float));
	n.w = malloc((size_t)B * D * sizeof(float));
	Tensor xt;
	memset(&xt, 0, sizeof xt);
	tensor_set_shape(&xt, 4, (int[]){ B, c->in_c, c->hw, c->hw });
	xt.data = xbuf;
	xt.grad = xgrad;
	xt.requires_grad = 1;
	xt.is_param = 1;
	n.x = &xt;
	for (size_t i = 0; i < xt.size; i++)
		xbuf[i] = rng_normal(&rng);
	for (int i = 0; i < B * D; i++)
		n.w[i] = rng_uniform_range(&rng, -1.0f, 1.0f);
	n.ctx = ctx_new(1);
	ctx_set_training(n.ctx, c->training);

	/* analytic pass */
	paramset_zero_grad(ps);
	ctx_reset(n.ctx);
	Tensor *f = resnet_forward(n.ctx, n.r, n.x);
	Tensor *wt = ctx_wrap(n.ctx, n.w, 2, (int[]){ B, D });
	Tensor *loss = op_sum(n.ctx, op_mul(n.ctx, f, wt), OP_ALL, 0);
	double mag = 0.0;   /* sum |f_i w_i|: the scale of the loss's rounding error */
	for (size_t i = 0; i < f->size; i++)
		mag += fabs((double)f->data[i] * (double)n.w[i]);
	noise = NOISE_K * FLT_EPSILON * mag / STEP;
	int ok = ctx_backward(n.ctx, loss) == 0;
	if (!ok) {
		fprintf(stderr, "FAILED %s: ctx_backward\n", c->label);
		failures++;
	}
	/* the gradients are read before any numeric pass (those run with grad mode off, but reset
	 * the arena) */
	int bad = 0, total = 0, gross = 0;
	double worst = 0.0;
	size_t *idx = malloc(xt.size * sizeof *idx);
	for (size_t i = 0; i < xt.size; i++)
		idx[i] = i;
	float *ana = malloc(xt.size * sizeof *ana);
	memcpy(ana, xgrad, xt.size * sizeof *ana);
	if (ok) {
		bad += check_tensor(&n, c->label, "x", &xt, ana, idx, (int)xt.size, &worst, &gross);
		total += (int)xt.size;
	}
	for (int p = 0; ok && p < 6 && c->params[p]; p++) {
		Tensor *t = paramset_find(ps, c->params[p]);
		if (!t) {
			fprintf(stderr, "FAILED %s: no parameter %s\n", c->label, c->params[p]);
			failures++;
			continue;
		}
		float *pa = malloc(t->size * sizeof *pa);
		memcpy(pa, t->grad, t->size * sizeof *pa);
		size_t *pi = malloc(t->size * sizeof *pi);
		int cnt = 0;
		for (size_t j = 0; j < t->size; j++)   /* every element, or an even sample */
			if (t->size <= SAMPLE || j % (t->size / SAMPLE) == 0)
				pi[cnt++] = j;
		bad += check_tensor(&n, c->label, c->params[p], t, pa, pi, cnt, &worst, &gross);
		total += cnt;
		free(pa);
		free(pi);
	}
	const int allowed = (int)(KINK_SHARE * total);
	const int failed = !ok || bad > allowed || gross > allowed;
	printf("%-6s %-44s %d/%d elements over tol %.0e (allowed %d), worst err %.2e, noise %.2g\n",
	       failed ? "FAILED" : "ok", c->label, bad, total, TOL, allowed, worst, noise);
	failures += failed;
	free(idx);
	free(ana);
	free(xbuf);
	free(xgrad);
	free(n.w);
	ctx_free(n.ctx);
	resnet_free(n.r);
	paramset_free(ps);
}

int main(void)
{
	eng_set_threads(1);
	static const Case cases[] = {
		{ "basic, cifar stem, train (4,3,16,16)", 18, RESNET_STEM_CIFAR, 3, 16, 4, 1,
		  { "encoder.bn1.bias", "encoder.layer2.0.downsample.0.weight",
		    "encoder.layer3.0.bn2.weight", "encoder.layer3.0.conv1.weight",
		    "encoder.layer4.0.conv1.weight", "encoder.layer4.0.bn1.bias" } },
		{ "basic, imagenet stem, eval (2,1,16,16)", 18, RESNET_STEM_IMAGENET, 1, 16, 2, 0,
		  { "encoder.conv1.weight", "encoder.bn1.weight", "encoder.layer1.0.conv1.weight",
		    "encoder.layer2.0.downsample.1.weight", "encoder.layer4.0.conv2.weight", NULL } },
		{ "bottleneck, imagenet stem, eval (2,3,16,16)", 50, RESNET_STEM_IMAGENET, 3, 16, 2, 0,
		  { "encoder.conv1.weight", "encoder.layer1.0.conv3.weight",
		    "encoder.layer1.0.downsample.0.weight", "encoder.layer2.0.conv2.weight",
		    "encoder.layer3.0.bn3.weight", "encoder.layer4.0.downsample.1.bias" } },
		{ "bottleneck, cifar stem, train (4,3,16,16)", 50, RESNET_STEM_CIFAR, 3, 16, 4, 1,
		  { "encoder.bn1.weight", "encoder.layer2.0.downsample.0.weight",
		    "encoder.layer3.0.conv3.weight", "encoder.layer3.0.conv2.weight",
		    "encoder.layer4.0.bn2.bias", "encoder.layer4.0.downsample.1.weight" } },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i]);
	if (failures) {
		fprintf(stderr, "%d case(s) failed\n", failures);
		return 1;
	}
	return 0;
}
