/* spec_docs.c - docs/spec.md from the key table and the method catalogue: one table per level of
 * the spec (type, default, range or choices, the variants a key belongs to, help), then each
 * method's parameters and each protocol's keys. Defaults that differ by variant (an optimizer's
 * lr, an encoder's shape) are listed per variant, read from the same structs the parser fills.
 */
#include "spec_docs.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/encoders/encoder.h"
#include "method_catalog.h"
#include "spec_json.h"
#include "spec_table.h"

/* Text in a table cell: a '|' would end the cell. */
static void cell(FILE *t, const char *s)
{
	for (const char *c = s ? s : ""; *c; c++)
		fprintf(t, *c == '|' ? "\\|" : "%c", *c);
}

/* A JSON value in a cell ("none" for null). */
static void cell_json(FILE *t, cJSON *v)
{
	char *s = v && !cJSON_IsNull(v) ? cJSON_PrintUnformatted(v) : NULL;
	if (s) {
		fprintf(t, "`");
		cell(t, s);
		fprintf(t, "`");
	} else {
		fprintf(t, "none");
	}
	free(s);
}

static void range_text(FILE *t, double min, double max, unsigned flags)
{
	char lo[32] = "-inf", hi[32] = "inf";
	if (!(flags & PARAM_NO_MIN))
		snprintf(lo, sizeof lo, "%.15g", min);
	if (!(flags & PARAM_NO_MAX))
		snprintf(hi, sizeof hi, "%.15g", max);
	fprintf(t, "%c%s, %s%c", (flags & (PARAM_MIN_EXCLUSIVE | PARAM_NO_MIN)) ? '(' : '[', lo, hi,
	    (flags & (PARAM_MAX_EXCLUSIVE | PARAM_NO_MAX)) ? ')' : ']');
}

static void choices_text(FILE *t, const char *choices)
{
	char buf[64];
	for (int c = 0; spec_choice_at(choices, c, buf, sizeof buf); c++)
		fprintf(t, "%s`%s`", c ? ", " : "", buf);
}

/* Default of the rows of one path: one value, or one per variant when they differ. */
static void default_text(FILE *t, const SpecKey *k, const char *level)
{
	if (k->flags & SPEC_DEF_NONE) {
		cell(t, k->def_text ? k->def_text : "none");
		return;
	}
	const SpecLevel *lv = spec_level_find(level);
	const char *variants = lv && lv->variants && k->type != SPEC_OBJECT ? lv->variants : NULL;
	if (!variants || (k->flags & SPEC_HAND_PARSED)) {
		cJSON *d = spec_key_default_json(k, NULL);
		cell_json(t, d);
		cJSON_Delete(d);
		return;
	}
	/* one value per variant the path is valid for; a single value when they agree */
	char v[32], *first = NULL;
	int same = 1, n = 0;
	char *texts[16];
	const char *names[16];
	for (int c = 0; spec_choice_at(variants, c, v, sizeof v) && n < 16; c++) {
		const SpecKey *r = spec_key_find(k->path, v);
		if (!r)
			continue;
		cJSON *d = spec_key_default_json(r, v);
		texts[n] = d ? cJSON_PrintUnformatted(d) : NULL;
		cJSON_Delete(d);
		names[n] = strdup(v);
		if (first && texts[n] && strcmp(first, texts[n]) != 0)
			same = 0;
		if (!first)
			first = texts[n];
		n++;
	}
	for (int i = 0; i < n; i++) {
		const char *val = texts[i] && strcmp(texts[i], "null") != 0 ? texts[i] : NULL;
		if (same && i > 0)
			break;
		if (same && val)
			fprintf(t, "`%s`", val);
		else if (same)
			fprintf(t, "%s", (k->flags & SPEC_REQUIRED) ? "required" : "none");
		else
			fprintf(t, "%s%s %s%s%s", i ? ", " : "", names[i], val ? "`" : "", val ? val : "none", val ? "`" : "");
	}
	for (int i = 0; i < n; i++) {
		free(texts[i]);
		free((char *)names[i]);
	}
}

/* Rows of one dataset key path that describe it differently are the keys of different formats
 * and get a line each; elsewhere a path is one line. */
static int same_help(const SpecKey *a, const SpecKey *b)
{
	return strncmp(a->path, "dataset.", 8) != 0 || a->help == b->help ||
	       (a->help && b->help && strcmp(a->help, b->help) == 0);
}

static void level_table(FILE *t, const char *level, const char *title, const char *intro)
{
	fprintf(t, "\n## %s\n\n", title);
	if (intro[0])
		fprintf(t, "%s\n\n", intro);
	fprintf(t, "| key | type | default | range / choices | only for | description |\n"
	       "| --- | --- | --- | --- | --- | --- |\n");
	for (int i = 0; i < spec_key_count(); i++) {
		const SpecKey *k = spec_key_at(i);
		const char *leaf = spec_key_leaf(k, level);
		int seen = 0;   /* rows of one path with one help are one line (a format's own key is its own) */
		for (int j = 0; j < i; j++)
			seen |= strcmp(spec_key_at(j)->path, k->path) == 0 && same_help(spec_key_at(j), k);
		if (!leaf || seen)
			continue;
		fprintf(t, "| `%s` | ", k->path);
		cell(t, spec_key_type_name(k));
		fprintf(t, " | ");
		default_text(t, k, level);
		fprintf(t, " | ");
		if (k->choices && k->type == SPEC_ENUM)
			choices_text(t, k->choices);
		else if (k->type == SPEC_ENUM && strcmp(k->path, "method") == 0)
			fprintf(t, "see [methods](#methods)");
		else if (k->type == SPEC_ENUM)
			fprintf(t, "see [protocols](#evaluation-protocols)");
		else if (k->choices)
			choices_text(t, k->choices);
		else if (k->type == SPEC_INT || k->type == SPEC_I64 || k->type == SPEC_U64 || k->type == SPEC_FLOAT ||
		         k->type == SPEC_DOUBLE || k->type == SPEC_INT_LIST || k->type == SPEC_DOUBLE_LIST ||
		         k->type == SPEC_FLOAT_PAIR) {
			int rows = 0;   /* rows of several variants may differ in range */
			for (int j = i; j < spec_key_count(); j++) {
				const SpecKey *r = spec_key_at(j);
				if (strcmp(r->path, k->path) == 0 && r != k &&
				    (r->min != k->min || r->max != k->max || r->flags % 16 != k->flags % 16))
					rows++;
			}
			rows++;
			for (int j = i, shown = 0; j < spec_key_count(); j++) {
				const SpecKey *r = spec_key_at(j);
				if (strcmp(r->path, k->path) != 0)
					continue;
				if (rows > 1 && r->variant) {
					fprintf(t, "%s", shown++ ? "; " : "");
					cell(t, r->variant);
					fprintf(t, " ");
				}
				range_text(t, r->min, r->max, r->flags);
				if (rows == 1)
					break;
			}
		}
		if (k->max_n > 0 && k->type != SPEC_FLOAT_PAIR)
			fprintf(t, "%s%d..%d entries", k->type == SPEC_CUSTOM ? "" : "; ", k->min_n, k->max_n);
		fprintf(t, " | ");
		/* the variants of every row of this path (none shown when they are all of the level's) */
		int always = 0;
		char only[128] = "", v[32];
		for (int j = i; j < spec_key_count(); j++) {
			const SpecKey *r = spec_key_at(j);
			if (strcmp(r->path, k->path) != 0 || !same_help(r, k))
				continue;
			if (!r->variant)
				always = 1;
			size_t l = strlen(only);
			if (r->variant)
				snprintf(only + l, sizeof only - l, "%s%s", l ? "|" : "", r->variant);
		}
		const SpecLevel *lv = spec_level_find(level);
		int all = lv && lv->variants;
		for (int c = 0; all && spec_choice_at(lv->variants, c, v, sizeof v); c++)
			all = spec_in_list(only, v);
		if (!always && !all)
			choices_text(t, only);
		fprintf(t, " | %s", (k->flags & SPEC_REQUIRED) ? "**required.** " : "");
		int helps = 0;   /* rows of several variants may say different things */
		for (int j = i + 1; j < spec_key_count(); j++) {
			const SpecKey *r = spec_key_at(j);
			helps |= strcmp(r->path, k->path) == 0 && r->help && strcmp(r->help, k->help) != 0;
		}
		for (int j = i, shown = 0; j < spec_key_count(); j++) {
			const SpecKey *r = spec_key_at(j);
			if (strcmp(r->path, k->path) != 0)
				continue;
			if (helps && r->variant) {
				fprintf(t, "%s", shown++ ? "; " : "");
				choices_text(t, r->variant);
				fprintf(t, ": ");
			}
			cell(t, r->help);
			if (!helps)
				break;
		}
		fprintf(t, " |\n");
	}
}

static void param_table(FILE *t, const ParamDef *defs, int n)
{
	if (n == 0) {
		fprintf(t, "No parameters.\n");
		return;
	}
	fprintf(t, "| parameter | type | default | range / choices | description |\n| --- | --- | --- | --- | --- |\n");
	for (int i = 0; i < n; i++) {
		const ParamDef *d = &defs[i];
		fprintf(t, "| `%s` | %s | ", d->name, catalog_param_type_name(d->type));
		if (d->flags & PARAM_DEFAULT_AUTO) {
			fprintf(t, "auto");
		} else {
			cJSON *full = spec_param_def_json(d);
			cell_json(t, cJSON_GetObjectItem(full, "default"));
			cJSON_Delete(full);
		}
		fprintf(t, " | ");
		if (d->type == PARAM_ENUM)
			choices_text(t, d->choices ? d->choices : "");
		else if (d->type == PARAM_NUMBER || d->type == PARAM_INTEGER)
			range_text(t, d->min, d->max, d->flags);
		fprintf(t, " | ");
		cell(t, d->help);
		fprintf(t, " |\n");
	}
}

char *jobspec_docs_markdown(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *t = open_memstream(&text, &len);
	if (!t)
		return NULL;
	fprintf(t, "# The job spec\n\n"
	        "<!-- Generated by `ssld schema --markdown > docs/spec.md` from workers/spec_table.c and "
	        "workers/method_catalog.c; do not edit by hand (the jobspec test fails when it is stale). -->\n\n"
	        "A job is one JSON object, the same for `ssld run`, `ssld check` and `POST /v1/jobs`. Every key "
	        "below is optional unless marked required; absent keys take the default shown, and the "
	        "resolved spec (`ssld check JOB.json`, `POST /v1/jobs?dry_run=1`, `GET /v1/jobs/{id}`) "
	        "spells every default out. Keys that belong to another variant of their level (another "
	        "encoder, optimizer, dataset format or protocol) are refused with a 400 that names them, "
	        "as are unknown keys. `ssld schema` (or `GET /v1/schema`) is the same reference as a JSON "
	        "Schema for editors.\n");
	level_table(t, "", "Top level", "");
	level_table(t, "dataset", "dataset",
	            "A string names a built-in dataset; an object gives `name` (built-in) or `format` (files).");
	{
		char intro[1024];
		size_t at = (size_t)snprintf(intro, sizeof intro, "`encoder` picks the architecture; each "
		                             "encoder owns its keys (engine/encoders/), and defaults are per encoder.");
		for (int e = 0; e < encoder_count() && at < sizeof intro; e++) {
			const EncoderDesc *d = encoder_desc((EncoderKind)e);
			char data[64];
			at += (size_t)snprintf(intro + at, sizeof intro - at, " `%s` fits %s.", d->name,
			                       catalog_data_names(d->fits, data, sizeof data));
		}
		level_table(t, "model", "model", intro);
	}
	level_table(t, "pretrain", "pretrain", "");
	level_table(t, "pretrain.optimizer", "pretrain.optimizer", "`name` picks the optimizer; defaults are per optimizer.");
	level_table(t, "pretrain.schedule", "pretrain.schedule", "");
	level_table(t, "augment", "augment, augment2",
	            "A preset name, or an object: the listed transforms modify `preset`; a transform the preset "
	            "leaves off starts from the defaults below when named.");
	for (int i = 0; i < spec_aug_transform_count; i++) {
		char level[64];
		snprintf(level, sizeof level, "augment.%s", spec_aug_transforms[i]);
		level_table(t, level, level, "");
	}
	level_table(t, "evaluations[]", "evaluations[]",
	            "Each evaluation takes these keys plus its protocol's ([below](#evaluation-protocols)).");
	level_table(t, "embedding_map", "embedding_map",
	            "Present (even `{}`): after the evaluations the job maps a seeded sample of its test split "
	            "with t-SNE; see docs/results.md.");
	level_table(t, "distributed", "distributed",
	            "Present: the daemon runs the job under `mpirun` over `processes` MPI ranks (an ssld "
	            "built with `meson -Dmpi=enabled`); see docs/distributed.md.");

	fprintf(t, "\n## Methods\n\n`method` picks one; `params` takes its parameters.\n");
	for (int i = 0; i < method_catalog_count(); i++) {
		const MethodInfo *m = method_catalog_at(i);
		char data[64], encs[128];
		fprintf(t, "\n### %s\n\n%s (%s). Datasets: %s; encoders: %s (default %s); views: %d; default augment: %s.\n\n",
		    m->name, m->summary, m->family, catalog_data_names(m->datasets, data, sizeof data),
		    catalog_encoder_names(method_catalog_encoders(m), encs, sizeof encs),
		    encoder_kind_name(m->default_encoder), m->views, m->default_augment ? m->default_augment : "none");
		param_table(t, m->params, m->n_params);
	}
	fprintf(t, "\n## Evaluation protocols\n\n`evaluations[].protocol` picks one; each also takes "
	        "`label_fractions`, `labels_per_class` and `label_rule`.\n");
	for (int i = 0; i < protocol_catalog_count(); i++) {
		const ProtocolInfo *pi = protocol_catalog_at(i);
		fprintf(t, "\n### %s\n\n%s%s.\n\n", pi->name, pi->summary, pi->needs_labels ? " (needs labels)" : "");
		param_table(t, pi->keys, pi->n_keys);
	}
	int bad = ferror(t);
	if (fclose(t) != 0 || bad) {
		free(text);
		return NULL;
	}
	return text;
}
