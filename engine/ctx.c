/* ctx.c - the training context: a bump arena that grows to its high-water mark and then stops
 * allocating, the tape of recorded ops, and reverse-mode backward. It does not know any op: ops
 * record nodes through tape.h and bring their own backward functions. */
#include "ctx.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "parallel.h"
#include "tape.h"

#define ARENA_ALIGN 64
#define ARENA_MIN_BLOCK (16u << 20)

typedef struct ArenaBlock {
	char *base;
	size_t cap, used;
} ArenaBlock;

#define ARENA_MAX_BLOCKS 64

struct Ctx {
	ArenaBlock blocks[ARENA_MAX_BLOCKS];
	int nblocks;            /* blocks in use this step; block 0 is the consolidated one */
	size_t step_used;       /* bytes handed out since the last reset */
	Node **tape;            /* node pointers (arena memory), in record order */
	int tape_len, tape_cap;
	Node **tape_store;      /* heap array that backs `tape`; grows to the high-water mark */
	Rng rng;
	int training;
	int grad_enabled;
	jmp_buf oom_jmp;
	int oom_armed;
	int threads;                  /* parallel.h */
	struct ParallelPool *pool;    /* started by the first parallel op */
};

/* 0 = not set yet: the first ctx_new reads SSLD_ENGINE_THREADS (a testing knob: run a test suite
 * on several threads without changing it), else 1. */
static atomic_int default_threads;

static int threads_default(void)
{
	int t = atomic_load(&default_threads);
	if (t > 0)
		return t;
	const char *env = getenv("SSLD_ENGINE_THREADS");
	t = env ? atoi(env) : 1;
	if (t < 1 || t > 256)
		t = 1;
	int expected = 0;
	atomic_compare_exchange_strong(&default_threads, &expected, t);
	return atomic_load(&default_threads);
}

Ctx *ctx_new(uint64_t seed)
{
	Ctx *ctx = eng_calloc(1, sizeof *ctx);
	if (!ctx)
		return NULL;
	rng_seed(&ctx->rng, seed);
	ctx->training = 1;
	ctx->grad_enabled = 1;
	ctx->threads = threads_default();
	return ctx;
}

void ctx_free(Ctx *ctx)
{
	if (!ctx)
		return;
	parallel_pool_free(ctx->pool);
	for (int i = 0; i < ctx->nblocks; i++)
		eng_free(ctx->blocks[i].base);
	eng_free(ctx->tape_store);
	eng_free(ctx);
}

static void ctx_oom(Ctx *ctx, size_t bytes)
{
	if (ctx->oom_armed)
		longjmp(ctx->oom_jmp, 1);
	fprintf(stderr, "ssld engine: out of memory allocating %zu bytes for a training step\n", bytes);
	abort();
}

void ctx_reset(Ctx *ctx)
{
	/* Consolidate: if the last step needed more than one block, replace them all by one block of
	 * the total, so the next step (and every later one of the same size) needs no allocation. */
	if (ctx->nblocks > 1) {
		size_t total = 0;
		for (int i = 0; i < ctx->nblocks; i++) {
			total += ctx->blocks[i].cap;
			eng_free(ctx->blocks[i].base);
		}
		ctx->nblocks = 0;
		char *base = eng_aligned_alloc(total);
		if (base) {
			ctx->blocks[0] = (ArenaBlock){ .base = base, .cap = total, .used = 0 };
			ctx->nblocks = 1;
		}
	}
	if (ctx->nblocks == 1)
		ctx->blocks[0].used = 0;
	ctx->step_used = 0;
	ctx->tape_len = 0;
}

void *ctx_alloc(Ctx *ctx, size_t bytes)
{
	size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (need == 0)
		need = ARENA_ALIGN;
	ArenaBlock *b = ctx->nblocks ? &ctx->blocks[ctx->nblocks - 1] : NULL;
	if (!b || b->used + need > b->cap) {
		if (ctx->nblocks == ARENA_MAX_BLOCKS)
			ctx_oom(ctx, bytes);
		size_t cap = need > ARENA_MIN_BLOCK ? need : ARENA_MIN_BLOCK;
		if (b && cap < b->cap * 2)
			cap = b->cap * 2;
		char *base = eng_aligned_alloc(cap);
		if (!base)
			ctx_oom(ctx, bytes);
		b = &ctx->blocks[ctx->nblocks++];
		*b = (ArenaBlock){ .base = base, .cap = cap, .used = 0 };
	}
	void *p = b->base + b->used;
	b->used += need;
	ctx->step_used += need;
	return p;
}

void *ctx_calloc(Ctx *ctx, size_t bytes)
{
	void *p = ctx_alloc(ctx, bytes);
	memset(p, 0, bytes);
	return p;
}

Tensor *ctx_tensor(Ctx *ctx, int ndim, const int *shape)
{
	Tensor *t = ctx_alloc(ctx, sizeof *t);
	memset(t, 0, sizeof *t);
	size_t n = tensor_set_shape(t, ndim, shape);
	t->data = ctx_alloc(ctx, n * sizeof(float));
	return t;
}

Tensor *ctx_zeros(Ctx *ctx, int ndim, const int *shape)
{
	Tensor *t = ctx_tensor(ctx, ndim, shape);
	memset(t->data, 0, t->size * sizeof(float));
	return t;
}

Tensor *ctx_tensor_like(Ctx *ctx, const Tensor *t)
{
	return ctx_tensor(ctx, t->ndim, t->shape);
}

Tensor *ctx_wrap(Ctx *ctx, float *data, int ndim, const int *shape)
{
	Tensor *t = ctx_alloc(ctx, sizeof *t);
	memset(t, 0, sizeof *t);
	tensor_set_shape(t, ndim, shape);
	t->data = data;
	return t;
}

float *ctx_grad(Ctx *ctx, Tensor *t)
{
	if (!t->grad)
		t->grad = ctx_calloc(ctx, t->size * sizeof(float));
	return t->grad;
}

/* ---------------------------------------------------------------------------------------------- */

int tape_wants_grad(Ctx *ctx, Tensor *const *in, int nin)
{
	if (!ctx->grad_enabled)
		return 0;
	for (int i = 0; i < nin; i++)
		if (in[i] && in[i]->requires_grad)
			return 1;
	return 0;
}

Node *tape_record(Ctx *ctx, OpKind kind, node_backward_cb backward, Tensor *out,
                  Tensor *const *in, int nin)
{
	if (ctx->tape_len == ctx->tape_cap) {
		int cap = ctx->tape_cap ? ctx->tape_cap * 2 : 1024;
		Node **s = eng_realloc(ctx->tape_store, (size_t)cap * sizeof *s);
		if (!s)
			ctx_oom(ctx, (size_t)cap * sizeof *s);
		ctx->tape_store = s;
		ctx->tape_cap = cap;
	}
	ctx->tape = ctx->tape_store;
	Node *n = ctx_alloc(ctx, sizeof *n);
	memset(n, 0, sizeof *n);
	n->kind = kind;
	n->backward = backward;
	n->out = out;
	n->nin = nin;
	for (int i = 0; i < nin && i < NODE_MAX_IN; i++)
		n->in[i] = in[i];
	out->requires_grad = 1;
	ctx->tape[ctx->tape_len++] = n;
	tape_mark_covered(kind);
	return n;
}

float *tape_grad_in(Ctx *ctx, Tensor *t)
{
	if (!t || !t->requires_grad)
		return NULL;
	return ctx_grad(ctx, t);
}

int ctx_backward(Ctx *ctx, Tensor *loss)
{
	if (!loss || loss->size != 1 || !loss->requires_grad)
		return -1;
	float *g = ctx_grad(ctx, loss);
	g[0] += 1.0f;
	for (int i = ctx->tape_len - 1; i >= 0; i--) {
		Node *n = ctx->tape[i];
		if (!n->out->grad)
			continue; /* nothing downstream used this output */
		n->backward(ctx, n);
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */

void ctx_set_training(Ctx *ctx, int training) { ctx->training = training; }
int ctx_training(const Ctx *ctx) { return ctx->training; }

int ctx_set_grad_enabled(Ctx *ctx, int enabled)
{
	int prev = ctx->grad_enabled;
	ctx->grad_enabled = enabled;
	return prev;
}

int ctx_grad_enabled(const Ctx *ctx) { return ctx->grad_enabled; }
Rng *ctx_rng(Ctx *ctx) { return &ctx->rng; }
size_t ctx_arena_used(const Ctx *ctx) { return ctx->step_used; }

size_t ctx_arena_capacity(const Ctx *ctx)
{
	size_t c = 0;
	for (int i = 0; i < ctx->nblocks; i++)
		c += ctx->blocks[i].cap;
	return c;
}

jmp_buf *ctx_oom_jmp(Ctx *ctx)
{
	ctx->oom_armed = 1;
	return &ctx->oom_jmp;
}

void ctx_disarm(Ctx *ctx) { ctx->oom_armed = 0; }

void ctx_set_threads(Ctx *ctx, int threads)
{
	ctx->threads = threads > 0 ? threads : 1;
}

int ctx_threads(const Ctx *ctx) { return ctx->threads; }

struct ParallelPool **ctx_pool_slot(Ctx *ctx);   /* internal, for parallel.c */
struct ParallelPool **ctx_pool_slot(Ctx *ctx) { return &ctx->pool; }

void eng_set_threads(int threads)
{
	if (threads > 0)
		atomic_store(&default_threads, threads);
	openblas_set_num_threads(1);
}
