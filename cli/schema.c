/* schema.c - `ssld schema`: the JSON Schema of a job spec on standard output (the same document
 * as GET /v1/schema), so an editor can validate and complete job files offline:
 *   ssld schema > ssld-job.schema.json
 */
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../workers/spec_schema.h"

int cli_schema_main(int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "ssld schema: unexpected argument '%s' (it takes none)\n", argv[1]);
		return 2;
	}
	char *s = jobspec_schema_json();
	if (!s) {
		fprintf(stderr, "ssld schema: out of memory\n");
		return 1;
	}
	puts(s);
	free(s);
	fflush(stdout);
	return ferror(stdout) ? 1 : 0;
}
