/* simclr.c - SimCLR (Chen et al. 2020): two augmented views of each image, encoder + MLP
 * projection head, NT-Xent loss with temperature. Evaluations use the encoder output, never the
 * projection. The optimizer, schedule and data are the runner's business, not this file's. */
#include "method.h"

#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../ops.h"
#include "ssl_health.h"

typedef struct SimclrConfig {
	float temperature;
	int proj_hidden;
	int proj_dim;
	SslHealthConfig health;
} SimclrConfig;
METHOD_CONFIG_FITS(SimclrConfig);

static const ParamDef simclr_params[] = {
	{ "temperature", PARAM_NUMBER, .def = 0.5, .min = 0, .max = 10, .flags = PARAM_MIN_EXCLUSIVE,
	  .help = "NT-Xent softmax temperature (lower = harder negatives)",
	  PARAM_AT(SimclrConfig, temperature) },
	{ "proj_hidden", PARAM_INTEGER, .def = 512, .min = 1, .max = 8192,
	  .help = "hidden width of the projection head (BN + ReLU)", PARAM_AT(SimclrConfig, proj_hidden) },
	{ "proj_dim", PARAM_INTEGER, .def = 128, .min = 1, .max = 4096,
	  .help = "output size of the projection head, where the loss is computed",
	  PARAM_AT(SimclrConfig, proj_dim) },
	SSL_HEALTH_PARAMS(SimclrConfig, health),
};

typedef struct Simclr {
	Encoder *encoder;
	Mlp *proj;
	float temperature;
	SslMonitor *health;   /* collapse metrics (ssl_health.h) */
} Simclr;

static int simclr_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	Simclr *s = eng_calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "simclr: out of memory");
		return -1;
	}
	const SimclrConfig *cfg = env->config;
	s->temperature = cfg->temperature;
	int rc = encoder_new(env->encoder, ps, "encoder", env->in_c, env->in_h, env->in_w, env->rng,
	                     &s->encoder, err, errlen);
	if (rc < 0)
		goto fail;
	int dims[3] = { encoder_out_dim(s->encoder), cfg->proj_hidden, cfg->proj_dim };
	if (mlp_new(ps, "proj", dims, 3, 1, env->rng, &s->proj) < 0) {
		snprintf(err, errlen, "simclr: cannot build the projection head %d-%d-%d", dims[0], dims[1],
		         dims[2]);
		rc = -1;
		goto fail;
	}
	if (ssl_monitor_new(2 * env->batch_size, dims[2], cfg->health.health_every, &s->health) < 0) {
		snprintf(err, errlen, "simclr: out of memory for the health monitor");
		rc = -1;
		goto fail;
	}
	*state = s;
	return 0;
fail:
	encoder_free(s->encoder);
	mlp_free(s->proj);
	eng_free(s);
	return rc;
}

/* views[0], views[1] (B,C,H,W) -> NT-Xent over the 2B projections. Data-parallel, B is this
 * rank's shard and the loss is over the 2B' projections of the global batch (every rank's). */
static Tensor *simclr_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                           const MetricSink *sink)
{
	Simclr *s = state;
	/* One forward over both views at once: BatchNorm sees the 2B images together, as in the
	 * reference implementation, and the sgemms are twice as large. */
	Tensor *pair[2] = { views[0], views[1] };
	Tensor *x = op_concat(ctx, pair, 2, 0);          /* (2B,C,H,W) */
	Tensor *h = encoder_forward(ctx, s->encoder, x);  /* (2B,F) */
	Tensor *zl = mlp_forward(ctx, s->proj, h);        /* (2B,P) */
	Tensor *z = op_dist_gather_rows(ctx, zl, 2);      /* (2B',P): the global batch's negatives */
	Tensor *loss = op_nt_xent(ctx, z, s->temperature);

	if (sink) {
		/* Mean cosine similarity of positive pairs: a cheap health signal (1 = trivial). */
		int B = z->shape[0] / 2, P = z->shape[1];
		metric_put(sink, "pos_cosine", ssl_pair_cosine(z->data, z->data + (size_t)B * P, B, P));
		ssl_monitor_observe(s->health, z->data, z->data + (size_t)B * P, B, sink);
	}
	(void)batch;
	return loss;
}

static Encoder *simclr_encoder(void *state)
{
	return ((Simclr *)state)->encoder;
}

static void simclr_destroy(void *state)
{
	Simclr *s = state;
	if (!s)
		return;
	encoder_free(s->encoder);
	mlp_free(s->proj);
	ssl_monitor_free(s->health);
	eng_free(s);
}

const PretextMethod method_simclr = {
	.name = "simclr",
	.family = "contrastive",
	.summary = "SimCLR: two augmented views of each image, NT-Xent loss pulls the pair together "
	           "and pushes the other 2B-2 samples of the batch away",
	.default_encoder = ENC_CNN,
	.datasets = DATA_IMAGES,
	.views = 2,
	.default_augment = "simclr",
	.example = "simclr-fashion-mnist.json",
	.params = simclr_params,
	.n_params = (int)(sizeof simclr_params / sizeof simclr_params[0]),
	.config_size = sizeof(SimclrConfig),
	.create = simclr_create,
	.loss = simclr_loss,
	.encoder = simclr_encoder,
	.destroy = simclr_destroy,
	.ssl_health = 1,
	.health_offset = offsetof(SimclrConfig, health),
	.data_parallel = 1,
};
