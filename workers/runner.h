/* runner.h - runs one validated job: pretext pretraining, then the requested evaluations.
 *
 * The same runner serves `ssld run` (foreground) and the daemon's worker threads; it knows nothing
 * of HTTP or SQLite. It reports through RunnerHooks (all optional, called on the runner's thread)
 * and writes its checkpoint and artifacts under work_dir. A job that was interrupted resumes from
 * work_dir/checkpoint.safetensors when present: the step counter continues from the checkpoint.
 *
 *   RunnerHooks h = { .user = me, .on_metric = my_metric, .should_stop = my_stop };
 *   char *results = NULL; char err[512];
 *   int rc = runner_run(spec_json, "/var/lib/ssld/jobs/17", &h, &results, err, sizeof err);
 *   // rc == 0: results is the results JSON (caller frees with free());
 *   // rc == RUNNER_STOPPED: checkpointed and stopped on request (requeue it);
 *   // rc == RUNNER_CANCELLED; rc < 0: failed, err says why ("loss became NaN at step 1234").
 */
#ifndef SSLD_WORKERS_RUNNER_H
#define SSLD_WORKERS_RUNNER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "jobspec.h"

enum {
	RUNNER_OK = 0,
	RUNNER_STOPPED = 1,    /* should_stop returned RUNNER_STOP_REQUEUE: checkpoint written */
	RUNNER_CANCELLED = 2,  /* should_stop returned RUNNER_STOP_CANCEL */
};

enum { RUNNER_CONTINUE = 0, RUNNER_STOP_CANCEL = 1, RUNNER_STOP_REQUEUE = 2 };

typedef enum RunnerLevel { RUNNER_INFO = 6, RUNNER_NOTICE = 5, RUNNER_WARNING = 4, RUNNER_ERR = 3 } RunnerLevel;

/* Where a job is. fraction and eta_s cover the whole job - pretraining (by its time budget when
 * the budget binds, by steps otherwise) and every evaluation after it, each phase weighted by its
 * expected cost (workers/job_progress.h) - and fraction never goes down; it is 1 once the results
 * are written. step/total count the current stage only: pretraining steps, or an evaluation's
 * epochs. */
typedef struct RunnerProgress {
	int64_t step, total;
	const char *stage;       /* "pretrain", "linear_probe@0.01", "random_init@0.01", "done" */
	double fraction;         /* 0..1 */
	double eta_s;            /* seconds left for the whole job, < 0 unknown */
} RunnerProgress;

typedef struct RunnerHooks {
	void *user;
	/* A metric point: (global step, key, value). Keys: "loss", "lr", "grad_norm", "images_per_s",
	 * method parts ("loss_recon"...), eval keys ("eval/linear_probe@0.01"...). */
	void (*on_metric)(void *user, int64_t step, const char *key, double value);
	/* Progress (RunnerProgress below): the stage's step of total and the whole job's fraction and
	 * seconds left. */
	void (*on_progress)(void *user, const struct RunnerProgress *p);
	/* A log line for the job's event log. */
	void (*on_event)(void *user, RunnerLevel level, const char *message);
	/* An artifact file written under work_dir (name is relative to work_dir). */
	void (*on_artifact)(void *user, const char *name, const char *path);
	/* Polled once per step: RUNNER_CONTINUE, RUNNER_STOP_CANCEL or RUNNER_STOP_REQUEUE. */
	int (*should_stop)(void *user);
	/* Called after a checkpoint was durably written at `step`. */
	void (*on_checkpoint)(void *user, int64_t step, const char *path);
} RunnerHooks;

/* spec_json must already be valid (jobspec_validate); work_dir must exist and be writable.
 * init_from job ids are resolved by the caller into a checkpoint path (resolve_job may be NULL for
 * `ssld run`, in which case only paths are accepted). */
typedef int (*runner_resolve_job_cb)(void *user, int64_t job_id, char *path, size_t len);

int runner_run(const char *spec_json, const char *work_dir, const RunnerHooks *hooks,
               runner_resolve_job_cb resolve_job, char **results_json, char *err, size_t errlen);

/* Whose run this is, and what it may resume (workdir.h). A run never adopts state it did not
 * create:
 *   - job_key set (the daemon): work_dir is claimed for that key first; state marked with another
 *     key, or unmarked, is moved aside to "<work_dir>.orphan-<time>" (a warning event names it)
 *     and the job starts fresh. The key is stored in every checkpoint.
 *   - job_key NULL (`ssld run`, tests): a checkpoint written for another resolved spec (or with no
 *     spec hash) is refused with an error, unless resume is RUNNER_RESUME_FORCE. */
enum { RUNNER_RESUME_CHECK = 0, RUNNER_RESUME_FORCE = 1 };
typedef struct RunnerOptions {
	const char *job_key;
	int resume;
	const char *cache_dir;  /* decoded image pixels shared between jobs (NULL: the job's directory) */
} RunnerOptions;

/* runner_run with options (NULL = all defaults, as runner_run). */
int runner_run_opts(const char *spec_json, const char *work_dir, const RunnerOptions *opts,
                    const RunnerHooks *hooks, runner_resolve_job_cb resolve_job,
                    char **results_json, char *err, size_t errlen);
/* runner_run_opts on a spec already parsed (the pool, `ssld run`): it takes js and frees it. */
int runner_run_spec(JobSpec *js, const char *work_dir, const RunnerOptions *opts,
                    const RunnerHooks *hooks, runner_resolve_job_cb resolve_job,
                    char **results_json, char *err, size_t errlen);

/* Generation from a finished (or checkpointed) job: loads work_dir/checkpoint.safetensors into the
 * job's method and asks it for samples. Images: writes work_dir/<artifact> (a PNG grid, name
 * "samples-<seed>.png") and returns {"artifact": name, "n": N}. Text: returns
 * {"prompt": ..., "text": continuation, "tokens": n, "seconds": s, "truncated": false}. 0,
 * RUNNER_CANCELLED (req->cancel was set), or < 0 with err set ("method \"simclr\" cannot
 * generate"). */
typedef struct GenerateRequest {
	const char *prompt;     /* text methods; may be NULL (= empty) */
	int max_tokens;         /* text: default 200 */
	float temperature;      /* default 1.0; 0 = greedy */
	int top_k;              /* 0 = off */
	float top_p;            /* 1 = off */
	int n;                  /* images: how many samples (default 64) */
	uint64_t seed;
	/* Bounds for a server (zero = none). cancel is read between the loading stages and before
	 * each token: nonzero ends the call with RUNNER_CANCELLED. max_seconds > 0 ends text sampling
	 * after that long with what it has: the answer then says "truncated": true,
	 * "truncated_by": "max_seconds" (text answers always carry "truncated"). */
	const atomic_int *cancel;
	double max_seconds;
} GenerateRequest;

/* The step of the complete checkpoint in work_dir (what a resume would start from): 1 with *step
 * set, 0 if there is none (or, with job_key non-NULL, if it was written by another job: a resume
 * would not adopt it), < 0 if it cannot be read (err says why). Start-up recovery uses it: a
 * crash between renaming a checkpoint into place and recording it in the database leaves the
 * record behind the file, and the resume must drop the metric points after the file's step. */
int runner_checkpoint_step(const char *work_dir, const char *job_key, int64_t *step, char *err,
                           size_t errlen);

/* spec_json is the job's stored spec (jobspec_parse_stored parses it, once). */
int runner_generate(const char *spec_json, const char *work_dir, const GenerateRequest *req,
                    char **result_json, char *err, size_t errlen);
/* runner_generate for a spec already parsed (jobspec_parse or jobspec_parse_stored): js is
 * borrowed, and the runner fills in its derived step counts as a run would. */
int runner_generate_spec(JobSpec *js, const char *work_dir, const GenerateRequest *req,
                         char **result_json, char *err, size_t errlen);

#endif
