/* test_conv_winograd.c - engine/conv_winograd.c against double-precision direct convolutions.
 *
 * conv2d (3x3, stride 1, pad 1) with the Winograd path forced: the forward, and dX, dW, db through
 * a weighted-sum loss (dX through the Winograd path with the flipped filter, dW through its
 * adjoint transforms, db summed), over odd and even planes, planes of one pixel, several tile
 * blocks with a block boundary inside an image, and a dX that accumulates into gradient already
 * there; and one case in auto mode, where dW falls back to im2col. Also:
 * the results on two threads (y, dX) equal the one-thread results bit for bit (blocks are cut
 * independently of the thread count), dW run to run, and SSLD_CONV's modes choose the paths they say.
 * The value cases run at every vector level of the transforms the CPU runs (simd.h): a level
 * only reorders the same sums, so one bound covers them all.
 *
 * Error bound. F(2x2,3x3) computes y = A^T [sum_c U_c .* V_c] A + b with V = B^T d B (two
 * roundings: each side sums two terms), U = G g G^T (computed in double, rounded once), the
 * sum over c (C products and sums: gamma_C, as a dot product in tests/tolerance.h), A^T . A (four
 * roundings: each side sums three terms) and the bias (one). Every stage's error is relative to
 * the same stage computed on absolute values, so (Higham 3.5, products of matrices)
 *     |y_got - y| <= (C + 8) FLT_EPSILON * M,
 *     M = |A^T| [sum_c (|G| |g_c| |G^T|) .* (|B^T| |d_c| |B|)] |A| + |b|,
 * which ref_wino_mag computes. Expanded, M sums |d_p| |g_r| over each output's own 3x3 input
 * window (the direct convolution's inputs) paired with all 9 taps, with coefficients of at most
 * 2 per axis: M <= 4 sum_c (sum over the window |d|) (sum over taps |g|), where the direct
 * convolution's own magnitude sum_c sum |d_p g_p| keeps only the matching pairs. That factor
 * (a few times the direct bound on typical data) is Winograd's price; F(4x4,3x3)'s transforms
 * have coefficients up to 8 per axis and were left out for it. dX is the same computation on dy
 * with the flipped filter (k = K + 8, the last rounding the accumulation into an existing dX).
 * dW = G^T [sum over the T tiles (B^T d B) .* (A dy A^T)] G: two roundings on either transform,
 * a sum of T products, four in G^T . G, so k = T + 8 with M the same expression on absolute
 * values (ref_wino_dw_mag).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_winograd.h"
#include "ctx.h"
#include "ops.h"
#include "rng.h"
#include "simd.h"
#include "tape.h"
#include "check.h"
#include "../tolerance.h"
#include "../support/wsum.h"

static Rng rng;

static Tensor *rand_tensor(Ctx *ctx, int ndim, const int *shape, int requires_grad)
{
	Tensor *t = ctx_tensor(ctx, ndim, shape);
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = rng_uniform_range(&rng, -1.0f, 1.0f);
	t->requires_grad = (uint8_t)requires_grad;
	return t;
}

/* ---------------------------------------------------------------------------------------------- */
/* references */

// y (N,K,H,W) = the direct 3x3 / stride 1 / pad 1 convolution of x (N,C,H,W) by w (K,C,3,3), double
static void ref_direct(const float *x, const float *w, int N, int C, int H, int W, int K, double *y)
{
	for (int n = 0; n < N; n++)
		for (int k = 0; k < K; k++)
			for (int oh = 0; oh < H; oh++)
				for (int ow = 0; ow < W; ow++) {
					double s = 0.0;
					for (int c = 0; c < C; c++)
						for (int i = 0; i < 3; i++)
							for (int q = 0; q < 3; q++) {
								const int ih = oh - 1 + i, iw = ow - 1 + q;
								if (ih < 0 || ih >= H || iw < 0 || iw >= W)
									continue;
								s += (double)x[(((size_t)n * C + c) * H + ih) * W + iw] *
								     w[(((size_t)k * C + c) * 3 + i) * 3 + q];
							}
					y[(((size_t)n * K + k) * H + oh) * W + ow] = s;
				}
}

static const double absBt[4][4] = { { 1, 0, 1, 0 }, { 0, 1, 1, 0 }, { 0, 1, 1, 0 }, { 0, 1, 0, 1 } };
static const double absG[4][3] = { { 1, 0, 0 }, { .5, .5, .5 }, { .5, .5, .5 }, { 0, 0, 1 } };
static const double absAt[2][4] = { { 1, 1, 1, 0 }, { 0, 1, 1, 1 } };

// mag (N,K,H,W) = M of the header comment for x (N,C,H,W), w (K,C,3,3)
static void ref_wino_mag(const float *x, const float *w, int N, int C, int H, int W, int K,
                         double *mag)
{
	const int th = (H + 1) / 2, tw = (W + 1) / 2;
	double *Ua = malloc((size_t)K * C * 16 * sizeof *Ua);
	double *Va = malloc((size_t)C * 16 * sizeof *Va);
	for (size_t kc = 0; kc < (size_t)K * C; kc++)
		for (int a = 0; a < 4; a++)
			for (int b = 0; b < 4; b++) {
				double s = 0.0;
				for (int i = 0; i < 3; i++)
					for (int q = 0; q < 3; q++)
						s += absG[a][i] * fabs((double)w[kc * 9 + i * 3 + q]) * absG[b][q];
				Ua[kc * 16 + a * 4 + b] = s;
			}
	for (int n = 0; n < N; n++)
		for (int ty = 0; ty < th; ty++)
			for (int tx = 0; tx < tw; tx++) {
				for (int c = 0; c < C; c++)
					for (int a = 0; a < 4; a++)
						for (int b = 0; b < 4; b++) {
							double s = 0.0;
							for (int p = 0; p < 4; p++)
								for (int r = 0; r < 4; r++) {
									const int iy = 2 * ty - 1 + p, ix = 2 * tx - 1 + r;
									if (iy < 0 || iy >= H || ix < 0 || ix >= W)
										continue;
									s += absBt[a][p] * absBt[b][r] *
									     fabs((double)x[(((size_t)n * C + c) * H + iy) * W + ix]);
								}
							Va[c * 16 + a * 4 + b] = s;
						}
				for (int k = 0; k < K; k++) {
					double m[16] = { 0 };
					for (int c = 0; c < C; c++)
						for (int xi = 0; xi < 16; xi++)
							m[xi] += Ua[((size_t)k * C + c) * 16 + xi] * Va[c * 16 + xi];
					for (int oa = 0; oa < 2; oa++)
						for (int ob = 0; ob < 2; ob++) {
							const int oy = 2 * ty + oa, ox = 2 * tx + ob;
							if (oy >= H || ox >= W)
								continue;
							double s = 0.0;
							for (int a = 0; a < 4; a++)
								for (int b = 0; b < 4; b++)
									s += absAt[oa][a] * m[a * 4 + b] * absAt[ob][b];
							mag[(((size_t)n * K + k) * H + oy) * W + ox] = s;
						}
				}
			}
	free(Ua);
	free(Va);
}

static const double absA[4][2] = { { 1, 0 }, { 1, 1 }, { 1, 1 }, { 0, 1 } };
static const double absGt[3][4] = { { 1, .5, .5, 0 }, { 0, .5, .5, 0 }, { 0, .5, .5, 1 } };

// mag (K,C,3,3) = the weight gradient's M (header comment) for x (N,C,H,W), dy (N,K,H,W)
static void ref_wino_dw_mag(const float *x, const float *dy, int N, int C, int H, int W, int K,
                            double *mag)
{
	const int th = (H + 1) / 2, tw = (W + 1) / 2;
	double *Sa = calloc((size_t)K * C * 16, sizeof *Sa);
	double *Va = malloc((size_t)C * 16 * sizeof *Va), *Za = malloc((size_t)K * 16 * sizeof *Za);
	for (int n = 0; n < N; n++)
		for (int ty = 0; ty < th; ty++)
			for (int tx = 0; tx < tw; tx++) {
				for (int c = 0; c < C; c++)
					for (int a = 0; a < 4; a++)
						for (int b = 0; b < 4; b++) {
							double v = 0.0;
							for (int p = 0; p < 4; p++)
								for (int r = 0; r < 4; r++) {
									const int iy = 2 * ty - 1 + p, ix = 2 * tx - 1 + r;
									if (iy >= 0 && iy < H && ix >= 0 && ix < W)
										v += absBt[a][p] * absBt[b][r] *
										     fabs((double)x[(((size_t)n * C + c) * H + iy) * W + ix]);
								}
							Va[c * 16 + a * 4 + b] = v;
						}
				for (int k = 0; k < K; k++)
					for (int a = 0; a < 4; a++)
						for (int b = 0; b < 4; b++) {
							double z = 0.0;
							for (int p = 0; p < 2; p++)
								for (int r = 0; r < 2; r++) {
									const int oy = 2 * ty + p, ox = 2 * tx + r;
									if (oy < H && ox < W)
										z += absA[a][p] * absA[b][r] *
										     fabs((double)dy[(((size_t)n * K + k) * H + oy) * W + ox]);
								}
							Za[k * 16 + a * 4 + b] = z;
						}
				for (size_t kc = 0; kc < (size_t)K * C; kc++)
					for (int xi = 0; xi < 16; xi++)
						Sa[kc * 16 + xi] += Za[(kc / C) * 16 + xi] * Va[(kc % C) * 16 + xi];
			}
	for (size_t kc = 0; kc < (size_t)K * C; kc++)
		for (int i = 0; i < 3; i++)
			for (int q = 0; q < 3; q++) {
				double m = 0.0;
				for (int a = 0; a < 4; a++)
					for (int b = 0; b < 4; b++)
						m += absGt[i][a] * Sa[kc * 16 + a * 4 + b] * absGt[q][b];
				mag[kc * 9 + i * 3 + q] = m;
			}
	free(Sa), free(Va), free(Za);
}

/* w (K,C,3,3) -> wf (C,K,3,3), wf[c][k][i][j] = w[k][c][2-i][2-j]: dX's filter */
static float *flip_filter(const float *w, int K, int C)
{
	float *wf = malloc((size_t)K * C * 9 * sizeof *wf);
	for (int k = 0; k < K; k++)
		for (int c = 0; c < C; c++)
			for (int i = 0; i < 9; i++)
				wf[((size_t)c * K + k) * 9 + i] = w[((size_t)k * C + c) * 9 + (8 - i)];
	return wf;
}

/* ---------------------------------------------------------------------------------------------- */

typedef struct Case {
	int N, C, H, W, K, bias;
} Case;

/* Forward and backward of one case on `threads` threads with Winograd forced; checks the values
 * against the references and keeps y and dX (malloc'd) for the thread comparison. */
static void run_case(const Case *c, size_t t, int threads, int dx_accumulates, ConvAlgo mode,
                     float **y_out, float **dx_out, float **dw_out)
{
	const uint64_t seed = 1000 + t;
	Rng saved = rng;
	rng_seed(&rng, seed);
	Ctx *ctx = ctx_new(1);
	ctx_set_threads(ctx, threads);
	Tensor *x = rand_tensor(ctx, 4, (int[]){ c->N, c->C, c->H, c->W }, 1);
	Tensor *w = rand_tensor(ctx, 4, (int[]){ c->K, c->C, 3, 3 }, 1);
	Tensor *b = c->bias ? rand_tensor(ctx, 1, (int[]){ c->K }, 1) : NULL;
	float *G = ctx_alloc(ctx, (size_t)c->N * c->K * c->H * c->W * sizeof *G);
	for (size_t i = 0; i < (size_t)c->N * c->K * c->H * c->W; i++)
		G[i] = rng_uniform_range(&rng, -1.0f, 1.0f);
	rng = saved;

	conv_algo_set(mode);
	CHECK(conv_winograd_chosen(c->C, c->K, c->H, c->W, 3, 3, 1, 1), "case %zu: Winograd in %s mode",
	      t, conv_algo_name(mode));
	const int dw_wino = conv_winograd_dw_chosen(c->C, c->K, c->H, c->W);
	Tensor *y = op_conv2d(ctx, x, w, b, 1, 1);
	if (dx_accumulates) {
		float *dx0 = ctx_grad(ctx, x);
		for (size_t i = 0; i < x->size; i++)
			dx0[i] = 0.25f;
	}
	/* the mode stays in force through the backward, which chooses dW's path again */
	CHECK(ctx_backward(ctx, wsum(ctx, y, G)) == 0, "case %zu: backward", t);
	conv_algo_set(CONV_ALGO_COUNT);

	const size_t ny = y->size, nx = x->size;
	double *ref = malloc(ny * sizeof *ref), *mag = malloc(ny * sizeof *mag);
	char what[96];
	ref_direct(x->data, w->data, c->N, c->C, c->H, c->W, c->K, ref);
	ref_wino_mag(x->data, w->data, c->N, c->C, c->H, c->W, c->K, mag);
	for (size_t i = 0; i < ny; i++) {
		const double bv = b ? b->data[(i / ((size_t)c->H * c->W)) % (size_t)c->K] : 0.0;
		ref[i] += bv;
		mag[i] += fabs(bv);
	}
	snprintf(what, sizeof what, "winograd case %zu (%d threads) forward", t, threads);
	failures += tol_check(what, y->data, ref, mag, ny, c->C + 8);

	/* dX = conv(G, flipped w): the same references with the roles swapped */
	float *wf = flip_filter(w->data, c->K, c->C);
	double *dref = malloc(nx * sizeof *dref), *dmag = malloc(nx * sizeof *dmag);
	ref_direct(G, wf, c->N, c->K, c->H, c->W, c->C, dref);
	ref_wino_mag(G, wf, c->N, c->K, c->H, c->W, c->C, dmag);
	if (dx_accumulates)
		for (size_t i = 0; i < nx; i++)
			dref[i] += 0.25, dmag[i] += 0.25;
	snprintf(what, sizeof what, "winograd case %zu (%d threads) dx%s", t, threads,
	         dx_accumulates ? " (accumulated)" : "");
	failures += tol_check(what, x->grad, dref, dmag, nx, c->K + 8);

	/* dW and db (im2col): direct sums over N*H*W products (tolerance.h) */
	double *dw = calloc(w->size, sizeof *dw), *dwm = calloc(w->size, sizeof *dwm);
	double *db = calloc((size_t)c->K, sizeof *db), *dbm = calloc((size_t)c->K, sizeof *dbm);
	for (int n = 0; n < c->N; n++)
		for (int k = 0; k < c->K; k++)
			for (int oh = 0; oh < c->H; oh++)
				for (int ow = 0; ow < c->W; ow++) {
					const double g = G[(((size_t)n * c->K + k) * c->H + oh) * c->W + ow];
					db[k] += g;
					dbm[k] += fabs(g);
					for (int ci = 0; ci < c->C; ci++)
						for (int i = 0; i < 9; i++) {
							const int ih = oh - 1 + i / 3, iw = ow - 1 + i % 3;
							if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W)
								continue;
							const double v = g * x->data[(((size_t)n * c->C + ci) * c->H + ih) *
							                             c->W + iw];
							dw[((size_t)k * c->C + ci) * 9 + i] += v;
							dwm[((size_t)k * c->C + ci) * 9 + i] += fabs(v);
						}
				}
	/* im2col: N*H*W products per element; Winograd: T = N*th*tw tile products, after two
	 * roundings on either transform, then four in G^T . G (header comment) */
	const double k_dw = (double)c->N * c->H * c->W;
	const double T = (double)c->N * ((c->H + 1) / 2) * ((c->W + 1) / 2);
	if (dw_wino)
		ref_wino_dw_mag(x->data, G, c->N, c->C, c->H, c->W, c->K, dwm);
	snprintf(what, sizeof what, "winograd case %zu (%d threads) dw (%s)", t, threads,
	         dw_wino ? "winograd" : "im2col");
	failures += tol_check(what, w->grad, dw, dwm, w->size, dw_wino ? T + 8 : k_dw);
	if (b) {
		snprintf(what, sizeof what, "winograd case %zu (%d threads) db", t, threads);
		failures += tol_check(what, b->grad, db, dbm, (size_t)c->K, k_dw);
	}
	if (y_out) {
		*y_out = malloc(ny * sizeof **y_out);
		memcpy(*y_out, y->data, ny * sizeof **y_out);
		*dx_out = malloc(nx * sizeof **dx_out);
		memcpy(*dx_out, x->grad, nx * sizeof **dx_out);
		*dw_out = malloc(w->size * sizeof **dw_out);
		memcpy(*dw_out, w->grad, w->size * sizeof **dw_out);
	}
	free(wf);
	free(ref), free(mag), free(dref), free(dmag);
	free(dw), free(dwm), free(db), free(dbm);
	ctx_free(ctx);
}

static void test_values(void)
{
	static const Case cases[] = {
		{ 2, 3, 6, 6, 4, 1 },
		{ 1, 2, 5, 7, 3, 0 },      /* odd planes: the last tiles write one row / column */
		{ 3, 1, 1, 1, 2, 1 },      /* one pixel: a tile that is mostly padding */
		{ 2, 2, 1, 9, 2, 1 },
		{ 2, 4, 3, 2, 3, 0 },
		{ 2, 40, 8, 8, 36, 1 },    /* dW on the chunked lowering */
		{ 3, 33, 13, 15, 40, 0 },  /* dW one image at a time, odd planes */
		{ 9, 64, 16, 16, 32, 1 },  /* 576 tiles: two blocks, the boundary inside an image */
	};
	/* every vector level this CPU runs: the transforms are compiled once per level */
	int levels = 0;
	for (int l = 0; l < SIMD_LEVEL_COUNT; l++) {
		if (conv_winograd_set_level((SimdLevel)l) != 0) {
			CHECK(simd_at((SimdLevel)l) == NULL, "level %s refused though the CPU runs it",
			      simd_level_name((SimdLevel)l));
			continue;
		}
		levels++;
		for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++)
			run_case(&cases[t], t, 1, (int)(t % 2), CONV_ALGO_WINOGRAD, NULL, NULL, NULL);
	}
	CHECK(levels == (int)simd_cpu_level() + 1, "%d levels run, the CPU has %d", levels,
	      (int)simd_cpu_level() + 1);
	CHECK(conv_winograd_set_level(SIMD_LEVEL_COUNT) == 0, "back to simd()'s level");
	/* auto: Winograd forward and dX, dW by im2col (few channels, small planes) */
	static const Case small = { 8, 32, 8, 8, 32, 1 };
	conv_algo_set(CONV_ALGO_AUTO);
	CHECK(!conv_winograd_dw_chosen(small.C, small.K, small.H, small.W), "auto: im2col dW here");
	run_case(&small, 50, 2, 1, CONV_ALGO_AUTO, NULL, NULL, NULL);
}

/* Two threads give the one-thread forward and dX exactly (the block cut is the same). dW's
 * products each sum the blocks in order on one thread, but under OpenBLAS's Haswell kernels a
 * product computed on a pool thread differs in the last bits from the same one on the caller
 * (cause not found; SkylakeX and Cooperlake give equal bits): dW is held to the reference bound
 * on either thread count (run_case) and checked bit for bit run to run. */
static void test_threads(void)
{
	static const Case c = { 9, 64, 16, 16, 32, 1 };
	float *y1, *dx1, *dw1, *y2, *dx2, *dw2;
	run_case(&c, 100, 2, 0, CONV_ALGO_WINOGRAD, &y1, &dx1, &dw1);
	run_case(&c, 100, 2, 0, CONV_ALGO_WINOGRAD, &y2, &dx2, &dw2);
	CHECK(memcmp(dw1, dw2, (size_t)c.K * c.C * 9 * sizeof *dw1) == 0,
	      "dw differs between two runs on 2 threads");
	free(y1), free(dx1), free(dw1);
	run_case(&c, 100, 1, 0, CONV_ALGO_WINOGRAD, &y1, &dx1, &dw1);
	const size_t ny = (size_t)c.N * c.K * c.H * c.W, nx = (size_t)c.N * c.C * c.H * c.W;
	CHECK(memcmp(y1, y2, ny * sizeof *y1) == 0, "forward on 2 threads differs from 1 thread");
	CHECK(memcmp(dx1, dx2, nx * sizeof *dx1) == 0, "dx on 2 threads differs from 1 thread");
	free(y1), free(dx1), free(dw1), free(y2), free(dx2), free(dw2);
}

static void test_modes(void)
{
	/* SSLD_CONV is read at the first query (this test sets it before any) */
	setenv("SSLD_CONV", "im2col", 1);
	CHECK(conv_algo() == CONV_ALGO_IM2COL, "SSLD_CONV=im2col read as %s",
	      conv_algo_name(conv_algo()));
	CHECK(!conv_winograd_chosen(64, 64, 16, 16, 3, 3, 1, 1), "im2col mode chose Winograd");
	conv_algo_set(CONV_ALGO_WINOGRAD);
	CHECK(conv_winograd_chosen(1, 1, 1, 1, 3, 3, 1, 1), "winograd mode: a 3x3 s1 p1 conv");
	CHECK(!conv_winograd_chosen(64, 64, 16, 16, 3, 3, 2, 1), "winograd mode took stride 2");
	CHECK(!conv_winograd_chosen(64, 64, 16, 16, 3, 3, 1, 0), "winograd mode took pad 0");
	CHECK(!conv_winograd_chosen(64, 64, 16, 16, 5, 5, 1, 1), "winograd mode took 5x5");
	conv_algo_set(CONV_ALGO_AUTO);
	CHECK(conv_winograd_chosen(64, 64, 16, 16, 3, 3, 1, 1), "auto: 64 channels, 16x16");
	CHECK(!conv_winograd_chosen(3, 64, 32, 32, 3, 3, 1, 1), "auto: the RGB stem");
	CHECK(!conv_winograd_chosen(64, 64, 4, 4, 3, 3, 1, 1), "auto: a 4x4 plane");
	CHECK(!conv_winograd_chosen(16, 16, 32, 32, 3, 3, 1, 1), "auto: 16 channels");
	CHECK(conv_winograd_dw_chosen(64, 64, 32, 32), "auto: dW at 64 channels, 32x32");
	CHECK(conv_winograd_dw_chosen(32, 32, 32, 32), "auto: dW at 32 channels, 32x32");
	CHECK(!conv_winograd_dw_chosen(32, 32, 8, 8), "auto: dW at 32 channels, 8x8");
	CHECK(conv_winograd_dw_chosen(128, 128, 8, 8), "auto: dW at 128 channels, 8x8");
	CHECK(!conv_winograd_dw_chosen(256, 256, 4, 4), "auto: dW on a 4x4 plane");
	conv_algo_set(CONV_ALGO_COUNT);
	CHECK(conv_algo() == CONV_ALGO_IM2COL, "back to SSLD_CONV's mode");
}

int main(void)
{
	rng_seed(&rng, 4242);
	test_modes();
	test_values();
	test_threads();
	return check_exit("test_conv_winograd");
}
