/* ls.c - `ssld ls`: the server's jobs as a table (or its JSON), newest first: state, owner, age,
 * how long it ran, progress, and the result it is scanned for (format.h: the headline "+7.9 pts
 * @1%", else the best accuracy). The listing carries no results, so a succeeded job's are read
 * from GET /v1/jobs/{id}, as the dashboard's jobs table does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* The RESULT cell of one listed job: from the listing when the server put its results or headline
 * there, else (a succeeded job) from the job itself. */
static void result_cell(const Client *c, const cJSON *job, char *out, size_t cap)
{
	snprintf(out, cap, "-");
	if (strcmp(cli_json_str(job, "state", ""), "succeeded") != 0) return;
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(job, "results");
	if (!cJSON_IsObject(res) && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(job, "headline")))
		res = job;   /* a listing that carries the headline itself */
	if (cJSON_IsObject(res)) {
		cli_fmt_key_result(res, out, cap);
		return;
	}
	char path[64];
	snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)cli_json_num(job, "id", 0));
	cJSON *full = client_get_json(c, "ls", path, NULL);
	res = cJSON_GetObjectItemCaseSensitive(full, "results");
	if (cJSON_IsObject(res)) cli_fmt_key_result(res, out, cap);
	cJSON_Delete(full);
}

/* AGE since it was submitted; TIME it ran (until now while it runs). */
static void times_cells(const cJSON *job, double now, char *age, char *ran, size_t cap)
{
	double created = cli_parse_time(cli_json_str(job, "created_at", NULL));
	double started = cli_parse_time(cli_json_str(job, "started_at", NULL));
	double finished = cli_parse_time(cli_json_str(job, "finished_at", NULL));
	/* A job submitted within the last second, or a server clock slightly ahead of this one, would
	 * give a negative age: it is 0 s old. */
	cli_fmt_age(created >= 0 ? (now > created ? now - created : 0) : -1, age, cap);
	if (started < 0) snprintf(ran, cap, "-");
	else if (finished >= started) cli_fmt_duration(finished - started, ran, cap);
	else if (strcmp(cli_json_str(job, "state", ""), "running") == 0) cli_fmt_duration(now > started ? now - started : 0, ran, cap);
	else snprintf(ran, cap, "-");
}

int cli_ls_main(int argc, char **argv)
{
	enum { O_STATE, O_OWNER, O_LIMIT, O_GROUP, O_OUTPUT, O_CLIENT = O_OUTPUT + 2 };
	CliOpt opts[] = { { "--state", "S,..", NULL, 0 }, { "--owner", "NAME", NULL, 0 }, { "--limit", "N", NULL, 0 },
	                  { "--group", "ID", NULL, 0 }, OUTPUT_OPTS, CLIENT_OPTS };
	const char *pos[1];
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 8, pos, 0, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	double limit = 50;
	if (opts[O_LIMIT].value && cli_number("ls", "--limit", opts[O_LIMIT].value, 1, 1000, &limit) < 0) return 2;
	double group = 0;
	if (opts[O_GROUP].value && cli_number("ls", "--group", opts[O_GROUP].value, 1, 9e15, &group) < 0) return 2;
	if (opts[O_STATE].value && check_states(opts[O_STATE].value) < 0) return 2;
	int json = cli_output_json("ls", &opts[O_OUTPUT]);
	if (json < 0) return 2;
	Client c;
	if (client_init(&c, "ls", &opts[O_CLIENT]) != 0) return 2;
	char path[512];
	int n = snprintf(path, sizeof path, "/v1/jobs?limit=%d", (int)limit);
	/* States and owners are plain tokens; anything a URL would need escaped is refused by the server anyway. */
	if (opts[O_STATE].value) n += snprintf(path + n, sizeof path - (size_t)n, "&state=%s", opts[O_STATE].value);
	if (opts[O_OWNER].value && n < (int)sizeof path)
		n += snprintf(path + n, sizeof path - (size_t)n, "&owner=%s", opts[O_OWNER].value);
	if (group > 0 && n < (int)sizeof path)
		snprintf(path + n, sizeof path - (size_t)n, "&group=%.0f", group);
	cJSON *j = client_get_json(&c, "ls", path, NULL);
	if (!j) return 1;
	if (json) {
		client_print_json(j);
		cJSON_Delete(j);
		return 0;
	}
	const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(j, "jobs");
	if (cJSON_GetArraySize(jobs) == 0) printf("no jobs\n");
	else
		printf("%-6s %-10s %-18s %-10s %5s %8s %-20s %-14s %s\n", "ID", "STATE", "METHOD", "OWNER", "AGE", "TIME",
		       "PROGRESS", "RESULT", "NAME");
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double now = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
	const cJSON *job;
	cJSON_ArrayForEach(job, jobs) {
		char prog[64], age[32], ran[32], result[64];
		/* A succeeded job's last stage is noise beside its result. */
		if (strcmp(cli_json_str(job, "state", ""), "succeeded") == 0) snprintf(prog, sizeof prog, "100%%");
		else cli_fmt_progress(job, prog, sizeof prog);
		times_cells(job, now, age, ran, sizeof age);
		result_cell(&c, job, result, sizeof result);
		/* A sweep's job: its group after the name (ssld group ID shows the group). */
		char grp[32] = "";
		if (cli_json_num(job, "group", 0) > 0) snprintf(grp, sizeof grp, "  [group %.0f]", cli_json_num(job, "group", 0));
		printf("%-6lld %-10s %-18s %-10s %5s %8s %-20s %-14s %s%s\n", (long long)cli_json_num(job, "id", 0),
		       cli_json_str(job, "state", "?"), cli_json_str(job, "method", "?"), cli_json_str(job, "owner", "-"), age,
		       ran, prog, result, cli_json_str(job, "name", ""), grp);
	}
	cJSON_Delete(j);
	return 0;
}
