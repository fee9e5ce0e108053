/* vae.c - variational autoencoder (Kingma & Welling 2014): the encoder's features go to two linear
 * heads "posterior.mu" and "posterior.logvar" (mu, log sigma^2 of q(z|x), latent_dim each); a
 * latent z = mu + sigma * eps (reparameterisation, eps ~ N(0,I)) is decoded (decoder.h) to pixel
 * logits. Loss per image = reconstruction + beta * KL(q(z|x) || N(0,I)), with beta ramped linearly
 * from 0 over the first kl_warmup share of the planned steps when kl_warmup > 0.
 *
 * Likelihood: Bernoulli on grey levels, so reconstruction = sum over pixels of the binary
 * cross-entropy with the [0,1] intensities (the usual convention for (Fashion-)MNIST VAEs; it is
 * not a density on continuous pixels, so the figure compares only with reports that use the same
 * convention). Everything is in nats per image. The negative ELBO (recon + KL, whatever beta is)
 * is reported on the training batches, on a fixed held-out slice of the test split at the start
 * of every epoch ("heldout_neg_elbo_nats", first 256 test images, fixed eps) and on the whole test
 * split after training ("test_neg_elbo_nats", one fixed-seed sample of z per image: an unbiased
 * single-sample estimate of the bound).
 *
 * Generation decodes z ~ N(0,I). It deliberately does not estimate the marginal likelihood by
 * importance sampling (the ELBO is a bound, and reported as one).
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
#define HELDOUT_N 256
#define EVAL_SEED 0x7ae5eedULL
#define SAMPLE_SEED 0x5a3b1e5ULL
#define INTERP_PAIRS 6
#define INTERP_STEPS 10

typedef struct VaeConfig {
	int latent_dim;
	float beta;
	float kl_warmup;
	DecoderKind decoder;
} VaeConfig;
METHOD_CONFIG_FITS(VaeConfig);

static const ParamDef vae_params[] = {
	{ "latent_dim", PARAM_INTEGER, .def = 16, .min = 1, .max = 4096,
	  .help = "size of the latent z", PARAM_AT(VaeConfig, latent_dim) },
	{ "beta", PARAM_NUMBER, .def = 1.0, .min = 0, .max = 100,
	  .help = "weight of the KL term (1 = the ELBO; > 1 = beta-VAE)", PARAM_AT(VaeConfig, beta) },
	{ "kl_warmup", PARAM_NUMBER, .def = 0, .min = 0, .max = 1,
	  .help = "share of the planned steps over which beta ramps up linearly from 0 "
	          "(0 = no warm-up)", PARAM_AT(VaeConfig, kl_warmup) },
	DECODER_PARAM(VaeConfig, decoder),
};

typedef struct Vae {
	Encoder *encoder;
	Linear mu, logvar;
	Decoder *decoder;
	int latent;
	float beta, kl_warmup;
	int64_t total_steps;
	int steps_per_epoch;
	int c, h, w;
	const Dataset *ds;   /* for the held-out bound during training (borrowed) */
} Vae;

static int vae_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	Vae *v = eng_calloc(1, sizeof *v);
	if (!v) {
		snprintf(err, errlen, "vae: out of memory");
		return -1;
	}
	v->c = env->in_c;
	v->h = env->in_h;
	v->w = env->in_w;
	v->ds = env->ds;
	const VaeConfig *cfg = env->config;
	v->latent = cfg->latent_dim;
	v->beta = cfg->beta;
	v->kl_warmup = cfg->kl_warmup;
	v->total_steps = env->total_steps;
	int ntrain = env->ds ? env->ds->train.n : 0;
	v->steps_per_epoch = env->batch_size > 0 && ntrain / env->batch_size > 0
	                         ? ntrain / env->batch_size : 1;
	DecoderKind dec_kind = cfg->decoder;
	int rc;
	if (v->latent < 1) {
		snprintf(err, errlen, "vae: latent_dim must be >= 1, got %d", v->latent);
		rc = -1;
		goto fail;
	}
	rc = encoder_new(env->encoder, ps, "encoder", env->in_c, env->in_h, env->in_w, env->rng,
	                 &v->encoder, err, errlen);
	if (rc < 0)
		goto fail;
	int feat = encoder_out_dim(v->encoder);
	if ((rc = linear_init(&v->mu, ps, "posterior.mu", feat, v->latent, 1, env->rng)) < 0 ||
	    (rc = linear_init(&v->logvar, ps, "posterior.logvar", feat, v->latent, 1, env->rng)) < 0) {
		snprintf(err, errlen, "vae: cannot build the posterior heads %d -> %d", feat, v->latent);
		goto fail;
	}
	if (dec_kind < DEC_AUTO || dec_kind > DEC_CONV)
		dec_kind = DEC_AUTO;
	rc = decoder_new(ps, "decoder", dec_kind, env->encoder, v->latent, v->c, v->h,
	                 v->w, env->rng, &v->decoder, err, errlen);
	if (rc < 0)
		goto fail;
	*state = v;
	return 0;
fail:
	encoder_free(v->encoder);
	decoder_free(v->decoder);
	eng_free(v);
	return rc;
}

static void vae_destroy(void *state)
{
	Vae *v = state;
	if (!v)
		return;
	encoder_free(v->encoder);
	decoder_free(v->decoder);
	eng_free(v);
}

static Encoder *vae_encoder(void *state)
{
	return ((Vae *)state)->encoder;
}

/* ---- the bound -------------------------------------------------------------------------------- */

typedef struct Bound {
	Tensor *recon;     /* scalar: mean over the batch of the summed pixel BCE (nats) */
	Tensor *kl;        /* scalar: mean KL (nats) */
	Tensor *mu;        /* (B,L) */
	Tensor *logits;    /* (B,C,H,W) */
} Bound;

// x (B,C,H,W); eps (B,L) standard normal -> the two terms of the negative ELBO
static Bound vae_bound(Ctx *ctx, Vae *v, Tensor *x, Tensor *eps)
{
	Bound b;
	Tensor *f = encoder_forward(ctx, v->encoder, x);                 // (B,F)
	b.mu = linear_forward(ctx, &v->mu, f);                           // (B,L)
	Tensor *lv = linear_forward(ctx, &v->logvar, f);                 // (B,L)
	Tensor *z = op_add(ctx, b.mu, op_mul(ctx, op_exp(ctx, op_scale(ctx, lv, 0.5f)), eps));
	b.logits = decoder_forward(ctx, v->decoder, z);                  // (B,C,H,W)
	size_t per = x->size / (size_t)x->shape[0];
	b.recon = op_scale(ctx, op_bce_logits(ctx, b.logits, x), (float)per);
	b.kl = op_kl_gaussian(ctx, b.mu, lv);
	return b;
}

/* Negative ELBO terms summed over test images [0, n), eps from a fixed seed. Does not reset the
 * context when `no_reset` (inside a training step, where the step's tensors must survive). */
static void test_bound(Ctx *ctx, Vae *v, const Dataset *ds, int n, int no_reset, double *recon,
                       double *kl, double *mse)
{
	size_t per = ds->sample_floats;
	Rng rng;
	rng_seed(&rng, EVAL_SEED);
	*recon = *kl = 0;
	if (mse)
		*mse = 0;
	EvalMode m = eval_mode_enter(ctx);
	for (int s = 0; s < n; s += EVAL_BATCH) {
		int nb = n - s < EVAL_BATCH ? n - s : EVAL_BATCH;
		if (!no_reset)
			ctx_reset(ctx);
		Tensor *x = ctx_wrap(ctx, ds->test.x + (size_t)s * per, 4, (int[]){ nb, v->c, v->h, v->w });
		Bound b = vae_bound(ctx, v, x, normal_tensor(ctx, nb, v->latent, &rng));
		*recon += (double)b.recon->data[0] * nb;
		*kl += (double)b.kl->data[0] * nb;
		if (mse) {
			/* Reconstruction from the posterior mean (what the artifact shows). */
			Tensor *lg = decoder_forward(ctx, v->decoder, b.mu);
			for (size_t i = 0; i < lg->size; i++) {
				double e = 1.0 / (1.0 + exp(-(double)lg->data[i])) - x->data[i];
				*mse += e * e;
			}
		}
	}
	eval_mode_leave(ctx, m);
}

/* views[0] (B,C,H,W) in [0,1]. */
static Tensor *vae_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                        const MetricSink *sink)
{
	Vae *v = state;
	Tensor *x = views[0];
	int B = x->shape[0];
	/* The step from the batch position, so a resumed run uses the same beta as an uninterrupted
	 * one (the runner's steps per epoch are train.n / batch, as here). */
	int64_t step = batch ? (int64_t)batch->epoch * v->steps_per_epoch + batch->index : 0;
	float beta = v->beta;
	if (v->kl_warmup > 0 && v->total_steps > 0) {
		double ramp = (double)step / (v->kl_warmup * (double)v->total_steps);
		if (ramp < 1)
			beta = (float)(v->beta * ramp);
	}
	if (sink && batch && batch->index == 0 && v->ds && v->ds->test.n > 0) {
		int n = v->ds->test.n < HELDOUT_N ? v->ds->test.n : HELDOUT_N;
		double r, k;
		test_bound(ctx, v, v->ds, n, 1, &r, &k, NULL);
		metric_put(sink, "heldout_neg_elbo_nats", (r + k) / n);
	}
	Bound b = vae_bound(ctx, v, x, normal_tensor(ctx, B, v->latent, ctx_rng(ctx)));
	Tensor *loss = op_add(ctx, b.recon, op_scale(ctx, b.kl, beta));
	metric_put(sink, "loss_recon_nats", b.recon->data[0]);
	metric_put(sink, "loss_kl_nats", b.kl->data[0]);
	metric_put(sink, "neg_elbo_nats", (double)b.recon->data[0] + b.kl->data[0]);
	metric_put(sink, "beta", beta);
	return loss;
}

/* ---- evaluation, generation, artifacts -------------------------------------------------------- */

static int vae_evaluate(void *state, Ctx *ctx, const Dataset *ds, const MetricSink *sink)
{
	Vae *v = state;
	int n = ds->test.n;
	if (n <= 0)
		return 0;
	double r, k, mse;
	test_bound(ctx, v, ds, n, 0, &r, &k, &mse);
	metric_put(sink, "test_neg_elbo_nats", (r + k) / n);
	metric_put(sink, "test_recon_nats", r / n);
	metric_put(sink, "test_kl_nats", k / n);
	metric_put(sink, "test_recon_mse", mse / ((double)n * (double)ds->sample_floats));
	return 0;
}

/* z (n,L) -> images (n,C,H,W) in [0,1] into out, in batches. */
static void decode_into(Ctx *ctx, Vae *v, const float *z, int n, float *out)
{
	size_t per = (size_t)v->c * v->h * v->w;
	EvalMode m = eval_mode_enter(ctx);
	for (int s = 0; s < n; s += EVAL_BATCH) {
		int nb = n - s < EVAL_BATCH ? n - s : EVAL_BATCH;
		ctx_reset(ctx);
		Tensor *zt = ctx_wrap(ctx, (float *)z + (size_t)s * v->latent, 2, (int[]){ nb, v->latent });
		Tensor *lg = decoder_forward(ctx, v->decoder, zt);
		sigmoid_into(lg->data, out + (size_t)s * per, lg->size);
	}
	eval_mode_leave(ctx, m);
}

/* Posterior means of images x (n,C,H,W) into mu (n,L). */
static void encode_mu(Ctx *ctx, Vae *v, const float *x, int n, float *mu)
{
	size_t per = (size_t)v->c * v->h * v->w;
	EvalMode m = eval_mode_enter(ctx);
	for (int s = 0; s < n; s += EVAL_BATCH) {
		int nb = n - s < EVAL_BATCH ? n - s : EVAL_BATCH;
		ctx_reset(ctx);
		Tensor *xt = ctx_wrap(ctx, (float *)x + (size_t)s * per, 4, (int[]){ nb, v->c, v->h, v->w });
		Tensor *t = linear_forward(ctx, &v->mu, encoder_forward(ctx, v->encoder, xt));
		memcpy(mu + (size_t)s * v->latent, t->data, t->size * sizeof(float));
	}
	eval_mode_leave(ctx, m);
}

static int vae_generate(void *state, Ctx *ctx, int n, Rng *rng, float *out, char *err,
                        size_t errlen)
{
	Vae *v = state;
	float *z = eng_malloc((size_t)n * v->latent * sizeof(float));
	if (!z) {
		snprintf(err, errlen, "vae: out of memory sampling %d images", n);
		return -1;
	}
	for (size_t i = 0; i < (size_t)n * v->latent; i++)
		z[i] = rng_normal(rng);
	decode_into(ctx, v, z, n, out);
	eng_free(z);
	return 0;
}

/* reconstructions.png (16 test images over their decoded posterior means), samples.png (64 draws
 * from the prior), interpolation.png (rows: image A, 10 decodings along the straight line between
 * the posterior means of A and B, image B; A and B are consecutive test images). */
static int vae_artifacts(void *state, Ctx *ctx, const Dataset *ds, const char *dir,
                         void (*add)(void *user, const char *name), void *user, char *err,
                         size_t errlen)
{
	Vae *v = state;
	size_t per = ds->sample_floats;
	int L = v->latent, rc = -1;
	int n_rec = ds->test.n < 16 ? ds->test.n : 16;
	int pairs = ds->test.n / 2 < INTERP_PAIRS ? ds->test.n / 2 : INTERP_PAIRS;
	int row = INTERP_STEPS + 2, n_samples = 64;
	int n_mu = n_rec > 2 * pairs ? n_rec : 2 * pairs;
	float *mu = eng_malloc((size_t)(n_mu > 0 ? n_mu : 1) * L * sizeof(float));
	float *z = eng_malloc((size_t)n_samples * L * sizeof(float));
	float *img = eng_malloc((size_t)n_samples * per * sizeof(float));
	float *strip = eng_malloc((size_t)(pairs > 0 ? pairs : 1) * row * per * sizeof(float));
	float *zi = eng_malloc((size_t)INTERP_STEPS * L * sizeof(float));
	if (!mu || !z || !img || !strip || !zi) {
		snprintf(err, errlen, "vae: out of memory writing artifacts");
		goto done;
	}
	if (n_mu > 0)
		encode_mu(ctx, v, ds->test.x, n_mu, mu);
	if (n_rec > 0) {
		decode_into(ctx, v, mu, n_rec, img);
		const float *rows[2] = { ds->test.x, img };
		if (artifact_png_rows(dir, "reconstructions.png", rows, 2, n_rec, v->c, v->h, v->w, add,
		                      user, err, errlen) < 0)
			goto done;
	}
	Rng rng;
	rng_seed(&rng, SAMPLE_SEED);
	for (size_t i = 0; i < (size_t)n_samples * L; i++)
		z[i] = rng_normal(&rng);
	decode_into(ctx, v, z, n_samples, img);
	if (artifact_png_grid(dir, "samples.png", img, n_samples, 8, v->c, v->h, v->w, add, user,
	                      err, errlen) < 0)
		goto done;
	if (pairs > 0) {
		const float *rows[INTERP_PAIRS];
		for (int p = 0; p < pairs; p++) {
			const float *ma = mu + (size_t)(2 * p) * L, *mb = mu + (size_t)(2 * p + 1) * L;
			for (int s = 0; s < INTERP_STEPS; s++) {
				float t = (float)s / (INTERP_STEPS - 1);
				for (int j = 0; j < L; j++)
					zi[(size_t)s * L + j] = (1 - t) * ma[j] + t * mb[j];
			}
			float *r = strip + (size_t)p * row * per;
			memcpy(r, ds->test.x + (size_t)(2 * p) * per, per * sizeof(float));
			decode_into(ctx, v, zi, INTERP_STEPS, r + per);
			memcpy(r + (size_t)(row - 1) * per, ds->test.x + (size_t)(2 * p + 1) * per,
			       per * sizeof(float));
			rows[p] = r;
		}
		if (artifact_png_rows(dir, "interpolation.png", rows, pairs, row, v->c, v->h, v->w, add,
		                      user, err, errlen) < 0)
			goto done;
	}
	rc = 0;
done:
	eng_free(mu);
	eng_free(z);
	eng_free(img);
	eng_free(strip);
	eng_free(zi);
	return rc;
}

const PretextMethod method_vae = {
	.name = "vae",
	.family = "self-predictive",
	.summary = "variational autoencoder: encoder -> (mu, log sigma^2), reparameterised sample, "
	           "decoder; loss = Bernoulli reconstruction + beta * KL; reports the negative "
	           "ELBO in nats per image and samples new images",
	.default_encoder = ENC_MLP,
	.encoders = ENC_BIT(ENC_MLP) | ENC_BIT(ENC_CNN) | ENC_BIT(ENC_VIT) | ENC_RESNETS,
	.datasets = DATA_IMAGES,
	.views = 1,
	.default_augment = "none",
	.example = "vae-fashion-mnist.json",
	.params = vae_params,
	.n_params = (int)(sizeof vae_params / sizeof vae_params[0]),
	.config_size = sizeof(VaeConfig),
	.create = vae_create,
	.loss = vae_loss,
	.encoder = vae_encoder,
	.artifacts = vae_artifacts,
	.evaluate = vae_evaluate,
	.generate_images = vae_generate,
	.destroy = vae_destroy,
};
