/* job.c - one in-process job run for the method tests (see job.h). No assertions: the tests make
 * their own checks on what it returns. */
#include "job.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "support.h"

int test_job_run(const char *spec, const char *tag, const RunnerHooks *hooks, char **dir,
                 cJSON **results)
{
	if (!*dir)
		*dir = test_tmpdir(tag);
	char err[1024], *res = NULL;
	int rc = *dir ? runner_run(spec, *dir, hooks, NULL, &res, err, sizeof err) : -1;
	if (rc < 0)
		fprintf(stderr, "runner failed: %s\n  spec: %s\n", *dir ? err : "no scratch directory",
		        spec);
	cJSON_Delete(*results);
	*results = res ? cJSON_Parse(res) : NULL;
	free(res);
	return rc;
}

void test_job_close(char **dir, cJSON **results)
{
	if (*dir)
		test_rmtree(*dir);
	free(*dir);
	cJSON_Delete(*results);
	*dir = NULL;
	*results = NULL;
}

double test_job_pretext(const cJSON *results, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(results, "pretext"), key);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
