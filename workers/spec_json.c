/* spec_json.c - the job spec as JSON and text for people: the catalogue (`GET /v1/methods`, `ssld
 * methods`) and the resolved spec (jobspec_to_json), both walks of the key table (spec_table.c)
 * and the method catalogue. Parsing is jobspec.c; the JSON Schema is spec_schema.c.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/encoders/encoder.h"
#include "jobspec.h"
#include "../engine/data/format.h"
#include "method_catalog.h"
#include "spec_json.h"
#include "spec_table.h"

/* ---------------------------------------------------------------------------------------------- */
/* Numbers for output: a float as the shortest decimal that reads back as the same float.       */

double spec_f2d(float f)
{
	char buf[32];
	for (int prec = 6; prec <= 9; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
		double d = strtod(buf, NULL);
		if ((float)d == f)
			return d;
	}
	return (double)f;
}

/* ---------------------------------------------------------------------------------------------- */
/* The catalogue as JSON                                                                          */

cJSON *spec_param_def_json(const ParamDef *d)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "name", d->name);
	cJSON_AddStringToObject(o, "type", catalog_param_type_name(d->type));
	switch (d->flags & PARAM_DEFAULT_AUTO ? -1 : (int)d->type) {
	case -1:   /* chosen at run time */
		cJSON_AddNullToObject(o, "default");
		cJSON_AddStringToObject(o, "default_text", "auto");
		break;
	case PARAM_BOOLEAN: cJSON_AddBoolToObject(o, "default", d->def != 0); break;
	case PARAM_PATH:
	case PARAM_DIR:
	case PARAM_PATH_LIST:
		cJSON_AddNullToObject(o, "default");
		if (d->def_text)
			cJSON_AddStringToObject(o, "default_text", d->def_text);
		break;
	case PARAM_STRING:
	case PARAM_ENUM:
		if (d->def_str)
			cJSON_AddStringToObject(o, "default", d->def_str);
		else
			cJSON_AddNullToObject(o, "default");
		break;
	default: cJSON_AddNumberToObject(o, "default", d->def); break;
	}
	if (d->type == PARAM_NUMBER || d->type == PARAM_INTEGER) {
		if (d->flags & PARAM_NO_MIN)
			cJSON_AddNullToObject(o, "min");
		else
			cJSON_AddNumberToObject(o, "min", d->min);
		if (d->flags & PARAM_NO_MAX)
			cJSON_AddNullToObject(o, "max");
		else
			cJSON_AddNumberToObject(o, "max", d->max);
		if (d->flags & PARAM_MIN_EXCLUSIVE)
			cJSON_AddTrueToObject(o, "exclusive_min");
		if (d->flags & PARAM_MAX_EXCLUSIVE)
			cJSON_AddTrueToObject(o, "exclusive_max");
	}
	if (d->type == PARAM_ENUM && d->choices) {
		cJSON *arr = cJSON_AddArrayToObject(o, "enum");
		char buf[256];
		snprintf(buf, sizeof buf, "%s", d->choices);
		char *save = NULL;
		for (char *c = strtok_r(buf, "|", &save); c; c = strtok_r(NULL, "|", &save))
			cJSON_AddItemToArray(arr, cJSON_CreateString(c));
	}
	cJSON_AddStringToObject(o, "help", d->help ? d->help : "");
	return o;
}

static cJSON *mask_names_json(unsigned mask, int count, const char *(*name)(int))
{
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; a && i < count; i++)
		if (mask & (1u << i))
			cJSON_AddItemToArray(a, cJSON_CreateString(name(i)));
	return a;
}

static const char *data_name(int i)
{
	const char *n = dataset_modality_name(1u << i);
	return n ? n : "?";
}

static const char *enc_name(int i)
{
	return encoder_kind_name((EncoderKind)i);
}

/* ---------------------------------------------------------------------------------------------- */
/* Rows as JSON                                                                                   */

void spec_key_level(const SpecKey *k, char *buf, size_t n)
{
	const char *dot = strrchr(k->path, '.');
	snprintf(buf, n, "%.*s", dot ? (int)(dot - k->path) : 0, k->path);
}

const char *spec_key_type_name(const SpecKey *k)
{
	switch (k->type) {
	case SPEC_INT:
	case SPEC_I64:
	case SPEC_U64: return "integer";
	case SPEC_FLOAT:
	case SPEC_DOUBLE: return "number";
	case SPEC_BOOL: return "boolean";
	case SPEC_ENUM: return "enum";
	case SPEC_STRING:
	case SPEC_PATH: return "string";
	case SPEC_INT_LIST: return "array<integer>";
	case SPEC_DOUBLE_LIST:
	case SPEC_FLOAT_PAIR: return "array<number>";
	case SPEC_OBJECT: return "object";
	case SPEC_CUSTOM: return k->json_type ? k->json_type : "any";
	}
	return "any";
}

cJSON *spec_value_json(const SpecKey *k, const void *slot)
{
	const char *base = (const char *)slot - k->off;
	char buf[64];
	switch (k->type) {
	case SPEC_INT: return cJSON_CreateNumber(*(const int *)slot);
	case SPEC_I64: return cJSON_CreateNumber((double)*(const int64_t *)slot);
	case SPEC_U64: return cJSON_CreateNumber((double)*(const uint64_t *)slot);
	case SPEC_FLOAT: return cJSON_CreateNumber(spec_f2d(*(const float *)slot));
	case SPEC_DOUBLE: return cJSON_CreateNumber(*(const double *)slot);
	case SPEC_BOOL: return cJSON_CreateBool(*(const int *)slot);
	case SPEC_ENUM: {
		const char *c = spec_choice_at(k->choices, *(const int *)slot, buf, sizeof buf);
		return c ? cJSON_CreateString(c) : cJSON_CreateNull();
	}
	case SPEC_STRING:
	case SPEC_PATH: {
		const char *s = *(const char *const *)slot;
		return s ? cJSON_CreateString(s) : NULL;
	}
	case SPEC_INT_LIST:
		return cJSON_CreateIntArray((const int *)slot, *(const int *)(const void *)(base + k->off2));
	case SPEC_DOUBLE_LIST:
		return cJSON_CreateDoubleArray((const double *)slot, *(const int *)(const void *)(base + k->off2));
	case SPEC_FLOAT_PAIR: {
		cJSON *a = cJSON_CreateArray();
		cJSON_AddItemToArray(a, cJSON_CreateNumber(spec_f2d(*(const float *)slot)));
		cJSON_AddItemToArray(a, cJSON_CreateNumber(spec_f2d(*(const float *)(const void *)(base + k->off2))));
		return a;
	}
	default: return NULL;
	}
}

cJSON *spec_key_default_json(const SpecKey *k, const char *variant)
{
	char level[96], first[32];
	spec_key_level(k, level, sizeof level);
	if (!variant && k->variant)
		variant = spec_choice_at(k->variant, 0, first, sizeof first);
	const SpecLevel *lv = spec_level_find(level);
	if (!variant && lv)
		variant = lv->fallback ? lv->fallback : strcmp(level, "model") == 0 ? "cnn" : NULL;
	if (k->flags & SPEC_DEF_NONE)
		return cJSON_CreateNull();
	if (k->type == SPEC_OBJECT)
		return cJSON_CreateObject();
	if (k->type == SPEC_CUSTOM || (k->flags & SPEC_HAND_PARSED)) {
		if (!k->def_str)
			return cJSON_CreateNull();
		if (k->type == SPEC_ENUM)
			return cJSON_CreateString(k->def_str);
		cJSON *d = cJSON_Parse(k->def_str);
		return d ? d : cJSON_CreateNull();
	}
	JobSpec *j = calloc(1, sizeof *j);   /* scratch: large */
	EvalSpec ev;
	AugConfig aug;
	memset(&ev, 0, sizeof ev);
	aug_config_none(&aug);
	if (!j)
		return NULL;
	if (strcmp(level, "pretrain.schedule") == 0 || strcmp(level, "pretrain") == 0)
		spec_level_defaults("pretrain.optimizer", "adamw", j, NULL, NULL);
	spec_level_defaults(level, variant, j, &ev, &aug);
	cJSON *v = spec_value_json(k, spec_key_ptr(k, j, &ev, &aug));
	free(j);
	return v ? v : cJSON_CreateNull();
}

/* ---------------------------------------------------------------------------------------------- */
/* The catalogue as JSON                                                                          */

static void add_choices(cJSON *o, const char *name, const char *choices)
{
	cJSON *a = cJSON_AddArrayToObject(o, name);
	char buf[64];
	for (int c = 0; spec_choice_at(choices, c, buf, sizeof buf); c++)
		cJSON_AddItemToArray(a, cJSON_CreateString(buf));
}

/* One entry per key path (rows of several variants merged). */
static void add_spec_keys(cJSON *arr)
{
	for (int i = 0; i < spec_key_count(); i++) {
		const SpecKey *k = spec_key_at(i);
		int seen = 0;
		for (int j = 0; j < i; j++)
			seen |= strcmp(spec_key_at(j)->path, k->path) == 0;
		if (seen || k->path[0] == '$')
			continue;
		cJSON *o = cJSON_CreateObject();
		if (!o)
			return;
		cJSON_AddStringToObject(o, "path", k->path);
		cJSON_AddStringToObject(o, "type", spec_key_type_name(k));
		cJSON_AddItemToObject(o, "default", spec_key_default_json(k, NULL));
		if (k->def_text)
			cJSON_AddStringToObject(o, "default_text", k->def_text);
		if (k->type == SPEC_ENUM) {
			if (k->choices) {
				add_choices(o, "enum", k->choices);
			} else {
				cJSON *a = cJSON_AddArrayToObject(o, "enum");
				if (strcmp(k->path, "method") == 0)
					for (int m = 0; m < method_catalog_count(); m++)
						cJSON_AddItemToArray(a, cJSON_CreateString(method_catalog_at(m)->name));
				else
					for (int m = 0; m < protocol_catalog_count(); m++)
						cJSON_AddItemToArray(a, cJSON_CreateString(protocol_catalog_at(m)->name));
			}
		}
		if (k->type == SPEC_INT || k->type == SPEC_I64 || k->type == SPEC_U64 || k->type == SPEC_FLOAT ||
		    k->type == SPEC_DOUBLE) {
			/* the widest range over the path's rows (model.out_dim: mlp >= 1, cnn >= 0) */
			double lo = k->min, hi = k->max;
			unsigned fl = k->flags;
			for (int j = i + 1; j < spec_key_count(); j++) {
				const SpecKey *r = spec_key_at(j);
				if (strcmp(r->path, k->path) != 0)
					continue;
				if (r->min < lo)
					lo = r->min, fl = (fl & ~(unsigned)PARAM_MIN_EXCLUSIVE) | (r->flags & PARAM_MIN_EXCLUSIVE);
				if (r->max > hi)
					hi = r->max, fl = (fl & ~(unsigned)PARAM_MAX_EXCLUSIVE) | (r->flags & PARAM_MAX_EXCLUSIVE);
				fl &= r->flags | ~(unsigned)(PARAM_MIN_EXCLUSIVE | PARAM_MAX_EXCLUSIVE);
				fl |= r->flags & (PARAM_NO_MIN | PARAM_NO_MAX);
			}
			if (fl & PARAM_NO_MIN)
				cJSON_AddNullToObject(o, "min");
			else
				cJSON_AddNumberToObject(o, "min", lo);
			if (fl & PARAM_NO_MAX)
				cJSON_AddNullToObject(o, "max");
			else
				cJSON_AddNumberToObject(o, "max", hi);
			if (fl & PARAM_MIN_EXCLUSIVE)
				cJSON_AddTrueToObject(o, "exclusive_min");
			if (fl & PARAM_MAX_EXCLUSIVE)
				cJSON_AddTrueToObject(o, "exclusive_max");
		}
		/* the variants of every row of this path */
		char only[128] = "";
		int always = 0;
		for (int j = i; j < spec_key_count(); j++) {
			const SpecKey *r = spec_key_at(j);
			if (strcmp(r->path, k->path) != 0)
				continue;
			if (!r->variant) {
				always = 1;
				continue;
			}
			size_t l = strlen(only);
			snprintf(only + l, sizeof only - l, "%s%s", l ? "|" : "", r->variant);
		}
		/* rows covering every variant of the level are valid always */
		char level[96], v[32];
		spec_key_level(k, level, sizeof level);
		const SpecLevel *lv = spec_level_find(level);
		int all = lv && lv->variants;
		for (int c = 0; all && spec_choice_at(lv->variants, c, v, sizeof v); c++)
			all = spec_in_list(only, v);
		if (!always && !all && only[0])
			add_choices(o, "only", only);
		if (k->flags & SPEC_REQUIRED)
			cJSON_AddTrueToObject(o, "required");
		cJSON_AddStringToObject(o, "help", k->help ? k->help : "");
		cJSON_AddItemToArray(arr, o);
	}
}

static cJSON *catalog_tree(void)
{
	cJSON *root = cJSON_CreateObject();
	if (!root)
		return NULL;
	cJSON *ms = cJSON_AddArrayToObject(root, "methods");
	for (int i = 0; i < method_catalog_count(); i++) {
		const MethodInfo *m = method_catalog_at(i);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", m->name);
		cJSON_AddStringToObject(o, "family", m->family);
		cJSON_AddStringToObject(o, "summary", m->summary);
		cJSON_AddStringToObject(o, "default_encoder", encoder_kind_name(m->default_encoder));
		cJSON_AddItemToObject(o, "encoders", mask_names_json(method_catalog_encoders(m),
		                                                     encoder_count(), enc_name));
		cJSON_AddItemToObject(o, "datasets", mask_names_json(m->datasets, DATA_MODALITY_COUNT, data_name));
		cJSON *fs = cJSON_AddArrayToObject(o, "formats");   /* the formats whose samples it takes */
		for (int f = 0; f < dataset_format_count(); f++) {
			const DatasetFormat *df = dataset_format_at(f);
			if ((m->datasets & df->modality) && (!m->needs_labels || df->labelled))
				cJSON_AddItemToArray(fs, cJSON_CreateString(df->name));
		}
		cJSON_AddNumberToObject(o, "views", m->views);
		cJSON_AddBoolToObject(o, "needs_labels", m->needs_labels);
		cJSON_AddBoolToObject(o, "needs_color", m->needs_color);   /* 3-channel images only */
		cJSON_AddStringToObject(o, "default_augment", m->default_augment ? m->default_augment : "none");
		cJSON *ps = cJSON_AddArrayToObject(o, "params");
		for (int k = 0; k < method_param_count(m); k++)
			cJSON_AddItemToArray(ps, spec_param_def_json(&m->params[k]));
		const char *text = method_catalog_example(m);
		cJSON *ex = text ? cJSON_Parse(text) : NULL;
		cJSON_AddItemToObject(o, "example", ex ? ex : cJSON_CreateString(text ? text : ""));
		cJSON_AddStringToObject(o, "example_file", m->example ? m->example : "");
		cJSON_AddItemToArray(ms, o);
	}
	cJSON *ps = cJSON_AddArrayToObject(root, "protocols");
	for (int i = 0; i < protocol_catalog_count(); i++) {
		const ProtocolInfo *pi = protocol_catalog_at(i);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", pi->name);
		cJSON_AddStringToObject(o, "summary", pi->summary);
		cJSON_AddBoolToObject(o, "needs_labels", pi->needs_labels);
		cJSON *ks = cJSON_AddArrayToObject(o, "keys");
		for (int k = 0; k < pi->n_keys; k++)
			cJSON_AddItemToArray(ks, spec_param_def_json(&pi->keys[k]));
		cJSON_AddItemToArray(ps, o);
	}
	cJSON *es = cJSON_AddArrayToObject(root, "encoders");   /* which encoder fits which data */
	for (int i = 0; i < encoder_count(); i++) {
		const EncoderDesc *d = encoder_desc((EncoderKind)i);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", d->name);
		cJSON_AddStringToObject(o, "summary", d->summary);
		cJSON_AddItemToObject(o, "fits", mask_names_json(d->fits, 3, data_name));
		cJSON *ks = cJSON_AddArrayToObject(o, "keys");
		for (int k = 0; k < d->n_keys; k++)
			cJSON_AddItemToArray(ks, spec_param_def_json(&d->keys[k]));
		for (int k = 0; k < encoder_common_key_count; k++)
			cJSON_AddItemToArray(ks, spec_param_def_json(&encoder_common_keys[k]));
		cJSON_AddItemToArray(es, o);
	}
	cJSON *fs = cJSON_AddArrayToObject(root, "formats");
	for (int i = 0; i < dataset_format_count(); i++) {
		const DatasetFormat *f = dataset_format_at(i);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", f->name);
		cJSON_AddStringToObject(o, "summary", f->summary);
		cJSON_AddBoolToObject(o, "named", f->named);   /* chosen by "name", not "format" */
		cJSON_AddStringToObject(o, "modality", dataset_modality_name(f->modality));
		cJSON_AddBoolToObject(o, "labelled", f->labelled);
		cJSON *ks = cJSON_AddArrayToObject(o, "keys");
		for (int k = 0; k < f->n_keys; k++) {
			cJSON *kj = spec_param_def_json(&f->keys[k]);
			if (kj && (f->keys[k].flags & PARAM_REQUIRED))
				cJSON_AddTrueToObject(kj, "required");
			cJSON_AddItemToArray(ks, kj);
		}
		cJSON_AddItemToArray(fs, o);
	}
	add_spec_keys(cJSON_AddArrayToObject(root, "spec_keys"));
	return root;
}

char *jobspec_catalog_json(void)
{
	cJSON *root = catalog_tree();
	if (!root)
		return NULL;
	char *s = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return s;
}

/* ---------------------------------------------------------------------------------------------- */
/* `ssld methods`: the catalogue for people                                                       */

static void param_range_text(const ParamDef *d, char *buf, size_t n)
{
	buf[0] = '\0';
	if (d->type == PARAM_ENUM) {
		snprintf(buf, n, "%s", d->choices ? d->choices : "");
		return;
	}
	if (d->type != PARAM_NUMBER && d->type != PARAM_INTEGER)
		return;
	char lo[32] = "-inf", hi[32] = "inf";
	if (!(d->flags & PARAM_NO_MIN))
		snprintf(lo, sizeof lo, "%g", d->min);
	if (!(d->flags & PARAM_NO_MAX))
		snprintf(hi, sizeof hi, "%g", d->max);
	snprintf(buf, n, "%c%s, %s%c", (d->flags & (PARAM_MIN_EXCLUSIVE | PARAM_NO_MIN)) ? '(' : '[',
	         lo, hi, (d->flags & (PARAM_MAX_EXCLUSIVE | PARAM_NO_MAX)) ? ')' : ']');
}

static void param_default_text(const ParamDef *d, char *buf, size_t n)
{
	if (d->flags & PARAM_DEFAULT_AUTO) {
		snprintf(buf, n, "auto");
		return;
	}
	switch (d->type) {
	case PARAM_BOOLEAN: snprintf(buf, n, "%s", d->def ? "true" : "false"); break;
	case PARAM_STRING:
	case PARAM_ENUM: snprintf(buf, n, "\"%s\"", d->def_str ? d->def_str : ""); break;
	default: snprintf(buf, n, "%g", d->def); break;
	}
}

static int print_params(FILE *f, const ParamDef *defs, int n)
{
	int any = 0;
	for (int i = 0; i < n; i++) {
		char def[64], range[96];
		param_default_text(&defs[i], def, sizeof def);
		param_range_text(&defs[i], range, sizeof range);
		fprintf(f, "    %-18s %-8s default %-8s %-14s %s\n", defs[i].name,
		        catalog_param_type_name(defs[i].type), def, range, defs[i].help ? defs[i].help : "");
		any = 1;
	}
	if (!any)
		fprintf(f, "    (none)\n");
	return 0;
}

int jobspec_print_catalog(FILE *f)
{
	fprintf(f, "Pretext methods (\"method\" in a job; \"params\" as listed):\n\n");
	for (int i = 0; i < method_catalog_count(); i++) {
		const MethodInfo *m = method_catalog_at(i);
		char data[64];
		fprintf(f, "%s  [%s]\n  %s\n", m->name, m->family, m->summary);
		char encs[128];
		fprintf(f, "  datasets: %s; encoders: %s (default %s); views: %d; default augment: %s\n",
		        catalog_data_names(m->datasets, data, sizeof data),
		        catalog_encoder_names(method_catalog_encoders(m), encs, sizeof encs),
		        encoder_kind_name(m->default_encoder), m->views,
		        m->default_augment ? m->default_augment : "none");
		fprintf(f, "  params:\n");
		print_params(f, m->params, m->n_params);
		fprintf(f, "  example: examples/%s\n", m->example ? m->example : "");
		const char *ex = method_catalog_example(m);
		if (!ex)
			ex = "";
		while (*ex) {
			const char *nl = strchr(ex, '\n');
			int l = nl ? (int)(nl - ex) : (int)strlen(ex);
			fprintf(f, "    %.*s\n", l, ex);
			ex += l + (nl ? 1 : 0);
		}
		fprintf(f, "\n");
	}
	fprintf(f, "Evaluation protocols (\"evaluations\": [{\"protocol\": ...}]; every protocol also "
	           "takes label_fractions, labels_per_class, label_rule):\n\n");
	for (int i = 0; i < protocol_catalog_count(); i++) {
		const ProtocolInfo *pi = protocol_catalog_at(i);
		fprintf(f, "%s%s\n  %s\n  keys:\n", pi->name, pi->needs_labels ? "  (needs labels)" : "",
		        pi->summary);
		print_params(f, pi->keys, pi->n_keys);
		fprintf(f, "\n");
	}
	fprintf(f, "Encoders (\"model\": {\"encoder\": ...}; their keys: `ssld schema --markdown`):\n\n");
	for (int i = 0; i < encoder_count(); i++) {
		const EncoderDesc *d = encoder_desc((EncoderKind)i);
		char data[64];
		fprintf(f, "%-12s fits %s\n  %s\n", d->name, catalog_data_names(d->fits, data, sizeof data),
		        d->summary);
	}
	fprintf(f, "\n");
	fprintf(f, "Every other key of a job (dataset, model, pretrain, augment, ...) with its type, default and "
	           "range: `ssld schema --markdown` (docs/spec.md); as a JSON Schema for editors: `ssld schema`.\n");
	fflush(f);
	return ferror(f) ? -EIO : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The resolved spec as JSON (every default explicit; parses back to the same JobSpec)           */

/* The rows of one level that fit variant, read from their slots (skip: a leaf left out). */
static void emit_level(cJSON *o, const char *level, const char *variant, const JobSpec *js,
                       const EvalSpec *ev, const AugConfig *aug, const char *skip)
{
	for (int i = 0; i < spec_key_count(); i++) {
		const SpecKey *k = spec_key_at(i);
		const char *leaf = spec_key_leaf(k, level);
		if (!leaf || !spec_key_fits(k, variant) || k->type == SPEC_OBJECT || k->type == SPEC_CUSTOM ||
		    (k->flags & SPEC_HAND_PARSED) || (skip && strcmp(leaf, skip) == 0) ||
		    cJSON_GetObjectItemCaseSensitive(o, leaf))
			continue;
		cJSON *v = spec_value_json(k, spec_key_ptr(k, (JobSpec *)js, (EvalSpec *)ev, (AugConfig *)aug));
		if (v)
			cJSON_AddItemToObject(o, leaf, v);
	}
}

/* The dataset as the format's keys. Keys the table walk does not emit (lists, directories, "auto"
 * booleans) are written from the format's rows; a key whose conflicting key is set, and a
 * directory that stands for its files, are left out so the result parses back the same. */
static cJSON *dataset_json(const JobSpec *js)
{
	const DatasetSpec *ds = &js->dataset;
	const DatasetFormat *fmt = dataset_format_for(ds->kind);
	if (!fmt)
		return cJSON_CreateString("?");
	const char *name = js->dataset_name ? js->dataset_name : fmt->name;
	char buf[64];
	int plain = fmt->named && !ds->limit_train && !ds->limit_test;   /* the string form will do */
	for (int i = 0; plain && i < fmt->n_keys; i++)
		plain = fmt->keys[i].type != PARAM_DIR || !param_load_text(&fmt->keys[i], ds, buf, sizeof buf);
	if (plain)
		return cJSON_CreateString(name);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, fmt->named ? "name" : "format", name);
	const char *skip = NULL;
	for (int i = 0; i < fmt->n_keys; i++) {
		const ParamDef *d = &fmt->keys[i], *c = d->conflicts ? dataset_format_key(fmt, d->conflicts) : NULL;
		const char *text = param_load_text(d, ds, buf, sizeof buf);
		if (c && c->type == PARAM_PATH && param_load_text(c, ds, buf, sizeof buf))
			skip = d->name;   /* (one such key per format is all the registry holds) */
		if (d->type == PARAM_PATH_LIST) {
			const char *const *list;
			int n;
			memcpy(&list, (const char *)ds + d->offset, sizeof list);
			memcpy(&n, (const char *)ds + d->count_offset, sizeof n);
			cJSON *a = n > 0 ? cJSON_AddArrayToObject(o, d->name) : NULL;
			for (int j = 0; a && j < n; j++)
				cJSON_AddItemToArray(a, cJSON_CreateString(list[j]));
		} else if (d->type == PARAM_DIR && !(d->flags & PARAM_DIR_LISTS) && text) {
			cJSON_AddStringToObject(o, d->name, text);
		} else if (d->type == PARAM_BOOLEAN && (d->flags & PARAM_DEFAULT_AUTO)) {
			double x = param_load(d, ds);
			if (x == d->def)
				cJSON_AddStringToObject(o, d->name, "auto");
			else
				cJSON_AddBoolToObject(o, d->name, x != 0);
		}
	}
	emit_level(o, "dataset", fmt->named ? "named" : fmt->name, js, NULL, NULL, skip);
	return o;
}

static cJSON *augment_json(const AugConfig *c)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "preset", "none");
	emit_level(o, "augment", NULL, NULL, NULL, c, NULL);
	for (int t = 0; t < spec_aug_transform_count; t++) {
		char level[64], pkey[80];
		snprintf(level, sizeof level, "augment.%s", spec_aug_transforms[t]);
		snprintf(pkey, sizeof pkey, "%s.p", level);
		const SpecKey *pk = spec_key_find(pkey, NULL);
		if (!pk || *(const float *)(const void *)((const char *)c + pk->off) <= 0.0f)
			continue;
		emit_level(cJSON_AddObjectToObject(o, spec_aug_transforms[t]), level, NULL, NULL, NULL, c, NULL);
	}
	return o;
}

static cJSON *pretrain_json(const JobSpec *js)
{
	cJSON *o = cJSON_CreateObject();
	emit_level(o, "pretrain", NULL, js, NULL, NULL, NULL);
	cJSON *op = cJSON_AddObjectToObject(o, "optimizer");
	const SpecKey *nk = spec_key_find("pretrain.optimizer.name", NULL);
	char kname[16] = "adamw";
	spec_choice_at(nk->choices, (int)js->pretrain.optim.kind, kname, sizeof kname);
	cJSON_AddStringToObject(op, "name", kname);
	emit_level(op, "pretrain.optimizer", kname, js, NULL, NULL, NULL);
	emit_level(cJSON_AddObjectToObject(o, "schedule"), "pretrain.schedule", NULL, js, NULL, NULL, NULL);
	return o;
}

/* The value row d stores in base, as key d->name of o. */
static void param_json(cJSON *o, const ParamDef *d, const void *base)
{
	char buf[64];
	const char *text = param_load_text(d, base, buf, sizeof buf);
	double x = param_load(d, base);
	switch (d->type) {
	case PARAM_BOOLEAN: cJSON_AddBoolToObject(o, d->name, x != 0); break;
	case PARAM_PATH:
	case PARAM_DIR:
	case PARAM_PATH_LIST:   /* protocol keys are never paths; dataset keys go through the table */
	case PARAM_STRING:
	case PARAM_ENUM: cJSON_AddStringToObject(o, d->name, text ? text : ""); break;
	case PARAM_NUMBER:
		cJSON_AddNumberToObject(o, d->name, d->size == sizeof(float) ? spec_f2d((float)x) : x);
		break;
	case PARAM_INTEGER: cJSON_AddNumberToObject(o, d->name, x); break;
	case PARAM_INT_LIST: {
		const int *v = NULL;
		int n = param_load_list(d, base, &v);
		cJSON_AddItemToObject(o, d->name, n >= 0 ? cJSON_CreateIntArray(v, n) : cJSON_CreateArray());
		break;
	}
	}
}

static cJSON *eval_json(const EvalSpec *e)
{
	const ProtocolInfo *pi = protocol_catalog_get(e->protocol);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "protocol", pi ? pi->name : "?");
	/* labels_per_class replaces label_fractions */
	emit_level(o, "evaluations[]", NULL, NULL, e, NULL,
	           e->labels_per_class > 0 ? "label_fractions" : "labels_per_class");
	for (int k = 0; pi && k < pi->n_keys; k++) {
		const ParamDef *d = &pi->keys[k];
		if ((d->flags & PARAM_DEFAULT_AUTO) && param_load(d, e) == d->def)
			continue;   /* automatic: left out so it stays automatic */
		param_json(o, d, e);
	}
	return o;
}

char *jobspec_to_json(const JobSpec *js)
{
	const MethodInfo *m = method_catalog_find(js->method);
	cJSON *o = cJSON_CreateObject();
	if (!o || !m) {
		cJSON_Delete(o);
		return NULL;
	}
	cJSON_AddStringToObject(o, "name", js->name);
	cJSON_AddStringToObject(o, "method", js->method);
	cJSON *ps = cJSON_AddObjectToObject(o, "params");
	for (int i = 0; i < m->n_params; i++)
		param_json(ps, &m->params[i], js->method_config);
	cJSON_AddItemToObject(o, "dataset", dataset_json(js));
	cJSON *mo = cJSON_AddObjectToObject(o, "model");
	const char *kn = encoder_kind_name(js->encoder.kind);
	cJSON_AddStringToObject(mo, "encoder", kn);
	emit_level(mo, "model", kn, js, NULL, NULL, NULL);
	if (m->views > 0)
		cJSON_AddItemToObject(o, "augment", augment_json(&js->augment[0]));
	if (m->views > 1)
		cJSON_AddItemToObject(o, "augment2", augment_json(&js->augment[1]));
	if (m->views > 0)
		cJSON_AddItemToObject(o, "pretrain", pretrain_json(js));
	cJSON *ev = cJSON_AddArrayToObject(o, "evaluations");
	for (int i = 0; i < js->n_evals; i++)
		cJSON_AddItemToArray(ev, eval_json(&js->evals[i]));
	if (js->embed_map.enabled)
		emit_level(cJSON_AddObjectToObject(o, "embedding_map"), "embedding_map", NULL, js, NULL, NULL,
		           NULL);
	if (js->distributed.enabled) {
		cJSON *d = cJSON_AddObjectToObject(o, "distributed");
		emit_level(d, "distributed", NULL, js, NULL, NULL, NULL);
		if (js->distributed.n_hosts > 0) {
			cJSON *h = cJSON_AddArrayToObject(d, "hosts");
			for (int i = 0; i < js->distributed.n_hosts; i++)
				cJSON_AddItemToArray(h, cJSON_CreateString(js->distributed.hosts[i]));
		}
	}
	emit_level(o, "", NULL, js, NULL, NULL, "name");
	if (js->init_from)
		cJSON_AddStringToObject(o, "init_from", js->init_from);
	else if (js->init_from_job > 0)
		cJSON_AddNumberToObject(o, "init_from", (double)js->init_from_job);
	char *s = cJSON_Print(o);
	cJSON_Delete(o);
	return s;
}
