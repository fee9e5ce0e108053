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
	enum { O_JSON, O_CLIENT };
	CliOpt opts[] = { { "--json", NULL, NULL, 0 }, CLIENT_OPTS };
	const char *pos[1];
	long long id;
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 3, pos, 1, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	if (client_parse_id("results", npos ? pos[0] : NULL, &id) < 0) return 2;
	Client c;
	if (client_init(&c, "results", &opts[O_CLIENT]) != 0) return 2;
	char path[64];
	snprintf(path, sizeof path, "/v1/jobs/%lld", id);
	cJSON *j = client_get_json(&c, "results", path, NULL);
	if (!j) return 1;
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
	rc = 0;
	if (!cJSON_IsObject(res)) {
		const char *state = cli_json_str(j, "state", "?"), *error = cli_json_str(j, "error", NULL);
		int ended = strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0;
		fprintf(stderr, "ssld results: job %lld is %s%s%s; %s\n", id, state, error ? ": " : "", error ? error : "",
		        ended ? "it has no results" : "results appear when it succeeds");
		rc = 1;
	} else if (opts[O_JSON].given) {
		client_print_json(res);
	} else {
		printf("job %lld  %s  (%s)\n", id, cli_json_str(j, "name", ""), cli_json_str(j, "method", "?"));
		cli_print_results(stdout, res);
	}
	cJSON_Delete(j);
	return rc;
}
