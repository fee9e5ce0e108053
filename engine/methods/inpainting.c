/* inpainting.c - context encoders (Pathak et al. 2016): rectangular holes are cut out of each image
 * (filled with the training pixels' per-channel mean, or 0), the encoder sees the rest, and a
 * decoder predicts the whole image; the loss is the MSE on the hole pixels, plus outside_weight
 * times the MSE elsewhere (0 by default: the holes only, as in the paper's reconstruction loss).
 *
 * Holes are `holes` rectangles of hole_size times the image's height and width at random
 * positions (the paper's "random block" masks; they may overlap), drawn afresh for every image of
 * every step and shared by the channels. The network is the autoencoder's (decoder.h CodeNet):
 * encoder -> latent_dim code -> decoder, like the paper's channel-wise fully connected bottleneck.
 *
 * Pretext metrics on the test split use holes from a fixed seed: the MSE of the predicted hole
 * pixels, against the trivial prediction that fills every hole with the training mean (the ratio
 * below 1 beats it).
 *
 * It deliberately does not train an adversarial loss (the paper's joint variant) and works on any
 * channel count (gray or colour).
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
#define EVAL_HOLE_SEED 0x1a9a1fULL
#define GRID_N 16
#define MAX_C 3

/* Same order as the "fill" parameter's choices. */
typedef enum InpaintFill { FILL_MEAN, FILL_ZERO } InpaintFill;

typedef struct InpaintConfig {
	int latent_dim;
	DecoderKind decoder;
	int holes;
	float hole_size;
	InpaintFill fill;
	float outside_weight;
} InpaintConfig;
METHOD_CONFIG_FITS(InpaintConfig);

static const ParamDef inpaint_params[] = {
	LATENT_DIM_PARAM(InpaintConfig, latent_dim, 128),
	DECODER_PARAM(InpaintConfig, decoder),
	{ "holes", PARAM_INTEGER, .def = 1, .min = 1, .max = 16,
	  .help = "rectangles cut out of each image, at random positions (they may overlap)",
	  PARAM_AT(InpaintConfig, holes) },
	{ "hole_size", PARAM_NUMBER, .def = 0.5, .min = 0, .max = 1,
	  .flags = PARAM_MIN_EXCLUSIVE | PARAM_MAX_EXCLUSIVE,
	  .help = "height and width of a hole as a share of the image's (0.5: a quarter of the area)",
	  PARAM_AT(InpaintConfig, hole_size) },
	{ "fill", PARAM_ENUM, .def_str = "mean", .choices = "mean|zero",
	  .help = "what the encoder sees in a hole: the per-channel mean of the training pixels, or 0",
	  PARAM_AT(InpaintConfig, fill) },
	{ "outside_weight", PARAM_NUMBER, .def = 0, .min = 0, .max = 1,
	  .help = "loss weight of the pixels outside the holes, relative to those inside "
	          "(0 = the holes only)", PARAM_AT(InpaintConfig, outside_weight) },
};

typedef struct Inpaint {
	CodeNet net;   /* (B,C,H,W) -> (B,C,H,W) logits; first (codenet_method_*) */
	int c, h, w;
	int holes, hole_h, hole_w;
	float outside_weight;
	float fill[MAX_C];    /* per channel: what a hole holds */
	float mean[MAX_C];    /* per channel: the training mean (the baseline's fill) */
} Inpaint;

/* ---- holes ------------------------------------------------------------------------------------ */

/* mask (n,H,W): 1 inside a hole, 0 elsewhere; fresh positions per image. */
static void draw_holes(const Inpaint *m, int n, Rng *rng, float *mask)
{
	size_t hw = (size_t)m->h * m->w;
	memset(mask, 0, (size_t)n * hw * sizeof(float));
	for (int i = 0; i < n; i++)
		for (int k = 0; k < m->holes; k++) {
			int y0 = (int)rng_below(rng, (uint32_t)(m->h - m->hole_h + 1));
			int x0 = (int)rng_below(rng, (uint32_t)(m->w - m->hole_w + 1));
			for (int y = y0; y < y0 + m->hole_h; y++)
				for (int x = x0; x < x0 + m->hole_w; x++)
					mask[(size_t)i * hw + (size_t)y * m->w + x] = 1.0f;
		}
}

/* x (n,C,H,W) with the holes of mask (n,H,W) set to value[c] -> out (n,C,H,W). */
static void fill_holes(const Inpaint *m, const float *x, const float *mask, const float *value,
                       int n, float *out)
{
	size_t hw = (size_t)m->h * m->w;
	for (int i = 0; i < n; i++)
		for (int c = 0; c < m->c; c++) {
			const float *src = x + ((size_t)i * m->c + c) * hw, *mk = mask + (size_t)i * hw;
			float *dst = out + ((size_t)i * m->c + c) * hw;
			for (size_t k = 0; k < hw; k++)
				dst[k] = mk[k] != 0.0f ? value[c] : src[k];
		}
}

/* Squared error of a against b over the hole pixels of mask (every channel); *count the pixels. */
static double hole_sq_err(const Inpaint *m, const float *a, const float *b, const float *mask,
                          int n, double *count)
{
	size_t hw = (size_t)m->h * m->w;
	double s = 0;
	*count = 0;
	for (int i = 0; i < n; i++)
		for (int c = 0; c < m->c; c++) {
			size_t off = ((size_t)i * m->c + c) * hw;
			const float *mk = mask + (size_t)i * hw;
			for (size_t k = 0; k < hw; k++)
				if (mk[k] != 0.0f) {
					double e = (double)a[off + k] - (double)b[off + k];
					s += e * e;
					*count += 1;
				}
		}
	return s;
}

/* ---- network ---------------------------------------------------------------------------------- */

static int inpaint_create(const MethodEnv *env, ParamSet *ps, void **state, char *err,
                          size_t errlen)
{
	const InpaintConfig *cfg = env->config;
	if (env->in_c < 1 || env->in_c > MAX_C) {
		snprintf(err, errlen, "inpainting: needs images of 1 to %d channels, got %d", MAX_C,
		         env->in_c);
		return -1;
	}
	Inpaint *m = eng_calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, errlen, "inpainting: out of memory");
		return -1;
	}
	m->c = env->in_c;
	m->h = env->in_h;
	m->w = env->in_w;
	m->holes = cfg->holes > 0 ? cfg->holes : 1;
	m->hole_h = (int)lround(cfg->hole_size * m->h);
	m->hole_w = (int)lround(cfg->hole_size * m->w);
	m->hole_h = m->hole_h < 1 ? 1 : m->hole_h > m->h ? m->h : m->hole_h;
	m->hole_w = m->hole_w < 1 ? 1 : m->hole_w > m->w ? m->w : m->hole_w;
	m->outside_weight = cfg->outside_weight;
	float std[MAX_C];
	if (env->ds && env->ds->train.n > 0)
		aug_channel_stats(env->ds->train.x, (size_t)env->ds->train.n, m->c, m->h, m->w, m->mean,
		                  std);
	else
		for (int c = 0; c < m->c; c++)
			m->mean[c] = 0.5f;
	for (int c = 0; c < m->c; c++)
		m->fill[c] = cfg->fill == FILL_ZERO ? 0.0f : m->mean[c];
	int rc = codenet_init(&m->net, ps, env->encoder, m->c, m->h, m->w, cfg->latent_dim,
	                      cfg->decoder, m->c, env->rng, "inpainting", err, errlen);
	if (rc < 0) {
		codenet_method_destroy(m);
		return rc;
	}
	*state = m;
	return 0;
}

/* views[0] (B,C,H,W), the complete images. The loss is
 *   sum_i w_i (p_i - x_i)^2 / sum_i w_i,  w = 1 in a hole, outside_weight elsewhere,
 * computed as mse(p * sqrt(w), x * sqrt(w)) * n / sum(w). */
static Tensor *inpaint_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                            const MetricSink *sink)
{
	Inpaint *m = state;
	Tensor *x = views[0];
	int B = x->shape[0];
	size_t hw = (size_t)m->h * m->w;
	float *mask = ctx_alloc(ctx, (size_t)B * hw * sizeof(float));
	draw_holes(m, B, ctx_rng(ctx), mask);
	Tensor *in = ctx_tensor_like(ctx, x);
	fill_holes(m, x->data, mask, m->fill, B, in->data);
	Tensor *root_w = ctx_tensor_like(ctx, x), *target = ctx_tensor_like(ctx, x);
	float out_w = sqrtf(m->outside_weight);
	double wsum = 0;
	for (int i = 0; i < B; i++)
		for (int c = 0; c < m->c; c++) {
			size_t off = ((size_t)i * m->c + c) * hw;
			const float *mk = mask + (size_t)i * hw;
			for (size_t k = 0; k < hw; k++) {
				float r = mk[k] != 0.0f ? 1.0f : out_w;
				root_w->data[off + k] = r;
				target->data[off + k] = r * x->data[off + k];
				wsum += (double)r * r;
			}
		}
	Tensor *pred = op_sigmoid(ctx, codenet_forward(ctx, &m->net, in));   // (B,C,H,W)
	Tensor *loss = op_mse(ctx, op_mul(ctx, pred, root_w), target);
	loss = op_scale(ctx, loss, wsum > 0 ? (float)((double)x->size / wsum) : 1.0f);
	if (sink) {
		double cnt, se = hole_sq_err(m, pred->data, x->data, mask, B, &cnt);
		metric_put(sink, "loss_hole_mse", cnt > 0 ? se / cnt : 0);
	}
	(void)batch;
	return loss;
}

/* ---- evaluation and artifacts ----------------------------------------------------------------- */

/* Test split with holes from a fixed seed: test_hole_mse (the predicted hole pixels),
 * test_mean_fill_mse (every hole filled with the training mean: the baseline) and
 * test_hole_ratio = test_hole_mse / test_mean_fill_mse. */
static int inpaint_evaluate(void *state, Ctx *ctx, const Dataset *ds, const MetricSink *sink)
{
	Inpaint *m = state;
	int n = ds->test.n, nb0 = n < EVAL_BATCH ? n : EVAL_BATCH;
	size_t hw = (size_t)m->h * m->w, per = (size_t)m->c * hw;
	if (n <= 0)
		return 0;
	float *mask = eng_malloc((size_t)nb0 * hw * sizeof(float));
	float *in = eng_malloc((size_t)nb0 * per * sizeof(float));
	float *out = eng_malloc((size_t)nb0 * per * sizeof(float));
	int rc = -1;
	if (!mask || !in || !out)
		goto done;
	Rng rng;
	rng_seed(&rng, EVAL_HOLE_SEED);
	EvalMode em = eval_mode_enter(ctx);
	double se = 0, se_mean = 0, cnt = 0, c;
	for (int s = 0; s < n; s += EVAL_BATCH) {
		int nb = n - s < EVAL_BATCH ? n - s : EVAL_BATCH;
		const float *x = ds->test.x + (size_t)s * per;
		draw_holes(m, nb, &rng, mask);
		fill_holes(m, x, mask, m->fill, nb, in);
		codenet_predict(ctx, &m->net, in, nb, out);
		se += hole_sq_err(m, out, x, mask, nb, &c);
		cnt += c;
		fill_holes(m, x, mask, m->mean, nb, in);
		se_mean += hole_sq_err(m, in, x, mask, nb, &c);
	}
	eval_mode_leave(ctx, em);
	if (cnt > 0) {
		metric_put(sink, "test_hole_mse", se / cnt);
		metric_put(sink, "test_mean_fill_mse", se_mean / cnt);
		metric_put(sink, "test_hole_ratio", se_mean > 0 ? se / se_mean : 0);
	}
	rc = 0;
done:
	eng_free(mask);
	eng_free(in);
	eng_free(out);
	return rc;
}

/* inpaintings.png: the first 16 test images in four rows: the original, the encoder's input
 * (holes filled), the inpainted image (the context as given, the holes predicted) and the raw
 * prediction of every pixel. */
static int inpaint_artifacts(void *state, Ctx *ctx, const Dataset *ds, const char *dir,
                             void (*add)(void *user, const char *name), void *user, char *err,
                             size_t errlen)
{
	Inpaint *m = state;
	int n = ds->test.n < GRID_N ? ds->test.n : GRID_N;
	size_t hw = (size_t)m->h * m->w, per = (size_t)m->c * hw;
	if (n <= 0)
		return 0;
	float *mask = eng_malloc((size_t)n * hw * sizeof(float));
	float *buf = eng_malloc(3 * (size_t)n * per * sizeof(float));
	int rc = -1;
	if (!mask || !buf) {
		snprintf(err, errlen, "inpainting: out of memory writing artifacts");
		goto done;
	}
	float *in = buf, *raw = buf + (size_t)n * per, *composite = buf + 2 * (size_t)n * per;
	Rng rng;
	rng_seed(&rng, EVAL_HOLE_SEED);
	draw_holes(m, n, &rng, mask);
	fill_holes(m, ds->test.x, mask, m->fill, n, in);
	EvalMode em = eval_mode_enter(ctx);
	codenet_predict(ctx, &m->net, in, n, raw);
	eval_mode_leave(ctx, em);
	for (size_t i = 0; i < (size_t)n * per; i++) {
		size_t img = i / per, k = i % hw;
		composite[i] = mask[img * hw + k] != 0.0f ? raw[i] : ds->test.x[i];
	}
	const float *rows[4] = { ds->test.x, in, composite, raw };
	rc = artifact_png_rows(dir, "inpaintings.png", rows, 4, n, m->c, m->h, m->w, add, user, err,
	                       errlen);
done:
	eng_free(mask);
	eng_free(buf);
	return rc;
}

const PretextMethod method_inpainting = {
	.name = "inpainting",
	.family = "self-predictive",
	.summary = "inpainting (context encoder): random rectangular holes are filled with the mean; "
	           "through a latent_dim code a decoder predicts the missing pixels (MSE on the holes)",
	.default_encoder = ENC_CNN,
	.encoders = ENC_BIT(ENC_MLP) | ENC_BIT(ENC_CNN) | ENC_BIT(ENC_VIT) | ENC_RESNETS,
	.datasets = DATA_IMAGES,
	.views = 1,
	.default_augment = "none",
	.example = "inpainting-fashion-mnist.json",
	.params = inpaint_params,
	.n_params = (int)(sizeof inpaint_params / sizeof inpaint_params[0]),
	.config_size = sizeof(InpaintConfig),
	.create = inpaint_create,
	.loss = inpaint_loss,
	.encoder = codenet_method_encoder,
	.artifacts = inpaint_artifacts,
	.evaluate = inpaint_evaluate,
	.destroy = codenet_method_destroy,
};
