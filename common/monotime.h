/* monotime.h - the monotonic clock in seconds: durations, timeouts and rates (never dates). One
 * definition for the daemon, the engine and the CLI, header-only so any layer may use it. */
#ifndef SSLD_COMMON_MONOTIME_H
#define SSLD_COMMON_MONOTIME_H

#include <time.h>

static inline double mono_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
