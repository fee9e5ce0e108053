/* args.c - options, "did you mean" and file reading for the commands (see args.h).
 *
 * Not here: what an option means (each command's file) or the list of commands (commands.c).
 */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "suggest.h"

#define CLI_MAX_FILE (16u << 20)

/* ---- options -------------------------------------------------------------------------------- */

static CliOpt *find_opt(CliOpt *opts, int nopts, const char *name, size_t len)
{
	for (int i = 0; i < nopts; i++)
		if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) return &opts[i];
	return NULL;
}

static int usage_error(const char *cmd)
{
	fprintf(stderr, "(`ssld %s --help` shows its usage)\n", cmd);
	return CLI_ARGS_USAGE;
}

int cli_args_parse_rep(const char *cmd, int argc, char **argv, CliOpt *opts, int nopts, const char **pos,
                       int max_pos, int *npos, const char *rep, const char **vals, int max_vals, int *nvals)
{
	*npos = 0;
	if (nvals) *nvals = 0;
	int only_positional = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (only_positional || a[0] != '-' || strcmp(a, "-") == 0) {
			if (*npos == max_pos) {
				fprintf(stderr, "ssld %s: unexpected argument '%s'%s\n", cmd, a,
				        max_pos ? "" : " (it takes no arguments)");
				return usage_error(cmd);
			}
			pos[(*npos)++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_positional = 1;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			cli_command_usage(cmd, stdout);
			return CLI_ARGS_HELP;
		}
		const char *eq = strchr(a, '=');
		size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
		CliOpt *o = find_opt(opts, nopts, a, nlen);
		if (!o) {
			char name[64];
			snprintf(name, sizeof name, "%.*s", (int)nlen, a);
			const char *near = cli_suggest(name, &opts[0].name, sizeof opts[0], (size_t)nopts);
			fprintf(stderr, "ssld %s: unknown option '%s'", cmd, name);
			if (near) fprintf(stderr, "; did you mean '%s'?", near);
			fprintf(stderr, "\n");
			return usage_error(cmd);
		}
		if (!o->arg) {
			if (eq) {
				fprintf(stderr, "ssld %s: %s takes no value\n", cmd, o->name);
				return usage_error(cmd);
			}
			o->given++;
			o->value = "";
			continue;
		}
		if (eq) {
			o->value = eq + 1;
		} else if (i + 1 < argc) {
			o->value = argv[++i];
		} else {
			fprintf(stderr, "ssld %s: %s needs a value (%s %s)\n", cmd, o->name, o->name, o->arg);
			return usage_error(cmd);
		}
		if (rep && strcmp(o->name, rep) == 0) {
			if (*nvals == max_vals) {
				fprintf(stderr, "ssld %s: at most %d %s options\n", cmd, max_vals, o->name);
				return usage_error(cmd);
			}
			vals[(*nvals)++] = o->value;
		}
		o->given++;
	}
	return CLI_ARGS_OK;
}

int cli_args_parse(const char *cmd, int argc, char **argv, CliOpt *opts, int nopts, const char **pos,
                   int max_pos, int *npos)
{
	return cli_args_parse_rep(cmd, argc, argv, opts, nopts, pos, max_pos, npos, NULL, NULL, 0, NULL);
}

int cli_output_json(const char *cmd, const CliOpt out[2])
{
	if (!out[0].value) return out[1].given > 0;
	if (strcmp(out[0].value, "json") == 0) return 1;
	if (strcmp(out[0].value, "table") == 0 && !out[1].given) return 0;
	if (strcmp(out[0].value, "table") == 0) fprintf(stderr, "ssld %s: --output table and --json contradict each other\n", cmd);
	else fprintf(stderr, "ssld %s: --output: unknown format '%s' (expected json or table)\n", cmd, out[0].value);
	return -1;
}

int cli_number(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
		fprintf(stderr, "ssld %s: %s: '%s' is not a number in [%g, %g]\n", cmd, opt, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

/* ---- files ---------------------------------------------------------------------------------- */

char *cli_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	int is_stdin = strcmp(path, "-") == 0;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	const char *why = buf ? NULL : "out of memory";
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0) break;
		if (n < cap) continue;
		if (cap >= CLI_MAX_FILE) {
			why = "larger than 16 MiB; is it a job spec?";
			break;
		}
		char *nb = realloc(buf, cap * 2 + 1);
		if (!nb) {
			why = "out of memory";
			break;
		}
		buf = nb;
		cap *= 2;
	}
	if (!why && ferror(f)) why = "read error";
	if (!is_stdin) fclose(f);
	if (why) {
		snprintf(err, errlen, "%s: %s", is_stdin ? "standard input" : path, why);
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	if (len) *len = n;
	return buf;
}
