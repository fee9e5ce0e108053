/* commands.h - the command table of the `ssld` binary: every command's name, one-line summary,
 * usage and entry point. `ssld` (bare or `help`) prints the table, `ssld CMD --help` prints CMD's
 * usage, an unknown command gets the nearest name; daemon/main.c dispatches through it.
 *
 *   int main(int argc, char **argv) { return cli_dispatch(argc, argv); }
 *
 * Each command lives in its own file of cli/ (`ssld serve` in daemon/serve.c). Every entry point
 * takes argv[0] = the command's name and returns the exit status: 0 ok, 1 failure, 2 usage.
 * A new command is one file and one row of the table in commands.c.
 */
#ifndef SSLD_CLI_COMMANDS_H
#define SSLD_CLI_COMMANDS_H

#include <stdio.h>

typedef int (*cli_main_cb)(int argc, char **argv);

typedef struct CliCommand {
	const char *name;      /* "submit" */
	const char *summary;   /* one line for the table */
	const char *usage;     /* "usage: ssld submit ...", then the options, each line ending in \n */
	cli_main_cb main;
} CliCommand;

/* The table, and its length. */
extern const CliCommand cli_commands[];
extern const int cli_n_commands;

/* `ssld ARGS...`: picks the command (help when none) and returns the process's exit status. */
int cli_dispatch(int argc, char **argv);
/* The entry of NAME, or NULL. */
const CliCommand *cli_command_find(const char *name);
/* Prints NAME's usage to f. */
void cli_command_usage(const char *name, FILE *f);

/* ---- entry points, one per file ------------------------------------------------------------ */
int cli_run_main(int argc, char **argv);        /* run.c */
int cli_check_main(int argc, char **argv);      /* check.c */
int cli_schema_main(int argc, char **argv);     /* schema.c */
int cli_methods_main(int argc, char **argv);    /* methods.c */
int cli_generate_main(int argc, char **argv);   /* generate.c */
int cli_export_main(int argc, char **argv);     /* export.c */
int cli_token_main(int argc, char **argv);      /* token.c */
int cli_migrate_main(int argc, char **argv);    /* migrate.c */
int cli_submit_main(int argc, char **argv);     /* submit.c */
int cli_ls_main(int argc, char **argv);         /* ls.c */
int cli_show_main(int argc, char **argv);       /* show.c */
int cli_watch_main(int argc, char **argv);      /* watch.c */
int cli_logs_main(int argc, char **argv);       /* logs.c */
int cli_metrics_main(int argc, char **argv);    /* metrics.c */
int cli_group_main(int argc, char **argv);      /* group.c */
int cli_cancel_main(int argc, char **argv);     /* cancel.c */
int cli_dataset_main(int argc, char **argv);    /* dataset.c */
int cli_results_main(int argc, char **argv);    /* results.c */
int cli_artifacts_main(int argc, char **argv);  /* artifacts.c */

#endif
