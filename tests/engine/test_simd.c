/* test_simd.c - every kernel of engine/simd.h, at every level this CPU runs (simd_at), against a
 * double-precision reference, each element within a bound derived from the float32 computation
 * (tests/tolerance.h: k roundings times eps times the magnitude of the terms, by running error
 * analysis for the composite kernels); and SSLD_SIMD lowering the level simd() chooses.
 *
 * Bounds, eps = FLT_EPSILON (two unit roundoffs per rounding, which covers the neglected
 * second-order terms), ULP = 4: glibc's libmvec expf/tanhf are within 4 ulp (its manual):
 *   gelu      u = C (x + A x^3): |du| <= 4 eps C (|x| + A|x|^3) = 4 eps ua; t = tanh(u):
 *             |dt| <= (1 - t^2) |du| + ULP eps |t| =: eps ta; y = x (1 + t) / 2:
 *             |dy| <= eps (|x| (1 + ta) / 2 + 2 |y|)
 *   gelu'     d = (1 + t) / 2 + x (1 - t^2) C (1 + 3 A x^2) / 2, with 1 - t^2 off by
 *             eps (t^2 + 2 |t| ta): |g d err| <= eps |g| ((1 + ta) / 2 + 6 |d| +
 *             |x| (1 + t^2 + 2 |t| ta) C (1 + 3 A x^2)), plus 2 eps (|dx0| + |dx|) when it
 *             accumulates into dx0
 *   softmax   e_c = expf(r_c - max): rel <= eps (|r_c - max| + ULP + 1); the sum of n positive
 *             terms: rel <= n eps; p_c = e_c / sum: |dp_c| <= eps p_c (|r_c - max| + n + ULP + 4)
 *   lse       max + log(sum_c e_c), e_c as in softmax, the sum and log in double: |dlse| <= eps
 *             (max_c |r_c - max| + ULP + 1), plus eps |lse| for the caller's float rounding
 *   ce grad   g = g0 + s (e - off), e = expf(x - lse) rel <= eps (|x - lse| + ULP + 1):
 *             |dg| <= eps (|s| e (|x - lse| + ULP + 1) + 2 |s (e - off)| + |g0| + |g|)
 *   layernorm mean: |dm| <= eps (sum|x| + |m|); var over D squares: rel <= (D + 3) eps, so
 *             rstd rel <= (D/2 + 4) eps; y = (x - m) s g + b:
 *             |dy| <= eps (|g| s (sum|x| + |m| + (D/2 + 6) |x - m|) + 3 (|y| + |b|))
 *   layernorm' dgamma, dbeta: R rows accumulated in order, each term 3 roundings: (R + 3) eps
 *             sum|term|; dx = dx0 + s (dxh - s1 - xh s2), dxh = dy g, xh = (x - m) s, s1 and
 *             s2 the means of D terms (A1 = sum|dxh|, A2 = sum|dxh xh|):
 *             |ddx| <= eps (s (4 |dxh| + A1 + 2 |s1| + |xh| (2 A2 + 8 |s2|)) + 2 (|dx0| + |dx|))
 *   exp_shifted, batchnorm: bounds next to each test below
 *   adamw     c1 = 1 - b1, c2 = 1 - b2 rounded once each; m = b1 m0 + c1 g: |dm| <= 3 eps
 *             (|b1 m0| + |c1 g|); v = b2 v0 + c2 g^2, every term >= 0: |dv| <= 4 eps v, so
 *             sqrt(v) rel <= 3 eps and d = sqrt(v) rbc2 + e rel <= 5 eps; q = m / d:
 *             |dq| <= |dm| / d + 6 eps |q|; w' = w decay - step q:
 *             |dw| <= eps (|w decay| + |w'| + step (3 (|b1 m0| + |c1 g|) / d + 7 |q|))
 * Each bound is computed element by element next to the reference below. An element out of its
 * bound means a wrong value at that level, whatever order the vector code summed in; the levels
 * may differ from each other by rounding, and nothing here compares them bit for bit.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"
#include "check.h"
#include "../tolerance.h"

#define EPS ((double)FLT_EPSILON)
#define ULP 4.0
#define GC 0.7978845608028654
#define GA 0.044715

static unsigned long long rng_state = 88172645463325252ULL;

/* uniform in [lo, hi) */
static float urand(float lo, float hi)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return lo + (hi - lo) * (float)((rng_state >> 40) * (1.0 / 16777216.0));
}

static void fill(float *x, size_t n, float lo, float hi)
{
	for (size_t i = 0; i < n; i++)
		x[i] = urand(lo, hi);
}

/* lengths that leave every remainder after 4-, 8- and 16-float vectors, and longer rows */
static const int lens[] = { 1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 127, 128, 129, 257, 1000 };
#define NLENS (int)(sizeof lens / sizeof lens[0])
#define MAXN 1000

static void check(const SimdKernels *k, const char *kernel, int n, const float *got,
                  const double *ref, const double *bound, size_t count)
{
	char what[96];
	snprintf(what, sizeof what, "%s %s n=%d", simd_level_name(k->level), kernel, n);
	failures += tol_check_bound(what, got, ref, bound, count);
}

/* ---------------------------------------------------------------------------------------------- */

static void test_gelu(const SimdKernels *k, int n)
{
	float x[MAXN] = { 0 }, y[MAXN] = { 0 }, g[MAXN] = { 0 }, dx[MAXN] = { 0 };
	float dx0[MAXN] = { 0 };
	double ref[MAXN] = { 0 }, bound[MAXN] = { 0 };
	fill(x, n, -6.0f, 6.0f);
	fill(g, n, -2.0f, 2.0f);
	fill(dx0, n, -1.0f, 1.0f);
	k->gelu(x, y, (size_t)n);
	for (int i = 0; i < n; i++) {
		const double v = x[i], av = fabs(v);
		const double t = tanh(GC * (v + GA * v * v * v));
		const double ta = (1.0 - t * t) * 4.0 * GC * (av + GA * av * av * av) + ULP * fabs(t);
		ref[i] = 0.5 * v * (1.0 + t);
		bound[i] = EPS * (0.5 * av * (1.0 + ta) + 2.0 * fabs(ref[i]));
	}
	check(k, "gelu", n, y, ref, bound, (size_t)n);

	for (int fresh = 0; fresh < 2; fresh++) {
		memcpy(dx, dx0, sizeof(float) * (size_t)n);
		k->gelu_backward(x, g, dx, (size_t)n, fresh);
		for (int i = 0; i < n; i++) {
			const double v = x[i], av = fabs(v), ag = fabs(g[i]);
			const double t = tanh(GC * (v + GA * v * v * v));
			const double ta = (1.0 - t * t) * 4.0 * GC * (av + GA * av * av * av) +
			                  ULP * fabs(t);
			const double d = 0.5 * (1.0 + t) +
			                 0.5 * v * (1.0 - t * t) * GC * (1.0 + 3.0 * GA * v * v);
			const double mag = 0.5 * (1.0 + ta) + 6.0 * fabs(d) +
			                   av * (1.0 + t * t + 2.0 * fabs(t) * ta) * GC *
			                   (1.0 + 3.0 * GA * v * v);
			ref[i] = (fresh ? 0.0 : dx0[i]) + g[i] * d;
			bound[i] = EPS * (ag * mag + (fresh ? 0.0 : 2.0 * (fabs(dx0[i]) + fabs(ref[i]))));
		}
		check(k, fresh ? "gelu_backward fresh" : "gelu_backward +=", n, dx, ref, bound,
		      (size_t)n);
	}
}

static void test_softmax(const SimdKernels *k, int n)
{
	float r[MAXN] = { 0 }, r0[MAXN] = { 0 };
	double ref[MAXN] = { 0 }, bound[MAXN] = { 0 };
	fill(r0, n, -8.0f, 8.0f);
	memcpy(r, r0, sizeof(float) * (size_t)n);
	k->softmax_row(r, n);
	double mx = r0[0], sum = 0.0;
	for (int c = 1; c < n; c++)
		mx = r0[c] > mx ? r0[c] : mx;
	for (int c = 0; c < n; c++)
		sum += exp(r0[c] - mx);
	for (int c = 0; c < n; c++) {
		ref[c] = exp(r0[c] - mx) / sum;
		bound[c] = EPS * ref[c] * (fabs(r0[c] - mx) + n + ULP + 4.0);
	}
	check(k, "softmax_row", n, r, ref, bound, (size_t)n);
}

/* a cross-entropy row: its log-sum-exp, then the gradient from it */
static void test_ce_row(const SimdKernels *k, int n)
{
	float x[MAXN] = { 0 }, g[MAXN] = { 0 }, g0[MAXN] = { 0 }, lse_got[1];
	double ref[MAXN] = { 0 }, bound[MAXN] = { 0 };
	fill(x, n, -8.0f, 8.0f);
	fill(g0, n, -1.0f, 1.0f);
	double mx = x[0], sum = 0.0, span = 0.0;
	for (int c = 1; c < n; c++)
		mx = x[c] > mx ? x[c] : mx;
	for (int c = 0; c < n; c++) {
		sum += exp(x[c] - mx);
		span = fmax(span, mx - x[c]);
	}
	lse_got[0] = (float)k->logsumexp_row(x, n);
	ref[0] = mx + log(sum);
	bound[0] = EPS * (span + ULP + 1.0 + fabs(ref[0]));
	check(k, "logsumexp_row", n, lse_got, ref, bound, 1);

	const float lse = (float)ref[0], sc = 0.37f, off = 0.1f / (float)n;
	memcpy(g, g0, sizeof(float) * (size_t)n);
	k->softmax_grad_row(x, lse, sc, off, g, n);
	for (int c = 0; c < n; c++) {
		const double t = (double)x[c] - lse, e = exp(t);
		ref[c] = g0[c] + (double)sc * (e - off);
		bound[c] = EPS * (sc * e * (fabs(t) + ULP + 1.0) + 2.0 * fabs(sc * (e - off)) +
		                  fabs(g0[c]) + fabs(ref[c]));
	}
	check(k, "softmax_grad_row", n, g, ref, bound, (size_t)n);
}

/* R rows of D through layernorm forward and backward, gamma and beta given or not (affine bits) */
static void test_layernorm(const SimdKernels *k, int D, int affine)
{
	enum { R = 4 };
	const float eps = 1e-5f;
	float *x = malloc(sizeof(float) * R * D), *y = malloc(sizeof(float) * R * D);
	float *dy = malloc(sizeof(float) * R * D), *dx = malloc(sizeof(float) * R * D);
	float *dx0 = malloc(sizeof(float) * R * D);
	float *gamma = malloc(sizeof(float) * D), *beta = malloc(sizeof(float) * D);
	float *dg = calloc((size_t)D, sizeof(float)), *db = calloc((size_t)D, sizeof(float));
	double *ref = malloc(sizeof(double) * R * D), *bound = malloc(sizeof(double) * R * D);
	double *rg = calloc((size_t)D, sizeof(double)), *bg = calloc((size_t)D, sizeof(double));
	double *rb = calloc((size_t)D, sizeof(double)), *bb = calloc((size_t)D, sizeof(double));
	float mean[R], rstd[R];
	if (!x || !y || !dy || !dx || !dx0 || !gamma || !beta || !dg || !db || !ref || !bound ||
	    !rg || !bg || !rb || !bb) {
		fprintf(stderr, "FAIL layernorm: out of memory\n");
		failures++;
		goto out;
	}
	/* an offset mean, so the sum|x| term of the mean's bound matters */
	fill(x, (size_t)R * D, 1.0f, 3.0f);
	fill(gamma, (size_t)D, 0.5f, 1.5f);
	fill(beta, (size_t)D, -0.5f, 0.5f);
	fill(dy, (size_t)R * D, -1.0f, 1.0f);
	fill(dx0, (size_t)R * D, -1.0f, 1.0f);
	const float *g = affine & 1 ? gamma : NULL, *b = affine & 2 ? beta : NULL;
	char name[64];
	snprintf(name, sizeof name, "layernorm_row%s%s", g ? " gamma" : "", b ? " beta" : "");

	double rm[R], rs[R], bm[R], bs[R];
	for (int r = 0; r < R; r++) {
		const float *xr = x + (size_t)r * D;
		k->layernorm_row(xr, y + (size_t)r * D, g, b, D, eps, &mean[r], &rstd[r]);
		double m = 0.0, ax = 0.0, v = 0.0;
		for (int j = 0; j < D; j++) {
			m += xr[j];
			ax += fabs(xr[j]);
		}
		m /= D;
		for (int j = 0; j < D; j++)
			v += (xr[j] - m) * (xr[j] - m);
		v /= D;
		const double s = 1.0 / sqrt(v + eps);
		rm[r] = m;
		bm[r] = EPS * (ax + fabs(m));
		rs[r] = s;
		/* the mean's error shifts the variance by D dm^2 at most: second order, but kept */
		bs[r] = s * EPS * (D / 2.0 + 4.0) + s * s * s * bm[r] * bm[r];
		for (int j = 0; j < D; j++) {
			const double gj = g ? g[j] : 1.0, bj = b ? b[j] : 0.0;
			const size_t i = (size_t)r * D + j;
			ref[i] = (xr[j] - m) * s * gj + bj;
			bound[i] = EPS * (fabs(gj) * s * (ax + fabs(m) + (D / 2.0 + 6.0) * fabs(xr[j] - m)) +
			                  3.0 * (fabs(ref[i]) + fabs(bj)));
		}
	}
	check(k, name, D, y, ref, bound, (size_t)R * D);
	check(k, "layernorm mean", D, mean, rm, bm, R);
	check(k, "layernorm rstd", D, rstd, rs, bs, R);

	/* backward from the forward's float mean and rstd, accumulating into dx0 */
	memcpy(dx, dx0, sizeof(float) * (size_t)R * D);
	for (int r = 0; r < R; r++)
		k->layernorm_backward_row(x + (size_t)r * D, dy + (size_t)r * D, g, mean[r], rstd[r],
		                          dx + (size_t)r * D, dg, db, D);
	for (int r = 0; r < R; r++) {
		const float *xr = x + (size_t)r * D, *dyr = dy + (size_t)r * D;
		const double m = mean[r], s = rstd[r];
		double s1 = 0.0, s2 = 0.0, a1 = 0.0, a2 = 0.0;
		for (int j = 0; j < D; j++) {
			const double xh = (xr[j] - m) * s, dxh = dyr[j] * (g ? g[j] : 1.0);
			rg[j] += dyr[j] * xh;
			bg[j] += fabs(dyr[j] * xh);
			rb[j] += dyr[j];
			bb[j] += fabs(dyr[j]);
			s1 += dxh;
			a1 += fabs(dxh);
			s2 += dxh * xh;
			a2 += fabs(dxh * xh);
		}
		s1 /= D;
		s2 /= D;
		for (int j = 0; j < D; j++) {
			const size_t i = (size_t)r * D + j;
			const double xh = (xr[j] - m) * s, dxh = dyr[j] * (g ? g[j] : 1.0);
			ref[i] = dx0[i] + s * (dxh - s1 - xh * s2);
			bound[i] = EPS * (s * (4.0 * fabs(dxh) + a1 + 2.0 * fabs(s1) +
			                       fabs(xh) * (2.0 * a2 + 4.0 * fabs(s2) + 4.0 * fabs(s2))) +
			                  2.0 * (fabs(dx0[i]) + fabs(ref[i])));
		}
	}
	for (int j = 0; j < D; j++) {
		bg[j] *= EPS * (R + 3.0);
		bb[j] *= EPS * (R + 1.0);
	}
	check(k, "layernorm_backward_row dx", D, dx, ref, bound, (size_t)R * D);
	check(k, "layernorm_backward_row dgamma", D, dg, rg, bg, (size_t)D);
	check(k, "layernorm_backward_row dbeta", D, db, rb, bb, (size_t)D);
out:
	free(x), free(y), free(dy), free(dx), free(dx0), free(gamma), free(beta), free(dg), free(db);
	free(ref), free(bound), free(rg), free(bg), free(rb), free(bb);
}

/* ---------------------------------------------------------------------------------------------- */

/* AdamW at step 3 of lr 1e-3, wd 1e-2, betas (0.9, 0.999), eps 1e-8: moments of a run's
 * magnitudes, every fourth gradient 0, and some elements with no second moment at all (the
 * update is then m / eps, large, and still within its bound) */
static void test_adamw(const SimdKernels *k, int n)
{
	float w[MAXN] = { 0 }, g[MAXN] = { 0 }, m[MAXN] = { 0 }, v[MAXN] = { 0 };
	float w0[MAXN] = { 0 }, m0[MAXN] = { 0 }, v0[MAXN] = { 0 };
	double rw[MAXN] = { 0 }, rm[MAXN] = { 0 }, rv[MAXN] = { 0 };
	double bw[MAXN] = { 0 }, bm[MAXN] = { 0 }, bv[MAXN] = { 0 };
	fill(w0, n, -1.0f, 1.0f);
	fill(g, n, -1.0f, 1.0f);
	fill(m0, n, -0.1f, 0.1f);
	fill(v0, n, 0.0f, 0.01f);
	for (int i = 0; i < n; i += 4)
		g[i] = 0.0f;
	for (int i = 1; i < n; i += 7)
		v0[i] = 0.0f, g[i] = 0.0f;
	const float lr = 1e-3f, wd = 1e-2f, b1 = 0.9f, b2 = 0.999f;
	const SimdAdamW p = { .decay = 1.0f - lr * wd, .step = lr / (1.0f - b1 * b1 * b1),
	                      .rbc2 = 1.0f / sqrtf(1.0f - b2 * b2 * b2), .b1 = b1, .b2 = b2,
	                      .eps = 1e-8f };
	memcpy(w, w0, sizeof(float) * (size_t)n);
	memcpy(m, m0, sizeof(float) * (size_t)n);
	memcpy(v, v0, sizeof(float) * (size_t)n);
	k->adamw(w, g, m, v, (size_t)n, &p);
	const double c1 = 1.0 - (double)b1, c2 = 1.0 - (double)b2;
	for (int i = 0; i < n; i++) {
		const double gi = g[i], tm1 = fabs((double)b1 * m0[i]), tm2 = fabs(c1 * gi);
		rm[i] = (double)b1 * m0[i] + c1 * gi;
		rv[i] = (double)b2 * v0[i] + c2 * gi * gi;
		const double d = sqrt(rv[i]) * (double)p.rbc2 + (double)p.eps, q = rm[i] / d;
		const double wdec = (double)w0[i] * p.decay;
		rw[i] = wdec - (double)p.step * q;
		bm[i] = 3.0 * EPS * (tm1 + tm2);
		bv[i] = 4.0 * EPS * rv[i];
		bw[i] = EPS * (fabs(wdec) + fabs(rw[i]) +
		               (double)p.step * (3.0 * (tm1 + tm2) / d + 7.0 * fabs(q)));
	}
	check(k, "adamw m", n, m, rm, bm, (size_t)n);
	check(k, "adamw v", n, v, rv, bv, (size_t)n);
	check(k, "adamw w", n, w, rw, bw, (size_t)n);
}


static void test_exp_shifted(const SimdKernels *k, int n)
{
	float x[MAXN] = { 0 }, x0[MAXN] = { 0 };
	double ref[MAXN] = { 0 }, bound[MAXN] = { 0 }, rsum = 0.0, bsum = 0.0;
	fill(x0, n, -8.0f, 8.0f);
	memcpy(x, x0, sizeof(float) * (size_t)n);
	const float shift = 3.0f;
	const double got = k->exp_shifted(x, (size_t)n, shift);
	for (int c = 0; c < n; c++) {
		ref[c] = exp((double)x0[c] - shift);
		bound[c] = EPS * ref[c] * (fabs((double)x0[c] - shift) + ULP + 1.0);
		rsum += ref[c];
		bsum += bound[c];
	}
	check(k, "exp_shifted", n, x, ref, bound, (size_t)n);
	/* the sum of the floats it returned, added in double: their errors plus n double roundings */
	const float gotf[1] = { (float)got };
	const double rs[1] = { rsum }, bs[1] = { bsum + 1e-15 * n * rsum + EPS * rsum };
	check(k, "exp_shifted sum", n, gotf, rs, bs, 1);
}

/* One batchnorm channel of S values (a plane, or one row's channels with the same scalars in
 * every column): forward, the shifted statistics, the backward sums and dx in every mode. Values
 * sit around the ReLU's edge (pre near 0), and the reference takes its mask from the kernel's own
 * forward output (y > 0), which the backward must reproduce exactly: with dy = 1 the masked count
 * is an exact integer in float. Bounds: each float sum of S terms at most S + 3 roundings deep. */
static void test_bn(const SimdKernels *k, int S, int relu)
{
	float x[MAXN] = { 0 }, y[MAXN] = { 0 }, dy[MAXN] = { 0 }, dx[MAXN] = { 0 };
	float dx0[MAXN] = { 0 }, ones[MAXN] = { 0 }, yr[MAXN] = { 0 };
	double ref[MAXN] = { 0 }, bound[MAXN] = { 0 };
	fill(x, S, -1.0f, 1.5f);
	fill(dy, S, -1.0f, 1.0f);
	fill(dx0, S, -0.5f, 0.5f);
	for (int i = 0; i < S; i++)
		ones[i] = 1.0f;
	const SimdBn p = { .m = 0.25f, .a = 1.7f, .b = -0.4f, .s = 1.3f, .mdy = 0.05f, .mdyx = -0.2f };
	const double m = p.m, a = p.a, b = p.b, s = p.s, mdy = p.mdy, mdyx = p.mdyx;
	char what[64];

	k->bn_plane_forward(x, y, (size_t)S, &p, relu);
	for (int i = 0; i < S; i++) {
		const double pre = (x[i] - m) * a + b;
		ref[i] = relu && pre < 0.0 ? 0.0 : pre;
		bound[i] = 3.0 * EPS * (fabs((x[i] - m) * a) + fabs(b));
	}
	snprintf(what, sizeof what, "bn_plane_forward relu=%d", relu);
	check(k, what, S, y, ref, bound, (size_t)S);
	const float mm[1] = { p.m }, aa[1] = { p.a }, bb[1] = { p.b };
	for (int i = 0; i < S; i++)   /* the row kernel, one channel per column */
		k->bn_row_forward(x + i, mm, aa, bb, yr + i, 1, relu);
	int same = 1;
	for (int i = 0; i < S; i++)
		same &= relu ? (yr[i] > 0.0f) == (y[i] > 0.0f) : 1;
	CHECK(same, "%s bn_row_forward and bn_plane_forward mask differently", simd_level_name(k->level));

	float st[2];
	k->bn_plane_stats(x, (size_t)S, p.m, &st[0], &st[1]);
	double rst[2] = { 0, 0 }, bst[2] = { 0, 0 };
	for (int i = 0; i < S; i++) {
		const double d = (double)x[i] - m;
		rst[0] += d;
		rst[1] += d * d;
		bst[0] += fabs(d);
		bst[1] += d * d;
	}
	bst[0] *= (S + 3) * EPS;
	bst[1] *= (S + 5) * EPS;
	check(k, "bn_plane_stats", S, st, rst, bst, 2);

	/* the mask: the kernel's forward output */
	float cnt[2];
	k->bn_plane_grad_sums(x, ones, (size_t)S, &p, relu, &cnt[0], &cnt[1]);
	int kept = 0;
	for (int i = 0; i < S; i++)
		kept += !relu || y[i] > 0.0f;
	CHECK(cnt[0] == (float)kept, "%s bn_plane_grad_sums S=%d relu=%d: counted %g of %d values "
	      "the forward kept", simd_level_name(k->level), S, relu, (double)cnt[0], kept);
	double dsum = 0.0;   /* the row kernel on the same mask, one channel per column */
	for (int i = 0; i < S; i++) {
		double sdy1 = 0.0, sdyx1 = 0.0;
		k->bn_row_grad_sums(x + i, ones + i, mm, aa, bb, &sdy1, &sdyx1, 1, relu);
		dsum += sdy1;
	}
	CHECK(dsum == kept, "%s bn_row_grad_sums relu=%d: counted %g of %d values the forward kept",
	      simd_level_name(k->level), relu, dsum, kept);

	float gs[2];
	k->bn_plane_grad_sums(x, dy, (size_t)S, &p, relu, &gs[0], &gs[1]);
	double rgs[2] = { 0, 0 }, bgs[2] = { 0, 0 };
	for (int i = 0; i < S; i++) {
		const double d = !relu || y[i] > 0.0f ? dy[i] : 0.0;
		rgs[0] += d;
		rgs[1] += d * ((double)x[i] - m);
		bgs[0] += fabs(d);
		bgs[1] += fabs(d * ((double)x[i] - m));
	}
	bgs[0] *= (S + 3) * EPS;
	bgs[1] *= (S + 5) * EPS;
	snprintf(what, sizeof what, "bn_plane_grad_sums relu=%d", relu);
	check(k, what, S, gs, rgs, bgs, 2);

	for (int mode = 0; mode < 3; mode++) {
		memcpy(dx, mode == 2 ? dy : dx0, sizeof(float) * (size_t)S);
		k->bn_plane_grad_dx(x, mode == 2 ? NULL : dy, dx, (size_t)S, &p, relu, mode);
		for (int i = 0; i < S; i++) {
			const double d = !relu || y[i] > 0.0f ? dy[i] : 0.0;
			const double t = ((double)x[i] - m) * s * mdyx;
			const double r = a * (d - mdy - t);
			ref[i] = mode == 1 ? dx0[i] + r : r;
			bound[i] = 5.0 * EPS * fabs(a) * (fabs(d) + fabs(mdy) + 2.0 * fabs(t)) +
			           (mode == 1 ? 2.0 * EPS * (fabs(dx0[i]) + fabs(ref[i])) : 0.0);
		}
		snprintf(what, sizeof what, "bn_plane_grad_dx relu=%d mode=%d", relu, mode);
		check(k, what, S, dx, ref, bound, (size_t)S);
	}
	/* the row kernel: the same scalars in every column */
	float mv[MAXN] = { 0 }, av[MAXN] = { 0 }, bv[MAXN] = { 0 }, sv[MAXN] = { 0 };
	float mdyv[MAXN] = { 0 }, mdyxv[MAXN] = { 0 };
	for (int i = 0; i < S; i++)
		mv[i] = p.m, av[i] = p.a, bv[i] = p.b, sv[i] = p.s, mdyv[i] = p.mdy, mdyxv[i] = p.mdyx;
	for (int fresh = 0; fresh < 2; fresh++) {
		memcpy(dx, dx0, sizeof(float) * (size_t)S);
		k->bn_row_grad_dx(x, dy, mv, av, bv, sv, mdyv, mdyxv, dx, (size_t)S, relu, fresh);
		for (int i = 0; i < S; i++) {
			const double d = !relu || y[i] > 0.0f ? dy[i] : 0.0;
			const double t = ((double)x[i] - m) * s * mdyx;
			const double r = a * (d - mdy - t);
			ref[i] = fresh ? r : dx0[i] + r;
			bound[i] = 5.0 * EPS * fabs(a) * (fabs(d) + fabs(mdy) + 2.0 * fabs(t)) +
			           (fresh ? 0.0 : 2.0 * EPS * (fabs(dx0[i]) + fabs(ref[i])));
		}
		snprintf(what, sizeof what, "bn_row_grad_dx relu=%d fresh=%d", relu, fresh);
		check(k, what, S, dx, ref, bound, (size_t)S);
	}
	/* row sums into double accumulators that already hold a value */
	double sum[MAXN] = { 0 }, ss[MAXN] = { 0 }, mean[MAXN] = { 0 }, sdy[MAXN] = { 0 };
	double sdyx[MAXN] = { 0 };
	for (int i = 0; i < S; i++)
		sum[i] = ss[i] = sdy[i] = sdyx[i] = 0.5, mean[i] = m;
	k->bn_row_sum(x, sum, (size_t)S);
	k->bn_row_sqdev(x, mean, ss, (size_t)S);
	k->bn_row_grad_sums(x, dy, mv, av, bv, sdy, sdyx, (size_t)S, relu);
	int bad = 0;
	for (int i = 0; i < S; i++) {
		const double d = !relu || y[i] > 0.0f ? dy[i] : 0.0, xm = (double)x[i] - m;
		const double e = 4.0 * DBL_EPSILON;
		bad += fabs(sum[i] - (0.5 + x[i])) > e * (0.5 + fabs(x[i]));
		bad += fabs(ss[i] - (0.5 + xm * xm)) > e * (0.5 + xm * xm);
		bad += fabs(sdy[i] - (0.5 + d)) > e * (0.5 + fabs(d));
		/* d (x - m) is one float product (two roundings with x - m) */
		bad += fabs(sdyx[i] - (0.5 + d * xm)) > 3.0 * EPS * fabs(d * xm) + e;
	}
	CHECK(bad == 0, "%s bn_row sums S=%d relu=%d: %d values out of bound",
	      simd_level_name(k->level), S, relu, bad);
}

int main(void)
{
	/* SSLD_SIMD lowers simd()'s choice (read on its first call) and the table says its level */
	setenv("SSLD_SIMD", "sse", 1);
	const SimdKernels *chosen = simd();
	CHECK(chosen && chosen->level == SIMD_SSE, "SSLD_SIMD=sse: simd() chose %s",
	      chosen ? simd_level_name(chosen->level) : "nothing");
	CHECK(simd() == chosen, "simd() chose again");
	const SimdLevel cpu = simd_cpu_level();
	printf("this CPU runs up to %s\n", simd_level_name(cpu));
	CHECK(simd_at(SIMD_LEVEL_COUNT) == NULL, "simd_at past the last level is not NULL");

	int levels = 0;
	for (int l = 0; l < SIMD_LEVEL_COUNT; l++) {
		const SimdKernels *k = simd_at((SimdLevel)l);
		if ((SimdLevel)l > cpu) {
			CHECK(k == NULL, "simd_at(%s) beyond the CPU's %s", simd_level_name((SimdLevel)l),
			      simd_level_name(cpu));
			printf("skip %s: this CPU cannot run it\n", simd_level_name((SimdLevel)l));
			continue;
		}
		CHECK(k && k->level == (SimdLevel)l, "simd_at(%s) gave another level",
		      simd_level_name((SimdLevel)l));
		if (!k)
			continue;
		levels++;
		for (int i = 0; i < NLENS; i++) {
			test_gelu(k, lens[i]);
			test_softmax(k, lens[i]);
			test_ce_row(k, lens[i]);
			test_adamw(k, lens[i]);
			test_exp_shifted(k, lens[i]);
			test_bn(k, lens[i], 0);
			test_bn(k, lens[i], 1);
			for (int affine = 0; affine < 4; affine++)
				test_layernorm(k, lens[i], affine);
		}
	}
	CHECK(levels >= 1, "no level ran");
	return check_exit("test_simd");
}
