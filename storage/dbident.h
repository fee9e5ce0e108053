/* dbident.h - is the database file this process opened still the one at its path?
 *
 * SQLite keeps writing to an open file after it was deleted or replaced (rm, a restore copied over
 * it with mv): every commit then "succeeds" into an unlinked inode and is lost at the next start.
 * A DbIdent remembers the device and inode of the database (and of its -wal file once it exists)
 * and compares them with what the path names now. The first mismatch is latched: the Store then
 * refuses every operation with the reason, so no write is acknowledged that is not durable.
 *
 *   DbIdent id;
 *   dbident_init(&id, "/var/lib/ssld/ssld.db", err, sizeof err);
 *   if (dbident_check(&id, err, sizeof err) < 0) ...   // "database /var/lib/ssld/ssld.db was deleted ..."
 *   dbident_close(&id);
 *
 * Cheap (one or two stat calls): meant to run before every transaction.
 */
#ifndef SSLD_STORAGE_DBIDENT_H
#define SSLD_STORAGE_DBIDENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct DbIdent {
	char *path, *wal_path;
	dev_t dev, wal_dev;
	ino_t ino, wal_ino;
	atomic_int have_wal;       /* the -wal file's identity is known */
	atomic_int lost;           /* latched: the reason is in why */
	pthread_mutex_t mu;        /* guards why and the -wal identity's first recording */
	char why[600];
} DbIdent;

/* Records the identity of the file at path (which must exist). 0, or < 0 with err. */
int dbident_init(DbIdent *d, const char *path, char *err, size_t errlen);
/* 0 while the path still names the same database (and -wal) file; < 0 with err saying what
 * happened and what to do, now and for every later call. */
int dbident_check(DbIdent *d, char *err, size_t errlen);
void dbident_close(DbIdent *d);

#endif
