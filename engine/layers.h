/* layers.h - the building blocks of every network: Linear, Conv2d, BatchNorm, LayerNorm,
 * Embedding, multi-head self-attention, the pre-LN Transformer block, ViT patch embedding, and a
 * token Transformer with a KV cache for one-token-at-a-time sampling.
 *
 * A layer is a small caller-allocated struct of borrowed Tensor pointers. x_init() registers its
 * parameters in a ParamSet under dotted names ("<prefix>.weight", "<prefix>.bias") and initialises
 * them like PyTorch does; the ParamSet owns the tensors, the layer only points at them. Layouts
 * match PyTorch so a {name: tensor} dict loads into the equivalent torch module:
 *   Linear weight (out,in), Conv2d weight (O,C,kh,kw), BatchNorm weight/bias/running_mean/
 *   running_var (C), LayerNorm weight/bias (D), Embedding weight (V,D).
 * x_forward() is built from ops.h, so it records on the tape and differentiates for free.
 *
 *   Linear fc; Rng rng; rng_seed(&rng, 1);
 *   if (linear_init(&fc, ps, "head.fc", 128, 10, 1, &rng) < 0) ...;   // -ENOMEM / -EEXIST
 *   Tensor *logits = linear_forward(ctx, &fc, feat);                  // feat (B,128) -> (B,10)
 *
 * Init functions return 0 or a negative errno: -EEXIST (a parameter of that name is already in
 * the set), -ENAMETOOLONG, -ENOMEM, -EINVAL (bad sizes). Layers with heap parts (Transformer,
 * KVCache) have a matching x_close(); closing a zeroed struct is a no-op.
 */
#ifndef SSLD_ENGINE_LAYERS_H
#define SSLD_ENGINE_LAYERS_H

#include "ctx.h"
#include "params.h"
#include "rng.h"
#include "tensor.h"

/* Longest parameter name the layers build ("<prefix>.blocks.3.attn.qkv.weight"). */
#define LAYER_NAME_MAX 256

/* ---- Linear ------------------------------------------------------------------------------------ */
/* y = x W^T + b. Init: W, b ~ U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's Kaiming-uniform with a=sqrt(5)).
 * The weight gets weight decay, the bias does not. */
typedef struct Linear {
	Tensor *weight;   /* (out,in) */
	Tensor *bias;     /* (out) or NULL */
	int in, out;
} Linear;

int linear_init(Linear *l, ParamSet *ps, const char *prefix, int in, int out, int bias, Rng *rng);
/* x (..., in) -> (..., out); any leading dims are flattened for the sgemm and restored. */
Tensor *linear_forward(Ctx *ctx, const Linear *l, Tensor *x);

/* ---- Conv2d ------------------------------------------------------------------------------------ */
/* Init like PyTorch: U(-1/sqrt(C*k*k), +) for weight and bias. */
typedef struct Conv2d {
	Tensor *weight;   /* (O,C,k,k) */
	Tensor *bias;     /* (O) or NULL */
	int in_c, out_c, k, stride, pad;
} Conv2d;

int conv2d_init(Conv2d *c, ParamSet *ps, const char *prefix, int in_c, int out_c, int k,
                int stride, int pad, int bias, Rng *rng);
/* x (N,C,H,W) -> (N,O,H',W'), H' = (H + 2*pad - k)/stride + 1. */
Tensor *conv2d_forward(Ctx *ctx, const Conv2d *c, Tensor *x);
int conv2d_out_size(const Conv2d *c, int in);

/* ---- BatchNorm (1d and 2d) ---------------------------------------------------------------------- */
/* weight = 1, bias = 0 (no weight decay); running_mean = 0, running_var = 1 as PARAM_BUFFER
 * tensors "<prefix>.running_mean" / "<prefix>.running_var". momentum 0.1, eps 1e-5 (PyTorch). */
typedef struct BatchNorm {
	Tensor *weight, *bias;               /* (C) */
	Tensor *running_mean, *running_var;  /* (C), buffers */
	int c;
	float momentum, eps;
} BatchNorm;

int batchnorm_init(BatchNorm *bn, ParamSet *ps, const char *prefix, int c);
/* x (N,C) or (N,C,H,W). Training mode: batch statistics (and running stats updated); eval mode:
 * running statistics. */
Tensor *batchnorm_forward(Ctx *ctx, const BatchNorm *bn, Tensor *x);
/* relu(batchnorm_forward(x)) fused into one op (op_batchnorm_relu). */
Tensor *batchnorm_relu_forward(Ctx *ctx, const BatchNorm *bn, Tensor *x);

/* ---- LayerNorm --------------------------------------------------------------------------------- */
typedef struct LayerNorm {
	Tensor *weight, *bias;   /* (D); weight = 1, bias = 0, no weight decay */
	int d;
	float eps;               /* 1e-5 */
} LayerNorm;

int layernorm_init(LayerNorm *ln, ParamSet *ps, const char *prefix, int d);
Tensor *layernorm_forward(Ctx *ctx, const LayerNorm *ln, Tensor *x);   /* x (..., D) */

/* ---- Embedding --------------------------------------------------------------------------------- */
typedef struct Embedding {
	Tensor *weight;   /* (V,D) ~ N(0, std^2); PyTorch's default is std 1, GPT-style models 0.02 */
	int vocab, d;
} Embedding;

int embedding_init(Embedding *e, ParamSet *ps, const char *prefix, int vocab, int d, float std,
                   Rng *rng);
/* ids (n), each in [0,V) -> (n,D). An id out of range is a programming error (abort). */
Tensor *embedding_forward(Ctx *ctx, const Embedding *e, const int *ids, int n);

/* ---- Multi-head self-attention ------------------------------------------------------------------ */
/* "<prefix>.qkv" Linear(D, 3D) (rows: all q, then all k, then all v; head h uses columns
 * h*Dh..(h+1)*Dh of each), "<prefix>.proj" Linear(D, D) - the timm ViT layout. */
typedef struct Attention {
	Linear qkv, proj;
	int dim, heads, head_dim;
	int causal;
} Attention;

int attention_init(Attention *a, ParamSet *ps, const char *prefix, int dim, int heads,
                   int causal, Rng *rng);
/* x (B,T,D) -> (B,T,D). */
Tensor *attention_forward(Ctx *ctx, const Attention *a, Tensor *x);

/* ---- pre-LN Transformer block ------------------------------------------------------------------- */
/* x = x + drop(attn(norm1(x)));  x = x + drop(fc2(gelu(fc1(norm2(x)))))
 * Names: <prefix>.norm1, .attn.qkv, .attn.proj, .norm2, .mlp.fc1 (D -> ratio*D), .mlp.fc2.
 * GELU is the tanh approximation (torch: nn.GELU(approximate="tanh")). */
typedef struct Block {
	LayerNorm norm1, norm2;
	Attention attn;
	Linear fc1, fc2;
	float dropout;
} Block;

int block_init(Block *b, ParamSet *ps, const char *prefix, int dim, int heads, int mlp_ratio,
               int causal, float dropout, Rng *rng);
Tensor *block_forward(Ctx *ctx, const Block *b, Tensor *x);   /* x (B,T,D) -> (B,T,D) */

/* ---- ViT patch embedding ------------------------------------------------------------------------ */
/* A conv with kernel = stride = patch ("<prefix>.patch_embed.proj", bias), learned positional
 * embeddings "<prefix>.pos_embed" (1, cls + N, D) and, when cls, "<prefix>.cls_token" (1,1,D);
 * both ~ N(0, 0.02^2). Patches are numbered row-major over the (H/p, W/p) grid. */
typedef struct PatchEmbed {
	Conv2d proj;
	Tensor *pos_embed;   /* (1, cls + n_patches, D) */
	Tensor *cls_token;   /* (1,1,D) or NULL */
	int patch, grid_h, grid_w, n_patches, dim;
} PatchEmbed;

int patch_embed_init(PatchEmbed *p, ParamSet *ps, const char *prefix, int in_c, int in_h,
                     int in_w, int patch, int dim, int cls, Rng *rng);
/* x (B,C,H,W) -> tokens (B, cls + n, D) with positions added; keep (B*n_keep patch indices per
 * sample, MAE) selects n = n_keep patches per sample, NULL keeps all n_patches in order. The CLS
 * token (with pos_embed[0]) comes first. */
Tensor *patch_embed_forward(Ctx *ctx, const PatchEmbed *p, Tensor *x, const int *keep, int n_keep);

/* ---- token Transformer (GPT/BERT-style) and its KV cache ---------------------------------------- */
/* "<prefix>.wte" Embedding(V,D), "<prefix>.wpe" (context, D) learned positions (both N(0,0.02^2)),
 * depth blocks "<prefix>.blocks.<i>", final LayerNorm "<prefix>.norm". Output: normalised hidden
 * states, ready for an LM head (logits = h W^T). */
typedef struct Transformer {
	Embedding wte;
	Tensor *wpe;         /* (context, D) */
	Block *blocks;       /* depth, heap (eng_calloc) */
	int depth;
	LayerNorm norm;
	int dim, heads, context, vocab, causal;
} Transformer;

int transformer_init(Transformer *t, ParamSet *ps, const char *prefix, int vocab, int context,
                     int dim, int depth, int heads, int mlp_ratio, int causal, float dropout,
                     Rng *rng);
void transformer_close(Transformer *t);
/* ids (B*T), T <= context -> (B,T,D). */
Tensor *transformer_forward(Ctx *ctx, const Transformer *t, const int *ids, int B, int T);

/* Keys and values of every layer for the positions seen so far; heap memory sized at init, so
 * stepping allocates only from the ctx arena. Layout k/v: (depth, B, H, context, Dh). */
typedef struct KVCache {
	float *k, *v;
	int depth, batch, heads, head_dim, context;
	int len;             /* positions filled (the next token goes at position len) */
} KVCache;

int kvcache_init(KVCache *c, const Transformer *t, int batch);
void kvcache_close(KVCache *c);
void kvcache_clear(KVCache *c);      /* len = 0 */
/* Causal inference step: ids (B), the token at position c->len of each sequence -> its hidden
 * state (B,D) after the final norm, equal (up to float rounding) to row c->len of
 * transformer_forward over the whole prefix. Appends the new keys/values and increments len.
 * No tape, no dropout. Returns NULL when the cache is full (len == context) or B does not match. */
Tensor *transformer_step_cached(Ctx *ctx, const Transformer *t, KVCache *c, const int *ids, int B);

#endif
