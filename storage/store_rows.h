/* store_rows.h - the part of store.h's two backends that does not depend on the database: store.c
 * (SQLite) and store_pg.c (PostgreSQL) each read rows their own way, but what a row means, the
 * checks made on what it says and the texts of the errors are one rule each, written here once.
 * Private to storage/.
 *
 * A backend describes a result row by a StoreRowOps table (how to read column `col` of row `row`
 * of its result) and hands it to the readers below:
 *
 *   static const StoreRowOps sqlite_ops = { col_i64, col_dbl, col_text, col_isnull };
 *   StoreRow r = { &sqlite_ops, stmt, 0 };
 *   rows_job(&r, &job, 1);
 *
 * Not here: connections, transactions, SQL (store_sql.h holds the texts both dialects share).
 */
#ifndef SSLD_STORAGE_STORE_ROWS_H
#define SSLD_STORAGE_STORE_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "dataset_store.h"
#include "store.h"

/* Column getters of one backend. NULL reads as 0 (numbers) or NULL (text); text is borrowed
 * (valid until the row changes). */
typedef struct StoreRowOps {
	int64_t (*i64)(const void *res, int row, int col);
	double (*dbl)(const void *res, int row, int col);
	const char *(*text)(const void *res, int row, int col);
	int (*isnull)(const void *res, int row, int col);
} StoreRowOps;

/* One row of a backend's result: res is its statement or result set, row the row in it. */
typedef struct StoreRow {
	const StoreRowOps *ops;
	const void *res;
	int row;
} StoreRow;

/* ---- rows into structs (column orders: store_sql.h) ------------------------------------------ */

/* A row into an item (the readers below with the item untyped): 0, or STORE_ENOMEM. */
typedef int (*rows_read_fn)(const StoreRow *r, void *item);
int rows_job_item(const StoreRow *r, void *item);          /* StoreJob, full */
int rows_job_brief_item(const StoreRow *r, void *item);    /* StoreJob without spec and results */
int rows_group_item(const StoreRow *r, void *item);        /* StoreGroup */
int rows_event_item(const StoreRow *r, void *item);        /* StoreEvent */
int rows_artifact_item(const StoreRow *r, void *item);     /* StoreArtifact */
int rows_token_item(const StoreRow *r, void *item);        /* StoreToken */
int rows_dataset_item(const StoreRow *r, void *item);      /* StoreDataset */
int rows_state_item(const StoreRow *r, void *item);        /* JobState, column 0 */
int rows_i64_item(const StoreRow *r, void *item);          /* int64_t, column 0 */
/* Called on each row of a query: 0 to go on, or < 0 (with err set) to stop. */
typedef int (*rows_each_fn)(const StoreRow *r, void *ctx, char *err, size_t errlen);

/* A job state column ("queued", ...); one not known reads as JOB_FAILED. */
JobState rows_state(const StoreRow *r, int col);
/* SQL_JOB_COLS, then (full) spec and results. */
void rows_job(const StoreRow *r, StoreJob *j, int full);
/* SQL_GROUP_COLS; the counts stay 0. */
void rows_group(const StoreRow *r, StoreGroup *g);
/* id, time, level, message */
void rows_event(const StoreRow *r, StoreEvent *e);
/* SQL_ARTIFACT_COLS */
void rows_artifact(const StoreRow *r, StoreArtifact *a);
/* SQL_TOKEN_COLS */
void rows_token(const StoreRow *r, StoreToken *t);
/* SQL_DATASET_COLS: 0, or STORE_ENOMEM (d cleared). */
int rows_dataset(const StoreRow *r, StoreDataset *d);
/* A metric point from its id, step and value columns (value NULL = NAN). */
MetricPoint rows_point(const StoreRow *r, int id_col, int step_col, int value_col);
/* A metric_keys row (SQL_LATEST) into ms as its key's latest point: 0, or -1 out of memory. */
int rows_latest(const StoreRow *r, MetricSet *ms, int *hint);
/* (state, count) rows: adds count to counts[state] (unknown states only to *total, when given). */
void rows_count_state(const StoreRow *r, int64_t counts[JOB_STATE_COUNT], int64_t *total);

/* ---- metric sets ----------------------------------------------------------------------------- */

/* Appends p to key's series (created when new); *hint remembers the last series used (start at
 * -1). 0, or -1 out of memory. */
int metric_set_push(MetricSet *ms, const char *key, int *hint, MetricPoint p);
/* After every key was read: drops the points past cut (the lowest id where a key was cut at
 * max_rows, INT64_MAX for none), then sets the cursor, total_points and truncated. */
void metric_set_finish(MetricSet *ms, int64_t cut);

/* ---- rules and their error texts ------------------------------------------------------------- */

/* A list's limit: dflt when below 1, at most max. */
int rows_limit(int limit, int dflt, int max);

/* The number of queued jobs (owner NULL: everyone's) in the inserting transaction. */
typedef int (*rows_count_cb)(void *ctx, const char *owner, int64_t *n, char *err, size_t errlen);
/* The queue limits of nj for n_new more jobs (store.h): 0, STORE_ELIMIT naming the limit, or the
 * count's error. */
int rows_check_limits(const StoreNewJob *nj, int n_new, rows_count_cb count, void *ctx, char *err, size_t errlen);
/* The init_from rule at insert (store.h) given the source's row (SQL_SOURCE_COLS), or NULL when
 * there is no such job: 0, STORE_ENOTFOUND or STORE_ESTATE with err saying why. */
int rows_check_source(const StoreNewJob *nj, const StoreRow *src, char *err, size_t errlen);

/* STORE_ENOTFOUND with "job <id> not found". */
int rows_job_not_found(int64_t id, char *err, size_t errlen);
/* STORE_FENCED: a fenced write (`what`) changed no row. */
int rows_fenced(int64_t id, int64_t lease_gen, const char *what, char *err, size_t errlen);
/* STORE_FENCED: a renewal found the lease no longer current. */
int rows_renew_fenced(int64_t id, int64_t lease_gen, char *err, size_t errlen);
/* store_job_finish changed no row: rows_fenced when fenced (lease_gen >= 0), else STORE_ESTATE. */
int rows_finish_refused(int64_t id, int64_t lease_gen, char *err, size_t errlen);
/* STORE_ESTATE: a job already finished cannot be cancelled. */
int rows_cancel_refused(int64_t id, JobState state, char *err, size_t errlen);
/* STORE_EEXIST: a token's name or hash is taken. */
int rows_token_exists(const char *name, char *err, size_t errlen);

/* store_job_list's query for f (?1 before id, ?2 limit, ?3 owner, ?4 group). Fits in 1024 bytes. */
void rows_job_list_sql(char *sql, size_t cap, const StoreJobFilter *f);

#endif
