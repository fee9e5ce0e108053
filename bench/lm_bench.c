/* lm_bench.c - throughput of the byte-level char Transformer that autoregressive_lm trains: 4
 * layers, d_model 128, 4 heads, context 128, batch 32 (the reference shape), through the
 * method's own code (make_batch on the fortunes byte stream, loss, backward, AdamW), on a fixed
 * number of BLAS threads. Prints ms/step and tokens/s of the training step, the forward-only
 * tokens/s of the test evaluation, and the wall time of sampling 500 bytes with the KV cache.
 * Last line: one JSON object with the figures. The PyTorch peer and the quality runs are in
 * bench/lm_bench.py, which runs this program. It is a benchmark, not a test: it asserts nothing.
 *
 *   lm_bench [--threads 2] [--steps 30] [--dim 128 --depth 4 --heads 4 --context 128 --batch 32]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx.h"
#include "data/dataset.h"
#include "methods/method.h"
#include "optim.h"
#include "params.h"

#define FORTUNES "/usr/share/games/fortunes"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int threads = 2, steps = 30, dim = 128, depth = 4, heads = 4, context = 128, batch = 32;
	for (int i = 1; i + 1 < argc; i += 2) {
		int v = atoi(argv[i + 1]);
		if (strcmp(argv[i], "--threads") == 0) threads = v;
		else if (strcmp(argv[i], "--steps") == 0) steps = v;
		else if (strcmp(argv[i], "--dim") == 0) dim = v;
		else if (strcmp(argv[i], "--depth") == 0) depth = v;
		else if (strcmp(argv[i], "--heads") == 0) heads = v;
		else if (strcmp(argv[i], "--context") == 0) context = v;
		else if (strcmp(argv[i], "--batch") == 0) batch = v;
		else {
			fprintf(stderr, "lm_bench: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	/* the training text: a few of the fortunes files (the step does not depend on which) */
	static const char *const names[] = { "art", "computers", "cookie", "definitions", "people" };
	char paths[5][256];
	const char *files[5];
	for (int i = 0; i < 5; i++) {
		snprintf(paths[i], sizeof paths[i], "%s/%s", FORTUNES, names[i]);
		files[i] = paths[i];
	}
	DatasetSpec spec = { .kind = DATASET_TEXT, .text_files = files, .n_text_files = 5,
	                     .test_fraction = 0.1f };
	Dataset *ds;
	char err[512];
	if (dataset_load(&spec, &ds, err, sizeof err) < 0) {
		fprintf(stderr, "lm_bench: %s (install the Debian package fortunes)\n", err);
		return 77;
	}
	eng_set_threads(threads);

	EncoderConfig ec;
	encoder_config_default(&ec, ENC_TRANSFORMER);
	ec.dim = dim;
	ec.depth = depth;
	ec.heads = heads;
	ec.context = context;
	ec.causal = 1;
	Rng rng;
	rng_seed(&rng, 1);
	const PretextMethod *m = method_find("autoregressive_lm");
	_Alignas(max_align_t) unsigned char cfg[METHOD_CONFIG_MAX];
	if (m)
		method_config_default(m, cfg);
	MethodEnv env = { .encoder = &ec, .in_c = 1, .in_h = 1, .in_w = context, .ds = ds,
	                  .config = cfg, .rng = &rng, .total_steps = steps, .batch_size = batch };
	ParamSet *ps = paramset_new();
	void *st = NULL;
	if (!m || m->create(&env, ps, &st, err, sizeof err) < 0) {
		fprintf(stderr, "lm_bench: %s\n", m ? err : "autoregressive_lm not built");
		return 1;
	}
	OptimConfig oc;
	optim_config_default(&oc, OPT_ADAMW);
	Optim *opt;
	Ctx *ctx = ctx_new(1);
	if (optim_new(&oc, ps, &opt) < 0 || !ctx) {
		fprintf(stderr, "lm_bench: out of memory\n");
		return 1;
	}

	/* training steps: 3 warm-up steps (arena growth, BLAS buffers), then `steps` timed ones */
	double *t_step = malloc((size_t)steps * sizeof *t_step), t_batch = 0, loss = 0;
	for (int s = -3; s < steps; s++) {
		double t0 = now();
		Batch b;
		if (m->make_batch(st, ds, 1, s + 3, &b, err, sizeof err) < 0) {
			fprintf(stderr, "lm_bench: %s\n", err);
			return 1;
		}
		double t1 = now();
		ctx_reset(ctx);
		ctx_set_training(ctx, 1);
		Tensor *l = m->loss(ctx, st, NULL, &b, NULL);
		loss = l->data[0];
		ctx_backward(ctx, l);
		optim_step(opt, 1e-3f);
		paramset_zero_grad(ps);
		if (s >= 0) {
			t_step[s] = now() - t0;
			t_batch += t1 - t0;
		}
	}
	qsort(t_step, (size_t)steps, sizeof *t_step, cmp_double);
	double med = t_step[steps / 2], mean = 0;
	for (int s = 0; s < steps; s++)
		mean += t_step[s] / steps;
	double tokens = (double)batch * context;

	/* forward-only evaluation throughput: the method's strided test evaluation */
	size_t test_len = ds->text_test_len;
	if (ds->text_test_len > 65536)
		ds->text_test_len = 65536;
	MetricSink sink = { 0 };
	double t0 = now();
	m->evaluate(st, ctx, ds, &sink);
	double t_eval = now() - t0;
	/* strided: windows every context/2 bytes, so twice the bytes go through the network */
	double eval_tokens = 2.0 * (double)ds->text_test_len;
	ds->text_test_len = test_len;

	/* sampling 500 bytes with the KV cache: median of 5 */
	uint8_t out[500];
	int out_len = 0;
	double t_gen[5];
	const char *prompt = "Q: What is the meaning of life?\nA:";
	for (int i = 0; i < 5; i++) {
		Rng srng;
		rng_seed(&srng, (uint64_t)i);
		t0 = now();
		if (m->generate_text(st, ctx, (const uint8_t *)prompt, (int)strlen(prompt), 500, 0.8f, 40,
		                     0.95f, &srng, out, &out_len, err, sizeof err) < 0) {
			fprintf(stderr, "lm_bench: generate: %s\n", err);
			return 1;
		}
		t_gen[i] = now() - t0;
	}
	qsort(t_gen, 5, sizeof *t_gen, cmp_double);

	printf("char Transformer: %d layers, d_model %d, %d heads, context %d, batch %d, %d thread%s, "
	       "%zu parameters\n", depth, dim, heads, context, batch, threads, threads == 1 ? "" : "s",
	       paramset_numel(ps, 1));
	printf("  training step      %8.1f ms (median of %d; mean %.1f)   %8.0f tokens/s   "
	       "(batch drawing %.2f ms)\n", med * 1e3, steps, mean * 1e3, tokens / med,
	       t_batch / steps * 1e3);
	printf("  test evaluation    %8.0f tokens/s forward only (strided windows)\n",
	       eval_tokens / t_eval);
	printf("  sampling 500 bytes %8.1f ms with the KV cache (median of 5; T 0.8, top-k 40, "
	       "top-p 0.95)\n", t_gen[2] * 1e3);
	printf("{\"bench\":\"lm\",\"threads\":%d,\"dim\":%d,\"depth\":%d,\"heads\":%d,\"context\":%d,"
	       "\"batch\":%d,\"ms_per_step\":%.2f,\"tokens_per_s\":%.0f,\"eval_tokens_per_s\":%.0f,"
	       "\"sample_500_bytes_s\":%.4f,\"loss\":%.4f}\n", threads, dim, depth, heads, context,
	       batch, med * 1e3, tokens / med, eval_tokens / t_eval, t_gen[2], loss);
	free(t_step);
	optim_free(opt);
	ctx_free(ctx);
	m->destroy(st);
	paramset_free(ps);
	dataset_free(ds);
	return 0;
}
