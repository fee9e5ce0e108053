/* resnet.h - ResNet-18/34/50 backbones (basic and bottleneck blocks) with torchvision's layout.
 *
 * The network is torchvision.models.resnet* without its fc head: the parameters are registered
 * in a ParamSet under "<prefix>." followed by torchvision's own state-dict names (conv1.weight,
 * bn1.*, layer1.0.conv1.weight, layer2.0.downsample.0.weight, layer2.0.downsample.1.*, ...), so
 * export_torchvision.h only has to strip the prefix. Features are the global average pool of the
 * last stage: (B, resnet_out_dim) = 512 * width * expansion (1 basic, 4 bottleneck).
 *
 *   ResnetConfig rc; resnet_config_preset(&rc, 18);       // basic blocks {2,2,2,2}
 *   rc.stem = RESNET_STEM_CIFAR; rc.width = 0.5f;
 *   Resnet *net;
 *   if (resnet_new(&rc, ps, "encoder", 3, 32, 32, rng, &net, err, sizeof err) < 0) ...;
 *   Tensor *feat = resnet_forward(ctx, net, x);           // x (B,3,32,32) -> (B,256)
 *   resnet_free(net);                                     // the ParamSet keeps the tensors
 *
 * Stems: "imagenet" is conv1 7x7 stride 2 pad 3 + BN + ReLU + max-pool 3x3 stride 2 pad 1 (as
 * torchvision); "cifar" is conv1 3x3 stride 1 pad 1 + BN + ReLU and no max-pool (the SSL
 * convention for 32 px images; torchvision needs conv1 replaced and maxpool = Identity).
 * Width: stage i (0..3) has round(64 * width * 2^i) channels (at least 1), the stem has stage 0's,
 * a bottleneck's inner width is its stage's and its output 4x that. Initialisation follows
 * torchvision (conv weights Kaiming-normal, fan_out, ReLU gain; BN weight 1, bias 0) with
 * zero_init_residual: the last BN weight of every block is 0, so each block starts as identity.
 */
#ifndef SSLD_ENGINE_RESNET_H
#define SSLD_ENGINE_RESNET_H

#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "params.h"
#include "rng.h"
#include "tensor.h"

typedef enum ResnetStem { RESNET_STEM_CIFAR, RESNET_STEM_IMAGENET } ResnetStem;

#define RESNET_STAGES 4

typedef struct ResnetConfig {
	int bottleneck;                 /* 0 = BasicBlock (expansion 1), 1 = Bottleneck (4) */
	int blocks[RESNET_STAGES];      /* blocks per stage, each 1..64 */
	ResnetStem stem;
	float width;                    /* channel multiplier, (0, 8] */
} ResnetConfig;

/* depth 18 {2,2,2,2} basic, 34 {3,4,6,3} basic, 50 {3,4,6,3} bottleneck; stem imagenet, width 1.
 * -EINVAL for another depth (c untouched). */
int resnet_config_preset(ResnetConfig *c, int depth);
/* "cifar" / "imagenet" and back; parse returns -EINVAL for another name. */
const char *resnet_stem_name(ResnetStem stem);
int resnet_stem_parse(const char *name, ResnetStem *out);
/* Channels of stage i (0..3) for a width: max(1, round(64 * width * 2^i)). */
int resnet_stage_channels(float width, int stage);
/* Feature size for a config: resnet_stage_channels(width, 3) * expansion. */
int resnet_config_out_dim(const ResnetConfig *c);

/* The rules resnet_new applies, without building: 0 or -EINVAL with err naming the key
 * ("model.width: 0 must be in (0, 8]"). in_c, in_h, in_w describe one sample. */
int resnet_config_check(const ResnetConfig *c, int in_c, int in_h, int in_w, char *err,
                        size_t errlen);

/* Adds the trainable parameter count of resnet_new's network to *params (exact) and its
 * activation floats per sample to *act_floats (the conv lowering's columns, every conv, BN, add
 * and ReLU output, the stem pool: what a training step keeps), for one in_c x in_h x in_w sample
 * (the job spec's memory estimate). Returns the feature size. */
int64_t resnet_estimate(const ResnetConfig *c, int in_c, int in_h, int in_w, int64_t *params,
                        int64_t *act_floats);

typedef struct Resnet Resnet;

/* Registers every parameter under "<prefix>." (prefix "" = bare torchvision names) and initialises
 * them from rng. 0, or a negative errno with err set: -EINVAL (config), -EEXIST (a name is taken),
 * -ENAMETOOLONG, -ENOMEM. On failure *out is untouched (parameters added so far stay in ps). */
int resnet_new(const ResnetConfig *c, ParamSet *ps, const char *prefix, int in_c, int in_h,
               int in_w, Rng *rng, Resnet **out, char *err, size_t errlen);
void resnet_free(Resnet *r);                      /* resnet_free(NULL) is a no-op */
int resnet_out_dim(const Resnet *r);
const ResnetConfig *resnet_config(const Resnet *r);
/* x (B,C,H,W), or (B, C*H*W) reshaped to the sample shape given to resnet_new -> (B, out_dim).
 * Training mode (ctx_training) uses batch statistics and updates the running ones. */
Tensor *resnet_forward(Ctx *ctx, const Resnet *r, Tensor *x);
/* The same network's nodes in an ONNX graph (export_onnx.h), eval mode: the graph value x
 * (N,C,H,W) -> the name of its (N, out_dim) value, or NULL once the graph failed. */
struct OnnxGraph;
const char *resnet_export_onnx(struct OnnxGraph *g, const Resnet *r, const char *x);

#endif
