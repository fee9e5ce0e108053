/* dataset_grid.h - a PNG of sample images of an uploaded image folder: one row per class (up to
 * DATASET_GRID_ROWS classes), up to DATASET_GRID_COLS images each, 32x32 RGB cells.
 *
 *   if (dataset_grid_write("/state/uploads/.tmp/up.X/tree", &summary, ".../grid.png", err, sizeof err) < 0)
 *       log(err);   // the dataset is still fine without its grid
 */
#ifndef SSLD_API_DATASET_GRID_H
#define SSLD_API_DATASET_GRID_H

#include <stddef.h>

#include "../workers/unpack.h"

#define DATASET_GRID_ROWS 8
#define DATASET_GRID_COLS 8

/* 0, or < 0 with err (no image could be read, or writing failed). */
int dataset_grid_write(const char *tree, const UnpackSummary *s, const char *out, char *err, size_t errlen);

#endif
