/* vit.c - the vit encoder (ViT-tiny): patch embedding, pre-LN transformer blocks, a final
 * LayerNorm, features pooled over the tokens (mean, or the CLS token). MAE reads its per-patch
 * states through forward_patches.
 *
 *   P.patch_embed.proj Conv2d(C, dim, patch x patch, stride patch, bias), tokens row-major over
 *   the patch grid, P.pos_embed (1, cls + N, dim) added, P.cls_token (1,1,dim) first when
 *   pool = 1; depth pre-LN blocks P.blocks.<i> (norm1, attn.qkv, attn.proj, norm2, mlp.fc1,
 *   mlp.fc2; GELU tanh); final LayerNorm P.norm; features = mean over tokens (pool 0) or the CLS
 *   token (pool 1); optional P.fc Linear(dim, out_dim) (model.c). Dropout after the patch
 *   embedding and inside the blocks.
 */
#include "encoder.h"

#include <errno.h>
#include <stdio.h>

#include "../alloc.h"
#include "../ops.h"

static const ParamDef vit_keys[] = {
	ENCODER_BLOCK_KEYS,
	{ "patch", PARAM_INTEGER, .def = 4, .min = 1, .max = 28, .choices = "4|7",
	  .help = "patch size, 4 or 7", PARAM_AT(EncoderConfig, patch) },
};

typedef struct Vit {
	PatchEmbed pe;
	Block *blocks;                       /* depth */
	LayerNorm norm;
} Vit;

static int vit_check(const EncoderConfig *c, char *err, size_t errlen)
{
	return encoder_check_blocks(c, err, errlen);
}

static int vit_check_input(const EncoderConfig *c, int in_c, int in_h, int in_w, char *err,
                           size_t errlen)
{
	(void)in_c;
	int rc = encoder_check_range(c->patch, 1, in_h < in_w ? in_h : in_w, "patch", err, errlen);
	if (rc < 0)
		return rc;
	if (in_h % c->patch != 0)
		return encoder_fail(err, errlen, "model.patch: %d does not divide the image height %d",
		                    c->patch, in_h);
	if (in_w % c->patch != 0)
		return encoder_fail(err, errlen, "model.patch: %d does not divide the image width %d",
		                    c->patch, in_w);
	return 0;
}

static int vit_build(Encoder *e, ParamSet *ps, const char *prefix, Rng *rng)
{
	const EncoderConfig *c = &e->cfg;
	char name[LAYER_NAME_MAX];
	Vit *v = eng_calloc(1, sizeof *v);
	if (!v)
		return -ENOMEM;
	e->state = v;
	int rc = patch_embed_init(&v->pe, ps, prefix, e->in_c, e->in_h, e->in_w, c->patch, c->dim,
	                          c->pool == 1, rng);
	if (rc < 0)
		return rc;
	v->blocks = eng_calloc((size_t)c->depth, sizeof *v->blocks);
	if (!v->blocks)
		return -ENOMEM;
	for (int i = 0; i < c->depth; i++) {
		snprintf(name, sizeof name, "%s.blocks.%d", prefix, i);
		rc = block_init(&v->blocks[i], ps, name, c->dim, c->heads, c->mlp_ratio, 0, c->dropout,
		                rng);
		if (rc < 0)
			return rc;
	}
	snprintf(name, sizeof name, "%s.norm", prefix);
	if ((rc = layernorm_init(&v->norm, ps, name, c->dim)) < 0)
		return rc;
	e->out_dim = c->dim;
	return 0;
}

// x (B,C,H,W) or (B,C*H*W) -> (B, n(+1), dim); keep[B*n_keep] patch indices or NULL = all
static Tensor *vit_forward_patches(Ctx *ctx, Encoder *e, Tensor *x, const int *keep, int n_keep)
{
	Vit *v = e->state;
	if (x->ndim == 2)
		x = op_reshape(ctx, x, 4, (int[]){ x->shape[0], e->in_c, e->in_h, e->in_w });
	Tensor *t = patch_embed_forward(ctx, &v->pe, x, keep, n_keep);
	if (e->cfg.dropout > 0.0f)
		t = op_dropout(ctx, t, e->cfg.dropout);
	for (int i = 0; i < e->cfg.depth; i++)
		t = block_forward(ctx, &v->blocks[i], t);
	return layernorm_forward(ctx, &v->norm, t);
}

// x (B,C,H,W) -> (B, dim)
static Tensor *vit_forward(Ctx *ctx, Encoder *e, Tensor *x)
{
	return encoder_pool_tokens(ctx, e, vit_forward_patches(ctx, e, x, NULL, 0));
}

static int vit_n_patches(const Encoder *e)
{
	const Vit *v = e->state;
	return v->pe.n_patches;
}

static void vit_destroy(void *state)
{
	Vit *v = state;
	if (v)
		eng_free(v->blocks);
	eng_free(v);
}

static int64_t vit_estimate(const EncoderConfig *c, int in_c, int in_h, int in_w, int64_t *params,
                         int64_t *acts)
{
	int64_t p = c->patch > 0 ? c->patch : 1, cls = c->pool == 1;
	int64_t T = (in_h / p) * (in_w / p) + cls;
	*params += (int64_t)in_c * p * p * c->dim + c->dim + T * c->dim + cls * c->dim;   /* embed, pos, cls */
	*acts += (int64_t)in_c * in_h * in_w + T * c->dim;
	encoder_estimate_blocks(c, T, params, acts);
	return c->dim;
}

const EncoderDesc encoder_desc_vit = {
	.name = "vit",
	.summary = "vision transformer (patch embedding, pre-LN blocks, mean or CLS pooling)",
	.fits = DATA_IMAGES,
	.keys = vit_keys,
	.n_keys = (int)(sizeof vit_keys / sizeof vit_keys[0]),
	.check = vit_check,
	.check_input = vit_check_input,
	.build = vit_build,
	.forward = vit_forward,
	.destroy = vit_destroy,
	.estimate = vit_estimate,
	.forward_patches = vit_forward_patches,
	.n_patches = vit_n_patches,
};
