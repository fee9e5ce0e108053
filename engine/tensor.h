/* tensor.h - the float32 tensor every part of the engine passes around.
 *
 * Row-major, contiguous, up to 4 dimensions (images are NCHW). A tensor does not own its memory
 * by itself: activations are carved from a context's per-step arena (ctx.h) and die at
 * ctx_reset(); parameters are allocated by a ParamSet (params.h) and live as long as the model.
 * `grad` is NULL until backward needs it; for parameters it is a persistent buffer.
 *
 *   Tensor *x = ctx_tensor(ctx, 4, (int[]){B, 1, 28, 28});   // (B,1,28,28), arena memory
 *   x->data[0] = 1.0f;
 */
#ifndef SSLD_ENGINE_TENSOR_H
#define SSLD_ENGINE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define TENSOR_MAX_DIMS 4

typedef struct Tensor {
	float *data;            /* size floats, borrowed from the arena or the ParamSet */
	float *grad;            /* same shape as data, or NULL */
	int ndim;
	int shape[TENSOR_MAX_DIMS];
	size_t size;            /* product of shape */
	uint8_t requires_grad;  /* gradients flow into this tensor */
	uint8_t is_param;       /* grad is persistent (owned by a ParamSet) */
	const char *name;       /* dotted name for parameters ("encoder.conv1.weight"), else NULL */
} Tensor;

/* Fill shape fields; returns the element count. */
size_t tensor_set_shape(Tensor *t, int ndim, const int *shape);
int tensor_same_shape(const Tensor *a, const Tensor *b);
/* "(64,1,28,28)" into buf; returns buf. */
const char *tensor_shape_str(const Tensor *t, char *buf, size_t len);
/* Size of dimension d, with negative d counting from the end. */
int tensor_dim(const Tensor *t, int d);

#endif
