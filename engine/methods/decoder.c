/* decoder.c - MLP and transposed-convolution decoders (latent code -> image logits) shared by the
 * autoencoder, denoising autoencoder, VAE, colorization and inpainting; the encoder -> code ->
 * decoder network (CodeNet) of the image-to-image ones; two tiny helpers those methods share.
 *
 * It deliberately does not choose a loss, sample latents or know which method uses it; the MAE's
 * Transformer decoder lives in mae.c because it works on tokens, not on a code vector.
 */
#include "decoder.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../data/png_grid.h"
#include "../layers.h"
#include "../ops.h"

struct Decoder {
	DecoderKind kind;
	int latent, c, h, w;
	/* mlp */
	Mlp *mlp;
	/* conv */
	Linear fc;
	BatchNorm fc_bn;
	int n_up;
	Tensor *up_w[MODEL_MAX_LAYERS], *up_b[MODEL_MAX_LAYERS];   /* (Cin,Cout,3,3), (Cout) or NULL */
	int up_out_pad[MODEL_MAX_LAYERS];
	BatchNorm up_bn[MODEL_MAX_LAYERS];
	Conv2d out;
	int batchnorm;
	int c0, h0, w0;   /* the feature map fc produces */
};

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

static void fill_uniform(Tensor *t, float bound, Rng *rng)
{
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = rng_uniform_range(rng, -bound, bound);
}

/* ---- mlp -------------------------------------------------------------------------------------- */

static int build_mlp(Decoder *d, ParamSet *ps, const char *prefix, const EncoderConfig *enc,
                     Rng *rng)
{
	int dims[MODEL_MAX_LAYERS + 2], n = 0;
	dims[n++] = d->latent;
	if (enc->kind == ENC_MLP) {
		for (int i = enc->n_hidden - 1; i >= 0; i--)
			dims[n++] = enc->hidden[i];
	} else {
		dims[n++] = 256;
		dims[n++] = 512;
	}
	dims[n++] = d->c * d->h * d->w;
	return mlp_new(ps, prefix, dims, n, enc->batchnorm, rng, &d->mlp);
}

/* ---- conv ------------------------------------------------------------------------------------- */

static int build_conv(Decoder *d, ParamSet *ps, const char *prefix, const EncoderConfig *enc,
                      Rng *rng, char *err, size_t errlen)
{
	static const int def_channels[3] = { 32, 64, 128 };
	const int *ch = enc->kind == ENC_CNN ? enc->channels : def_channels;
	int nch = enc->kind == ENC_CNN ? enc->n_channels : 3;
	char name[LAYER_NAME_MAX];
	int rc;
	/* The encoder's feature-map sizes: stage 0 keeps the size, later stages halve (3x3, stride 2,
	 * padding 1: s -> (s - 1) / 2 + 1). */
	int sh[MODEL_MAX_LAYERS], sw[MODEL_MAX_LAYERS];
	sh[0] = d->h;
	sw[0] = d->w;
	for (int i = 1; i < nch; i++) {
		sh[i] = (sh[i - 1] - 1) / 2 + 1;
		sw[i] = (sw[i - 1] - 1) / 2 + 1;
	}
	/* A transposed 3x3 stride-2 conv gives 2s - 1 + out_pad; one out_pad serves both axes. */
	for (int i = nch - 1; i >= 1; i--) {
		int ph = sh[i - 1] - (2 * sh[i] - 1), pw = sw[i - 1] - (2 * sw[i] - 1);
		if (ph != pw)
			return fail(err, errlen, -EINVAL,
			            "decoder: the conv decoder cannot restore a %dx%d image through %d "
			            "stages (height and width halve with different rounding); use "
			            "\"decoder\": \"mlp\"", d->h, d->w, nch);
		d->up_out_pad[nch - 1 - i] = ph;
	}
	d->batchnorm = enc->batchnorm;
	d->c0 = ch[nch - 1];
	d->h0 = sh[nch - 1];
	d->w0 = sw[nch - 1];
	snprintf(name, sizeof name, "%s.fc", prefix);
	if ((rc = linear_init(&d->fc, ps, name, d->latent, d->c0 * d->h0 * d->w0, !d->batchnorm,
	                      rng)) < 0)
		return rc;
	if (d->batchnorm) {
		snprintf(name, sizeof name, "%s.fc_bn", prefix);
		if ((rc = batchnorm_init(&d->fc_bn, ps, name, d->c0)) < 0)
			return rc;
	}
	d->n_up = nch - 1;
	for (int j = 0; j < d->n_up; j++) {
		int cin = ch[nch - 1 - j], cout = ch[nch - 2 - j];
		/* PyTorch's ConvTranspose2d init: fan_in is weight.size(1) * k * k = cout * 9. */
		float bound = 1.0f / sqrtf((float)(cout * 9));
		snprintf(name, sizeof name, "%s.up%d.weight", prefix, j);
		d->up_w[j] = paramset_add(ps, name, 4, (int[]){ cin, cout, 3, 3 }, PARAM_DECAY);
		if (!d->up_w[j])
			return paramset_find(ps, name) ? -EEXIST : -ENOMEM;
		fill_uniform(d->up_w[j], bound, rng);
		if (!d->batchnorm) {
			snprintf(name, sizeof name, "%s.up%d.bias", prefix, j);
			if (!(d->up_b[j] = paramset_add(ps, name, 1, (int[]){ cout }, 0)))
				return -ENOMEM;
			fill_uniform(d->up_b[j], bound, rng);
		} else {
			snprintf(name, sizeof name, "%s.bn%d", prefix, j);
			if ((rc = batchnorm_init(&d->up_bn[j], ps, name, cout)) < 0)
				return rc;
		}
	}
	snprintf(name, sizeof name, "%s.out", prefix);
	return conv2d_init(&d->out, ps, name, ch[0], d->c, 3, 1, 1, 1, rng);
}

int decoder_new(ParamSet *ps, const char *prefix, DecoderKind kind, const EncoderConfig *enc,
                int latent, int c, int h, int w, Rng *rng, Decoder **out, char *err, size_t errlen)
{
	if (latent <= 0 || c <= 0 || h <= 0 || w <= 0)
		return fail(err, errlen, -EINVAL, "decoder: latent %d and image (%d,%d,%d) must be positive",
		            latent, c, h, w);
	Decoder *d = eng_calloc(1, sizeof *d);
	if (!d)
		return fail(err, errlen, -ENOMEM, "decoder: out of memory");
	if (kind == DEC_AUTO)
		kind = enc->kind == ENC_CNN ? DEC_CONV : DEC_MLP;
	*d = (Decoder){ .kind = kind, .latent = latent, .c = c, .h = h, .w = w };
	err[0] = 0;
	int rc = kind == DEC_CONV ? build_conv(d, ps, prefix, enc, rng, err, errlen)
	                          : build_mlp(d, ps, prefix, enc, rng);
	if (rc < 0) {
		if (!err[0])
			fail(err, errlen, rc, "decoder: cannot build the %s decoder '%s': %s",
			     kind == DEC_CONV ? "conv" : "mlp", prefix, strerror(-rc));
		decoder_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void decoder_free(Decoder *d)
{
	if (!d)
		return;
	mlp_free(d->mlp);
	eng_free(d);
}

DecoderKind decoder_kind(const Decoder *d)
{
	return d->kind;
}

// z (B,L) -> logits (B,C,H,W)
Tensor *decoder_forward(Ctx *ctx, Decoder *d, Tensor *z)
{
	int B = z->shape[0];
	if (d->kind == DEC_MLP) {
		Tensor *y = mlp_forward(ctx, d->mlp, z);                     // (B, C*H*W)
		return op_reshape(ctx, y, 4, (int[]){ B, d->c, d->h, d->w });
	}
	Tensor *x = linear_forward(ctx, &d->fc, z);                      // (B, c0*h0*w0)
	x = op_reshape(ctx, x, 4, (int[]){ B, d->c0, d->h0, d->w0 });
	if (d->batchnorm)
		x = batchnorm_forward(ctx, &d->fc_bn, x);
	x = op_relu(ctx, x);
	for (int j = 0; j < d->n_up; j++) {
		x = op_conv_transpose2d(ctx, x, d->up_w[j], d->up_b[j], 2, 1, d->up_out_pad[j]);
		if (d->batchnorm)
			x = batchnorm_forward(ctx, &d->up_bn[j], x);
		x = op_relu(ctx, x);
	}
	return conv2d_forward(ctx, &d->out, x);                          // (B,C,H,W)
}

/* ---- encoder -> code -> decoder ---------------------------------------------------------------- */

#define PREDICT_BATCH 256

int codenet_init(CodeNet *n, ParamSet *ps, const EncoderConfig *enc, int in_c, int h, int w,
                 int latent, DecoderKind kind, int out_c, Rng *rng, const char *who, char *err,
                 size_t errlen)
{
	*n = (CodeNet){ .latent = latent, .in_c = in_c, .out_c = out_c, .h = h, .w = w };
	if (latent < 1)
		return fail(err, errlen, -EINVAL, "%s: latent_dim must be >= 1, got %d", who, latent);
	int rc = encoder_new(enc, ps, "encoder", in_c, h, w, rng, &n->encoder, err, errlen);
	if (rc < 0)
		return rc;
	int feat = encoder_out_dim(n->encoder);
	if (feat != latent) {
		if ((rc = linear_init(&n->bottleneck, ps, "bottleneck", feat, latent, 1, rng)) < 0) {
			fail(err, errlen, rc, "%s: cannot build the bottleneck %d -> %d", who, feat, latent);
			goto fail;
		}
		n->has_bottleneck = 1;
	}
	if (kind < DEC_AUTO || kind > DEC_CONV)
		kind = DEC_AUTO;
	if ((rc = decoder_new(ps, "decoder", kind, enc, latent, out_c, h, w, rng, &n->decoder, err,
	                      errlen)) < 0)
		goto fail;
	return 0;
fail:
	codenet_close(n);
	return rc;
}

void codenet_close(CodeNet *n)
{
	encoder_free(n->encoder);
	decoder_free(n->decoder);
	n->encoder = NULL;
	n->decoder = NULL;
}

Encoder *codenet_method_encoder(void *state)
{
	return ((CodeNet *)state)->encoder;
}

void codenet_method_destroy(void *state)
{
	if (!state)
		return;
	codenet_close(state);
	eng_free(state);
}

// x (B,in_c,H,W) -> code (B,latent)
Tensor *codenet_code(Ctx *ctx, CodeNet *n, Tensor *x)
{
	Tensor *f = encoder_forward(ctx, n->encoder, x);
	return n->has_bottleneck ? linear_forward(ctx, &n->bottleneck, f) : f;
}

// x (B,in_c,H,W) -> logits (B,out_c,H,W)
Tensor *codenet_forward(Ctx *ctx, CodeNet *n, Tensor *x)
{
	return decoder_forward(ctx, n->decoder, codenet_code(ctx, n, x));
}

void codenet_predict(Ctx *ctx, CodeNet *n, const float *in, int count, float *out)
{
	size_t per_in = (size_t)n->in_c * n->h * n->w, per_out = (size_t)n->out_c * n->h * n->w;
	for (int s = 0; s < count; s += PREDICT_BATCH) {
		int nb = count - s < PREDICT_BATCH ? count - s : PREDICT_BATCH;
		ctx_reset(ctx);
		Tensor *x = ctx_wrap(ctx, (float *)in + (size_t)s * per_in, 4,
		                     (int[]){ nb, n->in_c, n->h, n->w });
		Tensor *logits = codenet_forward(ctx, n, x);
		sigmoid_into(logits->data, out + (size_t)s * per_out, logits->size);
	}
}

/* ---- helpers ---------------------------------------------------------------------------------- */

EvalMode eval_mode_enter(Ctx *ctx)
{
	EvalMode m = { .training = ctx_training(ctx), .grad = ctx_set_grad_enabled(ctx, 0) };
	ctx_set_training(ctx, 0);
	return m;
}

void eval_mode_leave(Ctx *ctx, EvalMode m)
{
	ctx_set_training(ctx, m.training);
	ctx_set_grad_enabled(ctx, m.grad);
}

void sigmoid_into(const float *logits, float *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = 1.0f / (1.0f + expf(-logits[i]));
}

Tensor *normal_tensor(Ctx *ctx, int B, int L, Rng *rng)
{
	Tensor *e = ctx_tensor(ctx, 2, (int[]){ B, L });
	for (size_t i = 0; i < e->size; i++)
		e->data[i] = rng_normal(rng);
	return e;
}

double sq_err_sum(const float *a, const float *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++) {
		double e = (double)a[i] - (double)b[i];
		s += e * e;
	}
	return s;
}

static int artifact_path(char *path, size_t size, const char *dir, const char *name, char *err,
                         size_t errlen)
{
	int n = snprintf(path, size, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= size) {
		snprintf(err, errlen, "artifact path %s/%s is too long", dir, name);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* One of the two grids below: rows when rows is set, else images in cols columns. */
static int artifact_png(const char *dir, const char *name, const float *const *rows, int n_rows,
                        const float *images, int cols, int n, int c, int h, int w,
                        artifact_add_cb add, void *user, char *err, size_t errlen)
{
	char path[4096];
	int rc = artifact_path(path, sizeof path, dir, name, err, errlen);
	if (rc == 0)
		rc = rows ? png_grid_write_rows(path, rows, n_rows, n, c, h, w, 1, 0.0f, 1.0f, err, errlen)
		          : png_grid_write(path, images, n, c, h, w, cols, 1, 0.0f, 1.0f, err, errlen);
	if (rc == 0)
		add(user, name);
	return rc;
}

int artifact_png_rows(const char *dir, const char *name, const float *const *rows, int n_rows,
                      int n, int c, int h, int w, artifact_add_cb add, void *user, char *err,
                      size_t errlen)
{
	return artifact_png(dir, name, rows, n_rows, NULL, 0, n, c, h, w, add, user, err, errlen);
}

int artifact_png_grid(const char *dir, const char *name, const float *images, int n, int cols,
                      int c, int h, int w, artifact_add_cb add, void *user, char *err,
                      size_t errlen)
{
	return artifact_png(dir, name, NULL, 0, images, cols, n, c, h, w, add, user, err, errlen);
}
