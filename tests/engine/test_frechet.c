/* test_frechet.c - the Frechet distance (engine/frechet.h) against cases computed by hand:
 *   - the square root of a symmetric positive definite matrix squares back to it;
 *   - diagonal covariances: d^2 = |mu1-mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2)) = 17 exactly;
 *   - 2x2 covariances that do not commute: tr((S1 S2)^(1/2)) = sqrt(tr(S1 S2) + 2 sqrt(det S1
 *     det S2)) (the trace of the square root of a 2x2 matrix with real positive eigenvalues);
 *   - from samples: a set against itself is 0; two Gaussian samples come close to the closed
 *     form; the distance is symmetric and unchanged by rotating both sets (64 dimensions).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/frechet.h"
#include "../../engine/rng.h"
#include "check.h"

static void test_sqrtm(void)
{
	enum { D = 5 };
	double b[D * D], a[D * D], keep[D * D], r[D * D];
	char err[256] = "";
	Rng rng;
	rng_seed(&rng, 11);
	for (int i = 0; i < D * D; i++)
		b[i] = rng_normal(&rng);
	for (int i = 0; i < D; i++)
		for (int j = 0; j < D; j++) {
			double s = i == j ? 1.0 : 0.0;
			for (int k = 0; k < D; k++)
				s += b[i * D + k] * b[j * D + k];
			a[i * D + j] = keep[i * D + j] = s;
		}
	int rc = frechet_sqrtm_sym(a, D, r, err, sizeof err);
	CHECK(rc == 0, "sqrtm: %s", err);
	double worst = 0;
	for (int i = 0; i < D; i++)
		for (int j = 0; j < D; j++) {
			double s = 0;
			for (int k = 0; k < D; k++)
				s += r[i * D + k] * r[k * D + j];
			worst = fmax(worst, fabs(s - keep[i * D + j]));
		}
	printf("sqrtm: max |R R - A| = %.3g\n", worst);
	CHECK(worst < 1e-9, "R R differs from A by %.3g", worst);
}

static void test_closed_forms(void)
{
	char err[256] = "";
	double fd = -1;
	const double m1[3] = { 1, 2, 3 }, m2[3] = { 0, 0, 0 };
	const double s1[9] = { 1, 0, 0, 0, 4, 0, 0, 0, 9 }, s2[9] = { 4, 0, 0, 0, 1, 0, 0, 0, 16 };
	CHECK(frechet_distance(m1, s1, m2, s2, 3, &fd, err, sizeof err) == 0, "%s", err);
	printf("diagonal: %.12f (expected 17)\n", fd);
	CHECK(fabs(fd - 17.0) < 1e-9, "diagonal case: %.12f, expected 17", fd);

	const double z[2] = { 0, 0 };
	const double a[4] = { 2, 1, 1, 2 }, b[4] = { 1, 0, 0, 3 };
	double want = 4 + 4 - 2 * sqrt(8 + 2 * sqrt(3.0 * 3.0));
	CHECK(frechet_distance(z, a, z, b, 2, &fd, err, sizeof err) == 0, "%s", err);
	printf("2x2, not commuting: %.12f (expected %.12f)\n", fd, want);
	CHECK(fabs(fd - want) < 1e-9, "2x2 case: %.12f, expected %.12f", fd, want);
}

/* n samples of N(mu, L L^T) in d dims into x; l is (d,d). */
static void gaussian(float *x, int n, int d, const double *mu, const double *l, Rng *rng)
{
	double *e = malloc((size_t)d * sizeof(double));
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < d; j++)
			e[j] = rng_normal(rng);
		for (int j = 0; j < d; j++) {
			double s = mu[j];
			for (int k = 0; k < d; k++)
				s += l[j * d + k] * e[k];
			x[(size_t)i * d + j] = (float)s;
		}
	}
	free(e);
}

static void test_samples(void)
{
	char err[256] = "";
	Rng rng;
	rng_seed(&rng, 5);
	/* The 2x2 case above as samples: L L^T = S for L = chol(S). */
	enum { N = 40000 };
	float *x = malloc((size_t)N * 2 * sizeof(float)), *y = malloc((size_t)N * 2 * sizeof(float));
	const double la[4] = { sqrt(2.0), 0, 1 / sqrt(2.0), sqrt(1.5) }, lb[4] = { 1, 0, 0, sqrt(3.0) };
	const double ma[2] = { 0.5, 0 }, mb[2] = { 0, 0 };
	gaussian(x, N, 2, ma, la, &rng);
	gaussian(y, N, 2, mb, lb, &rng);
	double fd = -1, self = -1, want = 0.25 + 8 - 2 * sqrt(14.0);
	CHECK(frechet_distance_features(x, N, y, N, 2, &fd, err, sizeof err) == 0, "%s", err);
	CHECK(frechet_distance_features(x, N, x, N, 2, &self, err, sizeof err) == 0, "%s", err);
	printf("samples: %.4f (closed form %.4f), against itself %.3g\n", fd, want, self);
	CHECK(fabs(fd - want) < 0.08, "sampled distance %.4f, closed form %.4f", fd, want);
	CHECK(self < 1e-6, "a set against itself: %.3g", self);
	free(x);
	free(y);

	/* 64 dimensions: symmetric, and rotation-invariant (both sets by one orthogonal Q). */
	enum { D = 64, M = 2000 };
	float *p = malloc((size_t)M * D * sizeof(float)), *q = malloc((size_t)M * D * sizeof(float));
	float *pr = malloc((size_t)M * D * sizeof(float)), *qr = malloc((size_t)M * D * sizeof(float));
	double *lp = calloc((size_t)D * D, sizeof(double)), *lq = calloc((size_t)D * D, sizeof(double));
	double *rot = calloc((size_t)D * D, sizeof(double));
	double mp[D] = { 0 }, mq[D];
	for (int i = 0; i < D; i++) {
		mq[i] = 0.1 * (i % 3);
		for (int j = 0; j <= i; j++) {
			lp[i * D + j] = (i == j ? 1.0 : 0.0) + 0.2 * rng_normal(&rng);
			lq[i * D + j] = (i == j ? 0.7 : 0.0) + 0.2 * rng_normal(&rng);
		}
	}
	gaussian(p, M, D, mp, lp, &rng);
	gaussian(q, M, D, mq, lq, &rng);
	/* Q by Gram-Schmidt on a random matrix. */
	for (int i = 0; i < D; i++) {
		for (int j = 0; j < D; j++)
			rot[i * D + j] = rng_normal(&rng);
		for (int k = 0; k < i; k++) {
			double dot = 0;
			for (int j = 0; j < D; j++)
				dot += rot[i * D + j] * rot[k * D + j];
			for (int j = 0; j < D; j++)
				rot[i * D + j] -= dot * rot[k * D + j];
		}
		double nn = 0;
		for (int j = 0; j < D; j++)
			nn += rot[i * D + j] * rot[i * D + j];
		for (int j = 0; j < D; j++)
			rot[i * D + j] /= sqrt(nn);
	}
	for (int s = 0; s < M; s++)
		for (int i = 0; i < D; i++) {
			double a = 0, b = 0;
			for (int j = 0; j < D; j++) {
				a += rot[i * D + j] * p[(size_t)s * D + j];
				b += rot[i * D + j] * q[(size_t)s * D + j];
			}
			pr[(size_t)s * D + i] = (float)a;
			qr[(size_t)s * D + i] = (float)b;
		}
	double pq = -1, qp = -1, rpq = -1;
	CHECK(frechet_distance_features(p, M, q, M, D, &pq, err, sizeof err) == 0, "%s", err);
	CHECK(frechet_distance_features(q, M, p, M, D, &qp, err, sizeof err) == 0, "%s", err);
	CHECK(frechet_distance_features(pr, M, qr, M, D, &rpq, err, sizeof err) == 0, "%s", err);
	printf("64 dims: d(p,q) %.6f, d(q,p) %.6f, rotated %.6f\n", pq, qp, rpq);
	CHECK(pq > 1, "the two 64-dim sets differ: %.6f", pq);
	CHECK(fabs(pq - qp) < 1e-6 * pq, "not symmetric: %.9f vs %.9f", pq, qp);
	CHECK(fabs(pq - rpq) < 1e-4 * pq, "rotation changed it: %.9f vs %.9f", pq, rpq);
	free(p);
	free(q);
	free(pr);
	free(qr);
	free(lp);
	free(lq);
	free(rot);
}

static void test_errors(void)
{
	char err[256] = "";
	float one[2] = { 1, 2 };
	double m[2], c[4];
	int rc = frechet_moments(one, 1, 2, m, c, err, sizeof err);
	CHECK(rc < 0 && strstr(err, "at least 2"), "one vector: rc %d, %s", rc, err);
}

int main(void)
{
	test_sqrtm();
	test_closed_forms();
	test_samples();
	test_errors();
	return check_exit("test_frechet");
}
