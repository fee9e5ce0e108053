/* logs.c - `ssld logs ID [--follow]`: a job's event log (GET /v1/jobs/{id}/events) - start, data
 * and model summaries, checkpoints, evaluations, the outcome - one line per event, oldest first.
 * --follow keeps polling with the cursor until the job has ended and its last events are shown.
 * --output json prints the API's answer, every page in one; with --follow one event object per
 * line (JSON Lines) as they come. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "client.h"
#include "commands.h"
#include "format.h"

enum { PAGE = 1000 };   /* the server's largest page */

/* Prints the events after *cursor and moves it on; the number printed, or -1 after an error.
 * Into all (the --output json answer) instead when it is given; as JSON lines when lines is set. */
static int print_page(const Client *c, long long id, long long *cursor, cJSON *all, int lines)
{
	char path[128];
	snprintf(path, sizeof path, "/v1/jobs/%lld/events?after=%lld&limit=%d", id, *cursor, PAGE);
	cJSON *j = client_get_json(c, "logs", path, NULL);
	if (!j) return -1;
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "events"), *e;
	int n = 0;
	cJSON_ArrayForEach(e, ev) {
		n++;
		if (all) continue;
		if (lines) {
			char *text = cJSON_PrintUnformatted(e);
			if (text) printf("%s\n", text);
			cJSON_free(text);
			continue;
		}
		char when[32];
		cli_fmt_time(cli_json_str(e, "time", NULL), when, sizeof when);
		printf("%s  %-7s %s\n", when, cli_json_str(e, "level", "?"), cli_json_str(e, "message", ""));
	}
	*cursor = (long long)cli_json_num(j, "cursor", (double)*cursor);
	if (all) {
		cJSON *dst = cJSON_GetObjectItemCaseSensitive(all, "events");
		cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "events");
		while (src && src->child) cJSON_AddItemToArray(dst, cJSON_DetachItemViaPointer(src, src->child));
		cJSON_ReplaceItemInObjectCaseSensitive(all, "cursor", cJSON_CreateNumber((double)*cursor));
	}
	cJSON_Delete(j);
	fflush(stdout);
	return n;
}

static int job_ended(const Client *c, long long id, int *ended)
{
	char path[64];
	snprintf(path, sizeof path, "/v1/jobs/%lld", id);
	cJSON *j = client_get_json(c, "logs", path, NULL);
	if (!j) return -1;
	const char *s = cli_json_str(j, "state", "");
	*ended = strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0;
	cJSON_Delete(j);
	return 0;
}

int cli_logs_main(int argc, char **argv)
{
	enum { O_FOLLOW, O_INTERVAL, O_OUTPUT, O_CLIENT = O_OUTPUT + 2 };
	CliOpt opts[] = { { "--follow", NULL, NULL, 0 }, { "--interval", "SECONDS", NULL, 0 }, OUTPUT_OPTS, CLIENT_OPTS };
	const char *pos[1];
	long long id;
	double interval = 1.0;
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 6, pos, 1, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	if (client_parse_id("logs", npos ? pos[0] : NULL, &id) < 0) return 2;
	int json = cli_output_json("logs", &opts[O_OUTPUT]);
	if (json < 0) return 2;
	if (opts[O_INTERVAL].value && cli_number("logs", "--interval", opts[O_INTERVAL].value, 0.05, 3600, &interval) < 0)
		return 2;
	Client c;
	if (client_init(&c, "logs", &opts[O_CLIENT]) != 0) return 2;
	long long cursor = 0;
	int follow = opts[O_FOLLOW].given > 0;
	cJSON *all = NULL;
	if (json && !follow) {
		all = cJSON_CreateObject();
		cJSON_AddNumberToObject(all, "job", (double)id);
		cJSON_AddNumberToObject(all, "cursor", 0);
		cJSON_AddArrayToObject(all, "events");
	}
	for (;;) {
		/* Whether the job had ended is asked before reading: its last events are then all stored. */
		int ended = 1;
		if (follow && job_ended(&c, id, &ended) < 0) return 1;
		int n;
		while ((n = print_page(&c, id, &cursor, all, json)) == PAGE) {}
		if (n < 0) {
			cJSON_Delete(all);
			return 1;
		}
		if (ended) break;
		usleep((useconds_t)(interval * 1e6));
	}
	if (all) client_print_json(all);
	cJSON_Delete(all);
	return 0;
}
