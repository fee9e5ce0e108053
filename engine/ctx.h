/* ctx.h - one training context: the per-step arena, the autodiff tape, the RNG, and mode flags.
 *
 * A context belongs to one training (one thread); two trainings use two contexts and share
 * nothing, so they can run concurrently. Everything an op allocates during a step comes from the
 * arena and is released at once by ctx_reset(): after the first step has grown the arena to its
 * high-water mark, a step performs no heap allocation at all.
 *
 *   Ctx *ctx = ctx_new(seed);
 *   for (;;) {
 *       ctx_reset(ctx);                       // drop last step's activations and tape
 *       Tensor *loss = model_forward(ctx, ...);
 *       ctx_backward(ctx, loss);              // grads accumulate (+=) into parameter grads
 *       optim_step(opt, ...);
 *   }
 *   ctx_free(ctx);
 *
 * Ops record a node on the tape only when an input requires grad and grad mode is on
 * (ctx_set_grad_enabled; off for evaluation and for EMA target networks).
 */
#ifndef SSLD_ENGINE_CTX_H
#define SSLD_ENGINE_CTX_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "tensor.h"

typedef struct Ctx Ctx;

Ctx *ctx_new(uint64_t seed);   /* NULL on out of memory */
void ctx_free(Ctx *ctx);       /* ctx_free(NULL) is a no-op */

/* Release all arena memory and the tape (keeps the arena's capacity). */
void ctx_reset(Ctx *ctx);

/* Arena allocation, 64-byte aligned, valid until the next ctx_reset. Never returns NULL: the arena
 * grows (one heap allocation) when needed. When the heap is exhausted it jumps to the handler
 * armed with CTX_TRY (so a worker fails the job with "out of memory" instead of crashing); with
 * no handler armed it aborts with a message. */
void *ctx_alloc(Ctx *ctx, size_t bytes);
/* ctx_reset, and the arena's memory given back to the heap: for a context that has finished its
 * training steps and is kept for lighter work (evaluations), which grows the arena again. */
void ctx_trim(Ctx *ctx);
/* A forward op's scratch: what ctx_alloc hands out after ctx_scratch_mark is given back by
 * ctx_scratch_release(ctx, mark), so the next op reuses it instead of the step keeping every
 * op's scratch until ctx_reset. Nothing allocated in between may outlive the release. (Backward
 * scratch is given back by ctx_backward itself.) */
typedef struct ArenaMark {
	int cur;
	size_t block_used, used;
} ArenaMark;
ArenaMark ctx_scratch_mark(const Ctx *ctx);
void ctx_scratch_release(Ctx *ctx, ArenaMark mark);
/* A fresh arena tensor (uninitialised data, grad NULL, requires_grad 0). */
Tensor *ctx_tensor(Ctx *ctx, int ndim, const int *shape);
Tensor *ctx_zeros(Ctx *ctx, int ndim, const int *shape);
Tensor *ctx_tensor_like(Ctx *ctx, const Tensor *t);
/* Wrap existing memory (not copied; borrowed) as an arena tensor header. */
Tensor *ctx_wrap(Ctx *ctx, float *data, int ndim, const int *shape);
/* Gradient buffer of t, allocated zeroed from the context's gradient arena on first use. */
float *ctx_grad(Ctx *ctx, Tensor *t);

/* Run reverse-mode autodiff from a scalar loss (size 1): d loss = 1, then every recorded node's
 * backward in reverse order. Gradients accumulate into parameters' grad buffers and into leaf
 * tensors' (inputs that require grad). The gradient of an op's output is released (and its
 * grad set to NULL) as soon as that op's backward has run, and whatever a backward allocates
 * from the arena is scratch given back when it returns: the step's peak is the activations
 * plus the gradients in flight. Returns 0, or a negative code if the tape is inconsistent. */
int ctx_backward(Ctx *ctx, Tensor *loss);

/* Modes. training: batchnorm uses batch statistics, dropout is active. */
void ctx_set_training(Ctx *ctx, int training);
int ctx_training(const Ctx *ctx);
/* Data-parallel training (dist.h): this context's batch is one rank's shard of a global batch,
 * so batchnorm's batch statistics (and their gradients) are summed over every rank and
 * op_dist_gather_rows gathers. Off by default; the evaluations, which run on one rank, leave it
 * off. Every rank must then run the same ops in the same order. */
void ctx_set_distributed(Ctx *ctx, int on);
int ctx_distributed(const Ctx *ctx);
/* Returns the previous value, so callers can restore it. */
int ctx_set_grad_enabled(Ctx *ctx, int enabled);

Rng *ctx_rng(Ctx *ctx);

/* An early stop for long inference loops (text generation): stop(user) is polled between steps
 * and a nonzero answer ends the loop with what it has. NULL (the default) never stops. */
void ctx_set_stop(Ctx *ctx, int (*stop)(void *user), void *user);
int ctx_should_stop(Ctx *ctx);

/* Arena accounting (for tests and benchmarks): the high-water mark since the last reset (the
 * activation arena's plus the gradient arena's), and the capacity of both. */
size_t ctx_arena_used(const Ctx *ctx);
size_t ctx_arena_capacity(const Ctx *ctx);
/* Out-of-memory recovery: `if (CTX_TRY(ctx)) { ...ran out of memory... }` arms a handler that
 * ctx_alloc jumps to; ctx_disarm(ctx) removes it. Usage:
 *     if (CTX_TRY(ctx) != 0) { ctx_disarm(ctx); return -ENOMEM; }
 *     ... steps ...
 *     ctx_disarm(ctx);                                                                   */
#include <setjmp.h>
jmp_buf *ctx_oom_jmp(Ctx *ctx);
#define CTX_TRY(ctx) setjmp(*ctx_oom_jmp(ctx))
void ctx_disarm(Ctx *ctx);

/* Threads this context's ops may use (parallel.h; default: the last eng_set_threads value, else
 * the environment variable SSLD_ENGINE_THREADS, else 1). Workers start on the first parallel op
 * and are reused; changing the count restarts them. */
void ctx_set_threads(Ctx *ctx, int threads);
int ctx_threads(const Ctx *ctx);

/* The default thread count of contexts created from now on (ctx_set_threads overrides it per
 * context). OpenBLAS's own thread count is process-wide, so it is kept at 1: the engine splits
 * large sgemms across the context's threads itself (parallel.h), and direct cblas_* calls from
 * outside the engine run on the calling thread. */
void eng_set_threads(int threads);

#endif
