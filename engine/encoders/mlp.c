/* mlp.c - the mlp encoder: samples flattened, then Linear + BatchNorm + ReLU layers, then an
 * optional last Linear to out_dim. The network itself is model.c's Mlp (also the methods' heads).
 *
 *   x (B,C,H,W) or (B,D) is flattened to (B, D0 = C*H*W), then for i < n_hidden:
 *     P.fc<i>  Linear(D_i, hidden[i], bias = !batchnorm)
 *     P.bn<i>  BatchNorm1d(hidden[i])            (when batchnorm)
 *     ReLU
 *   then, when out_dim > 0, P.fc<n_hidden> Linear(hidden[last], out_dim, bias) -> (B,out_dim);
 *   with out_dim 0 the features are the last hidden activation.
 * python/ssld_torch.py rebuilds it in PyTorch: change the layout only together with that file.
 */
#include "encoder.h"

#include <errno.h>

static const int def_hidden[] = { 1024, 1024 };

static const ParamDef mlp_keys[] = {
	{ "hidden", PARAM_INT_LIST, .min = 1, .max = 65536, .min_n = 0, .max_n = MODEL_MAX_LAYERS,
	  .def_list = def_hidden, .def_n = 2, .help = "hidden layer widths, 0..8 layers",
	  PARAM_LIST_AT(EncoderConfig, hidden, n_hidden) },
	{ "out_dim", PARAM_INTEGER, .def = 128, .min = 1, .max = 65536,
	  .help = "feature size: the width of the last linear layer, >= 1", PARAM_AT(EncoderConfig, out_dim) },
	{ "batchnorm", PARAM_BOOLEAN, .def = 1, .help = "BatchNorm after each linear/conv layer",
	  PARAM_AT(EncoderConfig, batchnorm) },
};

static int mlp_check(const EncoderConfig *c, char *err, size_t errlen)
{
	int rc = encoder_check_range(c->n_hidden, 0, MODEL_MAX_LAYERS, "hidden (number of layers)",
	                             err, errlen);
	if (rc < 0)
		return rc;
	for (int i = 0; i < c->n_hidden; i++)
		if (c->hidden[i] < 1 || c->hidden[i] > 65536)
			return encoder_fail(err, errlen, "model.hidden[%d]: %d must be in [1, 65536]", i,
			                    c->hidden[i]);
	if (c->n_hidden == 0 && c->out_dim == 0)
		return encoder_fail(err, errlen,
		                    "model.out_dim: an MLP with no hidden layers needs out_dim > 0");
	return 0;
}

static int mlp_enc_build(Encoder *e, ParamSet *ps, const char *prefix, Rng *rng)
{
	const EncoderConfig *c = &e->cfg;
	int dims[MODEL_MAX_LAYERS + 2], n = 0;
	dims[n++] = e->in_c * e->in_h * e->in_w;
	for (int i = 0; i < c->n_hidden; i++)
		dims[n++] = c->hidden[i];
	if (c->out_dim > 0)
		dims[n++] = c->out_dim;
	Mlp *m = NULL;
	int rc = mlp_build(ps, prefix, dims, n, c->batchnorm, c->out_dim == 0, rng, &m);
	if (rc < 0)
		return rc;
	e->state = m;
	e->out_dim = dims[n - 1];
	return 0;
}

// x (B,C,H,W) or (B,D) -> (B, out_dim)
static Tensor *mlp_enc_forward(Ctx *ctx, Encoder *e, Tensor *x)
{
	return mlp_forward(ctx, e->state, x);
}

static void mlp_enc_destroy(void *state)
{
	mlp_free(state);
}

static int64_t mlp_estimate(const EncoderConfig *c, int in_c, int in_h, int in_w, int64_t *params,
                         int64_t *acts)
{
	int64_t in = (int64_t)in_c * in_h * in_w;
	*acts += in;
	for (int i = 0; i < c->n_hidden; i++) {
		*params += in * c->hidden[i] + (c->batchnorm ? 2 : 1) * (int64_t)c->hidden[i];   /* BN or bias */
		*acts += 3 * (int64_t)c->hidden[i];
		in = c->hidden[i];
	}
	if (c->out_dim > 0) {
		*params += in * c->out_dim + c->out_dim;
		*acts += c->out_dim;
		in = c->out_dim;
	}
	return in;
}

const EncoderDesc encoder_desc_mlp = {
	.name = "mlp",
	.summary = "multilayer perceptron on the flattened sample (Linear + BatchNorm + ReLU)",
	.fits = DATA_IMAGES | DATA_VECTORS,
	.natural_for = DATA_VECTORS,
	.keys = mlp_keys,
	.n_keys = (int)(sizeof mlp_keys / sizeof mlp_keys[0]),
	.check = mlp_check,
	.build = mlp_enc_build,
	.forward = mlp_enc_forward,
	.destroy = mlp_enc_destroy,
	.estimate = mlp_estimate,
	.own_out_dim = 1,
};
