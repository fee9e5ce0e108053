/* jobspec.c - parse and strictly validate a job JSON into a JobSpec with every default applied.
 *
 * One format serves `ssld run job.json` and `POST /v1/jobs`. Validation is complete before
 * anything runs: unknown keys (with a "did you mean"), duplicate keys, types, finiteness, ranges,
 * keys that belong to another encoder/optimizer/protocol/format, method parameters against the
 * method's own parameter table (engine/methods/), label needs of the evaluations, and dataset
 * paths (they exist, are regular files, and resolve with realpath inside a configured data root,
 * so `..` and symlinks cannot escape). Errors name the field by its dotted path ("evaluations[1].k").
 *
 * It deliberately does not load datasets, build models or read checkpoint contents (the runner
 * does), and does not bound the request size (callers do; JSON depth is bounded here).
 *
 * Defaults (the README copies this table):
 *
 *   key                              default
 *   name                             "<method>-<dataset>"  (e.g. "simclr-fashion-mnist")
 *   params.*                         the method's catalogue defaults (simclr: temperature 0.5,
 *                                    proj_hidden 512, proj_dim 128)
 *   dataset                          "fashion-mnist" (/usr/share/datasets/fashion-mnist);
 *                                    csv: label_column -1 (last), header "auto", test_fraction 0.1;
 *                                    text / text_records: test_fraction 0.1; record_bytes 128;
 *                                    limit_train / limit_test 0 (= all)
 *   model.encoder                    the method's default encoder when it suits the dataset
 *                                    (simclr: cnn), else cnn for images, mlp for csv vectors,
 *                                    transformer for text; other model keys: encoder_config_default
 *                                    (cnn channels [32,64,128]; mlp hidden [1024,1024] out_dim 128;
 *                                    vit/transformer dim 128 depth 4 heads 4 mlp_ratio 4, patch 4,
 *                                    context 128, pool "mean"; batchnorm true; dropout 0)
 *   augment                          the method's preset (simclr: "simclr"; others "none");
 *                                    an object starts from "preset" (default "none") and a named
 *                                    transform is enabled with the defaults of aug_enabled_defaults()
 *   augment2                         = augment
 *   seed 0, threads 2, checkpoint_interval_s 120, priority 0, init_from none
 *   pretrain.epochs 10, time_budget_s 0 (none), max_steps 0 (none), batch_size 256, grad_clip 0
 *   pretrain.optimizer               adamw: lr 1e-3, weight_decay 1e-6, betas [0.9, 0.999], eps 1e-8
 *                                    sgd:   lr 0.05, weight_decay 5e-4, momentum 0.9, nesterov false
 *                                    lars:  lr 0.3,  weight_decay 1e-6, momentum 0.9, trust_coef 0.001
 *   pretrain.schedule                name "cosine", warmup_epochs 1, min_lr 0
 *   evaluations                      [] (none); each: label_fractions [1.0], label_rule "first"
 *     linear_probe                   epochs 100, batch_size 256, lr 0 (auto), weight_decay 0 (auto,
 *                                    chosen by cross-validation on the labels)
 *     finetune                       epochs 30, batch_size 64, lr 1e-3, encoder_lr_scale 0.1,
 *                                    weight_decay 1e-4, augment true
 *     knn                            k 20, temperature 0.07
 *     supervised                     epochs 30, batch_size 64, lr 1e-3, weight_decay 1e-4, augment true
 *   (batch 64 and weight decay 1e-4 follow engine/methods/eval.c: with 1% labels a batch of 256
 *   would give two steps per epoch)
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

#include "method_catalog.h"

#ifndef SSLD_FASHION_MNIST_DIR
#define SSLD_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#endif

#define SPEC_MAX_DEPTH 32
#define SPEC_MAX_ROOTS 16
#define MAX_RULES 64


/* ---------------------------------------------------------------------------------------------- */
/* The documented spec keys: which keys exist at each level, for which variant (encoder,          */
/* optimizer, dataset format) they are valid, their type, default and help. check_keys() uses it */
/* to reject unknown and misplaced keys; jobspec_catalog_json() publishes it. Augmentation keys  */
/* come from aug_keys[], method parameters and protocol keys from the catalogue.                 */

typedef struct KeyDoc {
	const char *path;   /* "pretrain.optimizer.lr"; array elements as "evaluations[]" */
	const char *type;
	const char *def;    /* default as JSON text; NULL = computed (model.* from the engine) */
	const char *only;   /* "sgd|lars": valid only for these variants of its level; NULL = always */
	const char *help;
} KeyDoc;

static const KeyDoc key_docs[] = {
	{ "name", "string", "\"<method>-<dataset>\"", NULL,
	  "job name, 1..100 characters of A-Z a-z 0-9 . _ - and space" },
	{ "method", "enum", NULL, NULL, "REQUIRED: the pretext method (see methods), or \"none\"" },
	{ "params", "object", "{}", NULL, "method parameters (see methods[].params)" },
	{ "dataset", "string|object", "\"fashion-mnist\"", NULL,
	  "a named dataset, or an object with \"name\" or \"format\"" },
	{ "model", "object", "{}", NULL, "the encoder architecture" },
	{ "augment", "string|object", NULL, NULL,
	  "augmentations of view 1: a preset (\"none\", \"simclr\", \"light\") or an object; default: "
	  "the method's preset" },
	{ "augment2", "string|object", NULL, NULL,
	  "augmentations of view 2 (two-view methods); default: the same as augment" },
	{ "pretrain", "object", "{}", NULL, "pretraining loop: length, batch, optimizer, schedule" },
	{ "evaluations", "array", "[]", NULL, "downstream evaluations (at most 16), see protocols" },
	{ "seed", "integer", "0", NULL, "random seed (>= 0): same seed, same run" },
	{ "threads", "integer", "2", NULL, "BLAS and augmentation threads, 1..64" },
	{ "checkpoint_interval_s", "number", "120", NULL, "seconds between checkpoints, >= 1" },
	{ "init_from", "string|integer", "null", NULL,
	  "start from a checkpoint: a .safetensors path or a job id" },
	{ "priority", "integer", "0", NULL, "queue priority -100..100, higher runs first" },

	{ "dataset.name", "enum", "\"fashion-mnist\"", "named", "a built-in dataset" },
	{ "dataset.format", "enum", NULL, "idx|csv|text|text_records|captions",
	  "file format: idx, csv, text, text_records, captions" },
	{ "dataset.dir", "string", NULL, "named|text_records|captions",
	  "fashion-mnist/captions: directory of the four IDX files (default " SSLD_FASHION_MNIST_DIR
	  "); text_records: directory whose text files are the records' classes" },
	{ "dataset.train_images", "string", NULL, "idx", "REQUIRED (idx): training images (IDX, .gz or raw)" },
	{ "dataset.train_labels", "string", NULL, "idx", "REQUIRED (idx): training labels" },
	{ "dataset.test_images", "string", NULL, "idx", "REQUIRED (idx): test images" },
	{ "dataset.test_labels", "string", NULL, "idx", "REQUIRED (idx): test labels" },
	{ "dataset.train", "string", NULL, "csv", "REQUIRED (csv): training rows" },
	{ "dataset.test", "string", "null", "csv", "test rows (default: the tail test_fraction of train)" },
	{ "dataset.label_column", "integer", "-1", "csv", "label column index, -1 = last" },
	{ "dataset.header", "\"auto\"|boolean", "\"auto\"", "csv", "first row is a header" },
	{ "dataset.test_fraction", "number", "0.1", "csv|text|text_records",
	  "share held out as the test split, (0, 0.5]" },
	{ "dataset.files", "array<string>", NULL, "text|text_records",
	  "REQUIRED (text; text_records unless dir): 1..64 text files" },
	{ "dataset.record_bytes", "integer", "128", "text_records",
	  "records are truncated or padded to this many bytes, 16..4096" },
	{ "dataset.records", "enum", "\"percent\"", "text_records",
	  "\"percent\": records separated by \"%\" lines, the label is the source file; \"tsv\": "
	  "one record per line, \"label<TAB>text\"" },
	{ "dataset.file", "string", "null", "captions",
	  "JSON lines {\"image\": index, \"caption\": text} (default: captions from class names)" },
	{ "dataset.limit_train", "integer", "0", NULL, "keep only the first N training samples, 0 = all" },
	{ "dataset.limit_test", "integer", "0", NULL, "keep only the first N test samples, 0 = all" },

	{ "model.encoder", "enum", NULL, NULL,
	  "mlp, cnn, vit or transformer; default: the method's (cnn for images, mlp for csv, "
	  "transformer for text)" },
	{ "model.channels", "array<integer>", NULL, "cnn",
	  "conv stage widths (3x3 conv + BN + ReLU, stride 2 from the 2nd stage), 1..8 stages" },
	{ "model.hidden", "array<integer>", NULL, "mlp", "hidden layer widths, 0..8 layers" },
	{ "model.out_dim", "integer", NULL, "mlp|cnn",
	  "feature size (mlp: last linear, >= 1; cnn: optional projection, 0 = none)" },
	{ "model.batchnorm", "boolean", NULL, "mlp|cnn", "BatchNorm after each linear/conv" },
	{ "model.pool_grid", "integer", NULL, "cnn",
	  "features: the last feature map average-pooled to g x g cells (channels x g^2 features); "
	  "1 = global average pooling" },
	{ "model.dim", "integer", NULL, "vit|transformer", "token width, divisible by heads" },
	{ "model.depth", "integer", NULL, "vit|transformer", "transformer blocks, 1..64" },
	{ "model.heads", "integer", NULL, "vit|transformer", "attention heads, 1..256" },
	{ "model.patch", "integer", NULL, "vit", "patch size, 4 or 7" },
	{ "model.mlp_ratio", "integer", NULL, "vit|transformer", "MLP width = dim * mlp_ratio, 1..16" },
	{ "model.context", "integer", NULL, "transformer", "maximum sequence length in bytes" },
	{ "model.pool", "enum", NULL, "vit|transformer", "features: \"mean\" over tokens or \"cls\" token" },
	{ "model.dropout", "number", NULL, NULL, "dropout probability, 0..0.9" },

	{ "pretrain.epochs", "integer", "10", NULL, "passes over the training split, >= 0" },
	{ "pretrain.time_budget_s", "number", "0", NULL, "stop pretraining after this wall time, 0 = none" },
	{ "pretrain.max_steps", "integer", "0", NULL, "stop after this many steps, 0 = none" },
	{ "pretrain.batch_size", "integer", "256", NULL, "samples per step, 2..8192" },
	{ "pretrain.optimizer", "object", "{}", NULL, "optimizer (name adamw, sgd or lars)" },
	{ "pretrain.schedule", "object", "{}", NULL, "learning-rate schedule" },
	{ "pretrain.grad_clip", "number", "0", NULL, "global gradient-norm clip, 0 = off" },
	{ "pretrain.optimizer.name", "enum", "\"adamw\"", NULL, "adamw, sgd or lars" },
	{ "pretrain.optimizer.lr", "number", "0.001", NULL,
	  "peak learning rate, > 0 (default adamw 0.001, sgd 0.05, lars 0.3)" },
	{ "pretrain.optimizer.weight_decay", "number", "1e-06", NULL,
	  "decoupled weight decay, >= 0, not applied to biases and norms (default adamw 1e-6, "
	  "sgd 5e-4, lars 1e-6)" },
	{ "pretrain.optimizer.momentum", "number", "0.9", "sgd|lars", "momentum in [0, 1)" },
	{ "pretrain.optimizer.nesterov", "boolean", "false", "sgd", "Nesterov momentum" },
	{ "pretrain.optimizer.betas", "array<number>", "[0.9, 0.999]", "adamw", "Adam betas, each in [0, 1)" },
	{ "pretrain.optimizer.eps", "number", "1e-08", "adamw", "Adam epsilon, > 0" },
	{ "pretrain.optimizer.trust_coef", "number", "0.001", "lars", "LARS trust coefficient, > 0" },
	{ "pretrain.schedule.name", "enum", "\"cosine\"", NULL, "cosine or constant" },
	{ "pretrain.schedule.warmup_epochs", "number", "1", NULL, "linear warmup length, >= 0" },
	{ "pretrain.schedule.min_lr", "number", "0", NULL, "cosine floor, 0 <= min_lr <= lr" },

	{ "evaluations[].protocol", "enum", NULL, NULL,
	  "REQUIRED: linear_probe, finetune, knn or supervised (protocol keys: see protocols)" },
	{ "evaluations[].label_fractions", "array<number>", "[1.0]", NULL,
	  "shares of the training labels to use, each in (0, 1], 1..8 entries (one run each)" },
	{ "evaluations[].labels_per_class", "integer", "0", NULL,
	  "use this many labels per class instead of label_fractions (one run)" },
	{ "evaluations[].label_rule", "enum", "\"first\"", NULL,
	  "which labelled samples: \"first\" k per class in file order, or \"random\" (seeded)" },
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Enum choices shared by the parser and the published key docs (index = stored value). */
static const char encoder_choices[] = "mlp|cnn|vit|transformer";   /* EncoderKind order */
static const char dataset_formats[] = "idx|csv|text|text_records|captions";
static const char pool_choices[] = "mean|cls";
static const char schedule_choices[] = "constant|cosine";
static const char label_rule_choices[] = "first|random";
static const char records_choices[] = "percent|tsv";

static const struct {
	const char *path, *choices;
} key_choices[] = {
	{ "dataset.name", "fashion-mnist" },
	{ "dataset.format", dataset_formats },
	{ "dataset.records", records_choices },
	{ "model.encoder", encoder_choices },
	{ "model.pool", pool_choices },
	{ "pretrain.optimizer.name", "sgd|adamw|lars" },
	{ "pretrain.schedule.name", schedule_choices },
	{ "evaluations[].label_rule", label_rule_choices },
	{ "augment.preset", "none|simclr|light" },
};

/* ---------------------------------------------------------------------------------------------- */
/* Augmentation keys: one table drives parsing, defaults and docs.                               */

enum { AK_PROB, AK_NUM, AK_RANGE, AK_INT, AK_BOOL };

typedef struct AugKey {
	const char *transform;   /* "crop" */
	const char *key;         /* "scale" */
	int kind;
	size_t off, off2;        /* offsets in AugConfig (off2: AK_RANGE max) */
	double lo, hi;           /* allowed range; for AK_RANGE lo is exclusive when lo_excl */
	int lo_excl;
	const char *help;
} AugKey;

#define AOFF(m) offsetof(AugConfig, m)
static const AugKey aug_keys[] = {
	{ "crop", "p", AK_PROB, AOFF(crop.p), 0, 0, 1, 0, "probability of a random resized crop" },
	{ "crop", "scale", AK_RANGE, AOFF(crop.scale_min), AOFF(crop.scale_max), 0.01, 1, 0,
	  "[min, max] area fraction of the crop, 0.01..1" },
	{ "crop", "ratio", AK_RANGE, AOFF(crop.ratio_min), AOFF(crop.ratio_max), 0.1, 10, 0,
	  "[min, max] aspect ratio of the crop, 0.1..10" },
	{ "flip", "p", AK_PROB, AOFF(hflip.p), 0, 0, 1, 0, "probability of a horizontal flip" },
	{ "rotate", "p", AK_PROB, AOFF(rotate.p), 0, 0, 1, 0, "probability of a rotation" },
	{ "rotate", "degrees", AK_NUM, AOFF(rotate.max_degrees), 0, 0, 180, 0,
	  "maximum angle, uniform in [-degrees, degrees]" },
	{ "rotate", "multiples_of_90", AK_BOOL, AOFF(rotate.multiples_of_90), 0, 0, 1, 0,
	  "rotate by a random multiple of 90 degrees instead" },
	{ "translate", "p", AK_PROB, AOFF(translate.p), 0, 0, 1, 0, "probability of a shift" },
	{ "translate", "fraction", AK_NUM, AOFF(translate.max_fraction), 0, 0, 0.5, 0,
	  "maximum shift as a fraction of the image size, 0..0.5" },
	{ "jitter", "p", AK_PROB, AOFF(jitter.p), 0, 0, 1, 0, "probability of brightness/contrast jitter" },
	{ "jitter", "brightness", AK_NUM, AOFF(jitter.brightness), 0, 0, 1, 0,
	  "brightness factor in [1-b, 1+b]" },
	{ "jitter", "contrast", AK_NUM, AOFF(jitter.contrast), 0, 0, 1, 0, "contrast factor in [1-c, 1+c]" },
	{ "blur", "p", AK_PROB, AOFF(blur.p), 0, 0, 1, 0, "probability of a gaussian blur" },
	{ "blur", "sigma", AK_RANGE, AOFF(blur.sigma_min), AOFF(blur.sigma_max), 0.01, 4, 0,
	  "[min, max] blur sigma in pixels, 0.01..4" },
	{ "solarize", "p", AK_PROB, AOFF(solarize.p), 0, 0, 1, 0, "probability of solarization" },
	{ "solarize", "threshold", AK_NUM, AOFF(solarize.threshold), 0, 0, 1, 0,
	  "pixels above it become 1 - x" },
	{ "invert", "p", AK_PROB, AOFF(invert.p), 0, 0, 1, 0, "probability of inverting the image" },
	{ "erase", "p", AK_PROB, AOFF(erase.p), 0, 0, 1, 0, "probability of random erasing (cutout)" },
	{ "erase", "scale", AK_RANGE, AOFF(erase.scale_min), AOFF(erase.scale_max), 0.001, 1, 0,
	  "[min, max] erased area fraction, 0.001..1" },
	{ "noise", "p", AK_PROB, AOFF(noise.p), 0, 0, 1, 0, "probability of additive gaussian noise" },
	{ "noise", "std", AK_NUM, AOFF(noise.std), 0, 0, 1, 0, "noise standard deviation, 0..1" },
	{ "patch_mask", "p", AK_PROB, AOFF(patch_mask.p), 0, 0, 1, 0, "probability of patch masking" },
	{ "patch_mask", "ratio", AK_NUM, AOFF(patch_mask.ratio), 0, 0, 0.95, 0,
	  "share of patches zeroed, 0..0.95" },
	{ "patch_mask", "patch", AK_INT, AOFF(patch_mask.patch), 0, 1, 28, 0, "patch size in pixels, 1..28" },
};

static const char *const aug_transforms[] = { "crop", "flip", "rotate", "translate", "jitter", "blur",
                                              "solarize", "invert", "erase", "noise", "patch_mask" };
static const char *const aug_presets[] = { "none", "simclr", "light" };
static const char preset_choices[] = "none|simclr|light";   /* same order as aug_presets */

/* The parameters a transform gets when a spec names it without giving them: the engine's
 * parameters (aug_config_none keeps them ready) with these probabilities. */
static void aug_enabled_defaults(AugConfig *c)
{
	aug_config_none(c);
	c->crop.p = 1.0f;
	c->hflip.p = 0.5f;
	c->rotate.p = 0.5f;
	c->translate.p = 0.5f;
	c->jitter.p = 0.8f;
	c->blur.p = 0.5f;
	c->solarize.p = 0.2f;
	c->invert.p = 0.2f;
	c->erase.p = 0.25f;
	c->noise.p = 0.5f;
	c->patch_mask.p = 1.0f;
}

static float *aug_float(AugConfig *c, size_t off)
{
	return (float *)(void *)((char *)c + off);
}

static int *aug_int(AugConfig *c, size_t off)
{
	return (int *)(void *)((char *)c + off);
}

static const AugKey *aug_key_find(const char *transform, const char *key)
{
	for (int i = 0; i < COUNT(aug_keys); i++)
		if (strcmp(aug_keys[i].transform, transform) == 0 && strcmp(aug_keys[i].key, key) == 0)
			return &aug_keys[i];
	return NULL;
}

static void aug_preset(AugConfig *c, int preset)
{
	switch (preset) {
	case 1: aug_config_default_simclr(c); break;
	case 2: aug_config_default_light(c); break;
	default: aug_config_none(c); break;
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* Optimizer defaults (see the table at the top).                                                 */

static const char *const optim_names[] = { "sgd", "adamw", "lars" };   /* indexed by OptimKind */
static const char optim_choices[] = "sgd|adamw|lars";
_Static_assert(OPT_SGD == 0 && OPT_ADAMW == 1 && OPT_LARS == 2, "optim_names follows OptimKind");

static void optim_defaults(OptimConfig *c, OptimKind kind)
{
	optim_config_default(c, kind);   /* fields this file does not know keep the engine's defaults */
	c->kind = kind;
	c->beta1 = 0.9f, c->beta2 = 0.999f, c->eps = 1e-8f;
	c->trust_coef = 0.001f;
	c->momentum = kind == OPT_ADAMW ? 0.0f : 0.9f;
	c->nesterov = 0;
	switch (kind) {
	case OPT_ADAMW: c->lr = 1e-3f, c->weight_decay = 1e-6f; break;
	case OPT_SGD: c->lr = 0.05f, c->weight_decay = 5e-4f; break;
	case OPT_LARS: c->lr = 0.3f, c->weight_decay = 1e-6f; break;
	}
	c->schedule = SCHED_COSINE;
	c->warmup_steps = 0;
	c->min_lr = 0.0f;
	c->grad_clip = 0.0f;
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
	SpecError *err;
	Owned *o;
	JobSpec *js;
	const MethodInfo *method;
	unsigned modality;          /* DATA_* of the dataset */
	int labelled;
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

/* Fill the error (message prefixed by the field) and return the negative errno for status. */
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
	return status_errno(status);
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
			} else if (!in_list(r[i].only, only)) {
				size_t l = strlen(r[i].only);
				snprintf(r[i].only + l, sizeof r[i].only - l, "|%s", only);
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

/* The rules of one level of key_docs ("pretrain.optimizer" -> name, lr, ...). */
static int rules_from_docs(KeyRule *r, int *n, const char *level)
{
	size_t ll = strlen(level);
	for (int i = 0; i < COUNT(key_docs); i++) {
		const char *path = key_docs[i].path;
		const char *leaf;
		if (ll == 0) {
			leaf = path;
		} else {
			if (strncmp(path, level, ll) != 0 || path[ll] != '.')
				continue;
			leaf = path + ll + 1;
		}
		if (strchr(leaf, '.') || strchr(leaf, '['))
			continue;
		rules_add(r, n, leaf, key_docs[i].only);
	}
	return 0;
}

/* variant_kind: "encoder", "optimizer", "format", "protocol" (NULL when the level has none). */
static int check_keys(Parser *p, const cJSON *obj, const char *field, const KeyRule *rules, int n,
                      const char *variant_kind, const char *variant)
{
	char f[128];
	for (const cJSON *c = obj->child; c; c = c->next) {
		const char *key = c->string ? c->string : "";
		field_join(f, sizeof f, field, key);
		for (const cJSON *d = obj->child; d != c; d = d->next)
			if (d->string && strcmp(d->string, key) == 0)
				return fail(p, 400, "duplicate_key", f, "duplicate key");
		const KeyRule *rule = NULL;
		for (int i = 0; i < n; i++)
			if (strcmp(rules[i].name, key) == 0)
				rule = &rules[i];
		if (rule && rule->only[0] && variant && !in_list(rule->only, variant)) {
			char l[160];
			list_or(l, sizeof l, rule->only);
			return fail(p, 400, "unknown_key", f, "only valid for %s %s (this %s is \"%s\")",
			            variant_kind, l, variant_kind, variant);
		}
		if (rule)
			continue;
		/* Unknown: suggest among the keys valid here. */
		const char *cands[MAX_RULES];
		int nc = 0;
		for (int i = 0; i < n; i++)
			if (!rules[i].only[0] || !variant || in_list(rules[i].only, variant))
				cands[nc++] = rules[i].name;
		const char *s = suggest(key, cands, nc);
		if (s)
			return fail(p, 400, "unknown_key", f, "unknown key; did you mean \"%s\"?", s);
		char allowed[256];
		join_names(allowed, sizeof allowed, cands, nc);
		return fail(p, 400, "unknown_key", f, "unknown key (allowed: %s)", allowed);
	}
	return 0;
}

static int check_doc_keys(Parser *p, const cJSON *obj, const char *level, const char *field,
                          const char *variant_kind, const char *variant)
{
	KeyRule rules[MAX_RULES];
	int n = 0;
	rules_from_docs(rules, &n, level);
	return check_keys(p, obj, field, rules, n, variant_kind, variant);
}

/* ---------------------------------------------------------------------------------------------- */
/* Typed values                                                                                   */

static int range_ok(const ParamDef *d, double x, char *why, size_t n)
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

/* Index of word in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *word)
{
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
		int idx = choice_index(d->choices, v->valuestring);
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
		if (!range_ok(d, x, why, sizeof why))
			return fail(p, 400, "invalid_field", field, "%s, got %s", why, got);
		*num = x;
		return 0;
	}
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

static int get_int(Parser *p, const cJSON *obj, const char *parent, const char *key, double lo,
                   double hi, int *out)
{
	ParamDef d = { .name = key, .type = PARAM_INTEGER, .min = lo, .max = hi };
	double x = 0;
	const char *s = NULL;
	int rc = get_value(p, obj, parent, &d, &x, &s);
	if (rc > 0)
		*out = (int)x;
	return rc;
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

static int get_num(Parser *p, const cJSON *obj, const char *parent, const char *key, double lo,
                   double hi, unsigned flags, double *out)
{
	ParamDef d = { .name = key, .type = PARAM_NUMBER, .min = lo, .max = hi, .flags = flags };
	const char *s = NULL;
	return get_value(p, obj, parent, &d, out, &s);
}

static int get_float(Parser *p, const cJSON *obj, const char *parent, const char *key, double lo,
                     double hi, unsigned flags, float *out)
{
	double x = 0;
	int rc = get_num(p, obj, parent, key, lo, hi, flags, &x);
	if (rc > 0)
		*out = (float)x;
	return rc;
}

static int get_bool(Parser *p, const cJSON *obj, const char *parent, const char *key, int *out)
{
	ParamDef d = { .name = key, .type = PARAM_BOOLEAN };
	double x = 0;
	const char *s = NULL;
	int rc = get_value(p, obj, parent, &d, &x, &s);
	if (rc > 0)
		*out = (int)x;
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

/* The four Fashion-MNIST files under dir (default or given), .gz or raw. */
static int check_fmnist_dir(Parser *p, const char *field, const char *dir_given, const char **dir_out)
{
	static const char *const files[] = { "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
	                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" };
	const char *dir = NULL;
	int rc = check_path(p, field, dir_given ? dir_given : SSLD_FASHION_MNIST_DIR, 1,
	                    "dataset_not_found", &dir);
	if (rc < 0)
		return rc;
	if (p->opts->check_files || p->opts->data_roots || p->opts->n_data_roots > 0) {
		for (int i = 0; i < COUNT(files); i++) {
			char path[PATH_MAX], raw[PATH_MAX];
			const char *r = NULL;
			snprintf(path, sizeof path, "%s/%s.gz", dir, files[i]);
			snprintf(raw, sizeof raw, "%s/%s", dir, files[i]);
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
/* dataset                                                                                        */

static const char *const dataset_names[] = { "fashion-mnist" };

static int parse_dataset(Parser *p, const cJSON *v)
{
	JobSpec *js = p->js;
	DatasetSpec *ds = &js->dataset;
	char got[96];
	int rc;
	memset(ds, 0, sizeof *ds);
	ds->csv_label_column = -1;
	ds->csv_header = -1;
	ds->test_fraction = 0.1f;
	ds->max_record_bytes = 128;

	const char *name = NULL;
	const cJSON *obj = NULL;
	if (!v) {
		name = "fashion-mnist";
	} else if (cJSON_IsString(v)) {
		name = v->valuestring;
	} else if (cJSON_IsObject(v)) {
		obj = v;
	} else {
		return fail(p, 400, "invalid_field", "dataset",
		            "must be a dataset name or an object, got %s", describe(v, got, sizeof got));
	}

	if (obj) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, "name");
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, "format");
		if (n && f)
			return fail(p, 400, "invalid_field", "dataset.name",
			            "give either \"name\" (a built-in dataset) or \"format\", not both");
		if (!n && !f)
			return fail(p, 400, "missing_field", "dataset.format",
			            "required (or \"name\" of a built-in dataset: fashion-mnist)");
		if (n) {
			if (!cJSON_IsString(n))
				return fail(p, 400, "invalid_field", "dataset.name", "must be a string, got %s",
				            describe(n, got, sizeof got));
			name = n->valuestring;
		}
	}

	if (name) {
		const char *fieldn = obj ? "dataset.name" : "dataset";
		int known = -1;
		for (int i = 0; i < COUNT(dataset_names); i++)
			if (strcmp(dataset_names[i], name) == 0)
				known = i;
		if (known < 0) {
			char list[128];
			join_names(list, sizeof list, dataset_names, COUNT(dataset_names));
			const char *s = suggest(name, dataset_names, COUNT(dataset_names));
			if (s)
				return fail(p, 400, "invalid_field", fieldn,
				            "unknown dataset \"%s\"; did you mean \"%s\"? (built-in: %s; or give "
				            "an object with \"format\")", name, s, list);
			return fail(p, 400, "invalid_field", fieldn,
			            "unknown dataset \"%s\" (built-in: %s; or give an object with \"format\")",
			            name, list);
		}
		if (obj && (rc = check_doc_keys(p, obj, "dataset", "dataset", "format", "named")) < 0)
			return rc;
		const char *dir = NULL, *dir_out = NULL;
		if (obj && (rc = get_string(p, obj, "dataset", "dir", PATH_MAX - 2, &dir)) < 0)
			return rc;
		if ((rc = check_fmnist_dir(p, dir ? "dataset.dir" : fieldn, dir, &dir_out)) < 0)
			return rc;
		ds->kind = DATASET_FASHION_MNIST;
		ds->dir = dir_out;
		if (!(js->dataset_name = own(p, name)))
			return oom(p, fieldn);
		p->format = "fashion-mnist";
		p->modality = DATA_IMAGES;
		p->labelled = 1;
	} else {
		int fmt = -1;
		if ((rc = get_enum(p, obj, "dataset", "format", dataset_formats, &fmt)) < 0)
			return rc;
		static const char *const fmt_names[] = { "idx", "csv", "text", "text_records", "captions" };
		p->format = fmt_names[fmt];
		if ((rc = check_doc_keys(p, obj, "dataset", "dataset", "format", p->format)) < 0)
			return rc;
		static const char *const idx_keys[] = { "train_images", "train_labels", "test_images",
		                                        "test_labels" };
		switch (fmt) {
		case 0:   /* idx */
			ds->kind = DATASET_IDX;
			for (int i = 0; i < 4; i++) {
				const char *path = NULL;
				char f[64];
				snprintf(f, sizeof f, "dataset.%s", idx_keys[i]);
				if (!cJSON_GetObjectItemCaseSensitive(obj, idx_keys[i]))
					return fail(p, 400, "missing_field", f, "required for format \"idx\"");
				if ((rc = path_value(p, obj, "dataset", idx_keys[i], 0, &path)) < 0)
					return rc;
				const char **slot[] = { &ds->train_images, &ds->train_labels, &ds->test_images,
				                        &ds->test_labels };
				*slot[i] = path;
			}
			p->modality = DATA_IMAGES;
			p->labelled = 1;
			break;
		case 1: { /* csv */
			ds->kind = DATASET_CSV;
			if (!cJSON_GetObjectItemCaseSensitive(obj, "train"))
				return fail(p, 400, "missing_field", "dataset.train", "required for format \"csv\"");
			if ((rc = path_value(p, obj, "dataset", "train", 0, &ds->csv_train)) < 0)
				return rc;
			if ((rc = path_value(p, obj, "dataset", "test", 0, &ds->csv_test)) < 0)
				return rc;
			if (ds->csv_test && cJSON_GetObjectItemCaseSensitive(obj, "test_fraction"))
				return fail(p, 400, "invalid_field", "dataset.test_fraction",
				            "only used without \"test\" (the test split is the test file)");
			if ((rc = get_int(p, obj, "dataset", "label_column", -1, 100000, &ds->csv_label_column)) < 0)
				return rc;
			const cJSON *h = cJSON_GetObjectItemCaseSensitive(obj, "header");
			if (h) {
				if (cJSON_IsBool(h))
					ds->csv_header = cJSON_IsTrue(h) ? 1 : 0;
				else if (!(cJSON_IsString(h) && strcmp(h->valuestring, "auto") == 0))
					return fail(p, 400, "invalid_field", "dataset.header",
					            "must be \"auto\", true or false, got %s", describe(h, got, sizeof got));
			}
			p->modality = DATA_VECTORS;
			p->labelled = 1;
			break;
		}
		case 2:   /* text */
		case 3: { /* text_records */
			ds->kind = fmt == 2 ? DATASET_TEXT : DATASET_TEXT_RECORDS;
			if ((rc = get_float(p, obj, "dataset", "test_fraction", 0, 0.5, PARAM_MIN_EXCLUSIVE,
			                    &ds->test_fraction)) < 0)
				return rc;
			if ((rc = get_int(p, obj, "dataset", "record_bytes", 16, 4096, &ds->max_record_bytes)) < 0)
				return rc;
			int records = 0;
			if ((rc = get_enum(p, obj, "dataset", "records", records_choices, &records)) < 0)
				return rc;
			ds->text_label_field = records;
			const cJSON *files = cJSON_GetObjectItemCaseSensitive(obj, "files");
			const cJSON *dir = cJSON_GetObjectItemCaseSensitive(obj, "dir");
			if (files && dir)
				return fail(p, 400, "invalid_field", "dataset.dir",
				            "give either \"files\" or \"dir\", not both");
			if (!files && !dir)
				return fail(p, 400, "missing_field", "dataset.files",
				            fmt == 2 ? "required for format \"text\""
				                     : "required for format \"text_records\" (or \"dir\")");
			if (files) {
				if (!cJSON_IsArray(files))
					return fail(p, 400, "invalid_field", "dataset.files",
					            "must be an array of paths, got %s", describe(files, got, sizeof got));
				int n = cJSON_GetArraySize(files);
				if (n == 0)
					return fail(p, 400, "invalid_field", "dataset.files", "must not be empty");
				if (n > JOBSPEC_MAX_TEXT_FILES)
					return fail(p, 400, "invalid_field", "dataset.files",
					            "must have at most %d entries, got %d", JOBSPEC_MAX_TEXT_FILES, n);
				int i = 0;
				for (const cJSON *e = files->child; e; e = e->next, i++) {
					char f[64];
					snprintf(f, sizeof f, "dataset.files[%d]", i);
					if (!cJSON_IsString(e))
						return fail(p, 400, "invalid_field", f, "must be a path string, got %s",
						            describe(e, got, sizeof got));
					if ((rc = check_path(p, f, e->valuestring, 0, "dataset_not_found",
					                     &p->o->text_files[i])) < 0)
						return rc;
				}
				ds->text_files = p->o->text_files;
				ds->n_text_files = n;
			} else {
				const char *d = NULL;
				if ((rc = path_value(p, obj, "dataset", "dir", 1, &d)) < 0)
					return rc;
				if ((rc = list_text_dir(p, "dataset.dir", d)) < 0)
					return rc;
			}
			p->modality = DATA_TEXT;
			p->labelled = fmt == 3;
			break;
		}
		case 4: { /* captions */
			ds->kind = DATASET_CAPTIONS;
			if ((rc = path_value(p, obj, "dataset", "file", 0, &ds->captions_file)) < 0)
				return rc;
			const char *dir = NULL, *dir_out = NULL;
			if ((rc = get_string(p, obj, "dataset", "dir", PATH_MAX - 2, &dir)) < 0)
				return rc;
			if ((rc = check_fmnist_dir(p, dir ? "dataset.dir" : "dataset", dir, &dir_out)) < 0)
				return rc;
			ds->dir = dir_out;
			p->modality = DATA_CAPTIONS;
			p->labelled = 1;
			break;
		}
		}
		if (fmt == 1 && (rc = get_float(p, obj, "dataset", "test_fraction", 0, 0.5,
		                                PARAM_MIN_EXCLUSIVE, &ds->test_fraction)) < 0)
			return rc;
	}
	if (obj) {
		if ((rc = get_int(p, obj, "dataset", "limit_train", 0, 2147483647, &ds->limit_train)) < 0)
			return rc;
		if ((rc = get_int(p, obj, "dataset", "limit_test", 0, 2147483647, &ds->limit_test)) < 0)
			return rc;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* params (method parameters)                                                                     */

/* Each parameter is checked against the method's table and stored through its row into the
 * JobSpec's method_config, which starts from the table's defaults. */
static int parse_params(Parser *p, const cJSON *v)
{
	const MethodInfo *m = p->method;
	JobSpec *js = p->js;
	int np = m->n_params;
	char got[96];
	if (v && !cJSON_IsObject(v))
		return fail(p, 400, "invalid_field", "params", "must be an object, got %s",
		            describe(v, got, sizeof got));
	if (v) {
		KeyRule rules[MAX_RULES];
		int n = 0;
		for (int i = 0; i < np && n < MAX_RULES; i++)
			rules_add(rules, &n, m->params[i].name, NULL);
		char f[128];
		for (const cJSON *c = v->child; c; c = c->next) {
			if (!c->string)
				continue;
			field_join(f, sizeof f, "params", c->string);
			int known = 0;
			for (int i = 0; i < n; i++)
				known |= strcmp(rules[i].name, c->string) == 0;
			if (known)
				continue;
			const char *cands[MAX_RULES];
			for (int i = 0; i < n; i++)
				cands[i] = m->params[i].name;
			const char *s = suggest(c->string, cands, n);
			char list[256];
			join_names(list, sizeof list, cands, n);
			if (s)
				return fail(p, 400, "unknown_key", f,
				            "unknown parameter of method \"%s\"; did you mean \"%s\"?", m->name, s);
			if (np == 0)
				return fail(p, 400, "unknown_key", f, "unknown parameter: method \"%s\" has none",
				            m->name);
			return fail(p, 400, "unknown_key", f,
			            "unknown parameter of method \"%s\" (parameters: %s)", m->name, list);
		}
		int rc = check_keys(p, v, "params", rules, n, NULL, NULL);   /* duplicates */
		if (rc < 0)
			return rc;
	}
	if (method_config_default(m, js->method_config) < 0)
		return fail(p, 500, "internal", "params", "method \"%s\": its parameter table does not "
		            "fit its config", m->name);
	for (int i = 0; i < np; i++) {
		const ParamDef *d = &m->params[i];
		double x = 0;
		const char *s = NULL;
		int rc = get_value(p, v, "params", d, &x, &s);
		if (rc < 0)
			return rc;
		if (rc > 0 && param_store(d, js->method_config, x, s) < 0)
			return fail(p, 500, "internal", "params", "method \"%s\": parameter \"%s\" cannot be "
			            "stored in its config field", m->name, d->name);
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* model                                                                                          */

static unsigned modality_encoders(unsigned modality)
{
	switch (modality) {
	case DATA_VECTORS: return ENC_BIT(ENC_MLP);
	case DATA_TEXT: return ENC_BIT(ENC_TRANSFORMER);
	default: return ENC_BIT(ENC_MLP) | ENC_BIT(ENC_CNN) | ENC_BIT(ENC_VIT);
	}
}

static EncoderKind modality_default_encoder(unsigned modality)
{
	switch (modality) {
	case DATA_VECTORS: return ENC_MLP;
	case DATA_TEXT: return ENC_TRANSFORMER;
	default: return ENC_CNN;
	}
}

_Static_assert(ENC_MLP == 0 && ENC_CNN == 1 && ENC_VIT == 2 && ENC_TRANSFORMER == 3,
               "encoder_choices follows EncoderKind");

static int parse_model(Parser *p, const cJSON *v)
{
	JobSpec *js = p->js;
	EncoderConfig *ec = &js->encoder;
	const MethodInfo *m = p->method;
	unsigned fits = modality_encoders(p->modality) & (m->encoders ? m->encoders : ~0u);
	char got[96];
	int rc;
	if (v && !cJSON_IsObject(v))
		return fail(p, 400, "invalid_field", "model", "must be an object, got %s",
		            describe(v, got, sizeof got));
	int kind = -1;
	if (v && (rc = get_enum(p, v, "model", "encoder", encoder_choices, &kind)) < 0)
		return rc;
	if (kind < 0) {
		kind = (int)m->default_encoder;
		if (!(fits & ENC_BIT(kind)))
			kind = (int)modality_default_encoder(p->modality);
		if (!(fits & ENC_BIT(kind))) {
			for (kind = 0; kind <= ENC_TRANSFORMER && !(fits & ENC_BIT(kind)); kind++)
				;
			if (kind > ENC_TRANSFORMER)
				return fail(p, 400, "invalid_field", "model.encoder",
				            "no encoder of method \"%s\" suits a %s dataset", m->name, p->format);
		}
	} else if (!(fits & ENC_BIT(kind))) {
		char names[128] = "";
		size_t at = 0;
		for (int k = 0; k <= ENC_TRANSFORMER; k++) {
			if (!(fits & ENC_BIT(k)))
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
	encoder_config_default(ec, (EncoderKind)kind);
	ec->kind = (EncoderKind)kind;
	ec->causal = kind == ENC_TRANSFORMER && m->causal;
	if (!v)
		return 0;
	const char *kname = encoder_kind_name((EncoderKind)kind);
	if ((rc = check_doc_keys(p, v, "model", "model", "encoder", kname)) < 0)
		return rc;
	if ((rc = get_int_array(p, v, "model", "channels", 1, MODEL_MAX_LAYERS, 1, 4096, ec->channels,
	                        &ec->n_channels)) < 0)
		return rc;
	if ((rc = get_int_array(p, v, "model", "hidden", 0, MODEL_MAX_LAYERS, 1, 65536, ec->hidden,
	                        &ec->n_hidden)) < 0)
		return rc;
	if ((rc = get_int(p, v, "model", "out_dim", kind == ENC_MLP ? 1 : 0, 65536, &ec->out_dim)) < 0)
		return rc;
	if ((rc = get_bool(p, v, "model", "batchnorm", &ec->batchnorm)) < 0)
		return rc;
	if ((rc = get_int(p, v, "model", "pool_grid", 1, 8, &ec->pool_grid)) < 0)
		return rc;
	if ((rc = get_int(p, v, "model", "dim", 1, 8192, &ec->dim)) < 0)
		return rc;
	if ((rc = get_int(p, v, "model", "depth", 1, 64, &ec->depth)) < 0)
		return rc;
	if ((rc = get_int(p, v, "model", "heads", 1, 256, &ec->heads)) < 0)
		return rc;
	if ((rc = get_int(p, v, "model", "mlp_ratio", 1, 16, &ec->mlp_ratio)) < 0)
		return rc;
	if ((rc = get_int(p, v, "model", "patch", 1, 28, &ec->patch)) < 0)
		return rc;
	if (rc > 0 && ec->patch != 4 && ec->patch != 7)
		return fail(p, 400, "invalid_field", "model.patch", "must be 4 or 7, got %d", ec->patch);
	if ((rc = get_int(p, v, "model", "context", 1, 65536, &ec->context)) < 0)
		return rc;
	int pool = -1;
	if ((rc = get_enum(p, v, "model", "pool", pool_choices, &pool)) < 0)
		return rc;
	if (rc > 0)
		ec->pool = pool;
	if ((rc = get_float(p, v, "model", "dropout", 0, 0.9, 0, &ec->dropout)) < 0)
		return rc;
	if ((kind == ENC_VIT || kind == ENC_TRANSFORMER) && ec->dim % ec->heads != 0)
		return fail(p, 400, "invalid_field", "model.heads", "must divide model.dim (%d), got %d",
		            ec->dim, ec->heads);
	if (kind == ENC_MLP && ec->n_hidden == 0 && ec->out_dim == 0)
		return fail(p, 400, "invalid_field", "model.out_dim",
		            "an MLP without hidden layers needs out_dim >= 1");
	return 0;
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
				aug_preset(out, i);
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
	KeyRule rules[MAX_RULES];
	int n = 0;
	rules_add(rules, &n, "preset", NULL);
	rules_add(rules, &n, "clamp", NULL);
	for (int i = 0; i < COUNT(aug_transforms); i++)
		rules_add(rules, &n, aug_transforms[i], NULL);
	if ((rc = check_keys(p, v, field, rules, n, NULL, NULL)) < 0)
		return rc;
	int preset = 0;
	if ((rc = get_enum(p, v, field, "preset", preset_choices, &preset)) < 0)
		return rc;
	aug_preset(out, preset);
	if ((rc = get_bool(p, v, field, "clamp", &out->clamp)) < 0)
		return rc;
	AugConfig on;
	aug_enabled_defaults(&on);
	for (int t = 0; t < COUNT(aug_transforms); t++) {
		const char *tn = aug_transforms[t];
		const cJSON *tv = cJSON_GetObjectItemCaseSensitive(v, tn);
		if (!tv)
			continue;
		field_join(f, sizeof f, field, tn);
		if (!cJSON_IsObject(tv))
			return fail(p, 400, "invalid_field", f, "must be an object such as {\"p\": 0.5}, got %s",
			            describe(tv, got, sizeof got));
		KeyRule tr[16];
		int tn_rules = 0;
		for (int i = 0; i < COUNT(aug_keys); i++)
			if (strcmp(aug_keys[i].transform, tn) == 0)
				rules_add(tr, &tn_rules, aug_keys[i].key, NULL);
		if ((rc = check_keys(p, tv, f, tr, tn_rules, NULL, NULL)) < 0)
			return rc;
		/* A transform the preset leaves off starts from its enabled defaults. */
		const AugKey *pk = aug_key_find(tn, "p");
		if (*aug_float(out, pk->off) <= 0.0f) {
			for (int i = 0; i < COUNT(aug_keys); i++) {
				const AugKey *k = &aug_keys[i];
				if (strcmp(k->transform, tn) != 0)
					continue;
				if (k->kind == AK_INT || k->kind == AK_BOOL)
					*aug_int(out, k->off) = *aug_int(&on, k->off);
				else
					*aug_float(out, k->off) = *aug_float(&on, k->off);
				if (k->kind == AK_RANGE)
					*aug_float(out, k->off2) = *aug_float(&on, k->off2);
			}
		}
		for (int i = 0; i < COUNT(aug_keys); i++) {
			const AugKey *k = &aug_keys[i];
			if (strcmp(k->transform, tn) != 0)
				continue;
			switch (k->kind) {
			case AK_PROB:
			case AK_NUM:
				rc = get_float(p, tv, f, k->key, k->lo, k->hi, 0, aug_float(out, k->off));
				break;
			case AK_RANGE:
				rc = get_pair(p, tv, f, k->key, k->lo, k->hi, k->lo_excl, 0,
				              aug_float(out, k->off), aug_float(out, k->off2));
				break;
			case AK_INT:
				rc = get_int(p, tv, f, k->key, k->lo, k->hi, aug_int(out, k->off));
				break;
			case AK_BOOL:
				rc = get_bool(p, tv, f, k->key, aug_int(out, k->off));
				break;
			}
			if (rc < 0)
				return rc;
		}
	}
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
	js->pretrain.epochs = 10;
	js->pretrain.time_budget_s = 0;
	js->pretrain.max_steps = 0;
	js->pretrain.batch_size = 256;
	js->pretrain.warmup_epochs = 1.0f;
	optim_defaults(oc, OPT_ADAMW);
	if (!v)
		return 0;
	if (p->method->views == 0)
		return fail(p, 400, "invalid_field", "pretrain",
		            "method \"%s\" does not pretrain (remove \"pretrain\")", p->method->name);
	if (!cJSON_IsObject(v))
		return fail(p, 400, "invalid_field", "pretrain", "must be an object, got %s",
		            describe(v, got, sizeof got));
	if ((rc = check_doc_keys(p, v, "pretrain", "pretrain", NULL, NULL)) < 0)
		return rc;
	if ((rc = get_int(p, v, "pretrain", "epochs", 0, 100000, &js->pretrain.epochs)) < 0)
		return rc;
	if ((rc = get_num(p, v, "pretrain", "time_budget_s", 0, 0, PARAM_NO_MAX,
	                  &js->pretrain.time_budget_s)) < 0)
		return rc;
	if ((rc = get_i64(p, v, "pretrain", "max_steps", 0, 1e15, &js->pretrain.max_steps)) < 0)
		return rc;
	if ((rc = get_int(p, v, "pretrain", "batch_size", 2, 8192, &js->pretrain.batch_size)) < 0)
		return rc;
	if ((rc = get_float(p, v, "pretrain", "grad_clip", 0, 0, PARAM_NO_MAX, &oc->grad_clip)) < 0)
		return rc;

	const cJSON *o = NULL;
	if ((rc = get_object(p, v, "pretrain", "optimizer", &o)) < 0)
		return rc;
	if (o) {
		const char *F = "pretrain.optimizer";
		int kind = OPT_ADAMW;
		if ((rc = get_enum(p, o, F, "name", optim_choices, &kind)) < 0)
			return rc;
		float clip = oc->grad_clip;
		optim_defaults(oc, (OptimKind)kind);
		oc->grad_clip = clip;
		if ((rc = check_doc_keys(p, o, F, F, "optimizer", optim_names[kind])) < 0)
			return rc;
		if ((rc = get_float(p, o, F, "lr", 0, 0, PARAM_MIN_EXCLUSIVE | PARAM_NO_MAX, &oc->lr)) < 0)
			return rc;
		if ((rc = get_float(p, o, F, "weight_decay", 0, 0, PARAM_NO_MAX, &oc->weight_decay)) < 0)
			return rc;
		if ((rc = get_float(p, o, F, "momentum", 0, 1, PARAM_MAX_EXCLUSIVE, &oc->momentum)) < 0)
			return rc;
		if ((rc = get_bool(p, o, F, "nesterov", &oc->nesterov)) < 0)
			return rc;
		if ((rc = get_pair(p, o, F, "betas", 0, 1, 0, PARAM_MAX_EXCLUSIVE, &oc->beta1, &oc->beta2)) < 0)
			return rc;
		if ((rc = get_float(p, o, F, "eps", 0, 0, PARAM_MIN_EXCLUSIVE | PARAM_NO_MAX, &oc->eps)) < 0)
			return rc;
		if ((rc = get_float(p, o, F, "trust_coef", 0, 0, PARAM_MIN_EXCLUSIVE | PARAM_NO_MAX,
		                    &oc->trust_coef)) < 0)
			return rc;
	}
	const cJSON *s = NULL;
	if ((rc = get_object(p, v, "pretrain", "schedule", &s)) < 0)
		return rc;
	if (s) {
		const char *F = "pretrain.schedule";
		if ((rc = check_doc_keys(p, s, F, F, NULL, NULL)) < 0)
			return rc;
		int sched = 1;
		if ((rc = get_enum(p, s, F, "name", schedule_choices, &sched)) < 0)
			return rc;
		oc->schedule = sched == 0 ? SCHED_CONSTANT : SCHED_COSINE;
		if ((rc = get_float(p, s, F, "warmup_epochs", 0, 100000, 0, &js->pretrain.warmup_epochs)) < 0)
			return rc;
		if ((rc = get_float(p, s, F, "min_lr", 0, 0, PARAM_NO_MAX, &oc->min_lr)) < 0)
			return rc;
		if (oc->min_lr > oc->lr)
			return fail(p, 400, "invalid_field", "pretrain.schedule.min_lr",
			            "must be <= pretrain.optimizer.lr (%g), got %g", (double)oc->lr,
			            (double)oc->min_lr);
	}
	_Static_assert(SCHED_CONSTANT != SCHED_COSINE, "two schedules");
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* evaluations                                                                                    */

static const char *const common_eval_keys[] = { "protocol", "label_fractions", "labels_per_class",
                                                "label_rule" };

static int parse_eval(Parser *p, const cJSON *v, int index, EvalSpec *e)
{
	char F[64], f[128], got[96];
	int rc;
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
	/* Keys: the common ones, this protocol's, and (rejected with a hint) other protocols'. */
	KeyRule rules[MAX_RULES];
	int n = 0;
	for (int i = 0; i < COUNT(common_eval_keys); i++)
		rules_add(rules, &n, common_eval_keys[i], NULL);
	for (int i = 0; i < np; i++) {
		const ProtocolInfo *q = protocol_catalog_at(i);
		for (int k = 0; k < q->n_keys; k++)
			rules_add(rules, &n, q->keys[k].name, q->name);
	}
	if ((rc = check_keys(p, v, F, rules, n, "protocol", pi->name)) < 0)
		return rc;

	eval_config_default(e, pi->protocol);   /* the protocol's defaults, from its key table */
	if (pi->needs_labels && !p->labelled)
		return fail(p, 400, "invalid_field", f,
		            "\"%s\" needs labels, but the %s dataset is unlabelled", pi->name, p->format);
	e->fractions[0] = 1.0;
	e->n_fractions = 1;
	ParamDef fd = { .name = "label_fractions", .type = PARAM_NUMBER, .min = 0, .max = 1,
	                .flags = PARAM_MIN_EXCLUSIVE };
	if ((rc = get_num_array(p, v, F, &fd, 1, JOBSPEC_MAX_FRACTIONS, e->fractions,
	                        &e->n_fractions)) < 0)
		return rc;
	int have_fractions = rc > 0;
	if ((rc = get_int(p, v, F, "labels_per_class", 1, 1000000, &e->labels_per_class)) < 0)
		return rc;
	if (rc > 0 && have_fractions) {
		field_join(f, sizeof f, F, "labels_per_class");
		return fail(p, 400, "invalid_field", f,
		            "give either label_fractions or labels_per_class, not both");
	}
	int rule = 0;
	if ((rc = get_enum(p, v, F, "label_rule", label_rule_choices, &rule)) < 0)
		return rc;
	e->label_rule = rule == 1 ? LABELS_RANDOM : LABELS_FIRST;
	for (int k = 0; k < pi->n_keys; k++) {
		const ParamDef *d = &pi->keys[k];
		double x = 0;
		const char *s = NULL;
		if ((rc = get_value(p, v, F, d, &x, &s)) < 0)
			return rc;
		if (rc > 0 && param_store(d, e, x, s) < 0)
			return fail(p, 500, "internal", F, "protocol key \"%s\" cannot be stored", d->name);
	}
	return 0;
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
	int i = 0;
	for (const cJSON *e = v->child; e; e = e->next, i++) {
		int rc = parse_eval(p, e, i, &js->evals[i]);
		if (rc < 0)
			return rc;
	}
	js->n_evals = n;
	return 0;
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

static int parse_root(Parser *p, const cJSON *root)
{
	JobSpec *js = p->js;
	char got[96];
	int rc;
	if ((rc = check_doc_keys(p, root, "", "", NULL, NULL)) < 0)
		return rc;

	/* method first: params, model and evaluations depend on it. */
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
	if (!(js->method = own(p, p->method->name)))
		return oom(p, "method");

	const char *name = NULL;
	if ((rc = get_string(p, root, "", "name", 100, &name)) < 0)
		return rc;
	if (name && !valid_name(name))
		return fail(p, 400, "invalid_field", "name",
		            "must be 1..100 characters of A-Z a-z 0-9 . _ - and space, got \"%.60s\"", name);

	if ((rc = parse_dataset(p, cJSON_GetObjectItemCaseSensitive(root, "dataset"))) < 0)
		return rc;
	if (!(p->method->datasets & p->modality)) {
		char acc[64], mine[32];
		return fail(p, 400, "invalid_field", "dataset",
		            "method \"%s\" works on %s; the %s dataset holds %s", p->method->name,
		            catalog_data_names(p->method->datasets, acc, sizeof acc), p->format,
		            catalog_data_names(p->modality, mine, sizeof mine));
	}
	if (p->method->needs_labels && !p->labelled)
		return fail(p, 400, "invalid_field", "dataset",
		            "method \"%s\" needs labels, but the %s dataset is unlabelled", p->method->name,
		            p->format);
	if ((rc = parse_params(p, cJSON_GetObjectItemCaseSensitive(root, "params"))) < 0)
		return rc;
	if ((rc = parse_model(p, cJSON_GetObjectItemCaseSensitive(root, "model"))) < 0)
		return rc;
	if (js->dataset.kind == DATASET_TEXT_RECORDS && js->encoder.kind == ENC_TRANSFORMER &&
	    js->dataset.max_record_bytes > js->encoder.context)
		return fail(p, 400, "invalid_field", "dataset.record_bytes",
		            "must be <= model.context (%d), got %d", js->encoder.context,
		            js->dataset.max_record_bytes);

	/* augment, augment2 */
	const cJSON *a1 = cJSON_GetObjectItemCaseSensitive(root, "augment");
	const cJSON *a2 = cJSON_GetObjectItemCaseSensitive(root, "augment2");
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
	aug_preset(&js->augment[0], preset);
	if (a1 && (rc = parse_augment(p, a1, "augment", &js->augment[0])) < 0)
		return rc;
	js->augment[1] = js->augment[0];
	if (a2 && (rc = parse_augment(p, a2, "augment2", &js->augment[1])) < 0)
		return rc;
	if (p->modality == DATA_TEXT && (a1 || a2)) {
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

	if ((rc = parse_pretrain(p, cJSON_GetObjectItemCaseSensitive(root, "pretrain"))) < 0)
		return rc;
	if ((rc = parse_evaluations(p, cJSON_GetObjectItemCaseSensitive(root, "evaluations"))) < 0)
		return rc;

	double seed = 0;
	ParamDef sd = { .name = "seed", .type = PARAM_INTEGER, .min = 0, .max = 9007199254740992.0 };
	const char *unused = NULL;
	if ((rc = get_value(p, root, "", &sd, &seed, &unused)) < 0)
		return rc;
	js->seed = (uint64_t)seed;
	js->threads = 2;
	if ((rc = get_int(p, root, "", "threads", 1, 64, &js->threads)) < 0)
		return rc;
	js->checkpoint_interval_s = 120;
	if ((rc = get_num(p, root, "", "checkpoint_interval_s", 1, 0, PARAM_NO_MAX,
	                  &js->checkpoint_interval_s)) < 0)
		return rc;
	js->priority = 0;
	if ((rc = get_int(p, root, "", "priority", -100, 100, &js->priority)) < 0)
		return rc;

	const cJSON *init = cJSON_GetObjectItemCaseSensitive(root, "init_from");
	if (init) {
		if (cJSON_IsNumber(init)) {
			if ((rc = get_i64(p, root, "", "init_from", 1, 9007199254740992.0, &js->init_from_job)) < 0)
				return rc;
		} else if (cJSON_IsString(init)) {
			const char *path = NULL;
			if ((rc = check_path(p, "init_from", init->valuestring, 0, "checkpoint_not_found",
			                     &path)) < 0)
				return rc;
			js->init_from = (char *)path;
		} else {
			return fail(p, 400, "invalid_field", "init_from",
			            "must be a checkpoint path or a job id, got %s", describe(init, got, sizeof got));
		}
	}

	if (name) {
		js->name = own(p, name);
	} else {
		char def[128];
		snprintf(def, sizeof def, "%s-%s", js->method, p->format);
		js->name = own(p, def);
	}
	if (!js->name)
		return oom(p, "name");

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

int jobspec_parse(const char *json, size_t len, const JobSpecOptions *opts, JobSpec **out,
                  SpecError *err)
{
	SpecError scratch;
	static const JobSpecOptions defaults = { .check_files = 1 };
	if (!err)
		err = &scratch;
	memset(err, 0, sizeof *err);
	if (out)
		*out = NULL;
	if (!opts)
		opts = &defaults;
	Parser p = { .opts = opts, .err = err };
	if (!json) {
		return fail(&p, 400, "invalid_json", "", "no job spec given");
	}
	int rc = prescan(json, len, err);
	if (rc < 0)
		return rc;
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
	if (rc < 0) {
		jobspec_free(&o->js);
		return rc;
	}
	if (out)
		*out = &o->js;
	else
		jobspec_free(&o->js);
	return 0;
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

/* ---------------------------------------------------------------------------------------------- */
/* Numbers for output: a float as the shortest decimal that reads back as the same float.       */

static double f2d(float f)
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

static cJSON *param_def_json(const ParamDef *d)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "name", d->name);
	cJSON_AddStringToObject(o, "type", catalog_param_type_name(d->type));
	switch (d->type) {
	case PARAM_BOOLEAN: cJSON_AddBoolToObject(o, "default", d->def != 0); break;
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
	static const char *const n[] = { "images", "vectors", "text", "captions" };
	return i >= 0 && i < 4 ? n[i] : "?";
}

static const char *enc_name(int i)
{
	return encoder_kind_name((EncoderKind)i);
}

/* Default of a model.* key for the first encoder it applies to, from the engine's defaults. */
static cJSON *model_default_json(const char *leaf, const char *only)
{
	EncoderKind kind = ENC_CNN;
	if (only) {
		char first[32];
		snprintf(first, sizeof first, "%s", only);
		char *bar = strchr(first, '|');
		if (bar)
			*bar = '\0';
		int k = choice_index(encoder_choices, first);
		if (k >= 0)
			kind = (EncoderKind)k;
	}
	EncoderConfig c;
	encoder_config_default(&c, kind);
	if (strcmp(leaf, "channels") == 0)
		return cJSON_CreateIntArray(c.channels, c.n_channels);
	if (strcmp(leaf, "hidden") == 0)
		return cJSON_CreateIntArray(c.hidden, c.n_hidden);
	if (strcmp(leaf, "out_dim") == 0) {
		/* differs per encoder: show both when they differ */
		EncoderConfig m;
		encoder_config_default(&m, ENC_MLP);
		return cJSON_CreateNumber(kind == ENC_MLP ? m.out_dim : c.out_dim);
	}
	if (strcmp(leaf, "batchnorm") == 0) return cJSON_CreateBool(c.batchnorm);
	if (strcmp(leaf, "pool_grid") == 0) return cJSON_CreateNumber(c.pool_grid > 1 ? c.pool_grid : 1);
	if (strcmp(leaf, "dim") == 0) return cJSON_CreateNumber(c.dim);
	if (strcmp(leaf, "depth") == 0) return cJSON_CreateNumber(c.depth);
	if (strcmp(leaf, "heads") == 0) return cJSON_CreateNumber(c.heads);
	if (strcmp(leaf, "patch") == 0) return cJSON_CreateNumber(c.patch);
	if (strcmp(leaf, "mlp_ratio") == 0) return cJSON_CreateNumber(c.mlp_ratio);
	if (strcmp(leaf, "context") == 0) return cJSON_CreateNumber(c.context);
	if (strcmp(leaf, "pool") == 0) return cJSON_CreateString(c.pool ? "cls" : "mean");
	if (strcmp(leaf, "dropout") == 0) return cJSON_CreateNumber(f2d(c.dropout));
	return cJSON_CreateNull();
}

static cJSON *aug_key_default_json(const AugKey *k)
{
	AugConfig on;
	aug_enabled_defaults(&on);
	switch (k->kind) {
	case AK_RANGE: {
		cJSON *a = cJSON_CreateArray();
		cJSON_AddItemToArray(a, cJSON_CreateNumber(f2d(*aug_float(&on, k->off))));
		cJSON_AddItemToArray(a, cJSON_CreateNumber(f2d(*aug_float(&on, k->off2))));
		return a;
	}
	case AK_INT: return cJSON_CreateNumber(*aug_int(&on, k->off));
	case AK_BOOL: return cJSON_CreateBool(*aug_int(&on, k->off));
	default: return cJSON_CreateNumber(f2d(*aug_float(&on, k->off)));
	}
}

static const char *aug_key_type(const AugKey *k)
{
	switch (k->kind) {
	case AK_RANGE: return "array<number>";
	case AK_INT: return "integer";
	case AK_BOOL: return "boolean";
	default: return "number";
	}
}

static void add_spec_key(cJSON *arr, const char *path, const char *type, cJSON *def,
                         const char *only, const char *help)
{
	cJSON *o = cJSON_CreateObject();
	if (!o) {
		cJSON_Delete(def);
		return;
	}
	cJSON_AddStringToObject(o, "path", path);
	cJSON_AddStringToObject(o, "type", type);
	cJSON_AddItemToObject(o, "default", def ? def : cJSON_CreateNull());
	const char *choices = NULL;
	for (int i = 0; i < COUNT(key_choices); i++)
		if (strcmp(key_choices[i].path, path) == 0)
			choices = key_choices[i].choices;
	if (choices || strcmp(path, "method") == 0 || strcmp(path, "evaluations[].protocol") == 0) {
		cJSON *a = cJSON_AddArrayToObject(o, "enum");
		if (choices) {
			char buf[256];
			snprintf(buf, sizeof buf, "%s", choices);
			char *save = NULL;
			for (char *c = strtok_r(buf, "|", &save); c; c = strtok_r(NULL, "|", &save))
				cJSON_AddItemToArray(a, cJSON_CreateString(c));
		} else if (path[0] == 'm') {
			for (int i = 0; i < method_catalog_count(); i++)
				cJSON_AddItemToArray(a, cJSON_CreateString(method_catalog_at(i)->name));
		} else {
			for (int i = 0; i < protocol_catalog_count(); i++)
				cJSON_AddItemToArray(a, cJSON_CreateString(protocol_catalog_at(i)->name));
		}
	}
	if (only) {
		cJSON *a = cJSON_AddArrayToObject(o, "only");
		char buf[128];
		snprintf(buf, sizeof buf, "%s", only);
		char *save = NULL;
		for (char *c = strtok_r(buf, "|", &save); c; c = strtok_r(NULL, "|", &save))
			cJSON_AddItemToArray(a, cJSON_CreateString(c));
	}
	cJSON_AddStringToObject(o, "help", help);
	cJSON_AddItemToArray(arr, o);
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
		cJSON_AddItemToObject(o, "encoders", mask_names_json(m->encoders ? m->encoders : 0xfu, 4,
		                                                     enc_name));
		cJSON_AddItemToObject(o, "datasets", mask_names_json(m->datasets, 4, data_name));
		cJSON_AddNumberToObject(o, "views", m->views);
		cJSON_AddBoolToObject(o, "needs_labels", m->needs_labels);
		cJSON_AddStringToObject(o, "default_augment", m->default_augment ? m->default_augment : "none");
		cJSON *ps = cJSON_AddArrayToObject(o, "params");
		for (int k = 0; k < method_param_count(m); k++)
			cJSON_AddItemToArray(ps, param_def_json(&m->params[k]));
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
			cJSON_AddItemToArray(ks, param_def_json(&pi->keys[k]));
		cJSON_AddItemToArray(ps, o);
	}
	cJSON *sk = cJSON_AddArrayToObject(root, "spec_keys");
	for (int i = 0; i < COUNT(key_docs); i++) {
		const KeyDoc *k = &key_docs[i];
		cJSON *def = NULL;
		if (k->def)
			def = cJSON_Parse(k->def);
		else if (strncmp(k->path, "model.", 6) == 0)
			def = model_default_json(k->path + 6, k->only);
		add_spec_key(sk, k->path, k->type, def, k->only, k->help);
		if (strcmp(k->path, "augment2") == 0) {
			/* The augmentation keys right after augment / augment2. */
			add_spec_key(sk, "augment.preset", "enum", cJSON_CreateString("none"), NULL,
			             "object form: the preset the listed transforms modify");
			add_spec_key(sk, "augment.clamp", "boolean", cJSON_CreateBool(1), NULL,
			             "clamp augmented pixels to [0, 1]");
			for (int a = 0; a < COUNT(aug_keys); a++) {
				char path[96];
				snprintf(path, sizeof path, "augment.%s.%s", aug_keys[a].transform, aug_keys[a].key);
				add_spec_key(sk, path, aug_key_type(&aug_keys[a]), aug_key_default_json(&aug_keys[a]),
				             NULL, aug_keys[a].help);
			}
		}
	}
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
		fprintf(f, "  datasets: %s; default encoder: %s; views: %d; default augment: %s\n",
		        catalog_data_names(m->datasets, data, sizeof data),
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
	fflush(f);
	return ferror(f) ? -EIO : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The resolved spec as JSON (every default explicit; parses back to the same JobSpec)           */

static void add_f(cJSON *o, const char *key, float v)
{
	cJSON_AddNumberToObject(o, key, f2d(v));
}

static cJSON *dataset_json(const JobSpec *js)
{
	const DatasetSpec *ds = &js->dataset;
	cJSON *o = cJSON_CreateObject();
	static const char *const fmts[] = { "fashion-mnist", "idx", "csv", "text", "text_records",
	                                    "captions" };
	switch (ds->kind) {
	case DATASET_FASHION_MNIST:
		if (!ds->dir && !ds->limit_train && !ds->limit_test) {
			cJSON_Delete(o);
			return cJSON_CreateString(js->dataset_name ? js->dataset_name : "fashion-mnist");
		}
		cJSON_AddStringToObject(o, "name", js->dataset_name ? js->dataset_name : "fashion-mnist");
		if (ds->dir)
			cJSON_AddStringToObject(o, "dir", ds->dir);
		break;
	case DATASET_IDX:
		cJSON_AddStringToObject(o, "format", fmts[ds->kind]);
		cJSON_AddStringToObject(o, "train_images", ds->train_images);
		cJSON_AddStringToObject(o, "train_labels", ds->train_labels);
		cJSON_AddStringToObject(o, "test_images", ds->test_images);
		cJSON_AddStringToObject(o, "test_labels", ds->test_labels);
		break;
	case DATASET_CSV:
		cJSON_AddStringToObject(o, "format", fmts[ds->kind]);
		cJSON_AddStringToObject(o, "train", ds->csv_train);
		if (ds->csv_test)
			cJSON_AddStringToObject(o, "test", ds->csv_test);
		else
			add_f(o, "test_fraction", ds->test_fraction);
		cJSON_AddNumberToObject(o, "label_column", ds->csv_label_column);
		if (ds->csv_header < 0)
			cJSON_AddStringToObject(o, "header", "auto");
		else
			cJSON_AddBoolToObject(o, "header", ds->csv_header);
		break;
	case DATASET_TEXT:
	case DATASET_TEXT_RECORDS: {
		cJSON_AddStringToObject(o, "format", fmts[ds->kind]);
		cJSON *a = cJSON_AddArrayToObject(o, "files");
		for (int i = 0; i < ds->n_text_files; i++)
			cJSON_AddItemToArray(a, cJSON_CreateString(ds->text_files[i]));
		add_f(o, "test_fraction", ds->test_fraction);
		if (ds->kind == DATASET_TEXT_RECORDS) {
			cJSON_AddNumberToObject(o, "record_bytes", ds->max_record_bytes);
			cJSON_AddStringToObject(o, "records", ds->text_label_field ? "tsv" : "percent");
		}
		break;
	}
	case DATASET_CAPTIONS:
		cJSON_AddStringToObject(o, "format", fmts[ds->kind]);
		if (ds->captions_file)
			cJSON_AddStringToObject(o, "file", ds->captions_file);
		if (ds->dir)
			cJSON_AddStringToObject(o, "dir", ds->dir);
		break;
	}
	cJSON_AddNumberToObject(o, "limit_train", ds->limit_train);
	cJSON_AddNumberToObject(o, "limit_test", ds->limit_test);
	return o;
}

static cJSON *model_json(const EncoderConfig *c)
{
	cJSON *o = cJSON_CreateObject();
	const char *kn = encoder_kind_name(c->kind);
	cJSON_AddStringToObject(o, "encoder", kn);
	for (int i = 0; i < COUNT(key_docs); i++) {
		const KeyDoc *k = &key_docs[i];
		if (strncmp(k->path, "model.", 6) != 0 || strcmp(k->path, "model.encoder") == 0)
			continue;
		if (k->only && !in_list(k->only, kn))
			continue;
		const char *leaf = k->path + 6;
		if (strcmp(leaf, "channels") == 0)
			cJSON_AddItemToObject(o, leaf, cJSON_CreateIntArray(c->channels, c->n_channels));
		else if (strcmp(leaf, "hidden") == 0)
			cJSON_AddItemToObject(o, leaf, cJSON_CreateIntArray(c->hidden, c->n_hidden));
		else if (strcmp(leaf, "out_dim") == 0) cJSON_AddNumberToObject(o, leaf, c->out_dim);
		else if (strcmp(leaf, "batchnorm") == 0) cJSON_AddBoolToObject(o, leaf, c->batchnorm);
		else if (strcmp(leaf, "pool_grid") == 0)
			cJSON_AddNumberToObject(o, leaf, c->pool_grid > 1 ? c->pool_grid : 1);
		else if (strcmp(leaf, "dim") == 0) cJSON_AddNumberToObject(o, leaf, c->dim);
		else if (strcmp(leaf, "depth") == 0) cJSON_AddNumberToObject(o, leaf, c->depth);
		else if (strcmp(leaf, "heads") == 0) cJSON_AddNumberToObject(o, leaf, c->heads);
		else if (strcmp(leaf, "patch") == 0) cJSON_AddNumberToObject(o, leaf, c->patch);
		else if (strcmp(leaf, "mlp_ratio") == 0) cJSON_AddNumberToObject(o, leaf, c->mlp_ratio);
		else if (strcmp(leaf, "context") == 0) cJSON_AddNumberToObject(o, leaf, c->context);
		else if (strcmp(leaf, "pool") == 0) cJSON_AddStringToObject(o, leaf, c->pool ? "cls" : "mean");
		else if (strcmp(leaf, "dropout") == 0) add_f(o, leaf, c->dropout);
	}
	return o;
}

static cJSON *augment_json(const AugConfig *c)
{
	AugConfig cc = *c;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "preset", "none");
	cJSON_AddBoolToObject(o, "clamp", c->clamp);
	for (int t = 0; t < COUNT(aug_transforms); t++) {
		const AugKey *pk = aug_key_find(aug_transforms[t], "p");
		if (*aug_float(&cc, pk->off) <= 0.0f)
			continue;
		cJSON *to = cJSON_AddObjectToObject(o, aug_transforms[t]);
		for (int i = 0; i < COUNT(aug_keys); i++) {
			const AugKey *k = &aug_keys[i];
			if (strcmp(k->transform, aug_transforms[t]) != 0)
				continue;
			switch (k->kind) {
			case AK_RANGE: {
				cJSON *a = cJSON_AddArrayToObject(to, k->key);
				cJSON_AddItemToArray(a, cJSON_CreateNumber(f2d(*aug_float(&cc, k->off))));
				cJSON_AddItemToArray(a, cJSON_CreateNumber(f2d(*aug_float(&cc, k->off2))));
				break;
			}
			case AK_INT: cJSON_AddNumberToObject(to, k->key, *aug_int(&cc, k->off)); break;
			case AK_BOOL: cJSON_AddBoolToObject(to, k->key, *aug_int(&cc, k->off)); break;
			default: add_f(to, k->key, *aug_float(&cc, k->off)); break;
			}
		}
	}
	return o;
}

static cJSON *pretrain_json(const JobSpec *js)
{
	const OptimConfig *c = &js->pretrain.optim;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "epochs", js->pretrain.epochs);
	cJSON_AddNumberToObject(o, "time_budget_s", js->pretrain.time_budget_s);
	cJSON_AddNumberToObject(o, "max_steps", (double)js->pretrain.max_steps);
	cJSON_AddNumberToObject(o, "batch_size", js->pretrain.batch_size);
	add_f(o, "grad_clip", c->grad_clip);
	cJSON *op = cJSON_AddObjectToObject(o, "optimizer");
	const char *on = optim_names[c->kind];
	cJSON_AddStringToObject(op, "name", on);
	add_f(op, "lr", c->lr);
	add_f(op, "weight_decay", c->weight_decay);
	if (c->kind != OPT_ADAMW)
		add_f(op, "momentum", c->momentum);
	if (c->kind == OPT_SGD)
		cJSON_AddBoolToObject(op, "nesterov", c->nesterov);
	if (c->kind == OPT_ADAMW) {
		cJSON *b = cJSON_AddArrayToObject(op, "betas");
		cJSON_AddItemToArray(b, cJSON_CreateNumber(f2d(c->beta1)));
		cJSON_AddItemToArray(b, cJSON_CreateNumber(f2d(c->beta2)));
		add_f(op, "eps", c->eps);
	}
	if (c->kind == OPT_LARS)
		add_f(op, "trust_coef", c->trust_coef);
	cJSON *s = cJSON_AddObjectToObject(o, "schedule");
	cJSON_AddStringToObject(s, "name", c->schedule == SCHED_CONSTANT ? "constant" : "cosine");
	add_f(s, "warmup_epochs", js->pretrain.warmup_epochs);
	add_f(s, "min_lr", c->min_lr);
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
	case PARAM_STRING:
	case PARAM_ENUM: cJSON_AddStringToObject(o, d->name, text ? text : ""); break;
	case PARAM_NUMBER:
		if (d->size == sizeof(float))
			add_f(o, d->name, (float)x);
		else
			cJSON_AddNumberToObject(o, d->name, x);
		break;
	case PARAM_INTEGER: cJSON_AddNumberToObject(o, d->name, x); break;
	}
}

static cJSON *eval_json(const EvalSpec *e)
{
	const ProtocolInfo *pi = protocol_catalog_get(e->protocol);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "protocol", pi ? pi->name : "?");
	if (e->labels_per_class > 0) {
		cJSON_AddNumberToObject(o, "labels_per_class", e->labels_per_class);
	} else {
		cJSON *a = cJSON_AddArrayToObject(o, "label_fractions");
		for (int i = 0; i < e->n_fractions; i++)
			cJSON_AddItemToArray(a, cJSON_CreateNumber(e->fractions[i]));
	}
	cJSON_AddStringToObject(o, "label_rule", e->label_rule == LABELS_RANDOM ? "random" : "first");
	for (int k = 0; pi && k < pi->n_keys; k++)
		param_json(o, &pi->keys[k], e);
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
	cJSON_AddItemToObject(o, "model", model_json(&js->encoder));
	if (m->views > 0)
		cJSON_AddItemToObject(o, "augment", augment_json(&js->augment[0]));
	if (m->views > 1)
		cJSON_AddItemToObject(o, "augment2", augment_json(&js->augment[1]));
	if (m->views > 0)
		cJSON_AddItemToObject(o, "pretrain", pretrain_json(js));
	cJSON *ev = cJSON_AddArrayToObject(o, "evaluations");
	for (int i = 0; i < js->n_evals; i++)
		cJSON_AddItemToArray(ev, eval_json(&js->evals[i]));
	cJSON_AddNumberToObject(o, "seed", (double)js->seed);
	cJSON_AddNumberToObject(o, "threads", js->threads);
	cJSON_AddNumberToObject(o, "checkpoint_interval_s", js->checkpoint_interval_s);
	if (js->init_from)
		cJSON_AddStringToObject(o, "init_from", js->init_from);
	else if (js->init_from_job > 0)
		cJSON_AddNumberToObject(o, "init_from", (double)js->init_from_job);
	cJSON_AddNumberToObject(o, "priority", js->priority);
	char *s = cJSON_Print(o);
	cJSON_Delete(o);
	return s;
}
