/* eval.c - the downstream protocols' front door: defaults, the labelled subset, dispatch, and
 * what every protocol shares (building the encoder to evaluate, encoding a batch, extracting
 * frozen features).
 *
 * It deliberately does no learning itself (eval_linear.c, eval_knn.c and eval_train.c do) and
 * never touches the caller's networks: each protocol evaluates a fresh encoder built from
 * env->encoder_cfg with env->pretrained copied in by name.
 */
#include "eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../alloc.h"
#include "eval_internal.h"
#include "../../common/monotime.h"

/* ---- configuration ------------------------------------------------------------------------- */

const char *eval_proto_name(EvalProto p)
{
	const EvalProtocolDef *d = eval_protocol_get(p);
	return d ? d->name : "unknown";
}

/* ---- the protocol registry ---------------------------------------------------------------- */

extern const EvalProtocolDef eval_protocol_linear_probe;   /* eval_linear.c */
extern const EvalProtocolDef eval_protocol_finetune;       /* eval_train.c */
extern const EvalProtocolDef eval_protocol_knn;            /* eval_knn.c */
extern const EvalProtocolDef eval_protocol_supervised;     /* eval_train.c */
extern const EvalProtocolDef eval_protocol_random_init;    /* eval_linear.c */
extern const EvalProtocolDef eval_protocol_pixel_probe;    /* eval_pixels.c */

static const EvalProtocolDef *const protocols[] = {
	&eval_protocol_linear_probe,
	&eval_protocol_finetune,
	&eval_protocol_knn,
	&eval_protocol_supervised,
	&eval_protocol_random_init,
	&eval_protocol_pixel_probe,
};
_Static_assert(sizeof protocols / sizeof protocols[0] == EVAL_PROTO_COUNT, "one entry per protocol");

int eval_protocol_count(void)
{
	return EVAL_KEY_COUNT(protocols);
}

const EvalProtocolDef *eval_protocol_at(int i)
{
	return i >= 0 && i < eval_protocol_count() ? protocols[i] : NULL;
}

const EvalProtocolDef *eval_protocol_find(const char *name)
{
	for (int i = 0; name && i < eval_protocol_count(); i++)
		if (strcmp(protocols[i]->name, name) == 0)
			return protocols[i];
	return NULL;
}

const EvalProtocolDef *eval_protocol_get(EvalProto p)
{
	for (int i = 0; i < eval_protocol_count(); i++)
		if (protocols[i]->protocol == p)
			return protocols[i];
	return NULL;
}

const ParamDef *eval_protocol_key(const EvalProtocolDef *p, const char *name)
{
	for (int i = 0; p && name && i < p->n_keys; i++)
		if (strcmp(p->keys[i].name, name) == 0)
			return &p->keys[i];
	return NULL;
}

/* The published keys come from the protocol's table; the few settings a protocol has but does not
 * expose are set here. finetune and supervised read `epochs` as passes over the labelled subset,
 * with at least EVAL_MIN_TRAIN_STEPS steps so that 1% of the labels still trains long enough; the
 * linear probe reads it as its L-BFGS iteration budget per fit. */
void eval_config_default(EvalConfig *c, EvalProto p)
{
	memset(c, 0, sizeof *c);
	const EvalProtocolDef *d = eval_protocol_get(p);
	if (d)
		param_fill_defaults(d->keys, d->n_keys, c, sizeof *c);
	c->protocol = p;
	c->label_rule = LABELS_FIRST;
	c->fractions[0] = 1.0;
	c->n_fractions = 1;
	switch (p) {
	case EVAL_PROTO_KNN:
		c->epochs = 1;
		c->batch_size = EVAL_FEATURE_BATCH;
		break;
	case EVAL_PROTO_SUPERVISED:
		c->encoder_lr_scale = 1.0f;   /* one learning rate for the whole network */
		break;
	default:
		break;
	}
}

void eval_config_resolve(const EvalConfig *cfg, EvalConfig *out)
{
	EvalConfig d;
	eval_config_default(&d, cfg->protocol);
	*out = *cfg;
	if (out->epochs <= 0)
		out->epochs = d.epochs;
	if (out->batch_size <= 0)
		out->batch_size = d.batch_size;
	if (!(out->lr > 0.0f))
		out->lr = d.lr;
	/* Finetune with scale 0 would be a linear probe trained by SGD; 0 means "default" here. */
	if (!(out->encoder_lr_scale > 0.0f))
		out->encoder_lr_scale = d.encoder_lr_scale;
	if (out->protocol == EVAL_PROTO_SUPERVISED)
		out->encoder_lr_scale = 1.0f;
	if (!(out->weight_decay >= 0.0f))
		out->weight_decay = d.weight_decay;
	if (out->k <= 0)
		out->k = d.k;
	if (!(out->temperature > 0.0f))
		out->temperature = d.temperature;
}

void eval_config_resolve_or_default(const EvalConfig *cfg, EvalProto p, EvalConfig *out)
{
	if (cfg)
		eval_config_resolve(cfg, out);
	else
		eval_config_default(out, p);
}

/* ---- callbacks ----------------------------------------------------------------------------- */

int eval_should_stop(const EvalEnv *env)
{
	return env && env->should_stop && env->should_stop(env->user);
}

void eval_progress(const EvalEnv *env, int epoch, int epochs, double metric)
{
	if (env && env->on_progress)
		env->on_progress(env->user, epoch, epochs, metric);
}

/* ---- the encoder under evaluation ---------------------------------------------------------- */

static void env_sample_shape(const EvalEnv *env, int *c, int *h, int *w)
{
	const Dataset *ds = env->ds;
	if (env->in_c > 0 && env->in_h > 0 && env->in_w > 0) {
		*c = env->in_c, *h = env->in_h, *w = env->in_w;
	} else if (ds->kind == DATASET_TEXT_RECORDS) {
		*c = 1, *h = 1, *w = ds->record_bytes;
	} else {
		*c = ds->c, *h = ds->h, *w = ds->w;
	}
}

int eval_build_encoder(const EvalEnv *env, ParamSet *ps, Encoder **out, char *err, size_t errlen)
{
	int c, h, w;
	env_sample_shape(env, &c, &h, &w);
	Rng rng;
	rng_seed(&rng, env->seed ^ 0x5eed0e7a1ULL);
	*out = NULL;
	Encoder *enc = NULL;
	int rc = encoder_new(env->encoder_cfg, ps, "encoder", c, h, w, &rng, &enc, err, errlen);
	if (rc < 0)
		return rc;
	if (!env->pretrained) {
		*out = enc;
		return 0;
	}
	/* Copy by name ourselves rather than trusting a partial match: every tensor of the fresh
	 * encoder (weights and BatchNorm buffers) must exist in the pretrained set with its size. */
	const char *prefix = env->prefix && env->prefix[0] ? env->prefix : "encoder";
	size_t own = strlen("encoder");
	char name[256];
	for (int i = 0; i < paramset_count(ps); i++) {
		Tensor *t = paramset_at(ps, i);
		if (!t->name || strncmp(t->name, "encoder", own) != 0)
			continue;
		if (snprintf(name, sizeof name, "%s%s", prefix, t->name + own) >= (int)sizeof name) {
			snprintf(err, errlen, "eval: parameter name too long: %s%s", prefix, t->name + own);
			encoder_free(enc);
			return -ENAMETOOLONG;
		}
		const Tensor *src = paramset_find(env->pretrained, name);
		if (!src) {
			snprintf(err, errlen, "eval: pretrained weights have no `%s` (the encoder "
			         "architecture differs from the one that was trained?)", name);
			encoder_free(enc);
			return -EINVAL;
		}
		if (src->size != t->size) {
			char a[64], b[64];
			snprintf(err, errlen, "eval: pretrained `%s` has shape %s, the encoder expects %s",
			         name, tensor_shape_str(src, a, sizeof a), tensor_shape_str(t, b, sizeof b));
			encoder_free(enc);
			return -EINVAL;
		}
		memcpy(t->data, src->data, t->size * sizeof(float));
	}
	*out = enc;
	return 0;
}

/* ---- encoding batches ------------------------------------------------------------------------ */

Tensor *eval_encode(Ctx *ctx, Encoder *enc, const Dataset *ds, const Split *split, float *x,
                    const int *idx, int n)
{
	if (ds->kind == DATASET_TEXT_RECORDS) {
		/* Bytes are the token ids; encoder_forward pools the per-token states the way the
		 * encoder is configured (mean or first token) and applies its projection. */
		int T = ds->record_bytes;
		const uint8_t *rec = split == &ds->test ? ds->rec_test : ds->rec_train;
		Tensor *ids = ctx_tensor(ctx, 2, (int[]){ n, T });                // (n,T) token ids
		for (int i = 0; i < n; i++)
			for (int t = 0; t < T; t++)
				ids->data[(size_t)i * T + t] = rec[(size_t)idx[i] * T + t];
		return encoder_forward(ctx, enc, ids);                            // (n,out_dim)
	}
	size_t sf = ds->sample_floats;
	Tensor *in;
	if (ds->c == 1 && ds->h == 1) {
		in = x ? ctx_wrap(ctx, x, 2, (int[]){ n, ds->w }) : ctx_tensor(ctx, 2, (int[]){ n, ds->w });
	} else {
		int shape[4] = { n, ds->c, ds->h, ds->w };
		in = x ? ctx_wrap(ctx, x, 4, shape) : ctx_tensor(ctx, 4, shape);
	}
	if (!x)
		for (int i = 0; i < n; i++)
			memcpy(in->data + (size_t)i * sf, split->x + (size_t)idx[i] * sf, sf * sizeof(float));
	return encoder_forward(ctx, enc, in);                               // (n,out_dim)
}

typedef struct FeatureJob {
	Encoder *enc;
	const Dataset *ds;
	const Split *split;
	const int *idx;      /* NULL: samples 0..n-1 */
	int n, batch, d;
	int *ids;            /* (batch) scratch */
	float *out;          /* (n, d) */
	const EvalEnv *env;  /* may be NULL; else its stop is polled every batch */
} FeatureJob;

static int features_loop(Ctx *ctx, const FeatureJob *j)
{
	for (int s = 0; s < j->n; s += j->batch) {
		/* A long extraction (70,000 images) must not hold a cancel or a daemon stop. */
		if (j->env && eval_should_stop(j->env))
			return -ECANCELED;
		int m = j->n - s < j->batch ? j->n - s : j->batch;
		for (int i = 0; i < m; i++)
			j->ids[i] = j->idx ? j->idx[s + i] : s + i;
		ctx_reset(ctx);
		Tensor *f = eval_encode(ctx, j->enc, j->ds, j->split, NULL, j->ids, m);   // (m,d)
		if (f->size != (size_t)m * j->d)
			return -EINVAL;
		memcpy(j->out + (size_t)s * j->d, f->data, (size_t)m * j->d * sizeof(float));
	}
	ctx_reset(ctx);
	return 0;
}

/* The out-of-memory handler is armed here, apart from the callers' locals, so nothing they hold
 * in registers can be clobbered by the longjmp. */
static int features_guarded(Ctx *ctx, const FeatureJob *j)
{
	if (CTX_TRY(ctx) != 0) {
		ctx_disarm(ctx);
		return -ENOMEM;
	}
	int rc = features_loop(ctx, j);
	ctx_disarm(ctx);
	return rc;
}

/* eval_features, stopping early (NULL) when env says so. */
static float *features_stoppable(Encoder *enc, const Dataset *ds, const Split *split, const int *idx, int n,
                                 int batch, uint64_t seed, const EvalEnv *env)
{
	if (!enc || !ds || !split || n < 0)
		return NULL;
	FeatureJob j = { .enc = enc, .ds = ds, .split = split, .idx = idx, .n = n,
	                 .batch = batch > 0 ? batch : EVAL_FEATURE_BATCH,
	                 .d = encoder_out_dim(enc), .env = env };
	j.out = eng_malloc((size_t)n * j.d * sizeof(float));
	j.ids = eng_malloc((size_t)j.batch * sizeof(int));
	Ctx *ctx = ctx_new(seed);
	int rc = -ENOMEM;
	if (j.out && j.ids && ctx) {
		ctx_set_training(ctx, 0);
		ctx_set_grad_enabled(ctx, 0);
		rc = features_guarded(ctx, &j);
	}
	ctx_free(ctx);
	eng_free(j.ids);
	if (rc < 0) {
		eng_free(j.out);
		return NULL;
	}
	return j.out;
}

/* idx NULL means samples 0..n-1. Returns NULL on out of memory or a bad argument. */
float *eval_features(Encoder *enc, const Dataset *ds, const Split *split, const int *idx, int n,
                     int batch, uint64_t seed)
{
	return features_stoppable(enc, ds, split, idx, n, batch, seed, NULL);
}

int eval_frozen_features(const EvalEnv *env, const int *idx, int n, EvalFeatures *f, char *err,
                         size_t errlen)
{
	*f = (EvalFeatures){ 0 };
	const Dataset *ds = env->ds;
	f->ytr = eng_malloc((size_t)n * sizeof(int));
	ParamSet *ps = f->ytr ? paramset_new() : NULL;
	if (!ps) {
		eng_free(f->ytr);
		f->ytr = NULL;
		snprintf(err, errlen, "eval: out of memory creating the encoder");
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++)
		f->ytr[i] = ds->train.y[idx[i]];
	Encoder *enc = NULL;
	int rc = eval_build_encoder(env, ps, &enc, err, errlen);
	if (rc < 0)
		goto out;
	f->dim = encoder_out_dim(enc);
	f->ftr = features_stoppable(enc, ds, &ds->train, idx, n, EVAL_FEATURE_BATCH, env->seed, env);
	if (f->ftr && !eval_should_stop(env))
		f->fte = features_stoppable(enc, ds, &ds->test, NULL, ds->test.n, EVAL_FEATURE_BATCH,
		                            env->seed, env);
	if (eval_should_stop(env)) {
		snprintf(err, errlen, "eval: cancelled");
		rc = -ECANCELED;
	} else if (!f->ftr || !f->fte) {
		snprintf(err, errlen, "eval: out of memory extracting features (%d labelled + %d test "
		         "samples, %d floats each)", n, ds->test.n, f->dim);
		rc = -ENOMEM;
	}
out:
	if (rc < 0)
		eval_features_free(f);
	encoder_free(enc);
	paramset_free(ps);
	return rc;
}

void eval_features_free(EvalFeatures *f)
{
	eng_free(f->ftr);
	eng_free(f->ytr);
	eng_free(f->fte);
	*f = (EvalFeatures){ 0 };
}

/* ---- dispatch -------------------------------------------------------------------------------- */

int eval_run(const EvalEnv *env, const EvalConfig *cfg, double fraction, int labels_per_class,
             EvalResult *out, char *err, size_t errlen)
{
	if (!env || !cfg || !out || !env->ds || !env->encoder_cfg) {
		snprintf(err, errlen, "eval: missing %s", !env ? "environment" : !cfg ? "config"
		         : !out ? "result" : !env->ds ? "dataset" : "encoder config");
		return -EINVAL;
	}
	memset(out, 0, sizeof *out);
	const Dataset *ds = env->ds;
	const char *pname = eval_proto_name(cfg->protocol);
	const EvalProtocolDef *def = eval_protocol_get(cfg->protocol);
	if (!def || !def->run) {
		snprintf(err, errlen, "eval: unknown protocol %d", (int)cfg->protocol);
		return -EINVAL;
	}
	if (ds->num_classes < 2) {
		snprintf(err, errlen, "eval %s: the dataset has %d classes; a downstream protocol needs "
		         "labels of at least 2", pname, ds->num_classes);
		return -EINVAL;
	}
	if (ds->test.n <= 0) {
		snprintf(err, errlen, "eval %s: the dataset has no test samples", pname);
		return -EINVAL;
	}
	if (labels_per_class <= 0 && !(fraction > 0.0 && fraction <= 1.0)) {
		snprintf(err, errlen, "eval %s: label fraction %g is outside (0, 1]", pname, fraction);
		return -EINVAL;
	}
	EvalConfig c;
	eval_config_resolve(cfg, &c);
	double t0 = mono_seconds();
	if (env->threads > 0)
		eng_set_threads(env->threads);

	int *idx = NULL;
	int n = dataset_label_subset(&ds->train, ds->num_classes, fraction, labels_per_class,
	                             c.label_rule, env->label_seed ? *env->label_seed : env->seed,
	                             &idx, err, errlen);
	if (n < 0)
		return n;
	if (n == 0) {
		eng_free(idx);
		snprintf(err, errlen, "eval %s: label fraction %g selects no training samples", pname,
		         fraction);
		return -EINVAL;
	}
	/* A baseline never sees the pretrained weights, whatever the caller passed. */
	EvalEnv own = *env;
	if (def->baseline)
		own.pretrained = NULL;
	int rc = def->run(&own, &c, idx, n, out, err, errlen);
	eng_free(idx);
	out->labels = n;
	out->seconds = mono_seconds() - t0;
	return rc;
}
