/* support.h - setup helpers shared by the C tests: a scratch directory per test run and paths
 * and files in it, running a helper program (the Python reference checks) and measuring its float
 * output against ours, and running code that must abort in a child process. Assertions live in check.h. */
#ifndef SSLD_TESTS_SUPPORT_H
#define SSLD_TESTS_SUPPORT_H

#include <stddef.h>

/* Creates $TMPDIR/ssld-<tag>-XXXXXX (/tmp without TMPDIR) and returns its path (free() it), or
 * NULL after printing why. */
char *test_tmpdir(const char *tag);

/* Removes dir and everything below it; complains on stderr about what it could not remove. */
void test_rmtree(const char *dir);

/* Runs argv[0] (a path) with argv (NULL-terminated) and waits: its exit status, or -1 after
 * printing why it could not run or how it died. */
int test_run(const char *const argv[]);

/* dir/name in a ring of static buffers: a path stays valid for the next 63 calls. */
const char *test_path(const char *dir, const char *name);

/* The whole file, malloc'd and NUL-terminated (free()), *len its size; NULL when unreadable. */
unsigned char *test_read_file(const char *path, size_t *len);

/* Writes n bytes to path (created or truncated): 0, or -1 after printing why. */
int test_write_file(const char *path, const void *data, size_t n);
/* Up to max float32 values of a raw file into out: the count, -1 when it cannot be read, -2 when
 * it holds more than max. */
long test_read_floats(const char *path, float *out, size_t max);

/* Reads the n float32 values a reference program (who) wrote to path for the case label and
 * measures ours, y, against them: *max_diff = max |y - ref| (INFINITY when a difference is NaN),
 * *max_abs = max |y|. 0, or -1 after printing "FAIL label: ..." (the count it read when that is
 * not n). */
int test_diff_floats(const char *path, const float *y, size_t n, const char *label,
                     const char *who, float *max_diff, float *max_abs);

/* Runs fn(arg) in a child process with its stderr captured into out (NUL-terminated, at most
 * cap - 1 bytes): 1 when the child died of SIGABRT, 0 when it did not, -1 when it could not run. */
int test_aborts(void (*fn)(void *arg), void *arg, char *out, size_t cap);

#endif
