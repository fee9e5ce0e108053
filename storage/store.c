/* store.c - SQLite storage for the service: schema and migrations, the job queue, metric and event
 * reads, artifacts (see store.h). A Store opened on a postgresql:// URL runs on PostgreSQL
 * (store_pg.c): the two functions PostgreSQL says its own way (the claim and the lease renewal)
 * hand the call to their twin there; everything else is written once here, over a Conn of either
 * backend (inserts, finishing, cancelling, recovery, reclaim, the metric snapshot, the job list)
 * or store_query.h's single statements (the other reads and writes).
 * What a row means and the checks both make are store_rows.c's; the SQL both run is store_sql.h's.
 *
 * Deliberately not here: anything about HTTP or JSON (results and specs are opaque text), and the
 * hot path of metric writing, which lives in batch.c so that a training step never waits on a
 * transaction. Every write is one BEGIN IMMEDIATE transaction; SQLite errors are turned into
 * messages that name the operation once, here.
 */
#include "../engine/fault.h"
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dbident.h"
#include "sha256.h"
#include "store_pg.h"
#include "store_query.h"
#include "store_rows.h"
#include "store_sql.h"

#define POOL_MAX 16

struct Store {
	char *path;
	pthread_mutex_t mu;
	sqlite3 *idle[POOL_MAX];
	int n_idle;
	/* The -shm file's first page, mapped read-only for store_change_stamp (MAP_FAILED when it
	 * could not be mapped: then there is no stamp). */
	void *shm;
	/* Its descriptor, open until store_free: closing any descriptor of a file drops every POSIX
	 * lock this process holds on it, and SQLite's connections hold the -shm file's "in use" lock.
	 * Without that lock another process opening the database (sqlite3, a test) would take the
	 * WAL index for abandoned and rebuild it under the daemon's feet. */
	int shm_fd;
	DbIdent ident;   /* the file opened is still the file at path (checked before each use) */
	atomic_int healthy;   /* 0 while connections cannot be had (store_healthy) */
	PgStore *pg;          /* the PostgreSQL backend (store_pg.c) when path is its URL; then nothing above is used */
	atomic_int outbox;    /* store_set_outbox: ending a job writes its webhook delivery row */
};

PgStore *store_pg(Store *st) { return st ? st->pg : NULL; }

/* The current row of statement s, for store_rows.h. */
#define ROW(s) (&(StoreRow){ &sqlite_row_ops, (s), 0 })

/* ---- names ---------------------------------------------------------------------------------- */

static const char *const state_names[JOB_STATE_COUNT] = {
	"queued", "running", "succeeded", "failed", "cancelled",
};
_Static_assert(sizeof state_names / sizeof state_names[0] == JOB_STATE_COUNT, "state names");

const char *job_state_name(JobState s)
{
	return (unsigned)s < JOB_STATE_COUNT ? state_names[s] : "unknown";
}

int job_state_parse(const char *name)
{
	for (int i = 0; i < JOB_STATE_COUNT; i++)
		if (strcmp(name, state_names[i]) == 0) return i;
	return -1;
}

const char *store_strerror(int code)
{
	switch (code) {
	case 0: return "ok";
	case STORE_EDB: return "database error";
	case STORE_ENOTFOUND: return "not found";
	case STORE_ELIMIT: return "queue limit reached";
	case STORE_ESTATE: return "job is not in a state that allows this";
	case STORE_ENOMEM: return "out of memory";
	case STORE_EVERSION: return "database schema is newer than this ssld";
	case STORE_EEXIST: return "already exists";
	case STORE_FENCED: return "the job's lease belongs to a newer claim, or the job is no longer running";
	default: return "unknown storage error";
	}
}

double store_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int db_fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "database %s: %s", what, db ? sqlite3_errmsg(db) : "no connection");
	return STORE_EDB;
}

/* Rows of a statement for store_rows.h. */
static int64_t col_i64(const void *s, int row, int col)
{
	(void)row;
	return sqlite3_column_int64((sqlite3_stmt *)s, col);
}
static double col_dbl(const void *s, int row, int col)
{
	(void)row;
	return sqlite3_column_double((sqlite3_stmt *)s, col);
}
static const char *col_text(const void *s, int row, int col)
{
	(void)row;
	return (const char *)sqlite3_column_text((sqlite3_stmt *)s, col);
}
static int col_isnull(const void *s, int row, int col)
{
	(void)row;
	return sqlite3_column_type((sqlite3_stmt *)s, col) == SQLITE_NULL;
}
static const StoreRowOps sqlite_row_ops = { col_i64, col_dbl, col_text, col_isnull };

/* Statements are prepared once per connection and kept (the SQL texts here are fixed): parsing
 * and planning were most of the CPU cost of a small API read. unprep() resets one for reuse. */
static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *what, char *err, size_t errlen)
{
	for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s; s = sqlite3_next_stmt(db, s)) {
		const char *t = sqlite3_sql(s);
		if (t && strcmp(t, sql) == 0 && !sqlite3_stmt_busy(s)) {
			*st = s;
			return 0;
		}
	}
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return db_fail(db, what, err, errlen);
	}
	return 0;
}

/* For SQL built at run time: not cached (finalize it). */
static int prep_once(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *what, char *err, size_t errlen)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return db_fail(db, what, err, errlen);
	}
	return 0;
}

static void unprep(sqlite3_stmt *s)
{
	if (!s) return;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* The two helpers most statements go through. fmt describes the parameters ?1, ?2, ... one
 * letter each: 'i' int, 'I' int64_t, 'd' double, 't' text (const char *; NULL binds NULL, and the
 * text must stay valid until the statement is reset). */
static void bind_args(sqlite3_stmt *s, const char *fmt, va_list ap)
{
	for (int i = 1; fmt && fmt[i - 1]; i++) {
		switch (fmt[i - 1]) {
		case 'i': sqlite3_bind_int(s, i, va_arg(ap, int)); break;
		case 'I': sqlite3_bind_int64(s, i, va_arg(ap, int64_t)); break;
		case 'd': sqlite3_bind_double(s, i, va_arg(ap, double)); break;
		case 't': sqlite3_bind_text(s, i, va_arg(ap, const char *), -1, SQLITE_STATIC); break;
		default: assert(!"bind_args: unknown parameter letter");
		}
	}
}

/* A query: the cached statement for sql with its parameters bound, ready for sqlite3_step; give
 * it back with unprep(). 0, or STORE_EDB with err naming `what`. */
static int sql_query(sqlite3 *db, sqlite3_stmt **s, const char *what, char *err, size_t errlen, const char *sql,
                     const char *fmt, ...)
{
	if (prep(db, sql, s, what, err, errlen) < 0) return STORE_EDB;
	va_list ap;
	va_start(ap, fmt);
	bind_args(*s, fmt, ap);
	va_end(ap);
	return 0;
}

/* A statement without rows (INSERT, UPDATE, DELETE) run to completion: the number of rows it
 * changed (>= 0), or STORE_EDB with err naming `what`. */
static int sql_vexec(sqlite3 *db, const char *what, char *err, size_t errlen, const char *sql, const char *fmt,
                     va_list ap)
{
	sqlite3_stmt *s;
	if (prep(db, sql, &s, what, err, errlen) < 0) return STORE_EDB;
	bind_args(s, fmt, ap);
	int rc = sqlite3_step(s) == SQLITE_DONE ? sqlite3_changes(db) : db_fail(db, what, err, errlen);
	unprep(s);
	return rc;
}

static int sql_exec(sqlite3 *db, const char *what, char *err, size_t errlen, const char *sql, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = sql_vexec(db, what, err, errlen, sql, fmt, ap);
	va_end(ap);
	return rc;
}

/* A query for ids (its first column): the number of rows (>= 0), the first cap in ids; or
 * STORE_EDB with err naming `what`. */
static int sql_vids(sqlite3 *db, int64_t *ids, int cap, const char *what, char *err, size_t errlen, const char *sql,
                    const char *fmt, va_list ap)
{
	sqlite3_stmt *s;
	if (prep(db, sql, &s, what, err, errlen) < 0) return STORE_EDB;
	bind_args(s, fmt, ap);
	int n = 0, r;
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		if (n < cap) ids[n] = sqlite3_column_int64(s, 0);
		n++;
	}
	if (r != SQLITE_DONE) n = db_fail(db, what, err, errlen);
	unprep(s);
	return n;
}

/* sql_exec in a transaction of its own on a pooled connection: rows changed (>= 0), or < 0
 * (STORE_EEXIST when it would duplicate a unique key). */
static int sql_vwrite(Store *st, const char *what, char *err, size_t errlen, const char *sql, const char *fmt,
                      va_list ap)
{
	sqlite3 *db = store_acquire(st, err, errlen);
	if (!db) return STORE_EDB;
	int rc = store_begin(db, err, errlen);
	if (rc == 0 && (rc = sql_vexec(db, what, err, errlen, sql, fmt, ap)) < 0 &&
	    (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE ||
	     sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_PRIMARYKEY))
		rc = STORE_EEXIST;
	if (rc >= 0) {
		int c = store_commit(db, err, errlen);
		if (c < 0) rc = c;
	}
	if (rc < 0) store_rollback(db);
	store_release(st, db);
	return rc;
}

/* fn on each row of a query: the number of rows (>= 0), or < 0 (fn's code, or STORE_EDB with err
 * naming `what`). */
static int sql_veach(sqlite3 *db, int uncached, rows_each_fn fn, void *ctx, const char *what, char *err,
                     size_t errlen, const char *sql, const char *fmt, va_list ap)
{
	sqlite3_stmt *s;
	if ((uncached ? prep_once : prep)(db, sql, &s, what, err, errlen) < 0) return STORE_EDB;
	bind_args(s, fmt, ap);
	int n = 0, rc = 0, r;
	while ((r = sqlite3_step(s)) == SQLITE_ROW && (rc = fn(ROW(s), ctx, err, errlen)) == 0) n++;
	if (rc == 0 && r != SQLITE_DONE) rc = db_fail(db, what, err, errlen);
	if (uncached) sqlite3_finalize(s);
	else unprep(s);
	return rc < 0 ? rc : n;
}

static void close_conn(sqlite3 *db)
{
	sqlite3_stmt *s;
	while ((s = sqlite3_next_stmt(db, NULL)) != NULL) sqlite3_finalize(s);
	sqlite3_close(db);
}

/* ---- one connection of either backend --------------------------------------------------------
 * What is the same on both backends is written once, below and in the functions of store.h, over
 * a Conn: the statements are store_sql.h's; the connection, the transaction and running a
 * statement are the backend's (for PostgreSQL, store_pg.h's pgstore_exec and its neighbours). */

typedef struct Conn {
	Store *st;
	sqlite3 *db;            /* SQLite, or */
	struct pg_conn *pc;     /* PostgreSQL */
	int tx;                 /* CONN_WRITE: conn_begin's transaction; CONN_READ: a read snapshot */
	int uncached;           /* SQL built at run time: not kept in SQLite's statement cache */
} Conn;
enum { CONN_WRITE = 1, CONN_READ = 2 };

/* A pooled connection (give it back with conn_end): 0, or STORE_EDB with err. */
static int conn_get(Store *st, Conn *c, char *err, size_t errlen)
{
	*c = (Conn){ .st = st };
	if (st->pg) c->pc = pgstore_acquire(st->pg, err, errlen);
	else c->db = store_acquire(st, err, errlen);
	return c->db || c->pc ? 0 : STORE_EDB;
}

/* Commits a write transaction when rc >= 0 (else rolls it back; a read snapshot is rolled back)
 * and gives the connection back: rc, or the commit's error. */
static int conn_end(Conn *c, int rc, char *err, size_t errlen)
{
	if (c->tx == CONN_WRITE && rc >= 0) {
		int k = c->pc ? pgstore_commit(c->pc, err, errlen) : store_commit(c->db, err, errlen);
		if (k < 0) rc = k;
	}
	if (c->tx && (rc < 0 || c->tx == CONN_READ)) {
		if (c->pc) pgstore_rollback(c->pc);
		else store_rollback(c->db);
	}
	if (c->pc) pgstore_release(c->st->pg, c->pc);
	else store_release(c->st, c->db);
	return rc;
}

/* conn_get with a write transaction begun: 0 (end it with conn_end), or < 0. */
static int conn_begin(Store *st, Conn *c, char *err, size_t errlen)
{
	if (conn_get(st, c, err, errlen) < 0) return STORE_EDB;
	c->tx = CONN_WRITE;
	int rc = c->pc ? pgstore_begin(c->pc, err, errlen) : store_begin(c->db, err, errlen);
	return rc < 0 ? conn_end(c, rc, err, errlen) : 0;
}

/* A statement without rows: rows changed (>= 0), or STORE_EDB with err naming `what`. */
static int conn_exec(Conn *c, const char *what, char *err, size_t errlen, const char *sql, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = c->pc ? pgstore_exec(c->pc, what, err, errlen, sql, fmt, ap)
	               : sql_vexec(c->db, what, err, errlen, sql, fmt, ap);
	va_end(ap);
	return rc;
}

/* An INSERT of one row: 0 with its id in *id, or STORE_EDB with err naming `what`. */
static int conn_insert(Conn *c, int64_t *id, const char *what, char *err, size_t errlen, const char *sql,
                       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = c->pc ? pgstore_insert(c->pc, id, what, err, errlen, sql, fmt, ap)
	               : sql_vexec(c->db, what, err, errlen, sql, fmt, ap);
	va_end(ap);
	if (rc < 0) return rc;
	if (c->db) *id = sqlite3_last_insert_rowid(c->db);
	return 0;
}

/* A query for ids (its first column): the number of rows (>= 0), the first cap in ids. */
static int conn_ids(Conn *c, int64_t *ids, int cap, const char *what, char *err, size_t errlen, const char *sql,
                    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = c->pc ? pgstore_ids(c->pc, ids, cap, what, err, errlen, sql, fmt, ap)
	               : sql_vids(c->db, ids, cap, what, err, errlen, sql, fmt, ap);
	va_end(ap);
	return rc;
}

/* fn on each row: the number of rows (>= 0), or < 0 (fn's code, or STORE_EDB naming `what`). */
static int conn_veach(Conn *c, rows_each_fn fn, void *ctx, const char *what, char *err, size_t errlen, const char *sql,
                      const char *fmt, va_list ap)
{
	return c->pc ? pgstore_each(c->pc, fn, ctx, what, err, errlen, sql, fmt, ap)
	             : sql_veach(c->db, c->uncached, fn, ctx, what, err, errlen, sql, fmt, ap);
}

static int conn_each(Conn *c, rows_each_fn fn, void *ctx, const char *what, char *err, size_t errlen, const char *sql,
                     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = conn_veach(c, fn, ctx, what, err, errlen, sql, fmt, ap);
	va_end(ap);
	return rc;
}

/* conn_one's and store_list's row callbacks: the first row into an item; every row into an array. */
typedef struct OneRow { rows_read_fn read; void *item; const char *what; int got; } OneRow;

static int one_row(const StoreRow *r, void *ctx, char *err, size_t errlen)
{
	OneRow *o = ctx;
	if (o->got++) return 0;
	if (o->read(r, o->item) == 0) return 0;
	snprintf(err, errlen, "%s: out of memory", o->what);
	return STORE_ENOMEM;
}

static int conn_vone(Conn *c, rows_read_fn read, void *item, const char *what, char *err, size_t errlen,
                     const char *sql, const char *fmt, va_list ap)
{
	OneRow o = { read, item, what, 0 };
	int rc = conn_veach(c, one_row, &o, what, err, errlen, sql, fmt, ap);
	return rc < 0 ? rc : o.got > 0;
}

/* The first row read into item: 1, 0 when there is none, or < 0. */
static int conn_one(Conn *c, rows_read_fn read, void *item, const char *what, char *err, size_t errlen,
                    const char *sql, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = conn_vone(c, read, item, what, err, errlen, sql, fmt, ap);
	va_end(ap);
	return rc;
}

typedef struct ListRows { void *v; int n, cap; size_t size; rows_read_fn read; const char *what; } ListRows;

static int list_row(const StoreRow *r, void *ctx, char *err, size_t errlen)
{
	ListRows *l = ctx;
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 8;
		void *w = realloc(l->v, (size_t)cap * l->size);
		if (!w) goto oom;
		l->v = w;
		l->cap = cap;
	}
	void *item = (char *)l->v + (size_t)l->n++ * l->size;
	memset(item, 0, l->size);
	if (l->read(r, item) == 0) return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", l->what);
	return STORE_ENOMEM;
}

/* The job's state (STORE_ENOTFOUND when there is no such job). In a transaction on PostgreSQL
 * its row stays locked until the end (SQLite's BEGIN IMMEDIATE holds the whole database already). */
static int conn_state(Conn *c, int64_t id, JobState *state, const char *what, char *err, size_t errlen)
{
	int rc = conn_one(c, rows_state_item, state, what, err, errlen,
	                  c->pc && c->tx == CONN_WRITE ? SQL_JOB_STATE " FOR UPDATE" : SQL_JOB_STATE, "I", id);
	return rc == 0 ? rows_job_not_found(id, err, errlen) : rc < 0 ? rc : 0;
}

/* Now by the clock leases are timed with: the database server's on PostgreSQL, else this node's. */
static int conn_now(Conn *c, double *now, const char *what, char *err, size_t errlen)
{
	*now = store_now();
	return c->pc ? pgstore_now(c->pc, now, what, err, errlen) : 0;
}

/* The webhook delivery row of job id, which the caller's transaction just ended (when the store
 * keeps them: store_set_outbox). */
static int outbox_add(Conn *c, int64_t id, double now, char *err, size_t errlen)
{
	if (!atomic_load(&c->st->outbox)) return 0;
	int rc = conn_exec(c, "recording a webhook delivery", err, errlen, SQL_OUTBOX_ADD, "Id", id, now);
	return rc < 0 ? rc : 0;
}

/* Queued dependants of sources that failed, were cancelled or do not exist fail with the
 * source's reason (each with its webhook delivery row), in the caller's transaction; repeated so
 * that a chain fails down to its end (each pass fails one more link; a chain cannot loop, a
 * source is always older). */
static int fail_dependants(Conn *c, double now, char *err, size_t errlen)
{
	for (int pass = 0; pass < 10000; pass++) {
		if (atomic_load(&c->st->outbox) &&
		    conn_exec(c, "recording webhook deliveries", err, errlen, SQL_OUTBOX_ADD_DEPENDANTS, "d", now) < 0)
			return STORE_EDB;
		int n = conn_exec(c, "failing the dependants of a failed init_from job", err, errlen, SQL_FAIL_DEPENDANTS, "d",
		                  now);
		if (n <= 0) return n;
	}
	return 0;
}

/* ---- store_query.h: single statements on either backend -------------------------------------- */

int store_write(Store *st, const char *what, char *err, size_t errlen, const char *sql, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = st->pg ? pgstore_write(st->pg, what, err, errlen, sql, fmt, ap)
	                : sql_vwrite(st, what, err, errlen, sql, fmt, ap);
	va_end(ap);
	return rc;
}

int store_each(Store *st, rows_each_fn fn, void *ctx, const char *what, char *err, size_t errlen, const char *sql,
               const char *fmt, ...)
{
	Conn c;
	if (conn_get(st, &c, err, errlen) < 0) return STORE_EDB;
	va_list ap;
	va_start(ap, fmt);
	int rc = conn_veach(&c, fn, ctx, what, err, errlen, sql, fmt, ap);
	va_end(ap);
	return conn_end(&c, rc, err, errlen);
}

int store_one(Store *st, rows_read_fn read, void *item, const char *what, char *err, size_t errlen, const char *sql,
              const char *fmt, ...)
{
	Conn c;
	if (conn_get(st, &c, err, errlen) < 0) return STORE_EDB;
	va_list ap;
	va_start(ap, fmt);
	int rc = conn_vone(&c, read, item, what, err, errlen, sql, fmt, ap);
	va_end(ap);
	return conn_end(&c, rc, err, errlen);
}

int store_list(Store *st, void **v, int *n, size_t size, rows_read_fn read, const char *what, char *err, size_t errlen,
               const char *sql, const char *fmt, ...)
{
	ListRows l = { .size = size, .read = read, .what = what };
	Conn c;
	int rc = conn_get(st, &c, err, errlen);
	if (rc == 0) {
		va_list ap;
		va_start(ap, fmt);
		rc = conn_end(&c, conn_veach(&c, list_row, &l, what, err, errlen, sql, fmt, ap), err, errlen);
		va_end(ap);
	}
	*v = l.v;
	*n = l.n;
	return rc < 0 ? rc : 0;
}

/* ---- migrations ----------------------------------------------------------------------------- */

/* migrations[v] takes the schema from user_version v to v + 1. Append only; never edit a shipped one. */
static const char *const migrations[] = {
	/* 0 -> 1: the initial schema. */
	"CREATE TABLE jobs("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT, method TEXT NOT NULL DEFAULT '', spec TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed','cancelled')),"
	"  priority INTEGER NOT NULL DEFAULT 0, owner TEXT NOT NULL DEFAULT '',"
	"  created_at REAL NOT NULL, started_at REAL, finished_at REAL, updated_at REAL NOT NULL,"
	"  step INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0, stage TEXT, eta_s REAL,"
	"  checkpoint_step INTEGER, checkpoint_metric_id INTEGER NOT NULL DEFAULT 0,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  cancel_requested INTEGER NOT NULL DEFAULT 0, results TEXT, error TEXT);"
	"CREATE INDEX jobs_queue ON jobs(state, priority DESC, id);"
	"CREATE INDEX jobs_owner ON jobs(owner, state);"
	"CREATE TABLE metrics("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	"  step INTEGER NOT NULL, key TEXT NOT NULL, value REAL, time REAL NOT NULL);"
	"CREATE INDEX metrics_job ON metrics(job_id, id);"
	/* Covering: a curve is read from the index alone, in id order, without touching the table. */
	"CREATE INDEX metrics_job_key ON metrics(job_id, key, id, step, value);"
	"CREATE TABLE metric_keys("
	"  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, key TEXT NOT NULL,"
	"  last_id INTEGER NOT NULL, last_step INTEGER NOT NULL, last_value REAL,"
	"  PRIMARY KEY (job_id, key)) WITHOUT ROWID;"
	"CREATE TABLE events("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	"  time REAL NOT NULL, level INTEGER NOT NULL, message TEXT NOT NULL);"
	"CREATE INDEX events_job ON events(job_id, id);"
	"CREATE TABLE artifacts("
	"  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,"
	"  created_at REAL NOT NULL, PRIMARY KEY (job_id, name));",
	/* 1 -> 2: API tokens, stored as the SHA-256 of the token only. */
	"CREATE TABLE tokens("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL UNIQUE,"
	"  admin INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);",
	/* 2 -> 3: the init_from dependency as a column the claim query can see (filled from the
	 * stored specs of existing jobs), and interruptions (runs a crash or an unclean stop ended). */
	"ALTER TABLE jobs ADD COLUMN init_from_job INTEGER;"
	"ALTER TABLE jobs ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;"
	"UPDATE jobs SET init_from_job = json_extract(spec, '$.init_from') "
	"  WHERE CASE WHEN json_valid(spec) THEN json_type(spec, '$.init_from') END = 'integer';"
	"CREATE INDEX jobs_init_from ON jobs(init_from_job) WHERE init_from_job IS NOT NULL;",
	/* 3 -> 4: groups of jobs created by one spec with a "sweep", and each job's swept values. */
	"CREATE TABLE job_groups("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT, owner TEXT NOT NULL DEFAULT '', sweep TEXT NOT NULL, created_at REAL NOT NULL);"
	"ALTER TABLE jobs ADD COLUMN group_id INTEGER REFERENCES job_groups(id);"
	"ALTER TABLE jobs ADD COLUMN group_setting TEXT;"
	"CREATE INDEX jobs_group ON jobs(group_id) WHERE group_id IS NOT NULL;",
	/* 4 -> 5: the job-level progress fraction (0..1 over pretraining and every evaluation). */
	"ALTER TABLE jobs ADD COLUMN progress REAL;",
	/* 5 -> 6: uploaded datasets (storage/dataset_store.h), a row once the files are in place. */
	"CREATE TABLE datasets("
	"  owner TEXT NOT NULL, name TEXT NOT NULL, format TEXT NOT NULL,"
	"  bytes INTEGER NOT NULL, files INTEGER NOT NULL, summary TEXT NOT NULL, path TEXT NOT NULL,"
	"  created_at REAL NOT NULL, PRIMARY KEY (owner, name)) WITHOUT ROWID;",
	/* 6 -> 7: leases for several nodes sharing one queue (store.h, "leases"). */
	"ALTER TABLE jobs ADD COLUMN node TEXT;"
	"ALTER TABLE jobs ADD COLUMN lease_until REAL;"
	"ALTER TABLE jobs ADD COLUMN lease_gen INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX jobs_lease ON jobs(lease_until) WHERE state = 'running';",
	/* 7 -> 8: webhook deliveries written with the end of a job (store.h, "the outbox"). */
	"CREATE TABLE webhook_outbox("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  job_id INTEGER NOT NULL UNIQUE REFERENCES jobs(id) ON DELETE CASCADE,"
	"  created_at REAL NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','failed')),"
	"  attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL DEFAULT 0,"
	"  claimed_by TEXT, claim_until REAL, done_at REAL, last_status INTEGER, last_error TEXT);"
	"CREATE INDEX webhook_outbox_pending ON webhook_outbox(id) WHERE state = 'pending';"
	"CREATE INDEX webhook_outbox_done ON webhook_outbox(done_at) WHERE state <> 'pending';",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == SSLD_SCHEMA_VERSION, "one migration per version");

static int user_version(sqlite3 *db)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) return -1;
	int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	return v;
}

static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	if (store_begin(db, err, errlen) < 0) return STORE_EDB;
	int v = user_version(db);
	if (v < 0) {
		store_rollback(db);
		return db_fail(db, "reading user_version", err, errlen);
	}
	if (v > SSLD_SCHEMA_VERSION) {
		store_rollback(db);
		snprintf(err, errlen, "%s: schema version %d is newer than this ssld knows (%d); use a newer ssld",
		         path, v, SSLD_SCHEMA_VERSION);
		return STORE_EVERSION;
	}
	for (; v < SSLD_SCHEMA_VERSION; v++) {
		char *msg = NULL;
		if (sqlite3_exec(db, migrations[v], NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(err, errlen, "%s: migration %d -> %d failed: %s", path, v, v + 1, msg ? msg : "?");
			sqlite3_free(msg);
			store_rollback(db);
			return STORE_EDB;
		}
		char sql[64];
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
			store_rollback(db);
			return db_fail(db, "setting user_version", err, errlen);
		}
	}
	return store_commit(db, err, errlen);
}

/* ---- connections ---------------------------------------------------------------------------- */

static sqlite3 *open_conn(const char *path, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot open database: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	/* WAL: readers never block the writer. synchronous=NORMAL is durable against process crashes
	 * (SIGKILL) and consistent after a power loss, which may lose only the last commits. */
	char *msg = NULL;
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
	                 "PRAGMA mmap_size=268435456;",
	                 NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s: configuring database: %s", path, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

sqlite3 *store_acquire(Store *st, char *err, size_t errlen)
{
	if (st->pg) {
		snprintf(err, errlen, "the store is on PostgreSQL: no SQLite connection to hand out");
		return NULL;
	}
	/* A deleted or replaced database file would swallow every later commit: refuse instead. */
	if (dbident_check(&st->ident, err, errlen) < 0) {
		atomic_store(&st->healthy, 0);
		return NULL;
	}
	pthread_mutex_lock(&st->mu);
	sqlite3 *db = st->n_idle ? st->idle[--st->n_idle] : NULL;
	pthread_mutex_unlock(&st->mu);
	if (!db) db = open_conn(st->path, err, errlen);
	atomic_store(&st->healthy, db != NULL);
	return db;
}

int store_healthy(Store *st) { return st->pg ? pgstore_healthy(st->pg) : atomic_load(&st->healthy); }

void store_release(Store *st, sqlite3 *db)
{
	if (!db) return;
	/* A connection must come back clean: roll back anything a failed path left open. */
	if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_lock(&st->mu);
	if (st->n_idle < POOL_MAX) {
		st->idle[st->n_idle++] = db;
		db = NULL;
	}
	pthread_mutex_unlock(&st->mu);
	if (db) close_conn(db);
}

int store_begin(sqlite3 *db, char *err, size_t errlen)
{
	/* busy_timeout covers most waits; a few retries cover the rare SQLITE_BUSY that the busy
	 * handler gives up on (e.g. a checkpoint holding the lock a little longer). */
	for (int attempt = 0;; attempt++) {
		int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc == SQLITE_OK) return 0;
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || attempt >= 5) return db_fail(db, "BEGIN IMMEDIATE", err, errlen);
		usleep(20000);
	}
}

int store_commit(sqlite3 *db, char *err, size_t errlen)
{
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		int rc = db_fail(db, "COMMIT", err, errlen);
		store_rollback(db);
		return rc;
	}
	return 0;
}

void store_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

static void map_shm(Store *st);

int store_open(const char *path, Store **out, char *err, size_t errlen)
{
	*out = NULL;
	Store *st = calloc(1, sizeof *st);
	if (!st || !(st->path = strdup(path))) {
		free(st);
		snprintf(err, errlen, "%s: out of memory", path);
		return STORE_ENOMEM;
	}
	pthread_mutex_init(&st->mu, NULL);
	st->shm = MAP_FAILED;
	st->shm_fd = -1;
	if (store_is_pg_url(path)) {
		int rc = pgstore_open(path, &st->pg, err, errlen);
		if (rc < 0) {
			store_free(st);
			return rc;
		}
		*out = st;
		return 0;
	}
	sqlite3 *db = open_conn(path, err, errlen);
	if (!db) {
		store_free(st);
		return STORE_EDB;
	}
	int rc = migrate(db, path, err, errlen);
	if (rc < 0) {
		close_conn(db);
		store_free(st);
		return rc;
	}
	if (dbident_init(&st->ident, path, err, errlen) < 0) {
		close_conn(db);
		store_free(st);
		return STORE_EDB;
	}
	map_shm(st);
	atomic_store(&st->healthy, 1);
	store_release(st, db);
	*out = st;
	return 0;
}

void store_free(Store *st)
{
	if (!st) return;
	pgstore_free(st->pg);
	for (int i = 0; i < st->n_idle; i++) close_conn(st->idle[i]);
	if (st->shm != MAP_FAILED) munmap(st->shm, (size_t)sysconf(_SC_PAGESIZE));
	if (st->shm_fd >= 0) close(st->shm_fd);   /* after the connections: see shm_fd */
	if (st->ident.path) dbident_close(&st->ident);
	pthread_mutex_destroy(&st->mu);
	free(st->path);
	free(st);
}

const char *store_path(const Store *st) { return st->path; }

int store_schema_version(Store *st)
{
	if (st->pg) return pgstore_schema_version(st->pg);
	char err[128];
	sqlite3 *db = store_acquire(st, err, sizeof err);
	if (!db) return STORE_EDB;
	int v = user_version(db);
	store_release(st, db);
	return v < 0 ? STORE_EDB : v;
}

/* ---- change stamp --------------------------------------------------------------------------- */

/* Called by store_open with a connection open (in WAL mode, so the -shm file exists). */
static void map_shm(Store *st)
{
	char p[4200];
	snprintf(p, sizeof p, "%s-shm", st->path);
	st->shm = MAP_FAILED;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return;
	st->shm_fd = fd;   /* kept open until store_free, whatever follows (see shm_fd) */
	struct stat sb;
	long page = sysconf(_SC_PAGESIZE);
	if (fstat(fd, &sb) != 0 || sb.st_size < page) return;   /* a page past the end would be SIGBUS */
	/* The file exists while any connection is open; the Store keeps one open from store_open to
	 * store_free, so the file (and this mapping of it) outlives every stamp. */
	void *m = mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, fd, 0);
	if (m != MAP_FAILED) st->shm = m;
}

int store_change_stamp(Store *st, StoreStamp *out)
{
	if (st->pg) return pgstore_change_stamp(st->pg, out);
	if (st->shm == MAP_FAILED) return STORE_EDB;
	/* The WAL-index header: two 48-byte copies at offsets 0 and 48. A writer fills the second,
	 * then (after a barrier) the first; a reader reads the first, then the second, and trusts
	 * them only when they agree. isInit (byte 12) is 1 once the header is valid. */
	const volatile unsigned char *h = st->shm;
	StoreStamp b;
	for (int i = 0; i < 48; i++) out->hdr[i] = h[i];
	atomic_thread_fence(memory_order_acquire);
	for (int i = 0; i < 48; i++) b.hdr[i] = h[48 + i];
	if (out->hdr[12] != 1 || memcmp(out->hdr, b.hdr, sizeof b.hdr) != 0) return STORE_EDB;
	return 0;
}

int store_stamp_equal(const StoreStamp *a, const StoreStamp *b) { return memcmp(a->hdr, b->hdr, sizeof a->hdr) == 0; }

/* ---- jobs ----------------------------------------------------------------------------------- */

void store_job_clear(StoreJob *j)
{
	if (!j) return;
	free(j->name); free(j->method); free(j->owner); free(j->spec);
	free(j->stage); free(j->results); free(j->error); free(j->group_setting); free(j->node);
	memset(j, 0, sizeof *j);
}

/* The queued jobs (owner NULL: everyone's) for rows_check_limits; ctx is the Conn. */
static int count_queued(void *ctx, const char *owner, int64_t *n, char *err, size_t errlen)
{
	*n = 0;
	const char *what = "counting queued jobs";
	int rc = owner ? conn_one(ctx, rows_i64_item, n, what, err, errlen, SQL_COUNT_QUEUED_OWNER, "t", owner)
	               : conn_one(ctx, rows_i64_item, n, what, err, errlen, SQL_COUNT_QUEUED, NULL);
	return rc < 0 ? rc : 0;
}

/* check_source's row callback: the verdict on the source's row. */
typedef struct Source { const StoreNewJob *nj; int rc, got; } Source;

static int source_row(const StoreRow *r, void *ctx, char *err, size_t errlen)
{
	Source *s = ctx;
	s->got = 1;
	return s->rc = rows_check_source(s->nj, r, err, errlen);
}

/* The queue limits for n_new more jobs of nj's owner: on PostgreSQL, inserts that count the queue
 * take turns across nodes (a limit is a count, not a row lock). */
static int check_limits(Conn *c, const StoreNewJob *nj, int n_new, char *err, size_t errlen)
{
	if (nj->max_queued <= 0 && nj->max_queued_per_owner <= 0) return 0;
	if (c->pc && conn_exec(c, "locking the queue count", err, errlen, "SELECT pg_advisory_xact_lock(7270002)", NULL) < 0)
		return STORE_EDB;
	return rows_check_limits(nj, n_new, count_queued, c, err, errlen);
}

/* The init_from rule at insert (see store.h), inside the inserting transaction so that a source
 * cannot fail between the check and the insert (on PostgreSQL: FOR SHARE). */
static int check_source(Conn *c, const StoreNewJob *nj, char *err, size_t errlen)
{
	Source s = { nj, 0, 0 };
	int rc = conn_each(c, source_row, &s, "reading the init_from job", err, errlen,
	                   c->pc ? SQL_SOURCE " FOR SHARE" : SQL_SOURCE, "I", nj->init_from_job);
	if (rc < 0) return rc;
	return s.got ? s.rc : rows_check_source(nj, NULL, err, errlen);
}

/* One job row (inside the caller's transaction); group_id 0 = none. */
static int insert_job_row(Conn *c, const StoreNewJob *nj, int64_t group_id, double now, int64_t *id, char *err,
                          size_t errlen)
{
	int rc;
	if (nj->init_from_job > 0 && (rc = check_source(c, nj, err, errlen)) < 0) return rc;
	return conn_insert(c, id, "inserting a job", err, errlen, SQL_INSERT_JOB, "tttitdIIt", nj->name,
	                   nj->method ? nj->method : "", nj->spec, nj->priority, nj->owner ? nj->owner : "", now,
	                   nj->init_from_job > 0 ? nj->init_from_job : (int64_t)0, group_id,
	                   group_id > 0 ? nj->group_setting : NULL);
}

int store_job_insert(Store *st, const StoreNewJob *nj, int64_t *id, char *err, size_t errlen)
{
	Conn c;
	int rc = conn_begin(st, &c, err, errlen);
	if (rc < 0) return rc;
	if ((rc = check_limits(&c, nj, 1, err, errlen)) == 0 &&
	    (rc = insert_job_row(&c, nj, 0, store_now(), id, err, errlen)) == 0 &&
	    ssld_fault("job_insert")) {   /* ../engine/fault.h: the row is written, the commit fails */
		snprintf(err, errlen, "inserting a job: COMMIT: disk I/O error (injected by SSLD_FAULT)");
		rc = STORE_EDB;
	}
	rc = conn_end(&c, rc, err, errlen);
	return rc < 0 ? rc : 0;
}

int store_group_insert(Store *st, const char *name, const char *owner, const char *sweep, const StoreNewJob *jobs, int n,
                       int64_t *group_id, int64_t *ids, char *err, size_t errlen)
{
	if (n < 1) {
		snprintf(err, errlen, "a group needs at least one job");
		return STORE_EDB;
	}
	Conn c;
	int rc = conn_begin(st, &c, err, errlen);
	if (rc < 0) return rc;
	double now = store_now();
	if ((rc = check_limits(&c, &jobs[0], n, err, errlen)) == 0)
		rc = conn_insert(&c, group_id, "inserting a group", err, errlen, SQL_INSERT_GROUP, "tttd", name,
		                 owner ? owner : "", sweep, now);
	for (int i = 0; rc == 0 && i < n; i++) rc = insert_job_row(&c, &jobs[i], *group_id, now, &ids[i], err, errlen);
	rc = conn_end(&c, rc, err, errlen);
	return rc < 0 ? rc : 0;
}

void store_group_clear(StoreGroup *g)
{
	if (!g) return;
	free(g->name); free(g->owner); free(g->sweep);
	memset(g, 0, sizeof *g);
}

/* The group's job count per state, into g. */
static int count_group_row(const StoreRow *r, void *ctx, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	StoreGroup *g = ctx;
	rows_count_state(r, g->counts, &g->jobs);
	return 0;
}

static int group_counts(Store *st, StoreGroup *g, char *err, size_t errlen)
{
	int rc = store_each(st, count_group_row, g, "counting a group's jobs", err, errlen, SQL_GROUP_COUNTS, "I", g->id);
	return rc < 0 ? rc : 0;
}

int store_group_get(Store *st, int64_t id, StoreGroup *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	int rc = store_one(st, rows_group_item, out, "reading a group", err, errlen, SQL_GET_GROUP, "I", id);
	if (rc == 0) {
		snprintf(err, errlen, "group %lld not found", (long long)id);
		return STORE_ENOTFOUND;
	}
	if (rc > 0) rc = group_counts(st, out, err, errlen);
	if (rc < 0) store_group_clear(out);
	return rc;
}

int store_group_list(Store *st, const char *owner, int64_t before_id, int limit, StoreGroup **groups, int *n,
                     char *err, size_t errlen)
{
	void *v;
	int rc = store_list(st, &v, n, sizeof **groups, rows_group_item, "listing groups", err, errlen,
	                    owner ? SQL_LIST_GROUPS_OWNER : SQL_LIST_GROUPS, "Iit", before_id > 0 ? before_id : INT64_MAX,
	                    rows_limit(limit, 50, 1000), owner);
	*groups = v;
	for (int i = 0; rc == 0 && i < *n; i++) rc = group_counts(st, &(*groups)[i], err, errlen);
	if (rc < 0) {
		for (int i = 0; i < *n; i++) store_group_clear(&(*groups)[i]);
		free(*groups);
		*groups = NULL;
		*n = 0;
	}
	return rc;
}

static int get_job(Conn *c, int64_t id, StoreJob *out, char *err, size_t errlen)
{
	int rc = conn_one(c, rows_job_item, out, "reading a job", err, errlen, SQL_GET_JOB, "I", id);
	return rc == 0 ? rows_job_not_found(id, err, errlen) : rc < 0 ? rc : 0;
}

int store_job_get(Store *st, int64_t id, StoreJob *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	Conn c;
	if (conn_get(st, &c, err, errlen) < 0) return STORE_EDB;
	return conn_end(&c, get_job(&c, id, out, err, errlen), err, errlen);
}

int store_job_state(Store *st, int64_t id, JobState *state, char *err, size_t errlen)
{
	Conn c;
	if (conn_get(st, &c, err, errlen) < 0) return STORE_EDB;
	return conn_end(&c, conn_state(&c, id, state, "reading a job's state", err, errlen), err, errlen);
}

int store_job_claim(Store *st, StoreJob *out, char *err, size_t errlen)
{
	return store_job_claim_lease(st, NULL, 0, 0, out, err, errlen);
}

int store_job_claim_limited(Store *st, int max_running_per_owner, StoreJob *out, char *err, size_t errlen)
{
	return store_job_claim_lease(st, NULL, 0, max_running_per_owner, out, err, errlen);
}

int store_job_claim_lease(Store *st, const char *node, double lease_s, int max_running_per_owner, StoreJob *out,
                          char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (st->pg) {   /* the claim (its locks, the lease clock) is PostgreSQL's own; reading the job is not */
		int64_t id = 0;
		int rc = pgstore_job_claim_lease(st->pg, node, lease_s, max_running_per_owner, &id, err, errlen);
		if (rc == 1 && (rc = store_job_get(st, id, out, err, errlen)) == 0) rc = 1;
		return rc;
	}
	sqlite3 *db = store_acquire(st, err, errlen);
	if (!db) return STORE_EDB;
	sqlite3_stmt *s = NULL;
	int64_t id = 0;
	int rc = store_begin(db, err, errlen);
	if (rc < 0) goto out;
	/* With a per-owner running limit, an owner at the limit is skipped (its jobs keep their place)
	 * and the next owner's best job runs instead. The count uses the (owner, state) index. */
	if (max_running_per_owner > 0)
		rc = sql_query(db, &s, "claiming a job", err, errlen,
		               "SELECT id FROM jobs AS q WHERE " SQL_CLAIMABLE " AND (SELECT count(*) FROM jobs AS r "
		               "WHERE r.owner = q.owner AND r.state = 'running') < ?1 ORDER BY priority DESC, id ASC LIMIT 1",
		               "i", max_running_per_owner);
	else
		rc = sql_query(db, &s, "claiming a job", err, errlen,
		               "SELECT id FROM jobs AS q WHERE " SQL_CLAIMABLE " ORDER BY priority DESC, id ASC LIMIT 1", NULL);
	if (rc < 0) goto out;
	int r = sqlite3_step(s);
	if (r == SQLITE_DONE) {
		rc = 0;
		goto out;
	}
	if (r != SQLITE_ROW) {
		rc = db_fail(db, "claiming a job", err, errlen);
		goto out;
	}
	id = sqlite3_column_int64(s, 0);
	unprep(s);
	s = NULL;
	/* Every claim takes the next lease generation, with or without a lease: a write fenced with
	 * an older generation is refused (store_job_finish_fenced). */
	double now = store_now();
	if ((rc = sql_exec(db, "claiming a job", err, errlen,
	                   "UPDATE jobs SET state = 'running', started_at = coalesce(started_at, ?2), "
	                   "updated_at = ?2, attempts = attempts + 1, step = coalesce(checkpoint_step, 0), "
	                   "eta_s = NULL, node = ?3, lease_until = CASE WHEN ?4 > 0 THEN ?2 + ?4 END, "
	                   "lease_gen = lease_gen + 1 WHERE id = ?1", "Idtd", id, now, node, lease_s)) < 0)
		goto out;
	/* A resumed run repeats everything after its checkpoint: drop the points stored after it (by
	 * row id, so evaluation points at the checkpoint's own step go too) so none is stored twice,
	 * and rebuild the per-key "latest point" summary from what is left. */
	if ((rc = sql_exec(db, "dropping points after the checkpoint", err, errlen, SQL_DROP_AFTER_CHECKPOINT, "I", id)) < 0)
		goto out;
	if (rc > 0) {
		if ((rc = sql_exec(db, "rebuilding metric keys", err, errlen, SQL_DROP_METRIC_KEYS, "I", id)) < 0 ||
		    (rc = sql_exec(db, "rebuilding metric keys", err, errlen,
		                   "INSERT INTO metric_keys(job_id, key, last_id, last_step, last_value) "
		                   "SELECT job_id, key, max(id), step, value FROM metrics WHERE job_id = ?1 GROUP BY key", "I", id)) < 0)
			goto out;
	}
	if ((rc = store_commit(db, err, errlen)) < 0) goto out;
	if ((rc = get_job(&(Conn){ .st = st, .db = db }, id, out, err, errlen)) == 0) rc = 1;
out:
	unprep(s);
	store_rollback(db);   /* no-op after COMMIT; ends the read-only transaction of an empty queue */
	store_release(st, db);
	return rc;
}

int store_job_renew(Store *st, int64_t id, int64_t lease_gen, double lease_s, char *err, size_t errlen)
{
	if (st->pg) return pgstore_job_renew(st->pg, id, lease_gen, lease_s, err, errlen);   /* the database's clock */
	int rc = store_write(st, "renewing a lease", err, errlen,
	                     "UPDATE jobs SET lease_until = ?3 + ?4 WHERE id = ?1 AND state = 'running' AND lease_gen = ?2",
	                     "IIdd", id, lease_gen, store_now(), lease_s);
	if (rc == 0) return rows_renew_fenced(id, lease_gen, err, errlen);
	return rc < 0 ? rc : 0;
}

int store_job_finish(Store *st, int64_t id, JobState state, const char *results, const char *error,
                     char *err, size_t errlen)
{
	return store_job_finish_fenced(st, id, -1, state, results, error, err, errlen);
}

int store_job_finish_fenced(Store *st, int64_t id, int64_t lease_gen, JobState state, const char *results,
                            const char *error, char *err, size_t errlen)
{
	if (state == JOB_RUNNING || (unsigned)state >= JOB_STATE_COUNT) {
		snprintf(err, errlen, "job %lld: cannot finish into state %d", (long long)id, (int)state);
		return STORE_ESTATE;
	}
	Conn c;
	int rc = conn_begin(st, &c, err, errlen);
	if (rc < 0) return rc;
	double now = store_now();
	if (state == JOB_QUEUED)
		rc = conn_exec(&c, "finishing a job", err, errlen, SQL_FINISH_QUEUED, "IdI", id, now, lease_gen);
	else
		rc = conn_exec(&c, "finishing a job", err, errlen, SQL_FINISH, "ItdttI", id, job_state_name(state), now, results,
		               error, lease_gen);
	if (rc == 0) rc = rows_finish_refused(id, lease_gen, err, errlen);
	else if (rc > 0 && state != JOB_QUEUED) rc = outbox_add(&c, id, now, err, errlen);
	if (rc >= 0 && (state == JOB_FAILED || state == JOB_CANCELLED)) rc = fail_dependants(&c, now, err, errlen);
	rc = conn_end(&c, rc, err, errlen);
	return rc < 0 ? rc : 0;
}

int store_job_checkpoint(Store *st, int64_t id, int64_t step, char *err, size_t errlen)
{
	return store_job_checkpoint_fenced(st, id, -1, step, err, errlen);
}

int store_job_checkpoint_fenced(Store *st, int64_t id, int64_t lease_gen, int64_t step, char *err, size_t errlen)
{
	int rc = store_write(st, "recording a checkpoint", err, errlen, SQL_CHECKPOINT, "IIdI", id, step, store_now(),
	                     lease_gen);
	if (rc == 0 && lease_gen >= 0) return rows_fenced(id, lease_gen, "recording a checkpoint", err, errlen);
	return rc < 0 ? rc : 0;
}

int store_job_cancel(Store *st, int64_t id, JobState *state_out, char *err, size_t errlen)
{
	Conn c;
	JobState state = JOB_QUEUED;
	int rc = conn_begin(st, &c, err, errlen);
	if (rc < 0) return rc;
	double now = store_now();
	if ((rc = conn_state(&c, id, &state, "cancelling a job", err, errlen)) < 0) {
	} else if (state == JOB_QUEUED) {
		if ((rc = conn_exec(&c, "cancelling a job", err, errlen, SQL_CANCEL_QUEUED, "Id", id, now)) >= 0 &&
		    (rc = outbox_add(&c, id, now, err, errlen)) >= 0)
			rc = fail_dependants(&c, now, err, errlen);
	} else if (state == JOB_RUNNING) {
		rc = conn_exec(&c, "cancelling a job", err, errlen, SQL_CANCEL_RUNNING, "Id", id, now);
	} else {
		*state_out = state;
		rc = rows_cancel_refused(id, state, err, errlen);
	}
	if (rc >= 0) *state_out = state == JOB_QUEUED ? JOB_CANCELLED : JOB_RUNNING;
	rc = conn_end(&c, rc, err, errlen);
	return rc < 0 ? rc : 0;
}

/* store_recover_node and store_job_reclaim_expired: the running jobs matching `which` (SQL over
 * jobs; ?1 now, ?2 max_interruptions, ?3 node) have a requested cancel made final; the others
 * count one more interruption (after an event whose message is the SQL text `event`, when given)
 * and fail past max_interruptions (> 0), or go back to the queue. The number requeued (the first
 * cap of their ids, smallest first, in ids), or < 0 with nothing changed. */
static int requeue(Store *st, const char *which, const char *node, const char *event, int max_interruptions,
                   int64_t *ids, int cap, const char *what, char *err, size_t errlen)
{
	Conn c;
	char sql[1024], cond[768];
	double now;
	int outbox = atomic_load(&st->outbox);
	int n = 0, rc = conn_begin(st, &c, err, errlen);
	if (rc < 0) return rc;
	if ((rc = conn_now(&c, &now, what, err, errlen)) < 0) goto out;
#define REQUEUE_STEP(...) \
	do { \
		snprintf(sql, sizeof sql, __VA_ARGS__); \
		if ((rc = conn_exec(&c, what, err, errlen, sql, "dit", now, max_interruptions, node)) < 0) goto out; \
	} while (0)
	/* PostgreSQL: the rows are locked first, so a node renewing or finishing one waits for this
	 * decision (SQLite's BEGIN IMMEDIATE holds the whole database already). */
	if (c.pc) REQUEUE_STEP("SELECT id FROM jobs WHERE %s FOR UPDATE", which);
	/* A job whose cancel was requested before the crash or the lost lease is done: it must not run
	 * again. Each job ended here gets its webhook delivery row first (same condition, same transaction). */
	snprintf(cond, sizeof cond, "%s AND cancel_requested = 1", which);
	if (outbox) REQUEUE_STEP(SQL_OUTBOX_ADD_WHERE, cond);
	REQUEUE_STEP("UPDATE jobs SET state = 'cancelled', finished_at = ?1, updated_at = ?1, node = NULL, "
	             "lease_until = NULL, error = coalesce(error, 'cancelled by request') WHERE %s AND cancel_requested = 1",
	             which);
	if (event) REQUEUE_STEP("INSERT INTO events(job_id, time, level, message) SELECT id, ?1, 4, %s FROM jobs WHERE %s",
	                        event, which);
	/* Every other one was interrupted once more; one interrupted max_interruptions times fails
	 * (with an event saying so) instead of taking the daemon down again. */
	REQUEUE_STEP("UPDATE jobs SET interruptions = interruptions + 1 WHERE %s", which);
	if (max_interruptions > 0) {
		snprintf(cond, sizeof cond, "%s AND interruptions >= ?2", which);
		if (outbox) REQUEUE_STEP(SQL_OUTBOX_ADD_WHERE, cond);
		REQUEUE_STEP("INSERT INTO events(job_id, time, level, message) SELECT id, ?1, 3, " SQL_GIVING_UP
		             " FROM jobs WHERE %s AND interruptions >= ?2", which);
		REQUEUE_STEP("UPDATE jobs SET state = 'failed', finished_at = ?1, updated_at = ?1, eta_s = NULL, node = NULL, "
		             "lease_until = NULL, error = " SQL_GIVING_UP " WHERE %s AND interruptions >= ?2", which);
	}
	snprintf(sql, sizeof sql, "SELECT id FROM jobs WHERE %s ORDER BY id", which);
	if ((rc = n = conn_ids(&c, ids, cap, what, err, errlen, sql, "dit", now, max_interruptions, node)) < 0) goto out;
	REQUEUE_STEP("UPDATE jobs SET state = 'queued', updated_at = ?1, eta_s = NULL, node = NULL, lease_until = NULL "
	             "WHERE %s", which);
#undef REQUEUE_STEP
	rc = fail_dependants(&c, now, err, errlen);
out:
	rc = conn_end(&c, rc, err, errlen);
	return rc < 0 ? rc : n;
}

int store_recover(Store *st, int max_interruptions, int64_t *ids, int cap, char *err, size_t errlen)
{
	return store_recover_node(st, NULL, max_interruptions, ids, cap, err, errlen);
}

int store_recover_node(Store *st, const char *node, int max_interruptions, int64_t *ids, int cap, char *err,
                       size_t errlen)
{
	return requeue(st, SQL_RECOVERED, node, NULL, max_interruptions, ids, cap, "recovering jobs", err, errlen);
}

int store_job_reclaim_expired(Store *st, int max_interruptions, int64_t *ids, int cap, int *n, char *err,
                              size_t errlen)
{
	int rc = requeue(st, SQL_EXPIRED, NULL, st->pg ? SQL_LEASE_EXPIRED_PG : SQL_LEASE_EXPIRED_SQLITE, max_interruptions,
	                 ids, cap, "reclaiming expired leases", err, errlen);
	*n = rc < 0 ? 0 : rc > cap ? cap : rc;
	return rc < 0 ? rc : 0;
}

int store_job_list(Store *st, const StoreJobFilter *f, StoreJob **jobs, int *n, char *err, size_t errlen)
{
	char sql[1024];
	rows_job_list_sql(sql, sizeof sql, f);
	ListRows l = { .size = sizeof **jobs, .read = rows_job_brief_item, .what = "listing jobs" };
	Conn c;
	int rc = conn_get(st, &c, err, errlen);
	if (rc == 0) {
		c.uncached = 1;   /* one text per filter */
		rc = conn_each(&c, list_row, &l, "listing jobs", err, errlen, sql, "IitI",
		               f->before_id > 0 ? f->before_id : INT64_MAX, rows_limit(f->limit, 50, 1000), f->owner, f->group_id);
		rc = conn_end(&c, rc, err, errlen);
	}
	*jobs = l.v;
	*n = l.n;
	if (rc < 0) {
		for (int i = 0; i < *n; i++) store_job_clear(&(*jobs)[i]);
		free(*jobs);
		*jobs = NULL;
		*n = 0;
	}
	return rc < 0 ? rc : 0;
}

static int count_row(const StoreRow *r, void *ctx, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	rows_count_state(r, ctx, NULL);
	return 0;
}

int store_job_counts(Store *st, int64_t counts[JOB_STATE_COUNT], char *err, size_t errlen)
{
	memset(counts, 0, sizeof(int64_t) * JOB_STATE_COUNT);
	int rc = store_each(st, count_row, counts, "counting jobs", err, errlen, SQL_JOB_COUNTS, NULL);
	return rc < 0 ? rc : 0;
}

/* ---- metrics -------------------------------------------------------------------------------- */

/* One key's points (store_metrics_read): pushed into the set, counted, the last id kept. */
typedef struct KeyRead { MetricSet *ms; const char *key; int hint; int64_t n, last; } KeyRead;

static int key_row(const StoreRow *r, void *ctx, char *err, size_t errlen)
{
	KeyRead *k = ctx;
	MetricPoint p = rows_point(r, 0, 1, 2);
	if (metric_set_push(k->ms, k->key, &k->hint, p) < 0) {
		snprintf(err, errlen, "reading metrics: out of memory");
		return STORE_ENOMEM;
	}
	k->last = p.id;
	k->n++;
	return 0;
}

/* A job's metric keys (at most 256, SQL_METRIC_KEYS), copied. */
typedef struct Keys { char **v; int n; } Keys;

static int keys_row(const StoreRow *r, void *ctx, char *err, size_t errlen)
{
	Keys *k = ctx;
	const char *t = r->ops->text(r->res, r->row, 0);
	if (!t || k->n >= 256) return 0;
	if ((k->v[k->n] = strdup(t)) != NULL) {
		k->n++;
		return 0;
	}
	snprintf(err, errlen, "reading metric keys: out of memory");
	return STORE_ENOMEM;
}

int store_metrics_read(Store *st, int64_t job_id, int64_t after, const char *const *keys, int nkeys,
                       size_t max_rows, MetricSet *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->cursor = after;
	if (nkeys > 64) {
		snprintf(err, errlen, "too many metric keys (%d, at most 64)", nkeys);
		return STORE_ELIMIT;
	}
	int64_t limit = max_rows > 0 && max_rows < (size_t)INT64_MAX ? (int64_t)max_rows : INT64_MAX;
	Keys all = { NULL, 0 };
	Conn c;
	int rc = conn_get(st, &c, err, errlen);
	if (rc < 0) return rc;
	/* One read transaction, so the job's state, its keys and the points of every key are one
	 * consistent snapshot. */
	c.tx = CONN_READ;
	if ((rc = conn_exec(&c, "reading metrics", err, errlen,
	                    c.pc ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN", NULL)) < 0 ||
	    (rc = conn_state(&c, job_id, &out->job_state, "reading a job's state", err, errlen)) < 0)
		goto out;
	if (!keys || nkeys == 0) {   /* every key the job has */
		if (!(all.v = calloc(256, sizeof *all.v))) {
			snprintf(err, errlen, "reading metric keys: out of memory");
			rc = STORE_ENOMEM;
			goto out;
		}
		if ((rc = conn_each(&c, keys_row, &all, "reading metric keys", err, errlen, SQL_METRIC_KEYS, "I", job_id)) < 0)
			goto out;
		keys = (const char *const *)all.v;
		nkeys = all.n;
	}
	/* Each key's points from the covering index in id order: an index-only scan, no sort. */
	int64_t cut = INT64_MAX;
	for (int i = 0; i < nkeys; i++) {
		KeyRead k = { out, keys[i], -1, 0, 0 };
		if ((rc = conn_each(&c, key_row, &k, "reading metrics", err, errlen, SQL_READ_KEY, "ItII", job_id, keys[i],
		                    after, limit)) < 0)
			goto out;
		if (k.n >= limit && k.last < cut) cut = k.last;
	}
	metric_set_finish(out, cut);
	rc = 0;
out:
	rc = conn_end(&c, rc, err, errlen);
	for (int i = 0; i < all.n; i++) free(all.v[i]);
	free(all.v);
	if (rc < 0) metric_set_clear(out);
	return rc;
}

typedef struct Latest { MetricSet *ms; int hint; } Latest;

static int latest_row(const StoreRow *r, void *ctx, char *err, size_t errlen)
{
	Latest *l = ctx;
	if (rows_latest(r, l->ms, &l->hint) == 0) return 0;
	snprintf(err, errlen, "reading latest metrics: out of memory");
	return STORE_ENOMEM;
}

int store_metrics_latest(Store *st, int64_t job_id, MetricSet *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	Latest l = { out, -1 };
	int rc = store_each(st, latest_row, &l, "reading latest metrics", err, errlen, SQL_LATEST, "I", job_id);
	if (rc < 0) metric_set_clear(out);
	return rc < 0 ? rc : 0;
}

/* ---- events --------------------------------------------------------------------------------- */

int store_events_read(Store *st, int64_t job_id, int64_t after, int limit, StoreEvent **ev, int *n,
                      char *err, size_t errlen)
{
	limit = rows_limit(limit, 1, 10000);
	void *v;
	int rc = store_list(st, &v, n, sizeof **ev, rows_event_item, "reading events", err, errlen, SQL_EVENTS, "IIi", job_id,
	                  after, limit);
	*ev = v;
	if (rc < 0) {
		store_events_free(*ev, *n);
		*ev = NULL;
		*n = 0;
	}
	return rc;
}

void store_events_free(StoreEvent *ev, int n)
{
	for (int i = 0; ev && i < n; i++) free(ev[i].message);
	free(ev);
}

int store_event_add(Store *st, int64_t job_id, int level, const char *message, char *err, size_t errlen)
{
	int rc = store_write(st, "adding an event", err, errlen, SQL_EVENT_ADD, "Idit", job_id, store_now(), level, message);
	return rc < 0 ? rc : 0;
}

/* ---- webhook deliveries (the outbox) ------------------------------------------------------- */

void store_set_outbox(Store *st, int on) { atomic_store(&st->outbox, on ? 1 : 0); }

/* A row of SQL_DELIVERY_COLS into a StoreDelivery; wait_s holds next_at until the caller turns it
 * into a wait. */
static int delivery_item(const StoreRow *r, void *item)
{
	StoreDelivery *d = item;
	const char *state = r->ops->text(r->res, r->row, 2), *by = r->ops->text(r->res, r->row, 6),
	           *why = r->ops->text(r->res, r->row, 7);
	memset(d, 0, sizeof *d);
	d->id = r->ops->i64(r->res, r->row, 0);
	d->job_id = r->ops->i64(r->res, r->row, 1);
	d->state = !state ? DELIVERY_FAILED : strcmp(state, "pending") == 0 ? DELIVERY_PENDING
	         : strcmp(state, "delivered") == 0 ? DELIVERY_DELIVERED : DELIVERY_FAILED;
	d->attempts = (int)r->ops->i64(r->res, r->row, 3);
	d->wait_s = r->ops->dbl(r->res, r->row, 4);
	d->last_status = (long)r->ops->i64(r->res, r->row, 5);
	snprintf(d->claimed_by, sizeof d->claimed_by, "%s", by ? by : "");
	snprintf(d->last_error, sizeof d->last_error, "%s", why ? why : "");
	return 0;
}

static const char *const delivery_state_names[] = { "pending", "delivered", "failed" };

int store_delivery_claim(Store *st, const char *node, double claim_s, StoreDelivery *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	const char *what = "claiming a webhook delivery";
	Conn c;
	double now;
	int64_t id = 0;
	int rc = conn_begin(st, &c, err, errlen);
	if (rc < 0) return rc;
	node = node ? node : "";
	/* PostgreSQL: a row another node is claiming now is passed over, not waited for (SQLite's
	 * BEGIN IMMEDIATE holds the whole database already). */
	if ((rc = conn_now(&c, &now, what, err, errlen)) < 0 ||
	    (rc = conn_ids(&c, &id, 1, what, err, errlen,
	                   c.pc ? SQL_DELIVERY_NEXT " FOR UPDATE SKIP LOCKED" : SQL_DELIVERY_NEXT, "dt", now, node)) <= 0 ||
	    (rc = conn_exec(&c, what, err, errlen, SQL_DELIVERY_TAKE, "dtdI", now, node, claim_s, id)) < 0 ||
	    (rc = conn_one(&c, delivery_item, out, what, err, errlen, SQL_DELIVERY_GET, "I", id)) < 0)
		goto out;
	out->wait_s = out->wait_s > now ? out->wait_s - now : 0;
	rc = 1;
out:
	rc = conn_end(&c, rc, err, errlen);
	if (rc <= 0) memset(out, 0, sizeof *out);
	return rc;
}

int store_delivery_record(Store *st, int64_t id, const char *node, DeliveryState outcome, long status,
                          const char *error, double retry_s, double claim_s, char *err, size_t errlen)
{
	const char *what = "recording a webhook attempt";
	if ((unsigned)outcome > DELIVERY_FAILED) {
		snprintf(err, errlen, "%s: unknown outcome %d", what, (int)outcome);
		return STORE_ESTATE;
	}
	Conn c;
	double now;
	int rc = conn_begin(st, &c, err, errlen);
	if (rc < 0) return rc;
	if ((rc = conn_now(&c, &now, what, err, errlen)) == 0)
		rc = conn_exec(&c, what, err, errlen, SQL_DELIVERY_RECORD, "Itddtitd", id, node ? node : "", now,
		               outcome == DELIVERY_PENDING ? retry_s : 0.0, delivery_state_names[outcome], (int)status, error,
		               claim_s);
	if (rc == 0) {
		snprintf(err, errlen, "webhook delivery %lld is no longer pending under node %s's claim", (long long)id,
		         node ? node : "");
		rc = STORE_FENCED;
	}
	rc = conn_end(&c, rc, err, errlen);
	return rc < 0 ? rc : 0;
}

int store_delivery_release(Store *st, const char *node, char *err, size_t errlen)
{
	return store_write(st, "releasing webhook claims", err, errlen, SQL_DELIVERY_RELEASE, "t", node);
}

int store_delivery_prune(Store *st, double keep_s, int keep_rows, char *err, size_t errlen)
{
	return store_write(st, "pruning webhook deliveries", err, errlen, SQL_DELIVERY_PRUNE, "di", store_now() - keep_s,
	                   keep_rows < 0 ? 0 : keep_rows);
}

int store_delivery_get(Store *st, int64_t job_id, StoreDelivery *out, char *err, size_t errlen)
{
	int rc = store_one(st, delivery_item, out, "reading a webhook delivery", err, errlen, SQL_DELIVERY_OF_JOB, "I",
	                   job_id);
	if (rc > 0) out->wait_s = 0;
	else memset(out, 0, sizeof *out);
	return rc;
}

/* ---- artifacts ------------------------------------------------------------------------------ */

void store_artifact_clear(StoreArtifact *a)
{
	if (!a) return;
	free(a->name);
	free(a->path);
	memset(a, 0, sizeof *a);
}

void store_artifacts_free(StoreArtifact *a, int n)
{
	for (int i = 0; a && i < n; i++) store_artifact_clear(&a[i]);
	free(a);
}

int store_artifact_put(Store *st, int64_t job_id, const char *name, const char *path, char *err, size_t errlen)
{
	char hex[65];
	int64_t size = 0;
	int rc = sha256_file(path, hex, &size, err, errlen);
	if (rc < 0) return STORE_ENOTFOUND;
	rc = store_write(st, "recording an artifact", err, errlen, SQL_ARTIFACT_PUT, "IttItd", job_id, name, path, size, hex,
	                 store_now());
	return rc < 0 ? rc : 0;
}

int store_artifact_list(Store *st, int64_t job_id, StoreArtifact **a, int *n, char *err, size_t errlen)
{
	void *v;
	int rc = store_list(st, &v, n, sizeof **a, rows_artifact_item, "listing artifacts", err, errlen, SQL_ARTIFACTS, "I",
	                    job_id);
	*a = v;
	if (rc < 0) {
		store_artifacts_free(*a, *n);
		*a = NULL;
		*n = 0;
	}
	return rc;
}

int store_artifact_get(Store *st, int64_t job_id, const char *name, StoreArtifact *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof *a);
	int rc = store_one(st, rows_artifact_item, a, "reading an artifact", err, errlen, SQL_ARTIFACT, "It", job_id, name);
	if (rc == 0) {
		snprintf(err, errlen, "job %lld has no artifact '%s'", (long long)job_id, name);
		return STORE_ENOTFOUND;
	}
	return rc < 0 ? rc : 0;
}

/* ---- tokens --------------------------------------------------------------------------------- */

static int valid_hex64(const char *h)
{
	return h && strlen(h) == 64 && strspn(h, "0123456789abcdef") == 64;
}

int store_token_add(Store *st, const char *name, const char *sha256hex, int admin, char *err, size_t errlen)
{
	if (!name || !name[0] || strlen(name) >= STORE_TOKEN_NAME_MAX || !valid_hex64(sha256hex)) {
		snprintf(err, errlen, "token '%s': a name of 1..%d characters and a 64-digit lowercase SHA-256 are needed",
		         name ? name : "", STORE_TOKEN_NAME_MAX - 1);
		return STORE_ESTATE;
	}
	int rc = store_write(st, "adding a token", err, errlen, SQL_TOKEN_ADD, "ttid", name, sha256hex, admin ? 1 : 0,
	                     store_now());
	if (rc == STORE_EEXIST) return rows_token_exists(name, err, errlen);
	return rc < 0 ? rc : 0;
}

int store_token_revoke(Store *st, const char *name, char *err, size_t errlen)
{
	int rc = store_write(st, "revoking a token", err, errlen, SQL_TOKEN_REVOKE, "t", name);
	if (rc == 0) {
		snprintf(err, errlen, "no token named '%s'", name);
		return STORE_ENOTFOUND;
	}
	return rc < 0 ? rc : 0;
}

int store_token_list(Store *st, StoreToken **out, int *n, char *err, size_t errlen)
{
	void *v;
	int rc = store_list(st, &v, n, sizeof **out, rows_token_item, "listing tokens", err, errlen, SQL_TOKENS, NULL);
	*out = v;
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int store_token_count(Store *st, int64_t *n, char *err, size_t errlen)
{
	*n = 0;
	int rc = store_one(st, rows_i64_item, n, "counting tokens", err, errlen, SQL_TOKEN_COUNT, NULL);
	return rc < 0 ? rc : 0;
}

int store_token_find(Store *st, const char *sha256hex, StoreToken *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (!valid_hex64(sha256hex)) return 0;
	return store_one(st, rows_token_item, out, "looking up a token", err, errlen, SQL_TOKEN_FIND, "t", sha256hex);
}
