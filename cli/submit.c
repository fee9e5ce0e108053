/* submit.c - `ssld submit JOB.json [--watch]`: queue a job on the server and print its id (only
 * the id on stdout, so `id=$(ssld submit job.json)` works); --watch then follows it. The server
 * validates the spec; its errors are shown as they come (every one of them). */
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "client.h"
#include "commands.h"
#include "format.h"

/* A sweep's answer: the group's job ids on stdout, one per line; --watch follows them in turn.
 * 0 when every job succeeded (or without --watch), 1 otherwise. */
static int submitted_group(const Client *c, const cJSON *ans, int watch, double interval)
{
	long long gid = (long long)cli_json_num(ans, "group", 0);
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(ans, "jobs"), *e;
	int n = cJSON_GetArraySize(ids), rc = 0;
	cJSON_ArrayForEach(e, ids) printf("%lld\n", (long long)e->valuedouble);
	fflush(stdout);
	fprintf(stderr, "queued group %lld: %d jobs (%d settings x %d seeds); see `ssld group %lld`\n", gid, n,
	        (int)cli_json_num(ans, "settings", 0), (int)cli_json_num(ans, "seeds", 0), gid);
	if (!watch) return 0;
	cJSON_ArrayForEach(e, ids) rc |= client_watch(c, (long long)e->valuedouble, interval) != 0;
	return rc;
}

int cli_submit_main(int argc, char **argv)
{
	enum { O_WATCH, O_INTERVAL, O_CLIENT };
	CliOpt opts[] = { { "--watch", NULL, NULL, 0 }, { "--interval", "SECONDS", NULL, 0 }, CLIENT_OPTS };
	const char *pos[1];
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 4, pos, 1, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	if (npos == 0) {
		fprintf(stderr, "ssld submit: needs a job file (JSON; - for stdin)\n");
		return 2;
	}
	double interval = 1.0;
	if (opts[O_INTERVAL].value && cli_number("submit", "--interval", opts[O_INTERVAL].value, 0.05, 3600, &interval) < 0)
		return 2;
	Client c;
	if (client_init(&c, "submit", &opts[O_CLIENT]) != 0) return 2;
	char err[768];
	size_t n;
	char *buf = cli_read_file(pos[0], &n, err, sizeof err);
	if (!buf) {
		fprintf(stderr, "ssld submit: %s\n", err);
		return 1;
	}
	ClientResp r;
	rc = client_http(&c, "POST", "/v1/jobs", buf, n, &r, err, sizeof err);
	free(buf);
	if (rc < 0) {
		fprintf(stderr, "ssld submit: %s\n", err);
		return 1;
	}
	if (r.status != 201) {
		client_server_error("submit", &r);
		free(r.body);
		return 1;
	}
	cJSON *j = cJSON_Parse(r.body);
	free(r.body);
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "group"))) {
		rc = submitted_group(&c, j, opts[O_WATCH].given, interval);
		cJSON_Delete(j);
		return rc;
	}
	long long id = (long long)cli_json_num(j, "id", 0);
	cJSON_Delete(j);
	if (id <= 0) {
		fprintf(stderr, "ssld submit: the server's answer has no job id\n");
		return 1;
	}
	printf("%lld\n", id);
	fflush(stdout);
	if (!opts[O_WATCH].given) {
		fprintf(stderr, "queued as job %lld; follow it with `ssld watch %lld`, see `ssld results %lld` when done\n", id, id, id);
		return 0;
	}
	fprintf(stderr, "queued as job %lld\n", id);
	return client_watch(&c, id, interval);
}
