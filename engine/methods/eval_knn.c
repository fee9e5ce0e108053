/* eval_knn.c - cosine k-nearest-neighbour classification on frozen features, with the
 * temperature-weighted vote of Wu et al. 2018 (instance discrimination): each of the k nearest
 * labelled samples votes for its class with weight exp(sim / T).
 *
 * Similarities are computed a block of queries at a time with one cblas_sgemm against all
 * labelled features; the k best are kept by insertion into a small sorted list. It deliberately
 * has no index structure (the labelled sets here are at most tens of thousands of rows) and never
 * trains anything. The training accuracy it reports is leave-one-out on the labelled set.
 */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "eval_internal.h"

#define KNN_SIM_FLOATS (4u << 20)   /* similarity block: at most 16 MB */

/* Rows of x (n,d) scaled to unit length into out (n,d). */
static void l2_rows(const float *x, float *out, int n, int d)
{
	for (int i = 0; i < n; i++) {
		const float *r = x + (size_t)i * d;
		double s = 0.0;
		for (int j = 0; j < d; j++)
			s += (double)r[j] * r[j];
		float inv = (float)(1.0 / fmax(sqrt(s), 1e-12));
		for (int j = 0; j < d; j++)
			out[(size_t)i * d + j] = r[j] * inv;
	}
}

/* Predict labels for the unit-norm queries q (nq,d) from the unit-norm labelled rows ref (nr,d).
 * self_exclude: query i is ref row i and must not vote for itself (leave-one-out).
 * Returns the number of correct predictions against yq, or < 0 (-ENOMEM, -ECANCELED). */
static int knn_count_correct(const EvalEnv *env, const float *ref, const int *yr, int nr,
                             const float *q, const int *yq, int nq, int d, int num_classes, int k,
                             float temperature, int self_exclude)
{
	if (k > nr - (self_exclude ? 1 : 0))
		k = nr - (self_exclude ? 1 : 0);
	if (k <= 0 || nq <= 0)
		return 0;
	int bq = (int)(KNN_SIM_FLOATS / (unsigned)nr);
	if (bq < 1)
		bq = 1;
	if (bq > 256)
		bq = 256;
	if (bq > nq)
		bq = nq;
	float *sims = eng_malloc((size_t)bq * nr * sizeof(float));
	float *topv = eng_malloc((size_t)k * sizeof(float));
	int *topi = eng_malloc((size_t)k * sizeof(int));
	double *votes = eng_malloc((size_t)num_classes * sizeof(double));
	int correct = 0;
	if (!sims || !topv || !topi || !votes) {
		correct = -ENOMEM;
		goto out;
	}
	for (int q0 = 0; q0 < nq; q0 += bq) {
		if (eval_should_stop(env)) {
			correct = -ECANCELED;
			goto out;
		}
		int m = nq - q0 < bq ? nq - q0 : bq;
		// sims (m,nr) = q[q0..q0+m) (m,d) . ref^T (d,nr)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nr, d, 1.0f, q + (size_t)q0 * d,
		            d, ref, d, 0.0f, sims, nr);
		for (int i = 0; i < m; i++) {
			const float *row = sims + (size_t)i * nr;
			int have = 0, self = self_exclude ? q0 + i : -1;
			for (int j = 0; j < nr; j++) {
				float v = row[j];
				if (j == self || (have == k && v <= topv[k - 1]))
					continue;
				int pos = have < k ? have++ : k - 1;
				while (pos > 0 && topv[pos - 1] < v) {
					topv[pos] = topv[pos - 1];
					topi[pos] = topi[pos - 1];
					pos--;
				}
				topv[pos] = v;
				topi[pos] = j;
			}
			for (int c = 0; c < num_classes; c++)
				votes[c] = 0.0;
			/* exp((s - s_max)/T): the same ranking as exp(s/T), without overflow for tiny T. */
			for (int t = 0; t < have; t++)
				votes[yr[topi[t]]] += exp((double)(topv[t] - topv[0]) / temperature);
			int best = 0;
			for (int c = 1; c < num_classes; c++)
				if (votes[c] > votes[best])
					best = c;
			correct += best == yq[q0 + i];
		}
	}
out:
	eng_free(sims);
	eng_free(topv);
	eng_free(topi);
	eng_free(votes);
	return correct;
}

int eval_knn_core(const EvalEnv *env, const float *xtr, const int *ytr, int ntr,
                  const float *xte, const int *yte, int nte, int d, int num_classes,
                  const EvalConfig *cfg, EvalResult *out, char *err, size_t errlen)
{
	if (ntr <= 0 || d <= 0 || num_classes < 2 || nte < 0 || !xtr || !ytr ||
	    (nte > 0 && (!xte || !yte))) {
		snprintf(err, errlen, "eval knn: bad arguments (%d labelled, %d test, %d features, %d "
		         "classes)", ntr, nte, d, num_classes);
		return -EINVAL;
	}
	for (int i = 0; i < ntr + nte; i++) {
		int y = i < ntr ? ytr[i] : yte[i - ntr];
		if (y < 0 || y >= num_classes) {
			snprintf(err, errlen, "eval knn: %s label %d at row %d is outside [0, %d)",
			         i < ntr ? "training" : "test", y, i < ntr ? i : i - ntr, num_classes);
			return -EINVAL;
		}
	}
	EvalConfig dflt;
	eval_config_default(&dflt, EVAL_PROTO_KNN);
	int k = cfg->k > 0 ? cfg->k : dflt.k;
	float temp = cfg->temperature > 0.0f ? cfg->temperature : dflt.temperature;
	float *ref = eng_malloc((size_t)ntr * d * sizeof(float));
	float *q = eng_malloc(((size_t)nte * d + 1) * sizeof(float));
	int rc = 0;
	if (!ref || !q) {
		rc = -ENOMEM;
		goto fail;
	}
	l2_rows(xtr, ref, ntr, d);
	l2_rows(xte, q, nte, d);
	int ct = knn_count_correct(env, ref, ytr, ntr, q, yte, nte, d, num_classes, k, temp, 0);
	if (ct < 0) {
		rc = ct;
		goto fail;
	}
	eval_progress(env, 1, 2, (double)ct / (nte ? nte : 1));
	int cl = knn_count_correct(env, ref, ytr, ntr, ref, ytr, ntr, d, num_classes, k, temp, 1);
	if (cl < 0) {
		rc = cl;
		goto fail;
	}
	out->test_accuracy = nte ? (double)ct / nte : NAN;
	out->train_accuracy = ntr > 1 ? (double)cl / ntr : NAN;
	out->labels = ntr;
	eval_progress(env, 2, 2, out->test_accuracy);
	eng_free(ref);
	eng_free(q);
	return 0;
fail:
	if (rc == -ECANCELED)
		snprintf(err, errlen, "eval knn: cancelled");
	else
		snprintf(err, errlen, "eval knn: out of memory (%d labelled x %d features)", ntr, d);
	eng_free(ref);
	eng_free(q);
	return rc;
}

int eval_knn_features(const float *xtr, const int *ytr, int ntr, const float *xte, const int *yte,
                      int nte, int d, int num_classes, const EvalConfig *cfg, EvalResult *out,
                      char *err, size_t errlen)
{
	EvalConfig c;
	eval_config_resolve_or_default(cfg, EVAL_PROTO_KNN, &c);
	memset(out, 0, sizeof *out);
	return eval_knn_core(NULL, xtr, ytr, ntr, xte, yte, nte, d, num_classes, &c, out, err,
	                     errlen);
}

int eval_knn_run(const EvalEnv *env, const EvalConfig *cfg, const int *idx, int n,
                 EvalResult *out, char *err, size_t errlen)
{
	const Dataset *ds = env->ds;
	EvalFeatures f;
	int rc = eval_frozen_features(env, idx, n, &f, err, errlen);
	if (rc == 0)
		rc = eval_knn_core(env, f.ftr, f.ytr, n, f.fte, ds->test.y, ds->test.n, f.dim,
		                   ds->num_classes, cfg, out, err, errlen);
	eval_features_free(&f);
	return rc;
}

/* ---- the protocol's registry entry (eval.h) --------------------------------------------------- */

static const ParamDef knn_keys[] = {
	{ "k", PARAM_INTEGER, .def = 20, .min = 1, .max = 1000, .help = "neighbours that vote",
	  PARAM_AT(EvalConfig, k) },
	{ "temperature", PARAM_NUMBER, .def = 0.07, .min = 0, .max = 100, .flags = PARAM_MIN_EXCLUSIVE,
	  .help = "vote weight exp(similarity / temperature)", PARAM_AT(EvalConfig, temperature) },
};

const EvalProtocolDef eval_protocol_knn = {
	.name = "knn",
	.protocol = EVAL_PROTO_KNN,
	.summary = "cosine k-nearest-neighbours on frozen features, temperature-weighted votes",
	.needs_labels = 1,
	.keys = knn_keys,
	.n_keys = EVAL_KEY_COUNT(knn_keys),
	.run = eval_knn_run,
};
