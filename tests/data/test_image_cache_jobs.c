/* test_image_cache_jobs.c - the decode cache across jobs, through the runner as the service and
 * `ssld run` drive it: two jobs on one folder with one shared cache folder (the service's
 * STATE/cache/images) decode once - the second job's log says it read decoded pixels - and a
 * cache file truncated between jobs is detected and rebuilt, never used, with the same results.
 * The jobs are "none" + a pixel_probe on 16 tiny images, so each takes well under a second.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../workers/jobspec.h"
#include "../../workers/runner.h"
#include "check.h"
#include "img_fixtures.h"

static char dir[] = "/tmp/ssld_cache_jobs_XXXXXX";
static char events[8192];

static void on_event(void *user, RunnerLevel level, const char *msg)
{
	(void)user;
	(void)level;
	size_t at = strlen(events);
	snprintf(events + at, sizeof events - at, "%s\n", msg);
}

static int shade;
static unsigned px(int x, int y, int c) { return (unsigned)(shade + x * 7 + y * 3 + c * 40) & 255; }

/* One job in work dir `name` with the shared cache: its events in `events`, its results. */
static char *run_job(const char *name, const char *cache)
{
	char spec[1024], work[600];
	snprintf(spec, sizeof spec,
	         "{\"method\": \"none\", \"dataset\": {\"format\": \"image_folder\", \"train\": "
	         "\"%s/imgs\", \"image_size\": 8, \"test_fraction\": 0.25}, \"evaluations\": "
	         "[{\"protocol\": \"pixel_probe\", \"labels_per_class\": 3}], \"threads\": 2}", dir);
	snprintf(work, sizeof work, "%s/%s", dir, name);
	mkdir(work, 0755);
	JobSpecOptions o = { .check_files = 1 };
	JobSpec *js = NULL;
	SpecError e;
	if (jobspec_parse(spec, strlen(spec), &o, &js, &e) < 0) {
		CHECK(0, "spec refused: %s", e.message);
		return NULL;
	}
	events[0] = 0;
	RunnerHooks h = { .on_event = on_event };
	RunnerOptions ro = { .cache_dir = cache };
	char *results = NULL, err[512];
	int rc = runner_run_spec(js, work, &ro, &h, NULL, &results, err, sizeof err);
	CHECK(rc == RUNNER_OK, "job %s: rc %d %s", name, rc, err);
	return results;
}

/* The one cache file in cache (its path), or "" */
static void cache_file(const char *cache, char *out, size_t n)
{
	out[0] = 0;
	DIR *d = opendir(cache);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (strstr(de->d_name, ".u8") && !strstr(de->d_name, ".lock"))
			snprintf(out, n, "%s/%s", cache, de->d_name);
	if (d)
		closedir(d);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	char p[600], cache[600];
	for (int c = 0; c < 2; c++) {
		snprintf(p, sizeof p, "%s/imgs%s", dir, "");
		mkdir(p, 0755);
		snprintf(p, sizeof p, "%s/imgs/%s", dir, c ? "b" : "a");
		mkdir(p, 0755);
		for (int i = 0; i < 8; i++) {
			shade = c * 120 + i * 5;
			snprintf(p, sizeof p, "%s/imgs/%s/%d.png", dir, c ? "b" : "a", i);
			fx_png(p, 10, 9, PNG_COLOR_TYPE_RGB, 8, 0, px);
		}
	}
	snprintf(cache, sizeof cache, "%s/cache", dir);
	mkdir(cache, 0755);

	char *r1 = run_job("job1", cache);
	CHECK(strstr(events, "decode cache: train images: decoded into ") &&
	      strstr(events, "decoding images on 2 threads: 16/16 (100%)"),
	      "the first job decodes, with a progress line:\n%s", events);
	char f[700];
	cache_file(cache, f, sizeof f);
	CHECK(f[0] != 0, "a cache file in the shared folder");
	char *r2 = run_job("job2", cache);
	CHECK(strstr(events, "decode cache: train images: read decoded pixels from ") &&
	      !strstr(events, "decoding images"), "the second job reads the cache:\n%s", events);
	char own[700], job2[600];
	snprintf(job2, sizeof job2, "%s/job2", dir);
	cache_file(job2, own, sizeof own);
	CHECK(own[0] == 0, "nothing cached in the job's own folder: %s", own);
	/* truncated between jobs: detected, rebuilt, and the job sees the same pixels */
	CHECK(f[0] && truncate(f, 5000) == 0, "truncate %s", f);
	char *r3 = run_job("job3", cache);
	CHECK(strstr(events, "rebuilt (the cached file was truncated or corrupt)"),
	      "a truncated cache is rebuilt:\n%s", events);
	struct stat st;
	CHECK(stat(f, &st) == 0 && st.st_size == 4096 + 16 * (3 * 64 + 1), "rebuilt to full size");
	const char *acc[3] = { r1 ? strstr(r1, "\"test_accuracy\"") : NULL,
	                       r2 ? strstr(r2, "\"test_accuracy\"") : NULL,
	                       r3 ? strstr(r3, "\"test_accuracy\"") : NULL };
	CHECK(acc[0] && acc[1] && acc[2] && strncmp(acc[0], acc[1], 24) == 0 &&
	      strncmp(acc[0], acc[2], 24) == 0, "the same results from decoded and cached pixels");
	free(r1);
	free(r2);
	free(r3);
	char cmd[700];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_exit("image_cache_jobs");
}
