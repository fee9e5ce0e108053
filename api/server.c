/* server.c - the HTTP server: libmicrohttpd set-up, request bodies, responses in one error shape,
 * bearer tokens, static files, /v1/health and /metrics (see api.h).
 *
 * The job endpoints live in routes.c. Not here: validation of job specs (workers/jobspec.c), SQL
 * (storage/), or anything that blocks for long - handlers do short SQLite reads and writes on
 * MHD's thread pool, and generation runs on its own queue (../workers/genq.h) while its
 * connection is suspended. What one client can hold is bounded: connections per address,
 * and the time a request may take to arrive (conns.h).
 */
#include "internal.h"

#include "../engine/blas_core.h"
#include "../engine/simd.h"
#include "../engine/fault.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../storage/log.h"
#include "../storage/sha256.h"
#include "auth_state.h"
#include "datasets.h"

/* Bodies over max_body but under this are read and dropped so the client sees the 413. */
#define DRAIN_MAX ((unsigned long long)64 << 20)

/* A request's URL and its query arguments live in MHD's per-connection pool (16 KiB). A query
 * of a few hundred empty arguments ("?&&&...") exhausts it while MHD splits the request line,
 * and libmicrohttpd 0.9.75 then neither answers nor closes. note_uri refuses such URLs first;
 * every URL of the API is far below both bounds. */
#define URL_MAX_BYTES 8192
#define URL_MAX_ARGS 64

/* ---- responses ------------------------------------------------------------------------------ */

static void count(Req *r, unsigned status)
{
	if (status < 600) atomic_fetch_add_explicit(&r->api->codes[status], 1, memory_order_relaxed);
}

static enum MHD_Result queue(Req *r, unsigned status, struct MHD_Response *resp, const char *ctype, int api)
{
	if (!resp) return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (api) MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_UNAUTHORIZED) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"ssld\"");
	enum MHD_Result rc = MHD_queue_response(r->c, status, resp);
	MHD_destroy_response(resp);
	if (rc == MHD_YES) {
		count(r, status);
		r->answered = 1;
	}
	return rc;
}

enum MHD_Result reply_text(Req *r, unsigned status, const char *content_type, const char *text, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
	return queue(r, status, resp, content_type, 1);
}

/* A cacheable 200 answer: ETag and "no-cache" (a client may keep it, but asks again with
 * If-None-Match), its 304 twin, kept in the cache when the request was stamped. */
static enum MHD_Result reply_tagged(Req *r, Sbuf *b)
{
	static const char ctype[] = "application/json; charset=utf-8";
	char etag[24];
	api_etag_of(b->p, b->n, etag);
	size_t n = b->n;
	struct MHD_Response *resp = MHD_create_response_from_buffer(b->n, b->p, MHD_RESPMEM_MUST_FREE);
	if (!resp) free(b->p);
	memset(b, 0, sizeof *b);
	struct MHD_Response *nm = resp ? MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT) : NULL;
	if (!nm) {
		if (resp) MHD_destroy_response(resp);
		return MHD_NO;
	}
	struct MHD_Response *both[2] = { resp, nm };
	for (int i = 0; i < 2; i++) {
		MHD_add_response_header(both[i], MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
		MHD_add_response_header(both[i], "X-Content-Type-Options", "nosniff");
		MHD_add_response_header(both[i], MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
		MHD_add_response_header(both[i], MHD_HTTP_HEADER_ETAG, etag);
	}
	const char *inm = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	unsigned status = inm && api_etag_match(inm, etag) ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
	enum MHD_Result rc = MHD_queue_response(r->c, status, status == MHD_HTTP_OK ? resp : nm);
	if (rc == MHD_YES) {
		count(r, status);
		r->answered = 1;
	}
	if (r->stamped && r->api->cache) {
		api_cache_put(r->api->cache, r->cache_key, &r->stamp, resp, nm, etag, n);
	} else {
		MHD_destroy_response(resp);
		MHD_destroy_response(nm);
	}
	return rc;
}

/* 201 with Location and the body. */
enum MHD_Result reply_created(Req *r, Sbuf *b, const char *location)
{
	if (b->oom) return reply_sbuf(r, 201, b);
	sb_putn(b, "\n", 1);
	struct MHD_Response *resp = MHD_create_response_from_buffer(b->n, b->p, MHD_RESPMEM_MUST_FREE);
	if (!resp) free(b->p);
	memset(b, 0, sizeof *b);
	if (resp) MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
	return queue(r, 201, resp, "application/json; charset=utf-8", 1);
}

enum MHD_Result reply_sbuf(Req *r, unsigned status, Sbuf *b)
{
	sb_putn(b, "\n", 1);
	if (!b->oom && ssld_fault("api_alloc")) {   /* ../engine/fault.h: building the answer ran out of memory */
		b->oom = 1;
	}
	if (b->oom) {
		free(b->p);
		memset(b, 0, sizeof *b);
		return reply_error(r, 503, "out_of_memory", NULL, "the server ran out of memory building the response");
	}
	if (status == MHD_HTTP_OK && r->etag) return reply_tagged(r, b);
	struct MHD_Response *resp = MHD_create_response_from_buffer(b->n, b->p, MHD_RESPMEM_MUST_FREE);
	if (!resp) free(b->p);
	memset(b, 0, sizeof *b);
	return queue(r, status, resp, "application/json; charset=utf-8", 1);
}

/* The cache key: the path, then each query argument in order, length-prefixed so that no
 * decoded value (which may hold '&' or '=') can make two requests look alike. */
struct key_buf { char *p; size_t n, cap; int full; };

static void key_put(struct key_buf *kb, const char *s, size_t n)
{
	if (kb->full || n >= kb->cap - kb->n) {
		kb->full = 1;
		return;
	}
	memcpy(kb->p + kb->n, s, n);
	kb->n += n;
	kb->p[kb->n] = 0;
}

/* "&<len>:<name>=<len>:<value>" (len -1: an argument without '='). Plain copies, no printf: this
 * runs on every cached request. */
static enum MHD_Result key_arg(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	struct key_buf *kb = cls;
	char num[24];
	const char *parts[2] = { k, v };
	for (int i = 0; i < 2; i++) {
		size_t len = parts[i] ? strlen(parts[i]) : 0;
		char *e = num + sizeof num;
		*--e = ':';
		if (!parts[i]) {
			*--e = '1';
			*--e = '-';
		} else {
			size_t x = len;
			do *--e = (char)('0' + x % 10); while ((x /= 10) && e > num + 1);
		}
		*--e = i ? '=' : '&';
		key_put(kb, e, (size_t)(num + sizeof num - e));
		if (parts[i]) key_put(kb, parts[i], len);
	}
	return kb->full ? MHD_NO : MHD_YES;
}

int reply_cached(Req *r, enum MHD_Result *rc)
{
	Api *api = r->api;
	r->etag = 1;
	if (!api->cache || store_change_stamp(api->cfg.store, &r->stamp) < 0) return 0;
	char key[2048];
	struct key_buf kb = { key, 0, sizeof key, 0 };
	key_put(&kb, r->url, strlen(r->url));
	MHD_get_connection_values(r->c, MHD_GET_ARGUMENT_KIND, key_arg, &kb);
	if (kb.full) return 0;
	const char *inm = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	unsigned status;
	if (api_cache_serve(api->cache, key, &r->stamp, inm, r->c, rc, &status)) {
		if (*rc == MHD_YES) {
			count(r, status);
			r->answered = 1;
		}
		return 1;
	}
	r->cache_key = strdup(key);
	r->stamped = r->cache_key != NULL;
	return 0;
}

enum MHD_Result reply_json(Req *r, unsigned status, cJSON *obj)
{
	char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
	cJSON_Delete(obj);
	if (!text) return reply_error(r, 503, "out_of_memory", NULL, "the server ran out of memory building the response");
	Sbuf b = { .p = text, .n = strlen(text), .cap = strlen(text) + 1 };
	return reply_sbuf(r, status, &b);
}

enum MHD_Result reply_error(Req *r, unsigned status, const char *code, const char *field, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	Sbuf b = { 0 };
	sb_puts(&b, "{\"error\":{\"code\":");
	sb_json_str(&b, code);
	sb_puts(&b, ",\"message\":");
	sb_json_str(&b, msg);
	sb_puts(&b, ",\"field\":");
	sb_json_str(&b, field && field[0] ? field : NULL);
	sb_puts(&b, "}}\n");
	if (b.oom) {
		free(b.p);
		static const char oom[] = "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\",\"field\":null}}\n";
		struct MHD_Response *resp = MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
		return queue(r, 503, resp, "application/json; charset=utf-8", 1);
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(b.n, b.p, MHD_RESPMEM_MUST_FREE);
	if (!resp) free(b.p);
	return queue(r, status, resp, "application/json; charset=utf-8", 1);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* URL and query unescaping for libmicrohttpd: the usual %XX decoding, except that %00 stays as it
 * is. Decoded, a NUL would cut the C string short: "/index.html%00.png" served index.html, and an
 * artifact name or a query value could hide a tail the checks never saw. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	char *out = s;
	for (const char *p = s; *p; p++) {
		int hi, lo;
		if (*p == '%' && (hi = hex_digit(p[1])) >= 0 && (lo = hex_digit(p[2])) >= 0 && (hi | lo) != 0) {
			*out++ = (char)(hi * 16 + lo);
			p += 2;
		} else {
			*out++ = *p;
		}
	}
	*out = 0;
	return (size_t)(out - s);
}

/* Content-Disposition: attachment under this name (plain file names; quote-safe anyway). */
static void add_disposition(struct MHD_Response *resp, const char *download_name)
{
	char cd[512];
	char safe[256];
	size_t k = 0;
	for (const char *p = download_name; *p && k < sizeof safe - 1; p++)
		safe[k++] = (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) ? '_' : *p;
	safe[k] = 0;
	snprintf(cd, sizeof cd, "attachment; filename=\"%s\"", safe);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, cd);
}

enum MHD_Result reply_fd(Req *r, int fd, uint64_t size, const char *content_type, const char *download_name)
{
	struct MHD_Response *resp = MHD_create_response_from_fd64(size, fd);
	if (!resp) {
		close(fd);
		return reply_error(r, 503, "out_of_memory", NULL, "cannot create the response");
	}
	if (download_name) add_disposition(resp, download_name);
	return queue(r, 200, resp, content_type, download_name != NULL);
}

enum MHD_Result reply_stream(Req *r, MHD_ContentReaderCallback read, void *cls, MHD_ContentReaderFreeCallback free_cls,
                             const char *content_type, const char *download_name)
{
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, read, cls, free_cls);
	if (!resp) {
		free_cls(cls);
		return reply_error(r, 503, "out_of_memory", NULL, "cannot create the response");
	}
	if (download_name) add_disposition(resp, download_name);
	return queue(r, 200, resp, content_type, 1);
}

/* ---- helpers -------------------------------------------------------------------------------- */

typedef struct QueryCheck { const char *const *allowed; const char *bad, *dup; unsigned seen; } QueryCheck;

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	QueryCheck *q = cls;
	for (const char *const *a = q->allowed; *a; a++)
		if (strcmp(*a, key) == 0) {
			unsigned bit = 1u << ((a - q->allowed) & 31);
			if (q->seen & bit) {   /* ?limit=1&limit=1000: which one was meant is anyone's guess */
				q->dup = *a;
				return MHD_NO;
			}
			q->seen |= bit;
			return MHD_YES;
		}
	q->bad = key;
	return MHD_NO;
}

int check_query(Req *r, const char *const *allowed)
{
	static const char *const none[] = { NULL };
	QueryCheck q = { .allowed = allowed ? allowed : none };
	MHD_get_connection_values(r->c, MHD_GET_ARGUMENT_KIND, query_iter, &q);
	if (q.dup) {
		reply_error(r, 400, "duplicate_parameter", q.dup, "%s: query parameter given more than once; give it once", q.dup);
		return -1;
	}
	if (!q.bad) return 0;
	char list[256] = "";
	for (const char *const *a = q.allowed; *a; a++) {
		strncat(list, a == q.allowed ? "" : ", ", sizeof list - strlen(list) - 1);
		strncat(list, *a, sizeof list - strlen(list) - 1);
	}
	reply_error(r, 400, "unknown_parameter", q.bad, "%.64s: unknown query parameter%s%s", q.bad,
	            list[0] ? "; this endpoint takes: " : "; this endpoint takes none", list);
	return -1;
}

const char *query(Req *r, const char *name)
{
	return MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, name);
}

void iso_time(double t, char out[32])
{
	if (t <= 0) {
		out[0] = 0;
		return;
	}
	time_t s = (time_t)t;
	struct tm tm;
	gmtime_r(&s, &tm);
	int ms = (int)((t - (double)s) * 1000);
	if (ms > 999) ms = 999;
	size_t n = strftime(out, 24, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", ms < 0 ? 0 : ms);
}

const char *mime_type(const char *path)
{
	static const struct { const char *ext, *type; } t[] = {
		{ ".html", "text/html; charset=utf-8" }, { ".js", "text/javascript; charset=utf-8" },
		{ ".mjs", "text/javascript; charset=utf-8" }, { ".css", "text/css; charset=utf-8" },
		{ ".json", "application/json; charset=utf-8" }, { ".svg", "image/svg+xml" },
		{ ".png", "image/png" }, { ".ico", "image/x-icon" }, { ".txt", "text/plain; charset=utf-8" },
		{ ".map", "application/json" }, { ".woff2", "font/woff2" }, { ".csv", "text/csv; charset=utf-8" },
		{ ".safetensors", "application/octet-stream" }, { ".npy", "application/octet-stream" },
	};
	const char *dot = strrchr(path, '.');
	const char *slash = strrchr(path, '/');
	if (dot && (!slash || dot > slash))
		for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
			if (strcasecmp(dot, t[i].ext) == 0) return t[i].type;
	return "application/octet-stream";
}

/* ---- tokens --------------------------------------------------------------------------------- */

int api_tokens_load(const char *path, ApiToken **tokens, char *err, size_t errlen)
{
	*tokens = NULL;
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "tokens file %s: %s", path, strerror(e));
		return -e;
	}
	ApiToken *v = NULL;
	int n = 0, cap = 0, lineno = 0, rc = 0, bad = 0;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		lineno++;
		size_t len = strlen(line);
		int too_long = !(len > 0 && line[len - 1] == '\n') && !feof(f);
		if (too_long) {   /* longer than any valid line: skip the rest of it */
			int ch;
			while ((ch = fgetc(f)) != EOF && ch != '\n') {}
		}
		char *p = line;
		while (*p == ' ' || *p == '\t') p++;
		if (*p == '#' || *p == '\n' || *p == 0) continue;
		char owner[128], hex[128], role[128] = "", extra[8] = "";
		int nf = sscanf(p, "%127s %127s %127s %7s", owner, hex, role, extra);
		if (too_long || nf < 2 || nf > 3 || strlen(hex) != 64 || strspn(hex, "0123456789abcdef") != 64 ||
		    strlen(owner) >= sizeof v->owner || (nf == 3 && strcmp(role, "admin") != 0)) {
			/* A bad line is reported and skipped; the good lines still replace the old tokens, so
			 * a token removed from the file stops working whatever else the file holds. */
			slog(LOG_WARNING, 0, "tokens file %s:%d: skipped: expected \"OWNER SHA256HEX [admin]\" (64 lowercase hex "
			     "digits, e.g. from `printf %%s TOKEN | sha256sum`)", path, lineno);
			bad++;
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			ApiToken *w = realloc(v, (size_t)cap * sizeof *w);
			if (!w) {
				rc = -ENOMEM;
				snprintf(err, errlen, "tokens file %s: out of memory", path);
				break;
			}
			v = w;
		}
		snprintf(v[n].owner, sizeof v[n].owner, "%s", owner);
		memcpy(v[n].sha256, hex, 65);
		v[n].admin = nf == 3;
		n++;
	}
	if (rc == 0 && ferror(f)) {
		rc = -EIO;
		snprintf(err, errlen, "tokens file %s: read error", path);
	}
	fclose(f);
	if (rc < 0) {
		free(v);
		return rc;
	}
	if (bad) slog(LOG_WARNING, 0, "tokens file %s: %d token(s) loaded, %d bad line(s) skipped", path, n, bad);
	*tokens = v;
	return n;
}

int api_reload_tokens(Api *api, const char *tokens_file, char *err, size_t errlen)
{
	ApiToken *t = NULL;
	int n = -1, rc = 0;
	if (tokens_file) {
		n = api_tokens_load(tokens_file, &t, err, errlen);
		if (n < 0) {
			/* Fail closed: no token of a file that cannot be read is accepted; authentication
			 * stays on (n = 0 tokens from a configured file). */
			rc = n;
			n = 0;
			t = NULL;
		}
	}
	pthread_rwlock_wrlock(&api->tok_lock);
	free(api->tokens);
	api->tokens = t;
	api->ntokens = n;
	pthread_rwlock_unlock(&api->tok_lock);
	return rc;
}

/* Tokens live in the database (`ssld token create`) and, optionally, a tokens file. Returns 1 if
 * authentication is on: a tokens file is configured (even an empty or unreadable one), a token
 * exists, or the state directory requires it (auth_state.h: revoking the last token does not open
 * the API). 0 if none of these, < 0 on a storage error (err filled). */
static int auth_enabled(Api *api, char *err, size_t errlen)
{
	pthread_rwlock_rdlock(&api->tok_lock);
	int file = api->ntokens >= 0;
	pthread_rwlock_unlock(&api->tok_lock);
	if (file) return 1;
	if (api->state_dir && auth_state_required(api->state_dir) != 0) return 1;   /* unknown counts as required */
	int64_t n = 0;
	if (store_token_count(api->cfg.store, &n, err, errlen) < 0) return -1;
	return n > 0;
}

/* The request's bearer token: 1 (r->owner, r->admin set), 0 no Authorization header, -1 a header
 * that is not a known bearer token, -2 a storage error (err filled). */
static int authenticate(Req *r, char *err, size_t errlen)
{
	Api *api = r->api;
	const char *h = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h) return 0;
	if (strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) return -1;
	char hex[65];
	sha256_hex(h + 7, strlen(h + 7), hex);
	int found = -1;
	pthread_rwlock_rdlock(&api->tok_lock);
	for (int i = 0; i < api->ntokens; i++) {
		unsigned diff = 0;   /* compare whole digests: no early exit */
		for (int k = 0; k < 64; k++) diff |= (unsigned)(hex[k] ^ api->tokens[i].sha256[k]);
		if (diff == 0 && found < 0) found = i;
	}
	if (found >= 0) {
		snprintf(r->owner, sizeof r->owner, "%s", api->tokens[found].owner);
		r->admin = api->tokens[found].admin;
	}
	pthread_rwlock_unlock(&api->tok_lock);
	if (found >= 0) return 1;
	/* The database finds the digest through an index, not in constant time: timing could tell at
	 * most how much of a digest matched, which does not help anyone guess a token. */
	StoreToken t;
	int rc = store_token_find(api->cfg.store, hex, &t, err, errlen);
	if (rc < 0) return -2;
	if (rc == 0) return -1;
	snprintf(r->owner, sizeof r->owner, "%s", t.name);
	r->admin = t.admin;
	return 1;
}

static void reply_unauthorized(Req *r, int why, const char *what)
{
	if (why == 0) reply_error(r, 401, "unauthorized", NULL, "%s needs a bearer token: Authorization: Bearer TOKEN "
	                          "(an administrator creates one with `ssld token create NAME`)", what);
	else reply_error(r, 401, "unauthorized", NULL, "the bearer token is not valid (unknown or revoked)");
}

int require_auth(Req *r)
{
	char err[512];
	int on = auth_enabled(r->api, err, sizeof err);
	if (on < 0) {
		slog(LOG_ERR, 0, "%s %s: %s", r->method, r->url, err);
		reply_error(r, 503, "storage_error", NULL, "%s", err);
		return -1;
	}
	r->auth_on = on;
	if (!on) {
		snprintf(r->owner, sizeof r->owner, "anonymous");
		r->admin = 1;
		return 0;
	}
	int rc = authenticate(r, err, sizeof err);
	if (rc == 1) return 0;
	if (rc == -2) {
		slog(LOG_ERR, 0, "%s %s: %s", r->method, r->url, err);
		reply_error(r, 503, "storage_error", NULL, "%s", err);
		return -1;
	}
	reply_unauthorized(r, rc, "this endpoint");
	return -1;
}

int auth_quiet(Req *r)
{
	char err[512];
	int on = auth_enabled(r->api, err, sizeof err);
	if (on <= 0) return on == 0;
	return authenticate(r, err, sizeof err) == 1;
}

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
static int peer_is_loopback(Req *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr) return 0;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return sa->sa_family == AF_UNIX;
}

int require_read(Req *r)
{
	Api *api = r->api;
	if (api->cfg.read_access == API_READ_OPEN) return 0;
	if (api->cfg.read_access == API_READ_LOOPBACK && peer_is_loopback(r)) return 0;
	char err[512];
	int on = auth_enabled(api, err, sizeof err);
	int rc = on > 0 ? authenticate(r, err, sizeof err) : on == 0 ? 1 : -2;
	if (rc == 1) return 0;
	if (rc == -2) {
		slog(LOG_ERR, 0, "%s %s: %s", r->method, r->url, err);
		reply_error(r, 503, "storage_error", NULL, "%s", err);
		return -1;
	}
	reply_unauthorized(r, rc, api->cfg.read_access == API_READ_TOKEN ? "reading (read-access = token)"
	                                                                 : "reading from a non-loopback address (read-access = loopback)");
	return -1;
}

/* ---- static files --------------------------------------------------------------------------- */

static enum MHD_Result serve_static(Req *r, const char *url)
{
	Api *api = r->api;
	if (!api->web_dir) return reply_error(r, 404, "not_found", NULL, "%s: no web directory configured", url);
	/* The URL is already percent-decoded by MHD. Refuse anything that could leave web_dir. */
	if (strstr(url, "..") || strchr(url, '\\') || strlen(url) > 1024)
		return reply_error(r, 404, "not_found", NULL, "%s: not found", url);
	char path[4096], real[PATH_MAX];
	snprintf(path, sizeof path, "%s%s", api->web_dir, url);
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		size_t n = strlen(path);
		snprintf(path + n, sizeof path - n, "%sindex.html", n && path[n - 1] == '/' ? "" : "/");
	}
	if (!realpath(path, real)) return reply_error(r, 404, "not_found", NULL, "%s: not found", url);
	size_t wl = strlen(api->web_dir);
	if (strncmp(real, api->web_dir, wl) != 0 || (real[wl] != '/' && real[wl] != 0))
		return reply_error(r, 404, "not_found", NULL, "%s: not found", url);
	int fd = open(real, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0) close(fd);
		return reply_error(r, 404, "not_found", NULL, "%s: not found", url);
	}
	struct MHD_Response *resp = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
	if (!resp) {
		close(fd);
		return reply_error(r, 503, "out_of_memory", NULL, "cannot create the response");
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	return queue(r, 200, resp, mime_type(real), 0);
}

/* ---- health and Prometheus ------------------------------------------------------------------ */

enum MHD_Result serve_health(Req *r)
{
	Api *api = r->api;
	char err[256];
	int64_t counts[JOB_STATE_COUNT];
	int ok = store_job_counts(api->cfg.store, counts, err, sizeof err) == 0;
	/* The database answered this request, yet other calls found it unreachable (a shared database
	 * coming and going): training goes on, rows wait in the batch, the node says so. */
	int reachable = store_healthy(api->cfg.store);
	PoolStats ps = { 0 };
	if (api->cfg.pool) pool_stats(api->cfg.pool, &ps);
	int draining = atomic_load(&api->draining);
	Sbuf b = { 0 };
	sb_printf(&b, "{\"status\":\"%s\",\"version\":", !ok || !reachable ? "degraded" : draining ? "draining" : "ok");
	sb_json_str(&b, api->version);
	sb_puts(&b, ",\"node\":");
	const char *node = atomic_load(&api->node);
	if (node) sb_json_str(&b, node);
	else sb_puts(&b, "null");
	sb_printf(&b, ",\"uptime_s\":%.1f,\"workers\":%d,\"busy\":%d,\"database\":", store_now() - api->started,
	          ps.workers, ps.busy);
	sb_json_str(&b, ok ? "ok" : err);
	BlasCore bc;
	char ver[32];
	blas_core_probe(&bc);
	sb_puts(&b, ",\"blas\":{\"library\":\"OpenBLAS\",\"version\":");
	sb_json_str(&b, blas_core_version(ver, sizeof ver));
	sb_puts(&b, ",\"kernels\":");
	sb_json_str(&b, bc.running);
	sb_puts(&b, ",\"chosen_by\":");
	sb_json_str(&b, blas_core_chooser());
	sb_puts(&b, ",\"cpu_family\":");
	sb_json_str(&b, bc.cpu_family);
	sb_puts(&b, ",\"cpu_flags\":");
	sb_json_str(&b, bc.cpu_flags);
	sb_puts(&b, "},\"simd\":");
	sb_json_str(&b, simd_level_name(simd()->level));
	sb_puts(&b, ",\"simd_levels\":[");
	for (int l = 0, first = 1; l < SIMD_LEVEL_COUNT; l++)
		if (simd_at((SimdLevel)l)) {
			sb_printf(&b, "%s\"%s\"", first ? "" : ",", simd_level_name((SimdLevel)l));
			first = 0;
		}
	sb_puts(&b, "]");
	if (ok) {
		sb_puts(&b, ",\"jobs\":{");
		for (int i = 0; i < JOB_STATE_COUNT; i++)
			sb_printf(&b, "%s\"%s\":%lld", i ? "," : "", job_state_name((JobState)i), (long long)counts[i]);
		sb_puts(&b, "}");
	}
	sb_puts(&b, "}");
	return reply_sbuf(r, ok ? 200 : 503, &b);
}

static enum MHD_Result serve_prometheus(Req *r)
{
	Api *api = r->api;
	char err[256];
	int64_t counts[JOB_STATE_COUNT];
	int ok = store_job_counts(api->cfg.store, counts, err, sizeof err) == 0;
	PoolStats ps = { 0 };
	if (api->cfg.pool) pool_stats(api->cfg.pool, &ps);
	StoreBatchStats bs = { 0 };
	if (api->cfg.batch) store_batch_stats(api->cfg.batch, &bs);
	Sbuf b = { 0 };
	sb_puts(&b, "# HELP ssld_up 1 if the database answered this scrape.\n# TYPE ssld_up gauge\n");
	sb_printf(&b, "ssld_up %d\n", ok);
	sb_puts(&b, "# HELP ssld_jobs Jobs in the database by state (queue depth).\n# TYPE ssld_jobs gauge\n");
	for (int i = 0; ok && i < JOB_STATE_COUNT; i++)
		sb_printf(&b, "ssld_jobs{state=\"%s\"} %lld\n", job_state_name((JobState)i), (long long)counts[i]);
	sb_puts(&b, "# HELP ssld_jobs_finished_total Runs ended by this process, by outcome (queued = stopped and requeued).\n"
	            "# TYPE ssld_jobs_finished_total counter\n");
	static const JobState outcomes[] = { JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED, JOB_QUEUED };
	for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++)
		sb_printf(&b, "ssld_jobs_finished_total{outcome=\"%s\"} %llu\n", outcomes[i] == JOB_QUEUED ? "requeued" : job_state_name(outcomes[i]),
		          (unsigned long long)ps.finished[outcomes[i]]);
	sb_puts(&b, "# HELP ssld_train_steps_total Pretraining steps run by this process.\n# TYPE ssld_train_steps_total counter\n");
	sb_printf(&b, "ssld_train_steps_total %llu\n", (unsigned long long)ps.steps);
	sb_puts(&b, "# HELP ssld_lease_lost_total Runs stopped on this node because their lease went to another claim.\n"
	            "# TYPE ssld_lease_lost_total counter\n");
	sb_printf(&b, "ssld_lease_lost_total %llu\n", (unsigned long long)ps.lease_lost);
	sb_puts(&b, "# HELP ssld_lease_reclaimed_total Jobs of nodes whose lease expired that this node put back in the queue.\n"
	            "# TYPE ssld_lease_reclaimed_total counter\n");
	sb_printf(&b, "ssld_lease_reclaimed_total %llu\n", (unsigned long long)ps.reclaimed);
	sb_puts(&b, "# HELP ssld_lease_renew_failures_total Lease renewals that did not reach the database.\n"
	            "# TYPE ssld_lease_renew_failures_total counter\n");
	sb_printf(&b, "ssld_lease_renew_failures_total %llu\n", (unsigned long long)ps.renew_failures);
	sb_puts(&b, "# HELP ssld_workers Worker threads.\n# TYPE ssld_workers gauge\n");
	sb_printf(&b, "ssld_workers %d\n", ps.workers);
	sb_puts(&b, "# HELP ssld_workers_busy Workers running a job now.\n# TYPE ssld_workers_busy gauge\n");
	sb_printf(&b, "ssld_workers_busy %d\n", ps.busy);
	sb_puts(&b, "# HELP ssld_metric_append_seconds_total Time training threads spent handing metric points to the batch.\n"
	            "# TYPE ssld_metric_append_seconds_total counter\n");
	sb_printf(&b, "ssld_metric_append_seconds_total %.9f\n", ps.metric_append_s);
	sb_puts(&b, "# HELP ssld_metric_points_total Metric points reported by training threads.\n# TYPE ssld_metric_points_total counter\n");
	sb_printf(&b, "ssld_metric_points_total %llu\n", (unsigned long long)ps.metric_calls);
	sb_puts(&b, "# HELP ssld_metric_points_written_total Metric points committed to the database.\n"
	            "# TYPE ssld_metric_points_written_total counter\n");
	sb_printf(&b, "ssld_metric_points_written_total %llu\n", (unsigned long long)bs.points_written);
	sb_puts(&b, "# HELP ssld_metric_points_dropped_total Metric points dropped because the buffer was full.\n"
	            "# TYPE ssld_metric_points_dropped_total counter\n");
	sb_printf(&b, "ssld_metric_points_dropped_total %llu\n", (unsigned long long)bs.dropped);
	sb_puts(&b, "# HELP ssld_metric_flushes_total Batch transactions committed.\n# TYPE ssld_metric_flushes_total counter\n");
	sb_printf(&b, "ssld_metric_flushes_total %llu\n", (unsigned long long)bs.flushes);
	sb_puts(&b, "# HELP ssld_metric_flush_failures_total Batch transactions that failed (rows kept for the next).\n"
	            "# TYPE ssld_metric_flush_failures_total counter\n");
	sb_printf(&b, "ssld_metric_flush_failures_total %llu\n", (unsigned long long)bs.failures);
	sb_puts(&b, "# HELP ssld_metric_flush_seconds_total Time spent in batch transactions.\n# TYPE ssld_metric_flush_seconds_total counter\n");
	sb_printf(&b, "ssld_metric_flush_seconds_total %.9f\n", bs.flush_seconds);
	sb_puts(&b, "# HELP ssld_metric_points_pending Metric points waiting for the next batch.\n# TYPE ssld_metric_points_pending gauge\n");
	sb_printf(&b, "ssld_metric_points_pending %zu\n", bs.pending);
	sb_puts(&b, "# HELP ssld_http_requests_total HTTP responses by status code.\n# TYPE ssld_http_requests_total counter\n");
	for (int c = 100; c < 600; c++) {
		uint64_t n = atomic_load_explicit(&api->codes[c], memory_order_relaxed);
		if (n) sb_printf(&b, "ssld_http_requests_total{code=\"%d\"} %llu\n", c, (unsigned long long)n);
	}
	ConnStats cs = { 0 };
	if (api->conns) conns_stats(api->conns, &cs);
	sb_puts(&b, "# HELP ssld_http_connections HTTP connections open now.\n# TYPE ssld_http_connections gauge\n");
	sb_printf(&b, "ssld_http_connections %d\n", cs.open);
	sb_puts(&b, "# HELP ssld_http_request_deadline_total Connections closed (408) because a request did not arrive whole within request-deadline.\n"
	            "# TYPE ssld_http_request_deadline_total counter\n");
	sb_printf(&b, "ssld_http_request_deadline_total %llu\n", (unsigned long long)cs.deadline_cut);
	GenQueueStats gs = { 0 };
	if (api->genq) genq_stats(api->genq, &gs);
	sb_puts(&b, "# HELP ssld_generate_running Generate requests running now.\n# TYPE ssld_generate_running gauge\n");
	sb_printf(&b, "ssld_generate_running %d\n", gs.running);
	sb_puts(&b, "# HELP ssld_generate_waiting Generate requests waiting for a generation thread.\n# TYPE ssld_generate_waiting gauge\n");
	sb_printf(&b, "ssld_generate_waiting %d\n", gs.waiting);
	sb_puts(&b, "# HELP ssld_generate_refused_total Generate requests refused (503) because the queue was full or the daemon stopping.\n"
	            "# TYPE ssld_generate_refused_total counter\n");
	sb_printf(&b, "ssld_generate_refused_total %llu\n", (unsigned long long)gs.refused);
	sb_puts(&b, "# HELP ssld_generate_cancelled_total Generate requests cancelled by a stop.\n# TYPE ssld_generate_cancelled_total counter\n");
	sb_printf(&b, "ssld_generate_cancelled_total %llu\n", (unsigned long long)gs.cancelled);
	sb_puts(&b, "# HELP ssld_uptime_seconds Seconds since the daemon started.\n# TYPE ssld_uptime_seconds gauge\n");
	sb_printf(&b, "ssld_uptime_seconds %.3f\n", store_now() - api->started);
	if (b.oom) {
		free(b.p);
		return reply_error(r, 503, "out_of_memory", NULL, "out of memory");
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(b.n, b.p, MHD_RESPMEM_MUST_FREE);
	if (!resp) free(b.p);
	return queue(r, 200, resp, "text/plain; version=0.0.4; charset=utf-8", 1);
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static enum MHD_Result dispatch(Req *r)
{
	const char *url = r->url;
	int get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	if (r->too_large)
		return reply_error(r, 413, "body_too_large", NULL, "the request body is larger than the limit of %zu bytes",
		                   r->api->cfg.max_body);
	if (strcmp(url, "/v1") == 0 || strncmp(url, "/v1/", 4) == 0) return route_v1(r, url + 3);
	if (strcmp(url, "/metrics") == 0) {
		if (!get) return reply_error(r, 405, "method_not_allowed", NULL, "%s %s: only GET is allowed", r->method, url);
		if (check_query(r, NULL) < 0 || require_read(r) < 0) return MHD_YES;
		return serve_prometheus(r);
	}
	if (!get) return reply_error(r, 405, "method_not_allowed", NULL, "%s %s: only GET is allowed here", r->method, url);
	return serve_static(r, url);
}

/* Content-Length headers of a request: how many, and whether their values differ. */
typedef struct ContentLengths { int n, conflict; const char *first; } ContentLengths;

static enum MHD_Result count_content_length(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	ContentLengths *c = cls;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0) return MHD_YES;
	c->n++;
	if (!c->first) c->first = value ? value : "";
	else if (strcmp(c->first, value ? value : "") != 0) c->conflict = 1;
	return MHD_YES;
}

/* MHD's URI log callback: it sees the raw request line's URL before MHD splits the query, and
 * what it returns becomes the request's context. A URL over the bounds above loses its query
 * here (MHD then parses an empty one) and is answered 414 by on_request. */
static void *note_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	Req *r = calloc(1, sizeof *r);
	if (!r) return NULL;
	r->api = cls;
	r->c = c;
	size_t len = strlen(uri);
	char *q = strchr(uri, '?');
	size_t args = 0;
	if (q) {
		args = 1;
		for (const char *p = q + 1; *p; p++) args += *p == '&';
	}
	if (len > URL_MAX_BYTES || args > URL_MAX_ARGS) {
		r->url_bytes = len;
		r->url_args = args;
		if (q) q[1] = 0;   /* the buffer is MHD's read buffer, writable; uri is only typed const */
	}
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	Api *api = cls;
	Req *r = *con_cls;
	if (!r || !r->started) {
		if (!r) {   /* note_uri could not allocate */
			r = calloc(1, sizeof *r);
			if (!r) return MHD_NO;
			r->api = api;
			r->c = c;
			*con_cls = r;
		}
		r->started = 1;
		if (r->url_bytes) {
			r->method = method;
			r->url = url;
			if (r->url_args > URL_MAX_ARGS)
				return reply_error(r, 414, "url_too_long", NULL, "the URL's query has %zu arguments; at most %d",
				                   r->url_args, URL_MAX_ARGS);
			return reply_error(r, 414, "url_too_long", NULL, "the URL is %zu bytes long; at most %d",
			                   r->url_bytes, URL_MAX_BYTES);
		}
		int up = datasets_upload_begin(r, method, url);   /* its body goes to a file, not r->body */
		if (up < 0) return MHD_NO;
		if (up) return MHD_YES;
		/* A declared body over the limit: a client that waits for "100 Continue", or one that
		 * announces a huge body, gets 413 before the body is read (MHD then closes the
		 * connection). Other clients are already sending it; their body is read and dropped, so
		 * they see the 413 instead of a reset connection. */
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		ContentLengths lens = { 0 };
		MHD_get_connection_values(c, MHD_HEADER_KIND, count_content_length, &lens);
		if (lens.conflict) {
			/* Which one frames the body is ambiguous (request smuggling): refuse, do not wait for
			 * a body of either length. */
			r->method = method;
			r->url = url;
			return reply_error(r, 400, "invalid_request", NULL,
			                   "the request has %d Content-Length headers with different values; send one", lens.n);
		}
		if (cl) {
			errno = 0;
			char *end;
			unsigned long long n = strtoull(cl, &end, 10);
			const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
			int early = (expect && strcasecmp(expect, "100-continue") == 0) || n > DRAIN_MAX;
			if (errno || *end || n > api->cfg.max_body) r->too_large = 1;
			if (r->too_large && early) {
				r->method = method;
				r->url = url;
				return reply_error(r, 413, "body_too_large", NULL,
				                   "the request body is larger than the limit of %zu bytes", api->cfg.max_body);
			}
		}
		return MHD_YES;
	}
	if (r->suspended) {   /* resumed: the generation queue is done with this request */
		r->suspended = 0;
		enum MHD_Result rc = r->upload ? datasets_upload_resumed(r) : generate_resumed(r);
		if (!r->answered && rc == MHD_YES) rc = MHD_NO;
		return rc;
	}
	if (r->answered) {   /* already answered (413): discard whatever still arrives */
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size && r->upload) {
		int up = datasets_upload_chunk(r, upload_data, *upload_size);
		*upload_size = 0;
		return up < 0 ? MHD_NO : MHD_YES;
	}
	if (*upload_size) {
		if (!r->too_large && r->len + *upload_size <= api->cfg.max_body) {
			if (r->len + *upload_size + 1 > r->cap) {
				size_t cap = r->cap ? r->cap : 4096;
				while (cap < r->len + *upload_size + 1) cap *= 2;
				char *p = realloc(r->body, cap);
				if (!p) return MHD_NO;
				r->body = p;
				r->cap = cap;
			}
			memcpy(r->body + r->len, upload_data, *upload_size);
			r->len += *upload_size;
			r->body[r->len] = 0;
		} else {
			r->too_large = 1;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	r->method = method;
	r->url = url;
	conns_received(c);   /* the request arrived whole: the deadline no longer applies */
	enum MHD_Result rc = dispatch(r);
	/* Every path must answer or wait for generation (suspended); never hang a client. */
	if (!r->answered && !r->suspended && rc == MHD_YES) rc = MHD_NO;
	return rc;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	Req *r = *con_cls;
	conns_answered(c);   /* the next request on this connection gets a fresh deadline */
	if (!r) return;
	generate_release(r);
	datasets_upload_end(r);
	free(r->cache_key);
	free(r->body);
	free(r);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = 0;
	slog(LOG_DEBUG, 0, "http: %s", msg);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

/* "127.0.0.1:8080", "[::1]:8080", "localhost:0", ":8080" (all interfaces) -> a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, int *v6,
                        char *err, size_t errlen)
{
	char host[256], port[16];
	const char *colon;
	if (listen[0] == '[') {
		const char *rb = strchr(listen, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - listen - 1) >= sizeof host) goto bad;
		memcpy(host, listen + 1, (size_t)(rb - listen - 1));
		host[rb - listen - 1] = 0;
		colon = rb + 1;
	} else {
		colon = strrchr(listen, ':');
		if (!colon || (size_t)(colon - listen) >= sizeof host) goto bad;
		memcpy(host, listen, (size_t)(colon - listen));
		host[colon - listen] = 0;
	}
	if (strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof port || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    atoi(colon + 1) > 65535)
		goto bad;
	snprintf(port, sizeof port, "%s", colon + 1);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (rc != 0 || !ai) {
		snprintf(err, errlen, "listen %s: cannot resolve '%s': %s", listen, host, gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	*v6 = ai->ai_family == AF_INET6;
	freeaddrinfo(ai);
	return 0;
bad:
	snprintf(err, errlen, "listen %s: expected ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080", listen);
	return -EINVAL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int api_new(const ApiConfig *cfg, Api **out, char *err, size_t errlen)
{
	*out = NULL;
	Api *api = calloc(1, sizeof *api);
	if (!api) {
		snprintf(err, errlen, "api: out of memory");
		return -ENOMEM;
	}
	api->cfg = *cfg;
	api->started = store_now();
	pthread_rwlock_init(&api->tok_lock, NULL);
	api->ntokens = -1;
	if (!api->cfg.max_body) api->cfg.max_body = 1 << 20;
	if (api->cfg.threads <= 0) api->cfg.threads = 2;
	if (api->cfg.max_connections <= 0) api->cfg.max_connections = 256;
	ApiDatasetLimits *dl = &api->cfg.datasets;
	if (!dl->max_upload_bytes) dl->max_upload_bytes = (uint64_t)1 << 30;
	if (!dl->max_dataset_bytes) dl->max_dataset_bytes = (uint64_t)4 << 30;
	if (!dl->max_files) dl->max_files = 50000;
	if (dl->max_ratio <= 0) dl->max_ratio = 200;
	if (!dl->max_per_owner) dl->max_per_owner = 50;
	if (!dl->quota_bytes) dl->quota_bytes = (uint64_t)20 << 30;
	api->listen = dup_or_null(cfg->listen ? cfg->listen : "127.0.0.1:8080");
	api->state_dir = dup_or_null(cfg->state_dir);
	api->shared_dir = dup_or_null(cfg->shared_dir ? cfg->shared_dir : cfg->state_dir);
	api->version = dup_or_null(cfg->version ? cfg->version : "unknown");
	int rc = 0;
	if (cfg->web_dir) {
		char real[PATH_MAX];
		if (realpath(cfg->web_dir, real)) api->web_dir = strdup(real);
		else slog(LOG_WARNING, 0, "web directory %s: %s; the dashboard is not served", cfg->web_dir, strerror(errno));
	}
	api->data_roots = calloc((size_t)(cfg->n_data_roots + 1), sizeof *api->data_roots);
	for (int i = 0; api->data_roots && i < cfg->n_data_roots; i++) api->data_roots[i] = strdup(cfg->data_roots[i]);
	api->cfg.data_roots = (const char *const *)api->data_roots;
	api->cfg.listen = api->listen;
	api->cfg.state_dir = api->state_dir;
	api->cfg.shared_dir = api->shared_dir;
	api->cfg.web_dir = api->web_dir;
	api->cfg.version = api->version;
	if (!api->listen || !api->version || !api->data_roots || (cfg->state_dir && !api->shared_dir)) {
		snprintf(err, errlen, "api: out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	if (cfg->tokens_file && (rc = api_reload_tokens(api, cfg->tokens_file, err, errlen)) < 0) goto fail;
	if (api->shared_dir && cfg->store && (rc = datasets_recover(api->shared_dir, cfg->store, err, errlen)) < 0) goto fail;
	if (api->state_dir) {
		/* Record that this state directory uses tokens (and which file), so that revoking the
		 * last one later does not silently open the API. */
		int64_t ntok = 0;
		char e[512];
		int required = auth_state_required(api->state_dir);
		if (!cfg->store || store_token_count(cfg->store, &ntok, e, sizeof e) < 0) ntok = 0;
		if ((cfg->tokens_file || ntok > 0 || required == 1) &&
		    auth_state_set(api->state_dir, cfg->tokens_file, 1, e, sizeof e) < 0)
			slog(LOG_WARNING, 0, "recording that authentication is required: %s", e);
	}
	/* Without a cache (out of memory) every answer is built. SSLD_FAULT=api_alloc@N means the
	 * N-th answer built, so fault-injection runs build every one too. */
	const char *fault = getenv("SSLD_FAULT");
	if (!(fault && strstr(fault, "api_alloc"))) api->cache = api_cache_new(128, (size_t)32 << 20);
	api->conns = conns_new(cfg->request_deadline_s);
	if (!api->conns) {
		snprintf(err, errlen, "api: out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = genq_new(&cfg->generate, &api->genq, err, errlen)) < 0) goto fail;

	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int v6 = 0;
	if (cfg->listen_fd > 0) {
		/* systemd socket activation: the socket is bound and listening already. */
		if (getsockname(cfg->listen_fd, (struct sockaddr *)&ss, &sl) != 0 ||
		    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
			snprintf(err, errlen, "listening socket fd %d from systemd: not a TCP/IP socket (%s)", cfg->listen_fd,
			         strerror(errno));
			rc = -EINVAL;
			goto fail;
		}
		v6 = ss.ss_family == AF_INET6;
	} else if ((rc = parse_listen(api->listen, &ss, &sl, &v6, err, errlen)) < 0)
		goto fail;
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME | (v6 ? MHD_USE_IPv6 : 0);
	uint16_t port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
	/* Where to listen goes in as an option array: a bound socket or an address, one or the other. */
	struct MHD_OptionItem where[3] = { { MHD_OPTION_END, 0, NULL }, { MHD_OPTION_END, 0, NULL }, { MHD_OPTION_END, 0, NULL } };
	if (cfg->listen_fd > 0) where[0] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd, NULL };
	else where[0] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, &ss };
	/* More connections from one address are closed as soon as they are accepted. */
	if (cfg->max_connections_per_ip > 0)
		where[1] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_connections_per_ip, NULL };
	api->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, api,
	                          MHD_OPTION_ARRAY, where,
	                          MHD_OPTION_THREAD_POOL_SIZE, (unsigned)api->cfg.threads,
	                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)api->cfg.max_connections,
	                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
	                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,   /* zeroed per request: keep it small */
	                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
	                          MHD_OPTION_NOTIFY_CONNECTION, conns_notify, api->conns,
	                          MHD_OPTION_EXTERNAL_LOGGER, mhd_log, api,
	                          MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
	                          MHD_OPTION_URI_LOG_CALLBACK, note_uri, api,
	                          MHD_OPTION_END);
	if (!api->d) {
		snprintf(err, errlen, "listen %s: cannot start the HTTP server (address in use or not allowed?)", api->listen);
		rc = -EADDRINUSE;
		goto fail;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(api->d, MHD_DAEMON_INFO_BIND_PORT);
	api->port = di ? di->port : port;
	*out = api;
	return 0;
fail:
	api_free(api);
	return rc;
}

int api_port(const Api *api) { return api->port; }

int api_set_node(Api *api, const char *node)
{
	char *copy = strdup(node ? node : "");
	if (!copy) return -ENOMEM;
	free(atomic_exchange(&api->node, copy));
	return 0;
}

void api_set_draining(Api *api, int draining)
{
	atomic_store(&api->draining, draining);
	if (draining && api->genq) genq_stop(api->genq);
}

int api_generating(Api *api) { return api && api->genq ? genq_busy(api->genq) : 0; }

void api_free(Api *api)
{
	if (!api) return;
	if (api->genq) {
		/* libmicrohttpd must not stop with a connection suspended: end the generations, then give
		 * their answers (503 shutting_down) a moment to reach the clients. */
		genq_stop(api->genq);
		while (genq_busy(api->genq) > 0) nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
		for (int i = 0; i < 200 && atomic_load(&api->gen_inflight) > 0; i++)
			nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	/* The same for uploads being unpacked: each answers once its archive is done. */
	while (atomic_load(&api->unpacks_running) > 0) nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	for (int i = 0; i < 200 && atomic_load(&api->unpacks_inflight) > 0; i++)
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	if (api->d) MHD_stop_daemon(api->d);
	genq_free(api->genq);
	conns_free(api->conns);
	api_cache_free(api->cache);
	for (int i = 0; api->data_roots && api->data_roots[i]; i++) free(api->data_roots[i]);
	free(api->data_roots);
	free(api->tokens);
	pthread_rwlock_destroy(&api->tok_lock);
	free(api->listen);
	free(api->state_dir);
	free(api->shared_dir);
	free(atomic_load(&api->node));
	free(api->web_dir);
	free(api->version);
	free(api);
}
