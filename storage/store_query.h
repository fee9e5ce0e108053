/* store_query.h - statements on a Store whichever its backend, for the storage modules that read
 * and write through store.c (dataset_store.c, and store.c itself): the SQL is store_sql.h's (?N
 * placeholders, fmt letters as store.c's: 'i' int, 'I' int64_t, 'd' double, 't' text), the rows
 * come back through store_rows.h's StoreRow. Each call runs on a pooled connection of its own,
 * in a transaction of its own. Private to storage/.
 *
 *   StoreToken t;
 *   int rc = store_one(st, rows_token_item, &t, "looking up a token", err, sizeof err,
 *                      SQL_TOKEN_FIND, "t", hex);   // 1 found, 0 none, < 0 error
 *
 * Not here: multi-statement transactions (store.c's Conn), statements one dialect says its own way.
 */
#ifndef SSLD_STORAGE_STORE_QUERY_H
#define SSLD_STORAGE_STORE_QUERY_H

#include "store.h"
#include "store_rows.h"

/* fn on each row: the number of rows (>= 0), or < 0 (fn's code, or STORE_EDB with err naming
 * `what`). */
int store_each(Store *st, rows_each_fn fn, void *ctx, const char *what, char *err, size_t errlen, const char *sql,
               const char *fmt, ...);
/* The first row read into item: 1, 0 when there is none, or < 0. */
int store_one(Store *st, rows_read_fn read, void *item, const char *what, char *err, size_t errlen, const char *sql,
              const char *fmt, ...);
/* The rows read into a malloc'd array: *v gets *n items of `size` bytes, zeroed then read (NULL
 * when none). 0, or < 0 with the items read so far left in *v for the caller to free. */
int store_list(Store *st, void **v, int *n, size_t size, rows_read_fn read, const char *what, char *err, size_t errlen,
               const char *sql, const char *fmt, ...);
/* A statement without rows: rows changed (>= 0), or < 0. */
int store_write(Store *st, const char *what, char *err, size_t errlen, const char *sql, const char *fmt, ...);

#endif
