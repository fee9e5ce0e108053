/* img_fixtures.h - writers for the image tests' fixtures: PNGs (any colour type, bit depth,
 * interlacing) with libpng and JPEGs (RGB, gray, CMYK, an EXIF orientation) with libjpeg, so every
 * decoder variant is exercised on files made inside the test. Pixels come from a callback. */
#ifndef SSLD_TESTS_DATA_IMG_FIXTURES_H
#define SSLD_TESTS_DATA_IMG_FIXTURES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

/* The value of channel ch at (x, y), 0..65535 for 16-bit files, 0..255 otherwise. */
typedef unsigned (*fx_pixel_fn)(int x, int y, int ch);

/* color_type: PNG_COLOR_TYPE_*; palette files get an 8-entry palette and index = pixel(x,y,0) % 8 */
static inline int fx_png(const char *path, int w, int h, int color_type, int depth, int interlace,
                         fx_pixel_fn px)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png_create_info_struct(png);
	if (setjmp(png_jmpbuf(png))) {
		fclose(f);
		return -1;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, w, h, depth, color_type,
	             interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
	             PNG_FILTER_TYPE_DEFAULT);
	if (color_type == PNG_COLOR_TYPE_PALETTE) {
		png_color pal[8];
		for (int i = 0; i < 8; i++)
			pal[i] = (png_color){ (png_byte)(i * 30), (png_byte)(255 - i * 30), (png_byte)(i * 10) };
		png_set_PLTE(png, info, pal, 8);
	}
	png_write_info(png, info);
	if (depth == 16)
		png_set_swap(png);
	if (depth < 8)
		png_set_packing(png);    /* one sample per byte in, packed on write */       /* we fill native little-endian shorts */
	int ch = png_get_channels(png, info);
	size_t bps = depth == 16 ? 2 : 1;
	uint8_t *img = calloc((size_t)w * h * ch * bps, 1);
	png_bytep *rows = malloc(sizeof(png_bytep) * h);
	for (int y = 0; y < h; y++) {
		rows[y] = img + (size_t)y * w * ch * bps;
		for (int x = 0; x < w; x++)
			for (int c = 0; c < ch; c++) {
				unsigned v = px(x, y, c);
				if (color_type == PNG_COLOR_TYPE_PALETTE)
					v %= 8;
				if (depth == 16) {
					uint16_t s = (uint16_t)v;
					memcpy(rows[y] + ((size_t)x * ch + c) * 2, &s, 2);
				} else {
					rows[y][(size_t)x * ch + c] = (uint8_t)v;
				}
			}
	}
	png_write_image(png, rows);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(rows);
	free(img);
	return fclose(f);
}

/* Set to write progressive JPEGs (many scans) instead of baseline ones. */
static int fx_jpeg_progressive;

/* comps 1 (gray), 3 (RGB) or 4 (CMYK, written as given with libjpeg's Adobe marker).
 * orientation > 1 adds an EXIF APP1 with that orientation (big- or little-endian TIFF). */
static inline int fx_jpeg(const char *path, int w, int h, int comps, int orientation, int le,
                          fx_pixel_fn px)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	struct jpeg_compress_struct ci;
	struct jpeg_error_mgr jerr;
	ci.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&ci);
	jpeg_stdio_dest(&ci, f);
	ci.image_width = w;
	ci.image_height = h;
	ci.input_components = comps;
	ci.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
	jpeg_set_defaults(&ci);
	jpeg_set_quality(&ci, 95, TRUE);
	if (fx_jpeg_progressive)
		jpeg_simple_progression(&ci);
	jpeg_start_compress(&ci, TRUE);
	if (orientation > 1) {
		uint8_t ex[6 + 8 + 2 + 12 + 4] = { 'E', 'x', 'i', 'f', 0, 0 };
		uint8_t *t = ex + 6;
		if (le) {
			memcpy(t, "II\x2a\x00\x08\x00\x00\x00", 8);
			t[8] = 1; t[9] = 0;                              /* one entry */
			t[10] = 0x12; t[11] = 0x01; t[12] = 3; t[13] = 0;  /* tag 0x0112, SHORT */
			t[14] = 1; t[15] = 0; t[16] = 0; t[17] = 0;        /* count 1 */
			t[18] = (uint8_t)orientation; t[19] = 0; t[20] = 0; t[21] = 0;
		} else {
			memcpy(t, "MM\x00\x2a\x00\x00\x00\x08", 8);
			t[8] = 0; t[9] = 1;
			t[10] = 0x01; t[11] = 0x12; t[12] = 0; t[13] = 3;
			t[14] = 0; t[15] = 0; t[16] = 0; t[17] = 1;
			t[18] = 0; t[19] = (uint8_t)orientation; t[20] = 0; t[21] = 0;
		}
		jpeg_write_marker(&ci, JPEG_APP0 + 1, ex, sizeof ex);
	}
	uint8_t *row = malloc((size_t)w * comps);
	while (ci.next_scanline < ci.image_height) {
		int y = (int)ci.next_scanline;
		for (int x = 0; x < w; x++)
			for (int c = 0; c < comps; c++)
				row[(size_t)x * comps + c] = (uint8_t)px(x, y, c);
		JSAMPROW r = row;
		jpeg_write_scanlines(&ci, &r, 1);
	}
	jpeg_finish_compress(&ci);
	jpeg_destroy_compress(&ci);
	free(row);
	return fclose(f);
}

static inline int fx_write(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	if (n && fwrite(data, 1, n, f) != n) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

static inline uint8_t *fx_read(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
	*n = fread(b, 1, (size_t)len, f);
	fclose(f);
	return b;
}

#endif
