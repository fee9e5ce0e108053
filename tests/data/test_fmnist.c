/* test_fmnist.c - the real Fashion-MNIST through the IDX reader, label subsets, validation slices,
 * and broken copies of the IDX files (truncated, cut gzip, corrupt gzip, bad magic, wrong counts,
 * trailing data, bad labels, missing files) that must fail with the file named. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../../engine/alloc.h"
#include "../../engine/data/dataset.h"
#include "check.h"
#include "support.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"

static char *tmpdir; /* scratch directory (test_tmpdir) */

static uint8_t *gunzip_file(const char *path, size_t *len)
{
	gzFile f = gzopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 24, n = 0;
	uint8_t *b = malloc(cap);
	int r;
	while ((r = gzread(f, b + n, (unsigned)(cap - n))) > 0) {
		n += (size_t)r;
		if (n == cap)
			b = realloc(b, cap *= 2);
	}
	gzclose(f);
	*len = n;
	return b;
}

static void write_gz(const char *path, const void *b, size_t n)
{
	gzFile f = gzopen(path, "wb1");
	gzwrite(f, b, (unsigned)n);
	gzclose(f);
}

static const char *tp(const char *name) { return test_path(tmpdir, name); }

/* Load a DATASET_IDX of (images, labels) test files; returns rc, err filled. */
static int load_idx(const char *img, const char *lab, char *err, size_t errlen)
{
	DatasetSpec s = {.kind = DATASET_IDX, .train_images = img, .train_labels = lab};
	Dataset *ds = NULL;
	int rc = dataset_load(&s, &ds, err, errlen);
	dataset_free(ds);
	return rc;
}

static void test_real(void)
{
	DatasetSpec s = {.kind = DATASET_FASHION_MNIST};
	Dataset *ds;
	char err[512] = "";
	int rc = dataset_load(&s, &ds, err, sizeof err);
	CHECK(rc == 0, "load failed: %s", err);
	if (rc < 0)
		return;
	CHECK(ds->train.n == 60000, "train n %d", ds->train.n);
	CHECK(ds->test.n == 10000, "test n %d", ds->test.n);
	CHECK(ds->c == 1 && ds->h == 28 && ds->w == 28 && ds->sample_floats == 784, "shape");
	CHECK(ds->num_classes == 10, "classes %d", ds->num_classes);
	CHECK(ds->train.y[0] == 9, "first train label %d", ds->train.y[0]);
	CHECK(ds->test.y[0] == 9, "first test label %d", ds->test.y[0]);
	CHECK(strcmp(ds->class_names[9], "Ankle boot") == 0, "class 9 '%s'", ds->class_names[9]);
	CHECK(strcmp(ds->class_names[0], "T-shirt/top") == 0, "class 0 '%s'", ds->class_names[0]);
	double sum = 0, sq = 0, mn = 1, mx = 0;
	size_t n = (size_t)ds->train.n * 784;
	for (size_t i = 0; i < n; i++) {
		double v = ds->train.x[i];
		sum += v;
		sq += v * v;
		if (v < mn)
			mn = v;
		if (v > mx)
			mx = v;
	}
	double mean = sum / (double)n, sd = sqrt(sq / (double)n - mean * mean);
	printf("fashion-mnist train: mean %.4f std %.4f min %.1f max %.1f\n", mean, sd, mn, mx);
	CHECK(fabs(mean - 0.2860) < 0.001, "mean %.5f", mean);
	CHECK(fabs(sd - 0.3530) < 0.001, "std %.5f", sd);
	CHECK(mn == 0.0 && mx == 1.0, "range [%g, %g]", mn, mx);
	int per[10] = {0};
	for (int i = 0; i < ds->train.n; i++)
		per[ds->train.y[i]]++;
	for (int c = 0; c < 10; c++)
		CHECK(per[c] == 6000, "class %d has %d", c, per[c]);

	/* 1% subset: exactly 60 per class, the first 60 of each class in file order, every run */
	int *a = NULL, *b = NULL;
	int na = dataset_label_subset(&ds->train, 10, 0.01, 0, LABELS_FIRST, 0, &a, err, sizeof err);
	int nb = dataset_label_subset(&ds->train, 10, 0.01, 0, LABELS_FIRST, 12345, &b, err, sizeof err);
	CHECK(na == 600 && nb == 600, "subset sizes %d %d (%s)", na, nb, err);
	if (na == 600 && nb == 600) {
		CHECK(memcmp(a, b, 600 * sizeof(int)) == 0, "first-k subset depends on the seed");
		int cnt[10] = {0}, seen[10] = {0};
		for (int i = 0; i < 600; i++) {
			cnt[ds->train.y[a[i]]]++;
			if (i)
				CHECK(a[i] > a[i - 1], "not ascending at %d", i);
		}
		for (int c = 0; c < 10; c++)
			CHECK(cnt[c] == 60, "class %d: %d in the 1%% subset", c, cnt[c]);
		/* it is exactly the first 60 of each class */
		int k = 0;
		for (int i = 0; i < ds->train.n && k < 600; i++) {
			int y = ds->train.y[i];
			if (seen[y] < 60) {
				seen[y]++;
				CHECK(a[k] == i, "subset[%d] = %d, want %d", k, a[k], i);
				k++;
			}
		}
		CHECK(a[0] == 0, "first subset index %d", a[0]);
		printf("1%% subset: first indices %d %d %d %d, last %d\n", a[0], a[1], a[2], a[3], a[599]);
	}
	eng_free(a);
	eng_free(b);

	/* 10% and labels_per_class */
	int n10 = dataset_label_subset(&ds->train, 10, 0.1, 0, LABELS_FIRST, 0, &a, err, sizeof err);
	CHECK(n10 == 6000, "10%% subset %d", n10);
	eng_free(a);
	int n5 = dataset_label_subset(&ds->train, 10, 0.5, 5, LABELS_FIRST, 0, &a, err, sizeof err);
	CHECK(n5 == 50, "labels_per_class 5 gives %d", n5);
	eng_free(a);
	int nall = dataset_label_subset(&ds->train, 10, 1.0, 0, LABELS_FIRST, 0, &a, err, sizeof err);
	CHECK(nall == 60000, "fraction 1.0 gives %d", nall);
	eng_free(a);

	/* random rule: stratified, seeded, reproducible, differs across seeds */
	int r1 = dataset_label_subset(&ds->train, 10, 0.01, 0, LABELS_RANDOM, 7, &a, err, sizeof err);
	int r2 = dataset_label_subset(&ds->train, 10, 0.01, 0, LABELS_RANDOM, 7, &b, err, sizeof err);
	int *c3 = NULL;
	int r3 = dataset_label_subset(&ds->train, 10, 0.01, 0, LABELS_RANDOM, 8, &c3, err, sizeof err);
	CHECK(r1 == 600 && r2 == 600 && r3 == 600, "random sizes %d %d %d", r1, r2, r3);
	if (r1 == 600 && r2 == 600 && r3 == 600) {
		CHECK(memcmp(a, b, 600 * sizeof(int)) == 0, "same seed, different random subset");
		CHECK(memcmp(a, c3, 600 * sizeof(int)) != 0, "different seeds, same random subset");
		int cnt[10] = {0};
		for (int i = 0; i < 600; i++)
			cnt[ds->train.y[a[i]]]++;
		for (int c = 0; c < 10; c++)
			CHECK(cnt[c] == 60, "random: class %d has %d", c, cnt[c]);
		CHECK(a[599] > 6000, "random subset looks like the first-k one (last %d)", a[599]);
	}
	eng_free(a);
	eng_free(b);
	eng_free(c3);

	/* bad fractions */
	rc = dataset_label_subset(&ds->train, 10, 0.0, 0, LABELS_FIRST, 0, &a, err, sizeof err);
	CHECK_MSG(rc, err, "fraction");
	rc = dataset_label_subset(&ds->train, 10, 0.00001, 0, LABELS_FIRST, 0, &a, err, sizeof err);
	CHECK_MSG(rc, err, "selects no sample");

	/* validation slice: the last 5000 training images, a label subset drawn from the rest */
	Split tr, val;
	rc = dataset_val_slice(ds, &ds->train, 5000, &tr, &val, err, sizeof err);
	CHECK(rc == 0 && tr.n == 55000 && val.n == 5000, "val slice %d %d", tr.n, val.n);
	CHECK(val.x == ds->train.x + (size_t)55000 * 784 && val.y[0] == ds->train.y[55000], "val view");
	int nv = dataset_label_subset(&tr, 10, 0.01, 0, LABELS_RANDOM, 1, &a, err, sizeof err);
	CHECK(nv == 550, "subset of the train part %d", nv);
	for (int i = 0; i < nv; i++)
		CHECK(a[i] < 55000, "subset reaches into val: %d", a[i]);
	eng_free(a);
	rc = dataset_val_slice(ds, &ds->train, 60000, &tr, &val, err, sizeof err);
	CHECK_MSG(rc, err, "n_val");
	dataset_free(ds);

	/* limits */
	DatasetSpec sl = {.kind = DATASET_FASHION_MNIST, .limit_train = 1000, .limit_test = 200};
	rc = dataset_load(&sl, &ds, err, sizeof err);
	CHECK(rc == 0 && ds->train.n == 1000 && ds->test.n == 200, "limits");
	if (rc == 0)
		dataset_free(ds);
}

static void test_broken(void)
{
	char err[512];
	size_t ni = 0, nl = 0;
	uint8_t *img = gunzip_file(FMNIST "/t10k-images-idx3-ubyte.gz", &ni);
	uint8_t *lab = gunzip_file(FMNIST "/t10k-labels-idx1-ubyte.gz", &nl);
	CHECK(img && ni == 7840016 && lab && nl == 10008, "t10k sizes %zu %zu", ni, nl);
	if (!img || !lab)
		return;

	/* raw copies load, gzip or not */
	test_write_file(tp("img"), img, ni);
	test_write_file(tp("lab"), lab, nl);
	int rc = load_idx(tp("img"), tp("lab"), err, sizeof err);
	CHECK(rc == 0, "raw IDX: %s", err);

	/* the example: 4096 bytes of a t10k image file, gzipped */
	write_gz(tp("t10k-images-idx3-ubyte.gz"), img, 4096);
	rc = load_idx(tp("t10k-images-idx3-ubyte.gz"), tp("lab"), err, sizeof err);
	CHECK_MSG(rc, err, "t10k-images-idx3-ubyte.gz: truncated, expected 7840016 bytes, got 4096");
	printf("truncated: %s\n", err);

	/* a raw file cut inside the header */
	test_write_file(tp("short"), img, 10);
	rc = load_idx(tp("short"), tp("lab"), err, sizeof err);
	CHECK_MSG(rc, err, "short: truncated");

	/* a gzip file cut in half (compressed bytes) */
	size_t nz = 0;
	uint8_t *z = test_read_file(FMNIST "/t10k-images-idx3-ubyte.gz", &nz);
	test_write_file(tp("cut.gz"), z, nz / 2);
	rc = load_idx(tp("cut.gz"), tp("lab"), err, sizeof err);
	CHECK_MSG(rc, err, "cut.gz: truncated, expected 7840016 bytes");
	printf("cut gzip: %s\n", err);

	/* the gzip trailer missing (all data there) */
	test_write_file(tp("notrailer.gz"), z, nz - 4);
	rc = load_idx(tp("notrailer.gz"), tp("lab"), err, sizeof err);
	CHECK_MSG(rc, err, "notrailer.gz: truncated");
	printf("no trailer: %s\n", err);

	/* corrupt compressed data */
	uint8_t *zc = malloc(nz);
	memcpy(zc, z, nz);
	for (size_t i = nz / 3; i < nz / 3 + 64; i++)
		zc[i] ^= 0x5a;
	test_write_file(tp("corrupt.gz"), zc, nz);
	rc = load_idx(tp("corrupt.gz"), tp("lab"), err, sizeof err);
	CHECK_MSG(rc, err, "corrupt.gz: corrupt gzip data");
	printf("corrupt gzip: %s\n", err);
	/* an invalid deflate block type right after the gzip header */
	memcpy(zc, z, nz);
	zc[10] |= 0x06;
	test_write_file(tp("badblock.gz"), zc, nz);
	rc = load_idx(tp("badblock.gz"), tp("lab"), err, sizeof err);
	CHECK_MSG(rc, err, "badblock.gz: corrupt gzip data");
	printf("bad block: %s\n", err);
	/* a flipped CRC: only the trailer is wrong */
	memcpy(zc, z, nz);
	zc[nz - 6] ^= 0xff;
	test_write_file(tp("crc.gz"), zc, nz);
	rc = load_idx(tp("crc.gz"), tp("lab"), err, sizeof err);
	CHECK_MSG(rc, err, "crc.gz: corrupt gzip data");
	printf("bad crc: %s\n", err);
	free(zc);
	free(z);

	/* bad magic: labels where images belong, and the reverse */
	rc = load_idx(tp("lab"), tp("lab"), err, sizeof err);
	CHECK_MSG(rc, err, "lab: bad magic 0x00000801, expected 0x00000803");
	rc = load_idx(tp("img"), tp("img"), err, sizeof err);
	CHECK_MSG(rc, err, "img: bad magic 0x00000803, expected 0x00000801");

	/* counts that disagree: a label file claiming 9999 labels (and holding 9999) */
	uint8_t *lab2 = malloc(nl);
	memcpy(lab2, lab, nl);
	lab2[6] = 0x27;
	lab2[7] = 0x0f;   /* 9999 */
	write_gz(tp("lab9999.gz"), lab2, nl - 1);
	rc = load_idx(tp("img"), tp("lab9999.gz"), err, sizeof err);
	CHECK_MSG(rc, err, "lab9999.gz: 9999 labels, but");
	/* trailing data: header says 9999 but 10000 are there */
	write_gz(tp("labtrail.gz"), lab2, nl);
	rc = load_idx(tp("img"), tp("labtrail.gz"), err, sizeof err);
	CHECK_MSG(rc, err, "labtrail.gz: trailing data");
	/* an absurd dimension */
	memcpy(lab2, lab, nl);
	lab2[4] = 0x7f;
	test_write_file(tp("labhuge"), lab2, nl);
	rc = load_idx(tp("img"), tp("labhuge"), err, sizeof err);
	CHECK_MSG(rc, err, "labhuge: implausible dimension");
	free(lab2);

	/* fashion-mnist with a bad label value (dir override; train files are the real ones) */
	symlink(FMNIST "/train-images-idx3-ubyte.gz", tp("train-images-idx3-ubyte.gz"));
	symlink(FMNIST "/train-labels-idx1-ubyte.gz", tp("train-labels-idx1-ubyte.gz"));
	uint8_t *lab3 = malloc(nl);
	memcpy(lab3, lab, nl);
	lab3[8 + 17] = 12;
	write_gz(tp("t10k-labels-idx1-ubyte.gz"), lab3, nl);
	write_gz(tp("t10k-images-idx3-ubyte.gz"), img, ni);
	DatasetSpec s = {.kind = DATASET_FASHION_MNIST, .dir = tmpdir};
	Dataset *ds = NULL;
	rc = dataset_load(&s, &ds, err, sizeof err);
	CHECK_MSG(rc, err, "t10k-labels-idx1-ubyte.gz: label 12 at index 17 outside 0..9");
	free(lab3);
	/* the same directory with good test labels loads */
	write_gz(tp("t10k-labels-idx1-ubyte.gz"), lab, nl);
	rc = dataset_load(&s, &ds, err, sizeof err);
	CHECK(rc == 0 && ds->test.n == 10000, "dir override: %s", err);
	dataset_free(ds);

	/* missing files */
	DatasetSpec sm = {.kind = DATASET_FASHION_MNIST, .dir = "/nonexistent/fmnist"};
	rc = dataset_load(&sm, &ds, err, sizeof err);
	CHECK(rc == -ENOENT && strstr(err, "/nonexistent/fmnist/train-images-idx3-ubyte.gz"),
	      "missing: rc %d %s", rc, err);
	/* an IDX dataset without test files holds out its tail */
	DatasetSpec st = {.kind = DATASET_IDX, .train_images = tp("img"), .train_labels = tp("lab"),
	                  .test_fraction = 0.2f};
	rc = dataset_load(&st, &ds, err, sizeof err);
	CHECK(rc == 0 && ds->train.n == 8000 && ds->test.n == 2000 && ds->num_classes == 10,
	      "idx tail split: %s", err);
	if (rc == 0) {
		CHECK(ds->test.y[0] == lab[8 + 8000], "test tail label");
		dataset_free(ds);
	}
	free(img);
	free(lab);
}

int main(void)
{
	if (access(FMNIST "/train-images-idx3-ubyte.gz", R_OK) != 0)
		return check_skip("%s not installed (Debian package dataset-fashion-mnist)", FMNIST);
	tmpdir = test_tmpdir("test-fmnist");
	if (!tmpdir)
		return 1;
	test_real();
	test_broken();
	test_rmtree(tmpdir);
	free(tmpdir);
	return check_exit("test_fmnist");
}
