/* check.h - tiny assertion helpers shared by the data tests: a failed CHECK prints where and why
 * and makes the test exit non-zero at the end (the test keeps going to report everything). */
#ifndef SSLD_TESTS_DATA_CHECK_H
#define SSLD_TESTS_DATA_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;

#define CHECK(cond, ...)                                                              \
	do {                                                                              \
		if (!(cond)) {                                                                \
			check_failures++;                                                         \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
			fprintf(stderr, __VA_ARGS__);                                             \
			fputc('\n', stderr);                                                      \
		}                                                                             \
	} while (0)

/* err must contain every needle */
#define CHECK_MSG(rc, err, needle)                                                    \
	CHECK((rc) < 0 && strstr((err), (needle)) != NULL, "rc=%d err='%s' want '%s'",    \
	      (int)(rc), (err), (needle))

static inline int check_done(const char *name)
{
	if (check_failures) {
		fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
		return 1;
	}
	printf("%s: all checks passed\n", name);
	return 0;
}

#endif
