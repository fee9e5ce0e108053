/* support.c - scratch directories and child programs for the C tests (see support.h). Linked into every C test
 * executable through test_support_dep; it holds no assertions and no test logic. */
#include "support.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char *test_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char path[512];
	snprintf(path, sizeof path, "%s/ssld-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (!mkdtemp(path)) {
		fprintf(stderr, "mkdtemp %s: %s\n", path, strerror(errno));
		return NULL;
	}
	char *d = strdup(path);
	if (!d)
		fprintf(stderr, "out of memory for the path %s\n", path);
	return d;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "warning: could not remove %s: %s\n", path, strerror(errno));
	return 0;
}

void test_rmtree(const char *dir)
{
	if (dir && *dir)
		nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int test_run(const char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "fork for %s: %s\n", argv[0], strerror(errno));
		return -1;
	}
	if (pid == 0) {
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "waiting for %s: %s\n", argv[0], strerror(errno));
			return -1;
		}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	fprintf(stderr, "%s died of signal %d\n", argv[0], WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return -1;
}
