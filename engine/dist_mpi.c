/* dist_mpi.c - the collectives of dist.h over MPI (the build with meson option `mpi`).
 *
 * Every collective is the non-blocking MPI call polled with MPI_Testall against a deadline: a
 * blocking MPI_Allreduce waits forever for a rank that died. It works on a duplicate of
 * MPI_COMM_WORLD with MPI_ERRORS_RETURN, so an MPI error is a message, not an abort. It does not
 * initialise MPI unless a launcher started this process (dist_init). */
#include "dist.h"

#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/monotime.h"

static struct {
	int mpi;            /* MPI_Init ran (launched by mpirun) */
	int finalized;
	int rank, size;
	double timeout_s;
	int64_t step;
	int failed;
	char err[512];
	MPI_Comm comm;
} g = { .size = 1, .timeout_s = DIST_TIMEOUT_DEFAULT_S, .step = -1 };

/* The process count the launcher announced, 0 when no launcher started us. */
static int launched_size(void)
{
	const char *s = getenv("OMPI_COMM_WORLD_SIZE");
	if (!s)
		s = getenv("PMI_SIZE");
	if (!s && getenv("PMIX_RANK"))
		return 1;   /* PMIx without a size variable: MPI_Comm_size tells */
	return s ? atoi(s) : 0;
}

/* Once per process, whichever thread asks first (the daemon's workers run the runner too; they are
 * never under mpirun, so MPI is then not initialised). */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static char init_err[256];

static void init_process(void)
{
	const char *t = getenv("SSLD_DIST_TIMEOUT_S");
	if (t && atof(t) > 0)
		g.timeout_s = atof(t);
	if (launched_size() <= 0)
		return;
	int provided;
	if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
		snprintf(init_err, sizeof init_err, "distributed: MPI_Init_thread failed");
		return;
	}
	g.mpi = 1;
	MPI_Comm_dup(MPI_COMM_WORLD, &g.comm);
	MPI_Comm_set_errhandler(g.comm, MPI_ERRORS_RETURN);
	MPI_Comm_rank(g.comm, &g.rank);
	MPI_Comm_size(g.comm, &g.size);
}

int dist_init(char *err, size_t errlen)
{
	pthread_once(&init_once, init_process);
	if (init_err[0]) {
		snprintf(err, errlen, "%s", init_err);
		return -1;
	}
	return 0;
}

void dist_finalize(int job_failed)
{
	if (!g.mpi || g.finalized)
		return;
	g.finalized = 1;
	dist__free_buffers();
	if (g.failed || job_failed)
		return;   /* a lost rank would keep MPI_Finalize waiting: exit, mpirun ends the rest */
	MPI_Comm_free(&g.comm);
	MPI_Finalize();
}

int dist_rank(void)
{
	return g.rank;
}

int dist_size(void)
{
	return g.size;
}

int dist_available(void)
{
	return 1;
}

void dist_set_timeout(double seconds)
{
	if (seconds > 0)
		g.timeout_s = seconds;
}

void dist_set_step(int64_t step)
{
	g.step = step;
}

const char *dist_error(void)
{
	return g.failed ? g.err : NULL;
}

static int fail(const char *what, const char *fmt, ...)
{
	if (g.failed)
		return -1;
	g.failed = 1;
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	char at[48] = "";
	if (g.step >= 0)
		snprintf(at, sizeof at, " at step %lld", (long long)g.step);
	snprintf(g.err, sizeof g.err, "distributed: %s %s%s on rank %d of %d", what, why, at, g.rank,
	         g.size);
	return -1;
}

/* Wait for n requests until the deadline. Spins (yielding) for the first millisecond, where a
 * collective on one box completes, then sleeps 100 us between polls. */
static int wait_all(MPI_Request *req, int n, const char *what)
{
	double t0 = mono_seconds();
	for (long polls = 0;; polls++) {
		int done = 0;
		int rc = MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
		if (rc != MPI_SUCCESS) {
			char msg[MPI_MAX_ERROR_STRING];
			int len = 0;
			MPI_Error_string(rc, msg, &len);
			return fail(what, "failed (%s): another rank died", msg);
		}
		if (done)
			return 0;
		double waited = mono_seconds() - t0;
		if (waited > g.timeout_s)
			return fail(what, "timed out after %.0f s (SSLD_DIST_TIMEOUT_S): another rank died or "
			            "stopped responding", g.timeout_s);
		if (waited < 1e-3)
			sched_yield();
		else
			nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
	}
}

/* The collectives: nothing to do for one rank; -1 at once after a failure. */
static int skip(int *rc)
{
	*rc = g.failed ? -1 : 0;
	return g.failed || g.size <= 1;
}

int dist_allreduce_sum_f32(float *buf, size_t n, const char *what)
{
	int rc;
	if (skip(&rc))
		return rc;
	enum { INFLIGHT = 8 };
	MPI_Request req[INFLIGHT];
	int k = 0;
	for (size_t off = 0; off < n; off += DIST_BUCKET_FLOATS) {
		size_t len = n - off < DIST_BUCKET_FLOATS ? n - off : DIST_BUCKET_FLOATS;
		if (MPI_Iallreduce(MPI_IN_PLACE, buf + off, (int)len, MPI_FLOAT, MPI_SUM, g.comm,
		                   &req[k++]) != MPI_SUCCESS)
			return fail(what, "could not start");
		if (k == INFLIGHT) {
			if (wait_all(req, k, what) < 0)
				return -1;
			k = 0;
		}
	}
	return k ? wait_all(req, k, what) : 0;
}

static int allreduce_f64(double *buf, size_t n, MPI_Op op, const char *what)
{
	int rc;
	if (skip(&rc))
		return rc;
	if (n > INT_MAX)
		return fail(what, "has too many values (%zu)", n);
	MPI_Request req;
	if (MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, op, g.comm, &req) != MPI_SUCCESS)
		return fail(what, "could not start");
	return wait_all(&req, 1, what);
}

int dist_allreduce_sum_f64(double *buf, size_t n, const char *what)
{
	return allreduce_f64(buf, n, MPI_SUM, what);
}

int dist_allreduce_max_f64(double *buf, size_t n, const char *what)
{
	return allreduce_f64(buf, n, MPI_MAX, what);
}

int dist_allgather_f32(const float *send, size_t n, float *recv, const char *what)
{
	int rc;
	if (g.failed)
		return -1;
	if (g.size <= 1) {
		memmove(recv, send, n * sizeof *send);
		return 0;
	}
	if (n > INT_MAX)
		return fail(what, "has too many values (%zu)", n);
	MPI_Request req;
	if (MPI_Iallgather(send, (int)n, MPI_FLOAT, recv, (int)n, MPI_FLOAT, g.comm, &req) !=
	    MPI_SUCCESS)
		return fail(what, "could not start");
	rc = wait_all(&req, 1, what);
	return rc;
}

int dist_bcast(void *buf, size_t bytes, const char *what)
{
	int rc;
	if (skip(&rc))
		return rc;
	const size_t chunk = (size_t)1 << 26;
	for (size_t off = 0; off < bytes; off += chunk) {
		size_t len = bytes - off < chunk ? bytes - off : chunk;
		MPI_Request req;
		if (MPI_Ibcast((char *)buf + off, (int)len, MPI_BYTE, 0, g.comm, &req) != MPI_SUCCESS)
			return fail(what, "could not start");
		if (wait_all(&req, 1, what) < 0)
			return -1;
	}
	return 0;
}
