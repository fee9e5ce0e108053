/* transformer.c - the transformer encoder for text: byte embeddings, learned positions, pre-LN
 * blocks (causal when the method is autoregressive), a final LayerNorm. Language models read the
 * per-token states (forward_tokens) and the Transformer itself (tied head, KV-cache stepping);
 * encoder_forward pools the tokens like vit.
 *
 *   P.wte Embedding(vocab, dim), P.wpe (context, dim), blocks P.blocks.<i> (causal attention when
 *   causal), P.norm; forward_tokens returns (B,T,dim); forward pools (pool 1 = the first token),
 *   then model.c's optional P.fc. Dropout after the token embedding and inside the blocks.
 */
#include "encoder.h"

#include <errno.h>
#include <math.h>

#include "../alloc.h"
#include "../ops.h"

static const ParamDef transformer_keys[] = {
	ENCODER_BLOCK_KEYS,
	{ "context", PARAM_INTEGER, .def = 128, .min = 1, .max = 65536,
	  .help = "maximum sequence length in bytes", PARAM_AT(EncoderConfig, context) },
};

static void transformer_defaults(EncoderConfig *c)
{
	c->vocab = 256;   /* bytes */
}

static int transformer_check(const EncoderConfig *c, char *err, size_t errlen)
{
	int rc = encoder_check_blocks(c, err, errlen);
	if (rc == 0)
		rc = encoder_check_range(c->vocab, 2, 1 << 20, "vocab", err, errlen);
	if (rc == 0)
		rc = encoder_check_range(c->context, 1, 1 << 16, "context", err, errlen);
	if (rc < 0)
		return rc;
	if (c->causal != 0 && c->causal != 1)
		return encoder_fail(err, errlen, "model.causal: %d must be 0 or 1", c->causal);
	return 0;
}

static int transformer_check_input(const EncoderConfig *c, int in_c, int in_h, int in_w,
                                   char *err, size_t errlen)
{
	(void)in_c, (void)in_h;
	if (in_w > 1 && in_w > c->context)
		return encoder_fail(err, errlen, "model.context: %d is shorter than the sample length %d",
		                    c->context, in_w);
	return 0;
}

static int transformer_build(Encoder *e, ParamSet *ps, const char *prefix, Rng *rng)
{
	const EncoderConfig *c = &e->cfg;
	Transformer *tf = eng_calloc(1, sizeof *tf);
	if (!tf)
		return -ENOMEM;
	e->state = tf;
	e->out_dim = c->dim;
	return transformer_init(tf, ps, prefix, c->vocab, c->context, c->dim, c->depth, c->heads,
	                        c->mlp_ratio, c->causal, c->dropout, rng);
}

// ids (B*T) -> (B,T,dim)
static Tensor *transformer_tokens(Ctx *ctx, Encoder *e, const int *ids, int B, int T)
{
	return transformer_forward(ctx, e->state, ids, B, T);
}

// token ids stored as floats (B,T) or (B,1,1,T) -> (B, dim)
static Tensor *transformer_enc_forward(Ctx *ctx, Encoder *e, Tensor *x)
{
	int B = x->shape[0], T = (int)(x->size / (size_t)B);
	int *ids = ctx_alloc(ctx, x->size * sizeof *ids);
	for (size_t i = 0; i < x->size; i++)
		ids[i] = (int)lrintf(x->data[i]);
	return encoder_pool_tokens(ctx, e, transformer_forward(ctx, e->state, ids, B, T));
}

static struct Transformer *transformer_of(Encoder *e)
{
	return e->state;
}

static void transformer_destroy(void *state)
{
	if (state)
		transformer_close(state);
	eng_free(state);
}

static int64_t transformer_estimate(const EncoderConfig *c, int in_c, int in_h, int in_w,
                                 int64_t *params, int64_t *acts)
{
	(void)in_c, (void)in_h;
	int64_t T = in_w, vocab = c->vocab > 0 ? c->vocab : 256;
	*params += vocab * c->dim + (int64_t)c->context * c->dim;
	*acts += T * c->dim;
	encoder_estimate_blocks(c, T, params, acts);
	return c->dim;
}

const EncoderDesc encoder_desc_transformer = {
	.name = "transformer",
	.summary = "byte-level transformer for text (token and position embeddings, pre-LN blocks)",
	.fits = DATA_TEXT,
	.natural_for = DATA_TEXT,
	.keys = transformer_keys,
	.n_keys = (int)(sizeof transformer_keys / sizeof transformer_keys[0]),
	.fill_defaults = transformer_defaults,
	.check = transformer_check,
	.check_input = transformer_check_input,
	.build = transformer_build,
	.forward = transformer_enc_forward,
	.destroy = transformer_destroy,
	.estimate = transformer_estimate,
	.forward_tokens = transformer_tokens,
	.transformer = transformer_of,
};
