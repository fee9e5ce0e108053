/* support.h - setup helpers shared by the C tests: a scratch directory per test run, removed
 * at the end, and running a helper program (the Python reference checks). Assertions live in
 * check.h. */
#ifndef SSLD_TESTS_SUPPORT_H
#define SSLD_TESTS_SUPPORT_H

/* Creates $TMPDIR/ssld-<tag>-XXXXXX (/tmp without TMPDIR) and returns its path (free() it), or
 * NULL after printing why. */
char *test_tmpdir(const char *tag);

/* Removes dir and everything below it; complains on stderr about what it could not remove. */
void test_rmtree(const char *dir);

/* Runs argv[0] (a path) with argv (NULL-terminated) and waits: its exit status, or -1 after
 * printing why it could not run or how it died. */
int test_run(const char *const argv[]);

#endif
