/* job.h - one job run in this process through runner_run, for the tests that train a method end
 * to end: the job gets a scratch directory kept across calls (so a second run resumes), a failure
 * is printed with its spec, and results.json is parsed for the checks. The metric and stop hooks
 * stay with each test, which decides what it follows. */
#ifndef SSLD_TESTS_SUPPORT_JOB_H
#define SSLD_TESTS_SUPPORT_JOB_H

#include <cjson/cJSON.h>

#include "runner.h"

/* Runs spec with hooks in *dir, first made as a scratch directory tagged tag when *dir is NULL.
 * *results (freed first) becomes the parsed results.json, NULL when there is none. Returns
 * runner_run's answer, or -1 when no directory could be made. */
int test_job_run(const char *spec, const char *tag, const RunnerHooks *hooks, char **dir,
                 cJSON **results);

/* Removes *dir and everything below it, frees it and *results, and sets both to NULL. */
void test_job_close(char **dir, cJSON **results);

/* results.pretext.<key>, or NAN when it is not a number there. */
double test_job_pretext(const cJSON *results, const char *key);

#endif
