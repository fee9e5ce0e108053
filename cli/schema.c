/* schema.c - `ssld schema`: the JSON Schema of a job spec on standard output (the same document
 * as GET /v1/schema), so an editor can validate and complete job files offline:
 *   ssld schema > ssld-job.schema.json
 * `ssld schema --markdown` prints the same reference for people: docs/spec.md.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../workers/spec_docs.h"
#include "../workers/spec_schema.h"
#include "args.h"
#include "commands.h"

int cli_schema_main(int argc, char **argv)
{
	CliOpt opts[] = { { "--markdown", NULL, NULL, 0 } };
	const char *pos[1];
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 1, pos, 0, &npos);
	if (rc != CLI_ARGS_OK)
		return rc == CLI_ARGS_HELP ? 0 : 2;
	int markdown = opts[0].given > 0;
	char *s = markdown ? jobspec_docs_markdown() : jobspec_schema_json();
	if (!s) {
		fprintf(stderr, "ssld schema: out of memory\n");
		return 1;
	}
	fputs(s, stdout);
	if (!markdown)
		fputc('\n', stdout);
	free(s);
	fflush(stdout);
	return ferror(stdout) ? 1 : 0;
}
