/* fuzz_jobspec.c - libFuzzer harness for job-spec validation (workers/jobspec.h).
 *
 * Each input is a job JSON, parsed twice: as POST /v1/jobs does (data roots = a scratch directory
 * holding small dataset files, which must exist) and as `ssld run` does (no roots, no file
 * checks). Beyond "no crash, no sanitizer report", a spec that parses must survive the round trip
 * the runner relies on: jobspec_to_json of it parses again, to the same JSON. A failure must come
 * with a NUL-terminated code, field and message and a 4xx status.
 * It does not run jobs; the datasets it points at are never loaded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../workers/jobspec.h"
#include "fuzz_common.h"

static const char *roots[1];
static JobSpecOptions api_opts, run_opts;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	/* data/: a file of every kind a spec can name (content does not matter: only existence and
	 * type are checked), a Fashion-MNIST-shaped directory, a checkpoint, a subdirectory. */
	static const char *const files[] = {
		"data/train.csv", "data/test.csv", "data/a.txt", "data/b.txt", "data/images.idx",
		"data/labels.idx", "data/captions.jsonl", "data/ckpt.safetensors",
		"data/fm/train-images-idx3-ubyte.gz", "data/fm/train-labels-idx1-ubyte.gz",
		"data/fm/t10k-images-idx3-ubyte.gz", "data/fm/t10k-labels-idx1-ubyte.gz",
	};
	mkdir(fuzz_path("data"), 0700);
	mkdir(fuzz_path("data/fm"), 0700);
	mkdir(fuzz_path("data/sub"), 0700);
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		fuzz_write(files[i], (const uint8_t *)"x\n", 2, 0);
	roots[0] = strdup(fuzz_path("data"));
	api_opts = (JobSpecOptions){ .data_roots = roots, .n_data_roots = 1, .check_files = 1 };
	run_opts = (JobSpecOptions){ .check_files = 0 };
	return 0;
}

static void check_error(const SpecError *e, const char *what)
{
	if (!memchr(e->code, 0, sizeof e->code) || !memchr(e->field, 0, sizeof e->field) ||
	    !memchr(e->message, 0, sizeof e->message) || !e->message[0]) {
		fprintf(stderr, "%s: SpecError without a terminated code/field/message\n", what);
		abort();
	}
	if (e->http_status < 400 || e->http_status > 499) {
		fprintf(stderr, "%s: http_status %d for \"%s\"\n", what, e->http_status, e->message);
		abort();
	}
}

static void one(const char *json, size_t len, const JobSpecOptions *o, const char *what)
{
	JobSpec *js = NULL;
	SpecError e;
	if (jobspec_parse(json, len, o, &js, &e) < 0) {
		if (strcmp(e.code, "out_of_memory") != 0)
			check_error(&e, what);
		return;
	}
	char *j1 = jobspec_to_json(js);
	jobspec_free(js);
	if (!j1)
		return;
	/* The resolved spec is what the worker parses again (without roots: paths are absolute). */
	JobSpec *js2 = NULL;
	if (jobspec_parse(j1, strlen(j1), &run_opts, &js2, &e) < 0) {
		fprintf(stderr, "%s: jobspec_to_json output does not parse again: %s: %s\n%s\n", what,
		        e.field, e.message, j1);
		abort();
	}
	char *j2 = jobspec_to_json(js2);
	jobspec_free(js2);
	if (j2 && strcmp(j1, j2) != 0) {
		fprintf(stderr, "%s: round trip changed the spec:\n%s\n---\n%s\n", what, j1, j2);
		abort();
	}
	free(j1);
	free(j2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* jobspec_parse takes (text, len) and must not read past len: give it an unterminated copy. */
	char *json = malloc(size ? size : 1);
	if (!json)
		return 0;
	memcpy(json, data, size);
	one(json, size, &api_opts, "api");
	one(json, size, &run_opts, "run");
	free(json);
	return 0;
}
