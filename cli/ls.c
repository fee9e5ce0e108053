/* ls.c - `ssld ls`: the server's jobs as a table (or its JSON), newest first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../storage/store.h"
#include "args.h"
#include "client.h"
#include "commands.h"
#include "format.h"
#include "suggest.h"

/* Every name of a comma-separated --state list is a job state: 0, or -1 after naming the first
 * that is not (with the nearest state). The server checks it too; here the mistake gets a hint. */
static int check_states(const char *list)
{
	const char *names[JOB_STATE_COUNT];
	for (int i = 0; i < JOB_STATE_COUNT; i++) names[i] = job_state_name((JobState)i);
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		char word[32];
		snprintf(word, sizeof word, "%.*s", (int)(n < sizeof word ? n : sizeof word - 1), p);
		int known = 0;
		for (int i = 0; i < JOB_STATE_COUNT; i++) known |= strcmp(word, names[i]) == 0;
		if (!known) {
			const char *near = cli_suggest(word, names, sizeof names[0], JOB_STATE_COUNT);
			fprintf(stderr, "ssld ls: --state: unknown state '%s'", word);
			if (near) fprintf(stderr, "; did you mean '%s'?", near);
			fprintf(stderr, " (states:");
			for (int i = 0; i < JOB_STATE_COUNT; i++) fprintf(stderr, "%s %s", i ? "," : "", names[i]);
			fprintf(stderr, ")\n");
			return -1;
		}
		p += n;
		if (*p == ',') p++;
	}
	return 0;
}

int cli_ls_main(int argc, char **argv)
{
	enum { O_STATE, O_OWNER, O_LIMIT, O_JSON, O_CLIENT };
	CliOpt opts[] = { { "--state", "S,..", NULL, 0 }, { "--owner", "NAME", NULL, 0 }, { "--limit", "N", NULL, 0 },
	                  { "--json", NULL, NULL, 0 }, CLIENT_OPTS };
	const char *pos[1];
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 6, pos, 0, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	double limit = 50;
	if (opts[O_LIMIT].value && cli_number("ls", "--limit", opts[O_LIMIT].value, 1, 1000, &limit) < 0) return 2;
	if (opts[O_STATE].value && check_states(opts[O_STATE].value) < 0) return 2;
	Client c;
	if (client_init(&c, "ls", &opts[O_CLIENT]) != 0) return 2;
	char path[512];
	int n = snprintf(path, sizeof path, "/v1/jobs?limit=%d", (int)limit);
	/* States and owners are plain tokens; anything a URL would need escaped is refused by the server anyway. */
	if (opts[O_STATE].value) n += snprintf(path + n, sizeof path - (size_t)n, "&state=%s", opts[O_STATE].value);
	if (opts[O_OWNER].value && n < (int)sizeof path)
		snprintf(path + n, sizeof path - (size_t)n, "&owner=%s", opts[O_OWNER].value);
	cJSON *j = client_get_json(&c, "ls", path, NULL);
	if (!j) return 1;
	if (opts[O_JSON].given) {
		client_print_json(j);
		cJSON_Delete(j);
		return 0;
	}
	const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(j, "jobs");
	if (cJSON_GetArraySize(jobs) == 0) printf("no jobs\n");
	else printf("%-6s %-10s %-20s %-12s %-24s %s\n", "ID", "STATE", "METHOD", "OWNER", "PROGRESS", "NAME");
	const cJSON *job;
	cJSON_ArrayForEach(job, jobs) {
		char prog[64];
		cli_fmt_progress(job, prog, sizeof prog);
		printf("%-6lld %-10s %-20s %-12s %-24s %s\n", (long long)cli_json_num(job, "id", 0),
		       cli_json_str(job, "state", "?"), cli_json_str(job, "method", "?"), cli_json_str(job, "owner", "-"), prog,
		       cli_json_str(job, "name", ""));
	}
	cJSON_Delete(j);
	return 0;
}
