/* webhook.h - `--webhook URL`: tell another service when a job ends.
 *
 * When a job reaches succeeded, failed or cancelled, one thread POSTs a JSON document to the URL:
 *   {"event": "job.ended", "job": {"id", "name", "method", "owner", "state", "error",
 *    "created", "finished", "url": "/v1/jobs/ID"}, "results": {...the job's results, or null}}
 * (results carry the headline and the evaluation table). A delivery that gets no answer, a
 * connection error or a 5xx/429 is retried after 1, 2, 4, 8 s (WEBHOOK_ATTEMPTS attempts in all,
 * counted across restarts); a 2xx or another 4xx ends it. The HTTP client is libcurl (http and
 * https only, no redirects, 10 s per attempt).
 *
 * Deliveries are kept in the database (store.h, "the outbox"): the daemon calls
 * store_set_outbox(st, 1) before anything can end a job, so the transaction that ends a job also
 * writes its delivery row, and this thread takes rows oldest first, claiming each (so nodes
 * sharing a database never deliver one together; a dead node's claim is taken over after
 * WEBHOOK_CLAIM_S), and records every attempt's outcome there. A stop or a crash at any point
 * loses nothing: the row is delivered after the restart. Delivery is at least once: a stop or a
 * crash between the receiver's 2xx and its recording, or a claim that expired while its node
 * was still sending, repeats a POST. webhook_job_ended wakes the thread at once; a scan every
 * WEBHOOK_SCAN_S finds rows no wake-up announced (ended by another node, or by a lease
 * reclaim). Ended rows are kept WEBHOOK_KEEP_S seconds, at most WEBHOOK_KEEP_ROWS of them.
 */
#ifndef SSLD_DAEMON_WEBHOOK_H
#define SSLD_DAEMON_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "../storage/store.h"

enum {
	WEBHOOK_ATTEMPTS = 5,
	WEBHOOK_CLAIM_S = 60,             /* a claim outlives one attempt (10 s) with room to spare */
	WEBHOOK_SCAN_S = 5,
	WEBHOOK_KEEP_S = 7 * 24 * 3600,
	WEBHOOK_KEEP_ROWS = 10000,
};

typedef struct Webhook Webhook;

/* Checks the URL (http:// or https://), takes back the claims node held before a restart (every
 * claim when shared is 0: the database is this daemon's alone) and starts the delivery thread.
 * 0, or -1 with err. */
int webhook_start(const char *url, Store *st, const char *node, int shared, Webhook **out, char *err, size_t errlen);
/* Any thread, cheap: job_id ended (its delivery row is committed); the thread looks at once. */
void webhook_job_ended(Webhook *w, int64_t job_id);
/* Stops the thread (an attempt in flight is abandoned and made again after the next start) and
 * frees. NULL is fine. */
void webhook_stop(Webhook *w);

#endif
