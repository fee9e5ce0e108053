/* text_mask.c - BERT's 15% / 80-10-10 token corruption (see text_mask.h).
 *
 * Selection is an independent coin per position (as BERT's original data generator), not an
 * exact count, so sequence statistics match the paper; at_least_one keeps every sequence useful.
 * It does not know about words or whole-word masking: ids are bytes or tokens as given.
 */
#include "text_mask.h"

#include <string.h>

void text_mask_config_default(TextMaskConfig *c)
{
	memset(c, 0, sizeof *c);
	c->select_p = 0.15f;
	c->p_mask = 0.8f;
	c->p_random = 0.1f;
	c->mask_id = 0;
	c->vocab = 256;
	c->first_random_id = 1;
	c->pad_id = -1;
	c->at_least_one = 1;
}

static int random_token(const TextMaskConfig *c, Rng *rng)
{
	int lo = c->first_random_id < 0 ? 0 : c->first_random_id;
	int span = c->vocab - lo;
	if (span <= 0)
		return c->mask_id;
	int in_span = c->mask_id >= lo && c->mask_id < c->vocab;
	if (in_span && span == 1)
		return c->mask_id;
	int t = lo + (int)rng_below(rng, (uint32_t)(span - in_span));
	if (in_span && t >= c->mask_id)
		t++;   /* skip the mask id itself */
	return t;
}

static void corrupt(const TextMaskConfig *c, Rng *rng, const int *ids, int i, int *out_ids,
                    int *targets, uint8_t *mask)
{
	int orig = ids[i];
	targets[i] = orig;
	if (mask)
		mask[i] = 1;
	float r = rng_uniform(rng);
	if (r < c->p_mask)
		out_ids[i] = c->mask_id;
	else if (r < c->p_mask + c->p_random)
		out_ids[i] = random_token(c, rng);
	else
		out_ids[i] = orig;
}

int text_mask_apply(const TextMaskConfig *c, Rng *rng, const int *ids, int n, int *out_ids,
                    int *targets, uint8_t *mask)
{
	int sel = 0, eligible = 0;
	for (int i = 0; i < n; i++) {
		int id = ids[i];
		out_ids[i] = id;
		targets[i] = -1;
		if (mask)
			mask[i] = 0;
		if (c->pad_id >= 0 && id == c->pad_id)
			continue;
		eligible++;
		if (rng_uniform(rng) < c->select_p) {
			corrupt(c, rng, ids, i, out_ids, targets, mask);
			sel++;
		}
	}
	if (sel == 0 && c->at_least_one && eligible > 0) {
		int k = (int)rng_below(rng, (uint32_t)eligible);
		for (int i = 0; i < n; i++) {
			if (c->pad_id >= 0 && out_ids[i] == c->pad_id)
				continue;
			if (k-- == 0) {
				corrupt(c, rng, ids, i, out_ids, targets, mask);
				sel = 1;
				break;
			}
		}
	}
	return sel;
}
