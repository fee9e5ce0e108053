/* lm_config.h - the masked_lm/autoregressive_lm config the language tests build their methods with,
 * so the gradient checks and the unit tests set the same parameters through the same table and
 * differ only where they say so (the masking probability). */
#ifndef SSLD_TESTS_LM_CONFIG_H
#define SSLD_TESTS_LM_CONFIG_H

#include "methods/method.h"

/* Fills cfg with m's defaults, then (masked_lm; autoregressive_lm has no parameters) mask_prob,
 * mask_token_prob 0.8 and random_token_prob 0.1, stored through m's table. 0, or -1 after printing
 * which method could not be filled. */
int lm_method_config(const PretextMethod *m, unsigned char *cfg, double mask_prob);

#endif
