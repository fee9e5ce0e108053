/* generate.c - `ssld generate`: samples from a trained job, on a server or from a local run.
 *
 *   ssld generate 12 --prompt "A fortune" --max-tokens 300 --temperature 0.8 --top-k 40
 *   ssld generate 14 --n 16 -o samples.png
 *   ssld generate runs/autoregressive-lm-fortunes --prompt "A fortune"
 *
 * A job ID asks the server (POST /v1/jobs/{id}/generate, its rules and limits): text comes back
 * in the answer, an image grid is recorded as the job's artifact and downloaded to -o FILE (default
 * its artifact name, here). A job directory generates locally: it holds the checkpoint `ssld run`
 * (or a worker) wrote, and job.json, the spec the runner saved there; --spec names the spec
 * instead (then the directory defaults to runs/<job name>, as for `ssld run`); image samples are
 * written as a PNG into the directory. Text goes to stdout (the prompt, then the continuation);
 * --json prints the JSON object (the server's answer, or runner_generate's). It does not train,
 * resume or modify the job: generation only reads the checkpoint.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../workers/jobspec.h"
#include "../workers/job_files.h"
#include "../workers/runner.h"
#include "args.h"
#include "client.h"
#include "commands.h"
#include "format.h"

/* The text or the image of a generation's JSON answer: text to stdout (prompt, continuation),
 * an image's file name (where) to stdout. */
static void print_answer(const cJSON *o, const char *where, int json, const char *raw)
{
	if (json) {
		printf("%s\n", raw);
		return;
	}
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
	const cJSON *secs = cJSON_GetObjectItemCaseSensitive(o, "seconds");
	const cJSON *toks = cJSON_GetObjectItemCaseSensitive(o, "tokens");
	if (cJSON_IsString(text)) {
		const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "prompt");
		printf("%s%s\n", cJSON_IsString(pr) ? pr->valuestring : "", text->valuestring);
		const char *cut = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "truncated"))
		                      ? cli_json_str(o, "truncated_by", "a limit") : NULL;
		if (cJSON_IsNumber(toks) && cJSON_IsNumber(secs))
			fprintf(stderr, "ssld generate: %d bytes in %.3f s%s%s\n", toks->valueint, secs->valuedouble,
			        cut ? ", cut short by the server's " : "", cut ? cut : "");
	} else if (where) {
		printf("%s\n", where);
	} else {
		printf("%s\n", raw);
	}
}

/* ssld generate ID: the request to the server, then the answer (and its image) here. */
static int generate_remote(const CliOpt *client_opts, long long id, const char *prompt, const char *const *keys,
                           const double *vals, const int *given, int n_num, const char *file, int json)
{
	Client c;
	if (client_init(&c, "generate", client_opts) != 0) return 2;
	/* Only what was given: the server's defaults and limits hold for the rest. */
	cJSON *body = cJSON_CreateObject();
	if (prompt) cJSON_AddStringToObject(body, "prompt", prompt);
	for (int i = 0; i < n_num; i++)
		if (given[i]) cJSON_AddNumberToObject(body, keys[i], vals[i]);
	char *text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (!text) {
		fprintf(stderr, "ssld generate: out of memory\n");
		return 1;
	}
	char path[64], err[768];
	snprintf(path, sizeof path, "/v1/jobs/%lld/generate", id);
	ClientResp r;
	int rc = client_http(&c, "POST", path, text, strlen(text), &r, err, sizeof err);
	free(text);
	if (rc < 0) {
		fprintf(stderr, "ssld generate: %s\n", err);
		return 1;
	}
	if (r.status != 200) {
		client_server_error("generate", &r);
		free(r.body);
		return 1;
	}
	cJSON *o = cJSON_Parse(r.body);
	if (!o) {
		fprintf(stderr, "ssld generate: the server's answer is not JSON\n");
		free(r.body);
		return 1;
	}
	const char *art = cli_json_str(o, "artifact", NULL), *url = cli_json_str(o, "url", NULL);
	rc = 0;
	if (art && url) {
		/* The default file is named by the server: a plain name in this directory, nothing else. */
		if (!file && (strchr(art, '/') || art[0] == '.' || !art[0])) {
			fprintf(stderr, "ssld generate: the server named the samples '%.100s'; give -o FILE\n", art);
			cJSON_Delete(o);
			free(r.body);
			return 1;
		}
		if (!file) file = art;
		rc = client_save(&c, "generate", url, file, NULL, NULL);
		if (rc == 0 && strcmp(file, "-") != 0)
			fprintf(stderr, "ssld generate: wrote %s (job %lld keeps it as the artifact %s)\n", file, id, art);
	} else if (file) {
		fprintf(stderr, "ssld generate: job %lld answered with text; -o applies to image samples\n", id);
		rc = 1;
	}
	if (rc == 0 && strcmp(file ? file : "", "-") != 0) print_answer(o, art ? file : NULL, json, r.body);
	cJSON_Delete(o);
	free(r.body);
	return rc;
}

/* A job id rather than a directory: digits only, and no directory of that name here. */
static int is_job_id(const char *s)
{
	struct stat st;
	return s && *s && strspn(s, "0123456789") == strlen(s) && stat(s, &st) != 0;
}

int cli_generate_main(int argc, char **argv)
{
	enum { O_SPEC, O_PROMPT, O_MAX_TOKENS, O_TEMPERATURE, O_TOP_K, O_TOP_P, O_N, O_SEED, O_FILE, O_OUTPUT,
	       O_CLIENT = O_OUTPUT + 2, O_COUNT = O_CLIENT + 2 };
	CliOpt opts[O_COUNT] = { { "--spec", "JOB.json", NULL, 0 }, { "--prompt", "TEXT", NULL, 0 },
	                        { "--max-tokens", "N", NULL, 0 }, { "--temperature", "T", NULL, 0 },
	                        { "--top-k", "K", NULL, 0 }, { "--top-p", "P", NULL, 0 }, { "--n", "N", NULL, 0 },
	                        { "--seed", "S", NULL, 0 }, { "-o", "FILE", NULL, 0 }, OUTPUT_OPTS, CLIENT_OPTS };
	const char *pos[1];
	int npos, prc = cli_args_parse(argv[0], argc, argv, opts, O_COUNT, pos, 1, &npos);
	if (prc != CLI_ARGS_OK)
		return prc == CLI_ARGS_HELP ? 0 : 2;
	const char *dir = npos ? pos[0] : NULL, *spec_path = opts[O_SPEC].value;
	int json = cli_output_json("generate", &opts[O_OUTPUT]);
	if (json < 0)
		return 2;
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
	int remote = !spec_path && is_job_id(dir);
	if (!remote && (opts[O_FILE].value || opts[O_CLIENT].value || opts[O_CLIENT + 1].value)) {
		fprintf(stderr, "ssld generate: %s applies to a job on a server (ssld generate ID); a job directory's "
		        "samples are written into it\n", opts[O_FILE].value ? "-o" : opts[O_CLIENT].value ? "--server" : "--token");
		return 2;
	}
	if (remote) {
		/* The numbers in the order of the enum: the API's names for them. */
		static const char *const keys[] = { "max_tokens", "temperature", "top_k", "top_p", "n", "seed" };
		double vals[6];
		int given[6];
		for (int i = 0; i < 6; i++) {
			vals[i] = num[O_MAX_TOKENS + i].v;
			given[i] = opts[O_MAX_TOKENS + i].value != NULL;
		}
		long long id;
		if (client_parse_id("generate", dir, &id) < 0)
			return 2;
		return generate_remote(&opts[O_CLIENT], id, opts[O_PROMPT].value, keys, vals, given, 6, opts[O_FILE].value, json);
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
		fprintf(stderr, "ssld generate: needs a job ID (on the server), a job directory or --spec JOB.json\n");
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
	/* One parse: a spec given alone is checked as a submission would be; a job directory's
	 * job.json is the stored, resolved spec. */
	JobSpec *js = NULL;
	SpecError se;
	JobSpecOptions jo = { .check_files = 1 };
	int src = dir ? jobspec_parse_stored(spec, strlen(spec), &js, &se)
	              : jobspec_parse(spec, strlen(spec), &jo, &js, &se);
	if (src < 0) {   /* a job's own spec that does not parse is a failed generation (1) */
		if (dir)
			fprintf(stderr, "ssld generate: %s\n", se.message);
		else
			fprintf(stderr, "ssld generate: %s: %s\n", spec_path, se.message);
		free(spec);
		return dir ? 1 : 2;
	}
	if (!dir) {
		snprintf(dirbuf, sizeof dirbuf, "runs/%s", js->name && js->name[0] ? js->name : js->method);
		dir = dirbuf;
	}
	char *out = NULL;
	int rc = runner_generate_spec(js, dir, &req, &out, err, sizeof err);
	jobspec_free(js);
	free(spec);
	if (rc < 0) {
		fprintf(stderr, "ssld generate: %s\n", err);
		return 1;
	}
	cJSON *o = cJSON_Parse(out);
	const char *art = cli_json_str(o, "artifact", NULL);
	char made[8400];
	snprintf(made, sizeof made, "%s/%s", dir, art ? art : "");
	print_answer(o, art ? made : NULL, json, out);
	cJSON_Delete(o);
	free(out);
	return 0;
}
