/* test_images.c - JPEG/PNG decoding, resizing and the bad-input list (engine/data/image_decode.h).
 *
 * Every fixture is written here with libpng/libjpeg (tests/data/img_fixtures.h) into a fresh
 * temporary folder: each PNG colour type and depth, interlaced, alpha, JPEG RGB/gray/CMYK, EXIF
 * orientations; then the bad inputs (empty, truncated, corrupt, text named .jpg, header bombs).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../../engine/alloc.h"
#include "../../engine/data/image_decode.h"
#include "check.h"
#include "support.h"
#include "img_fixtures.h"

static char dir[256];
/* dir/name (support.h: valid for the next 63 paths) */
static const char *P(const char *name) { return test_path(dir, name); }

static unsigned px_rgb(int x, int y, int c) { return (unsigned)(c == 0 ? x * 8 : c == 1 ? y * 8 : 200); }
static unsigned px_rgb16(int x, int y, int c) { return (px_rgb(x, y, c) << 8) | 0x7f; }
static unsigned px_gray(int x, int y, int c) { (void)c; return (unsigned)((x + y) * 4); }
static unsigned px_gray16(int x, int y, int c) { return px_gray(x, y, c) << 8; }
static unsigned px_alpha(int x, int y, int c)
{
	/* left half transparent black, right half opaque (10, 20, 30) */
	(void)y;
	if (c == 3)
		return x < 8 ? 0 : 255;
	return x < 8 ? 0 : (unsigned)(10 * (c + 1));
}
static unsigned px_gray_alpha(int x, int y, int c) { (void)y; return c == 1 ? (x < 8 ? 128u : 255u) : 0u; }
static unsigned px_pal(int x, int y, int c) { (void)c; return (unsigned)(x + y); }
/* red block in the top-left 16x8 of a 32x16 image, blue elsewhere */
static unsigned px_block(int x, int y, int c)
{
	int red = x < 16 && y < 8;
	return c == 0 ? (red ? 255u : 0u) : c == 2 ? (red ? 0u : 255u) : 0u;
}
static unsigned px_cmyk_red(int x, int y, int c) { (void)x; (void)y; return c == 0 || c == 3 ? 255u : 0u; }
static unsigned px_check(int x, int y, int c) { (void)c; return ((x + y) & 1) ? 255u : 0u; }
static unsigned px_center(int x, int y, int c) { (void)c; return x >= 15 && x < 25 && y >= 15 && y < 25 ? 255u : 0u; }
static unsigned px_bars(int x, int y, int c) { (void)y; (void)c; return x < 67 || x >= 133 ? 0u : 255u; }

static const uint8_t *at(const ImgRaw *im, int x, int y) { return im->pix + ((size_t)y * im->w + x) * im->c; }
static int near(int a, int b, int tol) { return abs(a - b) <= tol; }

static void test_png_variants(void)
{
	char err[512];
	ImgRaw im;
	/* RGB 8-bit: exact */
	CHECK(fx_png(P("rgb.png"), 16, 12, PNG_COLOR_TYPE_RGB, 8, 0, px_rgb) == 0, "write");
	int rc = img_decode_file(P("rgb.png"), 0, 0, &im, err, sizeof err);
	CHECK(rc == 0 && im.w == 16 && im.h == 12 && im.c == 3, "rgb: %d %s", rc, err);
	if (rc == 0) {
		CHECK(at(&im, 5, 7)[0] == 40 && at(&im, 5, 7)[1] == 56 && at(&im, 5, 7)[2] == 200,
		      "rgb pixel %d %d %d", at(&im, 5, 7)[0], at(&im, 5, 7)[1], at(&im, 5, 7)[2]);
		img_raw_free(&im);
	}
	/* the same interlaced: identical pixels */
	CHECK(fx_png(P("rgbi.png"), 16, 12, PNG_COLOR_TYPE_RGB, 8, 1, px_rgb) == 0, "write");
	ImgRaw a, b;
	int r1 = img_decode_file(P("rgb.png"), 3, 0, &a, err, sizeof err);
	int r2 = img_decode_file(P("rgbi.png"), 3, 0, &b, err, sizeof err);
	CHECK(r1 == 0 && r2 == 0 && memcmp(a.pix, b.pix, 16 * 12 * 3) == 0, "interlaced differs: %s", err);
	img_raw_free(&a);
	img_raw_free(&b);
	/* 16-bit RGB: high byte */
	CHECK(fx_png(P("rgb16.png"), 16, 12, PNG_COLOR_TYPE_RGB, 16, 0, px_rgb16) == 0, "write");
	rc = img_decode_file(P("rgb16.png"), 3, 0, &im, err, sizeof err);
	CHECK(rc == 0 && at(&im, 5, 7)[0] == 40 && at(&im, 5, 7)[2] == 200, "rgb16: %s", err);
	img_raw_free(&im);
	/* gray 8 and 16 bit, as stored and as RGB */
	CHECK(fx_png(P("gray.png"), 16, 12, PNG_COLOR_TYPE_GRAY, 8, 0, px_gray) == 0, "write");
	rc = img_decode_file(P("gray.png"), 0, 0, &im, err, sizeof err);
	CHECK(rc == 0 && im.c == 1 && at(&im, 3, 4)[0] == 28, "gray as stored: c=%d %s", im.c, err);
	img_raw_free(&im);
	rc = img_decode_file(P("gray.png"), 3, 0, &im, err, sizeof err);
	CHECK(rc == 0 && im.c == 3 && at(&im, 3, 4)[0] == 28 && at(&im, 3, 4)[1] == 28 &&
	      at(&im, 3, 4)[2] == 28, "gray to rgb: %s", err);
	img_raw_free(&im);
	CHECK(fx_png(P("gray16.png"), 16, 12, PNG_COLOR_TYPE_GRAY, 16, 0, px_gray16) == 0, "write");
	rc = img_decode_file(P("gray16.png"), 1, 0, &im, err, sizeof err);
	CHECK(rc == 0 && im.c == 1 && at(&im, 3, 4)[0] == 28, "gray16: %s", err);
	img_raw_free(&im);
	/* RGB to gray: luma of (40, 56, 200) */
	rc = img_decode_file(P("rgb.png"), 1, 0, &im, err, sizeof err);
	CHECK(rc == 0 && im.c == 1 && near(at(&im, 5, 7)[0], (int)(0.299 * 40 + 0.587 * 56 + 0.114 * 200), 2),
	      "rgb to gray %d", rc == 0 ? at(&im, 5, 7)[0] : -1);
	img_raw_free(&im);
	/* alpha on white: transparent -> 255, opaque keeps its colour */
	CHECK(fx_png(P("rgba.png"), 16, 4, PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, px_alpha) == 0, "write");
	rc = img_decode_file(P("rgba.png"), 3, 0, &im, err, sizeof err);
	CHECK(rc == 0 && at(&im, 2, 1)[0] == 255 && at(&im, 2, 1)[2] == 255 && at(&im, 12, 1)[0] == 10 &&
	      at(&im, 12, 1)[1] == 20 && at(&im, 12, 1)[2] == 30, "alpha: %s", err);
	img_raw_free(&im);
	CHECK(fx_png(P("ga.png"), 16, 4, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, px_gray_alpha) == 0, "write");
	rc = img_decode_file(P("ga.png"), 0, 0, &im, err, sizeof err);
	CHECK(rc == 0 && im.c == 1 && near(at(&im, 2, 1)[0], 127, 1) && at(&im, 12, 1)[0] == 0,
	      "gray+alpha: c=%d v=%d %s", im.c, rc == 0 ? at(&im, 2, 1)[0] : -1, err);
	img_raw_free(&im);
	/* palette: index (x+y)%8 -> (i*30, 255-i*30, i*10) */
	CHECK(fx_png(P("pal.png"), 16, 12, PNG_COLOR_TYPE_PALETTE, 8, 0, px_pal) == 0, "write");
	rc = img_decode_file(P("pal.png"), 3, 0, &im, err, sizeof err);
	CHECK(rc == 0 && at(&im, 2, 3)[0] == 150 && at(&im, 2, 3)[1] == 105 && at(&im, 2, 3)[2] == 50,
	      "palette: %s", err);
	img_raw_free(&im);
	CHECK(fx_png(P("pal4.png"), 16, 12, PNG_COLOR_TYPE_PALETTE, 4, 1, px_pal) == 0, "write");
	rc = img_decode_file(P("pal4.png"), 3, 0, &im, err, sizeof err);
	CHECK(rc == 0 && at(&im, 2, 3)[0] == 150 && at(&im, 2, 3)[1] == 105, "palette 4-bit interlaced: %s", err);
	img_raw_free(&im);
}

static void test_jpeg_variants(void)
{
	char err[512];
	ImgRaw im;
	CHECK(fx_jpeg(P("rgb.jpg"), 32, 16, 3, 1, 0, px_block) == 0, "write");
	int rc = img_decode_file(P("rgb.jpg"), 0, 0, &im, err, sizeof err);
	CHECK(rc == 0 && im.w == 32 && im.h == 16 && im.c == 3, "jpeg rgb: %s", err);
	if (rc == 0) {
		CHECK(at(&im, 4, 3)[0] > 200 && at(&im, 4, 3)[2] < 60, "red block");
		CHECK(at(&im, 24, 12)[2] > 200 && at(&im, 24, 12)[0] < 60, "blue elsewhere");
		img_raw_free(&im);
	}
	/* gray JPEG as RGB and RGB JPEG as gray */
	CHECK(fx_jpeg(P("gray.jpg"), 16, 16, 1, 1, 0, px_gray) == 0, "write");
	rc = img_decode_file(P("gray.jpg"), 3, 0, &im, err, sizeof err);
	CHECK(rc == 0 && im.c == 3 && at(&im, 8, 8)[0] == at(&im, 8, 8)[2] && near(at(&im, 8, 8)[0], 64, 6),
	      "gray jpeg to rgb: %s", err);
	img_raw_free(&im);
	rc = img_decode_file(P("rgb.jpg"), 1, 0, &im, err, sizeof err);
	CHECK(rc == 0 && im.c == 1 && near(at(&im, 24, 12)[0], 29, 12), "jpeg to gray %d",
	      rc == 0 ? at(&im, 24, 12)[0] : -1);
	img_raw_free(&im);
	/* EXIF orientations: where the red block ends up in the image as it is meant to be seen */
	static const struct { int o, w, h, rx, ry, bx, by; } cases[] = {
		{ 3, 32, 16, 28, 12, 4, 3 },    /* rotate 180: red bottom-right */
		{ 6, 16, 32, 12, 4, 4, 28 },    /* rotate 90 CW: red top-right */
		{ 8, 16, 32, 4, 28, 12, 4 },    /* rotate 90 CCW: red bottom-left */
		{ 2, 32, 16, 28, 3, 4, 3 },     /* mirror: red top-right */
		{ 5, 16, 32, 4, 4, 12, 28 },    /* transpose: red top-left, tall */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char nm[32];
		snprintf(nm, sizeof nm, "o%d.jpg", cases[i].o);
		CHECK(fx_jpeg(P(nm), 32, 16, 3, cases[i].o, (int)(i & 1), px_block) == 0, "write");
		rc = img_decode_file(P(nm), 3, 0, &im, err, sizeof err);
		CHECK(rc == 0 && im.w == cases[i].w && im.h == cases[i].h, "orientation %d: %dx%d %s",
		      cases[i].o, im.w, im.h, err);
		if (rc == 0 && im.w == cases[i].w) {
			CHECK(at(&im, cases[i].rx, cases[i].ry)[0] > 200, "orientation %d: no red at (%d,%d)",
			      cases[i].o, cases[i].rx, cases[i].ry);
			CHECK(at(&im, cases[i].bx, cases[i].by)[2] > 200, "orientation %d: no blue at (%d,%d)",
			      cases[i].o, cases[i].bx, cases[i].by);
		}
		img_raw_free(&im);
	}
	/* CMYK (Adobe, inverted) converted to RGB */
	CHECK(fx_jpeg(P("cmyk.jpg"), 16, 16, 4, 1, 0, px_cmyk_red) == 0, "write");
	rc = img_decode_file(P("cmyk.jpg"), 3, 0, &im, err, sizeof err);
	CHECK(rc == 0 && at(&im, 8, 8)[0] > 220 && at(&im, 8, 8)[1] < 40 && at(&im, 8, 8)[2] < 40,
	      "cmyk: rc=%d %s", rc, err);
	img_raw_free(&im);
	/* progressive: same picture */
	fx_jpeg_progressive = 1;
	CHECK(fx_jpeg(P("prog.jpg"), 32, 16, 3, 6, 0, px_block) == 0, "write");
	fx_jpeg_progressive = 0;
	rc = img_decode_file(P("prog.jpg"), 3, 0, &im, err, sizeof err);
	CHECK(rc == 0 && im.w == 16 && im.h == 32 && at(&im, 12, 4)[0] > 200 && at(&im, 4, 28)[2] > 200,
	      "progressive with orientation 6: %s", err);
	img_raw_free(&im);
	/* DCT scaling keeps both sides >= min_side */
	CHECK(fx_jpeg(P("big.jpg"), 400, 300, 3, 1, 0, px_rgb) == 0, "write");
	rc = img_decode_file(P("big.jpg"), 3, 64, &im, err, sizeof err);
	CHECK(rc == 0 && im.w == 100 && im.h == 75, "dct scale: %dx%d %s", im.w, im.h, err);
	img_raw_free(&im);
}

static void test_resize(void)
{
	char err[512];
	uint8_t out[3 * 16 * 16];
	/* a 1-px checkerboard shrunk 8x averages to gray everywhere (antialiasing) */
	CHECK(fx_png(P("check.png"), 128, 128, PNG_COLOR_TYPE_GRAY, 8, 0, px_check) == 0, "write");
	int rc = img_load_file(P("check.png"), 1, IMG_RESIZE_STRETCH, 16, out, err, sizeof err);
	CHECK(rc == 0, "%s", err);
	int bad = 0;
	for (int i = 0; i < 256; i++)
		bad += !near(out[i], 128, 12);
	CHECK(bad == 0, "checkerboard aliasing: %d pixels far from gray (e.g. %d)", bad, out[0]);
	/* centre crop at scale 1 takes the centre exactly */
	CHECK(fx_png(P("center.png"), 40, 40, PNG_COLOR_TYPE_GRAY, 8, 0, px_center) == 0, "write");
	uint8_t c10[100];
	rc = img_load_file(P("center.png"), 1, IMG_RESIZE_CENTER_CROP, 10, c10, err, sizeof err);
	bad = 0;
	for (int i = 0; i < 100; i++)
		bad += c10[i] != 255;
	CHECK(rc == 0 && bad == 0, "center crop: %d non-white %s", bad, err);
	/* shorter side: 200x100 with black outer thirds -> the centre square: white middle, dark edges */
	CHECK(fx_png(P("bars.png"), 200, 100, PNG_COLOR_TYPE_GRAY, 8, 0, px_bars) == 0, "write");
	rc = img_load_file(P("bars.png"), 3, IMG_RESIZE_SHORTER_SIDE, 16, out, err, sizeof err);
	CHECK(rc == 0 && out[8 * 16 + 8] == 255 && out[8 * 16 + 0] < 60 && out[8 * 16 + 15] < 60 &&
	      out[2 * 256 + 8 * 16 + 8] == 255, "shorter side: %d %d %d %s", out[8 * 16 + 8],
	      out[8 * 16], out[8 * 16 + 15], err);
	/* stretch keeps the bars at the same relative place: a third black on each side */
	rc = img_load_file(P("bars.png"), 1, IMG_RESIZE_STRETCH, 15, out, err, sizeof err);
	CHECK(rc == 0 && out[7 * 15 + 1] < 30 && out[7 * 15 + 7] > 225 && out[7 * 15 + 13] < 30,
	      "stretch: %d %d %d", out[7 * 15 + 1], out[7 * 15 + 7], out[7 * 15 + 13]);
	/* enlarging: a small image to 64 keeps a constant colour constant */
	CHECK(fx_png(P("tiny.png"), 3, 5, PNG_COLOR_TYPE_RGB, 8, 0, px_cmyk_red) == 0, "write");
	uint8_t big[3 * 64 * 64];
	rc = img_load_file(P("tiny.png"), 3, IMG_RESIZE_SHORTER_SIDE, 64, big, err, sizeof err);
	CHECK(rc == 0 && big[0] == 255 && big[64 * 64 - 1] == 255 && big[64 * 64] == 0, "enlarge: %s", err);
	CHECK(img_resize_parse("center_crop") == IMG_RESIZE_CENTER_CROP && img_resize_parse("x") == -1,
	      "resize names");
}

/* A PNG whose IHDR claims w x h (with a correct CRC), then a tiny IDAT. */
static void png_header_only(const char *path, uint32_t w, uint32_t h)
{
	uint8_t b[80];
	size_t n = 0;
	memcpy(b, "\x89PNG\r\n\x1a\n", 8);
	n = 8;
	uint8_t ihdr[17] = { 'I', 'H', 'D', 'R', (uint8_t)(w >> 24), (uint8_t)(w >> 16),
	                     (uint8_t)(w >> 8), (uint8_t)w, (uint8_t)(h >> 24), (uint8_t)(h >> 16),
	                     (uint8_t)(h >> 8), (uint8_t)h, 8, 2, 0, 0, 0 };
	b[n++] = 0; b[n++] = 0; b[n++] = 0; b[n++] = 13;
	memcpy(b + n, ihdr, 17);
	n += 17;
	uint32_t crc = (uint32_t)crc32(0, ihdr, 17);
	b[n++] = (uint8_t)(crc >> 24); b[n++] = (uint8_t)(crc >> 16); b[n++] = (uint8_t)(crc >> 8); b[n++] = (uint8_t)crc;
	static const uint8_t idat[12] = { 0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xaf, 0x06, 0x1e };
	memcpy(b + n, idat, 12);      /* an empty IDAT: the decoder stops at the header check */
	n += 12;
	fx_write(path, b, n);
}

static void test_bad_inputs(void)
{
	char err[512];
	ImgRaw im;
	uint8_t out[3 * 8 * 8];
	CHECK(fx_write(P("empty.jpg"), "", 0) == 0, "write");
	int rc = img_decode_file(P("empty.jpg"), 3, 0, &im, err, sizeof err);
	CHECK_MSG(rc, err, "empty.jpg: empty file");
	CHECK(fx_write(P("notes.jpg"), "hello, these are my notes\n", 26) == 0, "write");
	rc = img_decode_file(P("notes.jpg"), 3, 0, &im, err, sizeof err);
	CHECK_MSG(rc, err, "notes.jpg: not a JPEG or PNG file (it starts with \"hello, these are");
	rc = img_decode_file(P("missing.png"), 3, 0, &im, err, sizeof err);
	CHECK_MSG(rc, err, "missing.png: cannot open: No such file");
	rc = img_decode_file(dir, 3, 0, &im, err, sizeof err);
	CHECK_MSG(rc, err, "not a regular file");
	/* truncated JPEG and PNG */
	size_t n;
	uint8_t *j = fx_read(P("big.jpg"), &n);
	CHECK(j && n > 1000, "read big.jpg");
	fx_write(P("trunc.jpg"), j, n / 2);
	rc = img_decode_file(P("trunc.jpg"), 3, 0, &im, err, sizeof err);
	CHECK_MSG(rc, err, "trunc.jpg: truncated JPEG");
	/* a JPEG whose SOF claims 60000 x 60000 */
	for (size_t i = 2; i + 9 < n; i++)
		if (j[i] == 0xff && j[i + 1] == 0xc0) {
			j[i + 5] = 0xea; j[i + 6] = 0x60; j[i + 7] = 0xea; j[i + 8] = 0x60;
			break;
		}
	fx_write(P("bomb.jpg"), j, n);
	rc = img_decode_file(P("bomb.jpg"), 3, 0, &im, err, sizeof err);
	CHECK_MSG(rc, err, "bomb.jpg: JPEG header claims 60000 x 60000 pixels");
	free(j);
	uint8_t *p = fx_read(P("rgb.png"), &n);
	fx_write(P("trunc.png"), p, n - 20);
	rc = img_decode_file(P("trunc.png"), 3, 0, &im, err, sizeof err);
	CHECK_MSG(rc, err, "trunc.png: truncated PNG");
	p[n - 30] ^= 0x55;   /* inside IDAT: its CRC no longer matches */
	fx_write(P("corrupt.png"), p, n);
	rc = img_decode_file(P("corrupt.png"), 3, 0, &im, err, sizeof err);
	CHECK_MSG(rc, err, "corrupt.png: corrupt PNG");
	free(p);
	/* decompression bomb: refused from the header, no pixel memory */
	png_header_only(P("bomb.png"), 100000, 100000);
	uint64_t allocs = eng_alloc_count();
	rc = img_decode_file(P("bomb.png"), 3, 0, &im, err, sizeof err);
	CHECK_MSG(rc, err, "bomb.png: PNG header claims 100000 x 100000 pixels");
	CHECK(eng_alloc_count() - allocs <= 1, "bomb: %llu allocations (only the file buffer expected)",
	      (unsigned long long)(eng_alloc_count() - allocs));
	/* through img_load_file the same messages arrive */
	rc = img_load_file(P("notes.jpg"), 3, IMG_RESIZE_STRETCH, 8, out, err, sizeof err);
	CHECK_MSG(rc, err, "notes.jpg: not a JPEG or PNG");
	rc = img_load_file(P("rgb.png"), 2, IMG_RESIZE_STRETCH, 8, out, err, sizeof err);
	CHECK_MSG(rc, err, "channels must be 1 or 3, got 2");
	/* unreadable: only meaningful when not root (root reads anything) */
	fx_write(P("secret.png"), "x", 1);
	chmod(P("secret.png"), 0);
	if (geteuid() != 0) {
		rc = img_decode_file(P("secret.png"), 3, 0, &im, err, sizeof err);
		CHECK_MSG(rc, err, "secret.png: cannot open: Permission denied");
	} else {
		printf("unreadable-file check skipped: running as root\n");
	}
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/ssld-test-images-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_png_variants();
	test_jpeg_variants();
	test_resize();
	test_bad_inputs();
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_exit("test_images");
}
