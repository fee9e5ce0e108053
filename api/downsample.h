/* downsample.h - Largest-Triangle-Three-Buckets (LTTB) downsampling of a metric curve.
 *
 * Keeps the first and the last point and, from each of (max_points - 2) equal buckets in between,
 * the point that spans the largest triangle with the point kept before it and the average of the
 * next bucket: peaks, dips and the overall shape survive, so a 100k-step loss curve drawn from a
 * few hundred points looks like the full one (Steinarsson 2013, "Downsampling Time Series for
 * Visual Representation").
 *
 *   size_t keep[500];
 *   size_t n = lttb_select(xs, ys, 100000, 500, keep);   // indices, ascending, n <= 500
 */
#ifndef SSLD_API_DOWNSAMPLE_H
#define SSLD_API_DOWNSAMPLE_H

#include <stddef.h>

/* x (n) ascending, y (n); NaN y values are never chosen as a bucket's representative unless the
 * whole bucket is NaN. Writes the kept indices (ascending) to keep (capacity max_points) and
 * returns their count: n itself (every index) when n <= max_points or max_points < 3. */
size_t lttb_select(const double *x, const double *y, size_t n, size_t max_points, size_t *keep);

#endif
