/* statelock.h - one daemon per state directory.
 *
 * The lock is an flock on the state directory itself (which cannot be deleted while it holds the
 * database) and on STATE_DIR/ssld.lock, which also records the holder's pid for the refusal
 * message. Deleting ssld.lock therefore does not let a second daemon in; the holder notices the
 * file is gone or replaced (statelock_check, from a timer) and writes it again.
 *
 *   StateLock l;
 *   if (statelock_acquire(&l, "/var/lib/ssld", err, sizeof err) < 0) die(err);
 *       // err: "state directory /var/lib/ssld is in use by another ssld (pid 4242)"
 *   statelock_check(&l, note, sizeof note);     // 1 if ssld.lock had to be written again
 *   statelock_release(&l);
 */
#ifndef SSLD_DAEMON_STATELOCK_H
#define SSLD_DAEMON_STATELOCK_H

#include <stddef.h>
#include <sys/types.h>

typedef struct StateLock {
	int dir_fd, file_fd;
	dev_t dev;
	ino_t ino;          /* of ssld.lock as this daemon wrote it */
	char path[1200];    /* STATE_DIR/ssld.lock */
} StateLock;

/* 0, or < 0 with err saying why: another daemon holds it (naming its pid when known), the
 * directory is read-only, or it cannot be opened. */
int statelock_acquire(StateLock *l, const char *state_dir, char *err, size_t errlen);
/* 0 when ssld.lock is still the file this daemon locked; 1 when it was deleted or replaced and
 * has been written again (note says what happened); < 0 when it could not be (note says why). */
int statelock_check(StateLock *l, char *note, size_t len);
void statelock_release(StateLock *l);

#endif
