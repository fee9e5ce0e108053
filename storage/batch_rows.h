/* batch_rows.h - the rows a StoreBatch holds, shared by batch.c (which buffers them and writes them
 * to SQLite) and store_pg.c (which writes them to PostgreSQL). Private to storage/.
 */
#ifndef SSLD_STORAGE_BATCH_ROWS_H
#define SSLD_STORAGE_BATCH_ROWS_H

#include <stddef.h>
#include <stdint.h>

#define BATCH_KEY_MAX 64

/* gen: the lease generation the row was produced under (store_batch_lease), -1 = not fenced. */
typedef struct Point { int64_t job, gen, step; double time, value; char key[BATCH_KEY_MAX]; } Point;
typedef struct Event { int64_t job, gen; double time; int level; char *msg; } Event;
typedef struct Progress { int64_t job, gen, step, total; double fraction, eta_s; char stage[64]; } Progress;

typedef struct BatchRows {
	Point *pts; size_t npts, cappts;
	Event *evs; size_t nevs, capevs;
	Progress *prog; size_t nprog, capprog;
} BatchRows;

/* The (job, generation) pairs of one flush found fenced (their rows dropped) or not. */
typedef struct Fence { int64_t job, gen; int fenced; } Fence;
typedef struct Fences { Fence *v; size_t n, cap; } Fences;
/* The recorded answer for (job, gen): 1 fenced, 0 not, -1 not checked yet. */
int fences_find(const Fences *f, int64_t job, int64_t gen);
/* Records an answer: 0, or -1 out of memory. */
int fences_add(Fences *f, int64_t job, int64_t gen, int fenced);

#endif
