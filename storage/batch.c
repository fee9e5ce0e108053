/* batch.c - buffered, batched writes of metric points, events and progress (see batch.h).
 *
 * Two buffers per kind: appenders fill `cur` under `mu`; a flush swaps it with the empty `out`
 * buffer and writes `out` while appenders carry on. Capacities persist across swaps, so a steady
 * training run stops allocating after its first second. Not here: reading (store.c) and deciding
 * when to flush (the daemon's timer and the workers).
 */
#include "batch.h"
#include "batch_rows.h"
#include "store_pg.h"

#include "../engine/fault.h"

#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define KEY_MAX BATCH_KEY_MAX

/* A job's current lease generation, and whether rows of it were dropped as fenced. */
typedef struct Lease { int64_t job, gen; int fenced; } Lease;

typedef BatchRows Buf;

struct StoreBatch {
	Store *st;
	size_t max_pending;
	pthread_mutex_t mu;        /* guards cur and the counters appenders touch */
	pthread_mutex_t flush_mu;  /* one flush at a time: the single writer */
	Buf cur, out;
	/* out's name for PostgreSQL (store_pg.h): set when out is first written, kept while it is
	 * retried, so a batch whose commit was acknowledged too late is not written twice. */
	char token[64];
	uint64_t token_base, token_seq;
	Lease *leases;             /* under mu */
	size_t nleases, capleases;
	StoreBatchStats stats;
};

static void buf_free(Buf *b)
{
	for (size_t i = 0; i < b->nevs; i++) free(b->evs[i].msg);
	free(b->pts);
	free(b->evs);
	free(b->prog);
	memset(b, 0, sizeof *b);
}

int store_batch_new(Store *st, size_t max_pending, StoreBatch **out, char *err, size_t errlen)
{
	StoreBatch *b = calloc(1, sizeof *b);
	if (!b) {
		snprintf(err, errlen, "metric batch: out of memory");
		return STORE_ENOMEM;
	}
	b->st = st;
	if (getrandom(&b->token_base, sizeof b->token_base, 0) != sizeof b->token_base)
		b->token_base = (uint64_t)store_now() * 1000003u ^ (uint64_t)(uintptr_t)b;
	b->max_pending = max_pending ? max_pending : (size_t)1 << 20;
	pthread_mutex_init(&b->mu, NULL);
	pthread_mutex_init(&b->flush_mu, NULL);
	*out = b;
	return 0;
}

void store_batch_free(StoreBatch *b)
{
	if (!b) return;
	buf_free(&b->cur);
	buf_free(&b->out);
	free(b->leases);
	pthread_mutex_destroy(&b->mu);
	pthread_mutex_destroy(&b->flush_mu);
	free(b);
}

/* Grows *v (elements of size sz) to hold one more; 0 or -1. */
static int grow(void **v, size_t n, size_t *cap, size_t sz)
{
	if (n < *cap) return 0;
	size_t c = *cap ? *cap * 2 : 256;
	void *w = realloc(*v, c * sz);
	if (!w) return -1;
	*v = w;
	*cap = c;
	return 0;
}

/* ---- appenders (any thread) ----------------------------------------------------------------- */

/* The lease generation rows of job are stamped with (under mu): -1 when none was set. */
static Lease *lease_of(StoreBatch *b, int64_t job)
{
	for (size_t i = 0; i < b->nleases; i++)
		if (b->leases[i].job == job) return &b->leases[i];
	return NULL;
}

static int64_t gen_of(StoreBatch *b, int64_t job)
{
	Lease *l = b->nleases ? lease_of(b, job) : NULL;
	return l ? l->gen : -1;
}

int store_batch_lease(StoreBatch *b, int64_t job_id, int64_t lease_gen)
{
	int rc = 0;
	pthread_mutex_lock(&b->mu);
	Lease *l = lease_of(b, job_id);
	if (lease_gen < 0) {
		if (l) *l = b->leases[--b->nleases];
	} else if (l) {
		*l = (Lease){ .job = job_id, .gen = lease_gen };
	} else if (grow((void **)&b->leases, b->nleases, &b->capleases, sizeof(Lease)) < 0) {
		rc = STORE_ENOMEM;
	} else {
		b->leases[b->nleases++] = (Lease){ .job = job_id, .gen = lease_gen };
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

int store_batch_fenced(StoreBatch *b, int64_t job_id)
{
	pthread_mutex_lock(&b->mu);
	Lease *l = lease_of(b, job_id);
	int fenced = l && l->fenced;
	pthread_mutex_unlock(&b->mu);
	return fenced ? STORE_FENCED : 0;
}

void store_batch_metric(StoreBatch *b, int64_t job_id, int64_t step, const char *key, double value)
{
	double now = store_now();
	pthread_mutex_lock(&b->mu);
	if (b->cur.npts + b->out.npts >= b->max_pending || grow((void **)&b->cur.pts, b->cur.npts, &b->cur.cappts, sizeof(Point)) < 0) {
		b->stats.dropped++;
	} else {
		Point *p = &b->cur.pts[b->cur.npts++];
		p->job = job_id;
		p->gen = gen_of(b, job_id);
		p->step = step;
		p->time = now;
		p->value = value;
		size_t n = strlen(key);
		if (n >= KEY_MAX) n = KEY_MAX - 1;
		memcpy(p->key, key, n);
		p->key[n] = 0;
	}
	pthread_mutex_unlock(&b->mu);
}

void store_batch_event(StoreBatch *b, int64_t job_id, int level, const char *message)
{
	char *m = strdup(message);
	if (!m) return;
	double now = store_now();
	pthread_mutex_lock(&b->mu);
	if (b->cur.nevs + b->out.nevs >= 100000 || grow((void **)&b->cur.evs, b->cur.nevs, &b->cur.capevs, sizeof(Event)) < 0) {
		free(m);
	} else {
		b->cur.evs[b->cur.nevs++] = (Event){ .job = job_id, .gen = gen_of(b, job_id), .time = now, .level = level, .msg = m };
	}
	pthread_mutex_unlock(&b->mu);
}

void store_batch_progress(StoreBatch *b, int64_t job_id, int64_t step, int64_t total, const char *stage,
                          double fraction, double eta_s)
{
	pthread_mutex_lock(&b->mu);
	Progress *p = NULL;
	for (size_t i = 0; i < b->cur.nprog; i++)
		if (b->cur.prog[i].job == job_id) p = &b->cur.prog[i];
	if (!p && grow((void **)&b->cur.prog, b->cur.nprog, &b->cur.capprog, sizeof(Progress)) == 0)
		p = &b->cur.prog[b->cur.nprog++];
	if (p) {
		p->job = job_id;
		p->gen = gen_of(b, job_id);
		p->step = step;
		p->total = total;
		p->fraction = fraction;
		p->eta_s = eta_s;
		snprintf(p->stage, sizeof p->stage, "%s", stage ? stage : "");
	}
	pthread_mutex_unlock(&b->mu);
}

/* ---- the flush (single writer) -------------------------------------------------------------- */

/* Moves everything from cur to out (called with out empty: a failed flush's rows are retried on
 * their own first, store_batch_flush). A swap: capacities travel with the buffers. */
static void take_pending(StoreBatch *b)
{
	pthread_mutex_lock(&b->mu);
	Buf t = b->out;
	b->out = b->cur;
	b->cur = t;
	pthread_mutex_unlock(&b->mu);
}

typedef struct KeyLast { int64_t job, id, step; double value; const char *key; } KeyLast;

/* The fences of one flush: every (job, gen >= 0) among the rows, each checked once against the
 * job's row in the flush's transaction. A run's rows are fenced when the job was claimed again
 * (another lease_gen) or was taken back to the queue (its lease expired). */
int fences_find(const Fences *f, int64_t job, int64_t gen)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].job == job && f->v[i].gen == gen) return f->v[i].fenced;
	return -1;
}

int fences_add(Fences *f, int64_t job, int64_t gen, int is)
{
	if (grow((void **)&f->v, f->n, &f->cap, sizeof(Fence)) < 0) return -1;
	f->v[f->n++] = (Fence){ .job = job, .gen = gen, .fenced = is };
	return 0;
}

/* 1 when rows of job under gen must be dropped, 0 when they may be written, < 0 on error. */
static int fenced(sqlite3 *db, Fences *f, sqlite3_stmt **q, int64_t job, int64_t gen)
{
	if (gen < 0) return 0;
	int is = fences_find(f, job, gen);
	if (is >= 0) return is;
	if (!*q && sqlite3_prepare_v2(db, "SELECT lease_gen = ?2 AND state <> 'queued' FROM jobs WHERE id = ?1", -1, q,
	                              NULL) != SQLITE_OK)
		return STORE_EDB;
	sqlite3_reset(*q);
	sqlite3_bind_int64(*q, 1, job);
	sqlite3_bind_int64(*q, 2, gen);
	int r = sqlite3_step(*q);
	is = 1;
	if (r == SQLITE_ROW) is = sqlite3_column_int(*q, 0) == 0;
	else if (r != SQLITE_DONE) return STORE_EDB;
	return fences_add(f, job, gen, is) < 0 ? STORE_ENOMEM : is;
}

static int write_out(StoreBatch *b, sqlite3 *db, Fences *fs, char *err, size_t errlen)
{
	Buf *o = &b->out;
	sqlite3_stmt *ins = NULL, *up = NULL, *ev = NULL, *pr = NULL, *fq = NULL;
	KeyLast *last = NULL;
	size_t nlast = 0, caplast = 0;
	int rc = store_begin(db, err, errlen), fr;
	if (rc < 0) return rc;
	const char *what = "preparing the batch";
	if (sqlite3_prepare_v2(db, "INSERT INTO metrics(job_id, step, key, value, time) VALUES (?1, ?2, ?3, ?4, ?5)", -1, &ins, NULL) ||
	    sqlite3_prepare_v2(db, "INSERT INTO metric_keys(job_id, key, last_id, last_step, last_value) VALUES (?1, ?2, ?3, ?4, ?5) "
	                           "ON CONFLICT(job_id, key) DO UPDATE SET last_id = excluded.last_id, "
	                           "last_step = excluded.last_step, last_value = excluded.last_value", -1, &up, NULL) ||
	    sqlite3_prepare_v2(db, "INSERT INTO events(job_id, time, level, message) VALUES (?1, ?2, ?3, ?4)", -1, &ev, NULL) ||
	    sqlite3_prepare_v2(db, "UPDATE jobs SET step = ?2, total = ?3, stage = ?4, eta_s = ?5, updated_at = ?6, progress = ?7 "
	                           "WHERE id = ?1 AND state = 'running'", -1, &pr, NULL))
		goto fail;
	what = "writing metric points";
	for (size_t i = 0; i < o->npts; i++) {
		Point *p = &o->pts[i];
		if ((fr = fenced(db, fs, &fq, p->job, p->gen)) != 0) {
			if (fr < 0) goto fence_fail;
			continue;
		}
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, p->job);
		sqlite3_bind_int64(ins, 2, p->step);
		sqlite3_bind_text(ins, 3, p->key, -1, SQLITE_STATIC);
		if (isfinite(p->value)) sqlite3_bind_double(ins, 4, p->value);
		else sqlite3_bind_null(ins, 4);
		sqlite3_bind_double(ins, 5, p->time);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			/* A job deleted meanwhile (foreign key): skip its point rather than block the batch. */
			if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_FOREIGNKEY) continue;
			goto fail;
		}
		int64_t id = sqlite3_last_insert_rowid(db);
		size_t k = nlast;
		for (size_t j = 0; j < nlast; j++)
			if (last[j].job == p->job && strcmp(last[j].key, p->key) == 0) { k = j; break; }
		if (k == nlast) {
			if (grow((void **)&last, nlast, &caplast, sizeof *last) < 0) {
				snprintf(err, errlen, "metric batch: out of memory");
				rc = STORE_ENOMEM;
				goto out;
			}
			nlast++;
		}
		last[k] = (KeyLast){ .job = p->job, .id = id, .step = p->step, .value = p->value, .key = p->key };
	}
	if (o->npts > 0 && ssld_fault("metric_flush")) {   /* ../engine/fault.h: I/O error mid-batch */
		snprintf(err, errlen, "metric batch: writing metric points: disk I/O error (injected by SSLD_FAULT)");
		rc = STORE_EDB;
		goto out;
	}
	what = "updating latest metrics";
	for (size_t j = 0; j < nlast; j++) {
		sqlite3_reset(up);
		sqlite3_bind_int64(up, 1, last[j].job);
		sqlite3_bind_text(up, 2, last[j].key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(up, 3, last[j].id);
		sqlite3_bind_int64(up, 4, last[j].step);
		if (isfinite(last[j].value)) sqlite3_bind_double(up, 5, last[j].value);
		else sqlite3_bind_null(up, 5);
		if (sqlite3_step(up) != SQLITE_DONE) goto fail;
	}
	what = "writing events";
	for (size_t i = 0; i < o->nevs; i++) {
		if ((fr = fenced(db, fs, &fq, o->evs[i].job, o->evs[i].gen)) != 0) {
			if (fr < 0) goto fence_fail;
			continue;
		}
		sqlite3_reset(ev);
		sqlite3_bind_int64(ev, 1, o->evs[i].job);
		sqlite3_bind_double(ev, 2, o->evs[i].time);
		sqlite3_bind_int(ev, 3, o->evs[i].level);
		sqlite3_bind_text(ev, 4, o->evs[i].msg, -1, SQLITE_STATIC);
		if (sqlite3_step(ev) != SQLITE_DONE && sqlite3_extended_errcode(db) != SQLITE_CONSTRAINT_FOREIGNKEY) goto fail;
	}
	what = "writing progress";
	double now = store_now();
	for (size_t i = 0; i < o->nprog; i++) {
		Progress *p = &o->prog[i];
		if ((fr = fenced(db, fs, &fq, p->job, p->gen)) != 0) {
			if (fr < 0) goto fence_fail;
			continue;
		}
		sqlite3_reset(pr);
		sqlite3_bind_int64(pr, 1, p->job);
		sqlite3_bind_int64(pr, 2, p->step);
		sqlite3_bind_int64(pr, 3, p->total);
		sqlite3_bind_text(pr, 4, p->stage, -1, SQLITE_STATIC);
		if (p->eta_s >= 0 && isfinite(p->eta_s)) sqlite3_bind_double(pr, 5, p->eta_s);
		else sqlite3_bind_null(pr, 5);
		sqlite3_bind_double(pr, 6, now);
		if (p->fraction >= 0 && isfinite(p->fraction)) sqlite3_bind_double(pr, 7, p->fraction);
		else sqlite3_bind_null(pr, 7);
		if (sqlite3_step(pr) != SQLITE_DONE) goto fail;
	}
	rc = store_commit(db, err, errlen);
	goto out;
fence_fail:
	if (fr == STORE_ENOMEM) {
		snprintf(err, errlen, "metric batch: out of memory");
		rc = STORE_ENOMEM;
		goto out;
	}
	what = "checking a job's lease";
fail:
	snprintf(err, errlen, "metric batch: %s: %s", what, sqlite3_errmsg(db));
	rc = STORE_EDB;
out:
	sqlite3_finalize(ins);
	sqlite3_finalize(up);
	sqlite3_finalize(ev);
	sqlite3_finalize(pr);
	sqlite3_finalize(fq);
	free(last);
	if (rc < 0) store_rollback(db);
	return rc;
}

/* Writes b->out (one transaction): 0 or < 0 (out kept). */
static int flush_out(StoreBatch *b, char *err, size_t errlen)
{
	Buf *o = &b->out;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc;
	Fences fs = { 0 };
	PgStore *pg = store_pg(b->st);
	if (pg) {
		if (!b->token[0])
			snprintf(b->token, sizeof b->token, "%d-%016llx-%llu", (int)getpid(), (unsigned long long)b->token_base,
			         (unsigned long long)++b->token_seq);
		rc = pgstore_batch_write(pg, o, b->token, &fs, err, errlen);
	} else {
		sqlite3 *db = store_acquire(b->st, err, errlen);
		if (!db) rc = STORE_EDB;
		else {
			rc = write_out(b, db, &fs, err, errlen);
			store_release(b->st, db);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	size_t npts = o->npts, nevs = o->nevs;
	pthread_mutex_lock(&b->mu);
	if (rc == 0) {
		for (size_t i = 0; i < o->nevs; i++) free(o->evs[i].msg);
		o->npts = o->nevs = o->nprog = 0;
		b->token[0] = 0;
	}
	b->stats.flush_seconds += dt;
	if (dt > b->stats.max_flush_seconds) b->stats.max_flush_seconds = dt;
	/* Rows of a fenced run were dropped: say so to the job's worker (store_batch_fenced). */
	for (size_t i = 0; rc == 0 && i < fs.n; i++) {
		if (!fs.v[i].fenced) continue;
		b->stats.fenced++;
		Lease *l = lease_of(b, fs.v[i].job);
		if (l && l->gen == fs.v[i].gen) l->fenced = 1;
	}
	free(fs.v);
	if (rc == 0) {
		b->stats.flushes++;
		b->stats.points_written += npts;
		b->stats.events_written += nevs;
	} else
		b->stats.failures++;
	pthread_mutex_unlock(&b->mu);
	return rc;
}

int store_batch_flush(StoreBatch *b, char *err, size_t errlen)
{
	pthread_mutex_lock(&b->flush_mu);
	size_t rows = 0;
	int rc = 0;
	/* Rows a failed flush left in out are retried as they are (the same batch, the same token),
	 * then what came meanwhile goes in a batch of its own. */
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		Buf *o = &b->out;
		if (o->npts == 0 && o->nevs == 0 && o->nprog == 0) {
			take_pending(b);
			pass = 1;   /* everything pending is in out now */
		}
		size_t n = o->npts + o->nevs + o->nprog;
		if (n == 0) break;
		if ((rc = flush_out(b, err, errlen)) == 0) rows += n;
	}
	pthread_mutex_unlock(&b->flush_mu);
	return rc < 0 ? rc : (int)(rows > INT32_MAX ? INT32_MAX : rows);
}

void store_batch_stats(StoreBatch *b, StoreBatchStats *out)
{
	pthread_mutex_lock(&b->mu);
	*out = b->stats;
	out->pending = b->cur.npts + b->out.npts;
	pthread_mutex_unlock(&b->mu);
}
