/* logs.c - `ssld logs ID [--follow]`: a job's event log (GET /v1/jobs/{id}/events) - start, data
 * and model summaries, checkpoints, evaluations, the outcome - one line per event, oldest first.
 * --follow keeps polling with the cursor until the job has ended and its last events are shown. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "client.h"
#include "commands.h"
#include "format.h"

enum { PAGE = 1000 };   /* the server's largest page */

/* Prints the events after *cursor and moves it on; the number printed, or -1 after an error. */
static int print_page(const Client *c, long long id, long long *cursor)
{
	char path[128];
	snprintf(path, sizeof path, "/v1/jobs/%lld/events?after=%lld&limit=%d", id, *cursor, PAGE);
	cJSON *j = client_get_json(c, "logs", path, NULL);
	if (!j) return -1;
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "events"), *e;
	int n = 0;
	cJSON_ArrayForEach(e, ev) {
		char when[32];
		cli_fmt_time(cli_json_str(e, "time", NULL), when, sizeof when);
		printf("%s  %-7s %s\n", when, cli_json_str(e, "level", "?"), cli_json_str(e, "message", ""));
		n++;
	}
	*cursor = (long long)cli_json_num(j, "cursor", (double)*cursor);
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
	enum { O_FOLLOW, O_INTERVAL, O_CLIENT };
	CliOpt opts[] = { { "--follow", NULL, NULL, 0 }, { "--interval", "SECONDS", NULL, 0 }, CLIENT_OPTS };
	const char *pos[1];
	long long id;
	double interval = 1.0;
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 4, pos, 1, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	if (client_parse_id("logs", npos ? pos[0] : NULL, &id) < 0) return 2;
	if (opts[O_INTERVAL].value && cli_number("logs", "--interval", opts[O_INTERVAL].value, 0.05, 3600, &interval) < 0)
		return 2;
	Client c;
	if (client_init(&c, "logs", &opts[O_CLIENT]) != 0) return 2;
	long long cursor = 0;
	for (;;) {
		/* Whether the job had ended is asked before reading: its last events are then all stored. */
		int ended = 1;
		if (opts[O_FOLLOW].given && job_ended(&c, id, &ended) < 0) return 1;
		int n;
		while ((n = print_page(&c, id, &cursor)) == PAGE) {}
		if (n < 0) return 1;
		if (ended) return 0;
		usleep((useconds_t)(interval * 1e6));
	}
}
