/* test_image_cache_jobs.c - the decode cache across jobs, through the runner as the service and
 * `ssld run` drive it: two jobs on one folder with one shared cache folder (the service's
 * STATE/cache/images) decode once - the second job's log says it read decoded pixels - and a
 * cache file truncated between jobs is detected and rebuilt, never used, with the same results.
 * Colour images are normalised per channel by the training pixels' mean and std: the values the
 * job stores with its encoder (config.json) are those of its training pixels, and an encoder with
 * them computes what a plain one computes on pre-normalised input, and a job started from that
 * encoder (init_from) on other images keeps the encoder's values.
 * The jobs are "none" + a pixel_probe on 16 tiny images, so each takes well under a second.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../engine/alloc.h"
#include "../../engine/ctx.h"
#include "../../engine/data/augment.h"
#include "../../engine/data/image_dataset.h"
#include "../../engine/model.h"
#include "../../engine/params.h"
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

/* One job in work dir `name` with the shared cache: its events in `events`, its results.
 * extra: more top-level keys ("" or ", \"init_from\": ..."); imgs: the image folder's name. */
static char *run_job_on(const char *name, const char *cache, const char *imgs, const char *extra)
{
	char spec[2048], work[600];
	snprintf(spec, sizeof spec,
	         "{\"method\": \"none\", \"dataset\": {\"format\": \"image_folder\", \"train\": "
	         "\"%s/%s\", \"image_size\": 8, \"test_fraction\": 0.25}, \"evaluations\": "
	         "[{\"protocol\": \"pixel_probe\", \"labels_per_class\": 3}], \"threads\": 2%s}", dir,
	         imgs, extra);
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

static char *run_job(const char *name, const char *cache)
{
	return run_job_on(name, cache, "imgs", "");
}

/* input_mean / input_std of a job's config.json into mean, sd; 0 when both are there. */
static int stored_stats(const char *job, double mean[3], double sd[3])
{
	char path[700];
	snprintf(path, sizeof path, "%s/%s/config.json", dir, job);
	size_t n = 0;
	uint8_t *text = fx_read(path, &n);
	cJSON *cfg = text ? cJSON_ParseWithLength((const char *)text, n) : NULL;
	free(text);
	cJSON *jm = cJSON_GetObjectItem(cfg, "input_mean"), *js = cJSON_GetObjectItem(cfg, "input_std");
	int ok = cJSON_GetArraySize(jm) == 3 && cJSON_GetArraySize(js) == 3;
	for (int c = 0; ok && c < 3; c++) {
		mean[c] = cJSON_GetArrayItem(jm, c)->valuedouble;
		sd[c] = cJSON_GetArrayItem(js, c)->valuedouble;
	}
	cJSON_Delete(cfg);
	return ok ? 0 : -1;
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

/* config.json's input_mean and input_std equal the training split's per-channel statistics. */
static void check_stored_normalisation(void)
{
	char train[600], err[512];
	double jm[3] = { 0 }, js[3] = { 0 };
	int have = stored_stats("job1", jm, js) == 0;
	CHECK(have, "config.json has input_mean and input_std");
	/* the same training split the job loaded: same folder, settings and split seed */
	snprintf(train, sizeof train, "%s/imgs", dir);
	ImageFolderSpec fs = { .train = train, .image_size = 8, .channels = 3,
	                       .resize = IMG_RESIZE_SHORTER_SIDE, .test_fraction = 0.25, .seed = 1,
	                       .threads = 1 };
	Dataset *ds = eng_calloc(1, sizeof *ds);
	int rc = image_folder_load(&fs, ds, NULL, err, sizeof err);
	CHECK(rc == 0 && ds->train.n == 12, "reload: %s", err);
	float mean[3], sd[3];
	if (rc == 0) {
		aug_channel_stats(ds->train.x, (size_t)ds->train.n, 3, 8, 8, mean, sd);
		for (int c = 0; c < 3 && have; c++)
			CHECK(fabs(jm[c] - mean[c]) < 1e-6 && fabs(js[c] - sd[c]) < 1e-6 && sd[c] > 0.01f,
			      "channel %d: stored mean %g std %g, the training pixels' %g %g", c, jm[c], js[c],
			      mean[c], sd[c]);
	}
	/* an encoder with the statistics = a plain encoder (same weights) on normalised pixels */
	EncoderConfig plain, withn;
	encoder_config_default(&plain, ENC_CNN);
	plain.n_channels = 2;
	plain.channels[0] = 4, plain.channels[1] = 8;
	withn = plain;
	withn.in_norm = 1;
	memcpy(withn.in_mean, mean, sizeof mean);
	memcpy(withn.in_std, sd, sizeof sd);
	ParamSet *p1 = paramset_new(), *p2 = paramset_new();
	Encoder *e1 = NULL, *e2 = NULL;
	Rng r1, r2;
	rng_seed(&r1, 9);
	rng_seed(&r2, 9);
	Ctx *ctx = ctx_new(1);
	if (rc == 0 && encoder_new(&plain, p1, "encoder", 3, 8, 8, &r1, &e1, err, sizeof err) == 0 &&
	    encoder_new(&withn, p2, "encoder", 3, 8, 8, &r2, &e2, err, sizeof err) == 0) {
		ctx_set_training(ctx, 0);
		int B = 4;
		float *normed = malloc(sizeof(float) * B * 192);
		memcpy(normed, ds->train.x, sizeof(float) * B * 192);
		aug_normalize(normed, (size_t)B, 3, 8, 8, mean, sd);
		Tensor *a = encoder_forward(ctx, e1, ctx_wrap(ctx, normed, 4, (int[]){ B, 3, 8, 8 }));
		Tensor *b = encoder_forward(ctx, e2, ctx_wrap(ctx, ds->train.x, 4, (int[]){ B, 3, 8, 8 }));
		double worst = 0;
		for (size_t i = 0; i < a->size; i++)
			worst = fmax(worst, fabs((double)a->data[i] - b->data[i]));
		CHECK(a->size == b->size && worst < 1e-4, "normalising inside the encoder: max diff %g",
		      worst);
		CHECK(ds->train.x[0] >= 0 && ds->train.x[0] <= 1, "the caller's pixels are left alone");
		free(normed);
	} else {
		CHECK(0, "encoders: %s", err);
	}
	ctx_free(ctx);
	encoder_free(e1);
	encoder_free(e2);
	paramset_free(p1);
	paramset_free(p2);
	dataset_free(ds);
	/* a job from job1's encoder on darker images keeps job1's statistics */
	char extra[700];
	snprintf(extra, sizeof extra, ", \"init_from\": \"%s/job1/encoder.safetensors\"", dir);
	free(run_job_on("job4", NULL, "dark", extra));
	double m4[3] = { 0 }, s4[3] = { 0 };
	CHECK(stored_stats("job4", m4, s4) == 0 && fabs(m4[0] - jm[0]) < 1e-6 &&
	      fabs(s4[2] - js[2]) < 1e-6 && strstr(events, "input normalisation from the source encoder"),
	      "init_from keeps the source's normalisation: mean %g (source %g)\n%s", m4[0], jm[0],
	      events);
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
		snprintf(p, sizeof p, "%s/dark", dir);
		mkdir(p, 0755);
		snprintf(p, sizeof p, "%s/dark/%s", dir, c ? "b" : "a");
		mkdir(p, 0755);
		for (int i = 0; i < 8; i++) {
			shade = c * 10 + i;
			snprintf(p, sizeof p, "%s/dark/%s/%d.png", dir, c ? "b" : "a", i);
			fx_png(p, 10, 9, PNG_COLOR_TYPE_RGB, 8, 0, px);
		}
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
	check_stored_normalisation();
	char cmd[700];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_exit("image_cache_jobs");
}
