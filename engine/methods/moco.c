/* moco.c - MoCo v2 (He et al. 2020; Chen et al. 2020): a query encoder and a momentum (EMA) key
 * encoder, each with an MLP head; a queue of K past keys serves as negatives; InfoNCE with
 * temperature T. The key encoder's momentum m rises from `momentum` to 1 on a cosine schedule
 * (or stays constant). With "symmetric" (the default) both views are queries and keys in turn
 * and the loss is the mean of the two directions.
 *
 * Single-process shuffle BN: the key encoder sees the batch in a random order split into
 * key_bn_groups groups, each normalised on its own statistics, so a query and its key never share
 * BatchNorm statistics (otherwise the positive is recognisable by the batch's statistics alone:
 * the "BN cheat" MoCo's shuffling prevents across GPUs).
 *
 * The key network ("target.encoder.*", "target.proj.*") is PARAM_FROZEN and the queue ("queue"
 * (K,D) and "queue_ptr" (1)) are PARAM_BUFFERs, so checkpoints carry them and a resumed run picks
 * up the same negatives. Data, optimizer and schedule belong to the runner.
 */
#include "method.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../ops.h"
#include "ssl_health.h"
#include "two_view.h"

typedef struct MocoConfig {
	float temperature;
	int queue_size;
	float momentum;
	int momentum_cosine;
	int symmetric;
	int key_bn_groups;
	int proj_hidden;
	int proj_dim;
	SslHealthConfig health;
} MocoConfig;
METHOD_CONFIG_FITS(MocoConfig);

static const ParamDef moco_params[] = {
	{ "temperature", PARAM_NUMBER, .def = 0.2, .min = 0, .max = 10, .flags = PARAM_MIN_EXCLUSIVE,
	  .help = "InfoNCE softmax temperature", PARAM_AT(MocoConfig, temperature) },
	{ "queue_size", PARAM_INTEGER, .def = 4096, .min = 1, .max = 1048576,
	  .help = "negative keys kept in the queue (4096 is ~7% of Fashion-MNIST's 60000)",
	  PARAM_AT(MocoConfig, queue_size) },
	{ "momentum", PARAM_NUMBER, .def = 0.99, .min = 0, .max = 1,
	  .help = "key-encoder EMA momentum m at the start (key = m*key + (1-m)*query)",
	  PARAM_AT(MocoConfig, momentum) },
	{ "momentum_cosine", PARAM_BOOLEAN, .def = 1,
	  .help = "raise the momentum from `momentum` to 1 on a cosine schedule (false = constant)",
	  PARAM_AT(MocoConfig, momentum_cosine) },
	{ "symmetric", PARAM_BOOLEAN, .def = 1,
	  .help = "both views serve as queries and keys; the loss is the mean of both directions",
	  PARAM_AT(MocoConfig, symmetric) },
	{ "key_bn_groups", PARAM_INTEGER, .def = 4, .min = 1, .max = 64,
	  .help = "shuffle BN: the key batch is shuffled and normalised in this many groups",
	  PARAM_AT(MocoConfig, key_bn_groups) },
	{ "proj_hidden", PARAM_INTEGER, .def = 512, .min = 1, .max = 8192,
	  .help = "hidden width of the MLP head (fc-ReLU-fc, as MoCo v2)",
	  PARAM_AT(MocoConfig, proj_hidden) },
	{ "proj_dim", PARAM_INTEGER, .def = 128, .min = 1, .max = 4096,
	  .help = "embedding size of queries, keys and the queue", PARAM_AT(MocoConfig, proj_dim) },
	SSL_HEALTH_PARAMS(MocoConfig, health),
};

typedef struct Moco {
	TwoView tv;                  /* query and key (target) encoder + head, monitor (two_view.h) */
	ParamSet *ps;
	Tensor *queue;               /* (K,D) unit rows, buffer */
	Tensor *queue_ptr;           /* (1) next row to overwrite, buffer */
	int K, D;
	float temperature, m_base;
	int cosine, symmetric, groups;
	float m;                     /* last momentum applied (reported) */
	float *keys;                 /* (cap,D) this step's keys, enqueued in after_step */
	int n_keys, cap;
	int *perm, *inv;             /* (cap) shuffle-BN permutation and its inverse */
	Rng rng;                     /* shuffle-BN draws */
} Moco;

static void moco_destroy(void *state)
{
	Moco *s = state;
	if (s) {
		eng_free(s->keys);
		eng_free(s->perm);
		eng_free(s->inv);
	}
	two_view_destroy(s);
}

static int moco_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	const MocoConfig *cfg = env->config;
	uint64_t shuffle_seed = rng_u64(env->rng);
	/* MoCo v2's head: fc - ReLU - fc, no BatchNorm. */
	TwoViewHead head = { .method = "moco", .noun = "heads", .hidden = cfg->proj_hidden,
	                     .hidden_layers = 1, .out = cfg->proj_dim,
	                     .health_every = cfg->health.health_every, .plain = 1, .target = 1 };
	int rc = two_view_create(env, ps, sizeof(Moco), &head, state, err, errlen);
	if (rc < 0)
		return rc;
	Moco *s = *state;
	s->ps = ps;
	s->temperature = cfg->temperature;
	s->m_base = cfg->momentum;
	s->m = s->m_base;
	s->cosine = cfg->momentum_cosine != 0;
	s->symmetric = cfg->symmetric != 0;
	s->groups = cfg->key_bn_groups;
	s->K = cfg->queue_size;
	s->D = cfg->proj_dim;
	rng_seed(&s->rng, shuffle_seed);
	rc = -1;
	s->queue = paramset_add(ps, "queue", 2, (int[]){ s->K, s->D }, PARAM_BUFFER);
	s->queue_ptr = paramset_add(ps, "queue_ptr", 1, (int[]){ 1 }, PARAM_BUFFER);
	if (!s->queue || !s->queue_ptr) {
		snprintf(err, errlen, "moco: cannot allocate the queue of %d x %d", s->K, s->D);
		goto fail;
	}
	/* The queue starts as random unit vectors (as the reference implementation does). */
	for (int i = 0; i < s->K; i++) {
		float *r = s->queue->data + (size_t)i * s->D;
		double nn = 0;
		for (int j = 0; j < s->D; j++) {
			r[j] = rng_normal(env->rng);
			nn += (double)r[j] * r[j];
		}
		for (int j = 0; j < s->D; j++)
			r[j] = (float)(r[j] / sqrt(nn));
	}
	s->cap = 2 * env->batch_size;
	s->keys = eng_malloc((size_t)s->cap * s->D * sizeof(float));
	s->perm = eng_malloc((size_t)s->cap * sizeof(int));
	s->inv = eng_malloc((size_t)s->cap * sizeof(int));
	if (!s->keys || !s->perm || !s->inv) {
		snprintf(err, errlen, "moco: out of memory");
		goto fail;
	}
	return 0;
fail:
	moco_destroy(s);
	*state = NULL;
	return rc;
}

/* Keys of x (N,C,H,W) through the key network with shuffle BN -> (N,D) unit rows, no grad. */
static Tensor *moco_keys(Ctx *ctx, Moco *s, Tensor *x)
{
	int N = x->shape[0];
	int g = s->groups < 1 ? 1 : s->groups;
	if (g > N / 2)
		g = N / 2 > 0 ? N / 2 : 1;
	rng_permutation(&s->rng, s->perm, N);
	for (int i = 0; i < N; i++)
		s->inv[s->perm[i]] = i;
	Tensor *xs = op_gather_rows(ctx, x, s->perm, N);
	Tensor *parts[64];
	if (g > 64)
		g = 64;
	int at = 0;
	for (int i = 0; i < g; i++) {
		int len = N / g + (i < N % g);
		Tensor *chunk = op_slice(ctx, xs, 0, at, len);
		parts[i] = two_view_target_project(ctx, &s->tv, chunk);
		at += len;
	}
	Tensor *k = g > 1 ? op_concat(ctx, parts, g, 0) : parts[0];
	k = op_gather_rows(ctx, k, s->inv, N);                         /* back to batch order */
	return op_l2_normalize(ctx, k, 1e-12f);
}

// q (N,D) raw, k (N,D) unit, queue (K,D) unit -> InfoNCE of normalise(q) against k and the queue
Tensor *moco_contrastive_loss(Ctx *ctx, Tensor *q, Tensor *k, Tensor *queue, float temperature)
{
	return op_infonce(ctx, op_l2_normalize(ctx, q, 1e-12f), k, queue, temperature, NULL);
}

/* views[0], views[1] (B,C,H,W) -> InfoNCE against the queue (scalar).
 * Data-parallel (ctx_distributed), B is this rank's shard of a global batch of B': every rank
 * computes the keys of the whole global batch (its key images gathered), with shuffle BN's groups
 * drawn from it as one process draws them and each group normalised on its own, so every rank
 * enqueues the same B' keys and the queues stay equal; the queries run on the shard (batchnorm
 * synchronised) and are gathered for the loss. */
static Tensor *moco_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                         const MetricSink *sink)
{
	Moco *s = state;
	const int dist = ctx_distributed(ctx), blocks = s->symmetric ? 2 : 1;
	Tensor *pair[2] = { views[0], views[1] };
	Tensor *loss, *q;
	int was = ctx_set_grad_enabled(ctx, 0);
	Tensor *kx = s->symmetric ? op_concat(ctx, pair, 2, 0) : views[1];  /* (2B or B,C,H,W) */
	if (dist)
		kx = op_dist_gather_rows(ctx, kx, blocks);                    /* the global batch's */
	ctx_set_distributed(ctx, 0);   /* shuffle BN: each key group on its own statistics */
	int B = kx->shape[0] / blocks;
	Tensor *k;
	if (s->symmetric) {
		/* Keys of both views, swapped, so row i of q (view 1) meets the key of view 2. */
		Tensor *kk = moco_keys(ctx, s, kx);                             /* (2B,D) */
		Tensor *sw[2] = { op_slice(ctx, kk, 0, B, B), op_slice(ctx, kk, 0, 0, B) };
		k = op_concat(ctx, sw, 2, 0);
	} else {
		k = moco_keys(ctx, s, kx);                                      /* (B,D) */
	}
	ctx_set_distributed(ctx, dist);
	ctx_set_grad_enabled(ctx, was);
	Tensor *x = s->symmetric ? op_concat(ctx, pair, 2, 0) : views[0];
	q = two_view_project(ctx, &s->tv, x);                            /* (2B,D) or (B,D) */
	if (dist)
		q = op_dist_gather_rows(ctx, q, blocks);
	loss = moco_contrastive_loss(ctx, q, k, s->queue, s->temperature);

	/* Stash the keys for after_step (the arena is reset before the next step). */
	int n = k->shape[0] < s->cap ? k->shape[0] : s->cap;
	memcpy(s->keys, k->data, (size_t)n * s->D * sizeof(float));
	s->n_keys = n;

	if (sink) {
		/* the raw queries of both views (the monitor normalises) */
		const float *pos = s->symmetric ? q->data + (size_t)B * s->D : k->data;
		if (ssl_monitor_observe(s->tv.health, q->data, pos, B, sink))
			metric_put(sink, "momentum", s->m);
	}
	(void)batch;
	return loss;
}

/* Momentum update of the key network, then enqueue this step's keys (oldest overwritten). */
static void moco_after_step(void *state, int64_t step, int64_t total_steps)
{
	Moco *s = state;
	s->m = s->cosine ? two_view_target_rate(s->m_base, step, total_steps) : s->m_base;
	two_view_target_update(s->ps, s->m);
	int ptr = (int)s->queue_ptr->data[0];
	if (ptr < 0 || ptr >= s->K)
		ptr = 0;
	for (int i = 0; i < s->n_keys; i++) {
		memcpy(s->queue->data + (size_t)ptr * s->D, s->keys + (size_t)i * s->D,
		       (size_t)s->D * sizeof(float));
		ptr = (ptr + 1) % s->K;
	}
	s->queue_ptr->data[0] = (float)ptr;
	s->n_keys = 0;
}

const PretextMethod method_moco = {
	.name = "moco",
	.family = "contrastive",
	.summary = "MoCo v2: a query encoder and a momentum (EMA) key encoder; InfoNCE of each "
	           "query against its key and a queue of past keys as negatives",
	.default_encoder = ENC_CNN,
	.encoders = ENC_BIT(ENC_CNN) | ENC_BIT(ENC_MLP) | ENC_BIT(ENC_VIT) | ENC_RESNETS,
	.datasets = DATA_IMAGES,
	.views = 2,
	.default_augment = "simclr",
	.example = "moco-fashion-mnist.json",
	.params = moco_params,
	.n_params = (int)(sizeof moco_params / sizeof moco_params[0]),
	.config_size = sizeof(MocoConfig),
	.create = moco_create,
	.loss = moco_loss,
	.data_parallel = 1,
	.after_step = moco_after_step,
	.encoder = two_view_encoder,
	.destroy = moco_destroy,
	.ssl_health = 1,
	.health_offset = offsetof(MocoConfig, health),
};
