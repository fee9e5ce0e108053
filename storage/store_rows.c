/* store_rows.c - what both backends of store.h mean by a row, and the rules they check the same
 * way (see store_rows.h). Nothing here talks to a database: the backends hand rows in through
 * their column getters and take verdicts and error texts back.
 */
#include "store_rows.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sql.h"

/* ---- rows into structs ----------------------------------------------------------------------- */

static int64_t ri(const StoreRow *r, int col) { return r->ops->i64(r->res, r->row, col); }
static double rd(const StoreRow *r, int col) { return r->ops->dbl(r->res, r->row, col); }
static const char *rt(const StoreRow *r, int col) { return r->ops->text(r->res, r->row, col); }
static int rnull(const StoreRow *r, int col) { return r->ops->isnull(r->res, r->row, col); }

/* An owned copy of a text column; NULL stays NULL. */
static char *rdup(const StoreRow *r, int col)
{
	const char *t = rt(r, col);
	return t ? strdup(t) : NULL;
}

/* A text column into a fixed buffer; NULL reads as "". */
static void rcopy(const StoreRow *r, int col, char *dst, size_t cap)
{
	const char *t = rt(r, col);
	snprintf(dst, cap, "%s", t ? t : "");
}

JobState rows_state(const StoreRow *r, int col)
{
	const char *t = rt(r, col);
	int k = t ? job_state_parse(t) : -1;
	return k < 0 ? JOB_FAILED : (JobState)k;
}

void rows_job(const StoreRow *r, StoreJob *j, int full)
{
	memset(j, 0, sizeof *j);
	j->id = ri(r, 0);
	j->name = rdup(r, 1);
	j->method = rdup(r, 2);
	j->owner = rdup(r, 3);
	j->state = rows_state(r, 4);
	j->priority = (int)ri(r, 5);
	j->created_at = rd(r, 6);
	j->started_at = rd(r, 7);
	j->finished_at = rd(r, 8);
	j->updated_at = rd(r, 9);
	j->step = ri(r, 10);
	j->total = ri(r, 11);
	j->stage = rdup(r, 12);
	j->eta_s = rnull(r, 13) ? -1 : rd(r, 13);
	j->checkpoint_step = rnull(r, 14) ? -1 : ri(r, 14);
	j->attempts = (int)ri(r, 15);
	j->cancel_requested = (int)ri(r, 16);
	j->error = rdup(r, 17);
	j->interruptions = (int)ri(r, 18);
	j->init_from_job = ri(r, 19);
	j->group_id = ri(r, 20);
	j->group_setting = rdup(r, 21);
	j->progress = rnull(r, 22) ? -1 : rd(r, 22);
	j->node = rdup(r, 23);
	j->lease_until = rd(r, 24);
	j->lease_gen = ri(r, 25);
	if (full) {
		j->spec = rdup(r, 26);
		j->results = rdup(r, 27);
	}
}

void rows_group(const StoreRow *r, StoreGroup *g)
{
	memset(g, 0, sizeof *g);
	g->id = ri(r, 0);
	g->name = rdup(r, 1);
	g->owner = rdup(r, 2);
	g->sweep = rdup(r, 3);
	g->created_at = rd(r, 4);
}

void rows_event(const StoreRow *r, StoreEvent *e)
{
	memset(e, 0, sizeof *e);
	e->id = ri(r, 0);
	e->time = rd(r, 1);
	e->level = (int)ri(r, 2);
	e->message = rdup(r, 3);
}

void rows_artifact(const StoreRow *r, StoreArtifact *a)
{
	memset(a, 0, sizeof *a);
	a->name = rdup(r, 0);
	a->path = rdup(r, 1);
	a->size = ri(r, 2);
	rcopy(r, 3, a->sha256, sizeof a->sha256);
	a->created_at = rd(r, 4);
}

void rows_token(const StoreRow *r, StoreToken *t)
{
	memset(t, 0, sizeof *t);
	t->id = ri(r, 0);
	rcopy(r, 1, t->name, sizeof t->name);
	t->admin = (int)ri(r, 2);
	t->created_at = rd(r, 3);
}

int rows_job_item(const StoreRow *r, void *item) { rows_job(r, item, 1); return 0; }
int rows_job_brief_item(const StoreRow *r, void *item) { rows_job(r, item, 0); return 0; }
int rows_group_item(const StoreRow *r, void *item) { rows_group(r, item); return 0; }
int rows_event_item(const StoreRow *r, void *item) { rows_event(r, item); return 0; }
int rows_artifact_item(const StoreRow *r, void *item) { rows_artifact(r, item); return 0; }
int rows_token_item(const StoreRow *r, void *item) { rows_token(r, item); return 0; }
int rows_dataset_item(const StoreRow *r, void *item) { return rows_dataset(r, item); }
int rows_state_item(const StoreRow *r, void *item) { *(JobState *)item = rows_state(r, 0); return 0; }
int rows_i64_item(const StoreRow *r, void *item) { *(int64_t *)item = ri(r, 0); return 0; }

int rows_dataset(const StoreRow *r, StoreDataset *d)
{
	memset(d, 0, sizeof *d);
	rcopy(r, 0, d->owner, sizeof d->owner);
	rcopy(r, 1, d->name, sizeof d->name);
	rcopy(r, 2, d->format, sizeof d->format);
	d->bytes = ri(r, 3);
	d->files = ri(r, 4);
	const char *summary = rt(r, 5), *path = rt(r, 6);
	d->summary = strdup(summary ? summary : "");
	d->path = strdup(path ? path : "");
	d->created_at = rd(r, 7);
	if (!d->summary || !d->path) {
		store_dataset_clear(d);
		return STORE_ENOMEM;
	}
	return 0;
}

MetricPoint rows_point(const StoreRow *r, int id_col, int step_col, int value_col)
{
	return (MetricPoint){
		.id = ri(r, id_col),
		.step = ri(r, step_col),
		.value = rnull(r, value_col) ? NAN : rd(r, value_col),
	};
}

int rows_latest(const StoreRow *r, MetricSet *ms, int *hint)
{
	MetricPoint p = rows_point(r, 0, 1, 3);
	const char *key = rt(r, 2);
	if (metric_set_push(ms, key ? key : "", hint, p) < 0) return -1;
	if (p.id > ms->cursor) ms->cursor = p.id;
	ms->total_points++;
	return 0;
}

void rows_count_state(const StoreRow *r, int64_t counts[JOB_STATE_COUNT], int64_t *total)
{
	const char *t = rt(r, 0);
	int k = t ? job_state_parse(t) : -1;
	int64_t c = ri(r, 1);
	if (k >= 0) counts[k] += c;
	if (total) *total += c;
}

/* ---- metric sets ----------------------------------------------------------------------------- */

void metric_set_clear(MetricSet *ms)
{
	if (!ms) return;
	for (int i = 0; i < ms->n; i++) {
		free(ms->series[i].key);
		free(ms->series[i].pts);
	}
	free(ms->series);
	memset(ms, 0, sizeof *ms);
}

static MetricSeries *series_for(MetricSet *ms, const char *key, int *hint)
{
	if (*hint >= 0 && *hint < ms->n && strcmp(ms->series[*hint].key, key) == 0) return &ms->series[*hint];
	for (int i = 0; i < ms->n; i++)
		if (strcmp(ms->series[i].key, key) == 0) {
			*hint = i;
			return &ms->series[i];
		}
	if (ms->n == ms->cap) {
		int cap = ms->cap ? ms->cap * 2 : 8;
		MetricSeries *v = realloc(ms->series, (size_t)cap * sizeof *v);
		if (!v) return NULL;
		ms->series = v;
		ms->cap = cap;
	}
	MetricSeries *se = &ms->series[ms->n];
	memset(se, 0, sizeof *se);
	if (!(se->key = strdup(key))) return NULL;
	*hint = ms->n++;
	return se;
}

int metric_set_push(MetricSet *ms, const char *key, int *hint, MetricPoint p)
{
	MetricSeries *se = series_for(ms, key, hint);
	if (!se) return -1;
	if (se->n == se->cap) {
		size_t cap = se->cap ? se->cap * 2 : 64;
		MetricPoint *v = realloc(se->pts, cap * sizeof *v);
		if (!v) return -1;
		se->pts = v;
		se->cap = cap;
	}
	se->pts[se->n++] = p;
	return 0;
}

void metric_set_finish(MetricSet *ms, int64_t cut)
{
	/* If some key hit max_rows, the cursor stops at the lowest point where one was cut; points
	 * beyond it are dropped from every series so the next read neither skips nor repeats any. */
	for (int i = 0; i < ms->n; i++) {
		MetricSeries *se = &ms->series[i];
		while (se->n && se->pts[se->n - 1].id > cut) se->n--;
		if (se->n && se->pts[se->n - 1].id > ms->cursor) ms->cursor = se->pts[se->n - 1].id;
		ms->total_points += se->n;
	}
	ms->truncated = cut != INT64_MAX;
}

/* ---- rules and their error texts ------------------------------------------------------------- */

int rows_limit(int limit, int dflt, int max)
{
	return limit < 1 ? dflt : limit > max ? max : limit;
}

int rows_check_limits(const StoreNewJob *nj, int n_new, rows_count_cb count, void *ctx, char *err, size_t errlen)
{
	const char *owner = nj->owner ? nj->owner : "";
	int64_t n;
	int rc;
	if (nj->max_queued > 0) {
		if ((rc = count(ctx, NULL, &n, err, errlen)) < 0) return rc;
		if (n + n_new > nj->max_queued) {
			if (n_new == 1)
				snprintf(err, errlen, "the queue is full: %lld jobs queued; the limit is max-queued = %d", (long long)n,
				         nj->max_queued);
			else
				snprintf(err, errlen, "the queue cannot take %d more jobs: %lld are queued; the limit is max-queued = %d",
				         n_new, (long long)n, nj->max_queued);
			return STORE_ELIMIT;
		}
	}
	if (nj->max_queued_per_owner > 0) {
		if ((rc = count(ctx, owner, &n, err, errlen)) < 0) return rc;
		if (n + n_new > nj->max_queued_per_owner) {
			if (n_new == 1)
				snprintf(err, errlen, "owner '%s' already has %lld queued job(s); the limit is max-queued-per-owner = %d",
				         owner, (long long)n, nj->max_queued_per_owner);
			else
				snprintf(err, errlen, "owner '%s' has %lld queued job(s) and asks for %d more; the limit is "
				         "max-queued-per-owner = %d", owner, (long long)n, n_new, nj->max_queued_per_owner);
			return STORE_ELIMIT;
		}
	}
	return 0;
}

int rows_check_source(const StoreNewJob *nj, const StoreRow *src, char *err, size_t errlen)
{
	long long id = (long long)nj->init_from_job;
	if (!src) {
		snprintf(err, errlen, "init_from: job %lld does not exist", id);
		return STORE_ENOTFOUND;
	}
	const char *st = rt(src, 0), *owner = rt(src, 1), *error = rt(src, 2);
	int state = st ? job_state_parse(st) : -1;
	int mine = owner && strcmp(owner, nj->owner ? nj->owner : "") == 0;
	if (state == JOB_FAILED || state == JOB_CANCELLED || state < 0) {
		snprintf(err, errlen, "init_from: job %lld %s and has no final checkpoint (%s)", id,
		         state == JOB_CANCELLED ? "was cancelled" : "failed", error ? error : "no reason recorded");
		return STORE_ESTATE;
	}
	if (state != JOB_SUCCEEDED && !mine && !nj->init_from_any_owner) {
		snprintf(err, errlen, "init_from: job %lld belongs to '%s' and is %s; another owner's job can be a source "
		         "only once it has succeeded (your own jobs may be waited for)", id, owner ? owner : "",
		         job_state_name((JobState)state));
		return STORE_ESTATE;
	}
	return 0;
}

int rows_job_not_found(int64_t id, char *err, size_t errlen)
{
	snprintf(err, errlen, "job %lld not found", (long long)id);
	return STORE_ENOTFOUND;
}

int rows_fenced(int64_t id, int64_t lease_gen, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: job %lld is no longer running under lease generation %lld", what, (long long)id,
	         (long long)lease_gen);
	return STORE_FENCED;
}

int rows_renew_fenced(int64_t id, int64_t lease_gen, char *err, size_t errlen)
{
	snprintf(err, errlen, "job %lld: lease generation %lld is no longer current (claimed again, or not running)",
	         (long long)id, (long long)lease_gen);
	return STORE_FENCED;
}

int rows_finish_refused(int64_t id, int64_t lease_gen, char *err, size_t errlen)
{
	if (lease_gen >= 0) return rows_fenced(id, lease_gen, "finishing a job", err, errlen);
	snprintf(err, errlen, "job %lld is not running", (long long)id);
	return STORE_ESTATE;
}

int rows_cancel_refused(int64_t id, JobState state, char *err, size_t errlen)
{
	snprintf(err, errlen, "job %lld is already %s", (long long)id, job_state_name(state));
	return STORE_ESTATE;
}

int rows_token_exists(const char *name, char *err, size_t errlen)
{
	snprintf(err, errlen, "a token named '%s' already exists (revoke it first, or pick another name)", name);
	return STORE_EEXIST;
}

void rows_job_list_sql(char *sql, size_t cap, const StoreJobFilter *f)
{
	size_t len = (size_t)snprintf(sql, cap, "SELECT " SQL_JOB_COLS " FROM jobs WHERE id < ?1");
	if (f->state_mask) {
		len += (size_t)snprintf(sql + len, cap - len, " AND state IN (");
		int first = 1;
		for (int i = 0; i < JOB_STATE_COUNT; i++)
			if (f->state_mask & (1u << i)) {
				len += (size_t)snprintf(sql + len, cap - len, "%s'%s'", first ? "" : ",", job_state_name((JobState)i));
				first = 0;
			}
		len += (size_t)snprintf(sql + len, cap - len, ")");
	}
	if (f->owner) len += (size_t)snprintf(sql + len, cap - len, " AND owner = ?3");
	if (f->group_id > 0) len += (size_t)snprintf(sql + len, cap - len, " AND group_id = ?4");
	snprintf(sql + len, cap - len, " ORDER BY id DESC LIMIT ?2");
}
