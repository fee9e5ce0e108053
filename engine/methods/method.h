/* method.h - the interface every pretext (pretraining) method implements.
 *
 * A method owns its networks (an encoder whose parameters are named "encoder.*", plus heads,
 * target networks, queues...) inside the ParamSet the runner gives it, and turns one batch into a
 * scalar loss. The runner (workers/runner.c) owns everything else: data, optimizer, schedule,
 * checkpoints, metrics, cancellation. One file per method in engine/methods/, registered in
 * method_registry.c.
 *
 * A method is also its own catalogue entry: the descriptor carries what the job spec needs to
 * know (family, accepted datasets and encoders, views, default augmentation, the example job in
 * examples/) and its parameter table, whose rows are bound by offset to the method's own config
 * struct. The spec layer fills that struct (defaults, then the job's "params") and create()
 * reads typed fields from env->config; nothing looks a parameter up by name at training time.
 *
 *   const PretextMethod *m = method_find("simclr");
 *   unsigned char cfg[METHOD_CONFIG_MAX];
 *   method_config_default(m, cfg);                   // or the JobSpec's filled config
 *   MethodEnv env = { ..., .config = cfg };
 *   void *st; m->create(&env, ps, &st, err, sizeof err);
 *   for each step:
 *       ctx_reset(ctx);
 *       Tensor *loss = m->loss(ctx, st, views, batch, &sink);   // views[i] (B,C,H,W)
 *       ctx_backward(ctx, loss); optimizer step;
 *       if (m->after_step) m->after_step(st, step, total_steps); // EMA, queues
 *   Encoder *enc = m->encoder(st);                              // for the evaluations
 *   m->destroy(st);
 */
#ifndef SSLD_METHODS_METHOD_H
#define SSLD_METHODS_METHOD_H

#include <stddef.h>
#include <stdint.h>

#include "../ctx.h"
#include "../data/dataset.h"
#include "../data/format.h"
#include "../data/loader.h"
#include "../model.h"
#include "../param_table.h"
#include "../params.h"

/* Every method's config struct fits this many bytes (each method file asserts it), so a job spec
 * can hold any method's config inline. */
#define METHOD_CONFIG_MAX 256
#define METHOD_CONFIG_FITS(T) \
	_Static_assert(sizeof(T) <= METHOD_CONFIG_MAX, #T " must fit METHOD_CONFIG_MAX")

/* Dataset modalities a method accepts: the DATA_* bits of model.h. */

/* Encoder kinds as a bit mask (1u << EncoderKind). */
#define ENC_BIT(k) (1u << (unsigned)(k))
/* The ResNet encoders (any depth). */
#define ENC_RESNETS (ENC_BIT(ENC_RESNET18) | ENC_BIT(ENC_RESNET34) | ENC_BIT(ENC_RESNET50))

/* Where a method reports a metric besides the loss ("loss_recon", "pos_sim", ...). */
typedef struct MetricSink {
	void (*put)(void *user, const char *key, double value);
	void *user;
} MetricSink;

static inline void metric_put(const MetricSink *s, const char *key, double value)
{
	if (s && s->put)
		s->put(s->user, key, value);
}

typedef struct MethodEnv {
	const EncoderConfig *encoder;     /* the encoder architecture from the spec */
	int in_c, in_h, in_w;             /* one sample's shape */
	const Dataset *ds;
	const void *config;               /* the method's own config struct, every field filled */
	Rng *rng;                         /* initialisation randomness */
	int64_t total_steps;              /* planned pretraining steps (schedules such as BYOL's tau) */
	int batch_size;
} MethodEnv;

typedef struct PretextMethod {
	const char *name;                 /* catalogue name used in the spec: "simclr" */
	const char *family;               /* "contrastive", "non-contrastive", "self-predictive",
	                                     "multimodal", "generative", "baseline" */
	const char *summary;              /* one line */
	EncoderKind default_encoder;      /* used when the spec gives no model.encoder (and it suits
	                                     the dataset; otherwise the dataset's natural encoder) */
	unsigned encoders;                /* allowed encoder kinds (ENC_BIT mask), 0 = any */
	unsigned datasets;                /* DATA_* mask (data/format.h) of accepted modalities */
	int views;                        /* augmented views the loader must produce: 0, 1 or 2 */
	int needs_labels;                 /* pretext uses labels (none of the SSL methods do) */
	int needs_color;                  /* images must have 3 channels (colorization) */
	int causal;                       /* a transformer encoder runs causally (autoregressive) */
	const char *default_augment;      /* preset used when the spec has no "augment" */
	const char *example;              /* file name of its example job in examples/ */
	/* The parameters ("params" of a job), bound by offset to a config struct of config_size
	 * bytes (<= METHOD_CONFIG_MAX) that create() receives as env->config. */
	const ParamDef *params;
	int n_params;
	size_t config_size;
	/* Optional cross-field check of a filled config (e.g. two shares that must sum to at most
	 * 1). Return < 0 with the offending parameter's name in field and a sentence in msg. */
	int (*validate)(const void *config, char *field, size_t fieldlen, char *msg, size_t msglen);
	/* NULL for "none" (no pretraining): then every function below is NULL too. */
	int (*create)(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen);
	/* views[v] (B,C,H,W) arena tensors (no grad); returns the scalar loss. */
	Tensor *(*loss)(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
	                const MetricSink *sink);
	/* May be NULL. step is the schedule position in [0, total_steps]: the runner advances it with
	 * the learning-rate schedule's progress, which a time budget can push ahead of the step
	 * count (so EMA/momentum schedules end with the budget). */
	void (*after_step)(void *state, int64_t step, int64_t total_steps);
	Encoder *(*encoder)(void *state);
	/* Optional: write PNG artifacts into dir; report each with add(name). May be NULL. */
	int (*artifacts)(void *state, Ctx *ctx, const Dataset *ds, const char *dir,
	                 void (*add)(void *user, const char *name), void *user, char *err, size_t errlen);
	/* Optional: pretext metrics on the test split after training (e.g. "test_loss"). */
	int (*evaluate)(void *state, Ctx *ctx, const Dataset *ds, const MetricSink *sink);
	/* Optional, generative methods: n fresh samples (n,C,H,W) in [0,1] from the trained model. */
	int (*generate_images)(void *state, Ctx *ctx, int n, Rng *rng, float *out, char *err,
	                       size_t errlen);
	/* Optional, language models: continue `prompt` (len bytes) by up to max_tokens bytes into out
	 * (capacity max_tokens); *out_len receives the count. temperature 0 = greedy; top_k 0 and
	 * top_p 1 = off. Polls ctx_should_stop before each byte and ends early (rc 0) when it says so. */
	int (*generate_text)(void *state, Ctx *ctx, const uint8_t *prompt, int len, int max_tokens,
	                     float temperature, int top_k, float top_p, Rng *rng, uint8_t *out,
	                     int *out_len, char *err, size_t errlen);
	/* Optional, methods that draw their own batches instead of the runner's Loader
	 * (byte-stream text windows, masked records): fill *b for pretraining step `step` from
	 * (seed, step) alone, so a resumed run draws exactly the batches it would have drawn. The
	 * buffers belong to the method (valid until the next call); the runner then calls loss() with
	 * views NULL and this batch. 0, or < 0 with err set. */
	int (*make_batch)(void *state, const Dataset *ds, uint64_t seed, int64_t step, Batch *b,
	                  char *err, size_t errlen);
	void (*destroy)(void *state);
	/* Nonzero: the method streams SSL health metrics (ssl_health.h) from the SslHealthConfig at
	 * health_offset in its config, and the runner adds the online kNN monitor every knn_every
	 * steps of that config. */
	int ssl_health;
	size_t health_offset;
	/* Nonzero: loss() gives one process's loss on the global batch when the context is
	 * distributed (engine/dist.h): samples are compared only through op_dist_gather_rows and
	 * batchnorm, and any queue or target network is updated from gathered rows. The runner then
	 * sums the ranks' gradients. Methods without it refuse to run as several processes. */
	int data_parallel;
} PretextMethod;

/* NULL if unknown. The registry lists every method the spec accepts, "none" included. */
const PretextMethod *method_find(const char *name);
int method_count(void);
const PretextMethod *method_at(int i);
const ParamDef *method_param(const PretextMethod *m, const char *name);   /* NULL if unknown */
/* Fill config (METHOD_CONFIG_MAX bytes) with m's defaults. 0, or -1 for a broken table. */
int method_config_default(const PretextMethod *m, void *config);

#endif
