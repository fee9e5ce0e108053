/* support.c - scratch directories, files, child programs and their float output, and expected
 * aborts for the C tests
 * (see support.h). Linked into every C test
 * executable through test_support_dep; it holds no assertions and no test logic. */
#include "support.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
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

const char *test_path(const char *dir, const char *name)
{
	static char ring[64][512];
	static int k;
	k = (k + 1) % 64;
	snprintf(ring[k], sizeof ring[k], "%s/%s", dir, name);
	return ring[k];
}

unsigned char *test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	unsigned char *b = NULL;
	long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
	if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)n + 1)) != NULL) {
		if (fread(b, 1, (size_t)n, f) == (size_t)n) {
			b[n] = 0;
			*len = (size_t)n;
		} else {
			free(b);
			b = NULL;
		}
	}
	fclose(f);
	return b;
}

int test_write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(data, 1, n, f) == n;
	if (f && fclose(f) != 0)
		ok = 0;
	if (!ok)
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
	return ok ? 0 : -1;
}

long test_read_floats(const char *path, float *out, size_t max)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t n = fread(out, sizeof(float), max, f);
	int extra = fgetc(f) != EOF;
	fclose(f);
	return extra ? -2 : (long)n;
}

int test_diff_floats(const char *path, const float *y, size_t n, const char *label,
                     const char *who, float *max_diff, float *max_abs)
{
	float *ref = malloc((n ? n : 1) * sizeof *ref);
	if (!ref) {
		fprintf(stderr, "FAIL %s: out of memory for %zu floats\n", label, n);
		return -1;
	}
	long got = test_read_floats(path, ref, n);
	if (got != (long)n) {
		fprintf(stderr, "FAIL %s: %s wrote %ld floats, expected %zu\n", label, who, got, n);
		free(ref);
		return -1;
	}
	float md = 0.0f, mag = 0.0f;
	for (size_t i = 0; i < n; i++) {
		float d = fabsf(y[i] - ref[i]);
		if (!(d <= md))
			md = isnan(d) ? INFINITY : d;
		mag = fmaxf(mag, fabsf(y[i]));
	}
	free(ref);
	*max_diff = md;
	*max_abs = mag;
	return 0;
}

int test_aborts(void (*fn)(void *arg), void *arg, char *out, size_t cap)
{
	int fds[2];
	out[0] = 0;
	if (pipe(fds) != 0) {
		fprintf(stderr, "pipe: %s\n", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "fork: %s\n", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		fn(arg);
		_exit(0); /* not reached when fn aborts */
	}
	close(fds[1]);
	size_t got = 0;
	ssize_t k;
	while (got < cap - 1 && (k = read(fds[0], out + got, cap - 1 - got)) > 0)
		got += (size_t)k;
	out[got] = 0;
	close(fds[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}
