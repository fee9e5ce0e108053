/* vicreg.c - VICReg (Bardes, Ponce & LeCun 2022): variance-invariance-covariance regularisation
 * of the two views' embeddings z1, z2 (N,D) from a wide expander:
 *   invariance  mean squared distance between z1 and z2;
 *   variance    per branch, mean over dimensions of relu(1 - sqrt(var_j + 1e-4)) (a hinge that
 *               keeps every dimension's std at 1 or more), averaged over the two branches;
 *   covariance  per branch, the squared off-diagonal entries of the covariance matrix summed and
 *               divided by D, summed over the two branches;
 * loss = sim_weight * invariance + var_weight * variance + cov_weight * covariance (25/25/1).
 * No negatives and no momentum network; the variance term is the explicit guard against collapse.
 *
 * The loss is composed from gradient-checked ops (ops.h) and exported as vicreg_loss (see
 * ssl_health.h) so tests/contrastive can check its gradient as a whole.
 */
#include "method.h"

#include "../ops.h"
#include "ssl_health.h"
#include "two_view.h"

typedef struct VicregConfig {
	float sim_weight;
	float var_weight;
	float cov_weight;
	int proj_hidden;
	int proj_dim;
	SslHealthConfig health;
} VicregConfig;
METHOD_CONFIG_FITS(VicregConfig);

static const ParamDef vicreg_params[] = {
	{ "sim_weight", PARAM_NUMBER, .def = 25, .min = 0, .max = 1000,
	  .help = "weight of the invariance term (lambda)", PARAM_AT(VicregConfig, sim_weight) },
	{ "var_weight", PARAM_NUMBER, .def = 25, .min = 0, .max = 1000,
	  .help = "weight of the variance term (mu)", PARAM_AT(VicregConfig, var_weight) },
	{ "cov_weight", PARAM_NUMBER, .def = 1, .min = 0, .max = 1000,
	  .help = "weight of the covariance term (nu)", PARAM_AT(VicregConfig, cov_weight) },
	{ "proj_hidden", PARAM_INTEGER, .def = 512, .min = 1, .max = 8192,
	  .help = "width of the expander's two hidden layers (BN + ReLU)",
	  PARAM_AT(VicregConfig, proj_hidden) },
	{ "proj_dim", PARAM_INTEGER, .def = 512, .min = 2, .max = 8192,
	  .help = "embedding size D where the three terms are computed",
	  PARAM_AT(VicregConfig, proj_dim) },
	SSL_HEALTH_PARAMS(VicregConfig, health),
};

typedef struct Vicreg {
	TwoView tv;           /* encoder, expander, collapse monitor (two_view.h) */
	float sim_w, var_w, cov_w;
} Vicreg;

// z (N,D) -> variance hinge (scalar) and off-diagonal covariance penalty (scalar)
static void vic_branch(Ctx *ctx, Tensor *z, Tensor *offmask, Tensor **var_term,
                       Tensor **cov_term)
{
	int N = z->shape[0], D = z->shape[1];
	Tensor *zc = op_sub(ctx, z, op_mean(ctx, z, 0, 1));                           /* (N,D) */
	Tensor *var = op_scale(ctx, op_sum(ctx, op_square(ctx, zc), 0, 0), 1.0f / (float)(N - 1));
	Tensor *std = op_sqrt(ctx, op_add_scalar(ctx, var, 1e-4f));                  /* (D) */
	*var_term = op_mean(ctx, op_relu(ctx, op_add_scalar(ctx, op_scale(ctx, std, -1.0f), 1.0f)),
	                    OP_ALL, 0);
	Tensor *cov = op_scale(ctx, op_matmul(ctx, zc, zc, 1, 0), 1.0f / (float)(N - 1)); /* (D,D) */
	Tensor *off = op_mul(ctx, op_square(ctx, cov), offmask);
	*cov_term = op_scale(ctx, op_sum(ctx, off, OP_ALL, 0), 1.0f / (float)D);
}

// z1, z2 (N,D) -> scalar VICReg loss; parts (may be NULL): invariance, variance, covariance
Tensor *vicreg_loss(Ctx *ctx, Tensor *z1, Tensor *z2, float sim_w, float var_w, float cov_w,
                    double parts[3])
{
	int D = z1->shape[1];
	Tensor *mask = ctx_tensor(ctx, 2, (int[]){ D, D });
	for (size_t i = 0; i < mask->size; i++)
		mask->data[i] = 1.0f;
	for (int i = 0; i < D; i++)
		mask->data[(size_t)i * D + i] = 0.0f;
	Tensor *inv = op_mse(ctx, z1, z2);
	Tensor *v1, *c1, *v2, *c2;
	vic_branch(ctx, z1, mask, &v1, &c1);
	vic_branch(ctx, z2, mask, &v2, &c2);
	Tensor *var = op_scale(ctx, op_add(ctx, v1, v2), 0.5f);
	Tensor *cov = op_add(ctx, c1, c2);
	if (parts) {
		parts[0] = inv->data[0];
		parts[1] = var->data[0];
		parts[2] = cov->data[0];
	}
	Tensor *loss = op_add(ctx, op_add(ctx, op_scale(ctx, inv, sim_w), op_scale(ctx, var, var_w)),
	                      op_scale(ctx, cov, cov_w));
	return loss;
}

static int vicreg_create(const MethodEnv *env, ParamSet *ps, void **state, char *err,
                         size_t errlen)
{
	const VicregConfig *cfg = env->config;
	TwoViewHead head = { .method = "vicreg", .noun = "expander", .hidden = cfg->proj_hidden,
	                     .hidden_layers = 2, .out = cfg->proj_dim,
	                     .health_every = cfg->health.health_every };
	int rc = two_view_create(env, ps, sizeof(Vicreg), &head, state, err, errlen);
	if (rc == 0) {
		Vicreg *s = *state;
		s->sim_w = cfg->sim_weight;
		s->var_w = cfg->var_weight;
		s->cov_w = cfg->cov_weight;
	}
	return rc;
}

/* views[0], views[1] (B,C,H,W) -> VICReg loss (scalar). Data-parallel, B is this rank's shard
 * and the variance and covariance terms are over the global batch's B' embeddings. */
static Tensor *vicreg_step_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                                const MetricSink *sink)
{
	Vicreg *s = state;
	Tensor *z = two_view_embed(ctx, &s->tv, views);                  /* (2B',D) */
	int B = z->shape[0] / 2;
	Tensor *z1 = op_slice(ctx, z, 0, 0, B), *z2 = op_slice(ctx, z, 0, B, B);
	double parts[3];
	Tensor *loss = vicreg_loss(ctx, z1, z2, s->sim_w, s->var_w, s->cov_w, sink ? parts : NULL);
	if (sink) {
		metric_put(sink, "loss_invariance", parts[0]);
		metric_put(sink, "loss_variance", parts[1]);
		metric_put(sink, "loss_covariance", parts[2]);
	}
	two_view_observe(&s->tv, z, 0, sink);
	(void)batch;
	return loss;
}

const PretextMethod method_vicreg = {
	.name = "vicreg",
	.family = "non-contrastive",
	.summary = "VICReg: invariance (MSE between views), variance (a hinge keeping each "
	           "dimension's std >= 1) and covariance (decorrelated dimensions) terms",
	.default_encoder = ENC_CNN,
	.encoders = ENC_BIT(ENC_CNN) | ENC_BIT(ENC_MLP) | ENC_BIT(ENC_VIT) | ENC_RESNETS,
	.datasets = DATA_IMAGES,
	.views = 2,
	.default_augment = "simclr",
	.example = "vicreg-fashion-mnist.json",
	.params = vicreg_params,
	.n_params = (int)(sizeof vicreg_params / sizeof vicreg_params[0]),
	.config_size = sizeof(VicregConfig),
	.create = vicreg_create,
	.loss = vicreg_step_loss,
	.encoder = two_view_encoder,
	.destroy = two_view_destroy,
	.ssl_health = 1,
	.health_offset = offsetof(VicregConfig, health),
	.data_parallel = 1,
};
