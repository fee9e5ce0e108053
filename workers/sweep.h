/* sweep.h - one job spec with a "sweep" becomes a group of child specs: a grid over spec paths,
 * random draws, and repeated seeds.
 *
 *   "sweep": {"grid":   {"pretrain.optimizer.lr": [1e-3, 2e-3, 4e-3]},
 *             "random": {"params.temperature": {"log_uniform": [0.1, 1.0]}, "n": 4},
 *             "seeds":  3}
 *
 * A setting is one combination of grid values and (when "random" is given) one random draw: the
 * settings are every grid point times n draws (each draw independent, seeded by the spec's seed, so
 * the same spec expands to the same children). Each setting runs with seeds seed, seed+1, ...,
 * seed+seeds-1. Paths are the dotted paths of the spec ("params.temperature",
 * "dataset.limit_train"); a path's value replaces the spec's (objects on the way are created).
 * Random distributions: {"uniform": [lo, hi]}, {"log_uniform": [lo, hi]} (0 < lo),
 * {"int_uniform": [lo, hi]} (integers, both ends included), {"choice": [v, ...]}.
 * At most SWEEP_MAX_JOBS children. Every child is then a normal job spec: the caller validates each
 * one in full (sweep_error_field maps a child's error back to the sweep key that caused it).
 */
#ifndef SSLD_WORKERS_SWEEP_H
#define SSLD_WORKERS_SWEEP_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "jobspec.h"

enum { SWEEP_MAX_JOBS = 256, SWEEP_MAX_PATHS = 16 };

typedef struct SweepChild {
	cJSON *spec;          /* the child's spec (owned): the base spec without "sweep", values set */
	char *setting;        /* JSON object of the swept paths' values, e.g. {"pretrain.optimizer.lr":0.002} */
	int setting_index;    /* 0-based; children with the same index differ only in seed */
	uint64_t seed;
} SweepChild;

typedef struct SweepPlan {
	SweepChild *child;
	int n, settings, seeds;
	char *paths[2 * SWEEP_MAX_PATHS];   /* swept paths, grid first */
	int path_random[2 * SWEEP_MAX_PATHS];
	int npaths;
} SweepPlan;

/* 1 if the body (a JSON object) has a "sweep" key. */
int sweep_present(const cJSON *body);
/* Expands body (not modified) into plan. 0, or -1 with every structural error of "sweep" in errs
 * (fields "sweep.grid.<path>", "sweep.random.n", "sweep.seeds", ...). */
int sweep_expand(const cJSON *body, SweepPlan *plan, SpecErrors *errs);
void sweep_plan_free(SweepPlan *plan);
/* A child's error field, named as the sweep key that set it: "pretrain.optimizer.lr" ->
 * "sweep.grid.pretrain.optimizer.lr" when that path is swept; "seed" -> "sweep.seeds" when seeds
 * are swept; anything else unchanged (the base spec is wrong). */
void sweep_error_field(const SweepPlan *plan, const char *field, char *out, size_t cap);

#endif
