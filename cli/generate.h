/* cli_generate.h - `ssld generate JOBDIR|--spec JOB.json [--prompt TEXT] ...`: continue a prompt
 * (language models) or draw samples (generative image methods) from a job's checkpoint, in the
 * foreground, through runner_generate - the same call as POST /v1/jobs/{id}/generate. */
#ifndef SSLD_WORKERS_CLI_GENERATE_H
#define SSLD_WORKERS_CLI_GENERATE_H

/* argv[0] is "generate". Returns the process exit status (0 ok, 1 generation failed, 2 usage). */
int cli_generate_main(int argc, char **argv);

#endif
