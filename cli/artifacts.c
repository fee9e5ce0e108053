/* artifacts.c - `ssld artifacts ID [--get NAME [-o FILE]]`: the files a job keeps on the server
 * (GET /v1/jobs/{id}/artifacts: name, size, time) and the download of one of them, checked against
 * the SHA-256 the server lists. The server's read rule applies as to every read; nothing here
 * decides who may see what. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../workers/spec_estimate.h"
#include "args.h"
#include "client.h"
#include "commands.h"
#include "format.h"
#include "suggest.h"

static void print_table(const cJSON *list)
{
	const cJSON *a;
	if (cJSON_GetArraySize(list) == 0) {
		printf("no artifacts\n");
		return;
	}
	printf("%-36s %10s  %s\n", "NAME", "SIZE", "CREATED (UTC)");
	cJSON_ArrayForEach(a, list) {
		char size[32], when[32];
		jobspec_bytes_text((int64_t)cli_json_num(a, "size", 0), size, sizeof size);
		cli_fmt_time(cli_json_str(a, "created_at", NULL), when, sizeof when);
		printf("%-36s %10s  %s\n", cli_json_str(a, "name", "?"), size, when);
	}
}

/* The listed artifact called name, or NULL after saying so with the nearest name. */
static const cJSON *find_artifact(long long id, const cJSON *list, const char *name)
{
	int n = cJSON_GetArraySize(list), i = 0;
	const char **names = calloc((size_t)n + 1, sizeof *names);
	const cJSON *a;
	cJSON_ArrayForEach(a, list) {
		if (strcmp(cli_json_str(a, "name", ""), name) == 0) {
			free(names);
			return a;
		}
		if (names) names[i++] = cli_json_str(a, "name", NULL);
	}
	const char *near = names ? cli_suggest(name, names, sizeof names[0], (size_t)i) : NULL;
	fprintf(stderr, "ssld artifacts: job %lld has no artifact '%s'", id, name);
	if (near) fprintf(stderr, "; did you mean '%s'?", near);
	fprintf(stderr, " (`ssld artifacts %lld` lists %s)\n", id, n ? "them" : "none: it has none yet");
	free(names);
	return NULL;
}

int cli_artifacts_main(int argc, char **argv)
{
	enum { O_GET, O_FILE, O_OUTPUT, O_CLIENT = O_OUTPUT + 2 };
	CliOpt opts[] = { { "--get", "NAME", NULL, 0 }, { "-o", "FILE", NULL, 0 }, OUTPUT_OPTS, CLIENT_OPTS };
	const char *pos[1];
	long long id;
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 6, pos, 1, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	if (client_parse_id("artifacts", npos ? pos[0] : NULL, &id) < 0) return 2;
	int json = cli_output_json("artifacts", &opts[O_OUTPUT]);
	if (json < 0) return 2;
	const char *get = opts[O_GET].value, *file = opts[O_FILE].value;
	if (file && !get) {
		fprintf(stderr, "ssld artifacts: -o FILE goes with --get NAME (the file to write the artifact to)\n");
		return 2;
	}
	if (get && json) {
		fprintf(stderr, "ssld artifacts: --output json is for the listing; --get writes the file itself\n");
		return 2;
	}
	Client c;
	if (client_init(&c, "artifacts", &opts[O_CLIENT]) != 0) return 2;
	char path[64];
	snprintf(path, sizeof path, "/v1/jobs/%lld/artifacts", id);
	cJSON *j = client_get_json(&c, "artifacts", path, NULL);
	if (!j) return 1;
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "artifacts");
	if (!get) {
		if (json) client_print_json(j);
		else print_table(list);
		cJSON_Delete(j);
		return 0;
	}
	const cJSON *a = find_artifact(id, list, get);
	const char *url = cli_json_str(a, "url", NULL);
	if (!a || !url) {
		if (a) fprintf(stderr, "ssld artifacts: the server lists '%s' without a url\n", get);
		cJSON_Delete(j);
		return 1;
	}
	/* Default: the artifact's base name in the current directory, as curl -OJ would. */
	char base[1024];
	snprintf(base, sizeof base, "%s", get);
	if (!file) file = basename(base);
	long long size = 0;
	rc = client_save(&c, "artifacts", url, file, cli_json_str(a, "sha256", NULL), &size);
	if (rc == 0 && strcmp(file, "-") != 0) {
		char human[32];
		printf("%s\n", file);
		fprintf(stderr, "ssld artifacts: wrote %s (%s, SHA-256 checked)\n", file, jobspec_bytes_text(size, human, sizeof human));
	}
	cJSON_Delete(j);
	return rc;
}
