/* metrics.c - `ssld metrics ID [--csv] [--keys K,...] [-o FILE]`: a job's metric history from
 * GET /v1/jobs/{id}/metrics.csv. --csv writes the rows as the server sends them (for pandas or a
 * spreadsheet); without it, one summary line per key: points, last step, last value, min, max. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "client.h"
#include "commands.h"
#include "format.h"

typedef struct KeySummary {
	char key[64];
	long long points, last_step;
	double last, min, max;      /* over the non-null values; NAN when there were none */
} KeySummary;

static KeySummary *summary_of(KeySummary **ks, int *n, int *cap, const char *key)
{
	for (int i = 0; i < *n; i++)
		if (strcmp((*ks)[i].key, key) == 0) return &(*ks)[i];
	if (*n == *cap) {
		int nc = *cap ? *cap * 2 : 16;
		KeySummary *g = realloc(*ks, (size_t)nc * sizeof *g);
		if (!g) return NULL;
		*ks = g;
		*cap = nc;
	}
	KeySummary *k = &(*ks)[(*n)++];
	snprintf(k->key, sizeof k->key, "%s", key);
	k->points = 0;
	k->last = k->min = k->max = NAN;
	return k;
}

/* The server's CSV ("step,key,value" rows; keys never hold a comma: the metric key grammar)
 * summarised per key, in the order keys first appear. 0, or -1 after printing why. */
static int print_summary(char *csv)
{
	KeySummary *ks = NULL;
	int n = 0, cap = 0, rc = 0;
	char *save = NULL;
	strtok_r(csv, "\n", &save);   /* the header */
	for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
		if (!c2) {
			fprintf(stderr, "ssld metrics: the server sent a malformed row: %.80s\n", line);
			rc = -1;
			break;
		}
		*c1 = *c2 = 0;
		KeySummary *k = summary_of(&ks, &n, &cap, c1 + 1);
		if (!k) {
			fprintf(stderr, "ssld metrics: out of memory\n");
			rc = -1;
			break;
		}
		k->points++;
		k->last_step = strtoll(line, NULL, 10);
		if (c2[1]) {
			double v = strtod(c2 + 1, NULL);
			k->last = v;
			if (isnan(k->min) || v < k->min) k->min = v;
			if (isnan(k->max) || v > k->max) k->max = v;
		}
	}
	if (rc == 0) {
		if (n == 0) printf("no metrics recorded\n");
		else printf("%-32s %8s %10s %12s %12s %12s\n", "KEY", "POINTS", "LAST_STEP", "LAST", "MIN", "MAX");
		for (int i = 0; i < n; i++)
			printf("%-32s %8lld %10lld %12.6g %12.6g %12.6g\n", ks[i].key, ks[i].points, ks[i].last_step,
			       ks[i].last, ks[i].min, ks[i].max);
	}
	free(ks);
	return rc;
}

int cli_metrics_main(int argc, char **argv)
{
	enum { O_CSV, O_KEYS, O_OUT, O_OUTPUT, O_CLIENT = O_OUTPUT + 2 };
	CliOpt opts[] = { { "--csv", NULL, NULL, 0 }, { "--keys", "K,...", NULL, 0 }, { "-o", "FILE", NULL, 0 }, OUTPUT_OPTS,
	                  CLIENT_OPTS };
	const char *pos[1];
	long long id;
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 7, pos, 1, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	int json = cli_output_json("metrics", &opts[O_OUTPUT]);
	if (json < 0) return 2;
	if (client_parse_id("metrics", npos ? pos[0] : NULL, &id) < 0) return 2;
	if (opts[O_KEYS].value && (strlen(opts[O_KEYS].value) > 4000 || strpbrk(opts[O_KEYS].value, "&#? %"))) {
		fprintf(stderr, "ssld metrics: --keys: a comma-separated list of metric keys, e.g. pretrain/loss,lr\n");
		return 2;
	}
	Client c;
	if (client_init(&c, "metrics", &opts[O_CLIENT]) != 0) return 2;
	char path[4200], err[512];
	if (json) {   /* the metrics API's answer, every point (GET /v1/jobs/{id}/metrics) */
		snprintf(path, sizeof path, "/v1/jobs/%lld/metrics?max_points=100000%s%s", id, opts[O_KEYS].value ? "&keys=" : "",
		         opts[O_KEYS].value ? opts[O_KEYS].value : "");
		cJSON *m = client_get_json(&c, "metrics", path, NULL);
		if (!m) return 1;
		client_print_json(m);
		cJSON_Delete(m);
		return 0;
	}
	snprintf(path, sizeof path, "/v1/jobs/%lld/metrics.csv%s%s", id, opts[O_KEYS].value ? "?keys=" : "",
	         opts[O_KEYS].value ? opts[O_KEYS].value : "");
	ClientResp r;
	if (client_http(&c, "GET", path, NULL, 0, &r, err, sizeof err) < 0) {
		fprintf(stderr, "ssld metrics: %s\n", err);
		return 1;
	}
	if (r.status != 200) {
		rc = client_server_error("metrics", &r);
		free(r.body);
		return rc;
	}
	rc = 0;
	if (opts[O_CSV].given || opts[O_OUT].value) {
		FILE *f = opts[O_OUT].value ? fopen(opts[O_OUT].value, "w") : stdout;
		if (!f) {
			fprintf(stderr, "ssld metrics: %s: %s\n", opts[O_OUT].value, strerror(errno));
			free(r.body);
			return 1;
		}
		int bad = fwrite(r.body, 1, r.len, f) != r.len;
		bad |= f == stdout ? fflush(f) != 0 : fclose(f) != 0;
		if (bad) {
			fprintf(stderr, "ssld metrics: writing %s failed: %s\n", opts[O_OUT].value ? opts[O_OUT].value : "stdout",
			        strerror(errno));
			rc = 1;
		}
	} else if (print_summary(r.body) < 0) {
		rc = 1;
	}
	free(r.body);
	return rc;
}
