/* png_grid.c - PNG grids of float images and a PNG reader, through libpng's simplified API.
 *
 * Writing quantises to 8 bits (see png_grid.h for the exact rule) and renames a temporary file
 * into place. Reading accepts whatever libpng accepts and converts to 8-bit gray or RGB.
 * Deliberately no 16-bit output, no colour management and no text chunks: these are previews.
 */
#include "png_grid.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "data_internal.h"

#define PNG_MAX_SIDE   16384
#define PNG_MAX_PIXELS ((size_t)64 << 20)
#define PNG_PAD_BYTE   255

int png_grid_size(int n, int cols, int h, int w, int pad, int *gw, int *gh)
{
	if (n <= 0 || h <= 0 || w <= 0 || pad < 0)
		return -EINVAL;
	if (cols <= 0) {
		cols = (int)ceil(sqrt((double)n));
		if (cols < 1)
			cols = 1;
	}
	if (cols > n)
		cols = n;
	int rows = (n + cols - 1) / cols;
	long long W = (long long)cols * (w + pad) + pad, H = (long long)rows * (h + pad) + pad;
	if (W > PNG_MAX_SIDE || H > PNG_MAX_SIDE)
		return -EINVAL;
	*gw = (int)W;
	*gh = (int)H;
	return 0;
}

int png_write_u8(const char *path, const uint8_t *pix, int w, int h, int c, char *err, size_t errlen)
{
	if (c != 1 && c != 3)
		return data_err(-EINVAL, err, errlen, "%s: PNG channels must be 1 or 3, got %d", path, c);
	if (w <= 0 || h <= 0 || w > PNG_MAX_SIDE || h > PNG_MAX_SIDE)
		return data_err(-EINVAL, err, errlen, "%s: bad PNG size %dx%d", path, w, h);
	char tmp[4096];
	int k = snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (k < 0 || (size_t)k >= sizeof tmp)
		return data_err(-ENAMETOOLONG, err, errlen, "%s: path too long", path);
	png_image im;
	memset(&im, 0, sizeof im);
	im.version = PNG_IMAGE_VERSION;
	im.width = (png_uint_32)w;
	im.height = (png_uint_32)h;
	im.format = c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
	if (!png_image_write_to_file(&im, tmp, 0, pix, 0, NULL)) {
		int rc = data_err(-EIO, err, errlen, "%s: cannot write PNG: %s", path, im.message);
		png_image_free(&im);
		remove(tmp);
		return rc;
	}
	if (rename(tmp, path) != 0) {
		int e = errno;
		remove(tmp);
		return data_err(-e, err, errlen, "%s: cannot rename the written PNG into place: %s", path,
		                strerror(e));
	}
	return 0;
}

static inline uint8_t quant(float x, float lo, float scale)
{
	float v = (x - lo) * scale;
	if (!(v > 0.0f))          /* also NaN -> 0 */
		return 0;
	if (v >= 255.0f)
		return 255;
	return (uint8_t)lrintf(v);
}

/* Blit image (C,H,W) into the interleaved grid buffer at cell (gx, gy). */
static void blit(uint8_t *g, int gw, const float *img, int c, int h, int w, int x0, int y0, float lo,
                 float scale)
{
	for (int ch = 0; ch < c; ch++)
		for (int y = 0; y < h; y++) {
			const float *src = img + ((size_t)ch * h + y) * w;
			uint8_t *dst = g + ((size_t)(y0 + y) * gw + x0) * c + ch;
			for (int x = 0; x < w; x++)
				dst[(size_t)x * c] = quant(src[x], lo, scale);
		}
}

static int check_args(const char *path, int c, float lo, float hi, char *err, size_t errlen)
{
	if (c != 1 && c != 3)
		return data_err(-EINVAL, err, errlen, "%s: grid images must have 1 or 3 channels, got %d",
		                path, c);
	if (!(hi > lo))
		return data_err(-EINVAL, err, errlen, "%s: grid range needs hi > lo, got [%g, %g]", path,
		                (double)lo, (double)hi);
	return 0;
}

int png_grid_write(const char *path, const float *images, int n, int c, int h, int w, int cols,
                   int pad, float lo, float hi, char *err, size_t errlen)
{
	int rc = check_args(path, c, lo, hi, err, errlen);
	if (rc < 0)
		return rc;
	int gw, gh;
	if (png_grid_size(n, cols, h, w, pad, &gw, &gh) < 0)
		return data_err(-EINVAL, err, errlen, "%s: bad grid (n=%d cols=%d %dx%d pad=%d)", path, n,
		                cols, h, w, pad);
	if (cols <= 0)
		cols = (int)ceil(sqrt((double)n));
	if (cols > n)
		cols = n;
	uint8_t *g = eng_malloc((size_t)gw * gh * c);
	if (!g)
		return data_err(-ENOMEM, err, errlen, "%s: out of memory", path);
	memset(g, PNG_PAD_BYTE, (size_t)gw * gh * c);
	float scale = 255.0f / (hi - lo);
	size_t sf = (size_t)c * h * w;
	for (int i = 0; i < n; i++)
		blit(g, gw, images + i * sf, c, h, w, pad + (i % cols) * (w + pad),
		     pad + (i / cols) * (h + pad), lo, scale);
	rc = png_write_u8(path, g, gw, gh, c, err, errlen);
	eng_free(g);
	return rc;
}

int png_grid_write_rows(const char *path, const float *const *rows, int n_rows, int per_row, int c,
                        int h, int w, int pad, float lo, float hi, char *err, size_t errlen)
{
	int rc = check_args(path, c, lo, hi, err, errlen);
	if (rc < 0)
		return rc;
	int gw, gh;
	if (n_rows <= 0 || per_row <= 0 ||
	    png_grid_size(n_rows * per_row, per_row, h, w, pad, &gw, &gh) < 0)
		return data_err(-EINVAL, err, errlen, "%s: bad grid (%d rows of %d, %dx%d pad=%d)", path,
		                n_rows, per_row, h, w, pad);
	uint8_t *g = eng_malloc((size_t)gw * gh * c);
	if (!g)
		return data_err(-ENOMEM, err, errlen, "%s: out of memory", path);
	memset(g, PNG_PAD_BYTE, (size_t)gw * gh * c);
	float scale = 255.0f / (hi - lo);
	size_t sf = (size_t)c * h * w;
	for (int r = 0; r < n_rows; r++)
		for (int i = 0; i < per_row; i++)
			blit(g, gw, rows[r] + i * sf, c, h, w, pad + i * (w + pad), pad + r * (h + pad), lo,
			     scale);
	rc = png_write_u8(path, g, gw, gh, c, err, errlen);
	eng_free(g);
	return rc;
}

int png_read(const char *path, int want_c, float **out, int *c, int *h, int *w, char *err,
             size_t errlen)
{
	*out = NULL;
	if (want_c != 0 && want_c != 1 && want_c != 3)
		return data_err(-EINVAL, err, errlen, "%s: want_c must be 0, 1 or 3, got %d", path, want_c);
	FILE *f = data_fopen(path, err, errlen);   /* confined to the data roots in the daemon */
	if (!f)
		return errno ? -errno : -EIO;
	png_image im;
	memset(&im, 0, sizeof im);
	im.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_stdio(&im, f)) {
		int rc = data_err(-EINVAL, err, errlen, "%s: not a readable PNG: %s", path, im.message);
		png_image_free(&im);
		fclose(f);
		return rc;
	}
	if (im.width == 0 || im.height == 0 || im.width > PNG_MAX_SIDE || im.height > PNG_MAX_SIDE ||
	    (size_t)im.width * im.height > PNG_MAX_PIXELS) {
		int rc = data_err(-EINVAL, err, errlen, "%s: PNG is %ux%u, above the %d-pixel side limit",
		                  path, im.width, im.height, PNG_MAX_SIDE);
		png_image_free(&im);
		fclose(f);
		return rc;
	}
	int cc = want_c ? want_c : ((im.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1);
	im.format = cc == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
	size_t npix = (size_t)im.width * im.height;
	uint8_t *buf = eng_malloc(npix * cc);
	float *dst = eng_malloc(npix * cc * sizeof(float));
	if (!buf || !dst) {
		eng_free(buf);
		eng_free(dst);
		png_image_free(&im);
		fclose(f);
		return data_err(-ENOMEM, err, errlen, "%s: out of memory", path);
	}
	png_color black = {0, 0, 0};
	if (!png_image_finish_read(&im, &black, buf, 0, NULL)) {
		int rc = data_err(-EINVAL, err, errlen, "%s: corrupt PNG: %s", path, im.message);
		eng_free(buf);
		eng_free(dst);
		png_image_free(&im);
		fclose(f);
		return rc;
	}
	fclose(f);
	/* interleaved HWC bytes -> planar CHW floats */
	for (int ch = 0; ch < cc; ch++)
		for (size_t i = 0; i < npix; i++)
			dst[ch * npix + i] = (float)buf[i * cc + ch] / 255.0f;
	eng_free(buf);
	*out = dst;
	*c = cc;
	*h = (int)im.height;
	*w = (int)im.width;
	return 0;
}
