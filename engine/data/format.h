/* format.h - dataset formats as registry entries: one descriptor per format, owning its keys,
 * its cross-field rules, its reader and what an estimate can learn before loading.
 *
 * A format is one file in engine/data/ that exports a DatasetFormat and one line in
 * format_registry.c (the top comment there is the recipe). The job spec's "dataset.*" keys, the
 * JSON Schema's per-format branches, docs/spec.md, the catalogue (GET /v1/methods "formats") and
 * the check "does this method suit this dataset" are all derived from these descriptors; dataset_load
 * dispatches through them.
 *
 *   const DatasetFormat *f = dataset_format_find("csv");   // or dataset_format_for(spec->kind)
 *   DatasetSpec s; dataset_format_defaults(f, &s);         // kind set, every key's default
 *   s.csv_train = "train.csv";
 *   char field[32], msg[256];
 *   if (f->validate && f->validate(&s, given, field, sizeof field, msg, sizeof msg) < 0) ...
 *   DatasetShape sh; if (f->estimate) f->estimate(&s, 0, &sh);   // samples, (C,H,W) if known
 *
 * Keys are ParamDef rows bound by offset to DatasetSpec; besides the scalar kinds they use the
 * path kinds of param_table.h (PARAM_PATH, PARAM_DIR, PARAM_PATH_LIST), whose checking against the
 * data roots is the spec layer's business.
 */
#ifndef SSLD_DATA_FORMAT_H
#define SSLD_DATA_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "../modality.h"
#include "../param_table.h"
#include "dataset.h"

/* "images", "vectors", "text", "captions", "audio" for one DATA_* bit; NULL otherwise. */
const char *dataset_modality_name(unsigned bit);

/* What an estimate can know before loading: training samples (-1 unknown) and one sample's shape
 * (known = 0 when the files do not say). */
typedef struct DatasetShape {
	int64_t train_samples;
	int c, h, w;
	int known;
} DatasetShape;

/* A format has at most this many keys (the spec layer tracks which were given in an array). */
#define DATASET_FORMAT_MAX_KEYS 32

typedef struct DatasetFormat {
	const char *name;           /* "csv"; a named dataset: "fashion-mnist" */
	const char *summary;        /* one line */
	DatasetKind kind;
	int named;                  /* a built-in dataset: chosen by "name" (or the string form), its
	                               keys are the "named" variant's */
	unsigned modality;          /* one DATA_* bit */
	int labelled;               /* samples carry labels (evaluations need them); "may carry" when
	                               has_labels decides per spec */
	/* Optional: whether this spec's data has labels, when the files decide (a folder with or
	 * without class subfolders). Called at validation with every key filled; NULL = labelled. */
	int (*has_labels)(const DatasetSpec *s);
	/* The keys of "dataset" for this format, bound to DatasetSpec. "name"/"format" and the keys
	 * every format shares (limit_train, limit_test) are not listed. */
	const ParamDef *keys;
	int n_keys;
	/* The key whose value is a text sample's length (it must fit the transformer's context), or
	 * NULL. */
	const char *width_key;
	/* Optional cross-field rules on a filled spec. given[i] says whether keys[i] was in the job.
	 * Report each problem through bad(user, key, code, message) ("missing_field" or
	 * "invalid_field"); return the number reported. */
	int (*validate)(const DatasetSpec *s, const int *given,
	                void (*bad)(void *user, const char *key, const char *code, const char *msg),
	                void *user);
	/* Read the dataset into ds (allocated by dataset_load; partial allocations are freed there). */
	int (*load)(const DatasetSpec *s, Dataset *ds, char *err, size_t errlen);
	/* What the files' headers or sizes say without loading (context: the transformer's context
	 * for byte streams, 0 otherwise). Fills out; never fails. */
	void (*estimate)(const DatasetSpec *s, int context, DatasetShape *out);
} DatasetFormat;

int dataset_format_count(void);
const DatasetFormat *dataset_format_at(int i);
const DatasetFormat *dataset_format_find(const char *name);   /* NULL if unknown */
const DatasetFormat *dataset_format_for(DatasetKind kind);     /* NULL if unknown */
/* The row of f named key, or NULL. */
const ParamDef *dataset_format_key(const DatasetFormat *f, const char *key);
/* Zero *s, set its kind and store every key's default. 0, or -1 for a broken table. */
int dataset_format_defaults(const DatasetFormat *f, DatasetSpec *s);

#endif
