/* test_eval.c - unit tests of the downstream protocols on synthetic data: kNN and the linear probe
 * on Gaussian clusters and hand-made cases, the label subset, every protocol end to end through
 * eval_run on a small vector dataset with an MLP encoder, pretrained-weight copying by name,
 * cancellation, progress, eval-mode features and the allocation-free step loop.
 *
 * Fast (a few seconds); no files. Every failed check makes the exit status non-zero.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ctx.h"
#include "methods/eval.h"
#include "methods/eval_internal.h"
#include "model.h"
#include "params.h"
#include "rng.h"
#include "check.h"
#include "../tolerance.h"

/* ---- synthetic data -------------------------------------------------------------------------- */

/* Class c's centre is sep * e_(c mod d) (+ an offset so the clusters are not centred on 0);
 * samples add N(0, noise^2) per coordinate. Labels cycle 0,1,..,K-1 in file order. */
static void clusters(float *x, int *y, int n, int d, int K, float sep, float noise, float offset,
                     Rng *r)
{
	for (int i = 0; i < n; i++) {
		int c = i % K;
		y[i] = c;
		for (int j = 0; j < d; j++)
			x[(size_t)i * d + j] = offset + (j == c % d ? sep : 0.0f) + noise * rng_normal(r);
	}
}

/* A vector dataset (C=1, H=1, W=d) of Gaussian clusters, built in memory. */
static Dataset *cluster_dataset(int ntr, int nte, int d, int K, float sep, float noise,
                                uint64_t seed)
{
	Dataset *ds = calloc(1, sizeof *ds);
	ds->kind = DATASET_CSV;
	ds->c = 1, ds->h = 1, ds->w = d;
	ds->sample_floats = (size_t)d;
	ds->num_classes = K;
	ds->train.n = ntr, ds->test.n = nte;
	ds->train.x = malloc((size_t)ntr * d * sizeof(float));
	ds->train.y = malloc((size_t)ntr * sizeof(int));
	ds->test.x = malloc((size_t)nte * d * sizeof(float));
	ds->test.y = malloc((size_t)nte * sizeof(int));
	Rng r;
	rng_seed(&r, seed);
	clusters(ds->train.x, ds->train.y, ntr, d, K, sep, noise, 0.5f, &r);
	clusters(ds->test.x, ds->test.y, nte, d, K, sep, noise, 0.5f, &r);
	return ds;
}

static void free_dataset(Dataset *ds)
{
	free(ds->train.x);
	free(ds->train.y);
	free(ds->test.x);
	free(ds->test.y);
	free(ds);
}

static void mlp_config(EncoderConfig *ec, int hidden, int out_dim)
{
	encoder_config_default(ec, ENC_MLP);
	ec->hidden[0] = hidden;
	ec->n_hidden = 1;
	ec->out_dim = out_dim;
}

/* ---- feature-level kNN ------------------------------------------------------------------------ */

static void test_knn_clusters(void)
{
	int d = 8, K = 4, ntr = 400, nte = 400;
	float *xtr = malloc(sizeof(float) * ntr * d), *xte = malloc(sizeof(float) * nte * d);
	int *ytr = malloc(sizeof(int) * ntr), *yte = malloc(sizeof(int) * nte);
	Rng r;
	rng_seed(&r, 1);
	clusters(xtr, ytr, ntr, d, K, 4.0f, 0.5f, 0.0f, &r);
	clusters(xte, yte, nte, d, K, 4.0f, 0.5f, 0.0f, &r);
	EvalConfig c;
	eval_config_default(&c, EVAL_PROTO_KNN);
	EvalResult res;
	char err[256] = "";
	int rc = eval_knn_features(xtr, ytr, ntr, xte, yte, nte, d, K, &c, &res, err, sizeof err);
	CHECK(rc == 0, "rc %d: %s", rc, err);
	CHECK(res.test_accuracy >= 0.99, "knn clusters test accuracy %.4f", res.test_accuracy);
	CHECK(res.train_accuracy >= 0.99, "knn clusters leave-one-out accuracy %.4f",
	      res.train_accuracy);
	CHECK(res.labels == ntr, "labels %d", res.labels);
	printf("knn gaussian clusters: test %.4f, leave-one-out %.4f\n", res.test_accuracy,
	       res.train_accuracy);

	/* Bad labels are refused with a message naming the row. */
	ytr[7] = K;
	rc = eval_knn_features(xtr, ytr, ntr, xte, yte, nte, d, K, &c, &res, err, sizeof err);
	CHECK(rc == -EINVAL && strstr(err, "row 7"), "rc %d: %s", rc, err);
	free(xtr), free(xte), free(ytr), free(yte);
}

/* Random directions with random labels: only an exact nearest-neighbour lookup can solve it. */
static void test_knn_exact_neighbours(void)
{
	int d = 32, K = 10, n = 500;
	float *x = malloc(sizeof(float) * n * d);
	int *y = malloc(sizeof(int) * n);
	Rng r;
	rng_seed(&r, 2);
	for (int i = 0; i < n; i++) {
		y[i] = (int)rng_below(&r, (uint32_t)K);
		for (int j = 0; j < d; j++)
			x[(size_t)i * d + j] = rng_normal(&r);
	}
	/* Queries: the same points scaled by 3 (cosine ignores length), shuffled order kept. */
	float *q = malloc(sizeof(float) * n * d);
	for (int i = 0; i < n * d; i++)
		q[i] = 3.0f * x[i];
	EvalConfig c;
	eval_config_default(&c, EVAL_PROTO_KNN);
	c.k = 1;
	EvalResult res;
	char err[256] = "";
	int rc = eval_knn_features(x, y, n, q, y, n, d, K, &c, &res, err, sizeof err);
	CHECK(rc == 0, "rc %d: %s", rc, err);
	CHECK(res.test_accuracy == 1.0, "k=1 on the training points themselves: %.4f",
	      res.test_accuracy);
	/* Leave-one-out on random labels must be near chance, proving the query is excluded. */
	CHECK(res.train_accuracy < 0.3, "leave-one-out on random labels %.4f", res.train_accuracy);
	/* With k = 20 and a small temperature, the nearest neighbour (similarity 1 vs < ~0.6)
	 * dominates the vote. */
	c.k = 20;
	c.temperature = 0.02f;
	rc = eval_knn_features(x, y, n, q, y, n, d, K, &c, &res, err, sizeof err);
	CHECK(rc == 0 && res.test_accuracy == 1.0, "k=20 T=0.02: rc %d acc %.4f", rc,
	      res.test_accuracy);
	free(x), free(y), free(q);
}

/* The vote is weighted by exp(sim/T): one close neighbour of class 0 against two farther ones of
 * class 1. A small T lets the close one win; a large T makes it a plain majority vote. */
static void test_knn_temperature(void)
{
	double a9 = acos(0.9), a5 = acos(0.5);
	float xtr[] = { (float)cos(a9), (float)sin(a9),        /* class 0, sim 0.9 */
		        (float)cos(a5), (float)sin(a5),        /* class 1, sim 0.5 */
		        (float)cos(a5), (float)-sin(a5),       /* class 1, sim 0.5 */
		        -1.0f, 0.0f, -0.9f, 0.1f };            /* class 2, far away */
	int ytr[] = { 0, 1, 1, 2, 2 };
	float xte[] = { 1.0f, 0.0f };
	int yte0[] = { 0 }, yte1[] = { 1 };
	EvalConfig c;
	eval_config_default(&c, EVAL_PROTO_KNN);
	c.k = 3;
	c.temperature = 0.07f;
	EvalResult res;
	char err[256] = "";
	int rc = eval_knn_features(xtr, ytr, 5, xte, yte0, 1, 2, 3, &c, &res, err, sizeof err);
	CHECK(rc == 0 && res.test_accuracy == 1.0, "T=0.07 should pick class 0: rc %d acc %.1f", rc,
	      res.test_accuracy);
	c.temperature = 10.0f;
	rc = eval_knn_features(xtr, ytr, 5, xte, yte1, 1, 2, 3, &c, &res, err, sizeof err);
	CHECK(rc == 0 && res.test_accuracy == 1.0, "T=10 should pick class 1: rc %d acc %.1f", rc,
	      res.test_accuracy);
	/* k = 1: the nearest alone. */
	c.k = 1;
	rc = eval_knn_features(xtr, ytr, 5, xte, yte0, 1, 2, 3, &c, &res, err, sizeof err);
	CHECK(rc == 0 && res.test_accuracy == 1.0, "k=1: rc %d acc %.1f", rc, res.test_accuracy);
}

/* ---- feature-level linear probe ------------------------------------------------------------------ */

static void test_linear_clusters(void)
{
	int d = 20, K = 5, ntr = 300, nte = 1000;
	float *xtr = malloc(sizeof(float) * ntr * d), *xte = malloc(sizeof(float) * nte * d);
	int *ytr = malloc(sizeof(int) * ntr), *yte = malloc(sizeof(int) * nte);
	Rng r;
	rng_seed(&r, 3);
	/* Offset 3 and scale: the probe must standardise to cope. */
	clusters(xtr, ytr, ntr, d, K, 3.0f, 0.6f, 3.0f, &r);
	clusters(xte, yte, nte, d, K, 3.0f, 0.6f, 3.0f, &r);
	EvalConfig c;
	eval_config_default(&c, EVAL_PROTO_LINEAR_PROBE);
	EvalResult res;
	char err[256] = "";
	int rc = eval_linear_probe_features(xtr, ytr, ntr, xte, yte, nte, d, K, &c, 7, &res, err,
	                                    sizeof err);
	CHECK(rc == 0, "rc %d: %s", rc, err);
	CHECK(res.test_accuracy >= 0.99, "linear probe clusters test accuracy %.4f",
	      res.test_accuracy);
	CHECK(res.train_accuracy >= 0.99, "train accuracy %.4f", res.train_accuracy);
	int in_grid = 0;
	const double grid[] = { 0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0 };
	for (size_t i = 0; i < sizeof grid / sizeof grid[0]; i++)
		in_grid |= fabs(res.chosen_weight_decay - grid[i]) < 1e-12;
	CHECK(in_grid, "chosen weight decay %g is not from the grid", res.chosen_weight_decay);
	printf("linear probe gaussian clusters: test %.4f train %.4f wd %g\n", res.test_accuracy,
	       res.train_accuracy, res.chosen_weight_decay);

	/* A given weight decay is used as is (no search). */
	c.weight_decay = 0.05f;
	rc = eval_linear_probe_features(xtr, ytr, ntr, xte, yte, nte, d, K, &c, 7, &res, err,
	                                sizeof err);
	CHECK(rc == 0 && fabs(res.chosen_weight_decay - 0.05) < 1e-6, "fixed wd: rc %d wd %g", rc,
	      res.chosen_weight_decay);
	CHECK(res.test_accuracy >= 0.98, "fixed wd accuracy %.4f", res.test_accuracy);
	/* Same inputs, same seed: the same answer. */
	EvalResult again;
	rc = eval_linear_probe_features(xtr, ytr, ntr, xte, yte, nte, d, K, &c, 7, &again, err,
	                                sizeof err);
	CHECK(rc == 0 && again.test_accuracy == res.test_accuracy, "not deterministic: %.4f %.4f",
	      again.test_accuracy, res.test_accuracy);
	free(xtr), free(xte), free(ytr), free(yte);
}

/* XOR: no linear classifier beats ~50%, while kNN solves it - the probe really is linear, and a
 * heavy penalty drives the weights (so the logits) towards zero. */
static void test_linear_xor(void)
{
	int n = 400;
	float *x = malloc(sizeof(float) * n * 2), *xt = malloc(sizeof(float) * n * 2);
	int *y = malloc(sizeof(int) * n), *yt = malloc(sizeof(int) * n);
	Rng r;
	rng_seed(&r, 4);
	for (int s = 0; s < 2; s++) {
		float *px = s ? xt : x;
		int *py = s ? yt : y;
		for (int i = 0; i < n; i++) {
			int a = i & 1, b = (i >> 1) & 1;
			px[2 * i] = (a ? 1.0f : -1.0f) + 0.15f * rng_normal(&r);
			px[2 * i + 1] = (b ? 1.0f : -1.0f) + 0.15f * rng_normal(&r);
			py[i] = a ^ b;
		}
	}
	EvalConfig c;
	eval_config_default(&c, EVAL_PROTO_LINEAR_PROBE);
	EvalResult res;
	char err[256] = "";
	int rc = eval_linear_probe_features(x, y, n, xt, yt, n, 2, 2, &c, 1, &res, err, sizeof err);
	CHECK(rc == 0, "rc %d: %s", rc, err);
	CHECK(res.test_accuracy < 0.65, "a linear probe cannot solve XOR: %.4f", res.test_accuracy);
	eval_config_default(&c, EVAL_PROTO_KNN);
	rc = eval_knn_features(x, y, n, xt, yt, n, 2, 2, &c, &res, err, sizeof err);
	CHECK(rc == 0 && res.test_accuracy > 0.97, "knn solves XOR: rc %d acc %.4f", rc,
	      res.test_accuracy);
	free(x), free(xt), free(y), free(yt);
}

/* ---- the label subset ------------------------------------------------------------------------ */

static void test_label_subset(void)
{
	/* 10 classes x 600: 0.01 -> round(0.01 * 6000 / 10) = 6 per class, first in file order. */
	Dataset *ds = cluster_dataset(6000, 100, 4, 10, 3.0f, 0.5f, 5);
	int *idx = NULL;
	char err[256] = "";
	int n = dataset_label_subset(&ds->train, 10, 0.01, 0, LABELS_FIRST, 1, &idx, err, sizeof err);
	CHECK(n == 60, "0.01 of 6000 over 10 classes: %d (%s)", n, err);
	int ok = 1;
	for (int i = 0; i < n && ok; i++)
		ok = idx[i] == i;   /* labels cycle, so the first 6 per class are samples 0..59 */
	CHECK(ok, "first k per class in file order");
	eng_free(idx);

	/* Through eval_run: labels reports the subset size for fraction and labels_per_class. */
	EncoderConfig ec;
	mlp_config(&ec, 16, 8);
	EvalEnv env = { .ds = ds, .encoder_cfg = &ec, .seed = 1, .threads = 1 };
	EvalConfig c;
	eval_config_default(&c, EVAL_PROTO_KNN);
	EvalResult res;
	int rc = eval_run(&env, &c, 0.01, 0, &res, err, sizeof err);
	CHECK(rc == 0 && res.labels == 60, "eval_run 0.01: rc %d labels %d (%s)", rc, res.labels, err);
	rc = eval_run(&env, &c, 0.5, 13, &res, err, sizeof err);
	CHECK(rc == 0 && res.labels == 130, "13 per class: rc %d labels %d (%s)", rc, res.labels, err);
	rc = eval_run(&env, &c, 1.0, 0, &res, err, sizeof err);
	CHECK(rc == 0 && res.labels == 6000, "fraction 1: rc %d labels %d (%s)", rc, res.labels, err);
	rc = eval_run(&env, &c, 1.5, 0, &res, err, sizeof err);
	CHECK(rc == -EINVAL && strstr(err, "1.5"), "fraction 1.5 refused: rc %d (%s)", rc, err);
	free_dataset(ds);
}

/* ---- every protocol through eval_run ------------------------------------------------------------- */

typedef struct Watch {
	int calls, last_epoch, epochs, monotone;
	int stop_after;          /* should_stop returns 1 from this call on (0 = never) */
	int stop_calls;
	uint64_t allocs_at[64];  /* eng_alloc_count at each progress report */
} Watch;

static void watch_progress(void *user, int epoch, int epochs, double metric)
{
	Watch *w = user;
	if (w->calls < 64)
		w->allocs_at[w->calls] = eng_alloc_count();
	w->calls++;
	if (epoch != w->last_epoch + 1)
		w->monotone = 0;
	w->last_epoch = epoch;
	w->epochs = epochs;
	(void)metric;
}

static int watch_stop(void *user)
{
	Watch *w = user;
	w->stop_calls++;
	return w->stop_after > 0 && w->stop_calls >= w->stop_after;
}

static void test_protocols_end_to_end(void)
{
	/* Separated enough that even a random-init encoder's features keep the classes apart. */
	Dataset *ds = cluster_dataset(2000, 500, 16, 4, 4.0f, 0.4f, 6);
	EncoderConfig ec;
	mlp_config(&ec, 32, 16);
	const EvalProto protos[] = { EVAL_PROTO_LINEAR_PROBE, EVAL_PROTO_KNN, EVAL_PROTO_FINETUNE,
	                             EVAL_PROTO_SUPERVISED };
	for (int i = 0; i < 4; i++) {
		Watch w = { .monotone = 1 };
		EvalEnv env = { .ds = ds, .encoder_cfg = &ec, .seed = 11, .threads = 1,
		                .on_progress = watch_progress, .should_stop = watch_stop, .user = &w };
		EvalConfig c;
		eval_config_default(&c, protos[i]);
		c.augment = 0;   /* flips and shifts make no sense on feature vectors */
		EvalResult res;
		char err[256] = "";
		int rc = eval_run(&env, &c, 0.05, 0, &res, err, sizeof err);   // 25 per class
		printf("%-12s on clusters, 100 labels: test %.4f train %.4f (%.2fs, %d progress "
		       "reports)\n", eval_proto_name(protos[i]), res.test_accuracy, res.train_accuracy,
		       res.seconds, w.calls);
		CHECK(rc == 0, "%s: rc %d: %s", eval_proto_name(protos[i]), rc, err);
		CHECK(res.labels == 100, "%s labels %d", eval_proto_name(protos[i]), res.labels);
		CHECK(res.test_accuracy >= 0.95, "%s test accuracy %.4f", eval_proto_name(protos[i]),
		      res.test_accuracy);
		CHECK(w.calls > 0 && w.monotone && w.last_epoch == w.epochs,
		      "%s progress: %d calls, last %d of %d, monotone %d", eval_proto_name(protos[i]),
		      w.calls, w.last_epoch, w.epochs, w.monotone);
		if (protos[i] == EVAL_PROTO_SUPERVISED || protos[i] == EVAL_PROTO_FINETUNE) {
			/* 100 labels, batch 64: 1 step per epoch, so at least 300 epochs. */
			CHECK(w.epochs >= 300, "minimum steps: %d epochs", w.epochs);
			/* Steady state: no heap allocation between the later epochs' reports. */
			int n = w.calls < 64 ? w.calls : 64;
			uint64_t grew = w.allocs_at[n - 1] - w.allocs_at[n / 2];
			CHECK(grew == 0, "%s: %llu heap allocations in the step loop over %d epochs",
			      eval_proto_name(protos[i]), (unsigned long long)grew, n - 1 - n / 2);
		}
	}
	free_dataset(ds);
}

static void test_cancel(void)
{
	Dataset *ds = cluster_dataset(2000, 200, 16, 4, 3.0f, 0.7f, 7);
	EncoderConfig ec;
	mlp_config(&ec, 32, 16);
	const EvalProto protos[] = { EVAL_PROTO_LINEAR_PROBE, EVAL_PROTO_SUPERVISED };
	for (int i = 0; i < 2; i++) {
		Watch w = { .stop_after = 5 };
		EvalEnv env = { .ds = ds, .encoder_cfg = &ec, .seed = 1, .threads = 1,
		                .on_progress = watch_progress, .should_stop = watch_stop, .user = &w };
		EvalConfig c;
		eval_config_default(&c, protos[i]);
		c.augment = 0;
		EvalResult res;
		char err[256] = "";
		int rc = eval_run(&env, &c, 0.5, 0, &res, err, sizeof err);
		CHECK(rc == -ECANCELED && strstr(err, "cancel"), "%s: rc %d (%s)",
		      eval_proto_name(protos[i]), rc, err);
		CHECK(w.stop_calls == 5, "%s: polled %d times after asking to stop",
		      eval_proto_name(protos[i]), w.stop_calls);
	}
	free_dataset(ds);
}

/* ---- pretrained weights ---------------------------------------------------------------------------- */

/* The one-hidden-layer MLP encoder (fc0 -> [bn0] -> relu -> fc1) of `prefix` in double, in eval
 * mode, on n rows of x (n,din): ref (n,dout) and, per element, the bound of the float32 forward's
 * error (tests/tolerance.h, carried through each stage): fc0 sums din products [and its bias];
 * batchnorm is h * s + (beta - mean * s) with s = gamma / sqrt(var + eps), a few roundings on
 * each of |h s|, |mean s|, |beta| and s's own; relu passes errors unchanged; fc1 sums dh products
 * of values each off by their bound, and its bias. Returns 0, -1 when a tensor is missing. */
static int mlp_reference(const ParamSet *ps, const char *prefix, const float *x, int n, int din,
                         double *ref, double *bound)
{
	char name[256];
	const Tensor *t[7];
	static const char *const parts[7] = { "fc0.weight", "fc0.bias", "bn0.weight", "bn0.bias",
		                                  "bn0.running_mean", "bn0.running_var", "fc1.weight" };
	for (int i = 0; i < 7; i++) {
		snprintf(name, sizeof name, "%s.%s", prefix, parts[i]);
		t[i] = paramset_find(ps, name);
	}
	snprintf(name, sizeof name, "%s.fc1.bias", prefix);
	const Tensor *b1 = paramset_find(ps, name);
	const int bn = t[4] != NULL;
	if (!t[0] || !t[6] || (bn && (!t[2] || !t[3] || !t[5])) || (!bn && !t[1]))
		return -1;
	const int dh = t[0]->shape[0], dout = t[6]->shape[0];
	const double eps = FLT_EPSILON;
	double *h = malloc((size_t)dh * sizeof *h), *eh = malloc((size_t)dh * sizeof *eh);
	if (!h || !eh) {
		free(h), free(eh);
		return -1;
	}
	for (int r = 0; r < n; r++) {
		const float *xr = x + (size_t)r * din;
		for (int j = 0; j < dh; j++) {
			double s = bn ? 0.0 : t[1]->data[j], m = fabs(s);
			for (int i = 0; i < din; i++) {
				const double v = (double)t[0]->data[(size_t)j * din + i] * xr[i];
				s += v, m += fabs(v);
			}
			double e = tol_bound(din + 1, m);
			if (bn) {
				const double sc = t[2]->data[j] / sqrt((double)t[5]->data[j] + 1e-5);
				const double mu = t[4]->data[j], be = t[3]->data[j];
				e = fabs(sc) * e + 6 * eps * (fabs(s * sc) + fabs(mu * sc) + fabs(be));
				s = (s - mu) * sc + be;
			}
			h[j] = s > 0.0 ? s : 0.0;
			eh[j] = e;
		}
		for (int k = 0; k < dout; k++) {
			double s = b1 ? b1->data[k] : 0.0, m = fabs(s), e = 0.0;
			for (int j = 0; j < dh; j++) {
				const double w = t[6]->data[(size_t)k * dh + j];
				s += w * h[j], m += fabs(w * h[j]), e += fabs(w) * eh[j];
			}
			ref[(size_t)r * dout + k] = s;
			bound[(size_t)r * dout + k] = e + tol_bound(dh + 1, m);
		}
	}
	free(h), free(eh);
	return 0;
}

static void test_pretrained_copy(void)
{
	Dataset *ds = cluster_dataset(400, 100, 16, 4, 3.0f, 0.7f, 8);
	EncoderConfig ec;
	mlp_config(&ec, 32, 16);
	char err[256] = "";
	/* A "pretrained" encoder under another prefix, as BYOL's online network would be. */
	ParamSet *src = paramset_new();
	Rng r;
	rng_seed(&r, 99);
	Encoder *pre = NULL;
	int rc = encoder_new(&ec, src, "online.encoder", 1, 1, 16, &r, &pre, err, sizeof err);
	CHECK(rc == 0, "encoder_new: %s", err);
	for (int i = 0; i < paramset_count(src); i++) {   /* make buffers distinctive too */
		Tensor *t = paramset_at(src, i);
		for (size_t j = 0; j < t->size; j++)
			t->data[j] += 0.25f + 0.001f * (float)j;
	}
	EvalEnv env = { .ds = ds, .encoder_cfg = &ec, .pretrained = src, .prefix = "online.encoder",
	                .seed = 1, .threads = 1 };
	ParamSet *dst = paramset_new();
	Encoder *enc = NULL;
	rc = eval_build_encoder(&env, dst, &enc, err, sizeof err);
	CHECK(rc == 0, "eval_build_encoder: %s", err);
	int same = paramset_count(dst) == paramset_count(src) && paramset_count(dst) > 0;
	for (int i = 0; i < paramset_count(dst) && same; i++) {
		Tensor *t = paramset_at(dst, i);
		char name[256];
		snprintf(name, sizeof name, "online.%s", t->name);
		Tensor *s = paramset_find(src, name);
		same = s && s->size == t->size && memcmp(s->data, t->data, t->size * sizeof(float)) == 0;
	}
	CHECK(same, "every encoder tensor (weights and buffers) copied by name");

	/* Features of the copy equal the original's, in eval mode, whatever the batch size. */
	float *fa = eval_features(pre, ds, &ds->test, NULL, 100, 512, 1);
	float *fb = eval_features(enc, ds, &ds->test, NULL, 100, 7, 1);
	int idx[3] = { 5, 50, 99 };
	float *fc = eval_features(enc, ds, &ds->test, idx, 3, 1, 1);
	CHECK(fa && fb && fc, "eval_features");
	/* sgemm blocking differs with the batch size, so each is held to the double reference
	 * within its derived bound: a batch-dependent feature (batch statistics) is off by O(|f|). */
	static double ref[100 * 16], bnd[100 * 16], ref3[3 * 16], bnd3[3 * 16];
	CHECK(mlp_reference(src, "online.encoder", ds->test.x, 100, 16, ref, bnd) == 0,
	      "the reference found no mlp tensors under online.encoder");
	if (fa && fb && fc) {
		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 16; j++) {
				ref3[i * 16 + j] = ref[idx[i] * 16 + j];
				bnd3[i * 16 + j] = bnd[idx[i] * 16 + j];
			}
		failures += tol_check_bound("features, batch 512 (original)", fa, ref, bnd, 100 * 16);
		failures += tol_check_bound("features, batch 7 (copy)", fb, ref, bnd, 100 * 16);
		failures += tol_check_bound("features, batch 1 (copy, rows 5 50 99)", fc, ref3, bnd3,
		                            3 * 16);
	}
	eng_free(fa), eng_free(fb), eng_free(fc);
	encoder_free(enc);
	paramset_free(dst);

	/* The wrong prefix, or a different architecture, is an error naming the tensor. */
	env.prefix = "encoder";
	EvalConfig c;
	eval_config_default(&c, EVAL_PROTO_FINETUNE);
	EvalResult res;
	rc = eval_run(&env, &c, 0.1, 0, &res, err, sizeof err);
	CHECK(rc == -EINVAL && strstr(err, "encoder."), "wrong prefix: rc %d (%s)", rc, err);
	EncoderConfig wide;
	mlp_config(&wide, 48, 16);
	env.prefix = "online.encoder";
	env.encoder_cfg = &wide;
	rc = eval_run(&env, &c, 0.1, 0, &res, err, sizeof err);
	CHECK(rc == -EINVAL && strstr(err, "shape"), "other architecture: rc %d (%s)", rc, err);
	/* Supervised ignores the pretrained weights entirely (so a mismatch does not matter). */
	eval_config_default(&c, EVAL_PROTO_SUPERVISED);
	c.augment = 0;
	c.epochs = 1;
	rc = eval_run(&env, &c, 0.1, 0, &res, err, sizeof err);
	CHECK(rc == 0, "supervised with unrelated pretrained weights: rc %d (%s)", rc, err);
	encoder_free(pre);
	paramset_free(src);
	free_dataset(ds);
}

/* pixel_probe is the linear probe on the samples themselves: on the labelled subset it answers
 * exactly what eval_linear_probe_features answers on those rows, and it needs no encoder. */
static void test_pixel_probe(void)
{
	int d = 12, K = 3;
	Dataset *ds = cluster_dataset(90, 300, d, K, 3.0f, 0.8f, 11);
	EncoderConfig ec;
	mlp_config(&ec, 8, 4);
	EvalEnv env = { .ds = ds, .encoder_cfg = &ec, .seed = 5, .threads = 1 };
	EvalConfig c;
	eval_config_default(&c, EVAL_PROTO_PIXEL_PROBE);
	CHECK(strcmp(eval_proto_name(EVAL_PROTO_PIXEL_PROBE), "pixel_probe") == 0, "name");
	EvalResult res, ref;
	char err[256] = "";
	int rc = eval_run(&env, &c, 0, 10, &res, err, sizeof err);   // 10 per class: samples 0..29
	CHECK(rc == 0 && res.labels == 30, "pixel probe: rc %d labels %d %s", rc, res.labels, err);
	EvalConfig lc;
	eval_config_default(&lc, EVAL_PROTO_LINEAR_PROBE);
	rc = eval_linear_probe_features(ds->train.x, ds->train.y, 30, ds->test.x, ds->test.y,
	                                ds->test.n, d, K, &lc, 5, &ref, err, sizeof err);
	CHECK(rc == 0 && res.test_accuracy == ref.test_accuracy &&
	      res.chosen_weight_decay == ref.chosen_weight_decay && res.test_accuracy > 0.8,
	      "pixel probe %.4f (wd %g) vs the probe on the same rows %.4f (wd %g)", res.test_accuracy,
	      res.chosen_weight_decay, ref.test_accuracy, ref.chosen_weight_decay);
	free_dataset(ds);
}

int main(void)
{
	test_knn_clusters();
	test_knn_exact_neighbours();
	test_knn_temperature();
	test_linear_clusters();
	test_linear_xor();
	test_label_subset();
	test_protocols_end_to_end();
	test_cancel();
	test_pretrained_copy();
	test_pixel_probe();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("all eval checks passed\n");
	return 0;
}
