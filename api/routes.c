/* routes.c - the /v1 endpoints: jobs, metrics with cursors and downsampling, events, artifacts,
 * samples from generative jobs' checkpoints, the method catalogue (see api.h for the list, docs/API.md for examples).
 *
 * Every input is checked before anything is stored or read: unknown query parameters, malformed
 * numbers and ids are 400s naming the parameter; job specs go through jobspec_parse whole. Not
 * here: the HTTP plumbing and response helpers (server.c), SQL (storage/).
 */
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../engine/methods/method.h"
#include "../storage/log.h"
#include "../workers/init_from.h"
#include "../workers/jobspec.h"
#include "../workers/runner.h"
#include "../workers/spec_estimate.h"
#include "../workers/spec_schema.h"
#include "../workers/sweep.h"
#include "../workers/job_files.h"
#include "downsample.h"
#include "groups.h"
#include "datasets.h"
#include "metrics_csv.h"

#define MAX_METRIC_ROWS 1000000   /* points per key one metrics request reads before asking to continue */

/* ---- small parsers -------------------------------------------------------------------------- */

/* Strict decimal integer in [min, max]: 0, or -1 (not a number / out of range). */
static int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s || !*s || strlen(s) > 19 || strspn(s, "0123456789") != strlen(s)) return -1;
	errno = 0;
	long long v = strtoll(s, NULL, 10);
	if (errno || v < min || v > max) return -1;
	*out = v;
	return 0;
}

int query_int(Req *r, const char *name, int64_t min, int64_t max, int64_t def, int64_t *out)
{
	const char *s = query(r, name);
	*out = def;
	if (!s) return 0;
	if (parse_i64(s, min, max, out) < 0) {
		reply_error(r, 400, "invalid_parameter", name, "%s: expected an integer in %lld..%lld, got '%.40s'", name,
		            (long long)min, (long long)max, s);
		return -1;
	}
	return 0;
}

static const char *level_name(int level)
{
	switch (level) {
	case 0: case 1: case 2: return "critical";
	case 3: return "error";
	case 4: return "warning";
	case 5: return "notice";
	case 7: return "debug";
	default: return "info";
	}
}

/* ---- job JSON ------------------------------------------------------------------------------- */

static void sb_time(Sbuf *b, double t)
{
	char iso[32];
	iso_time(t, iso);
	sb_json_str(b, iso[0] ? iso : NULL);
}

/* waiting: why a queued job does not start yet (NULL = nothing holds it back but the queue). */
static void sb_job(Sbuf *b, const StoreJob *j, int full, const MetricSet *latest, const char *waiting)
{
	sb_printf(b, "{\"id\":%lld,\"name\":", (long long)j->id);
	sb_json_str(b, j->name);
	sb_puts(b, ",\"method\":");
	sb_json_str(b, j->method);
	sb_printf(b, ",\"state\":\"%s\",\"priority\":%d,\"owner\":", job_state_name(j->state), j->priority);
	sb_json_str(b, j->owner);
	sb_puts(b, ",\"created_at\":");
	sb_time(b, j->created_at);
	sb_puts(b, ",\"started_at\":");
	sb_time(b, j->started_at);
	sb_puts(b, ",\"finished_at\":");
	sb_time(b, j->finished_at);
	sb_puts(b, ",\"updated_at\":");
	sb_time(b, j->updated_at);
	/* fraction is the whole job's (the runner's, workers/job_progress.h); step and total count the
	 * current stage. */
	sb_printf(b, ",\"progress\":{\"step\":%lld,\"total\":%lld,\"fraction\":", (long long)j->step, (long long)j->total);
	if (j->state == JOB_SUCCEEDED) sb_puts(b, "1");
	else if (j->progress >= 0) sb_num(b, j->progress);
	else sb_puts(b, "null");
	sb_puts(b, ",\"stage\":");
	sb_json_str(b, j->stage);
	sb_puts(b, ",\"eta_s\":");
	if (j->state == JOB_RUNNING && j->eta_s >= 0) sb_num(b, j->eta_s);
	else sb_puts(b, "null");
	sb_printf(b, "},\"attempts\":%d,\"interruptions\":%d,\"checkpoint_step\":", j->attempts, j->interruptions);
	if (j->checkpoint_step >= 0) sb_printf(b, "%lld", (long long)j->checkpoint_step);
	else sb_puts(b, "null");
	/* The node running it (several nodes on one queue; a box alone names itself). */
	sb_puts(b, ",\"node\":");
	sb_json_str(b, j->state == JOB_RUNNING ? j->node : NULL);
	sb_printf(b, ",\"cancel_requested\":%s,\"error\":", j->cancel_requested ? "true" : "false");
	sb_json_str(b, j->error);
	/* A sweep's job: its group and the swept values it runs with (JSON text we stored). */
	if (j->group_id > 0) sb_printf(b, ",\"group\":%lld,\"setting\":%s", (long long)j->group_id,
	                               j->group_setting && j->group_setting[0] ? j->group_setting : "null");
	else sb_puts(b, ",\"group\":null,\"setting\":null");
	if (full) {
		/* spec and results are JSON text written by us (validated spec, runner results). */
		sb_puts(b, ",\"waiting\":");
		sb_json_str(b, waiting);
		sb_puts(b, ",\"spec\":");
		sb_puts(b, j->spec && j->spec[0] ? j->spec : "null");
		sb_puts(b, ",\"results\":");
		sb_puts(b, j->results && j->results[0] ? j->results : "null");
		sb_puts(b, ",\"metrics\":{");
		int first = 1;
		for (int i = 0; latest && i < latest->n; i++) {
			if (latest->series[i].n == 0) continue;
			sb_puts(b, first ? "" : ",");
			first = 0;
			sb_json_str(b, latest->series[i].key);
			sb_printf(b, ":{\"step\":%lld,\"value\":", (long long)latest->series[i].pts[0].step);
			sb_num(b, latest->series[i].pts[0].value);
			sb_puts(b, "}");
		}
		sb_puts(b, "}");
	}
	sb_puts(b, "}");
}

static enum MHD_Result store_failure(Req *r, int rc, const char *err)
{
	if (rc == STORE_ENOTFOUND) return reply_error(r, 404, "not_found", NULL, "%s", err);
	slog(LOG_ERR, 0, "%s %s: %s", r->method, r->url, err);
	return reply_error(r, 503, "storage_error", NULL, "%s", err);
}

/* ---- /v1/jobs ------------------------------------------------------------------------------- */

/* A JSON body is UTF-8 text without NUL bytes (RFC 8259): refuse anything else before a byte of it
 * is stored or echoed. 0, or -1 after replying 400 invalid_json. */
static int check_body_text(Req *r)
{
	if (memchr(r->body, 0, r->len)) {
		reply_error(r, 400, "invalid_json", NULL, "the request body contains a NUL byte");
		return -1;
	}
	for (size_t i = 0; i < r->len;) {
		size_t n = utf8_seq_len((const unsigned char *)r->body + i, r->len - i);
		if (n == 0) {
			reply_error(r, 400, "invalid_json", NULL, "the request body is not valid UTF-8 (byte %zu is 0x%02x)", i,
			            (unsigned)(unsigned char)r->body[i]);
			return -1;
		}
		i += n;
	}
	return 0;
}

static enum MHD_Result jobs_list(Req *r)
{
	static const char *const allowed[] = { "state", "limit", "before", "owner", "group", NULL };
	if (check_query(r, allowed) < 0) return MHD_YES;
	StoreJobFilter f = { 0 };
	const char *states = query(r, "state");
	if (states && *states) {
		char buf[256];
		if (strlen(states) >= sizeof buf)   /* cutting it would check a different list */
			return reply_error(r, 400, "invalid_parameter", "state",
			                   "state: the list is too long (at most %zu characters; there are 5 states)", sizeof buf - 1);
		snprintf(buf, sizeof buf, "%s", states);
		char *save = NULL;
		for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			int s = job_state_parse(t);
			if (s < 0)
				return reply_error(r, 400, "invalid_parameter", "state",
				                   "state: unknown state '%.40s'; expected queued, running, succeeded, failed or cancelled", t);
			f.state_mask |= 1u << s;
		}
	}
	int64_t limit, before, group;
	if (query_int(r, "limit", 1, 1000, 50, &limit) < 0 || query_int(r, "before", 1, INT64_MAX, 0, &before) < 0 ||
	    query_int(r, "group", 1, INT64_MAX, 0, &group) < 0)
		return MHD_YES;
	f.limit = (int)limit;
	f.group_id = group;
	f.before_id = before;
	f.owner = query(r, "owner");
	StoreJob *jobs;
	int n;
	char err[512];
	int rc = store_job_list(r->api->cfg.store, &f, &jobs, &n, err, sizeof err);
	if (rc < 0) return store_failure(r, rc, err);
	Sbuf b = { 0 };
	sb_puts(&b, "{\"jobs\":[");
	for (int i = 0; i < n; i++) {
		if (i) sb_puts(&b, ",");
		sb_job(&b, &jobs[i], 0, NULL, NULL);
	}
	sb_puts(&b, "],\"next_before\":");
	if (n == f.limit && n > 0) sb_printf(&b, "%lld", (long long)jobs[n - 1].id);
	else sb_puts(&b, "null");
	sb_puts(&b, "}");
	for (int i = 0; i < n; i++) store_job_clear(&jobs[i]);
	free(jobs);
	return reply_sbuf(r, 200, &b);
}

/* The answer to a refused spec: {"error": the first, "errors": [every one]}, each in the one error
 * shape. The status is the first error's. */
static cJSON *spec_error_json(const SpecError *e)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "code", e->code[0] ? e->code : "invalid_spec");
	cJSON_AddStringToObject(o, "message", e->message[0] ? e->message : "the job spec is not valid");
	if (e->field[0]) cJSON_AddStringToObject(o, "field", e->field);
	else cJSON_AddNullToObject(o, "field");
	return o;
}

/* A sweep child's refusal: the field named as the sweep key that set it, the message prefixed
 * with the child's setting and seed. */
static void sweep_error(const Req *r, const SpecError *in, SpecError *out)
{
	const SweepChild *c = &r->sweep->child[r->sweep_child];
	*out = *in;
	sweep_error_field(r->sweep, in->field, out->field, sizeof out->field);
	char head[200];
	snprintf(head, sizeof head, "sweep setting %d of %d %.120s, seed %llu: ", c->setting_index + 1, r->sweep->settings,
	         c->setting, (unsigned long long)c->seed);
	size_t hn = strlen(head), mn = strlen(in->message);
	if (hn + mn >= sizeof out->message) mn = sizeof out->message - 1 - hn;
	memcpy(out->message, head, hn);
	memcpy(out->message + hn, in->message, mn);
	out->message[hn + mn] = 0;
}

static enum MHD_Result reply_spec_errors(Req *r, const SpecError *errs, int n)
{
	unsigned status = errs[0].http_status >= 400 && errs[0].http_status < 600 ? (unsigned)errs[0].http_status : 400;
	cJSON *o = cJSON_CreateObject();
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		SpecError e = errs[i];
		if (r->sweep) sweep_error(r, &errs[i], &e);
		if (i == 0) cJSON_AddItemToObject(o, "error", spec_error_json(&e));
		cJSON_AddItemToArray(a, spec_error_json(&e));
	}
	cJSON_AddItemToObject(o, "errors", a);
	return reply_json(r, status, o);
}

/* One submit-time refusal that is not the parser's (init_from, the memory limit, the priority). */
__attribute__((format(printf, 5, 6)))
static enum MHD_Result reply_spec_error_status(Req *r, unsigned status, const char *code, const char *field,
                                               const char *fmt, ...)
{
	SpecError e;
	memset(&e, 0, sizeof e);
	snprintf(e.code, sizeof e.code, "%s", code);
	snprintf(e.field, sizeof e.field, "%s", field);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof e.message, fmt, ap);
	va_end(ap);
	e.http_status = (int)status;
	return reply_spec_errors(r, &e, 1);
}
#define reply_spec_error(r, ...) reply_spec_error_status(r, 400, __VA_ARGS__)

/* init_from: the source's encoder architecture against the new job's (the rest of the rule -
 * which sources may be named, waiting for them - is store_job_insert's and the claim's). Another
 * owner's job is a source only for those who may read it (the read rule of GET /v1/jobs/{id}).
 * 0, or -1 after replying. */
static int check_init_from(Req *r, const JobSpec *js, const char *resolved)
{
	char field[64] = "", msg[640] = "", err[512];
	int rc = 0;
	if (js->init_from_job > 0) {
		StoreJob src;
		rc = store_job_get(r->api->cfg.store, js->init_from_job, &src, err, sizeof err);
		if (rc == STORE_ENOTFOUND) return 0;   /* store_job_insert names it */
		if (rc < 0) {
			store_failure(r, rc, err);
			return -1;
		}
		int mine = src.owner && strcmp(src.owner, r->owner) == 0;
		if (!mine && require_read(r) < 0) {
			store_job_clear(&src);
			return -1;
		}
		rc = init_from_check_job(resolved, src.id, src.spec, field, sizeof field, msg, sizeof msg);
		store_job_clear(&src);
	} else if (js->init_from) {
		rc = init_from_check_file(js, resolved, js->init_from, field, sizeof field, msg, sizeof msg);
	}
	if (rc > 0) {
		reply_spec_error(r, "invalid_field", field, "%s", msg);
		return -1;
	}
	return 0;
}

/* One job spec that passed every submit-time check. */
typedef struct Validated {
	JobSpec *js;
	char *resolved;          /* the resolved spec, minified: what is stored */
	JobEstimate est;
} Validated;

static void validated_clear(Validated *v)
{
	jobspec_free(v->js);
	free(v->resolved);
	memset(v, 0, sizeof *v);
}

/* Every submit-time check of one spec: the parser's (all errors at once), the priority ceiling,
 * the memory limit, init_from. 0 with *v filled, or -1 after replying (a sweep's child: the
 * refusal names the sweep key and the setting, through r->sweep). */
static int validate_job(Req *r, const char *body, size_t len, Validated *v)
{
	Api *api = r->api;
	memset(v, 0, sizeof *v);
	char uploaded[4096];
	snprintf(uploaded, sizeof uploaded, "%s/" API_UPLOADS_DIR, api->shared_dir ? api->shared_dir : "");
	JobSpecOptions o = { .data_roots = api->cfg.data_roots, .n_data_roots = api->cfg.n_data_roots, .check_files = 1,
	                     .datasets_dir = api->shared_dir ? uploaded : NULL, .owner = r->owner, .any_owner = r->admin };
	SpecErrors *errs = malloc(sizeof *errs);
	if (!errs) {
		reply_error(r, 503, "out_of_memory", NULL, "the server ran out of memory checking the job");
		return -1;
	}
	if (jobspec_parse_all(body, len, &o, &v->js, errs) < 0) {
		reply_spec_errors(r, errs->e, errs->n > 0 ? errs->n : 1);
		free(errs);
		return -1;
	}
	free(errs);
	JobSpec *js = v->js;
	/* Priorities above the ceiling jump other owners' jobs: an admin's decision. */
	if (js->priority > api->cfg.max_user_priority && !r->admin) {
		reply_spec_error_status(r, 403, "forbidden", "priority",
		                        "priority: %d is above max-user-priority = %d; only an admin token may set a higher priority",
		                        js->priority, api->cfg.max_user_priority);
		validated_clear(v);
		return -1;
	}
	/* What it will cost: refused above the server's share of memory, before anything is queued. */
	jobspec_estimate(js, &v->est);
	const JobEstimate *est = &v->est;
	if (api->cfg.max_job_memory > 0 && (uint64_t)est->peak_bytes > api->cfg.max_job_memory) {
		char need[32], act[32], par[32], lim[32];
		jobspec_bytes_text(est->peak_bytes, need, sizeof need);
		jobspec_bytes_text(est->activation_bytes, act, sizeof act);
		jobspec_bytes_text(est->param_bytes + est->grad_bytes + est->optim_bytes, par, sizeof par);
		jobspec_bytes_text((int64_t)api->cfg.max_job_memory, lim, sizeof lim);
		const char *driver = est->driver;
		reply_spec_error(r, "too_much_memory", driver,
		                 "%s: the job needs an estimated %s per training step (parameters, gradients and "
		                 "optimizer state %s, activations %s), more than this server allows a job "
		                 "(--max-job-memory %s)%s", driver, need, par, act, lim,
		                 strcmp(driver, "pretrain.batch_size") == 0 ? "; use a smaller batch"
		                                                            : "; use a smaller model");
		validated_clear(v);
		return -1;
	}
	/* Store the resolved spec, not the body: every default filled in and dataset paths resolved
	 * against the data roots now, so the worker (which parses it again without roots, maybe after
	 * a restart from another directory) runs exactly what was validated. */
	v->resolved = jobspec_to_json(js);
	if (!v->resolved) {
		reply_error(r, 503, "out_of_memory", NULL, "the server ran out of memory storing the job");
		validated_clear(v);
		return -1;
	}
	cJSON_Minify(v->resolved);   /* it comes indented; the API embeds it in one-line answers */
	if (check_init_from(r, js, v->resolved) < 0) {
		validated_clear(v);
		return -1;
	}
	return 0;
}

static enum MHD_Result insert_failure(Req *r, int rc, const char *err)
{
	if (rc == STORE_ELIMIT) return reply_error(r, 429, "queue_full", NULL, "%s", err);
	/* Only the init_from rule refuses an insert with these (store.h). */
	if (rc == STORE_ENOTFOUND || rc == STORE_ESTATE) return reply_error(r, 400, "invalid_field", "init_from", "%s", err);
	return store_failure(r, rc, err);
}

static void announce_queued(Req *r, int64_t id)
{
	Api *api = r->api;
	if (api->cfg.on_queued) api->cfg.on_queued(api->cfg.user, id);
	else if (api->cfg.pool) pool_wake(api->cfg.pool);
}

/* A spec with "sweep": every child checked in full before any is queued, then the group and all
 * its jobs in one transaction (workers/sweep.h). */
static enum MHD_Result sweep_submit(Req *r, const cJSON *body, int dry_run)
{
	SweepPlan plan;
	SpecErrors *errs = malloc(sizeof *errs);
	if (!errs) return reply_error(r, 503, "out_of_memory", NULL, "the server ran out of memory checking the sweep");
	if (sweep_expand(body, &plan, errs) < 0) {
		enum MHD_Result q = reply_spec_errors(r, errs->e, errs->n > 0 ? errs->n : 1);
		free(errs);
		return q;
	}
	free(errs);
	Validated *v = calloc((size_t)plan.n, sizeof *v);
	StoreNewJob *nj = calloc((size_t)plan.n, sizeof *nj);
	int64_t *ids = calloc((size_t)plan.n, sizeof *ids);
	enum MHD_Result q = MHD_YES;
	int checked = 0;
	if (!v || !nj || !ids) {
		q = reply_error(r, 503, "out_of_memory", NULL, "the server ran out of memory checking the sweep");
		goto out;
	}
	r->sweep = &plan;
	for (; checked < plan.n; checked++) {
		r->sweep_child = checked;
		char *text = cJSON_PrintUnformatted(plan.child[checked].spec);
		int rc = text ? validate_job(r, text, strlen(text), &v[checked]) : -1;
		if (!text) reply_error(r, 503, "out_of_memory", NULL, "the server ran out of memory checking the sweep");
		free(text);
		if (rc < 0) goto out;   /* replied */
	}
	r->sweep = NULL;
	if (dry_run) {
		cJSON *ans = cJSON_CreateObject(), *kids = cJSON_CreateArray();
		cJSON_AddNullToObject(ans, "group");
		cJSON_AddNumberToObject(ans, "settings", plan.settings);
		cJSON_AddNumberToObject(ans, "seeds", plan.seeds);
		for (int i = 0; i < plan.n; i++) {
			cJSON *k = cJSON_CreateObject();
			cJSON_AddItemToObject(k, "setting", cJSON_Parse(plan.child[i].setting));
			cJSON_AddNumberToObject(k, "seed", (double)plan.child[i].seed);
			cJSON_AddItemToObject(k, "spec", cJSON_Parse(v[i].resolved));
			cJSON_AddItemToObject(k, "estimate", jobspec_estimate_json(&v[i].est));
			cJSON_AddItemToArray(kids, k);
		}
		cJSON_AddItemToObject(ans, "jobs", kids);
		q = reply_json(r, 200, ans);
		goto out;
	}
	for (int i = 0; i < plan.n; i++)
		nj[i] = (StoreNewJob){
			.spec = v[i].resolved, .name = v[i].js->name, .method = v[i].js->method, .owner = r->owner,
			.priority = v[i].js->priority, .init_from_job = v[i].js->init_from_job, .init_from_any_owner = r->admin,
			.max_queued = r->api->cfg.max_queued, .max_queued_per_owner = r->api->cfg.max_queued_per_owner,
			.group_setting = plan.child[i].setting,
		};
	const cJSON *bn = cJSON_GetObjectItemCaseSensitive(body, "name");
	char *sweep_text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(body, "sweep"));
	int64_t gid = 0;
	char err[512];
	int rc = sweep_text ? store_group_insert(r->api->cfg.store, cJSON_IsString(bn) ? bn->valuestring : NULL, r->owner,
	                                         sweep_text, nj, plan.n, &gid, ids, err, sizeof err)
	                    : (snprintf(err, sizeof err, "out of memory"), STORE_ENOMEM);
	free(sweep_text);
	if (rc < 0) {
		q = insert_failure(r, rc, err);
		goto out;
	}
	slog(LOG_INFO, 0, "group %lld: queued %d jobs (%d settings x %d seeds) for %s", (long long)gid, plan.n, plan.settings,
	     plan.seeds, r->owner);
	announce_queued(r, ids[0]);
	Sbuf b = { 0 };
	sb_printf(&b, "{\"group\":%lld,\"jobs\":[", (long long)gid);
	for (int i = 0; i < plan.n; i++) sb_printf(&b, "%s%lld", i ? "," : "", (long long)ids[i]);
	sb_printf(&b, "],\"settings\":%d,\"seeds\":%d}", plan.settings, plan.seeds);
	char loc[64];
	snprintf(loc, sizeof loc, "/v1/groups/%lld", (long long)gid);
	q = reply_created(r, &b, loc);
out:
	r->sweep = NULL;
	for (int i = 0; v && i < plan.n; i++) validated_clear(&v[i]);
	free(v);
	free(nj);
	free(ids);
	sweep_plan_free(&plan);
	return q;
}

static enum MHD_Result jobs_submit(Req *r)
{
	Api *api = r->api;
	static const char *const allowed[] = { "dry_run", NULL };
	if (check_query(r, allowed) < 0) return MHD_YES;
	const char *dry = query(r, "dry_run");
	if (dry && strcmp(dry, "1") != 0 && strcmp(dry, "true") != 0 && strcmp(dry, "0") != 0 && strcmp(dry, "false") != 0)
		return reply_error(r, 400, "invalid_parameter", "dry_run", "dry_run: expected 1 or 0, got '%.40s'", dry);
	int dry_run = dry && (strcmp(dry, "1") == 0 || strcmp(dry, "true") == 0);
	if (require_auth(r) < 0) return MHD_YES;
	if (!dry_run && atomic_load(&api->draining))
		return reply_error(r, 503, "shutting_down", NULL, "the daemon is shutting down and accepts no new jobs; retry after it restarts");
	if (!r->body || r->len == 0)
		return reply_error(r, 400, "invalid_json", NULL, "the request body is empty: send the job as JSON (see GET /v1/methods for examples)");
	if (check_body_text(r) < 0) return MHD_YES;
	/* A sweep is many jobs; anything else (also JSON that does not parse) is one, whose parser
	 * names what is wrong. */
	cJSON *body = cJSON_ParseWithLength(r->body, r->len);
	if (body && sweep_present(body)) {
		enum MHD_Result q = sweep_submit(r, body, dry_run);
		cJSON_Delete(body);
		return q;
	}
	cJSON_Delete(body);
	Validated v;
	if (validate_job(r, r->body, r->len, &v) < 0) return MHD_YES;
	if (dry_run) {
		cJSON *spec = cJSON_Parse(v.resolved);
		cJSON *est = jobspec_estimate_json(&v.est);
		validated_clear(&v);
		if (!spec) {
			cJSON_Delete(est);
			return reply_error(r, 503, "out_of_memory", NULL, "the server ran out of memory resolving the job");
		}
		cJSON *ans = cJSON_CreateObject();
		cJSON_AddItemToObject(ans, "spec", spec);
		cJSON_AddItemToObject(ans, "estimate", est);
		return reply_json(r, 200, ans);
	}
	JobSpec *js = v.js;
	StoreNewJob nj = {
		.spec = v.resolved, .name = js->name, .method = js->method, .owner = r->owner, .priority = js->priority,
		.init_from_job = js->init_from_job, .init_from_any_owner = r->admin,
		.max_queued = api->cfg.max_queued, .max_queued_per_owner = api->cfg.max_queued_per_owner,
	};
	int64_t id = 0;
	char err[512];
	int rc = store_job_insert(api->cfg.store, &nj, &id, err, sizeof err);
	char method[64];
	snprintf(method, sizeof method, "%s", js->method);
	validated_clear(&v);
	if (rc < 0) return insert_failure(r, rc, err);
	slog(LOG_INFO, id, "queued %s for %s", method, r->owner);
	announce_queued(r, id);
	Sbuf b = { 0 };
	sb_printf(&b, "{\"id\":%lld,\"state\":\"queued\"}", (long long)id);
	char loc[64];
	snprintf(loc, sizeof loc, "/v1/jobs/%lld", (long long)id);
	return reply_created(r, &b, loc);
}

/* A queued job whose owner already runs max-running-per-owner jobs waits (the pool skips it):
 * say so, naming the limit. 0 (out filled, or "" when nothing holds it), -1 with out = the error. */
static int held_by_running_limit(Api *api, const StoreJob *j, char *out, size_t cap)
{
	out[0] = 0;
	int limit = api->cfg.max_running_per_owner;
	if (limit <= 0) return 0;
	StoreJobFilter f = { .state_mask = 1u << JOB_RUNNING, .limit = limit, .owner = j->owner ? j->owner : "" };
	StoreJob *jobs = NULL;
	int n = 0;
	if (store_job_list(api->cfg.store, &f, &jobs, &n, out, cap) < 0) return -1;
	for (int i = 0; i < n; i++) store_job_clear(&jobs[i]);
	free(jobs);
	if (n >= limit)
		snprintf(out, cap, "owner '%s' already has %d running job(s); the limit is max-running-per-owner = %d",
		         j->owner ? j->owner : "", n, limit);
	return 0;
}

static enum MHD_Result job_get(Req *r, int64_t id)
{
	if (check_query(r, NULL) < 0) return MHD_YES;
	StoreJob j;
	char err[512];
	int rc = store_job_get(r->api->cfg.store, id, &j, err, sizeof err);
	if (rc < 0) return store_failure(r, rc, err);
	MetricSet latest;
	rc = store_metrics_latest(r->api->cfg.store, id, &latest, err, sizeof err);
	if (rc < 0) {
		store_job_clear(&j);
		return store_failure(r, rc, err);
	}
	char waiting[256] = "";
	JobState src_state = JOB_SUCCEEDED;
	if (j.state == JOB_QUEUED && j.init_from_job > 0 &&
	    store_job_state(r->api->cfg.store, j.init_from_job, &src_state, err, sizeof err) == 0 && src_state != JOB_SUCCEEDED)
		snprintf(waiting, sizeof waiting, "waiting for its init_from job %lld (%s) to succeed", (long long)j.init_from_job,
		         job_state_name(src_state));
	else if (j.state == JOB_QUEUED && held_by_running_limit(r->api, &j, waiting, sizeof waiting) < 0) {
		store_job_clear(&j);
		metric_set_clear(&latest);
		return store_failure(r, STORE_EDB, waiting);
	}
	Sbuf b = { 0 };
	sb_job(&b, &j, 1, &latest, waiting[0] ? waiting : NULL);
	store_job_clear(&j);
	metric_set_clear(&latest);
	return reply_sbuf(r, 200, &b);
}

static enum MHD_Result job_cancel(Req *r, int64_t id)
{
	if (check_query(r, NULL) < 0) return MHD_YES;
	if (require_auth(r) < 0) return MHD_YES;
	char err[512];
	int rc;
	if (r->auth_on && !r->admin) {
		/* Only the owner or an admin cancels. A job's owner never changes, so checking before
		 * the cancel transaction is not a race. */
		StoreJob j;
		if ((rc = store_job_get(r->api->cfg.store, id, &j, err, sizeof err)) < 0) return store_failure(r, rc, err);
		int mine = j.owner && strcmp(j.owner, r->owner) == 0;
		char owner[64];
		snprintf(owner, sizeof owner, "%s", j.owner ? j.owner : "");
		store_job_clear(&j);
		if (!mine)
			return reply_error(r, 403, "forbidden", NULL,
			                   "job %lld belongs to '%s'; only its owner or an admin token may cancel it (you are '%s')",
			                   (long long)id, owner, r->owner);
	}
	JobState st = JOB_QUEUED;
	rc = store_job_cancel(r->api->cfg.store, id, &st, err, sizeof err);
	if (rc == STORE_ESTATE)
		return reply_error(r, 409, "not_cancellable", NULL, "job %lld is already %s", (long long)id, job_state_name(st));
	if (rc < 0) return store_failure(r, rc, err);
	Sbuf b = { 0 };
	if (st == JOB_RUNNING) {
		if (r->api->cfg.pool) pool_cancel(r->api->cfg.pool, id);
		slog(LOG_NOTICE, id, "cancel requested by %s", r->owner);
		sb_printf(&b, "{\"id\":%lld,\"state\":\"running\",\"cancel_requested\":true}", (long long)id);
		return reply_sbuf(r, 202, &b);
	}
	slog(LOG_NOTICE, id, "cancelled while queued by %s", r->owner);
	if (r->api->cfg.on_ended) r->api->cfg.on_ended(r->api->cfg.user, id);
	sb_printf(&b, "{\"id\":%lld,\"state\":\"cancelled\",\"cancel_requested\":true}", (long long)id);
	return reply_sbuf(r, 200, &b);
}

/* ---- metrics and events --------------------------------------------------------------------- */

static int valid_key(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > 63) return 0;
	for (const char *p = k; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("_-./@:", *p)))
			return 0;
	return 1;
}

static enum MHD_Result job_metrics(Req *r, int64_t id)
{
	static const char *const allowed[] = { "after", "keys", "max_points", NULL };
	if (check_query(r, allowed) < 0) return MHD_YES;
	int64_t after, max_points;
	if (query_int(r, "after", 0, INT64_MAX, 0, &after) < 0 || query_int(r, "max_points", 2, 100000, 1000, &max_points) < 0)
		return MHD_YES;
	char keybuf[4096];
	const char *keys[64];
	int nkeys = 0;
	const char *ks = query(r, "keys");
	if (ks && *ks) {
		if (strlen(ks) >= sizeof keybuf)
			return reply_error(r, 400, "invalid_parameter", "keys", "keys: the list is too long (at most %zu bytes)", sizeof keybuf - 1);
		snprintf(keybuf, sizeof keybuf, "%s", ks);
		char *save = NULL;
		for (char *t = strtok_r(keybuf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (!valid_key(t))
				return reply_error(r, 400, "invalid_parameter", "keys",
				                   "keys: '%.64s' is not a metric key (1-63 of A-Z a-z 0-9 _ - . / @ :)", t);
			if (nkeys == 64) return reply_error(r, 400, "invalid_parameter", "keys", "keys: at most 64 keys");
			keys[nkeys++] = t;
		}
	}
	char err[512];
	MetricSet ms;
	int rc = store_metrics_read(r->api->cfg.store, id, after, nkeys ? keys : NULL, nkeys, MAX_METRIC_ROWS, &ms, err, sizeof err);
	if (rc < 0) return store_failure(r, rc, err);
	JobState state = ms.job_state;
	Sbuf b = { 0 };
	int any_down = 0;
	sb_printf(&b, "{\"job\":%lld,\"state\":\"%s\",\"cursor\":%lld,\"more\":%s,\"max_points\":%lld,\"series\":{",
	          (long long)id, job_state_name(state), (long long)ms.cursor,
	          ms.truncated ? "true" : "false", (long long)max_points);
	size_t *keep = NULL;
	double *xs = NULL, *ys = NULL;
	size_t cap = 0;
	for (int i = 0; i < ms.n; i++) {
		MetricSeries *se = &ms.series[i];
		if (se->n > cap) {
			free(keep); free(xs); free(ys);
			cap = se->n;
			keep = malloc(cap * sizeof *keep);
			xs = malloc(cap * sizeof *xs);
			ys = malloc(cap * sizeof *ys);
			if (!keep || !xs || !ys) {
				b.oom = 1;
				break;
			}
		}
		size_t nk;
		if (se->n > (size_t)max_points) {
			for (size_t k = 0; k < se->n; k++) {
				xs[k] = (double)se->pts[k].step;
				ys[k] = se->pts[k].value;
			}
			nk = lttb_select(xs, ys, se->n, (size_t)max_points, keep);
			any_down = 1;
		} else {
			nk = se->n;
			for (size_t k = 0; k < nk; k++) keep[k] = k;
		}
		sb_puts(&b, i ? "," : "");
		sb_json_str(&b, se->key);
		sb_printf(&b, ":{\"count\":%zu,\"downsampled\":%s,\"points\":[", se->n, nk < se->n ? "true" : "false");
		for (size_t k = 0; k < nk; k++) {
			const MetricPoint *p = &se->pts[keep[k]];
			sb_printf(&b, "%s[%lld,", k ? "," : "", (long long)p->step);
			sb_num(&b, p->value);
			sb_putn(&b, "]", 1);
		}
		sb_puts(&b, "]}");
	}
	sb_printf(&b, "},\"downsampled\":%s}", any_down ? "true" : "false");
	free(keep); free(xs); free(ys);
	metric_set_clear(&ms);
	return reply_sbuf(r, 200, &b);
}

static enum MHD_Result job_events(Req *r, int64_t id)
{
	static const char *const allowed[] = { "after", "limit", NULL };
	if (check_query(r, allowed) < 0) return MHD_YES;
	int64_t after, limit;
	if (query_int(r, "after", 0, INT64_MAX, 0, &after) < 0 || query_int(r, "limit", 1, 1000, 200, &limit) < 0)
		return MHD_YES;
	char err[512];
	JobState state;
	int rc = store_job_state(r->api->cfg.store, id, &state, err, sizeof err);
	if (rc < 0) return store_failure(r, rc, err);
	StoreEvent *ev;
	int n;
	rc = store_events_read(r->api->cfg.store, id, after, (int)limit, &ev, &n, err, sizeof err);
	if (rc < 0) return store_failure(r, rc, err);
	Sbuf b = { 0 };
	sb_printf(&b, "{\"job\":%lld,\"cursor\":%lld,\"events\":[", (long long)id, (long long)(n ? ev[n - 1].id : after));
	for (int i = 0; i < n; i++) {
		sb_printf(&b, "%s{\"id\":%lld,\"time\":", i ? "," : "", (long long)ev[i].id);
		sb_time(&b, ev[i].time);
		sb_printf(&b, ",\"level\":\"%s\",\"message\":", level_name(ev[i].level));
		sb_json_str(&b, ev[i].message);
		sb_puts(&b, "}");
	}
	sb_puts(&b, "]}");
	store_events_free(ev, n);
	return reply_sbuf(r, 200, &b);
}

/* ---- artifacts ------------------------------------------------------------------------------ */

static enum MHD_Result job_artifacts(Req *r, int64_t id)
{
	if (check_query(r, NULL) < 0) return MHD_YES;
	char err[512];
	JobState state;
	int rc = store_job_state(r->api->cfg.store, id, &state, err, sizeof err);
	if (rc < 0) return store_failure(r, rc, err);
	StoreArtifact *a;
	int n;
	rc = store_artifact_list(r->api->cfg.store, id, &a, &n, err, sizeof err);
	if (rc < 0) return store_failure(r, rc, err);
	Sbuf b = { 0 };
	sb_printf(&b, "{\"job\":%lld,\"artifacts\":[", (long long)id);
	for (int i = 0; i < n; i++) {
		sb_puts(&b, i ? ",{\"name\":" : "{\"name\":");
		sb_json_str(&b, a[i].name);
		sb_printf(&b, ",\"size\":%lld,\"sha256\":\"%s\",\"created_at\":", (long long)a[i].size, a[i].sha256);
		sb_time(&b, a[i].created_at);
		sb_printf(&b, ",\"content_type\":\"%s\",\"url\":\"/v1/jobs/%lld/artifacts/", mime_type(a[i].name), (long long)id);
		sb_url_path(&b, a[i].name);
		sb_puts(&b, "\"}");
	}
	sb_puts(&b, "]}");
	store_artifacts_free(a, n);
	return reply_sbuf(r, 200, &b);
}

static enum MHD_Result job_artifact(Req *r, int64_t id, const char *name)
{
	if (check_query(r, NULL) < 0) return MHD_YES;
	char err[512];
	StoreArtifact a;
	int rc = store_artifact_get(r->api->cfg.store, id, name, &a, err, sizeof err);
	if (rc < 0) return store_failure(r, rc, err);
	/* Only files inside the job's own directory are served, whatever the database says. */
	char dir[4096], real_dir[PATH_MAX], real[PATH_MAX];
	int inside = 0;
	if (r->api->cfg.shared_dir && pool_job_dir(r->api->cfg.shared_dir, id, dir, sizeof dir) == 0 &&
	    realpath(dir, real_dir) && realpath(a.path, real)) {
		size_t dl = strlen(real_dir);
		inside = strncmp(real, real_dir, dl) == 0 && real[dl] == '/';
	}
	if (!inside) {
		store_artifact_clear(&a);
		return reply_error(r, 404, "not_found", NULL, "job %lld: artifact '%s' is no longer available", (long long)id, name);
	}
	int fd = open(real, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0) close(fd);
		store_artifact_clear(&a);
		return reply_error(r, 404, "not_found", NULL, "job %lld: artifact '%s' is missing on disk", (long long)id, name);
	}
	const char *base = strrchr(a.name, '/') ? strrchr(a.name, '/') + 1 : a.name;
	const char *ctype = mime_type(a.name);
	enum MHD_Result q = reply_fd(r, fd, (uint64_t)st.st_size, ctype, base);
	store_artifact_clear(&a);
	return q;
}

/* ---- generation ----------------------------------------------------------------------------- */

/* A generation runs on the generation queue (../workers/genq.h), never on an HTTP thread: the
 * request's connection is suspended while it waits and runs, and resumed to be answered. The
 * queue bounds how many run and wait (503 busy beyond), how long text sampling takes and how many
 * tokens it makes (the answer then says "truncated"); a stop cancels it (503 shutting_down). */
typedef struct GenWork {
	GenTask task;            /* first: the queue hands it back to gen_done */
	Req *r;
	int64_t id;
	char *spec, *prompt;
	char dir[4096];
	int refused;             /* genq_submit's error: answered without running */
} GenWork;

/* On a queue thread: hand the request back to libmicrohttpd, which calls the access handler
 * again (generate_resumed). Nothing here may touch w after the resume. */
static void gen_done(GenTask *t)
{
	struct MHD_Connection *c = ((GenWork *)t)->r->c;
	MHD_resume_connection(c);
}

static enum MHD_Result generate_submit(Req *r, int64_t id, const char *spec, const char *dir, const GenerateRequest *req)
{
	GenWork *w = calloc(1, sizeof *w);
	if (w) {
		w->spec = strdup(spec);
		w->prompt = strdup(req->prompt ? req->prompt : "");
	}
	if (!w || !w->spec || !w->prompt) {
		if (w) free(w->spec), free(w->prompt);
		free(w);
		return reply_error(r, 503, "out_of_memory", NULL, "the server ran out of memory queueing the generation");
	}
	w->r = r;
	w->id = id;
	snprintf(w->dir, sizeof w->dir, "%s", dir);
	w->task.spec_json = w->spec;
	w->task.work_dir = w->dir;
	w->task.req = *req;
	w->task.req.prompt = w->prompt;
	w->task.done = gen_done;
	r->gen = w;
	r->suspended = 1;
	atomic_fetch_add(&r->api->gen_inflight, 1);
	/* Suspend first: the queue may finish and resume before genq_submit returns. */
	MHD_suspend_connection(r->c);
	int rc = genq_submit(r->api->genq, &w->task);
	if (rc < 0) {
		w->refused = rc;
		MHD_resume_connection(r->c);
	}
	return MHD_YES;
}

void generate_release(Req *r)
{
	GenWork *w = r->gen;
	if (!w) return;
	free(w->task.result_json);
	free(w->spec);
	free(w->prompt);
	free(w);
	r->gen = NULL;
	atomic_fetch_sub(&r->api->gen_inflight, 1);
}

/* Image samples a job keeps from POST /generate: at most this many files, the oldest replaced. */
#define GENERATE_KEEP 8

/* Moves the runner's samples file (named after the seed, so unbounded) into one of GENERATE_KEEP
 * fixed names, "samples-generated-<k>.png": the first free slot, else the oldest. Runs under
 * keep_lock. 0 with slot set, or -1 with err set. */
static int keep_generated(const char *dir, const char *made, char *slot, size_t cap, char *err, size_t errlen)
{
	char from[4200], to[4200];
	int pick = 0;
	struct timespec oldest = { 0, 0 };
	for (int k = 0; k < GENERATE_KEEP; k++) {
		struct stat st;
		snprintf(to, sizeof to, "%s/samples-generated-%d.png", dir, k);
		if (stat(to, &st) != 0) {
			pick = k;
			break;
		}
		if (k == 0 || st.st_mtim.tv_sec < oldest.tv_sec ||
		    (st.st_mtim.tv_sec == oldest.tv_sec && st.st_mtim.tv_nsec < oldest.tv_nsec)) {
			oldest = st.st_mtim;
			pick = k;
		}
	}
	snprintf(slot, cap, "samples-generated-%d.png", pick);
	snprintf(from, sizeof from, "%s/%s", dir, made);
	snprintf(to, sizeof to, "%s/%s", dir, slot);
	if (strchr(made, '/') || rename(from, to) != 0) {
		snprintf(err, errlen, "keeping the samples as %s: %s", slot, strerror(errno));
		unlink(from);
		return -1;
	}
	return 0;
}

/* Serialises the choice of a slot when several generations finish at once. */
static pthread_mutex_t keep_lock = PTHREAD_MUTEX_INITIALIZER;

enum MHD_Result generate_resumed(Req *r)
{
	GenWork *w = r->gen;
	GenTask *t = &w->task;
	int64_t id = w->id;
	if (w->refused == GENQ_EFULL) {
		const GenQueueConfig *gc = genq_config(r->api->genq);
		return reply_error(r, 503, "busy", NULL, "generation is busy: %d running and %d waiting (generate-threads, "
		                   "generate-queue); retry in a moment", gc->threads, gc->max_waiting);
	}
	if (w->refused < 0 || t->rc == RUNNER_CANCELLED)
		return reply_error(r, 503, "shutting_down", NULL, "the daemon is shutting down; generation %s; retry after it restarts",
		                   w->refused < 0 ? "is refused" : "was cancelled");
	cJSON *o = t->rc == 0 ? cJSON_Parse(t->result_json) : NULL;
	if (!o) {
		slog(LOG_ERR, id, "generate: %s", t->rc < 0 ? t->err : "unreadable runner answer");
		return reply_error(r, 500, "generate_failed", NULL, "job %lld: %s", (long long)id, t->rc < 0 ? t->err : "generation failed");
	}
	const cJSON *made = cJSON_GetObjectItemCaseSensitive(o, "artifact");
	if (cJSON_IsString(made)) {
		char slot[64], kerr[4400];
		pthread_mutex_lock(&keep_lock);
		int krc = keep_generated(w->dir, made->valuestring, slot, sizeof slot, kerr, sizeof kerr);
		pthread_mutex_unlock(&keep_lock);
		if (krc < 0) {
			cJSON_Delete(o);
			slog(LOG_ERR, id, "generate: %s", kerr);
			return reply_error(r, 500, "generate_failed", NULL, "job %lld: %s", (long long)id, kerr);
		}
		cJSON_ReplaceItemInObjectCaseSensitive(o, "artifact", cJSON_CreateString(slot));
		char seed_text[24];   /* exact: cJSON prints doubles with 15 digits, seeds go to 2^53 */
		snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)t->req.seed);
		cJSON_DeleteItemFromObjectCaseSensitive(o, "seed");
		cJSON_AddRawToObject(o, "seed", seed_text);
	}
	const cJSON *art = cJSON_GetObjectItemCaseSensitive(o, "artifact");
	if (cJSON_IsString(art)) {
		char path[4200], err[512];
		snprintf(path, sizeof path, "%s/%s", w->dir, art->valuestring);
		int rc = store_artifact_put(r->api->cfg.store, id, art->valuestring, path, err, sizeof err);
		if (rc < 0) {
			cJSON_Delete(o);
			return store_failure(r, rc, err);
		}
		Sbuf u = { 0 };
		sb_printf(&u, "/v1/jobs/%lld/artifacts/", (long long)id);
		sb_url_path(&u, art->valuestring);
		if (!u.oom) cJSON_AddStringToObject(o, "url", u.p);
		free(u.p);
	}
	if (!cJSON_GetObjectItemCaseSensitive(o, "seconds")) cJSON_AddNumberToObject(o, "seconds", round(t->run_s * 1000) / 1000);
	/* The runner says whether time ran out; the token cap is the queue's. */
	cJSON *trunc = cJSON_GetObjectItemCaseSensitive(o, "truncated");
	if (t->tokens_capped && cJSON_IsFalse(trunc)) {
		cJSON_ReplaceItemInObjectCaseSensitive(o, "truncated", cJSON_CreateTrue());
		cJSON_AddStringToObject(o, "truncated_by", "max_tokens");
	}
	slog(LOG_INFO, id, "generated samples for %s in %.1f s (waited %.1f s)%s", r->owner, t->run_s, t->waited_s,
	     cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "truncated")) ? ", truncated" : "");
	return reply_json(r, 200, o);
}

/* An optional number in the generate body; replies 400 and returns -1 when present and invalid. */
static int gen_num(Req *r, const cJSON *body, const char *key, double lo, double hi, int integer, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
	if (!v) return 0;
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
	    (integer && v->valuedouble != floor(v->valuedouble))) {
		reply_error(r, 400, "invalid_field", key, "%s: expected %s in [%g, %g]", key,
		            integer ? "an integer" : "a number", lo, hi);
		return -1;
	}
	*out = v->valuedouble;
	return 0;
}

/* A "\\u0000" escape inside a string of a flat JSON object (cJSON would cut the string there):
 * 1 with field = the key it belongs to ("" when it is in a key), 0 when there is none. */
static int find_nul_escape(const char *s, size_t len, char *field, size_t cap)
{
	const char *last_key = NULL;
	size_t last_len = 0;
	int want_key = 1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == ',' || s[i] == '{') want_key = 1;
		if (s[i] != '"') continue;
		size_t start = ++i;
		int nul = 0;
		for (; i < len && s[i] != '"'; i++)
			if (s[i] == '\\') {
				nul |= i + 5 < len && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0;
				i++;
			}
		if (nul) {
			if (want_key) field[0] = 0;
			else snprintf(field, cap, "%.*s", (int)(last_len < 64 ? last_len : 64), last_key);
			return 1;
		}
		if (want_key) {
			last_key = s + start;
			last_len = (i < len ? i : len) - start;
			want_key = 0;
		}
	}
	return 0;
}


/* POST /v1/jobs/{id}/generate {"n":64,"seed":1} (images) or {"prompt":"...","max_tokens":200,
 * "temperature":1,"top_k":0,"top_p":1,"seed":1} (text): fresh samples from the job's checkpoint
 * through runner_generate, the same code as `ssld generate`. An image grid is recorded as an
 * artifact of the job and its URL returned. */
static enum MHD_Result job_generate(Req *r, int64_t id)
{
	static const char *const keys[] = { "n", "seed", "prompt", "max_tokens", "temperature", "top_k", "top_p", NULL };
	if (check_query(r, NULL) < 0) return MHD_YES;
	if (require_auth(r) < 0) return MHD_YES;
	cJSON *body = NULL;
	if (r->body && r->len > 0) {
		/* The job spec's rules: UTF-8 without NUL, no NUL escapes, no duplicate or unknown keys. */
		if (check_body_text(r) < 0) return MHD_YES;
		char nul_in[72];
		if (find_nul_escape(r->body, r->len, nul_in, sizeof nul_in))
			return reply_error(r, 400, "invalid_field", nul_in[0] ? nul_in : NULL,
			                   "%s%sstrings must not contain NUL characters (\\u0000)", nul_in, nul_in[0] ? ": " : "");
		body = cJSON_ParseWithLength(r->body, r->len);
		if (!cJSON_IsObject(body)) {
			cJSON_Delete(body);
			return reply_error(r, 400, "invalid_json", NULL, "the request body must be a JSON object such as {\"n\":64,\"seed\":1}");
		}
		for (const cJSON *k = body->child; k; k = k->next) {
			char key[72];   /* keys are echoed truncated: a 500 KB key does not come back whole */
			snprintf(key, sizeof key, "%.64s", k->string);
			for (const cJSON *d = body->child; d != k; d = d->next)
				if (strcmp(d->string, k->string) == 0) {
					cJSON_Delete(body);
					return reply_error(r, 400, "duplicate_key", key, "%s: duplicate key", key);
				}
			int known = 0;
			for (int i = 0; keys[i]; i++) known |= strcmp(k->string, keys[i]) == 0;
			if (!known) {
				enum MHD_Result q = reply_error(r, 400, "unknown_key", key,
				                                "%s: unknown key; expected n, seed, prompt, max_tokens, temperature, top_k or top_p",
				                                key);
				cJSON_Delete(body);
				return q;
			}
		}
	}
	GenerateRequest req = { .prompt = "", .max_tokens = 200, .temperature = 1.0f, .top_p = 1.0f, .n = 64 };
	double n = req.n, seed = 0, max_tokens = req.max_tokens, temp = req.temperature, top_k = 0, top_p = 1;
	const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
	if (prompt && !cJSON_IsString(prompt)) {
		cJSON_Delete(body);
		return reply_error(r, 400, "invalid_field", "prompt", "prompt: expected a string");
	}
	if (gen_num(r, body, "n", 1, 1024, 1, &n) < 0 || gen_num(r, body, "seed", 0, 9007199254740992.0, 1, &seed) < 0 ||
	    gen_num(r, body, "max_tokens", 1, 4096, 1, &max_tokens) < 0 ||
	    gen_num(r, body, "temperature", 0, 100, 0, &temp) < 0 || gen_num(r, body, "top_k", 0, 100000, 1, &top_k) < 0 ||
	    gen_num(r, body, "top_p", 0, 1, 0, &top_p) < 0) {
		cJSON_Delete(body);
		return MHD_YES;
	}
	if (top_p <= 0) {
		cJSON_Delete(body);
		return reply_error(r, 400, "invalid_field", "top_p", "top_p: must be in (0, 1]");
	}
	req.n = (int)n;
	req.seed = (uint64_t)seed;
	req.max_tokens = (int)max_tokens;
	req.temperature = (float)temp;
	req.top_k = (int)top_k;
	req.top_p = (float)top_p;

	char err[4096], dir[4096], path[4200];
	StoreJob j;
	int rc = store_job_get(r->api->cfg.store, id, &j, err, sizeof err);
	if (rc < 0) {
		cJSON_Delete(body);
		return store_failure(r, rc, err);
	}
	enum MHD_Result q;
	if (r->auth_on && !r->admin && !(j.owner && strcmp(j.owner, r->owner) == 0)) {
		/* Generation writes into the job's directory: the same rule as cancelling. */
		q = reply_error(r, 403, "forbidden", NULL,
		                "job %lld belongs to '%.64s'; only its owner or an admin token may generate from it (you are '%s')",
		                (long long)id, j.owner ? j.owner : "", r->owner);
		goto done;
	}
	const PretextMethod *m = j.method ? method_find(j.method) : NULL;
	if (!m || (!m->generate_images && !m->generate_text)) {
		q = reply_error(r, 409, "not_generative", NULL, "job %lld: method '%s' cannot generate samples", (long long)id,
		                j.method ? j.method : "");
		goto done;
	}
	if (!r->api->cfg.shared_dir || pool_job_dir(r->api->cfg.shared_dir, id, dir, sizeof dir) < 0) {
		q = reply_error(r, 503, "no_state_dir", NULL, "this server keeps no job directories to read a checkpoint from");
		goto done;
	}
	snprintf(path, sizeof path, "%s/" JOB_FILE_CHECKPOINT, dir);
	if (!j.spec || access(path, R_OK) != 0) {
		q = reply_error(r, 409, "no_checkpoint", NULL, "job %lld is %s and has no checkpoint to sample from yet", (long long)id,
		                job_state_name(j.state));
		goto done;
	}
	req.prompt = cJSON_IsString(prompt) ? prompt->valuestring : "";
	q = generate_submit(r, id, j.spec, dir, &req);   /* answered later, from generate_resumed */
done:
	store_job_clear(&j);
	cJSON_Delete(body);
	return q;
}

/* ---- the catalogue -------------------------------------------------------------------------- */

static pthread_once_t catalog_once = PTHREAD_ONCE_INIT;
static char *catalog_text;

static void load_catalog(void) { catalog_text = jobspec_catalog_json(); }

static enum MHD_Result methods(Req *r)
{
	if (check_query(r, NULL) < 0) return MHD_YES;
	pthread_once(&catalog_once, load_catalog);
	if (!catalog_text) return reply_error(r, 503, "out_of_memory", NULL, "the method catalogue could not be built");
	return reply_text(r, 200, "application/json; charset=utf-8", catalog_text, strlen(catalog_text));
}

static pthread_once_t schema_once = PTHREAD_ONCE_INIT;
static char *schema_text;

static void load_schema(void) { schema_text = jobspec_schema_json(); }

/* The JSON Schema of a job spec (the same document as `ssld schema`). */
static enum MHD_Result schema(Req *r)
{
	if (check_query(r, NULL) < 0) return MHD_YES;
	pthread_once(&schema_once, load_schema);
	if (!schema_text) return reply_error(r, 503, "out_of_memory", NULL, "the job spec schema could not be built");
	return reply_text(r, 200, "application/schema+json", schema_text, strlen(schema_text));
}

static enum MHD_Result endpoints(Req *r)
{
	static const char text[] =
		"{\"endpoints\":["
		"\"POST /v1/jobs\",\"GET /v1/jobs\",\"GET /v1/jobs/{id}\",\"POST /v1/jobs/{id}/cancel\","
		"\"GET /v1/jobs/{id}/metrics\",\"GET /v1/jobs/{id}/metrics.csv\",\"GET /v1/jobs/{id}/events\",\"GET /v1/jobs/{id}/artifacts\","
		"\"GET /v1/jobs/{id}/artifacts/{name}\",\"POST /v1/jobs/{id}/generate\",\"GET /v1/groups\",\"GET /v1/groups/{id}\",\"POST /v1/groups/{id}/cancel\","
		"\"POST /v1/datasets\",\"GET /v1/datasets\",\"GET /v1/datasets/{owner}/{name}\",\"GET /v1/datasets/{owner}/{name}/grid.png\","
		"\"DELETE /v1/datasets/{owner}/{name}\",\"GET /v1/methods\",\"GET /v1/schema\",\"GET /v1/health\",\"GET /metrics\"]}\n";
	return reply_text(r, 200, "application/json; charset=utf-8", text, sizeof text - 1);
}

/* ---- routing -------------------------------------------------------------------------------- */

static enum MHD_Result not_allowed(Req *r, const char *allow)
{
	return reply_error(r, 405, "method_not_allowed", NULL, "%s %s: allowed: %s", r->method, r->url, allow);
}

enum MHD_Result route_v1(Req *r, const char *path)
{
	int get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	int post = strcmp(r->method, "POST") == 0;
	if (strcmp(path, "") == 0 || strcmp(path, "/") == 0) return get ? endpoints(r) : not_allowed(r, "GET");
	if (strcmp(path, "/health") == 0) {
		if (!get) return not_allowed(r, "GET");
		if (check_query(r, NULL) < 0) return MHD_YES;
		return serve_health(r);
	}
	if (strcmp(path, "/methods") == 0) return get ? methods(r) : not_allowed(r, "GET");
	if (strcmp(path, "/schema") == 0) return get ? schema(r) : not_allowed(r, "GET");
	enum MHD_Result rc;
	if (strcmp(path, "/jobs") == 0 || strcmp(path, "/jobs/") == 0) {
		if (get) {
			if (require_read(r) < 0) return MHD_YES;
			return reply_cached(r, &rc) ? rc : jobs_list(r);
		}
		if (post) return jobs_submit(r);
		return not_allowed(r, "GET, POST");
	}
	if (strcmp(path, "/groups") == 0 || strncmp(path, "/groups/", 8) == 0) return groups_route(r, path);
	if (strcmp(path, "/datasets") == 0 || strncmp(path, "/datasets/", 10) == 0) return datasets_route(r, path);
	if (strncmp(path, "/jobs/", 6) == 0) {
		const char *p = path + 6;
		size_t dl = strspn(p, "0123456789");
		char idbuf[24];
		int64_t id;
		if (dl == 0 || dl >= sizeof idbuf || (p[dl] != 0 && p[dl] != '/'))
			return reply_error(r, 404, "not_found", NULL, "%.200s: no such resource (job ids are positive integers)", r->url);
		memcpy(idbuf, p, dl);
		idbuf[dl] = 0;
		if (parse_i64(idbuf, 1, INT64_MAX, &id) < 0)
			return reply_error(r, 404, "not_found", NULL, "%.200s: no such job", r->url);
		const char *rest = p + dl;
		if (get && require_read(r) < 0) return MHD_YES;
		/* The answers that are a function of the database alone: cached until it changes. */
		if (get && (*rest == 0 || strcmp(rest, "/metrics") == 0 || strcmp(rest, "/events") == 0 ||
		            strcmp(rest, "/artifacts") == 0) && reply_cached(r, &rc))
			return rc;
		if (*rest == 0) return get ? job_get(r, id) : not_allowed(r, "GET");
		if (strcmp(rest, "/cancel") == 0) return post ? job_cancel(r, id) : not_allowed(r, "POST");
		if (strcmp(rest, "/metrics") == 0) return get ? job_metrics(r, id) : not_allowed(r, "GET");
		if (strcmp(rest, "/metrics.csv") == 0) return get ? job_metrics_csv(r, id) : not_allowed(r, "GET");
		if (strcmp(rest, "/generate") == 0) return post ? job_generate(r, id) : not_allowed(r, "POST");
		if (strcmp(rest, "/events") == 0) return get ? job_events(r, id) : not_allowed(r, "GET");
		if (strcmp(rest, "/artifacts") == 0) return get ? job_artifacts(r, id) : not_allowed(r, "GET");
		if (strncmp(rest, "/artifacts/", 11) == 0 && rest[11])
			return get ? job_artifact(r, id, rest + 11) : not_allowed(r, "GET");
	}
	return reply_error(r, 404, "not_found", NULL, "%.200s: no such endpoint (GET /v1 lists them)", r->url);
}
