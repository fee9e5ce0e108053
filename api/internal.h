/* internal.h - what server.c and routes.c share inside api/ (not a public header).
 *
 * A Req is one HTTP request: its body (bounded by max_body), method, path and connection; the
 * reply_* helpers queue exactly one response and count it by status code for /metrics.
 */
#ifndef SSLD_API_INTERNAL_H
#define SSLD_API_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../common/strbuf.h"   /* Sbuf: the answers are built as text */
#include "api.h"
#include "cache.h"
#include "conns.h"

struct cJSON;

struct Api {
	ApiConfig cfg;
	char *listen, *state_dir, *shared_dir, *web_dir, *version;   /* owned copies */
	char *_Atomic node;                /* api_set_node; NULL until then */
	char **data_roots;
	struct MHD_Daemon *d;
	int port;
	atomic_int draining;
	pthread_rwlock_t tok_lock;
	ApiToken *tokens;
	int ntokens;                       /* < 0: auth disabled */
	atomic_uint_fast64_t codes[600];   /* responses by HTTP status */
	double started;
	ApiCache *cache;                   /* GET answers (cache.h); NULL = none */
	ConnTable *conns;                  /* open connections, the request deadline (conns.h) */
	GenQueue *genq;                    /* generation requests (../workers/genq.h) */
	atomic_int gen_inflight;           /* generate requests handed to genq and not yet answered */
	atomic_int unpacks_running;        /* upload archives being unpacked off the HTTP threads (datasets.c) */
	atomic_int unpacks_inflight;       /* such uploads not yet answered */
};

typedef struct Req {
	Api *api;
	struct MHD_Connection *c;
	const char *method, *url;
	char *body;
	size_t len, cap;
	int too_large;
	int answered;
	char owner[64];                   /* set by require_auth */
	int admin;                        /* set by require_auth: may act on anyone's jobs */
	int auth_on;                      /* set by require_auth: tokens exist */
	int etag;                         /* set by reply_cached: a 200 answer gets an ETag (304 on a match) */
	int stamped;                      /* set by reply_cached: stamp read, reply_sbuf keeps the 200 answer */
	StoreStamp stamp;                 /* the database's change stamp read before the answer was built */
	char *cache_key;
	struct GenWork *gen;              /* a generation handed to api->genq (routes.c) */
	int suspended;                    /* the connection waits for gen; the next call answers it */
	const struct SweepPlan *sweep;    /* set while a sweep's child is checked: its refusals name the */
	int sweep_child;                  /* sweep key and the setting (routes.c, reply_spec_errors) */
	struct DsUpload *upload;          /* POST /v1/datasets: the body goes to a file (datasets.c) */
	int started;                      /* on_request has seen this request */
	size_t url_bytes, url_args;       /* set by note_uri when the URL is over its bounds: answered 414 */
} Req;

/* Responses: each queues one response and returns what the MHD handler must return. */
enum MHD_Result reply_json(Req *r, unsigned status, struct cJSON *obj);     /* takes obj */
enum MHD_Result reply_sbuf(Req *r, unsigned status, Sbuf *b);               /* takes b->p */
enum MHD_Result reply_created(Req *r, Sbuf *b, const char *location);     /* 201 + Location; takes b->p */
__attribute__((format(printf, 5, 6)))
enum MHD_Result reply_error(Req *r, unsigned status, const char *code, const char *field, const char *fmt, ...);
enum MHD_Result reply_text(Req *r, unsigned status, const char *content_type, const char *text, size_t len);
enum MHD_Result reply_fd(Req *r, int fd, uint64_t size, const char *content_type, const char *download_name);
/* A 200 answer of unknown length produced by read(cls, ...) (MHD's content reader); free_cls(cls)
 * runs when it ends, also when queueing fails. */
enum MHD_Result reply_stream(Req *r, MHD_ContentReaderCallback read, void *cls, MHD_ContentReaderFreeCallback free_cls,
                             const char *content_type, const char *download_name);

/* For a GET whose answer is a function of the database alone (and of the request's path and
 * query): 1 after queueing a cached answer (*rc set; 304 when If-None-Match names its ETag), or 0
 * with the request marked so that reply_sbuf gives its 200 answer an ETag and keeps it. Call it
 * after the request's read access was checked. */
int reply_cached(Req *r, enum MHD_Result *rc);

/* Query arguments: 0 if every argument's name is in `allowed` (NULL-terminated), else replies 400
 * naming the first unknown one and returns -1. */
int check_query(Req *r, const char *const *allowed);
const char *query(Req *r, const char *name);
/* An optional integer query parameter in [min, max] (def when absent): 0, or -1 after replying
 * 400 naming it. */
int query_int(Req *r, const char *name, int64_t min, int64_t max, int64_t def, int64_t *out);
/* Bearer-token check for mutating endpoints: 0 (r->owner, r->admin, r->auth_on set) or -1 after
 * replying (401; 503 when the token table cannot be read). With no tokens anywhere, everyone is
 * "anonymous" and may do everything. */
int require_auth(Req *r);
/* The read rule (ApiReadAccess) for data endpoints: 0, or -1 after replying 401/503. */
int require_read(Req *r);
/* 1 if require_auth would pass, without replying (a refused upload's body is then not kept). */
int auth_quiet(Req *r);

void iso_time(double t, char out[32]);          /* "2024-06-01T12:00:00.123Z", "" for t <= 0 */
const char *mime_type(const char *path);

/* server.c */
enum MHD_Result serve_health(Req *r);
/* routes.c */
enum MHD_Result route_v1(Req *r, const char *path);   /* path after "/v1" */
/* A generate request suspends its connection while api->genq runs it; once resumed, the access
 * handler calls generate_resumed to answer, and the completed callback generate_release. */
enum MHD_Result generate_resumed(Req *r);
void generate_release(Req *r);

#endif
