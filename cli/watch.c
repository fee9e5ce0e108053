/* watch.c - `ssld watch ID`: follow a job until it ends. On a terminal one line is redrawn in
 * place (bar, step, stage, loss, ETA); elsewhere (a log, a pipe) a plain line per state or stage
 * and at most one every 5 s while the steps advance. A succeeded job ends with its results table.
 * A daemon restart is waited out; a refusal (401, 403, 404) ends the watch. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "client.h"
#include "commands.h"
#include "format.h"
#include "../common/monotime.h"

/* One status line: on a terminal a bar redrawn in place, else a plain line. */
static void watch_line(long long id, const cJSON *j, int tty)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "progress");
	const char *state = cli_json_str(j, "state", "?"), *stage = cli_json_str(p, "stage", NULL);
	double fr = cli_json_num(p, "fraction", -1), eta = cli_json_num(p, "eta_s", -1);
	long long step = (long long)cli_json_num(p, "step", 0), total = (long long)cli_json_num(p, "total", 0);
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "metrics");
	const cJSON *loss = m ? cJSON_GetObjectItemCaseSensitive(m, "loss") : NULL;
	const cJSON *lv = loss ? cJSON_GetObjectItemCaseSensitive(loss, "value") : NULL;
	char etas[32], losss[48] = "", bar[64];
	cli_fmt_duration(eta, etas, sizeof etas);
	if (cJSON_IsNumber(lv)) snprintf(losss, sizeof losss, "  loss %.4f", lv->valuedouble);
	if (tty) {
		cli_fmt_bar(fr, 30, bar, sizeof bar);
		printf("\r\033[Kjob %lld %-9s %s %3.0f%%  step %lld/%lld%s%s%s  ETA %s", id, state, bar, fr >= 0 ? 100 * fr : 0.0,
		       step, total, stage ? "  " : "", stage ? stage : "", losss, etas);
	} else {
		printf("job %lld %s", id, state);
		const char *waiting = cli_json_str(j, "waiting", NULL);
		if (waiting) printf(" (waiting: %s)", waiting);
		if (fr >= 0) printf(" %.0f%% step %lld/%lld", 100 * fr, step, total);
		if (stage) printf(" %s", stage);
		printf("%s", losss);
		if (eta >= 0) printf(" eta %s", etas);
		printf("\n");
	}
	fflush(stdout);
}

static int terminal_state(const char *s)
{
	return strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0;
}

int client_watch(const Client *c, long long id, double interval)
{
	int tty = isatty(STDOUT_FILENO);
	char path[64];
	snprintf(path, sizeof path, "/v1/jobs/%lld", id);
	char last_phase[128] = "";   /* state and stage */
	long long last_step = -1;
	double last_print = 0;
	int misses = 0;
	for (;;) {
		int status = 0;
		cJSON *j = client_get_json(c, "watch", path, &status);
		if (!j) {
			/* A daemon restart (systemctl restart ssld) is not the end of the job: retry a while.
			 * A refusal (401, 403, 404: no such job) will not change by waiting. */
			if ((status >= 400 && status < 500) || ++misses > 30) return 1;
			usleep((useconds_t)(interval * 1e6));
			continue;
		}
		misses = 0;
		const char *state = cli_json_str(j, "state", "?");
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "progress");
		char phase[128];
		snprintf(phase, sizeof phase, "%s/%s", state, cli_json_str(p, "stage", ""));
		long long step = (long long)cli_json_num(p, "step", 0);
		double now = mono_seconds();
		int fin = terminal_state(state), new_phase = strcmp(phase, last_phase) != 0, moved = step != last_step;
		if (fin || new_phase || (moved && (tty || now - last_print >= 5))) {
			watch_line(id, j, tty);
			last_print = now;
		}
		snprintf(last_phase, sizeof last_phase, "%s", phase);
		last_step = step;
		if (fin) {
			if (tty) printf("\n");
			const char *error = cli_json_str(j, "error", NULL);
			const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
			int ok = strcmp(state, "succeeded") == 0;
			if (ok && cJSON_IsObject(res)) {
				printf("job %lld  %s  (%s)\n", id, cli_json_str(j, "name", ""), cli_json_str(j, "method", "?"));
				cli_print_results(stdout, res);
			} else if (!ok) {
				fprintf(stderr, "job %lld %s%s%s\n", id, state, error ? ": " : "", error ? error : "");
			}
			cJSON_Delete(j);
			return ok ? 0 : 1;
		}
		cJSON_Delete(j);
		usleep((useconds_t)(interval * 1e6));
	}
}

int cli_watch_main(int argc, char **argv)
{
	enum { O_INTERVAL, O_CLIENT };
	CliOpt opts[] = { { "--interval", "SECONDS", NULL, 0 }, CLIENT_OPTS };
	const char *pos[1];
	long long id;
	double interval = 1.0;
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 3, pos, 1, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	if (client_parse_id("watch", npos ? pos[0] : NULL, &id) < 0) return 2;
	if (opts[O_INTERVAL].value && cli_number("watch", "--interval", opts[O_INTERVAL].value, 0.05, 3600, &interval) < 0)
		return 2;
	Client c;
	if (client_init(&c, "watch", &opts[O_CLIENT]) != 0) return 2;
	return client_watch(&c, id, interval);
}
