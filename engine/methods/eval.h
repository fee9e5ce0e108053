/* eval.h - downstream protocols: how well does a (pretrained) encoder transfer with few labels?
 *
 * linear_probe: frozen encoder features -> multinomial logistic regression, regularisation chosen
 *               by stratified cross-validation on the labelled subset.
 * finetune:     the whole network (encoder + linear head) trained on the labels, encoder at a
 *               lower learning rate.
 * knn:          cosine k-nearest-neighbours on frozen features, temperature-weighted votes.
 * supervised:   the same architecture from random initialisation trained on the same labels
 *               (light augmentation) - the baseline every SSL result is compared against.
 * random_init:  the linear probe on the same encoder left untrained - the floor a pretext task
 *               must clear (cheap: one probe on frozen random features).
 * pixel_probe:  the linear probe on the raw pixels, no encoder - the floor a representation must
 *               clear.
 *
 * Each protocol is a registry entry (EvalProtocolDef) defined where it runs (eval_linear.c,
 * eval_knn.c, eval_train.c, eval_pixels.c): its name, summary, key table and run function, whose rows are bound by offset to
 * EvalConfig and carry the defaults. eval_config_default() fills a config from those rows, the job
 * spec validates "evaluations[i]" against them, and the catalogue prints them: one value each.
 *
 *   EvalEnv env = { .ds = ds, .encoder_cfg = &ec, .in_c = 1, .in_h = 28, .in_w = 28,
 *                   .pretrained = ps, .prefix = "encoder", .seed = 1, .threads = 2 };
 *   EvalConfig ec; eval_config_default(&ec, EVAL_PROTO_LINEAR_PROBE);
 *   EvalResult r;
 *   eval_run(&env, &ec, 0.01, 0, &r, err, sizeof err);   // 1% labels: 60 per class on FMNIST
 */
#ifndef SSLD_METHODS_EVAL_H
#define SSLD_METHODS_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "../data/dataset.h"
#include "../model.h"
#include "../param_table.h"
#include "../params.h"

#define EVAL_MAX_FRACTIONS 8

typedef enum EvalProto {
	EVAL_PROTO_LINEAR_PROBE, EVAL_PROTO_FINETUNE, EVAL_PROTO_KNN, EVAL_PROTO_SUPERVISED,
	EVAL_PROTO_RANDOM_INIT, EVAL_PROTO_PIXEL_PROBE, EVAL_PROTO_COUNT
} EvalProto;

/* One evaluation: which protocol, on which labelled subsets, with which settings. The job spec's
 * "evaluations[i]" is this struct (the spec layer fills every field; eval_run takes one labelled
 * subset at a time, so it ignores fractions and labels_per_class). */
typedef struct EvalConfig {
	EvalProto protocol;
	double fractions[EVAL_MAX_FRACTIONS];   /* label fractions, e.g. 0.01, 0.1, 1.0 */
	int n_fractions;
	int labels_per_class;     /* > 0 overrides fractions (one run) */
	int epochs;
	int batch_size;
	float lr;                 /* 0 = protocol default */
	float encoder_lr_scale;   /* finetune */
	float weight_decay;       /* linear probe: 0 = choose by cross-validation from a grid */
	int k;                    /* knn */
	float temperature;        /* knn */
	int augment;              /* supervised / finetune: light augmentation */
	LabelRule label_rule;
} EvalConfig;

typedef struct EvalEnv {
	const Dataset *ds;
	const EncoderConfig *encoder_cfg;
	int in_c, in_h, in_w;
	const ParamSet *pretrained;   /* weights to start from (names "<prefix>.*"), NULL = random init */
	const char *prefix;           /* "encoder" */
	uint64_t seed;
	/* Seed of a "random" labelled subset (NULL: seed). A job points every evaluation at one
	 * value, so its protocols are compared on the same labels while their own seeds differ. */
	const uint64_t *label_seed;
	int threads;
	/* Optional progress (epoch of epochs) and cancellation (nonzero = stop, returns -ECANCELED). */
	void (*on_progress)(void *user, int epoch, int epochs, double metric);
	int (*should_stop)(void *user);
	void *user;
} EvalEnv;

typedef struct EvalResult {
	double test_accuracy;     /* on the full test split */
	double train_accuracy;    /* on the labelled subset */
	int labels;               /* number of labelled training samples used */
	double chosen_weight_decay;/* linear probe */
	double seconds;
} EvalResult;

/* A downstream protocol: its settings (keys of "evaluations[i]") bound to EvalConfig fields, with
 * the defaults eval_config_default() applies. */
typedef struct EvalProtocolDef {
	const char *name;         /* "linear_probe" */
	EvalProto protocol;
	const char *summary;      /* one line */
	int needs_labels;
	/* NULL for a protocol that measures the pretrained encoder; otherwise what kind of baseline it
	 * is ("scratch", "random_init"): it never uses the pretrained weights. */
	const char *baseline;
	/* Trains the network on the labels (epochs of steps, at least min_steps): what a job's
	 * progress weighs it by. 0: it reads frozen features. */
	int trains_encoder;
	int min_steps;
	const ParamDef *keys;     /* protocol-specific keys; protocol, label_fractions, ... are common */
	int n_keys;
	/* Runs on the labelled subset idx[0..n) of env->ds->train with a resolved cfg. */
	int (*run)(const EvalEnv *env, const EvalConfig *cfg, const int *idx, int n, EvalResult *out,
	           char *err, size_t errlen);
} EvalProtocolDef;

int eval_protocol_count(void);
const EvalProtocolDef *eval_protocol_at(int i);              /* NULL when out of range */
const EvalProtocolDef *eval_protocol_find(const char *name); /* NULL when unknown */
const EvalProtocolDef *eval_protocol_get(EvalProto p);
const ParamDef *eval_protocol_key(const EvalProtocolDef *p, const char *name);

/* c = protocol p's defaults: every key of its table, plus settings it does not expose. */
void eval_config_default(EvalConfig *c, EvalProto p);
const char *eval_proto_name(EvalProto p);
/* fraction in (0,1] or labels_per_class > 0 picks the labelled subset (dataset_label_subset). */
int eval_run(const EvalEnv *env, const EvalConfig *cfg, double fraction, int labels_per_class,
             EvalResult *out, char *err, size_t errlen);

/* Frozen features of samples idx[0..n) of split (eval mode, no grad): (n, out_dim) floats,
 * eng_malloc'd (caller eng_frees). */
float *eval_features(Encoder *enc, const Dataset *ds, const Split *split, const int *idx, int n,
                     int batch, uint64_t seed);

/* Feature-level protocols on any labelled (n, d) features - encoder outputs, raw pixels,
 * embeddings: xtr (ntr, d) with ytr (ntr), xte (nte, d) with yte (nte), labels in
 * [0, num_classes). Inputs are not modified. cfg as for eval_run (probe: weight_decay, epochs =
 * L-BFGS iterations; knn: k, temperature; unset fields take the protocol defaults). Fills
 * test_accuracy, train_accuracy (knn: leave-one-out), labels = ntr, chosen_weight_decay. */
int eval_linear_probe_features(const float *xtr, const int *ytr, int ntr, const float *xte,
                               const int *yte, int nte, int d, int num_classes,
                               const EvalConfig *cfg, uint64_t seed, EvalResult *out, char *err,
                               size_t errlen);
int eval_knn_features(const float *xtr, const int *ytr, int ntr, const float *xte, const int *yte,
                      int nte, int d, int num_classes, const EvalConfig *cfg, EvalResult *out,
                      char *err, size_t errlen);

#endif
