/* resnet.c - the resnet18, resnet34 and resnet50 encoders: engine/resnet.h's backbones (basic
 * and bottleneck blocks, torchvision's layout and parameter names) as registry entries.
 *
 * One set of functions serves the three descriptors; the depth follows from the encoder kind.
 * Keys: `stem` "cifar" (3x3 stride-1 conv, no max-pool: the SSL convention for images up to
 * 64 px, and the default here since ssld's image sets are 28-32 px) or "imagenet" (7x7 stride 2 +
 * max-pool), and `width`, the channel multiplier (stage i has round(64 * width * 2^i) channels;
 * 0.5 is a common CPU choice). Features: the global average pool of the last stage,
 * 512 * width (x4 for resnet50). There is no projection key: methods add their own heads.
 *
 *   P.conv1, P.bn1, P.layer<1..4>.<j>.{conv1,bn1,conv2,bn2[,conv3,bn3][,downsample.0/1]}
 *   (P = the encoder prefix, the rest torchvision's state-dict names; see engine/resnet.h).
 */
#include "encoder.h"

#include <errno.h>
#include <stdio.h>

#include "../resnet.h"

static const ParamDef resnet_keys[] = {
	{ "stem", PARAM_ENUM, .def_str = "cifar", .choices = "cifar|imagenet",
	  .help = "\"cifar\": 3x3 stride-1 conv, no max-pool (images up to 64 px); \"imagenet\": 7x7 "
	          "stride-2 conv + 3x3 max-pool",
	  PARAM_AT(EncoderConfig, stem) },
	{ "width", PARAM_NUMBER, .def = 1, .min = 0, .max = 8, .flags = PARAM_MIN_EXCLUSIVE,
	  .help = "channel multiplier: stage i has round(64 * width * 2^i) channels, (0, 8]; 0.5 "
	          "is a common CPU choice",
	  PARAM_AT(EncoderConfig, width) },
};

static int resnet_depth(EncoderKind kind)
{
	switch (kind) {
	case ENC_RESNET18: return 18;
	case ENC_RESNET34: return 34;
	case ENC_RESNET50: return 50;
	default: return 0;
	}
}

/* c's kind, stem and width as a ResnetConfig; -EINVAL with err for a kind that is no resnet. */
static int to_resnet(const EncoderConfig *c, ResnetConfig *rc, char *err, size_t errlen)
{
	if (resnet_config_preset(rc, resnet_depth(c->kind)) < 0)
		return encoder_fail(err, errlen, "model.encoder: %s is not a resnet",
		                    encoder_kind_name(c->kind));
	rc->stem = (ResnetStem)c->stem;
	rc->width = c->width;
	return 0;
}

static int resnet_check(const EncoderConfig *c, char *err, size_t errlen)
{
	ResnetConfig rc;
	int r = to_resnet(c, &rc, err, errlen);
	/* The rules that do not depend on the input: check them on a nominal 3x32x32 sample. */
	return r < 0 ? r : resnet_config_check(&rc, 3, 32, 32, err, errlen);
}

static int resnet_check_input(const EncoderConfig *c, int in_c, int in_h, int in_w, char *err,
                              size_t errlen)
{
	ResnetConfig rc;
	int r = to_resnet(c, &rc, err, errlen);
	return r < 0 ? r : resnet_config_check(&rc, in_c, in_h, in_w, err, errlen);
}

static int resnet_build(Encoder *e, ParamSet *ps, const char *prefix, Rng *rng)
{
	ResnetConfig rc;
	char err[256];
	Resnet *net;
	int r = to_resnet(&e->cfg, &rc, err, sizeof err);
	if (r == 0)
		r = resnet_new(&rc, ps, prefix, e->in_c, e->in_h, e->in_w, rng, &net, err, sizeof err);
	if (r < 0)
		return r;
	e->state = net;
	e->out_dim = resnet_out_dim(net);
	return 0;
}

// x (B,C,H,W) or (B,C*H*W) -> (B, 512 * width * expansion)
static Tensor *resnet_encoder_forward(Ctx *ctx, Encoder *e, Tensor *x)
{
	return resnet_forward(ctx, e->state, x);
}

// the same network in ONNX: x (N,C,H,W) -> (N, 512 * width * expansion)
static const char *resnet_encoder_export_onnx(struct OnnxGraph *g, const Encoder *e, const char *x)
{
	return resnet_export_onnx(g, e->state, x);
}

static void resnet_destroy(void *state)
{
	resnet_free(state);
}

static int64_t resnet_encoder_estimate(const EncoderConfig *c, int in_c, int in_h, int in_w,
                                       int64_t *params, int64_t *acts)
{
	ResnetConfig rc;
	if (to_resnet(c, &rc, NULL, 0) < 0)
		return 0;
	return resnet_estimate(&rc, in_c, in_h, in_w, params, acts);
}

#define RESNET_DESC(depth, text)                                                                  \
	const EncoderDesc encoder_desc_resnet##depth = {                                              \
		.name = "resnet" #depth,                                                                  \
		.summary = text,                                                                          \
		.fits = DATA_IMAGES,                                                                      \
		.keys = resnet_keys,                                                                      \
		.n_keys = (int)(sizeof resnet_keys / sizeof resnet_keys[0]),                              \
		.check = resnet_check,                                                                    \
		.check_input = resnet_check_input,                                                        \
		.build = resnet_build,                                                                    \
		.forward = resnet_encoder_forward,                                                        \
		.destroy = resnet_destroy,                                                                \
		.estimate = resnet_encoder_estimate,                                                      \
		.export_onnx = resnet_encoder_export_onnx,                                                \
	}

RESNET_DESC(18, "ResNet-18 (basic blocks 2,2,2,2; torchvision layout; cifar or imagenet stem, "
                "width multiplier)");
RESNET_DESC(34, "ResNet-34 (basic blocks 3,4,6,3; torchvision layout; cifar or imagenet stem, "
                "width multiplier)");
RESNET_DESC(50, "ResNet-50 (bottleneck blocks 3,4,6,3; torchvision layout; cifar or imagenet "
                "stem, width multiplier)");
