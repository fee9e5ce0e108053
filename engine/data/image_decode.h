/* image_decode.h - JPEG (libjpeg-turbo) and PNG (libpng) decoding and resizing to a square.
 *
 * The format is found from the first bytes, never from the file name, so a text file called
 * x.jpg is "not a JPEG or PNG file". Decoding gives interleaved 8-bit pixels (H,W,C) with C = 1
 * (gray) or 3 (RGB): EXIF orientation is applied, alpha is composited on white, 16-bit samples
 * are reduced to 8, palettes and low bit depths are expanded, CMYK/YCCK JPEGs are converted to
 * RGB. Images above IMG_MAX_SIDE a side or IMG_MAX_PIXELS pixels are refused from their header,
 * before any pixel memory is allocated (a decompression bomb costs nothing). Errors name the file
 * and the problem ("cat/x.jpg: truncated JPEG (the data ends before the image does)").
 *
 *   uint8_t px[3 * 64 * 64];                 // (C,S,S), what the decode cache stores
 *   if (img_load_file("cat/x.jpg", 3, IMG_RESIZE_SHORTER_SIDE, 64, px, err, sizeof err) < 0) ...
 */
#ifndef SSLD_DATA_IMAGE_DECODE_H
#define SSLD_DATA_IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#define IMG_MAX_SIDE   32768
#define IMG_MAX_PIXELS (64u << 20)
#define IMG_MAX_FILE_BYTES ((size_t)256 << 20)

typedef enum ImgResize {
	IMG_RESIZE_SHORTER_SIDE = 0, /* scale so the shorter side is S, then take the centre S x S */
	IMG_RESIZE_STRETCH,          /* scale each axis to S independently (aspect not kept) */
	IMG_RESIZE_CENTER_CROP,      /* the centre S x S at the original scale; an image with a side
	                              * below S is scaled up as in SHORTER_SIDE first */
	IMG_RESIZE_COUNT
} ImgResize;

/* "shorter_side", "stretch", "center_crop"; NULL past the end. */
const char *img_resize_name(ImgResize m);
/* The mode named s, or -1. */
int img_resize_parse(const char *s);

typedef struct ImgRaw {
	uint8_t *pix;   /* (h, w, c) interleaved, eng_malloc'd; img_raw_free releases it */
	int w, h, c;    /* c: 1 or 3 */
} ImgRaw;

void img_raw_free(ImgRaw *im);

/* Decode an in-memory JPEG or PNG. name is used in messages only. want_c: 1 gray, 3 RGB, 0 as
 * stored (1 for gray files, else 3). min_side > 0 lets the JPEG decoder scale down in the DCT
 * (1/2, 1/4, 1/8) as long as both sides stay >= min_side, the cheap first step of a downscale.
 * 0, or -EINVAL (not an image, corrupt, truncated, too large: err says which), -ENOMEM. */
int img_decode_mem(const uint8_t *buf, size_t len, const char *name, int want_c, int min_side,
                   ImgRaw *out, char *err, size_t errlen);

/* The same from a file (opened through data_open, so the data roots apply). An empty file, an
 * unreadable one and one above IMG_MAX_FILE_BYTES fail with the path and the reason. */
int img_decode_file(const char *path, int want_c, int min_side, ImgRaw *out, char *err,
                    size_t errlen);

/* Resize src to (C,S,S) planar bytes in dst (dst holds src->c * S * S): a separable triangle
 * filter widened by the scale when shrinking (area-like antialiasing), bilinear when enlarging.
 * 0 or -EINVAL for bad arguments, -ENOMEM. */
int img_resize(const ImgRaw *src, ImgResize mode, int size, uint8_t *dst);

/* Decode + resize in one call: dst (want_c, S, S). want_c must be 1 or 3. */
int img_load_file(const char *path, int want_c, ImgResize mode, int size, uint8_t *dst,
                  char *err, size_t errlen);

#endif
