/* tsne.c - t-SNE with sparse input affinities and exact repulsion (see tsne.h), the exact kNN it
 * starts from, and trustworthiness. Plain loops over structure-of-arrays positions so the
 * all-pairs sums vectorise; every parallel loop gives each point to one chunk.
 *
 * Not here: anything about jobs, datasets or files (engine/methods/embed_map.c).
 */
#include "tsne.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "parallel.h"
#include "rng.h"

#define KNN_BLOCK 64      /* rows per sgemm block: fixed, so results do not depend on threads */
#define TSNE_REPORT 50    /* iterations between progress / stop checks */

/* The context's threads, or the calling thread alone when there is no context. */
static void pfor(Ctx *ctx, size_t n, size_t grain, parallel_fn fn, void *arg)
{
	if (ctx)
		parallel_for(ctx, n, grain, fn, arg);
	else
		fn(arg, 0, n, 0);
}

void tsne_config_default(TsneConfig *c)
{
	*c = (TsneConfig){ .perplexity = 30.0f, .iterations = 1000, .exaggeration_iters = 250,
	                   .early_exaggeration = 12.0f, .learning_rate = 0.0f, .seed = 0 };
}

float tsne_max_perplexity(int n)
{
	return n < 4 ? 0.0f : (float)(n - 2) / 3.0f;
}

/* ---- exact kNN -------------------------------------------------------------------------------- */

typedef struct KnnJob {
	const float *x;    /* (n,d) */
	const float *sq;   /* (n) squared norms */
	int n, d, k;
	int *idx;          /* (n,k) */
	float *d2;         /* (n,k) */
	atomic_int failed;
} KnnJob;

static void knn_part(void *arg, size_t b0, size_t b1, int tid)
{
	KnnJob *j = arg;
	int n = j->n, d = j->d, k = j->k;
	float *dot = malloc((size_t)KNN_BLOCK * n * sizeof(float));
	(void)tid;
	if (!dot) {
		atomic_store(&j->failed, 1);
		return;
	}
	for (size_t b = b0; b < b1; b++) {
		int r0 = (int)b * KNN_BLOCK, rn = n - r0 < KNN_BLOCK ? n - r0 : KNN_BLOCK;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rn, n, d, 1.0f, j->x + (size_t)r0 * d,
		            d, j->x, d, 0.0f, dot, n);
		for (int r = 0; r < rn; r++) {
			int i = r0 + r, cnt = 0;
			int *bi = j->idx + (size_t)i * k;
			float *bd = j->d2 + (size_t)i * k;
			const float *dr = dot + (size_t)r * n;
			for (int q = 0; q < n; q++) {
				if (q == i)
					continue;
				float dist = j->sq[i] + j->sq[q] - 2.0f * dr[q];
				if (dist < 0.0f)
					dist = 0.0f;
				if (cnt == k && !(dist < bd[k - 1]))
					continue;
				/* insert after every entry <= dist: equal distances stay in index order */
				int pos = cnt < k ? cnt++ : k - 1;
				while (pos > 0 && bd[pos - 1] > dist) {
					bd[pos] = bd[pos - 1];
					bi[pos] = bi[pos - 1];
					pos--;
				}
				bd[pos] = dist;
				bi[pos] = q;
			}
		}
	}
	free(dot);
}

int tsne_knn(Ctx *ctx, const float *x, int n, int d, int k, int *idx, float *d2)
{
	if (!x || !idx || n < 2 || d < 1 || k < 1 || k >= n)
		return -EINVAL;
	float *sq = eng_malloc((size_t)n * sizeof(float));
	float *own = d2 ? NULL : eng_malloc((size_t)n * k * sizeof(float));
	if (!sq || (!d2 && !own)) {
		eng_free(sq);
		eng_free(own);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		const float *xi = x + (size_t)i * d;
		float s = 0.0f;
		for (int c = 0; c < d; c++)
			s += xi[c] * xi[c];
		sq[i] = s;
	}
	KnnJob j = { .x = x, .sq = sq, .n = n, .d = d, .k = k, .idx = idx, .d2 = d2 ? d2 : own };
	atomic_init(&j.failed, 0);
	pfor(ctx, (size_t)((n + KNN_BLOCK - 1) / KNN_BLOCK), 1, knn_part, &j);
	eng_free(sq);
	eng_free(own);
	return atomic_load(&j.failed) ? -ENOMEM : 0;
}

/* ---- input affinities ------------------------------------------------------------------------- */

typedef struct PerpJob {
	const float *d2;   /* (n,k) squared distances, nearest first */
	float *p;          /* (n,k) conditional probabilities p(j|i) */
	int k;
	double log_perp;
} PerpJob;

/* Bisection on the precision beta of each row until the entropy of p(.|i) is log(perplexity). */
static void perp_part(void *arg, size_t i0, size_t i1, int tid)
{
	PerpJob *j = arg;
	int k = j->k;
	(void)tid;
	for (size_t i = i0; i < i1; i++) {
		const float *d = j->d2 + i * k;
		float *p = j->p + i * k;
		double beta = 1.0, lo = -INFINITY, hi = INFINITY;
		for (int step = 0; step < 100; step++) {
			double sum = 0.0, sum_dp = 0.0;
			for (int m = 0; m < k; m++) {
				double v = exp(-(double)d[m] * beta);
				p[m] = (float)v;
				sum += v;
				sum_dp += (double)d[m] * v;
			}
			if (sum <= 0.0)
				sum = 1e-300;
			double h = log(sum) + beta * sum_dp / sum;
			for (int m = 0; m < k; m++)
				p[m] = (float)(p[m] / sum);
			double diff = h - j->log_perp;
			if (fabs(diff) < 1e-5)
				break;
			if (diff > 0) {   /* too flat: sharpen */
				lo = beta;
				beta = isinf(hi) ? beta * 2.0 : (beta + hi) / 2.0;
			} else {
				hi = beta;
				beta = isinf(lo) ? beta / 2.0 : (beta + lo) / 2.0;
			}
		}
	}
}

typedef struct Sparse {
	int *rp;      /* (n+1) row starts */
	int *col;     /* (nnz) */
	float *val;   /* (nnz) */
} Sparse;

static void sparse_free(Sparse *s)
{
	eng_free(s->rp);
	eng_free(s->col);
	eng_free(s->val);
}

/* P = (P_cond + P_cond^T) / sum, rows sorted by column, duplicates merged. */
static int symmetrise(const int *idx, const float *pc, int n, int k, Sparse *out)
{
	int *cnt = eng_calloc((size_t)n + 1, sizeof(int));
	int *fill = eng_malloc((size_t)n * sizeof(int));
	size_t nnz = (size_t)2 * n * k;
	Sparse s = { eng_malloc(((size_t)n + 1) * sizeof(int)), eng_malloc(nnz * sizeof(int)),
	             eng_malloc(nnz * sizeof(float)) };
	if (!cnt || !fill || !s.rp || !s.col || !s.val) {
		eng_free(cnt);
		eng_free(fill);
		sparse_free(&s);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++)
		for (int m = 0; m < k; m++) {
			cnt[i]++;
			cnt[idx[(size_t)i * k + m]]++;
		}
	s.rp[0] = 0;
	for (int i = 0; i < n; i++) {
		s.rp[i + 1] = s.rp[i] + cnt[i];
		fill[i] = s.rp[i];
	}
	for (int i = 0; i < n; i++)
		for (int m = 0; m < k; m++) {
			int q = idx[(size_t)i * k + m];
			float v = pc[(size_t)i * k + m];
			s.col[fill[i]] = q;
			s.val[fill[i]++] = v;
			s.col[fill[q]] = i;
			s.val[fill[q]++] = v;
		}
	/* sort each row by column (insertion sort: rows are short), merge equal columns */
	int w = 0;
	double total = 0.0;
	for (int i = 0; i < n; i++) {
		int a = s.rp[i], b = s.rp[i + 1];
		for (int e = a + 1; e < b; e++) {
			int c = s.col[e];
			float v = s.val[e];
			int f = e;
			while (f > a && s.col[f - 1] > c) {
				s.col[f] = s.col[f - 1];
				s.val[f] = s.val[f - 1];
				f--;
			}
			s.col[f] = c;
			s.val[f] = v;
		}
		s.rp[i] = w;
		for (int e = a; e < b; e++) {
			if (w > s.rp[i] && s.col[w - 1] == s.col[e]) {
				s.val[w - 1] += s.val[e];
			} else {
				s.col[w] = s.col[e];
				s.val[w++] = s.val[e];
			}
			total += s.val[e];
		}
	}
	s.rp[n] = w;
	for (int e = 0; e < w; e++)
		s.val[e] = (float)(s.val[e] / total);
	eng_free(cnt);
	eng_free(fill);
	*out = s;
	return 0;
}

/* ---- gradient --------------------------------------------------------------------------------- */

typedef struct GradJob {
	const float *yx, *yy;   /* (n) positions */
	const Sparse *p;
	int n;
	float *rx, *ry;         /* (n) repulsion sums: sum_j q^2 (y_i - y_j) */
	float *ax, *ay;         /* (n) attraction sums: sum_j p_ij q (y_i - y_j) */
	double *z;              /* (n) row sums of q (i != j) */
} GradJob;

static void grad_part(void *arg, size_t i0, size_t i1, int tid)
{
	GradJob *g = arg;
	const float *yx = g->yx, *yy = g->yy;
	int n = g->n;
	(void)tid;
	for (size_t i = i0; i < i1; i++) {
		float xi = yx[i], yi = yy[i], sx = 0.0f, sy = 0.0f, z = 0.0f;
		for (int j = 0; j < n; j++) {
			float dx = xi - yx[j], dy = yi - yy[j];
			float q = 1.0f / (1.0f + dx * dx + dy * dy);
			float q2 = q * q;
			z += q;
			sx += q2 * dx;
			sy += q2 * dy;
		}
		g->z[i] = (double)z - 1.0;   /* j == i contributed q = 1 and no force */
		g->rx[i] = sx;
		g->ry[i] = sy;
		float ax = 0.0f, ay = 0.0f;
		for (int e = g->p->rp[i]; e < g->p->rp[i + 1]; e++) {
			int j = g->p->col[e];
			float dx = xi - yx[j], dy = yi - yy[j];
			float w = g->p->val[e] / (1.0f + dx * dx + dy * dy);
			ax += w * dx;
			ay += w * dy;
		}
		g->ax[i] = ax;
		g->ay[i] = ay;
	}
}

/* ---- the run ---------------------------------------------------------------------------------- */

static void gd_update(float *pos, float *upd, float *gain, float grad, float momentum, float lr)
{
	if ((*upd > 0.0f) != (grad > 0.0f))
		*gain += 0.2f;
	else
		*gain *= 0.8f;
	if (*gain < 0.01f)
		*gain = 0.01f;
	*upd = momentum * *upd - lr * *gain * grad;
	*pos += *upd;
}

int tsne_run(Ctx *ctx, const float *x, int n, int d, const TsneConfig *cfg, float *y, char *err,
             size_t errlen)
{
	if (!x || !y || !cfg || n < 4 || d < 1) {
		snprintf(err, errlen, "t-SNE: needs at least 4 points, got %d", n);
		return -EINVAL;
	}
	if (!(cfg->perplexity >= 1.0f) || cfg->perplexity > tsne_max_perplexity(n)) {
		snprintf(err, errlen, "t-SNE: perplexity must be in [1, %.1f] for %d points, got %g",
		         (double)tsne_max_perplexity(n), n, (double)cfg->perplexity);
		return -EINVAL;
	}
	if (cfg->iterations < 1 || cfg->exaggeration_iters < 0) {
		snprintf(err, errlen, "t-SNE: iterations must be >= 1, got %d", cfg->iterations);
		return -EINVAL;
	}
	int k = (int)(3.0f * cfg->perplexity + 1.0f);
	if (k > n - 1)
		k = n - 1;
	int rc = -ENOMEM;
	int *idx = eng_malloc((size_t)n * k * sizeof(int));
	float *d2 = eng_malloc((size_t)n * k * sizeof(float));
	float *pc = eng_malloc((size_t)n * k * sizeof(float));
	float *buf = eng_calloc((size_t)n * 10, sizeof(float));
	double *z = eng_malloc((size_t)n * sizeof(double));
	Sparse P = { 0 };
	if (!idx || !d2 || !pc || !buf || !z)
		goto out;
	if ((rc = tsne_knn(ctx, x, n, d, k, idx, d2)) < 0)
		goto out;
	PerpJob pj = { .d2 = d2, .p = pc, .k = k, .log_perp = log((double)cfg->perplexity) };
	pfor(ctx, (size_t)n, 64, perp_part, &pj);
	if ((rc = symmetrise(idx, pc, n, k, &P)) < 0)
		goto out;

	float *yx = buf, *yy = buf + n, *ux = buf + 2 * n, *uy = buf + 3 * n, *gx = buf + 4 * n,
	      *gy = buf + 5 * n, *rx = buf + 6 * n, *ry = buf + 7 * n, *ax = buf + 8 * n,
	      *ay = buf + 9 * n;
	Rng rng;
	rng_seed(&rng, cfg->seed);
	for (int i = 0; i < n; i++) {
		yx[i] = 1e-4f * rng_normal(&rng);
		yy[i] = 1e-4f * rng_normal(&rng);
		gx[i] = gy[i] = 1.0f;   /* gains */
	}
	float lr = cfg->learning_rate > 0 ? cfg->learning_rate
	                                  : fmaxf((float)n / cfg->early_exaggeration / 4.0f, 50.0f);
	GradJob gj = { .yx = yx, .yy = yy, .p = &P, .n = n, .rx = rx, .ry = ry, .ax = ax, .ay = ay,
	               .z = z };
	for (int it = 0; it < cfg->iterations; it++) {
		if (it % TSNE_REPORT == 0) {
			if (cfg->should_stop && cfg->should_stop(cfg->user)) {
				snprintf(err, errlen, "t-SNE: cancelled");
				rc = -ECANCELED;
				goto out;
			}
			if (cfg->on_progress)
				cfg->on_progress(cfg->user, it, cfg->iterations);
		}
		int early = it < cfg->exaggeration_iters;
		float exag = early ? cfg->early_exaggeration : 1.0f;
		float momentum = early ? 0.5f : 0.8f;
		pfor(ctx, (size_t)n, 64, grad_part, &gj);
		double zsum = 0.0;
		for (int i = 0; i < n; i++)
			zsum += z[i];
		float inv_z = (float)(1.0 / (zsum > 1e-30 ? zsum : 1e-30));
		for (int i = 0; i < n; i++) {
			float grx = 4.0f * (exag * ax[i] - rx[i] * inv_z);
			float gry = 4.0f * (exag * ay[i] - ry[i] * inv_z);
			gd_update(&yx[i], &ux[i], &gx[i], grx, momentum, lr);
			gd_update(&yy[i], &uy[i], &gy[i], gry, momentum, lr);
		}
	}
	for (int i = 0; i < n; i++) {
		if (!isfinite(yx[i]) || !isfinite(yy[i])) {
			snprintf(err, errlen, "t-SNE: the map diverged (point %d is not finite)", i);
			rc = -EINVAL;
			goto out;
		}
		y[2 * i] = yx[i];
		y[2 * i + 1] = yy[i];
	}
	if (cfg->on_progress)
		cfg->on_progress(cfg->user, cfg->iterations, cfg->iterations);
	rc = 0;
out:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "t-SNE: out of memory for %d points", n);
	sparse_free(&P);
	eng_free(idx);
	eng_free(d2);
	eng_free(pc);
	eng_free(buf);
	eng_free(z);
	return rc;
}

/* ---- trustworthiness -------------------------------------------------------------------------- */

typedef struct RankKey {
	double d;
	int j;
} RankKey;

static int rank_cmp(const void *a, const void *b)
{
	const RankKey *x = a, *y = b;
	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return (x->j > y->j) - (x->j < y->j);
}

static double sqdist(const float *a, const float *b, int d)
{
	double s = 0.0;
	for (int c = 0; c < d; c++) {
		double t = (double)a[c] - b[c];
		s += t * t;
	}
	return s;
}

double tsne_trustworthiness(const float *x, int n, int d, const float *y, int dy, int k)
{
	if (!x || !y || n < 3 || k < 1 || 2 * k >= n)
		return -1.0;
	RankKey *keys = malloc((size_t)n * sizeof *keys);
	int *rank = malloc((size_t)n * sizeof *rank);
	int *nn = malloc((size_t)n * sizeof *nn);
	double total = 0.0, result = -1.0;
	if (!keys || !rank || !nn)
		goto out;
	for (int i = 0; i < n; i++) {
		/* rank of every point in the input space (1 = nearest) */
		for (int j = 0; j < n; j++)
			keys[j] = (RankKey){ j == i ? -1.0 : sqdist(x + (size_t)i * d, x + (size_t)j * d, d), j };
		qsort(keys, (size_t)n, sizeof *keys, rank_cmp);
		for (int r = 0; r < n; r++)
			rank[keys[r].j] = r;   /* keys[0] is i itself */
		/* the k nearest in the map */
		for (int j = 0; j < n; j++)
			keys[j] = (RankKey){ j == i ? -1.0 : sqdist(y + (size_t)i * dy, y + (size_t)j * dy, dy), j };
		qsort(keys, (size_t)n, sizeof *keys, rank_cmp);
		for (int r = 1; r <= k; r++)
			nn[r - 1] = keys[r].j;
		for (int m = 0; m < k; m++)
			if (rank[nn[m]] > k)
				total += rank[nn[m]] - k;
	}
	result = 1.0 - total * (2.0 / ((double)n * k * (2.0 * n - 3.0 * k - 1.0)));
out:
	free(keys);
	free(rank);
	free(nn);
	return result;
}
