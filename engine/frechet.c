/* frechet.c - the Frechet distance between feature sets (frechet.h). Double precision
 * throughout; LAPACK's dsyevd (OpenBLAS exports it; Debian's OpenBLAS has no LAPACKE layer, so
 * the Fortran entry point is declared here) for the symmetric eigendecompositions and
 * cblas_dgemm for the products. Does not pick features or generate images.
 */
#include "frechet.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

/* LAPACK (Fortran ABI): the two trailing arguments are the hidden lengths of jobz and uplo. */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
             double *w, double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_len, size_t uplo_len);

int frechet_moments(const float *x, int n, int d, double *mean, double *cov, char *err,
                    size_t errlen)
{
	if (n < 2 || d < 1) {
		snprintf(err, errlen, "frechet: need at least 2 vectors of dimension >= 1, got %d x %d",
		         n, d);
		return -EINVAL;
	}
	double *xc = eng_malloc((size_t)n * d * sizeof(double));
	if (!xc) {
		snprintf(err, errlen, "frechet: out of memory for %d x %d features", n, d);
		return -ENOMEM;
	}
	for (int j = 0; j < d; j++)
		mean[j] = 0;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < d; j++)
			mean[j] += x[(size_t)i * d + j];
	for (int j = 0; j < d; j++)
		mean[j] /= n;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < d; j++)
			xc[(size_t)i * d + j] = x[(size_t)i * d + j] - mean[j];
	// cov (d,d) = xc^T xc / (n - 1)
	cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, n, 1.0 / (n - 1), xc, d, xc, d, 0.0,
	            cov, d);
	eng_free(xc);
	return 0;
}

/* Eigen-decomposition of the symmetric a (d,d), overwritten by the eigenvectors (as columns of
 * the column-major result, i.e. rows of the row-major array); eigenvalues into w. */
static int eigh(double *a, int d, double *w, char *err, size_t errlen)
{
	int lwork = -1, liwork = -1, info = 0, iw_query = 0;
	double w_query = 0;
	dsyevd_("V", "U", &d, a, &d, w, &w_query, &lwork, &iw_query, &liwork, &info, 1, 1);
	if (info != 0) {
		snprintf(err, errlen, "frechet: dsyevd workspace query failed (info %d)", info);
		return -EINVAL;
	}
	lwork = (int)w_query;
	liwork = iw_query;
	double *work = eng_malloc((size_t)lwork * sizeof(double));
	int *iwork = eng_malloc((size_t)liwork * sizeof(int));
	if (!work || !iwork) {
		eng_free(work);
		eng_free(iwork);
		snprintf(err, errlen, "frechet: out of memory for a %d x %d eigendecomposition", d, d);
		return -ENOMEM;
	}
	dsyevd_("V", "U", &d, a, &d, w, work, &lwork, iwork, &liwork, &info, 1, 1);
	eng_free(work);
	eng_free(iwork);
	if (info != 0) {
		snprintf(err, errlen, "frechet: dsyevd did not converge on a %d x %d matrix (info %d)",
		         d, d, info);
		return -EINVAL;
	}
	return 0;
}

int frechet_sqrtm_sym(double *a, int d, double *out, char *err, size_t errlen)
{
	double *w = eng_malloc((size_t)d * sizeof(double));
	double *vs = eng_malloc((size_t)d * d * sizeof(double));
	if (!w || !vs) {
		eng_free(w);
		eng_free(vs);
		snprintf(err, errlen, "frechet: out of memory for a %d x %d square root", d, d);
		return -ENOMEM;
	}
	/* a is symmetric, so row-major and column-major are the same matrix; dsyevd leaves the
	 * eigenvectors in the columns of the column-major array: row k of the row-major a is
	 * eigenvector k. sqrt(A) = V diag(sqrt(w)) V^T = sum_k sqrt(w_k) v_k v_k^T. */
	int rc = eigh(a, d, w, err, errlen);
	if (rc == 0) {
		for (int k = 0; k < d; k++) {
			double s = sqrt(sqrt(w[k] > 0 ? w[k] : 0));
			for (int j = 0; j < d; j++)
				vs[(size_t)k * d + j] = a[(size_t)k * d + j] * s;
		}
		// out (d,d) = vs^T vs
		cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, d, 1.0, vs, d, vs, d, 0.0, out,
		            d);
	}
	eng_free(w);
	eng_free(vs);
	return rc;
}

int frechet_distance(const double *mu1, const double *s1, const double *mu2, const double *s2,
                     int d, double *out, char *err, size_t errlen)
{
	size_t dd = (size_t)d * d;
	double *a = eng_malloc(dd * sizeof(double)), *root = eng_malloc(dd * sizeof(double));
	double *t = eng_malloc(dd * sizeof(double)), *w = eng_malloc((size_t)d * sizeof(double));
	int rc = -ENOMEM;
	if (!a || !root || !t || !w) {
		snprintf(err, errlen, "frechet: out of memory for %d dimensions", d);
		goto done;
	}
	memcpy(a, s1, dd * sizeof(double));
	if ((rc = frechet_sqrtm_sym(a, d, root, err, errlen)) < 0)
		goto done;
	// a = root s2 root (symmetric PSD), its eigenvalues' square roots sum to tr((s1 s2)^(1/2))
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, root, d, s2, d, 0.0, t,
	            d);
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, t, d, root, d, 0.0, a, d);
	for (int i = 0; i < d; i++)   /* symmetrise away the rounding */
		for (int j = i + 1; j < d; j++)
			a[(size_t)i * d + j] = a[(size_t)j * d + i] =
				0.5 * (a[(size_t)i * d + j] + a[(size_t)j * d + i]);
	if ((rc = eigh(a, d, w, err, errlen)) < 0)
		goto done;
	double dist = 0, tr_root = 0;
	for (int i = 0; i < d; i++) {
		double dm = mu1[i] - mu2[i];
		dist += dm * dm + s1[(size_t)i * d + i] + s2[(size_t)i * d + i];
		tr_root += sqrt(w[i] > 0 ? w[i] : 0);
	}
	dist -= 2 * tr_root;
	*out = dist > 0 ? dist : 0;
	rc = 0;
done:
	eng_free(a);
	eng_free(root);
	eng_free(t);
	eng_free(w);
	return rc;
}

int frechet_distance_features(const float *x, int n1, const float *y, int n2, int d, double *out,
                              char *err, size_t errlen)
{
	size_t dd = (size_t)d * d;
	double *m1 = eng_malloc((size_t)d * sizeof(double)), *m2 = eng_malloc((size_t)d * sizeof(double));
	double *c1 = eng_malloc(dd * sizeof(double)), *c2 = eng_malloc(dd * sizeof(double));
	int rc = -ENOMEM;
	if (!m1 || !m2 || !c1 || !c2)
		snprintf(err, errlen, "frechet: out of memory for %d dimensions", d);
	else if ((rc = frechet_moments(x, n1, d, m1, c1, err, errlen)) == 0 &&
	         (rc = frechet_moments(y, n2, d, m2, c2, err, errlen)) == 0)
		rc = frechet_distance(m1, c1, m2, c2, d, out, err, errlen);
	eng_free(m1);
	eng_free(m2);
	eng_free(c1);
	eng_free(c2);
	return rc;
}
