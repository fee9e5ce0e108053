/* eval_internal.h - pieces shared by the downstream protocol files (eval.c, eval_linear.c,
 * eval_knn.c, eval_train.c). Not for use outside engine/methods/ and its tests.
 *
 * eval_run (eval.c) resolves the config, picks the labelled subset and dispatches to one of the
 * eval_*_run functions below; those build their own encoder from env->encoder_cfg (copying
 * env->pretrained by name) so the caller's networks are never modified.
 */
#ifndef SSLD_METHODS_EVAL_INTERNAL_H
#define SSLD_METHODS_EVAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../ctx.h"
#include "eval.h"

/* Protocol defaults used when a field of EvalConfig is 0 (or negative where that is meaningless). */
/* The epochs and batch_size rows the protocols' key tables share. */
#define EVAL_KEY_EPOCHS(d, help_text)                                                           \
	{ "epochs", PARAM_INTEGER, .def = (d), .min = 1, .max = 10000, .help = help_text,            \
	  PARAM_AT(EvalConfig, epochs) }
#define EVAL_KEY_BATCH(d, help_text)                                                            \
	{ "batch_size", PARAM_INTEGER, .def = (d), .min = 1, .max = 8192, .help = help_text,         \
	  PARAM_AT(EvalConfig, batch_size) }
#define EVAL_KEY_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define EVAL_FEATURE_BATCH 512        /* frozen-feature extraction and test-set prediction */
#define EVAL_MIN_TRAIN_STEPS 300      /* finetune / supervised: at least this many steps */
#define EVAL_LINEAR_DEFAULT_WD 1e-3   /* linear probe when no validation split is possible */
#define EVAL_LINEAR_FOLDS 5           /* linear probe: cross-validation folds for the penalty */
#define EVAL_LINEAR_CV_MAX 2000       /* above this many labels, one fold (a 20% slice) only */
#define EVAL_LINEAR_GRID_ITERS 100    /* L-BFGS iterations per candidate penalty */
/* finetune's LP-FT head: the probe fitted to convergence before fine-tuning starts (the figures
 * in eval_train.c were measured with it); the linear_probe protocol's own budget is its epochs. */
#define EVAL_LPFT_HEAD_ITERS 300

/* Copy cfg with every unset field replaced by the protocol default. */
void eval_config_resolve(const EvalConfig *cfg, EvalConfig *out);
/* The same, or protocol p's defaults when cfg is NULL (the *_features entry points). */
void eval_config_resolve_or_default(const EvalConfig *cfg, EvalProto p, EvalConfig *out);

/* A fresh encoder from env->encoder_cfg in ps under "encoder", initialised from env->seed, with
 * every "<env->prefix>.*" tensor of env->pretrained (weights and BatchNorm buffers) copied in by
 * name when env->pretrained is set. */
int eval_build_encoder(const EvalEnv *env, ParamSet *ps, Encoder **out, char *err, size_t errlen);

/* Encoder output for samples idx[0..n) of split: (n, out_dim). When x is non-NULL it holds those
 * samples already gathered ((n, sample_floats), e.g. an augmented loader view); otherwise they are
 * gathered from the split. Text-record datasets are encoded from their bytes as token ids. */
Tensor *eval_encode(Ctx *ctx, Encoder *enc, const Dataset *ds, const Split *split, float *x,
                    const int *idx, int n);

/* Callbacks, tolerant of a NULL env. */
int eval_should_stop(const EvalEnv *env);
void eval_progress(const EvalEnv *env, int epoch, int epochs, double metric);

/* Feature-level cores. env may be NULL (then no progress or cancellation). xte may be NULL
 * when nte is 0. The probe also returns its classifier in raw-feature space when head_w (k,d) and
 * head_b (k) are non-NULL (logits = x head_w^T + head_b, standardisation folded in). */
int eval_linear_core(const EvalEnv *env, const float *xtr, const int *ytr, int ntr,
                     const float *xte, const int *yte, int nte, int d, int num_classes,
                     const EvalConfig *cfg, uint64_t seed, EvalResult *out, float *head_w,
                     float *head_b, char *err, size_t errlen);
int eval_knn_core(const EvalEnv *env, const float *xtr, const int *ytr, int ntr,
                  const float *xte, const int *yte, int nte, int d, int num_classes,
                  const EvalConfig *cfg, EvalResult *out, char *err, size_t errlen);

/* Protocols over the labelled subset idx[0..n) of ds->train; cfg is already resolved. */
int eval_linear_run(const EvalEnv *env, const EvalConfig *cfg, const int *idx, int n,
                    EvalResult *out, char *err, size_t errlen);
int eval_knn_run(const EvalEnv *env, const EvalConfig *cfg, const int *idx, int n,
                 EvalResult *out, char *err, size_t errlen);
int eval_train_run(const EvalEnv *env, const EvalConfig *cfg, const int *idx, int n,
                   EvalResult *out, char *err, size_t errlen);

/* Shared by the feature protocols: features and labels of the labelled subset and features of the
 * whole test split, from a frozen encoder built by eval_build_encoder. */
typedef struct EvalFeatures {
	float *ftr;   /* (n, dim) the labelled subset idx[0..n) of ds->train */
	int *ytr;     /* (n) their labels */
	float *fte;   /* (ds->test.n, dim) */
	int dim;
} EvalFeatures;
/* Fills *f (all NULL on failure, so eval_features_free is always safe). 0, or < 0 with err set. */
int eval_frozen_features(const EvalEnv *env, const int *idx, int n, EvalFeatures *f, char *err,
                         size_t errlen);
void eval_features_free(EvalFeatures *f);

#endif
