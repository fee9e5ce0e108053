/* genq.h - bounded, cancellable generation work off the HTTP threads.
 *
 * Sampling from a checkpoint (runner_generate) can take minutes on a large model. The server
 * hands each request to this queue instead of running it on the thread that read it: a few
 * threads run one task each, a bounded number wait, and the rest are refused at once (the caller
 * answers 503). Each task is capped in time (text sampling stops after max_seconds and says it
 * was truncated) and in size (max_tokens), and a stop cancels every task between two tokens.
 * Not here: HTTP (the caller suspends its connection and resumes it from `done`), the
 * authorisation and parsing of the request (api/routes.c).
 *
 *   GenQueueConfig gc = { .threads = 1, .max_waiting = 4, .max_seconds = 60, .max_tokens = 4096 };
 *   GenQueue *q;
 *   if (genq_new(&gc, &q, err, sizeof err) < 0) fail(err);
 *   GenTask *t = calloc(1, sizeof *t);
 *   t->spec_json = spec; t->work_dir = dir; t->req = req; t->done = my_done; t->user = me;
 *   if (genq_submit(q, t) == GENQ_EFULL) answer_503();
 *   ...my_done(t) runs on a queue thread: t->rc, t->result_json (caller frees), t->err
 *   genq_stop(q);                  // SIGTERM: refuse new tasks, cancel the others; returns at once
 *   genq_free(q);                  // joins: every submitted task's done has run
 */
#ifndef SSLD_WORKERS_GENQ_H
#define SSLD_WORKERS_GENQ_H

#include <stddef.h>
#include <stdint.h>

#include "runner.h"

typedef struct GenQueue GenQueue;

typedef struct GenQueueConfig {
	int threads;          /* tasks running at once (default 1) */
	int max_waiting;      /* tasks that may wait for a thread; more are refused (GENQ_EFULL); 0 = none */
	double max_seconds;   /* > 0: text sampling stops after this long ("truncated_by": "max_seconds") */
	int max_tokens;       /* > 0: longer text requests are cut to this many tokens (tokens_capped) */
} GenQueueConfig;

typedef struct GenTask GenTask;
struct GenTask {
	/* In: set by the caller, read by the queue until done is called. req.cancel and
	 * req.max_seconds are the queue's; req.max_tokens may be lowered to the cap. */
	const char *spec_json, *work_dir;
	GenerateRequest req;
	/* Called once on a queue thread when the task ended (ran, failed or was cancelled); the queue
	 * does not touch t afterwards. */
	void (*done)(GenTask *t);
	void *user;
	/* Out, valid in done. rc: runner_generate's (0, RUNNER_CANCELLED, < 0 with err). */
	int rc;
	char *result_json;    /* rc == 0: the runner's answer (the caller frees it with free()) */
	char err[1024];
	int tokens_capped;    /* req.max_tokens was lowered to max_tokens */
	double waited_s, run_s;
	GenTask *next;        /* the queue's */
};

enum { GENQ_EFULL = -11, GENQ_ESTOPPED = -108 };   /* -EAGAIN, -ESHUTDOWN */

typedef struct GenQueueStats {
	int running, waiting;
	uint64_t finished, cancelled, refused;   /* totals since genq_new */
} GenQueueStats;

int genq_new(const GenQueueConfig *cfg, GenQueue **out, char *err, size_t errlen);
/* 0: queued (done will be called), or GENQ_EFULL / GENQ_ESTOPPED (done is never called). */
int genq_submit(GenQueue *q, GenTask *t);
/* Refuses new tasks and cancels the others (running ones stop before their next token; waiting
 * ones end with RUNNER_CANCELLED without running). Returns at once. */
void genq_stop(GenQueue *q);
int genq_busy(GenQueue *q);   /* tasks running or waiting; 0: every submitted task's done has returned */
void genq_stats(GenQueue *q, GenQueueStats *s);
const GenQueueConfig *genq_config(const GenQueue *q);   /* with the defaults filled in */
void genq_free(GenQueue *q);  /* genq_stop, then joins the threads; NULL is a no-op */

#endif
