/* fid.c - sample quality of generative runs: the Frechet distance (engine/frechet.h) between the
 * test split and a run's samples, in the feature space of a fixed classifier, so that runs of
 * different methods (gan, vae) are measured with the same code and the same features.
 *
 *   bench_fid [--n N] [--epochs E] RUN_DIR...
 *
 * The classifier is trained here, once per invocation, with a fixed seed on the labelled train
 * split of the first run's dataset: the cnn encoder {32,64,128} with BatchNorm, global average
 * pooling, a linear layer to the classes, AdamW 2e-3, batch 128, E epochs (default 2). Its
 * 128 pooled features (evaluation mode) are the feature space; its test accuracy is printed so
 * the reader can judge it. Each run's generator is rebuilt from RUN_DIR/job.json and
 * RUN_DIR/checkpoint.safetensors, and N samples (default 10000, seed 1) are compared with the
 * first N test images. As a floor, the first N training images are compared with the same test
 * images (what two real samples of the data score). Last line: one JSON object.
 *
 * The figure is an FID-style distance, not the FID: the features are not Inception-v3's, so
 * numbers compare only with each other (same classifier, same N).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "checkpoint.h"
#include "ctx.h"
#include "frechet.h"
#include "jobspec.h"
#include "layers.h"
#include "methods/method.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "rng.h"

#define FEAT_BATCH 500

typedef struct Classifier {
	ParamSet *ps;
	Encoder *enc;
	Linear head;
	Ctx *ctx;
} Classifier;

static char *read_text(const char *path)
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

static JobSpec *load_spec(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/job.json", dir);
	char *text = read_text(path);
	if (!text) {
		fprintf(stderr, "fid: cannot read %s\n", path);
		return NULL;
	}
	JobSpec *js = NULL;
	SpecError se = { 0 };
	JobSpecOptions opts = { .check_files = 1 };
	if (jobspec_parse(text, strlen(text), &opts, &js, &se) < 0)
		fprintf(stderr, "fid: %s: %s: %s\n", path, se.field, se.message);
	free(text);
	return js;
}

/* x (n, per) -> features (n, 128) in evaluation mode. */
static void features(Classifier *c, const Dataset *ds, const float *x, int n, float *out)
{
	ctx_set_training(c->ctx, 0);
	int was = ctx_set_grad_enabled(c->ctx, 0);
	int d = encoder_out_dim(c->enc);
	for (int s = 0; s < n; s += FEAT_BATCH) {
		int nb = n - s < FEAT_BATCH ? n - s : FEAT_BATCH;
		ctx_reset(c->ctx);
		Tensor *t = ctx_wrap(c->ctx, (float *)x + (size_t)s * ds->sample_floats, 4,
		                     (int[]){ nb, ds->c, ds->h, ds->w });
		Tensor *f = encoder_forward(c->ctx, c->enc, t);
		memcpy(out + (size_t)s * d, f->data, (size_t)nb * d * sizeof(float));
	}
	ctx_set_grad_enabled(c->ctx, was);
}

static double test_accuracy(Classifier *c, const Dataset *ds)
{
	ctx_set_training(c->ctx, 0);
	int was = ctx_set_grad_enabled(c->ctx, 0), ok = 0;
	for (int s = 0; s < ds->test.n; s += FEAT_BATCH) {
		int nb = ds->test.n - s < FEAT_BATCH ? ds->test.n - s : FEAT_BATCH;
		ctx_reset(c->ctx);
		Tensor *t = ctx_wrap(c->ctx, ds->test.x + (size_t)s * ds->sample_floats, 4,
		                     (int[]){ nb, ds->c, ds->h, ds->w });
		Tensor *lg = linear_forward(c->ctx, &c->head, encoder_forward(c->ctx, c->enc, t));
		for (int i = 0; i < nb; i++) {
			int best = 0;
			for (int k = 1; k < lg->shape[1]; k++)
				if (lg->data[(size_t)i * lg->shape[1] + k] > lg->data[(size_t)i * lg->shape[1] + best])
					best = k;
			ok += best == ds->test.y[s + i];
		}
	}
	ctx_set_grad_enabled(c->ctx, was);
	return (double)ok / ds->test.n;
}

static int train_classifier(Classifier *c, const Dataset *ds, int epochs)
{
	char err[512];
	EncoderConfig ec;
	encoder_config_default(&ec, ENC_CNN);
	Rng rng;
	rng_seed(&rng, 1);
	c->ps = paramset_new();
	c->ctx = ctx_new(2);
	if (!c->ps || !c->ctx ||
	    encoder_new(&ec, c->ps, "encoder", ds->c, ds->h, ds->w, &rng, &c->enc, err, sizeof err) < 0 ||
	    linear_init(&c->head, c->ps, "head", encoder_out_dim(c->enc), ds->num_classes, 1, &rng) < 0) {
		fprintf(stderr, "fid: cannot build the classifier\n");
		return -1;
	}
	OptimConfig oc;
	optim_config_default(&oc, OPT_ADAMW);
	oc.lr = 2e-3f;
	Optim *opt;
	if (optim_new(&oc, c->ps, &opt) < 0)
		return -1;
	enum { B = 128 };
	int n = ds->train.n, *perm = malloc((size_t)n * sizeof(int)), y[B];
	float *xb = malloc((size_t)B * ds->sample_floats * sizeof(float));
	for (int i = 0; i < n; i++)
		perm[i] = i;
	for (int e = 0; e < epochs; e++) {
		for (int i = n - 1; i > 0; i--) {
			int j = (int)rng_below(&rng, (uint64_t)i + 1), t = perm[i];
			perm[i] = perm[j];
			perm[j] = t;
		}
		for (int s = 0; s + B <= n; s += B) {
			for (int i = 0; i < B; i++) {
				memcpy(xb + (size_t)i * ds->sample_floats,
				       ds->train.x + (size_t)perm[s + i] * ds->sample_floats,
				       ds->sample_floats * sizeof(float));
				y[i] = ds->train.y[perm[s + i]];
			}
			ctx_reset(c->ctx);
			ctx_set_training(c->ctx, 1);
			Tensor *x = ctx_wrap(c->ctx, xb, 4, (int[]){ B, ds->c, ds->h, ds->w });
			Tensor *loss = op_cross_entropy(
				c->ctx, linear_forward(c->ctx, &c->head, encoder_forward(c->ctx, c->enc, x)), y, 0);
			ctx_backward(c->ctx, loss);
			optim_step(opt, oc.lr);
			paramset_zero_grad(c->ps);
		}
	}
	optim_free(opt);
	free(perm);
	free(xb);
	return 0;
}

/* n samples (seed 1) from the run in dir into out (n, per). */
static int run_samples(const char *dir, JobSpec *js, const Dataset *ds, int n, float *out)
{
	char err[1024] = "", path[4096];
	const PretextMethod *m = method_find(js->method);
	if (!m || !m->generate_images) {
		fprintf(stderr, "fid: %s: method \"%s\" does not generate images\n", dir, js->method);
		return -1;
	}
	ParamSet *ps = paramset_new();
	Rng rng;
	rng_seed(&rng, 1);
	MethodEnv env = { .encoder = &js->encoder, .in_c = ds->c, .in_h = ds->h, .in_w = ds->w,
	                  .ds = ds, .config = js->method_config, .rng = &rng, .total_steps = 1,
	                  .batch_size = js->pretrain.batch_size };
	void *st = NULL;
	Ctx *ctx = ctx_new(2);
	CheckpointState cs;
	snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
	int rc = m->create(&env, ps, &st, err, sizeof err);
	if (rc == 0 && (rc = checkpoint_load(path, ps, NULL, &cs, NULL, err, sizeof err)) >= 0) {
		checkpoint_state_free(&cs);
		ctx_set_training(ctx, 0);
		ctx_set_grad_enabled(ctx, 0);
		rc = m->generate_images(st, ctx, n, &rng, out, err, sizeof err);
	}
	if (rc < 0)
		fprintf(stderr, "fid: %s: %s\n", dir, err);
	if (st)
		m->destroy(st);
	ctx_free(ctx);
	paramset_free(ps);
	return rc < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	int n = 10000, epochs = 2, first = 1;
	for (; first < argc && strncmp(argv[first], "--", 2) == 0; first += 2) {
		if (first + 1 >= argc)
			break;
		if (strcmp(argv[first], "--n") == 0)
			n = atoi(argv[first + 1]);
		else if (strcmp(argv[first], "--epochs") == 0)
			epochs = atoi(argv[first + 1]);
	}
	if (first >= argc) {
		fprintf(stderr, "usage: bench_fid [--n N] [--epochs E] RUN_DIR...\n");
		return 2;
	}
	char err[1024] = "";
	JobSpec *js0 = load_spec(argv[first]);
	Dataset *ds = NULL;
	if (!js0 || dataset_load(&js0->dataset, &ds, err, sizeof err) < 0) {
		fprintf(stderr, "fid: %s\n", err);
		return 1;
	}
	if (n > ds->test.n)
		n = ds->test.n;
	if (n > ds->train.n)
		n = ds->train.n;
	Classifier c = { 0 };
	if (train_classifier(&c, ds, epochs) < 0)
		return 1;
	double acc = test_accuracy(&c, ds);
	int d = encoder_out_dim(c.enc);
	float *real = malloc((size_t)n * d * sizeof(float)), *other = malloc((size_t)n * d * sizeof(float));
	float *img = malloc((size_t)n * ds->sample_floats * sizeof(float));
	features(&c, ds, ds->test.x, n, real);
	features(&c, ds, ds->train.x, n, other);
	double floor_fd;
	if (frechet_distance_features(real, n, other, n, d, &floor_fd, err, sizeof err) < 0) {
		fprintf(stderr, "fid: %s\n", err);
		return 1;
	}
	printf("classifier: cnn {32,64,128}, %d epochs, test accuracy %.4f; %d-d features, n = %d\n",
	       epochs, acc, d, n);
	printf("%-40s %-8s %12s\n", "run", "method", "frechet");
	printf("%-40s %-8s %12.3f\n", "(train images vs test images)", "-", floor_fd);
	char json[8192];
	int jl = snprintf(json, sizeof json, "{\"classifier_test_accuracy\":%.4f,\"n\":%d,"
	                  "\"real_floor\":%.4f,\"runs\":[", acc, n, floor_fd);
	int rc = 0;
	for (int a = first; a < argc; a++) {
		JobSpec *js = a == first ? js0 : load_spec(argv[a]);
		double fd = NAN;
		if (!js || run_samples(argv[a], js, ds, n, img) < 0) {
			rc = 1;
		} else {
			features(&c, ds, img, n, other);
			if (frechet_distance_features(real, n, other, n, d, &fd, err, sizeof err) < 0) {
				fprintf(stderr, "fid: %s\n", err);
				rc = 1;
			}
			printf("%-40s %-8s %12.3f\n", argv[a], js->method, fd);
			jl += snprintf(json + jl, sizeof json - (size_t)jl, "%s{\"dir\":\"%s\",\"method\":"
			               "\"%s\",\"frechet\":%.4f}", a == first ? "" : ",", argv[a], js->method,
			               fd);
		}
		if (js && js != js0)
			jobspec_free(js);
	}
	snprintf(json + jl, sizeof json - (size_t)jl, "]}");
	puts(json);
	free(real);
	free(other);
	free(img);
	encoder_free(c.enc);
	paramset_free(c.ps);
	ctx_free(c.ctx);
	dataset_free(ds);
	jobspec_free(js0);
	return rc;
}
