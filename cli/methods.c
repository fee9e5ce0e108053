/* methods.c - `ssld methods`: the catalogue of pretext methods (their parameters with type,
 * default and range) and evaluation protocols, as GET /v1/methods serves it. The text itself is
 * a walk of the spec table (workers/spec_json.c); this file is only the command. */
#include <stdio.h>

#include "../workers/jobspec.h"
#include "args.h"
#include "commands.h"

int cli_methods_main(int argc, char **argv)
{
	CliOpt none[1] = { { 0 } };
	const char *pos[1];
	int npos, rc = cli_args_parse(argv[0], argc, argv, none, 0, pos, 0, &npos);
	if (rc != CLI_ARGS_OK)
		return rc == CLI_ARGS_HELP ? 0 : 2;
	if (jobspec_print_catalog(stdout) < 0)
		return 1;
	fflush(stdout);
	return ferror(stdout) ? 1 : 0;
}
