/* compare_ssld.c - the ssld side of bench/compare: one training step (forward, loss, backward,
 * AdamW, zero grads) of the models bench/compare_torch.py builds in PyTorch, with the same shapes,
 * losses and optimizer, timed the same way (warm-up steps, then the median wall time of the timed
 * steps, and the process CPU time per step), plus the peak RSS of this process.
 *
 * Models (batch 256 unless said; inputs are seeded random data of the real shapes):
 *   simclr_mlp        SimCLR, two views concatenated (512 rows): MLP 784-1024-1024-128 (BN+ReLU),
 *                     head 128-128(BN+ReLU)-128, NT-Xent (tau 0.5)
 *   simclr_cnn        the examples' CNN {32,64,128} (3x3, strides 1,2,2, BN+ReLU, global average
 *                     pool), head 128-512(BN+ReLU)-128, NT-Xent
 *   simclr_cnn_s1     the same CNN with stride 1 in every stage (full 28x28 resolution)
 *   resnet18          SimCLR, two views of 128 32x32 RGB images (256 rows): ResNet-18 with the
 *                     CIFAR stem (engine/resnet.h, torchvision's layout), head
 *                     512-512(BN+ReLU)-128, NT-Xent
 *   resnet18_w05      the same at width 0.5 (stages 32-64-128-256), head 256-512(BN+ReLU)-128
 *   char_transformer  causal byte Transformer, 4 layers, d 128, 4 heads, context 128, batch 32,
 *                     tied LM head, next-byte cross-entropy (tokens/s)
 *   mae_vit           MAE as engine/methods/mae.c: ViT-tiny encoder (patch 4, d 128, depth 4,
 *                     heads 4) on 12 of 49 patches, decoder d 64 depth 2, masked MSE
 *   vae_mlp           VAE as examples/vae: MLP 784-512-256-128 (BN+ReLU), mu/logvar 128->16,
 *                     decoder 16-256-512-784, BCE (summed over pixels) + KL
 * AdamW everywhere: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-4 on PARAM_DECAY weights.
 *
 * Besides timing it counts the sgemm work of a step: this file defines cblas_sgemm itself (the
 * engine is a static library linked into this program, so its calls bind here) and forwards to
 * OpenBLAS's through dlsym(RTLD_NEXT), adding 2*M*N*K per call and recording the shapes of one
 * step, per calling thread. The engine runs every sgemm single-threaded on its pool's threads (a
 * convolution one image per call, parallel_sgemm one block per thread), so the recorded calls are
 * replayed the same way: each of `threads` replay threads runs the calls one step's thread made,
 * back to back on warm buffers of its own, all threads at once. That is "raw sgemm" on the step's
 * own shapes and split, the ceiling the step would reach if nothing but sgemm cost time (its
 * CPU seconds against the step's). The same calls replayed one after another on OpenBLAS's own
 * threads are reported too (raw_sgemm_blas_threads_*): slow for per-image products, so not the
 * ceiling. It does not time anything inside the step (perf does that, see BENCHMARKS.md) and is
 * not a test.
 *
 *   compare_ssld --model simclr_mlp [--threads 2] [--steps 30] [--seconds 15] [--warmup 3]
 *                [--no-replay]   (skip the raw-sgemm replay, e.g. under perf record)
 */
#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx.h"
#include "layers.h"
#include "methods/mae.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
#include "resnet.h"
#include "simd.h"

/* ---------------------------------------------------------------------------------------------- */
/* cblas_sgemm interposition: FLOP count and one step's shapes */

typedef void (*sgemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint,
                         blasint, blasint, float, const float *, blasint, const float *, blasint,
                         float, float *, blasint);

typedef struct GemmCall {
	enum CBLAS_TRANSPOSE ta, tb;
	int M, N, K, lda, ldb, ldc;
	float beta;
	int count;
} GemmCall;

#define MAX_SHAPES 1024
#define MAX_SLOTS 16   /* recording threads: the step's caller and its pool workers */

/* The distinct calls one thread made during the recorded step, each with its count. */
typedef struct Slot {
	GemmCall calls[MAX_SHAPES];
	int n;
} Slot;

static sgemm_fn real_sgemm_ptr;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static atomic_llong gemm_flops;
static atomic_int recording;
static atomic_int nslots;
static Slot slots[MAX_SLOTS];
static _Thread_local int my_slot = -1;

static void find_real(void)
{
	*(void **)&real_sgemm_ptr = dlsym(RTLD_NEXT, "cblas_sgemm");   /* POSIX's idiom */
	if (!real_sgemm_ptr) {
		fprintf(stderr, "compare_ssld: cannot find OpenBLAS's cblas_sgemm: %s\n", dlerror());
		abort();
	}
}

static sgemm_fn real_sgemm(void)
{
	pthread_once(&real_once, find_real);
	return real_sgemm_ptr;
}

/* Adds one call to this thread's slot (each slot is written by its own thread only). */
static void record(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K, int lda,
                   int ldb, int ldc, float beta)
{
	if (my_slot < 0) {
		my_slot = atomic_fetch_add(&nslots, 1);
		if (my_slot >= MAX_SLOTS) {
			fprintf(stderr, "compare_ssld: more than %d threads called sgemm\n", MAX_SLOTS);
			abort();
		}
	}
	Slot *sl = &slots[my_slot];
	int i = 0;
	for (; i < sl->n; i++) {
		GemmCall *c = &sl->calls[i];
		if (c->ta == ta && c->tb == tb && c->M == M && c->N == N && c->K == K && c->lda == lda &&
		    c->ldb == ldb && c->ldc == ldc && c->beta == beta) {
			c->count++;
			return;
		}
	}
	if (sl->n < MAX_SHAPES)
		sl->calls[sl->n++] = (GemmCall){ ta, tb, M, N, K, lda, ldb, ldc, beta, 1 };
}

void cblas_sgemm(OPENBLAS_CONST enum CBLAS_ORDER Order, OPENBLAS_CONST enum CBLAS_TRANSPOSE TransA,
                 OPENBLAS_CONST enum CBLAS_TRANSPOSE TransB, OPENBLAS_CONST blasint M,
                 OPENBLAS_CONST blasint N, OPENBLAS_CONST blasint K, OPENBLAS_CONST float alpha,
                 OPENBLAS_CONST float *A, OPENBLAS_CONST blasint lda, OPENBLAS_CONST float *B,
                 OPENBLAS_CONST blasint ldb, OPENBLAS_CONST float beta, float *C,
                 OPENBLAS_CONST blasint ldc)
{
	real_sgemm()(Order, TransA, TransB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
	atomic_fetch_add_explicit(&gemm_flops, 2LL * M * N * K, memory_order_relaxed);
	if (atomic_load_explicit(&recording, memory_order_relaxed) && Order == CblasRowMajor)
		record(TransA, TransB, M, N, K, lda, ldb, ldc, beta);
}

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Warm operands big enough for every call of a list. */
typedef struct Operands {
	float *A, *B, *C;
} Operands;

static void operands_for(const GemmCall *const *calls, int n, Operands *o)
{
	size_t na = 1, nb = 1, nc = 1;
	for (int i = 0; i < n; i++) {
		const GemmCall *c = calls[i];
		size_t a = (size_t)(c->ta == CblasNoTrans ? c->M : c->K) * c->lda;
		size_t b = (size_t)(c->tb == CblasNoTrans ? c->K : c->N) * c->ldb;
		size_t cc = (size_t)c->M * c->ldc;
		na = a > na ? a : na;
		nb = b > nb ? b : nb;
		nc = cc > nc ? cc : nc;
	}
	o->A = malloc(na * sizeof *o->A);
	o->B = malloc(nb * sizeof *o->B);
	o->C = calloc(nc, sizeof *o->C);
	if (!o->A || !o->B || !o->C) {
		fprintf(stderr, "compare_ssld: out of memory for the sgemm replay\n");
		abort();
	}
	for (size_t i = 0; i < na; i++)
		o->A[i] = (float)(i % 13) * 0.01f;
	for (size_t i = 0; i < nb; i++)
		o->B[i] = (float)(i % 7) * 0.01f;
}

static void operands_free(Operands *o)
{
	free(o->A);
	free(o->B);
	free(o->C);
}

static void run_calls(const GemmCall *const *calls, int n, const Operands *o)
{
	for (int i = 0; i < n; i++) {
		const GemmCall *c = calls[i];
		for (int k = 0; k < c->count; k++)
			real_sgemm()(CblasRowMajor, c->ta, c->tb, c->M, c->N, c->K, 1.0f, o->A, c->lda, o->B,
			             c->ldb, c->beta, o->C, c->ldc);
	}
}

/* Every recorded call back to back on the calling thread (OpenBLAS threads it as it is set);
 * the best of `reps` wall seconds and the CPU seconds of that repetition. */
static void replay_serial(int reps, double *wall, double *cpu)
{
	static const GemmCall *all[MAX_SLOTS * MAX_SHAPES];
	int n = 0, ns = atomic_load(&nslots);
	for (int t = 0; t < ns; t++)
		for (int i = 0; i < slots[t].n; i++)
			all[n++] = &slots[t].calls[i];
	Operands o;
	operands_for(all, n, &o);
	*wall = 1e30;
	for (int r = 0; r <= reps; r++) { /* r = 0 warms up */
		double w0 = wall_now(), c0 = cpu_now();
		run_calls(all, n, &o);
		double w = wall_now() - w0, cp = cpu_now() - c0;
		if (r > 0 && w < *wall) {
			*wall = w;
			*cpu = cp;
		}
	}
	operands_free(&o);
}

typedef struct ReplayThread {
	pthread_t th;
	pthread_barrier_t *bar;
	const GemmCall *calls[MAX_SLOTS * MAX_SHAPES / 2];
	int n, reps;
	Operands o;
} ReplayThread;

static void *replay_thread(void *arg)
{
	ReplayThread *rt = arg;
	operands_for(rt->calls, rt->n, &rt->o);
	for (int r = 0; r <= rt->reps; r++) {
		pthread_barrier_wait(rt->bar);   /* start together */
		run_calls(rt->calls, rt->n, &rt->o);
		pthread_barrier_wait(rt->bar);   /* the main thread times between the two */
	}
	operands_free(&rt->o);
	return NULL;
}

/* The recorded calls split as the step split them: thread t replays slot t (slots beyond
 * `threads` fold onto thread slot % threads), all threads at once, OpenBLAS single-threaded in
 * each. The best of `reps` wall seconds and the process CPU seconds of that repetition. */
static void replay_threads(int threads, int reps, double *wall, double *cpu)
{
	int ns = atomic_load(&nslots);
	ReplayThread *rt = calloc((size_t)threads, sizeof *rt);
	pthread_barrier_t bar;
	if (!rt || pthread_barrier_init(&bar, NULL, (unsigned)threads + 1) != 0) {
		fprintf(stderr, "compare_ssld: cannot start the replay threads\n");
		abort();
	}
	for (int t = 0; t < ns; t++)
		for (int i = 0; i < slots[t].n; i++) {
			ReplayThread *r = &rt[t % threads];
			if (r->n < (int)(sizeof r->calls / sizeof r->calls[0]))
				r->calls[r->n++] = &slots[t].calls[i];
		}
	for (int t = 0; t < threads; t++) {
		rt[t].bar = &bar;
		rt[t].reps = reps;
		if (pthread_create(&rt[t].th, NULL, replay_thread, &rt[t]) != 0) {
			fprintf(stderr, "compare_ssld: cannot start a replay thread\n");
			abort();
		}
	}
	*wall = 1e30;
	for (int r = 0; r <= reps; r++) { /* r = 0 warms up */
		double w0 = wall_now(), c0 = cpu_now();
		pthread_barrier_wait(&bar);
		pthread_barrier_wait(&bar);
		double w = wall_now() - w0, cp = cpu_now() - c0;
		if (r > 0 && w < *wall) {
			*wall = w;
			*cpu = cp;
		}
	}
	for (int t = 0; t < threads; t++)
		pthread_join(rt[t].th, NULL);
	pthread_barrier_destroy(&bar);
	free(rt);
}

/* ---------------------------------------------------------------------------------------------- */
/* the models */

typedef struct Bench {
	const char *name;
	const char *unit;
	int per_step;             /* samples (or tokens) per step */
	ParamSet *ps;
	Rng rng;
	/* networks */
	Encoder *enc;
	Resnet *resnet;           /* resnet18* (the backbone without the encoder registry) */
	Mlp *head, *dec;
	Linear mu, logvar;        /* vae */
	Transformer *tf;          /* char_transformer (borrowed from enc) */
	/* mae decoder */
	Linear embed, pred;
	Tensor *mask_token, *dpos;
	Block dblocks[2];
	LayerNorm dnorm;
	int n_patches, n_keep;
	/* inputs */
	float *x1, *x2;           /* (B,C,H,W) views */
	int C, H, W;
	int *ids, *targets;       /* char_transformer (B*T) */
	int B, T;
} Bench;

static int build(Bench *b, const char *name, char *err, size_t errlen)
{
	EncoderConfig ec;
	b->name = name;
	b->unit = "img/s";
	b->B = 256;
	b->per_step = 256;
	b->C = 1;
	b->H = b->W = 28;
	rng_seed(&b->rng, 1);
	b->ps = paramset_new();
	if (!b->ps)
		return -1;
	int rc = -1;
	if (strncmp(name, "resnet18", 8) == 0) {
		ResnetConfig rcfg;
		resnet_config_preset(&rcfg, 18);
		rcfg.stem = RESNET_STEM_CIFAR;
		if (strcmp(name, "resnet18_w05") == 0)
			rcfg.width = 0.5f;
		else if (strcmp(name, "resnet18") != 0) {
			snprintf(err, errlen, "unknown model %s", name);
			return -1;
		}
		b->B = 128;          /* two views of 128: 256 images per step */
		b->per_step = 256;
		b->C = 3;
		b->H = b->W = 32;
		if ((rc = resnet_new(&rcfg, b->ps, "encoder", 3, 32, 32, &b->rng, &b->resnet, err,
		                     errlen)) < 0)
			return rc;
		int head[3] = { resnet_out_dim(b->resnet), 512, 128 };
		if (mlp_new(b->ps, "proj", head, 3, 1, &b->rng, &b->head) < 0)
			return -1;
	} else if (strncmp(name, "simclr_", 7) == 0) {
		int head[3] = { 128, 128, 128 };
		if (strcmp(name, "simclr_mlp") == 0) {
			encoder_config_default(&ec, ENC_MLP);            /* 784-1024-1024-128 */
		} else if (strcmp(name, "simclr_cnn") == 0 || strcmp(name, "simclr_cnn_s1") == 0) {
			encoder_config_default(&ec, ENC_CNN);            /* {32,64,128} */
			if (strcmp(name, "simclr_cnn_s1") == 0) {
				ec.n_strides = 3;
				ec.strides[0] = ec.strides[1] = ec.strides[2] = 1;
			}
			head[1] = 512;                                   /* the example's proj_hidden */
		} else {
			snprintf(err, errlen, "unknown model %s", name);
			return -1;
		}
		if ((rc = encoder_new(&ec, b->ps, "encoder", 1, 28, 28, &b->rng, &b->enc, err, errlen)) < 0)
			return rc;
		if (mlp_new(b->ps, "proj", head, 3, 1, &b->rng, &b->head) < 0)
			return -1;
	} else if (strcmp(name, "char_transformer") == 0) {
		encoder_config_default(&ec, ENC_TRANSFORMER);
		ec.causal = 1;
		b->B = 32;
		b->T = 128;
		b->unit = "tok/s";
		b->per_step = b->B * b->T;
		if ((rc = encoder_new(&ec, b->ps, "encoder", 1, 1, b->T, &b->rng, &b->enc, err, errlen)) < 0)
			return rc;
		b->tf = encoder_transformer(b->enc);
		b->ids = malloc((size_t)b->B * b->T * sizeof *b->ids);
		b->targets = malloc((size_t)b->B * b->T * sizeof *b->targets);
		if (!b->ids || !b->targets)
			return -1;
		for (int i = 0; i < b->B * b->T; i++) {
			b->ids[i] = (int)rng_below(&b->rng, 256);
			b->targets[i] = (int)rng_below(&b->rng, 256);
		}
	} else if (strcmp(name, "mae_vit") == 0) {
		encoder_config_default(&ec, ENC_VIT);                /* d 128, depth 4, heads 4, patch 4 */
		if ((rc = encoder_new(&ec, b->ps, "encoder", 1, 28, 28, &b->rng, &b->enc, err, errlen)) < 0)
			return rc;
		b->n_patches = encoder_n_patches(b->enc);
		b->n_keep = (int)lround(0.25 * b->n_patches);
		int Dd = 64, N = b->n_patches;
		char nm[64];
		if (linear_init(&b->embed, b->ps, "decoder.embed", 128, Dd, 1, &b->rng) < 0 ||
		    !(b->mask_token = paramset_add(b->ps, "decoder.mask_token", 3, (int[]){ 1, 1, Dd }, 0)) ||
		    !(b->dpos = paramset_add(b->ps, "decoder.pos_embed", 3, (int[]){ 1, N, Dd }, 0)))
			return -1;
		for (size_t i = 0; i < b->mask_token->size; i++)
			b->mask_token->data[i] = 0.02f * rng_normal(&b->rng);
		for (size_t i = 0; i < b->dpos->size; i++)
			b->dpos->data[i] = 0.02f * rng_normal(&b->rng);
		for (int i = 0; i < 2; i++) {
			snprintf(nm, sizeof nm, "decoder.blocks.%d", i);
			if (block_init(&b->dblocks[i], b->ps, nm, Dd, 4, 4, 0, 0.0f, &b->rng) < 0)
				return -1;
		}
		if (layernorm_init(&b->dnorm, b->ps, "decoder.norm", Dd) < 0 ||
		    linear_init(&b->pred, b->ps, "decoder.pred", Dd, 16, 1, &b->rng) < 0)
			return -1;
	} else if (strcmp(name, "vae_mlp") == 0) {
		encoder_config_default(&ec, ENC_MLP);
		ec.hidden[0] = 512;
		ec.hidden[1] = 256;
		ec.out_dim = 128;
		if ((rc = encoder_new(&ec, b->ps, "encoder", 1, 28, 28, &b->rng, &b->enc, err, errlen)) < 0)
			return rc;
		int dec[4] = { 16, 256, 512, 784 };
		if (linear_init(&b->mu, b->ps, "posterior.mu", 128, 16, 1, &b->rng) < 0 ||
		    linear_init(&b->logvar, b->ps, "posterior.logvar", 128, 16, 1, &b->rng) < 0 ||
		    mlp_new(b->ps, "decoder", dec, 4, 1, &b->rng, &b->dec) < 0)
			return -1;
	} else {
		snprintf(err, errlen, "unknown model %s", name);
		return -1;
	}
	if (!b->ids) {
		size_t n = (size_t)b->B * b->C * b->H * b->W;
		b->x1 = malloc(n * sizeof *b->x1);
		b->x2 = malloc(n * sizeof *b->x2);
		if (!b->x1 || !b->x2)
			return -1;
		for (size_t i = 0; i < n; i++) {
			b->x1[i] = rng_uniform(&b->rng);
			b->x2[i] = rng_uniform(&b->rng);
		}
	}
	return 0;
}

static void bench_free(Bench *b)
{
	encoder_free(b->enc);
	resnet_free(b->resnet);
	mlp_free(b->head);
	mlp_free(b->dec);
	paramset_free(b->ps);
	free(b->x1);
	free(b->x2);
	free(b->ids);
	free(b->targets);
}

// x (B,1,28,28) -> masked MSE of the MAE step (mae.c's forward, raw-pixel targets)
static Tensor *mae_loss(Ctx *ctx, Bench *b, Tensor *x)
{
	int B = b->B, N = b->n_patches, K = b->n_keep, Dd = 64, R = B * N;
	Rng *rng = ctx_rng(ctx);
	int *perm = ctx_alloc(ctx, (size_t)N * sizeof *perm);
	int *keep = ctx_alloc(ctx, (size_t)B * K * sizeof *keep);
	int *gather = ctx_alloc(ctx, (size_t)R * sizeof *gather);
	float *masked = ctx_alloc(ctx, (size_t)R * sizeof *masked);
	mae_draw_masks(N, K, B, rng, perm, keep, masked, gather);
	Tensor *target = ctx_tensor(ctx, 2, (int[]){ R, 16 });   /* patchify, (y,x) inside a patch */
	for (int s = 0; s < B; s++)
		for (int p = 0; p < N; p++) {
			float *o = target->data + ((size_t)s * N + p) * 16;
			const float *img = x->data + (size_t)s * 784 + (p / 7) * 4 * 28 + (p % 7) * 4;
			for (int py = 0; py < 4; py++)
				for (int px = 0; px < 4; px++)
					*o++ = img[py * 28 + px];
		}
	Tensor *t = encoder_forward_patches(ctx, b->enc, x, keep, K);        // (B,K,D)
	t = linear_forward(ctx, &b->embed, t);                               // (B,K,Dd)
	Tensor *mt = op_add(ctx, ctx_zeros(ctx, 3, (int[]){ B, N - K, Dd }), b->mask_token);
	Tensor *seq = op_concat(ctx, (Tensor *[]){ t, mt }, 2, 1);           // (B,N,Dd)
	seq = op_reshape(ctx, seq, 2, (int[]){ R, Dd });
	seq = op_gather_rows(ctx, seq, gather, R);
	seq = op_reshape(ctx, seq, 3, (int[]){ B, N, Dd });
	seq = op_add(ctx, seq, b->dpos);
	for (int i = 0; i < 2; i++)
		seq = block_forward(ctx, &b->dblocks[i], seq);
	seq = layernorm_forward(ctx, &b->dnorm, seq);
	Tensor *pred = linear_forward(ctx, &b->pred, seq);
	pred = op_reshape(ctx, pred, 2, (int[]){ R, 16 });
	return op_masked_mse(ctx, pred, target, masked);
}

static Tensor *loss_of(Ctx *ctx, Bench *b)
{
	int B = b->B;
	if (b->head) { /* simclr */
		const int shape[4] = { B, b->C, b->H, b->W };
		Tensor *v1 = ctx_wrap(ctx, b->x1, 4, shape);
		Tensor *v2 = ctx_wrap(ctx, b->x2, 4, shape);
		Tensor *x = op_concat(ctx, (Tensor *[]){ v1, v2 }, 2, 0);
		Tensor *f = b->resnet ? resnet_forward(ctx, b->resnet, x) : encoder_forward(ctx, b->enc, x);
		Tensor *z = mlp_forward(ctx, b->head, f);
		return op_nt_xent(ctx, z, 0.5f);
	}
	if (b->tf) {
		Tensor *h = encoder_forward_tokens(ctx, b->enc, b->ids, B, b->T);   // (B,T,D)
		h = op_reshape(ctx, h, 2, (int[]){ B * b->T, b->tf->dim });
		Tensor *logits = op_matmul(ctx, h, b->tf->wte.weight, 0, 1);       // (B*T,256)
		return op_cross_entropy(ctx, logits, b->targets, 0.0f);
	}
	Tensor *x = ctx_wrap(ctx, b->x1, 4, (int[]){ B, 1, 28, 28 });
	if (b->n_patches)
		return mae_loss(ctx, b, x);
	/* vae */
	Tensor *f = encoder_forward(ctx, b->enc, x);
	Tensor *mu = linear_forward(ctx, &b->mu, f), *lv = linear_forward(ctx, &b->logvar, f);
	Tensor *eps = ctx_tensor(ctx, 2, (int[]){ B, 16 });
	for (size_t i = 0; i < eps->size; i++)
		eps->data[i] = rng_normal(ctx_rng(ctx));
	Tensor *z = op_add(ctx, mu, op_mul(ctx, op_exp(ctx, op_scale(ctx, lv, 0.5f)), eps));
	Tensor *logits = mlp_forward(ctx, b->dec, z);                          // (B,784)
	Tensor *xf = ctx_wrap(ctx, b->x1, 2, (int[]){ B, 784 });
	Tensor *recon = op_scale(ctx, op_bce_logits(ctx, logits, xf), 784.0f);
	return op_add(ctx, recon, op_kl_gaussian(ctx, mu, lv));
}

/* ---------------------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

#define MAX_STEPS 1000

int main(int argc, char **argv)
{
	const char *model = NULL;
	int threads = 2, steps = 30, warmup = 3, do_replay = 1;
	double seconds = 15.0;
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--model") == 0)
			model = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
			threads = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--steps") == 0)
			steps = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--seconds") == 0)
			seconds = atof(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--warmup") == 0)
			warmup = atoi(argv[++i]);
		else if (strcmp(argv[i], "--no-replay") == 0)
			do_replay = 0;
		else {
			model = NULL;
			break;
		}
	}
	if (!model || threads < 1 || steps < 1 || steps > MAX_STEPS || warmup < 1) {
		fprintf(stderr, "usage: %s --model simclr_mlp|simclr_cnn|simclr_cnn_s1|resnet18|resnet18_w05|"
		        "char_transformer|mae_vit|vae_mlp [--threads N] [--steps N] [--seconds S] [--warmup N] "
		        "[--no-replay]\n", argv[0]);
		return 2;
	}
	eng_set_threads(threads);
	Bench b = { 0 };
	char err[256] = "";
	if (build(&b, model, err, sizeof err) < 0) {
		fprintf(stderr, "compare_ssld: %s: %s\n", model, err[0] ? err : "out of memory");
		bench_free(&b);
		return 1;
	}
	Ctx *ctx = ctx_new(7);
	OptimConfig oc;
	optim_config_default(&oc, OPT_ADAMW);
	oc.lr = 1e-3f;
	oc.weight_decay = 1e-4f;
	Optim *opt = NULL;
	if (!ctx || optim_new(&oc, b.ps, &opt) < 0) {
		fprintf(stderr, "compare_ssld: out of memory\n");
		return 1;
	}
	ctx_set_threads(ctx, threads);

	static double walls[MAX_STEPS];
	double cpu_total = 0.0, loss = 0.0;
	long long flops = 0;
	int n = 0;
	double t_end = 0.0;
	for (int s = 0; s < warmup + steps; s++) {
		int timed = s >= warmup;
		if (s == warmup)
			t_end = wall_now() + seconds;
		if (timed && n >= 3 && wall_now() > t_end)
			break;
		atomic_store(&recording, s == warmup - 1);
		atomic_store(&gemm_flops, 0);
		double w0 = wall_now(), c0 = cpu_now();
		paramset_zero_grad(b.ps);
		ctx_reset(ctx);
		Tensor *l = loss_of(ctx, &b);
		ctx_backward(ctx, l);
		optim_step(opt, oc.lr);
		double w = wall_now() - w0, c = cpu_now() - c0;
		loss = l->data[0];
		if (timed) {
			walls[n++] = w;
			cpu_total += c;
			flops = atomic_load(&gemm_flops);
		}
	}
	atomic_store(&recording, 0);
	/* Peak RSS of the training steps: VmHWM (ru_maxrss would carry over the parent's peak across
	 * fork + exec, e.g. a Python driver's), read before the replay allocates its own buffers. */
	double hwm_kb = 0.0;
	FILE *st = fopen("/proc/self/status", "r");
	char line[256];
	while (st && fgets(line, sizeof line, st))
		if (sscanf(line, "VmHWM: %lf kB", &hwm_kb) == 1)
			break;
	if (st)
		fclose(st);
	/* raw figures print as 0 with --no-replay */
	double raw_wall = 0.0, raw_cpu = 0.0, blas_wall = 0.0, blas_cpu = 0.0;
	if (do_replay) {
		replay_threads(threads, 3, &raw_wall, &raw_cpu);   /* OpenBLAS at 1 thread, as the step */
		openblas_set_num_threads(threads);
		replay_serial(3, &blas_wall, &blas_cpu);
		openblas_set_num_threads(1);
	}
	qsort(walls, (size_t)n, sizeof *walls, cmp_double);
	double med = walls[n / 2], cpu = cpu_total / n;
	double gflop = (double)flops * 1e-9;
	printf("{\"impl\": \"ssld\", \"model\": \"%s\", \"threads\": %d, \"steps\": %d, "
	       "\"step_ms\": %.3f, \"best_step_ms\": %.3f, \"cpu_ms_per_step\": %.3f, "
	       "\"per_step\": %d, \"unit\": \"%s\", \"throughput\": %.2f, \"cpu_throughput\": %.2f, "
	       "\"peak_rss_mb\": %.1f, \"loss\": %.6g, \"sgemm_gflop_per_step\": %.4f, "
	       "\"gflops\": %.2f, \"cpu_gflops\": %.2f, \"raw_sgemm_gflops\": %.2f, "
	       "\"raw_sgemm_cpu_gflops\": %.2f, \"raw_sgemm_blas_threads_gflops\": %.2f, "
	       "\"raw_sgemm_blas_threads_cpu_gflops\": %.2f, \"recorded_threads\": %d, "
	       "\"params\": %zu, \"arena_used_mb\": %.1f, "
	       "\"arena_capacity_mb\": %.1f, \"blas_core\": \"%s\", \"simd\": \"%s\"}\n",
	       model, threads, n, 1e3 * med, 1e3 * walls[0], 1e3 * cpu, b.per_step, b.unit,
	       b.per_step / med, b.per_step * threads / cpu, hwm_kb / 1024.0, loss, gflop,
	       gflop / med, gflop * threads / cpu, raw_wall > 0 ? gflop / raw_wall : 0.0,
	       raw_cpu > 0 ? gflop * threads / raw_cpu : 0.0, blas_wall > 0 ? gflop / blas_wall : 0.0,
	       blas_cpu > 0 ? gflop * threads / blas_cpu : 0.0, atomic_load(&nslots),
	       paramset_numel(b.ps, 1), ctx_arena_used(ctx) / 1048576.0,
	       ctx_arena_capacity(ctx) / 1048576.0, openblas_get_corename(),
	       simd_level_name(simd()->level));
	optim_free(opt);
	ctx_free(ctx);
	bench_free(&b);
	return 0;
}
