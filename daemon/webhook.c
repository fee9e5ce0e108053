/* webhook.c - one delivery thread POSTing ended jobs to the configured URL (see webhook.h).
 *
 * The thread owns no list of its own: what is to be delivered, how often it was tried and when it
 * is due again are rows of the store's outbox, so the loop is claim the oldest row, wait until it
 * is due, POST, record the outcome. Not here: which transactions write the rows (storage/).
 */
#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/strbuf.h"
#include "../storage/log.h"

struct Webhook {
	char *url, *node;
	Store *st;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int woken;                      /* a job ended since the thread last looked */
	atomic_int stop;
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

/* The document for one job. 0, or a store code (STORE_ENOTFOUND: no such job) with err. */
static int payload(Webhook *w, int64_t id, Sbuf *b, char *err, size_t errlen)
{
	StoreJob j;
	int rc = store_job_get(w->st, id, &j, err, errlen);
	if (rc < 0) return rc;
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
		return STORE_ENOMEM;
	}
	return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *u)
{
	(void)p; (void)u;
	return size * n;
}

/* libcurl asks about once a second, and more often while data moves: a stop abandons the attempt. */
static int keep_going(void *u, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt; (void)dn; (void)ut; (void)un;
	return atomic_load(&((Webhook *)u)->stop) ? 1 : 0;
}

/* One attempt: the HTTP status, or 0 with err when there was no answer. */
static long post_once(Webhook *w, CURL *c, const Sbuf *body, char *err, size_t errlen)
{
	char cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	h = curl_slist_append(h, "User-Agent: ssld-webhook");
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, w->url);
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
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, keep_going);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	else snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
	curl_slist_free_all(h);
	return status;
}

/* Waits up to s seconds for a wake-up or the stop, and consumes the wake-up. */
static void wait_for(Webhook *w, double s)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	double whole = (double)(time_t)s;
	until.tv_sec += (time_t)s;
	until.tv_nsec += (long)((s - whole) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (!atomic_load(&w->stop) && !w->woken)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT) break;
	w->woken = 0;
	pthread_mutex_unlock(&w->mu);
}

/* One attempt of the claimed delivery d, and its outcome recorded. */
static void attempt(Webhook *w, CURL *c, const StoreDelivery *d)
{
	char err[512], serr[512];
	int64_t id = d->job_id;
	int n = d->attempts + 1;
	Sbuf body = { 0 };
	DeliveryState outcome = DELIVERY_PENDING;
	long status = 0;
	double retry = 0;
	err[0] = 0;
	int rc = payload(w, id, &body, err, sizeof err);
	if (rc == STORE_ENOTFOUND) {   /* the job row is gone: nothing left to announce */
		outcome = DELIVERY_FAILED;
	} else if (rc < 0) {           /* the database is away: the row stays claimed, tried again */
		slog(LOG_WARNING, id, "webhook: reading the job: %s; trying again", err);
		free(body.p);
		wait_for(w, 1);
		return;
	} else if (!c) {
		snprintf(err, sizeof err, "libcurl could not start");
		outcome = DELIVERY_FAILED;
	} else {
		status = post_once(w, c, &body, err, sizeof err);
		if (atomic_load(&w->stop) && status == 0) {
			slog(LOG_NOTICE, id, "webhook: attempt %d abandoned: the daemon is stopping; delivered after the next start", n);
			free(body.p);
			return;
		}
		int again = status == 0 || status >= 500 || status == 429;
		if (status >= 200 && status < 300) {
			outcome = DELIVERY_DELIVERED;
			err[0] = 0;
		} else {
			if (status) snprintf(err, sizeof err, "HTTP %ld", status);
			if (!again || n >= WEBHOOK_ATTEMPTS) outcome = DELIVERY_FAILED;
			else retry = (double)(1 << (n - 1));
		}
	}
	free(body.p);
	/* Recorded first, logged after: a "delivered" line means the row says so. */
	rc = store_delivery_record(w->st, d->id, w->node, outcome, status, err[0] ? err : NULL, retry, WEBHOOK_CLAIM_S, serr,
	                           sizeof serr);
	if (outcome == DELIVERY_DELIVERED && rc == 0)
		slog(LOG_INFO, id, "webhook: delivered (HTTP %ld, attempt %d)", status, n);
	else if (outcome == DELIVERY_FAILED && rc == 0)
		slog(LOG_WARNING, id, "webhook: not delivered: %s (attempt %d)", err, n);
	else if (rc == 0)
		slog(LOG_NOTICE, id, "webhook: %s, retrying in %.0f s", err, retry);
	else if (rc == STORE_FENCED)
		slog(LOG_NOTICE, id, "webhook: %s (attempt %d); another node took the delivery over (%s)",
		     outcome == DELIVERY_DELIVERED ? "delivered" : err, n, serr);
	else {   /* still pending and claimed: attempted again (at least once) */
		slog(LOG_WARNING, id, "webhook: %s (attempt %d), but recording it failed: %s; it will be made again",
		     outcome == DELIVERY_DELIVERED ? "delivered" : err, n, serr);
		wait_for(w, 1);
	}
}

static void *run(void *arg)
{
	Webhook *w = arg;
	CURL *c = curl_easy_init();
	char err[512];
	int db_failing = 0;
	int pruned = 0;
	struct timespec last_prune = { 0 };
	while (!atomic_load(&w->stop)) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!pruned || now.tv_sec - last_prune.tv_sec >= 600) {   /* at start, then every 10 minutes */
			if (store_delivery_prune(w->st, WEBHOOK_KEEP_S, WEBHOOK_KEEP_ROWS, err, sizeof err) < 0)
				slog(LOG_WARNING, 0, "webhook: %s", err);
			pruned = 1;
			last_prune = now;
		}
		StoreDelivery d;
		int rc = store_delivery_claim(w->st, w->node, WEBHOOK_CLAIM_S, &d, err, sizeof err);
		if (rc < 0 && !db_failing) slog(LOG_WARNING, 0, "webhook: %s; trying again", err);
		db_failing = rc < 0;
		if (rc <= 0) wait_for(w, rc < 0 ? 1 : WEBHOOK_SCAN_S);
		else if (d.wait_s > 0) wait_for(w, d.wait_s);   /* its retry is not due yet; it stays ours meanwhile */
		else attempt(w, c, &d);
	}
	if (c) curl_easy_cleanup(c);
	return NULL;
}

int webhook_start(const char *url, Store *st, const char *node, int shared, Webhook **out, char *err, size_t errlen)
{
	*out = NULL;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
		snprintf(err, errlen, "webhook: '%.200s' is not an http:// or https:// URL", url);
		return -1;
	}
	char serr[512];
	int n = store_delivery_release(st, shared ? node : NULL, serr, sizeof serr);
	if (n < 0) slog(LOG_WARNING, 0, "webhook: %s (they are taken back when their claims expire)", serr);
	else if (n > 0) slog(LOG_NOTICE, 0, "webhook: %d delivery(s) claimed before the restart taken back", n);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "webhook: libcurl does not initialise");
		return -1;
	}
	Webhook *w = calloc(1, sizeof *w);
	if (!w || !(w->url = strdup(url)) || !(w->node = strdup(node ? node : ""))) {
		if (w) free(w->url);
		free(w);
		curl_global_cleanup();
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
		free(w->node);
		free(w);
		curl_global_cleanup();
		return -1;
	}
	*out = w;
	return 0;
}

void webhook_job_ended(Webhook *w, int64_t job_id)
{
	(void)job_id;   /* its row says everything; the thread takes rows oldest first */
	if (!w) return;
	pthread_mutex_lock(&w->mu);
	w->woken = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void webhook_stop(Webhook *w)
{
	if (!w) return;
	pthread_mutex_lock(&w->mu);
	atomic_store(&w->stop, 1);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->url);
	free(w->node);
	free(w);
	curl_global_cleanup();
}
