/* store_pg.h - the PostgreSQL backend of store.h, private to storage/.
 *
 * store.c opens it when store_open is given a postgresql:// (or postgres://) URL. What store.c
 * and dataset_store.c write once for both backends runs on PostgreSQL through the statement
 * functions below (store.c's Conn, store_query.h); the few calls PostgreSQL says its own way (the
 * claim, the lease renewal, batch.c's batch) are handed to the pgstore_ function of the same
 * name. Each function has the contract of its store.h namesake (codes, err texts, ownership);
 * only the differences are written here.
 */
#ifndef SSLD_STORAGE_STORE_PG_H
#define SSLD_STORAGE_STORE_PG_H

#include <stdarg.h>

#include "batch_rows.h"
#include "store.h"
#include "store_rows.h"

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
/* pgstore_exec on a connection of its own, in a transaction of its own; STORE_EEXIST when it would
 * duplicate a unique key. */
int pgstore_write(PgStore *pg, const char *what, char *err, size_t errlen, const char *sql, const char *fmt,
                  va_list ap);
/* fn on each row of a query (store_query.h's store_each): the number of rows, or < 0. */
int pgstore_each(struct pg_conn *c, rows_each_fn fn, void *ctx, const char *what, char *err, size_t errlen,
                 const char *sql, const char *fmt, va_list ap);
/* An INSERT of one row (sql without RETURNING): 0 with the row's id in *id, or STORE_EDB. */
int pgstore_insert(struct pg_conn *c, int64_t *id, const char *what, char *err, size_t errlen, const char *sql,
                   const char *fmt, va_list ap);
/* A query for ids (the first column): the number of rows (>= 0), the first cap in ids. */
int pgstore_ids(struct pg_conn *c, int64_t *ids, int cap, const char *what, char *err, size_t errlen, const char *sql,
                const char *fmt, va_list ap);
int pgstore_begin(struct pg_conn *c, char *err, size_t errlen);
int pgstore_commit(struct pg_conn *c, char *err, size_t errlen);
void pgstore_rollback(struct pg_conn *c);
/* The database server's clock (leases are timed by it). */
int pgstore_now(struct pg_conn *c, double *now, const char *what, char *err, size_t errlen);

/* The claim only: 1 with the claimed job's id in *claimed (store.c reads the job), 0, or < 0. */
int pgstore_job_claim_lease(PgStore *pg, const char *node, double lease_s, int max_running_per_owner, int64_t *claimed,
                            char *err, size_t errlen);
int pgstore_job_renew(PgStore *pg, int64_t id, int64_t lease_gen, double lease_s, char *err, size_t errlen);

/* Writes a batch's rows in one transaction (multi-row INSERTs), dropping fenced runs' rows (their
 * (job, gen) recorded in *fs). token names this batch: a batch whose token is already recorded
 * was committed by an earlier attempt (its acknowledgement lost), so it is not written again.
 * 0, or < 0 with nothing written. */
int pgstore_batch_write(PgStore *pg, const BatchRows *rows, const char *token, Fences *fs, char *err, size_t errlen);

#endif
