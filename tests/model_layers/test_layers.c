/* test_layers.c - layers and encoders: shapes, parameter names and layouts, numerics against plain
 * loops (Linear, multi-head attention), the KV-cache step against the full causal forward, config
 * validation messages, gradients reaching every parameter, and a steady-state training step of the
 * small CNN that performs no heap allocation. Not a gradient check (tests/engine does those per op). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ctx.h"
#include "layers.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
#include "check.h"
#include "../engine/attention_ref.h"
#include "../tolerance.h"

static void fill_rand(Tensor *t, Rng *r, float scale)
{
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = scale * rng_normal(r);
}

static int shape_is(const Tensor *t, int ndim, const int *shape)
{
	if (!t || t->ndim != ndim)
		return 0;
	for (int i = 0; i < ndim; i++)
		if (t->shape[i] != shape[i])
			return 0;
	return 1;
}

static const char *shp(const Tensor *t)
{
	static char buf[8][64];
	static int k;
	if (!t)
		return "(null)";
	k = (k + 1) % 8;
	return tensor_shape_str(t, buf[k], sizeof buf[k]);
}

static int flags_of(const ParamSet *ps, const char *name)
{
	for (int i = 0; i < paramset_count(ps); i++)
		if (strcmp(paramset_at(ps, i)->name, name) == 0)
			return paramset_flags_at(ps, i);
	return -1;
}

static void check_param(const ParamSet *ps, const char *name, int ndim, const int *shape, int flags)
{
	Tensor *t = paramset_find(ps, name);
	CHECK(t != NULL, "parameter %s missing", name);
	if (!t)
		return;
	CHECK(shape_is(t, ndim, shape), "%s has shape %s", name, shp(t));
	CHECK(flags_of(ps, name) == flags, "%s flags %d, expected %d", name, flags_of(ps, name), flags);
}

static float max_abs_diff(const float *a, const float *b, size_t n)
{
	float m = 0.0f;
	for (size_t i = 0; i < n; i++) {
		float d = fabsf(a[i] - b[i]);
		if (!(d <= m))
			m = isnan(d) ? INFINITY : d;
	}
	return m;
}

/* ---------------------------------------------------------------------------------------------- */

static void test_linear(void)
{
	ParamSet *ps = paramset_new();
	Ctx *ctx = ctx_new(1);
	Rng r;
	rng_seed(&r, 11);
	Linear l;
	CHECK(linear_init(&l, ps, "fc", 5, 3, 1, &r) == 0, "linear_init");
	check_param(ps, "fc.weight", 2, (int[]){ 3, 5 }, PARAM_DECAY);
	check_param(ps, "fc.bias", 1, (int[]){ 3 }, 0);
	float bound = 1.0f / sqrtf(5.0f), wmax = 0.0f;
	for (size_t i = 0; i < l.weight->size; i++)
		wmax = fmaxf(wmax, fabsf(l.weight->data[i]));
	CHECK(wmax <= bound && wmax > 0.5f * bound, "weight max %g, bound %g", wmax, bound);
	Linear dup;
	CHECK(linear_init(&dup, ps, "fc", 5, 3, 1, &r) == -17 /* EEXIST */, "duplicate names rejected");

	Tensor *x = ctx_tensor(ctx, 3, (int[]){ 2, 4, 5 });
	fill_rand(x, &r, 1.0f);
	Tensor *y = linear_forward(ctx, &l, x);
	CHECK(shape_is(y, 3, (int[]){ 2, 4, 3 }), "linear (2,4,5) -> %s", shp(y));
	double ref[24], mag[24];
	for (int n = 0; n < 8; n++)
		for (int o = 0; o < 3; o++) {
			double s = l.bias->data[o], m = fabs(s);
			for (int i = 0; i < 5; i++) {
				const double t = (double)x->data[n * 5 + i] * l.weight->data[o * 5 + i];
				s += t, m += fabs(t);
			}
			ref[n * 3 + o] = s, mag[n * 3 + o] = m;
		}
	/* 5 products and the bias per output (tests/tolerance.h) */
	failures += tol_check("linear vs loop", y->data, ref, mag, 24, 6);

	Conv2d c;
	CHECK(conv2d_init(&c, ps, "conv", 1, 8, 3, 2, 1, 0, &r) == 0, "conv2d_init");
	check_param(ps, "conv.weight", 4, (int[]){ 8, 1, 3, 3 }, PARAM_DECAY);
	CHECK(paramset_find(ps, "conv.bias") == NULL, "bias-free conv has no bias");
	Tensor *img = ctx_tensor(ctx, 4, (int[]){ 2, 1, 28, 28 });
	fill_rand(img, &r, 1.0f);
	Tensor *h = conv2d_forward(ctx, &c, img);
	CHECK(shape_is(h, 4, (int[]){ 2, 8, 14, 14 }), "conv stride 2 -> %s", shp(h));
	CHECK(conv2d_out_size(&c, 28) == 14, "conv2d_out_size");

	Embedding e;
	CHECK(embedding_init(&e, ps, "emb", 10, 4, 1.0f, &r) == 0, "embedding_init");
	Tensor *ev = embedding_forward(ctx, &e, (int[]){ 3, 7, 3 }, 3);
	CHECK(shape_is(ev, 2, (int[]){ 3, 4 }), "embedding -> %s", shp(ev));
	CHECK(memcmp(ev->data, e.weight->data + 12, 4 * sizeof(float)) == 0, "embedding row 3");
	CHECK(memcmp(ev->data + 8, ev->data, 4 * sizeof(float)) == 0, "same id, same row");

	LayerNorm ln;
	CHECK(layernorm_init(&ln, ps, "ln", 5) == 0, "layernorm_init");
	check_param(ps, "ln.weight", 1, (int[]){ 5 }, 0);
	Tensor *lo = layernorm_forward(ctx, &ln, x);
	float mean = 0.0f;
	for (int i = 0; i < 5; i++)
		mean += lo->data[i];
	CHECK(shape_is(lo, 3, (int[]){ 2, 4, 5 }) && fabsf(mean) < 1e-5f, "layernorm mean %g", mean);
	ctx_free(ctx);
	paramset_free(ps);
}

static void test_batchnorm(void)
{
	ParamSet *ps = paramset_new();
	Ctx *ctx = ctx_new(1);
	Rng r;
	rng_seed(&r, 12);
	BatchNorm bn;
	CHECK(batchnorm_init(&bn, ps, "bn", 3) == 0, "batchnorm_init");
	check_param(ps, "bn.weight", 1, (int[]){ 3 }, 0);
	check_param(ps, "bn.bias", 1, (int[]){ 3 }, 0);
	check_param(ps, "bn.running_mean", 1, (int[]){ 3 }, PARAM_BUFFER);
	check_param(ps, "bn.running_var", 1, (int[]){ 3 }, PARAM_BUFFER);
	CHECK(bn.running_var->data[0] == 1.0f && bn.weight->data[2] == 1.0f, "BN init");

	Tensor *x = ctx_tensor(ctx, 4, (int[]){ 4, 3, 2, 2 });
	fill_rand(x, &r, 1.0f);
	for (size_t i = 0; i < x->size; i++)
		x->data[i] += 5.0f; /* every channel has mean ~5 */
	ctx_set_training(ctx, 1);
	Tensor *y = batchnorm_forward(ctx, &bn, x);
	CHECK(shape_is(y, 4, (int[]){ 4, 3, 2, 2 }), "bn2d -> %s", shp(y));
	CHECK(bn.running_mean->data[1] > 0.35f && bn.running_mean->data[1] < 0.65f,
	      "running mean after one step %g (expected ~0.5)", bn.running_mean->data[1]);
	ctx_set_training(ctx, 0);
	Tensor *ye = batchnorm_forward(ctx, &bn, x);
	CHECK(ye->data[0] > 2.0f, "eval mode uses running stats: %g", ye->data[0]);
	ctx_free(ctx);
	paramset_free(ps);
}

/* Multi-head attention against a plain-loop reference built from the same weights. */
static void test_attention_reference(int causal)
{
	enum { B = 2, T = 5, D = 8, H = 2, Dh = D / H };
	ParamSet *ps = paramset_new();
	Ctx *ctx = ctx_new(1);
	Rng r;
	rng_seed(&r, 13);
	Attention a;
	CHECK(attention_init(&a, ps, "attn", D, H, causal, &r) == 0, "attention_init");
	check_param(ps, "attn.qkv.weight", 2, (int[]){ 3 * D, D }, PARAM_DECAY);
	check_param(ps, "attn.proj.weight", 2, (int[]){ D, D }, PARAM_DECAY);
	Tensor *x = ctx_tensor(ctx, 3, (int[]){ B, T, D });
	fill_rand(x, &r, 1.0f);
	Tensor *y = attention_forward(ctx, &a, x);
	CHECK(shape_is(y, 3, (int[]){ B, T, D }), "attention -> %s", shp(y));

	/* Reference in double, each stage with its error bound (tests/tolerance.h): qkv sums D
	 * products and the bias; attention (attention_ref.h) is evaluated on qkv rounded to float,
	 * with the engine's distance from those inputs (its own error plus the rounding) as input
	 * error; the projection sums D products of attention outputs, each off by its bound, and
	 * the bias. */
	static double qkv[B][T][3 * D], eqkv[B][T][3 * D], ref[B][T][D], bound[B][T][D];
	static float hq[3][B * H * T * Dh];   /* q, k, v as (B,H,T,Dh), rounded to float */
	static double he[3][B * H * T * Dh];  /* their errors */
	const float *W = a.qkv.weight->data, *bq = a.qkv.bias->data;
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int j = 0; j < 3 * D; j++) {
				double s = bq[j], m = fabs(s);
				for (int i = 0; i < D; i++) {
					const double v = (double)x->data[(b * T + t) * D + i] * W[j * D + i];
					s += v, m += fabs(v);
				}
				qkv[b][t][j] = s;
				eqkv[b][t][j] = tol_bound(D + 1, m);
			}
	for (int b = 0; b < B; b++)
		for (int h = 0; h < H; h++)
			for (int t = 0; t < T; t++)
				for (int d = 0; d < Dh; d++)
					for (int w = 0; w < 3; w++) {
						const size_t i = (((size_t)b * H + h) * T + t) * Dh + d;
						const double exact = qkv[b][t][w * D + h * Dh + d];
						hq[w][i] = (float)exact;
						he[w][i] = eqkv[b][t][w * D + h * Dh + d] + fabs(hq[w][i] - exact);
					}
	AttnRef ar;
	const double *const errs[3] = { he[0], he[1], he[2] };
	CHECK(attention_ref(hq[0], hq[1], hq[2], errs, NULL, B * H, T, T, Dh, causal, &ar) == 0,
	      "attention reference: out of memory");
	const float *P = a.proj.weight->data, *pb = a.proj.bias->data;
	for (int b = 0; ar.o && b < B; b++)
		for (int t = 0; t < T; t++)
			for (int j = 0; j < D; j++) {
				double s = pb[j], m = fabs(s), e = 0.0;
				for (int i = 0; i < D; i++) {
					const size_t oi = (((size_t)b * H + i / Dh) * T + t) * Dh + i % Dh;
					s += ar.o[oi] * P[j * D + i];
					m += fabs(ar.o[oi] * P[j * D + i]);
					e += ar.bo[oi] * fabsf(P[j * D + i]);
				}
				ref[b][t][j] = s;
				bound[b][t][j] = e + tol_bound(D + 1, m);
			}
	char what[64];
	snprintf(what, sizeof what, "attention (causal %d) vs loop", causal);
	if (ar.o)
		failures += tol_check_bound(what, y->data, &ref[0][0][0], &bound[0][0][0], B * T * D);
	attention_ref_free(&ar);
	Block blk;
	CHECK(block_init(&blk, ps, "blk", D, H, 4, causal, 0.0f, &r) == 0, "block_init");
	check_param(ps, "blk.mlp.fc1.weight", 2, (int[]){ 4 * D, D }, PARAM_DECAY);
	check_param(ps, "blk.norm2.bias", 1, (int[]){ D }, 0);
	Tensor *z = block_forward(ctx, &blk, x);
	CHECK(shape_is(z, 3, (int[]){ B, T, D }), "block -> %s", shp(z));
	ctx_free(ctx);
	paramset_free(ps);
}

static void test_patch_embed(void)
{
	ParamSet *ps = paramset_new();
	Ctx *ctx = ctx_new(1);
	Rng r;
	rng_seed(&r, 14);
	PatchEmbed p;
	CHECK(patch_embed_init(&p, ps, "vit", 1, 8, 8, 4, 6, 1, &r) == 0, "patch_embed_init");
	check_param(ps, "vit.patch_embed.proj.weight", 4, (int[]){ 6, 1, 4, 4 }, PARAM_DECAY);
	check_param(ps, "vit.pos_embed", 3, (int[]){ 1, 5, 6 }, 0);
	check_param(ps, "vit.cls_token", 3, (int[]){ 1, 1, 6 }, 0);
	Tensor *x = ctx_tensor(ctx, 4, (int[]){ 2, 1, 8, 8 });
	fill_rand(x, &r, 1.0f);
	Tensor *all = patch_embed_forward(ctx, &p, x, NULL, 0);
	CHECK(shape_is(all, 3, (int[]){ 2, 5, 6 }), "patch embed -> %s", shp(all));
	int keep[] = { 3, 0, 1, 2 }; /* sample 0 keeps patches 3,0; sample 1 keeps 1,2 */
	Tensor *kept = patch_embed_forward(ctx, &p, x, keep, 2);
	CHECK(shape_is(kept, 3, (int[]){ 2, 3, 6 }), "patch embed keep 2 -> %s", shp(kept));
	if (shape_is(kept, 3, (int[]){ 2, 3, 6 }) && shape_is(all, 3, (int[]){ 2, 5, 6 })) {
		for (int b = 0; b < 2; b++) {
			CHECK(max_abs_diff(kept->data + b * 18, all->data + b * 30, 6) == 0.0f, "cls first");
			for (int j = 0; j < 2; j++) {
				const float *k = kept->data + b * 18 + (1 + j) * 6;
				const float *f = all->data + b * 30 + (1 + keep[b * 2 + j]) * 6;
				CHECK(max_abs_diff(k, f, 6) == 0.0f, "kept token b%d j%d matches", b, j);
			}
		}
	}
	/* patch 0 of sample 0 is the conv of the top-left 4x4 block plus its position: 16 products,
	 * the bias and the position (tests/tolerance.h) */
	double s = (double)p.proj.bias->data[2] + p.pos_embed->data[1 * 6 + 2];
	double m = fabsf(p.proj.bias->data[2]) + fabsf(p.pos_embed->data[1 * 6 + 2]);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++) {
			const double t = (double)x->data[i * 8 + j] * p.proj.weight->data[2 * 16 + i * 4 + j];
			s += t, m += fabs(t);
		}
	failures += tol_check("patch 0 channel 2", all->data + 1 * 6 + 2, &s, &m, 1, 18);
	ctx_free(ctx);
	paramset_free(ps);
}

/* The KV-cache step must reproduce the full causal forward position by position. */
static void test_kv_cache(void)
{
	enum { B = 3, T = 12, D = 32, CTX = 16 };
	ParamSet *ps = paramset_new();
	Ctx *ctx = ctx_new(1);
	Rng r;
	rng_seed(&r, 15);
	Transformer t;
	CHECK(transformer_init(&t, ps, "gpt", 50, CTX, D, 2, 4, 4, 1, 0.1f, &r) == 0,
	      "transformer_init");
	check_param(ps, "gpt.wte.weight", 2, (int[]){ 50, D }, PARAM_DECAY);
	check_param(ps, "gpt.wpe", 2, (int[]){ CTX, D }, 0);
	check_param(ps, "gpt.blocks.1.attn.qkv.weight", 2, (int[]){ 3 * D, D }, PARAM_DECAY);
	check_param(ps, "gpt.norm.weight", 1, (int[]){ D }, 0);
	/* larger weights than the init so attention is far from uniform */
	for (int i = 0; i < paramset_count(ps); i++) {
		Tensor *p = paramset_at(ps, i);
		if (p->ndim == 2)
			fill_rand(p, &r, 0.3f);
	}
	int ids[B * T];
	for (int i = 0; i < B * T; i++)
		ids[i] = (int)rng_below(&r, 50);
	ctx_set_training(ctx, 0);
	int prev = ctx_set_grad_enabled(ctx, 0);
	Tensor *full = transformer_forward(ctx, &t, ids, B, T);
	CHECK(shape_is(full, 3, (int[]){ B, T, D }), "transformer -> %s", shp(full));
	KVCache kv;
	CHECK(kvcache_init(&kv, &t, B) == 0, "kvcache_init");
	float worst = 0.0f;
	for (int pos = 0; pos < T; pos++) {
		int step_ids[B];
		for (int b = 0; b < B; b++)
			step_ids[b] = ids[b * T + pos];
		Tensor *h = transformer_step_cached(ctx, &t, &kv, step_ids, B);
		CHECK(shape_is(h, 2, (int[]){ B, D }), "step %d -> %s", pos, shp(h));
		if (!h)
			break;
		for (int b = 0; b < B; b++)
			worst = fmaxf(worst, max_abs_diff(h->data + b * D, full->data + (b * T + pos) * D, D));
	}
	printf("kv cache: max |step - full| over %d positions = %.3g\n", T, worst);
	CHECK(worst < 1e-4f, "KV-cache step differs from the full forward by %g", worst);
	CHECK(kv.len == T, "cache length %d", kv.len);
	CHECK(transformer_step_cached(ctx, &t, &kv, ids, B - 1) == NULL, "batch mismatch -> NULL");
	while (kv.len < CTX)
		transformer_step_cached(ctx, &t, &kv, ids, B);
	CHECK(transformer_step_cached(ctx, &t, &kv, ids, B) == NULL, "full cache -> NULL");
	kvcache_clear(&kv);
	CHECK(transformer_step_cached(ctx, &t, &kv, ids, B) != NULL, "cleared cache steps again");
	ctx_set_grad_enabled(ctx, prev);
	kvcache_close(&kv);
	transformer_close(&t);
	ctx_free(ctx);
	paramset_free(ps);
}

/* ---------------------------------------------------------------------------------------------- */
/* Encoders */

/* Every trainable parameter must receive some gradient from loss = mean(out^2). */
static void check_all_grads(Ctx *ctx, ParamSet *ps, Tensor *out, const char *what)
{
	paramset_zero_grad(ps);
	Tensor *loss = op_mean(ctx, op_square(ctx, out), OP_ALL, 0);
	CHECK(ctx_backward(ctx, loss) == 0, "%s backward", what);
	for (int i = 0; i < paramset_count(ps); i++) {
		Tensor *p = paramset_at(ps, i);
		if (paramset_flags_at(ps, i) & PARAM_BUFFER)
			continue;
		int nz = 0;
		for (size_t j = 0; j < p->size && !nz; j++)
			nz = p->grad[j] != 0.0f;
		CHECK(nz, "%s: parameter %s got no gradient", what, p->name);
	}
}

static void test_encoders(void)
{
	enum { B = 4 };
	char err[256];
	Rng r;
	rng_seed(&r, 16);
	Ctx *ctx = ctx_new(2);
	/* images live outside the arena: every ctx_reset below would invalidate an arena tensor */
	static float pixels[B * 784];
	for (size_t i = 0; i < B * 784; i++)
		pixels[i] = rng_uniform(&r);
#define IMG ctx_wrap(ctx, pixels, 4, (int[]){ B, 1, 28, 28 })

	for (int kind = ENC_MLP; kind <= ENC_TRANSFORMER; kind++) {
		EncoderConfig c;
		encoder_config_default(&c, (EncoderKind)kind);
		if (kind == ENC_VIT)
			c.depth = 2;
		ParamSet *ps = paramset_new();
		Encoder *e = NULL;
		int in_w = kind == ENC_TRANSFORMER ? 32 : 28, in_h = kind == ENC_TRANSFORMER ? 1 : 28;
		int rc = encoder_new(&c, ps, "encoder", 1, in_h, in_w, &r, &e, err, sizeof err);
		CHECK(rc == 0, "encoder_new(%s): %s", encoder_kind_name(c.kind), err);
		if (rc < 0) {
			paramset_free(ps);
			continue;
		}
		CHECK(encoder_out_dim(e) == 128, "%s out dim %d", encoder_kind_name(c.kind),
		      encoder_out_dim(e));
		ctx_reset(ctx);
		ctx_set_training(ctx, 1);
		Tensor *x;
		if (kind == ENC_TRANSFORMER) {
			x = ctx_tensor(ctx, 2, (int[]){ B, 32 });
			for (size_t i = 0; i < x->size; i++)
				x->data[i] = (float)rng_below(&r, 256);
		} else {
			x = ctx_tensor(ctx, 4, (int[]){ B, 1, 28, 28 });
			for (size_t i = 0; i < x->size; i++)
				x->data[i] = rng_uniform(&r);
		}
		Tensor *f = encoder_forward(ctx, e, x);
		CHECK(shape_is(f, 2, (int[]){ B, 128 }), "%s features %s", encoder_kind_name(c.kind), shp(f));
		check_all_grads(ctx, ps, f, encoder_kind_name(c.kind));

		switch (kind) {
		case ENC_MLP:
			check_param(ps, "encoder.fc0.weight", 2, (int[]){ 1024, 784 }, PARAM_DECAY);
			CHECK(paramset_find(ps, "encoder.fc0.bias") == NULL, "no bias before BN");
			check_param(ps, "encoder.bn1.running_var", 1, (int[]){ 1024 }, PARAM_BUFFER);
			check_param(ps, "encoder.fc2.weight", 2, (int[]){ 128, 1024 }, PARAM_DECAY);
			check_param(ps, "encoder.fc2.bias", 1, (int[]){ 128 }, 0);
			CHECK(paramset_count(ps) == 12, "mlp has %d tensors", paramset_count(ps));
			break;
		case ENC_CNN:
			check_param(ps, "encoder.conv0.weight", 4, (int[]){ 32, 1, 3, 3 }, PARAM_DECAY);
			check_param(ps, "encoder.conv2.weight", 4, (int[]){ 128, 64, 3, 3 }, PARAM_DECAY);
			check_param(ps, "encoder.bn2.running_mean", 1, (int[]){ 128 }, PARAM_BUFFER);
			CHECK(paramset_count(ps) == 15, "cnn has %d tensors", paramset_count(ps));
			break;
		case ENC_VIT: {
			check_param(ps, "encoder.patch_embed.proj.weight", 4, (int[]){ 128, 1, 4, 4 },
			            PARAM_DECAY);
			check_param(ps, "encoder.pos_embed", 3, (int[]){ 1, 49, 128 }, 0);
			check_param(ps, "encoder.blocks.1.mlp.fc2.weight", 2, (int[]){ 128, 512 }, PARAM_DECAY);
			CHECK(encoder_n_patches(e) == 49, "n_patches %d", encoder_n_patches(e));
			int keep[B * 12];
			for (int b = 0; b < B; b++)
				for (int j = 0; j < 12; j++)
					keep[b * 12 + j] = (j * 4 + b) % 49;
			ctx_reset(ctx);
			Tensor *tok = encoder_forward_patches(ctx, e, IMG, keep, 12);
			CHECK(shape_is(tok, 3, (int[]){ B, 12, 128 }), "vit keep 12 -> %s", shp(tok));
			break;
		}
		case ENC_TRANSFORMER: {
			check_param(ps, "encoder.wte.weight", 2, (int[]){ 256, 128 }, PARAM_DECAY);
			CHECK(encoder_transformer(e) != NULL, "encoder_transformer");
			int ids[2 * 7] = { 1, 2, 3, 4, 5, 6, 7, 200, 100, 0, 255, 9, 8, 7 };
			ctx_reset(ctx);
			Tensor *tok = encoder_forward_tokens(ctx, e, ids, 2, 7);
			CHECK(shape_is(tok, 3, (int[]){ 2, 7, 128 }), "tokens -> %s", shp(tok));
			break;
		}
		}
		encoder_free(e);
		paramset_free(ps);
	}

	/* CLS pooling and a projection on the ViT; a CNN projection; an MLP with out_dim 0. */
	EncoderConfig c;
	encoder_config_default(&c, ENC_VIT);
	c.depth = 1;
	c.pool = 1;
	c.out_dim = 32;
	c.patch = 7;
	ParamSet *ps = paramset_new();
	Encoder *e = NULL;
	CHECK(encoder_new(&c, ps, "enc", 1, 28, 28, &r, &e, err, sizeof err) == 0, "vit cls: %s", err);
	check_param(ps, "enc.cls_token", 3, (int[]){ 1, 1, 128 }, 0);
	check_param(ps, "enc.pos_embed", 3, (int[]){ 1, 17, 128 }, 0);
	check_param(ps, "enc.fc.weight", 2, (int[]){ 32, 128 }, PARAM_DECAY);
	ctx_reset(ctx);
	Tensor *f = encoder_forward(ctx, e, IMG);
	CHECK(shape_is(f, 2, (int[]){ B, 32 }), "vit cls+fc -> %s", shp(f));
	check_all_grads(ctx, ps, f, "vit cls");
	ctx_reset(ctx);
	Tensor *tok = encoder_forward_patches(ctx, e, IMG, (int[]){ 0, 5, 1, 6, 2, 7, 3, 8 }, 2);
	CHECK(shape_is(tok, 3, (int[]){ B, 3, 128 }), "vit cls keep 2 -> %s", shp(tok));
	encoder_free(e);
	paramset_free(ps);

	encoder_config_default(&c, ENC_MLP);
	c.out_dim = 0;
	c.n_hidden = 1;
	c.hidden[0] = 64;
	ps = paramset_new();
	CHECK(encoder_new(&c, ps, "m", 1, 28, 28, &r, &e, err, sizeof err) == 0, "mlp out 0: %s", err);
	CHECK(encoder_out_dim(e) == 64, "mlp out 0 -> dim %d", encoder_out_dim(e));
	CHECK(paramset_find(ps, "m.bn0.weight") != NULL, "hidden layer normalised");
	encoder_free(e);
	paramset_free(ps);

	/* the Mlp head */
	ps = paramset_new();
	Mlp *m = NULL;
	CHECK(mlp_new(ps, "head", (int[]){ 128, 256, 64 }, 3, 1, &r, &m) == 0, "mlp_new");
	check_param(ps, "head.fc0.weight", 2, (int[]){ 256, 128 }, PARAM_DECAY);
	check_param(ps, "head.bn0.weight", 1, (int[]){ 256 }, 0);
	check_param(ps, "head.fc1.weight", 2, (int[]){ 64, 256 }, PARAM_DECAY);
	check_param(ps, "head.fc1.bias", 1, (int[]){ 64 }, 0);
	CHECK(paramset_find(ps, "head.bn1.weight") == NULL, "no BN after the last layer");
	ctx_reset(ctx);
	Tensor *hx = ctx_tensor(ctx, 2, (int[]){ B, 128 });
	fill_rand(hx, &r, 1.0f);
	Tensor *hy = mlp_forward(ctx, m, hx);
	CHECK(shape_is(hy, 2, (int[]){ B, 64 }), "mlp head -> %s", shp(hy));
	CHECK(mlp_new(ps, "head2", (int[]){ 128 }, 1, 1, &r, &m) < 0, "one-dim mlp rejected");
	mlp_free(m);
	mlp_free(NULL);
	encoder_free(NULL);
	paramset_free(ps);
	ctx_free(ctx);
#undef IMG
}

static void expect_invalid(const EncoderConfig *c, int in_h, int in_w, const char *msg)
{
	char err[256] = "";
	Rng r;
	rng_seed(&r, 1);
	ParamSet *ps = paramset_new();
	Encoder *e = NULL;
	int rc = encoder_new(c, ps, "encoder", 1, in_h, in_w, &r, &e, err, sizeof err);
	CHECK(rc < 0 && e == NULL, "expected failure for \"%s\"", msg);
	CHECK(strstr(err, msg) != NULL, "message \"%s\" does not contain \"%s\"", err, msg);
	CHECK(paramset_count(ps) == 0 || rc < 0, "no parameters on failure");
	encoder_free(e);
	paramset_free(ps);
}

static void test_validation(void)
{
	EncoderConfig c;
	encoder_config_default(&c, ENC_VIT);
	c.heads = 3;
	expect_invalid(&c, 28, 28, "model.heads: 3 does not divide model.dim 128");
	encoder_config_default(&c, ENC_VIT);
	c.patch = 5;
	expect_invalid(&c, 28, 28, "model.patch: 5 does not divide the image height 28");
	encoder_config_default(&c, ENC_MLP);
	c.hidden[1] = 0;
	expect_invalid(&c, 28, 28, "model.hidden[1]: 0 must be in [1, 65536]");
	encoder_config_default(&c, ENC_CNN);
	c.n_channels = 0;
	expect_invalid(&c, 28, 28, "model.channels");
	encoder_config_default(&c, ENC_CNN);
	c.pool_grid = 5;   /* 7x7 map: adaptive cells of 2 and 3 rows */
	expect_invalid(&c, 28, 28, "model.pool_grid: 5 does not split the last 7x7 feature map");
	encoder_config_default(&c, ENC_CNN);
	c.pool_grid = 9;
	expect_invalid(&c, 28, 28, "model.pool_grid: 9 must be in [0, 8]");
	encoder_config_default(&c, ENC_TRANSFORMER);
	c.context = 16;
	expect_invalid(&c, 1, 32, "model.context: 16 is shorter than the sample length 32");
	encoder_config_default(&c, ENC_TRANSFORMER);
	c.dropout = 1.5f;
	expect_invalid(&c, 1, 32, "model.dropout");
	encoder_config_default(&c, ENC_CNN);
	c.kind = (EncoderKind)42;
	expect_invalid(&c, 28, 28, "model.kind: unknown encoder kind 42");

	/* Two encoders under one prefix collide. */
	char err[256];
	Rng r;
	rng_seed(&r, 1);
	ParamSet *ps = paramset_new();
	Encoder *a = NULL, *b = NULL;
	encoder_config_default(&c, ENC_CNN);
	CHECK(encoder_new(&c, ps, "encoder", 1, 28, 28, &r, &a, err, sizeof err) == 0, "%s", err);
	CHECK(encoder_new(&c, ps, "encoder", 1, 28, 28, &r, &b, err, sizeof err) < 0 && !b,
	      "duplicate prefix accepted");
	CHECK(strstr(err, "already exist") != NULL, "duplicate message: %s", err);
	encoder_free(a);
	paramset_free(ps);

	/* JSON form */
	char js[1024];
	encoder_config_default(&c, ENC_CNN);
	int n = encoder_config_to_json(&c, js, sizeof js);
	CHECK(n > 0 && (size_t)n == strlen(js), "to_json length %d", n);
	CHECK(strstr(js, "\"kind\":\"cnn\"") && strstr(js, "\"channels\":[32,64,128]") &&
	      strstr(js, "\"batchnorm\":true") && strstr(js, "\"out_dim\":0") &&
	      strstr(js, "\"pool\":\"mean\""), "config json: %s", js);
	CHECK(encoder_config_to_json(&c, js, 20) == -28 /* ENOSPC */, "small buffer -> -ENOSPC");
	CHECK(encoder_config_to_json(&c, js, sizeof js) > 0 && !strstr(js, "\"stem\"") &&
	      !strstr(js, "\"width\""), "a cnn config names no resnet keys: %s", js);
	encoder_config_default(&c, ENC_RESNET34);
	c.stem = 1;
	c.width = 0.3f;
	n = encoder_config_to_json(&c, js, sizeof js);
	CHECK(n > 0 && strstr(js, "\"kind\":\"resnet34\"") &&
	      strstr(js, "\"stem\":\"imagenet\",\"width\":0.3,"), "resnet config json: %s", js);
	EncoderKind k;
	CHECK(encoder_kind_parse("vit", &k) == 0 && k == ENC_VIT, "kind parse");
	CHECK(encoder_kind_parse("resnet", &k) < 0, "unknown kind name");
}

/* After one warm-up step, a CNN training step (forward, cross-entropy, backward, AdamW) at batch 64
 * with ctx_reset per step performs no heap allocation. */
static void test_steady_state_allocs(void)
{
	enum { B = 64, STEPS = 3 };
	char err[256];
	Rng r;
	rng_seed(&r, 17);
	ParamSet *ps = paramset_new();
	EncoderConfig c;
	encoder_config_default(&c, ENC_CNN);
	Encoder *e = NULL;
	CHECK(encoder_new(&c, ps, "encoder", 1, 28, 28, &r, &e, err, sizeof err) == 0, "%s", err);
	Linear head;
	CHECK(linear_init(&head, ps, "head", 128, 10, 1, &r) == 0, "head");
	OptimConfig oc;
	optim_config_default(&oc, OPT_ADAMW);
	Optim *opt = NULL;
	CHECK(optim_new(&oc, ps, &opt) == 0, "optim_new");
	Ctx *ctx = ctx_new(3);
	static float images[B * 784];
	int labels[B];
	for (int i = 0; i < B * 784; i++)
		images[i] = rng_uniform(&r);
	for (int i = 0; i < B; i++)
		labels[i] = (int)rng_below(&r, 10);
	uint64_t before = 0;
	float first = 0.0f, last = 0.0f;
	for (int s = 0; s <= STEPS && e && opt; s++) {
		ctx_reset(ctx);
		/* The warm-up is step 0 plus the reset after it (which consolidates the arena blocks
		 * the first step grew into one block of the high-water size). */
		if (s == 1)
			before = eng_alloc_count();
		Tensor *x = ctx_wrap(ctx, images, 4, (int[]){ B, 1, 28, 28 });
		Tensor *logits = linear_forward(ctx, &head, encoder_forward(ctx, e, x));
		Tensor *loss = op_cross_entropy(ctx, logits, labels, 0.0f);
		if (s == 0)
			first = loss->data[0];
		last = loss->data[0];
		paramset_zero_grad(ps);
		ctx_backward(ctx, loss);
		optim_step(opt, 1e-3f);
	}
	uint64_t grown = eng_alloc_count() - before;
	printf("steady state: %llu heap allocations in %d CNN steps at batch %d (arena %zu KiB); "
	       "loss %.4f -> %.4f\n", (unsigned long long)grown, STEPS, B,
	       ctx_arena_capacity(ctx) >> 10, first, last);
	CHECK(grown == 0, "%llu heap allocations in the steady-state step", (unsigned long long)grown);
	CHECK(last < first, "memorising one batch lowers the loss (%g -> %g)", first, last);
	optim_free(opt);
	encoder_free(e);
	ctx_free(ctx);
	paramset_free(ps);
}

int main(void)
{
	test_linear();
	test_batchnorm();
	test_attention_reference(0);
	test_attention_reference(1);
	test_patch_embed();
	test_kv_cache();
	test_encoders();
	test_validation();
	test_steady_state_allocs();
	return check_exit("test_layers");
}
