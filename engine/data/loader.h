/* loader.h - batches of (augmented) samples, prepared on a background thread.
 *
 * The loader shuffles indices each epoch with a seeded RNG (epoch e uses seed ^ e, so resume is
 * exact), gathers `batch` samples, applies 0, 1 or 2 augmentation views, and hands out ready
 * batches while the next ones are prepared on a prefetch thread (ring of `depth` buffers).
 * It records how long the consumer waited for data.
 *
 *   LoaderConfig lc = { .ds = ds, .split = &ds->train, .indices = NULL, .n = 0, .batch = 256,
 *                       .views = 2, .aug = {&aug1, &aug2}, .seed = 7, .shuffle = 1,
 *                       .drop_last = 1, .prefetch = 2 };
 *   Loader *ld; loader_new(&lc, &ld, err, sizeof err);
 *   loader_seek(ld, epoch, batch_index);                  // resume point (default 0,0)
 *   const Batch *b;
 *   while ((b = loader_next(ld)) != NULL) { ... b->view[0], b->view[1], b->y, b->n ... }
 *   // NULL at the end of an epoch; the next call starts the next epoch.
 *   loader_free(ld);
 *
 * Every batch is reproducible: sample p of epoch e is augmented from a stream seeded by
 * (seed, e, p), so prefetch depth, aug_threads and seeking do not change what a batch holds.
 * loader_next never allocates (all buffers are made in loader_new) and, with prefetch, only waits
 * when the producer is behind; loader_wait_seconds adds up those waits (with prefetch = 0 it is
 * the whole time spent preparing batches). A split without x that belongs to a TEXT_RECORDS
 * dataset (its train/test or a dataset_val_slice of them) yields token batches (views must be 0).
 * Byte-stream text (DATASET_TEXT) uses text_windows instead.
 */
#ifndef SSLD_DATA_LOADER_H
#define SSLD_DATA_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "augment.h"
#include "dataset.h"

typedef struct LoaderConfig {
	const Dataset *ds;
	const Split *split;
	const int *indices;       /* subset of split (NULL = all) */
	int n;                    /* number of indices (ignored when indices is NULL) */
	int batch;
	int views;                /* 0 = raw samples only in view[0]; 1 or 2 augmented views */
	const AugConfig *aug[2];  /* per view; NULL = identity */
	uint64_t seed;
	int shuffle;
	int drop_last;
	int prefetch;             /* 0 = synchronous, else ring depth (2 or 3) */
	int aug_threads;          /* threads augmenting inside the prefetch stage (default 1) */
	/* Data parallelism (engine/dist.h): with shards > 1, `batch` is the global batch and every
	 * batch holds only shard `shard`'s batch/shards samples, positions [shard*b, (shard+1)*b) of
	 * the global one, augmented exactly as there. Needs drop_last and batch % shards == 0.
	 * 0 or 1 = the whole batch. */
	int shard, shards;
} LoaderConfig;

typedef struct Batch {
	int n;                    /* samples in this batch */
	float *view[2];           /* (n, C, H, W) each; view[0] is raw when views == 0 */
	int *y;                   /* (n) labels */
	int *idx;                 /* (n) sample indices into the split */
	int epoch, index;         /* which epoch and batch within it */
	/* TEXT_RECORDS splits: view[] are NULL; records as token ids instead. */
	int *tokens;              /* (n, T) byte ids, 0-padded; NULL for image/feature splits */
	int *tokens_len;          /* (n) bytes before the padding */
	int T;                    /* ds->record_bytes */
} Batch;

typedef struct Loader Loader;
int loader_new(const LoaderConfig *cfg, Loader **out, char *err, size_t errlen);
/* The next batch (borrowed, valid until the next loader_next), or NULL at an epoch's end. */
const Batch *loader_next(Loader *ld);
void loader_seek(Loader *ld, int epoch, int batch_index);
int loader_batches_per_epoch(const Loader *ld);
double loader_wait_seconds(const Loader *ld);  /* total time loader_next waited for data */
void loader_free(Loader *ld);

/* Language-model batches: B windows of T+1 consecutive bytes at random offsets (uniform
 * over all len-T starts). x (B,T) the first T bytes, y (B,T) the next-byte targets (x shifted by
 * one). 0, or -EINVAL unless len >= T+1. No allocation. */
int text_windows(const uint8_t *text, size_t len, int B, int T, Rng *rng, int *x, int *y);
/* Deterministic, non-overlapping windows for evaluation: window j starts at (first+j)*T.
 * x, y (B,T). Returns how many windows fit (0..B), or -EINVAL. */
int text_windows_at(const uint8_t *text, size_t len, int T, size_t first, int B, int *x, int *y);

#endif
