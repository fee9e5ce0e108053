/* param_table.h - typed, documented settings bound to a C struct by offset.
 *
 * A method or an evaluation protocol describes its settings once, as an array of ParamDef rows:
 * the JSON key, its type, default, range or choices and help, and where the value lives in the
 * owner's own config struct. The spec layer validates a JSON value against a row and stores it
 * through the row; the owner reads a typed field (cfg->temperature, cfg->loss == AE_LOSS_BCE) and
 * never looks a setting up by name. The catalogue (`ssld methods`, GET /v1/methods) is printed
 * from the same rows.
 *
 *   typedef struct SimclrConfig { float temperature; int proj_dim; } SimclrConfig;
 *   static const ParamDef simclr_params[] = {
 *       { "temperature", PARAM_NUMBER, .def = 0.5, .min = 0, .max = 10,
 *         .flags = PARAM_MIN_EXCLUSIVE, .help = "...", PARAM_AT(SimclrConfig, temperature) },
 *       { "proj_dim", PARAM_INTEGER, .def = 128, .min = 1, .max = 4096, .help = "...",
 *         PARAM_AT(SimclrConfig, proj_dim) },
 *   };
 *   SimclrConfig c; param_fill_defaults(simclr_params, 2, &c);   // c.temperature == 0.5f
 *
 * Storage follows the field: PARAM_NUMBER in a float or double, PARAM_INTEGER in an int or
 * int64_t, PARAM_BOOLEAN and PARAM_ENUM (the choice's index, so the field is a C enum whose
 * values follow the '|'-separated choices) in an int, PARAM_STRING in a char array,
 * PARAM_INT_LIST in an int array with its count in another int (PARAM_LIST_AT), PARAM_PATH and
 * PARAM_DIR in a const char * (param_store keeps the caller's pointer), PARAM_PATH_LIST in a
 * pointer to an array of paths plus an int count (PARAM_LIST_AT).
 * param_table_check() verifies those pairings, so a test catches a row bound to the wrong field.
 * Validation of JSON (types, ranges, messages) is the spec layer's business, not this module's.
 */
#ifndef SSLD_ENGINE_PARAM_TABLE_H
#define SSLD_ENGINE_PARAM_TABLE_H

#include <stddef.h>

typedef enum ParamType {
	PARAM_NUMBER,     /* finite double */
	PARAM_INTEGER,    /* whole number (1.5 rejected) */
	PARAM_BOOLEAN,    /* JSON true/false, stored as 1/0 */
	PARAM_STRING,     /* free text (1..max chars, max 0 = 256) */
	PARAM_ENUM,       /* one of the '|'-separated choices, stored as its index */
	PARAM_INT_LIST,   /* min_n..max_n whole numbers, each in [min, max]: an int array + count */
	PARAM_PATH,       /* a file; stored as a const char * the caller owns (the spec layer resolves
	                     and confines it) */
	PARAM_DIR,        /* a directory, stored like PARAM_PATH; choices: files that must lie in it
	                     (each may also be given as NAME.gz) */
	PARAM_PATH_LIST,  /* files: a const char *const * at offset, their count (int) at count_offset;
	                     1..max entries */
} ParamType;

enum {
	PARAM_MIN_EXCLUSIVE = 1,   /* value must be > min instead of >= min */
	PARAM_MAX_EXCLUSIVE = 2,   /* value must be < max instead of <= max */
	PARAM_NO_MIN = 4,          /* no lower bound */
	PARAM_NO_MAX = 8,          /* no upper bound */
	PARAM_DEFAULT_AUTO = 16,   /* absent = chosen at run time ("auto"); def is the stored
	                              stand-in for it; a PARAM_BOOLEAN row also accepts the
	                              string "auto", stored as def */
	PARAM_REQUIRED = 32,       /* must be given */
	PARAM_DIR_LISTS = 64,      /* PARAM_DIR: the directory stands for its regular text files,
	                              stored in the table's PARAM_PATH_LIST row */
};

/* One typed, documented setting. For numbers and integers the range is [min, max] unless flags
 * say otherwise, and the default lies inside it (a test checks every table). Rows without a
 * binding (size 0) are validated but stored nowhere. */
typedef struct ParamDef {
	const char *name;
	ParamType type;
	double def;               /* number / integer / boolean default */
	const char *def_str;      /* string / enum default */
	double min, max;
	unsigned flags;
	const char *choices;      /* PARAM_ENUM: "mean|cls"; PARAM_INTEGER: allowed values "4|7" */
	const char *help;         /* one line */
	size_t offset;            /* where the value lives in the owner's struct ... */
	size_t size;              /* ... and the size of that field (0 = not stored) */
	size_t count_offset;      /* PARAM_INT_LIST, PARAM_PATH_LIST: where the count (an int) lives */
	/* PARAM_INT_LIST: how many entries, and the default entries */
	int min_n, max_n;
	const int *def_list;
	int def_n;
	const char *conflicts;    /* a key of the same table this one may not be given with (it is
	                             ignored and refused then) */
	const char *def_text;     /* the default in words when no value shows it */
} ParamDef;

/* Binds a row to field f of struct T. */
#define PARAM_AT(T, f) .offset = offsetof(T, f), .size = sizeof(((T *)0)->f)
/* Binds a PARAM_INT_LIST row to the int array f, or a PARAM_PATH_LIST row to the pointer f,
 * and its count n of struct T. */
#define PARAM_LIST_AT(T, f, n) PARAM_AT(T, f), .count_offset = offsetof(T, n)

const char *param_type_name(ParamType t);       /* "number", "integer", ... */
/* Index of word in the '|'-separated choices, or -1. */
int param_choice_index(const char *choices, const char *word);
/* The i-th choice into buf (empty when out of range); returns buf. */
const char *param_choice_name(const char *choices, int i, char *buf, size_t len);

/* Store a validated value at d's offset in base: num for numbers, integers, booleans and enums
 * (the choice index), str for strings. 0, or -1 when the row's field cannot hold its type. */
int param_store(const ParamDef *d, void *base, double num, const char *str);
/* The stored value as a double (numbers, integers, booleans, enum index); NaN if not stored. */
double param_load(const ParamDef *d, const void *base);
/* PARAM_STRING: the stored text; PARAM_ENUM: the chosen name (into buf); else NULL. */
const char *param_load_text(const ParamDef *d, const void *base, char *buf, size_t len);
/* PARAM_INT_LIST: store n entries (n <= max_n) and the count; read them back (the count, entries
 * into a borrowed pointer). -1 when the row is not a bound list. */
int param_store_list(const ParamDef *d, void *base, const int *v, int n);
int param_load_list(const ParamDef *d, const void *base, const int **v);
/* Store one row's default (lists included). 0, or -1 as param_store. */
int param_store_default(const ParamDef *d, void *base);
/* Zero base[0..size) and store every row's default. 0, or -1 as param_store. */
int param_fill_defaults(const ParamDef *defs, int n, void *base, size_t size);
/* Every row's binding suits its type and lies inside a struct of `size` bytes, every default
 * lies inside its range and (enums) among its choices. 0, or -1 with the offending row named. */
int param_table_check(const ParamDef *defs, int n, size_t size, char *err, size_t errlen);
/* Whether x lies in d's range; when not, why ("must be > 0") into why. */
int param_in_range(const ParamDef *d, double x, char *why, size_t n);

#endif
