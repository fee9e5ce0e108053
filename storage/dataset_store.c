/* dataset_store.c - SQL for the datasets table (see dataset_store.h); the files are not its
 * business. */
#include "dataset_store.h"
#include "store_pg.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int db_err(sqlite3 *db, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", what, sqlite3_errmsg(db));
	return STORE_EDB;
}

static void copy_text(char *dst, size_t cap, const unsigned char *s)
{
	snprintf(dst, cap, "%s", s ? (const char *)s : "");
}

static char *dup_text(const unsigned char *s)
{
	return strdup(s ? (const char *)s : "");
}

#define COLUMNS "owner, name, format, bytes, files, summary, path, created_at"

static int read_row(sqlite3_stmt *s, StoreDataset *d)
{
	memset(d, 0, sizeof *d);
	copy_text(d->owner, sizeof d->owner, sqlite3_column_text(s, 0));
	copy_text(d->name, sizeof d->name, sqlite3_column_text(s, 1));
	copy_text(d->format, sizeof d->format, sqlite3_column_text(s, 2));
	d->bytes = sqlite3_column_int64(s, 3);
	d->files = sqlite3_column_int64(s, 4);
	d->summary = dup_text(sqlite3_column_text(s, 5));
	d->path = dup_text(sqlite3_column_text(s, 6));
	d->created_at = sqlite3_column_double(s, 7);
	if (!d->summary || !d->path) {
		store_dataset_clear(d);
		return STORE_ENOMEM;
	}
	return 0;
}

int store_dataset_insert(Store *st, const StoreDataset *d, char *err, size_t errlen)
{
	PgStore *pg = store_pg(st);
	if (pg) return pgstore_dataset_insert(pg, d, err, errlen);
	sqlite3 *db = store_acquire(st, err, errlen);
	if (!db) return STORE_EDB;
	sqlite3_stmt *s = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(db, "INSERT INTO datasets(" COLUMNS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8)", -1, &s, NULL) != SQLITE_OK) {
		rc = db_err(db, "storing the dataset", err, errlen);
		goto out;
	}
	sqlite3_bind_text(s, 1, d->owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, d->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, d->format, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, d->bytes);
	sqlite3_bind_int64(s, 5, d->files);
	sqlite3_bind_text(s, 6, d->summary ? d->summary : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, d->path ? d->path : "", -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 8, d->created_at > 0 ? d->created_at : store_now());
	int r = sqlite3_step(s);
	if (r == SQLITE_CONSTRAINT) {
		snprintf(err, errlen, "dataset %s/%s already exists", d->owner, d->name);
		rc = STORE_EEXIST;
	} else if (r != SQLITE_DONE) {
		rc = db_err(db, "storing the dataset", err, errlen);
	}
out:
	sqlite3_finalize(s);
	store_release(st, db);
	return rc;
}

int store_dataset_get(Store *st, const char *owner, const char *name, StoreDataset *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	PgStore *pg = store_pg(st);
	if (pg) return pgstore_dataset_get(pg, owner, name, out, err, errlen);
	sqlite3 *db = store_acquire(st, err, errlen);
	if (!db) return STORE_EDB;
	sqlite3_stmt *s = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(db, "SELECT " COLUMNS " FROM datasets WHERE owner = ?1 AND name = ?2", -1, &s, NULL) != SQLITE_OK) {
		rc = db_err(db, "reading the dataset", err, errlen);
		goto out;
	}
	sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		if ((rc = read_row(s, out)) < 0) snprintf(err, errlen, "reading the dataset: out of memory");
	} else if (r == SQLITE_DONE) {
		snprintf(err, errlen, "no dataset %s/%s", owner, name);
		rc = STORE_ENOTFOUND;
	} else {
		rc = db_err(db, "reading the dataset", err, errlen);
	}
out:
	sqlite3_finalize(s);
	store_release(st, db);
	return rc;
}

int store_dataset_list(Store *st, const char *owner, StoreDataset **out, int *n, char *err, size_t errlen)
{
	*out = NULL;
	*n = 0;
	PgStore *pg = store_pg(st);
	if (pg) return pgstore_dataset_list(pg, owner, out, n, err, errlen);
	sqlite3 *db = store_acquire(st, err, errlen);
	if (!db) return STORE_EDB;
	sqlite3_stmt *s = NULL;
	int rc = 0, cap = 0;
	StoreDataset *v = NULL;
	const char *sql = owner ? "SELECT " COLUMNS " FROM datasets WHERE owner = ?1 ORDER BY owner, name"
	                        : "SELECT " COLUMNS " FROM datasets ORDER BY owner, name";
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		rc = db_err(db, "listing datasets", err, errlen);
		goto out;
	}
	if (owner) sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
	int r;
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			int nc = cap ? 2 * cap : 16;
			StoreDataset *g = realloc(v, (size_t)nc * sizeof *g);
			if (!g) {
				rc = STORE_ENOMEM;
				break;
			}
			v = g;
			cap = nc;
		}
		if ((rc = read_row(s, &v[*n])) < 0) break;
		(*n)++;
	}
	if (rc == STORE_ENOMEM) snprintf(err, errlen, "listing datasets: out of memory");
	else if (r != SQLITE_DONE) rc = db_err(db, "listing datasets", err, errlen);
out:
	sqlite3_finalize(s);
	store_release(st, db);
	if (rc < 0) {
		for (int i = 0; i < *n; i++) store_dataset_clear(&v[i]);
		free(v);
		*n = 0;
		return rc;
	}
	*out = v;
	return 0;
}

int store_dataset_delete(Store *st, const char *owner, const char *name, char *err, size_t errlen)
{
	PgStore *pg = store_pg(st);
	if (pg) return pgstore_dataset_delete(pg, owner, name, err, errlen);
	sqlite3 *db = store_acquire(st, err, errlen);
	if (!db) return STORE_EDB;
	sqlite3_stmt *s = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(db, "DELETE FROM datasets WHERE owner = ?1 AND name = ?2", -1, &s, NULL) != SQLITE_OK) {
		rc = db_err(db, "deleting the dataset", err, errlen);
		goto out;
	}
	sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE) rc = db_err(db, "deleting the dataset", err, errlen);
	else if (sqlite3_changes(db) == 0) {
		snprintf(err, errlen, "no dataset %s/%s", owner, name);
		rc = STORE_ENOTFOUND;
	}
out:
	sqlite3_finalize(s);
	store_release(st, db);
	return rc;
}

int store_dataset_usage(Store *st, const char *owner, int64_t *count, int64_t *bytes, char *err, size_t errlen)
{
	*count = *bytes = 0;
	PgStore *pg = store_pg(st);
	if (pg) return pgstore_dataset_usage(pg, owner, count, bytes, err, errlen);
	sqlite3 *db = store_acquire(st, err, errlen);
	if (!db) return STORE_EDB;
	sqlite3_stmt *s = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(db, "SELECT count(*), coalesce(sum(bytes), 0) FROM datasets WHERE owner = ?1", -1, &s, NULL) != SQLITE_OK ||
	    (sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC), sqlite3_step(s)) != SQLITE_ROW) {
		rc = db_err(db, "counting datasets", err, errlen);
	} else {
		*count = sqlite3_column_int64(s, 0);
		*bytes = sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	store_release(st, db);
	return rc;
}

int store_dataset_user(Store *st, const char *path, int64_t *job, char *err, size_t errlen)
{
	*job = 0;
	PgStore *pg = store_pg(st);
	if (pg) return pgstore_dataset_user(pg, path, job, err, errlen);
	sqlite3 *db = store_acquire(st, err, errlen);
	if (!db) return STORE_EDB;
	sqlite3_stmt *s = NULL;
	int rc = 0;
	/* The stored spec holds resolved paths as JSON strings: the directory itself ("...dir") or a
	 * file beneath it ("...dir/x"). '/' needs no JSON escape. */
	char a[4200], b[4200];
	snprintf(a, sizeof a, "\"%s\"", path);
	snprintf(b, sizeof b, "\"%s/", path);
	if (sqlite3_prepare_v2(db, "SELECT id FROM jobs WHERE state IN ('queued','running') AND "
	                           "(instr(spec, ?1) > 0 OR instr(spec, ?2) > 0) ORDER BY id LIMIT 1", -1, &s, NULL) != SQLITE_OK) {
		rc = db_err(db, "finding jobs that use the dataset", err, errlen);
		goto out;
	}
	sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC);
	int r = sqlite3_step(s);
	if (r == SQLITE_ROW) *job = sqlite3_column_int64(s, 0);
	else if (r != SQLITE_DONE) rc = db_err(db, "finding jobs that use the dataset", err, errlen);
out:
	sqlite3_finalize(s);
	store_release(st, db);
	return rc;
}

void store_dataset_clear(StoreDataset *d)
{
	if (!d) return;
	free(d->summary);
	free(d->path);
	d->summary = d->path = NULL;
}
