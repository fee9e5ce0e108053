/* cache.h - answers to GET requests, kept while the database has not changed, with an ETag each.
 *
 * Dashboards poll the same few URLs (a job, its metrics after the newest cursor, its events), and
 * between two metric batches (every 0.5 s while a job trains) each of those polls has the same
 * answer. The cache keeps that answer once built - a libmicrohttpd response, queued again for
 * every later request, so a hit reads no SQLite and formats no JSON - keyed by the request (path
 * and query arguments) and tagged with the database's change stamp (store_change_stamp) read
 * *before* the answer was built. It is served while the stamp is unchanged; after any commit (of
 * this process or another) the next request builds it again. The ETag is a hash of the body, so
 * a client's If-None-Match gets 304 whenever the body would be the same, across commits too.
 *
 *   ApiCache *c = api_cache_new(128, 32 << 20);
 *   if (api_cache_serve(c, key, &stamp, inm, conn, &rc, &status)) return rc;    // hit: 200 or 304
 *   ...build the answer...; api_cache_put(c, key, &stamp, resp200, resp304, etag, n);
 *   api_cache_free(c);
 *
 * Thread-safe (one mutex). Not here: deciding what may be cached (routes.c: GETs whose answer
 * is a function of the database alone), authentication (done before the lookup).
 */
#ifndef SSLD_API_CACHE_H
#define SSLD_API_CACHE_H

#include <microhttpd.h>
#include <stddef.h>

#include "../storage/store.h"

typedef struct ApiCache ApiCache;

/* At most max_entries answers and max_bytes of bodies (a body over max_bytes / 8 is not kept).
 * NULL when out of memory (the API then runs without a cache). */
ApiCache *api_cache_new(int max_entries, size_t max_bytes);
void api_cache_free(ApiCache *c);   /* api_cache_free(NULL) is a no-op */

/* If the answer to key is cached at a stamp equal to *stamp, queues it on conn - as 304 when
 * if_none_match (the request's header, may be NULL) names its ETag - and returns 1 with *rc the
 * result of MHD_queue_response and *status the status queued. Returns 0 otherwise. */
int api_cache_serve(ApiCache *c, const char *key, const StoreStamp *stamp, const char *if_none_match,
                    struct MHD_Connection *conn, enum MHD_Result *rc, unsigned *status);

/* Keeps resp (200) and not_modified (304, same headers) as the answer to key built at *stamp,
 * replacing an older one. Takes the caller's reference to both responses (it destroys them when
 * evicted; connections sending them hold their own references). */
void api_cache_put(ApiCache *c, const char *key, const StoreStamp *stamp, struct MHD_Response *resp,
                   struct MHD_Response *not_modified, const char *etag, size_t bytes);

/* 1 if an If-None-Match header value names etag (a quoted tag, W/ prefixes ignored) or is "*". */
int api_etag_match(const char *if_none_match, const char *etag);
/* A strong ETag of a body: "\"<16 hex digits>\"" (a 64-bit hash; not for security). */
void api_etag_of(const void *body, size_t n, char out[24]);

#endif
