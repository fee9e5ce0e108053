/* optim.h - optimizers, schedules, clipping and EMA over a ParamSet.
 *
 *   OptimConfig oc; optim_config_default(&oc, OPT_ADAMW);
 *   Optim *o; optim_new(&oc, ps, &o);
 *   ... ctx_backward ...
 *   float lr = schedule_lr(&oc, step, total_steps);
 *   optim_clip_grad_norm(ps, oc.grad_clip);      // returns the pre-clip global norm
 *   optim_step(o, lr);
 *   paramset_zero_grad(ps);
 *   optim_ema(target_ps, "target.", online_ps, "online.", tau);  // target = tau*target + (1-tau)*online
 */
#ifndef SSLD_ENGINE_OPTIM_H
#define SSLD_ENGINE_OPTIM_H

#include <stdint.h>

#include "params.h"

typedef enum OptimKind { OPT_SGD, OPT_ADAMW, OPT_LARS } OptimKind;
typedef enum ScheduleKind { SCHED_CONSTANT, SCHED_COSINE } ScheduleKind;

typedef struct OptimConfig {
	OptimKind kind;
	float lr;
	float weight_decay;      /* not applied to params without PARAM_DECAY (biases, norms) */
	float momentum;          /* SGD / LARS */
	int nesterov;            /* SGD */
	float beta1, beta2, eps; /* AdamW */
	float trust_coef;        /* LARS eta (0.001) */
	ScheduleKind schedule;
	int64_t warmup_steps;    /* linear warmup from 0 */
	float min_lr;            /* cosine floor */
	float grad_clip;         /* global-norm clip, 0 = off */
} OptimConfig;

typedef struct Optim Optim;

void optim_config_default(OptimConfig *c, OptimKind kind);
int optim_new(const OptimConfig *c, ParamSet *ps, Optim **out);   /* moments allocated here */
void optim_free(Optim *o);
float schedule_lr(const OptimConfig *c, int64_t step, int64_t total_steps);
float optim_clip_grad_norm(ParamSet *ps, float max_norm);          /* returns the global norm */
void optim_step(Optim *o, float lr);
int64_t optim_steps(const Optim *o);
/* Optimizer state for checkpoints: each moment buffer as a named tensor ("adam.m.<param>"). */
int optim_state_count(const Optim *o);
Tensor *optim_state_at(const Optim *o, int i, const char **name);
void optim_set_steps(Optim *o, int64_t steps);
/* EMA: every param of dst under dst_prefix = tau*dst + (1-tau)*src (same name after the prefix). */
int optim_ema(ParamSet *dst, const char *dst_prefix, const ParamSet *src, const char *src_prefix,
              float tau);

#endif
