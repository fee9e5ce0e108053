/* jobspec.c - parse and strictly validate a job JSON into a JobSpec with every default applied.
 *
 * One format serves `ssld run job.json`, `ssld check` and `POST /v1/jobs`. Validation is complete
 * before anything runs: unknown keys (with a "did you mean"), duplicate keys, types, finiteness,
 * ranges, keys that belong to another encoder/optimizer/protocol/format, method parameters against
 * the method's own parameter table (engine/methods/), label needs of the evaluations, the engine's own rules
 * for the encoder (model.pool_grid must split the feature map), and dataset paths (they exist, are
 * regular files, and resolve with realpath inside a configured data root, so `..` and symlinks
 * cannot escape). Errors name the field by its dotted path ("evaluations[1].k"), and every error
 * of a spec is reported, not only the first.
 *
 * The keys, their types, ranges, defaults and help are rows of spec_table.c; this file walks that
 * table level by level and holds only the rules that relate several keys, next to their level.
 * docs/spec.md (generated) lists the keys and defaults.
 *
 * It deliberately does not load datasets, build models or read checkpoint contents (the runner
 * does), and does not bound the request size (callers do; JSON depth is bounded here).
 *
 * Paths: with data roots configured, a relative dataset path is taken relative to the first root;
 * stored paths are the realpath-resolved ones. A text_records "dir" lists its regular, non-hidden,
 * non-binary files (no NUL in the first 4 KiB; symlinks skipped), sorted by name.
 */
#include "jobspec.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../engine/data/format.h"
#include "../engine/tsne.h"
#include "method_catalog.h"
#include "spec_estimate.h"
#include "spec_table.h"

#ifndef SSLD_FASHION_MNIST_DIR
#define SSLD_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#endif

#define SPEC_MAX_DEPTH 32
#define SPEC_MAX_ROOTS 16
#define MAX_RULES 64


#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Choice lists the hand-written parts need (the rows hold them; these name the rows). */
static const char *choices_of(const char *path)
{
	const SpecKey *k = spec_key_find(path, NULL);
	return k && k->choices ? k->choices : "";
}

static const char *const aug_presets[] = { "none", "simclr", "light" };

static float *aug_float(AugConfig *c, size_t off)
{
	return (float *)(void *)((char *)c + off);
}

/* ---------------------------------------------------------------------------------------------- */
/* Parser state and error reporting                                                               */

typedef struct Owned {
	JobSpec js;                 /* first member: jobspec_free casts back */
	char **strs;                /* every string the JobSpec points to */
	int n_strs, cap_strs;
	const char *text_files[JOBSPEC_MAX_TEXT_FILES];
} Owned;

typedef struct Parser {
	const JobSpecOptions *opts;
	SpecError *err;             /* the error being written (fail copies it into errs) */
	SpecErrors *errs;           /* every error so far */
	int n_errors;               /* errors so far, dropped ones included */
	Owned *o;
	JobSpec *js;
	const MethodInfo *method;
	unsigned modality;          /* DATA_* of the dataset */
	int labelled;
	int dataset_ok;             /* the dataset parsed: modality and labelled are known */
	const char *format;         /* "fashion-mnist", "csv", ... for messages and the default name */
	char *roots[SPEC_MAX_ROOTS];/* realpath of each configured root (NULL if it does not resolve) */
	char roots_text[256];       /* the roots as configured, for messages */
} Parser;

static int status_errno(int status)
{
	switch (status) {
	case 403: return -EACCES;
	case 404: return -ENOENT;
	case 500: return -ENOMEM;
	default: return -EINVAL;
	}
}

/* Keep the error in p->err on the list (the same field twice is reported once). */
static int record(Parser *p)
{
	SpecErrors *l = p->errs;
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->e[i].field, p->err->field) == 0 && strcmp(l->e[i].message, p->err->message) == 0)
			return status_errno(p->err->http_status);
	p->n_errors++;
	if (l->n < JOBSPEC_MAX_ERRORS)
		l->e[l->n++] = *p->err;
	else
		l->dropped++;
	return status_errno(p->err->http_status);
}

/* Record an error (message prefixed by the field) and return the negative errno for status. */
static int fail(Parser *p, int status, const char *code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int fail(Parser *p, int status, const char *code, const char *field, const char *fmt, ...)
{
	SpecError *e = p->err;
	size_t at = 0;
	snprintf(e->code, sizeof e->code, "%s", code);
	snprintf(e->field, sizeof e->field, "%s", field ? field : "");
	e->message[0] = '\0';
	if (field && *field) {
		int w = snprintf(e->message, sizeof e->message, "%s: ", e->field);
		at = w > 0 && (size_t)w < sizeof e->message ? (size_t)w : 0;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message + at, sizeof e->message - at, fmt, ap);
	va_end(ap);
	e->http_status = status;
	return record(p);
}

/* The code to return for the errors recorded since `before` (0 when none). */
static int errors_since(const Parser *p, int before)
{
	if (p->n_errors == before)
		return 0;
	return -EINVAL;
}

static int oom(Parser *p, const char *field)
{
	return fail(p, 500, "out_of_memory", field, "out of memory");
}

static char *own(Parser *p, const char *s)
{
	Owned *o = p->o;
	if (o->n_strs == o->cap_strs) {
		int cap = o->cap_strs ? 2 * o->cap_strs : 16;
		char **n = realloc(o->strs, (size_t)cap * sizeof *n);
		if (!n)
			return NULL;
		o->strs = n;
		o->cap_strs = cap;
	}
	char *d = strdup(s);
	if (d)
		o->strs[o->n_strs++] = d;
	return d;
}

/* Bounded append of src at *at (truncates silently: fields are for people). */
static void put(char *out, size_t n, size_t *at, const char *src)
{
	size_t l = strlen(src);
	if (*at + 1 >= n)
		return;
	if (l > n - 1 - *at)
		l = n - 1 - *at;
	memcpy(out + *at, src, l);
	*at += l;
	out[*at] = '\0';
}

static void field_join(char *out, size_t n, const char *parent, const char *key)
{
	size_t at = 0;
	out[0] = '\0';
	if (parent && *parent) {
		put(out, n, &at, parent);
		put(out, n, &at, ".");
	}
	put(out, n, &at, key);
}

static void field_index(char *out, size_t n, const char *parent, int i)
{
	snprintf(out, n, "%s[%d]", parent, i);
}

/* A JSON value as it appears in a message: "big", 1.5, true, an object... */
static const char *describe(const cJSON *v, char *buf, size_t n)
{
	if (!v)
		snprintf(buf, n, "nothing");
	else if (cJSON_IsString(v)) {
		const char *s = v->valuestring;
		if (strlen(s) > 40)
			snprintf(buf, n, "\"%.40s...\"", s);
		else
			snprintf(buf, n, "\"%s\"", s);
	} else if (cJSON_IsNumber(v))
		snprintf(buf, n, "%.15g", v->valuedouble);
	else if (cJSON_IsTrue(v))
		snprintf(buf, n, "true");
	else if (cJSON_IsFalse(v))
		snprintf(buf, n, "false");
	else if (cJSON_IsNull(v))
		snprintf(buf, n, "null");
	else if (cJSON_IsArray(v))
		snprintf(buf, n, "an array");
	else if (cJSON_IsObject(v))
		snprintf(buf, n, "an object");
	else
		snprintf(buf, n, "an invalid value");
	return buf;
}

/* ---------------------------------------------------------------------------------------------- */
/* "Did you mean": optimal string alignment distance (a transposition costs 1), case-insensitive. */

static int edit_distance(const char *a, const char *b)
{
	enum { N = 48 };
	size_t n = strlen(a), m = strlen(b);
	if (n >= N || m >= N)
		return 1000;
	int d[N][N];
	for (size_t i = 0; i <= n; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= n; i++) {
		for (size_t j = 1; j <= m; j++) {
			int ca = a[i - 1] | 0x20, cb = b[j - 1] | 0x20;   /* ASCII case fold (keys are ASCII) */
			int cost = ca != cb;
			int best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && (a[i - 1] | 0x20) == (b[j - 2] | 0x20) &&
			    (a[i - 2] | 0x20) == (b[j - 1] | 0x20) && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[n][m];
}

/* The closest candidate when it is close enough to be a plausible typo, else NULL. */
static const char *suggest(const char *word, const char *const *cands, int n)
{
	size_t len = strlen(word);
	int limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
	const char *best = NULL;
	int best_d = limit + 1;
	for (int i = 0; i < n; i++) {
		if (!cands[i])
			continue;
		int d = edit_distance(word, cands[i]);
		if (d < best_d && (size_t)d < strlen(cands[i])) {
			best_d = d;
			best = cands[i];
		}
	}
	return best;
}

/* "a, b, c" */
static void join_names(char *buf, size_t n, const char *const *names, int count)
{
	size_t at = 0;
	buf[0] = '\0';
	for (int i = 0; i < count; i++) {
		if (!names[i])
			continue;
		int w = snprintf(buf + at, n - at, "%s%s", at ? ", " : "", names[i]);
		if (w < 0 || (size_t)w >= n - at)
			break;
		at += (size_t)w;
	}
}

/* "sgd|lars" contains "lars"? */
static int in_list(const char *list, const char *word)
{
	size_t wl = strlen(word);
	for (const char *s = list; *s;) {
		const char *bar = strchr(s, '|');
		size_t l = bar ? (size_t)(bar - s) : strlen(s);
		if (l == wl && strncmp(s, word, l) == 0)
			return 1;
		if (!bar)
			break;
		s = bar + 1;
	}
	return 0;
}

/* "sgd|lars" -> "\"sgd\" or \"lars\"" */
static void list_or(char *buf, size_t n, const char *list)
{
	size_t at = 0;
	int count = 1;
	for (const char *s = list; *s; s++)
		count += *s == '|';
	int i = 0;
	buf[0] = '\0';
	for (const char *s = list; *s && at < n;) {
		const char *bar = strchr(s, '|');
		int l = bar ? (int)(bar - s) : (int)strlen(s);
		const char *sep = i == 0 ? "" : i == count - 1 ? " or " : ", ";
		int w = snprintf(buf + at, n - at, "%s\"%.*s\"", sep, l, s);
		if (w < 0 || (size_t)w >= n - at)
			break;
		at += (size_t)w;
		i++;
		if (!bar)
			break;
		s = bar + 1;
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* Keys of an object: no duplicates, no unknown keys, no keys of another variant.                */

typedef struct KeyRule {
	const char *name;
	char only[96];   /* "" = always valid, else '|' list of variants */
} KeyRule;

static int rules_add(KeyRule *r, int *n, const char *name, const char *only)
{
	for (int i = 0; i < *n; i++) {
		if (strcmp(r[i].name, name) == 0) {   /* the same key for several variants: merge */
			if (!only || !r[i].only[0]) {
				r[i].only[0] = '\0';
			} else {
				char buf[96], one[32];
				snprintf(buf, sizeof buf, "%s", only);
				for (int c = 0; spec_choice_at(buf, c, one, sizeof one); c++) {
					if (in_list(r[i].only, one))
						continue;
					size_t l = strlen(r[i].only);
					snprintf(r[i].only + l, sizeof r[i].only - l, "|%s", one);
				}
			}
			return 0;
		}
	}
	if (*n >= MAX_RULES)
		return -1;
	r[*n].name = name;
	snprintf(r[*n].only, sizeof r[*n].only, "%s", only ? only : "");
	(*n)++;
	return 0;
}

/* The rules of one level of the table ("pretrain.optimizer" -> name, lr, ...). */
static int rules_from_table(KeyRule *r, int *n, const char *level)
{
	for (int i = 0; i < spec_key_count(); i++) {
		const SpecKey *k = spec_key_at(i);
		const char *leaf = spec_key_leaf(k, level);
		if (leaf)
			rules_add(r, n, leaf, k->variant);
	}
	return 0;
}

/* Every bad key of obj is recorded. variant_kind: "encoder", "optimizer", "format", "protocol"
 * (NULL when the level has none). */
static int check_keys(Parser *p, const cJSON *obj, const char *field, const KeyRule *rules, int n,
                      const char *variant_kind, const char *variant)
{
	char f[128];
	int before = p->n_errors;
	for (const cJSON *c = obj->child; c; c = c->next) {
		const char *key = c->string ? c->string : "";
		field_join(f, sizeof f, field, key);
		int dup = 0;
		for (const cJSON *d = obj->child; d != c; d = d->next)
			if (d->string && strcmp(d->string, key) == 0)
				dup = 1;
		if (dup) {
			fail(p, 400, "duplicate_key", f, "duplicate key");
			continue;
		}
		const KeyRule *rule = NULL;
		for (int i = 0; i < n; i++)
			if (strcmp(rules[i].name, key) == 0)
				rule = &rules[i];
		if (rule && rule->only[0] && variant && !in_list(rule->only, variant)) {
			char l[160];
			list_or(l, sizeof l, rule->only);
			fail(p, 400, "unknown_key", f, "only valid for %s %s (this %s is \"%s\")", variant_kind, l,
			     variant_kind, variant);
			continue;
		}
		if (rule)
			continue;
		/* A sweep is a group of jobs, expanded before a job's keys are read (sweep.h). */
		if (strcmp(f, "sweep") == 0) {
			fail(p, 400, "unknown_key", f, "a sweep makes a group of jobs on a server: submit it (ssld submit, "
			     "POST /v1/jobs); ssld check expands and checks it");
			continue;
		}
		/* Unknown: suggest among the keys valid here. */
		const char *cands[MAX_RULES];
		int nc = 0;
		for (int i = 0; i < n; i++)
			if (!rules[i].only[0] || !variant || in_list(rules[i].only, variant))
				if (rules[i].name[0] != '$')
					cands[nc++] = rules[i].name;
		const char *s = suggest(key, cands, nc);
		if (s) {
			fail(p, 400, "unknown_key", f, "unknown key; did you mean \"%s\"?", s);
			continue;
		}
		char allowed[256];
		join_names(allowed, sizeof allowed, cands, nc);
		fail(p, 400, "unknown_key", f, "unknown key (allowed: %s)", allowed);
	}
	return errors_since(p, before);
}

static int check_doc_keys(Parser *p, const cJSON *obj, const char *level, const char *field,
                          const char *variant_kind, const char *variant)
{
	KeyRule rules[MAX_RULES];
	int n = 0;
	rules_from_table(rules, &n, level);
	return check_keys(p, obj, field, rules, n, variant_kind, variant);
}

/* ---------------------------------------------------------------------------------------------- */
/* Typed values                                                                                   */

/* Check v against d. Numbers, integers and booleans (0/1) land in *num, strings in *str
 * (borrowed from the JSON tree), enums as their choice index in *num and the text in *str. */
static int check_value(Parser *p, const char *field, const ParamDef *d, const cJSON *v, double *num,
                       const char **str)
{
	char got[96], why[96];
	describe(v, got, sizeof got);
	switch (d->type) {
	case PARAM_BOOLEAN:
		if (!cJSON_IsBool(v))
			return fail(p, 400, "invalid_field", field, "must be true or false, got %s", got);
		*num = cJSON_IsTrue(v) ? 1 : 0;
		return 0;
	case PARAM_PATH_LIST:   /* read by its owner (a list of paths), never through here */
		return fail(p, 500, "internal", field, "a list of paths is read by its own parser");
	case PARAM_PATH:
	case PARAM_DIR:
	case PARAM_STRING: {
		if (!cJSON_IsString(v))
			return fail(p, 400, "invalid_field", field, "must be a string, got %s", got);
		size_t max = d->max > 0 ? (size_t)d->max : 256, l = strlen(v->valuestring);
		if (l == 0)
			return fail(p, 400, "invalid_field", field, "must not be empty");
		if (l > max)
			return fail(p, 400, "invalid_field", field, "must be at most %zu characters, got %zu",
			            max, l);
		*str = v->valuestring;
		return 0;
	}
	case PARAM_ENUM: {
		char list[256];
		list_or(list, sizeof list, d->choices);
		if (!cJSON_IsString(v))
			return fail(p, 400, "invalid_field", field, "must be one of %s, got %s", list, got);
		int idx = param_choice_index(d->choices, v->valuestring);
		if (idx < 0) {
			const char *cands[32];
			int nc = 0;
			char buf[256];
			snprintf(buf, sizeof buf, "%s", d->choices);
			for (char *s = buf; s && nc < 32;) {
				cands[nc++] = s;
				s = strchr(s, '|');
				if (s)
					*s++ = '\0';
			}
			const char *sug = suggest(v->valuestring, cands, nc);
			if (sug)
				return fail(p, 400, "invalid_field", field,
				            "must be one of %s, got %s; did you mean \"%s\"?", list, got, sug);
			return fail(p, 400, "invalid_field", field, "must be one of %s, got %s", list, got);
		}
		*num = idx;
		*str = v->valuestring;
		return 0;
	}
	case PARAM_NUMBER:
	case PARAM_INTEGER: {
		int integer = d->type == PARAM_INTEGER;
		if (!cJSON_IsNumber(v))
			return fail(p, 400, "invalid_field", field, "must be %s, got %s",
			            integer ? "an integer" : "a number", got);
		double x = v->valuedouble;
		if (!isfinite(x))
			return fail(p, 400, "invalid_field", field, "must be a finite number, got %s", got);
		/* Settings are kept as 32-bit floats: a larger value would become infinity there (and
		 * null in the resolved spec, which then fails to parse again). */
		if (fabs(x) > FLT_MAX)
			return fail(p, 400, "invalid_field", field,
			            "must be at most %.3g in magnitude, got %s", (double)FLT_MAX, got);
		if (integer && x != floor(x))
			return fail(p, 400, "invalid_field", field, "must be an integer, got %s", got);
		if (!param_in_range(d, x, why, sizeof why))
			return fail(p, 400, "invalid_field", field, "%s, got %s", why, got);
		*num = x;
		return 0;
	}
	case PARAM_INT_LIST:   /* a list key: the table walk reads it (get_int_array) */
		break;
	}
	return fail(p, 500, "internal", field, "unknown parameter type");
}

/* Look up key in obj and check it. 0 = absent (outputs untouched), 1 = present and valid, < 0. */
static int get_value(Parser *p, const cJSON *obj, const char *parent, const ParamDef *d,
                     double *num, const char **str)
{
	const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, d->name) : NULL;
	if (!v)
		return 0;
	char f[128];
	field_join(f, sizeof f, parent, d->name);
	int rc = check_value(p, f, d, v, num, str);
	return rc < 0 ? rc : 1;
}


static int get_i64(Parser *p, const cJSON *obj, const char *parent, const char *key, double lo,
                   double hi, int64_t *out)
{
	ParamDef d = { .name = key, .type = PARAM_INTEGER, .min = lo, .max = hi };
	double x = 0;
	const char *s = NULL;
	int rc = get_value(p, obj, parent, &d, &x, &s);
	if (rc > 0)
		*out = (int64_t)x;
	return rc;
}




static int get_enum(Parser *p, const cJSON *obj, const char *parent, const char *key,
                    const char *choices, int *idx)
{
	ParamDef d = { .name = key, .type = PARAM_ENUM, .choices = choices };
	double x = 0;
	const char *s = NULL;
	int rc = get_value(p, obj, parent, &d, &x, &s);
	if (rc > 0)
		*idx = (int)x;
	return rc;
}

static int get_string(Parser *p, const cJSON *obj, const char *parent, const char *key,
                      size_t max, const char **out)
{
	ParamDef d = { .name = key, .type = PARAM_STRING, .max = (double)max };
	double x = 0;
	return get_value(p, obj, parent, &d, &x, out);
}

/* An object-valued key: 0 absent, 1 present (in *out), < 0 not an object. */
static int get_object(Parser *p, const cJSON *obj, const char *parent, const char *key,
                      const cJSON **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!v)
		return 0;
	if (!cJSON_IsObject(v)) {
		char f[128], got[96];
		field_join(f, sizeof f, parent, key);
		return fail(p, 400, "invalid_field", f, "must be an object, got %s", describe(v, got, sizeof got));
	}
	*out = v;
	return 1;
}

/* An array of numbers checked against d (name = the key) with min_n..max_n entries. */
static int get_num_array(Parser *p, const cJSON *obj, const char *parent, const ParamDef *d,
                         int min_n, int max_n, double *out, int *n)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, d->name);
	if (!v)
		return 0;
	char f[128], fi[160], got[96];
	field_join(f, sizeof f, parent, d->name);
	const char *what = d->type == PARAM_INTEGER ? "integers" : "numbers";
	if (!cJSON_IsArray(v)) {
		if (min_n == max_n)
			return fail(p, 400, "invalid_field", f, "must be an array of %d %s, got %s", min_n,
			            what, describe(v, got, sizeof got));
		return fail(p, 400, "invalid_field", f, "must be an array of %s, got %s", what,
		            describe(v, got, sizeof got));
	}
	int count = cJSON_GetArraySize(v);
	if (count == 0 && min_n > 0)
		return fail(p, 400, "invalid_field", f, "must not be empty");
	if (min_n == max_n && count != min_n)
		return fail(p, 400, "invalid_field", f, "must have exactly %d entries, got %d", min_n, count);
	if (count < min_n)
		return fail(p, 400, "invalid_field", f, "must have at least %d entries, got %d", min_n, count);
	if (count > max_n)
		return fail(p, 400, "invalid_field", f, "must have at most %d entries, got %d", max_n, count);
	int i = 0;
	for (const cJSON *e = v->child; e; e = e->next, i++) {
		field_index(fi, sizeof fi, f, i);
		const char *s = NULL;
		int rc = check_value(p, fi, d, e, &out[i], &s);
		if (rc < 0)
			return rc;
	}
	*n = count;
	return 1;
}

static int get_int_array(Parser *p, const cJSON *obj, const char *parent, const char *key,
                         int min_n, int max_n, double lo, double hi, int *out, int *n)
{
	ParamDef d = { .name = key, .type = PARAM_INTEGER, .min = lo, .max = hi };
	double tmp[MODEL_MAX_LAYERS > JOBSPEC_MAX_FRACTIONS ? MODEL_MAX_LAYERS : JOBSPEC_MAX_FRACTIONS];
	if (max_n > (int)(sizeof tmp / sizeof tmp[0]))
		max_n = (int)(sizeof tmp / sizeof tmp[0]);
	int cnt = 0;
	int rc = get_num_array(p, obj, parent, &d, min_n, max_n, tmp, &cnt);
	if (rc > 0) {
		for (int i = 0; i < cnt; i++)
			out[i] = (int)tmp[i];
		*n = cnt;
	}
	return rc;
}

/* [min, max] pair with lo <= min <= max <= hi (lo exclusive when lo_excl). */
static int get_pair(Parser *p, const cJSON *obj, const char *parent, const char *key, double lo,
                    double hi, int lo_excl, unsigned hi_flags, float *a, float *b)
{
	ParamDef d = { .name = key, .type = PARAM_NUMBER, .min = lo, .max = hi,
	               .flags = (lo_excl ? PARAM_MIN_EXCLUSIVE : 0) | hi_flags };
	double v[2];
	int cnt = 0;
	int rc = get_num_array(p, obj, parent, &d, 2, 2, v, &cnt);
	if (rc <= 0)
		return rc;
	if (v[0] > v[1]) {
		char f[128];
		field_join(f, sizeof f, parent, key);
		return fail(p, 400, "invalid_field", f, "must be [min, max] with min <= max, got [%.15g, %.15g]",
		            v[0], v[1]);
	}
	*a = (float)v[0];
	*b = (float)v[1];
	return 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Paths and data roots                                                                           */

static int path_inside(const char *path, const char *root)
{
	size_t l = strlen(root);
	if (l == 1 && root[0] == '/')
		return path[0] == '/';
	while (l > 1 && root[l - 1] == '/')
		l--;
	return strncmp(path, root, l) == 0 && (path[l] == '\0' || path[l] == '/');
}

/* Absolute, lexically normalised ("." and ".." folded) form of path, for paths that do not exist
 * (realpath cannot resolve them) so they can still be placed inside or outside a root. */
static int lexical_normalize(const char *path, char *out, size_t n)
{
	char buf[PATH_MAX * 2];
	if (path[0] == '/') {
		snprintf(buf, sizeof buf, "%s", path);
	} else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof cwd))
			return -1;
		snprintf(buf, sizeof buf, "%s/%s", cwd, path);
	}
	size_t at = 0;
	out[0] = '\0';
	char *save = NULL;
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			char *slash = strrchr(out, '/');
			if (slash) {
				*slash = '\0';
				at = (size_t)(slash - out);
			}
			continue;
		}
		int w = snprintf(out + at, n - at, "/%s", c);
		if (w < 0 || (size_t)w >= n - at)
			return -1;
		at += (size_t)w;
	}
	if (at == 0)
		snprintf(out, n, "/");
	return 0;
}

static int inside_roots(const Parser *p, const char *resolved)
{
	for (int i = 0; i < p->opts->n_data_roots && i < SPEC_MAX_ROOTS; i++) {
		if (p->roots[i] && path_inside(resolved, p->roots[i]))
			return 1;
	}
	return 0;
}

/* "dataset:OWNER/NAME[/FILE]": an uploaded dataset (api/datasets.h), resolved beneath
 * datasets_dir and readable by its owner (or by anyone with any_owner). */
static int check_dataset_ref(Parser *p, const char *field, const char *given, int want_dir,
                             const char *not_found_code, const char **out)
{
	const JobSpecOptions *o = p->opts;
	const char *ref = given + strlen("dataset:");
	const char *slash = strchr(ref, '/');
	if (!o->datasets_dir)
		return fail(p, 400, "invalid_field", field,
		            "%s: uploaded datasets are named only in jobs given to the daemon", given);
	if (!slash || slash == ref || !slash[1])
		return fail(p, 400, "invalid_field", field,
		            "%s: expected dataset:OWNER/NAME or dataset:OWNER/NAME/FILE", given);
	for (const char *c = ref; *c; c++) {
		if (c[0] == '.' && (c == ref || c[-1] == '/') && (c[1] == '/' || c[1] == 0 ||
		                                                 (c[1] == '.' && (c[2] == '/' || c[2] == 0))))
			return fail(p, 400, "invalid_field", field, "%s: \".\" and \"..\" are not allowed", given);
		if (c[0] == '/' && c[1] == '/')
			return fail(p, 400, "invalid_field", field, "%s: empty path component", given);
	}
	size_t ol = (size_t)(slash - ref);
	if (!o->any_owner && (!o->owner || strlen(o->owner) != ol || strncmp(o->owner, ref, ol) != 0))
		return fail(p, 403, "forbidden_path", field,
		            "%s belongs to %.*s; a job may read only its owner's uploaded datasets", given,
		            (int)ol, ref);
	char cand[PATH_MAX], resolved[PATH_MAX], root[PATH_MAX];
	if ((size_t)snprintf(cand, sizeof cand, "%s/%s", o->datasets_dir, ref) >= sizeof cand)
		return fail(p, 400, "invalid_field", field, "path is too long");
	if (!realpath(o->datasets_dir, root) || !realpath(cand, resolved)) {
		if (!o->check_files) {
			*out = own(p, cand);
			return *out ? 0 : oom(p, field);
		}
		return fail(p, 404, not_found_code, field, "%s: no such dataset or file in it", given);
	}
	if (!path_inside(resolved, root))
		return fail(p, 403, "forbidden_path", field, "%s leads outside the uploaded datasets", given);
	struct stat st;
	if (o->check_files && (stat(resolved, &st) < 0 || (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))))
		return fail(p, 404, not_found_code, field, "%s is not a %s", given, want_dir ? "directory" : "regular file");
	*out = own(p, resolved);
	return *out ? 0 : oom(p, field);
}

/* Resolve a dataset (or checkpoint) path: when confined (the daemon passes its data_roots array,
 * even an empty one; `ssld run` passes none) it must resolve inside a root (403 forbidden_path);
 * with no roots at all no file is allowed. With check_files it must exist and be a regular file,
 * or a directory when want_dir (404 not_found_code). *out is the resolved path (owned by the
 * JobSpec). A path outside the roots gets one answer whether it exists or not, and the answer
 * never says what it resolves to. */
static int check_path(Parser *p, const char *field, const char *given, int want_dir,
                      const char *not_found_code, const char **out)
{
	const JobSpecOptions *o = p->opts;
	int confine = o->data_roots != NULL || o->n_data_roots > 0;
	char cand[PATH_MAX], resolved[PATH_MAX], norm[PATH_MAX];
	if (!given[0])
		return fail(p, 400, "invalid_field", field, "must not be empty");
	if (strncmp(given, "dataset:", 8) == 0)
		return check_dataset_ref(p, field, given, want_dir, not_found_code, out);
	if (strlen(given) >= PATH_MAX - 1)
		return fail(p, 400, "invalid_field", field, "path is too long");
	if (confine && o->n_data_roots == 0)
		return fail(p, 403, "forbidden_path", field,
		            "no data roots are configured, so jobs cannot read files (start ssld with "
		            "--data-root DIR)");
	if (given[0] != '/' && o->n_data_roots > 0 && o->data_roots[0])
		snprintf(cand, sizeof cand, "%s/%s", o->data_roots[0], given);
	else
		snprintf(cand, sizeof cand, "%s", given);

	if (!realpath(cand, resolved)) {
		int e = errno;
		if (confine) {
			/* Place a path that does not resolve by its deepest ancestor that does (symlinks
			 * followed, as the kernel would) plus the rest folded lexically: a missing file
			 * under a symlink that leaves the root is outside, exactly like an existing one. */
			int inside = 0;
			char walk[PATH_MAX], anc[PATH_MAX], joined[PATH_MAX * 2 + 2];
			snprintf(walk, sizeof walk, "%s", cand);
			for (;;) {
				char *cut = strrchr(walk, '/');
				const char *tail = cand + (cut ? (size_t)(cut - walk) + 1 : 0);
				if (cut == walk)
					snprintf(walk, sizeof walk, "/");
				else if (cut)
					*cut = '\0';
				else
					snprintf(walk, sizeof walk, ".");
				if (realpath(walk, anc)) {
					snprintf(joined, sizeof joined, "%s/%s", anc, tail);
					inside = lexical_normalize(joined, norm, sizeof norm) == 0 && inside_roots(p, norm);
					break;
				}
				if (!cut || cut == walk)
					break;
			}
			/* A root that does not exist (yet) is placed lexically; it holds nothing to escape
			 * through. */
			for (int i = 0; !inside && i < o->n_data_roots && i < SPEC_MAX_ROOTS; i++) {
				char rn[PATH_MAX];
				if (!p->roots[i] && o->data_roots[i] && lexical_normalize(cand, norm, sizeof norm) == 0 &&
				    lexical_normalize(o->data_roots[i], rn, sizeof rn) == 0)
					inside = path_inside(norm, rn);
			}
			if (!inside)
				return fail(p, 403, "forbidden_path", field,
				            "%s is outside the allowed data roots (%s)", given, p->roots_text);
		}
		if (!o->check_files) {
			*out = own(p, cand);
			return *out ? 0 : oom(p, field);
		}
		if (e == EACCES)
			return fail(p, 403, "forbidden_path", field, "%s: permission denied", given);
		if (e == ENOENT || e == ENOTDIR)
			return fail(p, 404, not_found_code, field, "%s: no such %s", given,
			            want_dir ? "directory" : "file");
		return fail(p, 404, not_found_code, field, "%s: %s", given, strerror(e));
	}
	if (confine && !inside_roots(p, resolved))
		return fail(p, 403, "forbidden_path", field, "%s is outside the allowed data roots (%s)",
		            given, p->roots_text);
	if (o->check_files) {
		struct stat st;
		if (stat(resolved, &st) < 0)
			return fail(p, 404, not_found_code, field, "%s: %s", given, strerror(errno));
		if (want_dir && !S_ISDIR(st.st_mode))
			return fail(p, 404, not_found_code, field, "%s is not a directory", given);
		if (!want_dir && !S_ISREG(st.st_mode))
			return fail(p, 404, not_found_code, field, "%s is not a regular file", given);
		if (access(resolved, want_dir ? (R_OK | X_OK) : R_OK) < 0)
			return fail(p, 403, "forbidden_path", field, "%s is not readable: %s", given,
			            strerror(errno));
	}
	if (!confine && cand[0] != '/') {
		/* Unconfined (`ssld run`, or a worker re-reading a stored spec): keep the path as given,
		 * made absolute. A worker then opens the very path that was checked against the roots
		 * (the data module confines the open), and its errors name that path, not where a
		 * symlink swapped in since then leads. */
		char cwd[PATH_MAX];
		size_t cl = getcwd(cwd, sizeof cwd) ? strlen(cwd) : 0, nl = strlen(cand);
		if (cl && cl + nl + 2 <= sizeof resolved) {
			memcpy(resolved, cwd, cl);
			resolved[cl] = '/';
			memcpy(resolved + cl + 1, cand, nl + 1);
		}
	} else if (!confine) {
		snprintf(resolved, sizeof resolved, "%s", cand);
	}
	*out = own(p, resolved);
	return *out ? 0 : oom(p, field);
}

static int path_value(Parser *p, const cJSON *obj, const char *parent, const char *key,
                      int want_dir, const char **out)
{
	const char *s = NULL;
	int rc = get_string(p, obj, parent, key, PATH_MAX - 2, &s);
	if (rc <= 0)
		return rc;
	char f[128];
	field_join(f, sizeof f, parent, key);
	rc = check_path(p, f, s, want_dir, "dataset_not_found", out);
	return rc < 0 ? rc : 1;
}

/* The files a PARAM_DIR row lists (its choices: the four Fashion-MNIST files) under dir (default
 * or given), each .gz or raw. */
static int check_fmnist_dir(Parser *p, const char *field, const char *dir_given, const char *files,
                            const char **dir_out)
{
	const char *dir = NULL;
	int rc = check_path(p, field, dir_given ? dir_given : SSLD_FASHION_MNIST_DIR, 1,
	                    "dataset_not_found", &dir);
	if (rc < 0)
		return rc;
	if (p->opts->check_files || p->opts->data_roots || p->opts->n_data_roots > 0) {
		char file[NAME_MAX + 1];
		for (int i = 0; spec_choice_at(files, i, file, sizeof file); i++) {
			char path[PATH_MAX], raw[PATH_MAX];
			const char *r = NULL;
			snprintf(path, sizeof path, "%s/%s.gz", dir, file);
			snprintf(raw, sizeof raw, "%s/%s", dir, file);
			struct stat st;
			const char *use = stat(path, &st) == 0 || stat(raw, &st) < 0 ? path : raw;
			rc = check_path(p, field, use, 0, "dataset_not_found", &r);
			if (rc < 0)
				return rc;
		}
	}
	*dir_out = dir_given ? dir : NULL;   /* NULL = the dataset module's default */
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A file is text when its first 4 KiB hold no NUL byte. */
static int looks_binary(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 1;
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof buf);
	close(fd);
	return n < 0 || memchr(buf, 0, (size_t)n) != NULL;
}

/* text_records "dir": its regular, non-hidden, text files, sorted. */
static int list_text_dir(Parser *p, const char *field, const char *dir)
{
	DatasetSpec *ds = &p->js->dataset;
	DIR *d = opendir(dir);
	if (!d)
		return fail(p, 404, "dataset_not_found", field, "%s: %s", dir, strerror(errno));
	char *names[JOBSPEC_MAX_TEXT_FILES];
	int n = 0, rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[PATH_MAX];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || looks_binary(path))
			continue;
		if (n == JOBSPEC_MAX_TEXT_FILES) {
			rc = fail(p, 400, "invalid_field", field, "%s holds more than %d text files", dir,
			          JOBSPEC_MAX_TEXT_FILES);
			break;
		}
		names[n] = own(p, path);
		if (!names[n]) {
			rc = oom(p, field);
			break;
		}
		n++;
	}
	closedir(d);
	if (rc < 0)
		return rc;
	if (n == 0)
		return fail(p, 400, "invalid_field", field, "%s holds no regular text files", dir);
	qsort(names, (size_t)n, sizeof names[0], name_cmp);
	for (int i = 0; i < n; i++)
		p->o->text_files[i] = names[i];
	ds->text_files = p->o->text_files;
	ds->n_text_files = n;
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The table walk: one level of keys into their slots                                             */

/* The row as a ParamDef for check_value (name = its leaf). */
static ParamDef key_def(const SpecKey *k, const char *leaf)
{
	ParamDef d = { .name = leaf, .min = k->min, .max = k->max, .flags = k->flags & 15u,
	               .choices = k->choices };
	switch (k->type) {
	case SPEC_BOOL: d.type = PARAM_BOOLEAN; break;
	case SPEC_ENUM: d.type = PARAM_ENUM; break;
	case SPEC_STRING:
	case SPEC_PATH: d.type = PARAM_STRING; break;
	case SPEC_FLOAT:
	case SPEC_DOUBLE:
	case SPEC_DOUBLE_LIST:
	case SPEC_FLOAT_PAIR: d.type = PARAM_NUMBER; break;
	default: d.type = PARAM_INTEGER; break;
	}
	return d;
}

/* Read one row's key from obj (absent: the slot keeps its default). 0 absent, 1 read, < 0. */
static int read_key(Parser *p, const cJSON *obj, const char *field, const SpecKey *k, const char *leaf,
                    void *slot, const char *variant_kind, const char *variant)
{
	char f[128];
	field_join(f, sizeof f, field, leaf);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, leaf);
	if (!v) {
		if (k->flags & SPEC_REQUIRED)
			return fail(p, 400, "missing_field", f, "required for %s \"%s\"", variant_kind ? variant_kind : "",
			            variant ? variant : "");
		return 0;
	}
	ParamDef d = key_def(k, leaf);
	double x = 0;
	const char *s = NULL;
	int rc, n = 0;
	switch (k->type) {
	case SPEC_PATH:
		rc = path_value(p, obj, field, leaf, 0, (const char **)slot);
		return rc;
	case SPEC_INT_LIST:
		return get_int_array(p, obj, field, leaf, k->min_n, k->max_n, k->min, k->max, (int *)slot,
		                     (int *)(void *)((char *)slot - k->off + k->off2));
	case SPEC_DOUBLE_LIST: {
		double tmp[JOBSPEC_MAX_FRACTIONS];
		int max_n = k->max_n < JOBSPEC_MAX_FRACTIONS ? k->max_n : JOBSPEC_MAX_FRACTIONS;
		rc = get_num_array(p, obj, field, &d, k->min_n, max_n, tmp, &n);
		if (rc > 0) {
			memcpy(slot, tmp, (size_t)n * sizeof tmp[0]);
			*(int *)(void *)((char *)slot - k->off + k->off2) = n;
		}
		return rc;
	}
	case SPEC_FLOAT_PAIR:
		return get_pair(p, obj, field, leaf, k->min, k->max, (k->flags & PARAM_MIN_EXCLUSIVE) != 0,
		                k->flags & (PARAM_MAX_EXCLUSIVE | PARAM_NO_MAX), (float *)slot,
		                (float *)(void *)((char *)slot - k->off + k->off2));
	default: break;
	}
	if (k->type == SPEC_STRING && k->max > 0)
		d.max = k->max;
	if ((rc = check_value(p, f, &d, v, &x, &s)) < 0)
		return rc;
	if (k->type == SPEC_INT && k->choices) {   /* integers from a short list: "4|7" */
		char num[32], list[64];
		snprintf(num, sizeof num, "%d", (int)x);
		if (!in_list(k->choices, num)) {
			snprintf(list, sizeof list, "%s", k->choices);
			for (char *c = list; *c; c++)
				if (*c == '|')
					*c = ',';
			char *last = strrchr(list, ',');
			if (last)
				return fail(p, 400, "invalid_field", f, "must be %.*s or %s, got %d", (int)(last - list),
				            list, last + 1, (int)x);
			return fail(p, 400, "invalid_field", f, "must be %s, got %d", list, (int)x);
		}
	}
	switch (k->type) {
	case SPEC_INT:
	case SPEC_BOOL:
	case SPEC_ENUM: *(int *)slot = (int)x; break;
	case SPEC_I64: *(int64_t *)slot = (int64_t)x; break;
	case SPEC_U64: *(uint64_t *)slot = (uint64_t)x; break;
	case SPEC_FLOAT: *(float *)slot = (float)x; break;
	case SPEC_DOUBLE: *(double *)slot = x; break;
	case SPEC_STRING:
		if (!(*(char **)slot = own(p, s)))
			return oom(p, f);
		break;
	default: break;
	}
	return 1;
}

/* Parse the keys of obj at one level of the table for a variant: first the keys themselves
 * (duplicates, unknown, another variant's), then every row the walk owns. It keeps going after an
 * error, so a level reports all its errors at once; rows marked SPEC_HAND_PARSED, objects and
 * custom values are the caller's. Returns 0 or < 0 when any error was recorded. */
static int walk_level(Parser *p, const cJSON *obj, const char *level, const char *field,
                      const char *variant_kind, const char *variant, EvalSpec *ev, AugConfig *aug)
{
	int before = p->n_errors;
	check_doc_keys(p, obj, level, field, variant_kind, variant);
	for (int i = 0; i < spec_key_count(); i++) {
		const SpecKey *k = spec_key_at(i);
		const char *leaf = spec_key_leaf(k, level);
		if (!leaf || !spec_key_fits(k, variant) || k->type == SPEC_OBJECT || k->type == SPEC_CUSTOM ||
		    (k->flags & SPEC_HAND_PARSED))
			continue;
		read_key(p, obj, field, k, leaf, spec_key_ptr(k, p->js, ev, aug), variant_kind, variant);
	}
	return errors_since(p, before);
}

/* An object-valued key of obj: NULL when absent or (recorded) not an object. */
static const cJSON *sub_object(Parser *p, const cJSON *obj, const char *parent, const char *key)
{
	const cJSON *o = NULL;
	return obj && get_object(p, obj, parent, key, &o) > 0 ? o : NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* dataset (variant: "named" for a built-in dataset, else its format; the keys, cross-field rules
 * and modality are the format's descriptor in engine/data/)                                       */

/* A PARAM_PATH_LIST key: an array of file paths into the format's list field. */
static int read_path_list(Parser *p, const cJSON *v, const ParamDef *d, const char *field)
{
	DatasetSpec *ds = &p->js->dataset;
	char got[96];
	int rc;
	if (!cJSON_IsArray(v))
		return fail(p, 400, "invalid_field", field, "must be an array of paths, got %s",
		            describe(v, got, sizeof got));
	int n = cJSON_GetArraySize(v);
	if (n == 0)
		return fail(p, 400, "invalid_field", field, "must not be empty");
	if (n > JOBSPEC_MAX_TEXT_FILES || n > (int)d->max)
		return fail(p, 400, "invalid_field", field, "must have at most %d entries, got %d",
		            (int)d->max < JOBSPEC_MAX_TEXT_FILES ? (int)d->max : JOBSPEC_MAX_TEXT_FILES, n);
	int i = 0, before = p->n_errors;
	for (const cJSON *e = v->child; e; e = e->next, i++) {
		char f[96];
		snprintf(f, sizeof f, "%s[%d]", field, i);
		if (!cJSON_IsString(e))
			fail(p, 400, "invalid_field", f, "must be a path string, got %s", describe(e, got, sizeof got));
		else
			check_path(p, f, e->valuestring, 0, "dataset_not_found", &p->o->text_files[i]);
	}
	if ((rc = errors_since(p, before)) < 0)
		return rc;
	const char *const *list = p->o->text_files;
	memcpy((char *)ds + d->offset, &list, sizeof list);
	memcpy((char *)ds + d->count_offset, &n, sizeof n);
	return 0;
}

/* The keys the table walk leaves to this file: directories, path lists, "auto" booleans. */
static int read_format_key(Parser *p, const cJSON *obj, const DatasetFormat *fmt, const ParamDef *d,
                           const cJSON *v, const char *name_field)
{
	DatasetSpec *ds = &p->js->dataset;
	char f[64], got[96];
	snprintf(f, sizeof f, "dataset.%s", d->name);
	if (d->type == PARAM_PATH_LIST) {
		if (!v && (d->flags & PARAM_REQUIRED))
			return fail(p, 400, "missing_field", f, "required for format \"%s\"", fmt->name);
		return v ? read_path_list(p, v, d, f) : 0;
	}
	if (d->type == PARAM_BOOLEAN && (d->flags & PARAM_DEFAULT_AUTO)) {
		int x = (int)d->def;
		if (v && cJSON_IsBool(v))
			x = cJSON_IsTrue(v) ? 1 : 0;
		else if (v && !(cJSON_IsString(v) && strcmp(v->valuestring, "auto") == 0))
			return fail(p, 400, "invalid_field", f, "must be \"auto\", true or false, got %s",
			            describe(v, got, sizeof got));
		memcpy((char *)ds + d->offset, &x, sizeof x);
		return 0;
	}
	if (d->type != PARAM_DIR)
		return 0;
	const char *dir = NULL, *out = NULL;
	int rc;
	if (d->choices) {   /* a directory that must hold the listed files; absent: the default one */
		if (obj && (rc = get_string(p, obj, "dataset", d->name, PATH_MAX - 2, &dir)) < 0)
			return rc;
		if ((rc = check_fmnist_dir(p, dir ? f : name_field, dir, d->choices, &out)) < 0)
			return rc;
		memcpy((char *)ds + d->offset, &out, sizeof out);
		return 0;
	}
	if (!v)
		return 0;
	if ((rc = path_value(p, obj, "dataset", d->name, 1, &out)) < 0)
		return rc;
	if (d->flags & PARAM_DIR_LISTS)   /* the directory stands for its text files */
		return list_text_dir(p, f, out);
	memcpy((char *)ds + d->offset, &out, sizeof out);
	return 0;
}

static void format_bad(void *user, const char *key, const char *code, const char *msg)
{
	char f[64];
	snprintf(f, sizeof f, "dataset.%s", key);
	fail((Parser *)user, 400, code, f, "%s", msg);
}

/* One format's keys from obj (NULL: the string form of a named dataset). */
static int parse_format(Parser *p, const cJSON *obj, const DatasetFormat *fmt, const char *name_field)
{
	DatasetSpec *ds = &p->js->dataset;
	const char *variant = fmt->named ? "named" : fmt->name;
	int before = p->n_errors, rc;
	if (dataset_format_defaults(fmt, ds) < 0)
		return fail(p, 500, "internal", "dataset", "the format \"%s\" has a broken key table", fmt->name);
	spec_level_defaults("dataset", variant, p->js, NULL, NULL);   /* the shared keys (limits) */
	if (obj)
		walk_level(p, obj, "dataset", "dataset", "format", variant, NULL, NULL);
	int given[DATASET_FORMAT_MAX_KEYS] = {0};
	for (int i = 0; i < fmt->n_keys && i < COUNT(given); i++) {
		const ParamDef *d = &fmt->keys[i];
		const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, d->name) : NULL;
		given[i] = v != NULL;
		read_format_key(p, obj, fmt, d, v, name_field);
	}
	for (int i = 0; i < fmt->n_keys && i < COUNT(given); i++) {
		const ParamDef *d = &fmt->keys[i];
		const ParamDef *c = d->conflicts ? dataset_format_key(fmt, d->conflicts) : NULL;
		if (given[i] && c && given[c - fmt->keys]) {
			char f[64];
			snprintf(f, sizeof f, "dataset.%s", d->name);
			fail(p, 400, "invalid_field", f, "only used without \"%s\" (give either \"%s\" or \"%s\", "
			     "not both)", c->name, c->name, d->name);
		}
	}
	if (errors_since(p, before) == 0 && fmt->validate)
		fmt->validate(ds, given, format_bad, p);
	if ((rc = errors_since(p, before)) < 0)
		return rc;
	ds->kind = fmt->kind;
	p->format = fmt->name;
	p->modality = fmt->modality;
	p->labelled = fmt->has_labels ? fmt->has_labels(ds) : fmt->labelled;
	if (fmt->named && !(p->js->dataset_name = own(p, fmt->name)))
		return oom(p, name_field);
	return 0;
}

/* A named dataset by name (the string form, or "name"). */
static int parse_named_dataset(Parser *p, const cJSON *obj, const char *name)
{
	const char *fieldn = obj ? "dataset.name" : "dataset";
	const DatasetFormat *fmt = dataset_format_find(name);
	if (!fmt || !fmt->named) {
		const char *names[16];
		int n = 0;
		for (int i = 0; i < dataset_format_count() && n < COUNT(names); i++)
			if (dataset_format_at(i)->named)
				names[n++] = dataset_format_at(i)->name;
		char list[128];
		join_names(list, sizeof list, names, n);
		const char *s = suggest(name, names, n);
		if (s)
			return fail(p, 400, "invalid_field", fieldn,
			            "unknown dataset \"%s\"; did you mean \"%s\"? (built-in: %s; or give "
			            "an object with \"format\")", name, s, list);
		return fail(p, 400, "invalid_field", fieldn,
		            "unknown dataset \"%s\" (built-in: %s; or give an object with \"format\")", name, list);
	}
	return parse_format(p, obj, fmt, fieldn);
}

static int parse_dataset(Parser *p, const cJSON *v)
{
	DatasetSpec *ds = &p->js->dataset;
	char got[96];
	int rc;
	memset(ds, 0, sizeof *ds);

	if (!v)
		return parse_named_dataset(p, NULL, spec_key_find("dataset.name", NULL)->def_str);
	if (cJSON_IsString(v) && strncmp(v->valuestring, "dataset:", 8) == 0) {
		/* An uploaded image folder by reference: {"format": "image_folder", "train": REF}. */
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddStringToObject(o, "format", "image_folder") ||
		    !cJSON_AddStringToObject(o, "train", v->valuestring)) {
			cJSON_Delete(o);
			return oom(p, "dataset");
		}
		rc = parse_format(p, o, dataset_format_find("image_folder"), "dataset");
		cJSON_Delete(o);
		return rc;
	}
	if (cJSON_IsString(v))
		return parse_named_dataset(p, NULL, v->valuestring);
	if (!cJSON_IsObject(v))
		return fail(p, 400, "invalid_field", "dataset", "must be a dataset name or an object, got %s",
		            describe(v, got, sizeof got));
	const cJSON *obj = v;
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, "name");
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, "format");
	if (n && f)
		return fail(p, 400, "invalid_field", "dataset.name",
		            "give either \"name\" (a built-in dataset) or \"format\", not both");
	if (!n && !f)
		return fail(p, 400, "missing_field", "dataset.format",
		            "required (or \"name\" of a built-in dataset: %s)", choices_of("dataset.name"));
	if (n) {
		if (!cJSON_IsString(n))
			return fail(p, 400, "invalid_field", "dataset.name", "must be a string, got %s",
			            describe(n, got, sizeof got));
		return parse_named_dataset(p, obj, n->valuestring);
	}
	int fmt = -1;
	const char *formats = choices_of("dataset.format");
	if ((rc = get_enum(p, obj, "dataset", "format", formats, &fmt)) < 0)
		return rc;
	char name[64];
	return parse_format(p, obj, dataset_format_find(spec_choice_at(formats, fmt, name, sizeof name)),
	                    "dataset");
}

/* ---------------------------------------------------------------------------------------------- */
/* params (method parameters)                                                                     */

/* Each parameter is checked against the method's table and stored through its row into the
 * JobSpec's method_config, which starts from the table's defaults. Every bad key and every bad
 * value is recorded; the ones that parse are stored. */
static int parse_params(Parser *p, const cJSON *v)
{
	const MethodInfo *m = p->method;
	JobSpec *js = p->js;
	int np = m->n_params;
	int before = p->n_errors;
	char got[96];
	if (v && !cJSON_IsObject(v))
		return fail(p, 400, "invalid_field", "params", "must be an object, got %s",
		            describe(v, got, sizeof got));
	if (v) {
		const char *cands[MAX_RULES];
		int n = 0;
		for (int i = 0; i < np && n < MAX_RULES; i++)
			cands[n++] = m->params[i].name;
		char f[128];
		for (const cJSON *c = v->child; c; c = c->next) {
			const char *key = c->string ? c->string : "";
			field_join(f, sizeof f, "params", key);
			int dup = 0, known = 0;
			for (const cJSON *d = v->child; d != c; d = d->next)
				dup |= d->string && strcmp(d->string, key) == 0;
			for (int i = 0; i < n; i++)
				known |= strcmp(cands[i], key) == 0;
			if (dup) {
				fail(p, 400, "duplicate_key", f, "duplicate key");
				continue;
			}
			if (known)
				continue;
			const char *s = suggest(key, cands, n);
			char list[256];
			join_names(list, sizeof list, cands, n);
			if (s)
				fail(p, 400, "unknown_key", f,
				     "unknown parameter of method \"%s\"; did you mean \"%s\"?", m->name, s);
			else if (np == 0)
				fail(p, 400, "unknown_key", f, "unknown parameter: method \"%s\" has none", m->name);
			else
				fail(p, 400, "unknown_key", f, "unknown parameter of method \"%s\" (parameters: %s)",
				     m->name, list);
		}
	}
	if (method_config_default(m, js->method_config) < 0)
		return fail(p, 500, "internal", "params", "method \"%s\": its parameter table does not "
		            "fit its config", m->name);
	for (int i = 0; i < np; i++) {
		const ParamDef *d = &m->params[i];
		double x = 0;
		const char *s = NULL;
		if (get_value(p, v, "params", d, &x, &s) > 0 && param_store(d, js->method_config, x, s) < 0)
			fail(p, 500, "internal", "params", "method \"%s\": parameter \"%s\" cannot be "
			     "stored in its config field", m->name, d->name);
	}
	return errors_since(p, before);
}

/* ---------------------------------------------------------------------------------------------- */
/* model                                                                                          */

/* The engine's message "model.<key>: why" as an error on that key. */
static int fail_engine(Parser *p, const char *why)
{
	char field[64] = "model";
	const char *colon = strchr(why, ':');
	const char *msg = why;
	if (colon && strncmp(why, "model.", 6) == 0 && (size_t)(colon - why) < sizeof field) {
		snprintf(field, sizeof field, "%.*s", (int)(colon - why), why);
		msg = colon + 1;
		while (*msg == ' ')
			msg++;
	}
	return fail(p, 400, "invalid_field", field, "%s", msg);
}

/* Encoder kind suits the method and (once known) the dataset. */
static int encoder_suits(const Parser *p, int kind)
{
	const MethodInfo *m = p->method;
	if (m->encoders && !(m->encoders & ENC_BIT(kind)))
		return 0;
	return !p->dataset_ok || encoder_fits_data((EncoderKind)kind, p->modality);
}

static int parse_model(Parser *p, const cJSON *v)
{
	JobSpec *js = p->js;
	EncoderConfig *ec = &js->encoder;
	const MethodInfo *m = p->method;
	char got[96];
	int rc;
	if (v && !cJSON_IsObject(v))
		return fail(p, 400, "invalid_field", "model", "must be an object, got %s",
		            describe(v, got, sizeof got));
	int kind = -1;
	if (v && (rc = get_enum(p, v, "model", "encoder", choices_of("model.encoder"), &kind)) < 0)
		return rc;
	if (kind < 0) {   /* the method's, else the data's natural one, else the first that suits */
		kind = (int)m->default_encoder;
		if (!encoder_suits(p, kind))
			kind = encoder_natural_for(p->modality);
		if (kind < 0 || !encoder_suits(p, kind)) {
			for (kind = 0; kind < encoder_count() && !encoder_suits(p, kind); kind++)
				;
			if (kind >= encoder_count())
				return fail(p, 400, "invalid_field", "model.encoder",
				            "no encoder of method \"%s\" suits a %s dataset", m->name, p->format);
		}
	} else if (!encoder_suits(p, kind)) {
		char names[256] = "";
		size_t at = 0;
		for (int k = 0; k < encoder_count(); k++) {
			if (!encoder_suits(p, k))
				continue;
			int w = snprintf(names + at, sizeof names - at, "%s\"%s\"", at ? ", " : "",
			                 encoder_kind_name((EncoderKind)k));
			if (w > 0 && (size_t)w < sizeof names - at)
				at += (size_t)w;
		}
		if (m->encoders && !(m->encoders & ENC_BIT(kind)))
			return fail(p, 400, "invalid_field", "model.encoder",
			            "method \"%s\" does not work with encoder \"%s\" (use %s)", m->name,
			            encoder_kind_name((EncoderKind)kind), names);
		return fail(p, 400, "invalid_field", "model.encoder",
		            "encoder \"%s\" does not fit a %s dataset (use %s)",
		            encoder_kind_name((EncoderKind)kind), p->format, names);
	}
	const char *kname = encoder_kind_name((EncoderKind)kind);
	spec_level_defaults("model", kname, js, NULL, NULL);
	ec->kind = (EncoderKind)kind;
	ec->causal = m->causal;
	if (v && (rc = walk_level(p, v, "model", "model", "encoder", kname, NULL, NULL)) < 0)
		return rc;
	/* The encoder's rules across its keys (heads divide dim, ...), from its descriptor. */
	char why[256];
	if (encoder_config_check_keys(ec, why, sizeof why) < 0)
		return fail_engine(p, why);
	return 0;
}

/* The encoder's rules against this dataset's samples (model.pool_grid must split the last feature
 * map into equal cells, a ViT patch must divide the image...), so a spec accepted here is never
 * refused by encoder_new. */
static int check_model_engine(Parser *p)
{
	int c, h, w;
	if (!p->dataset_ok || !jobspec_sample_shape(p->js, &c, &h, &w))
		return 0;
	char why[256];
	if (encoder_config_check(&p->js->encoder, c, h, w, why, sizeof why) == 0)
		return 0;
	return fail_engine(p, why);
}

/* ---------------------------------------------------------------------------------------------- */
/* augment / augment2                                                                             */

static int parse_augment(Parser *p, const cJSON *v, const char *field, AugConfig *out)
{
	char got[96], f[128];
	int rc;
	if (cJSON_IsString(v)) {
		for (int i = 0; i < COUNT(aug_presets); i++) {
			if (strcmp(v->valuestring, aug_presets[i]) == 0) {
				spec_aug_preset(out, i);
				return 0;
			}
		}
		char list[96];
		join_names(list, sizeof list, aug_presets, COUNT(aug_presets));
		const char *s = suggest(v->valuestring, aug_presets, COUNT(aug_presets));
		if (s)
			return fail(p, 400, "invalid_field", field,
			            "unknown preset %s; did you mean \"%s\"? (presets: %s)",
			            describe(v, got, sizeof got), s, list);
		return fail(p, 400, "invalid_field", field, "unknown preset %s (presets: %s)",
		            describe(v, got, sizeof got), list);
	}
	if (!cJSON_IsObject(v))
		return fail(p, 400, "invalid_field", field,
		            "must be a preset name (none, simclr, light) or an object, got %s",
		            describe(v, got, sizeof got));
	int before = p->n_errors;
	check_doc_keys(p, v, "augment", field, NULL, NULL);
	int preset = 0;
	if (get_enum(p, v, field, "preset", spec_aug_presets, &preset) < 0)
		preset = 0;
	spec_aug_preset(out, preset);
	walk_level(p, v, "augment", field, NULL, NULL, NULL, out);   /* clamp */
	for (int t = 0; t < spec_aug_transform_count; t++) {
		const char *tn = spec_aug_transforms[t];
		const cJSON *tv = cJSON_GetObjectItemCaseSensitive(v, tn);
		if (!tv)
			continue;
		field_join(f, sizeof f, field, tn);
		if (!cJSON_IsObject(tv)) {
			fail(p, 400, "invalid_field", f, "must be an object such as {\"p\": 0.5}, got %s",
			     describe(tv, got, sizeof got));
			continue;
		}
		char level[64];
		snprintf(level, sizeof level, "augment.%s", tn);
		/* A transform the preset leaves off starts from its enabled defaults. */
		char pkey[80];
		snprintf(pkey, sizeof pkey, "%s.p", level);
		const SpecKey *pk = spec_key_find(pkey, NULL);
		if (pk && *aug_float(out, pk->off) <= 0.0f)
			spec_level_defaults(level, NULL, NULL, NULL, out);
		walk_level(p, tv, level, f, NULL, NULL, NULL, out);
	}
	if ((rc = errors_since(p, before)) < 0)
		return rc;
	/* The engine's own range check, so a spec accepted here is never refused by aug_apply's owner. */
	char why[160];
	if (aug_config_validate(out, why, sizeof why) < 0)
		return fail(p, 400, "invalid_field", field, "%s", why);
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* pretrain                                                                                       */

static int parse_pretrain(Parser *p, const cJSON *v)
{
	JobSpec *js = p->js;
	OptimConfig *oc = &js->pretrain.optim;
	char got[96];
	int rc;
	const cJSON *o = NULL, *s = NULL;
	if (v && p->method->views == 0)
		return fail(p, 400, "invalid_field", "pretrain",
		            "method \"%s\" does not pretrain (remove \"pretrain\")", p->method->name);
	if (v && !cJSON_IsObject(v))
		return fail(p, 400, "invalid_field", "pretrain", "must be an object, got %s",
		            describe(v, got, sizeof got));
	int before = p->n_errors;
	if (v) {
		o = sub_object(p, v, "pretrain", "optimizer");
		s = sub_object(p, v, "pretrain", "schedule");
	}
	/* The optimizer's variant first: its defaults are a whole struct the other levels write into. */
	int kind = OPT_ADAMW;
	const char *names = choices_of("pretrain.optimizer.name");
	if (o && get_enum(p, o, "pretrain.optimizer", "name", names, &kind) < 0)
		kind = OPT_ADAMW;
	char kname[16];
	spec_choice_at(names, kind, kname, sizeof kname);
	spec_level_defaults("pretrain.optimizer", kname, js, NULL, NULL);
	spec_level_defaults("pretrain", NULL, js, NULL, NULL);
	spec_level_defaults("pretrain.schedule", NULL, js, NULL, NULL);
	if (!v)
		return 0;
	walk_level(p, v, "pretrain", "pretrain", NULL, NULL, NULL, NULL);
	if (o)
		walk_level(p, o, "pretrain.optimizer", "pretrain.optimizer", "optimizer", kname, NULL, NULL);
	if (s)
		walk_level(p, s, "pretrain.schedule", "pretrain.schedule", NULL, NULL, NULL, NULL);
	if ((rc = errors_since(p, before)) < 0)
		return rc;
	if (oc->min_lr > oc->lr)
		return fail(p, 400, "invalid_field", "pretrain.schedule.min_lr",
		            "must be <= pretrain.optimizer.lr (%g), got %g", (double)oc->lr, (double)oc->min_lr);
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* evaluations                                                                                    */


static int parse_eval(Parser *p, const cJSON *v, int index, EvalSpec *e)
{
	char F[64], f[128], got[96];
	snprintf(F, sizeof F, "evaluations[%d]", index);
	if (!cJSON_IsObject(v))
		return fail(p, 400, "invalid_field", F, "must be an object such as {\"protocol\": "
		            "\"linear_probe\"}, got %s", describe(v, got, sizeof got));
	const cJSON *pv = cJSON_GetObjectItemCaseSensitive(v, "protocol");
	field_join(f, sizeof f, F, "protocol");
	const char *pnames[8];
	int np = protocol_catalog_count();
	for (int i = 0; i < np && i < 8; i++)
		pnames[i] = protocol_catalog_at(i)->name;
	char plist[128];
	join_names(plist, sizeof plist, pnames, np);
	if (!pv)
		return fail(p, 400, "missing_field", f, "required (one of: %s)", plist);
	if (!cJSON_IsString(pv))
		return fail(p, 400, "invalid_field", f, "must be a string (one of: %s), got %s", plist,
		            describe(pv, got, sizeof got));
	const ProtocolInfo *pi = protocol_catalog_find(pv->valuestring);
	if (!pi) {
		const char *s = suggest(pv->valuestring, pnames, np);
		if (s)
			return fail(p, 400, "invalid_field", f,
			            "unknown protocol \"%s\"; did you mean \"%s\"? (available: %s)",
			            pv->valuestring, s, plist);
		return fail(p, 400, "invalid_field", f, "unknown protocol \"%s\" (available: %s)",
		            pv->valuestring, plist);
	}
	/* Keys: the table's common ones, this protocol's, and (rejected with a hint) other protocols'. */
	KeyRule rules[MAX_RULES];
	int n = 0;
	rules_from_table(rules, &n, "evaluations[]");
	for (int i = 0; i < np; i++) {
		const ProtocolInfo *q = protocol_catalog_at(i);
		for (int k = 0; k < q->n_keys; k++)
			rules_add(rules, &n, q->keys[k].name, q->name);
	}
	int before = p->n_errors;
	check_keys(p, v, F, rules, n, "protocol", pi->name);

	eval_config_default(e, pi->protocol);   /* the protocol's defaults, from its key table */
	if (pi->needs_labels && p->dataset_ok && !p->labelled)
		fail(p, 400, "invalid_field", f, "\"%s\" needs labels, but the %s dataset is unlabelled", pi->name,
		     p->format);
	spec_level_defaults("evaluations[]", NULL, NULL, e, NULL);
	for (int i = 0; i < spec_key_count(); i++) {
		const SpecKey *k = spec_key_at(i);
		const char *leaf = spec_key_leaf(k, "evaluations[]");
		if (leaf && !(k->flags & SPEC_HAND_PARSED))
			read_key(p, v, F, k, leaf, spec_key_ptr(k, NULL, e, NULL), NULL, NULL);
	}
	if (cJSON_GetObjectItemCaseSensitive(v, "labels_per_class") &&
	    cJSON_GetObjectItemCaseSensitive(v, "label_fractions")) {
		field_join(f, sizeof f, F, "labels_per_class");
		fail(p, 400, "invalid_field", f, "give either label_fractions or labels_per_class, not both");
	}
	for (int k = 0; k < pi->n_keys; k++) {
		const ParamDef *d = &pi->keys[k];
		double x = 0;
		const char *s = NULL;
		int given = get_value(p, v, F, d, &x, &s);
		if (given < 0)
			continue;
		if (given > 0 && param_store(d, e, x, s) < 0)
			fail(p, 500, "internal", F, "protocol key \"%s\" cannot be stored", d->name);
	}
	return errors_since(p, before);
}

static int parse_evaluations(Parser *p, const cJSON *v)
{
	JobSpec *js = p->js;
	char got[96];
	js->n_evals = 0;
	if (!v) {
		if (p->method->views == 0)
			return fail(p, 400, "missing_field", "evaluations",
			            "method \"%s\" runs only evaluations: give at least one", p->method->name);
		return 0;
	}
	if (!cJSON_IsArray(v))
		return fail(p, 400, "invalid_field", "evaluations", "must be an array, got %s",
		            describe(v, got, sizeof got));
	int n = cJSON_GetArraySize(v);
	if (n > JOBSPEC_MAX_EVALS)
		return fail(p, 400, "invalid_field", "evaluations", "must have at most %d entries, got %d",
		            JOBSPEC_MAX_EVALS, n);
	if (n == 0 && p->method->views == 0)
		return fail(p, 400, "invalid_field", "evaluations",
		            "method \"%s\" runs only evaluations: give at least one", p->method->name);
	int i = 0, before = p->n_errors;
	for (const cJSON *e = v->child; e; e = e->next, i++)
		parse_eval(p, e, i, &js->evals[i]);
	js->n_evals = n;
	return errors_since(p, before);
}

/* ---------------------------------------------------------------------------------------------- */
/* The document                                                                                   */

static int valid_name(const char *s)
{
	size_t l = strlen(s);
	if (l < 1 || l > 100)
		return 0;
	for (const char *c = s; *c; c++) {
		int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		         *c == '.' || *c == '_' || *c == ' ' || *c == '-';
		if (!ok)
			return 0;
	}
	return 1;
}

/* method first: params, model and evaluations depend on it, so nothing else is read without it. */
/* ---------------------------------------------------------------------------------------------- */
/* embedding_map (absent: off; an object, even {}: on with its defaults)                          */

static int parse_embedding_map(Parser *p, const cJSON *root)
{
	EmbedMapConfig *mc = &p->js->embed_map;
	spec_level_defaults("embedding_map", NULL, p->js, NULL, NULL);
	const cJSON *v = sub_object(p, root, "", "embedding_map");
	if (!v)
		return 0;
	mc->enabled = 1;
	if (walk_level(p, v, "embedding_map", "embedding_map", NULL, NULL, NULL, NULL) < 0)
		return -EINVAL;
	if (mc->perplexity > tsne_max_perplexity(mc->points))
		return fail(p, 400, "invalid_field", "embedding_map.perplexity",
		            "must be <= (embedding_map.points - 2) / 3 = %.1f, got %g",
		            (double)tsne_max_perplexity(mc->points), (double)mc->perplexity);
	/* Data without test samples (a byte-stream text dataset) is not refused here: the key is
	 * common to every job, and the runner reports a map it cannot make as a warning. */
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* distributed (absent: one process in the worker; an object: mpirun over processes ranks)       */

/* A host entry: "name" or "name:slots". The daemon writes it into a hostfile line itself, so
 * only characters a host name has are accepted (no blanks, quotes or shell metacharacters). */
static int valid_host(const char *s, char *why, size_t n)
{
	size_t len = strlen(s);
	const char *colon = strchr(s, ':');
	size_t name_len = colon ? (size_t)(colon - s) : len;
	if (name_len == 0 || name_len > 253) {
		snprintf(why, n, "a host name of 1..253 characters");
		return 0;
	}
	if (s[0] == '-' || s[0] == '.') {   /* never an option to mpirun or ssh */
		snprintf(why, n, "a host name that starts with a letter or digit");
		return 0;
	}
	for (size_t i = 0; i < name_len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '-' || c == '_')) {
			snprintf(why, n, "letters, digits, '.', '-' and '_' only, then an optional \":slots\"; "
			         "got '%c'", c >= 32 && c < 127 ? c : '?');
			return 0;
		}
	}
	if (colon) {
		const char *d = colon + 1;
		long slots = 0;
		if (!*d || strlen(d) > 3)
			slots = -1;
		for (; slots >= 0 && *d; d++)
			slots = *d >= '0' && *d <= '9' ? slots * 10 + (*d - '0') : -1;
		if (slots < 1 || slots > JOBSPEC_MAX_PROCESSES) {
			snprintf(why, n, "slots after ':' must be 1..%d", JOBSPEC_MAX_PROCESSES);
			return 0;
		}
	}
	return 1;
}

static int parse_distributed(Parser *p, const cJSON *root)
{
	JobSpec *js = p->js;
	char got[96], field[64], why[160];
	const cJSON *v = sub_object(p, root, "", "distributed");
	if (!v)
		return 0;
#ifndef SSLD_HAVE_MPI
	return fail(p, 400, "unsupported", "distributed",
	            "this ssld was built without MPI (meson -Dmpi=enabled), so it cannot run a job over "
	            "several processes; remove \"distributed\" or use an ssld built with MPI");
#endif
	js->distributed.enabled = 1;
	spec_level_defaults("distributed", NULL, js, NULL, NULL);
	int before = p->n_errors;
	walk_level(p, v, "distributed", "distributed", NULL, NULL, NULL, NULL);
	const cJSON *hosts = cJSON_GetObjectItemCaseSensitive(v, "hosts");
	if (hosts) {
		const SpecKey *k = spec_key_find("distributed.hosts", NULL);
		int n = cJSON_IsArray(hosts) ? cJSON_GetArraySize(hosts) : -1;
		if (n < 0)
			fail(p, 400, "invalid_field", "distributed.hosts", "must be an array of host names, got %s",
			     describe(hosts, got, sizeof got));
		else if (n < k->min_n || n > k->max_n)
			fail(p, 400, "invalid_field", "distributed.hosts", "must have %d..%d entries, got %d",
			     k->min_n, k->max_n, n);
		for (int i = 0; n > 0 && n <= k->max_n && i < n; i++) {
			const cJSON *h = cJSON_GetArrayItem(hosts, i);
			field_index(field, sizeof field, "distributed.hosts", i);
			if (!cJSON_IsString(h))
				fail(p, 400, "invalid_field", field, "must be a string, got %s", describe(h, got, sizeof got));
			else if (!valid_host(h->valuestring, why, sizeof why))
				fail(p, 400, "invalid_field", field, "must be %s", why);
			else if (!(js->distributed.hosts[js->distributed.n_hosts++] = own(p, h->valuestring)))
				return oom(p, field);
		}
	}
	if (p->n_errors > before)
		return -EINVAL;
	int np = js->distributed.processes;
	int batch = js->pretrain.batch_size;
	if (p->method->views == 0 || batch % np == 0)
		return 0;
	int lo = np, hi = np;   /* the nearest rank counts that do divide it */
	while (lo > 1 && batch % lo != 0)
		lo--;
	while (hi < batch && hi < JOBSPEC_MAX_PROCESSES && batch % hi != 0)
		hi++;
	if (batch % hi != 0)
		hi = lo;
	return fail(p, 400, "invalid_field", "distributed.processes",
	            "must divide pretrain.batch_size (the global batch, %d) into equal shards per rank, "
	            "got %d (%d or %d would; or make batch_size a multiple of %d)", batch, np, lo, hi, np);
}

static int parse_method(Parser *p, const cJSON *root)
{
	char got[96];
	const char *mnames[64];
	int nm = method_catalog_count();
	for (int i = 0; i < nm && i < 64; i++)
		mnames[i] = method_catalog_at(i)->name;
	char mlist[256];
	join_names(mlist, sizeof mlist, mnames, nm);
	const cJSON *mv = cJSON_GetObjectItemCaseSensitive(root, "method");
	if (!mv)
		return fail(p, 400, "missing_field", "method", "required (available: %s)", mlist);
	if (!cJSON_IsString(mv))
		return fail(p, 400, "invalid_field", "method", "must be a string, got %s (available: %s)",
		            describe(mv, got, sizeof got), mlist);
	p->method = method_catalog_find(mv->valuestring);
	if (!p->method) {
		const char *s = suggest(mv->valuestring, mnames, nm);
		if (s)
			return fail(p, 400, "unknown_method", "method",
			            "unknown method \"%s\"; did you mean \"%s\"? (available: %s)",
			            mv->valuestring, s, mlist);
		return fail(p, 400, "unknown_method", "method", "unknown method \"%s\" (available: %s)",
		            mv->valuestring, mlist);
	}
	if (!(p->js->method = own(p, p->method->name)))
		return oom(p, "method");
	return 0;
}

/* augment, augment2: the method's preset, then what the spec says. */
static int parse_views(Parser *p, const cJSON *root)
{
	JobSpec *js = p->js;
	const cJSON *a1 = cJSON_GetObjectItemCaseSensitive(root, "augment");
	const cJSON *a2 = cJSON_GetObjectItemCaseSensitive(root, "augment2");
	int before = p->n_errors;
	if (a1 && p->method->views == 0)
		return fail(p, 400, "invalid_field", "augment",
		            "method \"%s\" has no pretraining views to augment (evaluations take "
		            "\"augment\": true/false)", p->method->name);
	if (a2 && p->method->views < 2)
		return fail(p, 400, "invalid_field", "augment2",
		            "method \"%s\" uses %d view%s; augment2 is for two-view methods",
		            p->method->name, p->method->views, p->method->views == 1 ? "" : "s");
	int preset = 0;
	for (int i = 0; i < COUNT(aug_presets); i++)
		if (p->method->default_augment && strcmp(p->method->default_augment, aug_presets[i]) == 0)
			preset = i;
	if (p->modality == DATA_TEXT)
		preset = 0;
	spec_aug_preset(&js->augment[0], preset);
	if (a1)
		parse_augment(p, a1, "augment", &js->augment[0]);
	js->augment[1] = js->augment[0];
	if (a2)
		parse_augment(p, a2, "augment2", &js->augment[1]);
	if (errors_since(p, before) < 0)
		return -EINVAL;
	if (p->dataset_ok && p->modality == DATA_TEXT && (a1 || a2)) {
		AugConfig none;
		aug_config_none(&none);
		for (int i = 0; i < 2; i++) {
			AugConfig c = js->augment[i];
			c.clamp = none.clamp;
			if (memcmp(&c, &none, sizeof c) != 0)
				return fail(p, 400, "invalid_field", i ? "augment2" : "augment",
				            "image augmentations do not apply to a %s dataset (use \"none\")",
				            p->format);
		}
	}
	return 0;
}

static int parse_init_from(Parser *p, const cJSON *root)
{
	JobSpec *js = p->js;
	char got[96];
	const cJSON *init = cJSON_GetObjectItemCaseSensitive(root, "init_from");
	if (!init)
		return 0;
	if (cJSON_IsNumber(init)) {
		const SpecKey *k = spec_key_find("init_from", NULL);
		int rc = get_i64(p, root, "", "init_from", k->min, k->max, &js->init_from_job);
		return rc < 0 ? rc : 0;
	}
	if (cJSON_IsString(init)) {
		const char *path = NULL;
		int rc = check_path(p, "init_from", init->valuestring, 0, "checkpoint_not_found", &path);
		if (rc < 0)
			return rc;
		js->init_from = (char *)path;
		return 0;
	}
	return fail(p, 400, "invalid_field", "init_from", "must be a checkpoint path or a job id, got %s",
	            describe(init, got, sizeof got));
}

/* A method that predicts colour needs 3-channel images. The format's "channels" key is named
 * when it has one (image_folder), else the dataset. */
static int check_color(Parser *p)
{
	int c, h, w;
	if (!jobspec_sample_shape(p->js, &c, &h, &w) || c >= 3)
		return 0;
	const DatasetFormat *fmt = dataset_format_for(p->js->dataset.kind);
	if (fmt && dataset_format_key(fmt, "channels"))
		return fail(p, 400, "invalid_field", "dataset.channels",
		            "must be 3 for method \"%s\" (it predicts the colours of a grayscale "
		            "image), got %d", p->method->name, c);
	return fail(p, 400, "invalid_field", "dataset",
	            "method \"%s\" predicts the colours of a grayscale image and needs 3-channel "
	            "images; the %s dataset has %d channel%s", p->method->name, p->format, c,
	            c == 1 ? "" : "s");
}

static int parse_root(Parser *p, const cJSON *root)
{
	JobSpec *js = p->js;
	int rc;
	check_doc_keys(p, root, "", "", NULL, NULL);
	if ((rc = parse_method(p, root)) < 0)
		return rc;

	/* The top-level scalars (name, seed, threads, ...). */
	spec_level_defaults("", NULL, js, NULL, NULL);
	int before_name = p->n_errors;
	walk_level(p, root, "", "", NULL, NULL, NULL, NULL);
	int name_ok = p->n_errors == before_name;
	if (js->name && name_ok && !valid_name(js->name))
		fail(p, 400, "invalid_field", "name",
		     "must be 1..100 characters of A-Z a-z 0-9 . _ - and space, got \"%.60s\"", js->name);

	p->dataset_ok = parse_dataset(p, cJSON_GetObjectItemCaseSensitive(root, "dataset")) == 0;
	if (p->dataset_ok && !(p->method->datasets & p->modality)) {
		char acc[64], mine[32];
		fail(p, 400, "invalid_field", "dataset", "method \"%s\" works on %s; the %s dataset holds %s",
		     p->method->name, catalog_data_names(p->method->datasets, acc, sizeof acc), p->format,
		     catalog_data_names(p->modality, mine, sizeof mine));
		p->dataset_ok = 0;
	} else if (p->dataset_ok && p->method->needs_labels && !p->labelled) {
		fail(p, 400, "invalid_field", "dataset",
		     "method \"%s\" needs labels, but the %s dataset is unlabelled", p->method->name, p->format);
		p->dataset_ok = 0;
	} else if (p->dataset_ok && p->method->needs_color && check_color(p) < 0) {
		p->dataset_ok = 0;
	}
	if (!p->format)
		p->format = "given";
	parse_params(p, cJSON_GetObjectItemCaseSensitive(root, "params"));
	int model_ok = parse_model(p, cJSON_GetObjectItemCaseSensitive(root, "model")) == 0;
	if (model_ok && p->dataset_ok) {
		const DatasetFormat *fmt = dataset_format_for(js->dataset.kind);
		const ParamDef *wk = fmt && fmt->width_key ? dataset_format_key(fmt, fmt->width_key) : NULL;
		int width = wk ? (int)param_load(wk, &js->dataset) : 0;
		char wf[64];
		snprintf(wf, sizeof wf, "dataset.%s", wk ? wk->name : "");
		if (wk && encoder_fits_data(js->encoder.kind, DATA_TEXT) && width > js->encoder.context)
			fail(p, 400, "invalid_field", wf, "must be <= model.context (%d), got %d",
			     js->encoder.context, width);
		else
			check_model_engine(p);
	}
	parse_views(p, root);
	parse_pretrain(p, cJSON_GetObjectItemCaseSensitive(root, "pretrain"));
	parse_evaluations(p, cJSON_GetObjectItemCaseSensitive(root, "evaluations"));
	parse_embedding_map(p, root);
	parse_distributed(p, root);
	parse_init_from(p, root);

	if (!js->name) {
		char def[128];
		snprintf(def, sizeof def, "%s-%s", js->method, p->format);
		if (!(js->name = own(p, def)))
			return oom(p, "name");
	}
	if (p->n_errors > 0)
		return -EINVAL;
	/* The method's own cross-field rules, on a complete spec. */
	char vfield[64] = "", vmsg[256] = "";
	if (p->method->validate &&
	    p->method->validate(js->method_config, vfield, sizeof vfield, vmsg, sizeof vmsg) < 0) {
		char f[128] = "params";
		if (vfield[0])
			field_join(f, sizeof f, "params", vfield);
		return fail(p, 400, "invalid_field", f, "%s", vmsg);
	}
	return 0;
}

typedef struct ScanFrame {
	char obj, want_key;
	int index;
	char key[40];
} ScanFrame;

/* The dotted path of frames [0, depth): each object frame adds its current key, each array
 * frame its current index. */
static void scan_path(const ScanFrame *st, int depth, char *path, size_t n)
{
	size_t at = 0;
	path[0] = '\0';
	for (int d = 0; d < depth && at < n; d++) {
		int w;
		if (st[d].obj)
			w = snprintf(path + at, n - at, "%s%s", at ? "." : "", st[d].key);
		else
			w = snprintf(path + at, n - at, "[%d]", st[d].index);
		if (w < 0)
			break;
		at += (size_t)w;
	}
}

static int scan_fail(SpecError *err, const char *code, const char *path, const char *msg)
{
	snprintf(err->code, sizeof err->code, "%s", code);
	snprintf(err->field, sizeof err->field, "%s", path);
	snprintf(err->message, sizeof err->message, "%s%s%s", path, path[0] ? ": " : "", msg);
	err->http_status = 400;
	return -EINVAL;
}

/* Before cJSON sees the text: nesting depth (cJSON recurses) and NUL characters (cJSON would
 * silently cut "a\u0000b" to "a"), each reported with the path where it occurs. */
static int prescan(const char *s, size_t len, SpecError *err)
{
	ScanFrame st[SPEC_MAX_DEPTH];
	char path[sizeof err->field];
	int depth = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '\0')
			return scan_fail(err, "invalid_json", "", "invalid JSON: a NUL byte in the text");
		if (c == '"') {
			size_t start = ++i;
			int is_key = depth > 0 && st[depth - 1].obj && st[depth - 1].want_key;
			while (i < len && s[i] != '"') {
				if (s[i] == '\0')
					return scan_fail(err, "invalid_json", "", "invalid JSON: a NUL byte in the text");
				if (s[i] == '\\') {
					if (i + 5 < len && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0) {
						scan_path(st, is_key ? depth - 1 : depth, path, sizeof path);
						return scan_fail(err, "invalid_field", path,
						                 "strings must not contain NUL characters (\\u0000)");
					}
					i++;
				}
				i++;
			}
			if (is_key) {
				size_t l = (i < len ? i : len) - start;
				if (l >= sizeof st[0].key)
					l = sizeof st[0].key - 1;
				memcpy(st[depth - 1].key, s + start, l);
				st[depth - 1].key[l] = '\0';
				st[depth - 1].want_key = 0;
			}
		} else if (c == '{' || c == '[') {
			if (depth == SPEC_MAX_DEPTH) {
				char msg[64];
				scan_path(st, depth, path, sizeof path);
				snprintf(msg, sizeof msg, "JSON nested deeper than %d levels", SPEC_MAX_DEPTH);
				return scan_fail(err, "too_deep", path, msg);
			}
			st[depth].obj = c == '{';
			st[depth].want_key = c == '{';
			st[depth].index = 0;
			st[depth].key[0] = '\0';
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth > 0)
				depth--;
		} else if (c == ',' && depth > 0) {
			if (st[depth - 1].obj)
				st[depth - 1].want_key = 1;
			else
				st[depth - 1].index++;
		}
	}
	return 0;
}

static void line_col(const char *s, size_t upto, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < upto; i++) {
		if (s[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

int jobspec_parse_all(const char *json, size_t len, const JobSpecOptions *opts, JobSpec **out,
                      SpecErrors *errs)
{
	static const JobSpecOptions defaults = { .check_files = 1 };
	SpecError cur;
	memset(&cur, 0, sizeof cur);
	errs->n = errs->dropped = 0;
	if (out)
		*out = NULL;
	if (!opts)
		opts = &defaults;
	Parser p = { .opts = opts, .err = &cur, .errs = errs };
	if (!json)
		return fail(&p, 400, "invalid_json", "", "no job spec given");
	int rc = prescan(json, len, &cur);
	if (rc < 0)
		return record(&p);
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
	if (!root) {
		int line, col;
		size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
		line_col(json, at, &line, &col);
		return fail(&p, 400, "invalid_json", "", "invalid JSON at line %d, column %d", line, col);
	}
	size_t at = end >= json && end <= json + len ? (size_t)(end - json) : len;
	while (at < len && (json[at] == ' ' || json[at] == '\t' || json[at] == '\n' || json[at] == '\r'))
		at++;
	if (at < len) {
		int line, col;
		line_col(json, at, &line, &col);
		cJSON_Delete(root);
		return fail(&p, 400, "invalid_json", "",
		            "invalid JSON: unexpected text after the object at line %d, column %d", line, col);
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return fail(&p, 400, "invalid_json", "", "the job spec must be a JSON object");
	}
	Owned *o = calloc(1, sizeof *o);
	if (!o) {
		cJSON_Delete(root);
		return oom(&p, "");
	}
	p.o = o;
	p.js = &o->js;
	/* Resolve the roots once; a root that does not resolve contains nothing. */
	size_t at_txt = 0;
	for (int i = 0; i < opts->n_data_roots && i < SPEC_MAX_ROOTS; i++) {
		if (!opts->data_roots[i])
			continue;
		p.roots[i] = realpath(opts->data_roots[i], NULL);
		int w = snprintf(p.roots_text + at_txt, sizeof p.roots_text - at_txt, "%s%s",
		                 at_txt ? ", " : "", opts->data_roots[i]);
		if (w > 0 && (size_t)w < sizeof p.roots_text - at_txt)
			at_txt += (size_t)w;
	}
	rc = parse_root(&p, root);
	for (int i = 0; i < SPEC_MAX_ROOTS; i++)
		free(p.roots[i]);
	cJSON_Delete(root);
	if (rc < 0 || errs->n > 0) {
		jobspec_free(&o->js);
		return errs->n > 0 ? status_errno(errs->e[0].http_status) : rc;
	}
	if (out)
		*out = &o->js;
	else
		jobspec_free(&o->js);
	return 0;
}

int jobspec_parse(const char *json, size_t len, const JobSpecOptions *opts, JobSpec **out,
                  SpecError *err)
{
	SpecErrors *errs = malloc(sizeof *errs);
	if (err)
		memset(err, 0, sizeof *err);
	if (out)
		*out = NULL;
	if (!errs) {
		if (err) {
			snprintf(err->code, sizeof err->code, "out_of_memory");
			snprintf(err->message, sizeof err->message, "out of memory");
			err->http_status = 500;
		}
		return -ENOMEM;
	}
	int rc = jobspec_parse_all(json, len, opts, out, errs);
	if (rc < 0 && err && errs->n > 0)
		*err = errs->e[0];
	free(errs);
	return rc;
}

int jobspec_parse_stored(const char *json, size_t len, JobSpec **out, SpecError *err)
{
	/* No data roots: the stored paths were resolved inside them at submit (see jobspec.h). */
	static const JobSpecOptions stored = { .check_files = 1 };
	return jobspec_parse(json, len, &stored, out, err);
}

int jobspec_validate(const char *json, size_t len, const JobSpecOptions *opts, SpecError *err)
{
	return jobspec_parse(json, len, opts, NULL, err);
}

void jobspec_free(JobSpec *js)
{
	if (!js)
		return;
	Owned *o = (Owned *)js;
	for (int i = 0; i < o->n_strs; i++)
		free(o->strs[i]);
	free(o->strs);
	free(o);
}

const char *eval_protocol_name(EvalProtocol p)
{
	const ProtocolInfo *pi = protocol_catalog_get(p);
	return pi ? pi->name : "?";
}

