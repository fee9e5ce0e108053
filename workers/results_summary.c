/* results_summary.c - the headline, the baselines and the label notes of a job's results (see
 * results_summary.h).
 *
 * It reads only what the runner put in the results object and the protocol registry (which
 * protocols are baselines); it runs nothing and does not format for a terminal or a page beyond
 * the one "summary" sentence every client shows as it is.
 */
#include "results_summary.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/methods/eval.h"

/* Feature baselines a method reports among its pretext metrics as "<prefix><fraction>". */
static const struct { const char *prefix, *kind; } pretext_baselines[] = {
	{ "bag_of_bytes_probe@", "bag_of_bytes" },
	{ "raw_pixels_probe@", "raw_pixels" },
};

static double round4(double x) { return round(x * 1e4) / 1e4; }

static double num(const cJSON *o, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *baseline_kind(const cJSON *ev)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(ev, "protocol");
	const EvalProtocolDef *d = cJSON_IsString(p) ? eval_protocol_find(p->valuestring) : NULL;
	return d ? d->baseline : NULL;
}

/* Where an evaluation sits on the label axis: its fraction, or -labels_per_class (so per-class
 * runs sort apart from fractions and never match one). */
static double label_key(const cJSON *ev)
{
	double f = num(ev, "label_fraction", -1);
	return f > 0 ? f : -num(ev, "labels_per_class", 0);
}

static void add_label_key(cJSON *o, double key)
{
	if (key > 0)
		cJSON_AddNumberToObject(o, "label_fraction", key);
	else
		cJSON_AddNumberToObject(o, "labels_per_class", -key);
}

static void fmt_labels(double key, char *out, size_t cap)
{
	if (key > 0)
		snprintf(out, cap, "%g %% labels", round(key * 100 * 1000) / 1000);
	else
		snprintf(out, cap, "%g labels per class", -key);
}

static const char *kind_words(const char *kind)
{
	if (strcmp(kind, "scratch") == 0) return "scratch";
	if (strcmp(kind, "random_init") == 0) return "the random-init probe";
	if (strcmp(kind, "bag_of_bytes") == 0) return "bag-of-bytes";
	if (strcmp(kind, "raw_pixels") == 0) return "raw pixels";
	return kind;
}

static void add_baseline(cJSON *list, const char *kind, const char *protocol, double key, double acc)
{
	cJSON *b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "kind", kind);
	cJSON_AddStringToObject(b, "protocol", protocol);
	add_label_key(b, key);
	cJSON_AddNumberToObject(b, "test_accuracy", round4(acc));
	cJSON_AddItemToArray(list, b);
}

void results_add_headline(cJSON *root)
{
	cJSON *evals = cJSON_GetObjectItemCaseSensitive(root, "evaluations");
	cJSON *pretext = cJSON_GetObjectItemCaseSensitive(root, "pretext");
	cJSON *list = cJSON_CreateArray();
	const cJSON *best = NULL;
	double best_key = 0;
	cJSON *ev;
	/* The label axis' smallest point an SSL protocol reached (fractions before per-class runs). */
	cJSON_ArrayForEach(ev, evals) {
		const char *kind = baseline_kind(ev);
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(ev, "protocol");
		if (kind) {
			cJSON_AddStringToObject(ev, "baseline", kind);
			add_baseline(list, kind, p->valuestring, label_key(ev), num(ev, "test_accuracy", 0));
			continue;
		}
		double k = label_key(ev);
		int smaller = !best || (k > 0 && (best_key < 0 || k < best_key)) ||
		              (k < 0 && best_key < 0 && k > best_key);
		int tie = best && k == best_key &&
		          num(ev, "test_accuracy", 0) > num(best, "test_accuracy", 0);
		if (smaller || tie) {
			best = ev;
			best_key = k;
		}
	}
	const cJSON *m;
	cJSON_ArrayForEach(m, pretext) {
		for (size_t i = 0; m->string && cJSON_IsNumber(m) &&
		                   i < sizeof pretext_baselines / sizeof pretext_baselines[0]; i++) {
			size_t n = strlen(pretext_baselines[i].prefix);
			if (strncmp(m->string, pretext_baselines[i].prefix, n) == 0) {
				double f = atof(m->string + n);
				if (f > 0)
					add_baseline(list, pretext_baselines[i].kind, m->string, f, m->valuedouble);
			}
		}
	}
	cJSON_AddItemToObject(root, "baselines", list);
	if (!best) {
		cJSON_AddNullToObject(root, "headline");
		return;
	}
	/* Its baseline at the same labels: scratch first (the comparison the field makes), then the
	 * random-init probe, then a feature baseline. */
	static const char *const order[] = { "scratch", "random_init", "bag_of_bytes", "raw_pixels" };
	const cJSON *base = NULL;
	for (size_t o = 0; !base && o < sizeof order / sizeof order[0]; o++) {
		cJSON *b;
		cJSON_ArrayForEach(b, list) {
			const cJSON *kind = cJSON_GetObjectItemCaseSensitive(b, "kind");
			if (strcmp(kind->valuestring, order[o]) == 0 && label_key(b) == best_key &&
			    (!base || num(b, "test_accuracy", 0) > num(base, "test_accuracy", 0)))
				base = b;
		}
	}
	double acc = num(best, "test_accuracy", 0);
	cJSON *h = cJSON_AddObjectToObject(root, "headline");
	cJSON_AddStringToObject(h, "protocol", cJSON_GetObjectItemCaseSensitive(best, "protocol")->valuestring);
	add_label_key(h, best_key);
	cJSON_AddNumberToObject(h, "accuracy", round4(acc));
	char labels[64], text[160];
	fmt_labels(best_key, labels, sizeof labels);
	if (base) {
		const char *kind = cJSON_GetObjectItemCaseSensitive(base, "kind")->valuestring;
		double bacc = num(base, "test_accuracy", 0);
		double gain = round4(round4(acc) - round4(bacc));
		cJSON_AddStringToObject(h, "baseline", kind);
		cJSON_AddNumberToObject(h, "baseline_accuracy", round4(bacc));
		cJSON_AddNumberToObject(h, "gain", gain);
		snprintf(text, sizeof text, "%+.1f points %s %s at %s", gain * 100,
		         gain >= 0 ? "over" : "against", kind_words(kind), labels);
	} else {
		cJSON_AddNullToObject(h, "baseline");
		cJSON_AddNullToObject(h, "baseline_accuracy");
		cJSON_AddNullToObject(h, "gain");
		snprintf(text, sizeof text, "%s %.1f %% at %s (no baseline ran)",
		         cJSON_GetObjectItemCaseSensitive(best, "protocol")->valuestring, acc * 100, labels);
	}
	cJSON_AddStringToObject(h, "summary", text);
}

int results_label_note(const Split *split, int num_classes, double fraction, int labels_per_class,
                       cJSON **out, char *msg, size_t msglen)
{
	*out = NULL;
	if (msg && msglen)
		msg[0] = 0;
	if (num_classes <= 0 || !split->y)
		return 0;
	int *count = calloc((size_t)num_classes, sizeof *count);
	if (!count)
		return -1;
	int labelled = 0;
	for (int i = 0; i < split->n; i++)
		if (split->y[i] >= 0 && split->y[i] < num_classes) {
			count[split->y[i]]++;
			labelled++;
		}
	int k = dataset_label_quota(labelled, num_classes, fraction, labels_per_class);
	int used = 0, shorts = 0, requested = k > 0 ? k * num_classes : labelled;
	for (int c = 0; c < num_classes; c++) {
		used += k > 0 && count[c] > k ? k : count[c];
		shorts += k > 0 && count[c] < k;
	}
	cJSON *o = cJSON_CreateObject();
	if (!o) {
		free(count);
		return -1;
	}
	add_label_key(o, labels_per_class > 0 ? -labels_per_class : fraction);
	cJSON_AddNumberToObject(o, "requested", requested);
	cJSON_AddNumberToObject(o, "used", used);
	if (k > 0)
		cJSON_AddNumberToObject(o, "requested_per_class", k);
	cJSON_AddNumberToObject(o, "classes", num_classes);
	cJSON_AddNumberToObject(o, "classes_short", shorts);
	if (shorts > 0) {
		cJSON *per = cJSON_AddArrayToObject(o, "used_per_class");
		for (int c = 0; c < num_classes; c++)
			cJSON_AddItemToArray(per, cJSON_CreateNumber(count[c] > k ? k : count[c]));
		char what[64];
		if (labels_per_class > 0)
			snprintf(what, sizeof what, "labels_per_class %d", labels_per_class);
		else
			snprintf(what, sizeof what, "label fraction %g", fraction);
		if (msg)
			snprintf(msg, msglen,
			         "%s asks for %d labels per class (%d in all) of %d labelled training "
			         "samples, but %d of %d classes have fewer: %d labels are used",
			         what, k, requested, labelled, shorts, num_classes, used);
	}
	free(count);
	*out = o;
	return shorts > 0;
}
