/* two_view.c - the encoder + head + monitor of the two-view methods and the EMA target of byol and
 * moco, once (two_view.h says who uses what). It knows no loss and no augmentation. */
#include "two_view.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../ops.h"
#include "../optim.h"

/* Copy "encoder.*" and "proj.*" into "target.encoder.*" and "target.proj.*" and freeze every
 * "target.*" tensor (no grad, no optimizer; buffers stay buffers). */
static int target_init(ParamSet *ps)
{
	if (paramset_copy_prefix(ps, "target.encoder.", ps, "encoder.") < 0 ||
	    paramset_copy_prefix(ps, "target.proj.", ps, "proj.") < 0)
		return -1;
	for (int i = 0; i < paramset_count(ps); i++)
		if (strncmp(paramset_at(ps, i)->name, "target.", 7) == 0)
			paramset_set_flags_at(ps, i, PARAM_FROZEN);
	return 0;
}

int two_view_create(const MethodEnv *env, ParamSet *ps, size_t size, const TwoViewHead *head,
                    void **state, char *err, size_t errlen)
{
	TwoView *tv = size >= sizeof *tv ? eng_calloc(1, size) : NULL;
	if (!tv) {
		snprintf(err, errlen, "%s: out of memory", head->method);
		return -1;
	}
	int rc = encoder_new(env->encoder, ps, "encoder", env->in_c, env->in_h, env->in_w, env->rng,
	                     &tv->encoder, err, errlen);
	if (rc == 0 && head->target)
		rc = encoder_new(env->encoder, ps, "target.encoder", env->in_c, env->in_h, env->in_w,
		                 env->rng, &tv->t_encoder, err, errlen);
	if (rc < 0)
		goto fail;
	rc = -1;
	int dims[4], n = 0, bn = !head->plain;
	dims[n++] = encoder_out_dim(tv->encoder);
	for (int i = 0; i < head->hidden_layers && i < 2; i++)
		dims[n++] = head->hidden;
	dims[n++] = head->out;
	if (mlp_new(ps, "proj", dims, n, bn, env->rng, &tv->proj) < 0 ||
	    (head->target && mlp_new(ps, "target.proj", dims, n, bn, env->rng, &tv->t_proj) < 0)) {
		int at = snprintf(err, errlen, "%s: cannot build the %s %d", head->method, head->noun,
		                  dims[0]);
		for (int i = 1; i < n && at >= 0 && (size_t)at < errlen; i++)
			at += snprintf(err + at, errlen - (size_t)at, "-%d", dims[i]);
		goto fail;
	}
	if (head->target && target_init(ps) < 0) {
		snprintf(err, errlen, "%s: cannot copy the online network into the target", head->method);
		goto fail;
	}
	if (ssl_monitor_new(2 * env->batch_size, head->out, head->health_every, &tv->health) < 0) {
		snprintf(err, errlen, "%s: out of memory for the health monitor", head->method);
		goto fail;
	}
	*state = tv;
	return 0;
fail:
	two_view_destroy(tv);
	return rc;
}

void two_view_destroy(void *state)
{
	TwoView *tv = state;
	if (!tv)
		return;
	encoder_free(tv->encoder);
	mlp_free(tv->proj);
	ssl_monitor_free(tv->health);
	encoder_free(tv->t_encoder);
	mlp_free(tv->t_proj);
	eng_free(tv);
}

Encoder *two_view_encoder(void *state)
{
	return ((TwoView *)state)->encoder;
}

Tensor *two_view_project(Ctx *ctx, TwoView *tv, Tensor *x)
{
	return mlp_forward(ctx, tv->proj, encoder_forward(ctx, tv->encoder, x));
}

Tensor *two_view_target_project(Ctx *ctx, TwoView *tv, Tensor *x)
{
	return mlp_forward(ctx, tv->t_proj, encoder_forward(ctx, tv->t_encoder, x));
}

Tensor *two_view_embed(Ctx *ctx, TwoView *tv, Tensor *const *views)
{
	Tensor *pair[2] = { views[0], views[1] };
	Tensor *x = op_concat(ctx, pair, 2, 0);                  /* (2B,C,H,W) */
	return op_dist_gather_rows(ctx, two_view_project(ctx, tv, x), 2);
}

int two_view_observe(TwoView *tv, const Tensor *z, int pos_cosine, const MetricSink *sink)
{
	if (!sink)
		return 0;
	int B = z->shape[0] / 2, P = z->shape[1];
	const float *z2 = z->data + (size_t)B * P;
	if (pos_cosine)   /* a cheap health signal: 1 = the views are mapped to the same point */
		metric_put(sink, "pos_cosine", ssl_pair_cosine(z->data, z2, B, P));
	return ssl_monitor_observe(tv->health, z->data, z2, B, sink);
}

/* ---- target networks -------------------------------------------------------------------------- */

float two_view_target_rate(float base, int64_t step, int64_t total_steps)
{
	double k = total_steps > 0 ? (double)(step + 1) / (double)total_steps : 1.0;
	if (k > 1)
		k = 1;
	return (float)(1.0 - (1.0 - base) * (cos(M_PI * k) + 1.0) / 2.0);
}

void two_view_target_update(ParamSet *ps, float rate)
{
	optim_ema(ps, "target.encoder.", ps, "encoder.", rate);
	optim_ema(ps, "target.proj.", ps, "proj.", rate);
}
