/* simclr.c - SimCLR (Chen et al. 2020): two augmented views of each image, encoder + MLP
 * projection head, NT-Xent loss with temperature. Evaluations use the encoder output, never the
 * projection. The optimizer, schedule and data are the runner's business, not this file's. */
#include "method.h"

#include "../ops.h"
#include "ssl_health.h"
#include "two_view.h"

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
	TwoView tv;           /* encoder, projection head, collapse monitor (two_view.h) */
	float temperature;
} Simclr;

static int simclr_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	const SimclrConfig *cfg = env->config;
	TwoViewHead head = { .method = "simclr", .noun = "projection head",
	                     .hidden = cfg->proj_hidden, .hidden_layers = 1, .out = cfg->proj_dim,
	                     .health_every = cfg->health.health_every };
	int rc = two_view_create(env, ps, sizeof(Simclr), &head, state, err, errlen);
	if (rc == 0)
		((Simclr *)*state)->temperature = cfg->temperature;
	return rc;
}

/* views[0], views[1] (B,C,H,W) -> NT-Xent over the 2B projections. Data-parallel, B is this
 * rank's shard and the loss is over the 2B' projections of the global batch (every rank's). */
static Tensor *simclr_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                           const MetricSink *sink)
{
	Simclr *s = state;
	Tensor *z = two_view_embed(ctx, &s->tv, views);   /* (2B',P): the global batch's negatives */
	Tensor *loss = op_nt_xent(ctx, z, s->temperature);
	two_view_observe(&s->tv, z, 1, sink);
	(void)batch;
	return loss;
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
	.encoder = two_view_encoder,
	.destroy = two_view_destroy,
	.ssl_health = 1,
	.health_offset = offsetof(SimclrConfig, health),
	.data_parallel = 1,
};
