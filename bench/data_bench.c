/* data_bench.c - how fast the data pipeline is, and how much of a training step waits for it.
 *
 * 1. augmentation throughput: SimCLR two-view set on Fashion-MNIST images, views/s on 1 thread and
 *    on 2 threads (each thread its own images), plus the cost of single cheap views;
 * 2. the loader itself (batch 256, two views, prefetch 2) with aug_threads 1 and 2, consumer idle;
 * 3. the data-wait share of a simulated training step (a fixed sgemm workload on one BLAS thread,
 *    sized like a small conv net's forward + backward on 2 x 256 views) with prefetch off and on.
 * Targets: >= 25,000 two-view views/s on one core; data wait < 2% of the step with prefetch on.
 * It does not train anything; the step is busy work of a realistic size.
 *
 *   build/bench/data_bench [seconds-per-measurement] [step-gflop]
 * The last line is one JSON object with the figures.
 */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../engine/alloc.h"
#include "../engine/data/augment.h"
#include "../engine/data/dataset.h"
#include "../engine/data/loader.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the calling thread: on a shared, loaded box this is what one core delivers. */
static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct AugJob {
	const AugConfig *cfg;
	const float *x;
	int n;             /* images available */
	int first;
	double seconds;
	int two_views;
	long views;        /* out */
	double elapsed;    /* out: wall seconds */
	double cpu;        /* out: thread CPU seconds */
} AugJob;

static void *aug_worker(void *arg)
{
	AugJob *j = arg;
	float a[784], b[784], scratch[1024];
	Rng r;
	rng_seed(&r, 1234 + (uint64_t)j->first);
	long views = 0;
	int i = j->first;
	double t0 = now_s(), c0 = cpu_s(), t;
	do {
		for (int k = 0; k < 256; k++) {
			const float *src = j->x + (size_t)i * 784;
			if (j->two_views) {
				aug_two_views(j->cfg, NULL, &r, src, a, b, 1, 28, 28, scratch);
				views += 2;
			} else {
				aug_apply(j->cfg, &r, src, a, 1, 28, 28, scratch);
				views += 1;
			}
			if (++i >= j->n)
				i = 0;
		}
		t = now_s() - t0;
	} while (t < j->seconds);
	j->views = views;
	j->elapsed = t;
	j->cpu = cpu_s() - c0;
	return NULL;
}

/* views/s of `threads` threads augmenting concurrently (wall clock); *per_cpu_s: views per CPU
 * second of one thread (NULL to skip). */
static double aug_rate(const AugConfig *cfg, const float *x, int n, int threads, double seconds, int two,
                       double *per_cpu_s)
{
	AugJob jobs[8];
	pthread_t th[8];
	for (int t = 0; t < threads; t++) {
		jobs[t] = (AugJob){.cfg = cfg, .x = x, .n = n, .first = (t * n) / threads, .seconds = seconds,
		                   .two_views = two};
		pthread_create(&th[t], NULL, aug_worker, &jobs[t]);
	}
	double rate = 0, cpu = 0;
	long views = 0;
	for (int t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		rate += (double)jobs[t].views / jobs[t].elapsed;
		views += jobs[t].views;
		cpu += jobs[t].cpu;
	}
	if (per_cpu_s)
		*per_cpu_s = (double)views / cpu;
	return rate;
}

static double loader_rate(const Dataset *ds, const AugConfig *cfg, int aug_threads, double seconds)
{
	LoaderConfig lc = {.ds = ds, .split = &ds->train, .batch = 256, .views = 2, .aug = {cfg, cfg},
	                   .seed = 1, .shuffle = 1, .drop_last = 1, .prefetch = 2,
	                   .aug_threads = aug_threads};
	Loader *ld;
	char err[256];
	if (loader_new(&lc, &ld, err, sizeof err) < 0) {
		fprintf(stderr, "loader_new: %s\n", err);
		return 0;
	}
	long views = 0;
	double t0 = now_s(), t;
	do {
		const Batch *b = loader_next(ld);
		if (b)
			views += 2L * b->n;
		t = now_s() - t0;
	} while (t < seconds);
	loader_free(ld);
	return (double)views / t;
}

/* A training step stand-in: three sgemms of one shape (forward, two backward products). */
typedef struct Step {
	int m, n, k;
	float *a, *b, *c, *da, *db;
} Step;

static void step_run(const Step *s)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->m, s->n, s->k, 1.0f, s->a, s->k, s->b,
	            s->n, 0.0f, s->c, s->n);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->m, s->k, s->n, 1.0f, s->c, s->n, s->b,
	            s->n, 0.0f, s->da, s->k);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s->k, s->n, s->m, 1.0f, s->a, s->k, s->c,
	            s->n, 0.0f, s->db, s->n);
}

typedef struct WaitResult {
	double step_s, total_s, wait_s, share;
	int steps;
} WaitResult;

static WaitResult wait_share(const Dataset *ds, const AugConfig *cfg, const Step *st, int prefetch,
                             int steps)
{
	LoaderConfig lc = {.ds = ds, .split = &ds->train, .batch = 256, .views = 2, .aug = {cfg, cfg},
	                   .seed = 2, .shuffle = 1, .drop_last = 1, .prefetch = prefetch,
	                   .aug_threads = 1};
	Loader *ld;
	char err[256];
	WaitResult r = {0};
	if (loader_new(&lc, &ld, err, sizeof err) < 0) {
		fprintf(stderr, "loader_new: %s\n", err);
		return r;
	}
	double busy = 0, t0 = now_s();
	for (int i = 0; i < steps; i++) {
		const Batch *b = loader_next(ld);
		if (!b) {
			i--;
			continue;
		}
		double s0 = now_s();
		step_run(st);
		busy += now_s() - s0;
	}
	r.total_s = now_s() - t0;
	r.wait_s = loader_wait_seconds(ld);
	r.steps = steps;
	r.step_s = busy / steps;
	r.share = r.wait_s / r.total_s;
	loader_free(ld);
	return r;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.5;
	double step_gflop = argc > 2 ? atof(argv[2]) : 3.6;
	if (secs <= 0)
		secs = 1.5;

	Dataset *ds = NULL;
	char err[512];
	DatasetSpec spec = {.kind = DATASET_FASHION_MNIST};
	double tl = now_s();
	if (dataset_load(&spec, &ds, err, sizeof err) < 0) {
		fprintf(stderr, "data_bench: %s\n", err);
		printf("{\"bench\":\"data\",\"skipped\":\"%s\"}\n", "fashion-mnist not available");
		return 77;
	}
	tl = now_s() - tl;
	printf("data_bench: Fashion-MNIST %d train images loaded in %.2f s\n\n", ds->train.n, tl);

	AugConfig simclr, cheap, none;
	aug_config_default_simclr(&simclr);
	aug_config_none(&none);
	aug_config_none(&cheap);   /* bilinear crop + flip + jitter, every time */
	cheap.crop.p = 1.0f;
	cheap.hflip.p = 0.5f;
	cheap.jitter.p = 1.0f;

	int n = ds->train.n;
	double c_none, c_cheap, c1, c2;
	double r_none = aug_rate(&none, ds->train.x, n, 1, secs / 3, 0, &c_none);
	double r_cheap = aug_rate(&cheap, ds->train.x, n, 1, secs / 2, 0, &c_cheap);
	double r1 = aug_rate(&simclr, ds->train.x, n, 1, secs, 1, &c1);
	double r2 = aug_rate(&simclr, ds->train.x, n, 2, secs, 1, &c2);
	printf("%-44s %12s %12s %10s\n", "augmentation (28x28, one image at a time)", "views/s", "per CPU-s",
	       "us/view");
	printf("%-44s %12.0f %12.0f %10.2f\n", "copy only (aug_config_none)", r_none, c_none, 1e6 / c_none);
	printf("%-44s %12.0f %12.0f %10.2f\n", "crop+flip+jitter (bilinear), 1 thread", r_cheap, c_cheap,
	       1e6 / c_cheap);
	printf("%-44s %12.0f %12.0f %10.2f\n", "SimCLR set, two views, 1 thread", r1, c1, 1e6 / c1);
	printf("%-44s %12.0f %12.0f %10.2f\n", "SimCLR set, two views, 2 threads (total)", r2, c2, 1e6 / c2);
	printf("(views/s is wall clock; per CPU-s divides by the threads' own CPU time, which is what a\n"
	       " core delivers when the box is shared; us/view is CPU time)\n");

	double l1 = loader_rate(ds, &simclr, 1, secs);
	double l2 = loader_rate(ds, &simclr, 2, secs);
	printf("\n%-44s %12s\n", "loader (batch 256, 2 views, prefetch 2)", "views/s");
	printf("%-44s %12.0f\n", "aug_threads 1", l1);
	printf("%-44s %12.0f\n", "aug_threads 2", l2);

	/* the step: m = 2 x 256 views, k = 1152 (3x3x128 im2col), n sized to reach step_gflop */
	openblas_set_num_threads(1);
	Step st = {.m = 512, .k = 1152};
	st.n = (int)(step_gflop * 1e9 / (3.0 * 2.0 * st.m * st.k));
	if (st.n < 16)
		st.n = 16;
	st.a = eng_aligned_alloc((size_t)st.m * st.k * sizeof(float));
	st.b = eng_aligned_alloc((size_t)st.k * st.n * sizeof(float));
	st.c = eng_aligned_alloc((size_t)st.m * st.n * sizeof(float));
	st.da = eng_aligned_alloc((size_t)st.m * st.k * sizeof(float));
	st.db = eng_aligned_alloc((size_t)st.k * st.n * sizeof(float));
	for (size_t i = 0; i < (size_t)st.m * st.k; i++)
		st.a[i] = 0.001f * (float)(i % 7);
	for (size_t i = 0; i < (size_t)st.k * st.n; i++)
		st.b[i] = 0.001f * (float)(i % 5);
	step_run(&st);   /* warm up */
	double t0 = now_s();
	step_run(&st);
	double step_s = now_s() - t0;
	int steps = (int)(2.0 * secs / step_s);
	if (steps < 8)
		steps = 8;
	if (steps > 200)
		steps = 200;
	WaitResult off = wait_share(ds, &simclr, &st, 0, steps);
	WaitResult on = wait_share(ds, &simclr, &st, 2, steps);
	printf("\nsimulated step: 3 sgemm (%d x %d x %d), %.2f GFLOP, 1 BLAS thread, %.1f ms; %d steps\n",
	       st.m, st.n, st.k, 3.0 * 2.0 * st.m * st.n * st.k / 1e9, step_s * 1e3, steps);
	printf("%-28s %10s %10s %12s\n", "", "step ms", "wait ms", "wait share");
	printf("%-28s %10.1f %10.2f %11.2f%%\n", "prefetch off", off.step_s * 1e3, 1e3 * off.wait_s / steps,
	       100 * off.share);
	printf("%-28s %10.1f %10.2f %11.2f%%\n", "prefetch on (depth 2)", on.step_s * 1e3,
	       1e3 * on.wait_s / steps, 100 * on.share);
	int ok_speed = r1 >= 25000, ok_wait = on.share < 0.02;
	printf("\ntargets: two-view views/s on one core >= 25000: %s (%.0f); wait share < 2%%: %s (%.2f%%)\n",
	       ok_speed ? "met" : "MISSED", r1, ok_wait ? "met" : "MISSED", 100 * on.share);

	printf("{\"bench\":\"data\",\"views_per_s_1t\":%.0f,\"views_per_s_2t\":%.0f,"
	       "\"views_per_cpu_s\":%.0f,\"us_per_view_simclr\":%.3f,\"us_per_view_crop_flip_jitter\":%.3f,"
	       "\"loader_views_per_s_1t\":%.0f,\"loader_views_per_s_2t\":%.0f,"
	       "\"step_ms\":%.2f,\"wait_share_prefetch_off\":%.5f,\"wait_share_prefetch_on\":%.5f,"
	       "\"load_s\":%.3f,\"targets_met\":%s}\n",
	       r1, r2, c1, 1e6 / c1, 1e6 / c_cheap, l1, l2, step_s * 1e3, off.share, on.share, tl,
	       ok_speed && ok_wait ? "true" : "false");
	eng_free(st.a);
	eng_free(st.b);
	eng_free(st.c);
	eng_free(st.da);
	eng_free(st.db);
	dataset_free(ds);
	return 0;
}
