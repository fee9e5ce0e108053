/* test_eval_quality.c - the downstream protocols on real data: Fashion-MNIST, 600 labels (the
 * "first 60 per class" 1% subset), test accuracy on the first 2000 test images.
 *
 *   test_eval_quality probe        raw-pixel and random-init-CNN linear probe and kNN
 *   test_eval_quality supervised   the supervised baseline: CNN (16,32) from scratch, ~300 steps
 *
 * Thresholds are the measured figures minus a margin (see the comments); every figure is printed.
 * Exit 77 (skipped) when the dataset is not installed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "data/dataset.h"
#include "methods/eval.h"
#include "model.h"

static int failures;

#define CHECK(cond, ...)                                                                     \
	do {                                                                                     \
		if (!(cond)) {                                                                       \
			failures++;                                                                      \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                  \
			fprintf(stderr, __VA_ARGS__);                                                    \
			fputc('\n', stderr);                                                             \
		}                                                                                    \
	} while (0)

/* CNN stages (3x3 conv + BN + ReLU, stride 2 from the second), global average pooling. */
static void cnn_config(EncoderConfig *ec, int stages)
{
	encoder_config_default(ec, ENC_CNN);
	ec->channels[0] = 16;
	ec->channels[1] = 32;
	ec->channels[2] = 64;
	ec->n_channels = stages;
	ec->out_dim = 0;      /* features = the pooled last stage */
}

static double run(const Dataset *ds, EvalProto p, int stages, const char *what, EvalResult *res)
{
	EncoderConfig ec;
	cnn_config(&ec, stages);
	EvalEnv env = { .ds = ds, .encoder_cfg = &ec, .in_c = 1, .in_h = 28, .in_w = 28,
	                .prefix = "encoder", .seed = 1, .threads = 2 };
	EvalConfig c;
	eval_config_default(&c, p);
	char err[512] = "";
	int rc = eval_run(&env, &c, 0.01, 0, res, err, sizeof err);
	CHECK(rc == 0, "%s: rc %d: %s", what, rc, err);
	CHECK(res->labels == 600, "%s: %d labels, expected 600", what, res->labels);
	printf("%-34s test %.4f  train %.4f  labels %d  %.1fs\n", what, res->test_accuracy,
	       res->train_accuracy, res->labels, res->seconds);
	return res->test_accuracy;
}

static void probe(const Dataset *ds)
{
	/* Raw pixels: the floor any representation should clear. */
	int *idx = NULL;
	char err[512] = "";
	int n = dataset_label_subset(&ds->train, ds->num_classes, 0.01, 0, LABELS_FIRST, 1, &idx, err,
	                             sizeof err);
	CHECK(n == 600, "label subset: %d (%s)", n, err);
	if (n <= 0)
		return;
	size_t sf = ds->sample_floats;
	float *x = malloc((size_t)n * sf * sizeof(float));
	int *y = malloc((size_t)n * sizeof(int));
	for (int i = 0; i < n; i++) {
		memcpy(x + (size_t)i * sf, ds->train.x + (size_t)idx[i] * sf, sf * sizeof(float));
		y[i] = ds->train.y[idx[i]];
	}
	EvalConfig c;
	EvalResult res;
	eval_config_default(&c, EVAL_PROTO_LINEAR_PROBE);
	clock_t t0 = clock();
	int rc = eval_linear_probe_features(x, y, n, ds->test.x, ds->test.y, ds->test.n, (int)sf,
	                                    ds->num_classes, &c, 1, &res, err, sizeof err);
	CHECK(rc == 0, "raw linear probe: %s", err);
	printf("%-34s test %.4f  train %.4f  wd %g  %.1fs cpu\n", "linear probe, raw pixels",
	       res.test_accuracy, res.train_accuracy, res.chosen_weight_decay,
	       (double)(clock() - t0) / CLOCKS_PER_SEC);
	/* Measured 0.7865 (wd 0.1 chosen); a broken probe lands near 0.1. */
	CHECK(res.test_accuracy > 0.75, "raw-pixel linear probe %.4f", res.test_accuracy);
	eval_config_default(&c, EVAL_PROTO_KNN);
	rc = eval_knn_features(x, y, n, ds->test.x, ds->test.y, ds->test.n, (int)sf, ds->num_classes,
	                       &c, &res, err, sizeof err);
	CHECK(rc == 0, "raw knn: %s", err);
	printf("%-34s test %.4f  leave-one-out %.4f\n", "knn k=20 T=0.07, raw pixels",
	       res.test_accuracy, res.train_accuracy);
	CHECK(res.test_accuracy > 0.68, "raw-pixel knn %.4f (measured 0.7135)", res.test_accuracy);
	free(x), free(y);
	eng_free(idx);

	/* A random-init CNN: features exist but nothing was learned; a sanity floor only. */
	run(ds, EVAL_PROTO_LINEAR_PROBE, 2, "linear probe, random-init CNN", &res);
	CHECK(res.test_accuracy > 0.55, "random-init CNN probe %.4f (measured 0.6315)",
	      res.test_accuracy);
	run(ds, EVAL_PROTO_KNN, 2, "knn, random-init CNN", &res);
	CHECK(res.test_accuracy > 0.45, "random-init CNN knn %.4f (measured 0.5320)",
	      res.test_accuracy);
}

static void supervised(const Dataset *ds)
{
	EvalResult res;
	/* Two stages see only 5x5 pixels before pooling (measured ~0.69 at best); three do better. */
	run(ds, EVAL_PROTO_SUPERVISED, 3, "supervised CNN (16,32,64)", &res);
	/* Measured 0.7340 (seeds 2 and 3: 0.7205, 0.7230). */
	CHECK(res.test_accuracy > 0.70, "supervised baseline %.4f", res.test_accuracy);
}

int main(int argc, char **argv)
{
	const char *part = argc > 1 ? argv[1] : "probe";
	const char *dir = getenv("SSLD_FASHION_MNIST");
	DatasetSpec s = { .kind = DATASET_FASHION_MNIST, .dir = dir, .limit_test = 2000 };
	Dataset *ds = NULL;
	char err[512];
	int rc = dataset_load(&s, &ds, err, sizeof err);
	if (rc == -ENOENT) {
		printf("skipped: Fashion-MNIST not installed (%s)\n", err);
		return 77;
	}
	if (rc < 0) {
		fprintf(stderr, "dataset: %s\n", err);
		return 1;
	}
	if (strcmp(part, "probe") == 0) {
		probe(ds);
	} else if (strcmp(part, "supervised") == 0) {
		supervised(ds);
	} else {
		fprintf(stderr, "unknown part `%s` (probe, supervised)\n", part);
		failures++;
	}
	dataset_free(ds);
	return failures ? 1 : 0;
}
