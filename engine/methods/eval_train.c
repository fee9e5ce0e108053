/* eval_train.c - finetune and the supervised baseline: an encoder plus a linear head trained end
 * to end on the labelled subset with AdamW, a warmup + cosine schedule and (optionally) light
 * augmentation, then scored in eval mode (BatchNorm on running statistics) on the full test split.
 *
 * The two protocols are one recipe: finetune starts the encoder from the pretrained weights (and
 * the head from a linear probe on them, LP-FT) and gives the encoder a smaller learning rate
 * (lr * encoder_lr_scale); supervised starts from random initialisation with the same learning
 * rate everywhere. The encoder and the head live in two
 * ParamSets with one optimizer each, which is how the two learning rates are expressed. It
 * deliberately does not checkpoint (evaluations are short and restart from the pretrained weights)
 * and never modifies the caller's networks.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../data/augment.h"
#include "../data/loader.h"
#include "../ops.h"
#include "../optim.h"
#include "eval_internal.h"

/* Accuracy of encoder + head on idx[0..n) of split (idx NULL: the whole split), eval mode. */
static double predict_accuracy(Ctx *ctx, Encoder *enc, Mlp *head, const Dataset *ds,
                               const Split *split, const int *idx, int n, int *ids)
{
	int correct = 0;
	int was_training = ctx_training(ctx);
	int was_grad = ctx_set_grad_enabled(ctx, 0);
	ctx_set_training(ctx, 0);
	for (int s = 0; s < n; s += EVAL_FEATURE_BATCH) {
		int m = n - s < EVAL_FEATURE_BATCH ? n - s : EVAL_FEATURE_BATCH;
		for (int i = 0; i < m; i++)
			ids[i] = idx ? idx[s + i] : s + i;
		ctx_reset(ctx);
		Tensor *logits = mlp_forward(ctx, head, eval_encode(ctx, enc, ds, split, NULL, ids, m));
		int k = logits->shape[1];                                  // logits (m,k)
		for (int i = 0; i < m; i++) {
			const float *row = logits->data + (size_t)i * k;
			int best = 0;
			for (int j = 1; j < k; j++)
				if (row[j] > row[best])
					best = j;
			correct += best == split->y[ids[i]];
		}
	}
	ctx_reset(ctx);
	ctx_set_training(ctx, was_training);
	ctx_set_grad_enabled(ctx, was_grad);
	return n ? (double)correct / n : NAN;
}

/* LP-FT (Kumar et al. 2022, "Fine-tuning can distort pretrained features"): when the encoder is
 * pretrained, the head starts as the linear probe fitted on its frozen features of the labelled
 * subset, so the first steps do not send a random head's gradients into the encoder. Measured on
 * Fashion-MNIST, 600 labels, a CNN pretrained on 30000 other images: 0.785 test accuracy against
 * 0.736 with a random head (the probe alone: 0.778). From random initialisation (the supervised
 * baseline) it hurts instead - the features it would be fitted to are about to change entirely
 * (0.694 against 0.7355) - so the baseline keeps a random head. */
static int head_from_probe(const EvalEnv *env, Encoder *enc, ParamSet *ps_head, const int *idx,
                           int n, char *err, size_t errlen)
{
	const Dataset *ds = env->ds;
	int d = encoder_out_dim(enc), K = ds->num_classes;
	Tensor *w = paramset_find(ps_head, "head.fc0.weight");   // (K,d)
	Tensor *b = paramset_find(ps_head, "head.fc0.bias");     // (K)
	if (!w || !b || w->size != (size_t)K * d || b->size != (size_t)K) {
		snprintf(err, errlen, "eval: the linear head has no (%d,%d) `head.fc0` weight and bias",
		         K, d);
		return -EINVAL;
	}
	int *y = eng_malloc((size_t)n * sizeof(int));
	float *f = eval_features(enc, ds, &ds->train, idx, n, EVAL_FEATURE_BATCH, env->seed);
	int rc = -ENOMEM;
	if (y && f) {
		for (int i = 0; i < n; i++)
			y[i] = ds->train.y[idx[i]];
		EvalConfig pc;
		eval_config_default(&pc, EVAL_PROTO_LINEAR_PROBE);
		pc.epochs = EVAL_LPFT_HEAD_ITERS;
		EvalResult r;
		rc = eval_linear_core(NULL, f, y, n, NULL, NULL, 0, d, K, &pc, env->seed, &r, w->data,
		                      b->data, err, errlen);
	} else {
		snprintf(err, errlen, "eval: out of memory for the features of %d labelled samples", n);
	}
	eng_free(y);
	eng_free(f);
	return rc;
}

typedef struct Trainer {
	const EvalEnv *env;
	const EvalConfig *cfg;
	const char *pname;
	const int *idx;
	int n, batch, epochs;
	int64_t total;
	Encoder *enc;
	Mlp *head;
	ParamSet *ps_enc, *ps_head;
	Optim *opt_enc, *opt_head;
	OptimConfig oc_enc, oc_head;
	Loader *ld;
	int *ids;                 /* (EVAL_FEATURE_BATCH) scratch for scoring */
	EvalResult *out;
	char *err;
	size_t errlen;
} Trainer;

/* The step loop, then the scores. No heap allocation per step: activations live in the arena. */
static int train_and_score(Ctx *ctx, Trainer *t)
{
	const EvalEnv *env = t->env;
	const Dataset *ds = env->ds;
	int64_t step = 0;
	for (int ep = 0; ep < t->epochs; ep++) {
		double loss_sum = 0.0;
		int nb = 0;
		const Batch *b;
		while ((b = loader_next(t->ld)) != NULL) {
			if (eval_should_stop(env)) {
				snprintf(t->err, t->errlen, "eval %s: cancelled at step %lld of %lld", t->pname,
				         (long long)step, (long long)t->total);
				return -ECANCELED;
			}
			ctx_reset(ctx);
			ctx_set_training(ctx, 1);
			Tensor *feat = eval_encode(ctx, t->enc, ds, &ds->train, b->view[0], b->idx, b->n);
			Tensor *logits = mlp_forward(ctx, t->head, feat);            // (n,K)
			Tensor *loss = op_cross_entropy(ctx, logits, b->y, 0.0f);
			float lv = loss->data[0];
			if (!isfinite(lv)) {
				snprintf(t->err, t->errlen, "eval %s: loss became %s at step %lld", t->pname,
				         isnan(lv) ? "NaN" : "infinite", (long long)step);
				return -ERANGE;
			}
			ctx_backward(ctx, loss);
			optim_step(t->opt_head, schedule_lr(&t->oc_head, step, t->total));
			optim_step(t->opt_enc, schedule_lr(&t->oc_enc, step, t->total));
			paramset_zero_grad(t->ps_head);
			paramset_zero_grad(t->ps_enc);
			loss_sum += lv;
			nb++;
			step++;
		}
		eval_progress(env, ep + 1, t->epochs, nb ? loss_sum / nb : NAN);
	}
	t->out->train_accuracy = predict_accuracy(ctx, t->enc, t->head, ds, &ds->train, t->idx,
	                                          t->n, t->ids);
	if (eval_should_stop(env)) {
		snprintf(t->err, t->errlen, "eval %s: cancelled before testing", t->pname);
		return -ECANCELED;
	}
	t->out->test_accuracy = predict_accuracy(ctx, t->enc, t->head, ds, &ds->test, NULL,
	                                         ds->test.n, t->ids);
	t->out->labels = t->n;
	return 0;
}

/* Arms the arena's out-of-memory handler apart from the caller's locals (see eval.c). */
static int train_guarded(Ctx *ctx, Trainer *t)
{
	if (CTX_TRY(ctx) != 0) {
		ctx_disarm(ctx);
		snprintf(t->err, t->errlen, "eval %s: out of memory during a training step (batch %d)",
		         t->pname, t->batch);
		return -ENOMEM;
	}
	int rc = train_and_score(ctx, t);
	ctx_disarm(ctx);
	return rc;
}

int eval_train_run(const EvalEnv *env, const EvalConfig *cfg, const int *idx, int n,
                   EvalResult *out, char *err, size_t errlen)
{
	const Dataset *ds = env->ds;
	Trainer t = { .env = env, .cfg = cfg, .pname = eval_proto_name(cfg->protocol), .idx = idx,
	              .n = n, .out = out, .err = err, .errlen = errlen };
	const char *pname = t.pname;
	int K = ds->num_classes, rc = 0;
	t.ps_enc = paramset_new();
	t.ps_head = paramset_new();
	t.ids = eng_malloc(EVAL_FEATURE_BATCH * sizeof(int));
	Ctx *ctx = ctx_new(env->seed);
	if (!t.ps_enc || !t.ps_head || !ctx || !t.ids) {
		snprintf(err, errlen, "eval %s: out of memory", pname);
		rc = -ENOMEM;
		goto out;
	}

	/* The networks: supervised always starts from random initialisation. */
	EvalEnv benv = *env;
	if (cfg->protocol == EVAL_PROTO_SUPERVISED)
		benv.pretrained = NULL;
	if ((rc = eval_build_encoder(&benv, t.ps_enc, &t.enc, err, errlen)) < 0)
		goto out;
	Rng rng;
	rng_seed(&rng, env->seed ^ 0x4ead5eedULL);
	int fdim = encoder_out_dim(t.enc);
	if (mlp_new(t.ps_head, "head", (int[]){ fdim, K }, 2, 0, &rng, &t.head) < 0) {
		snprintf(err, errlen, "eval %s: cannot create the %d -> %d linear head", pname, fdim, K);
		rc = -ENOMEM;
		goto out;
	}

	if (benv.pretrained && (rc = head_from_probe(env, t.enc, t.ps_head, idx, n, err, errlen)) < 0)
		goto out;

	/* The labelled subset, shuffled each epoch; full batches only (BatchNorm needs > 1). */
	AugConfig aug;
	aug_config_default_light(&aug);
	int augment = cfg->augment && ds->kind != DATASET_TEXT_RECORDS;
	t.batch = cfg->batch_size < n ? cfg->batch_size : n;
	LoaderConfig lc = {
		.ds = ds, .split = &ds->train, .indices = idx, .n = n, .batch = t.batch,
		.views = augment ? 1 : 0, .aug = { augment ? &aug : NULL, NULL },
		.seed = env->seed ^ 0x10ade7ULL, .shuffle = 1, .drop_last = 1, .prefetch = 2,
		.aug_threads = 1,
	};
	if ((rc = loader_new(&lc, &t.ld, err, errlen)) < 0)
		goto out;
	int per_epoch = loader_batches_per_epoch(t.ld);
	if (per_epoch <= 0) {
		snprintf(err, errlen, "eval %s: %d labels make no batch of %d", pname, n, t.batch);
		rc = -EINVAL;
		goto out;
	}
	t.epochs = cfg->epochs;
	if ((int64_t)t.epochs * per_epoch < EVAL_MIN_TRAIN_STEPS)
		t.epochs = (EVAL_MIN_TRAIN_STEPS + per_epoch - 1) / per_epoch;
	t.total = (int64_t)t.epochs * per_epoch;

	optim_config_default(&t.oc_head, OPT_ADAMW);
	t.oc_head.lr = cfg->lr;
	t.oc_head.weight_decay = cfg->weight_decay;
	t.oc_head.schedule = SCHED_COSINE;
	t.oc_head.warmup_steps = t.total / 20;
	t.oc_head.min_lr = 0.0f;
	t.oc_enc = t.oc_head;
	t.oc_enc.lr = cfg->lr * cfg->encoder_lr_scale;
	if (optim_new(&t.oc_head, t.ps_head, &t.opt_head) < 0 ||
	    optim_new(&t.oc_enc, t.ps_enc, &t.opt_enc) < 0) {
		snprintf(err, errlen, "eval %s: out of memory for the optimizer state", pname);
		rc = -ENOMEM;
		goto out;
	}
	rc = train_guarded(ctx, &t);

out:
	loader_free(t.ld);
	optim_free(t.opt_enc);
	optim_free(t.opt_head);
	mlp_free(t.head);
	encoder_free(t.enc);
	paramset_free(t.ps_head);
	paramset_free(t.ps_enc);
	ctx_free(ctx);
	eng_free(t.ids);
	return rc;
}

/* ---- the two protocols' registry entries (eval.h) --------------------------------------------- */

#define TRAIN_EPOCHS EVAL_KEY_EPOCHS(30, "passes over the labelled subset (at least 300 steps)")
#define TRAIN_BATCH EVAL_KEY_BATCH(64, "minibatch size (64: with 1% labels a batch of 256 would " \
                                       "give two steps per epoch)")
#define TRAIN_WD { "weight_decay", PARAM_NUMBER, .def = 1e-4, .min = 0, .max = 1,                 \
                   .help = "weight decay", PARAM_AT(EvalConfig, weight_decay) }
#define TRAIN_AUGMENT { "augment", PARAM_BOOLEAN, .def = 1,                                       \
                        .help = "light augmentation (small shifts, flips) of the labelled images", \
                        PARAM_AT(EvalConfig, augment) }

static const ParamDef finetune_keys[] = {
	TRAIN_EPOCHS,
	TRAIN_BATCH,
	{ "lr", PARAM_NUMBER, .def = 1e-3, .min = 0, .max = 10, .flags = PARAM_MIN_EXCLUSIVE,
	  .help = "learning rate of the head", PARAM_AT(EvalConfig, lr) },
	{ "encoder_lr_scale", PARAM_NUMBER, .def = 0.1, .min = 0, .max = 1,
	  .flags = PARAM_MIN_EXCLUSIVE, .help = "encoder learning rate = lr * encoder_lr_scale",
	  PARAM_AT(EvalConfig, encoder_lr_scale) },
	TRAIN_WD,
	TRAIN_AUGMENT,
};

const EvalProtocolDef eval_protocol_finetune = {
	.name = "finetune",
	.protocol = EVAL_PROTO_FINETUNE,
	.summary = "encoder + linear head trained on the labels, encoder at a reduced learning rate",
	.needs_labels = 1,
	.trains_encoder = 1,
	.min_steps = EVAL_MIN_TRAIN_STEPS,
	.keys = finetune_keys,
	.n_keys = EVAL_KEY_COUNT(finetune_keys),
	.run = eval_train_run,
};

static const ParamDef supervised_keys[] = {
	TRAIN_EPOCHS,
	TRAIN_BATCH,
	{ "lr", PARAM_NUMBER, .def = 1e-3, .min = 0, .max = 10, .flags = PARAM_MIN_EXCLUSIVE,
	  .help = "learning rate", PARAM_AT(EvalConfig, lr) },
	TRAIN_WD,
	TRAIN_AUGMENT,
};

const EvalProtocolDef eval_protocol_supervised = {
	.name = "supervised",
	.protocol = EVAL_PROTO_SUPERVISED,
	.summary = "the same architecture trained from random initialisation on the same labels: "
	           "the baseline an SSL result is compared against",
	.needs_labels = 1,
	.baseline = "scratch",
	.trains_encoder = 1,
	.min_steps = EVAL_MIN_TRAIN_STEPS,
	.keys = supervised_keys,
	.n_keys = EVAL_KEY_COUNT(supervised_keys),
	.run = eval_train_run,
};
