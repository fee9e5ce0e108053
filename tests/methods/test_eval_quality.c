/* test_eval_quality.c - the downstream protocols on real data: Fashion-MNIST, 600 labels (the
 * "first 60 per class" 1% subset), test accuracy on the first 2000 test images.
 *
 *   test_eval_quality probe        raw-pixel and random-init-CNN linear probe and kNN
 *   test_eval_quality supervised   the supervised baseline: CNN (16,32,64) from scratch, ~300 steps
 *   test_eval_quality transfer     an encoder pretrained (here: supervised, on training images
 *                                  30000.. which the 600 labels never touch) is handed to the
 *                                  probe, kNN and finetune as `pretrained` under another prefix
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
#include "ctx.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "methods/eval.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "check.h"

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

/* This file's supervised recipe for its small CNN and ~300 steps: lr 5e-3 measured 0.7340 below,
 * the protocol default (1e-3, the lr of the README's published jobs) 0.6390. */
#define SUPERVISED_LR 5e-3f

static double run_from(const Dataset *ds, EvalProto p, int stages, const ParamSet *pretrained,
                       const char *prefix, const char *what, EvalResult *res)
{
	EncoderConfig ec;
	cnn_config(&ec, stages);
	EvalEnv env = { .ds = ds, .encoder_cfg = &ec, .in_c = 1, .in_h = 28, .in_w = 28,
	                .pretrained = pretrained, .prefix = prefix, .seed = 1, .threads = 2 };
	EvalConfig c;
	eval_config_default(&c, p);
	if (p == EVAL_PROTO_SUPERVISED)
		c.lr = SUPERVISED_LR;
	char err[512] = "";
	int rc = eval_run(&env, &c, 0.01, 0, res, err, sizeof err);
	CHECK(rc == 0, "%s: rc %d: %s", what, rc, err);
	CHECK(res->labels == 600, "%s: %d labels, expected 600", what, res->labels);
	printf("%-34s test %.4f  train %.4f  labels %d  %.1fs\n", what, res->test_accuracy,
	       res->train_accuracy, res->labels, res->seconds);
	return res->test_accuracy;
}

static double run(const Dataset *ds, EvalProto p, int stages, const char *what, EvalResult *res)
{
	return run_from(ds, p, stages, NULL, "encoder", what, res);
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

/* Pretrain a CNN encoder (under "net.encoder") with labels on training images 30000..59999 -
 * disjoint from the 600 "first per class" images the protocols use - for `steps` steps. */
static ParamSet *pretrain(const Dataset *ds, int steps)
{
	EncoderConfig ec;
	cnn_config(&ec, 3);
	ParamSet *ps = paramset_new();
	Rng rng;
	rng_seed(&rng, 5);
	Encoder *enc = NULL;
	Mlp *head = NULL;
	char err[512] = "";
	if (encoder_new(&ec, ps, "net.encoder", 1, 28, 28, &rng, &enc, err, sizeof err) < 0 ||
	    mlp_new(ps, "net.head", (int[]){ encoder_out_dim(enc), ds->num_classes }, 2, 0, &rng,
	            &head) < 0) {
		fprintf(stderr, "pretrain: %s\n", err);
		exit(1);
	}
	int n = ds->train.n - 30000;
	int *idx = malloc((size_t)n * sizeof(int));
	for (int i = 0; i < n; i++)
		idx[i] = 30000 + i;
	LoaderConfig lc = { .ds = ds, .split = &ds->train, .indices = idx, .n = n, .batch = 128,
	                    .views = 0, .seed = 3, .shuffle = 1, .drop_last = 1, .prefetch = 2 };
	Loader *ld = NULL;
	OptimConfig oc;
	optim_config_default(&oc, OPT_ADAMW);
	oc.lr = 5e-3f;
	oc.schedule = SCHED_COSINE;
	oc.warmup_steps = steps / 20;
	Optim *opt = NULL;
	Ctx *ctx = ctx_new(9);
	if (loader_new(&lc, &ld, err, sizeof err) < 0 || optim_new(&oc, ps, &opt) < 0 || !ctx) {
		fprintf(stderr, "pretrain: %s\n", err);
		exit(1);
	}
	double loss_sum = 0.0;
	for (int step = 0; step < steps;) {
		const Batch *b = loader_next(ld);
		if (!b)
			continue;
		ctx_reset(ctx);
		Tensor *x = ctx_wrap(ctx, b->view[0], 4, (int[]){ b->n, 1, 28, 28 });
		Tensor *loss = op_cross_entropy(ctx, mlp_forward(ctx, head, encoder_forward(ctx, enc, x)),
		                                b->y, 0.0f);
		ctx_backward(ctx, loss);
		optim_step(opt, schedule_lr(&oc, step, steps));
		paramset_zero_grad(ps);
		if (step >= steps - 20)
			loss_sum += loss->data[0];
		step++;
	}
	printf("pretrained %d steps on 30000 disjoint labelled images: last-20 loss %.4f\n", steps,
	       loss_sum / 20);
	ctx_free(ctx);
	optim_free(opt);
	loader_free(ld);
	mlp_free(head);
	encoder_free(enc);
	free(idx);
	return ps;
}

static void transfer(const Dataset *ds)
{
	ParamSet *ps = pretrain(ds, 200);
	EvalResult probe_r, knn_r, ft_r;
	run_from(ds, EVAL_PROTO_LINEAR_PROBE, 3, ps, "net.encoder", "linear probe, pretrained CNN",
	         &probe_r);
	run_from(ds, EVAL_PROTO_KNN, 3, ps, "net.encoder", "knn, pretrained CNN", &knn_r);
	run_from(ds, EVAL_PROTO_FINETUNE, 3, ps, "net.encoder", "finetune, pretrained CNN", &ft_r);
	/* The supervised baseline on the same 600 labels measures 0.7340 (test "supervised"); the
	 * encoder pretrained here measured probe 0.7855, knn 0.7685, finetune (LP-FT, lr 1e-3) 0.7765. A
	 * transfer that lost the weights (or the BatchNorm statistics) would fall to the random-init
	 * figures (probe 0.63, knn 0.53). */
	CHECK(probe_r.test_accuracy > 0.76, "pretrained probe %.4f", probe_r.test_accuracy);
	CHECK(knn_r.test_accuracy > 0.74, "pretrained knn %.4f", knn_r.test_accuracy);
	CHECK(ft_r.test_accuracy > 0.76, "finetune %.4f", ft_r.test_accuracy);
	CHECK(ft_r.test_accuracy > probe_r.test_accuracy - 0.02,
	      "finetune %.4f fell well below the probe it starts from (%.4f)", ft_r.test_accuracy,
	      probe_r.test_accuracy);
	paramset_free(ps);
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
	} else if (strcmp(part, "transfer") == 0) {
		transfer(ds);
	} else {
		fprintf(stderr, "unknown part `%s` (probe, supervised, transfer)\n", part);
		failures++;
	}
	dataset_free(ds);
	return failures ? 1 : 0;
}
