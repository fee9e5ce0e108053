/* statelock.c - the state directory's single-daemon lock (see statelock.h).
 *
 * Why the directory: a lock on a file is only as good as the file's name. `rm ssld.lock` leaves
 * the first daemon holding a lock on an unlinked inode and lets the next one lock a new file; the
 * directory's inode cannot be replaced while the database lives in it. ssld.lock stays as the
 * place where the holder's pid is written and as the lock older versions look for.
 */
#include "statelock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* The pid recorded in ssld.lock, or 0 when none can be read. */
static long holder_pid(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	long pid = 0;
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 0)
		pid = 0;
	fclose(f);
	return pid;
}

static void in_use(const char *state_dir, const char *path, char *err, size_t errlen)
{
	long pid = holder_pid(path);
	if (pid > 0)
		snprintf(err, errlen, "state directory %s is in use by another ssld (pid %ld, from %s)",
		         state_dir, pid, path);
	else
		snprintf(err, errlen, "state directory %s is in use by another ssld (its pid is unknown: "
		         "%s is missing or empty)", state_dir, path);
}

/* Writes our pid into the locked file and remembers its identity. */
static int record_pid(StateLock *l)
{
	char text[32];
	int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
	struct stat sb;
	if (ftruncate(l->file_fd, 0) != 0 || pwrite(l->file_fd, text, (size_t)n, 0) != n ||
	    fstat(l->file_fd, &sb) != 0)
		return -1;
	l->dev = sb.st_dev;
	l->ino = sb.st_ino;
	return 0;
}

static int open_lock_file(StateLock *l, const char *state_dir, char *err, size_t errlen)
{
	l->file_fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (l->file_fd >= 0)
		return 0;
	if (errno == EROFS)
		snprintf(err, errlen, "state directory %s is on a read-only file system: ssld needs to "
		         "write its database and job files there (cannot create %s)", state_dir, l->path);
	else if (errno == EACCES || errno == EPERM)
		snprintf(err, errlen, "state directory %s is not writable by this user (uid %ld): "
		         "cannot create %s: %s", state_dir, (long)geteuid(), l->path, strerror(errno));
	else
		snprintf(err, errlen, "state directory %s: cannot create %s: %s", state_dir, l->path,
		         strerror(errno));
	return -1;
}

int statelock_acquire(StateLock *l, const char *state_dir, char *err, size_t errlen)
{
	l->dir_fd = l->file_fd = -1;
	if (snprintf(l->path, sizeof l->path, "%s/ssld.lock", state_dir) >= (int)sizeof l->path) {
		snprintf(err, errlen, "state directory %s: path too long", state_dir);
		return -1;
	}
	l->dir_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dir_fd < 0) {
		snprintf(err, errlen, "state directory %s: %s", state_dir, strerror(errno));
		return -1;
	}
	if (flock(l->dir_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			in_use(state_dir, l->path, err, errlen);
		else
			snprintf(err, errlen, "state directory %s: cannot lock it: %s", state_dir, strerror(errno));
		goto fail;
	}
	if (open_lock_file(l, state_dir, err, errlen) < 0)
		goto fail;
	if (flock(l->file_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			in_use(state_dir, l->path, err, errlen);
		else
			snprintf(err, errlen, "state directory %s: cannot lock %s: %s", state_dir, l->path,
			         strerror(errno));
		goto fail;
	}
	if (record_pid(l) < 0) {
		snprintf(err, errlen, "state directory %s: cannot write %s: %s", state_dir, l->path,
		         strerror(errno));
		goto fail;
	}
	return 0;
fail:
	statelock_release(l);
	return -1;
}

int statelock_check(StateLock *l, char *note, size_t len)
{
	struct stat sb;
	int gone = stat(l->path, &sb) != 0;
	if (!gone && sb.st_dev == l->dev && sb.st_ino == l->ino)
		return 0;
	/* Deleted or replaced: the directory lock still holds; put the pid back where people and
	 * the next daemon's refusal message look for it. */
	int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(note, len, "%s was %s and cannot be written again: %s", l->path,
		         gone ? "deleted" : "replaced", strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(note, len, "%s was %s and another process now holds a lock on it", l->path,
		         gone ? "deleted" : "replaced");
		close(fd);
		return -1;
	}
	close(l->file_fd);
	l->file_fd = fd;
	if (record_pid(l) < 0) {
		snprintf(note, len, "%s was %s; writing it again failed: %s", l->path,
		         gone ? "deleted" : "replaced", strerror(errno));
		return -1;
	}
	snprintf(note, len, "%s was %s while this ssld runs; the state directory stays locked and "
	         "the file has been written again", l->path, gone ? "deleted" : "replaced");
	return 1;
}

void statelock_release(StateLock *l)
{
	if (l->file_fd >= 0)
		close(l->file_fd);
	if (l->dir_fd >= 0)
		close(l->dir_fd);
	l->file_fd = l->dir_fd = -1;
}
