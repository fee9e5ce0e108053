/* ops_dist.c - the one op that crosses processes: a batch's rows gathered from every rank
 * (ops.h, op_dist_gather_rows), so losses that compare samples - SimCLR's negatives, Barlow
 * Twins' and VICReg's batch statistics - see the global batch. BatchNorm's synchronisation lives
 * with batchnorm (ops_nn.c); the gradient sum with the optimizer step (dist.c). */
#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "tape.h"

/* i: groups, b rows per block, row size, ranks, this rank */
static void gather_backward(Ctx *ctx, Node *n)
{
	float *gx = tape_grad_in(ctx, n->in[0]);
	if (!gx)
		return;
	const int groups = n->i[0], b = n->i[1], size = n->i[3], rank = n->i[4];
	const size_t row = (size_t)n->i[2], block = (size_t)b * row;
	for (int g = 0; g < groups; g++) {
		const float *src = n->out->grad + ((size_t)g * size + rank) * block;
		float *dst = gx + (size_t)g * block;
		for (size_t k = 0; k < block; k++)
			dst[k] += src[k];
	}
}

Tensor *op_dist_gather_rows(Ctx *ctx, Tensor *x, int groups)
{
	if (groups < 1 || x->shape[0] % groups != 0) {
		fprintf(stderr, "op_dist_gather_rows: %d rows do not split into %d blocks\n", x->shape[0],
		        groups);
		abort();
	}
	const int size = ctx_distributed(ctx) ? dist_size() : 1, rank = size > 1 ? dist_rank() : 0;
	const int b = x->shape[0] / groups;
	const size_t row = x->size / (size_t)x->shape[0], block = (size_t)b * row;
	int shape[TENSOR_MAX_DIMS];
	memcpy(shape, x->shape, sizeof shape);
	shape[0] = x->shape[0] * size;
	Tensor *out = ctx_tensor(ctx, x->ndim, shape);
	if (size == 1) {
		memcpy(out->data, x->data, x->size * sizeof(float));
	} else {
		/* every rank's x, rank-major, then each block g of rank r to its place (g, r) */
		float *all = ctx_alloc(ctx, x->size * size * sizeof(float));
		if (dist_allgather_f32(x->data, x->size, all, "gather of the embeddings") < 0)
			memset(all, 0, x->size * size * sizeof(float));   /* dist_error() fails the step */
		for (int r = 0; r < size; r++)
			for (int g = 0; g < groups; g++)
				memcpy(out->data + ((size_t)g * size + r) * block,
				       all + (size_t)r * x->size + (size_t)g * block, block * sizeof(float));
	}
	if (tape_wants_grad(ctx, &x, 1)) {
		Node *n = tape_record(ctx, OP_DIST_GATHER_ROWS, gather_backward, out, &x, 1);
		n->i[0] = groups;
		n->i[1] = b;
		n->i[2] = (int)row;
		n->i[3] = size;
		n->i[4] = rank;
	}
	return out;
}
