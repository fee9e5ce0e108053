/* schema.c - `ssld schema`: the JSON Schema of a job spec on standard output (the same document
 * as GET /v1/schema), so an editor can validate and complete job files offline:
 *   ssld schema > ssld-job.schema.json
 * `ssld schema --markdown` prints the same reference for people: docs/spec.md.
 */
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../workers/spec_docs.h"
#include "../workers/spec_schema.h"

int cli_schema_main(int argc, char **argv)
{
	int markdown = argc == 2 && strcmp(argv[1], "--markdown") == 0;
	if (argc > 2 || (argc == 2 && !markdown)) {
		fprintf(stderr, "ssld schema: unexpected argument '%s'\nusage: ssld schema [--markdown]\n", argv[1]);
		return 2;
	}
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
