/* store_migrate.c - copies an SQLite store into an empty PostgreSQL store (see store_migrate.h).
 *
 * One table at a time, in foreign-key order, each row sent as text parameters of multi-row
 * INSERTs with its id; then every id sequence is moved past the largest id copied. Not here: the
 * schemas (store.c and store_pg.c create them; the column lists below are the columns both have).
 */
#include "store_migrate.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store.h"
#include "store_pg.h"

/* The tables, parents first; `serial`: its id column has a sequence to move on. */
static const struct {
	const char *name, *cols, *order;
	int serial;
	size_t stat;   /* offsetof the counter in StoreMigrateStats */
} tables[] = {
	{ "job_groups", "id, name, owner, sweep, created_at", "id", 1, offsetof(StoreMigrateStats, groups) },
	{ "jobs", "id, name, method, spec, state, priority, owner, created_at, started_at, finished_at, updated_at, step, "
	  "total, stage, eta_s, checkpoint_step, checkpoint_metric_id, attempts, cancel_requested, results, error, "
	  "init_from_job, interruptions, group_id, group_setting, progress, node, lease_until, lease_gen", "id", 1,
	  offsetof(StoreMigrateStats, jobs) },
	{ "metrics", "id, job_id, step, key, value, time", "id", 1, offsetof(StoreMigrateStats, metrics) },
	{ "metric_keys", "job_id, key, last_id, last_step, last_value", "job_id, key", 0,
	  offsetof(StoreMigrateStats, metric_keys) },
	{ "events", "id, job_id, time, level, message", "id", 1, offsetof(StoreMigrateStats, events) },
	{ "artifacts", "job_id, name, path, size, sha256, created_at", "job_id, name", 0, offsetof(StoreMigrateStats, artifacts) },
	{ "tokens", "id, name, sha256, admin, created_at", "id", 1, offsetof(StoreMigrateStats, tokens) },
	{ "datasets", "owner, name, format, bytes, files, summary, path, created_at", "owner, name", 0,
	  offsetof(StoreMigrateStats, datasets) },
	/* Pending ones are delivered by the nodes on PostgreSQL (a claim of the old node's expires). */
	{ "webhook_outbox", "id, job_id, created_at, state, attempts, next_at, claimed_by, claim_until, done_at, "
	  "last_status, last_error", "id", 1, offsetof(StoreMigrateStats, deliveries) },
};

#define ROWS_PER_INSERT 200

static void pq_err(char *err, size_t errlen, const char *what, PGresult *r, PGconn *c)
{
	const char *m = r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(c);
	snprintf(err, errlen, "PostgreSQL: %s: %s", what, m);
	size_t n = strlen(err);
	while (n && err[n - 1] == '\n') err[--n] = 0;
}

static int pq_ok(PGconn *c, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok) pq_err(err, errlen, what, r, c);
	PQclear(r);
	return ok ? 0 : STORE_EDB;
}

/* The target holds nothing a copy would collide with: 0, STORE_EEXIST naming what it holds. */
static int check_empty(PGconn *c, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM job_groups), "
	                        "(SELECT count(*) FROM tokens), (SELECT count(*) FROM datasets)");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pq_err(err, errlen, "counting the target's rows", r, c);
		PQclear(r);
		return STORE_EDB;
	}
	long long n[4];
	for (int i = 0; i < 4; i++) n[i] = strtoll(PQgetvalue(r, 0, i), NULL, 10);
	PQclear(r);
	if (n[0] || n[1] || n[2] || n[3]) {
		snprintf(err, errlen, "the target database is not empty (%lld jobs, %lld groups, %lld tokens, %lld datasets): "
		         "migrate copies into an empty database only (create a new one, or drop its tables)", n[0], n[1], n[2], n[3]);
		return STORE_EEXIST;
	}
	return 0;
}

/* Sends rows [0, n) held in vals (ncols text values each) as one INSERT. */
static int insert_rows(PGconn *c, const char *table, const char *cols, int ncols, const char *const *vals, int n,
                       char *err, size_t errlen)
{
	size_t cap = 256 + strlen(cols) + (size_t)n * ((size_t)ncols * 16 + 4);   /* ",$12345" per value, ",()" per row */
	char *sql = malloc(cap);
	if (!sql) {
		snprintf(err, errlen, "copying %s: out of memory", table);
		return STORE_ENOMEM;
	}
	size_t len = (size_t)snprintf(sql, cap, "INSERT INTO %s(%s) VALUES ", table, cols);
	for (int i = 0, k = 1; i < n; i++) {
		len += (size_t)snprintf(sql + len, cap - len, "%s(", i ? "," : "");
		for (int j = 0; j < ncols; j++, k++) len += (size_t)snprintf(sql + len, cap - len, "%s$%d", j ? "," : "", k);
		len += (size_t)snprintf(sql + len, cap - len, ")");
	}
	PGresult *r = PQexecParams(c, sql, n * ncols, NULL, vals, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		char what[64];
		snprintf(what, sizeof what, "copying %s", table);
		pq_err(err, errlen, what, r, c);
		rc = STORE_EDB;
	}
	PQclear(r);
	free(sql);
	return rc;
}

/* One table from db (SQLite, in a read transaction) to c (PostgreSQL, in a transaction). */
static int copy_table(sqlite3 *db, PGconn *c, int t, int64_t *count, char *err, size_t errlen)
{
	char sql[1024];
	snprintf(sql, sizeof sql, "SELECT %s FROM %s ORDER BY %s", tables[t].cols, tables[t].name, tables[t].order);
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "reading %s from SQLite: %s", tables[t].name, sqlite3_errmsg(db));
		return STORE_EDB;
	}
	int ncols = sqlite3_column_count(s), rc = 0, n = 0, r;
	/* Text values of one INSERT's rows: numbers formatted here, texts copied (the statement's
	 * buffers change with every step). */
	char **owned = calloc((size_t)ROWS_PER_INSERT * (size_t)ncols, sizeof *owned);
	if (!owned) {
		sqlite3_finalize(s);
		snprintf(err, errlen, "copying %s: out of memory", tables[t].name);
		return STORE_ENOMEM;
	}
	while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
		for (int j = 0; j < ncols; j++) {
			char num[40], **v = &owned[n * ncols + j];
			switch (sqlite3_column_type(s, j)) {
			case SQLITE_NULL: *v = NULL; break;
			case SQLITE_INTEGER: snprintf(num, sizeof num, "%lld", (long long)sqlite3_column_int64(s, j)); *v = strdup(num); break;
			case SQLITE_FLOAT: snprintf(num, sizeof num, "%.17g", sqlite3_column_double(s, j)); *v = strdup(num); break;
			default: *v = strdup((const char *)sqlite3_column_text(s, j)); break;
			}
			if (sqlite3_column_type(s, j) != SQLITE_NULL && !*v) rc = STORE_ENOMEM;
		}
		if (++n == ROWS_PER_INSERT || rc < 0) {
			if (rc == 0) rc = insert_rows(c, tables[t].name, tables[t].cols, ncols, (const char *const *)owned, n, err, errlen);
			for (int k = 0; k < n * ncols; k++) free(owned[k]), owned[k] = NULL;
			*count += rc == 0 ? n : 0;
			n = 0;
		}
	}
	if (rc == 0 && r != SQLITE_DONE) {
		snprintf(err, errlen, "reading %s from SQLite: %s", tables[t].name, sqlite3_errmsg(db));
		rc = STORE_EDB;
	}
	if (rc == 0 && n) {
		rc = insert_rows(c, tables[t].name, tables[t].cols, ncols, (const char *const *)owned, n, err, errlen);
		*count += rc == 0 ? n : 0;
	}
	if (rc == STORE_ENOMEM && !err[0]) snprintf(err, errlen, "copying %s: out of memory", tables[t].name);
	for (int k = 0; k < n * ncols; k++) free(owned[k]);
	free(owned);
	sqlite3_finalize(s);
	return rc;
}

int store_migrate(const char *from_path, const char *to_url, StoreMigrateStats *stats, char *err, size_t errlen)
{
	memset(stats, 0, sizeof *stats);
	err[0] = 0;
	if (!store_is_pg_url(to_url)) {
		snprintf(err, errlen, "--to '%s': expected a PostgreSQL URL (postgresql://USER@HOST/DBNAME)", to_url);
		return STORE_ESTATE;
	}
	if (store_is_pg_url(from_path)) {
		snprintf(err, errlen, "--from '%s': expected an SQLite database file, not a URL", from_path);
		return STORE_ESTATE;
	}
	struct stat sb;
	errno = 0;
	if (stat(from_path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "--from %s: %s", from_path, errno ? strerror(errno) : "not a regular file");
		return STORE_ENOTFOUND;
	}
	Store *src = NULL, *dst = NULL;
	sqlite3 *db = NULL;
	PGconn *c = NULL;
	int rc = store_open(from_path, &src, err, errlen);
	if (rc < 0) goto out;
	if ((rc = store_open(to_url, &dst, err, errlen)) < 0) goto out;
	if (!(db = store_acquire(src, err, errlen)) || !(c = pgstore_acquire(store_pg(dst), err, errlen))) {
		rc = STORE_EDB;
		goto out;
	}
	/* One snapshot of the source; one transaction on the target. */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: BEGIN: %s", from_path, sqlite3_errmsg(db));
		rc = STORE_EDB;
		goto out;
	}
	if ((rc = pq_ok(c, "BEGIN", "BEGIN", err, errlen)) < 0 ||
	    (rc = pq_ok(c, "LOCK TABLE jobs, job_groups, tokens, datasets IN EXCLUSIVE MODE", "locking the target", err, errlen)) < 0 ||
	    (rc = check_empty(c, err, errlen)) < 0)
		goto out;
	for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
		int64_t *count = (int64_t *)((char *)stats + tables[t].stat);
		if ((rc = copy_table(db, c, (int)t, count, err, errlen)) < 0) goto out;
		if (!tables[t].serial) continue;
		/* The next id is the one SQLite's AUTOINCREMENT would give: past every id it ever handed
		 * out (sqlite_sequence), not only past those still there - metric points deleted on a
		 * resume had ids a client may hold as its cursor. */
		long long seq = 0;
		sqlite3_stmt *s;
		if (sqlite3_prepare_v2(db, "SELECT seq FROM sqlite_sequence WHERE name = ?1", -1, &s, NULL) == SQLITE_OK) {
			sqlite3_bind_text(s, 1, tables[t].name, -1, SQLITE_STATIC);
			if (sqlite3_step(s) == SQLITE_ROW) seq = sqlite3_column_int64(s, 0);
			sqlite3_finalize(s);
		}
		char sql[320];
		snprintf(sql, sizeof sql, "SELECT setval(pg_get_serial_sequence('%s', 'id'), greatest(coalesce(max(id), 0), %lld) + 1, "
		         "false) FROM %s", tables[t].name, seq, tables[t].name);
		if ((rc = pq_ok(c, sql, "moving an id sequence on", err, errlen)) < 0) goto out;
	}
	rc = pq_ok(c, "COMMIT", "COMMIT", err, errlen);
out:
	if (c && rc < 0) PQclear(PQexec(c, "ROLLBACK"));
	if (db) sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (c) pgstore_release(store_pg(dst), c);
	if (db) store_release(src, db);
	store_free(src);
	store_free(dst);
	return rc;
}
