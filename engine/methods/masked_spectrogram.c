/* masked_spectrogram.c - masked spectrogram modelling: bands of a clip's log-mel spectrogram are
 * hidden (SpecAugment-style time and frequency masks covering a large share: audio_draw_masks),
 * filled with the clip's mean, and the network predicts the hidden values. The network is the
 * self-predictive methods' encoder -> code -> decoder (decoder.h, as inpainting uses it); the
 * loss is the mean squared error on the masked cells (outside_weight > 0 adds the visible ones).
 * The targets are the stored log-mel values themselves, predicted linearly (no sigmoid).
 *
 * Evaluations use the encoder. The test split's masked-cell error, against filling every masked
 * cell with the clip's mean (the baseline the network must beat), is the pretext metric.
 */
#include "method.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../data/audio_augment.h"
#include "../ops.h"
#include "decoder.h"

#define EVAL_SEED 0x6d736dULL
#define EVAL_BATCH 128

typedef struct MsmConfig {
	int latent_dim;
	DecoderKind decoder;
	int time_masks, time_mask_frames, freq_masks, freq_mask_bands;
	float outside_weight;
} MsmConfig;
METHOD_CONFIG_FITS(MsmConfig);

static const ParamDef msm_params[] = {
	LATENT_DIM_PARAM(MsmConfig, latent_dim, 128),
	DECODER_PARAM(MsmConfig, decoder),
	{ "time_masks", PARAM_INTEGER, .def = 3, .min = 0, .max = 32,
	  .help = "masked time bands per clip", PARAM_AT(MsmConfig, time_masks) },
	{ "time_mask_frames", PARAM_INTEGER, .def = 20, .min = 1, .max = 10000,
	  .help = "widest masked time band in frames", PARAM_AT(MsmConfig, time_mask_frames) },
	{ "freq_masks", PARAM_INTEGER, .def = 2, .min = 0, .max = 32,
	  .help = "masked mel bands per clip", PARAM_AT(MsmConfig, freq_masks) },
	{ "freq_mask_bands", PARAM_INTEGER, .def = 8, .min = 1, .max = 256,
	  .help = "widest masked frequency band in mel bands", PARAM_AT(MsmConfig, freq_mask_bands) },
	{ "outside_weight", PARAM_NUMBER, .def = 0, .min = 0, .max = 1,
	  .help = "loss weight of the visible cells (masked cells weigh 1)",
	  PARAM_AT(MsmConfig, outside_weight) },
};

static int msm_validate(const void *config, char *field, size_t fieldlen, char *msg, size_t msglen)
{
	const MsmConfig *c = config;
	if (c->time_masks == 0 && c->freq_masks == 0) {
		snprintf(field, fieldlen, "time_masks");
		snprintf(msg, msglen, "time_masks and freq_masks are both 0: nothing would be masked");
		return -1;
	}
	return 0;
}

typedef struct Msm {
	CodeNet net;   /* first: codenet_method_encoder / _destroy */
	MsmConfig cfg;
	int h, w;
} Msm;

static int msm_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	if (env->in_c != 1) {
		snprintf(err, errlen, "masked_spectrogram: needs one-channel spectrograms, got %d channels",
		         env->in_c);
		return -1;
	}
	Msm *m = eng_calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, errlen, "masked_spectrogram: out of memory");
		return -1;
	}
	m->cfg = *(const MsmConfig *)env->config;
	m->h = env->in_h;
	m->w = env->in_w;
	int rc = codenet_init(&m->net, ps, env->encoder, 1, m->h, m->w, m->cfg.latent_dim,
	                      m->cfg.decoder, 1, env->rng, "masked_spectrogram", err, errlen);
	if (rc < 0) {
		eng_free(m);
		return rc;
	}
	*state = m;
	return 0;
}

/* For B clips x: mask (B,H,W) drawn from rng, in = x with masked cells at the clip's mean, the
 * mean-fill baseline's squared error over the masked cells added to *base_se; returns the number
 * of masked cells. */
static long mask_batch(const Msm *m, Rng *rng, const float *x, int B, float *mask, float *in,
                       double *base_se)
{
	size_t hw = (size_t)m->h * m->w;
	long cells = 0;
	for (int i = 0; i < B; i++) {
		const float *xi = x + i * hw;
		float *mk = mask + i * hw, *o = in + i * hw;
		cells += audio_draw_masks(rng, m->h, m->w, m->cfg.time_masks, m->cfg.time_mask_frames,
		                          m->cfg.freq_masks, m->cfg.freq_mask_bands, mk);
		double mean = 0;
		for (size_t k = 0; k < hw; k++)
			mean += xi[k];
		float fill = (float)(mean / (double)hw);
		for (size_t k = 0; k < hw; k++) {
			o[k] = mk[k] != 0.0f ? fill : xi[k];
			if (mk[k] != 0.0f && base_se)
				*base_se += (double)(xi[k] - fill) * (xi[k] - fill);
		}
	}
	return cells;
}

/* The weighted MSE sum_k w_k (p_k - x_k)^2 / sum_k w_k on the tape, and the masked cells' squared
 * error in *masked_se. */
static Tensor *msm_forward(Ctx *ctx, Msm *m, Tensor *x, const float *mask, Tensor *in,
                           double *masked_se)
{
	Tensor *root_w = ctx_tensor_like(ctx, x), *target = ctx_tensor_like(ctx, x);
	float out_w = sqrtf(m->cfg.outside_weight);
	double wsum = 0;
	for (size_t k = 0; k < x->size; k++) {
		float r = mask[k] != 0.0f ? 1.0f : out_w;
		root_w->data[k] = r;
		target->data[k] = r * x->data[k];
		wsum += (double)r * r;
	}
	Tensor *pred = codenet_forward(ctx, &m->net, in);           /* (B,1,H,W) */
	Tensor *loss = op_mse(ctx, op_mul(ctx, pred, root_w), target);
	loss = op_scale(ctx, loss, wsum > 0 ? (float)((double)x->size / wsum) : 1.0f);
	*masked_se = 0;
	for (size_t k = 0; k < x->size; k++)
		if (mask[k] != 0.0f)
			*masked_se += (double)(pred->data[k] - x->data[k]) * (pred->data[k] - x->data[k]);
	return loss;
}

static Tensor *msm_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                        const MetricSink *sink)
{
	Msm *m = state;
	Tensor *x = views[0];
	int B = x->shape[0];
	float *mask = ctx_alloc(ctx, x->size * sizeof(float));
	Tensor *in = ctx_tensor_like(ctx, x);
	double base = 0, se;
	long cells = mask_batch(m, ctx_rng(ctx), x->data, B, mask, in->data, &base);
	Tensor *loss = msm_forward(ctx, m, x, mask, in, &se);
	if (cells > 0) {
		metric_put(sink, "masked_mse", se / (double)cells);
		metric_put(sink, "mean_fill_mse", base / (double)cells);
	}
	(void)batch;
	return loss;
}

/* test_masked_mse, test_mean_fill_mse and their ratio on the test split, masks from a fixed seed. */
static int msm_evaluate(void *state, Ctx *ctx, const Dataset *ds, const MetricSink *sink)
{
	Msm *m = state;
	if (!ds || ds->test.n == 0)
		return 0;
	EvalMode em = eval_mode_enter(ctx);
	Rng rng;
	rng_seed(&rng, EVAL_SEED);
	size_t hw = (size_t)m->h * m->w;
	double se_all = 0, base_all = 0;
	long cells_all = 0;
	for (int at = 0; at < ds->test.n; at += EVAL_BATCH) {
		int B = ds->test.n - at < EVAL_BATCH ? ds->test.n - at : EVAL_BATCH;
		ctx_reset(ctx);
		int shape[4] = { B, 1, m->h, m->w };
		Tensor *x = ctx_wrap(ctx, ds->test.x + (size_t)at * hw, 4, shape);
		float *mask = ctx_alloc(ctx, x->size * sizeof(float));
		Tensor *in = ctx_tensor_like(ctx, x);
		double se;
		cells_all += mask_batch(m, &rng, x->data, B, mask, in->data, &base_all);
		msm_forward(ctx, m, x, mask, in, &se);
		se_all += se;
	}
	ctx_reset(ctx);
	eval_mode_leave(ctx, em);
	if (cells_all > 0) {
		metric_put(sink, "test_masked_mse", se_all / (double)cells_all);
		metric_put(sink, "test_mean_fill_mse", base_all / (double)cells_all);
		if (base_all > 0)
			metric_put(sink, "test_masked_ratio", se_all / base_all);
	}
	return 0;
}

const PretextMethod method_masked_spectrogram = {
	.name = "masked_spectrogram",
	.family = "self-predictive",
	.summary = "masked spectrogram modelling: predict the log-mel values under random time and "
	           "frequency bands from the rest of the clip",
	.default_encoder = ENC_CNN,
	.encoders = ENC_BIT(ENC_MLP) | ENC_BIT(ENC_CNN) | ENC_BIT(ENC_VIT) | ENC_RESNETS,
	.datasets = DATA_AUDIO,
	.views = 1,
	.default_augment = "none",
	.example = "masked-spectrogram-words.json",
	.params = msm_params,
	.n_params = (int)(sizeof msm_params / sizeof msm_params[0]),
	.config_size = sizeof(MsmConfig),
	.validate = msm_validate,
	.create = msm_create,
	.loss = msm_loss,
	.encoder = codenet_method_encoder,
	.evaluate = msm_evaluate,
	.destroy = codenet_method_destroy,
};
