/* cli_run.h - `ssld run job.json [--out DIR]`: one job in the foreground, no daemon. */
#ifndef SSLD_WORKERS_CLI_RUN_H
#define SSLD_WORKERS_CLI_RUN_H

/* argv[0] is "run". Returns the process exit status (0 ok, 1 job failed, 2 usage). */
int cli_run_main(int argc, char **argv);

#endif
