/* optim.c - SGD (momentum, Nesterov), AdamW, LARS, warmup + cosine schedules, global-norm
 * clipping and EMA between parameter prefixes (see optim.h).
 *
 * All moment buffers are allocated once in optim_new as one block per moment kind, so
 * optim_step performs no allocation and each update is a flat loop over one tensor the compiler
 * can vectorise. The optimizer covers the trainable parameters that exist when it is created
 * (buffers never; frozen parameters get state but are skipped while frozen). It deliberately does
 * not zero gradients (the caller does, after the step) and does not read the schedule itself:
 * the caller passes the learning rate of the step to optim_step.
 */
#include "optim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "simd.h"

#define OPTIM_MAX_MOMENTS 2

struct Optim {
	OptimConfig c;
	ParamSet *ps;
	int np;               /* parameters covered */
	int *idx;             /* their indices in ps */
	int nmom;             /* moment buffers per parameter (SGD/LARS 1 when momentum, AdamW 2) */
	float *mom[OPTIM_MAX_MOMENTS];   /* one block per moment kind, 64-byte aligned per tensor */
	Tensor *state;        /* np * nmom tensor headers over the blocks, names below */
	char **state_names;
	int64_t steps;
};

void optim_config_default(OptimConfig *c, OptimKind kind)
{
	memset(c, 0, sizeof *c);
	c->kind = kind;
	c->schedule = SCHED_COSINE;
	c->beta1 = 0.9f;
	c->beta2 = 0.999f;
	c->eps = 1e-8f;
	c->trust_coef = 0.001f;
	switch (kind) {
	case OPT_SGD:
		c->lr = 0.05f;
		c->momentum = 0.9f;
		c->weight_decay = 5e-4f;
		break;
	case OPT_ADAMW:
		c->lr = 1e-3f;
		c->weight_decay = 0.05f;
		break;
	case OPT_LARS:
		c->lr = 0.3f;
		c->momentum = 0.9f;
		c->weight_decay = 1e-6f;
		break;
	}
}

static const char *moment_prefix(OptimKind kind, int m)
{
	switch (kind) {
	case OPT_SGD: return "sgd.momentum.";
	case OPT_LARS: return "lars.momentum.";
	case OPT_ADAMW: return m == 0 ? "adam.m." : "adam.v.";
	}
	return "?";
}

static size_t round64(size_t nfloats)
{
	return (nfloats + 15) & ~(size_t)15;
}

int optim_new(const OptimConfig *c, ParamSet *ps, Optim **out)
{
	*out = NULL;
	if (!c || !ps || c->kind < OPT_SGD || c->kind > OPT_LARS)
		return -EINVAL;
	Optim *o = eng_calloc(1, sizeof *o);
	if (!o)
		return -ENOMEM;
	o->c = *c;
	o->ps = ps;
	int n = paramset_count(ps);
	o->idx = eng_calloc((size_t)(n ? n : 1), sizeof *o->idx);
	if (!o->idx)
		goto oom;
	size_t total = 0;
	for (int i = 0; i < n; i++) {
		if (paramset_flags_at(ps, i) & PARAM_BUFFER)
			continue;
		o->idx[o->np++] = i;
		total += round64(paramset_at(ps, i)->size);
	}
	o->nmom = c->kind == OPT_ADAMW ? 2 : (c->momentum != 0.0f ? 1 : 0);
	for (int m = 0; m < o->nmom; m++) {
		o->mom[m] = eng_aligned_alloc((total ? total : 16) * sizeof(float));
		if (!o->mom[m])
			goto oom;
		memset(o->mom[m], 0, (total ? total : 16) * sizeof(float));
	}
	int ns = o->np * o->nmom;
	o->state = eng_calloc((size_t)(ns ? ns : 1), sizeof *o->state);
	o->state_names = eng_calloc((size_t)(ns ? ns : 1), sizeof *o->state_names);
	if (!o->state || !o->state_names)
		goto oom;
	for (int m = 0; m < o->nmom; m++) {
		size_t off = 0;
		const char *pre = moment_prefix(c->kind, m);
		for (int k = 0; k < o->np; k++) {
			const Tensor *p = paramset_at(ps, o->idx[k]);
			Tensor *s = &o->state[m * o->np + k];
			tensor_set_shape(s, p->ndim, p->shape);
			s->data = o->mom[m] + off;
			off += round64(p->size);
			size_t len = strlen(pre) + strlen(p->name) + 1;
			char *nm = eng_malloc(len);
			if (!nm)
				goto oom;
			snprintf(nm, len, "%s%s", pre, p->name);
			o->state_names[m * o->np + k] = nm;
			s->name = nm;
		}
	}
	*out = o;
	return 0;
oom:
	optim_free(o);
	return -ENOMEM;
}

void optim_free(Optim *o)
{
	if (!o)
		return;
	if (o->state_names)
		for (int i = 0; i < o->np * o->nmom; i++)
			eng_free(o->state_names[i]);
	eng_free(o->state_names);
	eng_free(o->state);
	for (int m = 0; m < OPTIM_MAX_MOMENTS; m++)
		eng_free(o->mom[m]);
	eng_free(o->idx);
	eng_free(o);
}

/* ---- schedules ------------------------------------------------------------------------------ */

/* Linear warmup: step s < warmup gets lr*(s+1)/warmup, so the first step is small but not wasted
 * and step warmup-1 reaches lr. Then constant, or a half cosine from lr to min_lr over the
 * remaining steps (min_lr from total_steps on). */
float schedule_lr(const OptimConfig *c, int64_t step, int64_t total_steps)
{
	if (step < 0)
		step = 0;
	if (c->warmup_steps > 0 && step < c->warmup_steps)
		return c->lr * (float)((double)(step + 1) / (double)c->warmup_steps);
	if (c->schedule == SCHED_CONSTANT)
		return c->lr;
	int64_t span = total_steps - c->warmup_steps;
	if (span <= 0)
		return c->min_lr;
	double t = (double)(step - c->warmup_steps) / (double)span;
	if (t > 1.0)
		t = 1.0;
	return (float)(c->min_lr + (c->lr - c->min_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * t)));
}

/* ---- clipping ------------------------------------------------------------------------------- */

static double sumsq(const float *restrict x, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)x[i] * (double)x[i];
	return s;
}

static void scale_inplace(float *restrict x, size_t n, float s)
{
	for (size_t i = 0; i < n; i++)
		x[i] *= s;
}

/* The norm covers trainable parameters (not buffers, not frozen). max_norm <= 0 only measures. */
float optim_clip_grad_norm(ParamSet *ps, float max_norm)
{
	double ss = 0.0;
	int n = paramset_count(ps);
	for (int i = 0; i < n; i++) {
		const Tensor *t = paramset_at(ps, i);
		if (t->grad && !(paramset_flags_at(ps, i) & (PARAM_BUFFER | PARAM_FROZEN)))
			ss += sumsq(t->grad, t->size);
	}
	float norm = (float)sqrt(ss);
	if (max_norm > 0.0f && norm > max_norm && isfinite(norm)) {
		float s = max_norm / (norm + 1e-6f);
		for (int i = 0; i < n; i++) {
			Tensor *t = paramset_at(ps, i);
			if (t->grad && !(paramset_flags_at(ps, i) & (PARAM_BUFFER | PARAM_FROZEN)))
				scale_inplace(t->grad, t->size, s);
		}
	}
	return norm;
}

/* ---- update rules (one tensor each; flat loops) -------------------------------------------- */

/* PyTorch SGD: L2 decay added to the gradient, buf = mu*buf + g, Nesterov uses g + mu*buf. */
static void sgd_update(float *restrict w, const float *restrict g, float *restrict buf, size_t n,
                       float lr, float wd, float mu, int nesterov)
{
	if (!buf) {
		for (size_t i = 0; i < n; i++)
			w[i] -= lr * (g[i] + wd * w[i]);
		return;
	}
	if (nesterov) {
		for (size_t i = 0; i < n; i++) {
			float d = g[i] + wd * w[i];
			float b = mu * buf[i] + d;
			buf[i] = b;
			w[i] -= lr * (d + mu * b);
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			float b = mu * buf[i] + g[i] + wd * w[i];
			buf[i] = b;
			w[i] -= lr * b;
		}
	}
}

/* AdamW (Loshchilov & Hutter, PyTorch form): decay w *= 1 - lr*wd, then the bias-corrected step,
 * in the run-time-chosen kernels of simd.h (one flat loop at the CPU's widest vectors). */
static void adamw_update(float *w, const float *g, float *m, float *v, size_t n, float lr,
                         float wd, float b1, float b2, float eps, float bc1, float bc2)
{
	const SimdAdamW p = { .decay = 1.0f - lr * wd, .step = lr / bc1, .rbc2 = 1.0f / sqrtf(bc2),
	                      .b1 = b1, .b2 = b2, .eps = eps };
	simd()->adamw(w, g, m, v, n, &p);
}

/* LARS as in the SimCLR/BYOL reference code: for decayed params d = g + wd*w and the local rate is
 * lr * eta * ||w|| / ||d|| (1 when either norm is 0); params without PARAM_DECAY (biases, norms)
 * use plain momentum SGD. buf = mu*buf + local_lr*d; w -= buf. */
static void lars_update(float *restrict w, const float *restrict g, float *restrict buf, size_t n,
                        float lr, float wd, float mu, float eta, int adapt)
{
	float local = lr;
	if (adapt) {
		double wn = 0.0, dn = 0.0;
		for (size_t i = 0; i < n; i++) {
			float d = g[i] + wd * w[i];
			wn += (double)w[i] * (double)w[i];
			dn += (double)d * (double)d;
		}
		wn = sqrt(wn);
		dn = sqrt(dn);
		if (wn > 0.0 && dn > 0.0)
			local = (float)(lr * eta * wn / dn);
	} else {
		wd = 0.0f;
	}
	if (!buf) {
		for (size_t i = 0; i < n; i++)
			w[i] -= local * (g[i] + wd * w[i]);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		float b = mu * buf[i] + local * (g[i] + wd * w[i]);
		buf[i] = b;
		w[i] -= b;
	}
}

void optim_step(Optim *o, float lr)
{
	const OptimConfig *c = &o->c;
	o->steps++;
	double bc1 = 1.0 - pow((double)c->beta1, (double)o->steps);
	double bc2 = 1.0 - pow((double)c->beta2, (double)o->steps);
	for (int k = 0; k < o->np; k++) {
		int i = o->idx[k];
		int flags = paramset_flags_at(o->ps, i);
		if (flags & PARAM_FROZEN)
			continue;
		Tensor *p = paramset_at(o->ps, i);
		float wd = (flags & PARAM_DECAY) ? c->weight_decay : 0.0f;
		float *m0 = o->nmom > 0 ? o->state[k].data : NULL;
		switch (c->kind) {
		case OPT_SGD:
			sgd_update(p->data, p->grad, m0, p->size, lr, wd, c->momentum, c->nesterov);
			break;
		case OPT_ADAMW:
			adamw_update(p->data, p->grad, m0, o->state[o->np + k].data, p->size, lr, wd,
			             c->beta1, c->beta2, c->eps, (float)bc1, (float)bc2);
			break;
		case OPT_LARS:
			lars_update(p->data, p->grad, m0, p->size, lr, wd, c->momentum, c->trust_coef,
			            (flags & PARAM_DECAY) != 0);
			break;
		}
	}
}

int64_t optim_steps(const Optim *o)
{
	return o->steps;
}

void optim_set_steps(Optim *o, int64_t steps)
{
	o->steps = steps;
}

int optim_state_count(const Optim *o)
{
	return o->np * o->nmom;
}

Tensor *optim_state_at(const Optim *o, int i, const char **name)
{
	if (i < 0 || i >= o->np * o->nmom)
		return NULL;
	if (name)
		*name = o->state_names[i];
	return &o->state[i];
}

/* ---- EMA ------------------------------------------------------------------------------------ */

#define OPTIM_NAME_MAX 512

static void ema_update(float *restrict d, const float *restrict s, size_t n, float tau)
{
	float a = 1.0f - tau;
	for (size_t i = 0; i < n; i++)
		d[i] = tau * d[i] + a * s[i];
}

/* Buffers (BatchNorm running statistics) are averaged too, as timm's ModelEmaV2 does, so a target
 * network evaluated in eval mode has sensible statistics. Returns the number of tensors updated,
 * -ENOENT when a destination tensor has no source counterpart, -EINVAL on a shape mismatch
 * (nothing is updated in either error case). No allocation: names are built on the stack. */
int optim_ema(ParamSet *dst, const char *dst_prefix, const ParamSet *src, const char *src_prefix,
              float tau)
{
	dst_prefix = dst_prefix ? dst_prefix : "";
	src_prefix = src_prefix ? src_prefix : "";
	size_t dl = strlen(dst_prefix), sl = strlen(src_prefix);
	char name[OPTIM_NAME_MAX];
	int n = paramset_count(dst);
	for (int pass = 0; pass < 2; pass++) { /* pass 0 validates, pass 1 updates */
		int count = 0;
		for (int i = 0; i < n; i++) {
			Tensor *d = paramset_at(dst, i);
			if (strncmp(d->name, dst_prefix, dl) != 0)
				continue;
			const char *rest = d->name + dl;
			size_t rl = strlen(rest);
			if (sl + rl + 1 > sizeof name)
				return -ENAMETOOLONG;
			memcpy(name, src_prefix, sl);
			memcpy(name + sl, rest, rl + 1);
			const Tensor *s = paramset_find(src, name);
			if (!s)
				return -ENOENT;
			if (!tensor_same_shape(d, s))
				return -EINVAL;
			if (pass == 1 && d != s)
				ema_update(d->data, s->data, d->size, tau);
			count++;
		}
		if (pass == 1)
			return count;
	}
	return 0;
}
