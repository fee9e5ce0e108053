/* cnn.c - the cnn encoder: 3x3 conv stages (+ BatchNorm + ReLU), then average pooling, globally or
 * to a pool_grid x pool_grid grid. The optional projection to out_dim is model.c's.
 *
 *   x (B,C,H,W); for each stage i < n_channels:
 *     P.conv<i> Conv2d(C_i, channels[i], 3x3, stride 1 for i = 0 else 2, padding 1,
 *               bias = !batchnorm); with `strides` set, stride strides[i] instead
 *     P.bn<i>   BatchNorm2d(channels[i])         (when batchnorm)
 *     ReLU
 *   global average pooling -> (B, channels[last]), or with pool_grid g > 1 adaptive average
 *   pooling to g x g cells flattened (C, gy, gx) -> (B, channels[last] * g * g) (a 7x7 map
 *   and g 2: windows rows/cols 0-3 and 3-6); when out_dim > 0, P.fc Linear(., out_dim).
 *   Default {32,64,128} on 28x28: (32,28,28) -> (64,14,14) -> (128,7,7) -> 128 features.
 * python/ssld_torch.py rebuilds it in PyTorch: change the layout only together with that file.
 */
#include "encoder.h"

#include <errno.h>
#include <stdio.h>

#include "../alloc.h"
#include "../ops.h"

static const int def_channels[] = { 32, 64, 128 };

static const ParamDef cnn_keys[] = {
	{ "channels", PARAM_INT_LIST, .min = 1, .max = 4096, .min_n = 1, .max_n = MODEL_MAX_LAYERS,
	  .def_list = def_channels, .def_n = 3,
	  .help = "conv stage widths (3x3 conv + BN + ReLU, stride 2 from the 2nd stage), 1..8 stages",
	  PARAM_LIST_AT(EncoderConfig, channels, n_channels) },
	{ "out_dim", PARAM_INTEGER, .def = 0, .min = 0, .max = 65536,
	  .help = "feature size: an optional linear projection after pooling, 0 = none",
	  PARAM_AT(EncoderConfig, out_dim) },
	{ "batchnorm", PARAM_BOOLEAN, .def = 1, .help = "BatchNorm after each linear/conv layer",
	  PARAM_AT(EncoderConfig, batchnorm) },
	{ "pool_grid", PARAM_INTEGER, .def = 1, .min = 1, .max = 8,
	  .help = "features: the last feature map average-pooled to g x g cells (channels x g^2 "
	          "features); 1 = global average pooling; g must split the map into equal cells",
	  PARAM_AT(EncoderConfig, pool_grid) },
};

typedef struct Cnn {
	Conv2d conv[MODEL_MAX_LAYERS];
	BatchNorm bn[MODEL_MAX_LAYERS];
	int grid_k, grid_stride;             /* pool_grid > 1: the pooling window */
} Cnn;

/* The stride of stage i: model.strides when given, else 1 for the first stage and 2 after. */
static int cnn_stride(const EncoderConfig *c, int i)
{
	return c->n_strides > 0 ? c->strides[i] : i == 0 ? 1 : 2;
}

/* The last feature map size (fh, fw) for an in_h x in_w input, and the k x k, stride s average
 * pooling that equals adaptive pooling to pool_grid x pool_grid cells: adaptive cell i spans
 * [floor(i*H/g), ceil((i+1)*H/g)), an ordinary pooling when every cell has the same size and
 * step. -1 when it is not one (or the map is not square or smaller than the grid). */
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

static int cnn_check(const EncoderConfig *c, char *err, size_t errlen)
{
	int rc = encoder_check_range(c->n_channels, 1, MODEL_MAX_LAYERS, "channels (number of stages)",
	                             err, errlen);
	if (rc < 0)
		return rc;
	for (int i = 0; i < c->n_channels; i++)
		if (c->channels[i] < 1 || c->channels[i] > 4096)
			return encoder_fail(err, errlen, "model.channels[%d]: %d must be in [1, 4096]", i,
			                    c->channels[i]);
	if (c->n_strides != 0 && c->n_strides != c->n_channels)
		return encoder_fail(err, errlen, "model.strides: %d entries for %d conv stages (give one "
		                    "per stage, or none for the default 1,2,2,...)", c->n_strides,
		                    c->n_channels);
	for (int i = 0; i < c->n_strides; i++)
		if (c->strides[i] < 1 || c->strides[i] > 4)
			return encoder_fail(err, errlen, "model.strides[%d]: %d must be in [1, 4]", i,
			                    c->strides[i]);
	if (c->pool_grid < 0 || c->pool_grid > 8)
		return encoder_fail(err, errlen, "model.pool_grid: %d must be in [0, 8]", c->pool_grid);
	return 0;
}

static int cnn_check_input(const EncoderConfig *c, int in_c, int in_h, int in_w, char *err,
                           size_t errlen)
{
	(void)in_c;
	if (c->pool_grid > 1) {
		int fh, fw, k, s;
		if (cnn_grid_window(c, in_h, in_w, &fh, &fw, &k, &s) < 0)
			return encoder_fail(err, errlen, "model.pool_grid: %d does not split the last %dx%d "
			                    "feature map into equal cells (1, global pooling, always does)",
			                    c->pool_grid, fh, fw);
	}
	return 0;
}

static int cnn_build(Encoder *e, ParamSet *ps, const char *prefix, Rng *rng)
{
	const EncoderConfig *c = &e->cfg;
	Cnn *n = eng_calloc(1, sizeof *n);
	if (!n)
		return -ENOMEM;
	e->state = n;
	int cin = e->in_c, rc;
	for (int i = 0; i < c->n_channels; i++) {
		char name[LAYER_NAME_MAX];
		snprintf(name, sizeof name, "%s.conv%d", prefix, i);
		rc = conv2d_init(&n->conv[i], ps, name, cin, c->channels[i], 3, cnn_stride(c, i), 1,
		                 !c->batchnorm, rng);
		if (rc < 0)
			return rc;
		if (c->batchnorm) {
			snprintf(name, sizeof name, "%s.bn%d", prefix, i);
			if ((rc = batchnorm_init(&n->bn[i], ps, name, c->channels[i])) < 0)
				return rc;
		}
		cin = c->channels[i];
	}
	e->out_dim = cin;
	if (c->pool_grid > 1) {   /* cnn_check() checked the window exists */
		int fh, fw;
		if (cnn_grid_window(c, e->in_h, e->in_w, &fh, &fw, &n->grid_k, &n->grid_stride) < 0)
			return -EINVAL;
		e->out_dim = cin * c->pool_grid * c->pool_grid;
	}
	return 0;
}

// x (B,C,H,W) or (B,C*H*W) -> (B, channels[last] * pool_grid^2)
static Tensor *cnn_forward(Ctx *ctx, Encoder *e, Tensor *x)
{
	Cnn *n = e->state;
	if (x->ndim == 2)
		x = op_reshape(ctx, x, 4, (int[]){ x->shape[0], e->in_c, e->in_h, e->in_w });
	for (int i = 0; i < e->cfg.n_channels; i++) {
		x = conv2d_forward(ctx, &n->conv[i], x);
		x = e->cfg.batchnorm ? batchnorm_relu_forward(ctx, &n->bn[i], x) : op_relu(ctx, x);
	}
	if (e->cfg.pool_grid > 1) {
		x = op_avgpool2d(ctx, x, n->grid_k, n->grid_stride);
		return op_reshape(ctx, x, 2, (int[]){ x->shape[0], e->out_dim });
	}
	return op_global_avgpool(ctx, x);
}

static void cnn_destroy(void *state)
{
	eng_free(state);
}

static int64_t cnn_estimate(const EncoderConfig *c, int in_c, int in_h, int in_w, int64_t *params,
                         int64_t *acts)
{
	int64_t cin = in_c, h = in_h, w = in_w;
	*acts += cin * h * w;
	for (int i = 0; i < c->n_channels; i++) {
		int64_t stride = cnn_stride(c, i);
		h = (h - 1) / stride + 1;
		w = (w - 1) / stride + 1;
		int64_t cout = c->channels[i];
		*params += cin * cout * 9 + (c->batchnorm ? 2 * cout : cout);   /* BN scale + shift, or a bias */
		*acts += cin * 9 * h * w + 3 * cout * h * w;
		cin = cout;
	}
	int64_t g = c->pool_grid > 1 ? c->pool_grid : 1;
	*acts += cin * g * g;
	return cin * g * g;
}

const EncoderDesc encoder_desc_cnn = {
	.name = "cnn",
	.summary = "small convolutional network (3x3 conv + BatchNorm + ReLU stages, average pooling)",
	.fits = DATA_IMAGES,
	.natural_for = DATA_IMAGES,
	.keys = cnn_keys,
	.n_keys = (int)(sizeof cnn_keys / sizeof cnn_keys[0]),
	.check = cnn_check,
	.check_input = cnn_check_input,
	.build = cnn_build,
	.forward = cnn_forward,
	.destroy = cnn_destroy,
	.estimate = cnn_estimate,
};
