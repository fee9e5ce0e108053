/* byte_lm.h - what the byte-level language models (autoregressive_lm, masked_lm) share, described
 * once: which encoder and dataset they accept, the window T that follows from them, the
 * transformer encoder itself ("encoder.*"), the batch of a training step drawn from (seed, step)
 * alone (random windows of a byte stream, or whole records in one seeded order per epoch), and a
 * record as token ids.
 *
 *   typedef struct MaskedLm { ByteLm lm; ... } MaskedLm;     // lm first: byte_lm_encoder
 *   byte_lm_init(&s->lm, "masked_lm", 0x6d6c6dULL, 0, env, ps, err, errlen);   // bidirectional
 *   make_batch:  Rng rng; byte_lm_draw(&s->lm, ds, seed, step, &rng, x, y, err, errlen);
 *                ... rng goes on to draw the method's own randomness (masks) ...
 *   destroy:     byte_lm_close(&s->lm);
 *
 * The losses, heads, masks and held-out metrics are each method's own.
 */
#ifndef SSLD_METHODS_BYTE_LM_H
#define SSLD_METHODS_BYTE_LM_H

#include <stddef.h>
#include <stdint.h>

#include "../layers.h"
#include "method.h"

typedef struct ByteLm {
	Encoder *encoder;      /* the transformer over byte ids */
	Transformer *tf;       /* borrowed from encoder: wte (the tied output layer), dim, KV cache */
	const char *method;    /* "masked_lm": error messages */
	uint64_t salt;         /* the method's own batch stream */
	int B, T;              /* batch, window (model.context, or the record size) */
	int *perm;             /* records: this epoch's order of the training records */
	int perm_n;
	int64_t perm_epoch;    /* epoch and seed perm was drawn for (-1 = none) */
	uint64_t perm_seed;
} ByteLm;

/* Checks that env holds a transformer encoder over at least the 256 byte values and a text or
 * text_records dataset whose window (model.context, or the record size) fits model.context and,
 * for a byte stream, the training text, then builds the encoder in ps, causal or bidirectional
 * whatever the spec says. 0, or < 0 with err naming what is wrong (-EINVAL for the checks);
 * byte_lm_close is safe either way. */
int byte_lm_init(ByteLm *lm, const char *method, uint64_t salt, int causal, const MethodEnv *env,
                 ParamSet *ps, char *err, size_t errlen);
void byte_lm_close(ByteLm *lm);
/* The PretextMethod.encoder of a state whose first member is a ByteLm. */
Encoder *byte_lm_encoder(void *state);

/* The batch of training step `step` into x and y (B*T each): B random windows of the training
 * stream with their next bytes, or B whole records (y: next byte, -1 past the record's end).
 * Seeds *rng from (seed, salt, step) first and leaves it where the draw ended. 0, or < 0 with err
 * set. */
int byte_lm_draw(ByteLm *lm, const Dataset *ds, uint64_t seed, int64_t step, Rng *rng, int *x,
                 int *y, char *err, size_t errlen);

/* Record r of split (ds->train or ds->test) as T byte ids in x (0-padded) and, when y is not
 * NULL, its next bytes in y (-1 past the record's end). */
void byte_lm_record(const Dataset *ds, const Split *split, int r, int T, int *x, int *y);

#endif
