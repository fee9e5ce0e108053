/* spec_schema.c - the job spec's JSON Schema (draft 2020-12), a walk of the key table and the
 * method catalogue (see spec_schema.h for what it checks and what it leaves to the server).
 *
 * Variants become if/then: a level's keys are all declared (additionalProperties: false), and for
 * each value of its selector ("encoder", "name", "format", "protocol", the top-level "method") the
 * keys of other variants are forbidden. A selector with a fallback (optimizer "adamw") also matches
 * when it is absent; one whose default depends on other keys (the encoder) constrains only when given.
 */
#include "spec_schema.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/data/format.h"
#include "method_catalog.h"
#include "spec_json.h"
#include "spec_table.h"
#include "sweep.h"

#define SCHEMA_ID "https://ssld.invalid/v1/schema"

static void add_range(cJSON *s, double min, double max, unsigned flags, int number)
{
	if (!(flags & PARAM_NO_MIN))
		cJSON_AddNumberToObject(s, (flags & PARAM_MIN_EXCLUSIVE) ? "exclusiveMinimum" : "minimum", min);
	if (!(flags & PARAM_NO_MAX))
		cJSON_AddNumberToObject(s, (flags & PARAM_MAX_EXCLUSIVE) ? "exclusiveMaximum" : "maximum", max);
	else if (number)   /* settings are 32-bit floats: the parser refuses larger magnitudes */
		cJSON_AddNumberToObject(s, "maximum", FLT_MAX);
	if (number && (flags & PARAM_NO_MIN))
		cJSON_AddNumberToObject(s, "minimum", -FLT_MAX);
}

static cJSON *enum_of(const char *choices)
{
	cJSON *s = cJSON_CreateObject();
	cJSON *a = cJSON_AddArrayToObject(s, "enum");
	char buf[64];
	for (int c = 0; spec_choice_at(choices, c, buf, sizeof buf); c++)
		cJSON_AddItemToArray(a, cJSON_CreateString(buf));
	return s;
}

static cJSON *const_schema(const char *key, const char *value)
{
	cJSON *s = cJSON_CreateObject();
	cJSON *props = cJSON_AddObjectToObject(s, "properties");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(props, key), "const", value);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(s, "required"), cJSON_CreateString(key));
	return s;
}

static void describe(cJSON *s, const char *help, cJSON *def)
{
	if (help && help[0])
		cJSON_AddStringToObject(s, "description", help);
	if (def && !cJSON_IsNull(def))
		cJSON_AddItemToObject(s, "default", def);
	else
		cJSON_Delete(def);
}

/* A method parameter or protocol key. */
static cJSON *param_schema(const ParamDef *d)
{
	cJSON *s;
	switch (d->type) {
	case PARAM_BOOLEAN:
		s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "type", "boolean");
		break;
	case PARAM_STRING:
		s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "type", "string");
		cJSON_AddNumberToObject(s, "minLength", 1);
		cJSON_AddNumberToObject(s, "maxLength", d->max > 0 ? d->max : 256);
		break;
	case PARAM_ENUM: s = enum_of(d->choices ? d->choices : ""); break;
	default:
		s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "type", d->type == PARAM_INTEGER ? "integer" : "number");
		add_range(s, d->min, d->max, d->flags, d->type == PARAM_NUMBER);
		break;
	}
	cJSON *def = NULL;
	if (!(d->flags & PARAM_DEFAULT_AUTO)) {   /* "auto" has no value to show */
		cJSON *full = spec_param_def_json(d);
		def = full ? cJSON_DetachItemFromObject(full, "default") : NULL;
		cJSON_Delete(full);
	}
	describe(s, d->help, def);
	return s;
}

static cJSON *level_schema(const char *level);

/* One row of the table (not custom values: custom_schema). */
static cJSON *row_schema(const SpecKey *k)
{
	cJSON *s = NULL, *item;
	switch (k->type) {
	case SPEC_INT:
	case SPEC_I64:
	case SPEC_U64:
	case SPEC_FLOAT:
	case SPEC_DOUBLE: {
		int number = k->type == SPEC_FLOAT || k->type == SPEC_DOUBLE;
		s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "type", number ? "number" : "integer");
		add_range(s, k->min, k->max, k->flags, number);
		if (!number && k->choices) {
			cJSON *a = cJSON_AddArrayToObject(s, "enum");
			char buf[32];
			for (int c = 0; spec_choice_at(k->choices, c, buf, sizeof buf); c++)
				cJSON_AddItemToArray(a, cJSON_CreateNumber(atof(buf)));
		}
		break;
	}
	case SPEC_BOOL:
		s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "type", "boolean");
		break;
	case SPEC_ENUM:
		if (k->choices) {
			s = enum_of(k->choices);
		} else {   /* the catalogue's names */
			s = cJSON_CreateObject();
			cJSON *a = cJSON_AddArrayToObject(s, "enum");
			if (strcmp(k->path, "method") == 0)
				for (int i = 0; i < method_catalog_count(); i++)
					cJSON_AddItemToArray(a, cJSON_CreateString(method_catalog_at(i)->name));
			else
				for (int i = 0; i < protocol_catalog_count(); i++)
					cJSON_AddItemToArray(a, cJSON_CreateString(protocol_catalog_at(i)->name));
		}
		break;
	case SPEC_STRING:
	case SPEC_PATH:
		s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "type", "string");
		cJSON_AddNumberToObject(s, "minLength", 1);
		if (k->max > 0)
			cJSON_AddNumberToObject(s, "maxLength", k->max);
		if (strcmp(k->path, "name") == 0)   /* jobspec.c: valid_name */
			cJSON_AddStringToObject(s, "pattern", "^[A-Za-z0-9._ -]+$");
		break;
	case SPEC_INT_LIST:
	case SPEC_DOUBLE_LIST:
	case SPEC_FLOAT_PAIR: {
		int pair = k->type == SPEC_FLOAT_PAIR;
		s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "type", "array");
		item = cJSON_AddObjectToObject(s, "items");
		cJSON_AddStringToObject(item, "type", k->type == SPEC_INT_LIST ? "integer" : "number");
		add_range(item, k->min, k->max, k->flags & 15u, k->type != SPEC_INT_LIST);
		cJSON_AddNumberToObject(s, "minItems", pair ? 2 : k->min_n);
		cJSON_AddNumberToObject(s, "maxItems", pair ? 2 : k->max_n);
		break;
	}
	case SPEC_OBJECT: s = level_schema(k->path); break;
	case SPEC_CUSTOM: s = cJSON_CreateObject(); break;
	}
	if (k->type != SPEC_OBJECT)
		describe(s, k->help, spec_key_default_json(k, NULL));
	else if (k->help)
		cJSON_AddStringToObject(s, "description", k->help);
	return s;
}

/* Values of several shapes, by path. */
static cJSON *custom_schema(const SpecKey *k)
{
	cJSON *s = cJSON_CreateObject();
	if (strcmp(k->path, "dataset") == 0) {
		cJSON *any = cJSON_AddArrayToObject(s, "anyOf");
		cJSON_AddItemToArray(any, enum_of(spec_key_find("dataset.name", NULL)->choices));
		cJSON_AddItemToArray(any, level_schema("dataset"));
	} else if (strcmp(k->path, "augment") == 0 || strcmp(k->path, "augment2") == 0) {
		cJSON_AddStringToObject(s, "$ref", "#/$defs/augment");
	} else if (strcmp(k->path, "evaluations") == 0) {
		cJSON_AddStringToObject(s, "type", "array");
		cJSON_AddNumberToObject(s, "maxItems", k->max_n);
		cJSON_AddStringToObject(cJSON_AddObjectToObject(s, "items"), "$ref", "#/$defs/evaluation");
	} else if (strcmp(k->path, "init_from") == 0) {
		cJSON *any = cJSON_AddArrayToObject(s, "anyOf");
		cJSON *str = cJSON_CreateObject();
		cJSON_AddStringToObject(str, "type", "string");
		cJSON_AddNumberToObject(str, "minLength", 1);
		cJSON *id = cJSON_CreateObject();
		cJSON_AddStringToObject(id, "type", "integer");
		add_range(id, k->min, k->max, 0, 0);
		cJSON_AddItemToArray(any, str);
		cJSON_AddItemToArray(any, id);
	} else if (strcmp(k->path, "params") == 0) {
		cJSON_AddStringToObject(s, "type", "object");   /* per method: the document's allOf */
	} else if (k->json_type && strcmp(k->json_type, "\"auto\"|boolean") == 0) {   /* csv header */
		cJSON *any = cJSON_AddArrayToObject(s, "anyOf");
		cJSON *a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "const", "auto");
		cJSON *b = cJSON_CreateObject();
		cJSON_AddStringToObject(b, "type", "boolean");
		cJSON_AddItemToArray(any, a);
		cJSON_AddItemToArray(any, b);
	} else if (k->json_type && strcmp(k->json_type, "array<string>") == 0) {   /* lists of paths */
		cJSON_AddStringToObject(s, "type", "array");
		cJSON *it = cJSON_AddObjectToObject(s, "items");
		cJSON_AddStringToObject(it, "type", "string");
		cJSON_AddNumberToObject(it, "minLength", 1);
		if (strcmp(k->path, "distributed.hosts") == 0)   /* jobspec.c: valid_host */
			cJSON_AddStringToObject(it, "pattern", "^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}(:[0-9]{1,3})?$");
		cJSON_AddNumberToObject(s, "minItems", k->min_n);
		cJSON_AddNumberToObject(s, "maxItems", k->max_n);
	}
	cJSON *def = k->def_str && strcmp(k->path, "evaluations") != 0 ? spec_key_default_json(k, NULL) : NULL;
	describe(s, k->help, def);
	return s;
}

/* When the level's selector picks variant. */
static cJSON *variant_if(const SpecLevel *lv, const char *variant)
{
	if (strcmp(lv->path, "dataset") == 0 && strcmp(variant, "named") == 0) {
		cJSON *s = cJSON_CreateObject();
		cJSON_AddItemToArray(cJSON_AddArrayToObject(s, "required"), cJSON_CreateString("name"));
		return s;
	}
	cJSON *given = const_schema(lv->selector, variant);
	if (!lv->fallback || strcmp(lv->fallback, variant) != 0)
		return given;
	cJSON *s = cJSON_CreateObject();
	cJSON *any = cJSON_AddArrayToObject(s, "anyOf");
	cJSON_AddItemToArray(any, given);
	cJSON *absent = cJSON_CreateObject();
	cJSON *req = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "required"), cJSON_CreateString(lv->selector));
	cJSON_AddItemToObject(absent, "not", req);
	cJSON_AddItemToArray(any, absent);
	return s;
}

static cJSON *level_schema(const char *level)
{
	cJSON *s = cJSON_CreateObject();
	cJSON_AddStringToObject(s, "type", "object");
	cJSON *props = cJSON_AddObjectToObject(s, "properties");
	cJSON *req = cJSON_CreateArray();
	for (int i = 0; i < spec_key_count(); i++) {
		const SpecKey *k = spec_key_at(i);
		const char *leaf = spec_key_leaf(k, level);
		if (!leaf || cJSON_GetObjectItemCaseSensitive(props, leaf))
			continue;
		cJSON_AddItemToObject(props, leaf, k->type == SPEC_CUSTOM ? custom_schema(k) : row_schema(k));
		if ((k->flags & SPEC_REQUIRED) && !k->variant)
			cJSON_AddItemToArray(req, cJSON_CreateString(leaf));
	}
	if (cJSON_GetArraySize(req) > 0)
		cJSON_AddItemToObject(s, "required", req);
	else
		cJSON_Delete(req);
	cJSON_AddFalseToObject(s, "additionalProperties");
	const SpecLevel *lv = spec_level_find(level);
	if (!lv || !lv->variants)
		return s;
	cJSON *all = cJSON_AddArrayToObject(s, "allOf");
	char v[32];
	for (int c = 0; spec_choice_at(lv->variants, c, v, sizeof v); c++) {
		cJSON *then = cJSON_CreateObject();
		cJSON *tp = cJSON_AddObjectToObject(then, "properties");
		cJSON *treq = cJSON_CreateArray();
		for (int i = 0; i < spec_key_count(); i++) {
			const SpecKey *k = spec_key_at(i);
			const char *leaf = spec_key_leaf(k, level);
			if (!leaf || !k->variant)
				continue;
			int fits = spec_key_fits(k, v);
			cJSON *have = cJSON_GetObjectItemCaseSensitive(tp, leaf);
			if (fits) {   /* this variant's own row (its range may differ from another's) */
				if (have)
					cJSON_DeleteItemFromObjectCaseSensitive(tp, leaf);
				cJSON_AddItemToObject(tp, leaf, k->type == SPEC_CUSTOM ? custom_schema(k) : row_schema(k));
				if (k->flags & SPEC_REQUIRED)
					cJSON_AddItemToArray(treq, cJSON_CreateString(leaf));
			} else if (!have) {
				/* forbidden unless another row of this leaf fits */
				int other = 0;
				for (int j = 0; j < spec_key_count(); j++) {
					const SpecKey *r = spec_key_at(j);
					if (r != k && strcmp(r->path, k->path) == 0 && spec_key_fits(r, v))
						other = 1;
				}
				if (!other)
					cJSON_AddFalseToObject(tp, leaf);
			}
		}
		if (cJSON_GetArraySize(treq) > 0)
			cJSON_AddItemToObject(then, "required", treq);
		else
			cJSON_Delete(treq);
		cJSON *rule = cJSON_CreateObject();
		cJSON_AddItemToObject(rule, "if", variant_if(lv, v));
		cJSON_AddItemToObject(rule, "then", then);
		cJSON_AddItemToArray(all, rule);
	}
	if (strcmp(level, "dataset") == 0) {   /* "name" or "format", not both */
		cJSON *one = cJSON_CreateObject();
		cJSON *one_of = cJSON_AddArrayToObject(one, "oneOf");
		cJSON *a = cJSON_CreateObject(), *b = cJSON_CreateObject();
		cJSON_AddItemToArray(cJSON_AddArrayToObject(a, "required"), cJSON_CreateString("name"));
		cJSON_AddItemToArray(cJSON_AddArrayToObject(b, "required"), cJSON_CreateString("format"));
		cJSON_AddItemToArray(one_of, a);
		cJSON_AddItemToArray(one_of, b);
		cJSON_AddItemToArray(all, one);
		/* a format's keys that exclude each other (csv "test" and "test_fraction") */
		for (int f = 0; f < dataset_format_count(); f++) {
			const DatasetFormat *df = dataset_format_at(f);
			for (int i = 0; i < df->n_keys; i++) {
				if (!df->keys[i].conflicts)
					continue;
				cJSON *rule = cJSON_CreateObject(), *then = cJSON_CreateObject();
				cJSON *both = cJSON_AddArrayToObject(cJSON_AddObjectToObject(then, "not"), "required");
				cJSON_AddItemToArray(both, cJSON_CreateString(df->keys[i].name));
				cJSON_AddItemToArray(both, cJSON_CreateString(df->keys[i].conflicts));
				cJSON_AddItemToObject(rule, "if", variant_if(lv, df->named ? "named" : df->name));
				cJSON_AddItemToObject(rule, "then", then);
				cJSON_AddItemToArray(all, rule);
			}
		}
	}
	return s;
}

/* evaluations[]: the table's common keys plus every protocol's keys, each protocol's allowed only
 * for it. */
static cJSON *evaluation_schema(void)
{
	cJSON *s = level_schema("evaluations[]");
	cJSON *props = cJSON_GetObjectItem(s, "properties");
	cJSON *all = cJSON_AddArrayToObject(s, "allOf");
	for (int i = 0; i < protocol_catalog_count(); i++) {
		const ProtocolInfo *pi = protocol_catalog_at(i);
		for (int k = 0; k < pi->n_keys; k++)
			if (!cJSON_GetObjectItemCaseSensitive(props, pi->keys[k].name)) {
				cJSON *any = cJSON_CreateObject();
				cJSON_AddStringToObject(any, "description", pi->keys[k].help ? pi->keys[k].help : "");
				cJSON_AddItemToObject(props, pi->keys[k].name, any);
			}
	}
	for (int i = 0; i < protocol_catalog_count(); i++) {
		const ProtocolInfo *pi = protocol_catalog_at(i);
		cJSON *then = cJSON_CreateObject();
		cJSON *tp = cJSON_AddObjectToObject(then, "properties");
		for (int j = 0; j < protocol_catalog_count(); j++) {
			const ProtocolInfo *q = protocol_catalog_at(j);
			for (int k = 0; k < q->n_keys; k++) {
				const ParamDef *own = protocol_key_def(pi, q->keys[k].name);
				if (cJSON_GetObjectItemCaseSensitive(tp, q->keys[k].name))
					continue;
				if (own)
					cJSON_AddItemToObject(tp, own->name, param_schema(own));
				else
					cJSON_AddFalseToObject(tp, q->keys[k].name);
			}
		}
		cJSON *rule = cJSON_CreateObject();
		cJSON_AddItemToObject(rule, "if", const_schema("protocol", pi->name));
		cJSON_AddItemToObject(rule, "then", then);
		cJSON_AddItemToArray(all, rule);
	}
	cJSON *not = cJSON_CreateObject();   /* label_fractions or labels_per_class */
	cJSON *both = cJSON_CreateArray();
	cJSON_AddItemToArray(both, cJSON_CreateString("label_fractions"));
	cJSON_AddItemToArray(both, cJSON_CreateString("labels_per_class"));
	cJSON *req = cJSON_CreateObject();
	cJSON_AddItemToObject(req, "required", both);
	cJSON_AddItemToObject(not, "not", req);
	cJSON_AddItemToArray(all, not);
	return s;
}

/* augment: a preset name, or an object of transforms. */
static cJSON *augment_schema(void)
{
	cJSON *s = cJSON_CreateObject();
	cJSON *any = cJSON_AddArrayToObject(s, "anyOf");
	cJSON_AddItemToArray(any, enum_of(spec_aug_presets));
	cJSON_AddItemToArray(any, level_schema("augment"));
	return s;
}

/* Per method: its parameters, and what its number of views allows. */
static void method_rules(cJSON *all)
{
	for (int i = 0; i < method_catalog_count(); i++) {
		const MethodInfo *m = method_catalog_at(i);
		cJSON *then = cJSON_CreateObject();
		cJSON *tp = cJSON_AddObjectToObject(then, "properties");
		cJSON *params = cJSON_AddObjectToObject(tp, "params");
		cJSON_AddStringToObject(params, "type", "object");
		cJSON *pp = cJSON_AddObjectToObject(params, "properties");
		for (int k = 0; k < method_param_count(m); k++)
			cJSON_AddItemToObject(pp, m->params[k].name, param_schema(&m->params[k]));
		cJSON_AddFalseToObject(params, "additionalProperties");
		if (m->views == 0) {
			cJSON_AddFalseToObject(tp, "pretrain");
			cJSON_AddFalseToObject(tp, "augment");
			cJSON_AddNumberToObject(cJSON_AddObjectToObject(tp, "evaluations"), "minItems", 1);
			cJSON_AddItemToArray(cJSON_AddArrayToObject(then, "required"), cJSON_CreateString("evaluations"));
		}
		if (m->views < 2)
			cJSON_AddFalseToObject(tp, "augment2");
		unsigned encs = method_catalog_encoders(m);   /* works with, and fits its data */
		if (encs != (1u << encoder_count()) - 1) {
			cJSON *enc = cJSON_CreateObject();
			cJSON *a = cJSON_AddArrayToObject(enc, "enum");
			for (int k = 0; k < encoder_count(); k++)
				if (encs & ENC_BIT(k))
					cJSON_AddItemToArray(a, cJSON_CreateString(encoder_kind_name((EncoderKind)k)));
			cJSON *model = cJSON_AddObjectToObject(tp, "model");
			cJSON *mp = cJSON_AddObjectToObject(model, "properties");
			cJSON_AddItemToObject(mp, "encoder", enc);
			/* one encoder only: it is the default too, so other encoders' keys are refused even
			 * without "encoder" */
			if ((encs & (encs - 1)) == 0) {
				const char *only = encoder_kind_name(m->default_encoder);
				for (int k = 0; k < encoder_count(); k++)
					if (encs == ENC_BIT(k))
						only = encoder_kind_name((EncoderKind)k);
				for (int j = 0; j < spec_key_count(); j++) {
					const SpecKey *r = spec_key_at(j);
					const char *leaf = spec_key_leaf(r, "model");
					if (leaf && !cJSON_GetObjectItemCaseSensitive(mp, leaf) && !spec_key_find(r->path, only))
						cJSON_AddFalseToObject(mp, leaf);
				}
			}
		}
		cJSON *rule = cJSON_CreateObject();
		cJSON_AddItemToObject(rule, "if", const_schema("method", m->name));
		cJSON_AddItemToObject(rule, "then", then);
		cJSON_AddItemToArray(all, rule);
	}
}

/* "sweep" (workers/sweep.h): not a key of one job but of the group a POST makes of it. */
static cJSON *sweep_schema(void)
{
	char text[2048];
	snprintf(text, sizeof text,
	         "{\"description\": \"POST /v1/jobs only: make a group of jobs, one per setting and seed "
	         "(docs/API.md, Sweeps); at most %d jobs\", \"type\": \"object\", \"additionalProperties\": false, "
	         "\"properties\": {"
	         "\"grid\": {\"type\": \"object\", \"maxProperties\": %d, \"description\": \"spec path -> values\", "
	         "  \"additionalProperties\": {\"type\": \"array\", \"minItems\": 1, \"maxItems\": 64}},"
	         "\"random\": {\"type\": \"object\", \"required\": [\"n\"], \"description\": \"spec path -> distribution, and n draws\", "
	         "  \"properties\": {\"n\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": %d}},"
	         "  \"additionalProperties\": {\"type\": \"object\", \"minProperties\": 1, \"maxProperties\": 1,"
	         "    \"properties\": {\"uniform\": {\"$ref\": \"#/$defs/sweep_range\"}, \"log_uniform\": {\"$ref\": \"#/$defs/sweep_range\"},"
	         "      \"int_uniform\": {\"$ref\": \"#/$defs/sweep_range\"}, \"choice\": {\"type\": \"array\", \"minItems\": 1, \"maxItems\": 64}},"
	         "    \"additionalProperties\": false}},"
	         "\"seeds\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 100}}}",
	         SWEEP_MAX_JOBS, SWEEP_MAX_PATHS, SWEEP_MAX_JOBS);
	return cJSON_Parse(text);
}

char *jobspec_schema_json(void)
{
	cJSON *root = level_schema("");
	if (!root)
		return NULL;
	/* header keys first, for people reading it */
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "$schema", "https://json-schema.org/draft/2020-12/schema");
	cJSON_AddStringToObject(doc, "$id", SCHEMA_ID);
	cJSON_AddStringToObject(doc, "title", "ssld job spec");
	cJSON_AddStringToObject(doc, "description",
	                        "A job for ssld (`ssld run`, `ssld check`, POST /v1/jobs). Generated by "
	                        "`ssld schema` from the job spec's key table; docs/spec.md lists the keys.");
	for (cJSON *c = root->child; c;) {
		cJSON *next = c->next;
		cJSON_AddItemToObject(doc, c->string, cJSON_DetachItemViaPointer(root, c));
		c = next;
	}
	cJSON_Delete(root);
	cJSON *all = cJSON_GetObjectItem(doc, "allOf");
	if (!all)
		all = cJSON_AddArrayToObject(doc, "allOf");
	method_rules(all);
	cJSON *props = cJSON_GetObjectItem(doc, "properties");
	if (props) cJSON_AddItemToObject(props, "sweep", sweep_schema());
	cJSON *defs = cJSON_AddObjectToObject(doc, "$defs");
	cJSON_AddItemToObject(defs, "augment", augment_schema());
	cJSON_AddItemToObject(defs, "evaluation", evaluation_schema());
	cJSON_AddItemToObject(defs, "sweep_range", cJSON_Parse("{\"type\": \"array\", \"prefixItems\": [{\"type\": \"number\"}, "
	                                                       "{\"type\": \"number\"}], \"minItems\": 2, \"maxItems\": 2}"));
	char *s = cJSON_Print(doc);
	cJSON_Delete(doc);
	return s;
}
