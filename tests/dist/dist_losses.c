/* dist_losses.c - the runner as one rank of a data-parallel job, for the mpi suite (it_mpi.py):
 * runs JOB.json in DIR and prints, on rank 0, every step's loss and gradient norm as
 * "loss STEP VALUE" and "grad_norm STEP VALUE" (%.9e), so a driver can compare the curves of 1
 * and 2 processes. Faults on request:
 *   --stop-at K          rank 0 alone asks to stop (requeue) once K steps are done: the ranks
 *                        must agree on the step, rank 0 checkpoints
 *   --hang-at K --rank R rank R stops responding (SIGSTOP) after K steps: the others must fail
 *                        with the collective timeout instead of waiting for ever
 * Exit status: 0 succeeded, 3 stopped for requeue, 1 failed (the error on stderr). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../engine/dist.h"
#include "runner.h"

typedef struct Opts {
	long stop_at, hang_at;
	int hang_rank;
} Opts;

static void on_metric(void *user, int64_t step, const char *key, double v)
{
	(void)user;
	if (strcmp(key, "loss") == 0 || strcmp(key, "grad_norm") == 0) {
		printf("%s %lld %.9e\n", key, (long long)step, v);
		fflush(stdout);
	}
}

/* Every rank: should_stop is polled once before each step (and at an epoch's end, which the
 * test's runs do not reach). */
static long steps_done;

static int should_stop(void *user)
{
	Opts *o = user;
	long done = steps_done++;
	if (o->hang_at > 0 && done == o->hang_at && dist_rank() == o->hang_rank)
		raise(SIGSTOP);
	if (o->stop_at > 0 && dist_rank() == 0 && done >= o->stop_at)
		return RUNNER_STOP_REQUEUE;
	return RUNNER_CONTINUE;
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	if (s)
		s[n] = 0;
	fclose(f);
	return s;
}

int main(int argc, char **argv)
{
	Opts o = { 0 };
	if (argc < 3) {
		fprintf(stderr, "usage: dist_losses JOB.json DIR [--stop-at K] [--hang-at K --rank R]\n");
		return 2;
	}
	for (int i = 3; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--stop-at") == 0)
			o.stop_at = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--hang-at") == 0)
			o.hang_at = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--rank") == 0)
			o.hang_rank = atoi(argv[i + 1]);
	}
	char *spec = read_all(argv[1]);
	if (!spec) {
		fprintf(stderr, "dist_losses: cannot read %s\n", argv[1]);
		return 2;
	}
	mkdir(argv[2], 0755);   /* every rank may: the runner writes only on rank 0 */
	RunnerHooks h = { .user = &o, .on_metric = on_metric, .should_stop = should_stop };
	char err[1024], *results = NULL;
	int rc = runner_run(spec, argv[2], &h, NULL, &results, err, sizeof err);
	free(spec);
	free(results);
	if (rc < 0)
		fprintf(stderr, "dist_losses: rank %d: %s\n", dist_rank(), err);
	dist_finalize(rc < 0);
	return rc < 0 ? 1 : rc == RUNNER_STOPPED ? 3 : 0;
}
