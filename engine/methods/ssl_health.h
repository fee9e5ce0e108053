/* ssl_health.h - health metrics of self-supervised embeddings, streamed while a method trains so
 * a user sees collapse (every sample mapped to the same point, or to a few directions) minutes into
 * a run instead of after an hour of evaluation.
 *
 * Per measured batch of embeddings z (n,d) (the vectors the loss sees) and, when the method has
 * them, their positives z2 (n,d) row-wise:
 *   std_mean, std_min  per-dimension standard deviation of the L2-normalised z, times sqrt(d):
 *                      about 1 for embeddings spread over the sphere, 0 when collapsed
 *                      (SimSiam, Chen & He 2021, section 4.1);
 *   eff_rank           effective rank of the centred, normalised batch: exp of the entropy of its
 *                      normalised singular values (Roy & Vetterli 2007), in [1, min(n,d)] (at most
 *                      SSL_HEALTH_MAX_RANK rows are used);
 *   alignment          E ||f(x) - f(x+)||^2 over positive pairs (Wang & Isola 2020, alpha 2):
 *                      0 = views agree, lower is better;
 *   uniformity         log E exp(-2 ||f(x) - f(y)||^2) over distinct samples of z (t = 2):
 *                      lower = more uniform; 0 when collapsed (about -3.8 for uniform points on a
 *                      high-dimensional sphere, -4 is the limit).
 * A batch is flagged collapsed when std_mean < SSL_HEALTH_STD_FLOOR or eff_rank <
 * SSL_HEALTH_RANK_FLOOR.
 *
 * A method owns one SslMonitor and feeds it from its loss every step; every `every` calls the
 * monitor measures and reports "health/std_mean", "health/std_min", "health/eff_rank",
 * "health/alignment", "health/uniformity" and "collapsed" (0 or 1) through the MetricSink. The
 * runner turns "collapsed" = 1 into a RUNNER_WARNING event. The scratch memory is allocated once
 * by ssl_monitor_new, so observing never touches the heap.
 *
 *   SslMonitor *mon; ssl_monitor_new(2 * batch, proj_dim, 50, &mon);
 *   ... in the loss:  ssl_monitor_observe(mon, z->data, z->data + B * D, B, D, sink);
 *   ssl_monitor_free(mon);
 *
 * The online kNN monitor needs labels, so the runner calls it (not the method): ssl_health_knn
 * embeds a small labelled slice of the training split with the encoder (eval mode) and scores a
 * cosine kNN, reported as "health/knn_accuracy".
 */
#ifndef SSLD_METHODS_SSL_HEALTH_H
#define SSLD_METHODS_SSL_HEALTH_H

#include <stddef.h>

#include "../ctx.h"
#include "../data/dataset.h"
#include "../model.h"
#include "../tensor.h"
#include "method.h"

#define SSL_HEALTH_MAX_RANK 128       /* rows used for the effective rank (Jacobi on <= 128x128) */
#define SSL_HEALTH_STD_FLOOR 0.1      /* normalised std below this = collapsed */
#define SSL_HEALTH_RANK_FLOOR 1.5     /* effective rank below this = collapsed to a line */
#define SSL_HEALTH_EVERY 50           /* default measuring interval in steps */
#define SSL_HEALTH_KNN_EVERY 250      /* default kNN monitor interval in steps */

/* The health settings every contrastive, non-contrastive and multimodal method takes: a field of
 * its config struct, described by SSL_HEALTH_PARAMS in its parameter table. */
typedef struct SslHealthConfig {
	int health_every;      /* steps between health metrics (0 = off) */
	int knn_every;         /* steps between online kNN accuracies (0 = off; the runner's) */
} SslHealthConfig;

/* The two parameter rows of an SslHealthConfig field f of config struct T. */
#define SSL_HEALTH_PARAMS(T, f)                                                                  \
	{ "health_every", PARAM_INTEGER, .def = SSL_HEALTH_EVERY, .min = 0, .max = 1000000,           \
	  .help = "steps between embedding health metrics (std, effective rank, alignment, "           \
	          "uniformity, collapsed); 0 = off",                                                  \
	  PARAM_AT(T, f.health_every) },                                                              \
	{ "knn_every", PARAM_INTEGER, .def = SSL_HEALTH_KNN_EVERY, .min = 0, .max = 1000000,          \
	  .help = "steps between online kNN accuracies on a small labelled slice of the training "      \
	          "split (health/knn_accuracy); 0 = off",                                             \
	  PARAM_AT(T, f.knn_every) }

typedef struct SslHealth {
	double std_mean, std_min;
	double eff_rank;
	double alignment;      /* NAN when no positives were given */
	double uniformity;
	int collapsed;
	int n, d;
} SslHealth;

/* One-shot measurement of z1 (n,d) with positives z2 (n,d) or NULL. scratch holds
 * ssl_health_scratch_bytes(n,d) bytes, aligned for doubles (malloc'd memory is). Returns 0, or
 * -EINVAL for n < 2 or d < 1. */
size_t ssl_health_scratch_bytes(int n, int d);
int ssl_health_compute(const float *z1, const float *z2, int n, int d, void *scratch,
                       SslHealth *out);

/* Mean cosine similarity of the row pairs (z1[i], z2[i]) of two (n,d) matrices: the positives'
 * agreement every contrastive method streams as "pos_cosine" (1 = trivially equal views). */
double ssl_pair_cosine(const float *z1, const float *z2, int n, int d);

typedef struct SslMonitor SslMonitor;

/* max_n rows of width d at most; every = measuring interval in observe calls (0 = never).
 * 0, -EINVAL or -ENOMEM. */
int ssl_monitor_new(int max_n, int d, int every, SslMonitor **out);
void ssl_monitor_free(SslMonitor *m);
/* Count one step; on the first call and every `every` calls measure z1 (n,d) [and positives
 * z2 (n,d) or NULL] and report them to sink. n above max_n uses the first max_n rows. Returns 1
 * when it measured, 0 otherwise. */
int ssl_monitor_observe(SslMonitor *m, const float *z1, const float *z2, int n,
                        const MetricSink *sink);
/* The last measurement (n = 0 before the first). */
const SslHealth *ssl_monitor_last(const SslMonitor *m);
/* The health settings inside a method's filled config; NULL when m does not stream them. */
const SslHealthConfig *ssl_health_config(const PretextMethod *m, const void *config);

/* Online kNN monitor: the first n_bank training samples (labelled) are the memory bank, the last
 * n_query training samples the queries; cosine kNN with k = 20, temperature 0.07 on the encoder's
 * features (eval mode, no grad). *acc in [0,1]. 0, or < 0 with err set (unlabelled data, too few
 * samples, out of memory). */
int ssl_health_knn(Encoder *enc, const Dataset *ds, int n_bank, int n_query, uint64_t seed,
                   double *acc, char *err, size_t errlen);

/* ---- The methods' losses --------------------------------------------------------------------
 * Composed from gradient-checked ops (ops.h) in the method files and exported so
 * tests/contrastive can check each loss's gradient as a whole. Each returns a scalar (1). */

// z (N,D) -> (z - mean) / sqrt(var + eps) per column, biased variance (BatchNorm1d without affine)
Tensor *ssl_standardize(Ctx *ctx, Tensor *z, float eps);
// q (N,D) query embeddings (normalised inside), k (N,D) unit keys, queue (K,D) unit negatives
// -> InfoNCE with logits [q.k, q.queue] / temperature (moco.c)
Tensor *moco_contrastive_loss(Ctx *ctx, Tensor *q, Tensor *k, Tensor *queue, float temperature);
// p (N,P) predictions, zt (N,P) target projections of the other view (no grad)
// -> 4 - 4 * mean_i cos(p_i, zt_i): BYOL's L(1->2) + L(2->1) when N = 2B rows (byol.c)
Tensor *byol_regression_loss(Ctx *ctx, Tensor *p, Tensor *zt);
// z1, z2 (N,D) -> sum_i (1 - C_ii)^2 + lambda sum_{i!=j} C_ij^2, C = std(z1)^T std(z2) / N;
// parts (may be NULL) receive the two sums, unweighted (barlow_twins.c)
Tensor *barlow_twins_loss(Ctx *ctx, Tensor *z1, Tensor *z2, float lambda, double parts[2]);
// z1, z2 (N,D) -> sim_w * invariance + var_w * variance + cov_w * covariance; parts (may be
// NULL) receive the three terms unweighted (vicreg.c)
Tensor *vicreg_loss(Ctx *ctx, Tensor *z1, Tensor *z2, float sim_w, float var_w, float cov_w,
                    double parts[3]);
// img, txt (N,E) unit rows, logit_scale (1) = log(1/T) -> (InfoNCE(img->txt) + InfoNCE(txt->img))/2
// with logits exp(logit_scale) * img txt^T (clip.c)
Tensor *clip_loss(Ctx *ctx, Tensor *img, Tensor *txt, Tensor *logit_scale);

#endif
