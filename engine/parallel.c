/* parallel.c - a small per-context thread pool (see parallel.h): workers started once and reused,
 * a job is a range split into chunks that the caller and the workers claim from one atomic
 * ticket, and idle threads sleep on a futex after a short spin. Also the split sgemm.
 *
 * The caller waits for the job's chunks to be done, not for every worker to check in: on a
 * loaded machine a worker that has not been scheduled yet when the caller has run every chunk
 * itself costs nothing (the caller goes on; the worker later finds no chunk left). The ticket
 * packs the job's generation, chunk count and next chunk into one word, so a claim (a CAS on it)
 * can only succeed for a chunk of the job still running, whose fields therefore stay put.
 *
 * It deliberately does not queue jobs (one parallel call at a time per context, the caller takes
 * part and waits), nest (a parallel call inside a chunk runs inline), allocate per call, or pin
 * threads to CPUs (the box is shared; the scheduler places them).
 */
#include "parallel.h"

#include <cblas.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc.h"

/* Internal to the engine (ctx.c): where a context keeps its pool and thread count. */
struct ParallelPool **ctx_pool_slot(Ctx *ctx);

/* Iterations of the spin before a waiting thread sleeps: a few microseconds, enough to catch the
 * next op of a step without a syscall, short enough to cost nothing on a loaded machine. */
#define SPIN_ITERS 4000
#define MAX_CHUNKS_PER_THREAD 4

/* ticket = generation (24 bits) | chunk count (20 bits) | next chunk (20 bits) */
#define TICKET_BITS 20
#define TICKET_MASK ((UINT64_C(1) << TICKET_BITS) - 1)
#define TICKET(gen, nchunks, next) \
	((((uint64_t)(gen) & 0xffffff) << (2 * TICKET_BITS)) | ((uint64_t)(nchunks) << TICKET_BITS) | \
	 (uint64_t)(next))

typedef struct ParallelPool {
	int requested;                /* the context's thread count when the pool was made */
	int nthreads;                 /* participants: the caller + nthreads - 1 workers */
	pthread_t *threads;
	int started;                  /* workers actually running */
	/* the current job: written by the caller before it publishes the ticket, read by a thread
	 * only after it has claimed one of the job's chunks */
	parallel_fn fn;
	void *arg;
	size_t n, chunk;
	_Atomic uint64_t ticket;      /* see TICKET */
	atomic_uint done;             /* chunks of the current job finished: the caller's futex word */
	unsigned nchunks;
	atomic_uint gen;              /* job generation: the workers' futex word */
	atomic_int sleepers;          /* workers asleep on gen */
	atomic_int caller_sleeping;
	atomic_int stop;
} ParallelPool;

typedef struct WorkerArg {
	ParallelPool *pool;
	int tid;
} WorkerArg;

static _Thread_local int in_parallel;   /* this thread is running a chunk: no nesting */

static void futex_wait(atomic_uint *addr, unsigned val)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(atomic_uint *addr)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Claim and run chunks of the current job until none is left. Returns after the last claim
 * fails; the job may still be running on other threads. */
static void run_chunks(ParallelPool *p, int tid)
{
	in_parallel = 1;
	uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
	for (;;) {
		const uint64_t next = t & TICKET_MASK, nchunks = (t >> TICKET_BITS) & TICKET_MASK;
		if (next >= nchunks)
			break;
		if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1, memory_order_acq_rel,
		                                           memory_order_acquire))
			continue;   /* t reloaded: another claim, or a new job */
		/* chunk `next` of the job is ours: the caller waits for it, so the fields are this job's */
		const size_t b = (size_t)next * p->chunk, e = b + p->chunk < p->n ? b + p->chunk : p->n;
		p->fn(p->arg, b, e, tid);
		if (atomic_fetch_add(&p->done, 1) + 1 == nchunks &&
		    atomic_load(&p->caller_sleeping))
			futex_wake(&p->done);
		t = atomic_load_explicit(&p->ticket, memory_order_acquire);
	}
	in_parallel = 0;
}

static void *worker_main(void *argp)
{
	WorkerArg wa = *(WorkerArg *)argp;
	ParallelPool *p = wa.pool;
	eng_free(argp);
	unsigned seen = 0;   /* the generation before the first job (workers start before any) */
	for (;;) {
		unsigned g;
		int spins = 0;
		while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
			if (++spins < SPIN_ITERS) {
				cpu_relax();
				continue;
			}
			atomic_fetch_add(&p->sleepers, 1);
			futex_wait(&p->gen, seen);
			atomic_fetch_sub(&p->sleepers, 1);
			spins = 0;
		}
		seen = g;
		if (atomic_load(&p->stop))
			break;
		run_chunks(p, wa.tid);
	}
	return NULL;
}

static ParallelPool *pool_new(int nthreads)
{
	ParallelPool *p = eng_calloc(1, sizeof *p);
	if (!p)
		return NULL;
	/* The pool splits sgemms itself; OpenBLAS threads would only spin against it. */
	openblas_set_num_threads(1);
	p->requested = p->nthreads = nthreads;
	p->threads = eng_calloc((size_t)nthreads, sizeof *p->threads);
	if (!p->threads) {
		eng_free(p);
		return NULL;
	}
	for (int t = 1; t < nthreads; t++) {
		WorkerArg *wa = eng_malloc(sizeof *wa);
		if (!wa)
			break;
		*wa = (WorkerArg){ p, t };
		if (pthread_create(&p->threads[t], NULL, worker_main, wa) != 0) {
			eng_free(wa);
			break;
		}
		p->started++;
	}
	/* Fewer workers than asked (no memory, thread limit): run with what started. */
	p->nthreads = p->started + 1;
	return p;
}

void parallel_pool_free(ParallelPool *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, 1);
	atomic_fetch_add(&p->gen, 1);
	futex_wake(&p->gen);
	for (int t = 1; t <= p->started; t++)
		pthread_join(p->threads[t], NULL);
	eng_free(p->threads);
	eng_free(p);
}

/* The context's pool, started on first use; NULL when the context runs on one thread. */
static ParallelPool *get_pool(Ctx *ctx)
{
	int want = ctx_threads(ctx);
	if (want <= 1)
		return NULL;
	ParallelPool **slot = ctx_pool_slot(ctx);
	if (*slot && (*slot)->requested != want) {
		parallel_pool_free(*slot);
		*slot = NULL;
	}
	if (!*slot)
		*slot = pool_new(want);
	return *slot && (*slot)->nthreads > 1 ? *slot : NULL;
}

void parallel_for(Ctx *ctx, size_t n, size_t grain, parallel_fn fn, void *arg)
{
	if (n == 0)
		return;
	if (grain < 1)
		grain = 1;
	ParallelPool *p = NULL;
	if (!in_parallel && n / grain >= 2)
		p = get_pool(ctx);
	if (!p) {
		fn(arg, 0, n, 0);
		return;
	}
	size_t maxc = (size_t)p->nthreads * MAX_CHUNKS_PER_THREAD;
	size_t nchunks = n / grain < maxc ? n / grain : maxc;
	p->fn = fn;
	p->arg = arg;
	p->n = n;
	p->chunk = (n + nchunks - 1) / nchunks;
	p->nchunks = (unsigned)((n + p->chunk - 1) / p->chunk);
	atomic_store_explicit(&p->done, 0, memory_order_relaxed);
	const unsigned g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
	atomic_store_explicit(&p->ticket, TICKET(g, p->nchunks, 0), memory_order_release);
	atomic_store_explicit(&p->gen, g, memory_order_seq_cst);   /* wakes the workers' spin */
	if (atomic_load(&p->sleepers) > 0)
		futex_wake(&p->gen);
	run_chunks(p, 0);
	int spins = 0;
	unsigned d;
	while ((d = atomic_load_explicit(&p->done, memory_order_acquire)) != p->nchunks) {
		if (++spins < SPIN_ITERS) {
			cpu_relax();
			continue;
		}
		atomic_store(&p->caller_sleeping, 1);
		if ((d = atomic_load(&p->done)) != p->nchunks)
			futex_wait(&p->done, d);
		atomic_store(&p->caller_sleeping, 0);
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* split sgemm */

typedef struct GemmJob {
	int ta, tb, M, N, K, lda, ldb, ldc, by_cols, block;
	float alpha, beta;
	const float *A, *B;
	float *C;
} GemmJob;

static void gemm_part(void *arg, size_t begin, size_t end, int tid)
{
	const GemmJob *g = arg;
	(void)tid;
	int lo = (int)begin * g->block, hi = (int)end * g->block;
	if (g->by_cols) {
		if (hi > g->N)
			hi = g->N;
		const float *B = g->tb ? g->B + (size_t)lo * g->ldb : g->B + lo;
		cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans,
		            g->tb ? CblasTrans : CblasNoTrans, g->M, hi - lo, g->K, g->alpha, g->A, g->lda,
		            B, g->ldb, g->beta, g->C + lo, g->ldc);
	} else {
		if (hi > g->M)
			hi = g->M;
		const float *A = g->ta ? g->A + lo : g->A + (size_t)lo * g->lda;
		cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans,
		            g->tb ? CblasTrans : CblasNoTrans, hi - lo, g->N, g->K, g->alpha, A, g->lda,
		            g->B, g->ldb, g->beta, g->C + (size_t)lo * g->ldc, g->ldc);
	}
}

/* Below this many multiply-adds a split costs more in packing and waking than it saves. */
#define GEMM_SPLIT_MIN_MACS (1u << 21)
#define GEMM_BLOCK 32

void parallel_sgemm(Ctx *ctx, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	GemmJob g = { .ta = ta, .tb = tb, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb,
	              .ldc = ldc, .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C,
	              .block = GEMM_BLOCK };
	double macs = (double)M * N * (K > 0 ? K : 1);
	int t = ctx ? ctx_threads(ctx) : 1;
	/* Split the longer side of C, in blocks of whole kernel tiles; each part must keep enough
	 * work for its own packing to pay (at least a quarter of the threshold). */
	g.by_cols = N >= M;
	size_t blocks = (size_t)((g.by_cols ? N : M) + GEMM_BLOCK - 1) / GEMM_BLOCK;
	if (t <= 1 || in_parallel || macs < GEMM_SPLIT_MIN_MACS || blocks < 2) {
		gemm_part(&g, 0, blocks ? blocks : 1, 0);
		return;
	}
	size_t grain = 1;
	double per_block = macs / (double)blocks;
	while (per_block * (double)grain < GEMM_SPLIT_MIN_MACS / 4 && grain < blocks)
		grain++;
	/* one part per thread unless the parts stay large: packing the shared operand is repeated
	 * in every part */
	size_t min_grain = (blocks + (size_t)t * 2 - 1) / ((size_t)t * 2);
	if (macs / (double)t < 8.0 * GEMM_SPLIT_MIN_MACS)
		min_grain = (blocks + (size_t)t - 1) / (size_t)t;
	if (grain < min_grain)
		grain = min_grain;
	parallel_for(ctx, blocks, grain, gemm_part, &g);
}
