/* ssl_health.c - collapse and quality signals of SSL embeddings (see ssl_health.h): normalised
 * per-dimension std, effective rank, alignment and uniformity of a batch, a per-method monitor
 * that reports them every N steps, and the online kNN monitor the runner calls.
 *
 * It measures; it does not decide what to do about a collapse (the runner warns, the user acts),
 * and it never touches the tape: inputs are plain float arrays (forward values of the step).
 * Everything runs in double precision on the CPU without BLAS; the sizes are small (a batch of at
 * most a few hundred rows, the rank on at most SSL_HEALTH_MAX_RANK of them).
 */
#include "ssl_health.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "eval.h"

struct SslMonitor {
	int max_n, d, every;
	long calls;
	void *scratch;
	SslHealth last;
};

static int rank_rows(int n)
{
	return n < SSL_HEALTH_MAX_RANK ? n : SSL_HEALTH_MAX_RANK;
}

static int rank_dim(int n, int d)
{
	int r = rank_rows(n);
	return d < r ? d : r;
}

size_t ssl_health_scratch_bytes(int n, int d)
{
	if (n < 1 || d < 1)
		return 0;
	size_t m = (size_t)rank_dim(n, d);
	/* u1, u2 (n,d); the centred rows (r,d); the m x m matrix; column means (d) */
	return sizeof(double) * ((size_t)2 * n * d + (size_t)rank_rows(n) * d + m * m + (size_t)d);
}

/* ---------------------------------------------------------------------------------------------- */
/* Eigenvalues of a symmetric matrix                                                              */

/* Cyclic Jacobi: a (m,m) symmetric, destroyed; on return its diagonal holds the eigenvalues.
 * Converges quadratically; a 128x128 covariance takes a handful of sweeps. */
static void jacobi_eigenvalues(double *a, int m)
{
	double total = 0;
	for (int i = 0; i < m * m; i++)
		total += a[i] * a[i];
	if (total == 0)
		return;
	for (int sweep = 0; sweep < 60; sweep++) {
		double off = 0;
		for (int p = 0; p < m; p++)
			for (int q = p + 1; q < m; q++)
				off += a[p * m + q] * a[p * m + q];
		if (off <= 1e-24 * total)
			break;
		for (int p = 0; p < m; p++) {
			for (int q = p + 1; q < m; q++) {
				double apq = a[p * m + q];
				if (fabs(apq) < 1e-300)
					continue;
				double theta = (a[q * m + q] - a[p * m + p]) / (2 * apq);
				double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
				double c = 1 / sqrt(t * t + 1), s = t * c;
				for (int k = 0; k < m; k++) {        /* columns p, q */
					double akp = a[k * m + p], akq = a[k * m + q];
					a[k * m + p] = c * akp - s * akq;
					a[k * m + q] = s * akp + c * akq;
				}
				for (int k = 0; k < m; k++) {        /* rows p, q */
					double apk = a[p * m + k], aqk = a[q * m + k];
					a[p * m + k] = c * apk - s * aqk;
					a[q * m + k] = s * apk + c * aqk;
				}
			}
		}
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* One measurement                                                                                */

/* Rows of z (n,d) to unit length into u (n,d) doubles. */
static void normalise_rows(const float *z, int n, int d, double *u)
{
	for (int i = 0; i < n; i++) {
		const float *zi = z + (size_t)i * d;
		double *ui = u + (size_t)i * d, nn = 0;
		for (int j = 0; j < d; j++)
			nn += (double)zi[j] * zi[j];
		double inv = nn > 1e-24 ? 1 / sqrt(nn) : 0;
		for (int j = 0; j < d; j++)
			ui[j] = zi[j] * inv;
	}
}

// u (n,d) unit rows -> exp(entropy of the normalised singular values of the centred first r rows)
static double effective_rank(const double *u, int n, int d, double *x, double *a, double *mean)
{
	int r = rank_rows(n), m = rank_dim(n, d);
	for (int j = 0; j < d; j++)
		mean[j] = 0;
	for (int i = 0; i < r; i++)
		for (int j = 0; j < d; j++)
			mean[j] += u[(size_t)i * d + j] / r;
	double trace = 0;
	for (int i = 0; i < r; i++)
		for (int j = 0; j < d; j++) {
			double v = u[(size_t)i * d + j] - mean[j];
			x[(size_t)i * d + j] = v;
			trace += v * v;
		}
	/* A batch whose rows coincide has no spread to measure: rank 1 (collapsed). */
	if (trace / r < 1e-8)
		return 1.0;
	if (d <= r) { /* covariance X^T X (d,d) */
		for (int p = 0; p < d; p++)
			for (int q = p; q < d; q++) {
				double s = 0;
				for (int i = 0; i < r; i++)
					s += x[(size_t)i * d + p] * x[(size_t)i * d + q];
				a[p * m + q] = a[q * m + p] = s;
			}
	} else {      /* Gram X X^T (r,r): the same non-zero spectrum */
		for (int p = 0; p < r; p++)
			for (int q = p; q < r; q++) {
				double s = 0;
				for (int j = 0; j < d; j++)
					s += x[(size_t)p * d + j] * x[(size_t)q * d + j];
				a[p * m + q] = a[q * m + p] = s;
			}
	}
	jacobi_eigenvalues(a, m);
	double sum = 0;
	for (int i = 0; i < m; i++) {
		double l = a[i * m + i];
		sum += l > 0 ? sqrt(l) : 0;
	}
	if (sum <= 0)
		return 1.0;
	double h = 0;
	for (int i = 0; i < m; i++) {
		double l = a[i * m + i];
		double p = (l > 0 ? sqrt(l) : 0) / sum;
		if (p > 0)
			h -= p * log(p);
	}
	return exp(h);
}

int ssl_health_compute(const float *z1, const float *z2, int n, int d, void *scratch,
                       SslHealth *out)
{
	if (n < 2 || d < 1 || !z1 || !scratch || !out)
		return -EINVAL;
	double *u1 = scratch, *u2 = u1 + (size_t)n * d, *x = u2 + (size_t)n * d;
	double *a = x + (size_t)rank_rows(n) * d;
	int m = rank_dim(n, d);
	double *mean = a + (size_t)m * m;
	memset(out, 0, sizeof *out);
	out->n = n;
	out->d = d;
	normalise_rows(z1, n, d, u1);

	/* Per-dimension std (unbiased), scaled by sqrt(d) so isotropic unit vectors give ~1. */
	double smin = INFINITY, ssum = 0;
	for (int j = 0; j < d; j++) {
		double mu = 0, var = 0;
		for (int i = 0; i < n; i++)
			mu += u1[(size_t)i * d + j];
		mu /= n;
		for (int i = 0; i < n; i++) {
			double v = u1[(size_t)i * d + j] - mu;
			var += v * v;
		}
		double s = sqrt(var / (n - 1)) * sqrt((double)d);
		ssum += s;
		if (s < smin)
			smin = s;
	}
	out->std_mean = ssum / d;
	out->std_min = smin;

	/* Uniformity: log mean over pairs i<j of exp(-2 ||u_i - u_j||^2), ||.||^2 = 2 - 2 u_i.u_j. */
	double acc = 0;
	long pairs = 0;
	for (int i = 0; i < n; i++)
		for (int k = i + 1; k < n; k++) {
			const double *ui = u1 + (size_t)i * d, *uk = u1 + (size_t)k * d;
			double dot = 0;
			for (int j = 0; j < d; j++)
				dot += ui[j] * uk[j];
			double sq = 2 - 2 * dot;
			acc += exp(-2 * (sq > 0 ? sq : 0));
			pairs++;
		}
	out->uniformity = log(acc / (double)pairs);

	if (z2) {
		normalise_rows(z2, n, d, u2);
		double al = 0;
		for (int i = 0; i < n; i++) {
			double sq = 0;
			for (int j = 0; j < d; j++) {
				double v = u1[(size_t)i * d + j] - u2[(size_t)i * d + j];
				sq += v * v;
			}
			al += sq;
		}
		out->alignment = al / n;
	} else {
		out->alignment = NAN;
	}
	out->eff_rank = effective_rank(u1, n, d, x, a, mean);
	out->collapsed = out->std_mean < SSL_HEALTH_STD_FLOOR || out->eff_rank < SSL_HEALTH_RANK_FLOOR;
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Monitor                                                                                        */

int ssl_monitor_new(int max_n, int d, int every, SslMonitor **out)
{
	*out = NULL;
	if (max_n < 2 || d < 1 || every < 0)
		return -EINVAL;
	SslMonitor *m = eng_calloc(1, sizeof *m);
	if (!m)
		return -ENOMEM;
	m->max_n = max_n;
	m->d = d;
	m->every = every;
	if (every > 0) {
		m->scratch = eng_malloc(ssl_health_scratch_bytes(max_n, d));
		if (!m->scratch) {
			eng_free(m);
			return -ENOMEM;
		}
	}
	*out = m;
	return 0;
}

void ssl_monitor_free(SslMonitor *m)
{
	if (!m)
		return;
	eng_free(m->scratch);
	eng_free(m);
}

int ssl_monitor_observe(SslMonitor *m, const float *z1, const float *z2, int n,
                        const MetricSink *sink)
{
	if (!m || m->every <= 0)
		return 0;
	long call = m->calls++;
	if (call % m->every != 0)
		return 0;
	if (n > m->max_n)
		n = m->max_n;
	if (ssl_health_compute(z1, z2, n, m->d, m->scratch, &m->last) < 0)
		return 0;
	const SslHealth *h = &m->last;
	metric_put(sink, "health/std_mean", h->std_mean);
	metric_put(sink, "health/std_min", h->std_min);
	metric_put(sink, "health/eff_rank", h->eff_rank);
	if (z2)
		metric_put(sink, "health/alignment", h->alignment);
	metric_put(sink, "health/uniformity", h->uniformity);
	metric_put(sink, "collapsed", h->collapsed ? 1.0 : 0.0);
	return 1;
}

const SslHealth *ssl_monitor_last(const SslMonitor *m)
{
	return &m->last;
}

const SslHealthConfig *ssl_health_config(const PretextMethod *m, const void *config)
{
	if (!m || !m->ssl_health || !config)
		return NULL;
	return (const SslHealthConfig *)((const char *)config + m->health_offset);
}

/* ---------------------------------------------------------------------------------------------- */
/* Online kNN                                                                                     */

int ssl_health_knn(Encoder *enc, const Dataset *ds, int n_bank, int n_query, uint64_t seed,
                   double *acc, char *err, size_t errlen)
{
	const Split *s = &ds->train;
	if (ds->num_classes < 2 || !s->x || !s->y)
		return snprintf(err, errlen, "knn monitor: the dataset has no labelled samples"), -EINVAL;
	if (s->n < 4)
		return snprintf(err, errlen, "knn monitor: %d training samples are too few", s->n), -EINVAL;
	if (n_bank + n_query > s->n) {   /* small datasets: split them in two thirds / one third */
		n_query = s->n / 3;
		n_bank = s->n - n_query;
	}
	int n = n_bank + n_query, rc = -ENOMEM;
	int *idx = eng_malloc((size_t)n * sizeof(int)), *yb = eng_malloc((size_t)n * sizeof(int));
	float *fb = NULL, *fq = NULL;
	if (!idx || !yb)
		goto out;
	for (int i = 0; i < n_bank; i++)
		idx[i] = i;
	for (int i = 0; i < n_query; i++)
		idx[n_bank + i] = s->n - n_query + i;
	for (int i = 0; i < n; i++)
		yb[i] = s->y[idx[i]];
	fb = eval_features(enc, ds, s, idx, n_bank, 256, seed);
	fq = eval_features(enc, ds, s, idx + n_bank, n_query, 256, seed);
	if (!fb || !fq)
		goto out;
	EvalConfig cfg;
	eval_config_default(&cfg, EVAL_PROTO_KNN);
	cfg.k = 20;
	cfg.temperature = 0.07f;
	EvalResult r;
	rc = eval_knn_features(fb, yb, n_bank, fq, yb + n_bank, n_query, encoder_out_dim(enc),
	                       ds->num_classes, &cfg, &r, err, errlen);
	if (rc == 0)
		*acc = r.test_accuracy;
out:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "knn monitor: out of memory for %d samples", n);
	eng_free(fq);
	eng_free(fb);
	eng_free(yb);
	eng_free(idx);
	return rc;
}

double ssl_pair_cosine(const float *z1, const float *z2, int n, int d)
{
	double sum = 0;
	for (int i = 0; i < n; i++) {
		const float *a = z1 + (size_t)i * d, *b = z2 + (size_t)i * d;
		double ab = 0, aa = 0, bb = 0;
		for (int j = 0; j < d; j++) {
			ab += a[j] * b[j];
			aa += a[j] * a[j];
			bb += b[j] * b[j];
		}
		sum += ab / (sqrt(aa * bb) + 1e-12);
	}
	return n > 0 ? sum / n : 0;
}
