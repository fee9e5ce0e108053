/* test_loader.c - the prefetching loader (epochs, shuffling, determinism across prefetch depths,
 * thread counts and seeks, shards of a global batch, subsets, partial batches, zero allocation in
 * loader_next, record batches), language-model windows and BERT-style text masking. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../engine/alloc.h"
#include "../../engine/data/loader.h"
#include "../../engine/data/text_mask.h"
#include "check.h"

enum { NS = 1000, HH = 8, WW = 8, SF = HH * WW };

/* A synthetic in-memory dataset: sample i's pixels encode i, label i % 10. */
static void make_ds(Dataset *ds, Split *sp)
{
	memset(ds, 0, sizeof *ds);
	ds->kind = DATASET_IDX;
	ds->c = 1;
	ds->h = HH;
	ds->w = WW;
	ds->sample_floats = SF;
	ds->num_classes = 10;
	sp->n = NS;
	sp->x = malloc((size_t)NS * SF * sizeof(float));
	sp->y = malloc(NS * sizeof(int));
	for (int i = 0; i < NS; i++) {
		sp->y[i] = i % 10;
		for (int k = 0; k < SF; k++)
			sp->x[i * SF + k] = (float)((i * 13 + k * 7) % 97) / 96.0f;
	}
	ds->train = *sp;
}

/* Whole epoch's contents, concatenated, for comparisons. */
typedef struct Run {
	int n;
	int *idx;
	float *v0, *v1;
} Run;

static int run_epoch(const LoaderConfig *lc, int epoch, Run *out, int seek_batch)
{
	Loader *ld;
	char err[256];
	if (loader_new(lc, &ld, err, sizeof err) < 0) {
		fprintf(stderr, "loader_new: %s\n", err);
		return -1;
	}
	loader_seek(ld, epoch, seek_batch);
	int cap = NS;
	out->n = 0;
	out->idx = malloc(cap * sizeof(int));
	out->v0 = malloc((size_t)cap * SF * sizeof(float));
	out->v1 = malloc((size_t)cap * SF * sizeof(float));
	const Batch *b;
	int expect_index = seek_batch;
	while ((b = loader_next(ld)) != NULL) {
		CHECK(b->epoch == epoch && b->index == expect_index, "batch %d/%d, want %d/%d", b->epoch,
		      b->index, epoch, expect_index);
		expect_index++;
		memcpy(out->idx + out->n, b->idx, b->n * sizeof(int));
		memcpy(out->v0 + (size_t)out->n * SF, b->view[0], (size_t)b->n * SF * sizeof(float));
		if (lc->views == 2)
			memcpy(out->v1 + (size_t)out->n * SF, b->view[1], (size_t)b->n * SF * sizeof(float));
		for (int i = 0; i < b->n; i++)
			CHECK(b->y[i] == b->idx[i] % 10, "label of %d", b->idx[i]);
		out->n += b->n;
	}
	loader_free(ld);
	return 0;
}

static void run_free(Run *r)
{
	free(r->idx);
	free(r->v0);
	free(r->v1);
}

static int run_same(const Run *a, const Run *b, int views)
{
	return a->n == b->n && memcmp(a->idx, b->idx, a->n * sizeof(int)) == 0 &&
	       memcmp(a->v0, b->v0, (size_t)a->n * SF * sizeof(float)) == 0 &&
	       (views < 2 || memcmp(a->v1, b->v1, (size_t)a->n * SF * sizeof(float)) == 0);
}

static void test_epochs(Dataset *ds)
{
	AugConfig aug;
	aug_config_default_simclr(&aug);
	LoaderConfig lc = {.ds = ds, .split = &ds->train, .batch = 64, .views = 2, .aug = {&aug, &aug},
	                   .seed = 7, .shuffle = 1, .drop_last = 0, .prefetch = 0, .aug_threads = 1};
	Run base, r;
	if (run_epoch(&lc, 0, &base, 0) < 0) {
		CHECK(0, "loader_new failed");
		return;
	}
	/* every sample exactly once, shuffled */
	CHECK(base.n == NS, "epoch has %d samples", base.n);
	int *seen = calloc(NS, sizeof(int)), inorder = 0;
	for (int i = 0; i < base.n; i++) {
		seen[base.idx[i]]++;
		inorder += base.idx[i] == i;
	}
	int ok = 1;
	for (int i = 0; i < NS; i++)
		ok &= seen[i] == 1;
	CHECK(ok, "not a permutation");
	CHECK(inorder < 20, "not shuffled (%d in place)", inorder);
	free(seen);
	/* the same batches whatever the prefetch depth and thread count */
	int depths[3] = {2, 3, 2}, threads[3] = {1, 1, 3};
	for (int k = 0; k < 3; k++) {
		lc.prefetch = depths[k];
		lc.aug_threads = threads[k];
		run_epoch(&lc, 0, &r, 0);
		CHECK(run_same(&base, &r, 2), "prefetch %d threads %d changes the batches", depths[k], threads[k]);
		run_free(&r);
	}
	/* epoch 1 differs from epoch 0; seeking into epoch 1 reproduces its tail */
	lc.prefetch = 2;
	lc.aug_threads = 2;
	Run e1, tail;
	run_epoch(&lc, 1, &e1, 0);
	CHECK(memcmp(e1.idx, base.idx, NS * sizeof(int)) != 0, "epoch 1 has epoch 0's order");
	run_epoch(&lc, 1, &tail, 3);
	CHECK(tail.n == NS - 3 * 64 && memcmp(tail.idx, e1.idx + 3 * 64, tail.n * sizeof(int)) == 0 &&
	      memcmp(tail.v0, e1.v0 + (size_t)3 * 64 * SF, (size_t)tail.n * SF * sizeof(float)) == 0,
	      "seek(1, 3) is not the tail of epoch 1");
	run_free(&e1);
	run_free(&tail);
	/* a different seed, a different epoch */
	lc.seed = 8;
	run_epoch(&lc, 0, &r, 0);
	CHECK(memcmp(r.idx, base.idx, NS * sizeof(int)) != 0, "seed ignored");
	run_free(&r);
	/* two views differ; views come from the right samples (identity aug: exact copies) */
	CHECK(memcmp(base.v0, base.v1, (size_t)NS * SF * sizeof(float)) != 0, "views identical");
	lc.aug[0] = lc.aug[1] = NULL;
	lc.views = 1;
	lc.shuffle = 0;
	run_epoch(&lc, 0, &r, 0);
	ok = r.n == NS;
	for (int i = 0; i < r.n && ok; i++)
		ok = r.idx[i] == i && memcmp(r.v0 + (size_t)i * SF, ds->train.x + (size_t)i * SF, SF * sizeof(float)) == 0;
	CHECK(ok, "unshuffled identity views are not the samples in order");
	run_free(&r);
	run_free(&base);
}

/* Data parallelism: shard r of 3 holds positions [r*b, (r+1)*b) of every global batch, augmented
 * exactly as the whole batch's (samples are seeded by their global position); the shards' batches
 * interleaved are the whole epoch. A shard that does not divide the batch is refused. */
static void test_shards(Dataset *ds)
{
	AugConfig aug;
	aug_config_default_simclr(&aug);
	LoaderConfig lc = {.ds = ds, .split = &ds->train, .batch = 48, .views = 2, .aug = {&aug, &aug},
	                   .seed = 5, .shuffle = 1, .drop_last = 1, .prefetch = 2, .aug_threads = 2};
	Run whole, part[3];
	run_epoch(&lc, 1, &whole, 2);
	int ok = 1;
	for (int r = 0; r < 3; r++) {
		lc.shard = r;
		lc.shards = 3;
		run_epoch(&lc, 1, &part[r], 2);
		ok &= part[r].n * 3 == whole.n;
	}
	CHECK(ok && whole.n == (NS / 48 - 2) * 48, "shard sizes %d %d %d of %d", part[0].n, part[1].n,
	      part[2].n, whole.n);
	for (int bi = 0; ok && bi < whole.n / 48; bi++)
		for (int r = 0; r < 3; r++) {
			size_t at = (size_t)bi * 48 + (size_t)r * 16, mine = (size_t)bi * 16;
			ok &= memcmp(whole.idx + at, part[r].idx + mine, 16 * sizeof(int)) == 0 &&
			      memcmp(whole.v0 + at * SF, part[r].v0 + mine * SF, 16 * SF * sizeof(float)) == 0 &&
			      memcmp(whole.v1 + at * SF, part[r].v1 + mine * SF, 16 * SF * sizeof(float)) == 0;
		}
	CHECK(ok, "the shards' batches are not slices of the whole batches");
	for (int r = 0; r < 3; r++)
		run_free(&part[r]);
	run_free(&whole);
	Loader *ld;
	char err[256];
	lc.batch = 50;
	CHECK(loader_new(&lc, &ld, err, sizeof err) == -EINVAL && strstr(err, "divisible by 3"), "%s",
	      err);
}

static void test_loop_and_allocs(Dataset *ds)
{
	AugConfig aug;
	aug_config_default_simclr(&aug);
	int *sub = malloc(300 * sizeof(int));
	for (int i = 0; i < 300; i++)
		sub[i] = i * 3;
	LoaderConfig lc = {.ds = ds, .split = &ds->train, .indices = sub, .n = 300, .batch = 64, .views = 2,
	                   .aug = {&aug, NULL}, .seed = 1, .shuffle = 1, .drop_last = 1, .prefetch = 3,
	                   .aug_threads = 2};
	Loader *ld;
	char err[256];
	int rc = loader_new(&lc, &ld, err, sizeof err);
	CHECK(rc == 0, "loader_new: %s", err);
	if (rc < 0)
		return;
	CHECK(loader_batches_per_epoch(ld) == 4, "bpe %d", loader_batches_per_epoch(ld));
	uint64_t a0 = eng_alloc_count();
	int batches = 0, nulls = 0, bad = 0;
	for (int step = 0; step < 3 * 5; step++) {   /* 3 epochs: 4 batches + a NULL each */
		const Batch *b = loader_next(ld);
		if (!b) {
			nulls++;
			continue;
		}
		batches++;
		bad += b->n != 64;
		for (int i = 0; i < b->n; i++)
			bad += b->idx[i] % 3 != 0 || b->idx[i] >= 900;
	}
	CHECK(eng_alloc_count() == a0, "loader_next allocated %llu times",
	      (unsigned long long)(eng_alloc_count() - a0));
	CHECK(batches == 12 && nulls == 3 && bad == 0, "batches %d nulls %d bad %d", batches, nulls, bad);
	CHECK(loader_wait_seconds(ld) >= 0.0, "wait");
	loader_free(ld);
	/* partial last batch without drop_last; synchronous mode reports its preparation as waiting */
	lc.drop_last = 0;
	lc.prefetch = 0;
	lc.aug_threads = 1;
	rc = loader_new(&lc, &ld, err, sizeof err);
	CHECK(rc == 0 && loader_batches_per_epoch(ld) == 5, "bpe without drop_last");
	int last = 0;
	const Batch *b;
	while ((b = loader_next(ld)) != NULL)
		last = b->n;
	CHECK(last == 300 - 4 * 64, "last batch %d", last);
	CHECK(loader_wait_seconds(ld) > 0.0, "synchronous wait not counted");
	loader_free(ld);
	loader_free(NULL);
	/* bad configurations */
	LoaderConfig bad_cfg = lc;
	bad_cfg.batch = 0;
	CHECK_MSG(loader_new(&bad_cfg, &ld, err, sizeof err), err, "batch must be > 0");
	bad_cfg = lc;
	bad_cfg.batch = 400;
	bad_cfg.drop_last = 1;
	CHECK_MSG(loader_new(&bad_cfg, &ld, err, sizeof err), err, "larger than the 300 samples");
	bad_cfg = lc;
	sub[7] = NS;
	CHECK_MSG(loader_new(&bad_cfg, &ld, err, sizeof err), err, "indices[7] = 1000 outside");
	bad_cfg.views = 3;
	CHECK_MSG(loader_new(&bad_cfg, &ld, err, sizeof err), err, "views must be");
	free(sub);
}

static void test_records(void)
{
	/* a tiny TEXT_RECORDS dataset built in memory */
	Dataset ds;
	memset(&ds, 0, sizeof ds);
	ds.kind = DATASET_TEXT_RECORDS;
	ds.record_bytes = 6;
	ds.num_classes = 2;
	uint8_t rec[5 * 6] = "abc\0\0\0hello\0xy\0\0\0\0qqqqqqz\0\0\0\0\0";
	int len[5] = {3, 5, 2, 6, 1}, y[5] = {0, 1, 0, 1, 1};
	ds.rec_train = rec;
	ds.rec_train_len = len;
	ds.train.y = y;
	ds.train.n = 5;
	LoaderConfig lc = {.ds = &ds, .split = &ds.train, .batch = 2, .seed = 3, .shuffle = 0, .prefetch = 2};
	Loader *ld;
	char err[256];
	int rc = loader_new(&lc, &ld, err, sizeof err);
	CHECK(rc == 0, "records loader: %s", err);
	if (rc == 0) {
		const Batch *b = loader_next(ld);
		CHECK(b && b->tokens && b->T == 6 && b->view[0] == NULL, "token batch");
		if (b) {
			CHECK(b->tokens[6 + 0] == 'h' && b->tokens[6 + 4] == 'o' && b->tokens[6 + 5] == 0 &&
			      b->tokens_len[1] == 5 && b->y[1] == 1, "second record");
		}
		loader_free(ld);
	}
	/* a slice of the records (as dataset_val_slice makes) still finds its rows */
	Split tail = {.x = NULL, .y = y + 3, .n = 2};
	lc.split = &tail;
	rc = loader_new(&lc, &ld, err, sizeof err);
	CHECK(rc == 0, "records slice: %s", err);
	if (rc == 0) {
		const Batch *b = loader_next(ld);
		CHECK(b && b->n == 2 && b->tokens[0] == 'q' && b->tokens[6] == 'z' && b->tokens_len[1] == 1,
		      "slice rows");
		loader_free(ld);
	}
	lc.views = 1;
	CHECK_MSG(loader_new(&lc, &ld, err, sizeof err), err, "cannot be augmented");
}

static void test_windows(void)
{
	const char *txt = "the quick brown fox jumps over the lazy dog";
	size_t len = strlen(txt);
	int x[4 * 8], y[4 * 8], x2[4 * 8], y2[4 * 8];
	Rng r, r2;
	rng_seed(&r, 5);
	rng_seed(&r2, 5);
	CHECK(text_windows((const uint8_t *)txt, len, 4, 8, &r, x, y) == 0, "windows");
	text_windows((const uint8_t *)txt, len, 4, 8, &r2, x2, y2);
	CHECK(memcmp(x, x2, sizeof x) == 0 && memcmp(y, y2, sizeof y) == 0, "not reproducible");
	for (int b = 0; b < 4; b++) {
		const char *at = NULL;
		for (size_t s = 0; s + 9 <= len && !at; s++) {
			int ok = 1;
			for (int t = 0; t < 8; t++)
				ok &= x[b * 8 + t] == (unsigned char)txt[s + t] && y[b * 8 + t] == (unsigned char)txt[s + t + 1];
			if (ok)
				at = txt + s;
		}
		CHECK(at != NULL, "window %d is not T+1 consecutive bytes of the text", b);
	}
	/* coverage: every start offset, including the last, appears */
	int hits[64] = {0};
	const char *s5 = "abcdefghij";   /* T = 4: starts 0..5 */
	for (int i = 0; i < 600; i++) {
		int xa[4], ya[4];
		text_windows((const uint8_t *)s5, 10, 1, 4, &r, xa, ya);
		hits[xa[0] - 'a']++;
		CHECK(ya[3] - 'a' <= 9, "past the end");
	}
	CHECK(hits[0] > 50 && hits[5] > 50 && hits[6] == 0, "start coverage %d %d %d", hits[0], hits[5], hits[6]);
	CHECK(text_windows((const uint8_t *)s5, 4, 1, 4, &r, x, y) == -EINVAL, "too short accepted");
	int n = text_windows_at((const uint8_t *)s5, 10, 4, 0, 4, x, y);
	CHECK(n == 2 && x[0] == 'a' && y[3] == 'e' && x[4] == 'e' && y[7] == 'i', "sequential windows %d", n);
}

static void test_mask(void)
{
	TextMaskConfig mc;
	text_mask_config_default(&mc);
	enum { T = 100000 };
	int *ids = malloc(T * sizeof(int)), *out = malloc(T * sizeof(int)), *tg = malloc(T * sizeof(int));
	uint8_t *mask = malloc(T);
	Rng r;
	rng_seed(&r, 17);
	for (int i = 0; i < T; i++)
		ids[i] = 32 + (int)rng_below(&r, 90);
	int sel = text_mask_apply(&mc, &r, ids, T, out, tg, mask);
	int nmask = 0, nrand = 0, nkeep = 0, bad = 0;
	for (int i = 0; i < T; i++) {
		if (!mask[i]) {
			bad += tg[i] != -1 || out[i] != ids[i];
			continue;
		}
		bad += tg[i] != ids[i];
		if (out[i] == mc.mask_id)
			nmask++;
		else if (out[i] == ids[i])
			nkeep++;   /* includes the rare random draw of the same token */
		else {
			nrand++;
			bad += out[i] < 1 || out[i] >= 256;
		}
	}
	double fs = (double)sel / T, fm = (double)nmask / sel, fr = (double)nrand / sel, fk = (double)nkeep / sel;
	printf("text mask: selected %.4f, mask %.3f random %.3f keep %.3f\n", fs, fm, fr, fk);
	CHECK(bad == 0, "%d inconsistent positions", bad);
	CHECK(fabs(fs - 0.15) < 0.005 && fabs(fm - 0.8) < 0.015 && fabs(fr - 0.1) < 0.01 && fabs(fk - 0.1) < 0.01,
	      "proportions %g %g %g %g", fs, fm, fr, fk);
	/* padding never selected; at least one target per sequence; separate mask id never random */
	mc.pad_id = 0;
	mc.mask_id = 256;
	mc.vocab = 257;
	int seq[10] = {65, 66, 0, 0, 0, 0, 0, 0, 0, 0};
	int none = 0;
	for (int k = 0; k < 500; k++) {
		int s = text_mask_apply(&mc, &r, seq, 10, out, tg, mask);
		none += s == 0;
		for (int i = 2; i < 10; i++)
			CHECK(mask[i] == 0 && out[i] == 0, "pad selected");
		for (int i = 0; i < 2; i++)
			CHECK(out[i] >= 0 && out[i] <= 256, "id range");
	}
	CHECK(none == 0, "%d sequences without a target", none);
	for (int i = 0; i < T; i++)
		ids[i] = 5;
	mc.select_p = 1.0f;
	mc.p_mask = 0.0f;
	mc.p_random = 1.0f;
	mc.pad_id = -1;
	text_mask_apply(&mc, &r, ids, T, ids, tg, NULL);   /* in place */
	int hit_mask = 0, in_range = 1;
	for (int i = 0; i < T; i++) {
		hit_mask += ids[i] == 256;
		in_range &= ids[i] >= 1 && ids[i] < 256;
	}
	CHECK(hit_mask == 0 && in_range && tg[0] == 5, "random replacements hit the mask id %d times", hit_mask);
	free(ids);
	free(out);
	free(tg);
	free(mask);
}

int main(void)
{
	Dataset ds;
	Split sp;
	make_ds(&ds, &sp);
	test_epochs(&ds);
	test_shards(&ds);
	test_loop_and_allocs(&ds);
	free(sp.x);
	free(sp.y);
	test_records();
	test_windows();
	test_mask();
	return check_exit("test_loader");
}
