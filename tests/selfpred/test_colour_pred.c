/* test_colour_pred.c - colorization and inpainting, small and seeded, through the job runner.
 *
 * The colour fixture is an image folder of 16x16 PNGs written here: a gray background of random
 * brightness with a red disc or a blue square at a random position. Its colours follow from the
 * shapes, so a gray image says what its colours are, and its background says what a hole holds.
 *   - colorization: the chroma loss falls, the colourised test images beat the gray images
 *     (test_color_mse well below test_gray_mse), colorizations.png is a 3-row colour grid;
 *   - inpainting on the colour fixture and on Fashion-MNIST (1 channel): the hole loss falls, the
 *     predicted holes beat the training-mean fill, inpaintings.png is a 4-row grid;
 *   - a steady-state step of either allocates nothing on the heap; inpainting stopped and resumed
 *     repeats the uninterrupted run's losses bit for bit;
 *   - the spec layer answers 400 naming the field: colorization on 1-channel data, bad params.
 * Fashion-MNIST parts are skipped (said so) when it is not installed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../../engine/alloc.h"
#include "../../engine/ctx.h"
#include "../../engine/data/dataset.h"
#include "../../engine/data/png_grid.h"
#include "../../engine/methods/method.h"
#include "../../engine/optim.h"
#include "../../engine/rng.h"
#include "jobspec.h"
#include "runner.h"
#include "check.h"
#include "support.h"
#include "job.h"

#define SIDE 16
#define N_IMAGES 480
#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

/* ---- fixture ---------------------------------------------------------------------------------- */

/* dir/train/img-XXX.png: N_IMAGES unlabelled 16x16 RGB images. 0 or -1. */
static int write_fixture(const char *dir)
{
	char train[600], path[700], err[256];
	snprintf(train, sizeof train, "%s/train", dir);
	if (mkdir(train, 0755) < 0)
		return -1;
	Rng rng;
	rng_seed(&rng, 7);
	static const float colour[2][3] = { { 0.9f, 0.1f, 0.1f }, { 0.1f, 0.2f, 0.9f } };
	uint8_t pix[SIDE * SIDE * 3];
	for (int i = 0; i < N_IMAGES; i++) {
		float bg = 0.45f + 0.5f * rng_uniform(&rng);
		int kind = (int)rng_below(&rng, 2), cy = 4 + (int)rng_below(&rng, 8),
		    cx = 4 + (int)rng_below(&rng, 8);
		for (int y = 0; y < SIDE; y++)
			for (int x = 0; x < SIDE; x++) {
				int dy = y - cy, dx = x - cx;
				int in = kind == 0 ? dy * dy + dx * dx <= 12 : abs(dy) <= 3 && abs(dx) <= 3;
				for (int c = 0; c < 3; c++)
					pix[(y * SIDE + x) * 3 + c] = (uint8_t)lroundf(255.0f * (in ? colour[kind][c] : bg));
			}
		snprintf(path, sizeof path, "%s/img-%03d.png", train, i);
		if (png_write_u8(path, pix, SIDE, SIDE, 3, err, sizeof err) < 0) {
			fprintf(stderr, "fixture: %s\n", err);
			return -1;
		}
	}
	return 0;
}

/* ---- running jobs ----------------------------------------------------------------------------- */

typedef struct Run {
	const char *key;      /* the loss part to follow */
	double v[4096];
	int64_t step[4096];
	int n;
	int64_t stop_at;      /* ask for a requeue-stop once this step is done (0 = never) */
	char *dir;
	cJSON *results;
	int rc;
} Run;

static void on_metric(void *user, int64_t step, const char *key, double value)
{
	Run *r = user;
	if (strcmp(key, r->key) == 0 && r->n < (int)(sizeof r->v / sizeof r->v[0])) {
		r->step[r->n] = step;
		r->v[r->n++] = value;
	}
}

static int should_stop(void *user)
{
	const Run *r = user;
	return r->stop_at > 0 && r->n > 0 && r->step[r->n - 1] >= r->stop_at ? RUNNER_STOP_REQUEUE
	                                                                      : RUNNER_CONTINUE;
}

/* Runs spec in a fresh directory, or again in r->dir (a resume). */
static void run_job(Run *r, const char *spec)
{
	RunnerHooks h = { .user = r, .on_metric = on_metric, .should_stop = should_stop };
	r->rc = test_job_run(spec, "colour-run", &h, &r->dir, &r->results);
}

static void run_close(Run *r) { test_job_close(&r->dir, &r->results); }

static double pretext(const Run *r, const char *key) { return test_job_pretext(r->results, key); }

/* The followed loss part, mean of its first and of its last eighth: it must fall. */
static void check_falls(const Run *r, const char *what)
{
	int w = r->n / 8 > 0 ? r->n / 8 : 1;
	double first = 0, last = 0;
	for (int i = 0; i < w && r->n > 0; i++) {
		first += r->v[i] / w;
		last += r->v[r->n - 1 - i] / w;
	}
	printf("%s: %d steps, %s %.5f -> %.5f\n", what, r->n, r->key, first, last);
	CHECK(r->n >= 16 && last < 0.7 * first, "%s: %s did not fall: %.5f -> %.5f over %d steps",
	      what, r->key, first, last, r->n);
}

/* The artifact decodes as a grid of rows x cols side x side cells with c channels. */
static void check_grid(const Run *r, const char *name, int rows, int cols, int c, int side)
{
	float *img = NULL;
	int gc, gh, gw, want_w, want_h;
	char err[512];
	int rc = png_read(test_path(r->dir, name), 0, &img, &gc, &gh, &gw, err, sizeof err);
	CHECK(rc == 0, "%s: %s", name, err);
	if (rc == 0) {
		png_grid_size(rows * cols, cols, side, side, 1, &want_w, &want_h);
		CHECK(gc == c && gw == want_w && gh == want_h, "%s is %dx%dx%d, expected %dx%dx%d", name,
		      gc, gw, gh, c, want_w, want_h);
	}
	eng_free(img);
}

#define COLOUR_DATA(dir)                                                                      \
	"\"dataset\":{\"format\":\"image_folder\",\"train\":\"%s/train\",\"image_size\":16,"       \
	"\"test_fraction\":0.25}", dir
#define SMALL_CNN "\"model\":{\"encoder\":\"cnn\",\"channels\":[8,16],\"batchnorm\":true}"
#define TRAIN(epochs)                                                                          \
	"\"pretrain\":{\"epochs\":" #epochs ",\"batch_size\":32,"                                 \
	"\"optimizer\":{\"name\":\"adamw\",\"lr\":0.003}},\"seed\":3,\"threads\":2"

static void test_colorization(const char *fixture)
{
	char data[800], spec[2048];
	snprintf(data, sizeof data, COLOUR_DATA(fixture));
	snprintf(spec, sizeof spec, "{\"name\":\"c\",\"method\":\"colorization\",\"params\":"
	         "{\"latent_dim\":32},%s," SMALL_CNN "," TRAIN(25) "}", data);
	Run r = { .key = "loss_chroma_mse" };
	run_job(&r, spec);
	CHECK(r.rc == RUNNER_OK, "colorization run failed");
	if (r.rc == RUNNER_OK) {
		check_falls(&r, "colorization");
		double color = pretext(&r, "test_color_mse"), gray = pretext(&r, "test_gray_mse");
		printf("colorization: test colour MSE %.5f vs gray %.5f (ratio %.3f, PSNR %.2f vs %.2f "
		       "dB)\n", color, gray, pretext(&r, "test_color_ratio"),
		       pretext(&r, "test_color_psnr_db"), pretext(&r, "test_gray_psnr_db"));
		CHECK(gray > 0.01, "the fixture is colourful: gray MSE %.5f", gray);
		CHECK(color < 0.7 * gray, "colourised MSE %.5f is not 30%% below the gray images %.5f",
		      color, gray);
		check_grid(&r, "colorizations.png", 3, 16, 3, SIDE);
	}
	run_close(&r);
}

static void test_inpainting_colour(const char *fixture)
{
	char data[800], spec[2048];
	snprintf(data, sizeof data, COLOUR_DATA(fixture));
	snprintf(spec, sizeof spec, "{\"name\":\"i\",\"method\":\"inpainting\",\"params\":"
	         "{\"latent_dim\":32,\"hole_size\":0.4},%s," SMALL_CNN "," TRAIN(25) "}", data);
	Run r = { .key = "loss_hole_mse" };
	run_job(&r, spec);
	CHECK(r.rc == RUNNER_OK, "inpainting run failed");
	if (r.rc == RUNNER_OK) {
		check_falls(&r, "inpainting (colour)");
		double hole = pretext(&r, "test_hole_mse"), fill = pretext(&r, "test_mean_fill_mse");
		printf("inpainting (colour): test hole MSE %.5f vs mean fill %.5f\n", hole, fill);
		CHECK(hole < 0.7 * fill, "hole MSE %.5f is not 30%% below the mean fill %.5f", hole, fill);
		check_grid(&r, "inpaintings.png", 4, 16, 3, SIDE);
	}
	run_close(&r);
}

static void test_inpainting_gray(void)
{
	const char *spec =
		"{\"name\":\"i1\",\"method\":\"inpainting\",\"params\":{\"latent_dim\":32,\"holes\":2,"
		"\"hole_size\":0.3,\"fill\":\"zero\",\"outside_weight\":0.05},"
		"\"dataset\":{\"name\":\"fashion-mnist\",\"limit_train\":1024,\"limit_test\":256},"
		"\"model\":{\"encoder\":\"mlp\",\"hidden\":[128]}," TRAIN(4) "}";
	Run r = { .key = "loss_hole_mse" };
	run_job(&r, spec);
	CHECK(r.rc == RUNNER_OK, "inpainting (fashion-mnist) run failed");
	if (r.rc == RUNNER_OK) {
		check_falls(&r, "inpainting (fashion-mnist)");
		double hole = pretext(&r, "test_hole_mse"), fill = pretext(&r, "test_mean_fill_mse");
		printf("inpainting (fashion-mnist): test hole MSE %.5f vs mean fill %.5f\n", hole, fill);
		CHECK(hole < 0.8 * fill, "hole MSE %.5f does not beat the mean fill %.5f", hole, fill);
		check_grid(&r, "inpaintings.png", 4, 16, 1, 28);
	}
	run_close(&r);
}

/* Holes are drawn in the step: stopped after step 5 and resumed, a run repeats the uninterrupted
 * run's losses bit for bit. */
static void test_resume(const char *fixture)
{
	char data[800], spec[2048];
	snprintf(data, sizeof data, COLOUR_DATA(fixture));
	snprintf(spec, sizeof spec, "{\"name\":\"r\",\"method\":\"inpainting\",\"params\":"
	         "{\"latent_dim\":16,\"holes\":3,\"hole_size\":0.25},%s," SMALL_CNN ",\"pretrain\":"
	         "{\"max_steps\":16,\"batch_size\":32},\"seed\":5,\"threads\":2}", data);
	static Run a = { .key = "loss" }, b = { .key = "loss", .stop_at = 5 };
	run_job(&a, spec);
	run_job(&b, spec);
	CHECK(a.rc == RUNNER_OK && b.rc == RUNNER_STOPPED, "runs: %d, stopped run %d", a.rc, b.rc);
	int before = b.n;
	b.stop_at = 0;
	run_job(&b, spec);
	CHECK(b.rc == RUNNER_OK, "resumed run failed");
	int same = a.n == 16 && before == 5 && b.n == 16;
	for (int i = 5; same && i < 16; i++)
		same = a.v[i] == b.v[i] && a.step[i] == b.step[i];
	CHECK(same, "the resumed losses differ from the uninterrupted run's (%d / %d + %d steps)", a.n,
	      before, b.n - before);
	printf("inpainting: stopped after step 5 and resumed: steps 6..16 identical: %s\n",
	       same ? "yes" : "no");
	run_close(&a);
	run_close(&b);
}

/* ---- steady state and rejections -------------------------------------------------------------- */

/* After two warm-up steps, a training step (loss, backward, optimizer) allocates nothing. */
static void test_no_alloc(const char *fixture)
{
	static const char *const methods[] = { "colorization", "inpainting" };
	for (int s = 0; s < 2; s++) {
		char data[800], text[2048], err[512] = "";
		snprintf(data, sizeof data, COLOUR_DATA(fixture));
		snprintf(text, sizeof text, "{\"method\":\"%s\",%s," SMALL_CNN "}", methods[s], data);
		JobSpec *js = NULL;
		SpecError se = { 0 };
		JobSpecOptions opts = { .check_files = 1 };
		Dataset *ds = NULL;
		if (jobspec_parse(text, strlen(text), &opts, &js, &se) < 0 ||
		    dataset_load(&js->dataset, &ds, err, sizeof err) < 0) {
			CHECK(0, "%s: setup failed: %s %s", methods[s], se.message, err);
			jobspec_free(js);
			continue;
		}
		const PretextMethod *m = method_find(js->method);
		ParamSet *ps = paramset_new();
		Rng rng;
		rng_seed(&rng, 1);
		MethodEnv env = { .encoder = &js->encoder, .in_c = 3, .in_h = SIDE, .in_w = SIDE,
		                  .ds = ds, .config = js->method_config, .rng = &rng,
		                  .total_steps = 100, .batch_size = 16 };
		void *st = NULL;
		Ctx *ctx = ctx_new(1);
		Optim *opt = NULL;
		int ok = m && m->create(&env, ps, &st, err, sizeof err) == 0 &&
		         optim_new(&js->pretrain.optim, ps, &opt) == 0;
		CHECK(ok, "%s: create failed: %s", methods[s], err);
		uint64_t allocs = 0;
		for (int step = 0; ok && step < 4; step++) {
			if (step == 2)
				allocs = eng_alloc_count();
			ctx_reset(ctx);
			ctx_set_training(ctx, 1);
			Batch b = { .n = 16, .view = { ds->train.x + (size_t)step * 16 * ds->sample_floats },
			            .y = ds->train.y, .index = step + 1 };
			Tensor *vt[2] = { ctx_wrap(ctx, b.view[0], 4, (int[]){ 16, 3, SIDE, SIDE }), NULL };
			ctx_backward(ctx, m->loss(ctx, st, vt, &b, NULL));
			optim_step(opt, 1e-3f);
			paramset_zero_grad(ps);
		}
		if (ok) {
			uint64_t d = eng_alloc_count() - allocs;
			CHECK(d == 0, "%s: %llu heap allocations in two steady-state steps", methods[s],
			      (unsigned long long)d);
		}
		if (st)
			m->destroy(st);
		optim_free(opt);
		ctx_free(ctx);
		paramset_free(ps);
		dataset_free(ds);
		jobspec_free(js);
	}
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

static void test_rejections(const char *fixture, int have_fmnist)
{
	char spec[1024];
	snprintf(spec, sizeof spec, "{\"method\":\"colorization\",\"dataset\":{\"format\":"
	         "\"image_folder\",\"train\":\"%s/train\",\"channels\":1}}", fixture);
	expect_400(spec, "dataset.channels", "must be 3");
	if (have_fmnist)
		expect_400("{\"method\":\"colorization\",\"dataset\":\"fashion-mnist\"}", "dataset",
		           "needs 3-channel images");
	snprintf(spec, sizeof spec, "{\"method\":\"inpainting\",\"dataset\":{\"format\":"
	         "\"image_folder\",\"train\":\"%s/train\"},\"params\":{\"hole_size\":1}}", fixture);
	expect_400(spec, "params.hole_size", "");
	snprintf(spec, sizeof spec, "{\"method\":\"inpainting\",\"dataset\":{\"format\":"
	         "\"image_folder\",\"train\":\"%s/train\"},\"params\":{\"fill\":\"median\"}}", fixture);
	expect_400(spec, "params.fill", "median");
}

int main(void)
{
	char *fixture = test_tmpdir("colour-fixture");
	if (!fixture || write_fixture(fixture) < 0) {
		fprintf(stderr, "cannot write the fixture\n");
		return 1;
	}
	int have_fmnist = access(FMNIST, R_OK) == 0;
	test_rejections(fixture, have_fmnist);
	test_no_alloc(fixture);
	test_colorization(fixture);
	test_inpainting_colour(fixture);
	test_resume(fixture);
	if (have_fmnist)
		test_inpainting_gray();
	else
		printf("skipped the Fashion-MNIST parts: %s is not installed\n", FMNIST);
	test_rmtree(fixture);
	free(fixture);
	return check_exit("test_colour_pred");
}
