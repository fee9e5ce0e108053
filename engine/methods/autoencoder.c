/* autoencoder.c - two self-predictive methods that share one network shape:
 *   autoencoder            encoder -> bottleneck code (latent_dim) -> decoder, trained to
 *                          reproduce its input (MSE on sigmoid outputs, or BCE on the logits);
 *   denoising_autoencoder  the same network fed a corrupted input (gaussian noise, masking noise
 *                          or salt-and-pepper, at noise_level) and trained to output the clean one.
 * The code is the encoder's output when model.out_dim equals latent_dim; otherwise a linear layer
 * "bottleneck" maps the encoder features to the code. Either way evaluations probe the encoder
 * ("encoder.*"). MLP and convolutional variants come from the encoder kind (decoder.h).
 *
 * It deliberately does not own data, optimizer or schedule (the runner does) and does not sample
 * new images: an autoencoder has no prior to sample from (see vae.c for that).
 */
#include "method.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../layers.h"
#include "../ops.h"
#include "decoder.h"

/* Same order as the "loss" and "noise" parameters' choices below. */
typedef enum AeLoss { AE_LOSS_MSE, AE_LOSS_BCE } AeLoss;
typedef enum AeNoise { NOISE_GAUSSIAN, NOISE_MASKING, NOISE_SALT_PEPPER } AeNoise;

/* Both methods' config; the plain autoencoder's table leaves noise at its zero value. */
typedef struct AeConfig {
	int latent_dim;
	AeLoss loss;
	DecoderKind decoder;
	AeNoise noise;
	float noise_level;
} AeConfig;
METHOD_CONFIG_FITS(AeConfig);

#define AE_PARAMS                                                                                \
	LATENT_DIM_PARAM(AeConfig, latent_dim, 32),                                                   \
	{ "loss", PARAM_ENUM, .def_str = "mse", .choices = "mse|bce",                                 \
	  .help = "reconstruction loss: mse of sigmoid outputs, or binary cross-entropy",             \
	  PARAM_AT(AeConfig, loss) },                                                                 \
	DECODER_PARAM(AeConfig, decoder)

static const ParamDef ae_params[] = { AE_PARAMS };

static const ParamDef dae_params[] = {
	AE_PARAMS,
	{ "noise", PARAM_ENUM, .def_str = "gaussian", .choices = "gaussian|masking|salt_pepper",
	  .help = "corruption: additive gaussian (clamped to [0,1]), masking (pixels set to 0) or "
	          "salt-and-pepper (pixels set to 0 or 1)", PARAM_AT(AeConfig, noise) },
	{ "noise_level", PARAM_NUMBER, .def = 0.3, .min = 0, .max = 1, .flags = PARAM_MIN_EXCLUSIVE,
	  .help = "gaussian: standard deviation; masking / salt_pepper: share of pixels hit",
	  PARAM_AT(AeConfig, noise_level) },
};

#define EVAL_BATCH 256
#define EVAL_NOISE_SEED 0x5eed0dae
#define GRID_N 16

typedef struct Ae {
	CodeNet net;        /* first: codenet_method_encoder / _destroy */
	const char *name;   /* "autoencoder" or "denoising_autoencoder" (messages) */
	int bce;            /* reconstruction loss: 0 = MSE of sigmoid(logits), 1 = BCE on logits */
	int denoising;
	AeNoise noise;
	float noise_level;  /* gaussian: std; masking / salt-and-pepper: share of pixels */
	int c, h, w;
} Ae;

/* ---- corruption ------------------------------------------------------------------------------- */

/* out = corrupted copy of x (n floats in [0,1]); the result stays in [0,1]. */
static void corrupt(const Ae *a, const float *x, float *out, size_t n, Rng *rng)
{
	float lv = a->noise_level;
	switch (a->noise) {
	case NOISE_GAUSSIAN:
		for (size_t i = 0; i < n; i++) {
			float v = x[i] + lv * rng_normal(rng);
			out[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
		}
		break;
	case NOISE_MASKING:
		for (size_t i = 0; i < n; i++)
			out[i] = rng_uniform(rng) < lv ? 0.0f : x[i];
		break;
	default: /* NOISE_SALT_PEPPER */
		for (size_t i = 0; i < n; i++) {
			if (rng_uniform(rng) < lv)
				out[i] = rng_uniform(rng) < 0.5f ? 0.0f : 1.0f;
			else
				out[i] = x[i];
		}
		break;
	}
}

/* ---- network ---------------------------------------------------------------------------------- */

static int ae_create_common(const MethodEnv *env, ParamSet *ps, Ae *a, char *err, size_t errlen)
{
	a->c = env->in_c;
	a->h = env->in_h;
	a->w = env->in_w;
	const AeConfig *cfg = env->config;
	a->bce = cfg->loss == AE_LOSS_BCE;
	return codenet_init(&a->net, ps, env->encoder, a->c, a->h, a->w, cfg->latent_dim, cfg->decoder,
	                    a->c, env->rng, a->name, err, errlen);
}

static int ae_create_as(const MethodEnv *env, ParamSet *ps, void **state, int denoising,
                        char *err, size_t errlen)
{
	Ae *a = eng_calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "autoencoder: out of memory");
		return -1;
	}
	a->name = denoising ? "denoising_autoencoder" : "autoencoder";
	a->denoising = denoising;
	if (denoising) {
		const AeConfig *cfg = env->config;
		a->noise = cfg->noise;
		a->noise_level = cfg->noise_level;
		if (a->noise < NOISE_GAUSSIAN || a->noise > NOISE_SALT_PEPPER) {
			snprintf(err, errlen, "%s: unknown noise kind %d", a->name, a->noise);
			codenet_method_destroy(a);
			return -1;
		}
	}
	int rc = ae_create_common(env, ps, a, err, errlen);
	if (rc < 0) {
		codenet_method_destroy(a);
		return rc;
	}
	*state = a;
	return 0;
}

static int ae_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	return ae_create_as(env, ps, state, 0, err, errlen);
}

static int dae_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	return ae_create_as(env, ps, state, 1, err, errlen);
}

// x (B,C,H,W) -> logits (B,C,H,W)
static Tensor *ae_forward(Ctx *ctx, Ae *a, Tensor *x)
{
	return codenet_forward(ctx, &a->net, x);
}

/* views[0] (B,C,H,W), the clean target; the denoising variant corrupts a copy for the input. */
static Tensor *ae_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                       const MetricSink *sink)
{
	Ae *a = state;
	Tensor *x = views[0], *in = x;
	if (a->denoising) {
		in = ctx_tensor_like(ctx, x);
		corrupt(a, x->data, in->data, x->size, ctx_rng(ctx));
	}
	Tensor *logits = ae_forward(ctx, a, in);
	Tensor *loss;
	if (a->bce) {
		loss = op_bce_logits(ctx, logits, x);
		if (sink) {
			/* The MSE of the outputs too, so both losses are comparable on the dashboard. */
			double s = 0;
			for (size_t i = 0; i < x->size; i++) {
				double e = 1.0 / (1.0 + exp(-(double)logits->data[i])) - x->data[i];
				s += e * e;
			}
			metric_put(sink, "loss_recon_bce", loss->data[0]);
			metric_put(sink, "loss_recon_mse", s / (double)x->size);
		}
	} else {
		loss = op_mse(ctx, op_sigmoid(ctx, logits), x);
		metric_put(sink, "loss_recon_mse", loss->data[0]);
	}
	if (a->denoising && sink)
		metric_put(sink, "noisy_input_mse", sq_err_sum(in->data, x->data, x->size) / (double)x->size);
	(void)batch;
	return loss;
}

/* ---- evaluation and artifacts ----------------------------------------------------------------- */

/* Reconstruct n images (n,C,H,W) from `in` into out (pixels in [0,1]), in batches. */
static void reconstruct(Ctx *ctx, Ae *a, const float *in, int n, float *out)
{
	codenet_predict(ctx, &a->net, in, n, out);
}

/* Test-split metrics: test_recon_mse (clean in, clean out), and for the denoising variant
 * test_noisy_mse = MSE(noisy input, clean), test_denoise_mse = MSE(output on noisy, clean) and
 * their ratio. The test noise is drawn from a fixed seed, so every run sees the same noisy set. */
static int ae_evaluate(void *state, Ctx *ctx, const Dataset *ds, const MetricSink *sink)
{
	Ae *a = state;
	int n = ds->test.n;
	size_t per = ds->sample_floats;
	if (n <= 0)
		return 0;
	float *noisy = NULL, *out = eng_malloc((size_t)EVAL_BATCH * per * sizeof(float));
	if (a->denoising)
		noisy = eng_malloc((size_t)EVAL_BATCH * per * sizeof(float));
	if (!out || (a->denoising && !noisy)) {
		eng_free(out);
		eng_free(noisy);
		return -1;
	}
	EvalMode m = eval_mode_enter(ctx);
	Rng rng;
	rng_seed(&rng, EVAL_NOISE_SEED);
	double se = 0, se_noisy = 0, se_den = 0;
	for (int s = 0; s < n; s += EVAL_BATCH) {
		int nb = n - s < EVAL_BATCH ? n - s : EVAL_BATCH;
		const float *clean = ds->test.x + (size_t)s * per;
		size_t cnt = (size_t)nb * per;
		reconstruct(ctx, a, clean, nb, out);
		se += sq_err_sum(out, clean, cnt);
		if (a->denoising) {
			corrupt(a, clean, noisy, cnt, &rng);
			se_noisy += sq_err_sum(noisy, clean, cnt);
			reconstruct(ctx, a, noisy, nb, out);
			se_den += sq_err_sum(out, clean, cnt);
		}
	}
	eval_mode_leave(ctx, m);
	double total = (double)n * (double)per;
	metric_put(sink, "test_recon_mse", se / total);
	if (a->denoising) {
		metric_put(sink, "test_noisy_mse", se_noisy / total);
		metric_put(sink, "test_denoise_mse", se_den / total);
		metric_put(sink, "test_denoise_ratio", se_noisy > 0 ? se_den / se_noisy : 0);
	}
	eng_free(out);
	eng_free(noisy);
	return 0;
}

/* reconstructions.png: the first 16 test images (row 1), [their noisy versions (row 2)], and the
 * network's outputs (last row). */
static int ae_artifacts(void *state, Ctx *ctx, const Dataset *ds, const char *dir,
                        void (*add)(void *user, const char *name), void *user, char *err,
                        size_t errlen)
{
	Ae *a = state;
	int n = ds->test.n < GRID_N ? ds->test.n : GRID_N;
	size_t per = ds->sample_floats;
	if (n <= 0)
		return 0;
	float *noisy = eng_malloc((size_t)n * per * sizeof(float));
	float *out = eng_malloc((size_t)n * per * sizeof(float));
	int rc = -1;
	if (!noisy || !out) {
		snprintf(err, errlen, "%s: out of memory writing artifacts", a->name);
		goto done;
	}
	EvalMode m = eval_mode_enter(ctx);
	const float *in = ds->test.x;
	if (a->denoising) {
		Rng rng;
		rng_seed(&rng, EVAL_NOISE_SEED);
		corrupt(a, ds->test.x, noisy, (size_t)n * per, &rng);
		in = noisy;
	}
	reconstruct(ctx, a, in, n, out);
	eval_mode_leave(ctx, m);
	const float *rows[3] = { ds->test.x, noisy, out };
	int n_rows = 3;
	if (!a->denoising) {
		rows[1] = out;
		n_rows = 2;
	}
	rc = artifact_png_rows(dir, "reconstructions.png", rows, n_rows, n, a->c, a->h, a->w, add,
	                       user, err, errlen);
done:
	eng_free(noisy);
	eng_free(out);
	return rc;
}

const PretextMethod method_autoencoder = {
	.name = "autoencoder",
	.family = "self-predictive",
	.summary = "autoencoder: encoder -> latent_dim bottleneck -> decoder (MLP or transposed "
	           "convolutions, following the encoder), trained to reproduce its input",
	.default_encoder = ENC_MLP,
	.encoders = ENC_BIT(ENC_MLP) | ENC_BIT(ENC_CNN) | ENC_BIT(ENC_VIT) | ENC_RESNETS,
	.datasets = DATA_IMAGES,
	.views = 1,
	.default_augment = "none",
	.example = "autoencoder-fashion-mnist.json",
	.params = ae_params,
	.n_params = (int)(sizeof ae_params / sizeof ae_params[0]),
	.config_size = sizeof(AeConfig),
	.create = ae_create,
	.loss = ae_loss,
	.encoder = codenet_method_encoder,
	.artifacts = ae_artifacts,
	.evaluate = ae_evaluate,
	.destroy = codenet_method_destroy,
};

const PretextMethod method_denoising_autoencoder = {
	.name = "denoising_autoencoder",
	.family = "self-predictive",
	.summary = "denoising autoencoder: the autoencoder fed a corrupted input (gaussian, masking "
	           "or salt-and-pepper noise) and trained to output the clean image",
	.default_encoder = ENC_MLP,
	.encoders = ENC_BIT(ENC_MLP) | ENC_BIT(ENC_CNN) | ENC_BIT(ENC_VIT) | ENC_RESNETS,
	.datasets = DATA_IMAGES,
	.views = 1,
	.default_augment = "none",
	.example = "denoising-autoencoder-fashion-mnist.json",
	.params = dae_params,
	.n_params = (int)(sizeof dae_params / sizeof dae_params[0]),
	.config_size = sizeof(AeConfig),
	.create = dae_create,
	.loss = ae_loss,
	.encoder = codenet_method_encoder,
	.artifacts = ae_artifacts,
	.evaluate = ae_evaluate,
	.destroy = codenet_method_destroy,
};

