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
 * Each line is parsed with cJSON; errors name the file and line, and the column for JSON syntax
 * errors or the key for a wrong value.
 */
#include "data_internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc.h"
#include "png_grid.h"

#define CAP_MAX_BYTES ((size_t)256 << 20)
#define CAP_MAX_STRING 4095          /* bytes of a caption or an image path */
#define CAP_MAX_INDEX 1000000000000.0

typedef struct Pair {
	long long index;       /* >= 0 for index lines */
	char *image_path;      /* for path lines, eng_malloc'd */
	char *caption;         /* eng_malloc'd */
	int label;
} Pair;

/* One line of the file, for parsing and messages. */
typedef struct Line {
	const char *start, *end;  /* the text, without its '\n' */
	const char *path;
	int no;                   /* 1-based */
	char *err;
	size_t errlen;
} Line;

/* "file:line: message", or "file:line:column: message" when at points into the line. */
__attribute__((format(printf, 3, 4)))
static int line_fail(const Line *l, const char *at, const char *fmt, ...)
{
	char msg[256], col[16] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (at)
		snprintf(col, sizeof col, ":%d", (int)(at - l->start) + 1);
	return data_err(-EINVAL, l->err, l->errlen, "%s:%d%s: %s", l->path, l->no, col, msg);
}

/* A JSON syntax error at `at`: its column and the text there. */
static int syntax_fail(const Line *l, const char *at)
{
	/* cJSON reports an error at the end of the text on its last byte */
	if (at + 1 >= l->end)
		return line_fail(l, at, "not valid JSON at the end of the line ('%.1s'): a value is missing or an object "
		                 "is not closed", at < l->end ? at : "");
	if (at > l->start && at[-1] == '"' && !memchr(at, '"', (size_t)(l->end - at)))
		return line_fail(l, at - 1, "not valid JSON: a string is not closed before the end of the line");
	if (*at == '\\') {
		int w = l->end - at >= 6 && at[1] == 'u' ? 6 : l->end - at >= 2 ? 2 : 1;
		return line_fail(l, at, "bad escape '%.*s' (JSON has \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX, "
		                 "surrogates in pairs)", w, at);
	}
	char near[24];
	size_t n = 0;
	for (const char *q = at; q < l->end && n < 16; q++)
		near[n++] = (unsigned char)*q < 0x20 ? '?' : *q;
	near[n] = 0;
	return line_fail(l, at, "not valid JSON at '%s%s'", near, at + n < l->end ? "..." : "");
}

/* cJSON ends a string at an escaped NUL ("\u0000"); such a caption would be cut short silently. */
static int has_nul_escape(const Line *l)
{
	for (const char *q = l->start; q + 6 <= l->end; q++) {
		if (memcmp(q, "\\u0000", 6) != 0)
			continue;
		int slashes = 0;
		for (const char *b = q; b >= l->start && *b == '\\'; b--)
			slashes++;
		if (slashes % 2)
			return 1;
	}
	return 0;
}

/* A JSON number that must be a whole number in [lo, hi]. */
static int whole_number(const Line *l, const cJSON *v, const char *key, double lo, double hi, long long *out)
{
	if (!cJSON_IsNumber(v))
		return line_fail(l, NULL, "\"%s\" must be an integer", key);
	double d = v->valuedouble;
	if (d != floor(d))
		return line_fail(l, NULL, "\"%s\" must be an integer, got the fraction %g", key, d);
	if (d < lo || d > hi)
		return line_fail(l, NULL, "\"%s\" must be in %.0f..%.0f, got %.0f", key, lo, hi, d);
	*out = (long long)d;
	return 0;
}

static int string_value(const Line *l, const cJSON *v, const char *key, char **out)
{
	const char *t = cJSON_GetStringValue(v);
	if (!t)
		return line_fail(l, NULL, "\"%s\" must be a string", key);
	if (strlen(t) > CAP_MAX_STRING)
		return line_fail(l, NULL, "\"%s\" is longer than %d bytes", key, CAP_MAX_STRING);
	if (!(*out = eng_strdup(t)))
		return data_err(-ENOMEM, l->err, l->errlen, "%s: out of memory", l->path);
	return 0;
}

/* One object line into *pr (unknown keys are ignored). */
static int parse_line(const Line *l, Pair *pr)
{
	pr->index = -1;
	pr->label = -1;
	const char *end = NULL;
	cJSON *obj = cJSON_ParseWithLengthOpts(l->start, (size_t)(l->end - l->start), &end, 0);
	if (!obj)
		return syntax_fail(l, end ? end : l->start);
	int rc = 0, have_image = 0;
	while (end < l->end && (*end == ' ' || *end == '\t' || *end == '\r'))
		end++;
	if (end < l->end) {
		rc = line_fail(l, end, "unexpected text after the object");
		goto out;
	}
	if (!cJSON_IsObject(obj)) {
		rc = line_fail(l, NULL, "expected '{' (one JSON object per line)");
		goto out;
	}
	if (has_nul_escape(l)) {
		rc = line_fail(l, NULL, "\\u0000 is not allowed in a caption or path");
		goto out;
	}
	for (const cJSON *v = obj->child; v; v = v->next) {
		const char *key = v->string;
		if (strcmp(key, "image") == 0) {
			if (have_image++) {
				rc = line_fail(l, NULL, "duplicate key \"image\"");
				break;
			}
			if (cJSON_IsString(v)) {
				if ((rc = string_value(l, v, key, &pr->image_path)) < 0)
					break;
				if (!pr->image_path[0]) {
					rc = line_fail(l, NULL, "empty image path");
					break;
				}
			} else if (!cJSON_IsNumber(v)) {
				rc = line_fail(l, NULL, "\"image\" must be a training image index (an integer) or a PNG path (a string)");
				break;
			} else if ((rc = whole_number(l, v, key, 0, CAP_MAX_INDEX, &pr->index)) < 0) {
				break;
			}
		} else if (strcmp(key, "caption") == 0) {
			if (pr->caption) {
				rc = line_fail(l, NULL, "duplicate key \"caption\"");
				break;
			}
			if ((rc = string_value(l, v, key, &pr->caption)) < 0)
				break;
		} else if (strcmp(key, "label") == 0) {
			long long lab = -1;
			if ((rc = whole_number(l, v, key, 0, 100000, &lab)) < 0)
				break;
			pr->label = (int)lab;
		}
	}
	if (rc == 0 && !have_image)
		rc = line_fail(l, NULL, "missing \"image\"");
	else if (rc == 0 && !pr->caption)
		rc = line_fail(l, NULL, "missing \"caption\"");
out:
	cJSON_Delete(obj);
	return rc;
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
	const char *p = (const char *)buf, *end = (const char *)buf + len;
	Line l = {.path = spec->captions_file, .err = err, .errlen = errlen};
	if (memchr(buf, 0, len)) {
		rc = data_err(-EINVAL, err, errlen, "%s: binary data (a NUL byte), not JSON lines",
		              spec->captions_file);
		goto out;
	}
	for (; p < end; p = l.end < end ? l.end + 1 : end) {
		l.no++;
		l.start = p;
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		l.end = nl ? nl : end;
		const char *q = p;
		while (q < l.end && (*q == ' ' || *q == '\t' || *q == '\r'))
			q++;
		if (q == l.end)
			continue;
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
		lines[n] = l.no;
		rc = parse_line(&l, &pv[n]);
		n++;
		if (rc < 0)
			goto out;
		int k = pv[n - 1].image_path ? 2 : 1;
		if (kind && k != kind) {
			rc = line_fail(&l, NULL, "mixes image indices and image paths; use one kind per file");
			goto out;
		}
		kind = k;
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
