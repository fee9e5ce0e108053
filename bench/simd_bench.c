/* simd_bench.c - each kernel of engine/simd.h at each level this CPU runs, alone on one thread,
 * on the char Transformer's shapes (bench/compare_ssld.c: batch 32, context 128, d_model 128,
 * MLP 512, 4 heads): CPU ns per element (median of the repetitions) and the
 * speed-up over the sse level. What each kernel is worth in a whole step is its share of the step
 * (perf) times this speed-up; BENCHMARKS.md has both.
 *
 *   bench/run simd_bench [REPS]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "simd.h"

enum { B = 32, T = 128, D = 128, H = 4, MLP = 512 };
/* the Transformer's parameters: 4 blocks of qkv, proj, fc1, fc2 (weights and biases) */
enum { PARAMS = 4 * (3 * D * D + 3 * D + D * D + D + 2 * D * MLP + MLP + D) };
enum { K_GELU, K_GELU_BW, K_SOFTMAX, K_LN, K_LN_BW, K_ADAMW, K_COUNT };
static const char *const names[K_COUNT] = { "gelu", "gelu_backward", "softmax_row (causal)",
	                                     "layernorm_row", "layernorm_backward_row", "adamw" };
static const double elems[K_COUNT] = {
	(double)B * T * MLP, (double)B * T * MLP, (double)B * H * T * (T + 1) / 2,
	(double)B * T * D, (double)B * T * D, (double)PARAMS,
};

static float *buf(size_t n, float lo, float hi)
{
	float *p = malloc(n * sizeof(float));
	if (!p) {
		fprintf(stderr, "simd_bench: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		p[i] = lo + (hi - lo) * (float)((i * 2654435761u) % 1000003u) / 1000003.0f;
	return p;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const int reps = argc > 1 ? atoi(argv[1]) : 7;
	if (reps < 1 || reps > 100) {
		fprintf(stderr, "usage: %s [REPS 1..100]\n", argv[0]);
		return 2;
	}
	const size_t nm = (size_t)B * T * MLP, np = (size_t)B * H * T * T;
	float *x = buf(nm, -4.0f, 4.0f), *y = buf(nm, 0.0f, 1.0f), *g = buf(nm, -1.0f, 1.0f);
	float *p = buf(np, -3.0f, 3.0f), *d = buf(np, -1.0f, 1.0f), *p0 = buf(np, -3.0f, 3.0f);
	float *gamma = buf(D, 0.5f, 1.5f), *beta = buf(D, -0.5f, 0.5f), *dg = buf(D, 0, 0);
	float *db = buf(D, 0, 0), *mean = buf((size_t)B * T, 0, 0), *rstd = buf((size_t)B * T, 0, 0);
	float *aw = buf(PARAMS, -0.1f, 0.1f), *ag = buf(PARAMS, -0.01f, 0.01f);
	float *am = buf(PARAMS, -0.001f, 0.001f), *av = buf(PARAMS, 0.0f, 1e-4f);
	const SimdAdamW ap = { .decay = 1.0f - 1e-7f, .step = 1e-3f, .rbc2 = 1.0f, .b1 = 0.9f,
	                       .b2 = 0.999f, .eps = 1e-8f };
	double ns[SIMD_LEVEL_COUNT][K_COUNT] = { { 0 } };
	printf("CPU ns per element, median of %d, one thread (speed-up over sse)\n", reps);
	printf("%-24s", "kernel");
	for (int l = 0; l <= simd_cpu_level(); l++)
		printf("%18s", simd_level_name((SimdLevel)l));
	printf("\n");
	for (int l = 0; l <= simd_cpu_level(); l++) {
		const SimdKernels *k = simd_at((SimdLevel)l);
		for (int kk = 0; kk < K_COUNT; kk++) {
			double t[100];
			for (int r = 0; r < reps; r++) {
				if (kk == K_SOFTMAX)
					memcpy(p, p0, np * sizeof(float));
				const double t0 = cpu_now();
				switch (kk) {
				case K_GELU: k->gelu(x, y, nm); break;
				case K_GELU_BW: k->gelu_backward(x, g, y, nm, 0); break;
				case K_SOFTMAX:
					for (size_t bh = 0; bh < (size_t)B * H; bh++)
						for (int i = 0; i < T; i++)
							k->softmax_row(p + (bh * T + i) * T, i + 1);
					break;
				case K_LN:
					for (size_t r0 = 0; r0 < (size_t)B * T; r0++)
						k->layernorm_row(x + r0 * D, y + r0 * D, gamma, beta, D, 1e-5f,
						                 &mean[r0], &rstd[r0]);
					break;
				case K_ADAMW: k->adamw(aw, ag, am, av, PARAMS, &ap); break;
				default:
					for (size_t r0 = 0; r0 < (size_t)B * T; r0++)
						k->layernorm_backward_row(x + r0 * D, g + r0 * D, gamma, mean[r0],
						                          rstd[r0], y + r0 * D, dg, db, D);
					break;
				}
				t[r] = cpu_now() - t0;
			}
			/* the softmax timing includes its memcpy: subtract one measured copy */
			if (kk == K_SOFTMAX) {
				const double t0 = cpu_now();
				memcpy(d, p0, np * sizeof(float));
				const double c = cpu_now() - t0;
				for (int r = 0; r < reps; r++)
					t[r] -= c;
			}
			qsort(t, (size_t)reps, sizeof t[0], cmp_double);
			ns[l][kk] = t[reps / 2] * 1e9 / elems[kk];
		}
	}
	for (int kk = 0; kk < K_COUNT; kk++) {
		printf("%-24s", names[kk]);
		for (int l = 0; l <= simd_cpu_level(); l++)
			printf("%9.3f (%4.2fx)", ns[l][kk], ns[SIMD_SSE][kk] / ns[l][kk]);
		printf("\n");
	}
	printf("{\"bench\": \"simd\", \"cpu_level\": \"%s\", \"ns_per_element\": {",
	       simd_level_name(simd_cpu_level()));
	for (int kk = 0; kk < K_COUNT; kk++) {
		printf("%s\"%s\": {", kk ? ", " : "", names[kk]);
		for (int l = 0; l <= simd_cpu_level(); l++)
			printf("%s\"%s\": %.4f", l ? ", " : "", simd_level_name((SimdLevel)l), ns[l][kk]);
		printf("}");
	}
	printf("}}\n");
	free(x), free(y), free(g), free(p), free(d), free(p0), free(gamma), free(beta), free(dg);
	free(db), free(mean), free(rstd), free(aw), free(ag), free(am), free(av);
	return 0;
}
