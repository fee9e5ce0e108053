/* pool.c - worker threads that claim queued jobs and run them (see pool.h).
 *
 * The glue between the queue (storage/) and the runner: hooks turn runner callbacks into batched
 * rows, artifacts and checkpoint records; outcomes become job states; with several nodes, one
 * thread keeps the running jobs' leases and takes back the expired leases of dead nodes. Not here:
 * what a job computes (runner.c), validation (jobspec.c), HTTP, or deciding when the daemon stops
 * (daemon/).
 */
#include "pool.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../storage/log.h"
#include "init_from.h"
#include "job_files.h"
#include "mpi_launch.h"
#include "runner.h"
#include "workdir.h"

typedef struct Worker {
	struct Pool *pool;
	int index;
	pthread_t th;
	int64_t job_id;               /* guarded by pool->mu; 0 = idle */
	int64_t lease_gen;            /* guarded by pool->mu: the running claim's generation */
	atomic_int cancel;            /* polled by should_stop every step */
	atomic_int fenced;            /* the lease is lost: stop at once, write nothing more */
	atomic_uint_fast64_t renewed_ns;   /* monotonic time of the claim or its last renewal */
	int64_t last_step;            /* for the step counter (worker thread only) */
	atomic_uint_fast64_t metric_ns, metric_calls;
} Worker;

struct Pool {
	Store *st;
	StoreBatch *batch;
	PoolConfig cfg;
	char *state_dir, *shared_dir, *node;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t wake_seq;            /* guarded by mu */
	atomic_int stopping;
	atomic_int busy;
	atomic_uint_fast64_t steps, busy_ns;
	atomic_uint_fast64_t finished[5];
	Worker *w;
	int started;
	/* The lease thread (lease_s > 0): renews, fences, takes back expired leases. */
	pthread_t lease_th;
	int lease_started;
	int lease_quit;               /* guarded by mu; set after the workers were joined */
	pthread_cond_t lease_cv;
	atomic_uint_fast64_t lease_lost, reclaimed, renew_failures;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int mkdir_p(const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	for (char *p = tmp + 1;; p++) {
		if (*p == '/' || *p == 0) {
			char c = *p;
			*p = 0;
			if (mkdir(tmp, 0750) != 0 && errno != EEXIST) {
				int e = errno;
				snprintf(err, errlen, "%s: cannot create directory: %s", tmp, strerror(e));
				return -e;
			}
			*p = c;
			if (c == 0) break;
		}
	}
	return 0;
}

int pool_job_dir(const char *shared_dir, int64_t job_id, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/jobs/%lld", shared_dir, (long long)job_id);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- runner hooks (called on the worker's thread) ------------------------------------------ */

static void fence(Worker *w, int64_t job, const char *why);

static int64_t cur_job(Worker *w)
{
	/* Only the worker thread writes job_id while its job runs, so reading it here needs no lock. */
	return w->job_id;
}

static void hook_metric(void *user, int64_t step, const char *key, double value)
{
	Worker *w = user;
	uint64_t t0 = mono_ns();
	store_batch_metric(w->pool->batch, cur_job(w), step, key, value);
	atomic_fetch_add_explicit(&w->metric_ns, mono_ns() - t0, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->metric_calls, 1, memory_order_relaxed);
}

static void hook_progress(void *user, const RunnerProgress *p)
{
	Worker *w = user;
	if (p->stage && strcmp(p->stage, "pretrain") == 0 && p->step > w->last_step) {
		atomic_fetch_add_explicit(&w->pool->steps, (uint64_t)(p->step - w->last_step), memory_order_relaxed);
		w->last_step = p->step;
	}
	/* 1 is the succeeded job's (the API's): until the state says so, a job is not quite done, even
	 * after the runner's last report. */
	double f = p->fraction < 0.999 ? p->fraction : 0.999;
	store_batch_progress(w->pool->batch, cur_job(w), p->step, p->total, p->stage, f, p->eta_s);
}

static void hook_event(void *user, RunnerLevel level, const char *message)
{
	Worker *w = user;
	store_batch_event(w->pool->batch, cur_job(w), (int)level, message);
	slog((int)level, cur_job(w), "%s", message);
}

static void hook_artifact(void *user, const char *name, const char *path)
{
	Worker *w = user;
	char err[512];
	if (atomic_load(&w->fenced)) return;
	if (store_artifact_put(w->pool->st, cur_job(w), name, path, err, sizeof err) < 0)
		slog(LOG_WARNING, cur_job(w), "artifact %s not recorded: %s", name, err);
}

static int hook_should_stop(void *user)
{
	Worker *w = user;
	/* A lost lease stops like a cancel: the runner writes no checkpoint on the way out. */
	if (atomic_load_explicit(&w->fenced, memory_order_relaxed)) return RUNNER_STOP_CANCEL;
	/* No renewal for a whole lease (the process was paused, or the database unreachable): another
	 * node may have taken the job back already. Stop before this step can write a checkpoint into
	 * the shared directory, rather than after the lease thread finds out. */
	double lease = w->pool->cfg.lease_s;
	if (lease > 0 && (double)(mono_ns() - atomic_load(&w->renewed_ns)) * 1e-9 >= lease) {
		fence(w, cur_job(w), "no renewal for a whole lease before this step");
		return RUNNER_STOP_CANCEL;
	}
	if (atomic_load_explicit(&w->cancel, memory_order_relaxed)) return RUNNER_STOP_CANCEL;
	if (atomic_load_explicit(&w->pool->stopping, memory_order_relaxed)) return RUNNER_STOP_REQUEUE;
	return RUNNER_CONTINUE;
}

static void hook_checkpoint(void *user, int64_t step, const char *path)
{
	Worker *w = user;
	char err[512];
	if (atomic_load(&w->fenced)) return;
	/* Points up to `step` must be in the database before the checkpoint is recorded: a resume
	 * then drops exactly the points after it, so no step is stored twice and none is lost. */
	if (store_batch_flush(w->pool->batch, err, sizeof err) < 0) {
		slog(LOG_WARNING, cur_job(w), "checkpoint at step %lld: metric flush failed: %s", (long long)step, err);
		return;   /* keep the older checkpoint record: a resume then drops more, never duplicates */
	}
	if (store_batch_fenced(w->pool->batch, cur_job(w)) == STORE_FENCED) {
		fence(w, cur_job(w), "its metric rows were refused: the job was claimed again");
		return;
	}
	int rc = store_job_checkpoint_fenced(w->pool->st, cur_job(w), w->lease_gen, step, err, sizeof err);
	if (rc == STORE_FENCED)
		fence(w, cur_job(w), err);
	else if (rc < 0)
		slog(LOG_WARNING, cur_job(w), "checkpoint at step %lld not recorded: %s", (long long)step, err);
	else
		slog(LOG_DEBUG, cur_job(w), "checkpoint at step %lld: %s", (long long)step, path);
}

/* init_from_job: the source's weights. The claim ran this job only after its source succeeded
 * (store.h, "init_from"); a source that is somehow not there ends the run with that reason. */
static int resolve_job(void *user, int64_t job_id, char *path, size_t len)
{
	Worker *w = user;
	return init_from_job_weights(w->pool->shared_dir, job_id, path, len);
}

/* ---- leases --------------------------------------------------------------------------------- */

/* The run of `job` on w stops at its next step and writes nothing more: another node may own the
 * job now. Logged here only (the job's event log is the new owner's). */
static void fence(Worker *w, int64_t job, const char *why)
{
	Pool *p = w->pool;
	pthread_mutex_lock(&p->mu);
	int mine = w->job_id == job;
	pthread_mutex_unlock(&p->mu);
	if (!mine || atomic_exchange(&w->fenced, 1)) return;
	atomic_fetch_add(&p->lease_lost, 1);
	slog(LOG_WARNING, job, "node %s lost the lease of this job (%s); stopping its run here without writing more",
	     p->node, why);
}

/* Renews the lease of every run on this node; fences those refused, or not renewed for a lease.
 * Returns how many renewals could not reach the database. */
static int renew_leases(Pool *p)
{
	int failed = 0;
	for (int i = 0; i < p->cfg.workers; i++) {
		Worker *w = &p->w[i];
		pthread_mutex_lock(&p->mu);
		int64_t job = w->job_id, gen = w->lease_gen;
		pthread_mutex_unlock(&p->mu);
		if (job == 0 || atomic_load(&w->fenced)) continue;
		char err[512];
		int rc = store_job_renew(p->st, job, gen, p->cfg.lease_s, err, sizeof err);
		if (rc == 0) {
			atomic_store(&w->renewed_ns, mono_ns());
			/* A cancel asked through another node's API reaches this node here. */
			StoreJob now;
			if (store_job_get(p->st, job, &now, err, sizeof err) == 0) {
				if (now.cancel_requested && now.lease_gen == gen) pool_cancel(p, job);
				store_job_clear(&now);
			}
			continue;
		}
		if (rc == STORE_FENCED) {
			fence(w, job, err);
			continue;
		}
		atomic_fetch_add(&p->renew_failures, 1);
		failed++;
		double age = (double)(mono_ns() - atomic_load(&w->renewed_ns)) * 1e-9;
		if (age >= p->cfg.lease_s) {
			char why[700];
			snprintf(why, sizeof why, "no renewal reached the database for %.1f s, longer than the lease: %s", age, err);
			fence(w, job, why);
		} else {
			slog(LOG_WARNING, job, "renewing the lease failed (%.1f s of %.1f s since the last renewal): %s", age,
			     p->cfg.lease_s, err);
		}
	}
	return failed;
}

/* Jobs whose node's lease expired go back to the queue; this node's workers may claim them. */
static void reclaim_expired(Pool *p)
{
	int64_t ids[64];
	int n = 0;
	char err[512];
	if (store_job_reclaim_expired(p->st, p->cfg.max_interruptions, ids, 64, &n, err, sizeof err) < 0) {
		slog(LOG_WARNING, 0, "taking back expired leases failed: %s", err);
		return;
	}
	for (int i = 0; i < n && i < 64; i++) {
		int64_t step;
		if (pool_record_disk_checkpoint(p->st, p->shared_dir, ids[i], &step, err, sizeof err) < 0)
			slog(LOG_WARNING, ids[i], "checking the job's checkpoint on disk: %s", err);
		slog(LOG_NOTICE, ids[i], "the lease of its node expired; node %s put it back in the queue to resume from its checkpoint",
		     p->node);
	}
	if (n > 0) {
		atomic_fetch_add(&p->reclaimed, (uint64_t)n);
		pool_wake(p);
	}
}

static void *lease_main(void *arg)
{
	Pool *p = arg;
	pthread_setname_np(pthread_self(), "ssld-lease");
	pthread_mutex_lock(&p->mu);
	while (!p->lease_quit) {
		pthread_mutex_unlock(&p->mu);
		/* After a renewal that could not reach the database, try again within a second: the
		 * lease must be renewed as soon as the database is back, before it expires. */
		double period = renew_leases(p) > 0 && p->cfg.lease_s / 3 > 1 ? 1 : p->cfg.lease_s / 3;
		if (!atomic_load(&p->stopping)) reclaim_expired(p);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)period;
		until.tv_nsec += (long)((period - (double)(time_t)period) * 1e9);
		if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
		pthread_mutex_lock(&p->mu);
		while (!p->lease_quit)
			if (pthread_cond_timedwait(&p->lease_cv, &p->mu, &until) == ETIMEDOUT) break;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int pool_record_disk_checkpoint(Store *st, const char *shared_dir, int64_t job_id, int64_t *step, char *err,
                                size_t errlen)
{
	char dir[4096], key[64];
	StoreJob j;
	int rc = pool_job_dir(shared_dir, job_id, dir, sizeof dir);
	if (rc < 0) {
		snprintf(err, errlen, "job %lld: directory path too long", (long long)job_id);
		return rc;
	}
	if ((rc = store_job_get(st, job_id, &j, err, errlen)) < 0) return rc;
	int64_t file_step;
	workdir_job_key(job_id, j.created_at, key, sizeof key);
	rc = 0;
	if (j.state == JOB_QUEUED && runner_checkpoint_step(dir, key, &file_step, err, errlen) == 1 &&
	    file_step > j.checkpoint_step) {
		if ((rc = store_job_checkpoint(st, job_id, file_step, err, errlen)) == 0) {
			slog(LOG_NOTICE, job_id, "checkpoint at step %lld was on disk but not recorded (recorded: %lld); recorded it",
			     (long long)file_step, (long long)j.checkpoint_step);
			*step = file_step;
			rc = 1;
		}
	}
	store_job_clear(&j);
	return rc;
}

/* ---- running one job ------------------------------------------------------------------------ */

enum { RUNNER_FENCED = -1000 };   /* run_job's own outcome beside the runner's codes */

/* The job's stored spec, typed, with "threads" capped at max_threads: the one parse of the
 * job's JSON on this side of the database (the runner takes the typed spec). */
static JobSpec *job_spec(const char *spec, int max_threads, char *err, size_t errlen)
{
	JobSpec *js = NULL;
	SpecError se;
	if (jobspec_parse_stored(spec ? spec : "", spec ? strlen(spec) : 0, &js, &se) < 0) {
		snprintf(err, errlen, "the stored job spec does not parse: %s", se.message);
		return NULL;
	}
	if (max_threads > 0 && js->threads > max_threads) js->threads = max_threads;
	return js;
}

static void flush_retrying(Pool *p, int64_t job)
{
	char err[512];
	for (int i = 0; i < 5; i++) {
		if (store_batch_flush(p->batch, err, sizeof err) >= 0) return;
		slog(LOG_WARNING, job, "metric flush failed (attempt %d): %s", i + 1, err);
		usleep(200000);
	}
}

/* Records the run's outcome under its lease generation; a refusal (STORE_FENCED) means another
 * node owns the job now, and fences the run. Under a lease the attempts go on while the lease
 * holds (the lease thread fences the run once no renewal succeeded for a whole lease), so an
 * outcome reached while a shared database is away is recorded when it is back. */
static void finish(Worker *w, int64_t job, JobState state, const char *results, const char *error)
{
	Pool *p = w->pool;
	char err[512];
	for (int i = 0; i < 5 || (p->cfg.lease_s > 0 && !atomic_load(&w->fenced)); i++) {
		int rc = store_job_finish_fenced(p->st, job, w->lease_gen, state, results, error, err, sizeof err);
		if (rc == STORE_FENCED) {
			fence(w, job, err);
			return;
		}
		if (rc == 0) {
			atomic_fetch_add(&p->finished[state], 1);
			if (state == JOB_SUCCEEDED) pool_wake(p);   /* jobs waiting for it as their init_from may run now */
			if (p->cfg.on_run_end) p->cfg.on_run_end(p->cfg.user, job, state);
			return;
		}
		if (i < 5 || i % 30 == 0)
			slog(LOG_ERR, job, "recording state %s failed (attempt %d): %s", job_state_name(state), i + 1, err);
		usleep(i < 5 ? 200000 : 1000000);
	}
}

static void pool_event(Pool *p, int64_t job, int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void pool_event(Pool *p, int64_t job, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	store_batch_event(p->batch, job, level, msg);
	slog(level, job, "%s", msg);
}

/* The run of a job that lost its lease ends here: nothing of it is written (its pending rows are
 * dropped by the batch). */
static void end_fenced(Worker *w, int64_t job)
{
	Pool *p = w->pool;
	slog(LOG_NOTICE, job, "run stopped on node %s: the job belongs to another claim now", p->node);
	if (p->cfg.on_run_end) p->cfg.on_run_end(p->cfg.user, job, JOB_RUNNING);
}

static void run_job(Worker *w, StoreJob *j)
{
	Pool *p = w->pool;
	char err[1024], dir[4096];
	pthread_mutex_lock(&p->mu);
	w->job_id = j->id;
	w->lease_gen = j->lease_gen;
	atomic_store(&w->cancel, 0);
	atomic_store(&w->fenced, 0);
	atomic_store(&w->renewed_ns, mono_ns());
	pthread_mutex_unlock(&p->mu);
	store_batch_lease(p->batch, j->id, j->lease_gen);
	if (atomic_load(&p->stopping)) {   /* claimed just as the daemon began to stop: give it back */
		finish(w, j->id, JOB_QUEUED, NULL, NULL);
		goto idle;
	}
	atomic_fetch_add(&p->busy, 1);
	/* A cancel that reached the database between the claim and the line above. */
	StoreJob now;
	if (store_job_get(p->st, j->id, &now, err, sizeof err) == 0) {
		if (now.cancel_requested) atomic_store(&w->cancel, 1);
		store_job_clear(&now);
	}
	w->last_step = j->checkpoint_step > 0 ? j->checkpoint_step : 0;

	if (pool_job_dir(p->shared_dir, j->id, dir, sizeof dir) < 0 || mkdir_p(dir, err, sizeof err) < 0) {
		if (!err[0]) snprintf(err, sizeof err, "job directory path too long");
		pool_event(p, j->id, LOG_ERR, "cannot prepare the job directory: %s", err);
		flush_retrying(p, j->id);
		finish(w, j->id, JOB_FAILED, NULL, err);
		goto out;
	}
	if (j->attempts > 1)
		pool_event(p, j->id, LOG_NOTICE, "node %s worker %d: resuming (attempt %d) from checkpoint step %lld",
		           p->node, w->index, j->attempts, (long long)(j->checkpoint_step > 0 ? j->checkpoint_step : 0));
	else
		pool_event(p, j->id, LOG_INFO, "node %s worker %d: started %s%s%s", p->node, w->index, j->method,
		           j->name && j->name[0] ? " " : "", j->name ? j->name : "");

	RunnerHooks h = {
		.user = w, .on_metric = hook_metric, .on_progress = hook_progress, .on_event = hook_event,
		.on_artifact = hook_artifact, .should_stop = hook_should_stop, .on_checkpoint = hook_checkpoint,
	};
	char key[64];   /* the job's identity: a directory it did not create is never adopted */
	workdir_job_key(j->id, j->created_at, key, sizeof key);
	char cache[4200];   /* decoded image pixels, shared by every job of this node */
	snprintf(cache, sizeof cache, "%s/cache/images", p->state_dir);
	RunnerOptions ro = { .job_key = key, .cache_dir = mkdir_p(cache, err, sizeof err) == 0 ? cache : NULL };
	char *results = NULL;
	err[0] = 0;
	uint64_t t0 = mono_ns();
	JobSpec *js = job_spec(j->spec, p->cfg.max_threads, err, sizeof err);
	int rc = !js ? -1   /* < 0: failed */
	       : js->distributed.enabled ? mpi_launch_run(&p->cfg.mpi, js, dir, key, &h, resolve_job, &results, err, sizeof err)
	       : runner_run_spec(js, dir, &ro, &h, resolve_job, &results, err, sizeof err);
	double secs = (double)(mono_ns() - t0) * 1e-9;
	atomic_fetch_add(&p->busy_ns, mono_ns() - t0);

	/* A run that lost its lease: its outcome is not this node's to record. */
	if (atomic_load(&w->fenced)) rc = RUNNER_FENCED;
	switch (rc) {
	case RUNNER_FENCED:
		break;
	case RUNNER_OK:
		pool_event(p, j->id, LOG_INFO, "succeeded in %.1f s", secs);
		flush_retrying(p, j->id);
		finish(w, j->id, JOB_SUCCEEDED, results ? results : "{}", NULL);
		break;
	case RUNNER_STOPPED:
		pool_event(p, j->id, LOG_NOTICE, "stopped by the daemon at step %lld; requeued to resume from its checkpoint",
		           (long long)w->last_step);
		flush_retrying(p, j->id);
		finish(w, j->id, JOB_QUEUED, NULL, NULL);
		break;
	case RUNNER_CANCELLED:
		pool_event(p, j->id, LOG_NOTICE, "cancelled after %.1f s", secs);
		flush_retrying(p, j->id);
		finish(w, j->id, JOB_CANCELLED, NULL, "cancelled by request");
		break;
	default:
		if (!err[0]) snprintf(err, sizeof err, "the runner failed without a reason (code %d)", rc);
		pool_event(p, j->id, LOG_ERR, "failed after %.1f s: %s", secs, err);
		flush_retrying(p, j->id);
		finish(w, j->id, JOB_FAILED, NULL, err);
		break;
	}
	free(results);
out:
	atomic_fetch_sub(&p->busy, 1);
idle:
	if (atomic_load(&w->fenced)) end_fenced(w, j->id);
	pthread_mutex_lock(&p->mu);
	w->job_id = 0;
	w->lease_gen = 0;
	pthread_mutex_unlock(&p->mu);
	/* The run's rows are flushed (or, fenced, dropped at the next flush whatever this says). */
	store_batch_lease(p->batch, j->id, -1);
}

static void *worker_main(void *arg)
{
	Worker *w = arg;
	Pool *p = w->pool;
	char err[512];
	char name[16];
	snprintf(name, sizeof name, "ssld-worker-%u", (unsigned)w->index % 100u);
	pthread_setname_np(pthread_self(), name);   /* for top -H, perf and bench/api_bench */
	while (!atomic_load(&p->stopping)) {
		pthread_mutex_lock(&p->mu);
		uint64_t seq = p->wake_seq;
		pthread_mutex_unlock(&p->mu);
		StoreJob j;
		int rc = store_job_claim_lease(p->st, p->node, p->cfg.lease_s, p->cfg.max_running_per_owner, &j, err, sizeof err);
		if (rc == 1) {
			run_job(w, &j);
			store_job_clear(&j);
			continue;
		}
		if (rc < 0) slog(LOG_ERR, 0, "worker %d: claiming a job failed: %s", w->index, err);
		/* Idle: sleep until woken (a job was queued) or the poll interval passes. */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		double wait = p->cfg.idle_poll_s > 0 ? p->cfg.idle_poll_s : 2.0;
		until.tv_sec += (time_t)wait;
		until.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
		if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
		pthread_mutex_lock(&p->mu);
		while (p->wake_seq == seq && !atomic_load(&p->stopping))
			if (pthread_cond_timedwait(&p->cv, &p->mu, &until) == ETIMEDOUT) break;
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

/* ---- public --------------------------------------------------------------------------------- */

int pool_new(Store *st, StoreBatch *batch, const PoolConfig *cfg, Pool **out, char *err, size_t errlen)
{
	*out = NULL;
	if (cfg->workers < 0 || cfg->workers > 256) {
		snprintf(err, errlen, "workers: must be 0..256, got %d", cfg->workers);
		return -EINVAL;
	}
	Pool *p = calloc(1, sizeof *p);
	if (!p) {
		snprintf(err, errlen, "worker pool: out of memory");
		return -ENOMEM;
	}
	p->st = st;
	p->batch = batch;
	p->cfg = *cfg;
	const char *state = cfg->state_dir ? cfg->state_dir : ".";
	p->state_dir = strdup(state);
	p->shared_dir = strdup(cfg->shared_dir ? cfg->shared_dir : state);
	p->node = strdup(cfg->node ? cfg->node : "");
	p->cfg.state_dir = p->state_dir;
	p->cfg.shared_dir = p->shared_dir;
	p->cfg.node = p->node;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_cond_init(&p->lease_cv, NULL);
	if (!p->state_dir || !p->shared_dir || !p->node) {
		pool_free(p);
		snprintf(err, errlen, "worker pool: out of memory");
		return -ENOMEM;
	}
	if (cfg->workers > 0 && !(p->w = calloc((size_t)cfg->workers, sizeof *p->w))) {
		pool_free(p);
		snprintf(err, errlen, "worker pool: out of memory");
		return -ENOMEM;
	}
	char jobs[4096];
	snprintf(jobs, sizeof jobs, "%s/jobs", p->shared_dir);
	int rc = mkdir_p(jobs, err, errlen);
	if (rc < 0) {
		pool_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int pool_set_node(Pool *p, const char *node)
{
	char *copy = strdup(node ? node : "");
	if (!copy) return -ENOMEM;
	free(p->node);
	p->node = copy;
	p->cfg.node = copy;
	return 0;
}

const char *pool_node(const Pool *p) { return p->node; }

int pool_start(Pool *p, char *err, size_t errlen)
{
	for (int i = 0; i < p->cfg.workers; i++) {
		Worker *w = &p->w[i];
		w->pool = p;
		w->index = i;
		int rc = pthread_create(&w->th, NULL, worker_main, w);
		if (rc != 0) {
			snprintf(err, errlen, "starting worker %d: %s", i, strerror(rc));
			pool_request_stop(p);
			return -rc;
		}
		p->started = i + 1;
	}
	if (p->cfg.lease_s > 0) {
		int rc = pthread_create(&p->lease_th, NULL, lease_main, p);
		if (rc != 0) {
			snprintf(err, errlen, "starting the lease thread: %s", strerror(rc));
			pool_request_stop(p);
			return -rc;
		}
		p->lease_started = 1;
	}
	return 0;
}

void pool_wake(Pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->wake_seq++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

int pool_cancel(Pool *p, int64_t job_id)
{
	int found = 0;
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < p->cfg.workers; i++)
		if (p->w[i].job_id == job_id) {
			atomic_store(&p->w[i].cancel, 1);
			found = 1;
		}
	pthread_mutex_unlock(&p->mu);
	return found;
}

void pool_request_stop(Pool *p)
{
	atomic_store(&p->stopping, 1);
	pool_wake(p);
}

int pool_busy(Pool *p) { return atomic_load(&p->busy); }

void pool_stats(Pool *p, PoolStats *out)
{
	memset(out, 0, sizeof *out);
	out->workers = p->cfg.workers;
	out->busy = atomic_load(&p->busy);
	out->steps = atomic_load(&p->steps);
	for (int i = 0; i < 5; i++) out->finished[i] = atomic_load(&p->finished[i]);
	uint64_t ns = 0, calls = 0;
	for (int i = 0; i < p->cfg.workers; i++) {
		ns += atomic_load_explicit(&p->w[i].metric_ns, memory_order_relaxed);
		calls += atomic_load_explicit(&p->w[i].metric_calls, memory_order_relaxed);
	}
	out->metric_append_s = (double)ns * 1e-9;
	out->metric_calls = calls;
	out->busy_s = (double)atomic_load(&p->busy_ns) * 1e-9;
	out->lease_lost = atomic_load(&p->lease_lost);
	out->reclaimed = atomic_load(&p->reclaimed);
	out->renew_failures = atomic_load(&p->renew_failures);
}

void pool_free(Pool *p)
{
	if (!p) return;
	pool_request_stop(p);
	for (int i = 0; i < p->started; i++) pthread_join(p->w[i].th, NULL);
	/* Renewals go on while running jobs checkpoint on the way out; then the lease thread ends. */
	if (p->lease_started) {
		pthread_mutex_lock(&p->mu);
		p->lease_quit = 1;
		pthread_cond_broadcast(&p->lease_cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->lease_th, NULL);
	}
	pthread_cond_destroy(&p->lease_cv);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->w);
	free(p->state_dir);
	free(p->shared_dir);
	free(p->node);
	free(p);
}
