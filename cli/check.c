/* check.c - `ssld check JOB.json [--json]`: validate a job file as the server would (without data
 * roots: paths are checked to exist) and print every error, one per line, field first; for a
 * valid file print the resolved spec and the estimate (spec_estimate.h). With --json the output is
 * the object `POST /v1/jobs?dry_run=1` answers: {"spec":…, "estimate":…} or {"error":…,"errors":[…]}.
 * It does not contact a server, so server-side rules (init_from a job id, the memory limit) are
 * not applied. A spec with a "sweep" (workers/sweep.h) is expanded and every child checked: one
 * line per child (setting, seed, steps, peak memory), or each child's errors named by the sweep key.
 */
#include "commands.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../workers/jobspec.h"
#include "../workers/spec_estimate.h"
#include "../workers/sweep.h"
#include "args.h"

static cJSON *error_json(const SpecError *e)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "code", e->code);
	cJSON_AddStringToObject(o, "message", e->message);
	if (e->field[0])
		cJSON_AddStringToObject(o, "field", e->field);
	else
		cJSON_AddNullToObject(o, "field");
	return o;
}

static void print_estimate(const JobEstimate *e)
{
	char p[32], g[32], o[32], a[32], t[32];
	printf("estimate:\n  parameters         %lld (encoder)\n", (long long)e->params);
	printf("  peak memory        %s per training step: parameters %s, gradients %s, optimizer %s, "
	       "activations %s (driven by %s)\n",
	       jobspec_bytes_text(e->peak_bytes, t, sizeof t), jobspec_bytes_text(e->param_bytes, p, sizeof p),
	       jobspec_bytes_text(e->grad_bytes, g, sizeof g), jobspec_bytes_text(e->optim_bytes, o, sizeof o),
	       jobspec_bytes_text(e->activation_bytes, a, sizeof a), e->driver);
	if (e->steps >= 0 && e->steps_per_epoch > 0)
		printf("  steps              %lld (%lld per epoch)\n", (long long)e->steps, (long long)e->steps_per_epoch);
	else if (e->steps >= 0)
		printf("  steps              %lld\n", (long long)e->steps);
	else
		printf("  steps              unknown until the data is read (set pretrain.max_steps to bound them)\n");
}

static void print_errors(const SpecErrors *errs, const SweepPlan *plan, int child)
{
	for (int i = 0; i < errs->n; i++) {
		if (!plan) {
			printf("%s\n", errs->e[i].message);
			continue;
		}
		char field[160];
		sweep_error_field(plan, errs->e[i].field, field, sizeof field);
		printf("%s: setting %d %s, seed %llu: %s\n", field, plan->child[child].setting_index + 1, plan->child[child].setting,
		       (unsigned long long)plan->child[child].seed, errs->e[i].message);
	}
	if (errs->dropped) printf("(%d more errors)\n", errs->dropped);
}

/* `ssld check` of a sweep: every child, as POST /v1/jobs would check them (without the server's
 * rules). 0 when all pass, 1 otherwise. */
static int check_sweep(const cJSON *body, const char *path, SpecErrors *errs)
{
	SweepPlan plan;
	if (sweep_expand(body, &plan, errs) < 0) {
		print_errors(errs, NULL, 0);
		fprintf(stderr, "%s: %d error%s in \"sweep\"\n", path, errs->n, errs->n == 1 ? "" : "s");
		return 1;
	}
	int bad = 0;
	printf("sweep: %d jobs (%d settings x %d seeds)\n", plan.n, plan.settings, plan.seeds);
	for (int i = 0; i < plan.n; i++) {
		char *text = cJSON_PrintUnformatted(plan.child[i].spec);
		JobSpecOptions opts = { .check_files = 1 };
		JobSpec *js = NULL;
		if (!text || jobspec_parse_all(text, strlen(text), &opts, &js, errs) < 0) {
			print_errors(errs, &plan, i);
			bad++;
		} else {
			JobEstimate est;
			jobspec_estimate(js, &est);
			char mem[32];
			printf("  %-48s seed %-4llu %8lld steps  %s peak\n", plan.child[i].setting, (unsigned long long)plan.child[i].seed,
			       (long long)est.steps, jobspec_bytes_text(est.peak_bytes, mem, sizeof mem));
			jobspec_free(js);
		}
		free(text);
	}
	sweep_plan_free(&plan);
	if (bad) fprintf(stderr, "%s: %d of the sweep's jobs are not valid\n", path, bad);
	return bad ? 1 : 0;
}

int cli_check_main(int argc, char **argv)
{
	CliOpt args[] = { { "--json", NULL, NULL, 0 } };
	const char *pos[1];
	int npos, prc = cli_args_parse(argv[0], argc, argv, args, 1, pos, 1, &npos);
	if (prc != CLI_ARGS_OK)
		return prc == CLI_ARGS_HELP ? 0 : 2;
	if (npos == 0) {
		fprintf(stderr, "ssld check: needs a job file (- reads standard input)\n");
		cli_command_usage("check", stderr);
		return 2;
	}
	const char *path = pos[0];
	int json = args[0].given > 0;
	size_t len = 0;
	char rerr[1024];
	char *text = cli_read_file(path, &len, rerr, sizeof rerr);
	if (!text) {
		fprintf(stderr, "ssld check: %s\n", rerr);
		return 2;
	}
	SpecErrors *errs = malloc(sizeof *errs);
	if (!errs) {
		free(text);
		fprintf(stderr, "ssld check: out of memory\n");
		return 2;
	}
	cJSON *body = json ? NULL : cJSON_ParseWithLength(text, len);
	if (body && sweep_present(body)) {
		int st = check_sweep(body, path, errs);
		cJSON_Delete(body);
		free(text);
		free(errs);
		return st;
	}
	cJSON_Delete(body);
	JobSpecOptions opts = { .check_files = 1 };
	JobSpec *js = NULL;
	int rc = jobspec_parse_all(text, len, &opts, &js, errs);
	free(text);
	int status = 0;
	if (rc < 0) {
		if (json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddItemToObject(o, "error", error_json(&errs->e[0]));
			cJSON *a = cJSON_AddArrayToObject(o, "errors");
			for (int i = 0; i < errs->n; i++)
				cJSON_AddItemToArray(a, error_json(&errs->e[i]));
			char *s = cJSON_Print(o);
			if (s)
				puts(s);
			free(s);
			cJSON_Delete(o);
		} else {
			for (int i = 0; i < errs->n; i++)
				printf("%s\n", errs->e[i].message);
			if (errs->dropped)
				printf("(%d more errors)\n", errs->dropped);
			fprintf(stderr, "%s: %d error%s\n", path, errs->n + errs->dropped,
			        errs->n + errs->dropped == 1 ? "" : "s");
		}
		status = 1;
	} else {
		JobEstimate est;
		jobspec_estimate(js, &est);
		char *resolved = jobspec_to_json(js);
		if (json) {
			cJSON *o = cJSON_CreateObject();
			cJSON *spec = resolved ? cJSON_Parse(resolved) : NULL;
			cJSON_AddItemToObject(o, "spec", spec ? spec : cJSON_CreateNull());
			cJSON_AddItemToObject(o, "estimate", jobspec_estimate_json(&est));
			char *s = cJSON_Print(o);
			if (s)
				puts(s);
			free(s);
			cJSON_Delete(o);
		} else {
			printf("%s\n", resolved ? resolved : "(out of memory)");
			print_estimate(&est);
		}
		free(resolved);
		jobspec_free(js);
	}
	free(errs);
	fflush(stdout);
	return ferror(stdout) ? 2 : status;
}
