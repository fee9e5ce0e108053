/* serve.c - `ssld serve`: wires storage, the worker pool and the HTTP API together and runs the
 * libuv loop that owns signals and timers.
 *
 * The loop does little on purpose: SIGTERM/SIGINT start a graceful stop (no new jobs, running jobs
 * checkpoint and requeue, then exit), SIGHUP reopens the log and reloads tokens, a timer flushes
 * metric batches (the single writer, at least once a second), another pings the systemd watchdog.
 * Start-up recovery puts jobs a crash left `running` back in the queue. Not here: HTTP (api/), job
 * execution (workers/), SQL (storage/).
 */
#include "serve.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "../api/api.h"
#include "../engine/blas_core.h"
#include "../engine/data/dataset.h"
#include "../engine/simd.h"
#include "../storage/batch.h"
#include "../storage/log.h"
#include "../storage/store.h"
#include "../workers/pool.h"
#include "config.h"
#include "statelock.h"
#include "webhook.h"

#ifndef SSLD_VERSION
#define SSLD_VERSION "unknown"
#endif

typedef struct Server {
	SsldConfig cfg;
	uv_loop_t loop;
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t flush_timer, stop_timer, watchdog_timer, status_timer;
	uv_async_t wake;                /* any thread -> loop: a job was queued or a run ended */
	atomic_int job_queued, run_ended;
	int watchdog;
	Store *st;
	StoreBatch *batch;
	Pool *pool;
	Api *api;
	_Atomic(Webhook *) webhook;     /* NULL without --webhook (set once the node has its name) */
	StateLock lock;
	int lock_note_rc;               /* last statelock_check result, to log changes only */
	int stopping, forced, flush_failing;
	double stop_started;
	char port_file[1100];
	char last_status[160];
} Server;

static void notify(const char *state)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

/* ---- loop callbacks ------------------------------------------------------------------------- */

static void on_flush(uv_timer_t *t)
{
	Server *s = t->data;
	char err[512];
	int rc = store_batch_flush(s->batch, err, sizeof err);
	if (rc < 0 && !s->flush_failing) slog(LOG_WARNING, 0, "metric batch not written (kept for retry): %s", err);
	else if (rc >= 0 && s->flush_failing) slog(LOG_NOTICE, 0, "metric batches are being written again");
	s->flush_failing = rc < 0;
}

/* The loop is alive: systemd restarts the service if these stop (WatchdogSec=). */
static void on_watchdog(uv_timer_t *t) { notify("WATCHDOG=1"); }

/* `systemctl status ssld` shows this line: "2 running, 5 queued, 14 succeeded, 1 failed". Sent
 * when it changes (after a wake-up, and every few seconds for changes without one, e.g. a queued
 * job cancelled). */
static void update_status(Server *s)
{
	char err[256], status[160];
	int64_t counts[JOB_STATE_COUNT];
	if (store_job_counts(s->st, counts, err, sizeof err) < 0) return;
	snprintf(status, sizeof status, "STATUS=%s%lld running, %lld queued, %lld succeeded, %lld failed",
	         s->stopping ? "stopping: " : "", (long long)counts[JOB_RUNNING], (long long)counts[JOB_QUEUED],
	         (long long)counts[JOB_SUCCEEDED], (long long)counts[JOB_FAILED]);
	if (strcmp(status, s->last_status) == 0) return;
	memcpy(s->last_status, status, sizeof status);
	notify(status);
}

/* ssld.lock deleted or replaced under us: the directory lock still holds; say so once. */
static void check_lock(Server *s)
{
	char note[1400];
	int rc = statelock_check(&s->lock, note, sizeof note);
	if (rc != 0 && rc != s->lock_note_rc) slog(rc > 0 ? LOG_WARNING : LOG_ERR, 0, "%s", note);
	s->lock_note_rc = rc > 0 ? 0 : rc;
}

static void on_status_timer(uv_timer_t *t)
{
	update_status(t->data);
	check_lock(t->data);
}

/* Wake-ups from other threads arrive here (uv_async coalesces bursts into one callback). */
static void on_wake(uv_async_t *a)
{
	Server *s = a->data;
	int queued = atomic_exchange(&s->job_queued, 0), ended = atomic_exchange(&s->run_ended, 0);
	if (ended && s->stopping && pool_busy(s->pool) == 0 && api_generating(s->api) == 0) {
		uv_stop(&s->loop);   /* the last job checkpointed: no need to wait for the next tick */
		return;
	}
	/* A run that ended frees a slot that an owner at --max-running-per-owner may have blocked. */
	if ((queued || ended) && !s->stopping) pool_wake(s->pool);
	update_status(s);
}

static void api_queued(void *user, int64_t job_id)
{
	Server *s = user;
	atomic_store(&s->job_queued, 1);
	uv_async_send(&s->wake);
}

/* A job ended without running (cancelled while queued). */
static void api_ended(void *user, int64_t job_id)
{
	Server *s = user;
	webhook_job_ended(atomic_load(&s->webhook), job_id);
}

static void pool_run_end(void *user, int64_t job_id, JobState state)
{
	Server *s = user;
	if (state == JOB_SUCCEEDED || state == JOB_FAILED || state == JOB_CANCELLED) webhook_job_ended(atomic_load(&s->webhook), job_id);
	atomic_store(&s->run_ended, 1);
	uv_async_send(&s->wake);
}

static void on_stop_tick(uv_timer_t *t)
{
	Server *s = t->data;
	/* Generation was cancelled with the drain: it ends before its next token. */
	if (pool_busy(s->pool) == 0 && api_generating(s->api) == 0) {
		uv_stop(&s->loop);
		return;
	}
	if (store_now() - s->stop_started > s->cfg.stop_timeout_s) {
		slog(LOG_WARNING, 0, "jobs did not stop within %.0f s; exiting anyway (they resume from their last checkpoint)",
		     s->cfg.stop_timeout_s);
		s->forced = 1;
		uv_stop(&s->loop);
	}
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
	Server *s = h->data;
	const char *name = signum == SIGTERM ? "SIGTERM" : "SIGINT";
	if (s->stopping) {
		slog(LOG_WARNING, 0, "%s again: exiting now; running jobs resume from their last checkpoint", name);
		s->forced = 1;
		uv_stop(&s->loop);
		return;
	}
	s->stopping = 1;
	s->stop_started = store_now();
	int busy = pool_busy(s->pool);
	slog(LOG_NOTICE, 0, "%s: stopping; new jobs are refused, %d running job(s) checkpoint and go back to the queue", name, busy);
	notify("STOPPING=1");
	api_set_draining(s->api, 1);
	pool_request_stop(s->pool);
	update_status(s);
	uv_timer_start(&s->stop_timer, on_stop_tick, 0, 50);
}

static void on_sighup(uv_signal_t *h, int signum)
{
	Server *s = h->data;
	int rc = slog_reopen();
	if (rc < 0) slog(LOG_WARNING, 0, "SIGHUP: reopening log file %s: %s", s->cfg.log_file, strerror(-rc));
	if (s->cfg.tokens_file[0]) {
		char err[512];
		if (api_reload_tokens(s->api, s->cfg.tokens_file, err, sizeof err) < 0)
			slog(LOG_ERR, 0, "SIGHUP: %s; no token from that file is accepted until it can be read", err);
		else
			slog(LOG_NOTICE, 0, "SIGHUP: tokens reloaded from %s", s->cfg.tokens_file);
	}
	slog(LOG_NOTICE, 0, "SIGHUP: log reopened");
}

/* systemd socket activation (ssld.socket): the first passed socket, or -1 to bind --listen. */
static int activation_socket(void)
{
#ifdef HAVE_SYSTEMD
	int n = sd_listen_fds(1);
	if (n < 0) slog(LOG_WARNING, 0, "socket activation: %s; binding --listen instead", strerror(-n));
	if (n <= 0) return -1;
	if (n > 1) slog(LOG_WARNING, 0, "socket activation: %d sockets passed; serving on the first only", n);
	return SD_LISTEN_FDS_START;
#else
	return -1;
#endif
}

static void close_cb(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* ---- start-up ------------------------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
	char tmp[1100];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1;; p++) {
		if (*p == '/' || *p == 0) {
			char c = *p;
			*p = 0;
			if (mkdir(tmp, 0750) != 0 && errno != EEXIST) return -errno;
			*p = c;
			if (!c) break;
		}
	}
	return 0;
}

static int write_port_file(const char *path, int port)
{
	char tmp[1200];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f) return -errno;
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0) return -errno;
	return rename(tmp, path) == 0 ? 0 : -errno;
}

/* The database as the log shows it: a URL's password replaced by "***". */
static void redact_database(const char *db, char *out, size_t cap)
{
	const char *scheme = strstr(db, "://"), *at = scheme ? strchr(scheme + 3, '@') : NULL;
	const char *colon = scheme ? memchr(scheme + 3, ':', at ? (size_t)(at - scheme - 3) : 0) : NULL;
	if (colon) snprintf(out, cap, "%.*s:***%s", (int)(colon - db), db, at);
	else snprintf(out, cap, "%s", db);
}

/* Start-up recovery: jobs a crash left `running` go back to the queue. With a shared database the
 * running jobs may be other nodes' (alive): only this node's own (by its name) come back now; the
 * pool's lease thread takes back other dead nodes' when their lease expires. */
static void recover(Server *s)
{
	char err[512];
	int64_t ids[64];
	int shared = config_shared_database(&s->cfg);
	int n = store_recover_node(s->st, shared ? s->cfg.node : NULL, s->cfg.max_attempts, ids, 64, err, sizeof err);
	if (n < 0) {
		slog(LOG_ERR, 0, "start-up recovery failed: %s", err);
		return;
	}
	for (int i = 0; i < n && i < 64; i++) {
		/* A crash after the checkpoint file was renamed into place but before the database recorded
		 * it: the run resumes from the file, so record the file's step now - otherwise the claim drops
		 * the metric points between the old record and the file, and nothing recomputes them. */
		int64_t step;
		if (pool_record_disk_checkpoint(s->st, s->cfg.shared_dir, ids[i], &step, err, sizeof err) < 0)
			slog(LOG_ERR, ids[i], "recording the checkpoint found on disk: %s", err);
		slog(LOG_WARNING, ids[i], "was running when ssld stopped uncleanly; requeued to resume from its last checkpoint");
		store_event_add(s->st, ids[i], LOG_WARNING, "the daemon stopped uncleanly while this job ran; requeued to resume from its last checkpoint",
		                err, sizeof err);
	}
	if (n > 64) slog(LOG_WARNING, 0, "%d more jobs requeued after an unclean stop", n - 64);
}

int serve_main(int argc, char **argv)
{
	Server *s = calloc(1, sizeof *s);
	if (!s) {
		fprintf(stderr, "ssld: out of memory\n");
		return 1;
	}
	char err[1024];
	int status = 1, loop_ok = 0;
	s->lock.dir_fd = s->lock.file_fd = -1;
	config_defaults(&s->cfg);
	int rc = config_from_args(&s->cfg, argc, argv, err, sizeof err);
	if (rc == 1) {
		config_usage();
		free(s);
		return 0;
	}
	if (rc < 0) {
		fprintf(stderr, "ssld serve: %s\n", err);
		free(s);
		return 2;
	}
	config_finish(&s->cfg);
	SsldConfig *c = &s->cfg;
	slog_set_level(c->log_level);
	if (c->log_file[0] && (rc = slog_set_file(c->log_file)) < 0) {
		fprintf(stderr, "ssld serve: log file %s: %s\n", c->log_file, strerror(-rc));
		free(s);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit (RLIMIT_FSIZE) must fail the write with EFBIG - which the checkpoint and
	 * SQLite report, naming the file - not kill the daemon and every job in it. */
	signal(SIGXFSZ, SIG_IGN);

	/* The state directory, owned by one daemon at a time. */
	if ((rc = mkdir_p(c->state_dir)) < 0) {
		slog(LOG_ERR, 0, "state directory %s: %s", c->state_dir, strerror(-rc));
		goto out;
	}
	if (strcmp(c->shared_dir, c->state_dir) != 0 && (rc = mkdir_p(c->shared_dir)) < 0) {
		slog(LOG_ERR, 0, "shared directory %s: %s", c->shared_dir, strerror(-rc));
		goto out;
	}
	char path[1200];
	if (statelock_acquire(&s->lock, c->state_dir, err, sizeof err) < 0) {
		slog(LOG_ERR, 0, "%s", err);
		goto out;
	}
	/* The loop first: the pool and the API send it wake-ups from their threads. */
	if (uv_loop_init(&s->loop) != 0) {
		slog(LOG_ERR, 0, "libuv: cannot create the event loop");
		goto out;
	}
	loop_ok = 1;
	uv_async_init(&s->loop, &s->wake, on_wake);
	s->wake.data = s;
	/* Signals before anything a client can see (the API, the port file): a SIGTERM sent as soon as
	 * ssld answers is a graceful stop, not the default action. Their callbacks run in uv_run. */
	uv_signal_init(&s->loop, &s->sigterm);
	uv_signal_init(&s->loop, &s->sigint);
	uv_signal_init(&s->loop, &s->sighup);
	s->sigterm.data = s->sigint.data = s->sighup.data = s;
	uv_signal_start(&s->sigterm, on_stop_signal, SIGTERM);
	uv_signal_start(&s->sigint, on_stop_signal, SIGINT);
	uv_signal_start(&s->sighup, on_sighup, SIGHUP);
	config_database(c, path, sizeof path);
	if (store_open(path, &s->st, err, sizeof err) < 0) {
		slog(LOG_ERR, 0, "%s", err);
		goto out;
	}
	if (store_batch_new(s->st, 0, &s->batch, err, sizeof err) < 0) {
		slog(LOG_ERR, 0, "%s", err);
		goto out;
	}
	/* Before anything can end a job (recovery, the API, the workers): each end writes its delivery. */
	if (c->webhook[0]) store_set_outbox(s->st, 1);
	PoolConfig pc = { .workers = c->workers, .state_dir = c->state_dir, .shared_dir = c->shared_dir,
	                  .max_threads = c->job_threads, .max_running_per_owner = c->max_running_per_owner,
	                  .on_run_end = pool_run_end, .user = s,
	                  .lease_s = config_shared_database(c) ? c->lease_s : 0, .max_interruptions = c->max_attempts,
	                  .mpi = { .mpirun = c->mpirun, .extra_args = c->mpirun_args, .hostfile = c->mpi_hostfile,
	                           .stop_grace_s = c->stop_timeout_s * 0.8 } };
	if (pool_new(s->st, s->batch, &pc, &s->pool, err, sizeof err) < 0) {
		slog(LOG_ERR, 0, "%s", err);
		goto out;
	}
	const char *roots[CONFIG_MAX_ROOTS + 1];
	for (int i = 0; i < c->n_data_roots; i++) roots[i] = c->data_roots[i];
	/* Jobs open dataset files beneath these roots only (checked again at open time), and beneath
	 * the uploaded datasets (api/datasets.h). */
	char uploaded[sizeof c->shared_dir + 16];
	snprintf(uploaded, sizeof uploaded, "%s/" API_UPLOADS_DIR, c->shared_dir);
	roots[c->n_data_roots] = uploaded;
	if (mkdir(uploaded, 0750) < 0 && errno != EEXIST)   /* confined by descriptor: it must exist now */
		slog(LOG_WARNING, 0, "%s: %s; uploaded datasets cannot be read", uploaded, strerror(errno));
	if (dataset_confine(roots, c->n_data_roots + 1) < 0) {
		slog(LOG_ERR, 0, "data roots: out of memory");
		goto out;
	}
	int listen_fd = activation_socket();
	ApiConfig ac = {
		.listen = c->listen, .listen_fd = listen_fd, .read_access = (ApiReadAccess)c->read_access, .store = s->st, .batch = s->batch, .pool = s->pool, .state_dir = c->state_dir, .shared_dir = c->shared_dir,
		.data_roots = roots, .n_data_roots = c->n_data_roots, .web_dir = c->web_dir[0] ? c->web_dir : NULL,
		.max_body = c->max_body, .max_job_memory = c->max_job_memory, .max_queued = c->max_queued,
		.max_queued_per_owner = c->max_queued_per_owner, .max_running_per_owner = c->max_running_per_owner,
		.max_user_priority = c->max_user_priority,
		.threads = c->http_threads, .tokens_file = c->tokens_file[0] ? c->tokens_file : NULL, .version = SSLD_VERSION,
		.on_queued = api_queued, .on_ended = api_ended, .user = s,
		.max_connections = c->max_connections, .max_connections_per_ip = c->max_connections_per_ip,
		.request_deadline_s = c->request_deadline_s,
		.datasets = { .max_upload_bytes = c->max_upload_bytes ? c->max_upload_bytes : UINT64_MAX,
		              .max_dataset_bytes = c->max_dataset_bytes ? c->max_dataset_bytes : UINT64_MAX,
		              .max_files = c->max_dataset_files ? (uint64_t)c->max_dataset_files : UINT64_MAX,
		              .max_per_owner = c->max_datasets_per_owner ? c->max_datasets_per_owner : INT_MAX,
		              .quota_bytes = c->dataset_quota_bytes ? c->dataset_quota_bytes : UINT64_MAX },
		.generate = { .threads = c->generate_threads, .max_waiting = c->generate_queue,
		              .max_seconds = c->generate_max_seconds, .max_tokens = c->generate_max_tokens },
	};
	if (api_new(&ac, &s->api, err, sizeof err) < 0) {
		slog(LOG_ERR, 0, "%s", err);
		goto out;
	}
	config_default_node(c, api_port(s->api));
	if (pool_set_node(s->pool, c->node) < 0 || api_set_node(s->api, c->node) < 0) {
		slog(LOG_ERR, 0, "node name: out of memory");
		goto out;
	}
	recover(s);   /* after the node has its name, before any worker claims */
	if (c->webhook[0]) {
		Webhook *w;
		if (webhook_start(c->webhook, s->st, c->node, config_shared_database(c), &w, err, sizeof err) < 0) {
			slog(LOG_ERR, 0, "%s", err);
			goto out;
		}
		atomic_store(&s->webhook, w);
	}
	if (pool_start(s->pool, err, sizeof err) < 0) {
		slog(LOG_ERR, 0, "%s", err);
		goto out;
	}
	snprintf(s->port_file, sizeof s->port_file, "%s/port", c->state_dir);
	if ((rc = write_port_file(s->port_file, api_port(s->api))) < 0)
		slog(LOG_WARNING, 0, "%s: %s", s->port_file, strerror(-rc));

	/* Timers. */
	uv_timer_init(&s->loop, &s->flush_timer);
	uv_timer_init(&s->loop, &s->stop_timer);
	uv_timer_init(&s->loop, &s->watchdog_timer);
	uv_timer_init(&s->loop, &s->status_timer);
	s->flush_timer.data = s->stop_timer.data = s->watchdog_timer.data = s->status_timer.data = s;
	uint64_t flush_ms = (uint64_t)(c->flush_interval_s * 1000);
	uv_timer_start(&s->flush_timer, on_flush, flush_ms, flush_ms);
#ifdef HAVE_SYSTEMD
	uint64_t wd_usec = 0;
	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0)
		uv_timer_start(&s->watchdog_timer, on_watchdog, wd_usec / 2000, wd_usec / 2000);
#endif

	char roots_text[2048] = "";
	for (int i = 0; i < c->n_data_roots; i++)
		snprintf(roots_text + strlen(roots_text), sizeof roots_text - strlen(roots_text), "%s%s", i ? ", " : "", c->data_roots[i]);
	char where[300];
	if (listen_fd > 0)
		snprintf(where, sizeof where, "port %d (socket passed by systemd)", api_port(s->api));
	else   /* parse_listen accepted it: it has a ':' */
		snprintf(where, sizeof where, "http://%.*s:%d", (int)(strrchr(c->listen, ':') - c->listen), c->listen, api_port(s->api));
	char shown_db[1300];
	redact_database(path, shown_db, sizeof shown_db);
	slog(LOG_NOTICE, 0, "ssld %s node %s listening on %s; state %s; database %s; job directories %s/jobs; %d worker(s), "
	     "%d BLAS thread(s) per job; data roots: %s; web: %s",
	     SSLD_VERSION, c->node, where, c->state_dir, shown_db, c->shared_dir, c->workers, c->job_threads, roots_text[0] ? roots_text : "(none)",
	     c->web_dir[0] ? c->web_dir : "(none)");
	BlasCore bc;
	char blas[256];
	blas_core_probe(&bc);
	slog(LOG_NOTICE, 0, "BLAS: %s; engine vector kernels: %s", blas_core_describe(&bc, blas, sizeof blas),
	     simd_level_name(simd()->level));
	notify("READY=1");
	update_status(s);
	uv_timer_start(&s->status_timer, on_status_timer, 5000, 5000);

	uv_run(&s->loop, UV_RUN_DEFAULT);
	status = 0;

out:
	/* Shut down in dependency order: no new requests, no running jobs, last batch, database. */
	if (s->forced) {
		/* Jobs are still running: do not join them. Save what is buffered and leave; the database
		 * still says `running`, so the next start requeues them from their checkpoints. A
		 * generation still loading its model holds its connection: the exit closes it. */
		if (api_generating(s->api) == 0) api_free(s->api);
		s->api = NULL;
		if (s->batch) store_batch_flush(s->batch, err, sizeof err);
		slog(LOG_NOTICE, 0, "stopped (forced)");
		if (s->port_file[0]) unlink(s->port_file);
		return 1;   /* the Server and its threads die with the process */
	}
	api_free(s->api);
	pool_free(s->pool);
	webhook_stop(atomic_load(&s->webhook));
	if (s->batch && store_batch_flush(s->batch, err, sizeof err) < 0) slog(LOG_ERR, 0, "last metric batch lost: %s", err);
	store_batch_free(s->batch);
	store_free(s->st);
	if (loop_ok) {
		uv_walk(&s->loop, close_cb, NULL);
		uv_run(&s->loop, UV_RUN_DEFAULT);
		uv_loop_close(&s->loop);
	}
	if (s->port_file[0]) unlink(s->port_file);
	statelock_release(&s->lock);
	if (status == 0) slog(LOG_NOTICE, 0, "stopped cleanly");
	free(s);
	return status;
}
