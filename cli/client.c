/* cli_client.c - `ssld submit|ls|show|watch|cancel|results`: a small HTTP/1.1 client for the API
 * (see cli_client.h).
 *
 * One request per connection (Connection: close) over a plain TCP socket: the daemon is on
 * loopback or a trusted network, so no TLS, no keep-alive, no libcurl. Answers are parsed with
 * cJSON and printed as tables, or passed through with --json. Deliberately not here: anything the
 * server decides (validation, auth, limits) - the client shows the server's error message as is.
 */
#include "client.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef SSLD_VERSION
#define SSLD_VERSION "unknown"
#endif

#define MAX_RESPONSE (256u << 20)   /* a metrics answer can be large; anything past this is an error */
#define MAX_JOB_FILE (16u << 20)

/* ---- configuration -------------------------------------------------------------------------- */

typedef struct Client {
	char server[512];   /* as given, for messages */
	char host[256], port[16];
	char token[512];
	int json;           /* --json */
} Client;

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t') s++;
	size_t n = strlen(s);
	while (n && strchr(" \t\r\n", s[n - 1])) s[--n] = 0;
	return s;
}

/* "server = URL" and "token = TOKEN" from the client config file, if it exists. */
static int load_client_conf(char *server, size_t scap, char *token, size_t tcap)
{
	char path[1024];
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	if (xdg && *xdg) snprintf(path, sizeof path, "%s/ssld/client.conf", xdg);
	else if (home && *home) snprintf(path, sizeof path, "%s/.config/ssld/client.conf", home);
	else return 0;
	FILE *f = fopen(path, "r");
	if (!f) return 0;
	char line[1024];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *s = trim(line);
		if (!*s || *s == '#') continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			fprintf(stderr, "ssld: %s:%d: expected 'key = value'\n", path, lineno);
			rc = -1;
			break;
		}
		*eq = 0;
		char *k = trim(s), *v = trim(eq + 1);
		size_t vn = strlen(v);
		if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
			v[vn - 1] = 0;
			v++;
		}
		if (strcmp(k, "server") == 0) snprintf(server, scap, "%s", v);
		else if (strcmp(k, "token") == 0) snprintf(token, tcap, "%s", v);
		else {
			fprintf(stderr, "ssld: %s:%d: unknown key '%s' (expected server or token)\n", path, lineno, k);
			rc = -1;
			break;
		}
	}
	struct stat st;
	if (rc == 0 && token[0] && fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
		fprintf(stderr, "ssld: warning: %s holds a token but others may read it (chmod 600 %s)\n", path, path);
	fclose(f);
	return rc;
}

/* "http://host:port/", "host:port", "[::1]:port", "host" (port 8080). */
static int parse_server(Client *c, char *err, size_t errlen)
{
	const char *s = c->server;
	if (strncmp(s, "https://", 8) == 0) {
		snprintf(err, errlen, "server %.300s: https is not supported by this client; reach ssld over loopback, "
		         "an SSH tunnel or a TLS-terminating proxy's plain side", s);
		return -1;
	}
	if (strncmp(s, "http://", 7) == 0) s += 7;
	size_t n = strcspn(s, "/");
	char hp[300];
	if (n == 0 || n >= sizeof hp) goto bad;
	memcpy(hp, s, n);
	hp[n] = 0;
	const char *port = "8080";
	if (hp[0] == '[') {
		char *rb = strchr(hp, ']');
		if (!rb) goto bad;
		*rb = 0;
		if (strlen(hp + 1) >= sizeof c->host) goto bad;
		memcpy(c->host, hp + 1, strlen(hp + 1) + 1);
		if (rb[1] == ':') port = rb + 2;
		else if (rb[1]) goto bad;
	} else {
		char *colon = strrchr(hp, ':');
		if (colon) {
			*colon = 0;
			port = colon + 1;
		}
		if (strlen(hp) >= sizeof c->host) goto bad;
		memcpy(c->host, hp, strlen(hp) + 1);
	}
	if (!c->host[0] || !*port || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port)) goto bad;
	snprintf(c->port, sizeof c->port, "%s", port);
	return 0;
bad:
	snprintf(err, errlen, "server '%.300s': expected http://HOST:PORT, e.g. http://127.0.0.1:8080", c->server);
	return -1;
}

/* ---- HTTP ----------------------------------------------------------------------------------- */

typedef struct Resp {
	int status;
	char *body;         /* NUL-terminated */
	size_t len;
} Resp;

static int connect_server(const Client *c, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(c->host, c->port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "server %.300s: cannot resolve '%.255s': %s", c->server, c->host, gai_strerror(rc));
		return -1;
	}
	int fd = -1, e = 0;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {   /* localhost: ::1, then 127.0.0.1 */
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		struct timeval tv = { .tv_sec = 60 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		snprintf(err, errlen, "cannot connect to %s: %s (is ssld running there? set --server, SSLD_SERVER or "
		         "'server = ...' in ~/.config/ssld/client.conf)", c->server, strerror(e));
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR) continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Decodes a chunked body in place; returns the decoded length or -1. */
static long dechunk(char *p, size_t n)
{
	size_t in = 0, out = 0;
	for (;;) {
		char *end;
		if (in >= n) return -1;
		unsigned long sz = strtoul(p + in, &end, 16);
		char *eol = memchr(p + in, '\n', n - in);
		if (!eol || end == p + in) return -1;
		in = (size_t)(eol - p) + 1;
		if (sz == 0) break;
		if (sz > n - in) return -1;
		memmove(p + out, p + in, sz);
		out += sz;
		in += sz;
		if (in < n && p[in] == '\r') in++;
		if (in < n && p[in] == '\n') in++;
	}
	p[out] = 0;
	return (long)out;
}

/* One request. 0 with *out filled (any HTTP status), or -1 with err (no answer). */
static int http(const Client *c, const char *method, const char *path, const char *body, size_t blen, Resp *out,
                char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	int fd = connect_server(c, err, errlen);
	if (fd < 0) return -1;
	char head[2048];
	int hn = snprintf(head, sizeof head,
	                  "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: ssld/%s\r\nAccept: application/json\r\n"
	                  "Connection: close\r\n",
	                  method, path, strchr(c->host, ':') ? "[" : "", c->host, strchr(c->host, ':') ? "]" : "", c->port,
	                  SSLD_VERSION);
	if (c->token[0]) hn += snprintf(head + hn, sizeof head - (size_t)hn, "Authorization: Bearer %s\r\n", c->token);
	if (body) hn += snprintf(head + hn, sizeof head - (size_t)hn, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
	else if (strcmp(method, "POST") == 0) hn += snprintf(head + hn, sizeof head - (size_t)hn, "Content-Length: 0\r\n");
	hn += snprintf(head + hn, sizeof head - (size_t)hn, "\r\n");
	if (hn >= (int)sizeof head) {
		close(fd);
		snprintf(err, errlen, "request header too long (token or path)");
		return -1;
	}
	int rc = send_all(fd, head, (size_t)hn);
	if (rc == 0 && body) rc = send_all(fd, body, blen);
	/* A server that refuses early (413) may close before reading the whole body: read its answer anyway. */
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (;;) {
		if (n + 1 >= cap) {
			if (cap >= MAX_RESPONSE) {
				free(buf);
				close(fd);
				snprintf(err, errlen, "%s %s: the answer is larger than %u MiB", method, path, MAX_RESPONSE >> 20);
				return -1;
			}
			char *p = realloc(buf, cap * 2);
			if (!p) {
				free(buf);
				close(fd);
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			buf = p;
			cap *= 2;
		}
		ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			close(fd);
			snprintf(err, errlen, "%s %s: reading the answer from %s: %s", method, path, c->server,
			         e == EAGAIN ? "timed out" : strerror(e));
			return -1;
		}
		if (r == 0) break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	int major, minor, status;
	char *hend = strstr(buf, "\r\n\r\n");
	if (sscanf(buf, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || !hend) {
		free(buf);
		if (rc < 0) snprintf(err, errlen, "%s %s: sending to %s: %s", method, path, c->server, strerror(-rc));
		else snprintf(err, errlen, "%s %s: %s did not answer with HTTP", method, path, c->server);
		return -1;
	}
	*hend = 0;
	char *b = hend + 4;
	size_t blen_in = n - (size_t)(b - buf);
	int chunked = 0;
	long clen = -1;
	for (char *line = strstr(buf, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
		const char *h = line + 2;
		if (strncasecmp(h, "Transfer-Encoding:", 18) == 0 && strstr(h, "chunked")) chunked = 1;
		if (strncasecmp(h, "Content-Length:", 15) == 0) clen = strtol(h + 15, NULL, 10);
	}
	if (chunked) {
		long dn = dechunk(b, blen_in);
		if (dn < 0) {
			free(buf);
			snprintf(err, errlen, "%s %s: malformed chunked answer", method, path);
			return -1;
		}
		blen_in = (size_t)dn;
	} else if (clen >= 0 && (size_t)clen < blen_in) {
		blen_in = (size_t)clen;
	}
	memmove(buf, b, blen_in);
	buf[blen_in] = 0;
	out->status = status;
	out->body = buf;
	out->len = blen_in;
	return 0;
}

/* Prints the server's error ("HTTP 403 forbidden: job 3 belongs to 'bob'...") and returns 1. */
static int server_error(const char *what, const Resp *r)
{
	cJSON *j = cJSON_Parse(r->body);
	const cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
	const cJSON *code = e ? cJSON_GetObjectItemCaseSensitive(e, "code") : NULL;
	const cJSON *msg = e ? cJSON_GetObjectItemCaseSensitive(e, "message") : NULL;
	if (cJSON_IsString(code) && cJSON_IsString(msg))
		fprintf(stderr, "ssld %s: HTTP %d %s: %s\n", what, r->status, code->valuestring, msg->valuestring);
	else
		fprintf(stderr, "ssld %s: HTTP %d: %.300s\n", what, r->status, r->body ? r->body : "");
	/* a refused job spec lists every error; the first was printed above */
	const cJSON *all = j ? cJSON_GetObjectItemCaseSensitive(j, "errors") : NULL;
	for (const cJSON *x = cJSON_IsArray(all) && all->child ? all->child->next : NULL; x; x = x->next) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(x, "message");
		if (cJSON_IsString(m))
			fprintf(stderr, "  %s\n", m->valuestring);
	}
	if (r->status == 401) fprintf(stderr, "  (pass a token with --token, SSLD_TOKEN or 'token = ...' in ~/.config/ssld/client.conf)\n");
	cJSON_Delete(j);
	return 1;
}

/* GET path -> parsed JSON (caller deletes), or NULL after printing why. */
static cJSON *get_json(const Client *c, const char *what, const char *path, int *status)
{
	Resp r;
	char err[768];
	if (http(c, "GET", path, NULL, 0, &r, err, sizeof err) < 0) {
		fprintf(stderr, "ssld %s: %s\n", what, err);
		return NULL;
	}
	if (status) *status = r.status;
	if (r.status != 200) {
		server_error(what, &r);
		free(r.body);
		return NULL;
	}
	cJSON *j = cJSON_Parse(r.body);
	if (!j) fprintf(stderr, "ssld %s: the server's answer is not JSON\n", what);
	free(r.body);
	return j;
}

/* ---- formatting ----------------------------------------------------------------------------- */

static const char *str_or(const cJSON *o, const char *key, const char *def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) && v->valuestring ? v->valuestring : def;
}

static double num_or(const cJSON *o, const char *key, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* 75 -> "1:15", 4000 -> "1:06:40", 9 -> "0:09". */
static void fmt_duration(double s, char *out, size_t cap)
{
	if (!(s >= 0) || s > 1e7) {
		snprintf(out, cap, "--:--");
		return;
	}
	long t = lround(s);
	if (t >= 3600) snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
}

static void print_pretty(const cJSON *j)
{
	char *text = cJSON_Print(j);
	if (text) printf("%s\n", text);
	free(text);
}

/* "2025-01-31T12:00:00.123Z" -> "2025-01-31 12:00:00" (UTC, as the server sends it). */
static void fmt_time(const char *iso, char *out, size_t cap)
{
	if (!iso) {
		snprintf(out, cap, "-");
		return;
	}
	snprintf(out, cap, "%.19s", iso);
	if (strlen(out) > 10 && out[10] == 'T') out[10] = ' ';
}

/* "62% pretrain" from a job's progress object. */
static void fmt_progress(const cJSON *job, char *out, size_t cap)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(job, "progress");
	const cJSON *fr = p ? cJSON_GetObjectItemCaseSensitive(p, "fraction") : NULL;
	const char *stage = p ? str_or(p, "stage", NULL) : NULL;
	if (cJSON_IsNumber(fr)) snprintf(out, cap, "%3.0f%%%s%s", 100 * fr->valuedouble, stage ? " " : "", stage ? stage : "");
	else snprintf(out, cap, "-");
}

/* ---- commands ------------------------------------------------------------------------------- */

static int parse_id(const char *what, const char *s, long long *id)
{
	char *end;
	errno = 0;
	long long v = s ? strtoll(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || v < 1) {
		fprintf(stderr, "ssld %s: expected a job id (a positive integer), got '%s'\n", what, s ? s : "");
		return -1;
	}
	*id = v;
	return 0;
}

static int cmd_watch(const Client *c, long long id, double interval);

static int cmd_submit(const Client *c, const char *file, int watch, double interval)
{
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	if (!f) {
		fprintf(stderr, "ssld submit: %s: %s\n", file, strerror(errno));
		return 1;
	}
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (n == cap) {
			if (cap >= MAX_JOB_FILE) {
				fprintf(stderr, "ssld submit: %s is larger than %u MiB; is it a job spec?\n", file, MAX_JOB_FILE >> 20);
				free(buf);
				buf = NULL;
				break;
			}
			char *p = realloc(buf, cap * 2);
			if (!p) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = p;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0) break;
	}
	int bad = f != stdin && ferror(f);
	if (f != stdin) fclose(f);
	if (!buf || bad) {
		if (bad) fprintf(stderr, "ssld submit: reading %s failed\n", file);
		free(buf);
		return 1;
	}
	Resp r;
	char err[768];
	int rc = http(c, "POST", "/v1/jobs", buf, n, &r, err, sizeof err);
	free(buf);
	if (rc < 0) {
		fprintf(stderr, "ssld submit: %s\n", err);
		return 1;
	}
	if (r.status != 201) {
		server_error("submit", &r);
		free(r.body);
		return 1;
	}
	cJSON *j = cJSON_Parse(r.body);
	free(r.body);
	long long id = (long long)num_or(j, "id", 0);
	cJSON_Delete(j);
	if (id <= 0) {
		fprintf(stderr, "ssld submit: the server's answer has no job id\n");
		return 1;
	}
	printf("%lld\n", id);
	fflush(stdout);
	fprintf(stderr, "queued as job %lld%s\n", id, watch ? "" : "; follow it with `ssld watch ID`, see `ssld results ID` when done");
	return watch ? cmd_watch(c, id, interval) : 0;
}

static int cmd_ls(const Client *c, const char *state, const char *owner, int limit)
{
	char path[512];
	int n = snprintf(path, sizeof path, "/v1/jobs?limit=%d", limit);
	/* States and owners are plain tokens; anything a URL would need escaped is refused by the server anyway. */
	if (state) n += snprintf(path + n, sizeof path - (size_t)n, "&state=%s", state);
	if (owner) snprintf(path + n, sizeof path - (size_t)n, "&owner=%s", owner);
	cJSON *j = get_json(c, "ls", path, NULL);
	if (!j) return 1;
	if (c->json) {
		print_pretty(j);
		cJSON_Delete(j);
		return 0;
	}
	const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(j, "jobs");
	if (cJSON_GetArraySize(jobs) == 0) printf("no jobs\n");
	else printf("%-6s %-10s %-20s %-12s %-24s %s\n", "ID", "STATE", "METHOD", "OWNER", "PROGRESS", "NAME");
	const cJSON *job;
	cJSON_ArrayForEach(job, jobs) {
		char prog[64];
		fmt_progress(job, prog, sizeof prog);
		printf("%-6lld %-10s %-20s %-12s %-24s %s\n", (long long)num_or(job, "id", 0), str_or(job, "state", "?"),
		       str_or(job, "method", "?"), str_or(job, "owner", "-"), prog, str_or(job, "name", ""));
	}
	cJSON_Delete(j);
	return 0;
}

static void print_metrics_line(const cJSON *job)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(job, "metrics");
	if (cJSON_GetArraySize(m) == 0) return;
	printf("  %-11s", "metrics");
	const cJSON *k;
	int i = 0;
	cJSON_ArrayForEach(k, m) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(k, "value");
		if (i && i % 4 == 0) printf("\n  %-11s", "");
		if (cJSON_IsNumber(v)) printf(" %s=%.5g", k->string, v->valuedouble);
		else printf(" %s=null", k->string);
		i++;
	}
	printf("\n");
}

static int cmd_show(const Client *c, long long id)
{
	char path[64];
	snprintf(path, sizeof path, "/v1/jobs/%lld", id);
	cJSON *j = get_json(c, "show", path, NULL);
	if (!j) return 1;
	if (c->json) {
		print_pretty(j);
		cJSON_Delete(j);
		return 0;
	}
	char t1[32], t2[32], t3[32];
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "progress");
	printf("job %lld  %s\n", id, str_or(j, "name", ""));
	printf("  %-11s %s\n", "method", str_or(j, "method", "?"));
	const cJSON *cr = cJSON_GetObjectItemCaseSensitive(j, "cancel_requested");
	printf("  %-11s %s%s\n", "state", str_or(j, "state", "?"),
	       cJSON_IsTrue(cr) && strcmp(str_or(j, "state", ""), "running") == 0 ? " (cancel requested)" : "");
	printf("  %-11s %s\n", "owner", str_or(j, "owner", "-"));
	printf("  %-11s %d\n", "priority", (int)num_or(j, "priority", 0));
	fmt_time(str_or(j, "created_at", NULL), t1, sizeof t1);
	fmt_time(str_or(j, "started_at", NULL), t2, sizeof t2);
	fmt_time(str_or(j, "finished_at", NULL), t3, sizeof t3);
	printf("  %-11s %s   started %s   finished %s (UTC)\n", "created", t1, t2, t3);
	if (p) {
		char prog[64], eta[32];
		fmt_progress(j, prog, sizeof prog);
		fmt_duration(num_or(p, "eta_s", -1), eta, sizeof eta);
		printf("  %-11s step %lld/%lld  %s%s%s\n", "progress", (long long)num_or(p, "step", 0), (long long)num_or(p, "total", 0),
		       prog, num_or(p, "eta_s", -1) >= 0 ? "  ETA " : "", num_or(p, "eta_s", -1) >= 0 ? eta : "");
	}
	double ck = num_or(j, "checkpoint_step", -1);
	if (ck >= 0) printf("  %-11s step %lld (attempts: %d)\n", "checkpoint", (long long)ck, (int)num_or(j, "attempts", 0));
	const char *waiting = str_or(j, "waiting", NULL);
	if (waiting) printf("  %-11s %s\n", "waiting", waiting);
	const char *error = str_or(j, "error", NULL);
	if (error) printf("  %-11s %s\n", "error", error);
	print_metrics_line(j);
	if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "results")))
		printf("  %-11s `ssld results %lld`\n", "results", id);
	cJSON_Delete(j);
	return 0;
}

static int cmd_cancel(const Client *c, long long id)
{
	char path[64], err[768];
	snprintf(path, sizeof path, "/v1/jobs/%lld/cancel", id);
	Resp r;
	if (http(c, "POST", path, NULL, 0, &r, err, sizeof err) < 0) {
		fprintf(stderr, "ssld cancel: %s\n", err);
		return 1;
	}
	int rc = 0;
	if (r.status == 200) printf("job %lld cancelled\n", id);
	else if (r.status == 202) printf("job %lld: cancel requested; it stops within one training step\n", id);
	else rc = server_error("cancel", &r);
	free(r.body);
	return rc;
}

static void print_results(long long id, const cJSON *job)
{
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(job, "results");
	printf("job %lld  %s  (%s)\n", id, str_or(job, "name", ""), str_or(job, "method", "?"));
	const cJSON *pre = cJSON_GetObjectItemCaseSensitive(res, "pretext");
	if (cJSON_GetArraySize(pre) > 0) {
		printf("pretext:");
		const cJSON *k;
		cJSON_ArrayForEach(k, pre) {
			if (cJSON_IsNumber(k)) printf(" %s=%.6g", k->string, k->valuedouble);
			else if (cJSON_IsString(k)) printf(" %s=%s", k->string, k->valuestring);
		}
		printf("\n");
	}
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(res, "evaluations");
	if (cJSON_GetArraySize(ev) == 0) {
		printf("no evaluations in the spec\n");
		return;
	}
	printf("%-14s %9s %7s %14s  %s\n", "PROTOCOL", "FRACTION", "LABELS", "TEST_ACCURACY", "OTHER");
	const cJSON *e;
	cJSON_ArrayForEach(e, ev) {
		double acc = num_or(e, "test_accuracy", NAN);
		char accs[32];
		if (isnan(acc)) snprintf(accs, sizeof accs, "-");
		else snprintf(accs, sizeof accs, "%.4f", acc);
		printf("%-14s %9.4g %7lld %14s ", str_or(e, "protocol", "?"), num_or(e, "label_fraction", NAN),
		       (long long)num_or(e, "labels", 0), accs);
		const cJSON *k;
		cJSON_ArrayForEach(k, e) {
			if (!cJSON_IsNumber(k) || strcmp(k->string, "label_fraction") == 0 || strcmp(k->string, "labels") == 0 ||
			    strcmp(k->string, "test_accuracy") == 0)
				continue;
			printf(" %s=%.4g", k->string, k->valuedouble);
		}
		printf("\n");
	}
}

static int cmd_results(const Client *c, long long id)
{
	char path[64];
	snprintf(path, sizeof path, "/v1/jobs/%lld", id);
	cJSON *j = get_json(c, "results", path, NULL);
	if (!j) return 1;
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
	int rc = 0;
	if (!cJSON_IsObject(res)) {
		const char *state = str_or(j, "state", "?");
		const char *error = str_or(j, "error", NULL);
		fprintf(stderr, "ssld results: job %lld is %s%s%s; results appear when it succeeds\n", id, state,
		        error ? ": " : "", error ? error : "");
		rc = 1;
	} else if (c->json) {
		print_pretty(res);
	} else {
		print_results(id, j);
	}
	cJSON_Delete(j);
	return rc;
}

/* One status line: on a terminal a bar redrawn in place, else a plain line. */
static void watch_line(long long id, const cJSON *j, int tty)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "progress");
	const char *state = str_or(j, "state", "?"), *stage = p ? str_or(p, "stage", NULL) : NULL;
	double fr = p ? num_or(p, "fraction", -1) : -1, eta = p ? num_or(p, "eta_s", -1) : -1;
	long long step = p ? (long long)num_or(p, "step", 0) : 0, total = p ? (long long)num_or(p, "total", 0) : 0;
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "metrics");
	const cJSON *loss = m ? cJSON_GetObjectItemCaseSensitive(m, "loss") : NULL;
	const cJSON *lv = loss ? cJSON_GetObjectItemCaseSensitive(loss, "value") : NULL;
	char etas[32], losss[48] = "", bar[64] = "";
	fmt_duration(eta, etas, sizeof etas);
	if (cJSON_IsNumber(lv)) snprintf(losss, sizeof losss, "  loss %.4f", lv->valuedouble);
	if (tty) {
		enum { W = 30 };
		int filled = fr >= 0 ? (int)(fr * W + 0.5) : 0;
		if (filled > W) filled = W;
		bar[0] = '[';
		for (int i = 0; i < W; i++) bar[1 + i] = i < filled ? '#' : '-';
		bar[W + 1] = ']';
		bar[W + 2] = 0;
		printf("\r\033[Kjob %lld %-9s %s %3.0f%%  step %lld/%lld%s%s%s  ETA %s", id, state, bar, fr >= 0 ? 100 * fr : 0.0,
		       step, total, stage ? "  " : "", stage ? stage : "", losss, eta >= 0 ? etas : "--:--");
	} else {
		printf("job %lld %s", id, state);
		const char *waiting = str_or(j, "waiting", NULL);
		if (waiting) printf(" (waiting: %s)", waiting);
		if (fr >= 0) printf(" %.0f%% step %lld/%lld", 100 * fr, step, total);
		if (stage) printf(" %s", stage);
		printf("%s", losss);
		if (eta >= 0) printf(" eta %s", etas);
		printf("\n");
	}
	fflush(stdout);
}

static int terminal_state(const char *s)
{
	return strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0;
}

static int cmd_watch(const Client *c, long long id, double interval)
{
	int tty = isatty(STDOUT_FILENO);
	char path[64];
	snprintf(path, sizeof path, "/v1/jobs/%lld", id);
	char last_phase[128] = "";   /* state and stage */
	long long last_step = -1;
	double last_print = 0;
	int misses = 0;
	for (;;) {
		int status = 0;
		cJSON *j = get_json(c, "watch", path, &status);
		if (!j) {
			/* A daemon restart (systemctl restart ssld) is not the end of the job: retry a while.
			 * A refusal (401, 403, 404: no such job) will not change by waiting. */
			if ((status >= 400 && status < 500) || ++misses > 30) return 1;
			usleep((useconds_t)(interval * 1e6));
			continue;
		}
		misses = 0;
		const char *state = str_or(j, "state", "?");
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "progress");
		char phase[128];
		snprintf(phase, sizeof phase, "%s/%s", state, p ? str_or(p, "stage", "") : "");
		long long step = p ? (long long)num_or(p, "step", 0) : 0;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		double now = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
		int fin = terminal_state(state), new_phase = strcmp(phase, last_phase) != 0, moved = step != last_step;
		/* A terminal redraws on every change; a log gets a line per state or stage, and at most one
		 * every 5 s while the steps advance. */
		if (fin || new_phase || (moved && (tty || now - last_print >= 5))) {
			watch_line(id, j, tty);
			last_print = now;
		}
		snprintf(last_phase, sizeof last_phase, "%s", phase);
		last_step = step;
		if (fin) {
			if (tty) printf("\n");
			const char *error = str_or(j, "error", NULL);
			int ok = strcmp(state, "succeeded") == 0;
			if (ok && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "results"))) print_results(id, j);
			else if (!ok) fprintf(stderr, "job %lld %s%s%s\n", id, state, error ? ": " : "", error ? error : "");
			cJSON_Delete(j);
			return ok ? 0 : 1;
		}
		cJSON_Delete(j);
		usleep((useconds_t)(interval * 1e6));
	}
}

/* ---- entry ---------------------------------------------------------------------------------- */

static const char *const commands[] = { "submit", "ls", "show", "watch", "cancel", "results", NULL };

int cli_client_is_command(const char *cmd)
{
	for (const char *const *c = commands; *c; c++)
		if (strcmp(cmd, *c) == 0) return 1;
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: ssld submit JOB.json [--watch]    queue a job (JOB.json may be - for stdin); prints its id\n"
	      "       ssld ls [--state S,..] [--owner NAME] [--limit N]\n"
	      "       ssld show ID                      state, progress, latest metrics, error\n"
	      "       ssld watch ID [--interval SECONDS] progress bar with ETA and loss; exit 0 if the job succeeded\n"
	      "       ssld cancel ID\n"
	      "       ssld results ID                   evaluation table of a finished job\n"
	      "options: --server URL (default http://127.0.0.1:8080), --token TOKEN, --json (ls, show, results)\n"
	      "The server and token may also come from SSLD_SERVER / SSLD_TOKEN or from 'server = URL' and\n"
	      "'token = TOKEN' lines in ~/.config/ssld/client.conf ($XDG_CONFIG_HOME/ssld/client.conf).\n",
	      f);
}

int cli_client_main(int argc, char **argv)
{
	const char *cmd = argv[0];
	Client c;
	memset(&c, 0, sizeof c);
	snprintf(c.server, sizeof c.server, "http://127.0.0.1:8080");
	if (load_client_conf(c.server, sizeof c.server, c.token, sizeof c.token) < 0) return 2;
	const char *env = getenv("SSLD_SERVER");
	if (env && *env) snprintf(c.server, sizeof c.server, "%s", env);
	env = getenv("SSLD_TOKEN");
	if (env && *env) snprintf(c.token, sizeof c.token, "%s", env);

	const char *pos = NULL, *state = NULL, *owner = NULL;
	int watch = 0, limit = 50;
	double interval = 1.0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(a, "--json") == 0) c.json = 1;
		else if (strcmp(a, "--watch") == 0) watch = 1;
		else if (strcmp(a, "--server") == 0 && val) snprintf(c.server, sizeof c.server, "%s", argv[++i]);
		else if (strcmp(a, "--token") == 0 && val) snprintf(c.token, sizeof c.token, "%s", argv[++i]);
		else if (strcmp(a, "--state") == 0 && val) state = argv[++i];
		else if (strcmp(a, "--owner") == 0 && val) owner = argv[++i];
		else if (strcmp(a, "--limit") == 0 && val) {
			limit = atoi(argv[++i]);
			if (limit < 1 || limit > 1000) {
				fprintf(stderr, "ssld %s: --limit: expected 1..1000\n", cmd);
				return 2;
			}
		} else if (strcmp(a, "--interval") == 0 && val) {
			interval = strtod(argv[++i], NULL);
			if (!(interval >= 0.05 && interval <= 3600)) {
				fprintf(stderr, "ssld %s: --interval: expected seconds in 0.05..3600\n", cmd);
				return 2;
			}
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "ssld %s: unknown option '%s'%s\n", cmd, a, val ? "" : " (or a missing value)");
			usage(stderr);
			return 2;
		} else if (!pos) pos = a;
		else {
			fprintf(stderr, "ssld %s: unexpected argument '%s'\n", cmd, a);
			return 2;
		}
	}
	char err[512];
	if (parse_server(&c, err, sizeof err) < 0) {
		fprintf(stderr, "ssld %s: %s\n", cmd, err);
		return 2;
	}
	if (strcmp(cmd, "ls") == 0) {
		if (pos) {
			fprintf(stderr, "ssld ls: unexpected argument '%s'\n", pos);
			return 2;
		}
		return cmd_ls(&c, state, owner, limit);
	}
	if (strcmp(cmd, "submit") == 0) {
		if (!pos) {
			fprintf(stderr, "ssld submit: needs a job file (JSON; - for stdin)\n");
			return 2;
		}
		return cmd_submit(&c, pos, watch, interval);
	}
	long long id;
	if (parse_id(cmd, pos, &id) < 0) return 2;
	if (strcmp(cmd, "show") == 0) return cmd_show(&c, id);
	if (strcmp(cmd, "watch") == 0) return cmd_watch(&c, id, interval);
	if (strcmp(cmd, "cancel") == 0) return cmd_cancel(&c, id);
	if (strcmp(cmd, "results") == 0) return cmd_results(&c, id);
	usage(stderr);
	return 2;
}
