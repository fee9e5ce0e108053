/* format.c - the commands' shared output (see format.h). Not here: what to print when (each
 * command decides), or terminal handling beyond a bar (watch.c and run.c redraw it). */
#include "format.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

void cli_fmt_pct(double fraction, char *out, size_t cap)
{
	if (isnan(fraction)) snprintf(out, cap, "-");
	else snprintf(out, cap, "%.2f%%", 100 * fraction);
}

void cli_fmt_label_fraction(double fraction, char *out, size_t cap)
{
	if (isnan(fraction)) snprintf(out, cap, "-");
	else snprintf(out, cap, "%.4g%%", 100 * fraction);
}

void cli_fmt_result_value(const char *key, double v, char *out, size_t cap)
{
	size_t n = strlen(key);
	if ((n >= 8 && strcmp(key + n - 8, "accuracy") == 0) || strncmp(key, "eval/", 5) == 0) cli_fmt_pct(v, out, cap);
	else snprintf(out, cap, "%.4g", v);
}

/* The headline's gain in percentage points. The API's accuracies are fractions; the difference
 * of the two accuracies is preferred to "gain" so that the printed figures add up. */
static double headline_points(const cJSON *h)
{
	double acc = cli_json_num(h, "accuracy", NAN), base = cli_json_num(h, "baseline_accuracy", NAN);
	if (!isnan(acc) && !isnan(base)) return 100 * (acc - base);
	return 100 * cli_json_num(h, "gain", NAN);
}

static const cJSON *headline_of(const cJSON *res)
{
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(res, "headline");
	return cJSON_IsObject(h) && !isnan(headline_points(h)) ? h : NULL;
}

/* Where on the label axis a headline sits: "1%" (a fraction) or "10/class" (labels per class). */
static void headline_labels(const cJSON *h, char *out, size_t cap)
{
	double f = cli_json_num(h, "label_fraction", NAN), k = cli_json_num(h, "labels_per_class", NAN);
	if (isnan(f) && !isnan(k)) snprintf(out, cap, "%.0f/class", k);
	else cli_fmt_label_fraction(f, out, cap);
}

void cli_fmt_key_result(const cJSON *res, char *out, size_t cap)
{
	char frac[32], acc[32];
	const cJSON *h = headline_of(res);
	if (h) {
		headline_labels(h, frac, sizeof frac);
		snprintf(out, cap, "%+.1f pts @%s", headline_points(h), frac);
		return;
	}
	/* The best evaluation of the pretrained encoder; the from-scratch baseline only when alone. */
	const cJSON *evs = cJSON_GetObjectItemCaseSensitive(res, "evaluations"), *best = NULL, *e;
	for (int pass = 0; pass < 2 && !best; pass++) {
		cJSON_ArrayForEach(e, evs) {
			double a = cli_json_num(e, "test_accuracy", NAN);
			if (isnan(a) || (pass == 0 && strcmp(cli_json_str(e, "protocol", ""), "supervised") == 0)) continue;
			if (!best || a > cli_json_num(best, "test_accuracy", NAN)) best = e;
		}
	}
	if (!best) {
		/* No evaluation: the pretext figure a generative or language model is judged by. */
		static const struct { const char *key, *fmt; } pre[] = {
			{ "test_bits_per_byte", "%.3g bit/B" }, { "bits_per_char", "%.3g bit/char" }, { "test_recon_mse", "mse %.3g" },
			{ "reconstruction_mse", "mse %.3g" }, { "final_loss", "loss %.4g" },
		};
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(res, "pretext");
		snprintf(out, cap, "-");
		for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
			double v = cli_json_num(p, pre[i].key, NAN);
			if (isnan(v)) continue;
			snprintf(out, cap, pre[i].fmt, v);
			break;
		}
		return;
	}
	cli_fmt_pct(cli_json_num(best, "test_accuracy", NAN), acc, sizeof acc);
	cli_fmt_label_fraction(cli_json_num(best, "label_fraction", NAN), frac, sizeof frac);
	snprintf(out, cap, "%s @%s", acc, frac);
}

void cli_print_results(FILE *f, const cJSON *res)
{
	char a[32], b[32], fr[32];
	const cJSON *h = headline_of(res);
	if (h) {
		cli_fmt_pct(cli_json_num(h, "accuracy", NAN), a, sizeof a);
		cli_fmt_pct(cli_json_num(h, "baseline_accuracy", NAN), b, sizeof b);
		/* "10/class" reads as "10 labels per class" in a sentence */
		double k = cli_json_num(h, "labels_per_class", NAN), pts = headline_points(h);
		if (isnan(cli_json_num(h, "label_fraction", NAN)) && !isnan(k)) snprintf(fr, sizeof fr, "%.0f labels per class", k);
		else {
			cli_fmt_label_fraction(cli_json_num(h, "label_fraction", NAN), fr, sizeof fr);
			strncat(fr, " labels", sizeof fr - strlen(fr) - 1);
		}
		fprintf(f, "headline: %+.1f pts %s %s at %s (%s %s vs %s)\n", pts, pts >= 0 ? "over" : "against",
		        cli_json_str(h, "baseline", "the baseline"), fr, cli_json_str(h, "protocol", "?"), a, b);
	}
	const cJSON *pre = cJSON_GetObjectItemCaseSensitive(res, "pretext");
	if (cJSON_GetArraySize(pre) > 0) {
		fprintf(f, "pretext:");
		const cJSON *k;
		cJSON_ArrayForEach(k, pre) {
			if (cJSON_IsNumber(k)) {
				cli_fmt_result_value(k->string, k->valuedouble, a, sizeof a);
				fprintf(f, " %s=%s", k->string, a);
			} else if (cJSON_IsString(k)) {
				fprintf(f, " %s=%s", k->string, k->valuestring);
			}
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
		cli_fmt_pct(cli_json_num(e, "test_accuracy", NAN), a, sizeof a);
		cli_fmt_label_fraction(cli_json_num(e, "label_fraction", NAN), fr, sizeof fr);
		fprintf(f, "%-14s %9s %7lld %14s ", cli_json_str(e, "protocol", "?"), fr,
		        (long long)cli_json_num(e, "labels", 0), a);
		const cJSON *k;
		cJSON_ArrayForEach(k, e) {
			if (!cJSON_IsNumber(k) || strcmp(k->string, "label_fraction") == 0 || strcmp(k->string, "labels") == 0 ||
			    strcmp(k->string, "test_accuracy") == 0)
				continue;
			cli_fmt_result_value(k->string, k->valuedouble, b, sizeof b);
			fprintf(f, " %s=%s", k->string, b);
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

void cli_fmt_age(double s, char *out, size_t cap)
{
	if (!(s >= 0)) snprintf(out, cap, "-");
	else if (s < 120) snprintf(out, cap, "%.0fs", s);
	else if (s < 7200) snprintf(out, cap, "%.0fm", floor(s / 60));
	else if (s < 172800) snprintf(out, cap, "%.0fh", floor(s / 3600));
	else snprintf(out, cap, "%.0fd", floor(s / 86400));
}

double cli_parse_time(const char *iso)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *rest = iso ? strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!rest) return -1;
	double frac = 0;
	if (*rest == '.') frac = strtod(rest, NULL);
	return (double)timegm(&tm) + frac;
}
