/* idx.c - IDX (MNIST format) images and labels, gzip or raw, and the built-in Fashion-MNIST.
 *
 * Every header field is checked against the file's size before anything is trusted: the magic
 * (0x00000803 images N,H,W; 0x00000804 images N,C,H,W; 0x00000801 labels), the dimensions, the
 * exact byte count (a truncated file and trailing garbage are both errors), matching counts
 * between images and labels, train and test shapes. Images become float32 in [0,1] (x/255).
 * It does not memory-map or stream: datasets here fit in memory and are read once.
 */
#include "data_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../alloc.h"

#define IDX_MAGIC_LABELS  0x00000801u
#define IDX_MAGIC_IMAGES3 0x00000803u
#define IDX_MAGIC_IMAGES4 0x00000804u
#define IDX_MAX_SAMPLES   100000000u
#define IDX_MAX_SIDE      65536u

static const char *const fashion_names[10] = {
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

typedef struct IdxArray {
	uint32_t magic;
	uint32_t dims[4];   /* dims[0] = count */
	int ndim;
	uint8_t *data;      /* count * prod(dims[1..]) bytes, eng_malloc'd */
	size_t bytes;
} IdxArray;

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* zlib's message without the "path: " prefix gzerror puts in front. */
static const char *zmessage(gzFile f, int *zerr)
{
	const char *m = gzerror(f, zerr);
	if (*zerr == Z_ERRNO)
		return strerror(errno);
	const char *c = strstr(m, ": ");
	return c ? c + 2 : m;
}

/* Read up to n bytes into dst; *got is how many arrived. Returns 0, 1 when the gzip stream ended
 * early (a truncated .gz: zlib says "unexpected end of file"), or -1 on corrupt data (*zmsg). */
static int gz_read_full(gzFile f, uint8_t *dst, size_t n, size_t *got, const char **zmsg)
{
	*got = 0;
	while (*got < n) {
		size_t want = n - *got;
		if (want > (1u << 20))
			want = 1u << 20;    /* chunks, so an error can say roughly where */
		int r = gzread(f, dst + *got, (unsigned)want);
		if (r < 0) {
			int zerr;
			*zmsg = zmessage(f, &zerr);
			if (zerr == Z_BUF_ERROR)
				return 1;
			return -1;
		}
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	if (*got < n) {
		int zerr;
		*zmsg = zmessage(f, &zerr);
		if (zerr == Z_BUF_ERROR)
			return 1;
		if (zerr != Z_OK && zerr != Z_STREAM_END)
			return -1;
	}
	return 0;
}

/* want_labels: 1 = labels file, 0 = images file (3 or 4 dims). */
static int idx_read(const char *path, int want_labels, IdxArray *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof *a);
	int fd = data_open(path, err, errlen);
	if (fd < 0)
		return fd;
	gzFile f = gzdopen(fd, "rb");
	if (!f) {
		close(fd);
		return data_err(-ENOMEM, err, errlen, "%s: cannot open: out of memory", path);
	}
	gzbuffer(f, 1 << 17);
	const char *zmsg = NULL;
	uint8_t hdr[20];
	int rc = 0;
	size_t got = 0;
	int st = gz_read_full(f, hdr, 8, &got, &zmsg);
	if (st < 0) {
		rc = data_err(-EIO, err, errlen, "%s: corrupt gzip data in the header: %s", path, zmsg);
		goto out;
	}
	if (got < 8) {
		rc = data_err(-EINVAL, err, errlen, "%s: truncated, expected at least 8 header bytes, got %zu",
		              path, got);
		goto out;
	}
	a->magic = be32(hdr);
	if (want_labels && a->magic != IDX_MAGIC_LABELS) {
		rc = data_err(-EINVAL, err, errlen, "%s: bad magic 0x%08x, expected 0x%08x (IDX labels)",
		              path, a->magic, IDX_MAGIC_LABELS);
		goto out;
	}
	if (!want_labels && a->magic != IDX_MAGIC_IMAGES3 && a->magic != IDX_MAGIC_IMAGES4) {
		rc = data_err(-EINVAL, err, errlen,
		              "%s: bad magic 0x%08x, expected 0x%08x (IDX u8 images N,H,W) or 0x%08x (N,C,H,W)",
		              path, a->magic, IDX_MAGIC_IMAGES3, IDX_MAGIC_IMAGES4);
		goto out;
	}
	a->ndim = (int)(a->magic & 0xff);
	size_t hdr_bytes = 4 + 4 * (size_t)a->ndim;
	if (a->ndim > 1) {
		st = gz_read_full(f, hdr + 8, hdr_bytes - 8, &got, &zmsg);
		if (st < 0) {
			rc = data_err(-EIO, err, errlen, "%s: corrupt gzip data in the header: %s", path, zmsg);
			goto out;
		}
		if (got < hdr_bytes - 8) {
			rc = data_err(-EINVAL, err, errlen, "%s: truncated, expected %zu header bytes, got %zu",
			              path, hdr_bytes, got + 8);
			goto out;
		}
	}
	size_t per = 1;
	for (int d = 0; d < a->ndim; d++) {
		a->dims[d] = be32(hdr + 4 + 4 * d);
		uint32_t lim = d == 0 ? IDX_MAX_SAMPLES : IDX_MAX_SIDE;
		if (a->dims[d] == 0 || a->dims[d] > lim) {
			rc = data_err(-EINVAL, err, errlen, "%s: implausible dimension %d = %u (limit 1..%u)",
			              path, d, a->dims[d], lim);
			goto out;
		}
		if (d > 0)
			per *= a->dims[d];
	}
	if (per > (1u << 26)) {
		rc = data_err(-EINVAL, err, errlen, "%s: implausible sample size %zu bytes", path, per);
		goto out;
	}
	a->bytes = (size_t)a->dims[0] * per;
	size_t expect_total = hdr_bytes + a->bytes;
	/* Ask for more than the header promises: extra bytes are trailing data, and leaving zlib room
	 * after the data makes it read (and verify) the gzip trailer in the same call. */
	const size_t slack = 64;
	/* The header alone does not get an allocation: the buffer grows as data arrives, so a
	 * 16-byte file that claims 10^8 images fails as truncated instead of asking for 78 GB. */
	size_t want = a->bytes + slack, cap = want < ((size_t)16 << 20) ? want : ((size_t)16 << 20);
	a->data = eng_malloc(cap);
	got = 0;
	for (;;) {
		if (!a->data) {
			rc = data_err(-ENOMEM, err, errlen, "%s: out of memory for %zu bytes", path, a->bytes);
			goto out;
		}
		size_t g = 0;
		st = gz_read_full(f, a->data + got, cap - got, &g, &zmsg);
		got += g;
		if (st != 0 || got < cap || cap == want)
			break;
		cap = cap * 2 < want ? cap * 2 : want;
		uint8_t *nd = eng_realloc(a->data, cap);
		if (!nd)
			eng_free(a->data);
		a->data = nd;
	}
	if (st < 0) {
		rc = data_err(-EIO, err, errlen, "%s: corrupt gzip data after about %zu of %zu bytes: %s",
		              path, hdr_bytes + got, expect_total, zmsg);
		goto out;
	}
	if (got < a->bytes) {
		rc = data_err(-EINVAL, err, errlen, "%s: truncated, expected %zu bytes, got %zu", path,
		              expect_total, hdr_bytes + got);
		goto out;
	}
	if (got > a->bytes) {
		rc = data_err(-EINVAL, err, errlen,
		              "%s: trailing data, expected %zu bytes but the file is longer", path,
		              expect_total);
		goto out;
	}
	if (st > 0) {
		rc = data_err(-EINVAL, err, errlen, "%s: truncated gzip stream (all %zu data bytes present "
		              "but the gzip trailer is cut off)", path, expect_total);
		goto out;
	}
out:
	gzclose(f);
	if (rc < 0) {
		eng_free(a->data);
		a->data = NULL;
	}
	return rc;
}

/* Read one images/labels pair into split; sets/validates the dataset's sample shape. */
static int load_pair(Dataset *ds, Split *s, const char *img_path, const char *lab_path,
                     int max_classes, char *err, size_t errlen)
{
	IdxArray im, lb;
	int rc = idx_read(img_path, 0, &im, err, errlen);
	if (rc < 0)
		return rc;
	rc = idx_read(lab_path, 1, &lb, err, errlen);
	if (rc < 0) {
		eng_free(im.data);
		return rc;
	}
	int c = im.ndim == 4 ? (int)im.dims[1] : 1;
	int h = (int)im.dims[im.ndim - 2], w = (int)im.dims[im.ndim - 1];
	if (lb.dims[0] != im.dims[0]) {
		rc = data_err(-EINVAL, err, errlen, "%s: %u labels, but %s has %u images", lab_path,
		              lb.dims[0], img_path, im.dims[0]);
		goto out;
	}
	if (ds->sample_floats == 0) {
		ds->c = c;
		ds->h = h;
		ds->w = w;
		ds->sample_floats = (size_t)c * h * w;
	} else if (ds->c != c || ds->h != h || ds->w != w) {
		rc = data_err(-EINVAL, err, errlen, "%s: images are %dx%dx%d, but the training images are %dx%dx%d",
		              img_path, c, h, w, ds->c, ds->h, ds->w);
		goto out;
	}
	int n = (int)im.dims[0];
	for (int i = 0; i < n; i++) {
		if (max_classes > 0 && lb.data[i] >= max_classes) {
			rc = data_err(-EINVAL, err, errlen, "%s: label %u at index %d outside 0..%d", lab_path,
			              lb.data[i], i, max_classes - 1);
			goto out;
		}
	}
	s->x = eng_malloc(im.bytes * sizeof(float));
	s->y = eng_malloc((size_t)n * sizeof(int));
	if (!s->x || !s->y) {
		rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", img_path);
		goto out;
	}
	for (size_t i = 0; i < im.bytes; i++)
		s->x[i] = (float)im.data[i] / 255.0f;
	for (int i = 0; i < n; i++)
		s->y[i] = lb.data[i];
	s->n = n;
out:
	eng_free(im.data);
	eng_free(lb.data);
	return rc;
}

static int set_class_names(Dataset *ds, int n, const char *const *names, char *err, size_t errlen)
{
	ds->class_names = eng_calloc((size_t)n, sizeof(char *));
	if (!ds->class_names)
		return data_err(-ENOMEM, err, errlen, "dataset: out of memory");
	ds->num_classes = n;
	for (int i = 0; i < n; i++) {
		char buf[16];
		const char *nm = names ? names[i] : buf;
		if (!names)
			snprintf(buf, sizeof buf, "%d", i);
		ds->class_names[i] = eng_strdup(nm);
		if (!ds->class_names[i])
			return data_err(-ENOMEM, err, errlen, "dataset: out of memory");
	}
	return 0;
}

int data_load_fashion_mnist(const DatasetSpec *spec, Dataset *ds, char *err, size_t errlen)
{
	const char *dir = spec->dir ? spec->dir : DATA_FASHION_MNIST_DIR;
	char p[4][4096];
	static const char *const files[4] = {
		"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
		"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
	};
	for (int i = 0; i < 4; i++) {
		int k = snprintf(p[i], sizeof p[i], "%s/%s", dir, files[i]);
		if (k < 0 || (size_t)k >= sizeof p[i])
			return data_err(-ENAMETOOLONG, err, errlen, "fashion-mnist: directory name too long");
	}
	int rc = load_pair(ds, &ds->train, p[0], p[1], 10, err, errlen);
	if (rc == -ENOENT && !spec->dir && err) {
		size_t l = strlen(err);
		if (l < errlen)
			snprintf(err + l, errlen - l, " (is the Debian package dataset-fashion-mnist installed?)");
	}
	if (rc < 0)
		return rc;
	if (ds->c != 1 || ds->h != 28 || ds->w != 28)
		return data_err(-EINVAL, err, errlen, "%s: Fashion-MNIST images must be 28x28, got %dx%dx%d",
		                p[0], ds->c, ds->h, ds->w);
	rc = load_pair(ds, &ds->test, p[2], p[3], 10, err, errlen);
	if (rc < 0)
		return rc;
	return set_class_names(ds, 10, fashion_names, err, errlen);
}

int data_load_idx(const DatasetSpec *spec, Dataset *ds, char *err, size_t errlen)
{
	if (!spec->train_images || !spec->train_labels)
		return data_err(-EINVAL, err, errlen, "idx dataset: train_images and train_labels are required");
	if (!spec->test_images != !spec->test_labels)
		return data_err(-EINVAL, err, errlen, "idx dataset: give both test_images and test_labels, or neither");
	int rc = load_pair(ds, &ds->train, spec->train_images, spec->train_labels, 0, err, errlen);
	if (rc < 0)
		return rc;
	if (spec->test_images) {
		rc = load_pair(ds, &ds->test, spec->test_images, spec->test_labels, 0, err, errlen);
		if (rc < 0)
			return rc;
	} else {
		/* no test files: hold out the tail of the training file */
		float frac = spec->test_fraction > 0 ? spec->test_fraction : 0.1f;
		int n_test = (int)((double)ds->train.n * frac);
		if (n_test < 1 || n_test >= ds->train.n)
			return data_err(-EINVAL, err, errlen, "%s: too few images (%d) to hold out a test split",
			                spec->train_images, ds->train.n);
		int n_tr = ds->train.n - n_test;
		ds->test.x = eng_malloc((size_t)n_test * ds->sample_floats * sizeof(float));
		ds->test.y = eng_malloc((size_t)n_test * sizeof(int));
		if (!ds->test.x || !ds->test.y)
			return data_err(-ENOMEM, err, errlen, "idx dataset: out of memory");
		memcpy(ds->test.x, ds->train.x + (size_t)n_tr * ds->sample_floats,
		       (size_t)n_test * ds->sample_floats * sizeof(float));
		memcpy(ds->test.y, ds->train.y + n_tr, (size_t)n_test * sizeof(int));
		ds->test.n = n_test;
		ds->train.n = n_tr;
	}
	int maxl = -1;
	for (int i = 0; i < ds->train.n; i++)
		if (ds->train.y[i] > maxl)
			maxl = ds->train.y[i];
	for (int i = 0; i < ds->test.n; i++)
		if (ds->test.y[i] > maxl)
			maxl = ds->test.y[i];
	return set_class_names(ds, maxl + 1, NULL, err, errlen);
}

/* ---------------------------------------------------------------------------------------------- */
/* Format descriptors: "idx" (four files) and the named dataset "fashion-mnist" (a directory)      */

/* An IDX image file's count and (rows, cols) from its header (gzip or raw: zlib reads both). */
static int idx_header(const char *path, int64_t *count, int *h, int *w)
{
	gzFile f = path ? gzopen(path, "rb") : NULL;
	if (!f)
		return 0;
	uint8_t b[16];
	int n = gzread(f, b, sizeof b);
	gzclose(f);
	if (n != 16 || b[0] || b[1] || b[2] != 0x08 || b[3] < 3)
		return 0;
	*count = be32(b + 4);
	*h = (int)be32(b + 8);
	*w = (int)be32(b + 12);
	return *h > 0 && *w > 0;
}

static void idx_estimate(const DatasetSpec *s, int context, DatasetShape *out)
{
	(void)context;
	*out = (DatasetShape){ .train_samples = -1, .c = 1, .h = 28, .w = 28 };
	int64_t n;
	int h, w;
	if (idx_header(s->train_images, &n, &h, &w))
		*out = (DatasetShape){ .train_samples = n, .c = 1, .h = h, .w = w, .known = 1 };
}

static void fmnist_estimate(const DatasetSpec *s, int context, DatasetShape *out)
{
	(void)s, (void)context;
	*out = (DatasetShape){ .train_samples = 60000, .c = 1, .h = 28, .w = 28, .known = 1 };
}

static const ParamDef idx_keys[] = {
	{ "train_images", PARAM_PATH, .flags = PARAM_REQUIRED, .help = "training images (IDX, .gz or raw)",
	  PARAM_AT(DatasetSpec, train_images) },
	{ "train_labels", PARAM_PATH, .flags = PARAM_REQUIRED, .help = "training labels",
	  PARAM_AT(DatasetSpec, train_labels) },
	{ "test_images", PARAM_PATH, .flags = PARAM_REQUIRED, .help = "test images",
	  PARAM_AT(DatasetSpec, test_images) },
	{ "test_labels", PARAM_PATH, .flags = PARAM_REQUIRED, .help = "test labels",
	  PARAM_AT(DatasetSpec, test_labels) },
};

const DatasetFormat data_format_idx = {
	.name = "idx",
	.summary = "images and labels as IDX files (the MNIST format), gzip or raw",
	.kind = DATASET_IDX,
	.modality = DATA_IMAGES,
	.labelled = 1,
	.keys = idx_keys,
	.n_keys = (int)(sizeof idx_keys / sizeof idx_keys[0]),
	.load = data_load_idx,
	.estimate = idx_estimate,
};

static const ParamDef fmnist_keys[] = {
	{ "dir", PARAM_DIR, .choices = DATA_FASHION_MNIST_FILES, .def_text = DATA_FASHION_MNIST_DIR,
	  .help = DATA_FASHION_MNIST_DIR_HELP,
	  PARAM_AT(DatasetSpec, dir) },
};

const DatasetFormat data_format_fashion_mnist = {
	.name = "fashion-mnist",
	.summary = "Fashion-MNIST: 60,000 + 10,000 labelled 28x28 grey images in 10 classes",
	.kind = DATASET_FASHION_MNIST,
	.named = 1,
	.modality = DATA_IMAGES,
	.labelled = 1,
	.keys = fmnist_keys,
	.n_keys = 1,
	.load = data_load_fashion_mnist,
	.estimate = fmnist_estimate,
};
