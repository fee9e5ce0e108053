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
} LoaderConfig;

typedef struct Batch {
	int n;                    /* samples in this batch */
	float *view[2];           /* (n, C, H, W) each; view[0] is raw when views == 0 */
	int *y;                   /* (n) labels */
	int *idx;                 /* (n) sample indices into the split */
	int epoch, index;         /* which epoch and batch within it */
} Batch;

typedef struct Loader Loader;
int loader_new(const LoaderConfig *cfg, Loader **out, char *err, size_t errlen);
/* The next batch (borrowed, valid until the next loader_next), or NULL at an epoch's end. */
const Batch *loader_next(Loader *ld);
void loader_seek(Loader *ld, int epoch, int batch_index);
int loader_batches_per_epoch(const Loader *ld);
double loader_wait_seconds(const Loader *ld);  /* total time loader_next waited for data */
void loader_free(Loader *ld);

#endif
