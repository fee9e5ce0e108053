/* spec_json.h - JSON pieces of the key table that the catalogue, the resolved spec and the JSON
 * Schema share (spec_json.c).
 *
 *   cJSON *d = spec_key_default_json(spec_key_find("pretrain.optimizer.lr", "sgd"), "sgd");  // 0.05
 */
#ifndef SSLD_WORKERS_SPEC_JSON_H
#define SSLD_WORKERS_SPEC_JSON_H

#include <cjson/cJSON.h>

#include "method_catalog.h"
#include "spec_table.h"

/* A float as the shortest decimal that reads back as the same float. */
double spec_f2d(float f);
/* A method parameter or protocol key as the catalogue publishes it. */
cJSON *spec_param_def_json(const ParamDef *d);
/* The row's default for a variant of its level (NULL: the row's first, or the level's usual one),
 * as JSON; JSON null when it has none (SPEC_DEF_NONE). */
cJSON *spec_key_default_json(const SpecKey *k, const char *variant);
/* The value in a row's slot as JSON (NULL for an unset path or string). */
cJSON *spec_value_json(const SpecKey *k, const void *slot);
/* The level of a row: "pretrain.optimizer" for "pretrain.optimizer.lr", "" for "seed". */
void spec_key_level(const SpecKey *k, char *buf, size_t n);
/* The JSON type names of a row: "integer", "array<number>", "string|object", ... */
const char *spec_key_type_name(const SpecKey *k);

#endif
