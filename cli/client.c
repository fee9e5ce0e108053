/* client.c - the HTTP side of the client commands (see client.h): configuration, one request
 * per connection, the server's errors.
 *
 * One request per connection (Connection: close) over a plain TCP socket: the daemon is on
 * loopback or a trusted network, so no TLS, no keep-alive, no libcurl. Answers are parsed with
 * cJSON by the commands. Deliberately not here: anything the server decides (validation, auth,
 * limits) - the client shows the server's error message as is - and the commands themselves
 * (submit.c, ls.c, show.c, watch.c, logs.c, cancel.c, results.c).
 */
#include "client.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../daemon/config.h"
#include "../storage/sha256.h"

#ifndef SSLD_VERSION
#define SSLD_VERSION "unknown"
#endif

#define MAX_RESPONSE (256u << 20)   /* a metrics answer can be large; anything past this is an error */

/* ---- configuration -------------------------------------------------------------------------- */

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
		char *k, *v;
		int kind = config_split_line(line, &k, &v);
		if (kind == 0) continue;
		if (kind < 0) {
			fprintf(stderr, "ssld: %s:%d: expected 'key = value'\n", path, lineno);
			rc = -1;
			break;
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

/* Reads the answer's header into buf (growing it); returns the index just past the blank line
 * with *n the bytes read so far, or -1 with err (no header: the server closed, or not HTTP). */
static long read_header(int fd, char **buf, size_t *cap, size_t *n, const char *what, const Client *c, char *err,
                        size_t errlen)
{
	for (;;) {
		(*buf)[*n] = 0;
		char *hend = strstr(*buf, "\r\n\r\n");
		if (hend) return (long)(hend - *buf) + 4;
		if (*n + 1 >= *cap) {
			char *p = *cap < (1u << 20) ? realloc(*buf, *cap * 2) : NULL;
			if (!p) {
				snprintf(err, errlen, "%s: the answer's header is too long", what);
				return -1;
			}
			*buf = p;
			*cap *= 2;
		}
		ssize_t r = recv(fd, *buf + *n, *cap - *n - 1, 0);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) {
			int e = errno;
			if (r < 0)
				snprintf(err, errlen, "%s: reading the answer from %s: %s", what, c->server,
				         e == EAGAIN ? "timed out" : strerror(e));
			else
				snprintf(err, errlen, "%s: %s did not answer with HTTP", what, c->server);
			return -1;
		}
		*n += (size_t)r;
	}
}

/* One request. Without a sink, or for an answer other than 200, the body is read into out->body.
 * With a sink a 200 answer's body is handed to it as it arrives and out->len counts the bytes. */
static int exchange(const Client *c, const char *method, const char *path, const char *body, size_t blen,
                    client_sink_cb sink, void *user, ClientResp *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	char what[600];
	snprintf(what, sizeof what, "%s %.500s", method, path);
	int fd = connect_server(c, err, errlen);
	if (fd < 0) return -1;
	char head[2048];
	int hn = snprintf(head, sizeof head,
	                  "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: ssld/%s\r\nAccept: application/json\r\n"
	                  "Connection: close\r\n",
	                  method, path, strchr(c->host, ':') ? "[" : "", c->host, strchr(c->host, ':') ? "]" : "", c->port,
	                  SSLD_VERSION);
	if (c->token[0]) hn += snprintf(head + hn, sizeof head - (size_t)hn, "Authorization: Bearer %s\r\n", c->token);
	if (body) hn += snprintf(head + hn, sizeof head - (size_t)hn, "Content-Type: %s\r\nContent-Length: %zu\r\n",
	                         c->content_type ? c->content_type : "application/json", blen);
	else if (strcmp(method, "POST") == 0) hn += snprintf(head + hn, sizeof head - (size_t)hn, "Content-Length: 0\r\n");
	hn += snprintf(head + hn, sizeof head - (size_t)hn, "\r\n");
	if (hn >= (int)sizeof head) {
		close(fd);
		snprintf(err, errlen, "request header too long (token or path)");
		return -1;
	}
	int rc = send_all(fd, head, (size_t)hn);
	for (size_t sent = 0; rc == 0 && body && sent < blen;) {   /* in slices, for a progress report */
		size_t n = blen - sent < (1u << 20) ? blen - sent : (1u << 20);
		rc = send_all(fd, body + sent, n);
		sent += n;
		if (c->progress) c->progress(c->progress_user, sent, blen);
	}
	/* A server that refuses early (413) may close before reading the whole body: read its answer anyway. */
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	long hlen = read_header(fd, &buf, &cap, &n, what, c, err, errlen);
	int major, minor, status;
	if (hlen >= 0 && sscanf(buf, "HTTP/%d.%d %d", &major, &minor, &status) != 3) {
		snprintf(err, errlen, "%s: %s did not answer with HTTP", what, c->server);
		hlen = -1;
	}
	if (hlen < 0) {
		if (rc < 0) snprintf(err, errlen, "%s: sending to %s: %s", what, c->server, strerror(-rc));
		free(buf);
		close(fd);
		return -1;
	}
	int chunked = 0;
	long long clen = -1;
	buf[hlen - 2] = 0;   /* the header lines, each ending in \r\n */
	for (char *line = strstr(buf, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
		const char *h = line + 2;
		if (strncasecmp(h, "Transfer-Encoding:", 18) == 0 && strstr(h, "chunked")) chunked = 1;
		if (strncasecmp(h, "Content-Length:", 15) == 0) clen = strtoll(h + 15, NULL, 10);
	}
	out->status = status;
	if (sink && status == 200 && !chunked) {
		/* Streamed: the body may be far larger than an answer held in memory (a checkpoint). */
		size_t have = n - (size_t)hlen;
		long long got = 0;
		const char *why = NULL;
		if (have && sink(user, buf + hlen, have) < 0) why = "writing it failed";
		got += (long long)have;
		while (!why && (clen < 0 || got < clen)) {
			ssize_t r = recv(fd, buf, cap, 0);
			if (r < 0 && errno == EINTR) continue;
			if (r < 0) why = errno == EAGAIN ? "timed out" : strerror(errno);
			if (r <= 0) break;
			if (sink(user, buf, (size_t)r) < 0) why = "writing it failed";
			got += r;
		}
		free(buf);
		close(fd);
		if (!why && clen >= 0 && got != clen) why = "the connection closed early";
		if (why) {
			snprintf(err, errlen, "%s: after %lld of %lld bytes: %s", what, got, clen, why);
			return -1;
		}
		out->len = (size_t)got;
		return 0;
	}
	for (;;) {
		if (n + 1 >= cap) {
			if (cap >= MAX_RESPONSE) {
				free(buf);
				close(fd);
				snprintf(err, errlen, "%s: the answer is larger than %u MiB", what, MAX_RESPONSE >> 20);
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
			snprintf(err, errlen, "%s: reading the answer from %s: %s", what, c->server,
			         e == EAGAIN ? "timed out" : strerror(e));
			return -1;
		}
		if (r == 0) break;
		n += (size_t)r;
	}
	close(fd);
	char *b = buf + hlen;
	size_t blen_in = n - (size_t)hlen;
	if (chunked) {
		long dn = dechunk(b, blen_in);
		if (dn < 0) {
			free(buf);
			snprintf(err, errlen, "%s: malformed chunked answer", what);
			return -1;
		}
		blen_in = (size_t)dn;
	} else if (clen >= 0 && (size_t)clen < blen_in) {
		blen_in = (size_t)clen;
	}
	memmove(buf, b, blen_in);
	buf[blen_in] = 0;
	if (sink && status == 200) {
		int src = sink(user, buf, blen_in);
		free(buf);
		if (src < 0) {
			snprintf(err, errlen, "%s: writing the answer failed", what);
			return -1;
		}
		out->len = blen_in;
		return 0;
	}
	out->body = buf;
	out->len = blen_in;
	return 0;
}

int client_http(const Client *c, const char *method, const char *path, const char *body, size_t blen, ClientResp *out,
                char *err, size_t errlen)
{
	return exchange(c, method, path, body, blen, NULL, NULL, out, err, errlen);
}

int client_download(const Client *c, const char *path, client_sink_cb sink, void *user, ClientResp *out, char *err,
                    size_t errlen)
{
	return exchange(c, "GET", path, NULL, 0, sink, user, out, err, errlen);
}

int client_server_error(const char *what, const ClientResp *r)
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

cJSON *client_get_json(const Client *c, const char *what, const char *path, int *status)
{
	ClientResp r;
	char err[768];
	if (status) *status = 0;
	if (client_http(c, "GET", path, NULL, 0, &r, err, sizeof err) < 0) {
		fprintf(stderr, "ssld %s: %s\n", what, err);
		return NULL;
	}
	if (status) *status = r.status;
	if (r.status != 200) {
		client_server_error(what, &r);
		free(r.body);
		return NULL;
	}
	cJSON *j = cJSON_Parse(r.body);
	if (!j) fprintf(stderr, "ssld %s: the server's answer is not JSON\n", what);
	free(r.body);
	return j;
}

/* ---- downloads ------------------------------------------------------------------------------ */

typedef struct SaveSink {
	FILE *f;
	Sha256 hash;
} SaveSink;

static int save_piece(void *user, const void *data, size_t n)
{
	SaveSink *s = user;
	sha256_update(&s->hash, data, n);
	return fwrite(data, 1, n, s->f) == n ? 0 : -1;
}

int client_save(const Client *c, const char *cmd, const char *path, const char *file, const char *sha256,
                long long *size)
{
	int to_stdout = strcmp(file, "-") == 0;
	char part[4200];
	snprintf(part, sizeof part, "%s.part", file);
	SaveSink s = { .f = to_stdout ? stdout : fopen(part, "wb") };
	if (!s.f) {
		fprintf(stderr, "ssld %s: %s: %s\n", cmd, part, strerror(errno));
		return 1;
	}
	sha256_init(&s.hash);
	ClientResp r;
	char err[768], hex[65];
	int rc = client_download(c, path, save_piece, &s, &r, err, sizeof err);
	int failed = rc < 0 || r.status != 200;
	if (rc < 0) fprintf(stderr, "ssld %s: %s\n", cmd, err);
	else if (r.status != 200) client_server_error(cmd, &r);
	free(r.body);
	int werr = to_stdout ? fflush(stdout) : fclose(s.f);
	if (!failed && werr != 0) {
		fprintf(stderr, "ssld %s: writing %s: %s\n", cmd, to_stdout ? "standard output" : part, strerror(errno));
		failed = 1;
	}
	if (!failed && sha256) {
		uint8_t d[32];
		sha256_final(&s.hash, d);
		for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
		if (strcmp(hex, sha256) != 0) {
			fprintf(stderr, "ssld %s: %s: the %zu bytes received have SHA-256 %.16s..., the server lists %.16s... "
			        "(the file changed on the server meanwhile?)%s\n", cmd, path, r.len, hex, sha256,
			        to_stdout ? "" : "; nothing written");
			failed = 1;
		}
	}
	if (!to_stdout) {
		if (!failed && rename(part, file) != 0) {
			fprintf(stderr, "ssld %s: %s: %s\n", cmd, file, strerror(errno));
			failed = 1;
		}
		if (failed) unlink(part);
	}
	if (!failed && size) *size = (long long)r.len;
	return failed;
}

/* ---- the commands' common parts ------------------------------------------------------------- */

int client_init(Client *c, const char *cmd, const CliOpt flags[2])
{
	memset(c, 0, sizeof *c);
	snprintf(c->server, sizeof c->server, "http://127.0.0.1:8080");
	if (load_client_conf(c->server, sizeof c->server, c->token, sizeof c->token) < 0) return 2;
	const char *env = getenv("SSLD_SERVER");
	if (env && *env) snprintf(c->server, sizeof c->server, "%s", env);
	env = getenv("SSLD_TOKEN");
	if (env && *env) snprintf(c->token, sizeof c->token, "%s", env);
	if (flags[0].value) snprintf(c->server, sizeof c->server, "%s", flags[0].value);
	if (flags[1].value) snprintf(c->token, sizeof c->token, "%s", flags[1].value);
	char err[512];
	if (parse_server(c, err, sizeof err) < 0) {
		fprintf(stderr, "ssld %s: %s\n", cmd, err);
		return 2;
	}
	return 0;
}

int client_parse_id(const char *cmd, const char *s, long long *id)
{
	char *end;
	errno = 0;
	long long v = s ? strtoll(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || v < 1) {
		fprintf(stderr, "ssld %s: expected a job id (a positive integer), got '%s'\n", cmd, s ? s : "");
		return -1;
	}
	*id = v;
	return 0;
}

cJSON *client_fetch_job(int argc, char **argv, long long *id, int *json, int *status)
{
	const char *cmd = argv[0];
	enum { O_OUTPUT, O_CLIENT = O_OUTPUT + 2 };
	CliOpt opts[] = { OUTPUT_OPTS, CLIENT_OPTS };
	const char *pos[1];
	int npos, rc = cli_args_parse(cmd, argc, argv, opts, 4, pos, 1, &npos);
	*status = rc == CLI_ARGS_HELP ? 0 : 2;
	if (rc != CLI_ARGS_OK || client_parse_id(cmd, npos ? pos[0] : NULL, id) < 0) return NULL;
	if ((*json = cli_output_json(cmd, &opts[O_OUTPUT])) < 0) return NULL;
	Client c;
	if (client_init(&c, cmd, &opts[O_CLIENT]) != 0) return NULL;
	char path[64];
	snprintf(path, sizeof path, "/v1/jobs/%lld", *id);
	cJSON *j = client_get_json(&c, cmd, path, NULL);
	*status = j ? 0 : 1;
	return j;
}

void client_print_json(const cJSON *j)
{
	char *text = cJSON_Print(j);
	if (text) printf("%s\n", text);
	free(text);
}
