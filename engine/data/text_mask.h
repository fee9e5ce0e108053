/* text_mask.h - BERT-style corruption of token sequences for masked language modelling.
 *
 * Each position is selected with probability select_p (BERT: 0.15); a selected token becomes the
 * mask id with p_mask (0.8), a random token with p_random (0.1), or stays itself (the rest, 0.1).
 * The model must predict the original token at every selected position: targets[i] holds it there
 * and -1 elsewhere, which is exactly the label format op_cross_entropy ignores.
 *
 *   TextMaskConfig mc; text_mask_config_default(&mc);     // 15%, 80/10/10, mask id 0, vocab 256
 *   int n_sel = text_mask_apply(&mc, rng, ids, n, corrupted, targets, NULL);
 *
 * With the byte vocabulary, id 0 never occurs in text, so it serves as the mask token by default;
 * a model with a separate mask token sets mask_id = 256 and vocab 257 (random replacements are
 * drawn from [first_random_id, vocab) without the mask id).
 */
#ifndef SSLD_DATA_TEXT_MASK_H
#define SSLD_DATA_TEXT_MASK_H

#include <stdint.h>

#include "../rng.h"

typedef struct TextMaskConfig {
	float select_p;       /* share of positions selected as targets (0.15) */
	float p_mask;         /* of the selected: replaced by mask_id (0.8) */
	float p_random;       /* of the selected: replaced by a random token (0.1); the rest stay */
	int mask_id;          /* 0 */
	int vocab;            /* token ids are in [0, vocab) (256) */
	int first_random_id;  /* random replacements come from [first_random_id, vocab) (1) */
	int pad_id;           /* positions holding pad_id are never selected (-1 = none) */
	int at_least_one;     /* select one position when the draw selected none (1) */
} TextMaskConfig;

void text_mask_config_default(TextMaskConfig *c);

/* ids, out_ids, targets (n); out_ids may alias ids. mask (n) may be NULL: 1 at selected
 * positions, else 0. Returns the number of selected positions. */
int text_mask_apply(const TextMaskConfig *c, Rng *rng, const int *ids, int n, int *out_ids,
                    int *targets, uint8_t *mask);

#endif
