/* captions.c - image-caption pairs for multimodal (CLIP-style) training.
 *
 * The captions file is JSON lines, one object per non-blank line:
 *   {"image": 123, "caption": "a sneaker"}                  image = Fashion-MNIST train index
 *   {"image": "img/0001.png", "caption": "...", "label": 3} image = PNG relative to the file
 * Index lines take images (and labels) from the Fashion-MNIST training split (spec.dir or the
 * default directory); the test split is Fashion-MNIST's test split, labelled, for zero-shot
 * evaluation. Path lines read each PNG (gray unless the first image is colour; all must share one
 * shape); "label" is optional; the last test_fraction of the pairs (rounded down, so possibly
 * none) is the test split. A file mixes
 * neither kind. Without a captions file, every Fashion-MNIST training image gets a templated
 * caption of its class ("a photo of a sneaker", ...).
 * This is a small scanner for exactly these lines (engine/ does not depend on cJSON): strings with
 * all JSON escapes (\uXXXX with surrogate pairs -> UTF-8), integers, and unknown keys whose values
 * are skipped. Errors name the file, line and column.
 */
#include "data_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc.h"
#include "png_grid.h"

#define CAP_MAX_BYTES ((size_t)256 << 20)
#define CAP_MAX_CAPTION 4096
#define CAP_MAX_DEPTH 32

typedef struct Scan {
	const char *p, *end, *line_start;
	const char *path;
	int line;
	char *err;
	size_t errlen;
} Scan;

typedef struct Pair {
	long long index;       /* >= 0 for index lines */
	char *image_path;      /* for path lines, eng_malloc'd */
	char *caption;         /* eng_malloc'd */
	int label;
} Pair;

static int scan_fail(Scan *s, const char *what)
{
	return data_err(-EINVAL, s->err, s->errlen, "%s:%d:%d: %s", s->path, s->line,
	                (int)(s->p - s->line_start) + 1, what);
}

static void skip_ws(Scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r'))
		s->p++;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int ch = (unsigned char)p[i], d;
		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			return -1;
		v = v * 16 + (unsigned)d;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A JSON string at s->p into out (capacity cap, NUL-terminated); *len its byte length. */
static int scan_string(Scan *s, char *out, size_t cap, size_t *len)
{
	if (s->p >= s->end || *s->p != '"')
		return scan_fail(s, "expected a string");
	s->p++;
	size_t n = 0;
	char small[8];
	char *sink = out ? out : small;
	for (;;) {
		if (s->p >= s->end || *s->p == '\n')
			return scan_fail(s, "unterminated string");
		unsigned char ch = (unsigned char)*s->p;
		if (ch == '"') {
			s->p++;
			break;
		}
		if (ch < 0x20)
			return scan_fail(s, "control character in a string");
		if (out && n + 4 >= cap)
			return scan_fail(s, "string too long");
		if (!out)
			n = 0;                  /* skipping: write into a small sink */
		if (ch != '\\') {
			sink[n++] = (char)ch;
			s->p++;
			continue;
		}
		s->p++;
		if (s->p >= s->end)
			return scan_fail(s, "unterminated escape");
		char e = *s->p++;
		switch (e) {
		case '"': sink[n++] = '"'; break;
		case '\\': sink[n++] = '\\'; break;
		case '/': sink[n++] = '/'; break;
		case 'b': sink[n++] = '\b'; break;
		case 'f': sink[n++] = '\f'; break;
		case 'n': sink[n++] = '\n'; break;
		case 'r': sink[n++] = '\r'; break;
		case 't': sink[n++] = '\t'; break;
		case 'u': {
			unsigned cp;
			if (s->end - s->p < 4 || hex4(s->p, &cp) < 0)
				return scan_fail(s, "bad \\u escape");
			s->p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				unsigned lo;
				if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo) < 0 ||
				    lo < 0xdc00 || lo > 0xdfff)
					return scan_fail(s, "unpaired UTF-16 surrogate in \\u escape");
				s->p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				return scan_fail(s, "unpaired UTF-16 surrogate in \\u escape");
			}
			if (cp == 0)
				return scan_fail(s, "\\u0000 is not allowed in a caption");
			n += put_utf8(sink + n, cp);
			break;
		}
		default:
			s->p--;
			return scan_fail(s, "unknown escape");
		}
	}
	if (out)
		out[n] = 0;
	if (len)
		*len = out ? n : 0;
	return 0;
}

static int scan_int(Scan *s, long long *out)
{
	const char *st = s->p;
	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p >= s->end || !isdigit((unsigned char)*s->p))
		return scan_fail(s, "expected an integer");
	long long v = 0;
	while (s->p < s->end && isdigit((unsigned char)*s->p)) {
		v = v * 10 + (*s->p - '0');
		if (v > 1000000000000LL)
			return scan_fail(s, "integer too large");
		s->p++;
	}
	if (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E'))
		return scan_fail(s, "expected an integer, got a fraction");
	*out = *st == '-' ? -v : v;
	return 0;
}

/* Skip any JSON value on the current line (for unknown keys). */
static int skip_value(Scan *s, int depth)
{
	skip_ws(s);
	if (s->p >= s->end)
		return scan_fail(s, "expected a value");
	if (depth > CAP_MAX_DEPTH)
		return scan_fail(s, "nesting too deep");
	char ch = *s->p;
	if (ch == '"')
		return scan_string(s, NULL, 0, NULL);
	if (ch == '{' || ch == '[') {
		char close = ch == '{' ? '}' : ']';
		s->p++;
		skip_ws(s);
		if (s->p < s->end && *s->p == close) {
			s->p++;
			return 0;
		}
		for (;;) {
			if (ch == '{') {
				skip_ws(s);
				if (scan_string(s, NULL, 0, NULL) < 0)
					return -EINVAL;
				skip_ws(s);
				if (s->p >= s->end || *s->p != ':')
					return scan_fail(s, "expected ':'");
				s->p++;
			}
			if (skip_value(s, depth + 1) < 0)
				return -EINVAL;
			skip_ws(s);
			if (s->p < s->end && *s->p == ',') {
				s->p++;
				continue;
			}
			if (s->p < s->end && *s->p == close) {
				s->p++;
				return 0;
			}
			return scan_fail(s, "expected ',' or a closing bracket");
		}
	}
	static const char *const words[3] = {"true", "false", "null"};
	for (int i = 0; i < 3; i++) {
		size_t l = strlen(words[i]);
		if ((size_t)(s->end - s->p) >= l && memcmp(s->p, words[i], l) == 0) {
			s->p += l;
			return 0;
		}
	}
	if (ch == '-' || isdigit((unsigned char)ch)) {
		char *e;
		strtod(s->p, &e);
		if (e == s->p)
			return scan_fail(s, "bad number");
		s->p = e;
		return 0;
	}
	return scan_fail(s, "unexpected character");
}

/* One object line into *pr. */
static int scan_line(Scan *s, Pair *pr)
{
	char buf[CAP_MAX_CAPTION], key[64];
	int have_image = 0;
	pr->index = -1;
	pr->label = -1;
	skip_ws(s);
	if (s->p >= s->end || *s->p != '{')
		return scan_fail(s, "expected '{' (one JSON object per line)");
	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == '}')
		return scan_fail(s, "empty object: \"image\" and \"caption\" are required");
	for (;;) {
		skip_ws(s);
		if (scan_string(s, key, sizeof key, NULL) < 0)
			return -EINVAL;
		skip_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return scan_fail(s, "expected ':'");
		s->p++;
		skip_ws(s);
		if (strcmp(key, "image") == 0) {
			if (have_image)
				return scan_fail(s, "duplicate key \"image\"");
			have_image = 1;
			if (s->p < s->end && *s->p == '"') {
				size_t l;
				if (scan_string(s, buf, sizeof buf, &l) < 0)
					return -EINVAL;
				if (l == 0)
					return scan_fail(s, "empty image path");
				pr->image_path = eng_strdup(buf);
				if (!pr->image_path)
					return data_err(-ENOMEM, s->err, s->errlen, "%s: out of memory", s->path);
			} else {
				if (scan_int(s, &pr->index) < 0)
					return -EINVAL;
				if (pr->index < 0)
					return scan_fail(s, "image index must be >= 0");
			}
		} else if (strcmp(key, "caption") == 0) {
			if (pr->caption)
				return scan_fail(s, "duplicate key \"caption\"");
			if (scan_string(s, buf, sizeof buf, NULL) < 0)
				return -EINVAL;
			pr->caption = eng_strdup(buf);
			if (!pr->caption)
				return data_err(-ENOMEM, s->err, s->errlen, "%s: out of memory", s->path);
		} else if (strcmp(key, "label") == 0) {
			long long v;
			if (scan_int(s, &v) < 0)
				return -EINVAL;
			if (v < 0 || v > 100000)
				return scan_fail(s, "label must be in 0..100000");
			pr->label = (int)v;
		} else if (skip_value(s, 0) < 0) {
			return -EINVAL;
		}
		skip_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			break;
		}
		return scan_fail(s, "expected ',' or '}'");
	}
	skip_ws(s);
	if (s->p < s->end && *s->p != '\n')
		return scan_fail(s, "unexpected text after the object");
	if (!have_image)
		return scan_fail(s, "missing \"image\"");
	if (!pr->caption)
		return scan_fail(s, "missing \"caption\"");
	return 0;
}

static void pairs_free(Pair *v, int n)
{
	for (int i = 0; i < n; i++) {
		eng_free(v[i].image_path);
		eng_free(v[i].caption);
	}
	eng_free(v);
}

/* ---------------------------------------------------------------------------------------------- */

static int captions_synthetic(const DatasetSpec *spec, Dataset *ds, char *err, size_t errlen)
{
	static const char *const templates[4] = {
		"a photo of a%s %s", "a picture of a%s %s", "an image of a%s %s", "a small photo of a%s %s",
	};
	int rc = data_load_fashion_mnist(spec, ds, err, errlen);
	if (rc < 0)
		return rc;
	data_split_limit(&ds->train, ds->sample_floats, spec->limit_train);
	ds->captions = eng_calloc((size_t)ds->train.n, sizeof(char *));
	if (!ds->captions)
		return data_err(-ENOMEM, err, errlen, "captions: out of memory");
	ds->n_captions = ds->train.n;
	for (int i = 0; i < ds->train.n; i++) {
		char name[64], out[128];
		snprintf(name, sizeof name, "%s", ds->class_names[ds->train.y[i]]);
		for (char *q = name; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		int vowel = strchr("aeiou", name[0]) != NULL;
		snprintf(out, sizeof out, templates[i % 4], vowel ? "n" : "", name);
		ds->captions[i] = eng_strdup(out);
		if (!ds->captions[i])
			return data_err(-ENOMEM, err, errlen, "captions: out of memory");
	}
	return 0;
}

static int dir_of(const char *path, char *out, size_t cap)
{
	const char *sl = strrchr(path, '/');
	if (!sl)
		return snprintf(out, cap, ".") < (int)cap ? 0 : -1;
	size_t l = (size_t)(sl - path);
	if (l == 0)
		l = 1;
	if (l >= cap)
		return -1;
	memcpy(out, path, l);
	out[l] = 0;
	return 0;
}

static int load_path_images(const DatasetSpec *spec, Dataset *ds, Pair *pv, int n, char *err,
                            size_t errlen)
{
	char dir[4096], full[8192];
	if (dir_of(spec->captions_file, dir, sizeof dir) < 0)
		return data_err(-ENAMETOOLONG, err, errlen, "%s: path too long", spec->captions_file);
	float frac = spec->test_fraction > 0 ? spec->test_fraction : 0.1f;
	int n_test = (int)((double)n * frac);   /* may be 0 for a handful of pairs */
	int n_tr = n - n_test;
	int max_label = -1;
	float *all = NULL;
	for (int i = 0; i < n; i++) {
		const char *ip = pv[i].image_path;
		if (ip[0] == '/')
			snprintf(full, sizeof full, "%s", ip);
		else
			snprintf(full, sizeof full, "%s/%s", dir, ip);
		float *img;
		int c, h, w;
		int rc = png_read(full, i == 0 ? 0 : ds->c, &img, &c, &h, &w, err, errlen);
		if (rc < 0) {
			eng_free(all);
			size_t l = err ? strlen(err) : 0;
			if (err && l < errlen)
				snprintf(err + l, errlen - l, " (image of pair %d in %s)", i + 1, spec->captions_file);
			return rc;
		}
		if (i == 0) {
			ds->c = c;
			ds->h = h;
			ds->w = w;
			ds->sample_floats = (size_t)c * h * w;
			all = eng_malloc((size_t)n * ds->sample_floats * sizeof(float));
			if (!all) {
				eng_free(img);
				return data_err(-ENOMEM, err, errlen, "%s: out of memory", spec->captions_file);
			}
		} else if (h != ds->h || w != ds->w) {
			eng_free(img);
			eng_free(all);
			return data_err(-EINVAL, err, errlen, "%s: %dx%d, but the first image is %dx%d (pair %d in %s)",
			                full, w, h, ds->w, ds->h, i + 1, spec->captions_file);
		}
		memcpy(all + (size_t)i * ds->sample_floats, img, ds->sample_floats * sizeof(float));
		eng_free(img);
		if (pv[i].label > max_label)
			max_label = pv[i].label;
	}
	ds->train.x = all;
	ds->train.n = n_tr;
	ds->train.y = eng_malloc((size_t)n * sizeof(int));
	ds->test.x = eng_malloc((size_t)n_test * ds->sample_floats * sizeof(float));
	ds->test.y = eng_malloc((size_t)n_test * sizeof(int));
	ds->captions = eng_calloc((size_t)n_tr, sizeof(char *));
	if (!ds->train.y || !ds->test.x || !ds->test.y || !ds->captions)
		return data_err(-ENOMEM, err, errlen, "%s: out of memory", spec->captions_file);
	memcpy(ds->test.x, all + (size_t)n_tr * ds->sample_floats,
	       (size_t)n_test * ds->sample_floats * sizeof(float));
	for (int i = 0; i < n; i++) {
		if (i < n_tr)
			ds->train.y[i] = pv[i].label;
		else
			ds->test.y[i - n_tr] = pv[i].label;
	}
	ds->test.n = n_test;
	ds->n_captions = n_tr;
	for (int i = 0; i < n_tr; i++) {
		ds->captions[i] = pv[i].caption;
		pv[i].caption = NULL;
	}
	if (max_label >= 0) {
		ds->class_names = eng_calloc((size_t)max_label + 1, sizeof(char *));
		if (!ds->class_names)
			return data_err(-ENOMEM, err, errlen, "%s: out of memory", spec->captions_file);
		ds->num_classes = max_label + 1;
		for (int i = 0; i <= max_label; i++) {
			char b[16];
			snprintf(b, sizeof b, "%d", i);
			ds->class_names[i] = eng_strdup(b);
			if (!ds->class_names[i])
				return data_err(-ENOMEM, err, errlen, "%s: out of memory", spec->captions_file);
		}
	}
	return 0;
}

static int load_index_images(const DatasetSpec *spec, Dataset *ds, Pair *pv, int n,
                             const int *lines, char *err, size_t errlen)
{
	int rc = data_load_fashion_mnist(spec, ds, err, errlen);
	if (rc < 0)
		return rc;
	for (int i = 0; i < n; i++)
		if (pv[i].index >= ds->train.n)
			return data_err(-EINVAL, err, errlen,
			                "%s:%d: image index %lld outside the %d Fashion-MNIST training images",
			                spec->captions_file, lines[i], pv[i].index, ds->train.n);
	/* An explicit label on an index line replaces the image's own: it must name one of the
	 * dataset's classes, or the evaluations would index past their class tables. */
	for (int i = 0; i < n; i++)
		if (pv[i].label >= ds->num_classes)
			return data_err(-EINVAL, err, errlen, "%s:%d: label %d outside the %d Fashion-MNIST classes (0..%d)",
			                spec->captions_file, lines[i], pv[i].label, ds->num_classes, ds->num_classes - 1);
	float *x = eng_malloc((size_t)n * ds->sample_floats * sizeof(float));
	int *y = eng_malloc((size_t)n * sizeof(int));
	ds->captions = eng_calloc((size_t)n, sizeof(char *));
	if (!x || !y || !ds->captions) {
		eng_free(x);
		eng_free(y);
		return data_err(-ENOMEM, err, errlen, "%s: out of memory", spec->captions_file);
	}
	for (int i = 0; i < n; i++) {
		memcpy(x + (size_t)i * ds->sample_floats, ds->train.x + (size_t)pv[i].index * ds->sample_floats,
		       ds->sample_floats * sizeof(float));
		y[i] = pv[i].label >= 0 ? pv[i].label : ds->train.y[pv[i].index];
		ds->captions[i] = pv[i].caption;
		pv[i].caption = NULL;
	}
	ds->n_captions = n;
	eng_free(ds->train.x);
	eng_free(ds->train.y);
	ds->train.x = x;
	ds->train.y = y;
	ds->train.n = n;
	return 0;
}

int data_load_captions(const DatasetSpec *spec, Dataset *ds, char *err, size_t errlen)
{
	if (!spec->captions_file)
		return captions_synthetic(spec, ds, err, errlen);
	uint8_t *buf;
	size_t len;
	int rc = data_read_file(spec->captions_file, &buf, &len, CAP_MAX_BYTES, err, errlen);
	if (rc < 0)
		return rc;
	Pair *pv = NULL;
	int *lines = NULL;
	int n = 0, cap = 0, kind = 0;   /* kind 1 = index lines, 2 = path lines */
	Scan s = {.p = (const char *)buf, .end = (const char *)buf + len, .path = spec->captions_file,
	          .err = err, .errlen = errlen};
	if (memchr(buf, 0, len)) {
		rc = data_err(-EINVAL, err, errlen, "%s: binary data (a NUL byte), not JSON lines",
		              spec->captions_file);
		goto out;
	}
	while (s.p < s.end) {
		s.line++;
		s.line_start = s.p;
		const char *nl = memchr(s.p, '\n', (size_t)(s.end - s.p));
		const char *le = nl ? nl : s.end;
		const char *q = s.p;
		while (q < le && (*q == ' ' || *q == '\t' || *q == '\r'))
			q++;
		if (q == le) {
			s.p = nl ? nl + 1 : s.end;
			continue;
		}
		if (spec->limit_train > 0 && n >= spec->limit_train && kind == 1)
			break;
		if (n == cap) {
			int ncap = cap ? cap * 2 : 256;
			Pair *np = eng_realloc(pv, (size_t)ncap * sizeof *np);
			if (!np) {
				rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", spec->captions_file);
				goto out;
			}
			pv = np;
			int *nli = eng_realloc(lines, (size_t)ncap * sizeof *nli);
			if (!nli) {
				rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", spec->captions_file);
				goto out;
			}
			lines = nli;
			cap = ncap;
		}
		memset(&pv[n], 0, sizeof pv[n]);
		lines[n] = s.line;
		Scan ls = s;
		ls.end = le;
		rc = scan_line(&ls, &pv[n]);
		n++;
		if (rc < 0)
			goto out;
		int k = pv[n - 1].image_path ? 2 : 1;
		if (kind && k != kind) {
			rc = data_err(-EINVAL, err, errlen,
			              "%s:%d: mixes image indices and image paths; use one kind per file",
			              spec->captions_file, s.line);
			goto out;
		}
		kind = k;
		s.p = nl ? nl + 1 : s.end;
	}
	if (n == 0) {
		rc = data_err(-EINVAL, err, errlen, "%s: no caption lines", spec->captions_file);
		goto out;
	}
	if (kind == 1)
		rc = load_index_images(spec, ds, pv, n, lines, err, errlen);
	else
		rc = load_path_images(spec, ds, pv, n, err, errlen);
out:
	pairs_free(pv, n);
	eng_free(lines);
	eng_free(buf);
	return rc;
}
