/* byte_lm.h - what the byte-level language models (autoregressive_lm, masked_lm) share, described
 * once: which encoder and dataset they accept and the window T that follows from them, the batch
 * of a training step drawn from (seed, step) alone (random windows of a byte stream, or whole
 * records in one seeded order per epoch), and a record as token ids.
 *
 *   ByteLm lm;
 *   byte_lm_init(&lm, "masked_lm", 0x6d6c6dULL, env, err, errlen);   // checks env, sets B and T
 *   make_batch:  Rng rng; byte_lm_draw(&lm, ds, seed, step, &rng, x, y, err, errlen);
 *                ... rng goes on to draw the method's own randomness (masks) ...
 *   destroy:     byte_lm_close(&lm);
 *
 * The losses, heads, masks and held-out metrics are each method's own.
 */
#ifndef SSLD_METHODS_BYTE_LM_H
#define SSLD_METHODS_BYTE_LM_H

#include <stddef.h>
#include <stdint.h>

#include "method.h"

typedef struct ByteLm {
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
 * for a byte stream, the training text. 0, or -EINVAL with err naming what is wrong. */
int byte_lm_init(ByteLm *lm, const char *method, uint64_t salt, const MethodEnv *env, char *err,
                 size_t errlen);
void byte_lm_close(ByteLm *lm);

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
