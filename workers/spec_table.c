/* spec_table.c - the rows of the job spec (see spec_table.h) and the small walks every user of
 * the table shares: finding a row, its slot in a JobSpec, a level's defaults.
 *
 * Defaults that the engine owns (encoder shapes, optimizer constants, the parameters of an enabled
 * augmentation) are not copied here: those rows say SPEC_DEF_ENGINE and the value is read from the
 * engine's default struct. Rows carry their own default only where the service's differs or where
 * no engine struct exists (pretrain length, evaluations, the top-level scalars).
 */
#include "spec_table.h"

#include <float.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../engine/data/format.h"
#include "../engine/encoders/encoder.h"
#include "method_catalog.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define JOB(m) .base = SPEC_BASE_JOB, .off = offsetof(JobSpec, m)
#define JOB2(m, m2) .base = SPEC_BASE_JOB, .off = offsetof(JobSpec, m), .off2 = offsetof(JobSpec, m2)
#define EVAL(m) .base = SPEC_BASE_EVAL, .off = offsetof(EvalSpec, m)
#define AUG(m) .base = SPEC_BASE_AUG, .off = offsetof(AugConfig, m)
#define AUG2(m, m2) .base = SPEC_BASE_AUG, .off = offsetof(AugConfig, m), .off2 = offsetof(AugConfig, m2)
#define NOMAX .flags = PARAM_NO_MAX
#define ENGINE SPEC_DEF_ENGINE

_Static_assert(sizeof(EncoderKind) == sizeof(int) && sizeof(OptimKind) == sizeof(int) &&
               sizeof(ScheduleKind) == sizeof(int) && sizeof(LabelRule) == sizeof(int),
               "enum keys are stored as int");
_Static_assert(OPT_SGD == 0 && OPT_ADAMW == 1 && OPT_LARS == 2, "optimizer choices follow OptimKind");
_Static_assert(SCHED_CONSTANT == 0 && SCHED_COSINE == 1, "schedule choices follow ScheduleKind");
_Static_assert(LABELS_FIRST == 0 && LABELS_RANDOM == 1, "label_rule choices follow LabelRule");

static const SpecKey head_keys[] = {
	/* ---- the document ---- */
	{ "$schema", SPEC_STRING, .flags = SPEC_DEF_NONE | SPEC_HAND_PARSED, .max = 4096,
	  .help = "ignored: the JSON Schema an editor checks the file against (ssld schema)" },
	{ "name", SPEC_STRING, JOB(name), .max = 100, .flags = SPEC_DEF_NONE,
	  .def_text = "<method>-<dataset>",
	  .help = "job name, 1..100 characters of A-Z a-z 0-9 . _ - and space" },
	{ "method", SPEC_ENUM, .flags = SPEC_REQUIRED | SPEC_HAND_PARSED | SPEC_DEF_NONE,
	  .help = "the pretext method (see methods), or \"none\"" },
	{ "params", SPEC_CUSTOM, .json_type = "object", .flags = SPEC_HAND_PARSED | SPEC_DEF_NONE,
	  .def_text = "the method's defaults", .help = "method parameters (see methods[].params)" },
	{ "dataset", SPEC_CUSTOM, .json_type = "string|object", .def_str = "\"fashion-mnist\"",
	  .flags = SPEC_HAND_PARSED, .help = "a named dataset, or an object with \"name\" or \"format\"" },
	{ "model", SPEC_OBJECT, .help = "the encoder architecture" },
	{ "augment", SPEC_CUSTOM, .json_type = "string|object", .flags = SPEC_HAND_PARSED | SPEC_DEF_NONE,
	  .def_text = "the method's preset",
	  .help = "augmentations of view 1: a preset (\"none\", \"simclr\", \"light\") or an object" },
	{ "augment2", SPEC_CUSTOM, .json_type = "string|object", .flags = SPEC_HAND_PARSED | SPEC_DEF_NONE,
	  .def_text = "the same as augment",
	  .help = "augmentations of view 2 (two-view methods): a preset or an object" },
	{ "pretrain", SPEC_OBJECT, .help = "pretraining loop: length, batch, optimizer, schedule" },
	{ "evaluations", SPEC_CUSTOM, .json_type = "array", .def_str = "[]", .flags = SPEC_HAND_PARSED,
	  .max_n = JOBSPEC_MAX_EVALS, .help = "downstream evaluations (at most 16), see protocols" },
	{ "random_init_baseline", SPEC_BOOL, JOB(random_init_baseline), .def = 1,
	  .help = "with evaluations of a trained encoder, also run the random_init probe at the "
	          "smallest label fraction (the headline's floor); false = skip it" },
	{ "embedding_map", SPEC_OBJECT, .flags = SPEC_DEF_NONE, .def_text = "none (absent: no map)",
	  .help = "after the evaluations, a 2-D t-SNE map of test embeddings with 8 nearest neighbours "
	          "each (artifacts embedding_map.json and, for images, embedding_map_sprite.png); "
	          "{} maps with the defaults" },
	{ "distributed", SPEC_OBJECT, .flags = SPEC_DEF_NONE, .def_text = "none (absent: one process)",
	  .help = "run the job data-parallel over MPI ranks under mpirun (an ssld built with MPI); "
	          "pretrain.batch_size is the global batch, split evenly over the ranks" },
	{ "seed", SPEC_U64, JOB(seed), .def = 0, .min = 0, .max = 9007199254740992.0,
	  .help = "random seed (>= 0): same seed, same run" },
	{ "threads", SPEC_INT, JOB(threads), .def = 2, .min = 1, .max = 64,
	  .help = "BLAS and augmentation threads, 1..64" },
	{ "checkpoint_interval_s", SPEC_DOUBLE, JOB(checkpoint_interval_s), .def = 120, .min = 1, NOMAX,
	  .help = "seconds between checkpoints, >= 1" },
	{ "init_from", SPEC_CUSTOM, .json_type = "string|integer", .flags = SPEC_HAND_PARSED | SPEC_DEF_NONE,
	  .min = 1, .max = 9007199254740992.0, .def_text = "none",
	  .help = "start from a checkpoint: a .safetensors path or a job id" },
	{ "priority", SPEC_INT, JOB(priority), .def = 0, .min = -100, .max = 100,
	  .help = "queue priority -100..100, higher runs first" },

};

/* The keys every dataset format shares; each format's own keys come from the format registry
 * (engine/data/format_registry.c) and are placed before these. */
static const SpecKey dataset_common[] = {
	{ "dataset.limit_train", SPEC_INT, JOB(dataset.limit_train), .def = 0, .min = 0, .max = 2147483647,
	  .help = "keep only the first N training samples, 0 = all" },
	{ "dataset.limit_test", SPEC_INT, JOB(dataset.limit_test), .def = 0, .min = 0, .max = 2147483647,
	  .help = "keep only the first N test samples, 0 = all" },
};

static const SpecKey tail_keys[] = {
	/* ---- model (variant: the encoder): the rows after model.encoder are generated from the
	 *      encoder registry (engine/encoders/), each encoder's keys with its defaults ---- */
	{ "model.encoder", SPEC_ENUM, JOB(encoder.kind), .flags = SPEC_HAND_PARSED | SPEC_DEF_NONE,
	  .def_text = NULL /* the method's, or the data's natural one: built from the registry */,
	  .help = "the encoder architecture" },

	/* ---- pretrain ---- */
	{ "pretrain.epochs", SPEC_INT, JOB(pretrain.epochs), .def = 10, .min = 0, .max = 100000,
	  .help = "passes over the training split, >= 0" },
	{ "pretrain.time_budget_s", SPEC_DOUBLE, JOB(pretrain.time_budget_s), .def = 0, .min = 0, NOMAX,
	  .help = "stop pretraining after this wall time, 0 = none" },
	{ "pretrain.max_steps", SPEC_I64, JOB(pretrain.max_steps), .def = 0, .min = 0, .max = 1e15,
	  .help = "stop after this many steps, 0 = none" },
	{ "pretrain.batch_size", SPEC_INT, JOB(pretrain.batch_size), .def = 256, .min = 2, .max = 8192,
	  .help = "samples per step, 2..8192" },
	{ "pretrain.optimizer", SPEC_OBJECT, .help = "optimizer (name adamw, sgd or lars)" },
	{ "pretrain.schedule", SPEC_OBJECT, .help = "learning-rate schedule" },
	{ "pretrain.grad_clip", SPEC_FLOAT, JOB(pretrain.optim.grad_clip), .def = 0, .min = 0, NOMAX,
	  .help = "global gradient-norm clip, 0 = off" },
	{ "pretrain.optimizer.name", SPEC_ENUM, JOB(pretrain.optim.kind), .choices = "sgd|adamw|lars",
	  .def_str = "adamw", .flags = SPEC_HAND_PARSED, .help = "adamw, sgd or lars" },
	{ "pretrain.optimizer.lr", SPEC_FLOAT, JOB(pretrain.optim.lr), .min = 0,
	  .flags = ENGINE | PARAM_MIN_EXCLUSIVE | PARAM_NO_MAX, .help = "peak learning rate, > 0" },
	{ "pretrain.optimizer.weight_decay", SPEC_FLOAT, JOB(pretrain.optim.weight_decay), .variant = "adamw",
	  .def = 1e-6, .min = 0, NOMAX,
	  .help = "decoupled weight decay, >= 0, not applied to biases and norms" },
	{ "pretrain.optimizer.weight_decay", SPEC_FLOAT, JOB(pretrain.optim.weight_decay),
	  .variant = "sgd|lars", .min = 0, .flags = ENGINE | PARAM_NO_MAX,
	  .help = "weight decay, >= 0, not applied to biases and norms" },
	{ "pretrain.optimizer.momentum", SPEC_FLOAT, JOB(pretrain.optim.momentum), .variant = "sgd|lars",
	  .min = 0, .max = 1, .flags = ENGINE | PARAM_MAX_EXCLUSIVE, .help = "momentum in [0, 1)" },
	{ "pretrain.optimizer.nesterov", SPEC_BOOL, JOB(pretrain.optim.nesterov), .variant = "sgd",
	  .flags = ENGINE, .help = "Nesterov momentum" },
	{ "pretrain.optimizer.betas", SPEC_FLOAT_PAIR, JOB2(pretrain.optim.beta1, pretrain.optim.beta2),
	  .variant = "adamw", .min = 0, .max = 1, .flags = ENGINE | PARAM_MAX_EXCLUSIVE,
	  .help = "Adam betas, each in [0, 1)" },
	{ "pretrain.optimizer.eps", SPEC_FLOAT, JOB(pretrain.optim.eps), .variant = "adamw", .min = 0,
	  .flags = ENGINE | PARAM_MIN_EXCLUSIVE | PARAM_NO_MAX, .help = "Adam epsilon, > 0" },
	{ "pretrain.optimizer.trust_coef", SPEC_FLOAT, JOB(pretrain.optim.trust_coef), .variant = "lars",
	  .min = 0, .flags = ENGINE | PARAM_MIN_EXCLUSIVE | PARAM_NO_MAX,
	  .help = "LARS trust coefficient, > 0" },
	{ "pretrain.schedule.name", SPEC_ENUM, JOB(pretrain.optim.schedule), .choices = "constant|cosine",
	  .def_str = "cosine", .help = "cosine or constant" },
	{ "pretrain.schedule.warmup_epochs", SPEC_FLOAT, JOB(pretrain.warmup_epochs), .def = 1, .min = 0,
	  .max = 100000, .help = "linear warmup length, >= 0" },
	{ "pretrain.schedule.min_lr", SPEC_FLOAT, JOB(pretrain.optim.min_lr), .def = 0, .min = 0, NOMAX,
	  .help = "cosine floor, 0 <= min_lr <= lr" },

	/* ---- embedding_map (present = on; read when the object is given) ---- */
	{ "embedding_map.points", SPEC_INT, JOB(embed_map.points), .def = 2000, .min = 10, .max = 5000,
	  .help = "test samples mapped, a seeded sample (all of a smaller test split), 10..5000" },
	{ "embedding_map.perplexity", SPEC_FLOAT, JOB(embed_map.perplexity), .def = 30, .min = 2,
	  .max = 100, .help = "t-SNE perplexity (effective neighbours), 2..100, at most (points - 2) / 3" },
	{ "embedding_map.iterations", SPEC_INT, JOB(embed_map.iterations), .def = 1000, .min = 300,
	  .max = 5000, .help = "t-SNE gradient steps (the first 250 with early exaggeration), 300..5000" },

	/* ---- distributed (present = on; read when the object is given) ---- */
	{ "distributed.processes", SPEC_INT, JOB(distributed.processes), .def = 1, .min = 1,
	  .max = JOBSPEC_MAX_PROCESSES,
	  .help = "MPI ranks (mpirun -np), 1..256; must divide pretrain.batch_size" },
	{ "distributed.hosts", SPEC_CUSTOM, .json_type = "array<string>", .min_n = 1,
	  .max_n = JOBSPEC_MAX_HOSTS, .flags = SPEC_HAND_PARSED | SPEC_DEF_NONE,
	  .def_text = "the daemon's mpi-hostfile, else this machine",
	  .help = "hosts to run on, \"name\" or \"name:slots\" (letters, digits, '.', '-', '_'), "
	          "1..64 entries; ssld writes the hostfile" },

	/* ---- evaluations[] (protocol keys come from the catalogue) ---- */
	{ "evaluations[].protocol", SPEC_ENUM, .flags = SPEC_REQUIRED | SPEC_HAND_PARSED | SPEC_DEF_NONE,
	  .help = "linear_probe, finetune, knn, supervised or random_init (protocol keys: see protocols)" },
	{ "evaluations[].label_fractions", SPEC_DOUBLE_LIST, EVAL(fractions), .def_str = "[1.0]",
	  .off2 = offsetof(EvalSpec, n_fractions), .min_n = 1, .max_n = JOBSPEC_MAX_FRACTIONS, .min = 0,
	  .max = 1, .flags = PARAM_MIN_EXCLUSIVE,
	  .help = "shares of the training labels to use, each in (0, 1], 1..8 entries (one run each)" },
	{ "evaluations[].labels_per_class", SPEC_INT, EVAL(labels_per_class), .min = 1, .max = 1000000,
	  .flags = SPEC_DEF_NONE, .def_text = "none: label_fractions apply",
	  .help = "use this many labels per class instead of label_fractions (one run)" },
	{ "evaluations[].label_rule", SPEC_ENUM, EVAL(label_rule), .choices = "first|random",
	  .def_str = "first",
	  .help = "which labelled samples: \"first\" k per class in file order, or \"random\" "
	          "(drawn with the job's seed: the same for every evaluation)" },

	/* ---- augment / augment2 (defaults: the engine's presets; a named transform starts from
	 *      spec_aug_enabled_defaults) ---- */
	{ "augment.preset", SPEC_ENUM, .choices = "none|simclr|light", .def_str = "none",
	  .flags = SPEC_HAND_PARSED, .help = "object form: the preset the listed transforms modify" },
	{ "augment.clamp", SPEC_BOOL, AUG(clamp), .flags = ENGINE, .help = "clamp augmented pixels to [0, 1]" },
	{ "augment.crop", SPEC_OBJECT, .help = "random resized crop" },
	{ "augment.crop.p", SPEC_FLOAT, AUG(crop.p), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "probability of a random resized crop" },
	{ "augment.crop.scale", SPEC_FLOAT_PAIR, AUG2(crop.scale_min, crop.scale_max), .min = 0.01, .max = 1,
	  .flags = ENGINE, .help = "[min, max] area fraction of the crop, 0.01..1" },
	{ "augment.crop.ratio", SPEC_FLOAT_PAIR, AUG2(crop.ratio_min, crop.ratio_max), .min = 0.1, .max = 10,
	  .flags = ENGINE, .help = "[min, max] aspect ratio of the crop, 0.1..10" },
	{ "augment.flip", SPEC_OBJECT, .help = "horizontal flip" },
	{ "augment.flip.p", SPEC_FLOAT, AUG(hflip.p), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "probability of a horizontal flip" },
	{ "augment.rotate", SPEC_OBJECT, .help = "rotation" },
	{ "augment.rotate.p", SPEC_FLOAT, AUG(rotate.p), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "probability of a rotation" },
	{ "augment.rotate.degrees", SPEC_FLOAT, AUG(rotate.max_degrees), .min = 0, .max = 180,
	  .flags = ENGINE, .help = "maximum angle, uniform in [-degrees, degrees]" },
	{ "augment.rotate.multiples_of_90", SPEC_BOOL, AUG(rotate.multiples_of_90), .flags = ENGINE,
	  .help = "rotate by a random multiple of 90 degrees instead" },
	{ "augment.translate", SPEC_OBJECT, .help = "shift" },
	{ "augment.translate.p", SPEC_FLOAT, AUG(translate.p), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "probability of a shift" },
	{ "augment.translate.fraction", SPEC_FLOAT, AUG(translate.max_fraction), .min = 0, .max = 0.5,
	  .flags = ENGINE, .help = "maximum shift as a fraction of the image size, 0..0.5" },
	{ "augment.jitter", SPEC_OBJECT, .help = "colour jitter: brightness, contrast, saturation, hue" },
	{ "augment.jitter.p", SPEC_FLOAT, AUG(jitter.p), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "probability of colour jitter" },
	{ "augment.jitter.brightness", SPEC_FLOAT, AUG(jitter.brightness), .min = 0, .max = 1,
	  .flags = ENGINE, .help = "brightness factor in [1-b, 1+b]" },
	{ "augment.jitter.contrast", SPEC_FLOAT, AUG(jitter.contrast), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "contrast factor in [1-c, 1+c]" },
	{ "augment.jitter.saturation", SPEC_FLOAT, AUG(jitter.saturation), .min = 0, .max = 1,
	  .flags = ENGINE, .help = "saturation factor in [1-s, 1+s] (3-channel images only)" },
	{ "augment.jitter.hue", SPEC_FLOAT, AUG(jitter.hue), .min = 0, .max = 0.5, .flags = ENGINE,
	  .help = "hue shift in [-h, h] turns, 0..0.5 (3-channel images only)" },
	{ "augment.grayscale", SPEC_OBJECT, .help = "random grayscale" },
	{ "augment.grayscale.p", SPEC_FLOAT, AUG(grayscale.p), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "probability of turning a colour image to gray (3-channel images only)" },
	{ "augment.blur", SPEC_OBJECT, .help = "gaussian blur" },
	{ "augment.blur.p", SPEC_FLOAT, AUG(blur.p), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "probability of a gaussian blur" },
	{ "augment.blur.sigma", SPEC_FLOAT_PAIR, AUG2(blur.sigma_min, blur.sigma_max), .min = 0.01, .max = 4,
	  .flags = ENGINE, .help = "[min, max] blur sigma in pixels, 0.01..4" },
	{ "augment.solarize", SPEC_OBJECT, .help = "solarization" },
	{ "augment.solarize.p", SPEC_FLOAT, AUG(solarize.p), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "probability of solarization" },
	{ "augment.solarize.threshold", SPEC_FLOAT, AUG(solarize.threshold), .min = 0, .max = 1,
	  .flags = ENGINE, .help = "pixels above it become 1 - x" },
	{ "augment.invert", SPEC_OBJECT, .help = "inversion" },
	{ "augment.invert.p", SPEC_FLOAT, AUG(invert.p), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "probability of inverting the image" },
	{ "augment.erase", SPEC_OBJECT, .help = "random erasing (cutout)" },
	{ "augment.erase.p", SPEC_FLOAT, AUG(erase.p), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "probability of random erasing (cutout)" },
	{ "augment.erase.scale", SPEC_FLOAT_PAIR, AUG2(erase.scale_min, erase.scale_max), .min = 0.001,
	  .max = 1, .flags = ENGINE, .help = "[min, max] erased area fraction, 0.001..1" },
	{ "augment.noise", SPEC_OBJECT, .help = "additive gaussian noise" },
	{ "augment.noise.p", SPEC_FLOAT, AUG(noise.p), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "probability of additive gaussian noise" },
	{ "augment.noise.std", SPEC_FLOAT, AUG(noise.std), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "noise standard deviation, 0..1" },
	{ "augment.patch_mask", SPEC_OBJECT, .help = "patch masking" },
	{ "augment.patch_mask.p", SPEC_FLOAT, AUG(patch_mask.p), .min = 0, .max = 1, .flags = ENGINE,
	  .help = "probability of patch masking" },
	{ "augment.patch_mask.ratio", SPEC_FLOAT, AUG(patch_mask.ratio), .min = 0, .max = 0.95,
	  .flags = ENGINE, .help = "share of patches zeroed, 0..0.95" },
	{ "augment.patch_mask.patch", SPEC_INT, AUG(patch_mask.patch), .min = 1, .max = 28, .flags = ENGINE,
	  .help = "patch size in pixels, 1..28" },
};

static SpecLevel levels[] = {
	{ "dataset", "format", "format", NULL, NULL },   /* variants: from the format registry */
	{ "model", "encoder", "encoder", NULL /* the encoder registry's names */, NULL },
	{ "pretrain.optimizer", "name", "optimizer", "sgd|adamw|lars", "adamw" },
	{ "evaluations[]", "protocol", "protocol", NULL, NULL },
};

const char *const spec_aug_transforms[] = { "crop", "flip", "rotate", "translate", "jitter",
                                            "grayscale", "blur", "solarize", "invert", "erase",
                                            "noise", "patch_mask" };
const int spec_aug_transform_count = COUNT(spec_aug_transforms);
const char spec_aug_presets[] = "none|simclr|light";

/* ---------------------------------------------------------------------------------------------- */
/* The whole table: the static rows with the dataset formats' rows between them, built once      */

#define MAX_KEYS 512
#define TEXT_POOL 16384

static SpecKey keys[MAX_KEYS];
static int n_keys;
static char text_pool[TEXT_POOL];   /* generated paths and variant lists */
static size_t text_used;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* A table that outgrows these bounds loses rows, which tests/data/test_format_registry.c and the
 * schema tests notice (every format's keys must be found); raise the bounds then. */
static const char *pool_text(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (text_used + la + lb + 1 > TEXT_POOL)
		return "";
	char *s = text_pool + text_used;   /* a and b lie before it when they are pool text */
	memmove(s, a, la);
	memmove(s + la, b, lb);
	s[la + lb] = '\0';
	text_used += la + lb + 1;
	return s;
}

static void add_row(const SpecKey *k)
{
	if (n_keys < MAX_KEYS)
		keys[n_keys++] = *k;
}

static int same_text(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* A format's key as a row of the spec table (path and variant still to be set). Files and
 * directories are resolved against the data roots by jobspec.c; lists, directories and the
 * "auto" booleans are read there by hand. */
static char encoder_names[256];   /* "mlp|cnn|vit|transformer" */
static char encoder_default_text[256];   /* model.encoder's default in words */

static SpecType spec_type_of(const ParamDef *d)
{
	switch (d->type) {
	case PARAM_NUMBER: return d->size == sizeof(float) ? SPEC_FLOAT : SPEC_DOUBLE;
	case PARAM_INTEGER: return d->size == sizeof(int64_t) ? SPEC_I64 : SPEC_INT;
	case PARAM_BOOLEAN: return SPEC_BOOL;
	case PARAM_ENUM: return SPEC_ENUM;
	case PARAM_INT_LIST: return SPEC_INT_LIST;
	case PARAM_STRING:      /* a char array: no spec type holds one (no encoder key is one) */
	case PARAM_PATH:        /* files belong to dataset formats, not encoders */
	case PARAM_DIR:
	case PARAM_PATH_LIST: break;
	}
	return SPEC_CUSTOM;
}


/* One encoder key as a model.<key> row for variant (NULL: every encoder). Rows of several
 * encoders that agree in everything but the variant become one row ("vit|transformer"). */
static void add_encoder_key(const ParamDef *d, const char *variant)
{
	SpecKey r = { .type = spec_type_of(d), .base = SPEC_BASE_JOB,
	              .off = offsetof(JobSpec, encoder) + d->offset,
	              .off2 = d->type == PARAM_INT_LIST ? offsetof(JobSpec, encoder) + d->count_offset : 0,
	              .min = d->min, .max = d->max, .flags = (d->flags & 15u) | SPEC_DEF_ENGINE,
	              .min_n = d->min_n, .max_n = d->max_n, .choices = d->choices, .help = d->help };
	for (int i = 0; i < n_keys && variant; i++) {
		SpecKey *k = &keys[i];
		if (k->variant && strncmp(k->path, "model.", 6) == 0 && strcmp(k->path + 6, d->name) == 0 &&
		    k->type == r.type && k->off == r.off && k->off2 == r.off2 && k->min == r.min &&
		    k->max == r.max && k->flags == r.flags && k->min_n == r.min_n && k->max_n == r.max_n &&
		    !strcmp(k->choices ? k->choices : "", r.choices ? r.choices : "") &&
		    !strcmp(k->help, r.help)) {
			k->variant = pool_text(k->variant, pool_text("|", variant));
			return;
		}
	}
	r.path = pool_text("model.", d->name);
	r.variant = variant;
	if (r.path[0])
		add_row(&r);
}

static SpecKey format_row(const ParamDef *d)
{
	SpecKey k = { .base = SPEC_BASE_JOB, .off = offsetof(JobSpec, dataset) + d->offset,
	              .def = d->def, .def_str = d->def_str, .min = d->min, .max = d->max,
	              .flags = d->flags & 15u, .choices = d->choices, .def_text = d->def_text,
	              .help = d->help };
	if (d->flags & PARAM_REQUIRED)
		k.flags |= SPEC_REQUIRED;
	switch (d->type) {
	case PARAM_NUMBER: k.type = d->size == sizeof(double) ? SPEC_DOUBLE : SPEC_FLOAT; break;
	case PARAM_INTEGER: k.type = d->size == sizeof(int64_t) ? SPEC_I64 : SPEC_INT; break;
	case PARAM_ENUM: k.type = SPEC_ENUM; break;
	case PARAM_BOOLEAN:
		k.type = SPEC_BOOL;
		if (d->flags & PARAM_DEFAULT_AUTO) {
			k.type = SPEC_CUSTOM;
			k.json_type = "\"auto\"|boolean";
			k.def_str = "\"auto\"";
			k.flags = SPEC_HAND_PARSED;
		}
		break;
	case PARAM_STRING:
	case PARAM_DIR:
		k.type = SPEC_STRING;
		k.max = d->type == PARAM_DIR ? PATH_MAX - 2 : d->size - 1;
		k.min = 0;
		k.choices = NULL;
		if (d->type == PARAM_DIR)
			k.flags |= SPEC_HAND_PARSED;
		break;
	case PARAM_PATH: k.type = SPEC_PATH; break;
	case PARAM_INT_LIST:   /* no format key is one; an encoder-style list row */
		k.type = SPEC_INT_LIST;
		k.off2 = offsetof(JobSpec, dataset) + d->count_offset;
		k.min_n = d->min_n;
		k.max_n = d->max_n;
		break;
	case PARAM_PATH_LIST:
		k.type = SPEC_CUSTOM;
		k.json_type = "array<string>";
		k.min_n = (int)d->min;
		k.max_n = (int)d->max;
		k.min = k.max = 0;
		k.flags |= SPEC_HAND_PARSED;
		break;
	}
	if (!(k.flags & SPEC_REQUIRED) && !d->def_str && d->type != PARAM_NUMBER &&
	    d->type != PARAM_INTEGER && d->type != PARAM_BOOLEAN)
		k.flags |= SPEC_DEF_NONE;
	return k;
}

static void build_table(void)
{
	for (int i = 0; i < COUNT(head_keys); i++)
		add_row(&head_keys[i]);
	/* "name" picks a named dataset, "format" a file format: both lists from the registry */
	char named[256] = "", files[256] = "";
	for (int i = 0; i < dataset_format_count(); i++) {
		const DatasetFormat *f = dataset_format_at(i);
		char *l = f->named ? named : files;
		size_t at = strlen(l);
		snprintf(l + at, sizeof named - at, "%s%s", at ? "|" : "", f->name);
	}
	const char *named_list = pool_text(named, ""), *file_list = pool_text(files, "");
	add_row(&(SpecKey){ "dataset.name", SPEC_ENUM, .choices = named_list,
	                    .def_str = dataset_format_at(0)->name, .variant = "named",
	                    .flags = SPEC_HAND_PARSED, .help = "a built-in dataset" });
	add_row(&(SpecKey){ "dataset.format", SPEC_ENUM, .choices = file_list, .variant = file_list,
	                    .flags = SPEC_HAND_PARSED | SPEC_DEF_NONE,
	                    .help = pool_text("file format: ", file_list) });
	levels[0].variants = pool_text("named|", file_list);
	/* each format's keys; a key several formats describe identically is one row for all of them */
	for (int i = 0; i < dataset_format_count(); i++) {
		const DatasetFormat *f = dataset_format_at(i);
		const char *variant = f->named ? "named" : f->name;
		for (int j = 0; j < f->n_keys; j++) {
			SpecKey k = format_row(&f->keys[j]);
			char path[96];
			snprintf(path, sizeof path, "dataset.%s", f->keys[j].name);
			SpecKey *same = NULL;
			for (int r = COUNT(head_keys); r < n_keys && !same; r++) {
				SpecKey *o = &keys[r];
				if (strcmp(o->path, path) == 0 && o->type == k.type && o->off == k.off &&
				    o->def == k.def && same_text(o->def_str, k.def_str) && o->min == k.min &&
				    o->max == k.max && o->flags == k.flags && same_text(o->choices, k.choices) &&
				    same_text(o->help, k.help) && same_text(o->def_text, k.def_text))
					same = o;
			}
			if (same) {
				if (!spec_in_list(same->variant, variant))
					same->variant = pool_text(same->variant, pool_text("|", variant));
				continue;
			}
			k.path = pool_text(path, "");
			k.variant = variant;
			add_row(&k);
		}
	}
	for (int i = 0; i < COUNT(dataset_common); i++)
		add_row(&dataset_common[i]);
	size_t at = 0;
	for (int e = 0; e < encoder_count(); e++) {
		int w = snprintf(encoder_names + at, sizeof encoder_names - at, "%s%s", e ? "|" : "",
		                 encoder_kind_name((EncoderKind)e));
		if (w > 0 && (size_t)w < sizeof encoder_names - at)
			at += (size_t)w;
	}
	for (int i = 0; i < COUNT(tail_keys); i++) {
		if (strcmp(tail_keys[i].path, "model.encoder") != 0) {
			add_row(&tail_keys[i]);
			continue;
		}
		/* model.encoder, then every encoder's keys from the encoder registry */
		size_t w = (size_t)snprintf(encoder_default_text, sizeof encoder_default_text,
		                            "the method's, else the data's (");
		static const unsigned data[] = { DATA_IMAGES, DATA_VECTORS, DATA_TEXT };
		static const char *const data_names[] = { "images", "vectors", "text" };
		for (int d = 0, shown = 0; d < 3 && w < sizeof encoder_default_text; d++) {
			int k = encoder_natural_for(data[d]);
			if (k >= 0)
				w += (size_t)snprintf(encoder_default_text + w, sizeof encoder_default_text - w,
				                      "%s%s for %s", shown++ ? ", " : "",
				                      encoder_kind_name((EncoderKind)k), data_names[d]);
		}
		if (w < sizeof encoder_default_text)
			snprintf(encoder_default_text + w, sizeof encoder_default_text - w, ")");
		SpecKey row = tail_keys[i];
		row.def_text = encoder_default_text;
		row.choices = encoder_names;
		add_row(&row);
		for (int e = 0; e < encoder_count(); e++) {
			const EncoderDesc *d = encoder_desc((EncoderKind)e);
			for (int k = 0; k < d->n_keys; k++)
				add_encoder_key(&d->keys[k], d->name);
		}
		for (int k = 0; k < encoder_common_key_count; k++)
			add_encoder_key(&encoder_common_keys[k], NULL);
	}
	for (int i = 0; i < COUNT(levels); i++)
		if (strcmp(levels[i].path, "model") == 0)
			levels[i].variants = encoder_names;
}

static void table_ready(void)
{
	pthread_once(&table_once, build_table);
}

int spec_key_count(void)
{
	table_ready();
	return n_keys;
}

const SpecKey *spec_key_at(int i)
{
	table_ready();
	return i >= 0 && i < n_keys ? &keys[i] : NULL;
}

int spec_level_count(void) { return COUNT(levels); }

const SpecLevel *spec_level_at(int i)
{
	table_ready();
	return i >= 0 && i < COUNT(levels) ? &levels[i] : NULL;
}

const SpecLevel *spec_level_find(const char *path)
{
	table_ready();
	for (int i = 0; i < COUNT(levels); i++)
		if (strcmp(levels[i].path, path) == 0)
			return &levels[i];
	return NULL;
}

int spec_in_list(const char *list, const char *word)
{
	return list && word && spec_choice_index(list, word) >= 0;
}

int spec_choice_index(const char *choices, const char *word)
{
	return param_choice_index(choices, word);
}

const char *spec_choice_at(const char *choices, int idx, char *buf, size_t n)
{
	int i = 0;
	for (const char *s = choices; s && *s; i++) {
		const char *bar = strchr(s, '|');
		size_t l = bar ? (size_t)(bar - s) : strlen(s);
		if (i == idx) {
			snprintf(buf, n, "%.*s", (int)l, s);
			return buf;
		}
		if (!bar)
			break;
		s = bar + 1;
	}
	return NULL;
}

const char *spec_key_leaf(const SpecKey *k, const char *level)
{
	size_t ll = strlen(level);
	const char *leaf = k->path;
	if (ll) {
		if (strncmp(k->path, level, ll) != 0 || k->path[ll] != '.')
			return NULL;
		leaf = k->path + ll + 1;
	}
	if (strchr(leaf, '.') || strchr(leaf, '['))
		return NULL;
	return leaf;
}

int spec_key_fits(const SpecKey *k, const char *variant)
{
	return !k->variant || !variant || spec_in_list(k->variant, variant);
}

const SpecKey *spec_key_find(const char *path, const char *variant)
{
	table_ready();
	for (int i = 0; i < n_keys; i++)
		if (strcmp(keys[i].path, path) == 0 && spec_key_fits(&keys[i], variant))
			return &keys[i];
	return NULL;
}

void *spec_key_ptr(const SpecKey *k, JobSpec *js, EvalSpec *ev, AugConfig *aug)
{
	char *base = k->base == SPEC_BASE_EVAL ? (char *)ev : k->base == SPEC_BASE_AUG ? (char *)aug
	                                                                               : (char *)js;
	return base ? base + k->off : NULL;
}

void spec_key_set_default(const SpecKey *k, void *slot)
{
	if (!slot || (k->flags & (SPEC_DEF_ENGINE | SPEC_DEF_NONE | SPEC_HAND_PARSED)))
		return;
	char *base = (char *)slot - k->off;
	switch (k->type) {
	case SPEC_INT:
	case SPEC_BOOL: *(int *)slot = (int)k->def; break;
	case SPEC_I64: *(int64_t *)slot = (int64_t)k->def; break;
	case SPEC_U64: *(uint64_t *)slot = (uint64_t)k->def; break;
	case SPEC_FLOAT: *(float *)slot = (float)k->def; break;
	case SPEC_DOUBLE: *(double *)slot = k->def; break;
	case SPEC_ENUM: *(int *)slot = k->def_str ? spec_choice_index(k->choices, k->def_str) : 0; break;
	case SPEC_DOUBLE_LIST:
	case SPEC_INT_LIST: {
		cJSON *a = k->def_str ? cJSON_Parse(k->def_str) : NULL;
		int n = 0;
		for (const cJSON *e = a ? a->child : NULL; e && n < k->max_n; e = e->next, n++) {
			if (k->type == SPEC_INT_LIST)
				((int *)slot)[n] = (int)e->valuedouble;
			else
				((double *)slot)[n] = e->valuedouble;
		}
		*(int *)(void *)(base + k->off2) = n;
		cJSON_Delete(a);
		break;
	}
	default: break;
	}
}

void spec_aug_enabled_defaults(AugConfig *c)
{
	aug_config_none(c);
	c->crop.p = 1.0f;
	c->hflip.p = 0.5f;
	c->rotate.p = 0.5f;
	c->translate.p = 0.5f;
	c->jitter.p = 0.8f;
	c->grayscale.p = 0.2f;
	c->blur.p = 0.5f;
	c->solarize.p = 0.2f;
	c->invert.p = 0.2f;
	c->erase.p = 0.25f;
	c->noise.p = 0.5f;
	c->patch_mask.p = 1.0f;
}

void spec_aug_preset(AugConfig *c, int preset)
{
	switch (preset) {
	case 1: aug_config_default_simclr(c); break;
	case 2: aug_config_default_light(c); break;
	default: aug_config_none(c); break;
	}
}

void spec_level_defaults(const char *level, const char *variant, JobSpec *js, EvalSpec *ev,
                         AugConfig *aug)
{
	/* The engine's defaults first: whole structs, so fields the table does not name keep them. */
	table_ready();
	if (strcmp(level, "model") == 0 && js && variant) {
		EncoderKind kind = ENC_CNN;
		encoder_kind_parse(variant, &kind);
		encoder_config_default(&js->encoder, kind);
	} else if (strcmp(level, "pretrain.optimizer") == 0 && js) {
		int kind = spec_choice_index("sgd|adamw|lars", variant ? variant : "adamw");
		optim_config_default(&js->pretrain.optim, (OptimKind)(kind < 0 ? OPT_ADAMW : kind));
	} else if (strncmp(level, "augment.", 8) == 0 && aug) {
		AugConfig on;
		spec_aug_enabled_defaults(&on);
		for (int i = 0; i < spec_key_count(); i++) {
			const SpecKey *k = &keys[i];
			if (!spec_key_leaf(k, level) || k->type == SPEC_OBJECT)
				continue;
			size_t sz = k->type == SPEC_INT || k->type == SPEC_BOOL ? sizeof(int) : sizeof(float);
			memcpy((char *)aug + k->off, (char *)&on + k->off, sz);
			if (k->type == SPEC_FLOAT_PAIR)
				memcpy((char *)aug + k->off2, (char *)&on + k->off2, sizeof(float));
		}
	}
	for (int i = 0; i < spec_key_count(); i++) {
		const SpecKey *k = &keys[i];
		if (!spec_key_leaf(k, level) || !spec_key_fits(k, variant))
			continue;
		spec_key_set_default(k, spec_key_ptr(k, js, ev, aug));
	}
}
