/* tape.c - the op name table and gradcheck coverage marks (see tape.h). */
#include "tape.h"

#include <stdatomic.h>

const char *const op_names[OP_COUNT] = {
	[OP_MATMUL] = "matmul",
	[OP_ADD] = "add", [OP_SUB] = "sub", [OP_MUL] = "mul", [OP_DIV] = "div",
	[OP_SCALE] = "scale", [OP_ADD_SCALAR] = "add_scalar",
	[OP_SUM] = "sum", [OP_MEAN] = "mean", [OP_MAX] = "max",
	[OP_RELU] = "relu", [OP_LEAKY_RELU] = "leaky_relu", [OP_GELU] = "gelu", [OP_TANH] = "tanh",
	[OP_SIGMOID] = "sigmoid", [OP_EXP] = "exp", [OP_LOG] = "log", [OP_SQRT] = "sqrt",
	[OP_POW] = "pow",
	[OP_SOFTMAX] = "softmax", [OP_LOG_SOFTMAX] = "log_softmax",
	[OP_LAYERNORM] = "layernorm", [OP_BATCHNORM] = "batchnorm", [OP_DROPOUT] = "dropout",
	[OP_CONV2D] = "conv2d", [OP_CONV_TRANSPOSE2D] = "conv_transpose2d",
	[OP_UPSAMPLE_NEAREST] = "upsample_nearest",
	[OP_MAXPOOL2D] = "maxpool2d", [OP_AVGPOOL2D] = "avgpool2d",
	[OP_GLOBAL_AVGPOOL] = "global_avgpool",
	[OP_RESHAPE] = "reshape", [OP_PERMUTE] = "permute", [OP_CONCAT] = "concat",
	[OP_SLICE] = "slice", [OP_GATHER_ROWS] = "gather_rows", [OP_EMBEDDING] = "embedding",
	[OP_L2_NORMALIZE] = "l2_normalize", [OP_CAUSAL_MASK] = "causal_mask",
	[OP_ATTENTION] = "attention",
	[OP_MSE] = "mse", [OP_BCE_LOGITS] = "bce_logits", [OP_CROSS_ENTROPY] = "cross_entropy",
	[OP_NT_XENT] = "nt_xent", [OP_INFONCE] = "infonce", [OP_KL_GAUSSIAN] = "kl_gaussian",
	[OP_COSINE_SIM] = "cosine_sim",
	[OP_CLAMP] = "clamp", [OP_SQUARE] = "square", [OP_MASKED_MSE] = "masked_mse",
	[OP_DIST_GATHER_ROWS] = "dist_gather_rows",
};
_Static_assert(sizeof op_names / sizeof op_names[0] == OP_COUNT, "op_names must list every op");

static atomic_uchar covered[OP_COUNT];

void tape_mark_covered(OpKind kind)
{
	atomic_store_explicit(&covered[kind], 1, memory_order_relaxed);
}

int tape_covered(OpKind kind)
{
	return atomic_load_explicit(&covered[kind], memory_order_relaxed);
}
