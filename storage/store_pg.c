/* store_pg.c - the PostgreSQL backend of store.h (see store_pg.h): several ssld nodes sharing one
 * queue and one history.
 *
 * The same rules as the SQLite backend, in PostgreSQL's terms: each write is one transaction on a
 * pooled libpq connection; the claim picks its row with FOR UPDATE SKIP LOCKED so nodes claiming
 * at once never take the same job (and, when a per-owner running limit is set, claims serialise on
 * a transaction-level advisory lock so the limit holds across nodes); the change stamp is a counter
 * row that a statement trigger bumps in the transaction of every change. Parameters go as text
 * ($1, $2, ...; store_sql.h's ?N become $N), formatted here; SQL errors become messages naming the
 * operation, once, here. Deliberately not here: the rules' documentation (store.h), buffering
 * metric points (batch.c), and what both backends share: the steps (store.c, dataset_store.c,
 * which run here through pgstore_exec and its neighbours), rows and checks (store_rows.c), the
 * SQL (store_sql.h).
 */
#include "store_pg.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "store_rows.h"
#include "store_sql.h"

#define POOL_MAX 16
#define MAX_PARAMS 16

struct PgStore {
	char *url;
	pthread_mutex_t mu;
	PGconn *idle[POOL_MAX];
	int n_idle;
	atomic_int healthy;
};

int store_is_pg_url(const char *path)
{
	return path && (strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0);
}

/* ---- connections ---------------------------------------------------------------------------- */

static void quiet_notice(void *arg, const char *message) { (void)arg; (void)message; }

/* libpq messages end in a newline; err gets "PostgreSQL <what>: <message>". */
static void set_err(char *err, size_t errlen, const char *what, const char *msg)
{
	snprintf(err, errlen, "PostgreSQL %s: %s", what, msg && *msg ? msg : "unknown error");
	size_t n = strlen(err);
	while (n && (err[n - 1] == '\n' || err[n - 1] == ' ')) err[--n] = 0;
}

static PGconn *connect_url(const char *url, char *err, size_t errlen)
{
	/* Defaults first: a value in the URL overrides them. A node stopped inside a transaction (paused,
	 * swapped out, frozen by a debugger) would hold its row locks for ever, and every other node's
	 * claim or reclaim of those jobs would wait on it: the server ends such a session after 60 s.
	 * ssld's transactions are a few statements sent back to back, never waiting on anything else. */
	const char *keys[] = { "connect_timeout", "application_name", "options", "dbname", NULL };
	const char *vals[] = { "10", "ssld", "-c idle_in_transaction_session_timeout=60s", url, NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (!c || PQstatus(c) != CONNECTION_OK) {
		set_err(err, errlen, "connecting", c ? PQerrorMessage(c) : "out of memory");
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, quiet_notice, NULL);
	return c;
}

static PGconn *acquire(PgStore *pg, char *err, size_t errlen)
{
	pthread_mutex_lock(&pg->mu);
	PGconn *c = pg->n_idle ? pg->idle[--pg->n_idle] : NULL;
	pthread_mutex_unlock(&pg->mu);
	if (c) return c;
	c = connect_url(pg->url, err, errlen);
	atomic_store(&pg->healthy, c != NULL);
	return c;
}

/* A broken connection (the server restarted, the network went away) is dropped, and so are the
 * idle ones, which broke the same way; the next call connects again. */
static void release(PgStore *pg, PGconn *c)
{
	if (!c) return;
	if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) PQclear(PQexec(c, "ROLLBACK"));
	int ok = PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE;
	atomic_store(&pg->healthy, ok);
	PGconn *drop[POOL_MAX + 1];
	int nd = 0;
	pthread_mutex_lock(&pg->mu);
	if (ok && pg->n_idle < POOL_MAX) {
		pg->idle[pg->n_idle++] = c;
		c = NULL;
	} else if (!ok) {
		while (pg->n_idle) drop[nd++] = pg->idle[--pg->n_idle];
	}
	pthread_mutex_unlock(&pg->mu);
	for (int i = 0; i < nd; i++) PQfinish(drop[i]);
	PQfinish(c);
}

int pgstore_healthy(PgStore *pg) { return atomic_load(&pg->healthy); }
PGconn *pgstore_acquire(PgStore *pg, char *err, size_t errlen) { return acquire(pg, err, errlen); }
void pgstore_release(PgStore *pg, PGconn *c) { release(pg, c); }

/* ---- statements ----------------------------------------------------------------------------- */

/* SQLSTATE of the last failed statement on this thread ("23505" = unique violation). */
static _Thread_local char last_state[6];

/* sql with store_sql.h's ?N placeholders as PostgreSQL's $N (outside quoted literals): sql itself
 * when it has none, else a copy in buf, or in *heap (malloc'd) when it does not fit; NULL out of
 * memory. */
static const char *dollars(const char *sql, char *buf, size_t cap, char **heap)
{
	*heap = NULL;
	if (!strchr(sql, '?')) return sql;
	size_t n = strlen(sql) + 1;
	char *d = n <= cap ? buf : (*heap = malloc(n));
	if (!d) return NULL;
	int quoted = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = sql[i];
		if (ch == '\'') quoted = !quoted;
		else if (ch == '?' && !quoted && sql[i + 1] >= '0' && sql[i + 1] <= '9') ch = '$';
		d[i] = ch;
	}
	return d;
}

/* Runs sql with parameters described by fmt, one letter each as in store.c: 'i' int, 'I' int64_t,
 * 'd' double (not finite = NULL), 't' text (NULL = NULL). The result (rows or none), or NULL
 * with err naming `what`. */
static PGresult *vq(PGconn *c, const char *what, char *err, size_t errlen, const char *sql, const char *fmt, va_list ap)
{
	char buf[MAX_PARAMS][32];
	const char *vals[MAX_PARAMS];
	Oid types[MAX_PARAMS];   /* given, so a statement may leave a parameter unused */
	int n = fmt ? (int)strlen(fmt) : 0;
	assert(n <= MAX_PARAMS);
	for (int i = 0; i < n; i++) {
		vals[i] = buf[i];
		switch (fmt[i]) {
		case 'i': types[i] = 23; snprintf(buf[i], sizeof buf[i], "%d", va_arg(ap, int)); break;            /* int4 */
		case 'I': types[i] = 20; snprintf(buf[i], sizeof buf[i], "%lld", (long long)va_arg(ap, int64_t)); break;   /* int8 */
		case 'd': {
			types[i] = 701;   /* float8 */
			double d = va_arg(ap, double);
			if (isfinite(d)) snprintf(buf[i], sizeof buf[i], "%.17g", d);
			else vals[i] = NULL;
			break;
		}
		case 't': types[i] = 25; vals[i] = va_arg(ap, const char *); break;   /* text */
		default: assert(!"vq: unknown parameter letter");
		}
	}
	char text[2048], *heap;
	const char *stmt = dollars(sql, text, sizeof text, &heap);
	if (!stmt) {
		last_state[0] = 0;
		set_err(err, errlen, what, "out of memory");
		return NULL;
	}
	PGresult *r = PQexecParams(c, stmt, n, n ? types : NULL, vals, NULL, NULL, 0);
	free(heap);
	ExecStatusType s = PQresultStatus(r);
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) return r;
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	snprintf(last_state, sizeof last_state, "%s", st ? st : "");
	set_err(err, errlen, what, r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(c));
	PQclear(r);
	return NULL;
}

static PGresult *q(PGconn *c, const char *what, char *err, size_t errlen, const char *sql, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	PGresult *r = vq(c, what, err, errlen, sql, fmt, ap);
	va_end(ap);
	return r;
}

/* A statement without rows: rows changed (>= 0), or STORE_EDB. */
int pgstore_exec(PGconn *c, const char *what, char *err, size_t errlen, const char *sql, const char *fmt, va_list ap)
{
	PGresult *r = vq(c, what, err, errlen, sql, fmt, ap);
	if (!r) return STORE_EDB;
	int n = atoi(PQcmdTuples(r));
	PQclear(r);
	return n;
}

static int x(PGconn *c, const char *what, char *err, size_t errlen, const char *sql, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = pgstore_exec(c, what, err, errlen, sql, fmt, ap);
	va_end(ap);
	return n;
}

static int begin(PGconn *c, char *err, size_t errlen) { return x(c, "BEGIN", err, errlen, "BEGIN", NULL) < 0 ? STORE_EDB : 0; }
static int commit(PGconn *c, char *err, size_t errlen) { return x(c, "COMMIT", err, errlen, "COMMIT", NULL) < 0 ? STORE_EDB : 0; }
static void rollback(PGconn *c)
{
	if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) PQclear(PQexec(c, "ROLLBACK"));
}
int pgstore_begin(PGconn *c, char *err, size_t errlen) { return begin(c, err, errlen); }
int pgstore_commit(PGconn *c, char *err, size_t errlen) { return commit(c, err, errlen); }
void pgstore_rollback(PGconn *c) { rollback(c); }

int pgstore_write(PgStore *pg, const char *what, char *err, size_t errlen, const char *sql, const char *fmt, va_list ap)
{
	PGconn *c = acquire(pg, err, errlen);
	if (!c) return STORE_EDB;
	int n = pgstore_exec(c, what, err, errlen, sql, fmt, ap);   /* autocommit: one transaction */
	release(pg, c);
	return n < 0 && strcmp(last_state, "23505") == 0 ? STORE_EEXIST : n;   /* unique_violation */
}

static int write1(PgStore *pg, const char *what, char *err, size_t errlen, const char *sql, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = pgstore_write(pg, what, err, errlen, sql, fmt, ap);
	va_end(ap);
	return n;
}

int pgstore_ids(PGconn *c, int64_t *ids, int cap, const char *what, char *err, size_t errlen, const char *sql,
                const char *fmt, va_list ap)
{
	PGresult *r = vq(c, what, err, errlen, sql, fmt, ap);
	if (!r) return STORE_EDB;
	int m = PQntuples(r);
	for (int i = 0; i < m && i < cap; i++) ids[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	PQclear(r);
	return m;
}

/* Reading a PGresult, also as store_rows.h's column getters (ROW(r, i): its row i). */
static int64_t gi(const void *r, int row, int col) { return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10); }
static double gd(const void *r, int row, int col) { return PQgetisnull(r, row, col) ? 0 : strtod(PQgetvalue(r, row, col), NULL); }
static int isnull(const void *r, int row, int col) { return PQgetisnull(r, row, col); }
static const char *gt(const void *r, int row, int col) { return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col); }
static const StoreRowOps pg_row_ops = { gi, gd, gt, isnull };
#define ROW(r, i) (&(StoreRow){ &pg_row_ops, (r), (i) })

int pgstore_each(PGconn *c, rows_each_fn fn, void *ctx, const char *what, char *err, size_t errlen, const char *sql,
                 const char *fmt, va_list ap)
{
	PGresult *r = vq(c, what, err, errlen, sql, fmt, ap);
	if (!r) return STORE_EDB;
	int m = PQntuples(r), rc = 0;
	for (int i = 0; i < m && rc == 0; i++) rc = fn(ROW(r, i), ctx, err, errlen);
	PQclear(r);
	return rc < 0 ? rc : m;
}

int pgstore_insert(PGconn *c, int64_t *id, const char *what, char *err, size_t errlen, const char *sql, const char *fmt,
                   va_list ap)
{
	char text[2048];
	if ((size_t)snprintf(text, sizeof text, "%s RETURNING id", sql) >= sizeof text) {
		set_err(err, errlen, what, "statement too long");
		return STORE_EDB;
	}
	PGresult *r = vq(c, what, err, errlen, text, fmt, ap);
	if (!r) return STORE_EDB;
	*id = gi(r, 0, 0);
	PQclear(r);
	return 0;
}

/* ---- schema --------------------------------------------------------------------------------- */

/* pg_migrations[k] takes the schema from pg version k to k + 1. Append only. The first creates
 * the schema of SQLite's SSLD_SCHEMA_VERSION 7 at once; ssld_meta holds the version and the
 * change counter. */
static const char *const pg_migrations[] = {
	"CREATE TABLE ssld_meta(key TEXT PRIMARY KEY, value BIGINT NOT NULL);"
	"INSERT INTO ssld_meta VALUES ('schema_version', 0), ('changes', 0);"
	"CREATE TABLE job_groups("
	"  id BIGSERIAL PRIMARY KEY, name TEXT, owner TEXT NOT NULL DEFAULT '', sweep TEXT NOT NULL,"
	"  created_at DOUBLE PRECISION NOT NULL);"
	"CREATE TABLE jobs("
	"  id BIGSERIAL PRIMARY KEY,"
	"  name TEXT, method TEXT NOT NULL DEFAULT '', spec TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed','cancelled')),"
	"  priority INTEGER NOT NULL DEFAULT 0, owner TEXT NOT NULL DEFAULT '',"
	"  created_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION,"
	"  updated_at DOUBLE PRECISION NOT NULL,"
	"  step BIGINT NOT NULL DEFAULT 0, total BIGINT NOT NULL DEFAULT 0, stage TEXT, eta_s DOUBLE PRECISION,"
	"  checkpoint_step BIGINT, checkpoint_metric_id BIGINT NOT NULL DEFAULT 0,"
	"  attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0, results TEXT, error TEXT,"
	"  init_from_job BIGINT, interruptions INTEGER NOT NULL DEFAULT 0,"
	"  group_id BIGINT REFERENCES job_groups(id), group_setting TEXT, progress DOUBLE PRECISION,"
	"  node TEXT, lease_until DOUBLE PRECISION, lease_gen BIGINT NOT NULL DEFAULT 0);"
	"CREATE INDEX jobs_queue ON jobs(state, priority DESC, id);"
	"CREATE INDEX jobs_owner ON jobs(owner, state);"
	"CREATE INDEX jobs_init_from ON jobs(init_from_job) WHERE init_from_job IS NOT NULL;"
	"CREATE INDEX jobs_group ON jobs(group_id) WHERE group_id IS NOT NULL;"
	"CREATE INDEX jobs_lease ON jobs(lease_until) WHERE state = 'running';"
	"CREATE TABLE metrics("
	"  id BIGSERIAL PRIMARY KEY, job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	"  step BIGINT NOT NULL, key TEXT NOT NULL, value DOUBLE PRECISION, time DOUBLE PRECISION NOT NULL);"
	"CREATE INDEX metrics_job ON metrics(job_id, id);"
	"CREATE INDEX metrics_job_key ON metrics(job_id, key, id) INCLUDE (step, value);"
	"CREATE TABLE metric_keys("
	"  job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, key TEXT NOT NULL,"
	"  last_id BIGINT NOT NULL, last_step BIGINT NOT NULL, last_value DOUBLE PRECISION, PRIMARY KEY (job_id, key));"
	/* The tokens of committed metric batches (a retried batch is not written twice). */
	"CREATE TABLE metric_batches(token TEXT PRIMARY KEY, time DOUBLE PRECISION NOT NULL);"
	"CREATE INDEX metric_batches_time ON metric_batches(time);"
	"CREATE TABLE events("
	"  id BIGSERIAL PRIMARY KEY, job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	"  time DOUBLE PRECISION NOT NULL, level INTEGER NOT NULL, message TEXT NOT NULL);"
	"CREATE INDEX events_job ON events(job_id, id);"
	"CREATE TABLE artifacts("
	"  job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL, path TEXT NOT NULL, size BIGINT NOT NULL, sha256 TEXT NOT NULL,"
	"  created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (job_id, name));"
	"CREATE TABLE tokens("
	"  id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL UNIQUE,"
	"  admin INTEGER NOT NULL DEFAULT 0, created_at DOUBLE PRECISION NOT NULL);"
	"CREATE TABLE datasets("
	"  owner TEXT NOT NULL, name TEXT NOT NULL, format TEXT NOT NULL,"
	"  bytes BIGINT NOT NULL, files BIGINT NOT NULL, summary TEXT NOT NULL, path TEXT NOT NULL,"
	"  created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (owner, name));"
	/* The change stamp: one counter bumped by every statement that changes a table. */
	"CREATE FUNCTION ssld_bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
	"  UPDATE ssld_meta SET value = value + 1 WHERE key = 'changes'; RETURN NULL; END $$;"
	"CREATE TRIGGER jobs_bump AFTER INSERT OR UPDATE OR DELETE ON jobs FOR EACH STATEMENT EXECUTE FUNCTION ssld_bump();"
	"CREATE TRIGGER groups_bump AFTER INSERT OR UPDATE OR DELETE ON job_groups FOR EACH STATEMENT EXECUTE FUNCTION ssld_bump();"
	"CREATE TRIGGER metrics_bump AFTER INSERT OR UPDATE OR DELETE ON metrics FOR EACH STATEMENT EXECUTE FUNCTION ssld_bump();"
	"CREATE TRIGGER events_bump AFTER INSERT OR UPDATE OR DELETE ON events FOR EACH STATEMENT EXECUTE FUNCTION ssld_bump();"
	"CREATE TRIGGER artifacts_bump AFTER INSERT OR UPDATE OR DELETE ON artifacts FOR EACH STATEMENT EXECUTE FUNCTION ssld_bump();"
	"CREATE TRIGGER tokens_bump AFTER INSERT OR UPDATE OR DELETE ON tokens FOR EACH STATEMENT EXECUTE FUNCTION ssld_bump();"
	"CREATE TRIGGER datasets_bump AFTER INSERT OR UPDATE OR DELETE ON datasets FOR EACH STATEMENT EXECUTE FUNCTION ssld_bump();",
	/* 7 -> 8: webhook deliveries written with the end of a job (store.h, "the outbox"). No change
	 * stamp trigger: no cached answer shows them. */
	"CREATE TABLE webhook_outbox("
	"  id BIGSERIAL PRIMARY KEY, job_id BIGINT NOT NULL UNIQUE REFERENCES jobs(id) ON DELETE CASCADE,"
	"  created_at DOUBLE PRECISION NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','failed')),"
	"  attempts INTEGER NOT NULL DEFAULT 0, next_at DOUBLE PRECISION NOT NULL DEFAULT 0,"
	"  claimed_by TEXT, claim_until DOUBLE PRECISION, done_at DOUBLE PRECISION, last_status INTEGER, last_error TEXT);"
	"CREATE INDEX webhook_outbox_pending ON webhook_outbox(id) WHERE state = 'pending';"
	"CREATE INDEX webhook_outbox_done ON webhook_outbox(done_at) WHERE state <> 'pending';",
};
#define PG_SCHEMA_COUNT ((int)(sizeof pg_migrations / sizeof pg_migrations[0]))
/* The schema version reported (store_schema_version) once pg_migrations[k] ran: SQLite's
 * numbering, so both backends name a schema the same way. */
static const int pg_schema_version[] = { 7, 8 };
_Static_assert(sizeof pg_schema_version / sizeof pg_schema_version[0] == sizeof pg_migrations / sizeof pg_migrations[0],
               "one version per migration");

static int pg_version_of(int k) { return k == 0 ? 0 : pg_schema_version[k - 1]; }

static int migrate(PGconn *c, char *err, size_t errlen)
{
	int rc = begin(c, err, errlen);
	if (rc < 0) return rc;
	/* Nodes starting together: one migrates, the others wait and find it done. */
	PGresult *r = q(c, "locking the schema", err, errlen, "SELECT pg_advisory_xact_lock(7270001)", NULL);
	if (!r) goto fail;
	PQclear(r);
	r = q(c, "reading the schema version", err, errlen,
	      "SELECT CASE WHEN to_regclass('ssld_meta') IS NULL THEN -1 ELSE 0 END", NULL);
	if (!r) goto fail;
	int k = 0;
	if (gi(r, 0, 0) == 0) {
		PQclear(r);
		r = q(c, "reading the schema version", err, errlen, "SELECT value FROM ssld_meta WHERE key = 'schema_version'", NULL);
		if (!r) goto fail;
		int v = PQntuples(r) ? (int)gi(r, 0, 0) : 0;
		for (k = 0; k <= PG_SCHEMA_COUNT && pg_version_of(k) != v; k++) {}
		if (k > PG_SCHEMA_COUNT) {
			PQclear(r);
			snprintf(err, errlen, "PostgreSQL database: schema version %d is newer than this ssld knows (%d); use a newer ssld",
			         v, SSLD_SCHEMA_VERSION);
			rollback(c);
			return STORE_EVERSION;
		}
	}
	PQclear(r);
	for (; k < PG_SCHEMA_COUNT; k++) {
		r = PQexec(c, pg_migrations[k]);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			char what[64];
			snprintf(what, sizeof what, "migration to schema %d", pg_schema_version[k]);
			set_err(err, errlen, what, PQresultErrorMessage(r));
			PQclear(r);
			goto fail;
		}
		PQclear(r);
		if (x(c, "recording the schema version", err, errlen,
		      "UPDATE ssld_meta SET value = $1 WHERE key = 'schema_version'", "i", pg_schema_version[k]) < 0)
			goto fail;
	}
	return commit(c, err, errlen);
fail:
	rollback(c);
	return STORE_EDB;
}

int pgstore_open(const char *url, PgStore **out, char *err, size_t errlen)
{
	*out = NULL;
	PgStore *pg = calloc(1, sizeof *pg);
	if (!pg || !(pg->url = strdup(url))) {
		free(pg);
		snprintf(err, errlen, "PostgreSQL: out of memory");
		return STORE_ENOMEM;
	}
	pthread_mutex_init(&pg->mu, NULL);
	PGconn *c = connect_url(url, err, errlen);
	if (!c) {
		pgstore_free(pg);
		return STORE_EDB;
	}
	int rc = migrate(c, err, errlen);
	if (rc < 0) {
		PQfinish(c);
		pgstore_free(pg);
		return rc;
	}
	atomic_store(&pg->healthy, 1);
	release(pg, c);
	*out = pg;
	return 0;
}

void pgstore_free(PgStore *pg)
{
	if (!pg) return;
	for (int i = 0; i < pg->n_idle; i++) PQfinish(pg->idle[i]);
	pthread_mutex_destroy(&pg->mu);
	free(pg->url);
	free(pg);
}

int pgstore_schema_version(PgStore *pg)
{
	char err[256];
	PGconn *c = acquire(pg, err, sizeof err);
	if (!c) return STORE_EDB;
	PGresult *r = q(c, "reading the schema version", err, sizeof err,
	                "SELECT value FROM ssld_meta WHERE key = 'schema_version'", NULL);
	int v = r && PQntuples(r) ? (int)gi(r, 0, 0) : STORE_EDB;
	PQclear(r);
	release(pg, c);
	return v;
}

int pgstore_change_stamp(PgStore *pg, StoreStamp *out)
{
	char err[256];
	PGconn *c = acquire(pg, err, sizeof err);
	if (!c) return STORE_EDB;
	PGresult *r = q(c, "reading the change counter", err, sizeof err, "SELECT value FROM ssld_meta WHERE key = 'changes'", NULL);
	int rc = STORE_EDB;
	if (r && PQntuples(r)) {
		memset(out, 0, sizeof *out);
		int64_t v = gi(r, 0, 0);
		memcpy(out->hdr, &v, sizeof v);
		out->hdr[12] = 1;
		rc = 0;
	}
	PQclear(r);
	release(pg, c);
	return rc;
}

/* ---- jobs ----------------------------------------------------------------------------------- */

/* Leases are timed by the database server's clock, so the nodes' clocks need not agree. */
#define DB_NOW "extract(epoch from clock_timestamp())::float8"

int pgstore_now(PGconn *c, double *now, const char *what, char *err, size_t errlen)
{
	PGresult *t = q(c, what, err, errlen, "SELECT " DB_NOW, NULL);
	if (!t) return STORE_EDB;
	*now = gd(t, 0, 0);
	PQclear(t);
	return 0;
}

int pgstore_job_claim_lease(PgStore *pg, const char *node, double lease_s, int max_running_per_owner, int64_t *claimed,
                            char *err, size_t errlen)
{
	PGconn *c = acquire(pg, err, errlen);
	if (!c) return STORE_EDB;
	int64_t id = 0;
	PGresult *r = NULL;
	/* The claim must walk jobs_queue in (priority DESC, id) order and stop at the first eligible
	 * row. Statistics taken while few jobs were queued (or none yet, on a fresh table) make the
	 * planner expect a handful of queued rows and prefer fetching them all and sorting, which
	 * costs a sort of the whole queue on every claim; with sorting off for this transaction the
	 * index order is the only cheap plan. */
	int rc = 0;
	PGresult *b = PQexec(c, "BEGIN; SET LOCAL enable_sort = off");   /* one round trip */
	if (PQresultStatus(b) != PGRES_COMMAND_OK) {
		set_err(err, errlen, "claiming a job (BEGIN)", b && *PQresultErrorMessage(b) ? PQresultErrorMessage(b) : PQerrorMessage(c));
		rc = STORE_EDB;
	}
	PQclear(b);
	if (rc < 0) goto out;
	/* SKIP LOCKED: a row another node is claiming now is passed over, not waited for. A per-owner
	 * running limit counts rows other claims may be changing, so those claims take turns; the
	 * owners at their limit are found once per claim (a hashed set), not once per row walked. */
	if (max_running_per_owner > 0) {
		if (x(c, "claiming a job", err, errlen, "SELECT pg_advisory_xact_lock(7270003)", NULL) < 0) {
			rc = STORE_EDB;
			goto out;
		}
		r = q(c, "claiming a job", err, errlen,
		      "SELECT id FROM jobs AS q WHERE " SQL_CLAIMABLE " AND q.owner NOT IN (SELECT r.owner FROM jobs AS r "
		      "WHERE r.state = 'running' GROUP BY r.owner HAVING count(*) >= $1) ORDER BY priority DESC, id ASC "
		      "LIMIT 1 FOR UPDATE SKIP LOCKED", "i", max_running_per_owner);
	} else
		r = q(c, "claiming a job", err, errlen,
		      "SELECT id FROM jobs AS q WHERE " SQL_CLAIMABLE " ORDER BY priority DESC, id ASC LIMIT 1 FOR UPDATE SKIP LOCKED",
		      NULL);
	if (!r) {
		rc = STORE_EDB;
		goto out;
	}
	if (PQntuples(r) == 0) {
		rc = 0;
		goto out;
	}
	id = gi(r, 0, 0);
	double now = store_now();
	int n;
	if ((rc = x(c, "claiming a job", err, errlen,
	            "UPDATE jobs SET state = 'running', started_at = coalesce(started_at, $2), "
	            "updated_at = $2, attempts = attempts + 1, step = coalesce(checkpoint_step, 0), "
	            "eta_s = NULL, node = $3, lease_until = CASE WHEN $4::float8 > 0 THEN " DB_NOW " + $4::float8 END, "
	            "lease_gen = lease_gen + 1 WHERE id = $1", "Idtd", id, now, node, lease_s)) < 0 ||
	    (n = rc = x(c, "dropping points after the checkpoint", err, errlen, SQL_DROP_AFTER_CHECKPOINT, "I", id)) < 0)
		goto out;
	if (n > 0 && ((rc = x(c, "rebuilding metric keys", err, errlen, SQL_DROP_METRIC_KEYS, "I", id)) < 0 ||
	              (rc = x(c, "rebuilding metric keys", err, errlen,
	                      "INSERT INTO metric_keys(job_id, key, last_id, last_step, last_value) "
	                      "SELECT DISTINCT ON (key) job_id, key, id, step, value FROM metrics WHERE job_id = $1 "
	                      "ORDER BY key, id DESC", "I", id)) < 0))
		goto out;
	if ((rc = commit(c, err, errlen)) == 0) {
		*claimed = id;
		rc = 1;
	}
out:
	PQclear(r);
	rollback(c);
	release(pg, c);
	return rc;
}

int pgstore_job_renew(PgStore *pg, int64_t id, int64_t lease_gen, double lease_s, char *err, size_t errlen)
{
	int rc = write1(pg, "renewing a lease", err, errlen,
	                "UPDATE jobs SET lease_until = " DB_NOW " + $4::float8 WHERE id = $1 AND state = 'running' "
	                "AND lease_gen = $2",
	                "IIdd", id, lease_gen, store_now(), lease_s);
	if (rc == 0) return rows_renew_fenced(id, lease_gen, err, errlen);
	return rc < 0 ? rc : 0;
}

/* ---- the metric batch ----------------------------------------------------------------------- */

/* Rows per INSERT statement (5 parameters each: well under the protocol's 65535). */
#define ROWS_PER_INSERT 1000

static int batch_fenced(PGconn *c, Fences *fs, int64_t job, int64_t gen, char *err, size_t errlen)
{
	if (gen < 0) return 0;
	int is = fences_find(fs, job, gen);
	if (is >= 0) return is;
	/* FOR SHARE: no claim or reclaim of the job can slip in before this batch commits. */
	PGresult *r = q(c, "checking a job's lease", err, errlen,
	                "SELECT lease_gen = $2::bigint AND state <> 'queued' FROM jobs WHERE id = $1 FOR SHARE", "II", job, gen);
	if (!r) return STORE_EDB;
	is = PQntuples(r) == 0 || strcmp(PQgetvalue(r, 0, 0), "t") != 0;
	PQclear(r);
	if (fences_add(fs, job, gen, is) < 0) {
		snprintf(err, errlen, "metric batch: out of memory");
		return STORE_ENOMEM;
	}
	return is;
}

/* One multi-row INSERT of the points [from, to) not fenced (the metric_keys upsert in the same
 * statement, from the rows it returns). */
static int insert_points(PGconn *c, const Point *pts, size_t from, size_t to, const Fences *fs, char *err, size_t errlen)
{
	size_t n = 0;
	for (size_t i = from; i < to; i++)
		if (pts[i].gen < 0 || fences_find(fs, pts[i].job, pts[i].gen) == 0) n++;
	if (n == 0) return 0;
	size_t cap = 1024 + n * 96;   /* a row's placeholders: at most ~75 characters */
	char *sql = malloc(cap);
	const char **vals = malloc(n * 5 * sizeof *vals);
	char (*num)[32] = malloc(n * 4 * sizeof *num);
	int rc = 0;
	if (!sql || !vals || !num) {
		snprintf(err, errlen, "metric batch: out of memory");
		rc = STORE_ENOMEM;
		goto out;
	}
	size_t len = (size_t)snprintf(sql, cap, "WITH ins AS (INSERT INTO metrics(job_id, step, key, value, time) VALUES ");
	size_t k = 0;
	for (size_t i = from; i < to; i++) {
		const Point *p = &pts[i];
		if (!(p->gen < 0 || fences_find(fs, p->job, p->gen) == 0)) continue;
		snprintf(num[k * 4], 32, "%lld", (long long)p->job);
		snprintf(num[k * 4 + 1], 32, "%lld", (long long)p->step);
		snprintf(num[k * 4 + 2], 32, "%.17g", p->value);
		snprintf(num[k * 4 + 3], 32, "%.17g", p->time);
		vals[k * 5] = num[k * 4];
		vals[k * 5 + 1] = num[k * 4 + 1];
		vals[k * 5 + 2] = p->key;
		vals[k * 5 + 3] = isfinite(p->value) ? num[k * 4 + 2] : NULL;
		vals[k * 5 + 4] = num[k * 4 + 3];
		size_t b = k * 5;
		len += (size_t)snprintf(sql + len, cap - len, "%s($%zu::bigint,$%zu::bigint,$%zu,$%zu::float8,$%zu::float8)",
		                        k ? "," : "", b + 1, b + 2, b + 3, b + 4, b + 5);
		k++;
	}
	/* Points of a job deleted meanwhile are dropped (as SQLite's foreign-key skip does). */
	snprintf(sql + len, cap - len,
	         " RETURNING id, job_id, step, key, value) "
	         "INSERT INTO metric_keys(job_id, key, last_id, last_step, last_value) "
	         "SELECT DISTINCT ON (job_id, key) job_id, key, id, step, value FROM ins ORDER BY job_id, key, id DESC "
	         "ON CONFLICT (job_id, key) DO UPDATE SET last_id = excluded.last_id, last_step = excluded.last_step, "
	         "last_value = excluded.last_value");
	PGresult *r = PQexecParams(c, sql, (int)(k * 5), NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		set_err(err, errlen, "metric batch: writing metric points", PQresultErrorMessage(r));
		rc = STORE_EDB;
	}
	PQclear(r);
out:
	free(sql);
	free(vals);
	free(num);
	return rc;
}

int pgstore_batch_write(PgStore *pg, const BatchRows *o, const char *token, Fences *fs, char *err, size_t errlen)
{
	PGconn *c = acquire(pg, err, errlen);
	if (!c) return STORE_EDB;
	int rc = begin(c, err, errlen);
	if (rc < 0) goto out;
	/* A batch already committed (the COMMIT went through, its answer was lost) is not repeated. */
	if ((rc = x(c, "metric batch: recording the batch", err, errlen,
	            "INSERT INTO metric_batches(token, time) VALUES ($1, $2) ON CONFLICT (token) DO NOTHING", "td", token,
	            store_now())) < 0)
		goto out;
	if (rc == 0) {
		rollback(c);
		goto out;
	}
	/* Fences first (each (job, gen) once), then the rows that pass them. */
	for (size_t i = 0; i < o->npts; i++)
		if ((rc = batch_fenced(c, fs, o->pts[i].job, o->pts[i].gen, err, errlen)) < 0) goto out;
	for (size_t i = 0; i < o->nevs; i++)
		if ((rc = batch_fenced(c, fs, o->evs[i].job, o->evs[i].gen, err, errlen)) < 0) goto out;
	for (size_t i = 0; i < o->nprog; i++)
		if ((rc = batch_fenced(c, fs, o->prog[i].job, o->prog[i].gen, err, errlen)) < 0) goto out;
	rc = 0;
	for (size_t i = 0; i < o->npts && rc == 0; i += ROWS_PER_INSERT)
		rc = insert_points(c, o->pts, i, i + ROWS_PER_INSERT < o->npts ? i + ROWS_PER_INSERT : o->npts, fs, err, errlen);
	if (rc < 0) goto out;
	for (size_t i = 0; i < o->nevs; i++) {
		const Event *e = &o->evs[i];
		if (e->gen >= 0 && fences_find(fs, e->job, e->gen) != 0) continue;
		if ((rc = x(c, "metric batch: writing events", err, errlen,
		            "INSERT INTO events(job_id, time, level, message) SELECT $1, $2, $3, $4 WHERE EXISTS "
		            "(SELECT 1 FROM jobs WHERE id = $1)", "Idit", e->job, e->time, e->level, e->msg)) < 0)
			goto out;
	}
	double now = store_now();
	for (size_t i = 0; i < o->nprog; i++) {
		const Progress *p = &o->prog[i];
		if (p->gen >= 0 && fences_find(fs, p->job, p->gen) != 0) continue;
		if ((rc = x(c, "metric batch: writing progress", err, errlen,
		            "UPDATE jobs SET step = $2, total = $3, stage = $4, eta_s = $5, updated_at = $6, progress = $7 "
		            "WHERE id = $1 AND state = 'running'", "IIItddd", p->job, p->step, p->total, p->stage,
		            p->eta_s >= 0 ? p->eta_s : NAN, now, p->fraction >= 0 ? p->fraction : NAN)) < 0)
			goto out;
	}
	/* Batch tokens older than a day cannot be retried any more. */
	if ((rc = x(c, "metric batch: pruning batch tokens", err, errlen,
	            "DELETE FROM metric_batches WHERE time < $1::float8 - 86400", "d", now)) < 0)
		goto out;
	rc = commit(c, err, errlen);
out:
	if (rc < 0) rollback(c);
	release(pg, c);
	return rc < 0 ? rc : 0;
}
