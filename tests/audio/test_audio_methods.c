/* test_audio_methods.c - the audio pretext methods train: on a small audio_folder of synthetic
 * tones (written here with libsndfile), contrastive_audio and masked_spectrogram each take STEPS
 * optimizer steps on a CNN and their loss falls; the job spec turns an image method away from
 * audio and an audio method away from images, naming the field.
 */
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../engine/alloc.h"
#include "../../engine/ctx.h"
#include "../../engine/data/dataset.h"
#include "../../engine/methods/method.h"
#include "../../engine/optim.h"
#include "../../workers/jobspec.h"
#include "check.h"

static char dir[256];
#define STEPS 40

/* 48 clips, each its own tone (150 Hz * 1.06^j, with a harmonic) under its own amplitude
 * modulation (2 to 8 Hz) and onset; class k holds the 16 lowest, middle or highest tones */
static int write_tones(void)
{
	char path[512];
	float pcm[4000];
	for (int k = 0; k < 3; k++) {
		snprintf(path, sizeof path, "%s/c%d", dir, k);
		if (mkdir(path, 0755) < 0)
			return -1;
		for (int i = 0; i < 16; i++) {
			int j = 16 * k + i;
			double f = 150.0 * pow(1.06, j), am = 2.0 + 2.0 * (i % 4), a = 0.1 + 0.05 * (i % 3);
			int on = 200 * (i % 7);
			for (int t = 0; t < 4000; t++)
				pcm[t] = t < on ? 0.0f : (float)(a * (0.6 + 0.4 * sin(2 * M_PI * am * t / 8000)) *
				                                  (sin(2 * M_PI * f * t / 8000) +
				                                   0.3 * sin(4 * M_PI * f * t / 8000)));
			snprintf(path, sizeof path, "%s/c%d/%d.wav", dir, k, i);
			SF_INFO info = { .samplerate = 8000, .channels = 1,
			                 .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16 };
			SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
			if (!sf)
				return -1;
			sf_writef_float(sf, pcm, 4000);
			sf_close(sf);
		}
	}
	return 0;
}

/* The pretext metrics a method's evaluate() reports, by name. */
typedef struct Got {
	double masked, mean_fill;
	int n;
} Got;

static void got_put(void *user, const char *key, double v)
{
	Got *g = user;
	g->n++;
	if (strcmp(key, "test_masked_mse") == 0) g->masked = v;
	if (strcmp(key, "test_mean_fill_mse") == 0) g->mean_fill = v;
}

static void train(const char *method, const char *params)
{
	char text[1024], err[512];
	snprintf(text, sizeof text, "{\"method\":\"%s\",\"params\":%s,\"dataset\":{\"format\":"
	         "\"audio_folder\",\"train\":\"%s\",\"sample_rate\":8000,\"clip_seconds\":0.5,"
	         "\"n_mels\":24},\"model\":{\"encoder\":\"cnn\",\"channels\":[8,16]},"
	         "\"pretrain\":{\"batch_size\":16}}", method, params, dir);
	JobSpec *js = NULL;
	SpecError se;
	JobSpecOptions opts = { .check_files = 1 };
	Dataset *ds = NULL;
	if (jobspec_parse(text, strlen(text), &opts, &js, &se) < 0 ||
	    dataset_load(&js->dataset, &ds, err, sizeof err) < 0) {
		CHECK(0, "%s: setup failed: %s %s", method, se.message, err);
		jobspec_free(js);
		return;
	}
	CHECK(ds->c == 1 && ds->h == 24 && ds->w == 50, "%s: shape %dx%dx%d", method, ds->c, ds->h, ds->w);
	const PretextMethod *m = method_find(js->method);
	ParamSet *ps = paramset_new();
	Rng rng;
	rng_seed(&rng, 1);
	MethodEnv env = { .encoder = &js->encoder, .in_c = 1, .in_h = ds->h, .in_w = ds->w, .ds = ds,
	                  .config = js->method_config, .rng = &rng, .total_steps = 40, .batch_size = 16 };
	void *st = NULL;
	Ctx *ctx = ctx_new(1);
	Optim *opt = NULL;
	int ok = m && m->create(&env, ps, &st, err, sizeof err) == 0 &&
	         optim_new(&js->pretrain.optim, ps, &opt) == 0;
	CHECK(ok, "%s: create failed: %s", method, err);
	double first = 0, last = 0;
	int shape[4] = { 16, 1, ds->h, ds->w };
	float *xb = eng_malloc(sizeof(float) * 16 * ds->sample_floats);
	int yb[16];
	for (int step = 0; ok && step < STEPS; step++) {
		ctx_reset(ctx);
		ctx_set_training(ctx, 1);
		for (int i = 0; i < 16; i++) {   /* a random batch: the classes mixed */
			int k = (int)rng_below(&rng, (uint32_t)ds->train.n);
			memcpy(xb + (size_t)i * ds->sample_floats, ds->train.x + (size_t)k * ds->sample_floats,
			       sizeof(float) * ds->sample_floats);
			yb[i] = ds->train.y[k];
		}
		Batch b = { .n = 16, .view = { xb, NULL }, .y = yb };
		Tensor *vt[2] = { ctx_wrap(ctx, b.view[0], 4, shape), NULL };
		Tensor *loss = m->loss(ctx, st, vt, &b, NULL);
		CHECK(isfinite(loss->data[0]), "%s: loss %g at step %d", method, loss->data[0], step);
		if (step < 5) first += loss->data[0] / 5;
		if (step >= STEPS - 5) last += loss->data[0] / 5;
		ctx_backward(ctx, loss);
		optim_step(opt, 2e-3f);
		paramset_zero_grad(ps);
	}
	if (ok) {
		printf("%s: loss %.4f over the first 5 steps, %.4f over the last 5\n", method, first, last);
		CHECK(last < 0.8 * first, "%s: the loss did not fall: %.4f -> %.4f", method, first, last);
	}
	if (ok && m->evaluate) {
		/* masked_spectrogram on the test split: it beats filling the masks with the clip's mean */
		Got g = {0};
		MetricSink sink = { .put = got_put, .user = &g };
		CHECK(m->evaluate(st, ctx, ds, &sink) == 0, "%s: evaluate", method);
		printf("%s: test masked mse %.4f, mean fill %.4f\n", method, g.masked, g.mean_fill);
		CHECK(g.n == 3 && g.masked > 0 && g.masked < g.mean_fill, "%s: test masked mse %g, mean "
		      "fill %g (%d metrics)", method, g.masked, g.mean_fill, g.n);
	}
	eng_free(xb);
	if (st)
		m->destroy(st);
	optim_free(opt);
	ctx_free(ctx);
	paramset_free(ps);
	dataset_free(ds);
	jobspec_free(js);
}

/* Methods and data of different modalities are turned away at the spec, naming the field. */
static void rejections(void)
{
	char text[512];
	JobSpec *js = NULL;
	SpecError se;
	JobSpecOptions opts = { .check_files = 1 };
	snprintf(text, sizeof text, "{\"method\":\"simclr\",\"dataset\":{\"format\":\"audio_folder\","
	         "\"train\":\"%s\"}}", dir);
	CHECK(jobspec_parse(text, strlen(text), &opts, &js, &se) < 0 && strcmp(se.field, "dataset") == 0 &&
	      strstr(se.message, "holds audio"), "simclr on audio: field '%s' %s", se.field, se.message);
	jobspec_free(js);
	js = NULL;
	const char *img = "{\"method\":\"contrastive_audio\",\"dataset\":\"fashion-mnist\"}";
	CHECK(jobspec_parse(img, strlen(img), &(JobSpecOptions){0}, &js, &se) < 0 &&
	      strcmp(se.field, "dataset") == 0 && strstr(se.message, "works on audio"),
	      "contrastive_audio on images: field '%s' %s", se.field,
	      se.message);
	jobspec_free(js);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/ssld-test-audio-methods-XXXXXX");
	if (!mkdtemp(dir) || write_tones() < 0)
		return check_skip("cannot write the tones under /tmp");
	/* the default noise and masks hide too much of a pure tone for 40 steps to show */
	train("contrastive_audio", "{\"temperature\":0.2,\"proj_hidden\":64,\"proj_dim\":32,"
	      "\"noise_p\":0,\"time_masks\":1,\"freq_masks\":1}");
	train("masked_spectrogram", "{\"latent_dim\":32}");
	rejections();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_exit("audio_methods");
}
