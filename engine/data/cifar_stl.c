/* cifar_stl.c - CIFAR-10/100 and STL-10 binary readers.
 *
 * The files are fixed-size records with no header, so the only checks possible are the file
 * size (whole records, a sane count) and the label range; both are made before anything is kept.
 * Files are read whole through data_read_file (gzip transparently, the data roots apply).
 */
#include "cifar_stl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../alloc.h"
#include "data_internal.h"

#define CS_MAX_FILE ((size_t)4 << 30)

/* dir itself when it holds `probe`, else dir/sub. The result is written to buf. */
static const char *pick_dir(const char *dir, const char *sub, const char *probe, char *buf,
                            size_t cap)
{
	struct stat st;
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, probe);
	if (stat(path, &st) == 0)
		snprintf(buf, cap, "%s", dir);
	else
		snprintf(buf, cap, "%s/%s", dir, sub);
	return buf;
}

static int read_file(const char *dir, const char *name, uint8_t **buf, size_t *len, char *err,
                     size_t errlen)
{
	char path[4200];
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
		return data_err(-ENAMETOOLONG, err, errlen, "%s: path too long", dir);
	return data_read_file(path, buf, len, CS_MAX_FILE, err, errlen);
}

/* Append n records of an array into split: x planar (3, side, side) bytes, column-major if
 * transposed. */
static int split_grow(Split *s, size_t floats, int more)
{
	float *x = eng_realloc(s->x, sizeof(float) * floats * (size_t)(s->n + more));
	if (!x)
		return -ENOMEM;
	s->x = x;
	int *y = eng_realloc(s->y, sizeof(int) * (size_t)(s->n + more));
	if (!y)
		return -ENOMEM;
	s->y = y;
	return 0;
}

static void put_image(float *dst, const uint8_t *src, int side, int transposed)
{
	for (int c = 0; c < 3; c++)
		for (int yy = 0; yy < side; yy++)
			for (int xx = 0; xx < side; xx++) {
				size_t s = (size_t)c * side * side + (transposed ? (size_t)xx * side + yy
				                                                 : (size_t)yy * side + xx);
				dst[((size_t)c * side + yy) * side + xx] = src[s] * (1.0f / 255.0f);
			}
}

/* CIFAR records: label_bytes then 3072 pixel bytes; the label used is byte label_at. */
static int load_cifar_file(const char *dir, const char *name, int label_bytes, int label_at,
                           int num_classes, Split *s, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = read_file(dir, name, &buf, &len, err, errlen);
	if (rc < 0)
		return rc;
	size_t rec = (size_t)label_bytes + 3072;
	if (len == 0 || len % rec != 0) {
		rc = data_err(-EINVAL, err, errlen, "%s/%s: %zu bytes is not a whole number of %zu-byte "
		              "records (truncated or not a CIFAR binary file)", dir, name, len, rec);
		goto done;
	}
	int n = (int)(len / rec);
	if ((rc = split_grow(s, 3072, n)) < 0) {
		rc = data_err(rc, err, errlen, "%s/%s: out of memory for %d images", dir, name, n);
		goto done;
	}
	for (int i = 0; i < n; i++) {
		const uint8_t *r = buf + (size_t)i * rec;
		if (r[label_at] >= num_classes) {
			rc = data_err(-EINVAL, err, errlen, "%s/%s: record %d has label %d, expected 0..%d",
			              dir, name, i, r[label_at], num_classes - 1);
			goto done;
		}
		s->y[s->n] = r[label_at];
		put_image(s->x + (size_t)s->n * 3072, r + label_bytes, 32, 0);
		s->n++;
	}
done:
	eng_free(buf);
	return rc;
}

static int load_stl_pair(const char *dir, const char *xname, const char *yname, int limit,
                         Split *s, char *err, size_t errlen)
{
	const size_t img = 3 * 96 * 96;
	uint8_t *xb = NULL, *yb = NULL;
	size_t xl = 0, yl = 0;
	int rc = read_file(dir, xname, &xb, &xl, err, errlen);
	if (rc < 0)
		goto done;
	if (xl == 0 || xl % img != 0) {
		rc = data_err(-EINVAL, err, errlen, "%s/%s: %zu bytes is not a whole number of 96x96x3 "
		              "images (truncated or not an STL-10 file)", dir, xname, xl);
		goto done;
	}
	int n = (int)(xl / img);
	if (yname) {
		if ((rc = read_file(dir, yname, &yb, &yl, err, errlen)) < 0)
			goto done;
		if (yl != (size_t)n) {
			rc = data_err(-EINVAL, err, errlen, "%s/%s: %zu labels for the %d images of %s", dir,
			              yname, yl, n, xname);
			goto done;
		}
	}
	if (limit > 0 && n > limit)
		n = limit;
	if ((rc = split_grow(s, img, n)) < 0) {
		rc = data_err(rc, err, errlen, "%s/%s: out of memory for %d images", dir, xname, n);
		goto done;
	}
	for (int i = 0; i < n; i++) {
		int y = -1;
		if (yb) {
			if (yb[i] < 1 || yb[i] > 10) {
				rc = data_err(-EINVAL, err, errlen, "%s/%s: label %d of image %d, expected 1..10",
				              dir, yname, yb[i], i);
				goto done;
			}
			y = yb[i] - 1;
		}
		s->y[s->n] = y;
		put_image(s->x + (size_t)s->n * img, xb + (size_t)i * img, 96, 1);
		s->n++;
	}
done:
	eng_free(xb);
	eng_free(yb);
	return rc;
}

/* Class names: one per non-empty line of `name` (CIFAR-100's files may hold several per line,
 * whitespace-separated); numbers "0".."k-1" when the file is absent or does not list k names. */
static int load_names(const char *dir, const char *name, int k, Dataset *ds, char *err,
                      size_t errlen)
{
	ds->class_names = eng_calloc(k, sizeof(char *));
	if (!ds->class_names)
		return data_err(-ENOMEM, err, errlen, "out of memory");
	ds->num_classes = k;
	uint8_t *buf = NULL;
	size_t len = 0;
	char ignore[256];
	int got = 0;
	if (read_file(dir, name, &buf, &len, ignore, sizeof ignore) == 0) {
		char *save = NULL;
		for (char *t = strtok_r((char *)buf, " \t\r\n", &save); t && got < k;
		     t = strtok_r(NULL, " \t\r\n", &save))
			if (!(ds->class_names[got++] = eng_strdup(t)))
				break;
		eng_free(buf);
	}
	for (int i = 0; i < k; i++) {
		if (got == k && ds->class_names[i])
			continue;
		eng_free(ds->class_names[i]);
		char num[16];
		snprintf(num, sizeof num, "%d", i);
		if (!(ds->class_names[i] = eng_strdup(num)))
			return data_err(-ENOMEM, err, errlen, "out of memory");
	}
	return 0;
}

int cifar_stl_load(const CifarStlSpec *spec, Dataset *ds, char *err, size_t errlen)
{
	if (!spec->dir)
		return data_err(-EINVAL, err, errlen, "dir: required");
	char d[4096];
	int rc = 0;
	ds->c = 3;
	switch (spec->format) {
	case CIFAR_STL_CIFAR10: {
		pick_dir(spec->dir, "cifar-10-batches-bin", "data_batch_1.bin", d, sizeof d);
		ds->h = ds->w = 32;
		for (int b = 1; b <= 5 && rc == 0; b++) {
			char nm[32];
			snprintf(nm, sizeof nm, "data_batch_%d.bin", b);
			rc = load_cifar_file(d, nm, 1, 0, 10, &ds->train, err, errlen);
		}
		if (rc == 0)
			rc = load_cifar_file(d, "test_batch.bin", 1, 0, 10, &ds->test, err, errlen);
		if (rc == 0)
			rc = load_names(d, "batches.meta.txt", 10, ds, err, errlen);
		break;
	}
	case CIFAR_STL_CIFAR100: {
		pick_dir(spec->dir, "cifar-100-binary", "train.bin", d, sizeof d);
		ds->h = ds->w = 32;
		int k = spec->coarse_labels ? 20 : 100, at = spec->coarse_labels ? 0 : 1;
		rc = load_cifar_file(d, "train.bin", 2, at, k, &ds->train, err, errlen);
		if (rc == 0)
			rc = load_cifar_file(d, "test.bin", 2, at, k, &ds->test, err, errlen);
		if (rc == 0)
			rc = load_names(d, spec->coarse_labels ? "coarse_label_names.txt"
			                                       : "fine_label_names.txt", k, ds, err, errlen);
		break;
	}
	case CIFAR_STL_STL10:
		pick_dir(spec->dir, "stl10_binary", "train_X.bin", d, sizeof d);
		ds->h = ds->w = 96;
		rc = load_stl_pair(d, "train_X.bin", "train_y.bin", 0, &ds->train, err, errlen);
		if (rc == 0)
			rc = load_stl_pair(d, "test_X.bin", "test_y.bin", 0, &ds->test, err, errlen);
		if (rc == 0 && spec->unlabeled > 0)
			rc = load_stl_pair(d, "unlabeled_X.bin", NULL, spec->unlabeled, &ds->train, err,
			                   errlen);
		if (rc == 0)
			rc = load_names(d, "class_names.txt", 10, ds, err, errlen);
		break;
	default:
		return data_err(-EINVAL, err, errlen, "unknown CIFAR/STL format %d", (int)spec->format);
	}
	ds->sample_floats = (size_t)ds->c * ds->h * ds->w;
	return rc;
}
