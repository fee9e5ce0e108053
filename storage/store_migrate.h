/* store_migrate.h - `ssld migrate`: a single node's SQLite database copied into PostgreSQL, so that
 * its queue and history carry on when the service grows to several nodes.
 *
 *   StoreMigrateStats ms;
 *   if (store_migrate("/var/lib/ssld/ssld.db", "postgresql://ssld@db/ssld", &ms, err, sizeof err) < 0) die(err);
 *
 * Every table is copied with its ids (job ids, metric cursors and event ids stay valid for clients
 * that hold them), in one PostgreSQL transaction from one SQLite read snapshot: all or nothing.
 * The target must be empty (no jobs, groups, tokens or datasets): STORE_EEXIST otherwise, naming
 * what it holds. The source is opened as ssld opens it (so an older file is brought to the current
 * schema first); stop the daemon that uses it first, or the copy misses what it writes after.
 */
#ifndef SSLD_STORAGE_STORE_MIGRATE_H
#define SSLD_STORAGE_STORE_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct StoreMigrateStats {
	int64_t groups, jobs, metrics, metric_keys, events, artifacts, tokens, datasets;   /* rows copied */
	int64_t deliveries;   /* webhook deliveries (store.h, "the outbox") */
} StoreMigrateStats;

int store_migrate(const char *from_path, const char *to_url, StoreMigrateStats *stats, char *err, size_t errlen);

#endif
