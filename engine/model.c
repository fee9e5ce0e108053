/* model.c - configurable encoders (MLP, small CNN, ViT-tiny, token Transformer) and MLP heads,
 * composed from layers.h, with config defaults, validation and a JSON form of the config.
 *
 * It deliberately does not train, choose losses or know about methods; it builds networks and runs
 * them forward. python/ssld_torch.py rebuilds the MLP and CNN encoders in PyTorch and loads their
 * weights by name, so the architecture below is a contract: change it only together with that file.
 *
 * Architectures (P = the prefix given to encoder_new, usually "encoder"; every Linear/Conv2d
 * directly followed by BatchNorm has no bias, as in ResNet/SimCLR; BN: eps 1e-5, momentum 0.1):
 *
 *   mlp  x (B,C,H,W) or (B,D) is flattened to (B, D0 = C*H*W), then for i < n_hidden:
 *          P.fc<i>  Linear(D_i, hidden[i], bias = !batchnorm)
 *          P.bn<i>  BatchNorm1d(hidden[i])            (when batchnorm)
 *          ReLU
 *        then, when out_dim > 0, P.fc<n_hidden> Linear(hidden[last], out_dim, bias) -> (B,out_dim);
 *        with out_dim 0 the features are the last hidden activation.
 *   cnn  x (B,C,H,W); for each stage i < n_channels:
 *          P.conv<i> Conv2d(C_i, channels[i], 3x3, stride 1 for i = 0 else 2, padding 1,
 *                    bias = !batchnorm); with `strides` set, stride strides[i] instead
 *          P.bn<i>   BatchNorm2d(channels[i])         (when batchnorm)
 *          ReLU
 *        global average pooling -> (B, channels[last]), or with pool_grid g > 1 adaptive average
 *        pooling to g x g cells flattened (C, gy, gx) -> (B, channels[last] * g * g) (a 7x7 map
 *        and g 2: windows rows/cols 0-3 and 3-6); when out_dim > 0, P.fc Linear(., out_dim).
 *        Default {32,64,128} on 28x28: (32,28,28) -> (64,14,14) -> (128,7,7) -> 128 features.
 *   vit  P.patch_embed.proj Conv2d(C, dim, patch x patch, stride patch, bias), tokens row-major
 *        over the patch grid, P.pos_embed (1, cls + N, dim) added, P.cls_token (1,1,dim) first
 *        when pool = 1; depth pre-LN blocks P.blocks.<i> (norm1, attn.qkv, attn.proj, norm2,
 *        mlp.fc1, mlp.fc2; GELU tanh); final LayerNorm P.norm; features = mean over tokens
 *        (pool 0) or the CLS token (pool 1); optional P.fc Linear(dim, out_dim).
 *   transformer  P.wte Embedding(vocab, dim), P.wpe (context, dim), blocks P.blocks.<i> as above
 *        (causal attention when causal), P.norm; encoder_forward_tokens returns (B,T,dim);
 *        encoder_forward pools like vit (pool 1 = the first token) and applies the optional P.fc.
 * The Mlp head (mlp_new) is the mlp encoder with hidden = dims[1..n-2] and out_dim = dims[n-1]:
 * P.fc<i> / P.bn<i>, BN+ReLU after every layer but the last.
 * Dropout (config.dropout) applies only inside the ViT/Transformer blocks and after the token
 * embedding.
 */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
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
static int mlp_build(ParamSet *ps, const char *prefix, const int *dims, int n, int batchnorm,
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

/* ---------------------------------------------------------------------------------------------- */
/* Config */

static const char *const kind_names[] = { [ENC_MLP] = "mlp", [ENC_CNN] = "cnn", [ENC_VIT] = "vit",
                                          [ENC_TRANSFORMER] = "transformer" };

const char *encoder_kind_name(EncoderKind kind)
{
	if ((int)kind < 0 || (size_t)kind >= sizeof kind_names / sizeof kind_names[0])
		return "unknown";
	return kind_names[kind];
}

int encoder_kind_parse(const char *name, EncoderKind *out)
{
	for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++) {
		if (strcmp(name, kind_names[i]) == 0) {
			*out = (EncoderKind)i;
			return 0;
		}
	}
	return -EINVAL;
}

void encoder_config_default(EncoderConfig *c, EncoderKind kind)
{
	memset(c, 0, sizeof *c);
	c->kind = kind;
	c->hidden[0] = 1024;
	c->hidden[1] = 1024;
	c->n_hidden = 2;
	c->channels[0] = 32;
	c->channels[1] = 64;
	c->channels[2] = 128;
	c->n_channels = 3;
	c->batchnorm = 1;
	c->out_dim = kind == ENC_MLP ? 128 : 0;
	c->dim = 128;
	c->depth = 4;
	c->heads = 4;
	c->mlp_ratio = 4;
	c->patch = 4;
	c->context = 128;
	c->vocab = 256;
	c->causal = 0;
	c->pool = 0;
	c->pool_grid = 1;
	c->dropout = 0.0f;
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

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

#define CHECK_RANGE(val, lo, hi, field)                                                          \
	do {                                                                                         \
		if ((val) < (lo) || (val) > (hi))                                                        \
			return fail(err, errlen, "model.%s: %d must be in [%d, %d]", field, (int)(val),    \
			            (int)(lo), (int)(hi));                                                  \
	} while (0)

/* The stride of CNN stage i: model.strides when given, else 1 for the first stage and 2 after. */
static int cnn_stride(const EncoderConfig *c, int i)
{
	return c->n_strides > 0 ? c->strides[i] : i == 0 ? 1 : 2;
}

/* The CNN's last feature map size (fh, fw) for an in_h x in_w input, and the k x k, stride s
 * average pooling that equals adaptive pooling to pool_grid x pool_grid cells: adaptive cell i
 * spans [floor(i*H/g), ceil((i+1)*H/g)), an ordinary pooling when every cell has the same size
 * and step. -1 when it is not one (or the map is not square or smaller than the grid). */
static int cnn_grid_window(const EncoderConfig *c, int in_h, int in_w, int *fh, int *fw, int *k,
                           int *s)
{
	int h = in_h, w = in_w, g = c->pool_grid;
	for (int i = 0; i < c->n_channels; i++) {
		int stride = cnn_stride(c, i);
		h = (h - 1) / stride + 1;   /* 3x3, padding 1 */
		w = (w - 1) / stride + 1;
	}
	*fh = h;
	*fw = w;
	if (g < 1 || h != w || h < g)
		return -1;
	*k = (h + g - 1) / g;
	*s = h / g;
	for (int i = 0; i < g; i++)
		if (i * h / g != i * *s || ((i + 1) * h + g - 1) / g != i * *s + *k)
			return -1;
	return 0;
}

int encoder_config_check(const EncoderConfig *c, int in_c, int in_h, int in_w, char *err,
                         size_t errlen)
{
	if ((int)c->kind < ENC_MLP || c->kind > ENC_TRANSFORMER)
		return fail(err, errlen, "model.kind: unknown encoder kind %d", (int)c->kind);
	if (in_c <= 0 || in_h <= 0 || in_w <= 0)
		return fail(err, errlen, "model: input sample shape (%d,%d,%d) is not positive", in_c,
		            in_h, in_w);
	if (c->batchnorm != 0 && c->batchnorm != 1)
		return fail(err, errlen, "model.batchnorm: %d must be 0 or 1", c->batchnorm);
	CHECK_RANGE(c->out_dim, 0, 65536, "out_dim");
	if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
		return fail(err, errlen, "model.dropout: %g must be in [0, 1)", (double)c->dropout);
	switch (c->kind) {
	case ENC_MLP:
		CHECK_RANGE(c->n_hidden, 0, MODEL_MAX_LAYERS, "hidden (number of layers)");
		for (int i = 0; i < c->n_hidden; i++) {
			if (c->hidden[i] < 1 || c->hidden[i] > 65536)
				return fail(err, errlen, "model.hidden[%d]: %d must be in [1, 65536]", i,
				            c->hidden[i]);
		}
		if (c->n_hidden == 0 && c->out_dim == 0)
			return fail(err, errlen, "model.out_dim: an MLP with no hidden layers needs out_dim > 0");
		break;
	case ENC_CNN:
		CHECK_RANGE(c->n_channels, 1, MODEL_MAX_LAYERS, "channels (number of stages)");
		for (int i = 0; i < c->n_channels; i++) {
			if (c->channels[i] < 1 || c->channels[i] > 4096)
				return fail(err, errlen, "model.channels[%d]: %d must be in [1, 4096]", i,
				            c->channels[i]);
		}
		if (c->n_strides != 0 && c->n_strides != c->n_channels)
			return fail(err, errlen, "model.strides: %d entries for %d conv stages (give one "
			            "per stage, or none for the default 1,2,2,...)", c->n_strides,
			            c->n_channels);
		for (int i = 0; i < c->n_strides; i++) {
			if (c->strides[i] < 1 || c->strides[i] > 4)
				return fail(err, errlen, "model.strides[%d]: %d must be in [1, 4]", i,
				            c->strides[i]);
		}
		if (c->pool_grid < 0 || c->pool_grid > 8)
			return fail(err, errlen, "model.pool_grid: %d must be in [0, 8]", c->pool_grid);
		if (c->pool_grid > 1) {
			int fh, fw, k, s;
			if (cnn_grid_window(c, in_h, in_w, &fh, &fw, &k, &s) < 0)
				return fail(err, errlen, "model.pool_grid: %d does not split the last %dx%d "
				            "feature map into equal cells (1, global pooling, always does)",
				            c->pool_grid, fh, fw);
		}
		break;
	case ENC_VIT:
	case ENC_TRANSFORMER:
		CHECK_RANGE(c->dim, 1, 8192, "dim");
		CHECK_RANGE(c->depth, 1, 64, "depth");
		CHECK_RANGE(c->heads, 1, 256, "heads");
		if (c->dim % c->heads != 0)
			return fail(err, errlen, "model.heads: %d does not divide model.dim %d", c->heads,
			            c->dim);
		CHECK_RANGE(c->mlp_ratio, 1, 16, "mlp_ratio");
		if (c->pool != 0 && c->pool != 1)
			return fail(err, errlen, "model.pool: %d must be 0 (mean) or 1 (cls)", c->pool);
		if (c->kind == ENC_VIT) {
			CHECK_RANGE(c->patch, 1, in_h < in_w ? in_h : in_w, "patch");
			if (in_h % c->patch != 0)
				return fail(err, errlen, "model.patch: %d does not divide the image height %d",
				            c->patch, in_h);
			if (in_w % c->patch != 0)
				return fail(err, errlen, "model.patch: %d does not divide the image width %d",
				            c->patch, in_w);
		} else {
			CHECK_RANGE(c->vocab, 2, 1 << 20, "vocab");
			CHECK_RANGE(c->context, 1, 1 << 16, "context");
			if (c->causal != 0 && c->causal != 1)
				return fail(err, errlen, "model.causal: %d must be 0 or 1", c->causal);
			if (in_w > 1 && in_w > c->context)
				return fail(err, errlen,
				            "model.context: %d is shorter than the sample length %d", c->context,
				            in_w);
		}
		break;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Encoder */

struct Encoder {
	EncoderConfig cfg;
	int in_c, in_h, in_w;
	int out_dim;
	Mlp *mlp;                            /* mlp */
	Conv2d conv[MODEL_MAX_LAYERS];       /* cnn */
	BatchNorm bn[MODEL_MAX_LAYERS];
	PatchEmbed pe;                       /* vit */
	Block *blocks;
	LayerNorm norm;
	Transformer tf;                      /* transformer */
	Linear fc;                           /* cnn / vit / transformer projection when out_dim > 0 */
	int has_fc;
	int grid_k, grid_stride;             /* cnn with pool_grid > 1: the pooling window */
};

static int build_cnn(Encoder *e, ParamSet *ps, const char *prefix, Rng *rng)
{
	const EncoderConfig *c = &e->cfg;
	int cin = e->in_c, rc;
	for (int i = 0; i < c->n_channels; i++) {
		char name[LAYER_NAME_MAX];
		snprintf(name, sizeof name, "%s.conv%d", prefix, i);
		int stride = cnn_stride(c, i);
		rc = conv2d_init(&e->conv[i], ps, name, cin, c->channels[i], 3, stride, 1,
		                 !c->batchnorm, rng);
		if (rc < 0)
			return rc;
		if (c->batchnorm) {
			snprintf(name, sizeof name, "%s.bn%d", prefix, i);
			if ((rc = batchnorm_init(&e->bn[i], ps, name, c->channels[i])) < 0)
				return rc;
		}
		cin = c->channels[i];
	}
	e->out_dim = cin;
	if (c->pool_grid > 1) {   /* encoder_config_check() checked the window exists */
		int fh, fw;
		if (cnn_grid_window(c, e->in_h, e->in_w, &fh, &fw, &e->grid_k, &e->grid_stride) < 0)
			return -EINVAL;
		e->out_dim = cin * c->pool_grid * c->pool_grid;
	}
	return 0;
}

static int build_vit(Encoder *e, ParamSet *ps, const char *prefix, Rng *rng)
{
	const EncoderConfig *c = &e->cfg;
	char name[LAYER_NAME_MAX];
	int rc = patch_embed_init(&e->pe, ps, prefix, e->in_c, e->in_h, e->in_w, c->patch, c->dim,
	                          c->pool == 1, rng);
	if (rc < 0)
		return rc;
	e->blocks = eng_calloc((size_t)c->depth, sizeof *e->blocks);
	if (!e->blocks)
		return -ENOMEM;
	for (int i = 0; i < c->depth; i++) {
		snprintf(name, sizeof name, "%s.blocks.%d", prefix, i);
		rc = block_init(&e->blocks[i], ps, name, c->dim, c->heads, c->mlp_ratio, 0, c->dropout,
		                rng);
		if (rc < 0)
			return rc;
	}
	snprintf(name, sizeof name, "%s.norm", prefix);
	if ((rc = layernorm_init(&e->norm, ps, name, c->dim)) < 0)
		return rc;
	e->out_dim = c->dim;
	return 0;
}

int encoder_new(const EncoderConfig *c, ParamSet *ps, const char *prefix, int in_c, int in_h,
                int in_w, Rng *rng, Encoder **out, char *err, size_t errlen)
{
	int rc = encoder_config_check(c, in_c, in_h, in_w, err, errlen);
	if (rc < 0)
		return rc;
	if (strlen(prefix) > LAYER_NAME_MAX - 64)
		return fail(err, errlen, "model: parameter prefix '%.40s...' is too long", prefix);
	Encoder *e = eng_calloc(1, sizeof *e);
	if (!e) {
		fail(err, errlen, "model: out of memory creating the %s encoder",
		     encoder_kind_name(c->kind));
		return -ENOMEM;
	}
	e->cfg = *c;
	e->in_c = in_c;
	e->in_h = in_h;
	e->in_w = in_w;
	switch (c->kind) {
	case ENC_MLP: {
		int dims[MODEL_MAX_LAYERS + 2], n = 0;
		dims[n++] = in_c * in_h * in_w;
		for (int i = 0; i < c->n_hidden; i++)
			dims[n++] = c->hidden[i];
		if (c->out_dim > 0)
			dims[n++] = c->out_dim;
		rc = mlp_build(ps, prefix, dims, n, c->batchnorm, c->out_dim == 0, rng, &e->mlp);
		e->out_dim = dims[n - 1];
		break;
	}
	case ENC_CNN:
		rc = build_cnn(e, ps, prefix, rng);
		break;
	case ENC_VIT:
		rc = build_vit(e, ps, prefix, rng);
		break;
	case ENC_TRANSFORMER:
		rc = transformer_init(&e->tf, ps, prefix, c->vocab, c->context, c->dim, c->depth,
		                      c->heads, c->mlp_ratio, c->causal, c->dropout, rng);
		e->out_dim = c->dim;
		break;
	}
	if (rc == 0 && c->kind != ENC_MLP && c->out_dim > 0) {
		char name[LAYER_NAME_MAX];
		snprintf(name, sizeof name, "%s.fc", prefix);
		rc = linear_init(&e->fc, ps, name, e->out_dim, c->out_dim, 1, rng);
		e->has_fc = 1;
		e->out_dim = c->out_dim;
	}
	if (rc < 0) {
		if (rc == -EEXIST)
			fail(err, errlen, "model: parameters under '%s' already exist in the parameter set",
			     prefix);
		else
			fail(err, errlen, "model: cannot create the %s encoder '%s': %s",
			     encoder_kind_name(c->kind), prefix, strerror(-rc));
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
	mlp_free(e->mlp);
	eng_free(e->blocks);
	transformer_close(&e->tf);
	eng_free(e);
}

int encoder_out_dim(const Encoder *e) { return e->out_dim; }
const EncoderConfig *encoder_config(const Encoder *e) { return &e->cfg; }

int encoder_n_patches(const Encoder *e)
{
	return e->cfg.kind == ENC_VIT ? e->pe.n_patches : 0;
}

struct Transformer *encoder_transformer(Encoder *e)
{
	return e->cfg.kind == ENC_TRANSFORMER ? &e->tf : NULL;
}

static void wrong_kind(const Encoder *e, const char *fn)
{
	fprintf(stderr, "ssld engine: %s called on a %s encoder\n", fn, encoder_kind_name(e->cfg.kind));
	abort();
}

// tokens (B,T,D) -> (B,D)
static Tensor *pool_tokens(Ctx *ctx, const Encoder *e, Tensor *t)
{
	if (e->cfg.pool == 1) {
		t = op_slice(ctx, t, 1, 0, 1);
		return op_reshape(ctx, t, 2, (int[]){ t->shape[0], t->shape[2] });
	}
	return op_mean(ctx, t, 1, 0);
}

// x (B,C,H,W) -> (B, channels[last])
static Tensor *cnn_forward(Ctx *ctx, Encoder *e, Tensor *x)
{
	for (int i = 0; i < e->cfg.n_channels; i++) {
		x = conv2d_forward(ctx, &e->conv[i], x);
		x = e->cfg.batchnorm ? batchnorm_relu_forward(ctx, &e->bn[i], x) : op_relu(ctx, x);
	}
	if (e->cfg.pool_grid > 1) {
		x = op_avgpool2d(ctx, x, e->grid_k, e->grid_stride);
		return op_reshape(ctx, x, 2, (int[]){ x->shape[0], e->out_dim });
	}
	return op_global_avgpool(ctx, x);
}

// x (B,C,H,W) -> (B, n(+1), dim)
Tensor *encoder_forward_patches(Ctx *ctx, Encoder *e, Tensor *x, const int *keep, int n_keep)
{
	if (e->cfg.kind != ENC_VIT)
		wrong_kind(e, "encoder_forward_patches");
	if (x->ndim == 2)
		x = op_reshape(ctx, x, 4, (int[]){ x->shape[0], e->in_c, e->in_h, e->in_w });
	Tensor *t = patch_embed_forward(ctx, &e->pe, x, keep, n_keep);
	if (e->cfg.dropout > 0.0f)
		t = op_dropout(ctx, t, e->cfg.dropout);
	for (int i = 0; i < e->cfg.depth; i++)
		t = block_forward(ctx, &e->blocks[i], t);
	return layernorm_forward(ctx, &e->norm, t);
}

// ids (B*T) -> (B,T,dim)
Tensor *encoder_forward_tokens(Ctx *ctx, Encoder *e, const int *ids, int B, int T)
{
	if (e->cfg.kind != ENC_TRANSFORMER)
		wrong_kind(e, "encoder_forward_tokens");
	return transformer_forward(ctx, &e->tf, ids, B, T);
}

// x (B,C,H,W) or (B,D); for a transformer, token ids stored as floats (B,T) or (B,1,1,T)
Tensor *encoder_forward(Ctx *ctx, Encoder *e, Tensor *x)
{
	Tensor *f = NULL;
	switch (e->cfg.kind) {
	case ENC_MLP:
		return mlp_forward(ctx, e->mlp, x);
	case ENC_CNN:
		if (x->ndim == 2)
			x = op_reshape(ctx, x, 4, (int[]){ x->shape[0], e->in_c, e->in_h, e->in_w });
		f = cnn_forward(ctx, e, x);
		break;
	case ENC_VIT:
		f = pool_tokens(ctx, e, encoder_forward_patches(ctx, e, x, NULL, 0));
		break;
	case ENC_TRANSFORMER: {
		int B = x->shape[0], T = (int)(x->size / (size_t)B);
		int *ids = ctx_alloc(ctx, x->size * sizeof *ids);
		for (size_t i = 0; i < x->size; i++)
			ids[i] = (int)lrintf(x->data[i]);
		f = pool_tokens(ctx, e, transformer_forward(ctx, &e->tf, ids, B, T));
		break;
	}
	}
	if (e->has_fc)
		f = linear_forward(ctx, &e->fc, f);
	return f;
}
