/* model.c - the generic part of the encoders (engine/encoders/ holds one file per encoder and
 * their registry) and the MLP heads: config defaults, the common checks, the optional projection
 * to out_dim, dispatch through the descriptor, and a JSON form of the config.
 *
 * It deliberately does not train, choose losses or know about methods; it builds networks and runs
 * them forward. python/ssld_torch.py rebuilds the MLP and CNN encoders in PyTorch and loads their
 * weights by name, so the architectures (described at the top of each encoder file) are a
 * contract: change them only together with that file.
 *
 * Every Linear/Conv2d directly followed by BatchNorm has no bias, as in ResNet/SimCLR; BN: eps
 * 1e-5, momentum 0.1. P = the prefix given to encoder_new, usually "encoder". An encoder without
 * own_out_dim gets P.fc Linear(features, out_dim) when out_dim > 0.
 * The Mlp head (mlp_new) is the mlp encoder with hidden = dims[1..n-2] and out_dim = dims[n-1]:
 * P.fc<i> / P.bn<i>, BN+ReLU after every layer but the last.
 * Dropout (config.dropout) applies only inside the ViT/Transformer blocks and after the token
 * embedding.
 */
#include "model.h"
#include "encoders/encoder.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "export_onnx.h"
#include "layers.h"
#include "ops.h"

/* ---------------------------------------------------------------------------------------------- */
/* Mlp */

struct Mlp {
	Linear *fc;       /* n_layers */
	BatchNorm *bn;    /* n_layers (only the first n_layers-1, or all with final_act, are used) */
	int n_layers;
	int batchnorm;
	int final_act;    /* BN+ReLU after the last layer too (mlp encoder with out_dim 0) */
	int in_dim, out_dim;
};

/* dims[0] -> ... -> dims[n-1]; n >= 2. Negative errno on failure (*out untouched). */
int mlp_build(ParamSet *ps, const char *prefix, const int *dims, int n, int batchnorm,
              int final_act, Rng *rng, Mlp **out)
{
	if (n < 2)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		if (dims[i] <= 0)
			return -EINVAL;
	Mlp *m = eng_calloc(1, sizeof *m);
	if (!m)
		return -ENOMEM;
	m->n_layers = n - 1;
	m->batchnorm = batchnorm;
	m->final_act = final_act;
	m->in_dim = dims[0];
	m->out_dim = dims[n - 1];
	m->fc = eng_calloc((size_t)m->n_layers, sizeof *m->fc);
	m->bn = eng_calloc((size_t)m->n_layers, sizeof *m->bn);
	int rc = 0;
	if (!m->fc || !m->bn) {
		rc = -ENOMEM;
		goto err;
	}
	for (int i = 0; i < m->n_layers; i++) {
		char name[LAYER_NAME_MAX];
		int act = i < m->n_layers - 1 || final_act;
		int with_bn = act && batchnorm;
		int k = snprintf(name, sizeof name, "%s.fc%d", prefix, i);
		if (k < 0 || (size_t)k >= sizeof name) {
			rc = -ENAMETOOLONG;
			goto err;
		}
		if ((rc = linear_init(&m->fc[i], ps, name, dims[i], dims[i + 1], !with_bn, rng)) < 0)
			goto err;
		if (with_bn) {
			snprintf(name, sizeof name, "%s.bn%d", prefix, i);
			if ((rc = batchnorm_init(&m->bn[i], ps, name, dims[i + 1])) < 0)
				goto err;
		}
	}
	*out = m;
	return 0;
err:
	mlp_free(m);
	return rc;
}

int mlp_new(ParamSet *ps, const char *prefix, const int *dims, int n, int batchnorm, Rng *rng,
            Mlp **out)
{
	return mlp_build(ps, prefix, dims, n, batchnorm, 0, rng, out);
}

void mlp_free(Mlp *m)
{
	if (!m)
		return;
	eng_free(m->fc);
	eng_free(m->bn);
	eng_free(m);
}

// x (B,dims[0]) or (B,C,H,W) with C*H*W = dims[0] -> (B, dims[n-1])
Tensor *mlp_forward(Ctx *ctx, Mlp *m, Tensor *x)
{
	if (x->ndim != 2)
		x = op_reshape(ctx, x, 2, (int[]){ x->shape[0], -1 });
	for (int i = 0; i < m->n_layers; i++) {
		x = linear_forward(ctx, &m->fc[i], x);
		if (i < m->n_layers - 1 || m->final_act)
			x = m->batchnorm ? batchnorm_relu_forward(ctx, &m->bn[i], x) : op_relu(ctx, x);
	}
	return x;
}

// x (N, ...) -> (N, out): mlp_forward as ONNX nodes (eval mode)
const char *mlp_export_onnx(OnnxGraph *g, const Mlp *m, const char *x)
{
	x = onnx_flatten(g, x);
	for (int i = 0; i < m->n_layers; i++) {
		x = onnx_linear(g, &m->fc[i], x);
		if (i < m->n_layers - 1 || m->final_act) {
			if (m->batchnorm)
				x = onnx_batchnorm(g, &m->bn[i], x);
			x = onnx_relu(g, x);
		}
	}
	return x;
}

/* ---------------------------------------------------------------------------------------------- */
/* Config */

/* Every field its documented default: the keys of every encoder (so a config read by another
 * encoder, a decoder or the JSON form holds sensible values), then kind's own keys again (out_dim
 * differs between mlp and cnn) and the fields that are not keys. */
void encoder_config_default(EncoderConfig *c, EncoderKind kind)
{
	memset(c, 0, sizeof *c);
	for (int i = 0; i <= encoder_count(); i++) {
		const EncoderDesc *d = encoder_desc(i < encoder_count() ? (EncoderKind)i : kind);
		for (int k = 0; d && k < d->n_keys; k++)
			param_store_default(&d->keys[k], c);
		if (d && d->fill_defaults)
			d->fill_defaults(c);
	}
	for (int k = 0; k < encoder_common_key_count; k++)
		param_store_default(&encoder_common_keys[k], c);
	c->kind = kind;
}

static int append(char *buf, size_t len, size_t *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(*o < len ? buf + *o : NULL, *o < len ? len - *o : 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	*o += (size_t)n;
	return 0;
}

static void append_ints(char *buf, size_t len, size_t *o, const char *key, const int *v, int n)
{
	append(buf, len, o, "\"%s\":[", key);
	for (int i = 0; i < n; i++)
		append(buf, len, o, i ? ",%d" : "%d", v[i]);
	append(buf, len, o, "],");
}

/* 1 when the descriptor has a key of that name. */
static int has_key(const EncoderDesc *d, const char *name)
{
	for (int k = 0; k < d->n_keys; k++)
		if (strcmp(d->keys[k].name, name) == 0)
			return 1;
	return 0;
}

int encoder_config_to_json(const EncoderConfig *c, char *buf, size_t len)
{
	size_t o = 0;
	int nh = c->n_hidden < 0 ? 0 : c->n_hidden > MODEL_MAX_LAYERS ? MODEL_MAX_LAYERS : c->n_hidden;
	int nc = c->n_channels < 0 ? 0 : c->n_channels > MODEL_MAX_LAYERS ? MODEL_MAX_LAYERS : c->n_channels;
	append(buf, len, &o, "{\"kind\":\"%s\",", encoder_kind_name(c->kind));
	append_ints(buf, len, &o, "hidden", c->hidden, nh);
	append_ints(buf, len, &o, "channels", c->channels, nc);
	if (c->n_strides > 0) /* only when set, so default configs read as before */
		append_ints(buf, len, &o, "strides", c->strides,
		            c->n_strides > MODEL_MAX_LAYERS ? MODEL_MAX_LAYERS : c->n_strides);
	if (c->pool_grid > 1) /* likewise */
		append(buf, len, &o, "\"pool_grid\":%d,", c->pool_grid);
	if (c->in_norm) /* likewise: only colour images are normalised */
		append(buf, len, &o, "\"input_mean\":[%.7g,%.7g,%.7g],\"input_std\":[%.7g,%.7g,%.7g],",
		       (double)c->in_mean[0], (double)c->in_mean[1], (double)c->in_mean[2],
		       (double)c->in_std[0], (double)c->in_std[1], (double)c->in_std[2]);
	const EncoderDesc *d = encoder_desc(c->kind);
	if (d && has_key(d, "stem")) /* only for the encoders that take them (the resnets) */
		append(buf, len, &o, "\"stem\":\"%s\",\"width\":%.7g,", c->stem ? "imagenet" : "cifar",
		       (double)c->width);
	append(buf, len, &o,
	       "\"batchnorm\":%s,\"out_dim\":%d,\"dim\":%d,\"depth\":%d,\"heads\":%d,\"mlp_ratio\":%d,"
	       "\"patch\":%d,\"context\":%d,\"vocab\":%d,\"causal\":%s,\"pool\":\"%s\",\"dropout\":%.9g}",
	       c->batchnorm ? "true" : "false", c->out_dim, c->dim, c->depth, c->heads, c->mlp_ratio,
	       c->patch, c->context, c->vocab, c->causal ? "true" : "false", c->pool ? "cls" : "mean",
	       (double)c->dropout);
	if (o >= len)
		return -ENOSPC;
	return (int)o;
}

/* ---------------------------------------------------------------------------------------------- */
/* Validation */

int encoder_fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int encoder_check_range(int v, int lo, int hi, const char *field, char *err, size_t errlen)
{
	if (v < lo || v > hi)
		return encoder_fail(err, errlen, "model.%s: %d must be in [%d, %d]", field, v, lo, hi);
	return 0;
}

int encoder_check_blocks(const EncoderConfig *c, char *err, size_t errlen)
{
	int rc = encoder_check_range(c->dim, 1, 8192, "dim", err, errlen);
	if (rc == 0)
		rc = encoder_check_range(c->depth, 1, 64, "depth", err, errlen);
	if (rc == 0)
		rc = encoder_check_range(c->heads, 1, 256, "heads", err, errlen);
	if (rc < 0)
		return rc;
	if (c->dim % c->heads != 0)
		return encoder_fail(err, errlen, "model.heads: %d does not divide model.dim %d", c->heads,
		                    c->dim);
	if ((rc = encoder_check_range(c->mlp_ratio, 1, 16, "mlp_ratio", err, errlen)) < 0)
		return rc;
	if (c->pool != 0 && c->pool != 1)
		return encoder_fail(err, errlen, "model.pool: %d must be 0 (mean) or 1 (cls)", c->pool);
	return 0;
}

int encoder_config_check_keys(const EncoderConfig *c, char *err, size_t errlen)
{
	const EncoderDesc *d = encoder_desc(c->kind);
	if (!d)
		return encoder_fail(err, errlen, "model.kind: unknown encoder kind %d", (int)c->kind);
	if (c->batchnorm != 0 && c->batchnorm != 1)
		return encoder_fail(err, errlen, "model.batchnorm: %d must be 0 or 1", c->batchnorm);
	int rc = encoder_check_range(c->out_dim, 0, 65536, "out_dim", err, errlen);
	if (rc < 0)
		return rc;
	if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
		return encoder_fail(err, errlen, "model.dropout: %g must be in [0, 1)", (double)c->dropout);
	return d->check ? d->check(c, err, errlen) : 0;
}

int encoder_config_check(const EncoderConfig *c, int in_c, int in_h, int in_w, char *err,
                         size_t errlen)
{
	if (!encoder_desc(c->kind))
		return encoder_fail(err, errlen, "model.kind: unknown encoder kind %d", (int)c->kind);
	if (in_c <= 0 || in_h <= 0 || in_w <= 0)
		return encoder_fail(err, errlen, "model: input sample shape (%d,%d,%d) is not positive",
		                    in_c, in_h, in_w);
	int rc = encoder_config_check_keys(c, err, errlen);
	if (rc < 0)
		return rc;
	const EncoderDesc *d = encoder_desc(c->kind);
	return d->check_input ? d->check_input(c, in_c, in_h, in_w, err, errlen) : 0;
}

void encoder_estimate_blocks(const EncoderConfig *c, int64_t T, int64_t *params, int64_t *acts)
{
	int64_t d = c->dim, r = c->mlp_ratio;
	int64_t per = 4 * d * d + 4 * d          /* qkv + out projection */
	              + 2 * d * d * r + d * r + d /* mlp */
	              + 4 * d;                    /* two layer norms */
	*params += c->depth * per + 2 * d;        /* + the final norm */
	*acts += c->depth * ((10 + 2 * r) * T * d + 2 * (int64_t)c->heads * T * T);
}

void encoder_estimate(const EncoderConfig *c, int in_c, int in_h, int in_w, int64_t *params,
                      int64_t *act_floats)
{
	*params = 0;
	*act_floats = 0;
	const EncoderDesc *d = encoder_desc(c->kind);
	if (!d)
		return;
	int64_t feat = d->estimate ? d->estimate(c, in_c, in_h, in_w, params, act_floats) : 0;
	if (!d->own_out_dim && c->out_dim > 0) {   /* the projection after the features */
		*params += feat * c->out_dim + c->out_dim;
		*act_floats += c->out_dim;
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* Encoder */

int encoder_new(const EncoderConfig *c, ParamSet *ps, const char *prefix, int in_c, int in_h,
                int in_w, Rng *rng, Encoder **out, char *err, size_t errlen)
{
	int rc = encoder_config_check(c, in_c, in_h, in_w, err, errlen);
	if (rc < 0)
		return rc;
	if (strlen(prefix) > LAYER_NAME_MAX - 64)
		return encoder_fail(err, errlen, "model: parameter prefix '%.40s...' is too long", prefix);
	const EncoderDesc *d = encoder_desc(c->kind);
	Encoder *e = eng_calloc(1, sizeof *e);
	if (!e) {
		encoder_fail(err, errlen, "model: out of memory creating the %s encoder", d->name);
		return -ENOMEM;
	}
	e->cfg = *c;
	e->desc = d;
	e->in_c = in_c;
	e->in_h = in_h;
	e->in_w = in_w;
	rc = d->build(e, ps, prefix, rng);
	if (rc == 0 && !d->own_out_dim && c->out_dim > 0) {
		char name[LAYER_NAME_MAX];
		snprintf(name, sizeof name, "%s.fc", prefix);
		rc = linear_init(&e->fc, ps, name, e->out_dim, c->out_dim, 1, rng);
		e->has_fc = 1;
		e->out_dim = c->out_dim;
	}
	if (rc < 0) {
		if (rc == -EEXIST)
			encoder_fail(err, errlen, "model: parameters under '%s' already exist in the "
			             "parameter set", prefix);
		else
			encoder_fail(err, errlen, "model: cannot create the %s encoder '%s': %s", d->name,
			             prefix, strerror(-rc));
		encoder_free(e);
		return rc;
	}
	*out = e;
	return 0;
}

void encoder_free(Encoder *e)
{
	if (!e)
		return;
	if (e->desc && e->desc->destroy)
		e->desc->destroy(e->state);
	eng_free(e);
}

int encoder_out_dim(const Encoder *e) { return e->out_dim; }
const EncoderConfig *encoder_config(const Encoder *e) { return &e->cfg; }

int encoder_n_patches(const Encoder *e)
{
	return e->desc->n_patches ? e->desc->n_patches(e) : 0;
}

struct Transformer *encoder_transformer(Encoder *e)
{
	return e->desc->transformer ? e->desc->transformer(e) : NULL;
}

static void wrong_kind(const Encoder *e, const char *fn)
{
	fprintf(stderr, "ssld engine: %s called on a %s encoder\n", fn, e->desc->name);
	abort();
}

// tokens (B,T,D) -> (B,D)
Tensor *encoder_pool_tokens(Ctx *ctx, const Encoder *e, Tensor *t)
{
	if (e->cfg.pool == 1) {
		t = op_slice(ctx, t, 1, 0, 1);
		return op_reshape(ctx, t, 2, (int[]){ t->shape[0], t->shape[2] });
	}
	return op_mean(ctx, t, 1, 0);
}

/* The config's input normalisation of a (B,3,H,W) batch, into a fresh tensor (the caller's is
 * left alone). A constant affine map of the input: no tape node, as nothing takes gradients with
 * respect to the pixels through it. Other inputs pass through. */
// x (B,3,H,W) -> (B,3,H,W)
static Tensor *normalize_input(Ctx *ctx, const Encoder *e, Tensor *x)
{
	const EncoderConfig *c = &e->cfg;
	if (!c->in_norm || x->ndim != 4 || x->shape[1] != 3)
		return x;
	Tensor *y = ctx_tensor(ctx, 4, x->shape);
	size_t hw = (size_t)x->shape[2] * x->shape[3];
	for (int b = 0; b < x->shape[0]; b++)
		for (int ch = 0; ch < 3; ch++) {
			const float *s = x->data + ((size_t)b * 3 + ch) * hw;
			float *d = y->data + ((size_t)b * 3 + ch) * hw, m = c->in_mean[ch];
			float inv = 1.0f / c->in_std[ch];
			for (size_t i = 0; i < hw; i++)
				d[i] = (s[i] - m) * inv;
		}
	return y;
}

// x (B,C,H,W) -> (B, n(+1), dim)
Tensor *encoder_forward_patches(Ctx *ctx, Encoder *e, Tensor *x, const int *keep, int n_keep)
{
	if (!e->desc->forward_patches)
		wrong_kind(e, "encoder_forward_patches");
	return e->desc->forward_patches(ctx, e, normalize_input(ctx, e, x), keep, n_keep);
}

// ids (B*T) -> (B,T,dim)
Tensor *encoder_forward_tokens(Ctx *ctx, Encoder *e, const int *ids, int B, int T)
{
	if (!e->desc->forward_tokens)
		wrong_kind(e, "encoder_forward_tokens");
	return e->desc->forward_tokens(ctx, e, ids, B, T);
}

// x (B,C,H,W) or (B,D); for a transformer, token ids stored as floats (B,T) or (B,1,1,T)
Tensor *encoder_forward(Ctx *ctx, Encoder *e, Tensor *x)
{
	Tensor *f = e->desc->forward(ctx, e, normalize_input(ctx, e, x));
	if (e->has_fc)
		f = linear_forward(ctx, &e->fc, f);
	return f;
}
