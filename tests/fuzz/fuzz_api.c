/* fuzz_api.c - libFuzzer harness for the HTTP API: each input becomes one real request to a
 * real libmicrohttpd daemon (api_new on 127.0.0.1, an ephemeral port) in this process, so URL
 * decoding, query arguments, routing, the numeric and id parsers, authentication, the body limit
 * and jobspec_parse on POST bodies all run as in ssld.
 *
 * Input: a control byte, the URL up to the first '\n', an Authorization header value up to the
 * next '\n' (empty = none), then the body.
 *   control bits 0-2: method (GET POST HEAD PUT DELETE OPTIONS PATCH BREW)
 *   bit 3: "Expect: 100-continue"   bit 4: pad the body with spaces past the 64 KiB body limit
 * Bytes the request line cannot carry (controls, space, DEL) are sent percent-encoded, so the
 * URL reaches MHD's decoder rather than breaking the framing.
 * The store is a SQLite file in the scratch directory with a token ("Bearer fuzz-token"), a
 * finished job 1 with metrics, events and an artifact, a queued job 2; data roots hold a small
 * CSV so a POST can succeed (at most 32 queued jobs, then 429). A 5xx other than 503, or a
 * connection closed without an answer (FUZZ_API_LAX=1 allows that), is a finding; so is any
 * sanitizer report on the server's threads.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../api/api.h"
#include "../../storage/batch.h"
#include "../../storage/log.h"
#include "../../storage/sha256.h"
#include "../../storage/store.h"
#include "fuzz_common.h"

static Store *st;
static StoreBatch *batch;
static Api *api;
static int port;
static const char *roots[1];

int LLVMFuzzerInitialize(int *argc, char ***argv);
/* connect() that survives libFuzzer's SIGALRM (its -timeout watchdog): an interrupted connect
 * goes on in the background, so wait until the socket is writable and read its outcome. */
static int connect_retry(int fd, const struct sockaddr_in *sa)
{
	if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0)
		return 0;
	if (errno != EINTR)
		return -1;
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int r;
	while ((r = poll(&pfd, 1, 20000)) < 0 && errno == EINTR)
		;
	if (r <= 0)
		return -1;
	int soerr = 0;
	socklen_t len = sizeof soerr;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -1;
	errno = soerr;
	return soerr == 0 ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_api: %s: %s\n", what, err);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	char err[512];
	slog_set_level(getenv("FUZZ_API_LOG") ? LOG_DEBUG : LOG_CRIT);   /* 400s are not news */
	mkdir(fuzz_path("state"), 0700);
	mkdir(fuzz_path("state/jobs"), 0700);
	mkdir(fuzz_path("state/jobs/1"), 0700);
	mkdir(fuzz_path("data"), 0700);
	mkdir(fuzz_path("web"), 0700);
	mkdir(fuzz_path("web/js"), 0700);
	fuzz_write("data/train.csv", (const uint8_t *)"1,2,0\n3,4,1\n5,6,0\n7,8,1\n", 24, 0);
	fuzz_write("web/index.html", (const uint8_t *)"<html></html>\n", 14, 0);
	fuzz_write("web/js/app.js", (const uint8_t *)"1;\n", 3, 0);
	fuzz_write("state/jobs/1/views.png", (const uint8_t *)"\x89PNG\r\n\x1a\n", 8, 0);
	if (store_open(fuzz_path("state/ssld.db"), &st, err, sizeof err) < 0)
		die("store_open", err);
	if (store_batch_new(st, 0, &batch, err, sizeof err) < 0)
		die("store_batch_new", err);
	char hex[65];
	sha256_hex("fuzz-token", 10, hex);
	if (store_token_add(st, "fuzzer", hex, 0, err, sizeof err) < 0)
		die("store_token_add", err);
	static const char spec[] = "{\"method\":\"simclr\",\"dataset\":{\"format\":\"csv\",\"train\":\"train.csv\"}}";
	StoreNewJob nj = { .spec = spec, .name = "seed", .method = "simclr", .owner = "fuzzer" };
	int64_t id;
	StoreJob j;
	memset(&j, 0, sizeof j);
	if (store_job_insert(st, &nj, &id, err, sizeof err) < 0 || store_job_claim(st, &j, err, sizeof err) != 1)
		die("job 1", err);
	store_job_clear(&j);
	for (int s = 1; s <= 50; s++) {
		store_batch_metric(batch, id, s, "loss", 2.0 / s);
		store_batch_metric(batch, id, s, "lr", 0.001);
	}
	store_batch_event(batch, id, LOG_INFO, "started");
	store_batch_event(batch, id, LOG_WARNING, "a \"quoted\" warning\n");
	store_batch_progress(batch, id, 50, 50, "pretrain", 1, 0);
	if (store_batch_flush(batch, err, sizeof err) < 0)
		die("flush", err);
	if (store_artifact_put(st, id, "views.png", fuzz_path("state/jobs/1/views.png"), err, sizeof err) < 0)
		die("artifact", err);
	if (store_job_finish(st, id, JOB_SUCCEEDED, "{\"knn\":{\"top1\":0.5}}", NULL, err, sizeof err) < 0)
		die("finish", err);
	if (store_job_insert(st, &nj, &id, err, sizeof err) < 0)
		die("job 2", err);

	roots[0] = strdup(fuzz_path("data"));
	char state_dir[512], web_dir[512];
	snprintf(state_dir, sizeof state_dir, "%s", fuzz_path("state"));
	snprintf(web_dir, sizeof web_dir, "%s", fuzz_path("web"));
	ApiConfig ac = { .listen = "127.0.0.1:0", .store = st, .batch = batch, .state_dir = state_dir,
	                 .data_roots = roots, .n_data_roots = 1, .web_dir = web_dir,
	                 .max_body = 64 << 10, .max_queued = 32, .threads = 2, .version = "fuzz" };
	if (api_new(&ac, &api, err, sizeof err) < 0)
		die("api_new", err);
	port = api_port(api);
	return 0;
}

/* Appends s[0..n) to out, percent-encoding what a request line or header cannot hold. */
static size_t put_escaped(char *out, const uint8_t *s, size_t n, int header)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = s[i];
		if (ch <= 0x20 || ch == 0x7f) {
			if (header && ch == ' ') {
				out[o++] = ' ';
				continue;
			}
			o += (size_t)sprintf(out + o, "%%%02X", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	return o;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;   /* the server may close early (413): not a finding by itself */
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[8] = { "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW" };
	if (size < 1)
		return 0;
	int ctl = data[0];
	const uint8_t *p = data + 1, *end = data + size;
	const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
	const uint8_t *url = p;
	size_t url_len = nl ? (size_t)(nl - p) : (size_t)(end - p);
	const uint8_t *auth = NULL, *body = NULL;
	size_t auth_len = 0, body_len = 0;
	if (nl) {
		p = nl + 1;
		nl = memchr(p, '\n', (size_t)(end - p));
		auth = p;
		auth_len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (nl) {
			body = nl + 1;
			body_len = (size_t)(end - body);
		}
	}
	size_t pad = (ctl & 16) ? (64u << 10) + 1 : 0;   /* ApiConfig.max_body + 1 */
	size_t cap = 256 + 3 * (url_len + auth_len) + body_len + pad;
	char *req = malloc(cap);
	if (!req)
		return 0;
	size_t n = (size_t)sprintf(req, "%s ", methods[ctl & 7]);
	if (url_len == 0 || url[0] != '/')
		req[n++] = '/';
	n += put_escaped(req + n, url, url_len, 0);
	n += (size_t)sprintf(req + n, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
	if (auth_len) {
		n += (size_t)sprintf(req + n, "Authorization: ");
		n += put_escaped(req + n, auth, auth_len, 1);
		n += (size_t)sprintf(req + n, "\r\n");
	}
	if (ctl & 8)
		n += (size_t)sprintf(req + n, "Expect: 100-continue\r\n");
	n += (size_t)sprintf(req + n, "Content-Length: %zu\r\n\r\n", body_len + pad);
	if (body_len) {
		memcpy(req + n, body, body_len);
		n += body_len;
	}
	memset(req + n, ' ', pad);
	n += pad;

	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 20 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (fd < 0 || connect_retry(fd, &sa) < 0) {
		perror("fuzz_api: connect");
		abort();
	}
	send_all(fd, req, n);
	char resp[512], rest[4096];   /* the start of the answer is kept; the rest is drained */
	size_t got = 0;
	for (;;) {
		ssize_t r = got < sizeof resp ? recv(fd, resp + got, sizeof resp - got, 0) : recv(fd, rest, sizeof rest, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			fprintf(stderr, "fuzz_api: no answer within %ld s\n", (long)tv.tv_sec);
			abort();
		}
		if (r <= 0)
			break;
		if (got < sizeof resp)
			got += (size_t)r;
	}
	close(fd);
	free(req);
	int status = 0;
	const char *sl = got >= 12 && memcmp(resp, "HTTP/1.", 7) == 0 ? resp : NULL;
	if (sl && atoi(sl + 9) == 100) {   /* "100 Continue", then the answer */
		const char *e = memmem(resp, got, "\r\n\r\n", 4);
		sl = e && (size_t)(e + 4 - resp) + 12 <= got && memcmp(e + 4, "HTTP/1.", 7) == 0 ? e + 4 : NULL;
	}
	if (sl)
		status = atoi(sl + 9);
	if (status == 0) {
		/* server.c promises every request an answer ("never hang a client"); MHD answers what
		 * it cannot parse itself (400, 414, 431). FUZZ_API_LAX=1 turns this check off. */
		if (!getenv("FUZZ_API_LAX")) {
			fprintf(stderr, "fuzz_api: connection closed without a status line (%zu bytes: %.*s)\n", got,
			        (int)(got < 200 ? got : 200), resp);
			abort();
		}
		return 0;
	}
	if (status >= 500 && status != 503) {
		fprintf(stderr, "fuzz_api: server error %d:\n%.*s\n", status, (int)got, resp);
		abort();
	}
	return 0;
}
