/* test_formats.c - CSV, text, labelled text records (the fortunes files) and image-caption
 * JSON lines: good files load with the right shapes, labels and splits; broken ones fail with a
 * message naming the file (and line) and the problem. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../../engine/alloc.h"
#include "../../engine/data/dataset.h"
#include "../../engine/data/png_grid.h"
#include "check.h"
#include "support.h"

static char *tmpdir; /* scratch directory (test_tmpdir) */

static const char *tp(const char *name) { return test_path(tmpdir, name); }

static const char *put(const char *name, const char *text)
{
	const char *p = tp(name);
	test_write_file(p, text, strlen(text));
	return p;
}

static int load(DatasetSpec *s, Dataset **ds, char *err, size_t errlen)
{
	*ds = NULL;
	return dataset_load(s, ds, err, errlen);
}

/* ---------------------------------------------------------------------------------------------- */

static void test_csv(void)
{
	char err[512];
	Dataset *ds;
	/* header auto-detected, integer labels, quoted field, CRLF, a blank line */
	const char *tr = put("train.csv", "f1,f2,f3,label\r\n1,2,3,0\r\n4,5,6,2\r\n\r\n\"7\",8e-1,-9,1\r\n");
	const char *te = put("test.csv", "f1,f2,f3,label\n0.5,0.25,0,2\n");
	DatasetSpec s = {.kind = DATASET_CSV, .csv_train = tr, .csv_test = te, .csv_label_column = -1,
	                 .csv_header = -1};
	int rc = load(&s, &ds, err, sizeof err);
	CHECK(rc == 0, "csv: %s", err);
	if (rc == 0) {
		CHECK(ds->train.n == 3 && ds->test.n == 1, "rows %d %d", ds->train.n, ds->test.n);
		CHECK(ds->c == 1 && ds->h == 1 && ds->w == 3 && ds->sample_floats == 3, "shape");
		CHECK(ds->num_classes == 3, "classes %d", ds->num_classes);
		CHECK(ds->train.y[0] == 0 && ds->train.y[1] == 2 && ds->train.y[2] == 1, "labels");
		CHECK(ds->train.x[6] == 7.0f && fabsf(ds->train.x[7] - 0.8f) < 1e-7f && ds->train.x[8] == -9.0f,
		      "row 3 values");
		CHECK(ds->test.x[1] == 0.25f && ds->test.y[0] == 2, "test row");
		dataset_free(ds);
	}
	/* label in the first column, names as labels, no header, tail held out */
	const char *nm = put("names.csv", "cat,1,1\ndog,2,2\ncat,3,3\nbird,4,4\ndog,5,5\n,6,6\ncat,7,7\n"
	                                  "dog,8,8\nbird,9,9\ncat,10,10\n");
	DatasetSpec s2 = {.kind = DATASET_CSV, .csv_train = nm, .csv_label_column = 0, .csv_header = -1,
	                  .test_fraction = 0.2f};
	rc = load(&s2, &ds, err, sizeof err);
	CHECK(rc == 0, "csv names: %s", err);
	if (rc == 0) {
		CHECK(ds->train.n == 8 && ds->test.n == 2, "split %d %d", ds->train.n, ds->test.n);
		CHECK(ds->num_classes == 3 && strcmp(ds->class_names[0], "cat") == 0 &&
		      strcmp(ds->class_names[2], "bird") == 0, "names");
		CHECK(ds->train.y[5] == -1, "empty label is unlabelled: %d", ds->train.y[5]);
		CHECK(ds->train.x[0] == 1.0f && ds->train.x[1] == 1.0f && ds->test.x[0] == 9.0f, "values");
		dataset_free(ds);
	}
	/* broken files */
	struct { const char *name, *text, *want; } bad[] = {
		{"ragged.csv", "a,b,c\n1,2,3\n4,5\n", "ragged.csv:3: expected 3 fields, got 2"},
		{"nan.csv", "1,2,0\n3,abc,1\n", "nan.csv:2: column 2: not a finite number: 'abc'"},
		{"inf.csv", "1,2,0\n3,inf,1\n", "inf.csv:2: column 2: not a finite number"},
		{"quote.csv", "1,2,0\n\"3,4,1\n", "quote.csv:2: malformed quoted field"},
		{"empty.csv", "", "empty.csv: no data rows"},
		{"onecol.csv", "1\n2\n", "onecol.csv:1: need at least 2 columns"},
		{"long.csv", "1,2,0\n1,2,3,4\n", "long.csv:2: expected 3 fields, got 4"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (!bad[i].want)
			continue;
		DatasetSpec sb = {.kind = DATASET_CSV, .csv_train = put(bad[i].name, bad[i].text),
		                  .csv_label_column = -1, .csv_header = -1};
		rc = load(&sb, &ds, err, sizeof err);
		CHECK_MSG(rc, err, bad[i].want);
	}
	/* a test file with another width */
	DatasetSpec sw = {.kind = DATASET_CSV, .csv_train = tr, .csv_test = put("w.csv", "1,2,0\n"),
	                  .csv_label_column = -1, .csv_header = -1};
	rc = load(&sw, &ds, err, sizeof err);
	CHECK_MSG(rc, err, "w.csv:1: 3 columns, but the training file has 4");
	/* missing file */
	DatasetSpec sm = {.kind = DATASET_CSV, .csv_train = tp("nope.csv"), .csv_label_column = -1};
	rc = load(&sm, &ds, err, sizeof err);
	CHECK(rc == -ENOENT && strstr(err, "nope.csv: cannot open"), "missing: %s", err);
	/* a gzipped CSV reads the same */
	gzFile g = gzopen(tp("gz.csv.gz"), "wb");
	gzputs(g, "1,2,1\n3,4,0\n5,6,1\n7,8,0\n9,10,1\n6,6,0\n7,7,1\n8,8,0\n9,9,1\n1,1,0\n");
	gzclose(g);
	DatasetSpec sg = {.kind = DATASET_CSV, .csv_train = tp("gz.csv.gz"), .csv_label_column = -1,
	                  .csv_header = -1};
	rc = load(&sg, &ds, err, sizeof err);
	CHECK(rc == 0 && ds->train.n == 9 && ds->test.n == 1 && ds->num_classes == 2, "gz csv: %s", err);
	if (rc == 0)
		dataset_free(ds);
}

/* ---------------------------------------------------------------------------------------------- */

static void test_text(void)
{
	char err[512];
	Dataset *ds;
	char big[1000];
	for (int i = 0; i < 999; i++)
		big[i] = (char)('a' + i % 26);
	big[999] = 0;
	const char *files[2] = {put("a.txt", big), put("b.txt", "0123456789")};
	DatasetSpec s = {.kind = DATASET_TEXT, .text_files = files, .n_text_files = 2, .test_fraction = 0.1f};
	int rc = load(&s, &ds, err, sizeof err);
	CHECK(rc == 0, "text: %s", err);
	if (rc == 0) {
		CHECK(ds->text_train_len + ds->text_test_len == 1009, "lengths %zu %zu", ds->text_train_len,
		      ds->text_test_len);
		CHECK(ds->text_test_len == 100, "test bytes %zu", ds->text_test_len);
		CHECK(memcmp(ds->text_test + 90, "0123456789", 10) == 0, "tail is the end of the last file");
		CHECK(ds->text_train[0] == 'a' && ds->train.n == 0, "head");
		dataset_free(ds);
	}
	/* binary, UTF-16 and empty files are refused */
	FILE *f = fopen(tp("bin.txt"), "wb");
	fwrite("abc\0def", 1, 7, f);
	fclose(f);
	f = fopen(tp("u16.txt"), "wb");
	fwrite("\xff\xfeh\0i\0", 1, 6, f);
	fclose(f);
	const char *b1[1] = {tp("bin.txt")}, *b2[1] = {tp("u16.txt")}, *b3[1] = {put("empty.txt", "")};
	DatasetSpec sb = {.kind = DATASET_TEXT, .text_files = b1, .n_text_files = 1};
	rc = load(&sb, &ds, err, sizeof err);
	CHECK_MSG(rc, err, "bin.txt: binary data (NUL byte at offset 3)");
	sb.text_files = b2;
	rc = load(&sb, &ds, err, sizeof err);
	CHECK_MSG(rc, err, "u16.txt: UTF-16");
	sb.text_files = b3;
	rc = load(&sb, &ds, err, sizeof err);
	CHECK_MSG(rc, err, "empty.txt: empty file");
	sb.n_text_files = 0;
	rc = load(&sb, &ds, err, sizeof err);
	CHECK_MSG(rc, err, "no text_files");
}

static void test_records(void)
{
	char err[512];
	Dataset *ds;
	/* synthetic fortune files: records on "%" lines, label = file */
	const char *files[2] = {
		put("jokes", "one\n%\ntwo\nlines\n%\n%\nthree\n%\nfour\n%\nfive\n%\nsix\n%\nseven\n%\neight\n%\nnine\n%\nten\n%\n"),
		put("quotes", "alpha\n%\nbeta\n%\ngamma\n%\ndelta\n%\nepsilon\n%\nzeta\n%\neta\n%\ntheta\n%\niota\n%\nkappa is a long record that gets truncated\n"),
	};
	DatasetSpec s = {.kind = DATASET_TEXT_RECORDS, .text_files = files, .n_text_files = 2,
	                 .max_record_bytes = 16, .test_fraction = 0.2f};
	int rc = load(&s, &ds, err, sizeof err);
	CHECK(rc == 0, "records: %s", err);
	if (rc == 0) {
		CHECK(ds->num_classes == 2 && strcmp(ds->class_names[0], "jokes") == 0 &&
		      strcmp(ds->class_names[1], "quotes") == 0, "class names");
		CHECK(ds->train.n == 16 && ds->test.n == 4, "split %d/%d", ds->train.n, ds->test.n);
		CHECK(ds->record_bytes == 16, "record bytes");
		CHECK(ds->rec_train_len[0] == 3 && memcmp(ds->rec_train, "one", 3) == 0 &&
		      ds->rec_train[3] == 0, "first record");
		CHECK(ds->rec_train_len[1] == 9 && memcmp(ds->rec_train + 16, "two\nlines", 9) == 0,
		      "multi-line record");
		CHECK(ds->train.y[0] == 0 && ds->train.y[15] == 1, "train labels");
		/* test = last 2 of each class, in file order */
		CHECK(ds->test.y[0] == 0 && ds->test.y[1] == 0 && ds->test.y[2] == 1 && ds->test.y[3] == 1,
		      "test labels");
		CHECK(memcmp(ds->rec_test, "nine", 4) == 0 && memcmp(ds->rec_test + 16, "ten", 3) == 0 &&
		      memcmp(ds->rec_test + 32, "iota", 4) == 0,
		      "test records");
		CHECK(ds->rec_test_len[3] == 16 && memcmp(ds->rec_test + 48, "kappa is a long ", 16) == 0,
		      "truncation");
		dataset_free(ds);
	}
	/* label<TAB>text lines */
	const char *tf[1] = {put("tab.tsv", "pos\tgreat film\nneg\tdull\npos\tloved it\nneg\tmeh\n"
	                                    "pos\tsuperb\nneg\tbad\n")};
	DatasetSpec st = {.kind = DATASET_TEXT_RECORDS, .text_files = tf, .n_text_files = 1,
	                  .text_label_field = 1, .test_fraction = 0.34f};
	rc = load(&st, &ds, err, sizeof err);
	CHECK(rc == 0, "tsv records: %s", err);
	if (rc == 0) {
		CHECK(ds->num_classes == 2 && strcmp(ds->class_names[1], "neg") == 0, "tsv classes");
		CHECK(ds->train.n == 4 && ds->test.n == 2, "tsv split %d/%d", ds->train.n, ds->test.n);
		CHECK(ds->rec_train_len[0] == 10 && memcmp(ds->rec_train, "great film", 10) == 0, "tsv text");
		dataset_free(ds);
	}
	const char *tb[1] = {put("notab.tsv", "pos\tok\nno tab here\n")};
	st.text_files = tb;
	rc = load(&st, &ds, err, sizeof err);
	CHECK_MSG(rc, err, "notab.tsv:2: expected \"label<TAB>text\"");
	const char *te[1] = {put("blank", "\n%\n  \n%\n")};
	s.text_files = te;
	s.n_text_files = 1;
	rc = load(&s, &ds, err, sizeof err);
	CHECK_MSG(rc, err, "blank: no records");

	/* the real fortunes package: label = the file a quote comes from */
	const char *ff[3] = {"/usr/share/games/fortunes/science", "/usr/share/games/fortunes/computers",
	                     "/usr/share/games/fortunes/food"};
	if (access(ff[0], R_OK) == 0 && access(ff[1], R_OK) == 0 && access(ff[2], R_OK) == 0) {
		DatasetSpec sf = {.kind = DATASET_TEXT_RECORDS, .text_files = ff, .n_text_files = 3};
		rc = load(&sf, &ds, err, sizeof err);
		CHECK(rc == 0, "fortunes: %s", err);
		if (rc == 0) {
			int per[3] = {0};
			for (int i = 0; i < ds->train.n; i++)
				per[ds->train.y[i]]++;
			printf("fortunes: %d train / %d test records, per class %d %d %d, record_bytes %d\n",
			       ds->train.n, ds->test.n, per[0], per[1], per[2], ds->record_bytes);
			CHECK(ds->num_classes == 3 && per[0] > 100 && per[1] > 100 && per[2] > 100, "per class");
			CHECK(strcmp(ds->class_names[0], "science") == 0, "name");
			CHECK(memcmp(ds->rec_train, "1 + 1 = 3, for large values of 1.", 33) == 0,
			      "first science fortune: %.40s", (const char *)ds->rec_train);
			int tn = ds->train.n + ds->test.n;
			CHECK(ds->test.n >= tn / 10 - 3 && ds->test.n <= tn / 10 + 3, "test share %d of %d",
			      ds->test.n, tn);
			dataset_free(ds);
		}
		/* a fortune index (.dat) is binary and refused */
		const char *fd[1] = {"/usr/share/games/fortunes/science.dat"};
		DatasetSpec sd = {.kind = DATASET_TEXT_RECORDS, .text_files = fd, .n_text_files = 1};
		rc = load(&sd, &ds, err, sizeof err);
		CHECK_MSG(rc, err, "science.dat: binary data");
	} else {
		printf("note: fortunes files not installed, real-fortune checks skipped\n");
	}
}

/* ---------------------------------------------------------------------------------------------- */

static void test_captions(void)
{
	char err[512];
	Dataset *ds;
	int have_fm = access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) == 0;

	/* PNG path lines, gray 6x4 images, labels, escapes, an unknown key with a nested value */
	float img[24];
	for (int k = 0; k < 5; k++) {
		for (int i = 0; i < 24; i++)
			img[i] = (float)((i * 7 + k * 13) % 256) / 255.0f;
		char name[32];
		snprintf(name, sizeof name, "im%d.png", k);
		int rc = png_grid_write(tp(name), img, 1, 1, 4, 6, 1, 0, 0.0f, 1.0f, err, sizeof err);
		CHECK(rc == 0, "png write: %s", err);
	}
	const char *cap = put("caps.jsonl",
		"{\"image\": \"im0.png\", \"caption\": \"caf\\u00e9 \\\"quoted\\\"\", \"label\": 1}\n"
		"\n"
		"{\"caption\": \"emoji \\ud83d\\ude00\", \"image\": \"im1.png\", \"extra\": {\"a\": [1, 2, {\"b\": null}]}}\n"
		"  {\"image\":\"im2.png\",\"caption\":\"tab\\there\",\"label\":0}  \n"
		"{\"image\": \"im3.png\", \"caption\": \"four\", \"score\": -1.5e3, \"ok\": true}\n"
		"{\"image\": \"im4.png\", \"caption\": \"five\"}\n");
	DatasetSpec s = {.kind = DATASET_CAPTIONS, .captions_file = cap, .test_fraction = 0.2f};
	int rc = load(&s, &ds, err, sizeof err);
	CHECK(rc == 0, "captions (paths): %s", err);
	if (rc == 0) {
		CHECK(ds->train.n == 4 && ds->test.n == 1 && ds->n_captions == 4, "pairs %d/%d", ds->train.n,
		      ds->test.n);
		CHECK(ds->c == 1 && ds->h == 4 && ds->w == 6, "shape %dx%dx%d", ds->c, ds->h, ds->w);
		CHECK(strcmp(ds->captions[0], "caf\xc3\xa9 \"quoted\"") == 0, "escape: '%s'", ds->captions[0]);
		CHECK(strcmp(ds->captions[1], "emoji \xf0\x9f\x98\x80") == 0, "surrogates: '%s'", ds->captions[1]);
		CHECK(strcmp(ds->captions[2], "tab\there") == 0, "tab");
		CHECK(ds->train.y[0] == 1 && ds->train.y[1] == -1 && ds->train.y[2] == 0, "labels");
		CHECK(ds->num_classes == 2, "classes %d", ds->num_classes);
		/* pixels came through the PNG (8-bit) exactly: image 3 pixel 5 */
		float want = (float)((5 * 7 + 3 * 13) % 256) / 255.0f;
		CHECK(fabsf(ds->train.x[3 * 24 + 5] - want) < 1e-6f, "pixel %g vs %g", ds->train.x[3 * 24 + 5], want);
		dataset_free(ds);
	}
	/* broken lines name the file and line, and the column of a syntax error or the key at fault */
	struct { const char *name, *text, *want; } bad[] = {
		{"b1.jsonl", "{\"image\": \"im0.png\", \"caption\": \"x\"}\n{\"image\": 1 \"caption\": \"y\"}\n",
		 "b1.jsonl:2:13: not valid JSON at '\"caption\": \"y\"}'"},
		{"b2.jsonl", "{\"image\": \"im0.png\"}\n", "b2.jsonl:1: missing \"caption\""},
		{"b3.jsonl", "{\"image\": \"im0.png\", \"caption\": \"unterminated}\n", "b3.jsonl:1:33: not valid JSON: a string is not closed"},
		{"b4.jsonl", "[1, 2]\n", "b4.jsonl:1: expected '{'"},
		{"b5.jsonl", "{\"image\": \"im0.png\", \"caption\": \"x\"}\n{\"image\": 3, \"caption\": \"y\"}\n",
		 "b5.jsonl:2: mixes image indices and image paths"},
		{"b6.jsonl", "{\"image\": \"im0.png\", \"caption\": \"bad \\q escape\"}\n", "b6.jsonl:1:38: bad escape '\\q'"},
		{"b7.jsonl", "{\"image\": \"im0.png\", \"caption\": \"lone \\udc00\"}\n", "b7.jsonl:1:39: bad escape '\\udc00'"},
		{"b8.jsonl", "{\"image\": \"missing.png\", \"caption\": \"x\"}\n{\"image\": \"im1.png\", \"caption\": \"y\"}\n",
		 "missing.png: cannot open"},
		{"b9.jsonl", "{\"image\": 1.5, \"caption\": \"x\"}\n", "b9.jsonl:1: \"image\" must be an integer, got the fraction 1.5"},
		{"b10.jsonl", "\n\n", "b10.jsonl: no caption lines"},
		{"b11.jsonl", "{\"image\": \"im0.png\", \"caption\": \"x\"} trailing\n", "b11.jsonl:1:38: unexpected text"},
		{"b12.jsonl", "{\"image\": \"im0.png\", \"caption\": \"cut\\u0000here\"}\n", "b12.jsonl:1: \\u0000 is not allowed"},
		{"b13.jsonl", "{\"image\": \"im0.png\", \"caption\": \"a\", \"caption\": \"b\"}\n",
		 "b13.jsonl:1: duplicate key \"caption\""},
		{"b14.jsonl", "{\"image\": \"im0.png\", \"caption\": \"a\", \"label\": 100001}\n",
		 "b14.jsonl:1: \"label\" must be in 0..100000, got 100001"},
		{"b15.jsonl", "{\"image\": \"im0.png\", \"caption\": 7}\n", "b15.jsonl:1: \"caption\" must be a string"},
		{"b16.jsonl", "{\"image\": \"im0.png\", \"caption\": \"open\n", "b16.jsonl:1:33: not valid JSON: a string is not closed"},
		{"b18.jsonl", "{\"image\": \"im0.png\", \"caption\": \"x\"\n", "b18.jsonl:1:35: not valid JSON at the end of the line"},
		{"b19.jsonl", "{\"image\": \"im0.png\", \"caption\": \"x\",}\n", "b19.jsonl:1:37: not valid JSON at the end of the line ('}'): a value is missing"},
		{"b17.jsonl", "{\"image\": \"im0.png\", \"caption\": \"x\"}\n{\"image\": \"\", \"caption\": \"y\"}\n",
		 "b17.jsonl:2: empty image path"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		DatasetSpec sb = {.kind = DATASET_CAPTIONS, .captions_file = put(bad[i].name, bad[i].text)};
		rc = load(&sb, &ds, err, sizeof err);
		CHECK_MSG(rc, err, bad[i].want);
	}
	/* images of different sizes */
	float big[64] = {0};
	png_grid_write(tp("big.png"), big, 1, 1, 8, 8, 1, 0, 0.0f, 1.0f, err, sizeof err);
	DatasetSpec sz = {.kind = DATASET_CAPTIONS, .captions_file = put("sz.jsonl",
		"{\"image\": \"im0.png\", \"caption\": \"a\"}\n{\"image\": \"big.png\", \"caption\": \"b\"}\n"
		"{\"image\": \"im1.png\", \"caption\": \"c\"}\n")};
	rc = load(&sz, &ds, err, sizeof err);
	CHECK_MSG(rc, err, "big.png: 8x8, but the first image is 6x4");

	if (!have_fm) {
		printf("note: fashion-mnist not installed, index captions skipped\n");
		return;
	}
	/* index lines over Fashion-MNIST */
	DatasetSpec si = {.kind = DATASET_CAPTIONS, .captions_file = put("idx.jsonl",
		"{\"image\": 0, \"caption\": \"an ankle boot\"}\n{\"image\": 1, \"caption\": \"a top\"}\n"
		"{\"image\": 59999, \"caption\": \"the last one\"}\n")};
	rc = load(&si, &ds, err, sizeof err);
	CHECK(rc == 0, "index captions: %s", err);
	if (rc == 0) {
		CHECK(ds->train.n == 3 && ds->n_captions == 3 && ds->test.n == 10000, "sizes %d %d",
		      ds->train.n, ds->test.n);
		CHECK(ds->train.y[0] == 9 && strcmp(ds->captions[2], "the last one") == 0, "content");
		CHECK(ds->num_classes == 10, "classes");
		dataset_free(ds);
	}
	DatasetSpec so = {.kind = DATASET_CAPTIONS, .captions_file = put("oob.jsonl",
		"{\"image\": 60000, \"caption\": \"too far\"}\n")};
	rc = load(&so, &ds, err, sizeof err);
	CHECK_MSG(rc, err, "oob.jsonl:1: image index 60000 outside the 60000 Fashion-MNIST training images");
	/* no captions file: templated captions from the class names */
	DatasetSpec sy = {.kind = DATASET_CAPTIONS, .limit_train = 100};
	rc = load(&sy, &ds, err, sizeof err);
	CHECK(rc == 0, "synthetic captions: %s", err);
	if (rc == 0) {
		CHECK(ds->train.n == 100 && ds->n_captions == 100, "n %d %d", ds->train.n, ds->n_captions);
		CHECK(strcmp(ds->captions[0], "a photo of an ankle boot") == 0, "caption 0 '%s'", ds->captions[0]);
		printf("synthetic captions: '%s', '%s'\n", ds->captions[0], ds->captions[1]);
		dataset_free(ds);
	}
}

int main(void)
{
	tmpdir = test_tmpdir("test-formats");
	if (!tmpdir)
		return 1;
	uint64_t a0 = eng_alloc_count();
	test_csv();
	test_text();
	test_records();
	test_captions();
	CHECK(eng_alloc_count() > a0, "allocations are counted through engine/alloc.h");
	test_rmtree(tmpdir);
	free(tmpdir);
	return check_exit("test_formats");
}
