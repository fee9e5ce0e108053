/* dataset_store.h - the rows of uploaded datasets (one per owner and name) in the SQLite store.
 *
 * A row exists only for a dataset whose files are complete and in place (api/datasets.c writes
 * the files first, then the row), so the rows are what the service shows and counts for quotas.
 *
 *   StoreDataset d = { .owner = "alice", .name = "flowers", .format = "image_folder", ... };
 *   if (store_dataset_insert(st, &d, err, sizeof err) == STORE_EEXIST) ...;
 *   int64_t n, bytes;
 *   store_dataset_usage(st, "alice", &n, &bytes, err, sizeof err);
 */
#ifndef SSLD_STORAGE_DATASET_STORE_H
#define SSLD_STORAGE_DATASET_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct StoreDataset {
	char owner[64], name[64], format[16];
	int64_t bytes, files;
	char *summary;        /* JSON object text (classes, splits); owned when read */
	char *path;           /* the directory jobs read; owned when read */
	double created_at;
} StoreDataset;

/* STORE_EEXIST when the owner already has a dataset of that name. */
int store_dataset_insert(Store *st, const StoreDataset *d, char *err, size_t errlen);
/* STORE_ENOTFOUND when there is none. */
int store_dataset_get(Store *st, const char *owner, const char *name, StoreDataset *out, char *err, size_t errlen);
/* owner NULL: everyone's, by owner then name. *out is owned (clear each, then free). */
int store_dataset_list(Store *st, const char *owner, StoreDataset **out, int *n, char *err, size_t errlen);
int store_dataset_delete(Store *st, const char *owner, const char *name, char *err, size_t errlen);
int store_dataset_usage(Store *st, const char *owner, int64_t *count, int64_t *bytes, char *err, size_t errlen);
/* The id of a queued or running job whose stored spec names path (or a file beneath it), in
 * *job (0 when none). */
int store_dataset_user(Store *st, const char *path, int64_t *job, char *err, size_t errlen);
void store_dataset_clear(StoreDataset *d);

#endif
