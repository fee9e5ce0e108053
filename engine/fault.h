/* fault.h - a test hook for fault injection: SSLD_FAULT names failure points to trigger.
 *
 *   SSLD_FAULT="point@N"       the N-th time `point` is reached, it fails (once)
 *   SSLD_FAULT="point@N+"      it fails every time from the N-th on (a disk that stays full)
 *   SSLD_FAULT="a@2,b@1+"      several points
 *
 * Always compiled in and inert unless the variable is set (one getenv per call at a failure
 * point, which are all on slow paths: a checkpoint write, a transaction, building a response).
 * Points (each documented where it is used):
 *   checkpoint_alloc  engine/checkpoint.c  a checkpoint write cannot allocate (CKPT_ENOMEM)
 *   checkpoint_write  engine/checkpoint.c  writing the temporary file fails with ENOSPC
 *   job_insert        storage/store.c      the transaction that queues a job fails (SQLITE_IOERR)
 *   metric_flush      storage/batch.c      a metric batch fails halfway through its rows
 *   api_alloc         api/server.c         a JSON answer cannot be allocated (503)
 *   generate_step     workers/runner.c     a generated token takes 50 ms longer (a large model:
 *                                          generation's time cap and shutdown)
 *   train_step        workers/runner.c     a pretraining step takes 50 ms longer (a slow model: tests
 *                                          that stop, kill or take over a job mid-run see it mid-run
 *                                          however fast the machine is)
 *   dataset_unpack    api/datasets.c       an upload's unpacking waits at its start (ssld_fault_hold)
 *                                          until the file SSLD_FAULT_GATE exists, having created
 *                                          SSLD_FAULT_GATE.waiting: a test sees the server while an
 *                                          archive is being unpacked, however fast the machine is
 * Used by tests/reliability/it_faults.py, it_generate.py, tests/mpi and tests/service/it_nodes.py.
 * Header-only so that any layer may use it without a link dependency; hit counters are per point
 * and per file (each point lives in one file).
 */
#ifndef SSLD_ENGINE_FAULT_H
#define SSLD_ENGINE_FAULT_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { SSLD_FAULT_POINTS = 8 };
static const char *const ssld_fault_points[SSLD_FAULT_POINTS] = {
	"checkpoint_alloc", "checkpoint_write", "job_insert", "metric_flush", "api_alloc",
	"generate_step", "train_step", "dataset_unpack",
};

/* 1 if this hit of `point` (one of ssld_fault_points) must fail. */
static inline int ssld_fault(const char *point)
{
	static atomic_long hits[SSLD_FAULT_POINTS];
	const char *spec = getenv("SSLD_FAULT");
	if (!spec || !*spec)
		return 0;
	int k = 0;
	while (k < SSLD_FAULT_POINTS && strcmp(ssld_fault_points[k], point) != 0)
		k++;
	if (k == SSLD_FAULT_POINTS)
		return 0;
	size_t pl = strlen(point);
	for (const char *s = spec; s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL) {
		if (strncmp(s, point, pl) != 0 || s[pl] != '@')
			continue;
		char *end;
		long n = strtol(s + pl + 1, &end, 10);
		long hit = atomic_fetch_add(&hits[k], 1) + 1;
		return *end == '+' ? hit >= n : hit == n;
	}
	return 0;
}

/* When this hit of `point` fails: create "$SSLD_FAULT_GATE.waiting", then wait until the file
 * $SSLD_FAULT_GATE exists (polled every 10 ms; the gate is the test's to open). */
static inline void ssld_fault_hold(const char *point)
{
	const char *gate = getenv("SSLD_FAULT_GATE");
	if (!gate || !*gate || !ssld_fault(point))
		return;
	char waiting[4096];
	snprintf(waiting, sizeof waiting, "%s.waiting", gate);
	FILE *f = fopen(waiting, "w");
	if (f)
		fclose(f);
	while (access(gate, F_OK) != 0)
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
}

#endif
