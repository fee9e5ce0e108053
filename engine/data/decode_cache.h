/* decode_cache.h - decode an image list once into one memory-mapped file of uint8 pixels.
 *
 * The first open decodes every file of the list on `threads` threads, resizes it to
 * (channels, size, size) and writes all pixels to one file: a 4096-byte header, then n images back
 * to back in list order. The header holds a key (a hash of every path, file size and mtime, the
 * channels, size and resize mode) and checksums of itself and of the pixels. A later open with the
 * same list and settings maps the file and reads decoded pixels straight from it; a file whose key
 * differs (a file changed, was added or removed, other settings) or whose checksums fail is
 * rebuilt, never trusted. The file is written under a temporary name, fsynced and renamed, so a
 * reader never sees a half-written one, and a bad image fails the build with its name without
 * touching an existing cache. Builders of one cache take turns on an flock of "<path>.lock": when
 * two jobs open the same list at once, one decodes and the other waits, then finds the cache
 * written (state IMG_CACHE_HIT, waited = 1). A builder that dies releases the lock with its file
 * descriptor; its temporary file is removed by the next builder.
 *
 * Bad files: with max_skipped > 0, up to that many images that do not decode (corrupt, over the
 * decoder's size limits, unreadable) are left out instead of failing the build; the cache records
 * which (skipped[i]) and the first one's reason, so a later hit reports the same skips.
 *
 *   ImgCacheConfig cc = { .path = "state/pixels.cache", .channels = 3, .size = 64,
 *                         .resize = IMG_RESIZE_SHORTER_SIDE, .threads = 2 };
 *   ImgCache cache;
 *   if (img_cache_open(&list, &cc, &cache, err, sizeof err) < 0) ...
 *   const uint8_t *px = img_cache_image(&cache, i);    // (3, 64, 64)
 *   img_cache_close(&cache);
 */
#ifndef SSLD_DATA_DECODE_CACHE_H
#define SSLD_DATA_DECODE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "image_decode.h"
#include "image_folder.h"

/* Called from the decoding threads (one call at a time) about every 1% and at the end. */
typedef void (*img_cache_progress_cb)(void *user, int done, int total);

typedef struct ImgCacheConfig {
	const char *path;            /* the cache file */
	int channels;                /* 1 or 3 */
	int size;                    /* side of the stored square, 1..4096 */
	ImgResize resize;
	int threads;                 /* decoding threads (<= 0: 1) */
	int max_skipped;             /* images that may fail to decode and be left out (0: none) */
	img_cache_progress_cb progress;
	void *user;
	/* Another decoder (audio): decode(path, decode_user, out, err, errlen) fills item_bytes bytes
	 * per file in place of the image decoder (channels, size and resize are then unused), and
	 * settings, hashed into the key, stands for its options. NULL: images. */
	int (*decode)(const char *path, void *decode_user, uint8_t *out, char *err, size_t errlen);
	void *decode_user;
	size_t item_bytes;
	uint64_t settings;
} ImgCacheConfig;

/* Bytes one file decodes to under cfg. */
static inline size_t img_cache_item_bytes(const ImgCacheConfig *cfg)
{
	return cfg->decode ? cfg->item_bytes : (size_t)cfg->channels * cfg->size * cfg->size;
}

typedef enum ImgCacheState {
	IMG_CACHE_HIT = 0,           /* read as it was */
	IMG_CACHE_BUILT,             /* no cache file existed */
	IMG_CACHE_STALE,             /* rebuilt: the key differed (files or settings changed) */
	IMG_CACHE_CORRUPT,           /* rebuilt: wrong size, bad header or pixel checksum */
} ImgCacheState;

typedef struct ImgCache {
	uint8_t *map;                /* the whole file, read-only */
	size_t map_len;
	const uint8_t *pixels;       /* n * image_bytes */
	size_t image_bytes;          /* channels * size * size */
	int n, channels, size;
	ImgCacheState state;         /* what the open found */
	int waited;                  /* 1: another builder held the lock first (its cache was used) */
	const uint8_t *skipped;      /* n flags: 1 = image i did not decode (its pixels are zero) */
	int n_skipped;
	const char *first_skip;      /* "PATH: reason" of the first skipped image, "" when none */
} ImgCache;

/* 0, or a negative errno with err naming the file at fault (an image that does not decode, more
 * than max_skipped of them, the cache file that cannot be written). */
int img_cache_open(const ImgList *list, const ImgCacheConfig *cfg, ImgCache *out, char *err,
                   size_t errlen);
void img_cache_close(ImgCache *c);
static inline const uint8_t *img_cache_image(const ImgCache *c, int i)
{
	return c->pixels + (size_t)i * c->image_bytes;
}

/* Decode and resize every image of the list into pixels (n * channels * size * size bytes) on
 * cfg->threads threads with cfg->progress, without a file (cfg->path unused). Up to
 * cfg->max_skipped images that fail are flagged in skipped (n bytes, may be NULL when
 * max_skipped is 0), their pixels zeroed, *n_skipped counted and the first one's "PATH: reason"
 * kept in first_skip (first_len bytes); one more stops the rest: 0 or the error, naming the file. */
int img_decode_list(const ImgList *list, const ImgCacheConfig *cfg, uint8_t *pixels,
                    uint8_t *skipped, int *n_skipped, char *first_skip, size_t first_len,
                    char *err, size_t errlen);

/* The message for more bad files than allowed, shared by a build and a hit. */
int img_cache_too_many_skipped(int n_skipped, int max_skipped, const char *first, char *err,
                               size_t errlen);

/* The key of a list and settings (stats every file): exposed for tests. 0 or -errno. */
int img_cache_key(const ImgList *list, const ImgCacheConfig *cfg, uint64_t *key, char *err,
                  size_t errlen);

#endif
