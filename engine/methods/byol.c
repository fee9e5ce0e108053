/* byol.c - BYOL (Grill et al. 2020): an online network (encoder, projector, predictor) predicts
 * the projection a target network gives the other view; the target is an exponential moving
 * average of the online encoder and projector, with tau rising from tau_base to 1 on a cosine
 * schedule. The loss is symmetric (view 1 predicts view 2 and the reverse), each direction
 * 2 - 2 cos(p, z'), so it lies in [0, 8]. No negatives: the predictor and the slow target are what
 * keep it from collapsing, and "predictor": false exists to show that (it collapses).
 *
 * The target lives in the ParamSet as "target.encoder.*" / "target.proj.*" with PARAM_FROZEN, so
 * the optimizer skips it and checkpoints carry it. Asymmetric augmentations come from the job's
 * augment / augment2. The optimizer, schedule and data are the runner's business.
 */
#include "method.h"

#include <stdio.h>

#include "../ops.h"
#include "ssl_health.h"
#include "two_view.h"

typedef struct ByolConfig {
	float tau_base;
	int predictor;
	int proj_hidden;
	int proj_dim;
	SslHealthConfig health;
} ByolConfig;
METHOD_CONFIG_FITS(ByolConfig);

static const ParamDef byol_params[] = {
	{ "tau_base", PARAM_NUMBER, .def = 0.99, .min = 0, .max = 1,
	  .help = "target EMA rate at the start; rises to 1 on a cosine schedule (paper: 0.996 for "
	          "long runs, 0.99 for short ones)", PARAM_AT(ByolConfig, tau_base) },
	{ "predictor", PARAM_BOOLEAN, .def = 1,
	  .help = "use the predictor MLP (false makes BYOL collapse: a demonstration of the collapse "
	          "flag)", PARAM_AT(ByolConfig, predictor) },
	{ "proj_hidden", PARAM_INTEGER, .def = 512, .min = 1, .max = 8192,
	  .help = "hidden width of the projector and the predictor (BN + ReLU)",
	  PARAM_AT(ByolConfig, proj_hidden) },
	{ "proj_dim", PARAM_INTEGER, .def = 128, .min = 1, .max = 4096,
	  .help = "output size of the projector and the predictor", PARAM_AT(ByolConfig, proj_dim) },
	SSL_HEALTH_PARAMS(ByolConfig, health),
};

typedef struct Byol {
	TwoView tv;                  /* online and target encoder + projector, monitor (two_view.h) */
	ParamSet *ps;
	Mlp *pred;
	float tau_base;
	int use_predictor;
	float tau;                   /* last tau applied (reported) */
} Byol;

static void byol_destroy(void *state)
{
	Byol *s = state;
	if (s)
		mlp_free(s->pred);
	two_view_destroy(s);
}

static int byol_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	const ByolConfig *cfg = env->config;
	int hid = cfg->proj_hidden, out = cfg->proj_dim;
	TwoViewHead head = { .method = "byol", .noun = "heads", .hidden = hid, .hidden_layers = 1,
	                     .out = out, .health_every = cfg->health.health_every, .target = 1 };
	int rc = two_view_create(env, ps, sizeof(Byol), &head, state, err, errlen);
	if (rc < 0)
		return rc;
	Byol *s = *state;
	s->ps = ps;
	s->tau_base = cfg->tau_base;
	s->use_predictor = cfg->predictor != 0;
	s->tau = s->tau_base;
	int qdims[3] = { out, hid, out };
	if (s->use_predictor && mlp_new(ps, "pred", qdims, 3, 1, env->rng, &s->pred) < 0) {
		snprintf(err, errlen, "byol: cannot build the heads %d-%d-%d",
		         encoder_out_dim(s->tv.encoder), hid, out);
		byol_destroy(s);
		*state = NULL;
		return -1;
	}
	return 0;
}

// p (N,P), zt (N,P) -> 4 - 4 * mean cos: with N = 2B rows, L(1->2) + L(2->1), each 2 - 2 mean cos
Tensor *byol_regression_loss(Ctx *ctx, Tensor *p, Tensor *zt)
{
	Tensor *cos = op_cosine_sim(ctx, p, zt);                      /* (N) */
	return op_add_scalar(ctx, op_scale(ctx, op_mean(ctx, cos, OP_ALL, 0), -4.0f), 4.0f);
}

/* views[0], views[1] (B,C,H,W) -> symmetric BYOL loss (scalar). Data-parallel, B is this rank's
 * shard: predictions and targets are gathered (op_dist_gather_rows), so the mean is over the
 * global batch; the target network's batchnorm sees the global batch too, and every rank applies
 * the same EMA to the same weights. */
static Tensor *byol_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                         const MetricSink *sink)
{
	Byol *s = state;
	int B = views[0]->shape[0];
	Tensor *pair[2] = { views[0], views[1] };
	Tensor *x = op_concat(ctx, pair, 2, 0);                       /* (2B,C,H,W) */
	Tensor *z = two_view_project(ctx, &s->tv, x);                 /* (2B,P) */
	Tensor *p = s->use_predictor ? mlp_forward(ctx, s->pred, z) : z;           /* (2B,P) */

	int was = ctx_set_grad_enabled(ctx, 0);
	Tensor *zt = two_view_target_project(ctx, &s->tv, x);          /* (2B,P) */
	/* Row i of view 1 is predicted against row i of view 2's target and vice versa. */
	Tensor *halves[2] = { op_slice(ctx, zt, 0, B, B), op_slice(ctx, zt, 0, 0, B) };
	Tensor *target = op_concat(ctx, halves, 2, 0);                 /* (2B,P), swapped */
	ctx_set_grad_enabled(ctx, was);

	Tensor *pg = op_dist_gather_rows(ctx, p, 2);                   /* (2B',P) */
	was = ctx_set_grad_enabled(ctx, 0);
	Tensor *tg = op_dist_gather_rows(ctx, target, 2);              /* (2B',P) */
	Tensor *zg = op_dist_gather_rows(ctx, z, 2);                   /* the health metrics' */
	ctx_set_grad_enabled(ctx, was);
	Tensor *loss = byol_regression_loss(ctx, pg, tg);

	if (sink) {
		int P = z->shape[1], Bg = zg->shape[0] / 2;
		if (ssl_monitor_observe(s->tv.health, zg->data, zg->data + (size_t)Bg * P, Bg, sink))
			metric_put(sink, "tau", s->tau);
	}
	(void)batch;
	return loss;
}

static void byol_after_step(void *state, int64_t step, int64_t total_steps)
{
	Byol *s = state;
	s->tau = two_view_target_rate(s->tau_base, step, total_steps);
	two_view_target_update(s->ps, s->tau);
}

const PretextMethod method_byol = {
	.name = "byol",
	.family = "non-contrastive",
	.summary = "BYOL: an online network with projector and predictor regresses the projection "
	           "of the other view by a target network that is an EMA of the online one",
	.default_encoder = ENC_CNN,
	.encoders = ENC_BIT(ENC_CNN) | ENC_BIT(ENC_MLP) | ENC_BIT(ENC_VIT) | ENC_RESNETS,
	.datasets = DATA_IMAGES,
	.views = 2,
	.default_augment = "simclr",
	.example = "byol-fashion-mnist.json",
	.params = byol_params,
	.n_params = (int)(sizeof byol_params / sizeof byol_params[0]),
	.config_size = sizeof(ByolConfig),
	.create = byol_create,
	.loss = byol_loss,
	.after_step = byol_after_step,
	.encoder = two_view_encoder,
	.destroy = byol_destroy,
	.ssl_health = 1,
	.health_offset = offsetof(ByolConfig, health),
	.data_parallel = 1,
};
