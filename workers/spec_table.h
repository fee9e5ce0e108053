/* spec_table.h - the job spec's keys as one typed table: one row per key.
 *
 * A row names the key by its dotted path ("pretrain.optimizer.lr"; array elements as
 * "evaluations[]"), its type, where it lives (offset into JobSpec, or into EvalSpec for
 * "evaluations[]." keys and AugConfig for "augment." keys), its default, range, choices, the
 * variant of its level it belongs to (encoder, optimizer, dataset format, protocol) and a help
 * line. The parser (jobspec.c), the resolved spec (jobspec_to_json), the catalogue's spec keys,
 * the JSON Schema (spec_schema.c) and docs/spec.md all walk this table; only cross-field rules are
 * written by hand, in jobspec.c next to the level they belong to.
 *
 * Method parameters and protocol keys are not rows here: they come from the method catalogue. The
 * model.* rows are generated from the encoder registry (engine/encoders/): each encoder's keys,
 * variant = the encoder, defaults from encoder_config_default. The "dataset.*" rows of each format
 * are made from the format registry's key tables (engine/data/format.h) when the table is first
 * used; a key several formats describe identically is one row whose variant lists them all.
 *
 *   for (int i = 0; i < spec_key_count(); i++) {
 *       const SpecKey *k = spec_key_at(i);
 *       if (spec_key_in_level(k, "pretrain.optimizer") && spec_key_fits(k, "sgd")) ...
 *   }
 */
#ifndef SSLD_WORKERS_SPEC_TABLE_H
#define SSLD_WORKERS_SPEC_TABLE_H

#include <stddef.h>

#include "jobspec.h"

typedef enum SpecType {
	SPEC_INT,           /* int */
	SPEC_I64,           /* int64_t */
	SPEC_U64,           /* uint64_t */
	SPEC_FLOAT,         /* float */
	SPEC_DOUBLE,        /* double */
	SPEC_BOOL,          /* int, 0 or 1 */
	SPEC_ENUM,          /* int (or an int-sized enum): the index of the value in choices */
	SPEC_STRING,        /* const char *, owned by the JobSpec; max = longest length */
	SPEC_PATH,          /* const char *: a file, resolved and checked against the data roots */
	SPEC_INT_LIST,      /* int[max_n] at off, its count (int) at off2 */
	SPEC_DOUBLE_LIST,   /* double[max_n] at off, its count (int) at off2 */
	SPEC_FLOAT_PAIR,    /* [min, max]: a float at off and one at off2 */
	SPEC_OBJECT,        /* a nested level (its keys are the rows below it) */
	SPEC_CUSTOM,        /* a value of several shapes (string or object...), parsed by hand */
} SpecType;

typedef enum SpecBase { SPEC_BASE_JOB, SPEC_BASE_EVAL, SPEC_BASE_AUG } SpecBase;

/* Row flags; the range flags are the catalogue's PARAM_MIN_EXCLUSIVE .. PARAM_NO_MAX (1..8). */
enum {
	SPEC_REQUIRED = 16,     /* must be given (in its variant) */
	SPEC_DEF_ENGINE = 32,   /* the default is the engine's (encoder_config_default,
	                           optim_config_default, the enabled augmentation): read from the struct */
	SPEC_DEF_NONE = 64,     /* no default value: absent means "none" or is computed (def_text) */
	SPEC_HAND_PARSED = 128, /* read by hand in jobspec.c (a selector, or a value several keys
	                           depend on); typed here for the documents */
};

typedef struct SpecKey {
	const char *path;       /* "pretrain.optimizer.lr" */
	SpecType type;
	SpecBase base;
	size_t off, off2;
	double def;             /* numbers, integers, booleans, enums (as text in def_str) */
	const char *def_str;    /* strings, enums; JSON text for lists ("[1.0]") */
	double min, max;        /* numbers and integers (flags say which bounds hold); strings: max length */
	unsigned flags;
	int min_n, max_n;       /* lists: entries */
	const char *choices;    /* enums: "sgd|adamw|lars" (index = stored value); integers: allowed values */
	const char *variant;    /* "sgd|lars": valid only for these variants of its level; NULL = always */
	const char *json_type;  /* SPEC_CUSTOM: the JSON shapes it takes, "string|object" */
	const char *def_text;   /* the default in words when no value shows it ("the method's preset") */
	const char *help;
} SpecKey;

/* A level whose keys depend on one of its values: which key selects the variant. */
typedef struct SpecLevel {
	const char *path;       /* "model" */
	const char *selector;   /* "encoder" */
	const char *kind;       /* "encoder" (used in messages: "only valid for encoder ...") */
	const char *variants;   /* "mlp|cnn|vit|transformer" */
	const char *fallback;   /* the variant when the selector is absent, NULL = it depends */
} SpecLevel;

int spec_key_count(void);
const SpecKey *spec_key_at(int i);
const SpecKey *spec_key_find(const char *path, const char *variant);   /* NULL = none */
/* The leaf of the row's path when it is directly under level ("" = the root), else NULL. */
const char *spec_key_leaf(const SpecKey *k, const char *level);
/* 1 when the row applies to variant (variant NULL: any). */
int spec_key_fits(const SpecKey *k, const char *variant);
int spec_level_count(void);
const SpecLevel *spec_level_at(int i);
const SpecLevel *spec_level_find(const char *path);

/* Where the row's value lives in a JobSpec / EvalSpec / AugConfig. */
void *spec_key_ptr(const SpecKey *k, JobSpec *js, EvalSpec *ev, AugConfig *aug);
/* Write the row's default (not for SPEC_DEF_ENGINE / SPEC_DEF_NONE rows, custom and objects). */
void spec_key_set_default(const SpecKey *k, void *slot);
/* Defaults of a whole level for a variant: the engine's struct defaults where the rows say so,
 * then each row's own default. level is "model", "pretrain", "pretrain.optimizer", ... */
void spec_level_defaults(const char *level, const char *variant, JobSpec *js, EvalSpec *ev,
                         AugConfig *aug);

/* "sgd|lars" contains "lars"? */
int spec_in_list(const char *list, const char *word);
/* Index of word in "a|b|c", or -1. */
int spec_choice_index(const char *choices, const char *word);
/* The idx-th entry of "a|b|c" into buf (NULL when out of range). */
const char *spec_choice_at(const char *choices, int idx, char *buf, size_t n);

/* The parameters a transform gets when a spec names it without giving them. */
void spec_aug_enabled_defaults(AugConfig *c);
/* The transform names of "augment.<transform>.<key>" in table order, and the presets. */
extern const char *const spec_aug_transforms[];
extern const int spec_aug_transform_count;
extern const char spec_aug_presets[];   /* "none|simclr|light" */
void spec_aug_preset(AugConfig *c, int preset);

#endif
