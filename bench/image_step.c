/* image_step.c - how much of a 64-px RGB CNN training step waits for data when the images come
 * from an image folder through the decode cache.
 *
 * Loads the folder with image_folder_load into a decode cache (the first run decodes and says so;
 * later runs read the cache), then trains the examples' CNN ({32,64,128}, BatchNorm) on two SimCLR
 * views of each batch - forward, cross-entropy, backward, AdamW - while the loader augments the
 * next batches on its own thread (prefetch 2), exactly as a job does. The figure is the loader's
 * wait (time the step loop spent in loader_next) as a share of the wall time. Target: < 2 %.
 * For scale it also prints what preparing one batch costs when nothing prefetches (prefetch 0:
 * the step thread reads the cache and augments itself), i.e. the work the prefetch hides.
 * It times wall clock: on a loaded machine both the step and the wait stretch.
 *
 *   build/bench/image_step [--dir DIR] [--cache DIR] [--size 64] [--batch 64] [--steps 12]
 * The last line is one JSON object with the figures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "alloc.h"
#include "ctx.h"
#include "data/augment.h"
#include "data/image_dataset.h"
#include "data/loader.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "params.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	const char *dir = "/usr/share/openclipart/png", *cache = "/tmp/ssld-image-step-cache";
	int size = 64, batch = 64, steps = 12, threads = 2;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
		else if (!strcmp(argv[i], "--cache")) cache = argv[i + 1];
		else if (!strcmp(argv[i], "--size")) size = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
		else {
			fprintf(stderr, "usage: image_step [--dir DIR] [--cache DIR] [--size N] [--batch N] "
			        "[--steps N]\n");
			return 2;
		}
	}
	struct stat st;
	if (stat(dir, &st) != 0) {
		printf("{\"bench\":\"image_step\",\"skipped\":\"%s not found\"}\n", dir);
		return 77;
	}
	mkdir(cache, 0755);
	eng_set_threads(threads);
	ImageFolderSpec fs = { .train = dir, .image_size = size, .channels = 3,
	                       .resize = IMG_RESIZE_SHORTER_SIDE, .test_fraction = 0.1, .seed = 1,
	                       .max_skipped = 64, .cache_dir = cache, .threads = threads };
	Dataset *ds = eng_calloc(1, sizeof *ds);
	char err[1024];
	int states[3];
	double t0 = now();
	if (!ds || image_folder_load(&fs, ds, states, err, sizeof err) < 0) {
		fprintf(stderr, "image_step: %s\n", err);
		return 1;
	}
	double load_s = now() - t0;
	const char *how = states[0] == IMG_CACHE_HIT ? "read from the decode cache" : "decoded";
	printf("%d images of 3x%dx%d %s in %.1f s (cache %s)\n", ds->train.n, size, size, how, load_s,
	       cache);

	AugConfig aug;
	aug_config_default_simclr(&aug);
	LoaderConfig lc = { .ds = ds, .split = &ds->train, .batch = batch, .views = 2,
	                    .aug = { &aug, &aug }, .seed = 1, .shuffle = 1, .drop_last = 1,
	                    .prefetch = 2, .aug_threads = 1 };
	Loader *ld = NULL;
	EncoderConfig ec;
	encoder_config_default(&ec, ENC_CNN);
	ec.n_channels = 3;
	ec.channels[0] = 32, ec.channels[1] = 64, ec.channels[2] = 128;
	ec.batchnorm = 1;
	ec.out_dim = 128;
	ParamSet *ps = paramset_new();
	Ctx *ctx = ctx_new(1);
	Rng rng;
	rng_seed(&rng, 1);
	Encoder *enc = NULL;
	Optim *opt = NULL;
	OptimConfig oc;
	optim_config_default(&oc, OPT_ADAMW);
	size_t per = (size_t)3 * size * size;
	int *labels = malloc(sizeof(int) * 2 * batch);
	if (!ps || !ctx || !labels || loader_new(&lc, &ld, err, sizeof err) < 0 ||
	    encoder_new(&ec, ps, "encoder", 3, size, size, &rng, &enc, err, sizeof err) < 0 ||
	    optim_new(&oc, ps, &opt) < 0) {
		fprintf(stderr, "image_step: %s\n", err);
		return 1;
	}
	const int warmup = 2;
	double busy = 0, wall0 = 0, wait0 = 0;
	int done = 0;
	for (int s = 0; done < steps;) {
		const Batch *b = loader_next(ld);
		if (!b)
			continue;                  /* an epoch ended */
		if (s == warmup) {             /* start the clocks after the warm-up steps */
			wall0 = now();
			wait0 = loader_wait_seconds(ld);
		}
		double s0 = now();
		ctx_reset(ctx);
		Tensor *x = ctx_tensor(ctx, 4, (int[]){ 2 * b->n, 3, size, size });   // (2B,3,S,S)
		memcpy(x->data, b->view[0], (size_t)b->n * per * sizeof(float));
		memcpy(x->data + (size_t)b->n * per, b->view[1], (size_t)b->n * per * sizeof(float));
		for (int i = 0; i < 2 * b->n; i++)
			labels[i] = b->y[i % b->n] >= 0 ? b->y[i % b->n] : 0;
		Tensor *loss = op_cross_entropy(ctx, encoder_forward(ctx, enc, x), labels, 0.0f);
		paramset_zero_grad(ps);
		ctx_backward(ctx, loss);
		optim_step(opt, 1e-3f);
		if (s >= warmup) {
			busy += now() - s0;
			done++;
		}
		s++;
	}
	double wall = now() - wall0, wait = loader_wait_seconds(ld) - wait0;
	double share = wait / wall;
	loader_free(ld);
	lc.prefetch = 0;
	double sync_ms = 0;
	if (loader_new(&lc, &ld, err, sizeof err) == 0) {
		int got = 0;
		while (got < 4)
			got += loader_next(ld) != NULL;
		sync_ms = 1e3 * loader_wait_seconds(ld) / got;
	}
	printf("64-px RGB CNN step (batch %d x 2 views, %d BLAS threads + 1 augmenting), %d steps:\n",
	       batch, threads, steps);
	printf("  step   %8.1f ms\n  wait   %8.2f ms per step\n  share  %8.2f %% of the wall time "
	       "(target < 2 %%)\n  one batch without prefetch %.1f ms (%.1f %% of a step: what the "
	       "prefetch hides)\n", 1e3 * busy / steps, 1e3 * wait / steps, 100 * share, sync_ms,
	       100 * sync_ms / (1e3 * busy / steps));
	printf("{\"bench\":\"image_step\",\"images\":%d,\"size\":%d,\"batch\":%d,\"steps\":%d,"
	       "\"load_s\":%.2f,\"cache_hit\":%s,\"step_ms\":%.2f,\"wait_ms\":%.3f,"
	       "\"wait_share\":%.5f,\"batch_no_prefetch_ms\":%.2f}\n", ds->train.n, size, batch, steps,
	       load_s, states[0] == IMG_CACHE_HIT ? "true" : "false", 1e3 * busy / steps,
	       1e3 * wait / steps, share, sync_ms);
	loader_free(ld);
	optim_free(opt);
	encoder_free(enc);
	paramset_free(ps);
	ctx_free(ctx);
	free(labels);
	dataset_free(ds);
	return 0;
}
