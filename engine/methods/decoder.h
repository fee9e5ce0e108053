/* decoder.h - decoders for the self-predictive image methods: a latent code (B,L) back to an image
 * (B,C,H,W), as logits (apply a sigmoid for pixels in [0,1]).
 *
 * Two kinds, mirroring the encoder they pair with:
 *   mlp   "<prefix>.fc<i>" Linear layers L -> hidden... -> C*H*W, BN+ReLU between layers when the
 *         encoder uses BatchNorm. Hidden widths: the MLP encoder's, reversed; {256, 512} for other
 *         encoders.
 *   conv  "<prefix>.fc" Linear(L, C_last*h*w) to the encoder's last feature-map size, then per
 *         encoder stage (in reverse) "<prefix>.up<i>" ConvTranspose2d(3x3, stride 2, padding 1, the
 *         output padding that restores the encoder's exact size) with "<prefix>.bn<i>" + ReLU, and
 *         "<prefix>.out" Conv2d(C_first, C, 3x3, padding 1) to the image. Channels: the CNN encoder's
 *         (default {32,64,128} for other encoders). 28x28 with {32,64,128}:
 *         (128,7,7) -> (64,14,14) -> (32,28,28) -> (1,28,28).
 * "auto" picks conv for a CNN encoder and mlp otherwise.
 *
 *   Decoder *dec;
 *   if (decoder_new(ps, "decoder", DEC_AUTO, &enc_cfg, 32, 1, 28, 28, rng, &dec, err, len) < 0) ...
 *   Tensor *logits = decoder_forward(ctx, dec, z);     // z (B,32) -> (B,1,28,28)
 *   decoder_free(dec);
 *
 * The decoder does not own its parameters (the ParamSet does) and knows nothing of losses.
 */
#ifndef SSLD_METHODS_DECODER_H
#define SSLD_METHODS_DECODER_H

#include <stddef.h>

#include "../ctx.h"
#include "../layers.h"
#include "../model.h"
#include "../params.h"
#include "../rng.h"

/* Same order as the "decoder" method parameter's choices "auto|mlp|conv". */
typedef enum DecoderKind { DEC_AUTO = 0, DEC_MLP = 1, DEC_CONV = 2 } DecoderKind;

/* The "decoder" parameter row of a method whose config struct T has a DecoderKind field f; the
 * choices follow DecoderKind. */
#define DECODER_PARAM(T, f)                                                                      \
	{ "decoder", PARAM_ENUM, .def_str = "auto", .choices = "auto|mlp|conv",                       \
	  .help = "decoder kind; auto = conv for a cnn encoder, mlp otherwise", PARAM_AT(T, f) }

typedef struct Decoder Decoder;

/* 0, or a negative errno with err naming the problem ("decoder: conv decoder needs ..."). */
int decoder_new(ParamSet *ps, const char *prefix, DecoderKind kind, const EncoderConfig *enc,
                int latent, int c, int h, int w, Rng *rng, Decoder **out, char *err, size_t errlen);
void decoder_free(Decoder *d);   /* NULL is a no-op */
/* z (B,latent) -> logits (B,C,H,W). */
Tensor *decoder_forward(Ctx *ctx, Decoder *d, Tensor *z);
DecoderKind decoder_kind(const Decoder *d);   /* DEC_MLP or DEC_CONV (never DEC_AUTO) */

/* ---- encoder -> code -> decoder ---------------------------------------------------------------- */

/* The network of the methods that map an image to an image (autoencoder, denoising autoencoder,
 * colorization, inpainting): "encoder.*" (what the evaluations probe); a linear "bottleneck" from
 * the encoder's features to the latent-sized code, unless the encoder's out_dim already equals
 * latent; "decoder.*" from the code to (out_c,H,W) logits. out_c may differ from the input's
 * channels (colorization reads 3 and predicts 2).
 *
 *   CodeNet net;
 *   if (codenet_init(&net, ps, &enc_cfg, 3, 32, 32, 64, DEC_AUTO, 2, rng, "colorization",
 *                    err, len) < 0) ...
 *   Tensor *logits = codenet_forward(ctx, &net, x);     // x (B,3,32,32) -> (B,2,32,32)
 *   codenet_close(&net);
 */
typedef struct CodeNet {
	Encoder *encoder;
	Linear bottleneck;
	int has_bottleneck;
	Decoder *decoder;
	int latent, in_c, out_c, h, w;
} CodeNet;

/* The "latent_dim" parameter row of a method whose config struct T has an int field f. */
#define LATENT_DIM_PARAM(T, f, d)                                                                \
	{ "latent_dim", PARAM_INTEGER, .def = (d), .min = 1, .max = 4096,                             \
	  .help = "size of the bottleneck code; the encoder output is the code when "                   \
	          "model.out_dim equals it, else a linear layer \"bottleneck\" maps to it",             \
	  PARAM_AT(T, f) }

/* 0, or a negative errno with err naming `who` and the problem. On failure n holds nothing to
 * close. */
int codenet_init(CodeNet *n, ParamSet *ps, const EncoderConfig *enc, int in_c, int h, int w,
                 int latent, DecoderKind kind, int out_c, Rng *rng, const char *who, char *err,
                 size_t errlen);
void codenet_close(CodeNet *n);
/* PretextMethod.encoder and .destroy (codenet_close, then eng_free; NULL is a no-op) of a method
 * whose eng_calloc'd state has a CodeNet as its first member and owns nothing else. */
Encoder *codenet_method_encoder(void *state);
void codenet_method_destroy(void *state);
/* x (B,in_c,H,W) -> code (B,latent) */
Tensor *codenet_code(Ctx *ctx, CodeNet *n, Tensor *x);
/* x (B,in_c,H,W) -> logits (B,out_c,H,W) */
Tensor *codenet_forward(Ctx *ctx, CodeNet *n, Tensor *x);
/* in (count,in_c,H,W) -> sigmoid outputs out (count,out_c,H,W), a batch of at most 256 at a
 * time; ctx is reset before each batch. The caller picks the mode (eval_mode_enter). */
void codenet_predict(Ctx *ctx, CodeNet *n, const float *in, int count, float *out);

/* ---- small helpers shared by the self-predictive methods ------------------------------------- */

/* Evaluation mode on a context (no grad, running BatchNorm statistics); restore afterwards. */
typedef struct EvalMode {
	int training, grad;
} EvalMode;
EvalMode eval_mode_enter(Ctx *ctx);
void eval_mode_leave(Ctx *ctx, EvalMode m);

/* out[i] = 1 / (1 + exp(-logits[i])) for n floats (plain, no tape). */
void sigmoid_into(const float *logits, float *out, size_t n);
/* (B,L) standard normal draws from rng: an arena tensor, no grad (latent codes, noise). */
Tensor *normal_tensor(Ctx *ctx, int B, int L, Rng *rng);
/* sum_i (a[i] - b[i])^2 over n floats, in double. */
double sq_err_sum(const float *a, const float *b, size_t n);

/* A method's PNG artifact dir/name, pixels in [0,1] with 1-pixel gaps, reported through
 * add(user, name) once written: rows[r] (n,C,H,W) one grid row each, or images (n,C,H,W) in cols
 * columns. 0, or < 0 with err set. */
typedef void (*artifact_add_cb)(void *user, const char *name);
int artifact_png_rows(const char *dir, const char *name, const float *const *rows, int n_rows,
                      int n, int c, int h, int w, artifact_add_cb add, void *user, char *err,
                      size_t errlen);
int artifact_png_grid(const char *dir, const char *name, const float *images, int n, int cols,
                      int c, int h, int w, artifact_add_cb add, void *user, char *err,
                      size_t errlen);

#endif
