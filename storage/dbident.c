/* dbident.c - the database file's identity check (see dbident.h).
 *
 * It compares st_dev/st_ino of the path with those recorded at open, and latches the first
 * difference. It does not try to repair anything: the data written since the deletion lives only
 * in the unlinked inode, and the safe answer is to refuse further writes and say so.
 */
#include "dbident.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

int dbident_init(DbIdent *d, const char *path, char *err, size_t errlen)
{
	memset(d, 0, sizeof *d);
	pthread_mutex_init(&d->mu, NULL);
	size_t n = strlen(path);
	d->path = strdup(path);
	d->wal_path = malloc(n + 5);
	if (!d->path || !d->wal_path) {
		snprintf(err, errlen, "%s: out of memory", path);
		dbident_close(d);
		return -1;
	}
	memcpy(d->wal_path, path, n);
	memcpy(d->wal_path + n, "-wal", 5);
	struct stat sb;
	if (stat(path, &sb) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		dbident_close(d);
		return -1;
	}
	d->dev = sb.st_dev;
	d->ino = sb.st_ino;
	if (stat(d->wal_path, &sb) == 0) {
		d->wal_dev = sb.st_dev;
		d->wal_ino = sb.st_ino;
		atomic_store(&d->have_wal, 1);
	}
	return 0;
}

static int latch(DbIdent *d, const char *what, const char *path, char *err, size_t errlen)
{
	pthread_mutex_lock(&d->mu);
	if (!atomic_load(&d->lost)) {
		snprintf(d->why, sizeof d->why,
		         "the database file %s was %s while ssld was running; nothing more is written so "
		         "that no write is acknowledged that would be lost - restore the file and restart "
		         "ssld (a restart without it starts with an empty database)",
		         path, what);
		atomic_store(&d->lost, 1);
		slog(LOG_ERR, 0, "%s", d->why);
	}
	snprintf(err, errlen, "%s", d->why);
	pthread_mutex_unlock(&d->mu);
	return -1;
}

int dbident_check(DbIdent *d, char *err, size_t errlen)
{
	if (!d->path)
		return 0;
	if (atomic_load(&d->lost)) {
		pthread_mutex_lock(&d->mu);
		snprintf(err, errlen, "%s", d->why);
		pthread_mutex_unlock(&d->mu);
		return -1;
	}
	struct stat sb;
	if (stat(d->path, &sb) != 0)
		return latch(d, errno == ENOENT ? "deleted" : "made unreachable", d->path, err, errlen);
	if (sb.st_dev != d->dev || sb.st_ino != d->ino)
		return latch(d, "replaced by another file", d->path, err, errlen);
	int wal = stat(d->wal_path, &sb) == 0;
	if (!atomic_load(&d->have_wal)) {
		/* Not there at open (a read-only start, or before the first connection): learn it once. */
		if (wal) {
			pthread_mutex_lock(&d->mu);
			if (!atomic_load(&d->have_wal)) {
				d->wal_dev = sb.st_dev;
				d->wal_ino = sb.st_ino;
				atomic_store(&d->have_wal, 1);
			}
			pthread_mutex_unlock(&d->mu);
		}
		return 0;
	}
	/* The Store keeps a connection open, so SQLite never removes or recreates its -wal file. */
	if (!wal)
		return latch(d, "left without its write-ahead log (the -wal file was deleted)", d->path,
		             err, errlen);
	if (sb.st_dev != d->wal_dev || sb.st_ino != d->wal_ino)
		return latch(d, "given another write-ahead log (the -wal file was replaced)", d->path, err,
		             errlen);
	return 0;
}

void dbident_close(DbIdent *d)
{
	free(d->path);
	free(d->wal_path);
	d->path = d->wal_path = NULL;
	pthread_mutex_destroy(&d->mu);
}
