/* batch.h - the single writer of high-rate rows: metric points, job events and progress.
 *
 * Training threads append to an in-memory buffer under a mutex (no I/O, no SQLite: cheap enough to
 * call every step); one flusher - the daemon's timer, at least once a second, and a worker when a
 * run ends - writes everything pending in ONE transaction. Flushes are serialised, so there is
 * exactly one writer of these rows at a time. If a flush fails the rows stay pending (in order) and
 * the next flush retries them; past max_pending points new points are dropped and counted.
 *
 *   StoreBatch *b;
 *   store_batch_new(st, 1 << 20, &b, err, sizeof err);
 *   store_batch_metric(b, job, step, "loss", 0.93);      // any thread, per step
 *   store_batch_flush(b, err, sizeof err);                // timer thread, <= 1 s apart
 *   store_batch_free(b);                                  // does not flush: flush first
 */
#ifndef SSLD_STORAGE_BATCH_H
#define SSLD_STORAGE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct StoreBatch StoreBatch;

typedef struct StoreBatchStats {
	uint64_t points_written;   /* metric rows committed */
	uint64_t events_written;
	uint64_t flushes;          /* successful transactions */
	uint64_t failures;
	uint64_t dropped;          /* points refused because max_pending was reached */
	uint64_t fenced;           /* (job, lease generation) pairs whose rows a flush dropped */
	double flush_seconds;      /* total wall time spent in flush transactions */
	double max_flush_seconds;
	size_t pending;            /* points waiting now */
} StoreBatchStats;

/* max_pending bounds the points held in memory (0 = 1M). */
int store_batch_new(Store *st, size_t max_pending, StoreBatch **out, char *err, size_t errlen);
void store_batch_free(StoreBatch *b);    /* store_batch_free(NULL) is a no-op; pending rows are lost */

void store_batch_metric(StoreBatch *b, int64_t job_id, int64_t step, const char *key, double value);
void store_batch_event(StoreBatch *b, int64_t job_id, int level, const char *message);
/* Latest progress of a running job (only the last call before a flush is written): the stage's
 * step of total, and the whole job's fraction (0..1, < 0 unknown) and seconds left (< 0 unknown). */
void store_batch_progress(StoreBatch *b, int64_t job_id, int64_t step, int64_t total, const char *stage,
                          double fraction, double eta_s);

/* Fencing (store.h, "leases"): rows appended for job_id from now on carry lease_gen, the generation
 * its run was claimed with (lease_gen < 0: forget the job, no fencing; the default). A flush drops
 * the rows of a run whose job was claimed again or taken back to the queue since, and from then
 * store_batch_fenced(job_id) returns STORE_FENCED (0 otherwise) until the next store_batch_lease. */
int store_batch_lease(StoreBatch *b, int64_t job_id, int64_t lease_gen);
int store_batch_fenced(StoreBatch *b, int64_t job_id);

/* Writes everything pending in one transaction. Returns rows written (>= 0) or < 0 (rows kept). */
int store_batch_flush(StoreBatch *b, char *err, size_t errlen);
void store_batch_stats(StoreBatch *b, StoreBatchStats *out);

#endif
