/* two_view.h - what the two-view (siamese) methods have in common, described once.
 *
 * simclr, barlow_twins, vicreg and contrastive_audio are the same network around different losses:
 * an encoder ("encoder.*") and an MLP head ("proj.*", BatchNorm + ReLU between layers) over both
 * views stacked into one batch, plus the collapse monitor (ssl_health.h) fed with the two halves.
 * Their state structs start with a TwoView, so the encoder accessor and destroy are shared too.
 * byol and moco add a target network ("target.encoder.*", "target.proj.*") that starts as a frozen
 * copy of the online one and follows it by EMA; building it, its forward, the cosine rate schedule
 * and the update are here as well.
 *
 *   typedef struct Simclr { TwoView tv; float temperature; } Simclr;   // tv first
 *   TwoViewHead head = { .method = "simclr", .noun = "projection head", .hidden = 512,
 *                        .hidden_layers = 1, .out = 128, .health_every = 50 };
 *   two_view_create(env, ps, sizeof(Simclr), &head, state, err, errlen);
 *   loss:     Tensor *z = two_view_embed(ctx, &s->tv, views);   // (2B',P) view 1 rows, then view 2
 *             ... loss of z ...; two_view_observe(&s->tv, z, 1, sink);
 *   table:    .encoder = two_view_encoder, .destroy = two_view_destroy
 *
 * The losses, the views' augmentation and everything else of a method stay in its own file.
 */
#ifndef SSLD_METHODS_TWO_VIEW_H
#define SSLD_METHODS_TWO_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "method.h"
#include "ssl_health.h"

typedef struct TwoView {
	Encoder *encoder;
	Mlp *proj;
	SslMonitor *health;
	Encoder *t_encoder;     /* the target network (TwoViewHead.target), else NULL */
	Mlp *t_proj;
} TwoView;

/* The head a method asks for: in -> hidden (x hidden_layers) -> out, and the monitor's rate. */
typedef struct TwoViewHead {
	const char *method;     /* "simclr", for error messages */
	const char *noun;       /* what the method calls its head: "projection head", "expander" */
	int hidden;             /* width of each hidden layer */
	int hidden_layers;      /* 1 or 2 */
	int out;                /* embedding size P */
	int health_every;       /* SslHealthConfig.health_every */
	int plain;              /* nonzero: no BatchNorm in the head (MoCo v2's fc-ReLU-fc) */
	int target;             /* nonzero: also the target network, each part built right after
	                           its online twin, then copied from it and frozen (PARAM_FROZEN) */
} TwoViewHead;

/* Allocates a zeroed state of `size` bytes (a struct whose first member is a TwoView), builds the
 * encoder from env, the head and a monitor of 2 * env->batch_size rows in it, and stores it in
 * *state. 0, or < 0 with err set and nothing left allocated. */
int two_view_create(const MethodEnv *env, ParamSet *ps, size_t size, const TwoViewHead *head,
                    void **state, char *err, size_t errlen);
/* Frees a state made by two_view_create (NULL is a no-op): the PretextMethod.destroy of methods
 * that own nothing else. Others free their own parts first. */
void two_view_destroy(void *state);
/* The PretextMethod.encoder of a state whose first member is a TwoView. */
Encoder *two_view_encoder(void *state);

// x (N,C,H,W) -> (N,P): encoder then head
Tensor *two_view_project(Ctx *ctx, TwoView *tv, Tensor *x);
// x (N,C,H,W) -> (N,P): the target network's encoder then head
Tensor *two_view_target_project(Ctx *ctx, TwoView *tv, Tensor *x);
/* views[0], views[1] (B,C,H,W) -> (2B',P): both views in one forward (BatchNorm sees the 2B
 * samples together, as the reference implementations do), gathered over the ranks of a
 * distributed context (rows of view 1 of every rank, then of view 2). */
Tensor *two_view_embed(Ctx *ctx, TwoView *tv, Tensor *const *views);
/* z (2B,P), view 1 rows then view 2: feeds the monitor and, when pos_cosine is set, first reports
 * the positives' mean cosine as "pos_cosine". Nonzero when the monitor measured. */
int two_view_observe(TwoView *tv, const Tensor *z, int pos_cosine, const MetricSink *sink);

/* ---- target networks (byol, moco) ------------------------------------------------------------ */

/* EMA rate at schedule position step of total_steps on a cosine from base to 1:
 * 1 - (1 - base) (cos(pi k) + 1) / 2 with k = (step + 1) / total_steps, at most 1. */
float two_view_target_rate(float base, int64_t step, int64_t total_steps);
/* target = rate * target + (1 - rate) * online, for the encoder and the head. */
void two_view_target_update(ParamSet *ps, float rate);

#endif
