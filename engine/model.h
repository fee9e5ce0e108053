/* model.h - configurable encoders (a registry: MLP, small CNN, ViT-tiny, Transformer,
 * ResNet-18/34/50) and MLP heads.
 *
 * An Encoder maps a batch of samples to feature vectors (B, out_dim) - the representation SSL
 * methods learn and downstream protocols reuse. Its parameters live in a ParamSet under a dotted
 * prefix ("encoder.conv1.weight"), so checkpoints and exports are readable.
 *
 * Each encoder is one file in engine/encoders/ exporting an EncoderDesc (encoders/encoder.h): its
 * name, the data it fits, its keys (ParamDef rows bound to EncoderConfig), defaults, checks, code
 * and estimate. EncoderKind is the encoder's index in engine/encoders/registry.c; nothing outside
 * engine/encoders/ switches over it.
 *
 *   EncoderConfig ec; encoder_config_default(&ec, ENC_CNN);
 *   ParamSet *ps = paramset_new();
 *   Encoder *enc; encoder_new(&ec, ps, "encoder", 1, 28, 28, rng, &enc, err, sizeof err);
 *   Tensor *feat = encoder_forward(ctx, enc, x);   // x (B,1,28,28) -> (B, encoder_out_dim(enc))
 */
#ifndef SSLD_ENGINE_MODEL_H
#define SSLD_ENGINE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "modality.h"
#include "params.h"
#include "tensor.h"

/* The index of an encoder in engine/encoders/registry.c. */
typedef enum EncoderKind {
	ENC_MLP, ENC_CNN, ENC_VIT, ENC_TRANSFORMER, ENC_RESNET18, ENC_RESNET34, ENC_RESNET50
} EncoderKind;


#define MODEL_MAX_LAYERS 8

typedef struct EncoderConfig {
	EncoderKind kind;
	/* MLP: hidden widths then out_dim; batchnorm + relu between layers */
	int hidden[MODEL_MAX_LAYERS];
	int n_hidden;
	/* CNN: channel widths of conv stages (3x3 conv + BN + ReLU, stride 2 from the 2nd stage
	 * unless `strides` says otherwise),
	 * then global average pooling, then an optional linear to out_dim (out_dim 0 = none) */
	int channels[MODEL_MAX_LAYERS];
	int n_channels;
	int batchnorm;          /* MLP/CNN: 1 = BatchNorm after each linear/conv (default 1) */
	int out_dim;            /* feature size (MLP: last linear; CNN: optional projection) */
	/* ViT / Transformer */
	int dim, depth, heads, mlp_ratio;
	int patch;              /* ViT patch size (4 or 7) */
	int context;            /* Transformer: max sequence length */
	int vocab;              /* Transformer: vocabulary (256 bytes) */
	int causal;             /* Transformer: 1 = decoder (causal attention) */
	int pool;               /* ViT/Transformer features: 0 = mean over tokens, 1 = CLS token */
	float dropout;
	/* CNN: the stride of each conv stage. n_strides 0 = the default (1 for the first
	 * stage, 2 after); otherwise n_strides == n_channels, each 1..4. */
	int strides[MODEL_MAX_LAYERS];
	int n_strides;
	/* CNN: the last feature map is average-pooled to pool_grid x pool_grid cells (adaptive
	 * pooling, as torch's AdaptiveAvgPool2d) and flattened (C, gy, gx): channels[last] *
	 * pool_grid^2 features. 0 or 1 = global average pooling. */
	int pool_grid;
	/* ResNet (engine/resnet.h): stem 0 = cifar (3x3, no max-pool), 1 = imagenet (7x7 stride 2 +
	 * max-pool); width = channel multiplier, (0, 8]. */
	int stem;
	float width;
	/* Per-channel input normalisation of 3-channel images, x' = (x - in_mean[c]) / in_std[c],
	 * applied first by encoder_forward and encoder_forward_patches; in_norm 0 = none. Not a job
	 * key: the runner fills it from the training pixels, and it travels with the config (the
	 * checkpoint's metadata and config.json, as "input_mean" / "input_std"). */
	int in_norm;
	float in_mean[3], in_std[3];
} EncoderConfig;

typedef struct Encoder Encoder;

void encoder_config_default(EncoderConfig *c, EncoderKind kind);
/* in_c, in_h, in_w describe one sample ((1,1,D) for vectors, (1,1,T) for token ids). */
int encoder_new(const EncoderConfig *c, ParamSet *ps, const char *prefix, int in_c, int in_h,
                int in_w, Rng *rng, Encoder **out, char *err, size_t errlen);
void encoder_free(Encoder *e);
/* The rules encoder_new applies to a config for one in_c x in_h x in_w sample, without building
 * anything (the job spec checks them at submit): 0, or -EINVAL with err starting with the key
 * ("model.pool_grid: 4 does not split the last 7x7 feature map ..."). */
int encoder_config_check(const EncoderConfig *c, int in_c, int in_h, int in_w, char *err,
                         size_t errlen);
/* The part of those rules that does not depend on the input: ranges and rules across keys. */
int encoder_config_check_keys(const EncoderConfig *c, char *err, size_t errlen);
int encoder_out_dim(const Encoder *e);
/* Images (B,C,H,W) or vectors (B,D) -> (B, out_dim). */
Tensor *encoder_forward(Ctx *ctx, Encoder *e, Tensor *x);
/* Token models: ids (B*T) -> per-token hidden states (B,T,dim). */
Tensor *encoder_forward_tokens(Ctx *ctx, Encoder *e, const int *ids, int B, int T);
/* Per-token states for ViT: images -> (B, n_patches(+1), dim), with an optional patch keep-list
 * (MAE: keep[B*n_keep] patch indices; NULL = all). */
Tensor *encoder_forward_patches(Ctx *ctx, Encoder *e, Tensor *x, const int *keep, int n_keep);
const EncoderConfig *encoder_config(const Encoder *e);
/* ViT: patches per image (for MAE keep lists); 0 for other kinds. */
int encoder_n_patches(const Encoder *e);
/* Token models: the underlying Transformer (layers.h: wte for a tied LM head, KV-cache stepping
 * with transformer_step_cached); NULL for other kinds. Borrowed. */
struct Transformer *encoder_transformer(Encoder *e);

/* "mlp", "cnn", "vit", "transformer" (and back; -EINVAL for an unknown name). */
const char *encoder_kind_name(EncoderKind kind);
int encoder_kind_parse(const char *name, EncoderKind *out);
/* The registry: encoder_count() kinds 0..n-1 (encoders/encoder.h for the descriptor). */
struct EncoderDesc;
int encoder_count(void);
const struct EncoderDesc *encoder_desc(EncoderKind kind);   /* NULL when out of range */
/* The DATA_* modalities kind fits (a caption dataset counts as images), and whether it fits
 * a dataset of modality `data` (one DATA_* bit). */
unsigned encoder_fits(EncoderKind kind);
int encoder_fits_data(EncoderKind kind, unsigned data);
/* The encoder a dataset of modality `data` gets when neither the spec nor the method names one
 * that fits: the encoder marked natural for it; -1 when none is. */
int encoder_natural_for(unsigned data);
/* Parameter count and activation floats kept per sample for a training step, for a config on
 * in_c x in_h x in_w samples (the spec's memory estimate). */
void encoder_estimate(const EncoderConfig *c, int in_c, int in_h, int in_w, int64_t *params,
                      int64_t *act_floats);
/* The config as one JSON object (the keys of EncoderConfig; pool as "mean"/"cls"), e.g.
 * {"kind":"cnn","hidden":[1024,1024],"channels":[32,64,128],"batchnorm":true,"out_dim":0,...}.
 * Returns the length written, or -ENOSPC if len is too small. python/ssld_torch.py reads it. */
int encoder_config_to_json(const EncoderConfig *c, char *buf, size_t len);

/* A small MLP head (projection / predictor / classifier): dims[0] -> ... -> dims[n-1], BN+ReLU
 * between layers when batchnorm, plain linear at the end. */
typedef struct Mlp Mlp;
int mlp_new(ParamSet *ps, const char *prefix, const int *dims, int n, int batchnorm, Rng *rng,
            Mlp **out);
void mlp_free(Mlp *m);
Tensor *mlp_forward(Ctx *ctx, Mlp *m, Tensor *x);

#endif
