/* api.h - the HTTP API (libmicrohttpd + cJSON) and the dashboard's static files.
 *
 * Every /v1 answer is JSON; every error has one shape:
 *   {"error":{"code":"invalid_field","message":"pretrain.epochs: must be >= 1, got 0","field":"pretrain.epochs"}}
 * ("field" is null when no single field is at fault). Endpoints (docs/API.md has curl examples):
 *   POST /v1/jobs                     validate completely, then queue -> 201 {"id","state"}
 *   GET  /v1/jobs?state=&limit=&before=&owner=
 *   GET  /v1/jobs/{id}                spec, state, progress (step/total/ETA), latest metrics, results
 *   POST /v1/jobs/{id}/cancel         the owner or an admin (when tokens exist)
 *   GET  /v1/jobs/{id}/metrics?after=CURSOR&keys=loss,lr&max_points=N   (LTTB downsampling)
 *   GET  /v1/jobs/{id}/events?after=CURSOR&limit=N
 *   GET  /v1/jobs/{id}/artifacts, GET /v1/jobs/{id}/artifacts/{name}
 *   GET  /v1/methods, GET /v1/health, GET /metrics (Prometheus text), GET / (web_dir)
 *
 *   ApiConfig ac = { .listen = "127.0.0.1:8080", .store = st, .pool = pool, .batch = b, ... };
 *   Api *api;
 *   if (api_new(&ac, &api, err, sizeof err) < 0) die(err);   // listening when it returns
 *   printf("port %d\n", api_port(api));
 *   api_set_draining(api, 1);                                 // SIGTERM: refuse new jobs (503),
 *                                                             // cancel generation
 *   while (api_generating(api)) wait();
 *   api_free(api);                                            // stops serving
 */
#ifndef SSLD_API_API_H
#define SSLD_API_API_H

#include <stddef.h>
#include <stdint.h>

#include "../storage/batch.h"
#include "../storage/store.h"
#include "../workers/genq.h"
#include "../workers/pool.h"

typedef struct Api Api;

/* Who may read (GET /v1/jobs..., /metrics) once tokens exist. Writes always need a token then;
 * /v1, /v1/health, /v1/methods and the dashboard's static files stay open. */
typedef enum ApiReadAccess {
	API_READ_LOOPBACK = 0,   /* open to clients on 127.0.0.0/8 and ::1, a token for the rest (default) */
	API_READ_OPEN,           /* open to anyone who can connect */
	API_READ_TOKEN,          /* a valid token for every read */
} ApiReadAccess;

/* Uploaded datasets live in SHARED_DIR/API_UPLOADS_DIR/OWNER/NAME (apart from the data roots, so
 * that only the API's rules reach them). */
#define API_UPLOADS_DIR "uploads"

/* /v1/datasets (datasets.h). Zero fields take the defaults in api_new. */
typedef struct ApiDatasetLimits {
	uint64_t max_upload_bytes;          /* one upload's body -> 413 (default 1 GiB) */
	uint64_t max_dataset_bytes;         /* one dataset unpacked -> 413 (default 4 GiB) */
	uint64_t max_files;                 /* members of one archive -> 413 (default 50000) */
	double max_ratio;                   /* unpacked / archive bytes -> 413 (default 200) */
	int max_per_owner;                  /* datasets per owner -> 429 (default 50) */
	uint64_t quota_bytes;               /* all of one owner's datasets -> 413 (default 20 GiB) */
} ApiDatasetLimits;

typedef struct ApiConfig {
	const char *listen;                 /* "ADDR:PORT", "[v6addr]:PORT"; port 0 = any free port */
	int listen_fd;                      /* > 0: serve on this listening socket (systemd socket
	                                     * activation) instead of binding `listen` */
	Store *store;
	StoreBatch *batch;                  /* for /metrics figures (may be NULL) */
	Pool *pool;                         /* may be NULL (no workers in this process) */
	const char *state_dir;              /* this node's files: auth state, the decoded-image cache */
	const char *shared_dir;             /* job dirs (artifacts must lie inside shared_dir/jobs/<id>) and
	                                     * uploaded datasets: what every node of one database reads;
	                                     * NULL = state_dir */
	const char *const *data_roots;      /* datasets must resolve inside one of these */
	int n_data_roots;
	const char *web_dir;                /* static files for "/", NULL = none */
	size_t max_body;                    /* request body limit in bytes (default 1 MiB) -> 413 */
	uint64_t max_job_memory;            /* > 0: 400 for a spec whose estimated peak step memory is larger */
	int max_queued;                     /* > 0: 429 when this many jobs are queued */
	int max_queued_per_owner;           /* > 0: the same per owner */
	int max_running_per_owner;          /* > 0: the pool's limit; GET /v1/jobs/{id} names it as
	                                     * "waiting" for a queued job it holds back */
	int max_user_priority;              /* priorities above this need an admin token (403) */
	int threads;                        /* HTTP threads (default 2) */
	int max_connections;                /* default 256 */
	int max_connections_per_ip;         /* > 0: of them from one client address (more are closed at once) */
	double request_deadline_s;          /* > 0: a request must arrive whole within this long of the
	                                     * connection opening or its previous answer (else 408, closed) */
	GenQueueConfig generate;            /* POST /v1/jobs/{id}/generate: threads, waiting, time and token caps */
	const char *tokens_file;            /* "owner sha256hex [admin]" lines; NULL = none */
	ApiReadAccess read_access;          /* who may read once tokens exist (default loopback) */
	const char *version;                /* reported by /v1/health */
	ApiDatasetLimits datasets;
	/* Called (on an HTTP thread) after a job was queued; NULL = pool_wake(pool) directly. The
	 * daemon routes it through its libuv loop, which owns wake-ups. */
	void (*on_queued)(void *user, int64_t job_id);
	/* Called (on an HTTP thread) after a queued job was cancelled: it ended without a run. May be
	 * NULL. (Runs that end call the pool's on_run_end instead.) */
	void (*on_ended)(void *user, int64_t job_id);
	void *user;
} ApiConfig;

int api_new(const ApiConfig *cfg, Api **out, char *err, size_t errlen);
int api_port(const Api *api);                       /* the bound port */
/* The node's name for /v1/health (set once, after binding: the default name has the port). */
int api_set_node(Api *api, const char *node);
void api_set_draining(Api *api, int draining);      /* 1: POST /v1/jobs -> 503; generation is
                                                     * cancelled and refused (503) from then on */
int api_generating(Api *api);                       /* generations running or waiting */
/* Re-reads the tokens file (SIGHUP): bad lines are logged and skipped, the good ones replace the
 * old tokens. When the file cannot be read, no file token is accepted (fail closed) and < 0 is
 * returned with err filled; authentication stays on. */
int api_reload_tokens(Api *api, const char *tokens_file, char *err, size_t errlen);
/* Stops serving. Generation must have ended (api_generating == 0 after draining): a generate
 * request still waiting for it keeps its connection suspended, which api_free would wait for. */
void api_free(Api *api);                            /* api_free(NULL) is a no-op */

/* Tokens come from two places: the database (`ssld token create`, store_token_*) and an optional
 * tokens file. Authentication is on as soon as either holds a token (or a tokens file is
 * configured): then writes need "Authorization: Bearer TOKEN", jobs record the token's name as
 * their owner, and only the owner or an admin token may cancel a job or generate from it (403
 * otherwise). Once on, it stays on after the last token is revoked (auth_state.h).
 *
 * Tokens file: "owner sha256hex-of-token [admin]" per line, '#' comments. Exposed for tests.
 * Bad lines are logged (file:line) and skipped. Returns the number of tokens (>= 0), or < 0 with
 * err filled when the file cannot be read. */
typedef struct ApiToken { char owner[64]; char sha256[65]; int admin; } ApiToken;
int api_tokens_load(const char *path, ApiToken **tokens, char *err, size_t errlen);

#endif
