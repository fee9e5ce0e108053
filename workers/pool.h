/* pool.h - the daemon's worker threads: each claims the best queued job and runs it.
 *
 * N threads loop: claim the highest-priority, oldest queued job (store_job_claim), run it with
 * runner_run in SHARED_DIR/jobs/<id>/ (SHARED_DIR is the state dir on a box alone, a directory
 * every node mounts when several share one database), and record the outcome. Runner hooks feed the StoreBatch
 * (metric points, progress, events: never a transaction per point), record artifacts, and record
 * checkpoints (flushing the job's points first, so a resume neither loses nor repeats them).
 * Cancellation is an atomic flag the runner polls every step; a pool stop makes running jobs
 * checkpoint and go back to `queued`, to resume on the next start.
 *
 * Several nodes on one queue (lease_s > 0): claims carry a lease (store.h, "leases") that a pool
 * thread renews every third of it. A renewal refused (the job was claimed again elsewhere) or none
 * succeeding for a whole lease stops the run here at once: it writes nothing more - no checkpoint,
 * no state, no rows (finish, checkpoint and batch rows carry the lease generation). The same thread
 * takes back jobs whose lease expired (their node died) to the queue, where any node claims and
 * resumes them from their last checkpoint in the shared directory.
 *
 *   PoolConfig pc = { .workers = 1, .state_dir = "/var/lib/ssld", .shared_dir = "/var/lib/ssld" };
 *   Pool *p;
 *   pool_new(st, batch, &pc, &p, err, sizeof err);
 *   pool_start(p, err, sizeof err);
 *   pool_wake(p);                  // a job was queued
 *   pool_cancel(p, 17);            // after store_job_cancel said "running"
 *   pool_request_stop(p);          // SIGTERM: checkpoint + requeue; returns at once
 *   while (pool_busy(p)) wait();
 *   pool_free(p);                  // joins the threads
 */
#ifndef SSLD_WORKERS_POOL_H
#define SSLD_WORKERS_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "../storage/batch.h"
#include "../storage/store.h"
#include "mpi_launch.h"

typedef struct Pool Pool;

typedef struct PoolConfig {
	int workers;              /* threads; 0 = queue only (jobs wait until a daemon with workers runs) */
	const char *state_dir;    /* this node's own files: the decoded-image cache (state_dir/cache/) */
	const char *shared_dir;   /* job work dirs are shared_dir/jobs/<id>/; NULL = state_dir */
	const char *node;         /* this node's name in the queue (pool_set_node may set it later) */
	int max_threads;          /* > 0: cap on a job's "threads" (BLAS/augmentation threads) */
	double idle_poll_s;       /* idle workers look at the queue this often even without a wake (default 2) */
	int max_running_per_owner;/* > 0: an owner's jobs beyond this many running wait in the queue */
	double lease_s;           /* > 0: several nodes share the queue: claims carry a lease this long,
	                           * renewed every lease_s / 3, and expired leases are taken back; 0: a
	                           * node alone (claims without a lease; start-up recovery requeues) */
	int max_interruptions;    /* taking back an expired lease counts one interruption: a job that
	                           * reaches this many fails instead (as store_recover; 0 = no cap) */
	/* Called on the worker thread after a run ended (state: its new state; JOB_QUEUED when
	 * requeued; JOB_RUNNING when this node lost the job's lease: another node owns it now). May be
	 * NULL. The daemon uses it to wake its loop (status line, stop). */
	void (*on_run_end)(void *user, int64_t job_id, JobState state);
	void *user;
	MpiLaunchConfig mpi;      /* how "distributed" jobs start (mpirun, its arguments, hostfile) */
} PoolConfig;

typedef struct PoolStats {
	int workers, busy;
	uint64_t steps;                       /* training steps run (all jobs, since start) */
	uint64_t finished[5];                 /* by JobState: succeeded, failed, cancelled, queued (= requeued) */
	uint64_t metric_calls;                /* on_metric calls */
	double metric_append_s;               /* time spent inside on_metric (training-thread cost) */
	double busy_s;                        /* time workers spent running jobs */
	uint64_t lease_lost;                  /* runs stopped here because their lease was lost */
	uint64_t reclaimed;                   /* jobs of other (dead) nodes this node took back to the queue */
	uint64_t renew_failures;              /* lease renewals that could not reach the database */
} PoolStats;

int pool_new(Store *st, StoreBatch *batch, const PoolConfig *cfg, Pool **out, char *err, size_t errlen);
/* Names this node (before pool_start: the default name needs the bound port). 0 or -ENOMEM. */
int pool_set_node(Pool *p, const char *node);
const char *pool_node(const Pool *p);
/* Starts the threads. 0 or < 0 with err. */
int pool_start(Pool *p, char *err, size_t errlen);
/* Wakes idle workers to look at the queue (cheap; any thread). */
void pool_wake(Pool *p);
/* Asks the run of job_id to stop as cancelled within one step. 1 if it runs here, 0 if not. */
int pool_cancel(Pool *p, int64_t job_id);
/* Stops claiming; running jobs checkpoint and are requeued. Returns at once. */
void pool_request_stop(Pool *p);
int pool_busy(Pool *p);                   /* jobs running now */
void pool_stats(Pool *p, PoolStats *out);
/* Stops (as pool_request_stop), joins the threads and frees. pool_free(NULL) is a no-op. */
void pool_free(Pool *p);

/* A requeued job (start-up recovery, an expired lease) whose checkpoint file in its directory is
 * newer than the database's record (a kill between the file's rename and the record): records
 * the file's step, so the claim keeps the metric points it covers. Only the job's own checkpoint
 * counts (workdir.h), and only while the job is still queued. 1 with *step set when recorded, 0
 * when there was nothing to record, < 0 with err. */
int pool_record_disk_checkpoint(Store *st, const char *shared_dir, int64_t job_id, int64_t *step, char *err,
                                size_t errlen);

/* The directory of a job: shared_dir/jobs/<id> (no trailing slash). */
int pool_job_dir(const char *shared_dir, int64_t job_id, char *out, size_t len);

#endif
