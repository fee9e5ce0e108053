/* tsne_bench.c - seconds per t-SNE map (engine/tsne.h) at the sizes a job's embedding map uses:
 * 1,000 / 2,000 / 5,000 points of 10 Gaussian clusters in 128-D, 1,000 iterations, perplexity 30,
 * on 1 and 2 threads; wall and process CPU time per run, and the map's trustworthiness (k = 10).
 *
 *   bench/run tsne [N...]      (default sizes 1000 2000 5000)
 *
 * Prints a table and, as its last line, one JSON object. Not a quality check (test_tsne is).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ctx.h"
#include "rng.h"
#include "tsne.h"

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	int sizes[8] = { 1000, 2000, 5000 }, ns = argc > 1 ? 0 : 3;
	for (int a = 1; a < argc && ns < 8; a++)
		sizes[ns++] = atoi(argv[a]);
	enum { D = 128, CLUSTERS = 10 };
	printf("%-8s %-8s %10s %10s %16s\n", "points", "threads", "wall s", "CPU s", "trustworthiness");
	char json[4096];
	size_t at = 0;
	json[0] = 0;
	for (int s = 0; s < ns; s++) {
		int n = sizes[s];
		float *x = malloc((size_t)n * D * sizeof(float)), *y = malloc((size_t)n * 2 * sizeof(float));
		float *centre = malloc((size_t)CLUSTERS * D * sizeof(float));
		if (!x || !y || !centre || n < 40)
			return fprintf(stderr, "tsne_bench: bad size %d or out of memory\n", n), 1;
		Rng r;
		rng_seed(&r, 1);
		for (int i = 0; i < CLUSTERS * D; i++)
			centre[i] = 3.0f * rng_normal(&r);
		for (int i = 0; i < n; i++)
			for (int j = 0; j < D; j++)
				x[(size_t)i * D + j] = centre[(i % CLUSTERS) * D + j] + rng_normal(&r);
		for (int threads = 1; threads <= 2; threads++) {
			Ctx *ctx = ctx_new(1);
			ctx_set_threads(ctx, threads);
			TsneConfig tc;
			tsne_config_default(&tc);
			char err[256];
			double w0 = wall_s(), c0 = cpu_s();
			if (tsne_run(ctx, x, n, D, &tc, y, err, sizeof err) < 0)
				return fprintf(stderr, "tsne_bench: %s\n", err), 1;
			double w = wall_s() - w0, c = cpu_s() - c0;
			ctx_free(ctx);
			double t = n <= 2000 ? tsne_trustworthiness(x, n, D, y, 2, 10) : -1;
			char tw[32] = "null";
			if (t >= 0)
				snprintf(tw, sizeof tw, "%.4f", t);
			printf("%-8d %-8d %10.2f %10.2f %16s\n", n, threads, w, c, t >= 0 ? tw : "(not computed)");
			at += (size_t)snprintf(json + at, sizeof json - at,
			                       "%s{\"points\":%d,\"threads\":%d,\"wall_s\":%.2f,\"cpu_s\":%.2f,"
			                       "\"trustworthiness\":%s}", at ? "," : "", n, threads, w, c, tw);
		}
		free(x);
		free(y);
		free(centre);
	}
	printf("{\"bench\":\"tsne\",\"runs\":[%s]}\n", json);
	return 0;
}
