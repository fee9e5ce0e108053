/* params.h - a named set of parameters (and buffers such as BatchNorm running statistics).
 *
 * Each parameter is a Tensor with a dotted name, a persistent data buffer and a persistent grad
 * buffer (same size). Buffers (running mean/var) have no grad and are saved in checkpoints too.
 * Names are unique within the set.
 *
 *   ParamSet *ps = paramset_new();
 *   Tensor *w = paramset_add(ps, "encoder.fc1.weight", 2, (int[]){out, in}, PARAM_DECAY);
 *   paramset_zero_grad(ps);
 *   paramset_free(ps);       // frees every tensor it created
 */
#ifndef SSLD_ENGINE_PARAMS_H
#define SSLD_ENGINE_PARAMS_H

#include <stddef.h>

#include "tensor.h"

typedef enum ParamFlags {
	PARAM_DECAY = 1,      /* receives weight decay (weights); biases and norm params do not */
	PARAM_BUFFER = 2,     /* not trained (no grad): running statistics, queues */
	PARAM_FROZEN = 4,     /* has data but the optimizer skips it */
} ParamFlags;

typedef struct ParamSet ParamSet;

ParamSet *paramset_new(void);
void paramset_free(ParamSet *ps);
/* Zero-initialised; NULL on out of memory or duplicate name. The set owns the tensor. */
Tensor *paramset_add(ParamSet *ps, const char *name, int ndim, const int *shape, int flags);
int paramset_count(const ParamSet *ps);
Tensor *paramset_at(const ParamSet *ps, int i);
int paramset_flags_at(const ParamSet *ps, int i);
void paramset_set_flags_at(ParamSet *ps, int i, int flags);
Tensor *paramset_find(const ParamSet *ps, const char *name);
void paramset_zero_grad(ParamSet *ps);
size_t paramset_numel(const ParamSet *ps, int trainable_only);
/* Copy data of every parameter whose name starts with src_prefix into the one with the same name
 * after dst_prefix (e.g. "online.encoder." -> "target.encoder."); returns count or < 0. */
int paramset_copy_prefix(ParamSet *dst, const char *dst_prefix, const ParamSet *src,
                         const char *src_prefix);

#endif
