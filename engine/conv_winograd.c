/* conv_winograd.c - 3x3 / stride 1 / pad 1 convolution by Winograd F(2x2,3x3) (see conv_winograd.h
 * for the formula and its use), and the SSLD_CONV choice between it and im2col.
 *
 * Layout. Tiles are numbered over (n, ty, tx) with ty < ceil(H/2), tx < ceil(W/2); tile (ty,tx)
 * reads input rows 2ty-1 .. 2ty+2 and columns 2tx-1 .. 2tx+2 (zero outside the plane) and writes
 * outputs 2ty..2ty+1 x 2tx..2tx+1 (those inside the plane). Tiles are cut into blocks of TB
 * (wino_block: a function of C and K only, so the cut never depends on the thread count); one
 * thread does a whole block:
 *   V (16, C, TB) = B^T d B of every tile and channel (one tile row at a time, the inner loops
 *                   along tx, at the CPU's vector width: conv_winograd_kernels.inc),
 *   M_xi (K, TB)  = U_xi (K, C) . V_xi (C, TB), 16 single-threaded cblas_sgemm,
 *   y             = A^T M A (+ bias, or += y).
 * The 16 matrices of V (and of M) lie one cache line further apart than their size (xi_stride).
 * U (16, K, C) = G g G^T is computed once per call, in double, rounded once to float. The
 * weight gradient (conv_winograd_dw, at the end) runs the adjoint transforms over the same tiles.
 *
 * Not here: other kernel sizes and strides, F(4x4,3x3).
 */
#include "conv_winograd.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"
#include "simd.h"

/* ---------------------------------------------------------------------------------------------- */
/* the mode */

static _Atomic int algo_forced = CONV_ALGO_COUNT;
static _Atomic int algo_env = -1;   /* -1 = SSLD_CONV not read yet */

static const char *const algo_names[] = { "auto", "im2col", "winograd" };
_Static_assert(sizeof algo_names / sizeof algo_names[0] == CONV_ALGO_COUNT, "one name per mode");

const char *conv_algo_name(ConvAlgo algo)
{
	return (unsigned)algo < CONV_ALGO_COUNT ? algo_names[algo] : "?";
}

void conv_algo_set(ConvAlgo algo)
{
	atomic_store(&algo_forced, (int)algo);
}

ConvAlgo conv_algo(void)
{
	const int f = atomic_load(&algo_forced);
	if (f >= 0 && f < CONV_ALGO_COUNT)
		return (ConvAlgo)f;
	int e = atomic_load(&algo_env);
	if (e >= 0)
		return (ConvAlgo)e;
	const char *s = getenv("SSLD_CONV");
	e = CONV_ALGO_AUTO;
	if (s && *s) {
		int found = 0;
		for (int i = 0; i < CONV_ALGO_COUNT; i++)
			if (strcmp(s, algo_names[i]) == 0)
				e = i, found = 1;
		if (!found)
			fprintf(stderr, "ssld engine: SSLD_CONV=%s is not one of auto, im2col, winograd; "
			        "using auto\n", s);
	}
	int expected = -1;
	atomic_compare_exchange_strong(&algo_env, &expected, e);
	return (ConvAlgo)atomic_load(&algo_env);
}

/* Auto: Winograd saves 20 of every 36 multiplies in the channel reduction but adds the
 * transforms (about 32 adds per input tile and channel, 24 per output tile and channel) and
 * shorter sgemms, which OpenBLAS packs at a higher relative cost. Measured with OpenBLAS's
 * Cooperlake kernels on the AVX-512 machine of BENCHMARKS.md ("Winograd convolutions"), one
 * layer, one thread, CPU time against im2col + sgemm, with the transforms at SSE4.2 width (at the
 * CPU's own width they cost less, so these crossovers are conservative): forward 1.13x at 32
 * channels on 32x32 planes, 1.2-1.35x at 64 (32x32) and 128 (16x16), 1.1-1.16x at 256 (8x8),
 * 1.17x at 32 (8x8); a loss at 16 channels (0.92x) and on 4x4 planes (0.84-0.87x at 256 and 512
 * channels). */
#define WINO_MIN_CHANNELS 32
#define WINO_MIN_PLANE 8

int conv_winograd_chosen(int C, int K, int H, int W, int kh, int kw, int stride, int pad)
{
	if (kh != 3 || kw != 3 || stride != 1 || pad != 1 || H < 1 || W < 1)
		return 0;
	switch (conv_algo()) {
	case CONV_ALGO_WINOGRAD:
		return 1;
	case CONV_ALGO_AUTO:
		return C >= WINO_MIN_CHANNELS && K >= WINO_MIN_CHANNELS && H >= WINO_MIN_PLANE &&
		       W >= WINO_MIN_PLANE;
	default:
		return 0;
	}
}

/* The weight gradient reduces over tiles, so its sgemms are (K, C) products with a long inner
 * dimension, and its transforms are paid on both x and dy. With the transforms at SSE4.2 width
 * (one layer, one thread, as above): 1.16x at 64 channels on 32x32 planes, 1.03x at 128 (16x16),
 * even at 256 (8x8), a loss at 32 channels (0.94x on 32x32, 0.41x on 8x8) and on 4x4 planes. At
 * the CPU's own width the whole ResNet-18 w0.5 step (BENCHMARKS.md "Where the weight gradient
 * runs Winograd") gained 6 % from taking 32 channels on 32x32 and 128+ channels on 8x8 as well,
 * so those are in; 32 channels on small planes and 4x4 planes stay with im2col. */
int conv_winograd_dw_chosen(int C, int K, int H, int W)
{
	if (conv_algo() == CONV_ALGO_WINOGRAD)
		return 1;
	return C >= 32 && K >= 32 && H >= 8 && W >= 8 && (C >= 64 || (size_t)H * W >= 256);
}

/* ---------------------------------------------------------------------------------------------- */
/* transforms */

/* The per-tile-row transforms (conv_winograd_kernels.inc), compiled for each x86-64 level of
 * simd.h: at the engine's SSE4.2 baseline they ran at 4 floats a vector and took about a fifth
 * of a ResNet-18 step (BENCHMARKS.md, "Winograd transforms at the CPU's vector width"). The level
 * is simd()'s (the CPU's widest, lowered by SSLD_SIMD) unless conv_winograd_set_level forces one. */
typedef struct WinoKernels {
	void (*input_row)(float *const r[4], int nt, float *V, size_t stride);
	void (*output_row)(const float *m, size_t stride, int nt, float *dst0, float *dst1,
	                   int odd_last, float bias, int accumulate);
	void (*grad_row)(const float *e0, const float *e1, int nt, float *Z, size_t stride);
} WinoKernels;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define WINO_MULTI 1
#else
#define WINO_MULTI 0
#endif
/* no loop-carried dependence: lets GCC vectorize a loop over more streams than it checks for
 * overlap at run time */
#if defined(__GNUC__) && !defined(__clang__)
#define WK_IVDEP _Pragma("GCC ivdep")
#else
#define WK_IVDEP
#endif

#define WK_FN(name) name##_sse
#include "conv_winograd_kernels.inc"
#undef WK_FN

#if WINO_MULTI
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
#define WK_FN(name) name##_avx2
#include "conv_winograd_kernels.inc"
#undef WK_FN
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4,prefer-vector-width=512")
#define WK_FN(name) name##_avx512
#include "conv_winograd_kernels.inc"
#undef WK_FN
#pragma GCC pop_options
#endif

static const WinoKernels *const wino_tables[SIMD_LEVEL_COUNT] = {
	&wino_kernels_sse,
#if WINO_MULTI
	&wino_kernels_avx2,
	&wino_kernels_avx512,
#endif
};

static _Atomic int wino_level_forced = SIMD_LEVEL_COUNT;

int conv_winograd_set_level(SimdLevel level)
{
	if (level != SIMD_LEVEL_COUNT && (simd_at(level) == NULL || !wino_tables[level]))
		return -1;
	atomic_store(&wino_level_forced, (int)level);
	return 0;
}

static const WinoKernels *wino_kernels(void)
{
	const int f = atomic_load(&wino_level_forced);
	const WinoKernels *k = wino_tables[f < SIMD_LEVEL_COUNT ? f : (int)simd()->level];
	return k ? k : wino_tables[SIMD_SSE];
}

/* Tiles per block: V and M of one block take 16 (C + K) TB floats, about 4 MB, so they stay in
 * the core's L2 while the sgemms run; at least 64 columns keep each sgemm efficient. */
static int wino_block(int C, int K)
{
	size_t tb = ((size_t)1 << 20) / (16 * (size_t)(C + K));
	tb = tb / 16 * 16;
	if (tb < 64)
		tb = 64;
	if (tb > 512)
		tb = 512;
	return (int)tb;
}

// U (16, K, C): U[xi][k][c] = (G g G^T)[xi] of filter g = w[k][c] (or its flipped counterpart)
typedef struct FilterJob {
	const float *w;
	float *U;
	int C, K, flip;
} FilterJob;

static void filter_part(void *arg, size_t k0, size_t k1, int tid)
{
	const FilterJob *j = arg;
	const size_t KC = (size_t)j->K * j->C;
	(void)tid;
	for (size_t k = k0; k < k1; k++)
		for (int c = 0; c < j->C; c++) {
			double g[3][3];
			if (j->flip) {   /* w is (C_out of the forward = K here, C_in = our C): w[c][k] */
				const float *src = j->w + ((size_t)c * j->K + k) * 9;
				for (int i = 0; i < 3; i++)
					for (int q = 0; q < 3; q++)
						g[i][q] = src[(2 - i) * 3 + (2 - q)];
			} else {
				const float *src = j->w + (k * j->C + (size_t)c) * 9;
				for (int i = 0; i < 3; i++)
					for (int q = 0; q < 3; q++)
						g[i][q] = src[i * 3 + q];
			}
			double t[4][3], u[4][4];   /* t = G g, u = t G^T */
			for (int q = 0; q < 3; q++) {
				t[0][q] = g[0][q];
				t[1][q] = 0.5 * (g[0][q] + g[1][q] + g[2][q]);
				t[2][q] = 0.5 * (g[0][q] - g[1][q] + g[2][q]);
				t[3][q] = g[2][q];
			}
			for (int i = 0; i < 4; i++) {
				u[i][0] = t[i][0];
				u[i][1] = 0.5 * (t[i][0] + t[i][1] + t[i][2]);
				u[i][2] = 0.5 * (t[i][0] - t[i][1] + t[i][2]);
				u[i][3] = t[i][2];
			}
			for (int xi = 0; xi < 16; xi++)
				j->U[xi * KC + k * j->C + (size_t)c] = (float)u[xi / 4][xi % 4];
		}
}

typedef struct WinoJob {
	const float *x, *U, *bias;
	float *y, *scratch;
	const WinoKernels *k;    /* the transforms at the level in force */
	int N, C, H, W, K, accumulate;
	int th, tw, tb;          /* tile rows and columns per plane, tiles per block */
	size_t tiles;            /* N * th * tw */
	size_t vs, ms;           /* floats from one xi's V (C, tb) or M / Z (K, tb) to the next */
	size_t per_thread;       /* scratch floats per thread */
} WinoJob;

/* The distance between the 16 matrices of V (M, Z): their C tb (K tb) floats, plus one cache
 * line, so the 16 streams a tile row's transform writes (or reads) do not all fall in the same
 * L1 sets whenever C tb is a multiple of 1024 (they would: tb is a multiple of 16 and C often of
 * 64). */
static size_t xi_stride(int rows, int tb)
{
	return (size_t)rows * tb + 16;
}

/* Input row iy of plane, columns ix0 .. ix0+L-1, zero outside the plane. */
static inline void load_row(float *restrict dst, const float *restrict plane, int H, int W, int iy,
                            int ix0, int L)
{
	if (iy < 0 || iy >= H) {
		memset(dst, 0, (size_t)L * sizeof(float));
		return;
	}
	const float *row = plane + (size_t)iy * W;
	int q = 0;
	for (; q < L && ix0 + q < 0; q++)
		dst[q] = 0.0f;
	int hi = W - ix0 < L ? W - ix0 : L;
	if (hi > q)
		memcpy(dst + q, row + ix0 + q, (size_t)(hi - q) * sizeof(float));
	for (q = hi > q ? hi : q; q < L; q++)
		dst[q] = 0.0f;
}

/* V[xi*vs + t] for the tiles t = t0 + (tx - tx0), tx in [tx0, tx1), of tile row ty of one
 * plane (V points at the plane's channel row). rows: scratch of 8 * (2 (tx1 - tx0) + 2) floats. */
static void input_tiles(const WinoJob *j, const float *plane, int ty, int tx0, int tx1, float *V,
                        size_t t0, float *rows)
{
	const int nt = tx1 - tx0, L = 2 * nt + 2, ix0 = 2 * tx0 - 1, iy0 = 2 * ty - 1;
	float *r[4];
	for (int i = 0; i < 4; i++) {
		r[i] = rows + (size_t)i * L;
		load_row(r[i], plane, j->H, j->W, iy0 + i, ix0, L);
	}
	j->k->input_row(r, nt, V + t0, j->vs);
}

/* y of plane (n, k), tile row ty, tiles tx in [tx0, tx1) from M[xi*ms + k*tb + t0 + ...]. */
static void output_tiles(const WinoJob *j, const float *M, int k, float *plane, int ty, int tx0,
                         int tx1, size_t t0)
{
	const int oy = 2 * ty;
	float *dst0 = plane + (size_t)oy * j->W + 2 * tx0;
	float *dst1 = oy + 1 < j->H ? dst0 + j->W : NULL;
	const int odd_last = tx1 == j->tw && (j->W & 1);
	j->k->output_row(M + (size_t)k * j->tb + t0, j->ms, tx1 - tx0, dst0, dst1,
	                 odd_last, j->bias ? j->bias[k] : 0.0f, j->accumulate);
}

/* The tiles [first, end) of a block, walked as runs that each lie in one tile row:
 *     for (TileRun r = tile_runs(first, end); tile_run_next(j, &r);)
 *         ... image r.n, tile row r.ty, columns [r.tx0, r.tx1), block offset r.off ...
 */
typedef struct TileRun {
	size_t t, first, end;    /* the next run's first tile, and the block */
	size_t off;              /* the run's first tile relative to the block */
	int n, ty, tx0, tx1;
} TileRun;

static TileRun tile_runs(size_t first, size_t end)
{
	return (TileRun){ .t = first, .first = first, .end = end };
}

static int tile_run_next(const WinoJob *j, TileRun *r)
{
	if (r->t >= r->end)
		return 0;
	const size_t per_img = (size_t)j->th * j->tw;
	const int q = (int)(r->t % per_img);
	r->n = (int)(r->t / per_img);
	r->ty = q / j->tw;
	r->tx0 = q % j->tw;
	r->tx1 = j->tw;
	if (r->end - r->t < (size_t)(r->tx1 - r->tx0))
		r->tx1 = r->tx0 + (int)(r->end - r->t);
	r->off = r->t - r->first;
	r->t += (size_t)(r->tx1 - r->tx0);
	return 1;
}

/* Tiles [*first, *end) of block blk. */
static void block_range(const WinoJob *j, size_t blk, size_t *first, size_t *end)
{
	*first = blk * (size_t)j->tb;
	*end = *first + (size_t)j->tb < j->tiles ? *first + (size_t)j->tb : j->tiles;
}

/* Blocks [b0, b1) of tiles. */
static void wino_part(void *arg, size_t b0, size_t b1, int tid)
{
	const WinoJob *j = arg;
	const int C = j->C, K = j->K, tb = j->tb;
	float *V = j->scratch + (size_t)tid * j->per_thread;
	float *M = V + 16 * j->vs;
	float *rows = M + 16 * j->ms;
	const size_t HW = (size_t)j->H * j->W;
	for (size_t blk = b0; blk < b1; blk++) {
		size_t first, end;
		block_range(j, blk, &first, &end);
		const int nt = (int)(end - first);
		for (int c = 0; c < C; c++)
			for (TileRun r = tile_runs(first, end); tile_run_next(j, &r);)
				input_tiles(j, j->x + ((size_t)r.n * C + c) * HW, r.ty, r.tx0, r.tx1,
				            V + (size_t)c * tb, r.off, rows);
		for (int xi = 0; xi < 16; xi++)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, nt, C, 1.0f,
			            j->U + (size_t)xi * K * C, C, V + xi * j->vs, tb, 0.0f,
			            M + xi * j->ms, tb);
		for (int k = 0; k < K; k++)
			for (TileRun r = tile_runs(first, end); tile_run_next(j, &r);)
				output_tiles(j, M, k, j->y + ((size_t)r.n * K + k) * HW, r.ty, r.tx0, r.tx1,
				             r.off);
	}
}

void conv_winograd(Ctx *ctx, const float *x, const float *w, int flip, const float *bias, float *y,
                   int N, int C, int H, int W, int K, int accumulate)
{
	if (N <= 0 || H <= 0 || W <= 0 || K <= 0)
		return;
	float *U = ctx_alloc(ctx, (size_t)16 * K * C * sizeof(float));
	FilterJob fj = { .w = w, .U = U, .C = C, .K = K, .flip = flip };
	parallel_for(ctx, (size_t)K, C >= 64 ? 1 : (size_t)(64 / (C > 0 ? C : 1)), filter_part, &fj);
	WinoJob j = { .x = x, .U = U, .bias = accumulate ? NULL : bias, .y = y, .k = wino_kernels(),
	              .N = N, .C = C,
	              .H = H, .W = W, .K = K, .accumulate = accumulate,
	              .th = (H + 1) / 2, .tw = (W + 1) / 2, .tb = wino_block(C, K) };
	j.tiles = (size_t)N * j.th * j.tw;
	if (C == 0) {   /* an empty reduction: y = bias (or unchanged) */
		if (!accumulate)
			for (size_t i = 0; i < (size_t)N * K; i++)
				for (size_t p = 0; p < (size_t)H * W; p++)
					y[i * H * W + p] = bias ? bias[i % (size_t)K] : 0.0f;
		return;
	}
	j.vs = xi_stride(C, j.tb);
	j.ms = xi_stride(K, j.tb);
	j.per_thread = 16 * (j.vs + j.ms) + (size_t)8 * (2 * j.tw + 2);
	j.per_thread = (j.per_thread + 15) / 16 * 16;   /* each thread's block 64-byte aligned */
	const int threads = ctx_threads(ctx);
	j.scratch = ctx_alloc(ctx, (size_t)threads * j.per_thread * sizeof(float));
	const size_t blocks = (j.tiles + (size_t)j.tb - 1) / (size_t)j.tb;
	parallel_for(ctx, blocks, 1, wino_part, &j);
}

/* ---------------------------------------------------------------------------------------------- */
/* the weight gradient
 *
 * y = A^T [(G g G^T) .* (B^T d B)] A is linear in g, so its adjoint is
 *     dg += G^T [sum over tiles (B^T d B) .* (A dy A^T)] G
 * with dy the tile's 2x2 output gradient: per block, V (16, C, TB) as in the forward,
 * Z (16, K, TB) = A dy A^T, and S_xi (K, C) += Z_xi . V_xi^T (16 sgemms reducing over the block's
 * tiles); at the end dW += G^T S G. Blocks run one after another, each split across the threads
 * by channel (transforms) and by xi (sgemms), so every S_xi sums the blocks in the same order
 * whatever the thread count. */

typedef struct DwJob {
	WinoJob w;               /* x, the geometry, tb; w.y is dy, w.scratch V then Z */
	float *S;                /* (16, K, C) */
	float *rows;             /* per thread 8 * (2 tw + 2) */
	float *dw;
	size_t first, end;       /* the block's tiles */
	int beta;                /* 0 on the first block: S = instead of += */
} DwJob;

/* Z[xi*ms + t] of output plane dy (n, k), tile row ty, tiles [tx0, tx1) (Z points at k's row).
 * rows: scratch of 4 (tx1 - tx0) floats. */
static void grad_tiles(const WinoJob *j, const float *plane, int ty, int tx0, int tx1, float *Z,
                       size_t t0, float *rows)
{
	const int nt = tx1 - tx0, L = 2 * nt;
	float *e0 = rows, *e1 = rows + L;
	/* the tile row's two dy rows, zero outside the plane */
	load_row(e0, plane, j->H, j->W, 2 * ty, 2 * tx0, L);
	load_row(e1, plane, j->H, j->W, 2 * ty + 1, 2 * tx0, L);
	j->k->grad_row(e0, e1, nt, Z + t0, j->ms);
}

/* Channels [i0, i1) of C + K: i < C transforms x's channel i into V, else dy's channel i - C
 * into Z, for the block's tiles. */
static void dw_transform_part(void *arg, size_t i0, size_t i1, int tid)
{
	const DwJob *d = arg;
	const WinoJob *j = &d->w;
	const size_t HW = (size_t)j->H * j->W;
	float *V = j->scratch, *Z = V + 16 * j->vs;
	float *rows = d->rows + (size_t)tid * 8 * (2 * (size_t)j->tw + 2);
	for (size_t i = i0; i < i1; i++)
		for (TileRun r = tile_runs(d->first, d->end); tile_run_next(j, &r);)
			if (i < (size_t)j->C)
				input_tiles(j, j->x + ((size_t)r.n * j->C + i) * HW, r.ty, r.tx0, r.tx1,
				            V + i * j->tb, r.off, rows);
			else {
				const size_t k = i - (size_t)j->C;
				grad_tiles(j, j->y + ((size_t)r.n * j->K + k) * HW, r.ty, r.tx0, r.tx1,
				           Z + k * j->tb, r.off, rows);
			}
}

// S_xi (K, C) (+)= Z_xi (K, nt) . V_xi (C, nt)^T for xi in [x0, x1)
static void dw_gemm_part(void *arg, size_t x0, size_t x1, int tid)
{
	const DwJob *d = arg;
	const WinoJob *j = &d->w;
	const float *V = j->scratch, *Z = V + 16 * j->vs;
	const int nt = (int)(d->end - d->first);
	(void)tid;
	for (size_t xi = x0; xi < x1; xi++)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->K, j->C, nt, 1.0f,
		            Z + xi * j->ms, j->tb, V + xi * j->vs, j->tb,
		            d->beta ? 1.0f : 0.0f, d->S + xi * j->K * j->C, j->C);
}

// dW[k][c] += G^T S[k][c] G, k in [k0, k1)
static void dw_out_part(void *arg, size_t k0, size_t k1, int tid)
{
	const DwJob *d = arg;
	const int C = d->w.C, K = d->w.K;
	const size_t KC = (size_t)K * C;
	(void)tid;
	for (size_t k = k0; k < k1; k++)
		for (int c = 0; c < C; c++) {
			float m[4][4];
			for (int xi = 0; xi < 16; xi++)
				m[xi / 4][xi % 4] = d->S[xi * KC + k * C + (size_t)c];
			/* G^T m: rows m0 + (m1 + m2)/2, (m1 - m2)/2, (m1 + m2)/2 + m3; then along each row */
			float r[3][4];
			for (int q = 0; q < 4; q++) {
				r[0][q] = m[0][q] + 0.5f * (m[1][q] + m[2][q]);
				r[1][q] = 0.5f * (m[1][q] - m[2][q]);
				r[2][q] = 0.5f * (m[1][q] + m[2][q]) + m[3][q];
			}
			float *dst = d->dw + (k * C + (size_t)c) * 9;
			for (int a = 0; a < 3; a++) {
				dst[a * 3 + 0] += r[a][0] + 0.5f * (r[a][1] + r[a][2]);
				dst[a * 3 + 1] += 0.5f * (r[a][1] - r[a][2]);
				dst[a * 3 + 2] += 0.5f * (r[a][1] + r[a][2]) + r[a][3];
			}
		}
}

/* Tiles per block of the weight gradient: the reduction runs over the tiles, so the sgemms want
 * many (each block reads and writes all of S); V and Z of one block take 16 (C + K) TB floats,
 * up to 32 MB, shared by the threads. */
static int wino_dw_block(int C, int K)
{
	size_t tb = ((size_t)8 << 20) / (16 * (size_t)(C + K));
	tb = tb / 16 * 16;
	if (tb < 64)
		tb = 64;
	if (tb > 2048)
		tb = 2048;
	return (int)tb;
}

void conv_winograd_dw(Ctx *ctx, const float *x, const float *dy, float *dw, int N, int C, int H,
                      int W, int K)
{
	if (N <= 0 || H <= 0 || W <= 0 || K <= 0 || C <= 0)
		return;
	DwJob d = { .w = { .x = x, .y = (float *)dy, .k = wino_kernels(), .N = N, .C = C, .H = H,
	                   .W = W, .K = K,
	                   .th = (H + 1) / 2, .tw = (W + 1) / 2, .tb = wino_dw_block(C, K) },
	            .dw = dw };
	WinoJob *j = &d.w;
	j->tiles = (size_t)N * j->th * j->tw;
	const int threads = ctx_threads(ctx);
	const size_t rows = (size_t)8 * (2 * j->tw + 2);
	j->vs = xi_stride(C, j->tb);
	j->ms = xi_stride(K, j->tb);
	j->scratch = ctx_alloc(ctx, 16 * (j->vs + j->ms) * sizeof(float));
	d.rows = ctx_alloc(ctx, (size_t)threads * rows * sizeof(float));
	d.S = ctx_alloc(ctx, (size_t)16 * K * C * sizeof(float));
	const size_t per_item = (size_t)16 * j->tb;
	for (size_t blk = 0; blk * (size_t)j->tb < j->tiles; blk++) {
		block_range(j, blk, &d.first, &d.end);
		parallel_for(ctx, (size_t)(C + K), per_item >= 4096 ? 1 : 4096 / per_item,
		             dw_transform_part, &d);
		parallel_for(ctx, 16, 1, dw_gemm_part, &d);
		d.beta = 1;
	}
	parallel_for(ctx, (size_t)K, C >= 64 ? 1 : (size_t)(64 / C), dw_out_part, &d);
}
