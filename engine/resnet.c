/* resnet.c - ResNet-18/34/50 backbones built from layers.h (see resnet.h for the layout).
 *
 * It deliberately mirrors torchvision's module tree name for name (so exports need no renaming
 * table) and has no classifier head, no dilation, no groups: the SSL methods put their own
 * projector on the pooled features. Gradients come from the ops the forward is made of.
 */
#include "resnet.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "export_onnx.h"
#include "layers.h"
#include "ops.h"

/* One residual block. Basic: conv1 3x3/s, conv2 3x3. Bottleneck: conv1 1x1, conv2 3x3/s, conv3 1x1.
 * downsample (1x1/s conv + BN) when the stride or the channel count changes. */
typedef struct ResBlock {
	Conv2d conv1, conv2, conv3;
	BatchNorm bn1, bn2, bn3;
	Conv2d down;
	BatchNorm down_bn;
	int has_down;
} ResBlock;

struct Resnet {
	ResnetConfig cfg;
	int in_c, in_h, in_w;
	int out_dim;
	Conv2d conv1;
	BatchNorm bn1;
	ResBlock *blocks;     /* all stages in order, sum(cfg.blocks); heap */
	int n_blocks;
};

/* ---------------------------------------------------------------------------------------------- */
/* Config */

static const char *const stem_names[] = { [RESNET_STEM_CIFAR] = "cifar",
                                          [RESNET_STEM_IMAGENET] = "imagenet" };

const char *resnet_stem_name(ResnetStem stem)
{
	if ((int)stem < 0 || (size_t)stem >= sizeof stem_names / sizeof stem_names[0])
		return "unknown";
	return stem_names[stem];
}

int resnet_stem_parse(const char *name, ResnetStem *out)
{
	for (size_t i = 0; i < sizeof stem_names / sizeof stem_names[0]; i++)
		if (strcmp(name, stem_names[i]) == 0) {
			*out = (ResnetStem)i;
			return 0;
		}
	return -EINVAL;
}

int resnet_config_preset(ResnetConfig *c, int depth)
{
	static const struct {
		int depth, bottleneck, blocks[RESNET_STAGES];
	} presets[] = {
		{ 18, 0, { 2, 2, 2, 2 } },
		{ 34, 0, { 3, 4, 6, 3 } },
		{ 50, 1, { 3, 4, 6, 3 } },
	};
	for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
		if (presets[i].depth != depth)
			continue;
		memset(c, 0, sizeof *c);
		c->bottleneck = presets[i].bottleneck;
		memcpy(c->blocks, presets[i].blocks, sizeof c->blocks);
		c->stem = RESNET_STEM_IMAGENET;
		c->width = 1.0f;
		return 0;
	}
	return -EINVAL;
}

int resnet_stage_channels(float width, int stage)
{
	double ch = floor(64.0 * (double)width * (double)(1 << stage) + 0.5);
	return ch < 1.0 ? 1 : (int)ch;
}

int resnet_config_out_dim(const ResnetConfig *c)
{
	return resnet_stage_channels(c->width, RESNET_STAGES - 1) * (c->bottleneck ? 4 : 1);
}

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

int resnet_config_check(const ResnetConfig *c, int in_c, int in_h, int in_w, char *err,
                        size_t errlen)
{
	if (in_c <= 0 || in_h <= 0 || in_w <= 0)
		return fail(err, errlen, "model: input sample shape (%d,%d,%d) is not positive", in_c,
		            in_h, in_w);
	if (c->bottleneck != 0 && c->bottleneck != 1)
		return fail(err, errlen, "model.bottleneck: %d must be 0 or 1", c->bottleneck);
	for (int i = 0; i < RESNET_STAGES; i++)
		if (c->blocks[i] < 1 || c->blocks[i] > 64)
			return fail(err, errlen, "model.blocks[%d]: %d must be in [1, 64]", i, c->blocks[i]);
	if ((int)c->stem < 0 || (size_t)c->stem >= sizeof stem_names / sizeof stem_names[0])
		return fail(err, errlen, "model.stem: unknown stem %d (\"cifar\" or \"imagenet\")",
		            (int)c->stem);
	if (!(c->width > 0.0f && c->width <= 8.0f))
		return fail(err, errlen, "model.width: %g must be in (0, 8]", (double)c->width);
	return 0;
}

/* One conv (no bias) + BN on an h x w map: its parameters and the activations the step keeps
 * (conv out, BN out); h, w become the output size. The lowered columns are not kept (they are
 * built per image or per chunk into scratch given back after the op), but a backward may lower
 * its whole batch at once: *cols keeps the largest such lowering, counted once per step. */
static void estimate_conv_bn(int64_t cin, int64_t cout, int k, int stride, int64_t *h, int64_t *w,
                             int64_t *params, int64_t *acts, int64_t *cols)
{
	*h = (*h + 2 * (k / 2) - k) / stride + 1;
	*w = (*w + 2 * (k / 2) - k) / stride + 1;
	*params += cin * cout * k * k + 2 * cout;
	*acts += 2 * cout * *h * *w;
	if (cin * k * k * *h * *w > *cols)
		*cols = cin * k * k * *h * *w;
}

int64_t resnet_estimate(const ResnetConfig *c, int in_c, int in_h, int in_w, int64_t *params,
                        int64_t *act_floats)
{
	int64_t h = in_h, w = in_w, ch = resnet_stage_channels(c->width, 0), cols = 0;
	const int imagenet = c->stem == RESNET_STEM_IMAGENET;
	*act_floats += (int64_t)in_c * h * w;
	estimate_conv_bn(in_c, ch, imagenet ? 7 : 3, imagenet ? 2 : 1, &h, &w, params, act_floats, &cols);
	if (imagenet) {
		h = (h - 1) / 2 + 1;
		w = (w - 1) / 2 + 1;
		*act_floats += ch * h * w;
	}
	for (int s = 0; s < RESNET_STAGES; s++) {
		const int64_t planes = resnet_stage_channels(c->width, s);
		const int64_t out = planes * (c->bottleneck ? 4 : 1);
		for (int j = 0; j < c->blocks[s]; j++) {
			const int stride = (s > 0 && j == 0) ? 2 : 1;
			int64_t bh = h, bw = w;
			if (c->bottleneck) {
				estimate_conv_bn(ch, planes, 1, 1, &bh, &bw, params, act_floats, &cols);
				estimate_conv_bn(planes, planes, 3, stride, &bh, &bw, params, act_floats, &cols);
				estimate_conv_bn(planes, out, 1, 1, &bh, &bw, params, act_floats, &cols);
			} else {
				estimate_conv_bn(ch, planes, 3, stride, &bh, &bw, params, act_floats, &cols);
				estimate_conv_bn(planes, planes, 3, 1, &bh, &bw, params, act_floats, &cols);
			}
			if (stride != 1 || ch != out) {
				int64_t dh = h, dw = w;
				estimate_conv_bn(ch, out, 1, stride, &dh, &dw, params, act_floats, &cols);
			}
			*act_floats += 2 * out * bh * bw;   /* the sum and its ReLU */
			h = bh;
			w = bw;
			ch = out;
		}
	}
	*act_floats += ch + cols;
	return ch;
}

/* ---------------------------------------------------------------------------------------------- */
/* Building */

/* "<prefix>.<fmt...>" into buf; -ENAMETOOLONG if it does not fit. */
static int name_of(char *buf, size_t len, const char *prefix, const char *fmt, ...)
{
	int n = snprintf(buf, len, "%s%s", prefix, prefix[0] ? "." : "");
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return (m < 0 || (size_t)m >= len - (size_t)n) ? -ENAMETOOLONG : 0;
}

/* A bias-free conv with torchvision's ResNet init: N(0, 2 / (out_c * k * k)). */
static int conv_init(Conv2d *cv, ParamSet *ps, const char *name, int in_c, int out_c, int k,
                     int stride, int pad, Rng *rng)
{
	int rc = conv2d_init(cv, ps, name, in_c, out_c, k, stride, pad, 0, rng);
	if (rc < 0)
		return rc;
	const float std = sqrtf(2.0f / (float)(out_c * k * k));
	for (size_t i = 0; i < cv->weight->size; i++)
		cv->weight->data[i] = std * rng_normal(rng);
	return 0;
}

/* conv "<block>.<conv>" followed by BN "<block>.<bn>". */
static int conv_bn(Conv2d *cv, BatchNorm *bn, ParamSet *ps, const char *block, const char *conv,
                   const char *bnn, int in_c, int out_c, int k, int stride, Rng *rng)
{
	char name[LAYER_NAME_MAX];
	int rc;
	if ((rc = name_of(name, sizeof name, block, "%s", conv)) < 0 ||
	    (rc = conv_init(cv, ps, name, in_c, out_c, k, stride, k / 2, rng)) < 0 ||
	    (rc = name_of(name, sizeof name, block, "%s", bnn)) < 0)
		return rc;
	return batchnorm_init(bn, ps, name, out_c);
}

/* Block "<prefix>.layer<s+1>.<j>" from in_c channels; *out_c receives its output channels. */
static int block_build(ResBlock *b, ParamSet *ps, const char *prefix, const ResnetConfig *c,
                       int s, int j, int in_c, Rng *rng, int *out_c)
{
	char name[LAYER_NAME_MAX];
	int rc = name_of(name, sizeof name, prefix, "layer%d.%d", s + 1, j);
	if (rc < 0)
		return rc;
	const int planes = resnet_stage_channels(c->width, s);
	const int stride = (s > 0 && j == 0) ? 2 : 1;
	const int out = planes * (c->bottleneck ? 4 : 1);
	BatchNorm *last;
	if (c->bottleneck) {
		if ((rc = conv_bn(&b->conv1, &b->bn1, ps, name, "conv1", "bn1", in_c, planes, 1, 1, rng)) < 0 ||
		    (rc = conv_bn(&b->conv2, &b->bn2, ps, name, "conv2", "bn2", planes, planes, 3, stride, rng)) < 0 ||
		    (rc = conv_bn(&b->conv3, &b->bn3, ps, name, "conv3", "bn3", planes, out, 1, 1, rng)) < 0)
			return rc;
		last = &b->bn3;
	} else {
		if ((rc = conv_bn(&b->conv1, &b->bn1, ps, name, "conv1", "bn1", in_c, planes, 3, stride, rng)) < 0 ||
		    (rc = conv_bn(&b->conv2, &b->bn2, ps, name, "conv2", "bn2", planes, planes, 3, 1, rng)) < 0)
			return rc;
		last = &b->bn2;
	}
	/* zero_init_residual: the block starts as the identity (plus its shortcut) */
	memset(last->weight->data, 0, last->weight->size * sizeof(float));
	if (stride != 1 || in_c != out) {
		if ((rc = conv_bn(&b->down, &b->down_bn, ps, name, "downsample.0", "downsample.1", in_c,
		                  out, 1, stride, rng)) < 0)
			return rc;
		b->has_down = 1;
	}
	*out_c = out;
	return 0;
}

int resnet_new(const ResnetConfig *c, ParamSet *ps, const char *prefix, int in_c, int in_h,
               int in_w, Rng *rng, Resnet **out, char *err, size_t errlen)
{
	int rc = resnet_config_check(c, in_c, in_h, in_w, err, errlen);
	if (rc < 0)
		return rc;
	if (strlen(prefix) > LAYER_NAME_MAX - 64)
		return fail(err, errlen, "model: parameter prefix '%.40s...' is too long", prefix);
	Resnet *r = eng_calloc(1, sizeof *r);
	if (!r)
		goto oom;
	r->cfg = *c;
	r->in_c = in_c;
	r->in_h = in_h;
	r->in_w = in_w;
	for (int s = 0; s < RESNET_STAGES; s++)
		r->n_blocks += c->blocks[s];
	r->blocks = eng_calloc((size_t)r->n_blocks, sizeof *r->blocks);
	if (!r->blocks)
		goto oom;
	const int stem_c = resnet_stage_channels(c->width, 0);
	const int k = c->stem == RESNET_STEM_IMAGENET ? 7 : 3;
	char name[LAYER_NAME_MAX];
	if ((rc = name_of(name, sizeof name, prefix, "conv1")) < 0 ||
	    (rc = conv_init(&r->conv1, ps, name, in_c, stem_c, k, k == 7 ? 2 : 1, k / 2, rng)) < 0 ||
	    (rc = name_of(name, sizeof name, prefix, "bn1")) < 0 ||
	    (rc = batchnorm_init(&r->bn1, ps, name, stem_c)) < 0)
		goto fail;
	int ch = stem_c, bi = 0;
	for (int s = 0; s < RESNET_STAGES; s++)
		for (int j = 0; j < c->blocks[s]; j++)
			if ((rc = block_build(&r->blocks[bi++], ps, prefix, c, s, j, ch, rng, &ch)) < 0)
				goto fail;
	r->out_dim = ch;
	*out = r;
	return 0;
oom:
	rc = -ENOMEM;
fail:
	if (rc == -EEXIST)
		fail(err, errlen, "model: parameters under '%s' already exist in the parameter set",
		     prefix);
	else
		fail(err, errlen, "model: cannot create the resnet encoder '%s': %s", prefix,
		     strerror(-rc));
	resnet_free(r);
	return rc;
}

void resnet_free(Resnet *r)
{
	if (!r)
		return;
	eng_free(r->blocks);
	eng_free(r);
}

int resnet_out_dim(const Resnet *r) { return r->out_dim; }
const ResnetConfig *resnet_config(const Resnet *r) { return &r->cfg; }

/* ---------------------------------------------------------------------------------------------- */
/* Forward */

/* The block's last batchnorm, the shortcut and the ReLU are one op (op_batchnorm_add_relu): the
 * batchnorm's output and its gradient are never materialised. A downsampled shortcut's
 * batchnorm output is read by nothing but that op (its own backward reads its input), so the
 * block's output is written over it; an identity shortcut is the block's input, which conv1's
 * backward still reads, so it gets a new tensor. */
// x (B,C,H,W) -> (B,C',H',W')
static Tensor *block_forward_res(Ctx *ctx, const ResBlock *b, int bottleneck, Tensor *x)
{
	Tensor *y = batchnorm_relu_forward(ctx, &b->bn1, conv2d_forward(ctx, &b->conv1, x));
	const BatchNorm *last = bottleneck ? &b->bn3 : &b->bn2;
	if (bottleneck) {
		y = batchnorm_relu_forward(ctx, &b->bn2, conv2d_forward(ctx, &b->conv2, y));
		y = conv2d_forward(ctx, &b->conv3, y);
	} else {
		y = conv2d_forward(ctx, &b->conv2, y);
	}
	Tensor *id = b->has_down ? batchnorm_forward(ctx, &b->down_bn, conv2d_forward(ctx, &b->down, x))
	                         : x;
	return op_batchnorm_add_relu(ctx, y, last->weight, last->bias, last->running_mean->data,
	                             last->running_var->data, last->momentum, last->eps, id,
	                             b->has_down);
}

// x (B,C,H,W) or (B,C*H*W) -> (B, out_dim)
Tensor *resnet_forward(Ctx *ctx, const Resnet *r, Tensor *x)
{
	if (x->ndim == 2)
		x = op_reshape(ctx, x, 4, (int[]){ x->shape[0], r->in_c, r->in_h, r->in_w });
	x = batchnorm_relu_forward(ctx, &r->bn1, conv2d_forward(ctx, &r->conv1, x));
	if (r->cfg.stem == RESNET_STEM_IMAGENET)
		x = op_maxpool2d_pad(ctx, x, 3, 2, 1);
	for (int i = 0; i < r->n_blocks; i++)
		x = block_forward_res(ctx, &r->blocks[i], r->cfg.bottleneck, x);
	return op_global_avgpool(ctx, x);
}

/* ---------------------------------------------------------------------------------------------- */
/* ONNX */

// the same network in eval mode: x (N,C,H,W) -> (N, out_dim); the max-pool's padding is never
// the maximum, as op_maxpool2d_pad's clipped window
const char *resnet_export_onnx(struct OnnxGraph *g, const Resnet *r, const char *x)
{
	x = onnx_relu(g, onnx_batchnorm(g, &r->bn1, onnx_conv2d(g, &r->conv1, x)));
	if (r->cfg.stem == RESNET_STEM_IMAGENET) {
		const OnnxAttr at[] = {
			{ "kernel_shape", .ints = (int64_t[]){ 3, 3 }, .n_ints = 2 },
			{ "strides", .ints = (int64_t[]){ 2, 2 }, .n_ints = 2 },
			{ "pads", .ints = (int64_t[]){ 1, 1, 1, 1 }, .n_ints = 4 },
		};
		x = onnx_node1(g, "MaxPool", x, at, 3);
	}
	for (int i = 0; i < r->n_blocks; i++) {
		const ResBlock *b = &r->blocks[i];
		const char *y = onnx_relu(g, onnx_batchnorm(g, &b->bn1, onnx_conv2d(g, &b->conv1, x)));
		if (r->cfg.bottleneck) {
			y = onnx_relu(g, onnx_batchnorm(g, &b->bn2, onnx_conv2d(g, &b->conv2, y)));
			y = onnx_batchnorm(g, &b->bn3, onnx_conv2d(g, &b->conv3, y));
		} else {
			y = onnx_batchnorm(g, &b->bn2, onnx_conv2d(g, &b->conv2, y));
		}
		const char *id = b->has_down ? onnx_batchnorm(g, &b->down_bn, onnx_conv2d(g, &b->down, x))
		                             : x;
		x = onnx_relu(g, onnx_node(g, "Add", (const char *[]){ y, id }, 2, NULL, 0));
	}
	return onnx_flatten(g, onnx_node1(g, "GlobalAveragePool", x, NULL, 0));
}
