/* tape.h - internal to the engine: the autodiff node, the op table, and helpers ops use.
 *
 * Not for use outside engine/ (methods and runners use ops.h). Each op is one forward function
 * in ops_*.c that computes its output and, when gradients are wanted, records a Node holding its
 * inputs, output and saved context; its backward function *adds* into each input's gradient
 * (kann's rule: backward always accumulates). The OpKind enum is the op table: the gradcheck
 * suite checks that every kind is covered.
 */
#ifndef SSLD_ENGINE_TAPE_H
#define SSLD_ENGINE_TAPE_H

#include "ctx.h"
#include "tensor.h"

typedef enum OpKind {
	OP_MATMUL,
	OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_SCALE, OP_ADD_SCALAR,
	OP_SUM, OP_MEAN, OP_MAX,
	OP_RELU, OP_LEAKY_RELU, OP_GELU, OP_TANH, OP_SIGMOID, OP_EXP, OP_LOG, OP_SQRT, OP_POW,
	OP_SOFTMAX, OP_LOG_SOFTMAX,
	OP_LAYERNORM, OP_BATCHNORM, OP_DROPOUT,
	OP_CONV2D, OP_CONV_TRANSPOSE2D, OP_UPSAMPLE_NEAREST,
	OP_MAXPOOL2D, OP_AVGPOOL2D, OP_GLOBAL_AVGPOOL,
	OP_RESHAPE, OP_PERMUTE, OP_CONCAT, OP_SLICE, OP_GATHER_ROWS, OP_EMBEDDING,
	OP_L2_NORMALIZE, OP_CAUSAL_MASK, OP_ATTENTION,
	OP_MSE, OP_BCE_LOGITS, OP_CROSS_ENTROPY, OP_NT_XENT, OP_INFONCE, OP_KL_GAUSSIAN, OP_COSINE_SIM,
	OP_CLAMP, OP_SQUARE, OP_MASKED_MSE,
	OP_DIST_GATHER_ROWS,
	OP_COUNT
} OpKind;

extern const char *const op_names[OP_COUNT];

#define NODE_MAX_IN 5

typedef struct Node Node;
typedef void (*node_backward_cb)(Ctx *ctx, Node *n);

struct Node {
	OpKind kind;
	node_backward_cb backward;
	Tensor *out;
	Tensor *in[NODE_MAX_IN];
	int nin;
	int i[8];          /* integer arguments (axes, strides, ...) */
	float f[4];        /* float arguments (scales, eps, temperature, ...) */
	void *saved;       /* op-specific saved context, arena memory */
	void *saved2;
};

/* Should this op record a node? (grad mode on and some input requires grad). */
int tape_wants_grad(Ctx *ctx, Tensor *const *in, int nin);
/* Append a node (arena memory) whose output is `out`; marks out->requires_grad. Inputs that do not
 * require grad are still stored (backward skips them). Returns the node to fill i/f/saved. */
Node *tape_record(Ctx *ctx, OpKind kind, node_backward_cb backward, Tensor *out,
                  Tensor *const *in, int nin);
/* The gradient buffer to accumulate into for input t, or NULL when t needs no gradient. */
float *tape_grad_in(Ctx *ctx, Tensor *t);

/* For a backward that writes every element of t's gradient exactly once: the buffer, and *fresh
 * = 1 when it is new (nothing has accumulated into it yet), in which case it is NOT zeroed and
 * the backward must store (=) instead of adding (+=), saving a memset and a read of the whole
 * buffer; *fresh = 0 for a buffer that already holds gradient (the backward adds as usual). NULL
 * when t needs no gradient. Only for ops whose other inputs cannot alias t's buffer. */
float *tape_grad_in_fresh(Ctx *ctx, Tensor *t, int *fresh);

/* For views (reshape): when `in` needs a gradient and has no buffer yet, `in` takes over out's
 * gradient buffer (same element count) instead of a copy, and 1 is returned; else 0 and nothing
 * changes. out's gradient is dead once its producer's backward has run, so nothing reads it. */
int tape_grad_pass(Ctx *ctx, Tensor *in, Tensor *out);

/* Coverage bookkeeping for the gradcheck suite: every op that records a node marks its kind. */
void tape_mark_covered(OpKind kind);
int tape_covered(OpKind kind);

#endif
