/* wsum.h - a weighted-sum loss L = sum(y * G) for the engine tests that drive an op's backward
 * with a chosen upstream gradient G (test_ops_nn, test_conv_winograd).
 *
 * wsum records itself on the tape as a node of the test, so backward runs without any other op
 * module; its backward adds dL * G into dy. The loss value is summed in double. G is borrowed:
 * it must outlive the backward pass (allocate it in the same ctx's arena).
 *
 *   float *G = ...;                               // y->size values
 *   CHECK(ctx_backward(ctx, wsum(ctx, y, G)) == 0, "backward");
 *
 * Header-only (static functions) like tolerance.h, so a test executable includes it without a
 * library; it needs the engine's internal tape.h (engine_dep).
 */
#ifndef SSLD_TESTS_WSUM_H
#define SSLD_TESTS_WSUM_H

#include <stddef.h>

#include "ctx.h"
#include "tape.h"

static inline void wsum_backward(Ctx *ctx, Node *n)
{
	float *dy = tape_grad_in(ctx, n->in[0]);
	const float *g = n->saved;
	const float dl = n->out->grad[0];
	if (dy)
		for (size_t i = 0; i < n->in[0]->size; i++)
			dy[i] += dl * g[i];
}

/* The scalar (1) sum(y * g); g holds y->size values. */
static inline Tensor *wsum(Ctx *ctx, Tensor *y, const float *g)
{
	Tensor *out = ctx_tensor(ctx, 1, (int[]){ 1 });
	double s = 0.0;
	for (size_t i = 0; i < y->size; i++)
		s += (double)y->data[i] * g[i];
	out->data[0] = (float)s;
	Tensor *in[1] = { y };
	if (tape_wants_grad(ctx, in, 1)) {
		/* The kind is only a label here; these tests never look at coverage. */
		Node *n = tape_record(ctx, OP_SUM, wsum_backward, out, in, 1);
		n->saved = (void *)g;
	}
	return out;
}

#endif
