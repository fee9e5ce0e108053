/* sweep.c - expanding a spec's "sweep" into child specs (see sweep.h). */
#include "sweep.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sweep_present(const cJSON *body)
{
	return cJSON_IsObject(body) && cJSON_GetObjectItemCaseSensitive(body, "sweep") != NULL;
}

__attribute__((format(printf, 4, 5)))
static void add_error(SpecErrors *errs, const char *code, const char *field, const char *fmt, ...)
{
	if (errs->n == JOBSPEC_MAX_ERRORS) {
		errs->dropped++;
		return;
	}
	SpecError *e = &errs->e[errs->n++];
	memset(e, 0, sizeof *e);
	snprintf(e->code, sizeof e->code, "%s", code);
	snprintf(e->field, sizeof e->field, "%s", field);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	e->http_status = 400;
}

/* splitmix64: the draws of "random", seeded by the spec's seed. */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
static double unit(uint64_t *s) { return (double)(mix(s) >> 11) * 0x1.0p-53; }

/* A dotted path: 1..8 parts of [A-Za-z0-9_], no leading/trailing/double dots. */
static int valid_path(const char *p)
{
	if (!*p || strlen(p) > 100 || *p == '.') return 0;
	int parts = 1;
	for (const char *c = p; *c; c++) {
		if (*c == '.') {
			if (c[1] == 0 || c[1] == '.') return 0;
			parts++;
		} else if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_')) {
			return 0;
		}
	}
	return parts <= 8;
}

/* Sets path in spec to a copy of v, creating objects on the way. 0, or -1 when a part on the way
 * is not an object. */
static int set_path(cJSON *spec, const char *path, const cJSON *v)
{
	char buf[128];
	snprintf(buf, sizeof buf, "%s", path);
	cJSON *o = spec;
	char *save = NULL, *part = strtok_r(buf, ".", &save);
	while (part) {
		char *next = strtok_r(NULL, ".", &save);
		if (!next) {
			cJSON *copy = cJSON_Duplicate(v, 1);
			if (!copy) return -1;
			if (cJSON_GetObjectItemCaseSensitive(o, part)) cJSON_ReplaceItemInObjectCaseSensitive(o, part, copy);
			else cJSON_AddItemToObject(o, part, copy);
			return 0;
		}
		cJSON *child = cJSON_GetObjectItemCaseSensitive(o, part);
		if (!child) child = cJSON_AddObjectToObject(o, part);
		if (!cJSON_IsObject(child)) return -1;
		o = child;
		part = next;
	}
	return -1;
}

typedef struct RandomDim {
	const char *path;
	const char *kind;      /* uniform, log_uniform, int_uniform, choice */
	const cJSON *arg;
	double lo, hi;
} RandomDim;

static int check_random(const char *path, const cJSON *d, RandomDim *rd, SpecErrors *errs)
{
	char field[160];
	snprintf(field, sizeof field, "sweep.random.%s", path);
	if (!cJSON_IsObject(d) || cJSON_GetArraySize(d) != 1 || !d->child->string) {
		add_error(errs, "invalid_field", field,
		          "%s: must be one distribution: {\"uniform\": [lo, hi]}, {\"log_uniform\": [lo, hi]}, "
		          "{\"int_uniform\": [lo, hi]} or {\"choice\": [v, ...]}", field);
		return -1;
	}
	const cJSON *a = d->child;
	rd->path = path;
	rd->kind = a->string;
	rd->arg = a;
	if (strcmp(a->string, "choice") == 0) {
		if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1 || cJSON_GetArraySize(a) > 64) {
			add_error(errs, "invalid_field", field, "%s.choice: must be a list of 1 to 64 values", field);
			return -1;
		}
		return 0;
	}
	if (strcmp(a->string, "uniform") && strcmp(a->string, "log_uniform") && strcmp(a->string, "int_uniform")) {
		add_error(errs, "invalid_field", field, "%s: unknown distribution '%.40s' (uniform, log_uniform, int_uniform, choice)",
		          field, a->string);
		return -1;
	}
	if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(a, 0)) ||
	    !cJSON_IsNumber(cJSON_GetArrayItem(a, 1))) {
		add_error(errs, "invalid_field", field, "%s.%s: must be [lo, hi], two numbers", field, a->string);
		return -1;
	}
	rd->lo = cJSON_GetArrayItem(a, 0)->valuedouble;
	rd->hi = cJSON_GetArrayItem(a, 1)->valuedouble;
	if (!(rd->lo <= rd->hi) || !isfinite(rd->lo) || !isfinite(rd->hi)) {
		add_error(errs, "invalid_field", field, "%s.%s: lo must not exceed hi (got [%g, %g])", field, a->string, rd->lo, rd->hi);
		return -1;
	}
	if (strcmp(a->string, "log_uniform") == 0 && !(rd->lo > 0)) {
		add_error(errs, "invalid_field", field, "%s.log_uniform: lo must be > 0 (got %g)", field, rd->lo);
		return -1;
	}
	if (strcmp(a->string, "int_uniform") == 0 && (rd->lo != floor(rd->lo) || rd->hi != floor(rd->hi) ||
	                                               fabs(rd->lo) > 1e15 || fabs(rd->hi) > 1e15)) {
		add_error(errs, "invalid_field", field, "%s.int_uniform: lo and hi must be integers", field);
		return -1;
	}
	return 0;
}

static cJSON *draw(const RandomDim *rd, uint64_t *rng)
{
	double u = unit(rng);
	if (strcmp(rd->kind, "choice") == 0) {
		int n = cJSON_GetArraySize(rd->arg), k = (int)(u * n);
		return cJSON_Duplicate(cJSON_GetArrayItem(rd->arg, k < n ? k : n - 1), 1);
	}
	if (strcmp(rd->kind, "int_uniform") == 0) {
		double v = rd->lo + floor(u * (rd->hi - rd->lo + 1));
		return cJSON_CreateNumber(v > rd->hi ? rd->hi : v);
	}
	if (strcmp(rd->kind, "log_uniform") == 0) {
		/* Rounded to 4 significant digits: settings read well and print the same everywhere. */
		double v = exp(log(rd->lo) + u * (log(rd->hi) - log(rd->lo)));
		char t[32];
		snprintf(t, sizeof t, "%.4g", v);
		return cJSON_CreateNumber(strtod(t, NULL));
	}
	char t[32];
	snprintf(t, sizeof t, "%.4g", rd->lo + u * (rd->hi - rd->lo));
	return cJSON_CreateNumber(strtod(t, NULL));
}

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d) memcpy(d, s, n);
	return d;
}

int sweep_expand(const cJSON *body, SweepPlan *plan, SpecErrors *errs)
{
	memset(plan, 0, sizeof *plan);
	errs->n = errs->dropped = 0;
	const cJSON *sw = cJSON_GetObjectItemCaseSensitive(body, "sweep");
	if (!cJSON_IsObject(sw)) {
		add_error(errs, "invalid_field", "sweep", "sweep: must be an object with \"grid\", \"random\" and/or \"seeds\"");
		return -1;
	}
	const cJSON *grid = NULL, *random = NULL, *seeds = NULL, *k;
	cJSON_ArrayForEach(k, sw) {
		if (strcmp(k->string, "grid") == 0) grid = k;
		else if (strcmp(k->string, "random") == 0) random = k;
		else if (strcmp(k->string, "seeds") == 0) seeds = k;
		else add_error(errs, "unknown_key", "sweep", "sweep.%.60s: unknown key (grid, random, seeds)", k->string);
	}
	int nseeds = 1;
	if (seeds) {
		if (!cJSON_IsNumber(seeds) || seeds->valuedouble != floor(seeds->valuedouble) || seeds->valuedouble < 1 ||
		    seeds->valuedouble > 100)
			add_error(errs, "invalid_field", "sweep.seeds", "sweep.seeds: must be an integer from 1 to 100");
		else
			nseeds = (int)seeds->valuedouble;
	}
	/* grid */
	const cJSON *gdim[SWEEP_MAX_PATHS];
	int ng = 0;
	long settings = 1;
	if (grid) {
		if (!cJSON_IsObject(grid)) {
			add_error(errs, "invalid_field", "sweep.grid", "sweep.grid: must be an object of spec paths to lists of values");
		} else {
			cJSON_ArrayForEach(k, grid) {
				char field[160];
				snprintf(field, sizeof field, "sweep.grid.%.100s", k->string);
				if (ng == SWEEP_MAX_PATHS) {
					add_error(errs, "invalid_field", "sweep.grid", "sweep.grid: at most %d paths", SWEEP_MAX_PATHS);
					break;
				}
				if (!valid_path(k->string)) {
					add_error(errs, "invalid_field", field, "%s: not a spec path (dotted keys, e.g. pretrain.optimizer.lr)", field);
					continue;
				}
				if (!cJSON_IsArray(k) || cJSON_GetArraySize(k) < 1 || cJSON_GetArraySize(k) > 64) {
					add_error(errs, "invalid_field", field, "%s: must be a list of 1 to 64 values", field);
					continue;
				}
				gdim[ng++] = k;
				settings *= cJSON_GetArraySize(k);
				if (settings > SWEEP_MAX_JOBS) settings = SWEEP_MAX_JOBS + 1;
			}
		}
	}
	/* random */
	RandomDim rdim[SWEEP_MAX_PATHS];
	int nr = 0, ndraws = 1;
	if (random) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(random, "n");
		if (!cJSON_IsObject(random)) {
			add_error(errs, "invalid_field", "sweep.random", "sweep.random: must be an object of spec paths to distributions, and \"n\"");
		} else {
			if (!cJSON_IsNumber(n) || n->valuedouble != floor(n->valuedouble) || n->valuedouble < 1 ||
			    n->valuedouble > SWEEP_MAX_JOBS)
				add_error(errs, "invalid_field", "sweep.random.n", "sweep.random.n: the number of draws, an integer from 1 to %d",
				          SWEEP_MAX_JOBS);
			else
				ndraws = (int)n->valuedouble;
			cJSON_ArrayForEach(k, random) {
				if (strcmp(k->string, "n") == 0) continue;
				char field[160];
				snprintf(field, sizeof field, "sweep.random.%.100s", k->string);
				if (nr == SWEEP_MAX_PATHS) {
					add_error(errs, "invalid_field", "sweep.random", "sweep.random: at most %d paths", SWEEP_MAX_PATHS);
					break;
				}
				if (!valid_path(k->string)) {
					add_error(errs, "invalid_field", field, "%s: not a spec path (dotted keys, e.g. params.temperature)", field);
					continue;
				}
				if (check_random(k->string, k, &rdim[nr], errs) == 0) nr++;
			}
			if (nr == 0 && errs->n == 0)
				add_error(errs, "invalid_field", "sweep.random", "sweep.random: names no path to draw");
		}
	}
	/* One path swept twice, or the seed swept while seeds repeat. */
	for (int i = 0; i < ng; i++) {
		for (int j = 0; j < nr; j++)
			if (strcmp(gdim[i]->string, rdim[j].path) == 0)
				add_error(errs, "invalid_field", "sweep.random", "sweep.random.%s: already swept by sweep.grid", rdim[j].path);
		if (strcmp(gdim[i]->string, "seed") == 0 && seeds)
			add_error(errs, "invalid_field", "sweep.seeds", "sweep.seeds: the grid sweeps \"seed\" itself; use one or the other");
		if (strcmp(gdim[i]->string, "name") == 0)
			add_error(errs, "invalid_field", "sweep.grid.name", "sweep.grid.name: children are named after the spec's name");
	}
	if (!grid && !random && !seeds)
		add_error(errs, "invalid_field", "sweep", "sweep: give \"grid\", \"random\" and/or \"seeds\"");
	long total = settings * ndraws * nseeds;
	if (errs->n == 0 && total > SWEEP_MAX_JOBS)
		add_error(errs, "invalid_field", "sweep", "sweep: %ld jobs (settings x draws x seeds); at most %d",
		          settings > SWEEP_MAX_JOBS ? (long)SWEEP_MAX_JOBS + 1 : total, SWEEP_MAX_JOBS);
	if (errs->n) return -1;

	/* The base: the body without "sweep"; its seed (the spec's default 0 when absent). */
	cJSON *base = cJSON_Duplicate(body, 1);
	if (!base) goto oom;
	cJSON_DeleteItemFromObjectCaseSensitive(base, "sweep");
	const cJSON *bs = cJSON_GetObjectItemCaseSensitive(base, "seed");
	uint64_t seed0 = cJSON_IsNumber(bs) && bs->valuedouble >= 0 && bs->valuedouble < 9e15 ? (uint64_t)bs->valuedouble : 0;
	const cJSON *bn = cJSON_GetObjectItemCaseSensitive(base, "name");
	const char *name = cJSON_IsString(bn) ? bn->valuestring : "sweep";

	for (int i = 0; i < ng; i++) {
		plan->paths[plan->npaths] = dup_str(gdim[i]->string);
		plan->path_random[plan->npaths++] = 0;
	}
	for (int j = 0; j < nr; j++) {
		plan->paths[plan->npaths] = dup_str(rdim[j].path);
		plan->path_random[plan->npaths++] = 1;
	}
	for (int i = 0; i < plan->npaths; i++)
		if (!plan->paths[i]) goto oom_base;
	plan->settings = (int)(settings * ndraws);
	plan->seeds = nseeds;
	plan->child = calloc((size_t)total, sizeof *plan->child);
	if (!plan->child) goto oom_base;
	uint64_t rng = seed0 ^ 0x5eedc0ffee123457ULL;
	int idx[SWEEP_MAX_PATHS] = { 0 };
	for (int s = 0; s < plan->settings; s++) {
		cJSON *setting = cJSON_CreateObject();
		if (!setting) goto oom_base;
		/* grid point: an odometer over the grid's lists, the last path fastest */
		int g = s / ndraws;
		for (int i = ng - 1, rest = g; i >= 0; i--) {
			int len = cJSON_GetArraySize(gdim[i]);
			idx[i] = rest % len;
			rest /= len;
		}
		for (int i = 0; i < ng; i++)
			cJSON_AddItemToObject(setting, gdim[i]->string, cJSON_Duplicate(cJSON_GetArrayItem(gdim[i], idx[i]), 1));
		for (int j = 0; j < nr; j++) cJSON_AddItemToObject(setting, rdim[j].path, draw(&rdim[j], &rng));
		char *stext = cJSON_PrintUnformatted(setting);
		for (int r = 0; r < nseeds; r++) {
			SweepChild *c = &plan->child[plan->n];
			c->setting_index = s;
			c->seed = seed0 + (uint64_t)r;
			c->spec = cJSON_Duplicate(base, 1);
			c->setting = stext ? dup_str(stext) : NULL;
			if (!c->spec || !c->setting) {
				cJSON_Delete(setting);
				free(stext);
				goto oom_base;
			}
			plan->n++;
			const cJSON *v;
			int bad = 0;
			cJSON_ArrayForEach(v, setting) bad |= set_path(c->spec, v->string, v) < 0;
			if (bad) {
				for (int i = 0; i < plan->npaths; i++) {
					/* which path runs into a non-object: report the first that does */
					cJSON *probe = cJSON_Duplicate(base, 1);
					int b = probe ? set_path(probe, plan->paths[i], cJSON_GetObjectItemCaseSensitive(setting, plan->paths[i])) : 0;
					cJSON_Delete(probe);
					if (b < 0) {
						char field[160];
						snprintf(field, sizeof field, "sweep.%s.%.100s", plan->path_random[i] ? "random" : "grid", plan->paths[i]);
						add_error(errs, "invalid_field", field, "%s: a key on the way is not an object in the spec", field);
						break;
					}
				}
				cJSON_Delete(setting);
				free(stext);
				cJSON_Delete(base);
				sweep_plan_free(plan);
				return -1;
			}
			const cJSON *cs = cJSON_GetObjectItemCaseSensitive(c->spec, "seed");
			if (nseeds > 1 && cs)
				cJSON_ReplaceItemInObjectCaseSensitive(c->spec, "seed", cJSON_CreateNumber((double)c->seed));
			else if (nseeds > 1)
				cJSON_AddNumberToObject(c->spec, "seed", (double)c->seed);
			else if (cJSON_IsNumber(cs) && cs->valuedouble >= 0 && cs->valuedouble < 9e15)
				c->seed = (uint64_t)cs->valuedouble;   /* the grid may set it */
			char cname[101];
			if (nseeds > 1) snprintf(cname, sizeof cname, "%.80s-%d-s%llu", name, s + 1, (unsigned long long)c->seed);
			else snprintf(cname, sizeof cname, "%.80s-%d", name, s + 1);
			if (cJSON_GetObjectItemCaseSensitive(c->spec, "name"))
				cJSON_ReplaceItemInObjectCaseSensitive(c->spec, "name", cJSON_CreateString(cname));
			else
				cJSON_AddStringToObject(c->spec, "name", cname);
		}
		cJSON_Delete(setting);
		free(stext);
	}
	cJSON_Delete(base);
	return 0;
oom_base:
	cJSON_Delete(base);
oom:
	sweep_plan_free(plan);
	add_error(errs, "out_of_memory", "sweep", "sweep: out of memory expanding the sweep");
	errs->e[errs->n - 1].http_status = 503;
	return -1;
}

void sweep_plan_free(SweepPlan *plan)
{
	for (int i = 0; i < plan->n; i++) {
		cJSON_Delete(plan->child[i].spec);
		free(plan->child[i].setting);
	}
	free(plan->child);
	for (int i = 0; i < plan->npaths; i++) free(plan->paths[i]);
	memset(plan, 0, sizeof *plan);
}

void sweep_error_field(const SweepPlan *plan, const char *field, char *out, size_t cap)
{
	for (int i = 0; i < plan->npaths; i++) {
		size_t n = strlen(plan->paths[i]);
		if (strncmp(field, plan->paths[i], n) == 0 && (field[n] == 0 || field[n] == '.' || field[n] == '[')) {
			snprintf(out, cap, "sweep.%s.%s", plan->path_random[i] ? "random" : "grid", field);
			return;
		}
	}
	if (plan->seeds > 1 && strcmp(field, "seed") == 0) {
		snprintf(out, cap, "sweep.seeds");
		return;
	}
	snprintf(out, cap, "%s", field);
}
