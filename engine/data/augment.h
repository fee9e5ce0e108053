/* augment.h - image augmentations for 28x28-style grayscale (or C-channel) images.
 *
 * Each augmentation is configured from the job JSON (workers/jobspec.c fills an AugConfig) and
 * has defaults suited to 28x28 grayscale; `p` is the probability it is applied (0 disables).
 * augment_apply transforms one image with one random draw of every enabled transform, in the
 * fixed order listed in AugConfig. Two views for contrastive methods are two calls with
 * independent randomness (and, BYOL-style, possibly two different configs).
 *
 *   AugConfig cfg; aug_config_default_simclr(&cfg);
 *   aug_apply(&cfg, rng, src, dst, 1, 28, 28, scratch);   // src, dst (C,H,W)
 */
#ifndef SSLD_DATA_AUGMENT_H
#define SSLD_DATA_AUGMENT_H

#include "../rng.h"

typedef struct AugConfig {
	struct { float p, scale_min, scale_max, ratio_min, ratio_max; } crop;     /* random resized crop */
	struct { float p; } hflip;
	struct { float p, max_degrees; int multiples_of_90; } rotate;            /* any angle in [-max,max], or k*90 */
	struct { float p, max_fraction; } translate;                             /* shift up to max_fraction*size */
	struct { float p, brightness, contrast; } jitter;                        /* factors in [1-b,1+b], [1-c,1+c] */
	struct { float p, sigma_min, sigma_max; } blur;                          /* gaussian blur sigma in pixels */
	struct { float p, threshold; } solarize;                                 /* x > t -> 1 - x */
	struct { float p; } invert;
	struct { float p, scale_min, scale_max; } erase;                         /* random erasing (cutout) area fraction */
	struct { float p, std; } noise;                                          /* additive gaussian noise, std */
	struct { float p, ratio; int patch; } patch_mask;                        /* zero a share of patch x patch cells */
	int clamp;                                                               /* clamp output to [0,1] (default 1) */
} AugConfig;

void aug_config_none(AugConfig *c);            /* everything disabled (identity) */
void aug_config_default_simclr(AugConfig *c);  /* crop(0.3-1) + flip + jitter + blur + erase: the contrastive default */
void aug_config_default_light(AugConfig *c);   /* light: small translate + flip (supervised / fine-tune) */

/* Scratch floats aug_apply needs for a (C,H,W) image. */
size_t aug_scratch_floats(int c, int h, int w);
/* src, dst (C,H,W); dst may not alias src. scratch: aug_scratch_floats(c,h,w) floats. */
void aug_apply(const AugConfig *cfg, Rng *rng, const float *src, float *dst, int c, int h, int w,
               float *scratch);

#endif
