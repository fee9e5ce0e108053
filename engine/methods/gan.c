/* gan.c - a DCGAN-style generative adversarial network (Goodfellow et al. 2014; Radford et al.
 * 2016): a generator G maps z ~ N(0,I) to an image, a discriminator D tells real images from G's.
 *
 *   G  "generator.*": the conv decoder of decoder.h (Linear to the last feature map, then
 *      ConvTranspose2d stride 2 + BatchNorm + ReLU per stage, a 3x3 conv), sigmoid out: pixels
 *      in [0,1] like the data (the same as a tanh out rescaled, sigmoid(2a) = (tanh(a)+1)/2).
 *      BatchNorm always, whatever model.batchnorm says (that key is the discriminator's).
 *   D  "encoder.*" + "disc.head": the job's encoder (a cnn with stride-2 stages is the DCGAN
 *      discriminator's strided convolutions) and a Linear to one logit. The encoder is what the
 *      evaluations probe, as in the DCGAN paper's use of discriminator features.
 *
 * Alternating steps inside one job: the runner takes one optimizer step per call of loss(), so
 * the method alternates over the runner's steps. Of every d_steps + 1 steps, the first d_steps
 * update D (G's parameters are marked PARAM_FROZEN for that step, so the optimizer leaves them
 * and their moments alone) and the last updates G (D frozen). The flags are restored in
 * after_step, so the evaluations and the checkpoint see a plain parameter set. Each player's
 * AdamW/SGD moments are its own parameters' moments, so the runner's checkpoint holds both
 * optimizers; the phase follows from the batch position, so a resumed run repeats the
 * uninterrupted one. (AdamW's bias correction counts all steps, both players'.)
 *
 * Losses (means over the batch): non-saturating, D: softplus(-D(x)) + softplus(D(G(z))),
 * G: softplus(-D(G(z))); hinge, D: relu(1 - D(x)) + relu(1 + D(G(z))), G: -D(G(z)).
 * Spectral norm (optional): after every D step each D weight (viewed as (out, rest)) is divided
 * by its largest singular value, estimated by one power iteration per step from vectors kept
 * as buffers "disc.sn.<i>" (so they are checkpointed too). This is the projection form of
 * Miyato et al.'s spectral normalisation: the forward pass is the same, the gradient does not
 * pass through sigma.
 *
 * Metrics: loss_d (with d_accuracy, d_real_logit, d_fake_logit) on D steps, loss_g on G steps;
 * on the test split after training, the same losses and D's accuracy on the real test images
 * against as many fresh samples. The sample-quality figure (Frechet distance in a fixed
 * classifier's features) is not computed here: it needs a classifier the job does not have
 * (see engine/frechet.h and bench/fid).
 */
#include "method.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../layers.h"
#include "../ops.h"
#include "decoder.h"

#define EVAL_BATCH 256
#define EVAL_SEED 0x6a9e5eedULL
#define SAMPLE_SEED 0x5a3b1e5ULL
#define GAN_MAX_SN 64

typedef enum GanLoss { GAN_NON_SATURATING = 0, GAN_HINGE = 1 } GanLoss;

typedef struct GanConfig {
	int latent_dim;
	GanLoss loss;
	int d_steps;
	int spectral_norm;
} GanConfig;
METHOD_CONFIG_FITS(GanConfig);

static const ParamDef gan_params[] = {
	{ "latent_dim", PARAM_INTEGER, .def = 64, .min = 1, .max = 4096,
	  .help = "size of the generator's input z ~ N(0, I)", PARAM_AT(GanConfig, latent_dim) },
	{ "loss", PARAM_ENUM, .def_str = "non_saturating", .choices = "non_saturating|hinge",
	  .help = "adversarial loss: non_saturating (the DCGAN loss) or hinge",
	  PARAM_AT(GanConfig, loss) },
	{ "d_steps", PARAM_INTEGER, .def = 1, .min = 1, .max = 16,
	  .help = "discriminator steps per generator step (the runner's steps alternate)",
	  PARAM_AT(GanConfig, d_steps) },
	{ "spectral_norm", PARAM_BOOLEAN, .def = 0,
	  .help = "divide every discriminator weight by its largest singular value after each "
	          "discriminator step (one power iteration per step)",
	  PARAM_AT(GanConfig, spectral_norm) },
};

typedef struct SnEntry {
	Tensor *w;    /* the weight, viewed as (rows, size / rows) */
	Tensor *u;    /* buffer (rows): the left singular vector estimate */
	int rows, cols;
} SnEntry;

typedef struct Gan {
	Encoder *encoder;
	Linear head;
	Decoder *gen;
	ParamSet *ps;
	int *gen_idx, *disc_idx, n_gen, n_disc;   /* trainable parameters of each player */
	int *saved_flags;                         /* flags to restore in after_step */
	SnEntry sn[GAN_MAX_SN];
	int n_sn;
	float *sn_v;                              /* scratch for the power iteration */
	int latent, d_steps, steps_per_epoch;
	GanLoss loss;
	int last_was_d;
	int c, h, w;
} Gan;

/* ---- building ----------------------------------------------------------------------------------- */

static int gan_collect(Gan *g, int spectral_norm, Rng *rng, char *err, size_t errlen)
{
	int n = paramset_count(g->ps);
	g->gen_idx = eng_calloc((size_t)n + 1, sizeof(int));
	g->disc_idx = eng_calloc((size_t)n + 1, sizeof(int));
	g->saved_flags = eng_calloc((size_t)n + 1, sizeof(int));
	if (!g->gen_idx || !g->disc_idx || !g->saved_flags) {
		snprintf(err, errlen, "gan: out of memory");
		return -1;
	}
	size_t max_cols = 1;
	for (int i = 0; i < n; i++) {
		int flags = paramset_flags_at(g->ps, i);
		Tensor *t = paramset_at(g->ps, i);
		if (flags & PARAM_BUFFER)
			continue;
		int is_gen = strncmp(t->name, "generator.", 10) == 0;
		int is_disc = strncmp(t->name, "encoder.", 8) == 0 || strncmp(t->name, "disc.", 5) == 0;
		if (is_gen)
			g->gen_idx[g->n_gen++] = i;
		else if (is_disc)
			g->disc_idx[g->n_disc++] = i;
		if (!spectral_norm || !is_disc || t->ndim < 2 || !(flags & PARAM_DECAY))
			continue;
		if (g->n_sn == GAN_MAX_SN) {
			snprintf(err, errlen, "gan: spectral_norm handles at most %d discriminator weights",
			         GAN_MAX_SN);
			return -1;
		}
		SnEntry *e = &g->sn[g->n_sn];
		e->w = t;
		e->rows = t->shape[0];
		e->cols = (int)(t->size / (size_t)e->rows);
		if ((size_t)e->cols > max_cols)
			max_cols = (size_t)e->cols;
		char name[LAYER_NAME_MAX];
		snprintf(name, sizeof name, "disc.sn.%d", g->n_sn);
		e->u = paramset_add(g->ps, name, 1, (int[]){ e->rows }, PARAM_BUFFER);
		if (!e->u) {
			snprintf(err, errlen, "gan: cannot add the spectral-norm buffer %s", name);
			return -1;
		}
		double norm = 0;
		for (int r = 0; r < e->rows; r++) {
			e->u->data[r] = rng_normal(rng);
			norm += (double)e->u->data[r] * e->u->data[r];
		}
		for (int r = 0; r < e->rows; r++)
			e->u->data[r] = (float)(e->u->data[r] / sqrt(norm + 1e-30));
		g->n_sn++;
	}
	if (g->n_sn && !(g->sn_v = eng_malloc(max_cols * sizeof(float)))) {
		snprintf(err, errlen, "gan: out of memory");
		return -1;
	}
	return 0;
}

/* One power iteration on W (rows, cols) from u: v = W^T u / |.|, u = W v / |.|; returns
 * sigma = u^T W v = |W v|. v is scratch (cols). */
static double power_iteration(const float *w, float *u, float *v, int rows, int cols)
{
	double nv = 0, nu = 0;
	for (int j = 0; j < cols; j++)
		v[j] = 0;
	for (int r = 0; r < rows; r++) {
		const float *wr = w + (size_t)r * cols;
		for (int j = 0; j < cols; j++)
			v[j] += u[r] * wr[j];
	}
	for (int j = 0; j < cols; j++)
		nv += (double)v[j] * v[j];
	nv = sqrt(nv) + 1e-12;
	for (int j = 0; j < cols; j++)
		v[j] = (float)(v[j] / nv);
	for (int r = 0; r < rows; r++) {
		const float *wr = w + (size_t)r * cols;
		double s = 0;
		for (int j = 0; j < cols; j++)
			s += (double)wr[j] * v[j];
		u[r] = (float)s;
		nu += s * s;
	}
	nu = sqrt(nu);
	for (int r = 0; r < rows; r++)
		u[r] = (float)(u[r] / (nu + 1e-12));
	return nu;
}

static void spectral_normalise(Gan *g)
{
	for (int i = 0; i < g->n_sn; i++) {
		SnEntry *e = &g->sn[i];
		double sigma = power_iteration(e->w->data, e->u->data, g->sn_v, e->rows, e->cols);
		if (sigma > 1e-12)
			for (size_t k = 0; k < e->w->size; k++)
				e->w->data[k] = (float)(e->w->data[k] / sigma);
	}
}

static void gan_destroy(void *state)
{
	Gan *g = state;
	if (!g)
		return;
	encoder_free(g->encoder);
	decoder_free(g->gen);
	eng_free(g->gen_idx);
	eng_free(g->disc_idx);
	eng_free(g->saved_flags);
	eng_free(g->sn_v);
	eng_free(g);
}

static int gan_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	Gan *g = eng_calloc(1, sizeof *g);
	if (!g) {
		snprintf(err, errlen, "gan: out of memory");
		return -1;
	}
	const GanConfig *cfg = env->config;
	g->ps = ps;
	g->c = env->in_c;
	g->h = env->in_h;
	g->w = env->in_w;
	g->latent = cfg->latent_dim;
	g->loss = cfg->loss;
	g->d_steps = cfg->d_steps > 0 ? cfg->d_steps : 1;
	int ntrain = env->ds ? env->ds->train.n : 0;
	g->steps_per_epoch = env->batch_size > 0 && ntrain / env->batch_size > 0
	                         ? ntrain / env->batch_size : 1;
	int rc = encoder_new(env->encoder, ps, "encoder", env->in_c, env->in_h, env->in_w, env->rng,
	                     &g->encoder, err, errlen);
	if (rc < 0)
		goto fail;
	if ((rc = linear_init(&g->head, ps, "disc.head", encoder_out_dim(g->encoder), 1, 1,
	                      env->rng)) < 0) {
		snprintf(err, errlen, "gan: cannot build the discriminator head %d -> 1",
		         encoder_out_dim(g->encoder));
		goto fail;
	}
	/* The generator mirrors the discriminator's stages, always with BatchNorm (DCGAN). */
	EncoderConfig gcfg = *env->encoder;
	gcfg.batchnorm = 1;
	rc = decoder_new(ps, "generator", DEC_CONV, &gcfg, g->latent, g->c, g->h, g->w, env->rng,
	                 &g->gen, err, errlen);
	if (rc < 0)
		goto fail;
	if ((rc = gan_collect(g, cfg->spectral_norm, env->rng, err, errlen)) < 0)
		goto fail;
	for (int k = 0; k < 8; k++)   /* settle the singular vectors before the first step */
		for (int i = 0; i < g->n_sn; i++)
			power_iteration(g->sn[i].w->data, g->sn[i].u->data, g->sn_v, g->sn[i].rows,
			                g->sn[i].cols);
	spectral_normalise(g);
	*state = g;
	return 0;
fail:
	gan_destroy(g);
	return rc < 0 ? rc : -1;
}

static Encoder *gan_encoder(void *state)
{
	return ((Gan *)state)->encoder;
}

/* ---- the two players ---------------------------------------------------------------------------- */

static Tensor *const_tensor(Ctx *ctx, int B, float v)
{
	Tensor *t = ctx_tensor(ctx, 2, (int[]){ B, 1 });
	for (int i = 0; i < B; i++)
		t->data[i] = v;
	return t;
}

// z (B,L) -> images (B,C,H,W) in [0,1]
static Tensor *generate(Ctx *ctx, Gan *g, Tensor *z)
{
	return op_sigmoid(ctx, decoder_forward(ctx, g->gen, z));
}

// x (B,C,H,W) -> logits (B,1)
static Tensor *discriminate(Ctx *ctx, Gan *g, Tensor *x)
{
	return linear_forward(ctx, &g->head, encoder_forward(ctx, g->encoder, x));
}

// D's loss from logits on real (B,1) and fake (B,1) images
static Tensor *d_loss(Ctx *ctx, Gan *g, Tensor *lr, Tensor *lf)
{
	int B = lr->shape[0];
	if (g->loss == GAN_HINGE) {
		Tensor *a = op_relu(ctx, op_add_scalar(ctx, op_scale(ctx, lr, -1.0f), 1.0f));
		Tensor *b = op_relu(ctx, op_add_scalar(ctx, lf, 1.0f));
		return op_add(ctx, op_mean(ctx, op_reshape(ctx, a, 1, (int[]){ B }), 0, 0),
		              op_mean(ctx, op_reshape(ctx, b, 1, (int[]){ lf->shape[0] }), 0, 0));
	}
	return op_add(ctx, op_bce_logits(ctx, lr, const_tensor(ctx, B, 1.0f)),
	              op_bce_logits(ctx, lf, const_tensor(ctx, lf->shape[0], 0.0f)));
}

// G's loss from logits on fake images (B,1)
static Tensor *g_loss(Ctx *ctx, Gan *g, Tensor *lf)
{
	int B = lf->shape[0];
	if (g->loss == GAN_HINGE)
		return op_scale(ctx, op_mean(ctx, op_reshape(ctx, lf, 1, (int[]){ B }), 0, 0), -1.0f);
	return op_bce_logits(ctx, lf, const_tensor(ctx, B, 1.0f));
}

static void freeze(Gan *g, const int *idx, int n)
{
	for (int k = 0; k < n; k++) {
		int f = paramset_flags_at(g->ps, idx[k]);
		g->saved_flags[idx[k]] = f;
		paramset_set_flags_at(g->ps, idx[k], f | PARAM_FROZEN);
	}
}

static void unfreeze(Gan *g, const int *idx, int n)
{
	for (int k = 0; k < n; k++)
		paramset_set_flags_at(g->ps, idx[k], g->saved_flags[idx[k]]);
}

static double mean_of(const Tensor *t)
{
	double s = 0;
	for (size_t i = 0; i < t->size; i++)
		s += t->data[i];
	return t->size ? s / (double)t->size : 0;
}

/* Share of real logits > 0 and fake logits < 0. */
static double d_accuracy(const Tensor *lr, const Tensor *lf)
{
	size_t ok = 0;
	for (size_t i = 0; i < lr->size; i++)
		ok += lr->data[i] > 0;
	for (size_t i = 0; i < lf->size; i++)
		ok += lf->data[i] < 0;
	return (double)ok / (double)(lr->size + lf->size);
}

/* views[0] (B,C,H,W) real images in [0,1]. */
static Tensor *gan_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                        const MetricSink *sink)
{
	Gan *g = state;
	Tensor *x = views[0];
	int B = x->shape[0];
	/* The phase from the batch position, so a resumed run alternates as the uninterrupted one. */
	int64_t step = batch ? (int64_t)batch->epoch * g->steps_per_epoch + batch->index : 0;
	int d_phase = step % (g->d_steps + 1) < g->d_steps;
	g->last_was_d = d_phase;
	Tensor *z = normal_tensor(ctx, B, g->latent, ctx_rng(ctx));
	Tensor *loss;
	if (d_phase) {
		freeze(g, g->gen_idx, g->n_gen);
		int was = ctx_set_grad_enabled(ctx, 0);   /* G's output is a constant input to D */
		Tensor *fake = generate(ctx, g, z);
		ctx_set_grad_enabled(ctx, was);
		Tensor *lr = discriminate(ctx, g, x), *lf = discriminate(ctx, g, fake);
		loss = d_loss(ctx, g, lr, lf);
		metric_put(sink, "loss_d", loss->data[0]);
		metric_put(sink, "d_accuracy", d_accuracy(lr, lf));
		metric_put(sink, "d_real_logit", mean_of(lr));
		metric_put(sink, "d_fake_logit", mean_of(lf));
	} else {
		freeze(g, g->disc_idx, g->n_disc);
		Tensor *lf = discriminate(ctx, g, generate(ctx, g, z));
		loss = g_loss(ctx, g, lf);
		metric_put(sink, "loss_g", loss->data[0]);
	}
	return loss;
}

static void gan_after_step(void *state, int64_t step, int64_t total_steps)
{
	Gan *g = state;
	(void)step;
	(void)total_steps;
	if (g->last_was_d) {
		unfreeze(g, g->gen_idx, g->n_gen);
		spectral_normalise(g);
	} else {
		unfreeze(g, g->disc_idx, g->n_disc);
	}
}

/* ---- evaluation, generation, artifacts ---------------------------------------------------------- */

static int gan_generate(void *state, Ctx *ctx, int n, Rng *rng, float *out, char *err,
                        size_t errlen)
{
	Gan *g = state;
	size_t per = (size_t)g->c * g->h * g->w;
	(void)err;
	(void)errlen;
	EvalMode m = eval_mode_enter(ctx);
	for (int s = 0; s < n; s += EVAL_BATCH) {
		int nb = n - s < EVAL_BATCH ? n - s : EVAL_BATCH;
		ctx_reset(ctx);
		Tensor *img = generate(ctx, g, normal_tensor(ctx, nb, g->latent, rng));
		memcpy(out + (size_t)s * per, img->data, img->size * sizeof(float));
	}
	eval_mode_leave(ctx, m);
	return 0;
}

/* On the test split: both losses and D's accuracy, real test images against as many samples
 * (fixed seed), D and G in evaluation mode. */
static int gan_evaluate(void *state, Ctx *ctx, const Dataset *ds, const MetricSink *sink)
{
	Gan *g = state;
	int n = ds->test.n;
	if (n <= 0)
		return 0;
	size_t per = ds->sample_floats;
	Rng rng;
	rng_seed(&rng, EVAL_SEED);
	double ld = 0, lg = 0, acc = 0;
	EvalMode m = eval_mode_enter(ctx);
	for (int s = 0; s < n; s += EVAL_BATCH) {
		int nb = n - s < EVAL_BATCH ? n - s : EVAL_BATCH;
		ctx_reset(ctx);
		Tensor *x = ctx_wrap(ctx, ds->test.x + (size_t)s * per, 4, (int[]){ nb, g->c, g->h, g->w });
		Tensor *fake = generate(ctx, g, normal_tensor(ctx, nb, g->latent, &rng));
		Tensor *lr = discriminate(ctx, g, x), *lf = discriminate(ctx, g, fake);
		ld += (double)d_loss(ctx, g, lr, lf)->data[0] * nb;
		lg += (double)g_loss(ctx, g, lf)->data[0] * nb;
		acc += d_accuracy(lr, lf) * nb;
	}
	eval_mode_leave(ctx, m);
	metric_put(sink, "test_loss_d", ld / n);
	metric_put(sink, "test_loss_g", lg / n);
	metric_put(sink, "test_d_accuracy", acc / n);
	return 0;
}

/* samples.png: 64 samples from a fixed seed, 8 per row (the VAE's grid). */
static int gan_artifacts(void *state, Ctx *ctx, const Dataset *ds, const char *dir,
                         void (*add)(void *user, const char *name), void *user, char *err,
                         size_t errlen)
{
	Gan *g = state;
	int n = 64;
	float *img = eng_malloc((size_t)n * ds->sample_floats * sizeof(float));
	if (!img) {
		snprintf(err, errlen, "gan: out of memory writing artifacts");
		return -1;
	}
	Rng rng;
	rng_seed(&rng, SAMPLE_SEED);
	int rc = gan_generate(g, ctx, n, &rng, img, err, errlen);
	if (rc == 0)
		rc = artifact_png_grid(dir, "samples.png", img, n, 8, g->c, g->h, g->w, add, user, err,
		                       errlen);
	eng_free(img);
	return rc < 0 ? -1 : 0;
}

const PretextMethod method_gan = {
	.name = "gan",
	.family = "generative",
	.summary = "DCGAN-style generative adversarial network: a conv generator (BatchNorm, ReLU, "
	           "sigmoid out) against a discriminator whose body is the encoder; alternating "
	           "steps, non-saturating or hinge loss, optional spectral norm; samples new images",
	.default_encoder = ENC_CNN,
	.encoders = ENC_BIT(ENC_CNN),
	.datasets = DATA_IMAGES,
	.views = 1,
	.default_augment = "none",
	.example = "gan-fashion-mnist.json",
	.params = gan_params,
	.n_params = (int)(sizeof gan_params / sizeof gan_params[0]),
	.config_size = sizeof(GanConfig),
	.create = gan_create,
	.loss = gan_loss,
	.after_step = gan_after_step,
	.encoder = gan_encoder,
	.artifacts = gan_artifacts,
	.evaluate = gan_evaluate,
	.generate_images = gan_generate,
	.destroy = gan_destroy,
};
