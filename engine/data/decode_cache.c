/* decode_cache.c - the decode-once pixel cache: key, validation, a threaded build, atomic rename.
 *
 * The build decodes straight into a shared mapping of the temporary file (no second copy of the
 * pixels in memory). Workers take the next index from an atomic counter; the first error beyond
 * the allowed skips stops them all and the temporary file is removed. Builders of one path take
 * turns on an flock, so concurrent jobs decode once. It does not evict: one file per (list,
 * settings), named by the caller, who decides where the files live and how they are cleaned up.
 *
 * File layout: a CACHE_HEADER-byte header, n images of channels*size*size bytes, n skip flags.
 */
#include "decode_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../alloc.h"
#include "data_internal.h"

#define CACHE_MAGIC "SSLDPIX1"
#define CACHE_VERSION 2u
#define CACHE_HEADER 4096u
#define SKIP_REASON 1024

typedef struct CacheHeader {
	char magic[8];
	uint32_t version, header_bytes;
	uint64_t key;
	uint64_t n;
	uint32_t channels, size, resize, pad;
	uint64_t pixel_sum;          /* over the pixels and the skip flags */
	uint64_t n_skipped;
	char first_skip[SKIP_REASON];/* "PATH: reason" of the first skipped image */
	uint64_t header_sum;         /* over the bytes above */
} CacheHeader;
_Static_assert(sizeof(CacheHeader) <= CACHE_HEADER, "the cache header fits its block");

/* A fast 64-bit hash: 8 bytes at a time, multiply and fold. Not cryptographic: it detects
 * corruption and changes, it does not resist an adversary who can write the cache. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		h = (h ^ w) * 0x9E3779B97F4A7C15ull;
		h ^= h >> 29;
		b += 8;
		n -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, b, n);
	h = (h ^ w ^ ((uint64_t)n << 56)) * 0xBF58476D1CE4E5B9ull;
	return h ^ (h >> 31);
}

int img_cache_key(const ImgList *list, const ImgCacheConfig *cfg, uint64_t *key, char *err,
                  size_t errlen)
{
	uint64_t h = 0x53534c44ull;
	uint32_t settings[5] = { CACHE_VERSION, (uint32_t)cfg->channels, (uint32_t)cfg->size,
	                         (uint32_t)cfg->resize, (uint32_t)list->n };
	h = hash_bytes(h, settings, sizeof settings);
	if (cfg->decode)
		h = hash_bytes(h, &cfg->settings, sizeof cfg->settings) ^ cfg->item_bytes;
	for (int i = 0; i < list->n; i++) {
		const char *p = img_list_path(list, i);
		struct stat st;
		if (stat(p, &st) < 0) {
			int e = errno;
			return data_err(-e, err, errlen, "%s: %s", p, strerror(e));
		}
		int64_t f[3] = { (int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec,
		                 (int64_t)st.st_mtim.tv_nsec };
		h = hash_bytes(h, p, strlen(p) + 1);
		h = hash_bytes(h, f, sizeof f);
	}
	*key = h;
	return 0;
}

static void header_fill(CacheHeader *hd, uint64_t key, const ImgCacheConfig *cfg, int n,
                        uint64_t pixel_sum, int n_skipped, const char *first_skip)
{
	memset(hd, 0, sizeof *hd);
	memcpy(hd->magic, CACHE_MAGIC, 8);
	hd->version = CACHE_VERSION;
	hd->header_bytes = CACHE_HEADER;
	hd->key = key;
	hd->n = (uint64_t)n;
	hd->channels = (uint32_t)cfg->channels;
	hd->size = (uint32_t)cfg->size;
	hd->resize = (uint32_t)cfg->resize;
	hd->pixel_sum = pixel_sum;
	hd->n_skipped = (uint64_t)n_skipped;
	snprintf(hd->first_skip, sizeof hd->first_skip, "%s", first_skip ? first_skip : "");
	hd->header_sum = hash_bytes(1, hd, offsetof(CacheHeader, header_sum));
}

/* Map an existing cache and decide whether to trust it: HIT, or why not (-1: no file). */
static int try_existing(const char *path, uint64_t key, const ImgCacheConfig *cfg, int n,
                        ImgCache *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t img = img_cache_item_bytes(cfg);
	size_t want = CACHE_HEADER + (img + 1) * n;
	struct stat st;
	int state = IMG_CACHE_CORRUPT;
	uint8_t *map = MAP_FAILED;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(CacheHeader))
		goto out;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		goto out;
	CacheHeader hd;
	memcpy(&hd, map, sizeof hd);
	if (memcmp(hd.magic, CACHE_MAGIC, 8) != 0 || hd.version != CACHE_VERSION ||
	    hd.header_bytes != CACHE_HEADER ||
	    hd.header_sum != hash_bytes(1, &hd, offsetof(CacheHeader, header_sum)))
		goto out;
	if (hd.key != key || hd.n != (uint64_t)n || hd.channels != (uint32_t)cfg->channels ||
	    hd.size != (uint32_t)cfg->size || hd.resize != (uint32_t)cfg->resize) {
		state = IMG_CACHE_STALE;
		goto out;
	}
	if ((size_t)st.st_size != want ||
	    hash_bytes(2, map + CACHE_HEADER, (img + 1) * n) != hd.pixel_sum ||
	    hd.n_skipped > (uint64_t)n || memchr(hd.first_skip, 0, sizeof hd.first_skip) == NULL)
		goto out;
	out->map = map;
	out->map_len = want;
	out->pixels = map + CACHE_HEADER;
	out->skipped = map + CACHE_HEADER + img * n;
	out->n_skipped = (int)hd.n_skipped;
	out->first_skip = (const char *)map + offsetof(CacheHeader, first_skip);
	state = IMG_CACHE_HIT;
	map = MAP_FAILED;
out:
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	close(fd);
	return state;
}

/* ---------------------------------------------------------------------------------------------- */
/* Build */

typedef struct Build {
	const ImgList *list;
	const ImgCacheConfig *cfg;
	uint8_t *pixels;
	uint8_t *skipped;            /* n flags, or NULL (no skips allowed) */
	size_t img;
	atomic_int next;
	atomic_int failed;
	pthread_mutex_t mu;
	int done, reported;
	int n_skipped;
	char first_skip[SKIP_REASON];
	int rc;
	char err[1024];
} Build;

int img_cache_too_many_skipped(int n_skipped, int max_skipped, const char *first, char *err,
                               size_t errlen)
{
	return data_err(-EINVAL, err, errlen, "%d image files do not decode, more than "
	                "dataset.max_skipped = %d allows; the first: %s", n_skipped, max_skipped,
	                first);
}

static void *build_worker(void *arg)
{
	Build *b = arg;
	char err[1024];
	for (;;) {
		if (atomic_load(&b->failed))
			break;
		int i = atomic_fetch_add(&b->next, 1);
		if (i >= b->list->n)
			break;
		uint8_t *dst = b->pixels + (size_t)i * b->img;
		int rc = b->cfg->decode
		       ? b->cfg->decode(img_list_path(b->list, i), b->cfg->decode_user, dst, err, sizeof err)
		       : img_load_file(img_list_path(b->list, i), b->cfg->channels, b->cfg->resize,
		                       b->cfg->size, dst, err, sizeof err);
		pthread_mutex_lock(&b->mu);
		if (rc < 0 && rc != -ENOMEM && b->skipped && b->n_skipped < b->cfg->max_skipped) {
			/* a bad file within the allowance: left out, counted, its pixels zero */
			b->skipped[i] = 1;
			memset(b->pixels + (size_t)i * b->img, 0, b->img);
			if (b->n_skipped++ == 0)
				snprintf(b->first_skip, sizeof b->first_skip, "%s", err);
			rc = 0;
		}
		if (rc < 0) {
			if (!atomic_exchange(&b->failed, 1)) {
				b->rc = rc;
				if (b->n_skipped > 0 && rc != -ENOMEM)
					img_cache_too_many_skipped(b->n_skipped + 1, b->cfg->max_skipped,
					                           b->first_skip, b->err, sizeof b->err);
				else if (rc != -ENOMEM && b->cfg->max_skipped == 0)
					snprintf(b->err, sizeof b->err, "%.900s (set dataset.max_skipped to leave "
					         "such files out)", err);
				else
					snprintf(b->err, sizeof b->err, "%s", err);
			}
		} else {
			b->done++;
			int step = b->list->n / 100 > 0 ? b->list->n / 100 : 1;
			if (b->cfg->progress && (b->done - b->reported >= step || b->done == b->list->n)) {
				b->reported = b->done;
				b->cfg->progress(b->cfg->user, b->done, b->list->n);
			}
		}
		pthread_mutex_unlock(&b->mu);
	}
	return NULL;
}

int img_decode_list(const ImgList *list, const ImgCacheConfig *cfg, uint8_t *pixels,
                    uint8_t *skipped, int *n_skipped, char *first_skip, size_t first_len,
                    char *err, size_t errlen)
{
	Build b = { .list = list, .cfg = cfg, .pixels = pixels,
	            .skipped = cfg->max_skipped > 0 ? skipped : NULL,
	            .img = img_cache_item_bytes(cfg) };
	if (skipped)
		memset(skipped, 0, (size_t)list->n);
	pthread_mutex_init(&b.mu, NULL);
	int nt = cfg->threads > 0 ? cfg->threads : 1;
	if (nt > 64)
		nt = 64;
	pthread_t th[64];
	int started = 0;
	for (int t = 1; t < nt && t < list->n; t++)
		if (pthread_create(&th[started], NULL, build_worker, &b) == 0)
			started++;
	build_worker(&b);
	for (int t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	pthread_mutex_destroy(&b.mu);
	if (n_skipped)
		*n_skipped = b.n_skipped;
	if (first_skip && first_len)
		snprintf(first_skip, first_len, "%s", b.first_skip);
	if (b.rc < 0)
		return data_err(b.rc, err, errlen, "%s", b.err);
	return 0;
}

/* fsync the folder holding path, so a rename into it survives a crash. */
static void sync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4200];
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	int fd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Temporary files of path ("<path>.tmp.*") left by a builder that died: only the holder of the
 * lock builds, so any such file is an orphan. */
static void remove_orphans(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4200], prefix[512];
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	snprintf(prefix, sizeof prefix, "%s.tmp.", slash ? slash + 1 : path);
	DIR *d = opendir(dir[0] ? dir : "/");
	if (!d)
		return;
	struct dirent *de;
	size_t pl = strlen(prefix);
	while ((de = readdir(d)))
		if (strncmp(de->d_name, prefix, pl) == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

static int build(const ImgList *list, const ImgCacheConfig *cfg, uint64_t key, char *err,
                 size_t errlen)
{
	size_t img = img_cache_item_bytes(cfg);
	size_t len = CACHE_HEADER + (img + 1) * list->n;
	char *tmp = eng_malloc(strlen(cfg->path) + 32);
	if (!tmp)
		return data_err(-ENOMEM, err, errlen, "%s: out of memory", cfg->path);
	static atomic_int seq;      /* two jobs of one process may build the same cache at once */
	sprintf(tmp, "%s.tmp.%ld.%d", cfg->path, (long)getpid(), atomic_fetch_add(&seq, 1));
	int rc = 0;
	uint8_t *map = MAP_FAILED;
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = data_err(-errno, err, errlen, "%s: cannot create the decode cache: %s", tmp,
		              strerror(errno));
		goto out;
	}
	if (ftruncate(fd, (off_t)len) < 0) {
		rc = data_err(-errno, err, errlen, "%s: cannot size the decode cache to %zu bytes: %s",
		              tmp, len, strerror(errno));
		goto out;
	}
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = data_err(-errno, err, errlen, "%s: cannot map the decode cache: %s", tmp,
		              strerror(errno));
		goto out;
	}
	int n_skipped = 0;
	char first[SKIP_REASON];
	if ((rc = img_decode_list(list, cfg, map + CACHE_HEADER, map + CACHE_HEADER + img * list->n,
	                          &n_skipped, first, sizeof first, err, errlen)) < 0)
		goto out;
	CacheHeader hd;
	header_fill(&hd, key, cfg, list->n, hash_bytes(2, map + CACHE_HEADER, (img + 1) * list->n),
	            n_skipped, first);
	memcpy(map, &hd, sizeof hd);
	if (msync(map, len, MS_SYNC) < 0 || fsync(fd) < 0) {
		rc = data_err(-errno, err, errlen, "%s: cannot write the decode cache: %s", tmp,
		              strerror(errno));
		goto out;
	}
	if (rename(tmp, cfg->path) < 0)
		rc = data_err(-errno, err, errlen, "%s: cannot rename the decode cache into place: %s",
		              cfg->path, strerror(errno));
	else
		sync_parent(cfg->path);
out:
	if (map != MAP_FAILED)
		munmap(map, len);
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	eng_free(tmp);
	return rc;
}

int img_cache_open(const ImgList *list, const ImgCacheConfig *cfg, ImgCache *out, char *err,
                   size_t errlen)
{
	memset(out, 0, sizeof *out);
	int bad = cfg->decode ? cfg->item_bytes == 0
	        : (cfg->channels != 1 && cfg->channels != 3) || cfg->size < 1 || cfg->size > 4096 ||
	          (unsigned)cfg->resize >= IMG_RESIZE_COUNT;
	if (!cfg->path || bad || list->n <= 0)
		return data_err(-EINVAL, err, errlen, "decode cache: bad settings (channels %d, size %d, "
		                "%d images)", cfg->channels, cfg->size, list->n);
	uint64_t key;
	int rc = img_cache_key(list, cfg, &key, err, errlen);
	if (rc < 0)
		return rc;
	int state = try_existing(cfg->path, key, cfg, list->n, out), waited = 0;
	if (state != IMG_CACHE_HIT) {
		/* Take the builder's turn; whoever held it may have written what we need meanwhile. */
		char lock[4200];
		if ((size_t)snprintf(lock, sizeof lock, "%s.lock", cfg->path) >= sizeof lock)
			return data_err(-ENAMETOOLONG, err, errlen, "%s: path too long", cfg->path);
		int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (lfd < 0)
			return data_err(-errno, err, errlen, "%s: cannot open the decode cache's lock: %s",
			                lock, strerror(errno));
		if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
			waited = 1;
			while (flock(lfd, LOCK_EX) < 0 && errno == EINTR)
				;
		}
		/* Checked again even without waiting: a builder may have finished between the first look
		 * and the lock. */
		if (try_existing(cfg->path, key, cfg, list->n, out) == IMG_CACHE_HIT) {
			state = IMG_CACHE_HIT;
		} else {
			remove_orphans(cfg->path);
			rc = build(list, cfg, key, err, errlen);
			if (rc == 0 && try_existing(cfg->path, key, cfg, list->n, out) != IMG_CACHE_HIT)
				rc = data_err(-EIO, err, errlen, "%s: the decode cache just written does not "
				              "verify (was it changed while being written?)", cfg->path);
		}
		close(lfd);                /* releases the lock */
		if (rc < 0)
			return rc;
	}
	if (out->n_skipped > cfg->max_skipped) {
		rc = img_cache_too_many_skipped(out->n_skipped, cfg->max_skipped, out->first_skip, err,
		                                errlen);
		img_cache_close(out);
		return rc;
	}
	out->waited = waited;
	out->state = state < 0 ? IMG_CACHE_BUILT : (ImgCacheState)state;
	out->image_bytes = img_cache_item_bytes(cfg);
	out->n = list->n;
	out->channels = cfg->channels;
	out->size = cfg->size;
	return 0;
}

void img_cache_close(ImgCache *c)
{
	if (!c)
		return;
	if (c->map)
		munmap(c->map, c->map_len);
	memset(c, 0, sizeof *c);
}
