/* colorization.c - colorization as a pretext task (Zhang et al. 2016; Larsson et al. 2016): the
 * encoder sees only the grayscale version of a colour image and a decoder predicts its colours.
 *
 * Input: the luma Y = 0.299 R + 0.587 G + 0.114 B replicated into all three channels, so the
 * encoder keeps the 3-channel shape of the dataset and the evaluations probe it on the real colour
 * images unchanged. Output: the two chroma channels of full-range YCbCr (BT.601, as JPEG), each in
 * [0,1] with 0.5 = no colour, as sigmoid outputs regressed with an MSE (as in Iizuka et al. 2016;
 * Zhang et al. classify quantised ab values instead, which gives more saturated colours but needs a
 * class-rebalanced 313-way head). The network is the autoencoder's (decoder.h CodeNet): encoder ->
 * latent_dim code -> decoder, so the encoder has to summarise what decides the colours.
 *
 * Pretext metrics on the test split compare the colourised image (the true Y with the predicted
 * chroma, back to RGB) with the trivial prediction, the grayscale image itself: MSE and PSNR of
 * both, and their ratio (below 1 beats gray).
 *
 * It deliberately does not work on 1-channel data (the spec layer refuses it: descriptor
 * needs_color) and does not convert to Lab (YCbCr is linear, so the metric is plain RGB MSE).
 */
#include "method.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../data/augment.h"
#include "../ops.h"
#include "decoder.h"

#define EVAL_BATCH 256
#define GRID_N 16

typedef struct ColorConfig {
	int latent_dim;
	DecoderKind decoder;
} ColorConfig;
METHOD_CONFIG_FITS(ColorConfig);

static const ParamDef color_params[] = {
	LATENT_DIM_PARAM(ColorConfig, latent_dim, 128),
	DECODER_PARAM(ColorConfig, decoder),
};

typedef struct Color {
	CodeNet net;   /* (B,3,H,W) gray -> (B,2,H,W) chroma logits; first (codenet_method_*) */
	int h, w;
} Color;

/* ---- colour space ----------------------------------------------------------------------------- */

/* rgb (n,3,H,W) -> gray (n,3,H,W), the luma in every channel (augment.h's grayscale). */
static void to_gray(const float *rgb, float *gray, int n, size_t hw, int h, int w)
{
	memcpy(gray, rgb, (size_t)n * 3 * hw * sizeof(float));
	for (int i = 0; i < n; i++)
		aug_grayscale(gray + (size_t)i * 3 * hw, h, w);
}

/* rgb (n,3,H,W) -> chroma (n,2,H,W): Cb, Cr of full-range BT.601 YCbCr, in [0,1]. */
static void to_chroma(const float *rgb, float *cc, int n, size_t hw)
{
	for (int i = 0; i < n; i++) {
		const float *r = rgb + (size_t)i * 3 * hw, *g = r + hw, *b = g + hw;
		float *cb = cc + (size_t)i * 2 * hw, *cr = cb + hw;
		for (size_t k = 0; k < hw; k++) {
			cb[k] = 0.5f - 0.168736f * r[k] - 0.331264f * g[k] + 0.5f * b[k];
			cr[k] = 0.5f + 0.5f * r[k] - 0.418688f * g[k] - 0.081312f * b[k];
		}
	}
}

static float clamp01(float v)
{
	return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

/* gray (n,3,H,W) (luma in channel 0) and chroma (n,2,H,W) -> rgb (n,3,H,W), clamped to [0,1]. */
static void to_rgb(const float *gray, const float *cc, float *rgb, int n, size_t hw)
{
	for (int i = 0; i < n; i++) {
		const float *y = gray + (size_t)i * 3 * hw;
		const float *cb = cc + (size_t)i * 2 * hw, *cr = cb + hw;
		float *r = rgb + (size_t)i * 3 * hw, *g = r + hw, *b = g + hw;
		for (size_t k = 0; k < hw; k++) {
			float u = cb[k] - 0.5f, v = cr[k] - 0.5f;
			r[k] = clamp01(y[k] + 1.402f * v);
			g[k] = clamp01(y[k] - 0.344136f * u - 0.714136f * v);
			b[k] = clamp01(y[k] + 1.772f * u);
		}
	}
}

/* ---- network ---------------------------------------------------------------------------------- */

static int color_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	if (env->in_c != 3) {
		snprintf(err, errlen, "colorization: needs 3-channel (RGB) images, got %d channel%s",
		         env->in_c, env->in_c == 1 ? "" : "s");
		return -1;
	}
	Color *m = eng_calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, errlen, "colorization: out of memory");
		return -1;
	}
	const ColorConfig *cfg = env->config;
	m->h = env->in_h;
	m->w = env->in_w;
	int rc = codenet_init(&m->net, ps, env->encoder, 3, m->h, m->w, cfg->latent_dim, cfg->decoder,
	                      2, env->rng, "colorization", err, errlen);
	if (rc < 0) {
		codenet_method_destroy(m);
		return rc;
	}
	*state = m;
	return 0;
}

/* views[0] (B,3,H,W) in colour; the encoder gets its gray version. */
static Tensor *color_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                          const MetricSink *sink)
{
	Color *m = state;
	Tensor *x = views[0];
	int B = x->shape[0];
	size_t hw = (size_t)m->h * m->w;
	Tensor *gray = ctx_tensor_like(ctx, x);
	to_gray(x->data, gray->data, B, hw, m->h, m->w);
	Tensor *target = ctx_tensor(ctx, 4, (int[]){ B, 2, m->h, m->w });
	to_chroma(x->data, target->data, B, hw);
	Tensor *pred = op_sigmoid(ctx, codenet_forward(ctx, &m->net, gray));   // (B,2,H,W)
	Tensor *loss = op_mse(ctx, pred, target);
	metric_put(sink, "loss_chroma_mse", loss->data[0]);
	(void)batch;
	return loss;
}

/* ---- evaluation and artifacts ----------------------------------------------------------------- */

/* Buffers for colourising up to n images of hw pixels. */
typedef struct Work {
	float *gray, *pred_cc, *true_cc, *rgb;
} Work;

static int work_alloc(Work *w, int n, size_t hw)
{
	size_t img = (size_t)n * hw * sizeof(float);
	w->gray = eng_malloc(3 * img);
	w->rgb = eng_malloc(3 * img);
	w->pred_cc = eng_malloc(2 * img);
	w->true_cc = eng_malloc(2 * img);
	return w->gray && w->rgb && w->pred_cc && w->true_cc ? 0 : -1;
}

static void work_free(Work *w)
{
	eng_free(w->gray);
	eng_free(w->rgb);
	eng_free(w->pred_cc);
	eng_free(w->true_cc);
}

/* n colour images x (n,3,H,W) -> w->gray, w->pred_cc, and the colourised w->rgb. */
static void colorize(Ctx *ctx, Color *m, const float *x, int n, Work *w)
{
	size_t hw = (size_t)m->h * m->w;
	to_gray(x, w->gray, n, hw, m->h, m->w);
	codenet_predict(ctx, &m->net, w->gray, n, w->pred_cc);
	to_rgb(w->gray, w->pred_cc, w->rgb, n, hw);
}

static double psnr(double mse)
{
	return mse > 0 ? 10.0 * log10(1.0 / mse) : 99.0;
}

/* Test split: test_chroma_mse (the training loss), test_color_mse (colourised vs true RGB),
 * test_gray_mse (the grayscale image vs true RGB: the baseline), their PSNRs in dB and
 * test_color_ratio = test_color_mse / test_gray_mse. */
static int color_evaluate(void *state, Ctx *ctx, const Dataset *ds, const MetricSink *sink)
{
	Color *m = state;
	int n = ds->test.n;
	size_t hw = (size_t)m->h * m->w, per = 3 * hw;
	if (n <= 0)
		return 0;
	Work w;
	if (work_alloc(&w, n < EVAL_BATCH ? n : EVAL_BATCH, hw) < 0) {
		work_free(&w);
		return -1;
	}
	EvalMode em = eval_mode_enter(ctx);
	double se_cc = 0, se_color = 0, se_gray = 0;
	for (int s = 0; s < n; s += EVAL_BATCH) {
		int nb = n - s < EVAL_BATCH ? n - s : EVAL_BATCH;
		const float *x = ds->test.x + (size_t)s * per;
		colorize(ctx, m, x, nb, &w);
		to_chroma(x, w.true_cc, nb, hw);
		se_cc += sq_err_sum(w.pred_cc, w.true_cc, (size_t)nb * 2 * hw);
		se_color += sq_err_sum(w.rgb, x, (size_t)nb * per);
		se_gray += sq_err_sum(w.gray, x, (size_t)nb * per);
	}
	eval_mode_leave(ctx, em);
	double total = (double)n * (double)per;
	double color = se_color / total, gray = se_gray / total;
	metric_put(sink, "test_chroma_mse", se_cc / ((double)n * 2 * (double)hw));
	metric_put(sink, "test_color_mse", color);
	metric_put(sink, "test_gray_mse", gray);
	metric_put(sink, "test_color_psnr_db", psnr(color));
	metric_put(sink, "test_gray_psnr_db", psnr(gray));
	metric_put(sink, "test_color_ratio", gray > 0 ? color / gray : 0);
	work_free(&w);
	return 0;
}

/* colorizations.png: the first 16 test images in three rows: the gray input, the colourised
 * prediction and the true colours. */
static int color_artifacts(void *state, Ctx *ctx, const Dataset *ds, const char *dir,
                           void (*add)(void *user, const char *name), void *user, char *err,
                           size_t errlen)
{
	Color *m = state;
	int n = ds->test.n < GRID_N ? ds->test.n : GRID_N;
	if (n <= 0)
		return 0;
	Work w;
	if (work_alloc(&w, n, (size_t)m->h * m->w) < 0) {
		work_free(&w);
		snprintf(err, errlen, "colorization: out of memory writing artifacts");
		return -1;
	}
	EvalMode em = eval_mode_enter(ctx);
	colorize(ctx, m, ds->test.x, n, &w);
	eval_mode_leave(ctx, em);
	const float *rows[3] = { w.gray, w.rgb, ds->test.x };
	int rc = artifact_png_rows(dir, "colorizations.png", rows, 3, n, 3, m->h, m->w, add, user,
	                           err, errlen);
	work_free(&w);
	return rc < 0 ? rc : 0;
}

const PretextMethod method_colorization = {
	.name = "colorization",
	.family = "self-predictive",
	.summary = "colorization (RGB images only): the encoder sees the grayscale image (luma in "
	           "all 3 channels); through a latent_dim code a decoder predicts the two chroma "
	           "channels (YCbCr), MSE",
	.default_encoder = ENC_CNN,
	.encoders = ENC_BIT(ENC_MLP) | ENC_BIT(ENC_CNN) | ENC_BIT(ENC_VIT) | ENC_RESNETS,
	.datasets = DATA_IMAGES,
	.needs_color = 1,
	.views = 1,
	.default_augment = "none",
	.example = "colorization-openclipart.json",
	.params = color_params,
	.n_params = (int)(sizeof color_params / sizeof color_params[0]),
	.config_size = sizeof(ColorConfig),
	.create = color_create,
	.loss = color_loss,
	.encoder = codenet_method_encoder,
	.artifacts = color_artifacts,
	.evaluate = color_evaluate,
	.destroy = codenet_method_destroy,
};
