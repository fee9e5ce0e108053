/* encoder.h - what one encoder file exports: its descriptor (EncoderDesc), and the Encoder object
 * its code fills in.
 *
 * An encoder is one file in engine/encoders/ and one line in registry.c. The descriptor carries
 * everything the rest of ssld needs to know about it, so no other folder switches over the kind:
 *   - its name and the data it fits (DATA_* of model.h), and the data it is the natural choice for;
 *   - its keys, ParamDef rows bound to EncoderConfig (the job spec's model.<key> rows, the JSON
 *     Schema, docs/spec.md and the catalogue are generated from them), and fill_defaults for the
 *     fields that are not keys;
 *   - check / check_input: its ranges, the rules across keys and those against the input shape,
 *     messages starting with the key ("model.heads: 3 does not divide model.dim 128");
 *   - build / forward / destroy: its network, whose state it owns (Encoder.state);
 *   - estimate: parameters and activation floats per sample, for the spec's memory estimate.
 * The generic part (model.c) checks the common fields, adds the optional projection to out_dim
 * (unless own_out_dim), and dispatches through the descriptor.
 */
#ifndef SSLD_ENGINE_ENCODERS_ENCODER_H
#define SSLD_ENGINE_ENCODERS_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "../layers.h"
#include "../model.h"
#include "../param_table.h"

typedef struct EncoderDesc {
	const char *name;                 /* "cnn": model.encoder in a job */
	const char *summary;              /* one line for the catalogue */
	unsigned fits;                    /* DATA_IMAGES | DATA_VECTORS | DATA_TEXT it takes */
	unsigned natural_for;             /* the default encoder of these modalities */
	/* The model.<key> rows of this encoder, bound to EncoderConfig fields (PARAM_AT). */
	const ParamDef *keys;
	int n_keys;
	/* Fields that are not keys (vocab, strides...) to their defaults; may be NULL. */
	void (*fill_defaults)(EncoderConfig *c);
	/* 0, or -EINVAL with err "model.<key>: ...": the ranges and the rules across keys (check), and
	 * the rules against one in_c x in_h x in_w sample (check_input, may be NULL). */
	int (*check)(const EncoderConfig *c, char *err, size_t errlen);
	int (*check_input)(const EncoderConfig *c, int in_c, int in_h, int in_w, char *err,
	                   size_t errlen);
	/* Create e->state and the parameters under prefix; set e->out_dim to the feature size. */
	int (*build)(Encoder *e, ParamSet *ps, const char *prefix, Rng *rng);
	/* x (B,C,H,W) or (B,D) (token ids as floats for text) -> (B, features) before the projection. */
	Tensor *(*forward)(Ctx *ctx, Encoder *e, Tensor *x);
	void (*destroy)(void *state);
	/* Adds its parameters and activation floats per sample; returns the feature size (before
	 * model.c's projection). */
	int64_t (*estimate)(const EncoderConfig *c, int in_c, int in_h, int in_w, int64_t *params,
	                    int64_t *act_floats);
	int own_out_dim;                  /* out_dim is the encoder's own last layer (no projection) */
	/* Optional: per-token states. Patches (MAE): images -> (B, n(+1), dim), keep-list optional. */
	Tensor *(*forward_patches)(Ctx *ctx, Encoder *e, Tensor *x, const int *keep, int n_keep);
	int (*n_patches)(const Encoder *e);
	/* Tokens (language models): ids (B*T) -> (B,T,dim), and the underlying Transformer. */
	Tensor *(*forward_tokens)(Ctx *ctx, Encoder *e, const int *ids, int B, int T);
	struct Transformer *(*transformer)(Encoder *e);
} EncoderDesc;

struct Encoder {
	EncoderConfig cfg;
	const EncoderDesc *desc;
	int in_c, in_h, in_w;
	int out_dim;
	void *state;                      /* the encoder file's own network */
	Linear fc;                        /* projection to cfg.out_dim when !own_out_dim */
	int has_fc;
};

/* The keys of a stack of transformer blocks (vit, transformer): rows to put in a key table. */
#define ENCODER_BLOCK_KEYS                                                                        \
	{ "dim", PARAM_INTEGER, .def = 128, .min = 1, .max = 8192,                                    \
	  .help = "token width, divisible by heads", PARAM_AT(EncoderConfig, dim) },                  \
	{ "depth", PARAM_INTEGER, .def = 4, .min = 1, .max = 64, .help = "transformer blocks, 1..64", \
	  PARAM_AT(EncoderConfig, depth) },                                                           \
	{ "heads", PARAM_INTEGER, .def = 4, .min = 1, .max = 256, .help = "attention heads, 1..256",  \
	  PARAM_AT(EncoderConfig, heads) },                                                           \
	{ "mlp_ratio", PARAM_INTEGER, .def = 4, .min = 1, .max = 16,                                  \
	  .help = "MLP width = dim * mlp_ratio, 1..16", PARAM_AT(EncoderConfig, mlp_ratio) },         \
	{ "pool", PARAM_ENUM, .def_str = "mean", .choices = "mean|cls",                               \
	  .help = "features: \"mean\" over tokens or \"cls\" token", PARAM_AT(EncoderConfig, pool) }

/* Keys every encoder takes (dropout), listed once in registry.c. */
extern const ParamDef encoder_common_keys[];
extern const int encoder_common_key_count;

/* Shared helpers for encoder files (model.c). */
/* The block keys' ranges and heads dividing dim. */
int encoder_check_blocks(const EncoderConfig *c, char *err, size_t errlen);
int encoder_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "model.<field>: v must be in [lo, hi]" when v lies outside. */
int encoder_check_range(int v, int lo, int hi, const char *field, char *err, size_t errlen);
/* tokens (B,T,D) -> (B,D): mean over tokens (pool 0) or the first token (pool 1). */
Tensor *encoder_pool_tokens(Ctx *ctx, const Encoder *e, Tensor *t);
/* Parameters and activation floats per sample of a stack of transformer blocks over T tokens. */
void encoder_estimate_blocks(const EncoderConfig *c, int64_t T, int64_t *params, int64_t *acts);
/* The Mlp's own builder with a BN+ReLU after the last layer too (the mlp encoder, out_dim 0). */
int mlp_build(ParamSet *ps, const char *prefix, const int *dims, int n, int batchnorm,
              int final_act, Rng *rng, Mlp **out);

#endif
