/* cache.c - the GET answer cache and ETags (see cache.h).
 *
 * A small table searched linearly by key hash: a few dozen live URLs at most (one per watched job
 * and cursor), so a scan of 64-bit hashes is cheaper than anything cleverer. Eviction is least
 * recently used. Not here: what is cacheable, and building answers (server.c, routes.c).
 */
#include "cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Entry {
	uint64_t hash;          /* of key; 0 = free slot */
	char *key;
	StoreStamp stamp;       /* read before the answer was built */
	struct MHD_Response *resp, *not_modified;
	char etag[24];
	size_t bytes;
	uint64_t used;          /* tick of the last hit or put (LRU) */
} Entry;

struct ApiCache {
	pthread_mutex_t mu;
	Entry *e;
	int n;
	size_t bytes, max_bytes;
	uint64_t tick;
};

/* FNV-1a over the key, never 0 (0 marks a free slot). */
static uint64_t key_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h ? h : 1;
}

ApiCache *api_cache_new(int max_entries, size_t max_bytes)
{
	ApiCache *c = calloc(1, sizeof *c);
	if (!c) return NULL;
	c->e = calloc((size_t)max_entries, sizeof *c->e);
	if (!c->e) {
		free(c);
		return NULL;
	}
	c->n = max_entries;
	c->max_bytes = max_bytes;
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

static void drop(ApiCache *c, Entry *e)
{
	if (!e->hash) return;
	MHD_destroy_response(e->resp);
	MHD_destroy_response(e->not_modified);
	free(e->key);
	c->bytes -= e->bytes;
	memset(e, 0, sizeof *e);
}

void api_cache_free(ApiCache *c)
{
	if (!c) return;
	for (int i = 0; i < c->n; i++) drop(c, &c->e[i]);
	free(c->e);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static Entry *find(ApiCache *c, uint64_t h, const char *key)
{
	for (int i = 0; i < c->n; i++)
		if (c->e[i].hash == h && strcmp(c->e[i].key, key) == 0) return &c->e[i];
	return NULL;
}

int api_cache_serve(ApiCache *c, const char *key, const StoreStamp *stamp, const char *if_none_match,
                    struct MHD_Connection *conn, enum MHD_Result *rc, unsigned *status)
{
	if (!c) return 0;
	uint64_t h = key_hash(key);
	int hit = 0;
	pthread_mutex_lock(&c->mu);
	Entry *e = find(c, h, key);
	if (e && store_stamp_equal(&e->stamp, stamp)) {
		e->used = ++c->tick;
		/* Queued under the lock: an eviction cannot destroy the response before this
		 * connection holds its own reference to it. */
		*status = if_none_match && api_etag_match(if_none_match, e->etag) ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
		*rc = MHD_queue_response(conn, *status, *status == MHD_HTTP_OK ? e->resp : e->not_modified);
		hit = 1;
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

void api_cache_put(ApiCache *c, const char *key, const StoreStamp *stamp, struct MHD_Response *resp,
                   struct MHD_Response *not_modified, const char *etag, size_t bytes)
{
	char *k = c && bytes <= c->max_bytes / 8 ? strdup(key) : NULL;
	if (!k) {
		MHD_destroy_response(resp);
		MHD_destroy_response(not_modified);
		return;
	}
	uint64_t h = key_hash(key);
	pthread_mutex_lock(&c->mu);
	/* Entries of another stamp can never be served again (stamps only move on): drop them, so
	 * the cache holds the answers of the database as it is now, and little else. */
	for (int i = 0; i < c->n; i++)
		if (c->e[i].hash && !store_stamp_equal(&c->e[i].stamp, stamp)) drop(c, &c->e[i]);
	Entry *e = find(c, h, key);
	if (e) drop(c, e);
	/* Room: evict least recently used entries until the body fits and a slot is free. */
	for (;;) {
		Entry *lru = NULL, *slot = NULL;
		for (int i = 0; i < c->n; i++) {
			if (!c->e[i].hash) slot = slot ? slot : &c->e[i];
			else if (!lru || c->e[i].used < lru->used) lru = &c->e[i];
		}
		if (slot && c->bytes + bytes <= c->max_bytes) {
			e = slot;
			break;
		}
		if (!lru) {   /* a table of no slots */
			pthread_mutex_unlock(&c->mu);
			free(k);
			MHD_destroy_response(resp);
			MHD_destroy_response(not_modified);
			return;
		}
		drop(c, lru);
	}
	*e = (Entry){ .hash = h, .key = k, .stamp = *stamp, .resp = resp, .not_modified = not_modified,
	              .bytes = bytes, .used = ++c->tick };
	snprintf(e->etag, sizeof e->etag, "%s", etag);
	c->bytes += bytes;
	pthread_mutex_unlock(&c->mu);
}

/* ---- ETags ---------------------------------------------------------------------------------- */

int api_etag_match(const char *inm, const char *etag)
{
	size_t el = strlen(etag);
	for (const char *p = inm; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',') p++;
		if (*p == '*') return 1;
		if (strncmp(p, "W/", 2) == 0) p += 2;
		const char *end = p;
		if (*p == '"') {
			end = strchr(p + 1, '"');
			end = end ? end + 1 : p + strlen(p);
		} else {
			while (*end && *end != ',') end++;
		}
		if ((size_t)(end - p) == el && memcmp(p, etag, el) == 0) return 1;
		if (end == p) break;
		p = end;
	}
	return 0;
}

void api_etag_of(const void *body, size_t n, char out[24])
{
	/* FNV-1a over 8-byte words, then the tail: ~8x fewer multiplies than per byte, for bodies
	 * up to megabytes (full-resolution curves). */
	const unsigned char *p = body;
	uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
	snprintf(out, 24, "\"%016llx\"", (unsigned long long)h);
}
