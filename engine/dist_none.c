/* dist_none.c - dist.h in a build without MPI: one process, rank 0 of 1, every collective the
 * identity. It exists so the engine and the runner call one interface whatever the build; what
 * it refuses is a launch as several processes (mpirun -np 2 of a binary that cannot talk MPI
 * would train two unrelated copies of the job). */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int dist_init(char *err, size_t errlen)
{
	const char *s = getenv("OMPI_COMM_WORLD_SIZE");
	if (!s)
		s = getenv("PMI_SIZE");
	if (s && atoi(s) > 1) {
		snprintf(err, errlen, "distributed: this ssld was built without MPI (meson setup "
		         "-Dmpi=enabled), so it cannot train one job as %d processes", atoi(s));
		return -1;
	}
	return 0;
}

void dist_finalize(int job_failed)
{
	(void)job_failed;
}

int dist_rank(void)
{
	return 0;
}

int dist_size(void)
{
	return 1;
}

int dist_available(void)
{
	return 0;
}

void dist_set_timeout(double seconds)
{
	(void)seconds;
}

void dist_set_step(int64_t step)
{
	(void)step;
}

const char *dist_error(void)
{
	return NULL;   /* nothing can fail */
}

int dist_allreduce_sum_f32(float *buf, size_t n, const char *what)
{
	return 0;
}

int dist_allreduce_sum_f64(double *buf, size_t n, const char *what)
{
	return 0;
}

int dist_allreduce_max_f64(double *buf, size_t n, const char *what)
{
	return 0;
}

int dist_allgather_f32(const float *send, size_t n, float *recv, const char *what)
{
	memmove(recv, send, n * sizeof *send);
	return 0;
}

int dist_bcast(void *buf, size_t bytes, const char *what)
{
	return 0;
}
