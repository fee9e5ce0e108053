/* parallel.h - the engine's thread pool: data-parallel loops and a split sgemm, run on the threads
 * of one training context.
 *
 * Each Ctx has a thread count (ctx_set_threads, default 1). The first parallel call of a context
 * with more than one thread starts its workers (threads - 1 of them; the calling thread is the
 * other participant); they live until ctx_free or until the thread count changes, and sleep on a
 * futex between calls, so a steady training step creates no thread and allocates nothing. Two
 * contexts have two pools and share nothing: two jobs train side by side, each on its own threads.
 *
 *   static void scale_part(void *arg, size_t begin, size_t end, int tid)
 *   {
 *       float *x = arg;
 *       for (size_t i = begin; i < end; i++) x[i] *= 2.0f;
 *   }
 *   parallel_for(ctx, n, 16384, scale_part, x);   // [0,n) in chunks of >= 16384 across threads
 *
 * fn runs once per chunk, on the caller or on a worker, in no particular order; `tid` in
 * [0, ctx_threads(ctx)) names the executing thread (for per-thread scratch buffers only). Chunk
 * boundaries depend on n, grain and the thread count, so a loop whose result must not depend on
 * the thread count (every op here) gives each output element to exactly one chunk and never sums
 * across chunks. A parallel call made from inside fn runs inline on that thread (no nesting).
 *
 * OpenBLAS keeps its own thread count, process-wide (openblas_set_num_threads): the engine sets it
 * to 1 (eng_set_threads) and splits large sgemms across the context's pool instead
 * (parallel_sgemm), so BLAS threads never spin while the pool works, and two jobs' thread counts
 * stay separate. Code that calls cblas_sgemm directly therefore runs it on one thread.
 *
 * Not here: work stealing across contexts, priorities, nested parallelism, NUMA placement.
 */
#ifndef SSLD_ENGINE_PARALLEL_H
#define SSLD_ENGINE_PARALLEL_H

#include <stddef.h>

#include "ctx.h"

typedef void (*parallel_fn)(void *arg, size_t begin, size_t end, int tid);

/* Run fn over [0, n) split into chunks of at least `grain` items, on the context's threads;
 * returns when every chunk is done. One thread (or n <= grain) runs fn(arg, 0, n, 0) inline. */
void parallel_for(Ctx *ctx, size_t n, size_t grain, parallel_fn fn, void *arg);

/* Row-major C (M,N) = alpha * op(A) (M,K) op(B) (K,N) + beta * C, exactly cblas_sgemm's
 * arguments (transposes as 0/1), split into column or row blocks across the context's threads
 * when it is large enough to pay. Each block is one single-threaded cblas_sgemm, so the result
 * equals an unsplit call's up to the blocking of the summation inside OpenBLAS. */
void parallel_sgemm(Ctx *ctx, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Internal to ctx.c: stop and free a pool (NULL is a no-op). */
struct ParallelPool;
void parallel_pool_free(struct ParallelPool *p);

#endif
