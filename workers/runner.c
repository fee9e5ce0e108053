/* runner.c - turns one validated job spec into its pipeline and runs it (see runner.h):
 * dataset -> loader with augmentations -> pretext method -> optimizer loop (metrics, progress,
 * cancellation, periodic checkpoints, resume) -> encoder export -> evaluations -> results.json.
 *
 * It is shared by `ssld run` and the daemon's worker threads and knows nothing of HTTP or SQLite.
 * What a method computes lives in engine/methods/; what a protocol does lives in eval*.c.
 */
#include "runner.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/strbuf.h"
#include "../engine/alloc.h"
#include "../engine/checkpoint.h"
#include "../engine/ctx.h"
#include "../engine/dist.h"
#include "../engine/fault.h"
#include "../engine/data/augment.h"
#include "../engine/data/loader.h"
#include "../engine/data/png_grid.h"
#include "../engine/methods/embed_map.h"
#include "../engine/methods/eval.h"
#include "../engine/methods/method.h"
#include "../engine/methods/ssl_health.h"
#include "../engine/ops.h"
#include "../engine/optim.h"
#include "init_from.h"
#include "job_files.h"
#include "job_progress.h"
#include "jobspec.h"
#include "results_summary.h"
#include "workdir.h"
#include "../common/monotime.h"

#define CHECKPOINT_NAME JOB_FILE_CHECKPOINT

/* One evaluation run: a protocol at one labelled subset, and its phase in the job's progress. */
typedef struct EvalRun {
	EvalConfig ec;
	double frac;          /* 0 with labels_per_class */
	int lpc;              /* > 0: labels per class */
	uint64_t seed;
	char stage[96];       /* "linear_probe@0.01", "knn@20pc" */
	int phase;
} EvalRun;

typedef struct Run {
	const RunnerHooks *hooks;
	const char *dir;
	JobSpec *js;
	Dataset *ds;
	ParamSet *ps;
	const PretextMethod *method;   /* NULL for "none" */
	void *mstate;
	Encoder *plain_encoder;        /* "none": a randomly initialised encoder */
	Optim *opt;
	Ctx *ctx;
	Loader *loader;
	int64_t step, total_steps;
	int steps_per_epoch;
	double t_start, pretrain_seconds;
	double last_loss;
	cJSON *pretext_metrics;        /* what the method's evaluate() reported, for "pretext" */
	int64_t collapse_step;         /* step of the first "collapsed" = 1 report, -1 = none */
	const char *job_key;           /* stored in checkpoints (workdir.h); NULL for `ssld run` */
	char spec_sha256[65];          /* of the resolved spec, stored in checkpoints */
	EvalRun *runs;                 /* the evaluations, in order (plan_job) */
	int n_runs;
	JobProgress jp;                /* the whole job's fraction and ETA */
	int pre_phase;                 /* pretraining's phase in jp, -1 when it does not pretrain */
	int map_phase;                 /* the embedding map's phase in jp, -1 without one */
	cJSON *label_notes;            /* results.json "labels" */
	int rank, ranks;               /* data parallelism (engine/dist.h): this process of `ranks` */
	char *err;
	size_t errlen;
} Run;

/* ---- hooks ------------------------------------------------------------------------------------ */

static void emit_metric(Run *r, const char *key, double v)
{
	if (r->hooks && r->hooks->on_metric)
		r->hooks->on_metric(r->hooks->user, r->step, key, v);
}

static void emit_event(Run *r, RunnerLevel level, const char *fmt, ...);

/* Methods report "collapsed" = 1 (ssl_health.h) when their embeddings have collapsed: the first
 * such report becomes a warning in the job's events (and "collapse_step" in results.json). */
static void watch_collapse(Run *r, const char *key, double v)
{
	if (v <= 0 || r->collapse_step >= 0 || strcmp(key, "collapsed") != 0)
		return;
	r->collapse_step = r->step;
	emit_event(r, RUNNER_WARNING,
	           "representation collapse at step %lld: the embeddings have (almost) no spread "
	           "(health/std_mean < %.2f or health/eff_rank < %.1f); the run is unlikely to learn "
	           "anything useful - check the method's settings (e.g. BYOL's predictor, a "
	           "higher learning rate or temperature)",
	           (long long)r->step, SSL_HEALTH_STD_FLOOR, SSL_HEALTH_RANK_FLOOR);
}

static void sink_put(void *user, const char *key, double v)
{
	emit_metric(user, key, v);
	watch_collapse(user, key, v);
}

/* The sink evaluate() reports to: streamed like any metric and kept for results.json "pretext". */
static void sink_put_collect(void *user, const char *key, double v)
{
	Run *r = user;
	emit_metric(r, key, v);
	if (r->pretext_metrics && isfinite(v))
		cJSON_AddNumberToObject(r->pretext_metrics, key, v);
}

static void emit_event(Run *r, RunnerLevel level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (r->hooks && r->hooks->on_event)
		r->hooks->on_event(r->hooks->user, level, msg);
}

/* The running phase is `done` (0..1) after spent_s seconds: the stage's step of total, with the
 * whole job's fraction and ETA. */
static void report(Run *r, int64_t step, int64_t total, const char *stage, double done, double spent_s)
{
	RunnerProgress p = { .step = step, .total = total, .stage = stage };
	jp_update(&r->jp, done, spent_s, &p.fraction, &p.eta_s);
	if (r->hooks && r->hooks->on_progress)
		r->hooks->on_progress(r->hooks->user, &p);
}

static void note_event(void *user, const char *msg)
{
	emit_event(user, RUNNER_INFO, "%s", msg);
}

static void emit_artifact(void *user, const char *name)
{
	Run *r = user;
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", r->dir, name);
	if (r->hooks && r->hooks->on_artifact)
		r->hooks->on_artifact(r->hooks->user, name, path);
}

static int poll_stop(Run *r)
{
	if (r->hooks && r->hooks->should_stop)
		return r->hooks->should_stop(r->hooks->user);
	return RUNNER_CONTINUE;
}

static int fail(Run *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, r->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* 7020 -> "7,020". */
static void fmt_count(int64_t n, char *out, size_t cap)
{
	char digits[32];
	int len = snprintf(digits, sizeof digits, "%lld", (long long)(n < 0 ? -n : n)), o = 0;
	for (int i = 0; i < len && o + 2 < (int)cap; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = digits[i];
	}
	out[o] = 0;
}

/* ---- setup ------------------------------------------------------------------------------------ */

static void sample_shape(const Dataset *ds, int *c, int *h, int *w)
{
	*c = ds->c;
	*h = ds->h;
	*w = ds->w;
}

static int build_model(Run *r)
{
	int c, h, w;
	sample_shape(r->ds, &c, &h, &w);
	r->ps = paramset_new();
	if (!r->ps)
		return fail(r, "out of memory");
	Rng init_rng;
	rng_seed(&init_rng, r->js->seed * 2654435761u + 17);
	const PretextMethod *m = method_find(r->js->method);
	if (!m)
		return fail(r, "method: \"%s\" is not in the method registry", r->js->method);
	if (!m->create) {   /* "none": no pretraining, a bare encoder for the evaluations */
		return encoder_new(&r->js->encoder, r->ps, "encoder", c, h, w, &init_rng, &r->plain_encoder,
		                   r->err, r->errlen);
	}
	r->method = m;
	MethodEnv env = {
		.encoder = &r->js->encoder, .in_c = c, .in_h = h, .in_w = w, .ds = r->ds,
		.config = r->js->method_config, .rng = &init_rng,
		.total_steps = r->total_steps, .batch_size = r->js->pretrain.batch_size,
	};
	return r->method->create(&env, r->ps, &r->mstate, r->err, r->errlen);
}

/* Planned pretraining steps; a time budget may end pretraining earlier. */
static void plan_steps(Run *r)
{
	int n = r->ds->train.n;
	if (r->ds->kind == DATASET_TEXT && r->js->encoder.context > 0) {
		/* A byte stream has no samples: an epoch is one pass of context-sized windows. */
		size_t windows = r->ds->text_train_len / (size_t)r->js->encoder.context;
		n = windows > (size_t)INT32_MAX ? INT32_MAX : (int)windows;
	}
	int bs = r->js->pretrain.batch_size;
	r->steps_per_epoch = n / bs > 0 ? n / bs : 1;
	int64_t total = (int64_t)r->js->pretrain.epochs * r->steps_per_epoch;
	if (r->js->pretrain.max_steps > 0 && (total == 0 || r->js->pretrain.max_steps < total))
		total = r->js->pretrain.max_steps;
	if (r->js->pretrain.epochs == 0 && r->js->pretrain.max_steps == 0)
		total = 0;
	r->total_steps = total;
	OptimConfig *oc = &r->js->pretrain.optim;
	oc->warmup_steps = (int64_t)(r->js->pretrain.warmup_epochs * r->steps_per_epoch);
	if (oc->warmup_steps > total / 2)
		oc->warmup_steps = total / 2;
}

/* ---- data parallelism (engine/dist.h) --------------------------------------------------------- */

/* Which process of the job this is. Launched as several (mpirun), each rank trains its shard of
 * every global batch; rank 0 alone reports (the others' hooks keep only should_stop, into
 * *quiet), writes the work dir and runs what follows pretraining. 0, or -1 with r->err set. */
static int start_ranks(Run *r, RunnerHooks *quiet)
{
	if (dist_init(r->err, r->errlen) < 0)
		return -1;
	r->rank = dist_rank();
	r->ranks = dist_size();
	if (r->rank > 0) {
		*quiet = (RunnerHooks){ .user = r->hooks ? r->hooks->user : NULL,
		                        .should_stop = r->hooks ? r->hooks->should_stop : NULL };
		r->hooks = quiet;
	}
	if (r->ranks == 1)
		return 0;
	const PretextMethod *m = method_find(r->js->method);
	if (m && m->create && !m->data_parallel)
		return fail(r, "method \"%s\" cannot train as %d processes: only methods whose loss "
		            "sees the global batch do (simclr, moco, byol, barlow_twins, vicreg)", r->js->method,
		            r->ranks);
	if (r->js->pretrain.batch_size % r->ranks != 0)
		return fail(r, "pretrain.batch_size %d is not divisible by the %d processes: every "
		            "process takes an equal share of each batch", r->js->pretrain.batch_size,
		            r->ranks);
	return 0;
}

/* Every rank starts from rank 0's state: its initialisation, or the checkpoint it resumed (the
 * other ranks read no files, so they need no shared directory). *resumed is rank 0's. */
static int share_start(Run *r, int *resumed)
{
	if (r->ranks == 1)
		return 0;
	double st[4] = { (double)r->step, r->pretrain_seconds, r->last_loss, *resumed };
	if (dist_bcast(st, sizeof st, "broadcast of the start state") < 0 ||
	    dist_bcast(ctx_rng(r->ctx), sizeof(Rng), "broadcast of the start state") < 0 ||
	    dist_bcast_params(r->ps, r->opt) < 0)
		return fail(r, "%s", dist_error() ? dist_error() : "out of memory");
	r->step = (int64_t)st[0];
	r->pretrain_seconds = st[1];
	r->last_loss = st[2];
	*resumed = (int)st[3];
	return 0;
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

/* checkpoint_save_guarded's question once the file is written: writing takes seconds for a large
 * model, and the node may lose the job meanwhile (paused past its lease): then the file another
 * node resumes from must not be replaced. */
static int may_commit_checkpoint(void *user)
{
	return poll_stop(user) != RUNNER_STOP_CANCEL;
}

static int save_checkpoint(Run *r)
{
	/* Asked again just before writing: a run cancelled - or whose node lost the job to another
	 * (workers/pool.h, leases) - during this step writes no more files into its directory. */
	if (poll_stop(r) == RUNNER_STOP_CANCEL)
		return 0;
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", r->dir, CHECKPOINT_NAME);
	CheckpointState st = { .step = r->step, .rng = *ctx_rng(r->ctx),
	                       .elapsed_s = r->pretrain_seconds + (mono_seconds() - r->t_start) };
	char cfg[1024];
	encoder_config_to_json(&r->js->encoder, cfg, sizeof cfg);
	st.encoder_config_json = cfg;
	st.method = r->js->method;
	st.job_key = r->job_key;
	st.spec_sha256 = r->spec_sha256;
	st.loss = r->last_loss;
	int rc = checkpoint_save_guarded(path, r->ps, r->opt, &st, may_commit_checkpoint, r, r->err, r->errlen);
	if (rc < 0)
		return -1;
	if (rc == 1)   /* cancelled or fenced while writing: nothing replaced, nothing recorded */
		return 0;
	if (r->hooks && r->hooks->on_checkpoint)
		r->hooks->on_checkpoint(r->hooks->user, r->step, path);
	return 0;
}

/* A run killed while writing (kill -9, power loss) leaves its temporary files behind: the
 * checkpoint's "checkpoint.safetensors.tmp.XXXXXX" (one full checkpoint in size) and the
 * "*.json.tmp" of results.json / job.json. Only this run writes in its work dir, so whatever of
 * them is there when it starts is stale: remove it, or every crash would leak a checkpoint's size. */
static void remove_stale_temps(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (strncmp(e->d_name, CHECKPOINT_NAME ".tmp.", sizeof CHECKPOINT_NAME + 4) != 0 &&
		    strncmp(e->d_name, JOB_FILE_ENCODER ".tmp.", sizeof JOB_FILE_ENCODER + 4) != 0 &&
		    (n < 9 || strcmp(e->d_name + n - 9, ".json.tmp") != 0))
			continue;
		char path[4096];
		if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
			unlink(path);
	}
	closedir(d);
}

/* Resume if a checkpoint exists in the work dir: restores weights, optimizer moments, the step
 * counter and the RNG. Returns 1 when resumed, 0 when starting fresh, < 0 on error. */
static int try_resume(Run *r)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", r->dir, CHECKPOINT_NAME);
	if (access(path, F_OK) != 0)
		return 0;
	CheckpointState st;
	if (checkpoint_load(path, r->ps, r->opt, &st, NULL, r->err, r->errlen) < 0)
		return -1;
	if (st.method && strcmp(st.method, r->js->method) != 0) {
		int rc = fail(r, "%s: written by method \"%s\", the job is \"%s\"", path, st.method,
		              r->js->method);
		checkpoint_state_free(&st);
		return rc;
	}
	r->step = st.step;
	*ctx_rng(r->ctx) = st.rng;
	r->pretrain_seconds = st.elapsed_s;
	r->last_loss = st.loss;
	checkpoint_state_free(&st);
	return 1;
}

int runner_checkpoint_step(const char *work_dir, const char *job_key, int64_t *step, char *err,
                           size_t errlen)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", work_dir, CHECKPOINT_NAME);
	if (access(path, F_OK) != 0)
		return 0;
	Checkpoint *ck;
	CheckpointState st;
	if (checkpoint_open(path, 0, &ck, err, errlen) < 0)
		return -1;
	int rc = checkpoint_get_state(ck, &st, err, errlen);
	checkpoint_close(ck);
	if (rc < 0)
		return -1;
	if (job_key && (!st.job_key || strcmp(st.job_key, job_key) != 0)) {
		checkpoint_state_free(&st);
		return 0;
	}
	*step = st.step;
	checkpoint_state_free(&st);
	return 1;
}

static int load_init_from(Run *r, runner_resolve_job_cb resolve)
{
	char path[4096];
	if (r->js->init_from_job > 0) {
		if (!resolve || resolve(r->hooks ? r->hooks->user : NULL, r->js->init_from_job, path,
		                        sizeof path) < 0)
			return fail(r, "init_from: job %lld has no checkpoint to start from",
			            (long long)r->js->init_from_job);
	} else {
		snprintf(path, sizeof path, "%s", r->js->init_from);
	}
	char *enc_cfg = NULL;
	int tv = init_from_load(path, r->ps, &enc_cfg, r->err, r->errlen);   /* ssld's or torchvision's names */
	if (tv < 0)
		return -1;
	/* The encoder normalises its input as it was trained to (model.h), not by this job's data. */
	cJSON *cfg = enc_cfg ? cJSON_Parse(enc_cfg) : NULL;
	free(enc_cfg);
	if (cfg) {
		EncoderConfig *ec = &r->js->encoder;
		const cJSON *m = cJSON_GetObjectItem(cfg, "input_mean"), *s = cJSON_GetObjectItem(cfg, "input_std");
		ec->in_norm = cJSON_GetArraySize(m) == 3 && cJSON_GetArraySize(s) == 3;
		for (int c = 0; ec->in_norm && c < 3; c++) {
			ec->in_mean[c] = (float)cJSON_GetArrayItem(m, c)->valuedouble;
			ec->in_std[c] = (float)cJSON_GetArrayItem(s, c)->valuedouble;
		}
		if (ec->in_norm)
			emit_event(r, RUNNER_INFO, "input normalisation from the source encoder: mean %.4f %.4f "
			           "%.4f, std %.4f %.4f %.4f", ec->in_mean[0], ec->in_mean[1], ec->in_mean[2],
			           ec->in_std[0], ec->in_std[1], ec->in_std[2]);
		cJSON_Delete(cfg);
	}
	emit_event(r, RUNNER_INFO, "encoder initialised from %s%s; pretraining skipped", path,
	           tv ? " (torchvision names)" : "");
	return 0;
}

/* ---- pretraining ------------------------------------------------------------------------------ */

/* The online kNN monitor (ssl_health.h): health/knn_accuracy of the current encoder on a small
 * labelled slice of the training split. < 0 (with an event) when it cannot run on this dataset. */
static int knn_monitor(Run *r)
{
	char err[256];
	double acc;
	if (ssl_health_knn(r->method->encoder(r->mstate), r->ds, 2000, 1000, r->js->seed, &acc, err,
	                   sizeof err) < 0) {
		emit_event(r, RUNNER_NOTICE, "%s; the kNN monitor is off for this job", err);
		return -1;
	}
	emit_metric(r, "health/knn_accuracy", acc);
	return 0;
}

static int pretrain(Run *r)
{
	JobSpec *js = r->js;
	const PretextMethod *m = r->method;
	int views = m->make_batch ? 0 : m->views;   /* make_batch methods draw token batches */
	LoaderConfig lc = {
		.ds = r->ds, .split = &r->ds->train, .batch = js->pretrain.batch_size,
		.views = views, .aug = { &js->augment[0], &js->augment[1] }, .seed = js->seed,
		.shuffle = 1, .drop_last = 1, .prefetch = 2, .aug_threads = js->threads > 1 ? 2 : 1,
		.shard = r->rank, .shards = r->ranks,
	};
	/* A method with make_batch (text) draws its own batches from (seed, step): no loader. */
	if (!m->make_batch) {
		if (loader_new(&lc, &r->loader, r->err, r->errlen) < 0)
			return -1;
		int epoch = (int)(r->step / r->steps_per_epoch);
		loader_seek(r->loader, epoch, (int)(r->step % r->steps_per_epoch));
	}

	MetricSink sink = { .put = sink_put, .user = r };
	const SslHealthConfig *health = ssl_health_config(m, js->method_config);
	int64_t knn_interval = health && health->knn_every > 0 ? health->knn_every : 0;
	double last_ckpt = mono_seconds(), t_window = mono_seconds();
	int64_t window_steps = 0, window_images = 0, window_tokens = 0;
	double budget = js->pretrain.time_budget_s;
	int c = r->ds->c, h = r->ds->h, w = r->ds->w;
	int stopped = RUNNER_CONTINUE;
	int wrote_views = 0;

	char procs[64] = "";
	if (r->ranks > 1)
		snprintf(procs, sizeof procs, " (%d per process, %d processes)",
		         js->pretrain.batch_size / r->ranks, r->ranks);
	emit_event(r, RUNNER_INFO, "pretraining %s: %lld steps (%d per epoch), batch %d%s%s",
	           js->method, (long long)r->total_steps, r->steps_per_epoch, js->pretrain.batch_size,
	           procs, r->step ? " (resumed)" : "");
	jp_begin(&r->jp, r->pre_phase);
	report(r, r->step, r->total_steps, "pretrain",
	       r->total_steps ? (double)r->step / r->total_steps : 0, r->pretrain_seconds);
	if (CTX_TRY(r->ctx) != 0) {
		ctx_disarm(r->ctx);
		return fail(r, "out of memory at step %lld", (long long)r->step);
	}
	ctx_set_distributed(r->ctx, r->ranks > 1);
	while (r->step < r->total_steps) {
		double elapsed = r->pretrain_seconds + (mono_seconds() - r->t_start);
		int stop = poll_stop(r);
		if (r->ranks > 1) {
			/* The ranks stop together and follow rank 0's clock (the others report 0). */
			double agree[2] = { stop, r->rank == 0 ? elapsed : 0 };
			dist_set_step(r->step);
			if (dist_allreduce_max_f64(agree, 2, "agreement on stopping") < 0) {
				ctx_disarm(r->ctx);
				return fail(r, "%s", dist_error());
			}
			stop = (int)agree[0];
			elapsed = agree[1];
		}
		if (budget > 0 && elapsed >= budget) {
			char at[32], of[32];
			fmt_count(r->step, at, sizeof at);
			fmt_count(r->total_steps, of, sizeof of);
			emit_event(r, RUNNER_NOTICE, "the time budget of %.0f s stopped pretraining at step "
			           "%s of %s%s", budget, at, of, r->n_runs ? "; the evaluations follow" : "");
			break;
		}
		if ((stopped = stop) != RUNNER_CONTINUE)
			break;
		Batch own;
		const Batch *b = &own;
		if (m->make_batch) {
			if (m->make_batch(r->mstate, r->ds, js->seed, r->step, &own, r->err, r->errlen) < 0) {
				ctx_disarm(r->ctx);
				return -1;
			}
		} else if (!(b = loader_next(r->loader))) {
			continue; /* epoch boundary */
		}
		ctx_reset(r->ctx);
		ctx_set_training(r->ctx, 1);
		Tensor *vt[2] = { NULL, NULL };
		int shape[4] = { b->n, c, h, w };
		for (int v = 0; v < (views ? views : 1); v++)
			if (b->view[v])   /* token batches (text) have no views */
				vt[v] = ctx_wrap(r->ctx, b->view[v], 4, shape);
		if (!wrote_views && views > 0 && r->step == 0 && r->rank == 0) {
			/* The first batch's augmented views, side by side, so a user can judge them. */
			char path[4096];
			snprintf(path, sizeof path, "%s/augmented_views.png", r->dir);
			int n = b->n < 16 ? b->n : 16;
			const float *imgs[2] = { b->view[0], views > 1 ? b->view[1] : b->view[0] };
			if (png_grid_write_rows(path, imgs, views > 1 ? 2 : 1, n, c, h, w, 1, 0.0f,
			                        1.0f, r->err, r->errlen) == 0)
				emit_artifact(r, "augmented_views.png");
			wrote_views = 1;
		}
		Tensor *loss = m->loss(r->ctx, r->mstate, vt, b, &sink);
		double lv = loss->data[0];
		if (dist_error()) {
			ctx_disarm(r->ctx);
			return fail(r, "%s", dist_error());
		}
		if (!isfinite(lv)) {
			ctx_disarm(r->ctx);
			return fail(r, "loss became %s at step %lld", isnan(lv) ? "NaN" : "infinite",
			            (long long)r->step);
		}
		ctx_backward(r->ctx, loss);
		if (dist_allreduce_grads(r->ps) < 0) {   /* the sum over the ranks (one rank: nothing) */
			ctx_disarm(r->ctx);
			return fail(r, "%s", dist_error() ? dist_error() : "out of memory summing gradients");
		}
		double progress = r->total_steps ? (double)r->step / r->total_steps : 0;
		if (budget > 0 && elapsed / budget > progress)
			progress = elapsed / budget;
		float lr = schedule_lr(&js->pretrain.optim, (int64_t)(progress * r->total_steps),
		                       r->total_steps);
		float gnorm = optim_clip_grad_norm(r->ps, js->pretrain.optim.grad_clip);
		optim_step(r->opt, lr);
		paramset_zero_grad(r->ps);
		/* Momentum/EMA schedules follow the same progress as the learning rate (a time budget
		 * may run ahead of the step count). */
		if (m->after_step)
			m->after_step(r->mstate, (int64_t)(progress * r->total_steps), r->total_steps);
		if (ssld_fault("train_step")) {   /* ../engine/fault.h: a slow model, for tests acting mid-run */
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		r->step++;
		r->last_loss = lv;
		emit_metric(r, "loss", lv);
		emit_metric(r, "lr", lr);
		emit_metric(r, "grad_norm", gnorm);
		if (knn_interval > 0 && r->step % knn_interval == 0 && r->rank == 0 && knn_monitor(r) < 0)
			knn_interval = 0;
		window_steps++;
		window_images += (int64_t)b->n * r->ranks;
		if (b->tokens)
			window_tokens += (int64_t)b->n * b->T;
		double t = mono_seconds();
		if (t - t_window >= 2.0 || r->step == r->total_steps) {
			double ips = window_images / (t - t_window);
			emit_metric(r, "images_per_s", ips);
			if (window_tokens > 0)
				emit_metric(r, "tokens_per_s", window_tokens / (t - t_window));
			if (r->loader)
				emit_metric(r, "data_wait_s", loader_wait_seconds(r->loader));
			double spent = r->pretrain_seconds + (t - r->t_start);
			report(r, r->step, r->total_steps, "pretrain", (double)r->step / r->total_steps, spent);
			t_window = t;
			window_steps = window_images = window_tokens = 0;
		}
		if (t - last_ckpt >= js->checkpoint_interval_s && r->rank == 0) {
			if (save_checkpoint(r) < 0) {
				ctx_disarm(r->ctx);
				return -1;
			}
			last_ckpt = t;
		}
	}
	ctx_disarm(r->ctx);
	ctx_set_distributed(r->ctx, 0);   /* what follows (evaluate, artifacts) runs on rank 0 alone */
	r->pretrain_seconds += mono_seconds() - r->t_start;
	r->t_start = mono_seconds();
	loader_free(r->loader);
	r->loader = NULL;
	if (stopped == RUNNER_STOP_REQUEUE || stopped == RUNNER_STOP_CANCEL) {
		if (stopped == RUNNER_STOP_REQUEUE && r->rank == 0 && save_checkpoint(r) < 0)
			return -1;
		emit_event(r, RUNNER_NOTICE, "%s at step %lld",
		           stopped == RUNNER_STOP_REQUEUE ? "stopped for requeue" : "cancelled",
		           (long long)r->step);
		return stopped == RUNNER_STOP_REQUEUE ? RUNNER_STOPPED : RUNNER_CANCELLED;
	}
	/* during the last step: nothing more is written (one process: ranks stop only together) */
	if (r->ranks == 1 && poll_stop(r) == RUNNER_STOP_CANCEL) {
		emit_event(r, RUNNER_NOTICE, "cancelled at step %lld", (long long)r->step);
		return RUNNER_CANCELLED;
	}
	if (r->rank == 0 && save_checkpoint(r) < 0)
		return -1;
	jp_end(&r->jp, r->total_steps ? (double)r->step / r->total_steps : 1, r->pretrain_seconds);
	emit_event(r, RUNNER_INFO, "pretraining finished at step %lld in %.1f s, loss %.4f",
	           (long long)r->step, r->pretrain_seconds, r->last_loss);
	return 0;
}

/* ---- export and evaluations ------------------------------------------------------------------- */

static int export_encoder(Run *r)
{
	char path[4096], cfg[1024];
	encoder_config_to_json(&r->js->encoder, cfg, sizeof cfg);
	snprintf(path, sizeof path, "%s/" JOB_FILE_ENCODER, r->dir);
	if (checkpoint_export_prefix(path, r->ps, "encoder.", "encoder.", cfg, r->err, r->errlen) < 0)
		return -1;
	emit_artifact(r, JOB_FILE_ENCODER);
	snprintf(path, sizeof path, "%s/" JOB_FILE_CONFIG, r->dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return fail(r, "%s: %s", path, strerror(errno));
	/* config.json adds the sample shape, for python/ssld_torch.py and `ssld export`. */
	int c, h, w;
	sample_shape(r->ds, &c, &h, &w);
	fprintf(f, "%.*s,\"in_shape\":[%d,%d,%d]}\n", (int)strlen(cfg) - 1, cfg, c, h, w);
	if (fclose(f) != 0)
		return fail(r, "%s: %s", path, strerror(errno));
	emit_artifact(r, JOB_FILE_CONFIG);
	return 0;
}

typedef struct EvalHookCtx {
	Run *run;
	const EvalRun *er;
	double t0;
	int stop_code;
} EvalHookCtx;

static void eval_progress(void *user, int epoch, int epochs, double metric)
{
	EvalHookCtx *e = user;
	report(e->run, epoch, epochs, e->er->stage, epochs > 0 ? (double)epoch / epochs : 0,
	       mono_seconds() - e->t0);
	(void)metric;
}

static int eval_should_stop(void *user)
{
	EvalHookCtx *e = user;
	e->stop_code = poll_stop(e->run);
	return e->stop_code != RUNNER_CONTINUE;
}

/* Says what a labelled subset really holds, once per subset: a warning event when a class cannot
 * supply its share, and an entry of results.json "labels" either way. */
static void note_labels(Run *r, const EvalRun *er)
{
	cJSON *it;
	cJSON_ArrayForEach(it, r->label_notes) {
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(it, er->lpc > 0 ? "labels_per_class"
		                                                                  : "label_fraction");
		if (cJSON_IsNumber(f) && f->valuedouble == (er->lpc > 0 ? er->lpc : er->frac))
			return;
	}
	cJSON *note = NULL;
	char msg[400];
	int short_ = results_label_note(&r->ds->train, r->ds->num_classes, er->frac, er->lpc, &note,
	                                msg, sizeof msg);
	if (short_ > 0)
		emit_event(r, RUNNER_WARNING, "%s%s", msg,
		           r->js->dataset.limit_train > 0 ? " (dataset.limit_train keeps the first "
		                                             "training samples only)" : "");
	if (note)
		cJSON_AddItemToArray(r->label_notes, note);
}

static int run_evaluations(Run *r, cJSON *evals)
{
	JobSpec *js = r->js;
	int c, h, w;
	sample_shape(r->ds, &c, &h, &w);
	/* Every protocol draws its labels with the job's seed: the same subset at each size. */
	const uint64_t label_seed = js->seed;
	for (int i = 0; i < r->n_runs; i++) {
		const EvalRun *er = &r->runs[i];
		const EvalConfig ec = er->ec;
		EvalHookCtx hc = { .run = r, .er = er, .t0 = mono_seconds() };
		EvalEnv env = {
			.ds = r->ds, .encoder_cfg = &js->encoder, .in_c = c, .in_h = h, .in_w = w,
			.pretrained = r->ps, .prefix = "encoder", .seed = er->seed,
			.label_seed = &label_seed, .threads = js->threads, .on_progress = eval_progress,
			.should_stop = eval_should_stop, .user = &hc,
		};
		const char *stage = er->stage;
		note_labels(r, er);
		emit_event(r, RUNNER_INFO, "evaluation %s started (%d of %d)", stage, i + 1, r->n_runs);
		jp_begin(&r->jp, er->phase);
		report(r, 0, ec.epochs, stage, 0, 0);
		EvalResult res;
		int rc = eval_run(&env, &ec, er->frac, er->lpc, &res, r->err, r->errlen);
		if (rc < 0) {
			if (hc.stop_code == RUNNER_STOP_CANCEL)
				return RUNNER_CANCELLED;
			if (hc.stop_code == RUNNER_STOP_REQUEUE)
				return RUNNER_STOPPED;
			return -1;
		}
		jp_end(&r->jp, 1, mono_seconds() - hc.t0);
		const EvalProtocolDef *pd = eval_protocol_get(ec.protocol);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "protocol", eval_proto_name(ec.protocol));
		if (er->lpc > 0)
			cJSON_AddNumberToObject(o, "labels_per_class", er->lpc);
		else
			cJSON_AddNumberToObject(o, "label_fraction", er->frac);
		cJSON_AddNumberToObject(o, "labels", res.labels);
		cJSON_AddNumberToObject(o, "test_accuracy", round(res.test_accuracy * 1e4) / 1e4);
		cJSON_AddNumberToObject(o, "train_accuracy", round(res.train_accuracy * 1e4) / 1e4);
		if (ec.protocol == EVAL_PROTO_LINEAR_PROBE || ec.protocol == EVAL_PROTO_RANDOM_INIT ||
		    ec.protocol == EVAL_PROTO_PIXEL_PROBE)
			cJSON_AddNumberToObject(o, "weight_decay", res.chosen_weight_decay);
		if (pd && pd->trains_encoder)
			cJSON_AddBoolToObject(o, "augment", ec.augment);
		cJSON_AddNumberToObject(o, "seconds", round(res.seconds * 10) / 10);
		cJSON_AddItemToArray(evals, o);
		char key[128];
		snprintf(key, sizeof key, "eval/%s", stage);
		emit_metric(r, key, res.test_accuracy);
		emit_event(r, RUNNER_INFO, "evaluation %s: test accuracy %.4f with %d labels (%.1f s)",
		           stage, res.test_accuracy, res.labels, res.seconds);
	}
	return 0;
}

/* ---- the plan: every evaluation run and the cost of each phase ------------------------------ */

static void add_run(Run *r, const EvalConfig *ec, double frac, int lpc, uint64_t seed)
{
	EvalRun *er = &r->runs[r->n_runs++];
	*er = (EvalRun){ .ec = *ec, .frac = lpc > 0 ? 0 : frac, .lpc = lpc, .seed = seed };
	if (lpc > 0)
		snprintf(er->stage, sizeof er->stage, "%s@%dpc", eval_proto_name(ec->protocol), lpc);
	else
		snprintf(er->stage, sizeof er->stage, "%s@%g", eval_proto_name(ec->protocol), frac);
}

/* The random-init probe joins a job that evaluates a trained encoder with an SSL protocol (unless
 * "random_init_baseline" is false or the job asked for it itself), at that protocol's smallest
 * labelled subset, drawn the same way. */
static void add_random_init(Run *r)
{
	const EvalRun *at = NULL;
	for (int i = 0; i < r->n_runs; i++) {
		const EvalRun *er = &r->runs[i];
		const EvalProtocolDef *pd = eval_protocol_get(er->ec.protocol);
		if (er->ec.protocol == EVAL_PROTO_RANDOM_INIT)
			return;
		if (!pd || pd->baseline)
			continue;
		if (!at || (er->lpc == 0 && (at->lpc > 0 || er->frac < at->frac)) ||
		    (er->lpc > 0 && at->lpc > 0 && er->lpc < at->lpc))
			at = er;
	}
	if (!at)
		return;
	EvalConfig ec;
	eval_config_default(&ec, EVAL_PROTO_RANDOM_INIT);
	ec.label_rule = at->ec.label_rule;
	add_run(r, &ec, at->frac, at->lpc, at->seed);
}

/* Expected cost in units (job_progress.h: one sample through a forward pass). A training protocol
 * runs its steps forward and backward; a frozen-feature one encodes the labelled subset and the
 * test split once. */
static double eval_units(const Run *r, const EvalRun *er)
{
	const EvalConfig c = er->ec;   /* filled from the protocol's defaults by the spec */
	double labels = er->lpc > 0 ? (double)er->lpc * r->ds->num_classes : er->frac * r->ds->train.n;
	if (labels > r->ds->train.n)
		labels = r->ds->train.n;
	double units = labels + r->ds->test.n;
	const EvalProtocolDef *pd = eval_protocol_get(c.protocol);
	if (pd && pd->trains_encoder) {
		double b = c.batch_size > 0 && c.batch_size < labels ? c.batch_size : labels > 1 ? labels : 1;
		double steps = c.epochs * ceil(labels / b);
		units += 3 * b * (steps > pd->min_steps ? steps : pd->min_steps);
	}
	return units;
}


/* Every phase of the job in order, and the plan said once in the event log: "15-minute budget,
 * at most 7,020 steps; then 7 evaluations". 0, or -1 out of memory. */
static int plan_job(Run *r, int pretrains)
{
	JobSpec *js = r->js;
	int cap = 1;
	for (int i = 0; i < js->n_evals; i++)
		cap += js->evals[i].labels_per_class > 0 ? 1 : js->evals[i].n_fractions;
	r->runs = calloc((size_t)cap, sizeof *r->runs);
	r->label_notes = cJSON_CreateArray();
	if (!r->runs || !r->label_notes)
		return fail(r, "out of memory planning the evaluations");
	for (int i = 0; i < js->n_evals; i++) {
		const EvalSpec *es = &js->evals[i];
		int runs = es->labels_per_class > 0 ? 1 : es->n_fractions;
		for (int f = 0; f < runs; f++)
			add_run(r, es, es->labels_per_class > 0 ? 0 : es->fractions[f], es->labels_per_class,
			        js->seed + 1000u * (unsigned)i + (unsigned)f);
	}
	int requested = r->n_runs;
	if (js->random_init_baseline && (r->method || js->init_from || js->init_from_job > 0))
		add_random_init(r);

	jp_init(&r->jp);
	r->pre_phase = -1;
	if (pretrains) {
		int views = r->method->views > 0 ? r->method->views : 1;
		r->pre_phase = jp_add(&r->jp, 0, (double)r->total_steps * js->pretrain.batch_size * views * 3,
		                      js->pretrain.time_budget_s);
	}
	for (int i = 0; i < r->n_runs; i++)
		r->runs[i].phase = jp_add(&r->jp, 1, eval_units(r, &r->runs[i]), 0);
	/* The map: its points through the encoder, then t-SNE (a few times that in encoder units). */
	r->map_phase = js->embed_map.enabled ? jp_add(&r->jp, 1, 5.0 * js->embed_map.points, 0) : -1;

	char pre[160] = "", steps[32], evs[128];
	fmt_count(r->total_steps, steps, sizeof steps);
	double b = js->pretrain.time_budget_s;
	if (pretrains && b > 0 && fmod(b, 60) == 0)
		snprintf(pre, sizeof pre, "%g-minute budget, at most %s steps", b / 60, steps);
	else if (pretrains && b > 0)
		snprintf(pre, sizeof pre, "%g-second budget, at most %s steps", b, steps);
	else if (pretrains)
		snprintf(pre, sizeof pre, "%s pretraining steps", steps);
	if (r->n_runs > requested)
		snprintf(evs, sizeof evs, "%d evaluation%s (%d asked for and the random-init probe)",
		         r->n_runs, r->n_runs == 1 ? "" : "s", requested);
	else
		snprintf(evs, sizeof evs, "%d evaluation%s", r->n_runs, r->n_runs == 1 ? "" : "s");
	emit_event(r, RUNNER_INFO, "plan: %s%s%s", pre, pre[0] ? "; then " : "",
	           r->n_runs || !pre[0] ? evs : "no evaluations");
	return 0;
}

static void map_progress(void *user, int iteration, int iterations)
{
	EvalHookCtx *e = user;
	report(e->run, iteration, iterations, "embedding_map", iterations > 0 ? (double)iteration / iterations : 0,
	       mono_seconds() - e->t0);
}

/* The embedding map (engine/methods/embed_map.h), after the evaluations. Only a stop ends the job
 * here; any other failure is a warning: the training and evaluations stand without a map. */
static int run_embedding_map(Run *r, cJSON *root)
{
	EvalHookCtx hc = { .run = r, .t0 = mono_seconds() };
	if (r->map_phase >= 0) jp_begin(&r->jp, r->map_phase);
	EmbedMapEnv env = {
		.enc = r->method ? r->method->encoder(r->mstate) : r->plain_encoder, .ds = r->ds,
		.seed = r->js->seed, .threads = r->js->threads, .on_progress = map_progress,
		.should_stop = eval_should_stop, .user = &hc,
	};
	EmbedMapResult res;
	char err[512];
	int wrc = embed_map_write(&env, &r->js->embed_map, r->dir, &res, err, sizeof err);
	if (r->map_phase >= 0) jp_end(&r->jp, 1, mono_seconds() - hc.t0);
	if (wrc < 0) {
		if (hc.stop_code == RUNNER_STOP_CANCEL)
			return RUNNER_CANCELLED;
		if (hc.stop_code == RUNNER_STOP_REQUEUE)
			return RUNNER_STOPPED;
		emit_event(r, RUNNER_WARNING, "%s; the job has no embedding map", err);
		return 0;
	}
	if (res.sprite)
		emit_artifact(r, EMBED_MAP_SPRITE);
	emit_artifact(r, EMBED_MAP_FEATURES);
	emit_artifact(r, EMBED_MAP_JSON);
	cJSON *m = cJSON_AddObjectToObject(root, "embedding_map");
	cJSON_AddNumberToObject(m, "points", res.points);
	if (res.trustworthiness >= 0)
		cJSON_AddNumberToObject(m, "trustworthiness", round(res.trustworthiness * 1e4) / 1e4);
	cJSON_AddNumberToObject(m, "seconds", round(res.seconds * 10) / 10);
	emit_event(r, RUNNER_INFO, "embedding map: %d test samples, trustworthiness %.4f (k = %d), %.1f s",
	           res.points, res.trustworthiness, EMBED_MAP_TRUST_K, res.seconds);
	return 0;
}

/* The spec beside the checkpoint (work_dir/job.json), so `ssld generate DIR` and a person looking at
 * the directory know what ran. Best effort: the job does not depend on it. */
static void save_spec(const char *dir, const char *spec)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof path, "%s/" JOB_FILE_SPEC, dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	int ok = fputs(spec, f) >= 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0)
		unlink(tmp);
}

static int write_results(Run *r, cJSON *root, char **out)
{
	char *text = cJSON_Print(root);
	if (!text)
		return fail(r, "out of memory");
	char path[4096], tmp[4200];
	snprintf(path, sizeof path, "%s/" JOB_FILE_RESULTS, r->dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		int e = errno;
		if (f)
			fclose(f);
		free(text);
		return fail(r, "%s: %s", tmp, strerror(e));
	}
	fclose(f);
	if (rename(tmp, path) != 0) {
		free(text);
		return fail(r, "%s: %s", path, strerror(errno));
	}
	emit_artifact(r, JOB_FILE_RESULTS);
	*out = text;
	return 0;
}

/* ---- entry point ------------------------------------------------------------------------------ */

/* Before anything is written in the work dir: make sure what a resume would adopt is this run's
 * own (RunnerOptions in runner.h), and mark the directory with the spec hash. */
static int check_workdir(Run *r, const RunnerOptions *o)
{
	char *resolved = jobspec_to_json(r->js);
	if (!resolved || workdir_spec_hash(resolved, r->spec_sha256) < 0) {
		free(resolved);
		return fail(r, "out of memory resolving the job spec");
	}
	if (r->job_key) {
		char moved[4200];
		int c = workdir_claim(r->dir, r->job_key, moved, sizeof moved, r->err, r->errlen);
		if (c < 0) {
			free(resolved);
			return -1;
		}
		if (c > 0)
			emit_event(r, RUNNER_WARNING,
			           "%s held state this job did not create (another job with the same id: was "
			           "the database replaced or restored from a backup?); moved it aside to %s "
			           "and starting fresh",
			           r->dir, moved);
	} else if (o->resume != RUNNER_RESUME_FORCE) {
		WorkdirInfo wi;
		if (workdir_inspect(r->dir, resolved, &wi, r->err, r->errlen) < 0) {
			free(resolved);
			return -1;
		}
		if (wi.has_checkpoint && wi.spec_match != 1) {
			free(resolved);
			return fail(r, "%s/" CHECKPOINT_NAME " (step %lld) was written for %s%s%s; "
			            "it is not resumed: start over in an empty directory, or resume it "
			            "deliberately",
			            r->dir, (long long)wi.step,
			            wi.spec_match == 0 ? "a different job spec"
			                               : "a job spec that was not recorded (an older ssld)",
			            wi.differs[0] ? ": " : "", wi.differs);
		}
	}
	free(resolved);
	/* The results of an earlier run describe that run; this one writes its own at the end. */
	char path[4200];
	snprintf(path, sizeof path, "%s/results.json", r->dir);
	if (unlink(path) != 0 && errno != ENOENT)
		return fail(r, "%s: %s", path, strerror(errno));
	return workdir_mark_spec(r->dir, r->spec_sha256, r->err, r->errlen);
}

int runner_run(const char *spec_json, const char *work_dir, const RunnerHooks *hooks,
               runner_resolve_job_cb resolve_job, char **results_json, char *err, size_t errlen)
{
	return runner_run_opts(spec_json, work_dir, NULL, hooks, resolve_job, results_json, err, errlen);
}

int runner_run_opts(const char *spec_json, const char *work_dir, const RunnerOptions *opts,
                    const RunnerHooks *hooks, runner_resolve_job_cb resolve_job,
                    char **results_json, char *err, size_t errlen)
{
	JobSpec *js = NULL;
	SpecError se;
	*results_json = NULL;
	if (jobspec_parse_stored(spec_json, strlen(spec_json), &js, &se) < 0) {
		snprintf(err, errlen, "%s", se.message);
		return -1;
	}
	return runner_run_spec(js, work_dir, opts, hooks, resolve_job, results_json, err, errlen);
}

int runner_run_spec(JobSpec *js, const char *work_dir, const RunnerOptions *opts,
                    const RunnerHooks *hooks, runner_resolve_job_cb resolve_job,
                    char **results_json, char *err, size_t errlen)
{
	RunnerOptions defaults = { 0 };
	const RunnerOptions *o = opts ? opts : &defaults;
	Run r = { .js = js, .hooks = hooks, .dir = work_dir, .err = err, .errlen = errlen, .collapse_step = -1,
	          .job_key = o->job_key };
	int rc = -1;
	cJSON *root = NULL;
	*results_json = NULL;
	err[0] = 0;
	r.t_start = mono_seconds();

	eng_set_threads(r.js->threads);
	RunnerHooks rank_hooks;
	if (start_ranks(&r, &rank_hooks) < 0)
		goto out;
	if (r.rank == 0) {   /* the other ranks write nothing (start_ranks) */
		if (check_workdir(&r, o) < 0)
			goto out;
		remove_stale_temps(work_dir);
		char *resolved = jobspec_to_json(r.js);
		if (resolved)
			save_spec(work_dir, resolved);
		free(resolved);
	}
	DatasetSpec dspec = r.js->dataset;   /* image folders: decoded pixels shared between jobs */
	dspec.cache_dir = o->cache_dir ? o->cache_dir : work_dir;
	dspec.load_threads = r.js->threads;
	dspec.on_note = note_event;
	dspec.note_user = &r;
	if (dataset_load(&dspec, &r.ds, err, errlen) < 0)
		goto out;
	emit_event(&r, RUNNER_INFO, "dataset loaded: %d train, %d test samples of %dx%dx%d",
	           r.ds->train.n, r.ds->test.n, r.ds->c, r.ds->h, r.ds->w);
	if (r.ds->c == 3 && r.ds->h > 1 && r.ds->train.n > 0 && r.ds->train.x) {
		/* colour images: the encoder normalises each channel by the training pixels' statistics,
		 * which then travel with it (model.h) */
		EncoderConfig *ec = &r.js->encoder;
		aug_channel_stats(r.ds->train.x, (size_t)r.ds->train.n, 3, r.ds->h, r.ds->w, ec->in_mean,
		                  ec->in_std);
		ec->in_norm = 1;
		emit_event(&r, RUNNER_INFO, "input normalisation per channel from %d training images: "
		           "mean %.4f %.4f %.4f, std %.4f %.4f %.4f", r.ds->train.n, ec->in_mean[0],
		           ec->in_mean[1], ec->in_mean[2], ec->in_std[0], ec->in_std[1], ec->in_std[2]);
	}
	plan_steps(&r);
	if (build_model(&r) < 0)
		goto out;
	r.ctx = ctx_new(r.js->seed);
	if (!r.ctx || optim_new(&r.js->pretrain.optim, r.ps, &r.opt) < 0) {
		snprintf(err, errlen, "out of memory building the optimizer");
		goto out;
	}
	emit_event(&r, RUNNER_INFO, "model: %zu trainable parameters",
	           paramset_numel(r.ps, 1));

	int skip_pretrain = r.method == NULL || r.js->init_from || r.js->init_from_job > 0;
	if (r.js->init_from || r.js->init_from_job > 0) {
		if (load_init_from(&r, resolve_job) < 0)
			goto out;
	}
	if (plan_job(&r, !skip_pretrain) < 0)
		goto out;
	if (!skip_pretrain) {
		int resumed = r.rank == 0 ? try_resume(&r) : 0;
		if (resumed < 0 || share_start(&r, &resumed) < 0)
			goto out;
		if (resumed)
			emit_event(&r, RUNNER_NOTICE, "resumed from checkpoint at step %lld",
			           (long long)r.step);
		int prc = pretrain(&r);
		if (prc != 0 || r.rank > 0) {   /* rank 0 alone evaluates and reports */
			rc = prc;
			goto out;
		}
		ctx_trim(r.ctx);   /* the step's arena is not needed by the evaluations beside it */
		if (r.method->evaluate) {
			r.pretext_metrics = cJSON_CreateObject();
			MetricSink sink = { .put = sink_put_collect, .user = &r };
			r.method->evaluate(r.mstate, r.ctx, r.ds, &sink);
		}
		if (r.method->artifacts &&
		    r.method->artifacts(r.mstate, r.ctx, r.ds, r.dir, emit_artifact, &r, err, errlen) < 0)
			goto out;
	}
	if (r.rank > 0) {
		rc = RUNNER_OK;
		goto out;
	}
	if (export_encoder(&r) < 0)
		goto out;

	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "job", r.js->name ? r.js->name : "");
	cJSON_AddStringToObject(root, "method", r.js->method);
	cJSON *pre = cJSON_AddObjectToObject(root, "pretext");
	if (!skip_pretrain) {
		cJSON_AddNumberToObject(pre, "steps", (double)r.step);
		cJSON_AddNumberToObject(pre, "final_loss", round(r.last_loss * 1e5) / 1e5);
		cJSON_AddNumberToObject(pre, "seconds", round(r.pretrain_seconds * 10) / 10);
		for (cJSON *m = r.pretext_metrics ? r.pretext_metrics->child : NULL; m; m = m->next)
			cJSON_AddNumberToObject(pre, m->string, m->valuedouble);
		if (r.collapse_step >= 0)
			cJSON_AddNumberToObject(pre, "collapse_step", (double)r.collapse_step);
	}
	cJSON *evals = cJSON_AddArrayToObject(root, "evaluations");
	int erc = run_evaluations(&r, evals);
	if (erc == 0 && r.js->embed_map.enabled)
		erc = run_embedding_map(&r, root);
	if (erc != 0) {
		rc = erc;
		goto out;
	}
	cJSON_AddItemToObject(root, "labels", r.label_notes);
	r.label_notes = NULL;
	results_add_headline(root);
	if (write_results(&r, root, results_json) < 0)
		goto out;
	if (r.hooks && r.hooks->on_progress)
		r.hooks->on_progress(r.hooks->user, &(RunnerProgress){ .step = r.n_runs, .total = r.n_runs,
		                                                      .stage = "done", .fraction = 1 });
	rc = RUNNER_OK;
out:
	if (rc < 0 && err[0])
		emit_event(&r, RUNNER_ERR, "%s", err);
	cJSON_Delete(root);
	cJSON_Delete(r.pretext_metrics);
	cJSON_Delete(r.label_notes);
	free(r.runs);
	loader_free(r.loader);
	if (r.method && r.mstate)
		r.method->destroy(r.mstate);
	encoder_free(r.plain_encoder);
	optim_free(r.opt);
	ctx_free(r.ctx);
	paramset_free(r.ps);
	dataset_free(r.ds);
	jobspec_free(r.js);
	return rc;
}

/* ---- generation ------------------------------------------------------------------------------- */

/* A NUL-terminated copy of s[0..n) that is valid UTF-8 (JSON text must be): every byte that does
 * not start a well-formed sequence becomes U+FFFD. NUL bytes become U+FFFD too. malloc'd. */
static char *utf8_sanitize(const uint8_t *s, size_t n)
{
	char *out = malloc(3 * n + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		int len = s[i] ? (int)utf8_seq_len(s + i, n - i) : 0;
		if (len == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(o, s + i, (size_t)len);
			o += len;
			i += (size_t)len;
		}
	}
	*o = 0;
	return out;
}

/* The generate loop's early stop (ctx_set_stop): a cancel from the caller, or the time cap. */
typedef struct GenStop {
	const atomic_int *cancel;
	double deadline;   /* monotonic seconds; 0 = none */
	int cancelled, timed_out;
} GenStop;

static int gen_cancelled(const GenStop *g) { return g->cancel && atomic_load(g->cancel); }

static int gen_should_stop(void *user)
{
	GenStop *g = user;
	if (ssld_fault("generate_step")) {   /* ../engine/fault.h: a model slow enough to hit the caps */
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (gen_cancelled(g))
		return g->cancelled = 1;
	if (g->deadline > 0 && mono_seconds() >= g->deadline)
		return g->timed_out = 1;
	return 0;
}

int runner_generate(const char *spec_json, const char *work_dir, const GenerateRequest *req,
                    char **result_json, char *err, size_t errlen)
{
	JobSpec *js = NULL;
	SpecError se;
	*result_json = NULL;
	if (jobspec_parse_stored(spec_json, strlen(spec_json), &js, &se) < 0) {
		snprintf(err, errlen, "%s", se.message);
		return -1;
	}
	int rc = runner_generate_spec(js, work_dir, req, result_json, err, errlen);
	jobspec_free(js);
	return rc;
}

int runner_generate_spec(JobSpec *js, const char *work_dir, const GenerateRequest *req,
                         char **result_json, char *err, size_t errlen)
{
	GenStop gs = { .cancel = req->cancel };
	Run r = { .dir = work_dir, .js = js, .err = err, .errlen = errlen, .collapse_step = -1 };
	int rc = -1;
	float *imgs = NULL;
	uint8_t *text = NULL;
	cJSON *o = NULL;
	*result_json = NULL;
	err[0] = 0;

	const PretextMethod *m = method_find(r.js->method);
	if (!m || (!m->generate_images && !m->generate_text)) {
		snprintf(err, errlen, "method \"%s\" cannot generate", r.js->method);
		goto out;
	}
	if (dataset_load(&r.js->dataset, &r.ds, err, errlen) < 0)
		goto out;
	if (gen_cancelled(&gs))
		goto cancelled;
	plan_steps(&r);
	if (build_model(&r) < 0)
		goto out;
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", work_dir, CHECKPOINT_NAME);
	CheckpointState st;
	if (checkpoint_load(path, r.ps, NULL, &st, NULL, err, errlen) < 0)
		goto out;
	checkpoint_state_free(&st);
	if (gen_cancelled(&gs))
		goto cancelled;
	r.ctx = ctx_new(req->seed);
	if (!r.ctx) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ctx_set_training(r.ctx, 0);
	ctx_set_grad_enabled(r.ctx, 0);
	Rng rng;
	rng_seed(&rng, req->seed);
	o = cJSON_CreateObject();
	if (m->generate_images) {
		int n = req->n > 0 ? req->n : 64;
		size_t per = r.ds->sample_floats;
		imgs = eng_malloc((size_t)n * per * sizeof(float));
		if (!imgs) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		if (m->generate_images(r.mstate, r.ctx, n, &rng, imgs, err, errlen) < 0)
			goto out;
		char name[64];
		snprintf(name, sizeof name, "samples-%llu.png", (unsigned long long)req->seed);
		snprintf(path, sizeof path, "%s/%s", work_dir, name);
		if (png_grid_write(path, imgs, n, r.ds->c, r.ds->h, r.ds->w, 0, 1, 0.0f, 1.0f, err,
		                   errlen) < 0)
			goto out;
		cJSON_AddStringToObject(o, "artifact", name);
		cJSON_AddNumberToObject(o, "n", n);
	} else {
		const char *prompt = req->prompt ? req->prompt : "";
		int max_tokens = req->max_tokens > 0 ? req->max_tokens : 200;
		text = eng_malloc((size_t)max_tokens + 1);
		if (!text) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		int out_len = 0;
		double t0 = mono_seconds();
		if (req->max_seconds > 0)
			gs.deadline = t0 + req->max_seconds;
		ctx_set_stop(r.ctx, gen_should_stop, &gs);
		if (m->generate_text(r.mstate, r.ctx, (const uint8_t *)prompt, (int)strlen(prompt),
		                     max_tokens, req->temperature, req->top_k,
		                     req->top_p > 0 ? req->top_p : 1.0f, &rng, text, &out_len, err,
		                     errlen) < 0)
			goto out;
		if (gs.cancelled)
			goto cancelled;
		text[out_len] = 0;
		/* Sampled bytes may split a multi-byte character (and a CLI prompt may be any bytes). */
		char *p8 = utf8_sanitize((const uint8_t *)prompt, strlen(prompt));
		char *t8 = utf8_sanitize(text, (size_t)out_len);
		if (!p8 || !t8) {
			free(p8);
			free(t8);
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		cJSON_AddStringToObject(o, "prompt", p8);
		cJSON_AddStringToObject(o, "text", t8);
		free(p8);
		free(t8);
		cJSON_AddNumberToObject(o, "tokens", out_len);
		cJSON_AddNumberToObject(o, "seconds", mono_seconds() - t0);
		cJSON_AddBoolToObject(o, "truncated", gs.timed_out);
		if (gs.timed_out)
			cJSON_AddStringToObject(o, "truncated_by", "max_seconds");
	}
	*result_json = cJSON_PrintUnformatted(o);
	rc = *result_json ? 0 : -1;
	goto out;
cancelled:
	snprintf(err, errlen, "generation cancelled");
	rc = RUNNER_CANCELLED;
out:
	cJSON_Delete(o);
	eng_free(imgs);
	eng_free(text);
	if (r.method && r.mstate)
		r.method->destroy(r.mstate);
	encoder_free(r.plain_encoder);
	ctx_free(r.ctx);
	paramset_free(r.ps);
	dataset_free(r.ds);
	return rc;
}
