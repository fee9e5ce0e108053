/* fuzz_image.c - libFuzzer harness for the JPEG/PNG decoders and the resizer
 * (engine/data/image_decode.h: img_decode_mem, img_resize).
 *
 * Input: one control byte, then the file. Control bits 0-1: channels asked for (as stored, gray,
 * RGB, as stored); bits 2-3: resize mode (3 = none); bits 4-6: the JPEG DCT-scaling floor
 * (0 or 4 * k px) and the resize target 4 + 4 * k. A decode must either fail with a message and
 * no pixels, or return an image of the promised shape within the size limits; libjpeg/libpng
 * errors must come back as errors, not as a longjmp past our cleanup or an abort.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/alloc.h"
#include "../../engine/data/image_decode.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const int want[4] = { 0, 1, 3, 0 };
	int wc = want[data[0] & 3], mode = (data[0] >> 2) & 3, k = (data[0] >> 4) & 7;
	ImgRaw im;
	char err[512] = "";
	if (img_decode_mem(data + 1, size - 1, "fuzz", wc, k * 4, &im, err, sizeof err) < 0) {
		if (!err[0] || im.pix)
			abort();
		return 0;
	}
	if (!im.pix || (im.c != 1 && im.c != 3) || (wc && im.c != wc) || im.w <= 0 || im.h <= 0 ||
	    im.w > IMG_MAX_SIDE || im.h > IMG_MAX_SIDE || (uint64_t)im.w * im.h > IMG_MAX_PIXELS)
		abort();
	double s = 0;
	size_t n = (size_t)im.w * im.h * im.c;
	for (size_t i = 0; i < n; i += 97)
		s += im.pix[i];
	if (mode < IMG_RESIZE_COUNT) {
		int side = 4 + 4 * k;
		uint8_t *dst = malloc((size_t)im.c * side * side);
		if (img_resize(&im, (ImgResize)mode, side, dst) != 0)
			abort();
		for (int i = 0; i < im.c * side * side; i++)
			s += dst[i];
		free(dst);
	}
	fuzz_sink += s;
	img_raw_free(&im);
	return 0;
}
