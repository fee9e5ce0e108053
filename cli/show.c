/* show.c - `ssld show ID`: one job on a few lines - state, owner, times, progress, checkpoint,
 * what it waits for, its error, the latest metrics - or the server's JSON with --json. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "client.h"
#include "commands.h"
#include "format.h"

static void print_metrics_line(const cJSON *job)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(job, "metrics");
	if (cJSON_GetArraySize(m) == 0) return;
	printf("  %-11s", "metrics");
	const cJSON *k;
	int i = 0;
	cJSON_ArrayForEach(k, m) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(k, "value");
		if (i && i % 4 == 0) printf("\n  %-11s", "");
		char num[32] = "null";
		if (cJSON_IsNumber(v)) cli_fmt_result_value(k->string, v->valuedouble, num, sizeof num);
		printf(" %s=%s", k->string, num);
		i++;
	}
	printf("\n");
}

int cli_show_main(int argc, char **argv)
{
	long long id;
	int json, status;
	cJSON *j = client_fetch_job(argc, argv, &id, &json, &status);
	if (!j) return status;
	if (json) {
		client_print_json(j);
		cJSON_Delete(j);
		return 0;
	}
	char t1[32], t2[32], t3[32];
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "progress");
	printf("job %lld  %s\n", id, cli_json_str(j, "name", ""));
	printf("  %-11s %s\n", "method", cli_json_str(j, "method", "?"));
	const cJSON *cr = cJSON_GetObjectItemCaseSensitive(j, "cancel_requested");
	printf("  %-11s %s%s\n", "state", cli_json_str(j, "state", "?"),
	       cJSON_IsTrue(cr) && strcmp(cli_json_str(j, "state", ""), "running") == 0 ? " (cancel requested)" : "");
	printf("  %-11s %s\n", "owner", cli_json_str(j, "owner", "-"));
	printf("  %-11s %d\n", "priority", (int)cli_json_num(j, "priority", 0));
	cli_fmt_time(cli_json_str(j, "created_at", NULL), t1, sizeof t1);
	cli_fmt_time(cli_json_str(j, "started_at", NULL), t2, sizeof t2);
	cli_fmt_time(cli_json_str(j, "finished_at", NULL), t3, sizeof t3);
	printf("  %-11s %s   started %s   finished %s (UTC)\n", "created", t1, t2, t3);
	if (p) {
		char prog[64], eta[32];
		double eta_s = cli_json_num(p, "eta_s", -1);
		cli_fmt_progress(j, prog, sizeof prog);
		cli_fmt_duration(eta_s, eta, sizeof eta);
		printf("  %-11s step %lld/%lld  %s%s%s\n", "progress", (long long)cli_json_num(p, "step", 0),
		       (long long)cli_json_num(p, "total", 0), prog, eta_s >= 0 ? "  ETA " : "", eta_s >= 0 ? eta : "");
	}
	double ck = cli_json_num(j, "checkpoint_step", -1);
	if (ck >= 0) printf("  %-11s step %lld (attempts: %d)\n", "checkpoint", (long long)ck, (int)cli_json_num(j, "attempts", 0));
	const char *waiting = cli_json_str(j, "waiting", NULL);
	if (waiting) printf("  %-11s %s\n", "waiting", waiting);
	const char *error = cli_json_str(j, "error", NULL);
	if (error) printf("  %-11s %s\n", "error", error);
	print_metrics_line(j);
	if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "results")))
		printf("  %-11s `ssld results %lld`\n", "results", id);
	cJSON_Delete(j);
	return 0;
}
