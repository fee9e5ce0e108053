/* group.c - `ssld group ID [--cancel] [--output json]`: a sweep's group (GET /v1/groups/{id}): its jobs'
 * states, then one row per setting with the mean +- sample std over seeds of each evaluation, the
 * best setting marked; --cancel cancels its queued and running jobs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "client.h"
#include "commands.h"
#include "format.h"

static void print_group(const cJSON *g)
{
	const cJSON *counts = cJSON_GetObjectItemCaseSensitive(g, "counts"), *c;
	printf("group %lld %s (%s): %lld jobs", (long long)cli_json_num(g, "id", 0), cli_json_str(g, "name", "-"),
	       cli_json_str(g, "owner", "-"), (long long)cli_json_num(g, "jobs", 0));
	cJSON_ArrayForEach(c, counts)
		if (c->valuedouble > 0) printf(", %d %s", (int)c->valuedouble, c->string);
	printf("\n");
	const cJSON *best = cJSON_GetObjectItemCaseSensitive(g, "best");
	int best_i = cJSON_IsObject(best) ? (int)cli_json_num(best, "setting_index", -1) : -1;
	const cJSON *sets = cJSON_GetObjectItemCaseSensitive(g, "settings"), *s;
	int i = 0;
	cJSON_ArrayForEach(s, sets) {
		char *setting = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(s, "setting"));
		printf("%s %-48s %d/%d succeeded\n", i == best_i ? "*" : " ", setting ? setting : "?",
		       (int)cli_json_num(s, "succeeded", 0), cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s, "jobs")));
		cJSON_free(setting);
		const cJSON *r;
		cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(s, "results")) {
			double m = cli_json_num(r, "mean", NAN), sd = cli_json_num(r, "std", NAN);
			printf("    %-20s %6.2f%%  %6.2f%%", cli_json_str(r, "protocol", "?"), 100 * cli_json_num(r, "label_fraction", NAN),
			       100 * m);
			if (isfinite(sd)) printf(" +- %.2f", 100 * sd);
			printf("  (n=%d)\n", (int)cli_json_num(r, "n", 0));
		}
		i++;
	}
	if (best_i >= 0) printf("* best by %s\n", cli_json_str(best, "by", "?"));
}

int cli_group_main(int argc, char **argv)
{
	enum { O_CANCEL, O_OUTPUT, O_CLIENT = O_OUTPUT + 2 };
	CliOpt opts[] = { { "--cancel", NULL, NULL, 0 }, OUTPUT_OPTS, CLIENT_OPTS };
	const char *pos[1];
	long long id;
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 5, pos, 1, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	int json = cli_output_json("group", &opts[O_OUTPUT]);
	if (json < 0) return 2;
	if (client_parse_id("group", npos ? pos[0] : NULL, &id) < 0) return 2;
	Client c;
	if (client_init(&c, "group", &opts[O_CLIENT]) != 0) return 2;
	char path[64], err[512];
	if (opts[O_CANCEL].given) {
		snprintf(path, sizeof path, "/v1/groups/%lld/cancel", id);
		ClientResp r;
		if (client_http(&c, "POST", path, NULL, 0, &r, err, sizeof err) < 0) {
			fprintf(stderr, "ssld group: %s\n", err);
			return 1;
		}
		if (r.status != 200) {
			rc = client_server_error("group", &r);
			free(r.body);
			return rc;
		}
		cJSON *a = cJSON_Parse(r.body);
		free(r.body);
		printf("group %lld: %d queued job(s) cancelled, %d running asked to stop\n", id,
		       cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(a, "cancelled")),
		       cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(a, "cancel_requested")));
		cJSON_Delete(a);
		return 0;
	}
	snprintf(path, sizeof path, "/v1/groups/%lld", id);
	cJSON *g = client_get_json(&c, "group", path, NULL);
	if (!g) return 1;
	if (json) client_print_json(g);
	else print_group(g);
	cJSON_Delete(g);
	return 0;
}
