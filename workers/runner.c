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
#include "../engine/fault.h"
#include "../engine/data/augment.h"
#include "../engine/data/loader.h"
#include "../engine/data/png_grid.h"
#include "../engine/methods/eval.h"
#include "../engine/methods/method.h"
#include "../engine/methods/ssl_health.h"
#include "../engine/ops.h"
#include "../engine/optim.h"
#include "job_files.h"
#include "jobspec.h"
#include "workdir.h"

#define CHECKPOINT_NAME JOB_FILE_CHECKPOINT

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
	char *err;
	size_t errlen;
} Run;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

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

static void note_event(void *user, const char *msg)
{
	emit_event(user, RUNNER_INFO, "%s", msg);
}

static void emit_progress(Run *r, int64_t step, int64_t total, const char *stage, double eta)
{
	if (r->hooks && r->hooks->on_progress)
		r->hooks->on_progress(r->hooks->user, step, total, stage, eta);
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

/* ---- checkpoints ------------------------------------------------------------------------------ */

static int save_checkpoint(Run *r)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", r->dir, CHECKPOINT_NAME);
	CheckpointState st = { .step = r->step, .rng = *ctx_rng(r->ctx),
	                       .elapsed_s = r->pretrain_seconds + (now_s() - r->t_start) };
	char cfg[1024];
	encoder_config_to_json(&r->js->encoder, cfg, sizeof cfg);
	st.encoder_config_json = cfg;
	st.method = r->js->method;
	st.job_key = r->job_key;
	st.spec_sha256 = r->spec_sha256;
	st.loss = r->last_loss;
	if (checkpoint_save(path, r->ps, r->opt, &st, r->err, r->errlen) < 0)
		return -1;
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
	CheckpointState st;
	if (checkpoint_load(path, r->ps, NULL, &st, "encoder.", r->err, r->errlen) < 0)
		return -1;
	/* The encoder normalises its input as it was trained to (model.h), not by this job's data. */
	cJSON *cfg = st.encoder_config_json ? cJSON_Parse(st.encoder_config_json) : NULL;
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
	checkpoint_state_free(&st);
	emit_event(r, RUNNER_INFO, "encoder initialised from %s; pretraining skipped", path);
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
	double last_ckpt = now_s(), t_window = now_s();
	int64_t window_steps = 0, window_images = 0, window_tokens = 0;
	double budget = js->pretrain.time_budget_s;
	int c = r->ds->c, h = r->ds->h, w = r->ds->w;
	int stopped = RUNNER_CONTINUE;
	int wrote_views = 0;

	emit_event(r, RUNNER_INFO, "pretraining %s: %lld steps (%d per epoch), batch %d%s",
	           js->method, (long long)r->total_steps, r->steps_per_epoch, js->pretrain.batch_size,
	           r->step ? " (resumed)" : "");
	if (CTX_TRY(r->ctx) != 0) {
		ctx_disarm(r->ctx);
		return fail(r, "out of memory at step %lld", (long long)r->step);
	}
	while (r->step < r->total_steps) {
		double elapsed = r->pretrain_seconds + (now_s() - r->t_start);
		if (budget > 0 && elapsed >= budget) {
			emit_event(r, RUNNER_NOTICE, "time budget of %.0f s reached at step %lld", budget,
			           (long long)r->step);
			break;
		}
		if ((stopped = poll_stop(r)) != RUNNER_CONTINUE)
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
		if (!wrote_views && views > 0 && r->step == 0) {
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
		if (!isfinite(lv)) {
			ctx_disarm(r->ctx);
			return fail(r, "loss became %s at step %lld", isnan(lv) ? "NaN" : "infinite",
			            (long long)r->step);
		}
		ctx_backward(r->ctx, loss);
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
		r->step++;
		r->last_loss = lv;
		emit_metric(r, "loss", lv);
		emit_metric(r, "lr", lr);
		emit_metric(r, "grad_norm", gnorm);
		if (knn_interval > 0 && r->step % knn_interval == 0 && knn_monitor(r) < 0)
			knn_interval = 0;
		window_steps++;
		window_images += b->n;
		if (b->tokens)
			window_tokens += (int64_t)b->n * b->T;
		double t = now_s();
		if (t - t_window >= 2.0 || r->step == r->total_steps) {
			double ips = window_images / (t - t_window);
			emit_metric(r, "images_per_s", ips);
			if (window_tokens > 0)
				emit_metric(r, "tokens_per_s", window_tokens / (t - t_window));
			if (r->loader)
				emit_metric(r, "data_wait_s", loader_wait_seconds(r->loader));
			double spent = r->pretrain_seconds + (t - r->t_start);
			double eta = (r->total_steps - r->step) * ((t - t_window) / window_steps);
			if (budget > 0 && budget - spent < eta)
				eta = budget - spent > 0 ? budget - spent : 0;
			emit_progress(r, r->step, r->total_steps, "pretrain", eta);
			t_window = t;
			window_steps = window_images = window_tokens = 0;
		}
		if (t - last_ckpt >= js->checkpoint_interval_s) {
			if (save_checkpoint(r) < 0) {
				ctx_disarm(r->ctx);
				return -1;
			}
			last_ckpt = t;
		}
	}
	ctx_disarm(r->ctx);
	r->pretrain_seconds += now_s() - r->t_start;
	r->t_start = now_s();
	loader_free(r->loader);
	r->loader = NULL;
	if (stopped == RUNNER_STOP_REQUEUE || stopped == RUNNER_STOP_CANCEL) {
		if (stopped == RUNNER_STOP_REQUEUE && save_checkpoint(r) < 0)
			return -1;
		emit_event(r, RUNNER_NOTICE, "%s at step %lld",
		           stopped == RUNNER_STOP_REQUEUE ? "stopped for requeue" : "cancelled",
		           (long long)r->step);
		return stopped == RUNNER_STOP_REQUEUE ? RUNNER_STOPPED : RUNNER_CANCELLED;
	}
	if (save_checkpoint(r) < 0)
		return -1;
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
	const char *stage;
	int stop_code;
} EvalHookCtx;

static void eval_progress(void *user, int epoch, int epochs, double metric)
{
	EvalHookCtx *e = user;
	emit_progress(e->run, epoch, epochs, e->stage, -1);
	(void)metric;
}

static int eval_should_stop(void *user)
{
	EvalHookCtx *e = user;
	e->stop_code = poll_stop(e->run);
	return e->stop_code != RUNNER_CONTINUE;
}

static int run_evaluations(Run *r, cJSON *evals)
{
	JobSpec *js = r->js;
	int c, h, w;
	sample_shape(r->ds, &c, &h, &w);
	for (int i = 0; i < js->n_evals; i++) {
		const EvalSpec *es = &js->evals[i];
		const EvalConfig ec = *es;   /* the spec filled it from the protocol's own table */
		int runs = es->labels_per_class > 0 ? 1 : es->n_fractions;
		for (int f = 0; f < runs; f++) {
			double frac = es->labels_per_class > 0 ? 0 : es->fractions[f];
			char stage[96];
			if (es->labels_per_class > 0)
				snprintf(stage, sizeof stage, "%s@%dpc", eval_proto_name(ec.protocol),
				         es->labels_per_class);
			else
				snprintf(stage, sizeof stage, "%s@%g", eval_proto_name(ec.protocol), frac);
			EvalHookCtx hc = { .run = r, .stage = stage };
			EvalEnv env = {
				.ds = r->ds, .encoder_cfg = &js->encoder, .in_c = c, .in_h = h, .in_w = w,
				.pretrained = ec.protocol == EVAL_PROTO_SUPERVISED ? NULL : r->ps,
				.prefix = "encoder", .seed = js->seed + 1000u * (unsigned)i + (unsigned)f,
				.threads = js->threads, .on_progress = eval_progress,
				.should_stop = eval_should_stop, .user = &hc,
			};
			emit_event(r, RUNNER_INFO, "evaluation %s started", stage);
			EvalResult res;
			int rc = eval_run(&env, &ec, frac, es->labels_per_class, &res, r->err, r->errlen);
			if (rc < 0) {
				if (hc.stop_code == RUNNER_STOP_CANCEL)
					return RUNNER_CANCELLED;
				if (hc.stop_code == RUNNER_STOP_REQUEUE)
					return RUNNER_STOPPED;
				return -1;
			}
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "protocol", eval_proto_name(ec.protocol));
			if (es->labels_per_class > 0)
				cJSON_AddNumberToObject(o, "labels_per_class", es->labels_per_class);
			else
				cJSON_AddNumberToObject(o, "label_fraction", frac);
			cJSON_AddNumberToObject(o, "labels", res.labels);
			cJSON_AddNumberToObject(o, "test_accuracy", round(res.test_accuracy * 1e4) / 1e4);
			cJSON_AddNumberToObject(o, "train_accuracy", round(res.train_accuracy * 1e4) / 1e4);
			if (ec.protocol == EVAL_PROTO_LINEAR_PROBE || ec.protocol == EVAL_PROTO_PIXEL_PROBE)
				cJSON_AddNumberToObject(o, "weight_decay", res.chosen_weight_decay);
			if (ec.protocol == EVAL_PROTO_FINETUNE || ec.protocol == EVAL_PROTO_SUPERVISED)
				cJSON_AddBoolToObject(o, "augment", ec.augment);
			cJSON_AddNumberToObject(o, "seconds", round(res.seconds * 10) / 10);
			cJSON_AddItemToArray(evals, o);
			char key[128];
			snprintf(key, sizeof key, "eval/%s", stage);
			emit_metric(r, key, res.test_accuracy);
			emit_event(r, RUNNER_INFO, "evaluation %s: test accuracy %.4f with %d labels (%.1f s)",
			           stage, res.test_accuracy, res.labels, res.seconds);
		}
	}
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
	r.t_start = now_s();

	eng_set_threads(r.js->threads);
	if (check_workdir(&r, o) < 0)
		goto out;
	remove_stale_temps(work_dir);
	char *resolved = jobspec_to_json(r.js);
	if (resolved)
		save_spec(work_dir, resolved);
	free(resolved);
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
	if (!skip_pretrain) {
		int resumed = try_resume(&r);
		if (resumed < 0)
			goto out;
		if (resumed)
			emit_event(&r, RUNNER_NOTICE, "resumed from checkpoint at step %lld",
			           (long long)r.step);
		int prc = pretrain(&r);
		if (prc != 0) {
			rc = prc;
			goto out;
		}
		if (r.method->evaluate) {
			r.pretext_metrics = cJSON_CreateObject();
			MetricSink sink = { .put = sink_put_collect, .user = &r };
			r.method->evaluate(r.mstate, r.ctx, r.ds, &sink);
		}
		if (r.method->artifacts &&
		    r.method->artifacts(r.mstate, r.ctx, r.ds, r.dir, emit_artifact, &r, err, errlen) < 0)
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
	if (erc != 0) {
		rc = erc;
		goto out;
	}
	if (write_results(&r, root, results_json) < 0)
		goto out;
	rc = RUNNER_OK;
out:
	if (rc < 0 && err[0])
		emit_event(&r, RUNNER_ERR, "%s", err);
	cJSON_Delete(root);
	cJSON_Delete(r.pretext_metrics);
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
	if (g->deadline > 0 && now_s() >= g->deadline)
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
		double t0 = now_s();
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
		cJSON_AddNumberToObject(o, "seconds", now_s() - t0);
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
