/* mae.c - masked autoencoder (He et al. 2022) on image patches: the ViT encoder sees only a random
 * (1 - mask_ratio) share of each image's patches; a light Transformer decoder gets the encoded
 * visible tokens back in place, a learned mask token at every masked position, its own positional
 * embeddings, and predicts the pixels of every patch. The loss is the MSE on the masked patches
 * only, against the raw pixels or (norm_pix_loss) each patch normalised by its own mean and
 * standard deviation.
 *
 * Names: encoder.* (the ViT, reused by the evaluations on all patches), decoder.embed (D -> Dd),
 * decoder.mask_token (1,1,Dd), decoder.pos_embed (1,N,Dd), decoder.blocks.<i>, decoder.norm,
 * decoder.pred (Dd -> C*p*p). A patch's pixels are ordered (c, y, x) inside the patch; patches are
 * row-major over the grid, as in the ViT's patch embedding. The CLS token, when the encoder has
 * one, is not passed to the decoder.
 *
 * It deliberately does not use sin-cos positional embeddings (learned ones, like the encoder's)
 * and does not drop the masked patches before the patch-embedding conv (the conv is cheap; only
 * the Transformer blocks, where the time goes, see the visible tokens alone).
 */
#include "method.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../layers.h"
#include "../ops.h"
#include "decoder.h"
#include "mae.h"

#define EVAL_BATCH 256
#define EVAL_MASK_SEED 0x3a5cULL
#define GRID_N 12

typedef struct MaeConfig {
	double mask_ratio;
	int decoder_dim;
	int decoder_depth;
	int decoder_heads;
	int norm_pix_loss;
} MaeConfig;
METHOD_CONFIG_FITS(MaeConfig);

static const ParamDef mae_params[] = {
	{ "mask_ratio", PARAM_NUMBER, .def = 0.75, .min = 0, .max = 1,
	  .flags = PARAM_MIN_EXCLUSIVE | PARAM_MAX_EXCLUSIVE,
	  .help = "share of the patches hidden from the encoder", PARAM_AT(MaeConfig, mask_ratio) },
	{ "decoder_dim", PARAM_INTEGER, .def = 64, .min = 8, .max = 2048,
	  .help = "width of the decoder's tokens", PARAM_AT(MaeConfig, decoder_dim) },
	{ "decoder_depth", PARAM_INTEGER, .def = 2, .min = 1, .max = 16,
	  .help = "Transformer blocks in the decoder", PARAM_AT(MaeConfig, decoder_depth) },
	{ "decoder_heads", PARAM_INTEGER, .def = 4, .min = 1, .max = 64,
	  .help = "attention heads of the decoder (must divide decoder_dim)",
	  PARAM_AT(MaeConfig, decoder_heads) },
	{ "norm_pix_loss", PARAM_BOOLEAN, .def = 0,
	  .help = "targets are each patch normalised by its own mean and std",
	  PARAM_AT(MaeConfig, norm_pix_loss) },
};

/* The decoder's attention splits decoder_dim evenly over its heads. */
static int mae_validate(const void *config, char *field, size_t fieldlen, char *msg, size_t msglen)
{
	const MaeConfig *c = config;
	if (c->decoder_dim % c->decoder_heads == 0)
		return 0;
	snprintf(field, fieldlen, "decoder_heads");
	snprintf(msg, msglen, "decoder_heads (%d) must divide decoder_dim (%d)", c->decoder_heads,
	         c->decoder_dim);
	return -1;
}

typedef struct Mae {
	Encoder *encoder;
	int c, h, w, patch, gw, n_patches, pdim, n_keep, cls;
	int enc_dim, dec_dim, depth;
	Linear embed, pred;
	Tensor *mask_token;   /* (1,1,Dd) */
	Tensor *pos;          /* (1,N,Dd) */
	Block *blocks;
	LayerNorm norm;
	int norm_pix;
} Mae;

static void mae_destroy(void *state)
{
	Mae *m = state;
	if (!m)
		return;
	encoder_free(m->encoder);
	eng_free(m->blocks);
	eng_free(m);
}

static int mae_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	Mae *m = eng_calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, errlen, "mae: out of memory");
		return -1;
	}
	int rc = -1;
	if (env->encoder->kind != ENC_VIT) {
		snprintf(err, errlen, "mae: needs a vit encoder (model.encoder \"vit\"), got \"%s\"",
		         encoder_kind_name(env->encoder->kind));
		goto fail;
	}
	const MaeConfig *cfg = env->config;
	double ratio = cfg->mask_ratio;
	m->dec_dim = cfg->decoder_dim;
	m->depth = cfg->decoder_depth;
	int heads = cfg->decoder_heads;
	m->norm_pix = cfg->norm_pix_loss != 0;
	if (!(ratio > 0 && ratio < 1) || m->dec_dim < 1 || m->depth < 1 || heads < 1 ||
	    m->dec_dim % heads != 0) {
		snprintf(err, errlen, "mae: need 0 < mask_ratio < 1 (got %g) and decoder_heads (%d) "
		         "dividing decoder_dim (%d)", ratio, heads, m->dec_dim);
		goto fail;
	}
	if ((rc = encoder_new(env->encoder, ps, "encoder", env->in_c, env->in_h, env->in_w, env->rng,
	                      &m->encoder, err, errlen)) < 0)
		goto fail;
	rc = -1;
	m->c = env->in_c;
	m->h = env->in_h;
	m->w = env->in_w;
	m->patch = env->encoder->patch;
	m->gw = m->w / m->patch;
	m->n_patches = encoder_n_patches(m->encoder);
	m->pdim = m->c * m->patch * m->patch;
	m->cls = env->encoder->pool == 1;
	m->enc_dim = env->encoder->dim;
	m->n_keep = (int)lround((1.0 - ratio) * m->n_patches);
	if (m->n_keep < 1)
		m->n_keep = 1;
	if (m->n_keep > m->n_patches - 1)
		m->n_keep = m->n_patches - 1;
	if (m->n_keep < 1) {
		snprintf(err, errlen, "mae: an image of one patch cannot be masked (patch %d on %dx%d)",
		         m->patch, m->h, m->w);
		goto fail;
	}
	char name[LAYER_NAME_MAX];
	int Dd = m->dec_dim, N = m->n_patches;
	if (linear_init(&m->embed, ps, "decoder.embed", m->enc_dim, Dd, 1, env->rng) < 0 ||
	    !(m->mask_token = paramset_add(ps, "decoder.mask_token", 3, (int[]){ 1, 1, Dd }, 0)) ||
	    !(m->pos = paramset_add(ps, "decoder.pos_embed", 3, (int[]){ 1, N, Dd }, 0)))
		goto nomem;
	for (size_t i = 0; i < m->mask_token->size; i++)
		m->mask_token->data[i] = 0.02f * rng_normal(env->rng);
	for (size_t i = 0; i < m->pos->size; i++)
		m->pos->data[i] = 0.02f * rng_normal(env->rng);
	if (!(m->blocks = eng_calloc((size_t)m->depth, sizeof *m->blocks)))
		goto nomem;
	for (int i = 0; i < m->depth; i++) {
		snprintf(name, sizeof name, "decoder.blocks.%d", i);
		if (block_init(&m->blocks[i], ps, name, Dd, heads, 4, 0, 0.0f, env->rng) < 0)
			goto nomem;
	}
	if (layernorm_init(&m->norm, ps, "decoder.norm", Dd) < 0 ||
	    linear_init(&m->pred, ps, "decoder.pred", Dd, m->pdim, 1, env->rng) < 0)
		goto nomem;
	*state = m;
	return 0;
nomem:
	snprintf(err, errlen, "mae: cannot build the decoder (out of memory or a name clash under "
	         "\"decoder.\")");
fail:
	mae_destroy(m);
	return rc;
}

static Encoder *mae_encoder(void *state)
{
	return ((Mae *)state)->encoder;
}

/* ---- masks and patches ------------------------------------------------------------------------ */

void mae_draw_masks(int N, int K, int B, Rng *rng, int *perm, int *keep, float *masked,
                    int *gather)
{
	for (int b = 0; b < B; b++) {
		rng_permutation(rng, perm, N);
		float *mk = masked + (size_t)b * N;
		for (int p = 0; p < N; p++)
			mk[p] = 1.0f;
		for (int j = 0; j < K; j++)
			mk[perm[j]] = 0.0f;
		int kv = 0, km = 0;
		for (int p = 0; p < N; p++) {
			if (mk[p] == 0.0f) {
				keep[b * K + kv] = p;
				gather[b * N + p] = b * N + kv++;
			} else {
				gather[b * N + p] = b * N + K + km++;
			}
		}
	}
}

// x (B,C,H,W) -> out (B*N, C*p*p)
static void patchify(const Mae *m, const float *x, int B, float *out)
{
	int P = m->patch, N = m->n_patches;
	for (int b = 0; b < B; b++)
		for (int p = 0; p < N; p++) {
			int gy = p / m->gw, gx = p % m->gw;
			float *o = out + ((size_t)b * N + p) * m->pdim;
			for (int c = 0; c < m->c; c++)
				for (int py = 0; py < P; py++)
					for (int px = 0; px < P; px++)
						*o++ = x[(((size_t)b * m->c + c) * m->h + gy * P + py) * m->w + gx * P + px];
		}
}

// patches (B*N, C*p*p) -> x (B,C,H,W)
static void unpatchify(const Mae *m, const float *pt, int B, float *x)
{
	int P = m->patch, N = m->n_patches;
	for (int b = 0; b < B; b++)
		for (int p = 0; p < N; p++) {
			int gy = p / m->gw, gx = p % m->gw;
			const float *s = pt + ((size_t)b * N + p) * m->pdim;
			for (int c = 0; c < m->c; c++)
				for (int py = 0; py < P; py++)
					for (int px = 0; px < P; px++)
						x[(((size_t)b * m->c + c) * m->h + gy * P + py) * m->w + gx * P + px] = *s++;
		}
}

/* Per-patch mean and std (sqrt(var + 1e-6)) of rows (R, D); normalises rows in place when asked. */
static void patch_stats(float *rows, int R, int D, float *mean, float *std, int normalise)
{
	for (int r = 0; r < R; r++) {
		float *t = rows + (size_t)r * D;
		double s = 0, ss = 0;
		for (int d = 0; d < D; d++)
			s += t[d];
		double mu = s / D;
		for (int d = 0; d < D; d++)
			ss += (t[d] - mu) * (t[d] - mu);
		float sd = (float)sqrt(ss / D + 1e-6);
		mean[r] = (float)mu;
		std[r] = sd;
		if (normalise)
			for (int d = 0; d < D; d++)
				t[d] = (float)((t[d] - mu) / sd);
	}
}

/* ---- network ---------------------------------------------------------------------------------- */

// x (B,C,H,W), keep (B*n_keep), gather (B*N) -> predicted patches (B*N, C*p*p)
static Tensor *mae_forward(Ctx *ctx, Mae *m, Tensor *x, const int *keep, const int *gather)
{
	int B = x->shape[0], N = m->n_patches, K = m->n_keep, Dd = m->dec_dim;
	Tensor *t = encoder_forward_patches(ctx, m->encoder, x, keep, K);   // (B, cls + K, D)
	if (m->cls)
		t = op_slice(ctx, t, 1, 1, K);                                  // (B,K,D)
	t = linear_forward(ctx, &m->embed, t);                              // (B,K,Dd)
	Tensor *mt = op_add(ctx, ctx_zeros(ctx, 3, (int[]){ B, N - K, Dd }), m->mask_token);
	Tensor *seq = op_concat(ctx, (Tensor *[]){ t, mt }, 2, 1);          // (B,N,Dd) visible first
	seq = op_reshape(ctx, seq, 2, (int[]){ B * N, Dd });
	seq = op_gather_rows(ctx, seq, gather, B * N);                      // back in patch order
	seq = op_reshape(ctx, seq, 3, (int[]){ B, N, Dd });
	seq = op_add(ctx, seq, m->pos);
	for (int i = 0; i < m->depth; i++)
		seq = block_forward(ctx, &m->blocks[i], seq);
	seq = layernorm_forward(ctx, &m->norm, seq);
	Tensor *pred = linear_forward(ctx, &m->pred, seq);                  // (B,N,C*p*p)
	return op_reshape(ctx, pred, 2, (int[]){ B * N, m->pdim });
}

typedef struct MaeStep {
	Tensor *pred, *target;   /* (B*N, C*p*p); target normalised when norm_pix */
	float *masked;           /* (B*N) */
	float *mean, *std;       /* (B*N) raw patch statistics */
	Tensor *loss;
} MaeStep;

static MaeStep mae_step(Ctx *ctx, Mae *m, Tensor *x, Rng *rng)
{
	MaeStep s;
	int B = x->shape[0], N = m->n_patches, R = B * N;
	int *perm = ctx_alloc(ctx, (size_t)N * sizeof(int));
	int *keep = ctx_alloc(ctx, (size_t)B * m->n_keep * sizeof(int));
	int *gather = ctx_alloc(ctx, (size_t)R * sizeof(int));
	s.masked = ctx_alloc(ctx, (size_t)R * sizeof(float));
	s.mean = ctx_alloc(ctx, (size_t)R * sizeof(float));
	s.std = ctx_alloc(ctx, (size_t)R * sizeof(float));
	mae_draw_masks(N, m->n_keep, B, rng, perm, keep, s.masked, gather);
	s.target = ctx_tensor(ctx, 2, (int[]){ R, m->pdim });
	patchify(m, x->data, B, s.target->data);
	patch_stats(s.target->data, R, m->pdim, s.mean, s.std, m->norm_pix);
	s.pred = mae_forward(ctx, m, x, keep, gather);
	s.loss = op_masked_mse(ctx, s.pred, s.target, s.masked);
	return s;
}

/* Squared error in pixel space summed over the masked (want = 1) or visible (want = 0) patches;
 * *count receives the number of pixels. */
static double pixel_mse(const Mae *m, const MaeStep *s, int R, float want, double *count)
{
	double se = 0;
	*count = 0;
	for (int r = 0; r < R; r++) {
		if (s->masked[r] != want)
			continue;
		const float *p = s->pred->data + (size_t)r * m->pdim, *t = s->target->data + (size_t)r * m->pdim;
		float sd = m->norm_pix ? s->std[r] : 1.0f;
		for (int d = 0; d < m->pdim; d++) {
			double e = ((double)p[d] - t[d]) * sd;   /* undo the normalisation of both */
			se += e * e;
		}
		*count += m->pdim;
	}
	return se;
}

/* views[0] (B,C,H,W). */
static Tensor *mae_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                        const MetricSink *sink)
{
	Mae *m = state;
	Tensor *x = views[0];
	MaeStep s = mae_step(ctx, m, x, ctx_rng(ctx));
	metric_put(sink, "loss_masked", s.loss->data[0]);
	if (sink && m->norm_pix) {
		double cnt, se = pixel_mse(m, &s, x->shape[0] * m->n_patches, 1.0f, &cnt);
		metric_put(sink, "masked_pixel_mse", cnt > 0 ? se / cnt : 0);
	}
	(void)batch;
	return s.loss;
}

/* ---- evaluation and artifacts ----------------------------------------------------------------- */

/* On the test split with masks from a fixed seed: test_masked_loss (the training loss) and
 * test_masked_pixel_mse (pixels of the masked patches; equal to the former without norm_pix). */
static int mae_evaluate(void *state, Ctx *ctx, const Dataset *ds, const MetricSink *sink)
{
	Mae *m = state;
	int n = ds->test.n;
	if (n <= 0)
		return 0;
	Rng rng;
	rng_seed(&rng, EVAL_MASK_SEED);
	EvalMode em = eval_mode_enter(ctx);
	double loss = 0, se = 0, cnt = 0;
	for (int s0 = 0; s0 < n; s0 += EVAL_BATCH) {
		int nb = n - s0 < EVAL_BATCH ? n - s0 : EVAL_BATCH;
		ctx_reset(ctx);
		Tensor *x = ctx_wrap(ctx, ds->test.x + (size_t)s0 * ds->sample_floats, 4,
		                     (int[]){ nb, m->c, m->h, m->w });
		MaeStep s = mae_step(ctx, m, x, &rng);
		double c;
		loss += (double)s.loss->data[0] * nb;
		se += pixel_mse(m, &s, nb * m->n_patches, 1.0f, &c);
		cnt += c;
	}
	eval_mode_leave(ctx, em);
	metric_put(sink, "test_masked_loss", loss / n);
	metric_put(sink, "test_masked_pixel_mse", cnt > 0 ? se / cnt : 0);
	return 0;
}

/* reconstructions.png: rows of 12 test images: the original, the encoder's input (masked patches
 * grey), the reconstruction (visible patches as given, masked ones predicted), and the raw
 * prediction of every patch. With norm_pix_loss the predictions are mapped back to pixels with
 * each patch's true mean and std (as in the MAE paper's figures). */
static int mae_artifacts(void *state, Ctx *ctx, const Dataset *ds, const char *dir,
                         void (*add)(void *user, const char *name), void *user, char *err,
                         size_t errlen)
{
	Mae *m = state;
	int n = ds->test.n < GRID_N ? ds->test.n : GRID_N;
	if (n <= 0)
		return 0;
	size_t per = ds->sample_floats, R = (size_t)n * m->n_patches, P = (size_t)m->pdim;
	float *buf = eng_malloc(3 * (size_t)n * per * sizeof(float));
	float *pt = eng_malloc(3 * R * P * sizeof(float));
	if (!buf || !pt) {
		eng_free(buf);
		eng_free(pt);
		snprintf(err, errlen, "mae: out of memory writing artifacts");
		return -1;
	}
	float *masked_img = buf, *recon = buf + (size_t)n * per, *raw = buf + 2 * (size_t)n * per;
	float *orig = pt, *prd = pt + R * P, *work = pt + 2 * R * P;
	Rng rng;
	rng_seed(&rng, EVAL_MASK_SEED);
	EvalMode em = eval_mode_enter(ctx);
	ctx_reset(ctx);
	Tensor *x = ctx_wrap(ctx, ds->test.x, 4, (int[]){ n, m->c, m->h, m->w });
	MaeStep s = mae_step(ctx, m, x, &rng);
	eval_mode_leave(ctx, em);
	patchify(m, ds->test.x, n, orig);
	for (size_t r = 0; r < R; r++)
		for (size_t d = 0; d < P; d++) {
			float v = s.pred->data[r * P + d];
			if (m->norm_pix)
				v = v * s.std[r] + s.mean[r];
			prd[r * P + d] = v < 0 ? 0 : v > 1 ? 1 : v;
		}
	unpatchify(m, prd, n, raw);
	/* composite: visible patches as given, masked ones predicted */
	for (size_t r = 0; r < R; r++)
		memcpy(work + r * P, (s.masked[r] != 0.0f ? prd : orig) + r * P, P * sizeof(float));
	unpatchify(m, work, n, recon);
	/* the encoder's input: masked patches grey */
	for (size_t r = 0; r < R; r++)
		for (size_t d = 0; d < P; d++)
			work[r * P + d] = s.masked[r] != 0.0f ? 0.5f : orig[r * P + d];
	unpatchify(m, work, n, masked_img);
	const float *rows[4] = { ds->test.x, masked_img, recon, raw };
	int rc = artifact_png_rows(dir, "reconstructions.png", rows, 4, n, m->c, m->h, m->w, add,
	                           user, err, errlen);
	eng_free(buf);
	eng_free(pt);
	return rc < 0 ? rc : 0;
}

const PretextMethod method_mae = {
	.name = "mae",
	.family = "self-predictive",
	.summary = "masked autoencoder: a ViT encodes a random (1 - mask_ratio) share of the "
	           "patches; a light Transformer decoder predicts the pixels of the masked ones",
	.default_encoder = ENC_VIT,
	.encoders = ENC_BIT(ENC_VIT),
	.datasets = DATA_IMAGES,
	.views = 1,
	.default_augment = "none",
	.example = "mae-fashion-mnist.json",
	.params = mae_params,
	.n_params = (int)(sizeof mae_params / sizeof mae_params[0]),
	.config_size = sizeof(MaeConfig),
	.validate = mae_validate,
	.create = mae_create,
	.loss = mae_loss,
	.encoder = mae_encoder,
	.artifacts = mae_artifacts,
	.evaluate = mae_evaluate,
	.destroy = mae_destroy,
};
