/* tsne.h - t-SNE: a 2-D map of high-dimensional points that keeps each point's neighbours near it,
 * plus the exact nearest neighbours and the trustworthiness score used to judge such a map.
 *
 * The input affinities are sparse, as in Barnes-Hut t-SNE: each point's conditional distribution
 * over its 3 * perplexity nearest neighbours (squared L2), calibrated by bisection to the
 * perplexity, then symmetrised. The map's repulsive forces are exact (all pairs, O(n^2) per
 * iteration, split across the context's threads), which for the few thousand points of a job's
 * embedding map is fast enough (bench/embed_map.py measures it) and has no approximation error.
 * Optimisation follows the reference recipe: early exaggeration 12 for 250 iterations at momentum
 * 0.5, then momentum 0.8, per-coordinate gains, learning rate max(n / 12 / 4, 50).
 *
 * Deterministic: the same input, config and seed give the same map on any thread count (every
 * point's sums run in a fixed order on one thread; blocks have fixed boundaries).
 *
 *   TsneConfig tc; tsne_config_default(&tc); tc.seed = 7;
 *   float *y = malloc(n * 2 * sizeof *y);              // y (n,2)
 *   if (tsne_run(ctx, x, n, d, &tc, y, err, sizeof err) < 0) ...   // x (n,d)
 *   double t = tsne_trustworthiness(x, n, d, y, 2, 10);
 *
 * Not here: Barnes-Hut or FFT approximations of the repulsion (needed well beyond ~10k points),
 * metrics other than L2, UMAP.
 */
#ifndef SSLD_ENGINE_TSNE_H
#define SSLD_ENGINE_TSNE_H

#include <stddef.h>
#include <stdint.h>

#include "ctx.h"

typedef struct TsneConfig {
	float perplexity;          /* effective number of neighbours, default 30; must be < (n-1)/3 */
	int iterations;            /* total gradient steps, default 1000 */
	int exaggeration_iters;    /* early exaggeration phase, default 250 */
	float early_exaggeration;  /* default 12 */
	float learning_rate;       /* 0 = automatic: max(n / early_exaggeration / 4, 50) */
	uint64_t seed;             /* initial positions: N(0, 1e-4^2), drawn from this seed */
	/* Optional: called every 50 iterations; a nonzero should_stop ends the run (-ECANCELED). */
	void (*on_progress)(void *user, int iteration, int iterations);
	int (*should_stop)(void *user);
	void *user;
} TsneConfig;

void tsne_config_default(TsneConfig *c);

/* The largest perplexity n points support (each needs 3 * perplexity neighbours). */
float tsne_max_perplexity(int n);

/* ctx: the threads to run on (parallel.h); NULL runs on the calling thread alone. */

/* Map x (n,d) to y (n,2). n >= 4. 0, or a negative errno with err naming the problem
 * (-EINVAL bad arguments, -ENOMEM, -ECANCELED). */
int tsne_run(Ctx *ctx, const float *x, int n, int d, const TsneConfig *cfg, float *y, char *err,
             size_t errlen);

/* The k nearest neighbours of every point of x (n,d) by L2 distance, itself excluded, nearest
 * first (ties by index): idx (n,k), and their squared distances in d2 (n,k) unless NULL.
 * 0 or -EINVAL / -ENOMEM. */
int tsne_knn(Ctx *ctx, const float *x, int n, int d, int k, int *idx, float *d2);

/* Trustworthiness of the map y (n,dy) of x (n,d) with k neighbours, as in scikit-learn
 * (sklearn.manifold.trustworthiness, euclidean): 1 - 2 / (n k (2n - 3k - 1)) times the sum, over
 * every point, of (rank in x - k) for each of its k map neighbours that is not among its k nearest
 * in x. 1 = every map neighbour is a true neighbour. k < n / 2. Returns -1 on bad arguments or out
 * of memory. O(n^2 log n): meant for checks and benchmarks. */
double tsne_trustworthiness(const float *x, int n, int d, const float *y, int dy, int k);

#endif
