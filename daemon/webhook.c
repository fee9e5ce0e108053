/* webhook.c - one delivery thread POSTing ended jobs to the configured URL (see webhook.h). */
#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/strbuf.h"
#include "../storage/log.h"

struct Webhook {
	char *url;
	Store *st;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int64_t queue[WEBHOOK_QUEUE];   /* ring of ended job ids */
	int head, n;
	int stop;
};

static void put_time(Sbuf *b, double t)
{
	if (t <= 0) {
		sb_puts(b, "null");
		return;
	}
	time_t s = (time_t)t;
	struct tm tm;
	char buf[40];
	gmtime_r(&s, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
	sb_printf(b, "\"%s.%03dZ\"", buf, (int)((t - (double)s) * 1000) % 1000);
}

/* The document for one job. 0, or -1 with err. */
static int payload(Webhook *w, int64_t id, Sbuf *b, char *err, size_t errlen)
{
	StoreJob j;
	if (store_job_get(w->st, id, &j, err, errlen) < 0) return -1;
	sb_printf(b, "{\"event\":\"job.ended\",\"job\":{\"id\":%lld,\"name\":", (long long)j.id);
	sb_json_str(b, j.name ? j.name : "");
	sb_puts(b, ",\"method\":");
	sb_json_str(b, j.method ? j.method : "");
	sb_puts(b, ",\"owner\":");
	sb_json_str(b, j.owner ? j.owner : "");
	sb_printf(b, ",\"state\":\"%s\",\"error\":", job_state_name(j.state));
	if (j.error) sb_json_str(b, j.error);
	else sb_puts(b, "null");
	sb_puts(b, ",\"created\":");
	put_time(b, j.created_at);
	sb_puts(b, ",\"finished\":");
	put_time(b, j.finished_at);
	sb_printf(b, ",\"url\":\"/v1/jobs/%lld\"},\"results\":", (long long)j.id);
	/* results is JSON the runner wrote (stored as text): passed through as it is. */
	sb_puts(b, j.results && *j.results ? j.results : "null");
	sb_puts(b, "}");
	store_job_clear(&j);
	if (b->oom) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *u)
{
	(void)p; (void)u;
	return size * n;
}

/* One attempt: the HTTP status, or 0 with err when there was no answer. */
static long post_once(CURL *c, const char *url, const Sbuf *body, char *err, size_t errlen)
{
	char cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	h = curl_slist_append(h, "User-Agent: ssld-webhook");
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->p);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->n);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	else snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
	curl_slist_free_all(h);
	return status;
}

/* Waits s seconds or until stop; 1 if stopping. Called with mu held. */
static int wait_or_stop(Webhook *w, double s)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)s;
	while (!w->stop)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT) break;
	return w->stop;
}

static void deliver(Webhook *w, CURL *c, int64_t id)
{
	char err[512];
	Sbuf body = { 0 };
	if (payload(w, id, &body, err, sizeof err) < 0) {
		slog(LOG_WARNING, id, "webhook: not sent: reading the job: %s", err);
		free(body.p);
		return;
	}
	double backoff = 1;
	for (int attempt = 1;; attempt++) {
		err[0] = 0;
		long status = post_once(c, w->url, &body, err, sizeof err);
		if (status >= 200 && status < 300) {
			slog(LOG_INFO, id, "webhook: delivered (HTTP %ld, attempt %d)", status, attempt);
			break;
		}
		int retry = status == 0 || status >= 500 || status == 429;
		if (!retry || attempt == WEBHOOK_ATTEMPTS) {
			if (status) slog(LOG_WARNING, id, "webhook: not delivered: HTTP %ld (attempt %d)", status, attempt);
			else slog(LOG_WARNING, id, "webhook: not delivered: %s (attempt %d)", err, attempt);
			break;
		}
		if (status) slog(LOG_NOTICE, id, "webhook: HTTP %ld, retrying in %.0f s", status, backoff);
		else slog(LOG_NOTICE, id, "webhook: %s, retrying in %.0f s", err, backoff);
		pthread_mutex_lock(&w->mu);
		int stopping = wait_or_stop(w, backoff);
		pthread_mutex_unlock(&w->mu);
		if (stopping) {
			slog(LOG_WARNING, id, "webhook: not delivered: the daemon is stopping");
			break;
		}
		backoff *= 2;
	}
	free(body.p);
}

static void *run(void *arg)
{
	Webhook *w = arg;
	CURL *c = curl_easy_init();
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && w->n == 0) pthread_cond_wait(&w->cv, &w->mu);
		if (w->stop) break;
		int64_t id = w->queue[w->head];
		w->head = (w->head + 1) % WEBHOOK_QUEUE;
		w->n--;
		pthread_mutex_unlock(&w->mu);
		if (c) deliver(w, c, id);
		else slog(LOG_WARNING, id, "webhook: not delivered: libcurl could not start");
		pthread_mutex_lock(&w->mu);
	}
	for (; w->n > 0; w->n--, w->head = (w->head + 1) % WEBHOOK_QUEUE)
		slog(LOG_WARNING, w->queue[w->head], "webhook: not delivered: the daemon is stopping");
	pthread_mutex_unlock(&w->mu);
	if (c) curl_easy_cleanup(c);
	return NULL;
}

int webhook_start(const char *url, Store *st, Webhook **out, char *err, size_t errlen)
{
	*out = NULL;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
		snprintf(err, errlen, "webhook: '%.200s' is not an http:// or https:// URL", url);
		return -1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "webhook: libcurl does not initialise");
		return -1;
	}
	Webhook *w = calloc(1, sizeof *w);
	if (!w || !(w->url = strdup(url))) {
		free(w);
		snprintf(err, errlen, "webhook: out of memory");
		return -1;
	}
	w->st = st;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&w->mu, NULL);
	int rc = pthread_create(&w->thread, NULL, run, w);
	if (rc != 0) {
		snprintf(err, errlen, "webhook: cannot start its thread: %s", strerror(rc));
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w->url);
		free(w);
		return -1;
	}
	*out = w;
	return 0;
}

void webhook_job_ended(Webhook *w, int64_t job_id)
{
	if (!w) return;
	pthread_mutex_lock(&w->mu);
	if (w->n == WEBHOOK_QUEUE) {
		slog(LOG_WARNING, w->queue[w->head], "webhook: not delivered: %d ended jobs were waiting", WEBHOOK_QUEUE);
		w->head = (w->head + 1) % WEBHOOK_QUEUE;
		w->n--;
	}
	w->queue[(w->head + w->n) % WEBHOOK_QUEUE] = job_id;
	w->n++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void webhook_stop(Webhook *w)
{
	if (!w) return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->url);
	free(w);
	curl_global_cleanup();
}
