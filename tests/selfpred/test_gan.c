/* test_gan.c - the gan method (engine/methods/gan.c), small and seeded.
 *   - alternation: a discriminator step leaves every generator parameter unchanged and moves the
 *     discriminator, a generator step the reverse, and after_step restores the flags;
 *   - spectral_norm: every discriminator weight's largest singular value is 1 after a step (to
 *     the lag of one power iteration per step: within [0.99, 1.06]);
 *   - a short Fashion-MNIST run through the job runner: the first loss_d is near 2 ln 2 (both
 *     players untrained), the discriminator beats chance on the test split without being
 *     perfect, and the generator's samples are closer to the test images (Frechet distance in
 *     pixel space) than the untrained generator's; samples.png is an 8x8 grid;
 *   - stopped after step 5 and resumed (spectral norm and two D steps per G step on), the run
 *     repeats the uninterrupted run's losses bit for bit;
 *   - the spec layer answers 400 naming the field for a bad loss and a non-cnn encoder.
 * No op is new here: the losses are compositions of gradchecked ops (bce_logits, relu, mean).
 * Skipped (said so) when Fashion-MNIST is not installed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../../engine/alloc.h"
#include "../../engine/checkpoint.h"
#include "../../engine/ctx.h"
#include "../../engine/data/dataset.h"
#include "../../engine/data/png_grid.h"
#include "../../engine/frechet.h"
#include "../../engine/methods/method.h"
#include "../../engine/optim.h"
#include "../../engine/rng.h"
#include "jobspec.h"
#include "runner.h"
#include "check.h"
#include "support.h"
#include "job.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
#define DATA "\"dataset\":{\"name\":\"fashion-mnist\",\"limit_train\":2048,\"limit_test\":512}"
#define MODEL "\"model\":{\"encoder\":\"cnn\",\"channels\":[16,32,64],\"batchnorm\":false}"
#define OPTIM "\"optimizer\":{\"name\":\"adamw\",\"lr\":0.0005,\"betas\":[0.5,0.999]," \
              "\"weight_decay\":0},\"schedule\":{\"name\":\"constant\"}"

/* ---- the method by itself --------------------------------------------------------------------- */

typedef struct Built {
	JobSpec *js;
	Dataset *ds;
	const PretextMethod *m;
	ParamSet *ps;
	void *st;
	Ctx *ctx;
	Optim *opt;
} Built;

static int build(Built *b, const char *params)
{
	char text[1024], err[512] = "";
	snprintf(text, sizeof text, "{\"method\":\"gan\",\"params\":%s," DATA "," MODEL
	         ",\"pretrain\":{\"batch_size\":32," OPTIM "}}", params);
	SpecError se = { 0 };
	JobSpecOptions opts = { .check_files = 1 };
	memset(b, 0, sizeof *b);
	if (jobspec_parse(text, strlen(text), &opts, &b->js, &se) < 0 ||
	    dataset_load(&b->js->dataset, &b->ds, err, sizeof err) < 0) {
		CHECK(0, "setup failed: %s %s", se.message, err);
		return -1;
	}
	b->m = method_find("gan");
	b->ps = paramset_new();
	Rng rng;
	rng_seed(&rng, 1);
	MethodEnv env = { .encoder = &b->js->encoder, .in_c = 1, .in_h = 28, .in_w = 28, .ds = b->ds,
	                  .config = b->js->method_config, .rng = &rng, .total_steps = 100,
	                  .batch_size = 32 };
	b->ctx = ctx_new(1);
	int ok = b->m && b->m->create(&env, b->ps, &b->st, err, sizeof err) == 0 &&
	         optim_new(&b->js->pretrain.optim, b->ps, &b->opt) == 0;
	CHECK(ok, "create failed: %s", err);
	return ok ? 0 : -1;
}

static void unbuild(Built *b)
{
	if (b->st)
		b->m->destroy(b->st);
	optim_free(b->opt);
	ctx_free(b->ctx);
	paramset_free(b->ps);
	dataset_free(b->ds);
	jobspec_free(b->js);
}

/* One runner-style step at batch position `index`; returns the loss. */
static double step(Built *b, int index)
{
	ctx_reset(b->ctx);
	ctx_set_training(b->ctx, 1);
	Batch bt = { .n = 32, .view = { b->ds->train.x + (size_t)index * 32 * b->ds->sample_floats },
	             .index = index };
	Tensor *vt[2] = { ctx_wrap(b->ctx, bt.view[0], 4, (int[]){ 32, 1, 28, 28 }), NULL };
	Tensor *loss = b->m->loss(b->ctx, b->st, vt, &bt, NULL);
	double v = loss->data[0];
	ctx_backward(b->ctx, loss);
	optim_step(b->opt, 1e-3f);
	paramset_zero_grad(b->ps);
	b->m->after_step(b->st, index + 1, 100);
	return v;
}

/* Sum over the parameters with (gen != 0) or without the "generator." prefix of |now - before|;
 * before holds a copy of every parameter's data, in order. */
static double moved(const ParamSet *ps, const float *before, int gen)
{
	double d = 0;
	size_t off = 0;
	for (int i = 0; i < paramset_count(ps); i++) {
		const Tensor *t = paramset_at(ps, i);
		int is_gen = strncmp(t->name, "generator.", 10) == 0;
		if (is_gen == gen && !(paramset_flags_at(ps, i) & PARAM_BUFFER))
			for (size_t k = 0; k < t->size; k++)
				d += fabs((double)t->data[k] - before[off + k]);
		off += t->size;
	}
	return d;
}

static float *snapshot(const ParamSet *ps)
{
	size_t n = 0, off = 0;
	for (int i = 0; i < paramset_count(ps); i++)
		n += paramset_at(ps, i)->size;
	float *s = malloc(n * sizeof(float));
	for (int i = 0; i < paramset_count(ps); i++) {
		const Tensor *t = paramset_at(ps, i);
		memcpy(s + off, t->data, t->size * sizeof(float));
		off += t->size;
	}
	return s;
}

static void test_alternation(void)
{
	Built b;
	if (build(&b, "{}") < 0) {
		unbuild(&b);
		return;
	}
	int *flags = malloc((size_t)paramset_count(b.ps) * sizeof(int));
	for (int i = 0; i < paramset_count(b.ps); i++)
		flags[i] = paramset_flags_at(b.ps, i);
	for (int s = 0; s < 4; s++) {
		float *before = snapshot(b.ps);
		step(&b, s);
		double g = moved(b.ps, before, 1), d = moved(b.ps, before, 0);
		int d_step = s % 2 == 0;
		printf("step %d (%s): generator moved %.4g, discriminator moved %.4g\n", s,
		       d_step ? "D" : "G", g, d);
		if (d_step)
			CHECK(g == 0 && d > 0, "D step %d: generator moved %.4g, discriminator %.4g", s, g, d);
		else
			CHECK(d == 0 && g > 0, "G step %d: discriminator moved %.4g, generator %.4g", s, d, g);
		int same = 1;
		for (int i = 0; i < paramset_count(b.ps); i++)
			same &= paramset_flags_at(b.ps, i) == flags[i];
		CHECK(same, "step %d: the parameter flags were not restored", s);
		free(before);
	}
	free(flags);
	unbuild(&b);
}

/* Largest singular value of W (rows, cols) by 300 power iterations. */
static double sigma_max(const Tensor *w)
{
	int rows = w->shape[0], cols = (int)(w->size / (size_t)rows);
	double *v = malloc((size_t)cols * sizeof(double)), *u = malloc((size_t)rows * sizeof(double));
	for (int j = 0; j < cols; j++)
		v[j] = 1.0 + 0.01 * j;
	double s = 0;
	for (int it = 0; it < 300; it++) {
		double nu = 0, nv = 0;
		for (int r = 0; r < rows; r++) {
			u[r] = 0;
			for (int j = 0; j < cols; j++)
				u[r] += w->data[(size_t)r * cols + j] * v[j];
			nu += u[r] * u[r];
		}
		for (int j = 0; j < cols; j++) {
			v[j] = 0;
			for (int r = 0; r < rows; r++)
				v[j] += w->data[(size_t)r * cols + j] * u[r] / sqrt(nu);
			nv += v[j] * v[j];
		}
		s = sqrt(nv);
		for (int j = 0; j < cols; j++)
			v[j] /= s;
	}
	free(u);
	free(v);
	return s;
}

/* Discriminator weights: ndim >= 2, not the generator's, not a buffer. The smallest and largest
 * sigma over them. */
static void sigma_range(const ParamSet *ps, double *lo, double *hi)
{
	*lo = INFINITY;
	*hi = 0;
	for (int i = 0; i < paramset_count(ps); i++) {
		const Tensor *t = paramset_at(ps, i);
		if (t->ndim < 2 || strncmp(t->name, "generator.", 10) == 0 ||
		    (paramset_flags_at(ps, i) & PARAM_BUFFER))
			continue;
		double s = sigma_max(t);
		*lo = fmin(*lo, s);
		*hi = fmax(*hi, s);
	}
}

static void test_spectral_norm(void)
{
	Built plain, sn;
	if (build(&plain, "{}") == 0 && build(&sn, "{\"spectral_norm\":true}") == 0) {
		double plo, phi, lo, hi;
		sigma_range(plain.ps, &plo, &phi);
		step(&sn, 0);   /* a D step: the projection follows it */
		sigma_range(sn.ps, &lo, &hi);
		printf("spectral norm: discriminator sigmas %.3f..%.3f (without: %.3f..%.3f)\n", lo, hi,
		       plo, phi);
		CHECK(plo < 0.9 || phi > 1.1, "without spectral_norm the sigmas are already ~1: %.3f..%.3f",
		      plo, phi);
		CHECK(lo > 0.99 && hi < 1.06, "with spectral_norm the sigmas are %.3f..%.3f, not ~1", lo, hi);
		unbuild(&sn);
	}
	unbuild(&plain);
}

/* ---- through the runner ----------------------------------------------------------------------- */

typedef struct Run {
	double loss[4096], loss_d[4096];
	int64_t step[4096];
	int n, n_d, n_g;
	int64_t stop_at;
	char *dir;
	cJSON *results;
	int rc;
} Run;

static void on_metric(void *user, int64_t step, const char *key, double value)
{
	Run *r = user;
	if (strcmp(key, "loss") == 0 && r->n < 4096) {
		r->step[r->n] = step;
		r->loss[r->n++] = value;
	} else if (strcmp(key, "loss_d") == 0 && r->n_d < 4096) {
		r->loss_d[r->n_d++] = value;
	} else if (strcmp(key, "loss_g") == 0) {
		r->n_g++;
	}
}

static int should_stop(void *user)
{
	const Run *r = user;
	return r->stop_at > 0 && r->n > 0 && r->step[r->n - 1] >= r->stop_at ? RUNNER_STOP_REQUEUE
	                                                                      : RUNNER_CONTINUE;
}

static void run_job(Run *r, const char *spec)
{
	RunnerHooks h = { .user = r, .on_metric = on_metric, .should_stop = should_stop };
	r->rc = test_job_run(spec, "gan-run", &h, &r->dir, &r->results);
}

static void run_close(Run *r) { test_job_close(&r->dir, &r->results); }

static double pretext(const Run *r, const char *key) { return test_job_pretext(r->results, key); }

/* Pixel-space Frechet distance of 512 samples (seed 9) from the method in state against the
 * first 512 test images. */
static double sample_fd(const PretextMethod *m, void *st, const Dataset *ds)
{
	enum { N = 512 };
	float *img = malloc((size_t)N * ds->sample_floats * sizeof(float));
	char err[256] = "";
	Ctx *ctx = ctx_new(1);
	Rng rng;
	rng_seed(&rng, 9);
	double fd = NAN;
	if (m->generate_images(st, ctx, N, &rng, img, err, sizeof err) < 0 ||
	    frechet_distance_features(ds->test.x, N, img, N, (int)ds->sample_floats, &fd, err,
	                              sizeof err) < 0)
		CHECK(0, "sample distance: %s", err);
	ctx_free(ctx);
	free(img);
	return fd;
}

static void test_training(void)
{
	const char *spec = "{\"name\":\"g\",\"method\":\"gan\",\"params\":{\"latent_dim\":32}," DATA ","
	                   MODEL ",\"pretrain\":{\"epochs\":4,\"batch_size\":32,"
	                   "\"optimizer\":{\"name\":\"adamw\",\"lr\":0.001,\"betas\":[0.5,0.999],"
	                   "\"weight_decay\":0},\"schedule\":{\"name\":\"constant\"}},"
	                   "\"seed\":3,\"threads\":2}";
	Run r = { 0 };
	run_job(&r, spec);
	CHECK(r.rc == RUNNER_OK, "gan run failed");
	if (r.rc == RUNNER_OK) {
		double acc = pretext(&r, "test_d_accuracy");
		printf("gan: %d steps (%d D, %d G), first loss_d %.4f, last loss_d %.4f, test D accuracy "
		       "%.3f, test loss_d %.4f, loss_g %.4f\n", r.n, r.n_d, r.n_g, r.loss_d[0],
		       r.loss_d[r.n_d - 1], acc, pretext(&r, "test_loss_d"), pretext(&r, "test_loss_g"));
		CHECK(r.n_d == r.n / 2 && r.n_g == r.n / 2, "steps %d: %d D and %d G", r.n, r.n_d, r.n_g);
		CHECK(fabs(r.loss_d[0] - 2 * log(2.0)) < 0.15, "first loss_d %.4f, expected ~%.4f",
		      r.loss_d[0], 2 * log(2.0));
		CHECK(acc > 0.55 && acc < 0.999, "test D accuracy %.3f is not in (0.55, 0.999)", acc);
		CHECK(access(test_path(r.dir, "samples.png"), R_OK) == 0, "no samples.png");

		/* The trained generator against the untrained one (the same spec, no steps taken). */
		Built u;
		if (build(&u, "{\"latent_dim\":32}") == 0) {
			double before = sample_fd(u.m, u.st, u.ds);
			/* The trained one: generate through the runner's own path from the checkpoint. */
			GenerateRequest req = { .n = 64, .seed = 9 };
			char *res = NULL, err[512] = "";
			int rc = runner_generate(spec, r.dir, &req, &res, err, sizeof err);
			CHECK(rc == 0, "generate: %s", err);
			free(res);
			float *img = NULL;
			int c, h, w;
			rc = png_read(test_path(r.dir, "samples-9.png"), 0, &img, &c, &h, &w, err, sizeof err);
			CHECK(rc == 0 && c == 1 && h > 28 && w > 28, "samples-9.png: %s", err);
			eng_free(img);
			/* And the distance from the trained weights, loaded into the built method. */
			char ck[4096];
			snprintf(ck, sizeof ck, "%s", test_path(r.dir, "checkpoint.safetensors"));
			CheckpointState st;
			rc = checkpoint_load(ck, u.ps, NULL, &st, NULL, err, sizeof err);
			CHECK(rc >= 0, "checkpoint: %s", err);
			if (rc >= 0) {
				checkpoint_state_free(&st);
				double after = sample_fd(u.m, u.st, u.ds);
				printf("pixel-space Frechet distance to the test images: untrained %.2f, trained "
				       "%.2f\n", before, after);
				/* A GAN's two-player dynamics amplify rounding: the same 256 steps end at
				 * 67-84 (0.50-0.63 of the untrained 134.3) across OpenBLAS core types and
				 * SIMD levels, so the bound leaves room above that spread and still asks
				 * for a quarter of the distance gone. */
				CHECK(after < 0.75 * before, "samples did not approach the data: %.2f -> %.2f",
				      before, after);
			}
		}
		unbuild(&u);
	}
	run_close(&r);
}

static void test_resume(void)
{
	const char *spec = "{\"name\":\"r\",\"method\":\"gan\",\"params\":{\"latent_dim\":16,"
	                   "\"d_steps\":2,\"spectral_norm\":true,\"loss\":\"hinge\"}," DATA "," MODEL
	                   ",\"pretrain\":{\"max_steps\":16,\"batch_size\":32," OPTIM "},"
	                   "\"seed\":5,\"threads\":2}";
	static Run a, b = { .stop_at = 5 };
	run_job(&a, spec);
	run_job(&b, spec);
	CHECK(a.rc == RUNNER_OK && b.rc == RUNNER_STOPPED, "runs: %d, stopped run %d", a.rc, b.rc);
	int before = b.n;
	b.stop_at = 0;
	run_job(&b, spec);
	CHECK(b.rc == RUNNER_OK, "resumed run failed");
	int same = a.n == 16 && before == 5 && b.n == 16;
	for (int i = 5; same && i < 16; i++)
		same = a.loss[i] == b.loss[i] && a.step[i] == b.step[i];
	CHECK(same, "the resumed losses differ from the uninterrupted run's (%d / %d + %d steps)", a.n,
	      before, b.n - before);
	CHECK(a.n_d > a.n_g && a.n_g >= 5, "d_steps 2: %d D and %d G steps", a.n_d, a.n_g);
	printf("gan: stopped after step 5 and resumed: steps 6..16 identical: %s\n", same ? "yes" : "no");
	run_close(&a);
	run_close(&b);
}

static void expect_400(const char *spec, const char *field, const char *needle)
{
	SpecError se = { 0 };
	JobSpecOptions opts = { .check_files = 1 };
	int rc = jobspec_validate(spec, strlen(spec), &opts, &se);
	CHECK(rc < 0 && se.http_status == 400, "accepted (or not a 400: %d): %s", se.http_status, spec);
	if (rc < 0)
		CHECK(strcmp(se.field, field) == 0 && strstr(se.message, needle),
		      "%s: error on field '%s' (%s), expected '%s' saying \"%s\"", spec, se.field,
		      se.message, field, needle);
}

int main(void)
{
	if (access(FMNIST, R_OK) != 0)
		return check_skip("%s is not installed", FMNIST);
	expect_400("{\"method\":\"gan\",\"dataset\":\"fashion-mnist\",\"params\":{\"loss\":\"wasserstein\"}}",
	           "params.loss", "wasserstein");
	expect_400("{\"method\":\"gan\",\"dataset\":\"fashion-mnist\",\"model\":{\"encoder\":\"mlp\"}}",
	           "model.encoder", "");
	test_alternation();
	test_spectral_norm();
	test_training();
	test_resume();
	return check_exit("test_gan");
}
