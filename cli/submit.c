/* submit.c - `ssld submit JOB.json | --from ID [--set KEY=VALUE]... [--watch]`: queue a job on the
 * server and print its id (only the id on stdout, so `id=$(ssld submit job.json)` works); --watch
 * then follows it.
 *
 * --from ID starts from job ID's spec as the server stores it (GET /v1/jobs/{id} "spec": resolved,
 * every default filled in, so the copy runs exactly as the original did unless changed). --set
 * edits one field by its dotted path before submitting (an array element by its index); the value
 * is JSON when it parses as JSON, else a string. Missing objects on the path are created, so a
 * mistyped key reaches the server, whose validation names it like any other error: this file
 * never decides what a valid spec is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

enum { MAX_SETS = 64 };

static const char *json_kind(const cJSON *v)
{
	if (cJSON_IsObject(v)) return "an object";
	if (cJSON_IsArray(v)) return "an array";
	if (cJSON_IsString(v)) return "a string";
	if (cJSON_IsNumber(v)) return "a number";
	if (cJSON_IsBool(v)) return "a boolean";
	return "null";
}

/* An array index: 0 with *i, or -1 when seg is not a decimal number. */
static int parse_index(const char *seg, int *i)
{
	if (!*seg || strlen(seg) > 6 || strspn(seg, "0123456789") != strlen(seg)) return -1;
	*i = atoi(seg);
	return 0;
}

/* The KEY of "KEY=VALUE", for messages (at most 200 characters). */
static const char *path_of(const char *set, const char *eq)
{
	static char buf[208];
	snprintf(buf, sizeof buf, "%.*s", (int)(eq - set < 200 ? eq - set : 200), set);
	return buf;
}

/* "  pretrain.optimizer.lr: 0.001 -> 0.003" on stderr: the edit is visible, and a key that was
 * not there before ("(absent)") stands out as the likely typo. */
static void say_change(const char *path, const cJSON *old, const cJSON *val)
{
	char *o = old ? cJSON_PrintUnformatted(old) : NULL, *v = cJSON_PrintUnformatted(val);
	fprintf(stderr, "  %s: %.200s -> %.200s\n", path, o ? o : "(absent)", v ? v : "?");
	cJSON_free(o);
	cJSON_free(v);
}

/* Applies one "a.b.c=VALUE" to spec: 0, or -1 after printing which part of the path is wrong. */
static int apply_set(cJSON *spec, const char *set)
{
	const char *eq = strchr(set, '=');
	if (!eq || eq == set) {
		fprintf(stderr, "ssld submit: --set '%s': expected KEY=VALUE (pretrain.optimizer.lr=3e-3)\n", set);
		return -1;
	}
	char path[512];
	if ((size_t)(eq - set) >= sizeof path) {
		fprintf(stderr, "ssld submit: --set: the key is longer than %zu characters\n", sizeof path - 1);
		return -1;
	}
	snprintf(path, sizeof path, "%.*s", (int)(eq - set), set);
	cJSON *val = cJSON_ParseWithOpts(eq + 1, NULL, 1);
	if (!val) val = cJSON_CreateString(eq + 1);   /* name=rerun: a string needs no quotes */
	if (!val) {
		fprintf(stderr, "ssld submit: out of memory\n");
		return -1;
	}
	cJSON *node = spec;
	for (char *seg = path;;) {
		char *dot = strchr(seg, '.');
		if (dot) *dot = 0;
		int last = !dot;
		/* what the walk has reached: "the spec", or the path up to this segment */
		char here[520];
		if (seg == path) snprintf(here, sizeof here, "the spec");
		else snprintf(here, sizeof here, "'%.*s'", (int)(seg - 1 - path), set);
		if (!*seg) {
			fprintf(stderr, "ssld submit: --set %s: an empty key in the path\n", set);
			goto fail;
		}
		if (cJSON_IsArray(node)) {
			int i, n = cJSON_GetArraySize(node);
			if (parse_index(seg, &i) < 0 || i > n || (i == n && !last)) {
				fprintf(stderr, "ssld submit: --set %s: %s is an array of %d; '%s' is not an index (0..%d)\n", set,
				        here, n, seg, last ? n : n - 1);
				goto fail;
			}
			if (last) {
				say_change(path_of(set, eq), i < n ? cJSON_GetArrayItem(node, i) : NULL, val);
				if (i == n) cJSON_AddItemToArray(node, val);   /* one past the end appends */
				else cJSON_ReplaceItemInArray(node, i, val);
				return 0;
			}
			node = cJSON_GetArrayItem(node, i);
		} else if (cJSON_IsObject(node)) {
			cJSON *child = cJSON_GetObjectItemCaseSensitive(node, seg);
			if (last) {
				say_change(path_of(set, eq), child, val);
				if (child) cJSON_ReplaceItemInObjectCaseSensitive(node, seg, val);
				else cJSON_AddItemToObject(node, seg, val);
				return 0;
			}
			if (!child) child = cJSON_AddObjectToObject(node, seg);
			node = child;
		} else {
			fprintf(stderr, "ssld submit: --set %s: %s is %s, so it has no '%s'\n", set, here, json_kind(node), seg);
			goto fail;
		}
		seg = dot + 1;
	}
fail:
	cJSON_Delete(val);
	return -1;
}

/* The spec to submit, as text: the file's, or job from_id's; with the --set edits. NULL after
 * printing why; *status is then the exit status. */
static char *build_spec(const Client *c, const char *file, const char *from, const char **sets, int nsets, size_t *len,
                        int *status)
{
	*status = 1;
	cJSON *spec = NULL;
	if (from) {
		long long id;
		if (client_parse_id("submit", from, &id) < 0) {
			*status = 2;
			return NULL;
		}
		char path[64];
		snprintf(path, sizeof path, "/v1/jobs/%lld", id);
		cJSON *job = client_get_json(c, "submit", path, NULL);
		if (!job) {
			fprintf(stderr, "ssld submit: --from %lld: cannot read that job's spec\n", id);
			return NULL;
		}
		spec = cJSON_DetachItemFromObjectCaseSensitive(job, "spec");
		cJSON_Delete(job);
		if (!cJSON_IsObject(spec)) {
			fprintf(stderr, "ssld submit: --from %lld: the server sent no spec for that job\n", id);
			cJSON_Delete(spec);
			return NULL;
		}
	} else {
		char err[768];
		size_t n;
		char *buf = cli_read_file(file, &n, err, sizeof err);
		if (!buf) {
			fprintf(stderr, "ssld submit: %s\n", err);
			return NULL;
		}
		if (nsets == 0) {   /* sent as it is: the server's errors are about the file */
			*len = n;
			return buf;
		}
		spec = cJSON_ParseWithLength(buf, n);
		free(buf);
		if (!cJSON_IsObject(spec)) {
			fprintf(stderr, "ssld submit: %s: --set needs a JSON object to edit, and this is not one\n", file);
			cJSON_Delete(spec);
			return NULL;
		}
	}
	for (int i = 0; i < nsets; i++)
		if (apply_set(spec, sets[i]) < 0) {
			cJSON_Delete(spec);
			*status = 2;
			return NULL;
		}
	char *text = cJSON_PrintUnformatted(spec);
	cJSON_Delete(spec);
	if (!text) fprintf(stderr, "ssld submit: out of memory\n");
	else *len = strlen(text);
	return text;
}

int cli_submit_main(int argc, char **argv)
{
	enum { O_FROM, O_SET, O_WATCH, O_INTERVAL, O_CLIENT };
	CliOpt opts[] = { { "--from", "ID", NULL, 0 }, { "--set", "KEY=VALUE", NULL, 0 }, { "--watch", NULL, NULL, 0 },
	                  { "--interval", "SECONDS", NULL, 0 }, CLIENT_OPTS };
	const char *pos[1], *sets[MAX_SETS];
	int npos, nsets, rc = cli_args_parse_rep(argv[0], argc, argv, opts, 6, pos, 1, &npos, "--set", sets, MAX_SETS, &nsets);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	const char *from = opts[O_FROM].value;
	if (npos == 0 && !from) {
		fprintf(stderr, "ssld submit: needs a job file (JSON; - for stdin) or --from ID\n");
		return 2;
	}
	if (npos && from) {
		fprintf(stderr, "ssld submit: a job file or --from ID, not both\n");
		return 2;
	}
	double interval = 1.0;
	if (opts[O_INTERVAL].value && cli_number("submit", "--interval", opts[O_INTERVAL].value, 0.05, 3600, &interval) < 0)
		return 2;
	Client c;
	if (client_init(&c, "submit", &opts[O_CLIENT]) != 0) return 2;
	size_t len = 0;
	char *buf = build_spec(&c, npos ? pos[0] : NULL, from, sets, nsets, &len, &rc);
	if (!buf) return rc;
	char err[768];
	ClientResp r;
	rc = client_http(&c, "POST", "/v1/jobs", buf, len, &r, err, sizeof err);
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
