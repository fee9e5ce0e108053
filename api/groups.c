/* groups.c - a sweep's group: listing, aggregation over seeds, cancelling (see groups.h). */
#include "groups.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../storage/log.h"
#include "../workers/pool.h"

static enum MHD_Result group_store_failure(Req *r, int rc, const char *err)
{
	if (rc == STORE_ENOTFOUND) return reply_error(r, 404, "not_found", NULL, "%s", err);
	slog(LOG_ERR, 0, "%s %s: %s", r->method, r->url, err);
	return reply_error(r, 503, "storage_error", NULL, "%s", err);
}

static void add_time(cJSON *o, const char *key, double t)
{
	char iso[32];
	iso_time(t, iso);
	if (iso[0]) cJSON_AddStringToObject(o, key, iso);
	else cJSON_AddNullToObject(o, key);
}

static cJSON *group_summary(const StoreGroup *g)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "id", (double)g->id);
	if (g->name) cJSON_AddStringToObject(o, "name", g->name);
	else cJSON_AddNullToObject(o, "name");
	cJSON_AddStringToObject(o, "owner", g->owner ? g->owner : "");
	add_time(o, "created_at", g->created_at);
	cJSON_AddNumberToObject(o, "jobs", (double)g->jobs);
	cJSON *c = cJSON_AddObjectToObject(o, "counts");
	for (int s = 0; s < JOB_STATE_COUNT; s++) cJSON_AddNumberToObject(c, job_state_name((JobState)s), (double)g->counts[s]);
	cJSON *sw = g->sweep ? cJSON_Parse(g->sweep) : NULL;
	cJSON_AddItemToObject(o, "sweep", sw ? sw : cJSON_CreateNull());
	return o;
}

static enum MHD_Result groups_list(Req *r)
{
	static const char *const allowed[] = { "owner", "before", "limit", NULL };
	if (check_query(r, allowed) < 0) return MHD_YES;
	int64_t before, limit;
	if (query_int(r, "before", 1, INT64_MAX, 0, &before) < 0 || query_int(r, "limit", 1, 1000, 50, &limit) < 0)
		return MHD_YES;
	const char *owner = query(r, "owner");
	StoreGroup *gs;
	int n;
	char err[512];
	int rc = store_group_list(r->api->cfg.store, owner && *owner ? owner : NULL, before, (int)limit, &gs, &n, err, sizeof err);
	if (rc < 0) return group_store_failure(r, rc, err);
	cJSON *ans = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(ans, "groups");
	for (int i = 0; i < n; i++) {
		cJSON_AddItemToArray(a, group_summary(&gs[i]));
		if (i == n - 1 && n == limit) cJSON_AddNumberToObject(ans, "next_before", (double)gs[i].id);
	}
	if (!(n == limit && n > 0)) cJSON_AddNullToObject(ans, "next_before");
	for (int i = 0; i < n; i++) store_group_clear(&gs[i]);
	free(gs);
	return reply_json(r, 200, ans);
}

/* ---- aggregation ---------------------------------------------------------------------------- */

/* One figure over a setting's seeds. */
typedef struct Figure {
	char key[96];            /* "linear_probe@0.01", or "headline" */
	char protocol[48];
	double fraction;         /* NAN for the headline */
	double v[128];
	int n;
} Figure;

typedef struct Setting {
	char *setting;           /* JSON text (not owned) */
	cJSON *jobs;             /* ids */
	int finished;
	Figure *fig;
	int nfig, capfig;
	double gain[128];        /* headline gains */
	int ngain;
} Setting;

static Figure *figure(Setting *s, const char *key, const char *protocol, double fraction)
{
	for (int i = 0; i < s->nfig; i++)
		if (strcmp(s->fig[i].key, key) == 0) return &s->fig[i];
	if (s->nfig == s->capfig) {
		int nc = s->capfig ? 2 * s->capfig : 8;
		Figure *g = realloc(s->fig, (size_t)nc * sizeof *g);
		if (!g) return NULL;
		s->fig = g;
		s->capfig = nc;
	}
	Figure *f = &s->fig[s->nfig++];
	memset(f, 0, sizeof *f);
	snprintf(f->key, sizeof f->key, "%s", key);
	snprintf(f->protocol, sizeof f->protocol, "%s", protocol);
	f->fraction = fraction;
	return f;
}

static void mean_std(const double *v, int n, double *mean, double *sd)
{
	double s = 0, ss = 0;
	for (int i = 0; i < n; i++) s += v[i];
	*mean = n ? s / n : NAN;
	for (int i = 0; i < n; i++) ss += (v[i] - *mean) * (v[i] - *mean);
	*sd = n > 1 ? sqrt(ss / (n - 1)) : NAN;   /* sample standard deviation; undefined for one seed */
}

static void add_num(cJSON *o, const char *key, double v)
{
	if (isfinite(v)) cJSON_AddNumberToObject(o, key, round(v * 1e6) / 1e6);
	else cJSON_AddNullToObject(o, key);
}

/* A finished job's figures into its setting. */
static void collect(Setting *s, const char *results_text)
{
	cJSON *res = results_text ? cJSON_Parse(results_text) : NULL;
	if (!res) return;
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(res, "evaluations")) {
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "protocol");
		const cJSON *fr = cJSON_GetObjectItemCaseSensitive(e, "label_fraction");
		const cJSON *acc = cJSON_GetObjectItemCaseSensitive(e, "test_accuracy");
		if (!cJSON_IsString(p) || !cJSON_IsNumber(fr) || !cJSON_IsNumber(acc)) continue;
		char key[96];
		snprintf(key, sizeof key, "%.48s@%g", p->valuestring, fr->valuedouble);
		Figure *f = figure(s, key, p->valuestring, fr->valuedouble);
		if (f && f->n < 128) f->v[f->n++] = acc->valuedouble;
	}
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(res, "headline");
	const cJSON *ha = cJSON_GetObjectItemCaseSensitive(h, "accuracy");
	const cJSON *hg = cJSON_GetObjectItemCaseSensitive(h, "gain");
	if (cJSON_IsNumber(ha)) {
		Figure *f = figure(s, "headline", "headline", NAN);
		if (f && f->n < 128) f->v[f->n++] = ha->valuedouble;
	}
	if (cJSON_IsNumber(hg) && s->ngain < 128) s->gain[s->ngain++] = hg->valuedouble;
	cJSON_Delete(res);
}

static enum MHD_Result group_get(Req *r, int64_t id)
{
	if (check_query(r, NULL) < 0) return MHD_YES;
	char err[512];
	StoreGroup g;
	int rc = store_group_get(r->api->cfg.store, id, &g, err, sizeof err);
	if (rc < 0) return group_store_failure(r, rc, err);
	StoreJobFilter f = { .group_id = id, .limit = 1000 };
	StoreJob *jobs = NULL;
	int n = 0;
	if ((rc = store_job_list(r->api->cfg.store, &f, &jobs, &n, err, sizeof err)) < 0) {
		store_group_clear(&g);
		return group_store_failure(r, rc, err);
	}
	cJSON *ans = group_summary(&g);
	store_group_clear(&g);
	cJSON *kids = cJSON_AddArrayToObject(ans, "children");
	Setting *set = calloc((size_t)(n ? n : 1), sizeof *set);
	int nset = 0;
	/* Listed newest first: walk oldest first so settings keep their submitted order. */
	for (int i = n - 1; set && i >= 0; i--) {
		StoreJob full;
		const StoreJob *j = &jobs[i];
		int have_full = store_job_get(r->api->cfg.store, j->id, &full, err, sizeof err) == 0;
		cJSON *k = cJSON_CreateObject();
		cJSON_AddNumberToObject(k, "id", (double)j->id);
		cJSON_AddStringToObject(k, "name", j->name ? j->name : "");
		cJSON_AddStringToObject(k, "state", job_state_name(j->state));
		cJSON *setting = j->group_setting ? cJSON_Parse(j->group_setting) : NULL;
		cJSON_AddItemToObject(k, "setting", setting ? setting : cJSON_CreateNull());
		cJSON *spec = have_full && full.spec ? cJSON_Parse(full.spec) : NULL;
		const cJSON *seed = cJSON_GetObjectItemCaseSensitive(spec, "seed");
		if (cJSON_IsNumber(seed)) cJSON_AddNumberToObject(k, "seed", seed->valuedouble);
		else cJSON_AddNullToObject(k, "seed");
		cJSON_Delete(spec);
		if (j->error) cJSON_AddStringToObject(k, "error", j->error);
		cJSON_AddItemToArray(kids, k);
		int si = 0;
		while (si < nset && strcmp(set[si].setting, j->group_setting ? j->group_setting : "") != 0) si++;
		if (si == nset) {
			set[nset].setting = j->group_setting ? j->group_setting : "";
			set[nset].jobs = cJSON_CreateArray();
			nset++;
		}
		cJSON_AddItemToArray(set[si].jobs, cJSON_CreateNumber((double)j->id));
		if (j->state == JOB_SUCCEEDED && have_full) {
			set[si].finished++;
			collect(&set[si], full.results);
		}
		if (have_full) store_job_clear(&full);
	}
	/* The ranking figure: the headline when every finished job of every setting has one. */
	int use_headline = 1, any_finished = 0;
	for (int s = 0; s < nset; s++) {
		if (!set[s].finished) continue;
		any_finished = 1;
		Figure *h = NULL;
		for (int i = 0; i < set[s].nfig; i++)
			if (strcmp(set[s].fig[i].key, "headline") == 0) h = &set[s].fig[i];
		if (!h || h->n < set[s].finished) use_headline = 0;
	}
	char rank_buf[96] = "";
	const char *rank_key = NULL;
	for (int s = 0; !use_headline && s < nset && !rank_key; s++)
		for (int i = 0; i < set[s].nfig && !rank_key; i++)
			if (strcmp(set[s].fig[i].key, "headline") != 0) {
				snprintf(rank_buf, sizeof rank_buf, "%s", set[s].fig[i].key);   /* fig is freed below */
				rank_key = rank_buf;
			}
	if (use_headline && any_finished) rank_key = "headline";
	cJSON *sets = cJSON_AddArrayToObject(ans, "settings");
	int best = -1;
	double best_mean = -INFINITY;
	for (int s = 0; s < nset; s++) {
		cJSON *o = cJSON_CreateObject();
		cJSON *sv = cJSON_Parse(set[s].setting);
		cJSON_AddItemToObject(o, "setting", sv ? sv : cJSON_CreateNull());
		cJSON_AddItemToObject(o, "jobs", set[s].jobs);
		cJSON_AddNumberToObject(o, "succeeded", set[s].finished);
		cJSON *res = cJSON_AddArrayToObject(o, "results");
		for (int i = 0; i < set[s].nfig; i++) {
			Figure *fg = &set[s].fig[i];
			double m, sd;
			mean_std(fg->v, fg->n, &m, &sd);
			if (rank_key && strcmp(fg->key, rank_key) == 0 && m > best_mean) {
				best_mean = m;
				best = s;
			}
			if (strcmp(fg->key, "headline") == 0) {
				cJSON *h = cJSON_AddObjectToObject(o, "headline");
				cJSON_AddNumberToObject(h, "n", fg->n);
				add_num(h, "accuracy_mean", m);
				add_num(h, "accuracy_std", sd);
				mean_std(set[s].gain, set[s].ngain, &m, &sd);
				add_num(h, "gain_mean", m);
				add_num(h, "gain_std", sd);
				continue;
			}
			cJSON *e = cJSON_CreateObject();
			cJSON_AddStringToObject(e, "protocol", fg->protocol);
			cJSON_AddNumberToObject(e, "label_fraction", fg->fraction);
			cJSON_AddNumberToObject(e, "n", fg->n);
			add_num(e, "mean", m);
			add_num(e, "std", sd);
			cJSON *vals = cJSON_AddArrayToObject(e, "values");
			for (int k = 0; k < fg->n; k++) cJSON_AddItemToArray(vals, cJSON_CreateNumber(fg->v[k]));
			cJSON_AddItemToArray(res, e);
		}
		cJSON_AddItemToArray(sets, o);
		free(set[s].fig);
	}
	if (best >= 0) {
		cJSON *b = cJSON_AddObjectToObject(ans, "best");
		cJSON_AddNumberToObject(b, "setting_index", best);
		cJSON_AddStringToObject(b, "by", rank_key);
		add_num(b, "mean", best_mean);
	} else {
		cJSON_AddNullToObject(ans, "best");
	}
	free(set);
	for (int i = 0; i < n; i++) store_job_clear(&jobs[i]);
	free(jobs);
	return reply_json(r, 200, ans);
}

static enum MHD_Result group_cancel(Req *r, int64_t id)
{
	if (check_query(r, NULL) < 0) return MHD_YES;
	if (require_auth(r) < 0) return MHD_YES;
	char err[512];
	StoreGroup g;
	int rc = store_group_get(r->api->cfg.store, id, &g, err, sizeof err);
	if (rc < 0) return group_store_failure(r, rc, err);
	int mine = g.owner && strcmp(g.owner, r->owner) == 0;
	char owner[64];
	snprintf(owner, sizeof owner, "%s", g.owner ? g.owner : "");
	store_group_clear(&g);
	if (r->auth_on && !r->admin && !mine)
		return reply_error(r, 403, "forbidden", NULL,
		                   "group %lld belongs to '%s'; only its owner or an admin token may cancel it (you are '%s')",
		                   (long long)id, owner, r->owner);
	StoreJobFilter f = { .group_id = id, .limit = 1000, .state_mask = (1u << JOB_QUEUED) | (1u << JOB_RUNNING) };
	StoreJob *jobs = NULL;
	int n = 0;
	if ((rc = store_job_list(r->api->cfg.store, &f, &jobs, &n, err, sizeof err)) < 0) return group_store_failure(r, rc, err);
	cJSON *ans = cJSON_CreateObject();
	cJSON_AddNumberToObject(ans, "group", (double)id);
	cJSON *cancelled = cJSON_AddArrayToObject(ans, "cancelled");
	cJSON *requested = cJSON_AddArrayToObject(ans, "cancel_requested");
	for (int i = 0; i < n; i++) {
		JobState st = JOB_QUEUED;
		/* A job that ended meanwhile (STORE_ESTATE) needs nothing. */
		if (store_job_cancel(r->api->cfg.store, jobs[i].id, &st, err, sizeof err) < 0) continue;
		if (st == JOB_RUNNING) {
			if (r->api->cfg.pool) pool_cancel(r->api->cfg.pool, jobs[i].id);
			cJSON_AddItemToArray(requested, cJSON_CreateNumber((double)jobs[i].id));
		} else {
			if (r->api->cfg.on_ended) r->api->cfg.on_ended(r->api->cfg.user, jobs[i].id);
			cJSON_AddItemToArray(cancelled, cJSON_CreateNumber((double)jobs[i].id));
		}
	}
	slog(LOG_NOTICE, 0, "group %lld: %d queued job(s) cancelled, %d running asked to stop, by %s", (long long)id,
	     cJSON_GetArraySize(cancelled), cJSON_GetArraySize(requested), r->owner);
	for (int i = 0; i < n; i++) store_job_clear(&jobs[i]);
	free(jobs);
	return reply_json(r, 200, ans);
}

enum MHD_Result groups_route(Req *r, const char *path)
{
	int get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	int post = strcmp(r->method, "POST") == 0;
	if (strcmp(path, "/groups") == 0 || strcmp(path, "/groups/") == 0) {
		if (!get) return reply_error(r, 405, "method_not_allowed", NULL, "%s %s: allowed: GET", r->method, r->url);
		if (require_read(r) < 0) return MHD_YES;
		return groups_list(r);
	}
	const char *p = path + strlen("/groups/");
	char *end = NULL;
	long long id = strtoll(p, &end, 10);
	if (end == p || id < 1 || *p == '+' || *p == '-' || (*end && strcmp(end, "/cancel") != 0))
		return reply_error(r, 404, "not_found", NULL, "%.200s: no such resource (group ids are positive integers)", r->url);
	if (*end == 0) {
		if (!get) return reply_error(r, 405, "method_not_allowed", NULL, "%s %s: allowed: GET", r->method, r->url);
		if (require_read(r) < 0) return MHD_YES;
		return group_get(r, id);
	}
	if (!post) return reply_error(r, 405, "method_not_allowed", NULL, "%s %s: allowed: POST", r->method, r->url);
	return group_cancel(r, id);
}
