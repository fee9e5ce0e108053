/* param_table.c - store and read settings through ParamDef rows (see param_table.h).
 *
 * This module only moves validated values in and out of the owner's struct and checks that a
 * table is self-consistent; it does not parse JSON or report user errors (the spec layer does).
 */
#include "param_table.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

const char *param_type_name(ParamType t)
{
	switch (t) {
	case PARAM_NUMBER: return "number";
	case PARAM_INTEGER: return "integer";
	case PARAM_BOOLEAN: return "boolean";
	case PARAM_STRING: return "string";
	case PARAM_ENUM: return "enum";
	case PARAM_INT_LIST: return "integer list";
	case PARAM_PATH: return "path";
	case PARAM_DIR: return "directory";
	case PARAM_PATH_LIST: return "paths";
	}
	return "?";
}

int param_choice_index(const char *choices, const char *word)
{
	if (!choices || !word)
		return -1;
	int i = 0;
	size_t wl = strlen(word);
	for (const char *s = choices; *s; i++) {
		const char *bar = strchr(s, '|');
		size_t l = bar ? (size_t)(bar - s) : strlen(s);
		if (l == wl && strncmp(s, word, l) == 0)
			return i;
		if (!bar)
			break;
		s = bar + 1;
	}
	return -1;
}

const char *param_choice_name(const char *choices, int i, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	buf[0] = '\0';
	const char *s = choices;
	for (int k = 0; s && k < i; k++) {
		s = strchr(s, '|');
		if (s)
			s++;
	}
	if (!s || i < 0)
		return buf;
	const char *bar = strchr(s, '|');
	size_t l = bar ? (size_t)(bar - s) : strlen(s);
	snprintf(buf, len, "%.*s", (int)l, s);
	return buf;
}

/* ---------------------------------------------------------------------------------------------- */
/* Storage: the row's type and its field's size say how the value is kept.                        */

typedef enum Store { STORE_NONE, STORE_FLOAT, STORE_DOUBLE, STORE_INT, STORE_INT64, STORE_TEXT,
                     STORE_POINTER, STORE_BAD } Store;

static Store store_of(const ParamDef *d)
{
	if (d->size == 0)
		return STORE_NONE;
	switch (d->type) {
	case PARAM_NUMBER:
		return d->size == sizeof(float) ? STORE_FLOAT
		     : d->size == sizeof(double) ? STORE_DOUBLE : STORE_BAD;
	case PARAM_INTEGER:
		return d->size == sizeof(int) ? STORE_INT
		     : d->size == sizeof(int64_t) ? STORE_INT64 : STORE_BAD;
	case PARAM_BOOLEAN:
	case PARAM_ENUM:
		return d->size == sizeof(int) ? STORE_INT : STORE_BAD;
	case PARAM_STRING:
		return d->size > 1 ? STORE_TEXT : STORE_BAD;
	case PARAM_INT_LIST:   /* the array, then an int count elsewhere in the struct */
		return d->max_n >= 1 && d->size == (size_t)d->max_n * sizeof(int) ? STORE_INT : STORE_BAD;
	case PARAM_PATH:
	case PARAM_DIR:
	case PARAM_PATH_LIST:
		return d->size == sizeof(void *) ? STORE_POINTER : STORE_BAD;
	}
	return STORE_BAD;
}

int param_store_list(const ParamDef *d, void *base, const int *v, int n)
{
	if (d->type != PARAM_INT_LIST || store_of(d) != STORE_INT || n < 0 || n > d->max_n)
		return -1;
	if (n)
		memcpy((char *)base + d->offset, v, (size_t)n * sizeof *v);
	memcpy((char *)base + d->count_offset, &n, sizeof n);
	return 0;
}

int param_load_list(const ParamDef *d, const void *base, const int **v)
{
	if (d->type != PARAM_INT_LIST || store_of(d) != STORE_INT)
		return -1;
	int n;
	memcpy(&n, (const char *)base + d->count_offset, sizeof n);
	*v = (const int *)(const void *)((const char *)base + d->offset);
	return n < 0 ? 0 : n > d->max_n ? d->max_n : n;
}

int param_store(const ParamDef *d, void *base, double num, const char *str)
{
	if (d->type == PARAM_INT_LIST)
		return -1;   /* param_store_list */
	char *at = (char *)base + d->offset;
	switch (store_of(d)) {
	case STORE_NONE:
		return 0;
	case STORE_FLOAT: {
		float v = (float)num;
		memcpy(at, &v, sizeof v);
		return 0;
	}
	case STORE_DOUBLE:
		memcpy(at, &num, sizeof num);
		return 0;
	case STORE_INT: {
		int v = (int)num;
		memcpy(at, &v, sizeof v);
		return 0;
	}
	case STORE_INT64: {
		int64_t v = (int64_t)num;
		memcpy(at, &v, sizeof v);
		return 0;
	}
	case STORE_TEXT:
		snprintf(at, d->size, "%s", str ? str : "");
		return 0;
	case STORE_POINTER:
		if (d->type == PARAM_PATH_LIST)   /* lists are stored by the caller (pointer and count) */
			return 0;
		memcpy(at, &str, sizeof str);
		return 0;
	case STORE_BAD:
		break;
	}
	return -1;
}

double param_load(const ParamDef *d, const void *base)
{
	const char *at = (const char *)base + d->offset;
	switch (store_of(d)) {
	case STORE_FLOAT: {
		float v;
		memcpy(&v, at, sizeof v);
		return v;
	}
	case STORE_DOUBLE: {
		double v;
		memcpy(&v, at, sizeof v);
		return v;
	}
	case STORE_INT: {
		int v;
		memcpy(&v, at, sizeof v);
		return v;
	}
	case STORE_INT64: {
		int64_t v;
		memcpy(&v, at, sizeof v);
		return (double)v;
	}
	default:
		return NAN;
	}
}

const char *param_load_text(const ParamDef *d, const void *base, char *buf, size_t len)
{
	if (d->type == PARAM_INT_LIST)
		return NULL;
	if (d->type == PARAM_STRING && store_of(d) == STORE_TEXT)
		return (const char *)base + d->offset;
	if (d->type == PARAM_ENUM && store_of(d) == STORE_INT)
		return param_choice_name(d->choices, (int)param_load(d, base), buf, len);
	if ((d->type == PARAM_PATH || d->type == PARAM_DIR) && store_of(d) == STORE_POINTER) {
		const char *s;
		memcpy(&s, (const char *)base + d->offset, sizeof s);
		return s;
	}
	return NULL;
}

int param_store_default(const ParamDef *d, void *base)
{
	if (d->type == PARAM_INT_LIST)
		return d->size ? param_store_list(d, base, d->def_list, d->def_n) : 0;
	double num = d->type == PARAM_ENUM ? param_choice_index(d->choices, d->def_str) : d->def;
	return param_store(d, base, num, d->def_str);
}

int param_fill_defaults(const ParamDef *defs, int n, void *base, size_t size)
{
	memset(base, 0, size);
	for (int i = 0; i < n; i++)
		if (param_store_default(&defs[i], base) < 0)
			return -1;
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Consistency                                                                                    */

int param_in_range(const ParamDef *d, double x, char *why, size_t n)
{
	char lo[32], hi[32];
	snprintf(lo, sizeof lo, "%.15g", d->min);
	snprintf(hi, sizeof hi, "%.15g", d->max);
	if (!(d->flags & PARAM_NO_MIN)) {
		if ((d->flags & PARAM_MIN_EXCLUSIVE) ? !(x > d->min) : !(x >= d->min)) {
			snprintf(why, n, "must be %s %s", (d->flags & PARAM_MIN_EXCLUSIVE) ? ">" : ">=", lo);
			return 0;
		}
	}
	if (!(d->flags & PARAM_NO_MAX)) {
		if ((d->flags & PARAM_MAX_EXCLUSIVE) ? !(x < d->max) : !(x <= d->max)) {
			snprintf(why, n, "must be %s %s", (d->flags & PARAM_MAX_EXCLUSIVE) ? "<" : "<=", hi);
			return 0;
		}
	}
	return 1;
}

int param_table_check(const ParamDef *defs, int n, size_t size, char *err, size_t errlen)
{
	char why[96];
	for (int i = 0; i < n; i++) {
		const ParamDef *d = &defs[i];
		const char *name = d->name ? d->name : "(unnamed)";
		if (!d->name || !d->help) {
			snprintf(err, errlen, "%s: a row needs a name and a help line", name);
			return -1;
		}
		if (store_of(d) == STORE_BAD) {
			snprintf(err, errlen, "%s: a %s cannot be stored in a field of %zu bytes", name,
			         param_type_name(d->type), d->size);
			return -1;
		}
		if (d->size && d->offset + d->size > size) {
			snprintf(err, errlen, "%s: field at %zu+%zu lies outside the %zu-byte config", name,
			         d->offset, d->size, size);
			return -1;
		}
		for (int j = 0; j < i; j++) {
			if (strcmp(defs[j].name, d->name) == 0) {
				snprintf(err, errlen, "%s: listed twice", name);
				return -1;
			}
		}
		if ((d->type == PARAM_NUMBER || d->type == PARAM_INTEGER) &&
		    !param_in_range(d, d->def, why, sizeof why)) {
			snprintf(err, errlen, "%s: default %g %s", name, d->def, why);
			return -1;
		}
		if (d->type == PARAM_INT_LIST) {
			if (d->size && (d->count_offset + sizeof(int) > size ||
			                (d->count_offset + sizeof(int) > d->offset &&
			                 d->count_offset < d->offset + d->size))) {
				snprintf(err, errlen, "%s: count field at %zu lies outside the config or inside "
				         "the list", name, d->count_offset);
				return -1;
			}
			if (d->min_n < 0 || d->min_n > d->max_n || d->def_n < d->min_n ||
			    d->def_n > d->max_n || (d->def_n > 0 && !d->def_list)) {
				snprintf(err, errlen, "%s: default of %d entries outside %d..%d", name, d->def_n,
				         d->min_n, d->max_n);
				return -1;
			}
			for (int j = 0; j < d->def_n; j++) {
				if (!param_in_range(d, d->def_list[j], why, sizeof why)) {
					snprintf(err, errlen, "%s: default entry %d (%d) %s", name, j,
					         d->def_list[j], why);
					return -1;
				}
			}
		}
		if (d->type == PARAM_INTEGER && d->choices) {
			char num[32];
			snprintf(num, sizeof num, "%.0f", d->def);
			if (param_choice_index(d->choices, num) < 0) {
				snprintf(err, errlen, "%s: default %s is not one of \"%s\"", name, num, d->choices);
				return -1;
			}
		}
		if (d->type == PARAM_INTEGER && d->def != floor(d->def)) {
			snprintf(err, errlen, "%s: default %g is not an integer", name, d->def);
			return -1;
		}
		if (d->type == PARAM_ENUM && param_choice_index(d->choices, d->def_str) < 0) {
			snprintf(err, errlen, "%s: default \"%s\" is not one of \"%s\"", name,
			         d->def_str ? d->def_str : "(none)", d->choices ? d->choices : "");
			return -1;
		}
		if (d->type == PARAM_PATH_LIST &&
		    (!d->size || d->count_offset + sizeof(int) > size || d->max < 1)) {
			snprintf(err, errlen, "%s: a list needs a count field inside the struct and max >= 1", name);
			return -1;
		}
		if (d->conflicts) {
			int found = 0;
			for (int j = 0; j < n; j++)
				found |= defs[j].name && strcmp(defs[j].name, d->conflicts) == 0;
			if (!found) {
				snprintf(err, errlen, "%s: conflicts with \"%s\", which the table does not hold",
				         name, d->conflicts);
				return -1;
			}
		}
		if (d->type == PARAM_STRING && d->def_str && d->size && strlen(d->def_str) >= d->size) {
			snprintf(err, errlen, "%s: default does not fit its field", name);
			return -1;
		}
	}
	return 0;
}
