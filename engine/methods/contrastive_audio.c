/* contrastive_audio.c - contrastive learning of audio (the COLA / wav2vec family): two augmented
 * views of each clip's log-mel spectrogram (audio_augment.h: different crops in time, gain, noise,
 * time and frequency masks) are a positive pair, every other clip of the batch a negative; encoder
 * + MLP projection head, the NT-Xent loss of SimCLR (op_nt_xent) over the 2B projections.
 *
 * It makes its two views itself from the loader's one (the spectrograms as they are under the
 * default "augment": "none"), with the context's RNG, because the image augmentations of the
 * "augment" key are not audio's; the audio augmentation settings are this method's params. Evaluations use the encoder output.
 */
#include "method.h"

#include <stdio.h>

#include "../data/audio_augment.h"
#include "../ops.h"
#include "ssl_health.h"
#include "two_view.h"

typedef struct CaConfig {
	float temperature;
	int proj_hidden, proj_dim;
	AudioAugConfig aug;
	SslHealthConfig health;
} CaConfig;
METHOD_CONFIG_FITS(CaConfig);

static const ParamDef ca_params[] = {
	{ "temperature", PARAM_NUMBER, .def = 0.2, .min = 0, .max = 10, .flags = PARAM_MIN_EXCLUSIVE,
	  .help = "NT-Xent softmax temperature", PARAM_AT(CaConfig, temperature) },
	{ "proj_hidden", PARAM_INTEGER, .def = 512, .min = 1, .max = 8192,
	  .help = "hidden width of the projection head (BN + ReLU)", PARAM_AT(CaConfig, proj_hidden) },
	{ "proj_dim", PARAM_INTEGER, .def = 128, .min = 1, .max = 4096,
	  .help = "output size of the projection head", PARAM_AT(CaConfig, proj_dim) },
	AUDIO_AUG_PARAMS(CaConfig, aug),
	SSL_HEALTH_PARAMS(CaConfig, health),
};

static int ca_validate(const void *config, char *field, size_t fieldlen, char *msg, size_t msglen)
{
	const CaConfig *c = config;
	if (c->aug.snr_min > c->aug.snr_max) {
		snprintf(field, fieldlen, "snr_min");
		snprintf(msg, msglen, "snr_min %g is above snr_max %g", c->aug.snr_min, c->aug.snr_max);
		return -1;
	}
	return 0;
}

typedef struct Ca {
	TwoView tv;           /* encoder, projection head, collapse monitor (two_view.h) */
	float temperature;
	AudioAugConfig aug;
} Ca;

static int ca_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	const CaConfig *cfg = env->config;
	TwoViewHead head = { .method = "contrastive_audio", .noun = "projection head",
	                     .hidden = cfg->proj_hidden, .hidden_layers = 1, .out = cfg->proj_dim,
	                     .health_every = cfg->health.health_every };
	int rc = two_view_create(env, ps, sizeof(Ca), &head, state, err, errlen);
	if (rc == 0) {
		Ca *s = *state;
		s->temperature = cfg->temperature;
		s->aug = cfg->aug;
	}
	return rc;
}

/* views[0] (B,1,M,F) spectrograms -> two augmented views -> NT-Xent over 2B projections. */
static Tensor *ca_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                       const MetricSink *sink)
{
	Ca *s = state;
	Tensor *x = views[0];
	int B = x->shape[0], M = x->shape[2], F = x->shape[3];
	int shape[4] = { 2 * B, x->shape[1], M, F };
	Tensor *pair = ctx_tensor(ctx, 4, shape);     /* view 1 of every clip, then view 2 */
	size_t n = (size_t)x->shape[1] * M * F;
	Rng *rng = ctx_rng(ctx);
	for (int v = 0; v < 2; v++)
		for (int i = 0; i < B; i++)
			for (int c = 0; c < x->shape[1]; c++)
				audio_augment(&s->aug, rng, x->data + (size_t)i * n + (size_t)c * M * F,
				              pair->data + ((size_t)v * B + i) * n + (size_t)c * M * F, M, F);
	Tensor *z = two_view_project(ctx, &s->tv, pair);      /* (2B,P) */
	Tensor *loss = op_nt_xent(ctx, z, s->temperature);
	two_view_observe(&s->tv, z, 1, sink);
	(void)batch;
	return loss;
}

const PretextMethod method_contrastive_audio = {
	.name = "contrastive_audio",
	.family = "contrastive",
	.summary = "COLA/wav2vec-style: two augmented crops of each clip's log-mel spectrogram are "
	           "positives, the rest of the batch negatives (NT-Xent)",
	.default_encoder = ENC_CNN,
	.datasets = DATA_AUDIO,
	.views = 1,
	.default_augment = "none",
	.example = "contrastive-audio-words.json",
	.params = ca_params,
	.n_params = (int)(sizeof ca_params / sizeof ca_params[0]),
	.config_size = sizeof(CaConfig),
	.validate = ca_validate,
	.create = ca_create,
	.loss = ca_loss,
	.encoder = two_view_encoder,
	.destroy = two_view_destroy,
	.ssl_health = 1,
	.health_offset = offsetof(CaConfig, health),
};
