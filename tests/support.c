/* support.c - scratch directories for the C tests (see support.h). Linked into every C test
 * executable through test_support_dep; it holds no assertions and no test logic. */
#include "support.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
