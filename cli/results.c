/* results.c - `ssld results ID`: the evaluation table of a finished job (format.h prints it the
 * way `ssld run` and `ssld watch` do), or its results object with --output json. A job without
 * results gets what happened to it instead: its failure, its cancellation, or how far it is. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "client.h"
#include "commands.h"
#include "format.h"

/* Why job id has no results, on stderr. */
static void no_results(long long id, const cJSON *j)
{
	const char *state = cli_json_str(j, "state", "?"), *error = cli_json_str(j, "error", NULL);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "progress");
	long long step = (long long)cli_json_num(p, "step", 0), total = (long long)cli_json_num(p, "total", 0);
	const char *stage = cli_json_str(p, "stage", NULL);
	char where[160] = "";
	if (step > 0) snprintf(where, sizeof where, ", at step %lld of %lld%s%s", step, total, stage ? " of " : "", stage ? stage : "");
	if (strcmp(state, "failed") == 0) {
		fprintf(stderr, "ssld results: job %lld failed%s: %s\n  it has no results; `ssld logs %lld` shows what it did\n", id,
		        where, error ? error : "no reason recorded", id);
	} else if (strcmp(state, "cancelled") == 0) {
		int started = cli_json_str(j, "started_at", NULL) != NULL;
		fprintf(stderr, "ssld results: job %lld was cancelled %s%s; it has no results\n", id,
		        started ? "while running" : "while queued, before it started", started && step > 0 ? where : "");
	} else if (strcmp(state, "succeeded") == 0) {
		fprintf(stderr, "ssld results: job %lld succeeded but the server holds no results for it\n", id);
	} else {
		char prog[64];
		cli_fmt_progress(j, prog, sizeof prog);
		fprintf(stderr, "ssld results: job %lld is %s%s%s; results appear when it succeeds (`ssld watch %lld` follows it)\n",
		        id, state, strcmp(prog, "-") ? ", " : "", strcmp(prog, "-") ? prog : "", id);
	}
}

int cli_results_main(int argc, char **argv)
{
	long long id;
	int json, status;
	cJSON *j = client_fetch_job(argc, argv, &id, &json, &status);
	if (!j) return status;
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
	int rc = 0;
	if (!cJSON_IsObject(res)) {
		no_results(id, j);
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
