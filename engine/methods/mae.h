/* mae.h - the part of mae.c (MAE, He et al. 2022) that is drawn the same way elsewhere: the random
 * patch masks. bench/compare_ssld.c times mae.c's step against PyTorch and draws its masks here,
 * so both run the same masking. The method itself is reached through method.h like any other.
 */
#ifndef SSLD_METHODS_MAE_H
#define SSLD_METHODS_MAE_H

#include "../rng.h"

/* A fresh random mask per sample of B, each over N patches of which K stay visible: keep (B*K)
 * the visible patch indices (ascending per sample), masked (B*N) 1 for a masked patch, and gather
 * (B*N): for patch p of sample b, the row of the [visible | mask tokens] sequence that belongs at
 * position p. perm (N) is scratch. */
void mae_draw_masks(int N, int K, int B, Rng *rng, int *perm, int *keep, float *masked,
                    int *gather);

#endif
