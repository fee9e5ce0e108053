/* test_image_folder.c - folder scanning, manifests, the stratified split, the decode cache (hit,
 * stale after an mtime change, corrupt header or pixels rebuilt, a bad image leaves the old cache
 * alone, bad files skipped within max_skipped, two openers at once decode once), image_folder_load
 * end to end (class selection, skips and the cache reported as notes), and the CIFAR-10/100 and
 * STL-10 readers on synthetic files.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../engine/alloc.h"
#include "../../engine/data/cifar_stl.h"
#include "../../engine/data/decode_cache.h"
#include "../../engine/data/image_dataset.h"
#include "../../engine/data/image_folder.h"
#include "check.h"
#include "support.h"
#include "img_fixtures.h"

static char dir[256];
/* dir/name (support.h: valid for the next 63 paths) */
static const char *P(const char *name) { return test_path(dir, name); }

static void mkdirs(const char *rel)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	for (char *s = path + strlen(dir) + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(path, 0755);
			*s = '/';
		}
	mkdir(path, 0755);
}

static int shade;
static unsigned px_shade(int x, int y, int c) { (void)x; (void)y; return (unsigned)(shade + c * 20) & 255; }
static void img(const char *rel, int v)
{
	shade = v;
	const char *p = P(rel);
	if (strstr(rel, ".png"))
		fx_png(p, 12, 10, PNG_COLOR_TYPE_RGB, 8, 0, px_shade);
	else
		fx_jpeg(p, 12, 10, 3, 1, 0, px_shade);
}

/* ---------------------------------------------------------------------------------------------- */

static void test_scan(void)
{
	char err[512];
	ImgList l;
	/* labelled: cat (3, one nested), dog (2); a text file and a hidden file are ignored */
	mkdirs("lab/cat/deep/er");
	mkdirs("lab/dog");
	img("lab/cat/a.png", 10);
	img("lab/cat/b.JPG", 20);
	img("lab/cat/deep/er/c.png", 30);
	img("lab/dog/d.png", 40);
	img("lab/dog/e.jpeg", 50);
	fx_write(P("lab/dog/readme.txt"), "x", 1);
	fx_write(P("lab/dog/.hidden.png"), "x", 1);
	int rc = img_folder_scan(P("lab"), NULL, NULL, NULL, &l, err, sizeof err);
	CHECK(rc == 0 && l.n == 5 && l.num_classes == 2, "labelled scan: rc=%d n=%d k=%d %s", rc, l.n,
	      l.num_classes, err);
	if (rc == 0) {
		CHECK(strcmp(l.classes[0], "cat") == 0 && strcmp(l.classes[1], "dog") == 0, "class order");
		CHECK(l.entries[0].label == 0 && l.entries[2].label == 0 && l.entries[3].label == 1,
		      "labels");
		CHECK(strstr(img_list_path(&l, 2), "cat/deep/er/c.png") != NULL, "nested file in class: %s",
		      img_list_path(&l, 2));
		/* a test folder reuses the training classes; an unknown class folder is an error */
		mkdirs("labtest/dog");
		mkdirs("labtest/cow");
		img("labtest/dog/x.png", 1);
		img("labtest/cow/y.png", 1);
		ImgList t;
		rc = img_folder_scan(P("labtest"), &l, NULL, NULL, &t, err, sizeof err);
		CHECK_MSG(rc, err, "labtest/cow: no class folder of that name in the training folder");
		unlink(P("labtest/cow/y.png"));
		rmdir(P("labtest/cow"));
		rc = img_folder_scan(P("labtest"), &l, NULL, NULL, &t, err, sizeof err);
		CHECK(rc == 0 && t.n == 1 && t.entries[0].label == 1 && t.num_classes == 2,
		      "test folder with one known class: %s", err);
		img_list_free(&t);
		img_list_free(&l);
	}
	CHECK(img_folder_has_classes(P("lab")) == 1 && img_folder_has_classes(P("nowhere")) == -ENOENT,
	      "has_classes");
	/* unlabelled: no subfolders */
	mkdirs("flat");
	img("flat/1.png", 1);
	img("flat/2.jpg", 2);
	rc = img_folder_scan(P("flat"), NULL, NULL, NULL, &l, err, sizeof err);
	CHECK(rc == 0 && l.n == 2 && l.num_classes == 0 && l.entries[0].label == -1, "flat: %s", err);
	CHECK(img_folder_has_classes(P("flat")) == 0, "flat has no classes");
	img_list_free(&l);
	/* the errors */
	mkdirs("emptyclass/a");
	mkdirs("emptyclass/b");
	img("emptyclass/a/1.png", 1);
	rc = img_folder_scan(P("emptyclass"), NULL, NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "emptyclass/b: empty class folder");
	mkdirs("single/only");
	img("single/only/1.png", 1);
	rc = img_folder_scan(P("single"), NULL, NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "only one class folder (only)");
	mkdirs("loop/a/b");
	img("loop/a/1.png", 1);
	mkdirs("loop/c");
	img("loop/c/2.png", 1);
	CHECK(symlink("../../a", P("loop/a/b/up")) == 0, "symlink");
	rc = img_folder_scan(P("loop"), NULL, NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "loop/a/b/up: symlink loop");
	CHECK(symlink("self", P("loop/c/self")) == 0, "symlink");
	rc = img_folder_scan_unlabelled(P("loop/c"), NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "loop/c/self: symlink loop");
	mkdirs("beside/a");
	mkdirs("beside/b");
	img("beside/a/1.png", 1);
	img("beside/b/1.png", 1);
	img("beside/stray.png", 1);
	rc = img_folder_scan(P("beside"), NULL, NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "1 image files beside the class folders");
	mkdirs("noimages");
	rc = img_folder_scan(P("noimages"), NULL, NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "noimages: no .jpg, .jpeg or .png files");
	rc = img_folder_scan(P("nowhere"), NULL, NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "nowhere: No such file or directory");
	if (geteuid() != 0) {
		mkdirs("locked/a");
		chmod(P("locked"), 0);
		rc = img_folder_scan(P("locked"), NULL, NULL, NULL, &l, err, sizeof err);
		CHECK_MSG(rc, err, "locked: cannot open: Permission denied");
		chmod(P("locked"), 0755);
	}
	/* unlabelled scan of a labelled tree: everything, label -1 */
	rc = img_folder_scan_unlabelled(P("lab"), NULL, NULL, &l, err, sizeof err);
	CHECK(rc == 0 && l.n == 5 && l.entries[4].label == -1, "unlabelled tree: %s", err);
	img_list_free(&l);
}

static long scan_calls, scan_last;
static void on_scan(void *u, long files) { (void)u; scan_calls++; scan_last = files; }

/* Many files: the list grows by doubling and holds nothing else (a million files cost their
 * paths and 16 bytes each); progress arrives every 10,000 files. */
static void test_many_files(void)
{
	char err[512];
	mkdirs("many");
	const int n = 25000;
	for (int i = 0; i < n; i++) {
		char nm[64];
		snprintf(nm, sizeof nm, "many/%06d.png", i);
		int fd = open(P(nm), O_CREAT | O_WRONLY, 0644);
		if (fd >= 0)
			close(fd);
	}
	ImgList l;
	scan_calls = 0;
	int rc = img_folder_scan(P("many"), NULL, on_scan, NULL, &l, err, sizeof err);
	CHECK(rc == 0 && l.n == n, "many: rc=%d n=%d %s", rc, l.n, err);
	CHECK(scan_calls == 3 && scan_last == n, "progress at 10000, 20000 and the end: %ld calls",
	      scan_calls);
	CHECK(l.cap <= 2 * l.n && l.names_cap <= 2 * l.names_len + 65536,
	      "list memory: %d entries for %d, %zu name bytes for %zu", l.cap, l.n, l.names_cap,
	      l.names_len);
	CHECK(rc == 0 && strcmp(img_list_path(&l, n - 1) + strlen(img_list_path(&l, n - 1)) - 10,
	                        "024999.png") == 0, "sorted");
	img_list_free(&l);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s/many'", dir);
	CHECK(system(cmd) == 0, "cleanup");
}

static void test_manifest(void)
{
	char err[512];
	ImgList l;
	mkdirs("man/imgs");
	img("man/imgs/a.png", 1);
	img("man/imgs/b.png", 2);
	img("man/imgs/c.png", 3);
	img("man/imgs/d.png", 4);
	const char *csv = "path,label,split\nimgs/a.png,cat,train\n\"imgs/b.png\",dog,test\n"
	                  "imgs/c.png,cat\nimgs/d.png,,unlabeled\n";
	fx_write(P("man/m.csv"), csv, strlen(csv));
	scan_calls = 0;
	int rc = img_manifest_read(P("man/m.csv"), on_scan, NULL, &l, err, sizeof err);
	CHECK(rc == 0 && l.n == 4 && l.num_classes == 2, "csv manifest: rc=%d n=%d %s", rc, l.n, err);
	if (rc == 0) {
		CHECK(l.entries[0].label == 0 && l.entries[1].label == 1 && l.entries[2].label == 0 &&
		      l.entries[3].label == -1, "csv labels");
		CHECK(l.entries[0].split == IMG_SPLIT_TRAIN && l.entries[1].split == IMG_SPLIT_TEST &&
		      l.entries[2].split == IMG_SPLIT_ANY && l.entries[3].split == IMG_SPLIT_UNLABELED,
		      "csv splits");
		CHECK(scan_calls >= 1 && scan_last == 4, "progress: %ld calls, last %ld", scan_calls, scan_last);
		int *tr, *te, ntr, nte;
		rc = img_list_split(&l, 0.0, 1, &tr, &ntr, &te, &nte, err, sizeof err);
		CHECK(rc == 0 && ntr == 3 && nte == 1 && te[0] == 1, "manifest split kept");
		eng_free(tr);
		eng_free(te);
		img_list_free(&l);
	}
	const char *jl = "{\"path\": \"imgs/a.png\", \"label\": 3}\n\n{\"label\": 5, \"path\": \"imgs/b.png\", \"split\": null}\n";
	fx_write(P("man/m.jsonl"), jl, strlen(jl));
	rc = img_manifest_read(P("man/m.jsonl"), NULL, NULL, &l, err, sizeof err);
	CHECK(rc == 0 && l.n == 2 && l.num_classes == 2 && strcmp(l.classes[0], "3") == 0 &&
	      l.entries[1].label == 1, "jsonl: %s", err);
	img_list_free(&l);
	/* errors name the manifest and the line */
	const char *miss = "imgs/a.png,cat\nimgs/zzz.png,dog\n";
	fx_write(P("man/miss.csv"), miss, strlen(miss));
	rc = img_manifest_read(P("man/miss.csv"), NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "miss.csv line 2:");
	CHECK_MSG(rc, err, "imgs/zzz.png: No such file or directory");
	const char *out = "imgs/a.png,cat\n../m.csv,dog\n";
	fx_write(P("man/out.csv"), out, strlen(out));
	rc = img_manifest_read(P("man/out.csv"), NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "out.csv line 2: path ../m.csv leaves the manifest's folder");
	const char *abs = "/etc/passwd,cat\n";
	fx_write(P("man/abs.csv"), abs, strlen(abs));
	rc = img_manifest_read(P("man/abs.csv"), NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "abs.csv line 1: path /etc/passwd leaves");
	const char *sp = "imgs/a.png,cat,validation\n";
	fx_write(P("man/sp.csv"), sp, strlen(sp));
	rc = img_manifest_read(P("man/sp.csv"), NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "sp.csv line 1: split must be train, test or unlabeled, got \"validation\"");
	const char *one = "imgs/a.png,cat\nimgs/b.png,cat\n";
	fx_write(P("man/one.csv"), one, strlen(one));
	rc = img_manifest_read(P("man/one.csv"), NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "only one label (cat)");
	const char *badj = "{\"path\": \"imgs/a.png\", \"colour\": \"red\"}\n";
	fx_write(P("man/bad.jsonl"), badj, strlen(badj));
	rc = img_manifest_read(P("man/bad.jsonl"), NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "bad.jsonl line 1: unknown key");
	const char *four = "imgs/a.png,cat,train,extra\n";
	fx_write(P("man/four.csv"), four, strlen(four));
	rc = img_manifest_read(P("man/four.csv"), NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "four.csv line 1: more than 3 fields");
}

static void test_split(void)
{
	char err[512];
	ImgList l = {0};
	l.num_classes = 2;
	/* 20 of class 0, 10 of class 1, 10 unlabelled: 10% -> 2 + 1 + 1 in test */
	l.names = eng_malloc(1);
	l.names[0] = '\0';
	l.entries = eng_malloc(sizeof(ImgEntry) * 40);
	for (int i = 0; i < 40; i++)
		l.entries[i] = (ImgEntry){ 0, i < 20 ? 0 : i < 30 ? 1 : -1, IMG_SPLIT_ANY };
	l.n = 40;
	int *tr, *te, ntr, nte, *tr2, *te2, ntr2, nte2;
	int rc = img_list_split(&l, 0.1, 7, &tr, &ntr, &te, &nte, err, sizeof err);
	CHECK(rc == 0 && ntr == 36 && nte == 4, "split sizes %d %d", ntr, nte);
	int per[3] = {0};
	for (int i = 0; i < nte; i++)
		per[l.entries[te[i]].label + 1]++;
	CHECK(per[0] == 1 && per[1] == 2 && per[2] == 1, "stratified: %d %d %d", per[0], per[1], per[2]);
	int seen[40] = {0};
	for (int i = 0; i < ntr; i++)
		seen[tr[i]]++;
	for (int i = 0; i < nte; i++)
		seen[te[i]]++;
	int ok = 1;
	for (int i = 0; i < 40; i++)
		ok &= seen[i] == 1;
	CHECK(ok, "train and test partition the list");
	rc = img_list_split(&l, 0.1, 7, &tr2, &ntr2, &te2, &nte2, err, sizeof err);
	CHECK(rc == 0 && nte2 == nte && memcmp(te, te2, sizeof(int) * nte) == 0, "same seed, same split");
	eng_free(tr2);
	eng_free(te2);
	rc = img_list_split(&l, 0.1, 8, &tr2, &ntr2, &te2, &nte2, err, sizeof err);
	CHECK(rc == 0 && memcmp(te, te2, sizeof(int) * nte) != 0, "another seed, another split");
	eng_free(tr2);
	eng_free(te2);
	rc = img_list_split(&l, 1.0, 7, &tr2, &ntr2, &te2, &nte2, err, sizeof err);
	CHECK_MSG(rc, err, "test_fraction must be in [0, 1), got 1");
	eng_free(tr);
	eng_free(te);
	img_list_free(&l);
}

/* ---------------------------------------------------------------------------------------------- */

static int progress_calls, progress_last;
static void on_progress(void *u, int done, int total) { (void)u; (void)total; progress_calls++; progress_last = done; }

static void flip_byte(const char *path, long off)
{
	int fd = open(path, O_RDWR);
	uint8_t b = 0;
	int got = fd >= 0 && pread(fd, &b, 1, off) == 1;
	CHECK(got, "open %s", path);
	if (!got) {
		if (fd >= 0)
			close(fd);
		return;
	}
	b ^= 0xff;
	CHECK(pwrite(fd, &b, 1, off) == 1, "write");
	close(fd);
}

static void test_cache(void)
{
	char err[512];
	ImgList l;
	CHECK(img_folder_scan(P("lab"), NULL, NULL, NULL, &l, err, sizeof err) == 0, "%s", err);
	ImgCacheConfig cc = { .path = P("pix.cache"), .channels = 3, .size = 8,
	                      .resize = IMG_RESIZE_SHORTER_SIDE, .threads = 3, .progress = on_progress };
	ImgCache c;
	int rc = img_cache_open(&l, &cc, &c, err, sizeof err);
	CHECK(rc == 0 && c.state == IMG_CACHE_BUILT && c.n == 5 && progress_last == 5,
	      "build: rc=%d state=%d progress=%d %s", rc, c.state, progress_last, err);
	uint8_t direct[3 * 8 * 8];
	CHECK(img_load_file(img_list_path(&l, 3), 3, IMG_RESIZE_SHORTER_SIDE, 8, direct, err, sizeof err) == 0, "%s", err);
	CHECK(rc == 0 && memcmp(img_cache_image(&c, 3), direct, sizeof direct) == 0,
	      "cached pixels equal a direct decode");
	img_cache_close(&c);
	progress_calls = 0;
	rc = img_cache_open(&l, &cc, &c, err, sizeof err);
	CHECK(rc == 0 && c.state == IMG_CACHE_HIT && progress_calls == 0, "hit: state=%d decodes=%d",
	      c.state, progress_calls);
	img_cache_close(&c);
	/* other settings: stale */
	cc.size = 9;
	rc = img_cache_open(&l, &cc, &c, err, sizeof err);
	CHECK(rc == 0 && c.state == IMG_CACHE_STALE, "settings changed: state=%d", c.state);
	img_cache_close(&c);
	cc.size = 8;
	rc = img_cache_open(&l, &cc, &c, err, sizeof err);
	CHECK(rc == 0 && c.state == IMG_CACHE_STALE, "settings back: state=%d", c.state);
	img_cache_close(&c);
	/* a file rewritten (new mtime and content): stale, and the new pixels are used */
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1000000000, 0 } };
	img("lab/dog/d.png", 200);
	CHECK(utimensat(AT_FDCWD, img_list_path(&l, 3), ts, 0) == 0, "utimensat");
	rc = img_cache_open(&l, &cc, &c, err, sizeof err);
	CHECK(rc == 0 && c.state == IMG_CACHE_STALE && img_cache_image(&c, 3)[0] == 200,
	      "mtime changed: state=%d first byte %d", c.state, rc == 0 ? img_cache_image(&c, 3)[0] : -1);
	img_cache_close(&c);
	/* corrupt header, then corrupt pixels: rebuilt, never trusted */
	flip_byte(cc.path, 20);
	rc = img_cache_open(&l, &cc, &c, err, sizeof err);
	CHECK(rc == 0 && c.state == IMG_CACHE_CORRUPT, "header corrupt: state=%d", c.state);
	img_cache_close(&c);
	flip_byte(cc.path, 4096 + 3 * 64 + 5);
	rc = img_cache_open(&l, &cc, &c, err, sizeof err);
	CHECK(rc == 0 && c.state == IMG_CACHE_CORRUPT, "pixels corrupt: state=%d", c.state);
	img_cache_close(&c);
	if (truncate(cc.path, 5000) == 0) {
		rc = img_cache_open(&l, &cc, &c, err, sizeof err);
		CHECK(rc == 0 && c.state == IMG_CACHE_CORRUPT, "truncated cache: state=%d", c.state);
		img_cache_close(&c);
	}
	/* a bad image fails the build with its name and leaves the good cache in place */
	fx_write(P("lab/cat/b.JPG"), "garbage!", 8);
	rc = img_cache_open(&l, &cc, &c, err, sizeof err);
	CHECK_MSG(rc, err, "b.JPG: not a JPEG or PNG file");
	img("lab/cat/b.JPG", 20);
	struct stat st;
	CHECK(stat(cc.path, &st) == 0 && st.st_size == 4096 + 5 * (192 + 1), "old cache kept");
	char tmpl[600];
	snprintf(tmpl, sizeof tmpl, "ls %s | grep -q tmp", dir);
	CHECK(system(tmpl) != 0, "no temporary file left behind");
	img_list_free(&l);
}

/* Bad files within max_skipped are left out and counted (the count and the first reason survive a
 * hit); one more than allowed fails naming the first, also when the cache is read. */
static void test_cache_skips(void)
{
	char err[512];
	mkdirs("skip/a");
	mkdirs("skip/b");
	img("skip/a/1.png", 10);
	img("skip/a/2.png", 20);
	img("skip/b/3.png", 30);
	fx_write(P("skip/b/4.png"), "not a png", 9);
	ImgList l;
	CHECK(img_folder_scan(P("skip"), NULL, NULL, NULL, &l, err, sizeof err) == 0, "%s", err);
	ImgCacheConfig cc = { .path = P("skip.cache"), .channels = 3, .size = 8,
	                      .resize = IMG_RESIZE_SHORTER_SIDE, .threads = 2 };
	ImgCache c;
	int rc = img_cache_open(&l, &cc, &c, err, sizeof err);
	CHECK_MSG(rc, err, "4.png: not a JPEG or PNG file");
	CHECK(strstr(err, "dataset.max_skipped") != NULL, "the error says how to skip: %s", err);
	cc.max_skipped = 1;
	rc = img_cache_open(&l, &cc, &c, err, sizeof err);
	CHECK(rc == 0 && c.n_skipped == 1 && c.skipped[3] == 1 && c.skipped[2] == 0 &&
	      strstr(c.first_skip, "skip/b/4.png: not a JPEG or PNG file") != NULL,
	      "skipped within the bound: rc=%d n=%d first=%s %s", rc, rc ? -1 : c.n_skipped,
	      rc ? "" : c.first_skip, err);
	img_cache_close(&c);
	rc = img_cache_open(&l, &cc, &c, err, sizeof err);
	CHECK(rc == 0 && c.state == IMG_CACHE_HIT && c.n_skipped == 1 && c.skipped[3] == 1,
	      "a hit keeps the skips: rc=%d", rc);
	img_cache_close(&c);
	cc.max_skipped = 0;      /* the same cache read by a job that allows none */
	rc = img_cache_open(&l, &cc, &c, err, sizeof err);
	CHECK_MSG(rc, err, "1 image files do not decode, more than dataset.max_skipped = 0 allows; "
	          "the first: ");
	/* two bad files, one allowed: fails, naming the first */
	fx_write(P("skip/a/2.png"), "", 0);
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1000000000, 0 } };
	utimensat(AT_FDCWD, P("skip/a/2.png"), ts, 0);
	cc.max_skipped = 1;
	rc = img_cache_open(&l, &cc, &c, err, sizeof err);
	CHECK_MSG(rc, err, "2 image files do not decode, more than dataset.max_skipped = 1 allows");
	img_list_free(&l);
}

typedef struct Opener {
	const ImgList *l;
	const ImgCacheConfig *cc;
	int rc, state, waited;
	uint8_t first;
} Opener;

static void *open_thread(void *arg)
{
	Opener *o = arg;
	char err[512];
	ImgCache c;
	o->rc = img_cache_open(o->l, o->cc, &c, err, sizeof err);
	if (o->rc == 0) {
		o->state = c.state;
		o->waited = c.waited;
		o->first = img_cache_image(&c, 0)[0];
		img_cache_close(&c);
	}
	return NULL;
}

/* Two jobs opening the same list at once: exactly one decodes, the other reads its cache. */
static void test_cache_concurrent(void)
{
	char err[512];
	ImgList l;
	CHECK(img_folder_scan(P("lab"), NULL, NULL, NULL, &l, err, sizeof err) == 0, "%s", err);
	ImgCacheConfig cc = { .path = P("conc.cache"), .channels = 3, .size = 8,
	                      .resize = IMG_RESIZE_SHORTER_SIDE, .threads = 1 };
	Opener o[2] = { { .l = &l, .cc = &cc }, { .l = &l, .cc = &cc } };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, open_thread, &o[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK(o[0].rc == 0 && o[1].rc == 0, "both open: %d %d", o[0].rc, o[1].rc);
	int built = (o[0].state == IMG_CACHE_BUILT) + (o[1].state == IMG_CACHE_BUILT);
	int hits = (o[0].state == IMG_CACHE_HIT) + (o[1].state == IMG_CACHE_HIT);
	CHECK(built == 1 && hits == 1 && o[0].first == o[1].first,
	      "one built, one hit: states %d %d (waited %d %d)", o[0].state, o[1].state, o[0].waited,
	      o[1].waited);
	img_list_free(&l);
}

static char notes[4096];
static void on_note(void *u, const char *msg)
{
	(void)u;
	size_t at = strlen(notes);
	snprintf(notes + at, sizeof notes - at, "%s\n", msg);
}

/* min_class_images leaves small classes out of train and test; max_skipped through the loader. */
static void test_load_select_and_skip(void)
{
	char err[512];
	mkdirs("sel/train/big1");
	mkdirs("sel/train/big2");
	mkdirs("sel/train/aaa_small");
	mkdirs("sel/test/big1");
	mkdirs("sel/test/big2");
	mkdirs("sel/test/aaa_small");
	for (int i = 0; i < 4; i++) {
		char nm[64];
		snprintf(nm, sizeof nm, "sel/train/big1/%d.png", i);
		img(nm, 10);
		snprintf(nm, sizeof nm, "sel/train/big2/%d.png", i);
		img(nm, 100);
	}
	img("sel/train/aaa_small/0.png", 200);
	img("sel/test/big1/0.png", 10);
	img("sel/test/big2/0.png", 100);
	img("sel/test/aaa_small/0.png", 200);
	fx_write(P("sel/train/big2/bad.png"), "\x89PNG broken", 12);
	mkdirs("sel/cache");
	ImageFolderSpec s = { .train = P("sel/train"), .test = P("sel/test"), .image_size = 8,
	                      .channels = 3, .resize = IMG_RESIZE_STRETCH, .seed = 1,
	                      .min_class_images = 3, .max_skipped = 1, .cache_dir = P("sel/cache"),
	                      .threads = 2, .note = on_note };
	Dataset *ds = eng_calloc(1, sizeof *ds);
	notes[0] = 0;
	int rc = image_folder_load(&s, ds, NULL, err, sizeof err);
	CHECK(rc == 0 && ds->num_classes == 2 && ds->train.n == 8 && ds->test.n == 2 &&
	      strcmp(ds->class_names[1], "big2") == 0,
	      "small class left out, bad file skipped: rc=%d k=%d train %d test %d %s", rc,
	      ds->num_classes, ds->train.n, ds->test.n, err);
	CHECK(strstr(notes, "left out 1 class with fewer than min_class_images = 3 images: aaa_small (1)"),
	      "notes: %s", notes);
	CHECK(strstr(notes, "skipped 1 image file that do not decode") && strstr(notes, "bad.png"),
	      "notes: %s", notes);
	CHECK(strstr(notes, "decode cache: train images: decoded into"), "notes: %s", notes);
	int aligned = rc == 0;      /* big1 is shade 10, big2 shade 100: pixels follow the new ids */
	for (int i = 0; rc == 0 && i < ds->train.n; i++) {
		float v = ds->train.x[(size_t)i * 192];
		aligned &= ds->train.y[i] == (v > 50 / 255.f ? 1 : 0);
	}
	for (int i = 0; rc == 0 && i < ds->test.n; i++)
		aligned &= ds->test.y[i] == (ds->test.x[(size_t)i * 192] > 50 / 255.f ? 1 : 0);
	CHECK(aligned, "labels follow the images after classes were left out and a file skipped");
	dataset_free(ds);
	ds = eng_calloc(1, sizeof *ds);
	notes[0] = 0;
	rc = image_folder_load(&s, ds, NULL, err, sizeof err);
	CHECK(rc == 0 && ds->train.n == 8 && strstr(notes, "decode cache: train images: read decoded "
	      "pixels from") && strstr(notes, "skipped 1 image file"), "second load: %s", notes);
	dataset_free(ds);
	s.min_class_images = 6;
	ds = eng_calloc(1, sizeof *ds);
	rc = image_folder_load(&s, ds, NULL, err, sizeof err);
	CHECK_MSG(rc, err, "0 classes with at least min_class_images = 6 images");
	dataset_free(ds);
}

static void test_image_folder_load(void)
{
	char err[512];
	mkdirs("ds/train/a");
	mkdirs("ds/train/b");
	for (int i = 0; i < 10; i++) {
		char nm[64];
		snprintf(nm, sizeof nm, "ds/train/a/%d.png", i);
		img(nm, 10);
		snprintf(nm, sizeof nm, "ds/train/b/%d.jpg", i);
		img(nm, 100);
	}
	mkdirs("ds/unl/x");
	img("ds/unl/x/1.png", 50);
	mkdirs("ds/cache");
	ImageFolderSpec s = { .train = P("ds/train"), .unlabeled = P("ds/unl"), .image_size = 16,
	                      .channels = 3, .resize = IMG_RESIZE_SHORTER_SIDE, .test_fraction = 0.2,
	                      .seed = 3, .cache_dir = P("ds/cache"), .threads = 2 };
	Dataset *ds = eng_calloc(1, sizeof *ds);
	int states[3];
	int rc = image_folder_load(&s, ds, states, err, sizeof err);
	CHECK(rc == 0 && ds->c == 3 && ds->h == 16 && ds->sample_floats == 768 && ds->num_classes == 2 &&
	      ds->train.n == 17 && ds->test.n == 4, "load: rc=%d train %d test %d %s", rc, ds->train.n,
	      ds->test.n, err);
	CHECK(states[0] == IMG_CACHE_BUILT && states[1] == -1 && states[2] == IMG_CACHE_BUILT,
	      "states %d %d %d", states[0], states[1], states[2]);
	if (rc == 0) {
		CHECK(strcmp(ds->class_names[1], "b") == 0, "class names");
		CHECK(ds->train.y[16] == -1, "unlabelled image appended last");
		int ok = 1;
		for (int i = 0; i < ds->test.n; i++) {
			float v = ds->test.x[(size_t)i * 768];
			ok &= (ds->test.y[i] == 0 && v > 5 / 255.f && v < 15 / 255.f) ||
			      (ds->test.y[i] == 1 && v > 90 / 255.f && v < 110 / 255.f);
		}
		CHECK(ok, "pixels follow their labels");
	}
	dataset_free(ds);
	ds = eng_calloc(1, sizeof *ds);
	rc = image_folder_load(&s, ds, states, err, sizeof err);
	CHECK(rc == 0 && states[0] == IMG_CACHE_HIT && states[2] == IMG_CACHE_HIT, "second load hits");
	dataset_free(ds);
	/* without a cache directory, and grayscale */
	s.cache_dir = NULL;
	s.channels = 1;
	ds = eng_calloc(1, sizeof *ds);
	rc = image_folder_load(&s, ds, states, err, sizeof err);
	CHECK(rc == 0 && ds->c == 1 && ds->sample_floats == 256 && states[0] == -1, "no cache: %s", err);
	dataset_free(ds);
	s.image_size = 4;
	ds = eng_calloc(1, sizeof *ds);
	rc = image_folder_load(&s, ds, NULL, err, sizeof err);
	CHECK_MSG(rc, err, "image_size: must be in [8, 1024], got 4");
	dataset_free(ds);
}

/* ---------------------------------------------------------------------------------------------- */

static void test_cifar_stl(void)
{
	char err[512];
	mkdirs("c10/cifar-10-batches-bin");
	uint8_t rec[3073];
	for (int b = 1; b <= 6; b++) {
		char nm[128];
		if (b <= 5)
			snprintf(nm, sizeof nm, "c10/cifar-10-batches-bin/data_batch_%d.bin", b);
		else
			snprintf(nm, sizeof nm, "c10/cifar-10-batches-bin/test_batch.bin");
		FILE *f = fopen(P(nm), "wb");
		for (int i = 0; i < 3; i++) {
			rec[0] = (uint8_t)((b + i) % 10);
			for (int k = 0; k < 3072; k++)
				rec[1 + k] = (uint8_t)(k / 1024 * 100 + (k % 32));   /* R 0.., G 100.., B 200.. */
			fwrite(rec, 1, sizeof rec, f);
		}
		fclose(f);
	}
	const char *names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
	fx_write(P("c10/cifar-10-batches-bin/batches.meta.txt"), names, strlen(names));
	CifarStlSpec s = { .format = CIFAR_STL_CIFAR10, .dir = P("c10") };
	Dataset *ds = eng_calloc(1, sizeof *ds);
	int rc = cifar_stl_load(&s, ds, err, sizeof err);
	CHECK(rc == 0 && ds->train.n == 15 && ds->test.n == 3 && ds->c == 3 && ds->h == 32 &&
	      ds->sample_floats == 3072 && ds->num_classes == 10, "cifar10: %s", err);
	if (rc == 0) {
		CHECK(ds->train.y[0] == 1 && ds->test.y[2] == 8 && strcmp(ds->class_names[9], "truck") == 0,
		      "cifar10 labels/names");
		CHECK(fabsf(ds->train.x[5] * 255 - 5) < 1e-3f && fabsf(ds->train.x[1024 + 32 + 7] * 255 - 107) < 1e-3f,
		      "cifar10 planes");
	}
	dataset_free(ds);
	FILE *f = fopen(P("c10/cifar-10-batches-bin/test_batch.bin"), "ab");
	fwrite(rec, 1, 100, f);
	fclose(f);
	ds = eng_calloc(1, sizeof *ds);
	rc = cifar_stl_load(&s, ds, err, sizeof err);
	CHECK_MSG(rc, err, "test_batch.bin: 9319 bytes is not a whole number of 3073-byte records");
	dataset_free(ds);
	/* CIFAR-100: fine and coarse labels; names absent -> numbers; a label out of range */
	mkdirs("c100");
	uint8_t r2[3074] = { 3, 57 };
	fx_write(P("c100/train.bin"), r2, sizeof r2);
	fx_write(P("c100/test.bin"), r2, sizeof r2);
	CifarStlSpec s100 = { .format = CIFAR_STL_CIFAR100, .dir = P("c100") };
	ds = eng_calloc(1, sizeof *ds);
	rc = cifar_stl_load(&s100, ds, err, sizeof err);
	CHECK(rc == 0 && ds->num_classes == 100 && ds->train.y[0] == 57 &&
	      strcmp(ds->class_names[57], "57") == 0, "cifar100 fine: %s", err);
	dataset_free(ds);
	s100.coarse_labels = 1;
	ds = eng_calloc(1, sizeof *ds);
	rc = cifar_stl_load(&s100, ds, err, sizeof err);
	CHECK(rc == 0 && ds->num_classes == 20 && ds->train.y[0] == 3, "cifar100 coarse: %s", err);
	dataset_free(ds);
	r2[1] = 100;
	fx_write(P("c100/test.bin"), r2, sizeof r2);
	s100.coarse_labels = 0;
	ds = eng_calloc(1, sizeof *ds);
	rc = cifar_stl_load(&s100, ds, err, sizeof err);
	CHECK_MSG(rc, err, "test.bin: record 0 has label 100, expected 0..99");
	dataset_free(ds);
	/* STL-10: column-major planes, labels 1..10, unlabeled appended with -1 */
	mkdirs("stl/stl10_binary");
	const size_t im = 3 * 96 * 96;
	uint8_t *x = malloc(im * 2);
	for (size_t k = 0; k < im * 2; k++)
		x[k] = (uint8_t)(k % 96);          /* column-major: value = row index y */
	uint8_t y[2] = { 1, 10 };
	fx_write(P("stl/stl10_binary/train_X.bin"), x, im * 2);
	fx_write(P("stl/stl10_binary/train_y.bin"), y, 2);
	fx_write(P("stl/stl10_binary/test_X.bin"), x, im);
	fx_write(P("stl/stl10_binary/test_y.bin"), y, 1);
	fx_write(P("stl/stl10_binary/unlabeled_X.bin"), x, im * 2);
	CifarStlSpec ss = { .format = CIFAR_STL_STL10, .dir = P("stl"), .unlabeled = 1 };
	ds = eng_calloc(1, sizeof *ds);
	rc = cifar_stl_load(&ss, ds, err, sizeof err);
	CHECK(rc == 0 && ds->h == 96 && ds->train.n == 3 && ds->test.n == 1 && ds->train.y[1] == 9 &&
	      ds->train.y[2] == -1, "stl10: %s", err);
	if (rc == 0)   /* (c=0, y=7, x=3) is stored at column-major offset x*96+y, value y = 7 */
		CHECK(fabsf(ds->train.x[7 * 96 + 3] * 255 - 7) < 1e-3f, "stl10 transposed: %f", ds->train.x[7 * 96 + 3] * 255);
	dataset_free(ds);
	fx_write(P("stl/stl10_binary/test_y.bin"), y, 2);
	ds = eng_calloc(1, sizeof *ds);
	rc = cifar_stl_load(&ss, ds, err, sizeof err);
	CHECK_MSG(rc, err, "test_y.bin: 2 labels for the 1 images of test_X.bin");
	dataset_free(ds);
	unlink(P("stl/stl10_binary/test_X.bin"));
	ds = eng_calloc(1, sizeof *ds);
	rc = cifar_stl_load(&ss, ds, err, sizeof err);
	CHECK_MSG(rc, err, "test_X.bin");
	dataset_free(ds);
	free(x);
}

/* Under data roots (the daemon), a class folder that is a symlink out of them is refused. Last:
 * the confinement is process-wide. */
static void test_confined(void)
{
	char err[512];
	mkdirs("conf/root/a");
	mkdirs("conf/outside");
	img("conf/root/a/1.png", 1);
	img("conf/outside/2.png", 2);
	CHECK(symlink("../outside", P("conf/root/b")) == 0, "symlink");
	const char *roots[1] = { P("conf/root") };
	CHECK(dataset_confine(roots, 1) == 0, "confine");
	ImgList l;
	int rc = img_folder_scan(P("conf/root"), NULL, NULL, NULL, &l, err, sizeof err);
	CHECK_MSG(rc, err, "conf/root/b: resolves outside the data roots");
	unlink(P("conf/root/b"));
	mkdirs("conf/root/b");
	CHECK(symlink("../../outside/2.png", P("conf/root/b/2.png")) == 0, "symlink");
	rc = img_folder_scan(P("conf/root"), NULL, NULL, NULL, &l, err, sizeof err);
	CHECK(rc == 0 && l.n == 2, "scan lists the file link: %s", err);
	uint8_t px[3 * 8 * 8];
	rc = img_load_file(P("conf/root/b/2.png"), 3, IMG_RESIZE_STRETCH, 8, px, err, sizeof err);
	CHECK_MSG(rc, err, "2.png: resolves outside the data roots");
	img_list_free(&l);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/ssld-test-imgfolder-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_scan();
	test_manifest();
	test_many_files();
	test_split();
	test_cache();
	test_cache_skips();
	test_cache_concurrent();
	test_image_folder_load();
	test_load_select_and_skip();
	test_cifar_stl();
	test_confined();
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_exit("test_image_folder");
}
