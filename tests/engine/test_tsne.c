/* test_tsne.c - t-SNE (engine/tsne.h) on 5 Gaussian clusters in 50-D: the map keeps neighbours
 * (trustworthiness at k = 10 above 0.9, clusters separate: each point's map neighbours share its
 * cluster), the same seed gives the same map bit for bit on one and two threads, another seed a
 * different one; the exact kNN against a plain loop; trustworthiness of a perfect and of a random
 * map; bad arguments are refused with a message naming them.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "rng.h"
#include "tsne.h"
#include "check.h"

enum { N = 500, D = 50, CLUSTERS = 5 };

static void make_clusters(float *x, int *label, uint64_t seed)
{
	Rng r;
	rng_seed(&r, seed);
	float centre[CLUSTERS][D];
	for (int c = 0; c < CLUSTERS; c++)
		for (int j = 0; j < D; j++)
			centre[c][j] = 4.0f * rng_normal(&r);
	for (int i = 0; i < N; i++) {
		label[i] = i % CLUSTERS;
		for (int j = 0; j < D; j++)
			x[i * D + j] = centre[label[i]][j] + rng_normal(&r);
	}
}

static int run_map(const float *x, int threads, uint64_t seed, float *y)
{
	char err[256] = "";
	Ctx *ctx = ctx_new(1);
	ctx_set_threads(ctx, threads);
	TsneConfig tc;
	tsne_config_default(&tc);
	tc.seed = seed;
	int rc = tsne_run(ctx, x, N, D, &tc, y, err, sizeof err);
	CHECK(rc == 0, "tsne_run: %s", err);
	ctx_free(ctx);
	return rc;
}

/* Share of map neighbours (k = 10) in the point's own cluster. */
static double cluster_purity(const float *y, const int *label)
{
	static int idx[N * 10];
	Ctx *ctx = ctx_new(1);
	int rc = tsne_knn(ctx, y, N, 2, 10, idx, NULL);
	ctx_free(ctx);
	if (rc < 0)
		return -1;
	int same = 0;
	for (int i = 0; i < N; i++)
		for (int m = 0; m < 10; m++)
			same += label[idx[i * 10 + m]] == label[i];
	return (double)same / (N * 10);
}

static void test_knn(const float *x)
{
	enum { K = 7 };
	static int idx[N * K];
	static float d2[N * K];
	Ctx *ctx = ctx_new(1);
	ctx_set_threads(ctx, 2);
	CHECK(tsne_knn(ctx, x, N, D, K, idx, d2) == 0);
	ctx_free(ctx);
	int bad = 0;
	for (int i = 0; i < N; i += 37) {
		/* the k-th distance by a plain loop: nothing outside the list is nearer */
		for (int m = 0; m < K; m++)
			bad += idx[i * K + m] == i || (m > 0 && d2[i * K + m] < d2[i * K + m - 1]);
		for (int j = 0; j < N; j++) {
			double s = 0;
			for (int c = 0; c < D; c++)
				s += ((double)x[i * D + c] - x[j * D + c]) * ((double)x[i * D + c] - x[j * D + c]);
			int listed = j == i;
			for (int m = 0; m < K; m++)
				listed |= idx[i * K + m] == j;
			if (!listed && s < d2[i * K + K - 1] * (1 - 1e-3))
				bad++;
		}
	}
	CHECK(bad == 0, "%d kNN entries disagree with the plain loop", bad);
	CHECK(tsne_knn(NULL, x, N, D, N, idx, d2) == -EINVAL, "k >= n is refused");
}

static void test_trust_bounds(const float *x)
{
	/* the input itself is a perfect map; a random one is poor */
	CHECK(fabs(tsne_trustworthiness(x, N, D, x, D, 10) - 1.0) < 1e-12);
	static float yr[N * 2];
	Rng r;
	rng_seed(&r, 5);
	for (int i = 0; i < 2 * N; i++)
		yr[i] = rng_normal(&r);
	double t = tsne_trustworthiness(x, N, D, yr, 2, 10);
	CHECK(t > 0.3 && t < 0.75, "random map trustworthiness %.3f", t);
	CHECK(tsne_trustworthiness(x, N, D, yr, 2, N / 2) < 0, "k >= n/2 is refused");
}

static void test_bad_args(const float *x)
{
	static float y[N * 2];
	char err[256] = "";
	TsneConfig tc;
	tsne_config_default(&tc);
	tc.perplexity = 200;
	CHECK(tsne_run(NULL, x, N, D, &tc, y, err, sizeof err) == -EINVAL);
	CHECK(strstr(err, "perplexity") != NULL, "%s", err);
	tsne_config_default(&tc);
	CHECK(tsne_run(NULL, x, 3, D, &tc, y, err, sizeof err) == -EINVAL);
	CHECK(strstr(err, "at least 4 points") != NULL, "%s", err);
}

static int stop_now(void *user)
{
	return ++*(int *)user > 2;
}

static void test_cancel(const float *x)
{
	static float y[N * 2];
	char err[256] = "";
	int calls = 0;
	TsneConfig tc;
	tsne_config_default(&tc);
	tc.should_stop = stop_now;
	tc.user = &calls;
	CHECK(tsne_run(NULL, x, N, D, &tc, y, err, sizeof err) == -ECANCELED, "%s", err);
	CHECK(calls == 3, "stopped at the third check, got %d", calls);
}

int main(void)
{
	static float x[N * D], y1[N * 2], y2[N * 2], y3[N * 2];
	static int label[N];
	make_clusters(x, label, 11);
	test_knn(x);
	test_trust_bounds(x);
	test_bad_args(x);
	test_cancel(x);

	if (run_map(x, 1, 3, y1) == 0 && run_map(x, 2, 3, y2) == 0 && run_map(x, 2, 4, y3) == 0) {
		double t = tsne_trustworthiness(x, N, D, y1, 2, 10);
		double purity = cluster_purity(y1, label);
		printf("trustworthiness(k=10) %.4f, cluster purity %.4f\n", t, purity);
		CHECK(t > 0.9, "trustworthiness %.4f", t);
		CHECK(purity > 0.98, "cluster purity %.4f", purity);
		CHECK(memcmp(y1, y2, sizeof y1) == 0, "seed 3 on 1 and 2 threads gives different maps");
		CHECK(memcmp(y1, y3, sizeof y1) != 0, "seeds 3 and 4 give the same map");
	}
	return check_exit("test_tsne");
}
