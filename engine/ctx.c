/* ctx.c - the training context: a bump arena that grows to its high-water mark and then stops
 * allocating, the tape of recorded ops, and reverse-mode backward. It does not know any op: ops
 * record nodes through tape.h and bring their own backward functions. */
#include "ctx.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

/* A bump allocator over blocks. Blocks after `cur` are kept (emptied) when a mark is released, so
 * the same allocations after a release reuse them instead of allocating. */
typedef struct Arena {
	ArenaBlock blocks[ARENA_MAX_BLOCKS];
	int nblocks;   /* blocks allocated; after ctx_reset at most 1 (consolidated) */
	int cur;       /* the block being bumped */
	size_t used;   /* bytes handed out and not released */
	size_t peak;   /* high-water mark of used since the last reset */
} Arena;

/* A freed gradient buffer (arena memory of the gradient arena), in an address-ordered list. */
typedef struct FreeChunk {
	size_t size;
	struct FreeChunk *next;
} FreeChunk;

struct Ctx {
	Arena main;             /* activations, saved context, tape nodes, backward scratch */
	Arena grads;            /* gradient buffers of non-parameter tensors (ctx_grad) */
	FreeChunk *free_grads;  /* gradient buffers released during backward, reused by ctx_grad */
	Node **tape;            /* node pointers (arena memory), in record order */
	int tape_len, tape_cap;
	Node **tape_store;      /* heap array that backs `tape`; grows to the high-water mark */
	Rng rng;
	int training;
	int distributed;   /* ctx_set_distributed */
	int grad_enabled;
	jmp_buf oom_jmp;
	int oom_armed;
	int threads;                  /* parallel.h */
	struct ParallelPool *pool;    /* started by the first parallel op */
	int (*stop)(void *user);      /* ctx_set_stop */
	void *stop_user;
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

static void arena_close(Arena *a)
{
	for (int i = 0; i < a->nblocks; i++)
		eng_free(a->blocks[i].base);
	a->nblocks = 0;
}

void ctx_free(Ctx *ctx)
{
	if (!ctx)
		return;
	parallel_pool_free(ctx->pool);
	arena_close(&ctx->main);
	arena_close(&ctx->grads);
	eng_free(ctx->tape_store);
	eng_free(ctx);
}

static _Noreturn void ctx_oom(Ctx *ctx, size_t bytes)
{
	if (ctx->oom_armed)
		longjmp(ctx->oom_jmp, 1);
	fprintf(stderr, "ssld engine: out of memory allocating %zu bytes for a training step\n", bytes);
	abort();
}

#define HUGE_PAGE (2u << 20)

/* An arena block: 2 MiB-aligned and marked for transparent huge pages, so a step's first touch of
 * it costs one fault per 2 MiB instead of one per 4 KiB and its sweeps miss the TLB less. */
static char *arena_block_alloc(size_t cap)
{
	if (cap < HUGE_PAGE)
		return eng_aligned_alloc(cap);
	cap = (cap + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
	char *base = eng_aligned_alloc_to(cap, HUGE_PAGE);
	if (base)
		(void)madvise(base, cap, MADV_HUGEPAGE);
	return base;
}

/* Consolidate: if the last step needed more than one block, replace them all by one block of
 * the total, so the next step (and every later one of the same size) needs no allocation. */
static void arena_reset(Arena *a)
{
	if (a->nblocks > 1) {
		size_t total = 0;
		for (int i = 0; i < a->nblocks; i++) {
			total += a->blocks[i].cap;
			eng_free(a->blocks[i].base);
		}
		a->nblocks = 0;
		char *base = arena_block_alloc(total);
		if (base) {
			a->blocks[0] = (ArenaBlock){ .base = base, .cap = total, .used = 0 };
			a->nblocks = 1;
		}
	}
	if (a->nblocks == 1)
		a->blocks[0].used = 0;
	a->cur = 0;
	a->used = a->peak = 0;
}

static size_t arena_round(size_t bytes)
{
	size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	return need ? need : ARENA_ALIGN;
}

/* `need` bytes (a multiple of ARENA_ALIGN) from the current block, else the next kept block, else
 * a new block (one heap allocation). NULL when out of blocks or heap. */
static void *arena_bump(Arena *a, size_t need)
{
	ArenaBlock *b = a->nblocks ? &a->blocks[a->cur] : NULL;
	if (!b || b->used + need > b->cap) {
		if (b && a->cur + 1 < a->nblocks && a->blocks[a->cur + 1].cap >= need) {
			b = &a->blocks[++a->cur];
			b->used = 0;
		} else {
			if (a->nblocks == ARENA_MAX_BLOCKS)
				return NULL;
			size_t cap = need > ARENA_MIN_BLOCK ? need : ARENA_MIN_BLOCK;
			size_t last = a->nblocks ? a->blocks[a->nblocks - 1].cap : 0;
			if (cap < last * 2)
				cap = last * 2;
			char *base = arena_block_alloc(cap);
			if (!base)
				return NULL;
			/* a kept block too small for this request moves to the end (still reusable) */
			int at = a->nblocks ? a->cur + 1 : 0;
			if (at < a->nblocks)
				a->blocks[a->nblocks] = a->blocks[at];
			a->nblocks++;
			a->cur = at;
			b = &a->blocks[at];
			*b = (ArenaBlock){ .base = base, .cap = cap, .used = 0 };
		}
	}
	void *p = b->base + b->used;
	b->used += need;
	a->used += need;
	if (a->used > a->peak)
		a->peak = a->used;
	return p;
}

/* An empty arena's first block, of `cap` bytes: address space only until pages are written. */
static void arena_reserve(Arena *a, size_t cap)
{
	if (a->nblocks || cap < ARENA_MIN_BLOCK)
		return;
	char *base = arena_block_alloc(cap);
	if (!base)
		return;   /* arena_bump allocates as usual */
	a->blocks[0] = (ArenaBlock){ .base = base, .cap = cap, .used = 0 };
	a->nblocks = 1;
	a->cur = 0;
}

static ArenaMark arena_mark(const Arena *a)
{
	return (ArenaMark){ .cur = a->cur, .block_used = a->nblocks ? a->blocks[a->cur].used : 0,
	                    .used = a->used };
}

/* Give back everything allocated since the mark (the blocks stay allocated). */
static void arena_release(Arena *a, ArenaMark m)
{
	if (!a->nblocks)
		return;
	for (int i = m.cur + 1; i <= a->cur; i++)
		a->blocks[i].used = 0;
	a->cur = m.cur;
	a->blocks[m.cur].used = m.block_used;
	a->used = m.used;
}

ArenaMark ctx_scratch_mark(const Ctx *ctx)
{
	return arena_mark(&ctx->main);
}

void ctx_scratch_release(Ctx *ctx, ArenaMark mark)
{
	arena_release(&ctx->main, mark);
}

void ctx_reset(Ctx *ctx)
{
	arena_reset(&ctx->main);
	arena_reset(&ctx->grads);
	ctx->free_grads = NULL;
	ctx->tape_len = 0;
}

void ctx_trim(Ctx *ctx)
{
	ctx_reset(ctx);
	arena_close(&ctx->main);
	arena_close(&ctx->grads);
}

void *ctx_alloc(Ctx *ctx, size_t bytes)
{
	void *p = arena_bump(&ctx->main, arena_round(bytes));
	if (!p)
		ctx_oom(ctx, bytes);
	return p;
}

/* ---------------------------------------------------------------------------------------------- */
/* gradient buffers: allocated from their own arena and released as soon as backward has consumed
 * them, so a step's peak holds the activations plus only the gradients still in flight (what
 * PyTorch's autograd frees as it goes), not every intermediate gradient of the step. The order of
 * allocations and releases is the same every step, so after the first step the gradient arena
 * has reached its high-water mark and nothing is allocated from the heap. */

/* Best fit from the free list (split when the remainder is worth keeping), else the bump. */
static void *grad_alloc(Ctx *ctx, size_t bytes)
{
	const size_t need = arena_round(bytes);
	FreeChunk **best = NULL;
	for (FreeChunk **pp = &ctx->free_grads; *pp; pp = &(*pp)->next)
		if ((*pp)->size >= need && (!best || (*pp)->size < (*best)->size)) {
			best = pp;
			if ((*pp)->size == need)
				break;
		}
	if (best) {
		FreeChunk *c = *best;
		if (c->size - need >= sizeof(FreeChunk) && c->size - need >= ARENA_ALIGN) {
			/* keep the head in the list (address order is preserved), hand out the tail */
			c->size -= need;
			return (char *)c + c->size;
		}
		*best = c->next;
		return c;
	}
	void *p = arena_bump(&ctx->grads, need);
	if (!p)
		ctx_oom(ctx, bytes);
	return p;
}

/* The gradient-arena block holding p, or NULL (e.g. a heap buffer a test attached itself). */
static ArenaBlock *grad_block(Ctx *ctx, const void *p)
{
	const char *c = p;
	for (int i = 0; i < ctx->grads.nblocks; i++) {
		ArenaBlock *b = &ctx->grads.blocks[i];
		if (c >= b->base && c < b->base + b->used)
			return b;
	}
	return NULL;
}

/* Return a gradient buffer: into the bump region when it is the top of the current block, else
 * into the address-ordered free list, merged with free neighbours in the same block. */
static void grad_release(Ctx *ctx, void *p, size_t bytes)
{
	ArenaBlock *b = grad_block(ctx, p);
	if (!b)
		return;
	size_t size = arena_round(bytes);
	char *c = p;
	FreeChunk **pp = &ctx->free_grads, *prev = NULL;
	while (*pp && (char *)*pp < c) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	FreeChunk *next = *pp;
	if (prev && (char *)prev + prev->size == c && (char *)prev >= b->base) {
		prev->size += size;    /* extend the free chunk before it */
	} else {
		FreeChunk *f = (FreeChunk *)c;
		f->size = size;
		f->next = next;
		*pp = f;
		prev = f;
	}
	if (next && (char *)prev + prev->size == (char *)next &&
	    (char *)next < b->base + b->cap) {
		prev->size += next->size;   /* swallow the free chunk after it */
		prev->next = next->next;
	}
	/* the top of the current block goes back to the bump pointer */
	ArenaBlock *top = &ctx->grads.blocks[ctx->grads.cur];
	if (b == top && (char *)prev + prev->size == top->base + top->used) {
		FreeChunk **q = &ctx->free_grads;
		while (*q != prev)
			q = &(*q)->next;
		*q = prev->next;
		top->used -= prev->size;
		ctx->grads.used -= prev->size;
	}
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
	if (!t->grad) {
		t->grad = grad_alloc(ctx, t->size * sizeof(float));
		memset(t->grad, 0, t->size * sizeof(float));
	}
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

float *tape_grad_in_fresh(Ctx *ctx, Tensor *t, int *fresh)
{
	*fresh = 0;
	if (!t || !t->requires_grad)
		return NULL;
	if (!t->grad) {
		t->grad = grad_alloc(ctx, t->size * sizeof(float));
		*fresh = 1;
	}
	return t->grad;
}

int tape_grad_pass(Ctx *ctx, Tensor *in, Tensor *out)
{
	if (!in || !in->requires_grad || in->grad || in->is_param || !out->grad ||
	    in->size != out->size || !grad_block(ctx, out->grad))
		return 0;
	in->grad = out->grad;
	out->grad = NULL;
	return 1;
}

int ctx_backward(Ctx *ctx, Tensor *loss)
{
	if (!loss || loss->size != 1 || !loss->requires_grad)
		return -1;
	/* The first backward of a context reserves one gradient block as large as the activations
	 * (the gradients in flight are a subset of their sizes): growing block by block instead
	 * leaves the written top of each outgrown block behind, resident and unused until the
	 * next ctx_reset consolidates them, and that first step sets the process's peak RSS. */
	arena_reserve(&ctx->grads, ctx->main.used);
	float *g = ctx_grad(ctx, loss);
	g[0] += 1.0f;
	for (int i = ctx->tape_len - 1; i >= 0; i--) {
		Node *n = ctx->tape[i];
		Tensor *out = n->out;
		if (!out->grad)
			continue; /* nothing downstream used this output */
		/* Whatever a backward takes from the main arena is its scratch (its inputs' gradients
		 * come from the gradient arena), so it is given back when it returns. */
		ArenaMark m = arena_mark(&ctx->main);
		n->backward(ctx, n);
		arena_release(&ctx->main, m);
		/* Every consumer of out ran before its producer n: out's gradient is dead now. */
		if (out->grad && !out->is_param) {
			grad_release(ctx, out->grad, out->size * sizeof(float));
			out->grad = NULL;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */

void ctx_set_training(Ctx *ctx, int training) { ctx->training = training; }
int ctx_training(const Ctx *ctx) { return ctx->training; }
void ctx_set_distributed(Ctx *ctx, int on) { ctx->distributed = on; }
int ctx_distributed(const Ctx *ctx) { return ctx->distributed; }

void ctx_set_stop(Ctx *ctx, int (*stop)(void *user), void *user)
{
	ctx->stop = stop;
	ctx->stop_user = user;
}

int ctx_should_stop(Ctx *ctx) { return ctx->stop ? ctx->stop(ctx->stop_user) : 0; }

int ctx_set_grad_enabled(Ctx *ctx, int enabled)
{
	int prev = ctx->grad_enabled;
	ctx->grad_enabled = enabled;
	return prev;
}

Rng *ctx_rng(Ctx *ctx) { return &ctx->rng; }
size_t ctx_arena_used(const Ctx *ctx) { return ctx->main.peak + ctx->grads.peak; }

size_t ctx_arena_capacity(const Ctx *ctx)
{
	size_t c = 0;
	for (int i = 0; i < ctx->main.nblocks; i++)
		c += ctx->main.blocks[i].cap;
	for (int i = 0; i < ctx->grads.nblocks; i++)
		c += ctx->grads.blocks[i].cap;
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
