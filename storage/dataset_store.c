/* dataset_store.c - SQL for the datasets table (see dataset_store.h), on either backend of the
 * store (store_query.h); the files are not its business. */
#include "dataset_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"
#include "store_query.h"
#include "store_sql.h"

int store_dataset_insert(Store *st, const StoreDataset *d, char *err, size_t errlen)
{
	int rc = store_write(st, "storing the dataset", err, errlen, SQL_DATASET_ADD, "tttIIttd", d->owner, d->name,
	                     d->format, d->bytes, d->files, d->summary ? d->summary : "{}", d->path ? d->path : "",
	                     d->created_at > 0 ? d->created_at : store_now());
	if (rc == STORE_EEXIST) snprintf(err, errlen, "dataset %s/%s already exists", d->owner, d->name);
	return rc < 0 ? rc : 0;
}

int store_dataset_get(Store *st, const char *owner, const char *name, StoreDataset *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	int rc = store_one(st, rows_dataset_item, out, "reading the dataset", err, errlen, SQL_DATASET, "tt", owner, name);
	if (rc == 0) {
		snprintf(err, errlen, "no dataset %s/%s", owner, name);
		return STORE_ENOTFOUND;
	}
	return rc < 0 ? rc : 0;
}

int store_dataset_list(Store *st, const char *owner, StoreDataset **out, int *n, char *err, size_t errlen)
{
	void *v;
	int rc = store_list(st, &v, n, sizeof **out, rows_dataset_item, "listing datasets", err, errlen,
	                    owner ? SQL_DATASETS_OWNER : SQL_DATASETS, "t", owner);
	*out = v;
	if (rc < 0) {
		for (int i = 0; i < *n; i++) store_dataset_clear(&(*out)[i]);
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int store_dataset_delete(Store *st, const char *owner, const char *name, char *err, size_t errlen)
{
	int rc = store_write(st, "deleting the dataset", err, errlen, SQL_DATASET_DELETE, "tt", owner, name);
	if (rc == 0) {
		snprintf(err, errlen, "no dataset %s/%s", owner, name);
		return STORE_ENOTFOUND;
	}
	return rc < 0 ? rc : 0;
}

/* count(*) and sum(bytes) of one owner's datasets. */
typedef struct Usage { int64_t count, bytes; } Usage;

static int read_usage(const StoreRow *r, void *item)
{
	Usage *u = item;
	u->count = r->ops->i64(r->res, r->row, 0);
	u->bytes = r->ops->i64(r->res, r->row, 1);
	return 0;
}

int store_dataset_usage(Store *st, const char *owner, int64_t *count, int64_t *bytes, char *err, size_t errlen)
{
	Usage u = { 0, 0 };
	int rc = store_one(st, read_usage, &u, "counting datasets", err, errlen, SQL_DATASET_USAGE, "t", owner);
	*count = u.count;
	*bytes = u.bytes;
	return rc < 0 ? rc : 0;
}

int store_dataset_user(Store *st, const char *path, int64_t *job, char *err, size_t errlen)
{
	*job = 0;
	/* The stored spec holds resolved paths as JSON strings: the directory itself ("...dir") or a
	 * file beneath it ("...dir/x"). '/' needs no JSON escape. */
	char a[4200], b[4200];
	snprintf(a, sizeof a, "\"%s\"", path);
	snprintf(b, sizeof b, "\"%s/", path);
	int rc = store_one(st, rows_i64_item, job, "finding jobs that use the dataset", err, errlen,
	                   store_pg(st) ? SQL_DATASET_USER_PG : SQL_DATASET_USER_SQLITE, "tt", a, b);
	return rc < 0 ? rc : 0;
}

void store_dataset_clear(StoreDataset *d)
{
	if (!d) return;
	free(d->summary);
	free(d->path);
	d->summary = d->path = NULL;
}
