/* store_pg.h - the PostgreSQL backend of store.h, private to storage/.
 *
 * store.c opens it when store_open is given a postgresql:// (or postgres://) URL and then hands
 * every call of store.h to the pgstore_ function of the same name; batch.c and dataset_store.c do
 * the same for theirs. Each function has the contract of its store.h namesake (codes, err texts,
 * ownership); only the differences are written here.
 */
#ifndef SSLD_STORAGE_STORE_PG_H
#define SSLD_STORAGE_STORE_PG_H

#include <stdarg.h>

#include "batch_rows.h"
#include "dataset_store.h"
#include "store.h"

typedef struct PgStore PgStore;

/* 1 when path names a PostgreSQL database (postgresql://... or postgres://...). */
int store_is_pg_url(const char *path);
/* The backend of st when it is PostgreSQL, else NULL (store.c). */
PgStore *store_pg(Store *st);

/* Connects, creates or migrates the schema (one node at a time: an advisory lock). Without libpq in
 * the build, fails saying so. */
int pgstore_open(const char *url, PgStore **out, char *err, size_t errlen);
void pgstore_free(PgStore *pg);
int pgstore_schema_version(PgStore *pg);
/* The change counter (a row bumped by a trigger in the transaction of every change). */
int pgstore_change_stamp(PgStore *pg, StoreStamp *out);
int pgstore_healthy(PgStore *pg);
/* A pooled connection for store_migrate.c and store.c (give it back); NULL with err when there is none. */
struct pg_conn *pgstore_acquire(PgStore *pg, char *err, size_t errlen);
void pgstore_release(PgStore *pg, struct pg_conn *c);

/* The statements of the functions store.c writes once for both backends, on a pooled connection;
 * sql may use store_sql.h's ?N placeholders, fmt as store.c's (one letter per parameter). */
/* Rows changed, or STORE_EDB with err "PostgreSQL <what>: ...". */
int pgstore_exec(struct pg_conn *c, const char *what, char *err, size_t errlen, const char *sql, const char *fmt,
                 va_list ap);
/* pgstore_exec on a connection of its own, in a transaction of its own. */
int pgstore_write(PgStore *pg, const char *what, char *err, size_t errlen, const char *sql, const char *fmt, va_list ap);
/* A query for ids (the first column): the number of rows (>= 0), the first cap in ids. */
int pgstore_ids(struct pg_conn *c, int64_t *ids, int cap, const char *what, char *err, size_t errlen, const char *sql,
                const char *fmt, va_list ap);
int pgstore_begin(struct pg_conn *c, char *err, size_t errlen);
int pgstore_commit(struct pg_conn *c, char *err, size_t errlen);
void pgstore_rollback(struct pg_conn *c);
/* The job's state, its row locked until the transaction ends; STORE_ENOTFOUND when none. */
int pgstore_lock_state(struct pg_conn *c, int64_t id, JobState *state, const char *what, char *err, size_t errlen);
/* The database server's clock (leases are timed by it). */
int pgstore_now(struct pg_conn *c, double *now, const char *what, char *err, size_t errlen);

int pgstore_job_insert(PgStore *pg, const StoreNewJob *nj, int64_t *id, char *err, size_t errlen);
int pgstore_group_insert(PgStore *pg, const char *name, const char *owner, const char *sweep, const StoreNewJob *jobs,
                         int n, int64_t *group_id, int64_t *ids, char *err, size_t errlen);
int pgstore_group_get(PgStore *pg, int64_t id, StoreGroup *out, char *err, size_t errlen);
int pgstore_group_list(PgStore *pg, const char *owner, int64_t before_id, int limit, StoreGroup **groups, int *n,
                       char *err, size_t errlen);
int pgstore_job_get(PgStore *pg, int64_t id, StoreJob *out, char *err, size_t errlen);
int pgstore_job_state(PgStore *pg, int64_t id, JobState *state, char *err, size_t errlen);
int pgstore_job_claim_lease(PgStore *pg, const char *node, double lease_s, int max_running_per_owner, StoreJob *out,
                            char *err, size_t errlen);
int pgstore_job_renew(PgStore *pg, int64_t id, int64_t lease_gen, double lease_s, char *err, size_t errlen);
int pgstore_job_list(PgStore *pg, const StoreJobFilter *f, StoreJob **jobs, int *n, char *err, size_t errlen);
int pgstore_job_counts(PgStore *pg, int64_t counts[JOB_STATE_COUNT], char *err, size_t errlen);
int pgstore_metrics_read(PgStore *pg, int64_t job_id, int64_t after, const char *const *keys, int nkeys,
                         int64_t max_rows, MetricSet *out, char *err, size_t errlen);
int pgstore_metrics_latest(PgStore *pg, int64_t job_id, MetricSet *out, char *err, size_t errlen);
int pgstore_events_read(PgStore *pg, int64_t job_id, int64_t after, int limit, StoreEvent **ev, int *n, char *err,
                        size_t errlen);
/* size and sha256 already computed by store.c */
int pgstore_artifact_put(PgStore *pg, int64_t job_id, const char *name, const char *path, int64_t size,
                         const char *sha256, char *err, size_t errlen);
int pgstore_artifact_list(PgStore *pg, int64_t job_id, StoreArtifact **a, int *n, char *err, size_t errlen);
int pgstore_artifact_get(PgStore *pg, int64_t job_id, const char *name, StoreArtifact *a, char *err, size_t errlen);
int pgstore_token_add(PgStore *pg, const char *name, const char *sha256hex, int admin, char *err, size_t errlen);
int pgstore_token_list(PgStore *pg, StoreToken **out, int *n, char *err, size_t errlen);
int pgstore_token_count(PgStore *pg, int64_t *n, char *err, size_t errlen);
int pgstore_token_find(PgStore *pg, const char *sha256hex, StoreToken *out, char *err, size_t errlen);

int pgstore_dataset_insert(PgStore *pg, const StoreDataset *d, char *err, size_t errlen);
int pgstore_dataset_get(PgStore *pg, const char *owner, const char *name, StoreDataset *out, char *err, size_t errlen);
int pgstore_dataset_list(PgStore *pg, const char *owner, StoreDataset **out, int *n, char *err, size_t errlen);
int pgstore_dataset_delete(PgStore *pg, const char *owner, const char *name, char *err, size_t errlen);
int pgstore_dataset_usage(PgStore *pg, const char *owner, int64_t *count, int64_t *bytes, char *err, size_t errlen);
int pgstore_dataset_user(PgStore *pg, const char *path, int64_t *job, char *err, size_t errlen);

/* Writes a batch's rows in one transaction (multi-row INSERTs), dropping fenced runs' rows (their
 * (job, gen) recorded in *fs). token names this batch: a batch whose token is already recorded
 * was committed by an earlier attempt (its acknowledgement lost), so it is not written again.
 * 0, or < 0 with nothing written. */
int pgstore_batch_write(PgStore *pg, const BatchRows *rows, const char *token, Fences *fs, char *err, size_t errlen);

#endif
