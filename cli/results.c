/* results.c - `ssld results ID`: the evaluation table of a finished job (format.h prints it the
 * way `ssld run` and `ssld watch` do), or its results object with --json. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "client.h"
#include "commands.h"
#include "format.h"

int cli_results_main(int argc, char **argv)
{
	long long id;
	int json, status;
	cJSON *j = client_fetch_job(argc, argv, &id, &json, &status);
	if (!j) return status;
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
	int rc = 0;
	if (!cJSON_IsObject(res)) {
		const char *state = cli_json_str(j, "state", "?"), *error = cli_json_str(j, "error", NULL);
		int ended = strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0;
		fprintf(stderr, "ssld results: job %lld is %s%s%s; %s\n", id, state, error ? ": " : "", error ? error : "",
		        ended ? "it has no results" : "results appear when it succeeds");
		rc = 1;
	} else if (json) {
		client_print_json(res);
	} else {
		printf("job %lld  %s  (%s)\n", id, cli_json_str(j, "name", ""), cli_json_str(j, "method", "?"));
		cli_print_results(stdout, res);
	}
	cJSON_Delete(j);
	return rc;
}
