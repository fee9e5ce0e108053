/* cli_generate.c - `ssld generate`: the command-line twin of POST /v1/jobs/{id}/generate.
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
#include "generate.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../workers/jobspec.h"
#include "../workers/job_files.h"
#include "../workers/runner.h"

#define SPEC_MAX (16u << 20)

static int usage(void)
{
	fprintf(stderr,
	        "usage: ssld generate JOBDIR [--spec JOB.json] [options]\n"
	        "       ssld generate --spec JOB.json [options]      (JOBDIR = runs/<job name>)\n"
	        "  Continues --prompt with a trained language model (autoregressive_lm), or draws\n"
	        "  samples from a generative image method, using JOBDIR/checkpoint.safetensors.\n"
	        "options:\n"
	        "  --prompt TEXT        text to continue (default empty)\n"
	        "  --max-tokens N       bytes to generate (default 200)\n"
	        "  --temperature T      softmax temperature, 0 = greedy (default 1.0)\n"
	        "  --top-k K            sample among the K most likely bytes, 0 = all (default 0)\n"
	        "  --top-p P            nucleus sampling, 1 = off (default 1.0)\n"
	        "  --n N                image methods: how many samples (default 64)\n"
	        "  --seed S             sampling seed (default 0)\n"
	        "  --json               print the JSON object the HTTP API returns\n");
	return 2;
}

static char *read_text(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(SPEC_MAX + 1);
	size_t n = buf ? fread(buf, 1, SPEC_MAX + 1, f) : 0;
	int bad = ferror(f);
	fclose(f);
	if (!buf || bad || n > SPEC_MAX) {
		snprintf(err, errlen, "%s: %s", path, !buf ? "out of memory" : bad ? "read error"
		         : "larger than 16 MiB, not a job spec");
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

/* Parses a number option; returns 0 or prints what was wrong and returns -1. */
static int num_arg(const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "ssld generate: %s: \"%s\" is not a number in [%g, %g]\n", opt, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_generate_main(int argc, char **argv)
{
	const char *dir = NULL, *spec_path = NULL;
	GenerateRequest req = { .prompt = "", .max_tokens = 200, .temperature = 1.0f, .top_k = 0,
	                        .top_p = 1.0f, .n = 64, .seed = 0 };
	int json = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		double v;
		int has = i + 1 < argc;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return usage();
		if (strcmp(a, "--json") == 0) {
			json = 1;
		} else if (strcmp(a, "--spec") == 0 && has) {
			spec_path = argv[++i];
		} else if (strcmp(a, "--prompt") == 0 && has) {
			req.prompt = argv[++i];
		} else if (strcmp(a, "--max-tokens") == 0 && has) {
			if (num_arg(a, argv[++i], 1, 100000, &v) < 0)
				return 2;
			req.max_tokens = (int)v;
		} else if (strcmp(a, "--temperature") == 0 && has) {
			if (num_arg(a, argv[++i], 0, 100, &v) < 0)
				return 2;
			req.temperature = (float)v;
		} else if (strcmp(a, "--top-k") == 0 && has) {
			if (num_arg(a, argv[++i], 0, 100000, &v) < 0)
				return 2;
			req.top_k = (int)v;
		} else if (strcmp(a, "--top-p") == 0 && has) {
			if (num_arg(a, argv[++i], 0, 1, &v) < 0 || v == 0) {
				fprintf(stderr, "ssld generate: --top-p must be in (0, 1]\n");
				return 2;
			}
			req.top_p = (float)v;
		} else if (strcmp(a, "--n") == 0 && has) {
			if (num_arg(a, argv[++i], 1, 1024, &v) < 0)
				return 2;
			req.n = (int)v;
		} else if (strcmp(a, "--seed") == 0 && has) {
			if (num_arg(a, argv[++i], 0, 9007199254740992.0, &v) < 0)
				return 2;
			req.seed = (uint64_t)v;
		} else if (a[0] == '-' || dir) {
			fprintf(stderr, "ssld generate: unexpected argument \"%s\"\n", a);
			return usage();
		} else {
			dir = a;
		}
	}
	if (!dir && !spec_path)
		return usage();

	char err[8192], path[4096], dirbuf[4096];
	if (!spec_path) {
		snprintf(path, sizeof path, "%s/" JOB_FILE_SPEC, dir);
		spec_path = path;
	}
	char *spec = read_text(spec_path, err, sizeof err);
	if (!spec) {
		fprintf(stderr, "ssld generate: %s%s\n", err,
		        spec_path == path ? " (give the job's spec with --spec JOB.json)" : "");
		return 2;
	}
	if (!dir) {
		JobSpec *js;
		SpecError se;
		JobSpecOptions opts = { .check_files = 1 };
		if (jobspec_parse(spec, strlen(spec), &opts, &js, &se) < 0) {
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
