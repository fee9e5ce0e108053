/* check.h - `ssld check JOB.json [--json]`: every error of a job file, or its resolved spec and
 * what it will cost (parameters, peak memory of a training step, steps), without running it. */
#ifndef SSLD_CLI_CHECK_H
#define SSLD_CLI_CHECK_H

/* argv[0] is "check". Returns the exit status: 0 valid, 1 invalid, 2 usage or unreadable file. */
int cli_check_main(int argc, char **argv);

#endif
