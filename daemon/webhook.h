/* webhook.h - `--webhook URL`: tell another service when a job ends.
 *
 * When a job reaches succeeded, failed or cancelled, one thread POSTs a JSON document to the URL:
 *   {"event": "job.ended", "job": {"id", "name", "method", "owner", "state", "error",
 *    "created", "finished", "url": "/v1/jobs/ID"}, "results": {...the job's results, or null}}
 * (results carry the headline and the evaluation table). A delivery that gets no answer, a
 * connection error or a 5xx/429 is retried after 1, 2, 4, 8 s (5 attempts); a 2xx or another 4xx
 * ends it. Deliveries are at least once per ended job while the daemon runs, in the order jobs
 * ended; they are not kept across a restart. At most WEBHOOK_QUEUE jobs wait; beyond that the
 * oldest waiting one is dropped and logged. The HTTP client is libcurl (http and https only, no
 * redirects, 10 s per attempt).
 */
#ifndef SSLD_DAEMON_WEBHOOK_H
#define SSLD_DAEMON_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "../storage/store.h"

enum { WEBHOOK_QUEUE = 1024, WEBHOOK_ATTEMPTS = 5 };

typedef struct Webhook Webhook;

/* Checks the URL (http:// or https://) and starts the delivery thread. 0, or -1 with err. */
int webhook_start(const char *url, Store *st, Webhook **out, char *err, size_t errlen);
/* Any thread, cheap: job_id ended; its record is read and delivered by the webhook's thread. */
void webhook_job_ended(Webhook *w, int64_t job_id);
/* Stops the thread (a delivery in progress finishes its attempt; waiting ones are logged as not
 * delivered) and frees. NULL is fine. */
void webhook_stop(Webhook *w);

#endif
