/* tolerance.h - error bounds for tests that compare a float32 computation (sgemm, a vectorised
 * loop, a differently ordered sum) with a reference, derived from the computation instead of
 * from what one CPU happened to produce.
 *
 * A float32 sum of n terms t_i, in any order, blocked or not, with or without FMA, satisfies
 *     |fl(sum) - sum| <= gamma_n * sum |t_i|,   gamma_n = n u / (1 - n u),  u = FLT_EPSILON / 2
 * (Higham, Accuracy and Stability of Numerical Algorithms, 3.1), where a product a_i * b_i
 * counts its own rounding: a dot product of length n is within gamma_n of the exact value. So the
 * bound of one output element is
 *     |got - ref| <= k * FLT_EPSILON * mag
 * with mag = sum |a_i b_i| over the terms of that element (computed in the reference loop next
 * to the reference value) and k the number of roundings on the longest path from an input to the
 * output: the number of terms summed into the element, plus one for each later stage (a bias,
 * an accumulation into a gradient that already held a value, a scale). k * FLT_EPSILON is
 * 2 k u, which covers gamma_k and the final rounding of the reference to float. The bound holds
 * for every summation order OpenBLAS may pick on any core type or thread count, so a test using
 * it cannot fail on a CPU because that CPU blocks its sums differently; a wrong term, a skipped
 * or doubled chunk is of the order of the terms themselves and still fails.
 *
 * Two float computations of the same sum (one thread against two) differ by at most twice the
 * bound. Composite computations (softmax, normalisation) derive a bound per element by running
 * error analysis and pass it to tol_check_bound.
 *
 *   double *ref = ..., *mag = ...;                  // reference value and sum |term| per element
 *   failures += tol_check("conv2d dx", x->grad, ref, mag, x->size, O * kh * kw);
 *
 * Header-only (static functions) so each test executable includes it without a library.
 */
#ifndef SSLD_TESTS_TOLERANCE_H
#define SSLD_TESTS_TOLERANCE_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>

/* The bound of one element: k roundings on sums whose terms add up to mag in absolute value. */
static inline double tol_bound(double k, double mag)
{
	return k * (double)FLT_EPSILON * mag;
}

/* Shared by the two checks below: bound[i] when bound is given, else tol_bound(k, mag[i]). */
static inline int tol__check(const char *what, const float *got, const double *ref,
                             const double *bound, const double *mag, double k, size_t n)
{
	size_t worst = 0, bad = 0;
	double worst_ratio = -1.0;
	for (size_t i = 0; i < n; i++) {
		const double err = fabs((double)got[i] - ref[i]);
		const double b = bound ? bound[i] : tol_bound(k, mag[i]);
		/* an exact element with a zero bound (no terms) passes; a NaN error never does */
		double ratio = err == 0.0 ? 0.0 : err / b;
		if (isnan(ratio))
			ratio = INFINITY;
		if (!(err <= b))
			bad++;
		if (ratio > worst_ratio) {
			worst_ratio = ratio;
			worst = i;
		}
	}
	if (n == 0)
		return 0;
	const double b = bound ? bound[worst] : tol_bound(k, mag[worst]);
	FILE *f = bad ? stderr : stdout;
	fprintf(f, "%s %s: %zu of %zu elements out of bound; worst [%zu]: got %.9g ref %.9g err %.3g"
	        " bound %.3g (%.2f of it)", bad ? "FAIL" : "ok", what, bad, n, worst,
	        (double)got[worst], ref[worst], fabs((double)got[worst] - ref[worst]), b, worst_ratio);
	if (!bound)
		fprintf(f, " = %g eps * mag %.4g", k, mag[worst]);
	fprintf(f, "\n");
	return bad > 0;
}

/* Check |got[i] - ref[i]| <= bound[i] for every i. Prints one line labelled `what` with the
 * element nearest to (or furthest beyond) its bound: "FAIL ..." on stderr when some element is
 * out of bound, "ok ..." on stdout otherwise. Returns 1 when some element is out of bound, else 0
 * (add it to the test's failure count). */
static inline int tol_check_bound(const char *what, const float *got, const double *ref,
                                  const double *bound, size_t n)
{
	return tol__check(what, got, ref, bound, NULL, 0.0, n);
}

/* tol_check_bound with bound[i] = tol_bound(k, mag[i]). */
static inline int tol_check(const char *what, const float *got, const double *ref,
                            const double *mag, size_t n, double k)
{
	return tol__check(what, got, ref, NULL, mag, k, n);
}

#endif
