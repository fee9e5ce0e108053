/* args.h - what every command of the command line shares: its options, "did you mean", reading a
 * job file.
 *
 * A command lists its options in an array and lets cli_args_parse walk argv:
 *
 *   CliOpt opts[] = { { "--out", "DIR" }, { "--quiet", NULL } };
 *   const char *pos[1];
 *   int npos, rc = cli_args_parse("run", argc, argv, opts, 2, pos, 1, &npos);
 *   if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
 *   if (opts[1].given) ...; if (opts[0].value) ...
 *
 * -h/--help prints the command's usage (from the command table) to stdout; an unknown option gets
 * the nearest known one as a suggestion (suggest.h); --name=VALUE and --name VALUE are both accepted; "-" is a
 * positional argument (standard input, where the command allows it).
 */
#ifndef SSLD_CLI_ARGS_H
#define SSLD_CLI_ARGS_H

#include <stddef.h>

typedef struct CliOpt {
	const char *name;    /* "--limit" */
	const char *arg;     /* the value's placeholder ("N"), NULL for a flag */
	const char *value;   /* out: the value given (the last one), NULL when absent */
	int given;           /* out: how many times it appeared */
} CliOpt;

enum { CLI_ARGS_OK = 0, CLI_ARGS_HELP = 1, CLI_ARGS_USAGE = 2 };

/* argv[0] is the command's name. Fills opts[].value/.given and pos[0..*npos). Returns CLI_ARGS_OK,
 * CLI_ARGS_HELP (usage printed to stdout) or CLI_ARGS_USAGE (the error printed to stderr). */
int cli_args_parse(const char *cmd, int argc, char **argv, CliOpt *opts, int nopts, const char **pos,
                   int max_pos, int *npos);
/* cli_args_parse for a command with one repeatable option (`--set K=V --set K2=V2`): every value
 * of the option named rep goes to vals[0..*nvals) in order; more than max_vals is a usage error. */
int cli_args_parse_rep(const char *cmd, int argc, char **argv, CliOpt *opts, int nopts, const char **pos,
                       int max_pos, int *npos, const char *rep, const char **vals, int max_vals, int *nvals);

/* The output options of a read command: `--output json|table` and its short form `--json`. */
#define OUTPUT_OPTS { "--output", "FORMAT", NULL, 0 }, { "--json", NULL, NULL, 0 }
/* The usage lines of OUTPUT_OPTS, for the command table. */
#define OUTPUT_USAGE "  --output json     the server's JSON instead of a table (--json is the same)\n"
/* Whether the two OUTPUT_OPTS entries ask for JSON: 1 json, 0 table, -1 after printing what is
 * wrong with --output's value. */
int cli_output_json(const char *cmd, const CliOpt out[2]);

/* The whole of a file (path "-": standard input), NUL-terminated, at most 16 MiB (a job spec or a
 * results file). NULL with err ("job.json: No such file or directory"). The caller frees. */
char *cli_read_file(const char *path, size_t *len, char *err, size_t errlen);

/* A number option's value in [lo, hi]: 0, or -1 after printing "ssld CMD: --opt: ..." */
int cli_number(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);

#endif
