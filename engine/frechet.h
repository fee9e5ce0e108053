/* frechet.h - the Frechet distance between two sets of feature vectors, each summarised by a
 * Gaussian (mean and covariance), as in the FID of Heusel et al. 2017:
 *
 *   d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))
 *
 * The trace of the matrix square root is taken as tr((A S2 A)^(1/2)) with A = S1^(1/2): both
 * square roots are of symmetric positive semi-definite matrices, done with an
 * eigendecomposition (LAPACK dsyevd, from OpenBLAS) in double precision; eigenvalues that
 * rounding makes slightly negative count as 0.
 *
 *   double fd;
 *   if (frechet_distance_features(real, 10000, gen, 10000, 128, &fd, err, sizeof err) < 0) ...
 *
 * Which features (the "fixed classifier") is the caller's choice; this module only measures.
 */
#ifndef SSLD_ENGINE_FRECHET_H
#define SSLD_ENGINE_FRECHET_H

#include <stddef.h>

/* x (n,d) floats -> mean (d) and covariance (d,d) with the n - 1 denominator. n >= 2.
 * 0, or -EINVAL / -ENOMEM with err saying which. */
int frechet_moments(const float *x, int n, int d, double *mean, double *cov, char *err,
                    size_t errlen);
/* The squared Frechet distance between N(mu1, s1) and N(mu2, s2) in d dimensions. */
int frechet_distance(const double *mu1, const double *s1, const double *mu2, const double *s2,
                     int d, double *out, char *err, size_t errlen);
/* Both steps: x (n1,d) against y (n2,d). */
int frechet_distance_features(const float *x, int n1, const float *y, int n2, int d, double *out,
                              char *err, size_t errlen);
/* The symmetric d x d matrix a (row-major, overwritten) -> its square root into out, negative
 * eigenvalues clamped to 0. Exposed for the tests. */
int frechet_sqrtm_sym(double *a, int d, double *out, char *err, size_t errlen);

#endif
