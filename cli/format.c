/* format.c - the commands' shared output (see format.h). Not here: what to print when (each
 * command decides), or terminal handling beyond a bar (watch.c and run.c redraw it). */
#include "format.h"

#include <math.h>
#include <string.h>

void cli_fmt_duration(double s, char *out, size_t cap)
{
	if (!(s >= 0) || s > 1e7) {
		snprintf(out, cap, "--:--");
		return;
	}
	long t = lround(s);
	if (t >= 3600) snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
}

void cli_fmt_bar(double fraction, int width, char *out, size_t cap)
{
	if (cap < (size_t)width + 3) {
		if (cap) out[0] = 0;
		return;
	}
	int filled = fraction > 0 ? (int)(fraction * width + 0.5) : 0;
	if (filled > width) filled = width;
	out[0] = '[';
	for (int i = 0; i < width; i++) out[1 + i] = i < filled ? '#' : '-';
	out[width + 1] = ']';
	out[width + 2] = 0;
}

const char *cli_json_str(const cJSON *o, const char *key, const char *def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) && v->valuestring ? v->valuestring : def;
}

double cli_json_num(const cJSON *o, const char *key, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

void cli_print_results(FILE *f, const cJSON *res)
{
	const cJSON *pre = cJSON_GetObjectItemCaseSensitive(res, "pretext");
	if (cJSON_GetArraySize(pre) > 0) {
		fprintf(f, "pretext:");
		const cJSON *k;
		cJSON_ArrayForEach(k, pre) {
			if (cJSON_IsNumber(k)) fprintf(f, " %s=%.6g", k->string, k->valuedouble);
			else if (cJSON_IsString(k)) fprintf(f, " %s=%s", k->string, k->valuestring);
		}
		fprintf(f, "\n");
	}
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(res, "evaluations");
	if (cJSON_GetArraySize(ev) == 0) {
		fprintf(f, "no evaluations in the spec\n");
		return;
	}
	fprintf(f, "%-14s %9s %7s %14s  %s\n", "PROTOCOL", "FRACTION", "LABELS", "TEST_ACCURACY", "OTHER");
	const cJSON *e;
	cJSON_ArrayForEach(e, ev) {
		double acc = cli_json_num(e, "test_accuracy", NAN), frac = cli_json_num(e, "label_fraction", NAN);
		char accs[32], fracs[32];
		if (isnan(acc)) snprintf(accs, sizeof accs, "-");
		else snprintf(accs, sizeof accs, "%.4f", acc);
		if (isnan(frac)) snprintf(fracs, sizeof fracs, "-");
		else snprintf(fracs, sizeof fracs, "%.4g", frac);
		fprintf(f, "%-14s %9s %7lld %14s ", cli_json_str(e, "protocol", "?"), fracs,
		        (long long)cli_json_num(e, "labels", 0), accs);
		const cJSON *k;
		cJSON_ArrayForEach(k, e) {
			if (!cJSON_IsNumber(k) || strcmp(k->string, "label_fraction") == 0 || strcmp(k->string, "labels") == 0 ||
			    strcmp(k->string, "test_accuracy") == 0)
				continue;
			fprintf(f, " %s=%.4g", k->string, k->valuedouble);
		}
		fprintf(f, "\n");
	}
}

void cli_fmt_progress(const cJSON *job, char *out, size_t cap)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(job, "progress");
	double fr = cli_json_num(p, "fraction", -1);
	const char *stage = cli_json_str(p, "stage", NULL);
	if (fr >= 0) snprintf(out, cap, "%3.0f%%%s%s", 100 * fr, stage ? " " : "", stage ? stage : "");
	else snprintf(out, cap, "-");
}

void cli_fmt_time(const char *iso, char *out, size_t cap)
{
	if (!iso) {
		snprintf(out, cap, "-");
		return;
	}
	snprintf(out, cap, "%.19s", iso);
	if (strlen(out) > 10 && out[10] == 'T') out[10] = ' ';
}
