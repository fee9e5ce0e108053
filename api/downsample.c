/* downsample.c - LTTB downsampling (see downsample.h).
 *
 * Pure computation on arrays; it does not read the database or know about JSON. O(n) time.
 */
#include "downsample.h"

#include <math.h>

size_t lttb_select(const double *x, const double *y, size_t n, size_t max_points, size_t *keep)
{
	if (n <= max_points || max_points < 3) {
		size_t m = n <= max_points || max_points == 0 ? n : max_points;
		if (m == n)
			for (size_t i = 0; i < n; i++) keep[i] = i;
		else   /* 1 or 2 points asked for: the ends */
			for (size_t i = 0; i < m; i++) keep[i] = i == 0 ? 0 : n - 1;
		return m;
	}
	size_t out = 0, a = 0;
	keep[out++] = 0;
	double every = (double)(n - 2) / (double)(max_points - 2);
	for (size_t b = 0; b < max_points - 2; b++) {
		/* This bucket: [lo, hi); the next one (for the average): [nlo, nhi). */
		size_t lo = (size_t)floor((double)b * every) + 1;
		size_t hi = (size_t)floor((double)(b + 1) * every) + 1;
		if (hi > n - 1) hi = n - 1;
		if (lo >= hi) lo = hi - 1;
		size_t nlo = hi;
		size_t nhi = (size_t)floor((double)(b + 2) * every) + 1;
		if (nhi > n) nhi = n;
		if (nlo >= nhi) nlo = nhi - 1;
		double ax = 0, ay = 0;
		size_t cnt = 0;
		for (size_t i = nlo; i < nhi; i++) {
			if (isnan(y[i])) continue;
			ax += x[i];
			ay += y[i];
			cnt++;
		}
		if (cnt) { ax /= (double)cnt; ay /= (double)cnt; }
		else { ax = x[nhi - 1]; ay = isnan(y[a]) ? 0 : y[a]; }
		double px = x[a], py = isnan(y[a]) ? ay : y[a];
		double best = -1;
		size_t pick = lo;
		for (size_t i = lo; i < hi; i++) {
			if (isnan(y[i])) continue;
			double area = fabs((px - ax) * (y[i] - py) - (px - x[i]) * (ay - py));
			if (area > best) { best = area; pick = i; }
		}
		keep[out++] = pick;
		a = pick;
	}
	keep[out++] = n - 1;
	return out;
}
