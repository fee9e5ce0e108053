/* png_grid.h - PNG image grids (artifacts, the dashboard) and a PNG reader (libpng).
 *
 * A grid lays out a batch of (C,H,W) float images (C = 1 gray or 3 RGB) in rows of `cols`, with
 * `pad` pixels of white between cells and around the border. Values map linearly from [lo, hi] to
 * 0..255 and are clamped: byte = round((x - lo) / (hi - lo) * 255), so reading a grid written with
 * lo = 0, hi = 1 gives back round(x * 255) / 255 for each pixel. Files are written to a temporary
 * name and renamed, so a reader never sees half a PNG.
 *
 *   // inputs on row 0, view 1 on row 1, view 2 on row 2: 8 images per row, 28x28 gray
 *   const float *rows[3] = { x, v1, v2 };             // each (8,1,28,28)
 *   png_grid_write_rows("views.png", rows, 3, 8, 1, 28, 28, 2, 0.0f, 1.0f, err, sizeof err);
 *
 *   float *img; int c, h, w;
 *   png_read("views.png", 1, &img, &c, &h, &w, err, sizeof err);  // (1,H,W) in [0,1]
 *   eng_free(img);
 */
#ifndef SSLD_DATA_PNG_GRID_H
#define SSLD_DATA_PNG_GRID_H

#include <stddef.h>
#include <stdint.h>

/* Pixel geometry of a grid: returns 0 and fills *gw, *gh, or -EINVAL for bad arguments. */
int png_grid_size(int n, int cols, int h, int w, int pad, int *gw, int *gh);

/* images (n,C,H,W), C in {1,3}; cols <= 0 picks ceil(sqrt(n)). 0 or a negative errno. */
int png_grid_write(const char *path, const float *images, int n, int c, int h, int w, int cols,
                   int pad, float lo, float hi, char *err, size_t errlen);

/* rows[r] (per_row,C,H,W): one row of the grid per batch, e.g. inputs / views / reconstructions. */
int png_grid_write_rows(const char *path, const float *const *rows, int n_rows, int per_row, int c,
                        int h, int w, int pad, float lo, float hi, char *err, size_t errlen);

/* Raw 8-bit pixels (h rows of w*c bytes, c in {1,3}). */
int png_write_u8(const char *path, const uint8_t *pix, int w, int h, int c, char *err, size_t errlen);

/* Decode a PNG (any bit depth / colour type; alpha is composited on black, 16-bit reduced to 8).
 * want_c: 1 = gray, 3 = RGB, 0 = as stored (1 for gray files, 3 for colour). *out (C,H,W) floats
 * in [0,1] (byte / 255), eng_malloc'd, caller eng_frees. Images above 16384 pixels a side or
 * 64M pixels are refused. 0 or a negative errno with a message naming the file. */
int png_read(const char *path, int want_c, float **out, int *c, int *h, int *w, char *err,
             size_t errlen);

#endif
