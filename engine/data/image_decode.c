/* image_decode.c - JPEG/PNG decoding (EXIF orientation, alpha on white, CMYK) and square resizing.
 *
 * Both decoders run from memory (the file is read whole first), which keeps file errors apart from
 * format errors and lets the fuzz harness drive the same code. libjpeg and libpng report fatal
 * errors through longjmp; each decoder owns exactly one setjmp and one cleanup path. It does not
 * cache, scan folders or convert to float: that is decode_cache.c and image_folder.c.
 */
#include "image_decode.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "../alloc.h"
#include "data_internal.h"

static const char *const resize_names[IMG_RESIZE_COUNT] = { "shorter_side", "stretch", "center_crop" };
_Static_assert(sizeof resize_names / sizeof resize_names[0] == IMG_RESIZE_COUNT, "resize names");

const char *img_resize_name(ImgResize m)
{
	return (unsigned)m < IMG_RESIZE_COUNT ? resize_names[m] : NULL;
}

int img_resize_parse(const char *s)
{
	for (int i = 0; s && i < IMG_RESIZE_COUNT; i++)
		if (strcmp(s, resize_names[i]) == 0)
			return i;
	return -1;
}

void img_raw_free(ImgRaw *im)
{
	if (!im)
		return;
	eng_free(im->pix);
	im->pix = NULL;
}

static int check_dims(const char *name, const char *kind, unsigned long w, unsigned long h,
                      char *err, size_t errlen)
{
	if (w == 0 || h == 0)
		return data_err(-EINVAL, err, errlen, "%s: %s header says %lu x %lu pixels", name, kind, w, h);
	if (w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || (unsigned long long)w * h > IMG_MAX_PIXELS)
		return data_err(-EINVAL, err, errlen,
		                "%s: %s header claims %lu x %lu pixels, above the limit of %d a side and "
		                "%u pixels (refused before decoding)", name, kind, w, h, IMG_MAX_SIDE,
		                IMG_MAX_PIXELS);
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Orientation (EXIF tag 0x0112) */

static unsigned rd16(const uint8_t *p, int le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t rd32(const uint8_t *p, int le)
{
	return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
	          : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The orientation (1..8) in an APP1 Exif payload, 1 when absent or malformed. */
static int exif_orientation(const uint8_t *d, size_t n)
{
	if (n < 14 || memcmp(d, "Exif\0\0", 6) != 0)
		return 1;
	d += 6;
	n -= 6;
	int le;
	if (d[0] == 'I' && d[1] == 'I')
		le = 1;
	else if (d[0] == 'M' && d[1] == 'M')
		le = 0;
	else
		return 1;
	uint32_t ifd = rd32(d + 4, le);
	if (ifd > n || n - ifd < 2)
		return 1;
	unsigned count = rd16(d + ifd, le);
	for (unsigned i = 0; i < count; i++) {
		size_t e = (size_t)ifd + 2 + (size_t)i * 12;
		if (e + 12 > n)
			return 1;
		if (rd16(d + e, le) == 0x0112) {
			unsigned v = rd16(d + e + 8, le);
			return v >= 1 && v <= 8 ? (int)v : 1;
		}
	}
	return 1;
}

/* Apply an EXIF orientation: the stored pixels become the pixels as they are meant to be seen. */
static int apply_orientation(ImgRaw *im, int o)
{
	if (o <= 1)
		return 0;
	int w = im->w, h = im->h, c = im->c;
	int ow = o >= 5 ? h : w, oh = o >= 5 ? w : h;
	uint8_t *dst = eng_malloc((size_t)w * h * c);
	if (!dst)
		return -ENOMEM;
	for (int y = 0; y < oh; y++)
		for (int x = 0; x < ow; x++) {
			int sx, sy;
			switch (o) {
			case 2: sx = w - 1 - x; sy = y; break;
			case 3: sx = w - 1 - x; sy = h - 1 - y; break;
			case 4: sx = x; sy = h - 1 - y; break;
			case 5: sx = y; sy = x; break;
			case 6: sx = y; sy = h - 1 - x; break;
			case 7: sx = w - 1 - y; sy = h - 1 - x; break;
			default: sx = w - 1 - y; sy = x; break;   /* 8 */
			}
			memcpy(dst + ((size_t)y * ow + x) * c, im->pix + ((size_t)sy * w + sx) * c, (size_t)c);
		}
	eng_free(im->pix);
	im->pix = dst;
	im->w = ow;
	im->h = oh;
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* JPEG */

typedef struct JpegErr {
	struct jpeg_error_mgr mgr;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
	int truncated;
} JpegErr;

static void jpeg_fail(j_common_ptr ci)
{
	JpegErr *e = (JpegErr *)ci->err;
	ci->err->format_message(ci, e->msg);
	longjmp(e->jb, 1);
}

/* Warnings are ignored except running out of data: libjpeg would pad the rest with gray. */
static void jpeg_note(j_common_ptr ci, int level)
{
	JpegErr *e = (JpegErr *)ci->err;
	if (level < 0 && ci->err->msg_code == JWRN_JPEG_EOF) {
		e->truncated = 1;
		longjmp(e->jb, 1);
	}
}

/* A progressive JPEG can hold thousands of tiny scans, each a full pass over the image: a few
 * kilobytes that take minutes. Real encoders write about ten. */
#define JPEG_MAX_SCANS 500

static void jpeg_watch(j_common_ptr ci)
{
	j_decompress_ptr d = (j_decompress_ptr)ci;
	if (d->input_scan_number > JPEG_MAX_SCANS) {
		JpegErr *e = (JpegErr *)ci->err;
		snprintf(e->msg, sizeof e->msg, "more than %d progressive scans", JPEG_MAX_SCANS);
		longjmp(e->jb, 1);
	}
}

static int decode_jpeg(const uint8_t *buf, size_t len, const char *name, int want_c, int min_side,
                       ImgRaw *out, char *err, size_t errlen)
{
	struct jpeg_decompress_struct ci;
	JpegErr je;
	uint8_t *volatile pix = NULL;
	uint8_t *volatile row = NULL;
	volatile int rc = 0;
	memset(&je, 0, sizeof je);
	ci.err = jpeg_std_error(&je.mgr);
	je.mgr.error_exit = jpeg_fail;
	je.mgr.emit_message = jpeg_note;
	jpeg_create_decompress(&ci);
	struct jpeg_progress_mgr watch = { .progress_monitor = jpeg_watch };
	ci.progress = &watch;
	ci.mem->max_memory_to_use = 512L << 20;   /* coefficient buffers of progressive files */
	if (setjmp(je.jb)) {
		if (je.truncated)
			rc = data_err(-EINVAL, err, errlen, "%s: truncated JPEG (the data ends before the "
			              "image does)", name);
		else
			rc = data_err(-EINVAL, err, errlen, "%s: corrupt JPEG: %s", name, je.msg);
		goto done;
	}
	jpeg_mem_src(&ci, buf, (unsigned long)len);
	jpeg_save_markers(&ci, JPEG_APP0 + 1, 0xffff);
	jpeg_read_header(&ci, TRUE);
	if ((rc = check_dims(name, "JPEG", ci.image_width, ci.image_height, err, errlen)) < 0)
		goto done;
	int orient = 1;
	for (jpeg_saved_marker_ptr m = ci.marker_list; m; m = m->next)
		if (m->marker == JPEG_APP0 + 1 && (orient = exif_orientation(m->data, m->data_length)) != 1)
			break;
	int cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
	int gray_src = ci.jpeg_color_space == JCS_GRAYSCALE;
	int c = want_c ? want_c : gray_src ? 1 : 3;
	if (cmyk)
		ci.out_color_space = JCS_CMYK;
	else if (c == 1)
		ci.out_color_space = JCS_GRAYSCALE;   /* luma straight from Y for YCbCr files */
	else if (!gray_src)
		ci.out_color_space = JCS_RGB;
	/* Scale in the DCT while both sides stay at least min_side. */
	if (min_side > 0) {
		unsigned s = ci.image_width < ci.image_height ? ci.image_width : ci.image_height;
		unsigned denom = 1;
		while (denom < 8 && s / (denom * 2) >= (unsigned)min_side)
			denom *= 2;
		ci.scale_num = 1;
		ci.scale_denom = denom;
	}
	ci.dct_method = JDCT_ISLOW;
	jpeg_start_decompress(&ci);
	int w = (int)ci.output_width, h = (int)ci.output_height, oc = ci.output_components;
	pix = eng_malloc((size_t)w * h * c);
	row = eng_malloc((size_t)w * oc);
	if (!pix || !row) {
		rc = data_err(-ENOMEM, err, errlen, "%s: out of memory for %d x %d pixels", name, w, h);
		goto done;
	}
	while (ci.output_scanline < ci.output_height) {
		int y = (int)ci.output_scanline;
		JSAMPROW r = row;
		jpeg_read_scanlines(&ci, &r, 1);
		uint8_t *d = pix + (size_t)y * w * c;
		for (int x = 0; x < w; x++) {
			const uint8_t *s = row + (size_t)x * oc;
			uint8_t rgb[3];
			if (cmyk) {
				/* Adobe writes CMYK inverted (0 = full ink); plain CMYK is not. */
				unsigned cc = s[0], mm = s[1], yy = s[2], kk = s[3];
				if (!ci.saw_Adobe_marker) {
					cc = 255 - cc; mm = 255 - mm; yy = 255 - yy; kk = 255 - kk;
				}
				rgb[0] = (uint8_t)((cc * kk + 127) / 255);
				rgb[1] = (uint8_t)((mm * kk + 127) / 255);
				rgb[2] = (uint8_t)((yy * kk + 127) / 255);
			} else if (oc == 1) {
				rgb[0] = rgb[1] = rgb[2] = s[0];
			} else {
				rgb[0] = s[0]; rgb[1] = s[1]; rgb[2] = s[2];
			}
			if (c == 3)
				memcpy(d + (size_t)x * 3, rgb, 3);
			else if (oc == 1)
				d[x] = s[0];
			else
				d[x] = (uint8_t)((rgb[0] * 77u + rgb[1] * 150u + rgb[2] * 29u + 128) >> 8);
		}
	}
	jpeg_finish_decompress(&ci);
	out->pix = pix;
	out->w = w;
	out->h = h;
	out->c = c;
	pix = NULL;
	if ((rc = apply_orientation(out, orient)) < 0) {
		img_raw_free(out);
		rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", name);
	}
done:
	jpeg_destroy_decompress(&ci);
	eng_free(pix);
	eng_free(row);
	return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* PNG */

typedef struct PngSrc {
	const uint8_t *p;
	size_t n, off;
	const char *name;
	int truncated;
	char msg[256];
	jmp_buf jb;
} PngSrc;

static void png_src_read(png_structp png, png_bytep dst, size_t n)
{
	PngSrc *s = png_get_io_ptr(png);
	if (s->n - s->off < n) {
		s->truncated = 1;
		png_error(png, "truncated");
	}
	memcpy(dst, s->p + s->off, n);
	s->off += n;
}

static void png_fail(png_structp png, png_const_charp msg)
{
	PngSrc *s = png_get_error_ptr(png);
	snprintf(s->msg, sizeof s->msg, "%s", msg);
	longjmp(s->jb, 1);
}

static void png_warn(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

/* RGB(A) rows from libpng to c channels: alpha over white, luma for gray. */
static void png_convert(const uint8_t *raw, uint8_t *pix, size_t np, int rc_ch, int c, int gray_src)
{
	/* Alpha over white: v*a/255 + 255 - a, exactly rounded with the x/255 = (x + 1 + (x >> 8)) >> 8
	 * identity (valid for x < 65536 after adding 128). Separate loops keep each one branch-free. */
#define OVER_WHITE(v, a) ((uint8_t)((((v) * (a) + 128u) + (((v) * (a) + 128u) >> 8)) >> 8) + (255u - (a)))
	if (rc_ch == 4 && c == 3) {
		for (size_t i = 0; i < np; i++) {
			const uint8_t *s = raw + i * 4;
			uint8_t *d = pix + i * 3;
			unsigned a = s[3];
			if (a == 255) {            /* most pixels of most images: opaque or clear */
				d[0] = s[0]; d[1] = s[1]; d[2] = s[2];
			} else if (a == 0) {
				d[0] = d[1] = d[2] = 255;
			} else {
				d[0] = (uint8_t)OVER_WHITE(s[0], a);
				d[1] = (uint8_t)OVER_WHITE(s[1], a);
				d[2] = (uint8_t)OVER_WHITE(s[2], a);
			}
		}
	} else if (rc_ch == 3 && c == 3) {
		memcpy(pix, raw, np * 3);
	} else {
		for (size_t i = 0; i < np; i++) {
			const uint8_t *s = raw + i * rc_ch;
			unsigned r = s[0], g = s[1], b = s[2];
			if (rc_ch == 4) {
				unsigned a = s[3];
				r = OVER_WHITE(r, a);
				g = OVER_WHITE(g, a);
				b = OVER_WHITE(b, a);
			}
			pix[i] = gray_src ? (uint8_t)r : (uint8_t)((r * 77u + g * 150u + b * 29u + 128) >> 8);
		}
	}
#undef OVER_WHITE
}

static int decode_png(const uint8_t *buf, size_t len, const char *name, int want_c, ImgRaw *out,
                      char *err, size_t errlen)
{
	PngSrc src = { .p = buf, .n = len, .name = name };
	png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_warn);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	uint8_t *volatile raw = NULL;
	uint8_t *volatile pix = NULL;
	png_bytep *volatile rows = NULL;
	volatile int rc = 0;
	if (!png || !info) {
		rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", name);
		goto done;
	}
	if (setjmp(src.jb)) {
		if (src.truncated)
			rc = data_err(-EINVAL, err, errlen, "%s: truncated PNG (the data ends before the "
			              "image does)", name);
		else
			rc = data_err(-EINVAL, err, errlen, "%s: corrupt PNG: %s", name, src.msg);
		goto done;
	}
	png_set_read_fn(png, &src, png_src_read);
	png_set_user_limits(png, 1000000, 1000000);      /* our own check below names the limit */
	png_set_chunk_malloc_max(png, 64u << 20);
#ifdef PNG_IGNORE_ADLER32
	/* Every chunk's CRC is still checked (corruption is caught there); zlib's second checksum of
	 * the same bytes costs a tenth of the decode. */
	png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
	png_read_info(png, info);
	png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
	if ((rc = check_dims(name, "PNG", w, h, err, errlen)) < 0)
		goto done;
	int ct = png_get_color_type(png, info);
	int gray_src = !(ct & PNG_COLOR_MASK_COLOR);
	png_set_expand(png);          /* palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha */
	png_set_strip_16(png);
	if (gray_src)
		png_set_gray_to_rgb(png);  /* one path below: RGB(A), then reduce to what was asked */
	png_set_interlace_handling(png);
	png_read_update_info(png, info);
	int rc_ch = png_get_channels(png, info);         /* 3 or 4 */
	size_t rowbytes = png_get_rowbytes(png, info);
	if ((rc_ch != 3 && rc_ch != 4) || rowbytes != (size_t)w * rc_ch) {
		rc = data_err(-EINVAL, err, errlen, "%s: unsupported PNG layout (%d channels)", name, rc_ch);
		goto done;
	}
	int c = want_c ? want_c : gray_src ? 1 : 3;
	int interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
	/* Row by row when possible: each row is converted while it is still in cache. */
	raw = eng_malloc(interlaced ? rowbytes * h : rowbytes);
	rows = eng_malloc(sizeof(png_bytep) * (interlaced ? h : 1));
	pix = eng_malloc((size_t)w * h * c);
	if (!raw || !rows || !pix) {
		rc = data_err(-ENOMEM, err, errlen, "%s: out of memory for %u x %u pixels", name,
		              (unsigned)w, (unsigned)h);
		goto done;
	}
	if (interlaced) {
		for (png_uint_32 y = 0; y < h; y++)
			rows[y] = raw + (size_t)y * rowbytes;
		png_read_image(png, rows);
		png_convert(raw, pix, (size_t)w * h, rc_ch, c, gray_src);
	} else {
		for (png_uint_32 y = 0; y < h; y++) {
			png_read_row(png, raw, NULL);
			png_convert(raw, pix + (size_t)y * w * c, w, rc_ch, c, gray_src);
		}
	}
	out->pix = pix;
	out->w = (int)w;
	out->h = (int)h;
	out->c = c;
	pix = NULL;
done:
	if (png)
		png_destroy_read_struct(&png, info ? &info : NULL, NULL);
	eng_free(raw);
	eng_free(rows);
	eng_free(pix);
	return rc;
}

/* ---------------------------------------------------------------------------------------------- */

int img_decode_mem(const uint8_t *buf, size_t len, const char *name, int want_c, int min_side,
                   ImgRaw *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (want_c != 0 && want_c != 1 && want_c != 3)
		return data_err(-EINVAL, err, errlen, "%s: channels must be 1 or 3, got %d", name, want_c);
	if (len == 0)
		return data_err(-EINVAL, err, errlen, "%s: empty file (0 bytes)", name);
	static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
		return decode_jpeg(buf, len, name, want_c, min_side, out, err, errlen);
	if (len >= 8 && memcmp(buf, png_sig, 8) == 0)
		return decode_png(buf, len, name, want_c, out, err, errlen);
	char shown[17];
	size_t k = 0;
	for (size_t i = 0; i < len && k < 16; i++)
		shown[k++] = buf[i] >= 32 && buf[i] < 127 && buf[i] != '"' ? (char)buf[i] : '.';
	shown[k] = '\0';
	return data_err(-EINVAL, err, errlen, "%s: not a JPEG or PNG file (it starts with \"%s\")",
	                name, shown);
}

int img_decode_file(const char *path, int want_c, int min_side, ImgRaw *out, char *err,
                    size_t errlen)
{
	memset(out, 0, sizeof *out);
	int fd = data_open(path, err, errlen);
	if (fd < 0)
		return fd;
	struct stat st;
	int rc = 0;
	uint8_t *buf = NULL;
	if (fstat(fd, &st) < 0) {
		rc = data_err(-errno, err, errlen, "%s: cannot stat: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = data_err(-EINVAL, err, errlen, "%s: not a regular file", path);
		goto done;
	}
	if ((size_t)st.st_size > IMG_MAX_FILE_BYTES) {
		rc = data_err(-EFBIG, err, errlen, "%s: %lld bytes, above the %zu MiB limit for one image",
		              path, (long long)st.st_size, IMG_MAX_FILE_BYTES >> 20);
		goto done;
	}
	size_t n = (size_t)st.st_size, got = 0;
	buf = eng_malloc(n ? n : 1);
	if (!buf) {
		rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", path);
		goto done;
	}
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = data_err(-errno, err, errlen, "%s: cannot read: %s", path, strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	rc = img_decode_mem(buf, got, path, want_c, min_side, out, err, errlen);
done:
	eng_free(buf);
	close(fd);
	return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Resizing */

/* Taps of a 1-D resampling of the source interval [x0, x0 + len) (source pixel units) to n
 * outputs: output i reads cnt[i] source pixels from first[i] with weights wt[i*maxk ..]. */
typedef struct Taps {
	int *first, *cnt;
	float *wt;
	int maxk;
} Taps;

static void taps_free(Taps *t)
{
	eng_free(t->first);
	eng_free(t->cnt);
	eng_free(t->wt);
}

static int taps_make(Taps *t, double x0, double len, int n, int src_n)
{
	double scale = len / n;
	double support = scale > 1.0 ? scale : 1.0;   /* triangle radius in source pixels */
	t->maxk = (int)(2 * support) + 3;
	t->first = eng_malloc(sizeof(int) * n);
	t->cnt = eng_malloc(sizeof(int) * n);
	t->wt = eng_malloc(sizeof(float) * (size_t)n * t->maxk);
	if (!t->first || !t->cnt || !t->wt) {
		taps_free(t);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		double center = x0 + (i + 0.5) * scale;
		int lo = (int)(center - support - 0.5), hi = (int)(center + support + 0.5);
		if (lo < 0)
			lo = 0;
		if (hi > src_n - 1)
			hi = src_n - 1;
		if (hi - lo + 1 > t->maxk)
			hi = lo + t->maxk - 1;
		float *w = t->wt + (size_t)i * t->maxk;
		double sum = 0;
		int k = 0;
		for (int j = lo; j <= hi; j++, k++) {
			double d = (j + 0.5 - center) / support;
			double v = d < 0 ? 1 + d : 1 - d;
			w[k] = (float)(v > 0 ? v : 0);
			sum += w[k];
		}
		if (sum <= 0) {      /* the centre lies outside the image: nearest edge pixel */
			lo = center < 0 ? 0 : src_n - 1;
			k = 1;
			w[0] = 1;
			sum = 1;
		}
		for (int j = 0; j < k; j++)
			w[j] = (float)(w[j] / sum);
		t->first[i] = lo;
		t->cnt[i] = k;
	}
	return 0;
}

static int resize_box(const ImgRaw *src, double bx, double by, double bw, double bh, int size,
                      uint8_t *dst);

/* Average kx x ky blocks of src into out (floor(w/kx) x floor(h/ky), eng_malloc'd): the cheap
 * first step of a large downscale (one add per input sample, vectorised), after which the filter
 * below shrinks by 2..4 instead of 10..50. */
static int box_reduce(const ImgRaw *src, int kx, int ky, ImgRaw *out)
{
	int c = src->c, ow = src->w / kx, oh = src->h / ky;
	size_t rowlen = (size_t)ow * kx * c;
	uint32_t *acc = eng_malloc(sizeof(uint32_t) * rowlen);
	out->pix = eng_malloc((size_t)ow * oh * c);
	if (!acc || !out->pix) {
		eng_free(acc);
		eng_free(out->pix);
		out->pix = NULL;
		return -ENOMEM;
	}
	uint32_t div = (uint32_t)(kx * ky), half = div / 2;
	for (int oy = 0; oy < oh; oy++) {
		memset(acc, 0, sizeof(uint32_t) * rowlen);
		for (int r = 0; r < ky; r++) {
			const uint8_t *row = src->pix + ((size_t)oy * ky + r) * src->w * c;
			for (size_t i = 0; i < rowlen; i++)
				acc[i] += row[i];
		}
		uint8_t *o = out->pix + (size_t)oy * ow * c;
		for (int ox = 0; ox < ow; ox++)
			for (int ch = 0; ch < c; ch++) {
				uint32_t sum = 0;
				const uint32_t *a = acc + (size_t)ox * kx * c + ch;
				for (int j = 0; j < kx; j++)
					sum += a[(size_t)j * c];
				o[(size_t)ox * c + ch] = (uint8_t)((sum + half) / div);
			}
	}
	eng_free(acc);
	out->w = ow;
	out->h = oh;
	out->c = c;
	return 0;
}

int img_resize(const ImgRaw *src, ImgResize mode, int size, uint8_t *dst)
{
	if (!src || !src->pix || src->w <= 0 || src->h <= 0 || (src->c != 1 && src->c != 3) ||
	    size <= 0 || (unsigned)mode >= IMG_RESIZE_COUNT)
		return -EINVAL;
	int w = src->w, h = src->h;
	double bx = 0, by = 0, bw = w, bh = h;    /* source box mapped onto the S x S output */
	int shorter = w < h ? w : h;
	if (mode == IMG_RESIZE_CENTER_CROP && shorter < size)
		mode = IMG_RESIZE_SHORTER_SIDE;
	if (mode == IMG_RESIZE_SHORTER_SIDE) {
		bw = bh = shorter;
		bx = (w - shorter) / 2.0;
		by = (h - shorter) / 2.0;
	} else if (mode == IMG_RESIZE_CENTER_CROP) {
		bw = bh = size;
		bx = (w - size) / 2;
		by = (h - size) / 2;
	}
	/* Shrinking by 3 or more: box-average first, keeping a factor >= 1.5 for the filter. */
	int kx = (int)(bw / size / 1.5), ky = (int)(bh / size / 1.5);
	if (kx >= 2 && ky >= 2) {
		ImgRaw red;
		if (box_reduce(src, kx, ky, &red) < 0)
			return -ENOMEM;
		ImgRaw inner = red;
		int rc = resize_box(&inner, bx / kx, by / ky, bw / kx, bh / ky, size, dst);
		eng_free(red.pix);
		return rc;
	}
	return resize_box(src, bx, by, bw, bh, size, dst);
}

/* Resample the box [bx, bx+bw) x [by, by+bh) of src (source pixels) to (C,S,S) planar dst. */
static int resize_box(const ImgRaw *src, double bx, double by, double bw, double bh, int size,
                      uint8_t *dst)
{
	int w = src->w, h = src->h, c = src->c;
	Taps tx = {0}, ty = {0};
	float *tmp = NULL;
	int rc = -ENOMEM;
	if (taps_make(&tx, bx, bw, size, w) < 0 || taps_make(&ty, by, bh, size, h) < 0)
		goto done;
	/* Rows first over only the source rows the vertical taps touch: tmp (h, S, c). */
	int y_lo = ty.first[0], y_hi = ty.first[size - 1] + ty.cnt[size - 1];
	for (int i = 0; i < size; i++) {
		if (ty.first[i] < y_lo)
			y_lo = ty.first[i];
		if (ty.first[i] + ty.cnt[i] > y_hi)
			y_hi = ty.first[i] + ty.cnt[i];
	}
	tmp = eng_malloc(sizeof(float) * (size_t)(y_hi - y_lo + 1) * size * c);
	if (!tmp)
		goto done;
	for (int y = y_lo; y < y_hi; y++) {
		const uint8_t *row = src->pix + (size_t)y * w * c;
		float *t = tmp + (size_t)(y - y_lo) * size * c;
		for (int i = 0; i < size; i++) {
			const float *wt = tx.wt + (size_t)i * tx.maxk;
			const uint8_t *s = row + (size_t)tx.first[i] * c;
			if (c == 1) {
				float a = 0;
				for (int k = 0; k < tx.cnt[i]; k++)
					a += wt[k] * s[k];
				t[i] = a;
			} else {
				float r = 0, g = 0, b = 0;
				for (int k = 0; k < tx.cnt[i]; k++) {
					r += wt[k] * s[3 * k];
					g += wt[k] * s[3 * k + 1];
					b += wt[k] * s[3 * k + 2];
				}
				t[3 * i] = r;
				t[3 * i + 1] = g;
				t[3 * i + 2] = b;
			}
		}
	}
	/* Columns: one output row at a time, accumulated over whole tmp rows (contiguous, vectorised),
	 * then scattered to the planes. acc is the spare row at the end of tmp. */
	size_t rl = (size_t)size * c;
	float *acc = tmp + (size_t)(y_hi - y_lo) * rl;
	for (int j = 0; j < size; j++) {
		const float *wt = ty.wt + (size_t)j * ty.maxk;
		for (size_t i = 0; i < rl; i++)
			acc[i] = 0.0f;
		for (int k = 0; k < ty.cnt[j]; k++) {
			const float *row = tmp + (size_t)(ty.first[j] + k - y_lo) * rl;
			float wk = wt[k];
			for (size_t i = 0; i < rl; i++)
				acc[i] += wk * row[i];
		}
		for (int i = 0; i < size; i++)
			for (int ch = 0; ch < c; ch++) {
				int v = (int)(acc[(size_t)i * c + ch] + 0.5f);
				dst[((size_t)ch * size + j) * size + i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
			}
	}
	rc = 0;
done:
	taps_free(&tx);
	taps_free(&ty);
	eng_free(tmp);
	return rc;
}

int img_load_file(const char *path, int want_c, ImgResize mode, int size, uint8_t *dst,
                  char *err, size_t errlen)
{
	if (want_c != 1 && want_c != 3)
		return data_err(-EINVAL, err, errlen, "%s: channels must be 1 or 3, got %d", path, want_c);
	ImgRaw im;
	/* DCT scaling keeps both sides >= S; a centre crop is taken at the original scale. */
	int rc = img_decode_file(path, want_c, mode == IMG_RESIZE_CENTER_CROP ? 0 : size, &im, err,
	                         errlen);
	if (rc < 0)
		return rc;
	rc = img_resize(&im, mode, size, dst);
	img_raw_free(&im);
	if (rc < 0)
		return data_err(rc, err, errlen, "%s: resizing to %d x %d failed: %s", path, size, size,
		                strerror(-rc));
	return 0;
}
