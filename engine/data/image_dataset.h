/* image_dataset.h - an image folder (or manifest) as an in-memory Dataset, through the decode cache.
 *
 * Lists the files (image_folder.h), decodes them once into cache files under cache_dir
 * (decode_cache.h; without cache_dir they are decoded in memory every time), and fills the same
 * Dataset the IDX reader fills: (N, channels, size, size) float32 in [0,1], labels 0-based or -1.
 *   - manifest: its split column decides; rows without one are split as below.
 *   - train with class subfolders: labelled; without subfolders: unlabelled (num_classes 0).
 *   - test given: scanned with train's classes; else a seeded stratified test_fraction of train.
 *   - unlabeled given: every image below it joins train with label -1.
 *   - min_class_images > 0: classes with fewer training images are left out (train and test).
 *   - max_skipped > 0: up to that many files that do not decode are left out, counted, reported.
 *
 *   ImageFolderSpec s = { .train = "photos/train", .image_size = 64, .channels = 3,
 *                         .resize = IMG_RESIZE_SHORTER_SIDE, .test_fraction = 0.1, .seed = 1,
 *                         .cache_dir = "/var/lib/ssld/cache", .threads = 2 };
 *   Dataset *ds = eng_calloc(1, sizeof *ds);
 *   if (image_folder_load(&s, ds, err, sizeof err) < 0) ...   // dataset_free(ds) either way
 */
#ifndef SSLD_DATA_IMAGE_DATASET_H
#define SSLD_DATA_IMAGE_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "decode_cache.h"
#include "image_decode.h"

typedef struct ImageFolderSpec {
	const char *train;             /* folder (required unless manifest) */
	const char *test;              /* folder or NULL */
	const char *unlabeled;         /* folder or NULL */
	const char *manifest;          /* CSV / JSON lines; replaces train and test */
	int image_size;                /* 8..1024 */
	int channels;                  /* 1 or 3 */
	ImgResize resize;
	double test_fraction;          /* [0, 1): used when there is no test folder */
	uint64_t seed;                 /* the split's seed */
	int min_class_images;          /* 0: every class folder */
	int max_skipped;               /* per list; 0: the first bad file fails the load */
	const char *cache_dir;         /* NULL: no cache file */
	int threads;
	img_cache_progress_cb progress;/* decoding progress, per list (train, test, unlabeled) */
	img_scan_cb scan_progress;     /* files found while listing */
	/* One line for the job's log: classes left out, cache hit / built / rebuilt, files skipped. */
	void (*note)(void *user, const char *msg);
	void *user;
	/* Files other than images (the audio_folder format): the extensions kept (NULL: images), and
	 * per file a decoder writing c*h*w float32 values into the cache in place of pixels
	 * (image_size, channels and resize are then unused); settings stands for its options in the
	 * cache's name and key; noun names the files in the log ("audio"). */
	const char *const *exts;
	int (*decode)(const char *path, void *decode_user, uint8_t *out, char *err, size_t errlen);
	void *decode_user;
	uint64_t settings;
	int c, h, w;
	const char *noun;
} ImageFolderSpec;

/* Fills ds (zeroed by the caller; partial allocations stay for dataset_free on failure).
 * 0 or a negative errno with err naming the folder or file at fault. cache_states[0..2] (may be
 * NULL) receive what each cache open found (train, test, unlabeled; -1 when not used). */
int image_folder_load(const ImageFolderSpec *spec, Dataset *ds, int cache_states[3], char *err,
                      size_t errlen);

#endif
