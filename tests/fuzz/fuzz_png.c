/* fuzz_png.c - libFuzzer harness for the PNG reader (engine/data/png_grid.h: png_read), which
 * reads the images of caption datasets.
 *
 * Input: one control byte (want_c: as stored, gray or RGB), then the file. png_read must either
 * return an image of the promised shape (within its size limits) or fail with a message; libpng
 * errors must come back as errors, not as a longjmp past our cleanup or an abort.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/alloc.h"
#include "../../engine/data/png_grid.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const int want[4] = { 0, 1, 3, 0 };
	const char *p = fuzz_write("in.png", data + 1, size - 1, 0);
	float *img = NULL;
	int c = 0, h = 0, w = 0;
	char err[512] = "";
	if (png_read(p, want[data[0] & 3], &img, &c, &h, &w, err, sizeof err) < 0) {
		if (!err[0] || img)
			abort();
		return 0;
	}
	if ((c != 1 && c != 3) || h <= 0 || w <= 0 || h > 16384 || w > 16384 ||
	    (want[data[0] & 3] && c != want[data[0] & 3]))
		abort();
	size_t n = (size_t)c * h * w;
	for (size_t i = 0; i < n; i++)
		if (!(img[i] >= 0.0f && img[i] <= 1.0f))
			abort();
	eng_free(img);
	return 0;
}
