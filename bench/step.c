/* step.c - the training-step benchmark: one step (forward, cross-entropy, backward, AdamW) of the
 * MLP 784-1024-1024-128 (BatchNorm+ReLU) and of the default small CNN ({32,64,128}, BN+ReLU, global
 * average pooling, 128 features), at batch 512 on random data with 128 random classes. It prints
 * ms/step, images/s, the time of each phase, the sgemm FLOPs of a step, the GFLOP/s achieved, the
 * share of the step spent inside sgemm, and the GFLOP/s raw cblas_sgemm reaches on the very same
 * calls replayed back to back. Last line: one JSON object with the figures.
 *
 * How sgemm is measured (honestly, without touching the engine): this file defines cblas_sgemm
 * itself. The engine is a static library linked into this executable, so its calls bind to this
 * definition, which times the call and forwards to OpenBLAS's (dlsym RTLD_NEXT). That gives the
 * exact FLOPs (2*M*N*K per call) and the wall time inside sgemm during real steps. The engine's
 * threads call sgemm concurrently (engine/parallel.c splits large products across its pool), so
 * per-call wall times summed would count overlapping calls twice (the share exceeded 100%):
 * "in sgemm" is instead the union of the intervals during which at least one sgemm call runs,
 * kept with a count of calls in flight under a mutex. The shapes of one step are recorded and
 * then replayed standalone on warm buffers: that is "raw sgemm" on the same work, the ceiling the
 * step could reach if everything around sgemm cost nothing. The wrapper costs two clock reads
 * and two uncontended lock/unlock pairs per call (a few hundred calls per step).
 * It does not compare with PyTorch (bench/step_torch.py does) and is not a test. */
#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "params.h"

/* ---------------------------------------------------------------------------------------------- */
/* cblas_sgemm interposition */

typedef void (*sgemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint,
                         blasint, blasint, float, const float *, blasint, const float *, blasint,
                         float, float *, blasint);

typedef struct GemmCall {
	enum CBLAS_ORDER order;
	enum CBLAS_TRANSPOSE ta, tb;
	int M, N, K, lda, ldb, ldc;
	float beta;
	int count;
} GemmCall;

#define MAX_SHAPES 512

static pthread_mutex_t G_lock = PTHREAD_MUTEX_INITIALIZER;   /* guards G's counters below */

static struct {
	sgemm_fn real;
	double seconds;       /* wall time with >= 1 sgemm call running, since the last reset */
	double busy_since;    /* when `active` last went from 0 to 1 */
	int active;           /* sgemm calls in flight */
	double flops;
	long calls;
	int recording;
	GemmCall shapes[MAX_SHAPES];
	int nshapes;
} G;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static sgemm_fn real_sgemm(void)
{
	if (!G.real) {
		void *sym = dlsym(RTLD_NEXT, "cblas_sgemm");
		memcpy(&G.real, &sym, sizeof sym); /* object -> function pointer, as POSIX allows */
		if (!G.real) {
			fprintf(stderr, "bench step: cannot find OpenBLAS's cblas_sgemm: %s\n", dlerror());
			abort();
		}
	}
	return G.real;
}

static void record_shape(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
                         int M, int N, int K, int lda, int ldb, int ldc, float beta)
{
	for (int i = 0; i < G.nshapes; i++) {
		GemmCall *c = &G.shapes[i];
		if (c->order == order && c->ta == ta && c->tb == tb && c->M == M && c->N == N &&
		    c->K == K && c->lda == lda && c->ldb == ldb && c->ldc == ldc && c->beta == beta) {
			c->count++;
			return;
		}
	}
	if (G.nshapes < MAX_SHAPES)
		G.shapes[G.nshapes++] = (GemmCall){ order, ta, tb, M, N, K, lda, ldb, ldc, beta, 1 };
}

void cblas_sgemm(OPENBLAS_CONST enum CBLAS_ORDER Order, OPENBLAS_CONST enum CBLAS_TRANSPOSE TransA,
                 OPENBLAS_CONST enum CBLAS_TRANSPOSE TransB, OPENBLAS_CONST blasint M,
                 OPENBLAS_CONST blasint N, OPENBLAS_CONST blasint K, OPENBLAS_CONST float alpha,
                 OPENBLAS_CONST float *A, OPENBLAS_CONST blasint lda, OPENBLAS_CONST float *B,
                 OPENBLAS_CONST blasint ldb, OPENBLAS_CONST float beta, float *C,
                 OPENBLAS_CONST blasint ldc)
{
	sgemm_fn f = real_sgemm();
	pthread_mutex_lock(&G_lock);
	if (G.active++ == 0)
		G.busy_since = now();
	pthread_mutex_unlock(&G_lock);
	f(Order, TransA, TransB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
	pthread_mutex_lock(&G_lock);
	if (--G.active == 0)
		G.seconds += now() - G.busy_since;
	G.flops += 2.0 * (double)M * (double)N * (double)K;
	G.calls++;
	if (G.recording)
		record_shape(Order, TransA, TransB, M, N, K, lda, ldb, ldc, beta);
	pthread_mutex_unlock(&G_lock);
}

static void gemm_reset(void)
{
	G.seconds = 0.0;
	G.flops = 0.0;
	G.calls = 0;
}

/* Elements a row-major operand occupies. */
static size_t span(int rows, int ld) { return (size_t)rows * (size_t)ld; }

/* Replay the recorded calls of one step back to back on warm buffers; best of `reps` seconds. */
static double replay_seconds(int reps)
{
	size_t na = 1, nb = 1, nc = 1;
	for (int i = 0; i < G.nshapes; i++) {
		const GemmCall *c = &G.shapes[i];
		size_t a = span(c->ta == CblasNoTrans ? c->M : c->K, c->lda);
		size_t b = span(c->tb == CblasNoTrans ? c->K : c->N, c->ldb);
		size_t cc = span(c->M, c->ldc);
		na = a > na ? a : na;
		nb = b > nb ? b : nb;
		nc = cc > nc ? cc : nc;
	}
	float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *C = malloc(nc * sizeof *C);
	if (!A || !B || !C) {
		fprintf(stderr, "bench step: out of memory for the sgemm replay\n");
		abort();
	}
	for (size_t i = 0; i < na; i++)
		A[i] = (float)(i % 13) * 0.01f;
	for (size_t i = 0; i < nb; i++)
		B[i] = (float)(i % 7) * 0.01f;
	memset(C, 0, nc * sizeof *C);
	sgemm_fn f = real_sgemm();
	double best = 1e30;
	for (int r = 0; r <= reps; r++) { /* r = 0 warms up */
		double t0 = now();
		for (int i = 0; i < G.nshapes; i++) {
			const GemmCall *c = &G.shapes[i];
			for (int k = 0; k < c->count; k++)
				f(c->order, c->ta, c->tb, c->M, c->N, c->K, 1.0f, A, c->lda, B, c->ldb, c->beta,
				  C, c->ldc);
		}
		double t = now() - t0;
		if (r > 0 && t < best)
			best = t;
	}
	free(A);
	free(B);
	free(C);
	return best;
}

/* ---------------------------------------------------------------------------------------------- */
/* The step */

typedef struct Result {
	const char *name;
	double step_ms, fwd_ms, bwd_ms, opt_ms;
	double images_per_s;
	double gflop;            /* sgemm GFLOP per step */
	double gflops;           /* gflop / step time */
	double sgemm_share;      /* in-step sgemm time / step time */
	double sgemm_gflops;     /* gflop / in-step sgemm time */
	double raw_gflops;       /* gflop / replay time */
	double vs_raw;           /* gflops / raw_gflops */
	long sgemm_calls;
	int params;
} Result;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define MAX_STEPS 200

static int bench_model(const char *name, const EncoderConfig *ec, int batch, int steps, int threads,
                       Result *res)
{
	char err[256];
	Rng rng;
	rng_seed(&rng, 1);
	ParamSet *ps = paramset_new();
	Encoder *enc = NULL;
	Optim *opt = NULL;
	Ctx *ctx = ctx_new(1);
	float *images = malloc((size_t)batch * 784 * sizeof *images);
	int *labels = malloc((size_t)batch * sizeof *labels);
	int rc = -1;
	if (!ps || !ctx || !images || !labels)
		goto out;
	if (encoder_new(ec, ps, "encoder", 1, 28, 28, &rng, &enc, err, sizeof err) < 0) {
		fprintf(stderr, "bench step: %s: %s\n", name, err);
		goto out;
	}
	OptimConfig oc;
	optim_config_default(&oc, OPT_ADAMW);
	if (optim_new(&oc, ps, &opt) < 0)
		goto out;
	for (size_t i = 0; i < (size_t)batch * 784; i++)
		images[i] = rng_uniform(&rng);
	for (int i = 0; i < batch; i++)
		labels[i] = (int)rng_below(&rng, (uint32_t)encoder_out_dim(enc));

	double st[MAX_STEPS], fw[MAX_STEPS], bw[MAX_STEPS], op[MAX_STEPS], sg[MAX_STEPS];
	double flops = 0.0;
	long calls = 0;
	const int warmup = 2;
	for (int s = 0; s < warmup + steps; s++) {
		int timed = s >= warmup, i = s - warmup;
		G.recording = s == warmup;
		double t0 = now();
		gemm_reset();
		ctx_reset(ctx);
		Tensor *x = ctx_wrap(ctx, images, 4, (int[]){ batch, 1, 28, 28 });
		Tensor *loss = op_cross_entropy(ctx, encoder_forward(ctx, enc, x), labels, 0.0f);
		double t1 = now();
		paramset_zero_grad(ps);
		ctx_backward(ctx, loss);
		double t2 = now();
		optim_step(opt, 1e-3f);
		double t3 = now();
		G.recording = 0;
		if (timed) {
			st[i] = t3 - t0;
			fw[i] = t1 - t0;
			bw[i] = t2 - t1;
			op[i] = t3 - t2;
			sg[i] = G.seconds;
			flops = G.flops;
			calls = G.calls;
		}
	}
	/* The engine keeps OpenBLAS at one thread and splits products across its own pool; the
	 * ceiling is OpenBLAS's own threading on the same number of cores. */
	openblas_set_num_threads(threads);
	double raw = replay_seconds(3);
	openblas_set_num_threads(1);
	double step = median(st, steps), sgemm = median(sg, steps);
	*res = (Result){
		.name = name,
		.step_ms = 1e3 * step,
		.fwd_ms = 1e3 * median(fw, steps),
		.bwd_ms = 1e3 * median(bw, steps),
		.opt_ms = 1e3 * median(op, steps),
		.images_per_s = batch / step,
		.gflop = flops * 1e-9,
		.gflops = flops * 1e-9 / step,
		.sgemm_share = sgemm / step,
		.sgemm_gflops = flops * 1e-9 / sgemm,
		.raw_gflops = flops * 1e-9 / raw,
		.sgemm_calls = calls,
		.params = (int)paramset_numel(ps, 1),
	};
	res->vs_raw = res->gflops / res->raw_gflops;
	rc = 0;
out:
	G.nshapes = 0;
	optim_free(opt);
	encoder_free(enc);
	ctx_free(ctx);
	paramset_free(ps);
	free(images);
	free(labels);
	return rc;
}

static void json_result(const Result *r, int last)
{
	printf("\"%s\":{\"ms_per_step\":%.3f,\"images_per_s\":%.1f,\"forward_ms\":%.3f,"
	       "\"backward_ms\":%.3f,\"optimizer_ms\":%.3f,\"sgemm_gflop_per_step\":%.4f,"
	       "\"gflops\":%.2f,\"sgemm_share\":%.4f,\"sgemm_gflops_in_step\":%.2f,"
	       "\"raw_sgemm_gflops\":%.2f,\"fraction_of_raw\":%.4f,\"sgemm_calls\":%ld,"
	       "\"params\":%d}%s",
	       r->name, r->step_ms, r->images_per_s, r->fwd_ms, r->bwd_ms, r->opt_ms, r->gflop,
	       r->gflops, r->sgemm_share, r->sgemm_gflops, r->raw_gflops, r->vs_raw, r->sgemm_calls,
	       r->params, last ? "" : ",");
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [--batch N] [--steps N] [--threads N] [--only mlp|cnn]\n", argv0);
}

int main(int argc, char **argv)
{
	int batch = 512, steps = 10, threads = 2;
	const char *only = NULL;
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--batch") == 0)
			batch = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--steps") == 0)
			steps = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
			threads = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--only") == 0)
			only = argv[++i];
		else {
			usage(argv[0]);
			return 2;
		}
	}
	if (batch < 2 || steps < 1 || steps > MAX_STEPS || threads < 1) {
		usage(argv[0]);
		return 2;
	}
	eng_set_threads(threads);
	real_sgemm();   /* resolve OpenBLAS's sgemm before the engine's threads can race to it */

	EncoderConfig mlp, cnn;
	encoder_config_default(&mlp, ENC_MLP);   /* 784-1024-1024-128, BN+ReLU */
	encoder_config_default(&cnn, ENC_CNN);   /* {32,64,128}, BN+ReLU, GAP -> 128 */
	Result res[2];
	int n = 0;
	if (!only || strcmp(only, "mlp") == 0) {
		if (bench_model("mlp", &mlp, batch, steps, threads, &res[n]) < 0)
			return 1;
		n++;
	}
	if (!only || strcmp(only, "cnn") == 0) {
		if (bench_model("cnn", &cnn, batch, steps < 5 ? steps : 5, threads, &res[n]) < 0)
			return 1;
		n++;
	}

	printf("step benchmark: forward + cross-entropy (128 classes) + backward + AdamW, batch %d, "
	       "%d BLAS thread(s), median of %d timed steps (cnn: %d)\n", batch, threads, steps,
	       steps < 5 ? steps : 5);
	printf("%-5s %9s %9s %8s %8s %8s %10s %9s %8s %13s %11s %8s\n", "model", "ms/step", "img/s",
	       "fwd ms", "bwd ms", "opt ms", "GFLOP/step", "GFLOP/s", "in sgemm", "sgemm GFLOP/s",
	       "raw GFLOP/s", "vs raw");
	for (int i = 0; i < n; i++) {
		const Result *r = &res[i];
		printf("%-5s %9.2f %9.0f %8.2f %8.2f %8.2f %10.3f %9.1f %7.1f%% %13.1f %11.1f %7.1f%%\n",
		       r->name, r->step_ms, r->images_per_s, r->fwd_ms, r->bwd_ms, r->opt_ms, r->gflop,
		       r->gflops, 100.0 * r->sgemm_share, r->sgemm_gflops, r->raw_gflops,
		       100.0 * r->vs_raw);
	}
	printf("(GFLOP counts only sgemm work, 2*M*N*K per call, as issued by the engine; \"raw\" "
	       "replays the same sgemm calls standalone on OpenBLAS's own %d threads; \"vs raw\" = "
	       "GFLOP/s / raw GFLOP/s; \"in sgemm\" = share of the step's wall time with at least one "
	       "sgemm call running)\n", threads);
	printf("{\"bench\":\"step\",\"batch\":%d,\"threads\":%d,", batch, threads);
	for (int i = 0; i < n; i++)
		json_result(&res[i], i == n - 1);
	printf("}\n");
	return 0;
}
