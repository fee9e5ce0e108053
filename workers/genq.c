/* genq.c - the generation queue (see genq.h): a few threads, a bounded FIFO, one stop flag.
 *
 * The stop flag doubles as every task's cancel flag (GenerateRequest.cancel): a stop reaches a
 * running task before its next token. Not here: what a task's answer means to a client.
 */
#include "genq.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/monotime.h"

struct GenQueue {
	GenQueueConfig cfg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	GenTask *head, *tail;
	int waiting, running;
	atomic_int stopping;
	uint64_t finished, cancelled, refused;
	pthread_t *threads;
	int started;
};

/* ---- the threads ---------------------------------------------------------------------------- */

static void *gen_thread(void *arg)
{
	GenQueue *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->head && !atomic_load(&q->stopping)) pthread_cond_wait(&q->cv, &q->mu);
		GenTask *t = q->head;
		if (!t) break;   /* stopping and nothing left */
		q->head = t->next;
		if (!q->head) q->tail = NULL;
		q->waiting--;
		q->running++;
		pthread_mutex_unlock(&q->mu);

		double t0 = mono_seconds();
		t->waited_s = t0 - t->waited_s;   /* it held the submit time */
		if (atomic_load(&q->stopping)) {
			snprintf(t->err, sizeof t->err, "generation cancelled");
			t->rc = RUNNER_CANCELLED;
		} else {
			t->rc = runner_generate(t->spec_json, t->work_dir, &t->req, &t->result_json, t->err, sizeof t->err);
		}
		t->run_s = mono_seconds() - t0;

		int cancelled = t->rc == RUNNER_CANCELLED;
		t->done(t);   /* last touch: the caller may free t from here on */
		/* Counted out only after done: genq_busy == 0 means every done has returned. */
		pthread_mutex_lock(&q->mu);
		q->running--;
		q->finished++;
		q->cancelled += (uint64_t)cancelled;
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* ---- the interface -------------------------------------------------------------------------- */

int genq_new(const GenQueueConfig *cfg, GenQueue **out, char *err, size_t errlen)
{
	*out = NULL;
	GenQueue *q = calloc(1, sizeof *q);
	if (!q) {
		snprintf(err, errlen, "generation queue: out of memory");
		return -ENOMEM;
	}
	q->cfg = *cfg;
	if (q->cfg.threads <= 0) q->cfg.threads = 1;
	if (q->cfg.max_waiting < 0) q->cfg.max_waiting = 0;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->threads = calloc((size_t)q->cfg.threads, sizeof *q->threads);
	if (!q->threads) {
		snprintf(err, errlen, "generation queue: out of memory");
		genq_free(q);
		return -ENOMEM;
	}
	for (; q->started < q->cfg.threads; q->started++) {
		int rc = pthread_create(&q->threads[q->started], NULL, gen_thread, q);
		if (rc != 0) {
			snprintf(err, errlen, "generation queue: cannot start a thread: %s", strerror(rc));
			genq_free(q);
			return -rc;
		}
	}
	*out = q;
	return 0;
}

int genq_submit(GenQueue *q, GenTask *t)
{
	pthread_mutex_lock(&q->mu);
	int rc = 0;
	if (atomic_load(&q->stopping)) rc = GENQ_ESTOPPED;
	else if (q->running + q->waiting >= q->cfg.threads + q->cfg.max_waiting) rc = GENQ_EFULL;
	if (rc < 0) {
		q->refused++;
		pthread_mutex_unlock(&q->mu);
		return rc;
	}
	t->req.cancel = &q->stopping;
	t->req.max_seconds = q->cfg.max_seconds;
	t->tokens_capped = 0;
	if (q->cfg.max_tokens > 0 && t->req.max_tokens > q->cfg.max_tokens) {
		t->req.max_tokens = q->cfg.max_tokens;
		t->tokens_capped = 1;
	}
	t->rc = 0;
	t->result_json = NULL;
	t->err[0] = 0;
	t->waited_s = mono_seconds();
	t->next = NULL;
	if (q->tail) q->tail->next = t;
	else q->head = t;
	q->tail = t;
	q->waiting++;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

void genq_stop(GenQueue *q)
{
	pthread_mutex_lock(&q->mu);
	atomic_store(&q->stopping, 1);
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

int genq_busy(GenQueue *q)
{
	pthread_mutex_lock(&q->mu);
	int n = q->running + q->waiting;
	pthread_mutex_unlock(&q->mu);
	return n;
}

void genq_stats(GenQueue *q, GenQueueStats *s)
{
	pthread_mutex_lock(&q->mu);
	*s = (GenQueueStats){ .running = q->running, .waiting = q->waiting, .finished = q->finished,
	                      .cancelled = q->cancelled, .refused = q->refused };
	pthread_mutex_unlock(&q->mu);
}

const GenQueueConfig *genq_config(const GenQueue *q) { return &q->cfg; }

void genq_free(GenQueue *q)
{
	if (!q) return;
	genq_stop(q);
	for (int i = 0; i < q->started; i++) pthread_join(q->threads[i], NULL);
	free(q->threads);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}
