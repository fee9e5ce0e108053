/* check.h - the assertion helpers every C test uses: a failed CHECK prints file:line, the
 * condition and a formatted message, counts the failure and lets the test go on, so one run
 * reports everything; main ends with `return check_exit("name");`, non-zero when any check failed.
 * A test that cannot run says why and exits 77 (`return check_skip("no %s", path);`).
 *
 * Header-only: each test is one executable, so the counters are per-file statics. A test that
 * reports a failure in its own words bumps `failures` itself.
 *
 *   CHECK(n == 3, "n=%d", n);          condition and a printf-style message
 *   CHECK(ok);                          condition only
 *   CHECK_MSG(rc, err, "line 4");       rc < 0 and the error text contains the needle
 */
#ifndef SSLD_TESTS_CHECK_H
#define SSLD_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int failures; /* failed checks (and failures a test reports itself) */
static int checks;   /* checks made */

__attribute__((format(printf, 4, 5), unused))
static void check_report(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;
	failures++;
	fprintf(stderr, "FAIL %s:%d: %s", file, line, cond);
	if (fmt) {
		fputs(": ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
}

/* CHECK(cond) or CHECK(cond, fmt, ...): the argument count picks the form (up to 16 arguments). */
#define CHECK(...)                                                                \
	CHECK_PICK_(__VA_ARGS__, CHECK_FMT_, CHECK_FMT_, CHECK_FMT_, CHECK_FMT_,      \
	            CHECK_FMT_, CHECK_FMT_, CHECK_FMT_, CHECK_FMT_, CHECK_FMT_,       \
	            CHECK_FMT_, CHECK_FMT_, CHECK_FMT_, CHECK_FMT_, CHECK_FMT_,       \
	            CHECK_FMT_, CHECK_COND_, 0)(__VA_ARGS__)
#define CHECK_PICK_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, \
                    which, ...)                                                   \
	which
#define CHECK_FMT_(cond, ...)                                                     \
	do {                                                                          \
		checks++;                                                                 \
		if (!(cond))                                                              \
			check_report(__FILE__, __LINE__, #cond, __VA_ARGS__);                 \
	} while (0)
#define CHECK_COND_(cond)                                                         \
	do {                                                                          \
		checks++;                                                                 \
		if (!(cond))                                                              \
			check_report(__FILE__, __LINE__, #cond, NULL);                        \
	} while (0)

/* A failure must be an error (rc < 0) whose text names what is wrong (contains needle). */
#define CHECK_MSG(rc, err, needle)                                                \
	CHECK((rc) < 0 && strstr((err), (needle)) != NULL, "rc=%d err='%s' want '%s'", \
	      (int)(rc), (err), (needle))

/* The exit status of a test: 0 when every check passed, 1 otherwise. */
__attribute__((unused))
static int check_exit(const char *name)
{
	if (failures) {
		fprintf(stderr, "%s: %d of %d check(s) failed\n", name, failures, checks);
		return 1;
	}
	printf("%s: all %d checks passed\n", name, checks);
	return 0;
}

/* Says why the test cannot run here and gives the status meson reads as skipped. */
__attribute__((format(printf, 1, 2), unused))
static int check_skip(const char *fmt, ...)
{
	va_list ap;
	fputs("SKIP: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	return 77;
}

#endif
