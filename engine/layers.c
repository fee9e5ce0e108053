/* layers.c - parameterised layers (see layers.h): each registers PyTorch-compatible named
 * parameters and builds its forward pass from ops.h, so autodiff comes from the ops.
 *
 * It deliberately does not define backward passes (the ops do), own parameter memory (the
 * ParamSet does), or know about encoders and configs (model.c composes layers into encoders).
 * The one place that computes without ops is transformer_step_cached: attention of one new query
 * over the cached keys/values is an inference-only loop (no tape, no gradients). */
#include "layers.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ops.h"

/* ---------------------------------------------------------------------------------------------- */
/* Parameter registration helpers */

/* Add "<prefix>.<suffix>" to ps; NULL with *rc set to a negative errno on failure. */
static Tensor *add_param(ParamSet *ps, const char *prefix, const char *suffix, int ndim,
                         const int *shape, int flags, int *rc)
{
	char name[LAYER_NAME_MAX];
	int n = snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", suffix);
	if (n < 0 || (size_t)n >= sizeof name) {
		*rc = -ENAMETOOLONG;
		return NULL;
	}
	if (paramset_find(ps, name)) {
		*rc = -EEXIST;
		return NULL;
	}
	Tensor *t = paramset_add(ps, name, ndim, shape, flags);
	if (!t)
		*rc = -ENOMEM;
	return t;
}

/* "<prefix>.<sub>" into buf (for nested layers); -ENAMETOOLONG if it does not fit. */
static int join_name(char *buf, size_t len, const char *prefix, const char *sub)
{
	int n = snprintf(buf, len, "%s%s%s", prefix, prefix[0] ? "." : "", sub);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static void fill_uniform(Tensor *t, float bound, Rng *rng)
{
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = rng_uniform_range(rng, -bound, bound);
}

static void fill_normal(Tensor *t, float std, Rng *rng)
{
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = std * rng_normal(rng);
}

static void fill_const(Tensor *t, float v)
{
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = v;
}

/* ---------------------------------------------------------------------------------------------- */
/* Linear */

int linear_init(Linear *l, ParamSet *ps, const char *prefix, int in, int out, int bias, Rng *rng)
{
	int rc = 0;
	memset(l, 0, sizeof *l);
	if (in <= 0 || out <= 0)
		return -EINVAL;
	l->in = in;
	l->out = out;
	l->weight = add_param(ps, prefix, "weight", 2, (int[]){ out, in }, PARAM_DECAY, &rc);
	if (!l->weight)
		return rc;
	float bound = 1.0f / sqrtf((float)in);
	fill_uniform(l->weight, bound, rng);
	if (bias) {
		l->bias = add_param(ps, prefix, "bias", 1, (int[]){ out }, 0, &rc);
		if (!l->bias)
			return rc;
		fill_uniform(l->bias, bound, rng);
	}
	return 0;
}

// x (..., in) -> (..., out)
Tensor *linear_forward(Ctx *ctx, const Linear *l, Tensor *x)
{
	return op_linear(ctx, x, l->weight, l->bias);
}

/* ---------------------------------------------------------------------------------------------- */
/* Conv2d */

int conv2d_init(Conv2d *c, ParamSet *ps, const char *prefix, int in_c, int out_c, int k,
                int stride, int pad, int bias, Rng *rng)
{
	int rc = 0;
	memset(c, 0, sizeof *c);
	if (in_c <= 0 || out_c <= 0 || k <= 0 || stride <= 0 || pad < 0)
		return -EINVAL;
	*c = (Conv2d){ .in_c = in_c, .out_c = out_c, .k = k, .stride = stride, .pad = pad };
	c->weight = add_param(ps, prefix, "weight", 4, (int[]){ out_c, in_c, k, k }, PARAM_DECAY, &rc);
	if (!c->weight)
		return rc;
	float bound = 1.0f / sqrtf((float)(in_c * k * k));
	fill_uniform(c->weight, bound, rng);
	if (bias) {
		c->bias = add_param(ps, prefix, "bias", 1, (int[]){ out_c }, 0, &rc);
		if (!c->bias)
			return rc;
		fill_uniform(c->bias, bound, rng);
	}
	return 0;
}

// x (N,C,H,W) -> (N,O,H',W')
Tensor *conv2d_forward(Ctx *ctx, const Conv2d *c, Tensor *x)
{
	return op_conv2d(ctx, x, c->weight, c->bias, c->stride, c->pad);
}

int conv2d_out_size(const Conv2d *c, int in)
{
	return (in + 2 * c->pad - c->k) / c->stride + 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Normalisation */

int batchnorm_init(BatchNorm *bn, ParamSet *ps, const char *prefix, int c)
{
	int rc = 0;
	memset(bn, 0, sizeof *bn);
	if (c <= 0)
		return -EINVAL;
	bn->c = c;
	bn->momentum = 0.1f;
	bn->eps = 1e-5f;
	if (!(bn->weight = add_param(ps, prefix, "weight", 1, (int[]){ c }, 0, &rc)) ||
	    !(bn->bias = add_param(ps, prefix, "bias", 1, (int[]){ c }, 0, &rc)) ||
	    !(bn->running_mean = add_param(ps, prefix, "running_mean", 1, (int[]){ c }, PARAM_BUFFER, &rc)) ||
	    !(bn->running_var = add_param(ps, prefix, "running_var", 1, (int[]){ c }, PARAM_BUFFER, &rc)))
		return rc;
	fill_const(bn->weight, 1.0f);
	fill_const(bn->running_var, 1.0f);
	return 0;
}

// x (N,C) or (N,C,H,W) -> same shape
Tensor *batchnorm_forward(Ctx *ctx, const BatchNorm *bn, Tensor *x)
{
	return op_batchnorm(ctx, x, bn->weight, bn->bias, bn->running_mean->data,
	                    bn->running_var->data, bn->momentum, bn->eps);
}

// x (N,C) or (N,C,H,W) -> same shape
Tensor *batchnorm_relu_forward(Ctx *ctx, const BatchNorm *bn, Tensor *x)
{
	return op_batchnorm_relu(ctx, x, bn->weight, bn->bias, bn->running_mean->data,
	                         bn->running_var->data, bn->momentum, bn->eps);
}

int layernorm_init(LayerNorm *ln, ParamSet *ps, const char *prefix, int d)
{
	int rc = 0;
	memset(ln, 0, sizeof *ln);
	if (d <= 0)
		return -EINVAL;
	ln->d = d;
	ln->eps = 1e-5f;
	if (!(ln->weight = add_param(ps, prefix, "weight", 1, (int[]){ d }, 0, &rc)) ||
	    !(ln->bias = add_param(ps, prefix, "bias", 1, (int[]){ d }, 0, &rc)))
		return rc;
	fill_const(ln->weight, 1.0f);
	return 0;
}

// x (..., D) -> same shape
Tensor *layernorm_forward(Ctx *ctx, const LayerNorm *ln, Tensor *x)
{
	return op_layernorm(ctx, x, ln->weight, ln->bias, ln->eps);
}

/* ---------------------------------------------------------------------------------------------- */
/* Embedding */

int embedding_init(Embedding *e, ParamSet *ps, const char *prefix, int vocab, int d, float std,
                   Rng *rng)
{
	int rc = 0;
	memset(e, 0, sizeof *e);
	if (vocab <= 0 || d <= 0)
		return -EINVAL;
	e->vocab = vocab;
	e->d = d;
	e->weight = add_param(ps, prefix, "weight", 2, (int[]){ vocab, d }, PARAM_DECAY, &rc);
	if (!e->weight)
		return rc;
	fill_normal(e->weight, std, rng);
	return 0;
}

// ids (n) -> (n,D)
Tensor *embedding_forward(Ctx *ctx, const Embedding *e, const int *ids, int n)
{
	for (int i = 0; i < n; i++) {
		if (ids[i] < 0 || ids[i] >= e->vocab) {
			fprintf(stderr, "ssld engine: embedding %s: token id %d at %d outside [0,%d)\n",
			        e->weight->name ? e->weight->name : "?", ids[i], i, e->vocab);
			abort();
		}
	}
	return op_embedding(ctx, e->weight, ids, n);
}

/* ---------------------------------------------------------------------------------------------- */
/* Multi-head self-attention and the Transformer block */

int attention_init(Attention *a, ParamSet *ps, const char *prefix, int dim, int heads,
                   int causal, Rng *rng)
{
	char name[LAYER_NAME_MAX];
	int rc;
	memset(a, 0, sizeof *a);
	if (dim <= 0 || heads <= 0 || dim % heads != 0)
		return -EINVAL;
	a->dim = dim;
	a->heads = heads;
	a->head_dim = dim / heads;
	a->causal = causal;
	if ((rc = join_name(name, sizeof name, prefix, "qkv")) < 0 ||
	    (rc = linear_init(&a->qkv, ps, name, dim, 3 * dim, 1, rng)) < 0)
		return rc;
	if ((rc = join_name(name, sizeof name, prefix, "proj")) < 0 ||
	    (rc = linear_init(&a->proj, ps, name, dim, dim, 1, rng)) < 0)
		return rc;
	return 0;
}

// x (B,T,D) -> (B,T,D)
Tensor *attention_forward(Ctx *ctx, const Attention *a, Tensor *x)
{
	int B = x->shape[0], T = x->shape[1];
	Tensor *x2 = op_reshape(ctx, x, 2, (int[]){ B * T, a->dim });
	Tensor *qkv = linear_forward(ctx, &a->qkv, x2);                 // (B*T,3D)
	Tensor *o = op_attention_qkv(ctx, qkv, B, a->heads, a->causal); // (B*T,D)
	o = linear_forward(ctx, &a->proj, o);
	return op_reshape(ctx, o, 3, (int[]){ B, T, a->dim });
}

int block_init(Block *b, ParamSet *ps, const char *prefix, int dim, int heads, int mlp_ratio,
               int causal, float dropout, Rng *rng)
{
	char name[LAYER_NAME_MAX];
	int rc;
	memset(b, 0, sizeof *b);
	if (mlp_ratio <= 0)
		return -EINVAL;
	b->dropout = dropout;
	if ((rc = join_name(name, sizeof name, prefix, "norm1")) < 0 ||
	    (rc = layernorm_init(&b->norm1, ps, name, dim)) < 0 ||
	    (rc = join_name(name, sizeof name, prefix, "attn")) < 0 ||
	    (rc = attention_init(&b->attn, ps, name, dim, heads, causal, rng)) < 0 ||
	    (rc = join_name(name, sizeof name, prefix, "norm2")) < 0 ||
	    (rc = layernorm_init(&b->norm2, ps, name, dim)) < 0 ||
	    (rc = join_name(name, sizeof name, prefix, "mlp.fc1")) < 0 ||
	    (rc = linear_init(&b->fc1, ps, name, dim, mlp_ratio * dim, 1, rng)) < 0 ||
	    (rc = join_name(name, sizeof name, prefix, "mlp.fc2")) < 0 ||
	    (rc = linear_init(&b->fc2, ps, name, mlp_ratio * dim, dim, 1, rng)) < 0)
		return rc;
	return 0;
}

static Tensor *maybe_dropout(Ctx *ctx, Tensor *x, float p)
{
	return p > 0.0f ? op_dropout(ctx, x, p) : x;
}

// x (B,T,D) -> (B,T,D)
Tensor *block_forward(Ctx *ctx, const Block *b, Tensor *x)
{
	Tensor *h = attention_forward(ctx, &b->attn, layernorm_forward(ctx, &b->norm1, x));
	x = op_add(ctx, x, maybe_dropout(ctx, h, b->dropout));
	h = layernorm_forward(ctx, &b->norm2, x);
	h = linear_forward(ctx, &b->fc2, op_gelu(ctx, linear_forward(ctx, &b->fc1, h)));
	return op_add(ctx, x, maybe_dropout(ctx, h, b->dropout));
}

/* ---------------------------------------------------------------------------------------------- */
/* ViT patch embedding */

int patch_embed_init(PatchEmbed *p, ParamSet *ps, const char *prefix, int in_c, int in_h,
                     int in_w, int patch, int dim, int cls, Rng *rng)
{
	char name[LAYER_NAME_MAX];
	int rc = 0;
	memset(p, 0, sizeof *p);
	if (patch <= 0 || dim <= 0 || in_h % patch != 0 || in_w % patch != 0)
		return -EINVAL;
	p->patch = patch;
	p->grid_h = in_h / patch;
	p->grid_w = in_w / patch;
	p->n_patches = p->grid_h * p->grid_w;
	p->dim = dim;
	if ((rc = join_name(name, sizeof name, prefix, "patch_embed.proj")) < 0 ||
	    (rc = conv2d_init(&p->proj, ps, name, in_c, dim, patch, patch, 0, 1, rng)) < 0)
		return rc;
	int ntok = p->n_patches + (cls ? 1 : 0);
	p->pos_embed = add_param(ps, prefix, "pos_embed", 3, (int[]){ 1, ntok, dim }, 0, &rc);
	if (!p->pos_embed)
		return rc;
	fill_normal(p->pos_embed, 0.02f, rng);
	if (cls) {
		p->cls_token = add_param(ps, prefix, "cls_token", 3, (int[]){ 1, 1, dim }, 0, &rc);
		if (!p->cls_token)
			return rc;
		fill_normal(p->cls_token, 0.02f, rng);
	}
	return 0;
}

// x (B,C,H,W) -> (B, cls + n, D)
Tensor *patch_embed_forward(Ctx *ctx, const PatchEmbed *p, Tensor *x, const int *keep, int n_keep)
{
	int B = x->shape[0], N = p->n_patches, D = p->dim, off = p->cls_token ? 1 : 0;
	Tensor *t = conv2d_forward(ctx, &p->proj, x);                    // (B,D,gh,gw)
	t = op_reshape(ctx, t, 3, (int[]){ B, D, N });
	t = op_permute(ctx, t, (int[]){ 0, 2, 1 });                      // (B,N,D)
	Tensor *pos = p->pos_embed;
	if (off)
		pos = op_slice(ctx, pos, 1, 1, N);                           // (1,N,D)
	t = op_add(ctx, t, pos);
	int n = N;
	if (keep) {
		int *rows = ctx_alloc(ctx, (size_t)B * (size_t)n_keep * sizeof *rows);
		for (int b = 0; b < B; b++) {
			for (int j = 0; j < n_keep; j++) {
				int k = keep[b * n_keep + j];
				if (k < 0 || k >= N) {
					fprintf(stderr, "ssld engine: patch_embed: keep[%d] = %d outside [0,%d)\n",
					        b * n_keep + j, k, N);
					abort();
				}
				rows[b * n_keep + j] = b * N + k;
			}
		}
		t = op_reshape(ctx, t, 2, (int[]){ B * N, D });
		t = op_gather_rows(ctx, t, rows, B * n_keep);
		n = n_keep;
		t = op_reshape(ctx, t, 3, (int[]){ B, n, D });
	}
	if (off) {
		Tensor *c = op_add(ctx, p->cls_token, op_slice(ctx, p->pos_embed, 1, 0, 1)); // (1,1,D)
		c = op_add(ctx, ctx_zeros(ctx, 3, (int[]){ B, 1, D }), c);                   // (B,1,D)
		t = op_concat(ctx, (Tensor *[]){ c, t }, 2, 1);
	}
	return t;
}

/* ---------------------------------------------------------------------------------------------- */
/* Token Transformer */

int transformer_init(Transformer *t, ParamSet *ps, const char *prefix, int vocab, int context,
                     int dim, int depth, int heads, int mlp_ratio, int causal, float dropout,
                     Rng *rng)
{
	char name[LAYER_NAME_MAX];
	int rc = 0;
	memset(t, 0, sizeof *t);
	if (vocab <= 0 || context <= 0 || dim <= 0 || depth <= 0 || heads <= 0 || dim % heads)
		return -EINVAL;
	*t = (Transformer){ .dim = dim, .heads = heads, .context = context, .vocab = vocab,
	                    .causal = causal };
	if ((rc = join_name(name, sizeof name, prefix, "wte")) < 0 ||
	    (rc = embedding_init(&t->wte, ps, name, vocab, dim, 0.02f, rng)) < 0)
		return rc;
	t->wpe = add_param(ps, prefix, "wpe", 2, (int[]){ context, dim }, 0, &rc);
	if (!t->wpe)
		return rc;
	fill_normal(t->wpe, 0.02f, rng);
	t->blocks = eng_calloc((size_t)depth, sizeof *t->blocks);
	if (!t->blocks)
		return -ENOMEM;
	t->depth = depth;
	for (int i = 0; i < depth; i++) {
		char sub[32];
		snprintf(sub, sizeof sub, "blocks.%d", i);
		if ((rc = join_name(name, sizeof name, prefix, sub)) < 0 ||
		    (rc = block_init(&t->blocks[i], ps, name, dim, heads, mlp_ratio, causal, dropout,
		                     rng)) < 0)
			return rc;
	}
	if ((rc = join_name(name, sizeof name, prefix, "norm")) < 0 ||
	    (rc = layernorm_init(&t->norm, ps, name, dim)) < 0)
		return rc;
	return 0;
}

void transformer_close(Transformer *t)
{
	if (!t)
		return;
	eng_free(t->blocks);
	t->blocks = NULL;
	t->depth = 0;
}

// ids (B*T) -> (B,T,D)
Tensor *transformer_forward(Ctx *ctx, const Transformer *t, const int *ids, int B, int T)
{
	if (T > t->context) {
		fprintf(stderr, "ssld engine: transformer: sequence length %d exceeds context %d\n", T,
		        t->context);
		abort();
	}
	Tensor *x = embedding_forward(ctx, &t->wte, ids, B * T);          // (B*T,D)
	x = op_reshape(ctx, x, 3, (int[]){ B, T, t->dim });
	Tensor *pos = t->wpe;
	if (T < t->context)
		pos = op_slice(ctx, pos, 0, 0, T);                            // (T,D)
	x = op_add(ctx, x, pos);
	if (t->depth > 0)
		x = maybe_dropout(ctx, x, t->blocks[0].dropout);
	for (int i = 0; i < t->depth; i++)
		x = block_forward(ctx, &t->blocks[i], x);
	return layernorm_forward(ctx, &t->norm, x);
}

int kvcache_init(KVCache *c, const Transformer *t, int batch)
{
	memset(c, 0, sizeof *c);
	if (batch <= 0 || t->depth <= 0)
		return -EINVAL;
	*c = (KVCache){ .depth = t->depth, .batch = batch, .heads = t->heads,
	                .head_dim = t->dim / t->heads, .context = t->context };
	size_t n = (size_t)t->depth * (size_t)batch * (size_t)t->context * (size_t)t->dim;
	c->k = eng_aligned_alloc(n * sizeof(float));
	c->v = eng_aligned_alloc(n * sizeof(float));
	if (!c->k || !c->v) {
		kvcache_close(c);
		return -ENOMEM;
	}
	return 0;
}

void kvcache_close(KVCache *c)
{
	if (!c)
		return;
	eng_free(c->k);
	eng_free(c->v);
	c->k = c->v = NULL;
	c->len = 0;
}

void kvcache_clear(KVCache *c)
{
	c->len = 0;
}

/* One query per (b,h) attends over positions 0..pos of the cache. The new key/value are written
 * first, so the query sees itself (causal attention includes the diagonal). */
// qkv (B,3D) -> out (B,D)
static void cached_attention(Ctx *ctx, const Attention *a, KVCache *c, int layer, const float *qkv,
                             float *out, int B)
{
	int D = a->dim, H = a->heads, Dh = a->head_dim, pos = c->len, L = pos + 1;
	float scale = 1.0f / sqrtf((float)Dh);
	float *p = ctx_alloc(ctx, (size_t)L * sizeof *p);
	for (int b = 0; b < B; b++) {
		const float *row = qkv + (size_t)b * 3 * D;
		for (int h = 0; h < H; h++) {
			size_t base = (((size_t)layer * c->batch + b) * H + h) * (size_t)c->context * Dh;
			float *kc = c->k + base, *vc = c->v + base;
			memcpy(kc + (size_t)pos * Dh, row + D + h * Dh, (size_t)Dh * sizeof(float));
			memcpy(vc + (size_t)pos * Dh, row + 2 * D + h * Dh, (size_t)Dh * sizeof(float));
			const float *q = row + h * Dh;
			float mx = -INFINITY;
			for (int t = 0; t < L; t++) {
				const float *kt = kc + (size_t)t * Dh;
				float s = 0.0f;
				for (int d = 0; d < Dh; d++)
					s += q[d] * kt[d];
				p[t] = s * scale;
				if (p[t] > mx)
					mx = p[t];
			}
			float sum = 0.0f;
			for (int t = 0; t < L; t++) {
				p[t] = expf(p[t] - mx);
				sum += p[t];
			}
			float *o = out + (size_t)b * D + h * Dh;
			memset(o, 0, (size_t)Dh * sizeof *o);
			for (int t = 0; t < L; t++) {
				const float *vt = vc + (size_t)t * Dh;
				float w = p[t] / sum;
				for (int d = 0; d < Dh; d++)
					o[d] += w * vt[d];
			}
		}
	}
}

// ids (B) -> (B,D), the hidden state at position c->len
Tensor *transformer_step_cached(Ctx *ctx, const Transformer *t, KVCache *c, const int *ids, int B)
{
	if (!t->causal || B != c->batch || c->len >= c->context || c->depth != t->depth)
		return NULL;
	int D = t->dim, pos = c->len;
	int prev = ctx_set_grad_enabled(ctx, 0);
	Tensor *x = embedding_forward(ctx, &t->wte, ids, B);                          // (B,D)
	x = op_add(ctx, x, ctx_wrap(ctx, t->wpe->data + (size_t)pos * D, 1, (int[]){ D }));
	for (int l = 0; l < t->depth; l++) {
		const Block *blk = &t->blocks[l];
		Tensor *h = layernorm_forward(ctx, &blk->norm1, x);
		Tensor *qkv = linear_forward(ctx, &blk->attn.qkv, h);                       // (B,3D)
		Tensor *att = ctx_tensor(ctx, 2, (int[]){ B, D });
		cached_attention(ctx, &blk->attn, c, l, qkv->data, att->data, B);
		x = op_add(ctx, x, linear_forward(ctx, &blk->attn.proj, att));
		h = layernorm_forward(ctx, &blk->norm2, x);
		h = linear_forward(ctx, &blk->fc2, op_gelu(ctx, linear_forward(ctx, &blk->fc1, h)));
		x = op_add(ctx, x, h);
	}
	x = layernorm_forward(ctx, &t->norm, x);
	c->len++;
	ctx_set_grad_enabled(ctx, prev);
	return x;
}
