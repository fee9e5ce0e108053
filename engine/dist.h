/* dist.h - data-parallel training over processes (MPI ranks): what the engine needs of MPI.
 *
 * One job trains as N ranks with the mathematics of one process: the global batch is split into
 * N shards, batch statistics (BatchNorm, op_batchnorm with ctx_set_distributed) and the losses
 * that compare samples (op_dist_gather_rows) see the whole batch, and the gradients are summed
 * over the ranks before the optimizer step, so every rank applies the same update.
 *
 *   if (dist_init(err, sizeof err) < 0) { ...a clear error... }   // MPI_Init only under mpirun
 *   dist_bcast_params(ps, opt);                 // rank 0's weights, moments and buffers
 *   for each step:
 *       loss = method->loss(ctx, ...);          // ctx_set_distributed(ctx, 1)
 *       ctx_backward(ctx, loss);
 *       dist_allreduce_grads(ps);               // the sum over ranks, in buckets
 *       if (dist_error()) { ...fail the job with dist_error()... }
 *       optim_step(...);
 *   dist_finalize(rc < 0);
 *
 * Without MPI (the default build: meson option `mpi`) the same calls exist and are the identity
 * (rank 0 of 1); dist_init then refuses a launch as several processes. With MPI but outside
 * mpirun (no launcher variables in the environment) MPI is never initialised and the process
 * behaves exactly as the build without it.
 *
 * Faults: every collective is non-blocking and polled against a deadline (dist_set_timeout,
 * default 300 s, or SSLD_DIST_TIMEOUT_S), so a rank that died or hangs cannot hang the others.
 * The first failure is sticky: dist_error() returns its message and every later collective
 * returns -1 at once (its output is then garbage the caller must not use). After a failure
 * dist_finalize does not call MPI_Finalize (it would wait for the lost rank): the process exits
 * with a non-zero status and mpirun ends the remaining ranks.
 *
 * Not thread-safe: one training per process calls it, from one thread (MPI_THREAD_FUNNELED).
 */
#ifndef SSLD_ENGINE_DIST_H
#define SSLD_ENGINE_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "optim.h"
#include "params.h"

/* Default deadline of one collective, seconds. Generous: a slow rank (a checkpoint being written,
 * an oversubscribed box) is not a dead one. */
#define DIST_TIMEOUT_DEFAULT_S 300.0

/* Initialise once (later calls return 0). Under mpirun (OMPI_COMM_WORLD_SIZE, PMI_SIZE or
 * PMIX_RANK set) with MPI built in: MPI_Init_thread. 0, or -1 with err set. */
int dist_init(char *err, size_t errlen);
/* MPI_Finalize when MPI was initialised, unless a collective failed or job_failed (this rank
 * gave up, and the others may be waiting for it in a collective): then the process must exit
 * without it, and mpirun ends the remaining ranks. Safe to call more than once. */
void dist_finalize(int job_failed);
int dist_rank(void);                  /* 0 without MPI */
int dist_size(void);                  /* 1 without MPI */
static inline int dist_is_root(void)
{
	return dist_rank() == 0;
}
/* Nonzero when built with MPI (meson option `mpi`). */
int dist_available(void);

/* Deadline of each collective, seconds (> 0). */
void dist_set_timeout(double seconds);
/* The step the collectives belong to, for error messages ("... at step 41"). */
void dist_set_step(int64_t step);
/* The first collective failure ("distributed: allreduce of the gradients timed out after 300 s
 * at step 41 on rank 1 of 2: another rank died or stopped responding"), or NULL. */
const char *dist_error(void);

/* ---- collectives (every rank calls them in the same order); 0, or -1 and dist_error() ---- */
/* buf (n) summed over the ranks, in place, in buckets of DIST_BUCKET_FLOATS. */
int dist_allreduce_sum_f32(float *buf, size_t n, const char *what);
/* buf (n) summed over the ranks, in place (batch statistics: n is a few channels). */
int dist_allreduce_sum_f64(double *buf, size_t n, const char *what);
/* buf (n) element-wise maximum over the ranks, in place (stop flags, rank 0's clock). */
int dist_allreduce_max_f64(double *buf, size_t n, const char *what);
/* send (n) of every rank -> recv (size * n), rank r's at recv + r * n. */
int dist_allgather_f32(const float *send, size_t n, float *recv, const char *what);
/* buf (bytes) of rank 0 copied to every rank. */
int dist_bcast(void *buf, size_t bytes, const char *what);

/* ---- training glue (dist.c) ------------------------------------------------------------------ */
/* Sum every trainable parameter's gradient over the ranks (packed into buckets). */
int dist_allreduce_grads(ParamSet *ps);
/* Rank 0's parameters and buffers (and, with opt, its optimizer moments and step count) to every
 * rank: the ranks start from one initialisation or one checkpoint. opt may be NULL. */
int dist_bcast_params(ParamSet *ps, Optim *opt);

/* Internal: dist_finalize releases dist.c's packing buffer through this. */
void dist__free_buffers(void);

#define DIST_BUCKET_FLOATS ((size_t)1 << 20)   /* 4 MB per allreduce in flight */

#endif
