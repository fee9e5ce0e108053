/* test_optim.c - ParamSet, optimizers, schedules, clipping and EMA against hand-computed values.
 *
 * The SGD / Nesterov / AdamW expectations are the values torch.optim (1.13) produces for the same
 * parameters, gradients and hyper-parameters (two steps, a decayed weight and a non-decayed
 * bias); LARS has no PyTorch reference and is checked against the SimCLR formula worked by hand.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "optim.h"
#include "params.h"
#include "check.h"

static void check_vec(const char *what, const float *got, const double *want, int n, double tol)
{
	for (int i = 0; i < n; i++)
		CHECK(fabs(got[i] - want[i]) <= tol * fmax(1.0, fabs(want[i])),
		      "%s[%d] = %.9g, expected %.9g", what, i, (double)got[i], want[i]);
}

/* ---- paramset ------------------------------------------------------------------------------- */

static void test_paramset(void)
{
	ParamSet *ps = paramset_new();
	Tensor *w = paramset_add(ps, "enc.fc.weight", 2, (int[]){ 3, 2 }, PARAM_DECAY);
	Tensor *b = paramset_add(ps, "enc.fc.bias", 1, (int[]){ 3 }, 0);
	Tensor *rm = paramset_add(ps, "enc.bn.running_mean", 1, (int[]){ 3 }, PARAM_BUFFER);
	CHECK(w && b && rm, "paramset_add failed");
	CHECK(!paramset_add(ps, "enc.fc.weight", 1, (int[]){ 1 }, 0), "duplicate name accepted");
	CHECK(!paramset_add(ps, "bad.shape", 1, (int[]){ 0 }, 0), "zero dimension accepted");
	CHECK(paramset_count(ps) == 3, "count %d", paramset_count(ps));
	CHECK(w->size == 6 && w->grad && w->is_param && w->requires_grad, "weight fields");
	CHECK(rm->grad == NULL && !rm->requires_grad, "a buffer must have no grad");
	CHECK(strcmp(w->name, "enc.fc.weight") == 0, "name %s", w->name);
	for (size_t i = 0; i < w->size; i++)
		CHECK(w->data[i] == 0.0f && w->grad[i] == 0.0f, "not zero-initialised");
	CHECK(paramset_find(ps, "enc.fc.bias") == b, "find");
	CHECK(paramset_find(ps, "enc.fc") == NULL, "find of a prefix must fail");
	CHECK(paramset_numel(ps, 0) == 12 && paramset_numel(ps, 1) == 9, "numel %zu %zu",
	      paramset_numel(ps, 0), paramset_numel(ps, 1));
	paramset_set_flags_at(ps, 0, PARAM_DECAY | PARAM_FROZEN);
	CHECK(!w->requires_grad && paramset_numel(ps, 1) == 3, "freezing");
	paramset_set_flags_at(ps, 0, PARAM_DECAY);
	CHECK(w->requires_grad, "unfreezing");
	paramset_set_flags_at(ps, 2, 0);
	CHECK(paramset_flags_at(ps, 2) & PARAM_BUFFER, "PARAM_BUFFER must stick");

	/* many names: the hash table grows and every name stays findable */
	char name[64];
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof name, "layer%d.w", i);
		CHECK(paramset_add(ps, name, 1, (int[]){ 2 }, PARAM_DECAY), "add %s", name);
	}
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof name, "layer%d.w", i);
		Tensor *t = paramset_find(ps, name);
		CHECK(t && strcmp(t->name, name) == 0, "find %s", name);
	}
	w->grad[1] = 5.0f;
	paramset_zero_grad(ps);
	CHECK(w->grad[1] == 0.0f, "zero_grad");

	/* copy between prefixes (online -> target) */
	ParamSet *a = paramset_new();
	Tensor *ow = paramset_add(a, "online.w", 1, (int[]){ 2 }, PARAM_DECAY);
	Tensor *tw = paramset_add(a, "target.w", 1, (int[]){ 2 }, PARAM_DECAY);
	paramset_add(a, "head.w", 1, (int[]){ 2 }, PARAM_DECAY);
	ow->data[0] = 1.5f, ow->data[1] = -2.5f;
	CHECK(paramset_copy_prefix(a, "target.", a, "online.") == 1, "copy_prefix count");
	CHECK(tw->data[0] == 1.5f && tw->data[1] == -2.5f, "copy_prefix values");
	CHECK(paramset_copy_prefix(a, "nothere.", a, "online.") == -ENOENT, "missing counterpart");
	paramset_free(a);
	paramset_free(ps);
	paramset_free(NULL);
}

/* ---- optimizers ----------------------------------------------------------------------------- */

typedef struct Two {
	ParamSet *ps;
	Tensor *w, *b;
} Two;

static Two two_params(void)
{
	Two t;
	t.ps = paramset_new();
	t.w = paramset_add(t.ps, "w", 1, (int[]){ 3 }, PARAM_DECAY);
	t.b = paramset_add(t.ps, "b", 1, (int[]){ 2 }, 0);
	const float w0[3] = { 1.0f, -2.0f, 3.0f }, b0[2] = { 0.5f, -0.25f };
	memcpy(t.w->data, w0, sizeof w0);
	memcpy(t.b->data, b0, sizeof b0);
	return t;
}

static void set_grads(Two *t, int step)
{
	static const float gw[2][3] = { { 0.1f, 0.2f, -0.3f }, { -0.2f, 0.05f, 0.1f } };
	static const float gb[2][2] = { { 0.4f, -0.1f }, { 0.3f, 0.2f } };
	memcpy(t->w->grad, gw[step], sizeof gw[step]);
	memcpy(t->b->grad, gb[step], sizeof gb[step]);
}

/* Two steps of `c` on the reference problem, checked after each step. */
static void run_two(const char *label, const OptimConfig *c, const double want_w[2][3],
                    const double want_b[2][2])
{
	Two t = two_params();
	Optim *o;
	CHECK(optim_new(c, t.ps, &o) == 0, "%s: optim_new", label);
	for (int s = 0; s < 2; s++) {
		set_grads(&t, s);
		optim_step(o, c->lr);
		char what[64];
		snprintf(what, sizeof what, "%s step %d w", label, s + 1);
		check_vec(what, t.w->data, want_w[s], 3, 2e-6);
		snprintf(what, sizeof what, "%s step %d b", label, s + 1);
		check_vec(what, t.b->data, want_b[s], 2, 2e-6);
	}
	CHECK(optim_steps(o) == 2, "%s: steps %lld", label, (long long)optim_steps(o));
	optim_free(o);
	paramset_free(t.ps);
}

static void test_sgd_adamw(void)
{
	OptimConfig c;
	optim_config_default(&c, OPT_SGD);
	c.lr = 0.1f, c.momentum = 0.9f, c.weight_decay = 0.01f, c.nesterov = 0;
	run_two("sgd momentum", &c,
	        (const double[2][3]){ { 0.989000022, -2.01799989, 3.02699995 },
	                              { 0.99811101, -2.03718185, 3.03827286 } },
	        (const double[2][2]){ { 0.460000008, -0.239999995 }, { 0.394000024, -0.250999987 } });
	c.nesterov = 1;
	run_two("sgd nesterov", &c,
	        (const double[2][3]){ { 0.979099989, -2.03419995, 3.05130005 },
	                              { 1.00632966, -2.05441499, 3.04837251 } },
	        (const double[2][2]){ { 0.423999995, -0.231000006 }, { 0.334600002, -0.260900021 } });
	c.nesterov = 0, c.momentum = 0.0f;
	run_two("sgd plain", &c,
	        (const double[2][3]){ { 0.989000022, -2.01799989, 3.02699995 },
	                              { 1.00801098, -2.02098179, 3.013973 } },
	        (const double[2][2]){ { 0.460000008, -0.239999995 }, { 0.430000007, -0.25999999 } });
	optim_config_default(&c, OPT_ADAMW);
	c.lr = 0.01f, c.weight_decay = 0.1f, c.beta1 = 0.9f, c.beta2 = 0.999f, c.eps = 1e-8f;
	run_two("adamw", &c,
	        (const double[2][3]){ { 0.989000022, -2.00800014, 3.00699997 },
	                              { 0.991672099, -2.0142982, 3.00799513 } },
	        (const double[2][2]){ { 0.49000001, -0.239999995 }, { 0.480174243, -0.243661031 } });
}

static void test_lars(void)
{
	ParamSet *ps = paramset_new();
	Tensor *w = paramset_add(ps, "w", 1, (int[]){ 2 }, PARAM_DECAY);
	Tensor *b = paramset_add(ps, "b", 1, (int[]){ 2 }, 0);
	Tensor *z = paramset_add(ps, "z", 1, (int[]){ 2 }, PARAM_DECAY);
	Tensor *f = paramset_add(ps, "frozen", 1, (int[]){ 2 }, PARAM_DECAY | PARAM_FROZEN);
	Tensor *buf = paramset_add(ps, "buf", 1, (int[]){ 2 }, PARAM_BUFFER);
	w->data[0] = 3.0f, w->data[1] = 4.0f;
	w->grad[0] = 0.6f, w->grad[1] = 0.8f;
	b->data[0] = 0.5f, b->data[1] = -0.25f;
	b->grad[0] = 0.4f, b->grad[1] = -0.1f;
	z->grad[0] = 1.0f, z->grad[1] = 1.0f; /* zero weights: trust ratio falls back to 1 */
	f->data[0] = 7.0f, f->grad[0] = 1.0f;
	buf->data[0] = 9.0f;
	OptimConfig c;
	optim_config_default(&c, OPT_LARS);
	c.lr = 0.3f, c.momentum = 0.9f, c.weight_decay = 0.1f, c.trust_coef = 0.001f;
	Optim *o;
	CHECK(optim_new(&c, ps, &o) == 0, "lars optim_new");
	optim_step(o, c.lr);
	/* d = g + 0.1 w = (0.9, 1.2), |d| = 1.5, |w| = 5: local lr = 0.3 * 0.001 * 5 / 1.5 = 0.001 */
	check_vec("lars w", w->data, (const double[]){ 2.9991, 3.9988 }, 2, 1e-6);
	/* excluded (no PARAM_DECAY): plain momentum SGD, no decay: b - 0.3 g */
	check_vec("lars bias", b->data, (const double[]){ 0.38, -0.22 }, 2, 1e-6);
	check_vec("lars zero w", z->data, (const double[]){ -0.3, -0.3 }, 2, 1e-6); /* lr * g */
	CHECK(f->data[0] == 7.0f, "frozen param changed to %g", (double)f->data[0]);
	CHECK(buf->data[0] == 9.0f, "buffer changed");
	/* step 2, same gradient: w1 = 0.9997 (3,4); d = 0.29997 (3,4); local = 0.3e-3 * |w1| / |d| */
	double local = 0.3e-3 * (0.9997 * 5.0) / (0.29997 * 5.0);
	double want[2];
	for (int i = 0; i < 2; i++) {
		double w1 = 0.9997 * (i ? 4.0 : 3.0), d = 0.29997 * (i ? 4.0 : 3.0);
		double m = 0.9 * 0.001 * (i ? 1.2 : 0.9) + local * d;
		want[i] = w1 - m;
	}
	optim_step(o, c.lr);
	check_vec("lars w step 2", w->data, want, 2, 1e-6);
	CHECK(optim_state_count(o) == 4, "lars state count %d", optim_state_count(o));
	const char *nm;
	optim_state_at(o, 0, &nm);
	CHECK(strcmp(nm, "lars.momentum.w") == 0, "state name %s", nm);
	optim_free(o);
	paramset_free(ps);
}

static void test_state_names(void)
{
	Two t = two_params();
	OptimConfig c;
	optim_config_default(&c, OPT_ADAMW);
	Optim *o;
	CHECK(optim_new(&c, t.ps, &o) == 0, "adamw new");
	CHECK(optim_state_count(o) == 4, "adamw state count %d", optim_state_count(o));
	const char *want[4] = { "adam.m.w", "adam.m.b", "adam.v.w", "adam.v.b" };
	for (int i = 0; i < 4; i++) {
		const char *nm = NULL;
		Tensor *s = optim_state_at(o, i, &nm);
		CHECK(s && nm && strcmp(nm, want[i]) == 0, "state %d is %s", i, nm ? nm : "(null)");
		CHECK(s && s->size == (i % 2 ? 2u : 3u), "state %d size", i);
	}
	CHECK(optim_state_at(o, 4, NULL) == NULL, "out of range state");
	optim_set_steps(o, 41);
	CHECK(optim_steps(o) == 41, "set_steps");
	optim_free(o);
	optim_free(NULL);
	paramset_free(t.ps);
}

/* ---- schedule, clipping, EMA ---------------------------------------------------------------- */

static void test_schedule(void)
{
	OptimConfig c;
	optim_config_default(&c, OPT_SGD);
	c.lr = 1.0f, c.min_lr = 0.1f, c.warmup_steps = 10, c.schedule = SCHED_COSINE;
	const int64_t steps[] = { 0, 4, 9, 10, 35, 60, 85, 110, 500 };
	const double want[] = { 0.1, 0.5, 1.0, 1.0, 0.1 + 0.9 * 0.5 * (1 + cos(M_PI * 0.25)), 0.55,
		                    0.1 + 0.9 * 0.5 * (1 + cos(M_PI * 0.75)), 0.1, 0.1 };
	for (int i = 0; i < 9; i++) {
		float lr = schedule_lr(&c, steps[i], 110);
		CHECK(fabs(lr - want[i]) < 1e-6, "cosine lr(%lld) = %.9g, expected %.9g",
		      (long long)steps[i], (double)lr, want[i]);
	}
	c.schedule = SCHED_CONSTANT;
	CHECK(schedule_lr(&c, 3, 110) == 0.4f, "constant warmup");
	CHECK(schedule_lr(&c, 50, 110) == 1.0f, "constant");
	c.warmup_steps = 0, c.schedule = SCHED_COSINE;
	CHECK(schedule_lr(&c, 0, 100) == 1.0f, "cosine starts at lr without warmup");
	float prev = 2.0f;
	for (int64_t s = 0; s <= 100; s++) {
		float lr = schedule_lr(&c, s, 100);
		CHECK(lr <= prev + 1e-7f && lr >= c.min_lr - 1e-7f, "cosine not monotone at %lld",
		      (long long)s);
		prev = lr;
	}
}

static void test_clip(void)
{
	ParamSet *ps = paramset_new();
	Tensor *a = paramset_add(ps, "a", 1, (int[]){ 2 }, PARAM_DECAY);
	Tensor *b = paramset_add(ps, "b", 1, (int[]){ 1 }, 0);
	Tensor *f = paramset_add(ps, "f", 1, (int[]){ 1 }, PARAM_FROZEN);
	paramset_add(ps, "buf", 1, (int[]){ 1 }, PARAM_BUFFER);
	a->grad[0] = 3.0f, a->grad[1] = 4.0f, b->grad[0] = 12.0f, f->grad[0] = 100.0f;
	float n = optim_clip_grad_norm(ps, 0.0f);
	CHECK(fabsf(n - 13.0f) < 1e-5f, "norm %g, expected 13 (frozen excluded)", (double)n);
	CHECK(a->grad[0] == 3.0f, "max_norm 0 must only measure");
	n = optim_clip_grad_norm(ps, 20.0f);
	CHECK(fabsf(n - 13.0f) < 1e-5f && b->grad[0] == 12.0f, "under the limit: untouched");
	n = optim_clip_grad_norm(ps, 6.5f);
	CHECK(fabsf(n - 13.0f) < 1e-5f, "returns the pre-clip norm, got %g", (double)n);
	check_vec("clipped a", a->grad, (const double[]){ 1.5, 2.0 }, 2, 1e-5);
	check_vec("clipped b", b->grad, (const double[]){ 6.0 }, 1, 1e-5);
	CHECK(f->grad[0] == 100.0f, "frozen grad scaled");
	n = optim_clip_grad_norm(ps, 0.0f);
	CHECK(fabsf(n - 6.5f) < 1e-4f, "norm after clip %g", (double)n);
	paramset_free(ps);
}

static void test_ema(void)
{
	ParamSet *ps = paramset_new();
	Tensor *ow = paramset_add(ps, "online.enc.w", 1, (int[]){ 2 }, PARAM_DECAY);
	Tensor *orm = paramset_add(ps, "online.enc.rm", 1, (int[]){ 1 }, PARAM_BUFFER);
	Tensor *tw = paramset_add(ps, "target.enc.w", 1, (int[]){ 2 }, PARAM_DECAY);
	Tensor *trm = paramset_add(ps, "target.enc.rm", 1, (int[]){ 1 }, PARAM_BUFFER);
	paramset_add(ps, "online.pred.w", 1, (int[]){ 3 }, PARAM_DECAY); /* no target counterpart */
	ow->data[0] = 1.0f, ow->data[1] = -1.0f, orm->data[0] = 4.0f;
	tw->data[0] = 0.0f, tw->data[1] = 2.0f, trm->data[0] = 0.0f;
	int n = optim_ema(ps, "target.", ps, "online.", 0.9f);
	CHECK(n == 2, "ema count %d", n);
	check_vec("ema w", tw->data, (const double[]){ 0.1, 1.7 }, 2, 1e-6);
	check_vec("ema buffer", trm->data, (const double[]){ 0.4 }, 1, 1e-6);
	/* a destination without a source counterpart fails and changes nothing */
	ParamSet *dst = paramset_new();
	Tensor *d1 = paramset_add(dst, "t.enc.w", 1, (int[]){ 2 }, 0);
	paramset_add(dst, "t.enc.extra", 1, (int[]){ 2 }, 0);
	d1->data[0] = 5.0f;
	CHECK(optim_ema(dst, "t.", ps, "online.", 0.5f) == -ENOENT, "missing source");
	CHECK(d1->data[0] == 5.0f, "a failed EMA must change nothing");
	ParamSet *bad = paramset_new();
	paramset_add(bad, "x.enc.w", 1, (int[]){ 3 }, 0);
	CHECK(optim_ema(bad, "x.", ps, "online.", 0.5f) == -EINVAL, "shape mismatch");
	paramset_free(bad);
	paramset_free(dst);
	paramset_free(ps);
}

/* optim_step, clipping, EMA and schedules never touch the heap. */
static void test_no_alloc(void)
{
	for (int k = OPT_SGD; k <= OPT_LARS; k++) {
		ParamSet *ps = paramset_new();
		for (int i = 0; i < 8; i++) {
			char name[32];
			snprintf(name, sizeof name, "online.l%d.w", i);
			Tensor *t = paramset_add(ps, name, 2, (int[]){ 17, 33 }, i % 2 ? 0 : PARAM_DECAY);
			snprintf(name, sizeof name, "target.l%d.w", i);
			paramset_add(ps, name, 2, (int[]){ 17, 33 }, PARAM_DECAY);
			for (size_t j = 0; j < t->size; j++)
				t->data[j] = 0.01f * (float)(j % 7), t->grad[j] = 0.001f * (float)(j % 5);
		}
		OptimConfig c;
		optim_config_default(&c, (OptimKind)k);
		c.nesterov = k == OPT_SGD;
		c.grad_clip = 1.0f;
		Optim *o;
		CHECK(optim_new(&c, ps, &o) == 0, "optim_new %d", k);
		uint64_t before = eng_alloc_count();
		for (int s = 0; s < 20; s++) {
			float lr = schedule_lr(&c, s, 20);
			optim_clip_grad_norm(ps, c.grad_clip);
			optim_step(o, lr);
			optim_ema(ps, "target.", ps, "online.", 0.99f);
		}
		uint64_t after = eng_alloc_count();
		CHECK(after == before, "optimizer %d allocated %llu times in 20 steps", k,
		      (unsigned long long)(after - before));
		for (int i = 0; i < paramset_count(ps); i++) {
			Tensor *t = paramset_at(ps, i);
			for (size_t j = 0; j < t->size; j++)
				CHECK(isfinite(t->data[j]), "non-finite weight after steps");
		}
		optim_free(o);
		paramset_free(ps);
	}
}

int main(void)
{
	test_paramset();
	test_sgd_adamw();
	test_lars();
	test_state_names();
	test_schedule();
	test_clip();
	test_ema();
	test_no_alloc();
	return check_exit("test_optim");
}
