/* methods.c - `ssld methods`: the catalogue of pretext methods (their parameters with type,
 * default and range) and evaluation protocols, as GET /v1/methods serves it; --output json prints
 * that JSON itself. Both are walks of the spec table (workers/spec_json.c); this file is only the
 * command. It needs no server: the catalogue is compiled in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../workers/jobspec.h"
#include "args.h"
#include "commands.h"

int cli_methods_main(int argc, char **argv)
{
	CliOpt opts[] = { OUTPUT_OPTS };
	const char *pos[1];
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 2, pos, 0, &npos);
	if (rc != CLI_ARGS_OK)
		return rc == CLI_ARGS_HELP ? 0 : 2;
	int json = cli_output_json("methods", opts);
	if (json < 0)
		return 2;
	if (json) {
		char *text = jobspec_catalog_json();
		if (!text) {
			fprintf(stderr, "ssld methods: out of memory building the catalogue\n");
			return 1;
		}
		size_t n = strlen(text);
		printf("%s%s", text, n && text[n - 1] == '\n' ? "" : "\n");
		free(text);
	} else if (jobspec_print_catalog(stdout) < 0) {
		return 1;
	}
	fflush(stdout);
	return ferror(stdout) ? 1 : 0;
}
