/* generate.c - `ssld generate`: the command-line twin of POST /v1/jobs/{id}/generate.
 *
 *   ssld generate runs/autoregressive-lm-fortunes --prompt "A fortune" --max-tokens 300 \
 *                 --temperature 0.8 --top-k 40
 *
 * The job directory holds the checkpoint `ssld run` (or a worker) wrote, and job.json, the spec
 * the runner saved there; --spec names the spec instead (then the directory defaults to
 * runs/<job name>, as for `ssld run`). Text goes to stdout (the prompt, then the continuation);
 * --json prints runner_generate's JSON object instead. It does not train, resume or modify the
 * job: generation only reads the checkpoint (image samples are written as a PNG into the dir).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../workers/jobspec.h"
#include "../workers/job_files.h"
#include "../workers/runner.h"
#include "args.h"
#include "commands.h"

int cli_generate_main(int argc, char **argv)
{
	enum { O_SPEC, O_PROMPT, O_MAX_TOKENS, O_TEMPERATURE, O_TOP_K, O_TOP_P, O_N, O_SEED, O_JSON, O_COUNT };
	CliOpt opts[O_COUNT] = { { "--spec", "JOB.json", NULL, 0 }, { "--prompt", "TEXT", NULL, 0 },
	                        { "--max-tokens", "N", NULL, 0 }, { "--temperature", "T", NULL, 0 },
	                        { "--top-k", "K", NULL, 0 }, { "--top-p", "P", NULL, 0 }, { "--n", "N", NULL, 0 },
	                        { "--seed", "S", NULL, 0 }, { "--json", NULL, NULL, 0 } };
	const char *pos[1];
	int npos, prc = cli_args_parse(argv[0], argc, argv, opts, O_COUNT, pos, 1, &npos);
	if (prc != CLI_ARGS_OK)
		return prc == CLI_ARGS_HELP ? 0 : 2;
	const char *dir = npos ? pos[0] : NULL, *spec_path = opts[O_SPEC].value;
	int json = opts[O_JSON].given > 0;
	/* The numeric options with their ranges and defaults, in the order of the enum above. */
	struct { double lo, hi, v; } num[] = {
		[O_MAX_TOKENS] = { 1, 100000, 200 }, [O_TEMPERATURE] = { 0, 100, 1.0 }, [O_TOP_K] = { 0, 100000, 0 },
		[O_TOP_P] = { 0, 1, 1.0 }, [O_N] = { 1, 1024, 64 }, [O_SEED] = { 0, 9007199254740992.0, 0 },
	};
	for (int i = O_MAX_TOKENS; i <= O_SEED; i++) {
		const CliOpt *o = &opts[i];
		if (o->value && cli_number("generate", o->name, o->value, num[i].lo, num[i].hi, &num[i].v) < 0)
			return 2;
	}
	if (num[O_TOP_P].v == 0) {
		fprintf(stderr, "ssld generate: --top-p must be in (0, 1]\n");
		return 2;
	}
	GenerateRequest req = {
		.prompt = opts[O_PROMPT].value ? opts[O_PROMPT].value : "",
		.max_tokens = (int)num[O_MAX_TOKENS].v,
		.temperature = (float)num[O_TEMPERATURE].v,
		.top_k = (int)num[O_TOP_K].v,
		.top_p = (float)num[O_TOP_P].v,
		.n = (int)num[O_N].v,
		.seed = (uint64_t)num[O_SEED].v,
	};
	if (!dir && !spec_path) {
		fprintf(stderr, "ssld generate: needs a job directory or --spec JOB.json\n");
		cli_command_usage("generate", stderr);
		return 2;
	}

	char err[8192], path[4096], dirbuf[4096];
	if (!spec_path) {
		snprintf(path, sizeof path, "%s/" JOB_FILE_SPEC, dir);
		spec_path = path;
	}
	char *spec = cli_read_file(spec_path, NULL, err, sizeof err);
	if (!spec) {
		fprintf(stderr, "ssld generate: %s%s\n", err,
		        spec_path == path ? " (give the job's spec with --spec JOB.json)" : "");
		return 2;
	}
	if (!dir) {
		JobSpec *js;
		SpecError se;
		JobSpecOptions jo = { .check_files = 1 };
		if (jobspec_parse(spec, strlen(spec), &jo, &js, &se) < 0) {
			fprintf(stderr, "ssld generate: %s: %s\n", spec_path, se.message);
			free(spec);
			return 2;
		}
		snprintf(dirbuf, sizeof dirbuf, "runs/%s", js->name && js->name[0] ? js->name : js->method);
		jobspec_free(js);
		dir = dirbuf;
	}
	char *out = NULL;
	int rc = runner_generate(spec, dir, &req, &out, err, sizeof err);
	free(spec);
	if (rc < 0) {
		fprintf(stderr, "ssld generate: %s\n", err);
		return 1;
	}
	if (json) {
		printf("%s\n", out);
	} else {
		cJSON *o = cJSON_Parse(out);
		const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
		const cJSON *art = cJSON_GetObjectItemCaseSensitive(o, "artifact");
		const cJSON *secs = cJSON_GetObjectItemCaseSensitive(o, "seconds");
		const cJSON *toks = cJSON_GetObjectItemCaseSensitive(o, "tokens");
		if (cJSON_IsString(text)) {
			const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "prompt");
			printf("%s%s\n", cJSON_IsString(pr) ? pr->valuestring : "", text->valuestring);
			if (cJSON_IsNumber(toks) && cJSON_IsNumber(secs))
				fprintf(stderr, "ssld generate: %d bytes in %.3f s\n", toks->valueint,
				        secs->valuedouble);
		} else if (cJSON_IsString(art)) {
			printf("%s/%s\n", dir, art->valuestring);
		} else {
			printf("%s\n", out);
		}
		cJSON_Delete(o);
	}
	free(out);
	return 0;
}
