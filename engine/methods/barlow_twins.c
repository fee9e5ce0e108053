/* barlow_twins.c - Barlow Twins (Zbontar et al. 2021): the embeddings of two views are each
 * standardised along the batch (BatchNorm without affine), their cross-correlation matrix
 * C = z1n^T z2n / N (D,D) is driven to the identity: sum_i (1 - C_ii)^2 + lambda sum_{i!=j} C_ij^2.
 * No negatives, no momentum network: redundancy reduction between the embedding dimensions is
 * what keeps it from collapsing. The projector is a wide 3-layer MLP (BN + ReLU between layers).
 *
 * The loss is composed from gradient-checked ops (ops.h) and exported as barlow_twins_loss (see
 * ssl_health.h) so tests/contrastive can check its gradient as a whole. Data, optimizer and
 * schedule belong to the runner.
 */
#include "method.h"

#include "../ops.h"
#include "ssl_health.h"
#include "two_view.h"

typedef struct BarlowConfig {
	float lambda;
	int proj_hidden;
	int proj_dim;
	SslHealthConfig health;
} BarlowConfig;
METHOD_CONFIG_FITS(BarlowConfig);

static const ParamDef barlow_params[] = {
	{ "lambda", PARAM_NUMBER, .def = 0.005, .min = 0, .max = 10,
	  .help = "weight of the off-diagonal (redundancy) terms", PARAM_AT(BarlowConfig, lambda) },
	{ "proj_hidden", PARAM_INTEGER, .def = 1024, .min = 1, .max = 8192,
	  .help = "width of the projector's two hidden layers (BN + ReLU)",
	  PARAM_AT(BarlowConfig, proj_hidden) },
	{ "proj_dim", PARAM_INTEGER, .def = 1024, .min = 2, .max = 8192,
	  .help = "embedding size D: the cross-correlation matrix is D x D",
	  PARAM_AT(BarlowConfig, proj_dim) },
	SSL_HEALTH_PARAMS(BarlowConfig, health),
};

typedef struct Barlow {
	TwoView tv;           /* encoder, projector, collapse monitor (two_view.h) */
	float lambda;
} Barlow;

// z (N,D) -> (z - mean) / sqrt(var + eps) column-wise, biased variance: BatchNorm1d(affine=False)
// in training mode, composed from ops so it works whatever the context's training flag says.
Tensor *ssl_standardize(Ctx *ctx, Tensor *z, float eps)
{
	Tensor *zc = op_sub(ctx, z, op_mean(ctx, z, 0, 1));             /* (N,D) */
	Tensor *var = op_mean(ctx, op_square(ctx, zc), 0, 1);           /* (1,D) */
	return op_div(ctx, zc, op_sqrt(ctx, op_add_scalar(ctx, var, eps)));
}

// z1, z2 (N,D) -> scalar sum_i (1 - C_ii)^2 + lambda * sum_{i!=j} C_ij^2, C = z1n^T z2n / N
Tensor *barlow_twins_loss(Ctx *ctx, Tensor *z1, Tensor *z2, float lambda, double parts[2])
{
	int N = z1->shape[0], D = z1->shape[1];
	Tensor *n1 = ssl_standardize(ctx, z1, 1e-5f), *n2 = ssl_standardize(ctx, z2, 1e-5f);
	Tensor *c = op_scale(ctx, op_matmul(ctx, n1, n2, 1, 0), 1.0f / (float)N);  /* (D,D) */
	/* (C - I)^2 weighted 1 on the diagonal, lambda off it; I and the weights are constants. */
	Tensor *eye = ctx_zeros(ctx, 2, (int[]){ D, D });
	Tensor *w = ctx_tensor(ctx, 2, (int[]){ D, D });
	for (size_t i = 0; i < w->size; i++)
		w->data[i] = lambda;
	for (int i = 0; i < D; i++) {
		eye->data[(size_t)i * D + i] = 1.0f;
		w->data[(size_t)i * D + i] = 1.0f;
	}
	Tensor *loss = op_sum(ctx, op_mul(ctx, op_square(ctx, op_sub(ctx, c, eye)), w), OP_ALL, 0);
	if (parts) {
		double on = 0, off = 0;
		for (int i = 0; i < D; i++)
			for (int j = 0; j < D; j++) {
				double v = c->data[(size_t)i * D + j];
				if (i == j)
					on += (1 - v) * (1 - v);
				else
					off += v * v;
			}
		parts[0] = on;
		parts[1] = off;
	}
	return loss;
}

static int barlow_create(const MethodEnv *env, ParamSet *ps, void **state, char *err,
                         size_t errlen)
{
	const BarlowConfig *cfg = env->config;
	TwoViewHead head = { .method = "barlow_twins", .noun = "projector",
	                     .hidden = cfg->proj_hidden, .hidden_layers = 2, .out = cfg->proj_dim,
	                     .health_every = cfg->health.health_every };
	int rc = two_view_create(env, ps, sizeof(Barlow), &head, state, err, errlen);
	if (rc == 0)
		((Barlow *)*state)->lambda = cfg->lambda;
	return rc;
}

/* views[0], views[1] (B,C,H,W) -> Barlow Twins loss (scalar). Data-parallel, B is this rank's
 * shard and the cross-correlation is over the global batch's B' embeddings (every rank's). */
static Tensor *barlow_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                           const MetricSink *sink)
{
	Barlow *s = state;
	Tensor *z = two_view_embed(ctx, &s->tv, views);                  /* (2B',D) */
	int B = z->shape[0] / 2;
	Tensor *z1 = op_slice(ctx, z, 0, 0, B), *z2 = op_slice(ctx, z, 0, B, B);
	double parts[2];
	Tensor *loss = barlow_twins_loss(ctx, z1, z2, s->lambda, sink ? parts : NULL);
	if (sink) {
		metric_put(sink, "loss_on_diag", parts[0]);
		metric_put(sink, "loss_off_diag", parts[1] * s->lambda);
	}
	two_view_observe(&s->tv, z, 0, sink);
	(void)batch;
	return loss;
}

const PretextMethod method_barlow_twins = {
	.name = "barlow_twins",
	.family = "non-contrastive",
	.summary = "Barlow Twins: the cross-correlation of the two views' batch-standardised "
	           "embeddings is driven to the identity (redundancy reduction)",
	.default_encoder = ENC_CNN,
	.encoders = ENC_BIT(ENC_CNN) | ENC_BIT(ENC_MLP) | ENC_BIT(ENC_VIT) | ENC_RESNETS,
	.datasets = DATA_IMAGES,
	.views = 2,
	.default_augment = "simclr",
	.example = "barlow-twins-fashion-mnist.json",
	.params = barlow_params,
	.n_params = (int)(sizeof barlow_params / sizeof barlow_params[0]),
	.config_size = sizeof(BarlowConfig),
	.create = barlow_create,
	.loss = barlow_loss,
	.encoder = two_view_encoder,
	.destroy = two_view_destroy,
	.ssl_health = 1,
	.health_offset = offsetof(BarlowConfig, health),
	.data_parallel = 1,
};
