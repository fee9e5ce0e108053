/* augment.h - image augmentations for 28x28-style grayscale (or C-channel) images.
 *
 * Each augmentation is configured from the job JSON (workers/jobspec.c fills an AugConfig) and
 * has defaults suited to 28x28 grayscale; `p` is the probability it is applied (0 disables).
 * augment_apply transforms one image with one random draw of every enabled transform, in the
 * fixed order listed in AugConfig. Two views for contrastive methods are two calls with
 * independent randomness (and, BYOL-style, possibly two different configs): aug_two_views.
 * Geometry (crop, flip, rotation, translation) is composed into one bilinear resampling; areas
 * that come from outside the input read 0. Parameters can be set by dotted name ("crop.scale_min")
 * with range checks (aug_config_set), which is how the job JSON's "augment" object maps here.
 *
 *   AugConfig cfg; aug_config_default_simclr(&cfg);
 *   aug_apply(&cfg, rng, src, dst, 1, 28, 28, scratch);   // src, dst (C,H,W)
 */
#ifndef SSLD_DATA_AUGMENT_H
#define SSLD_DATA_AUGMENT_H

#include <stddef.h>

#include "../rng.h"

typedef struct AugConfig {
	struct { float p, scale_min, scale_max, ratio_min, ratio_max; } crop;     /* random resized crop */
	struct { float p; } hflip;
	struct { float p, max_degrees; int multiples_of_90; } rotate;            /* any angle in [-max,max], or k*90 */
	struct { float p, max_fraction; } translate;                             /* whole-pixel shift up to max_fraction*size */
	struct { float p, brightness, contrast, saturation, hue; } jitter;       /* factors in [1-b,1+b], [1-c,1+c], [1-s,1+s];
	                                                                          * hue shift in [-h,h] turns (saturation and
	                                                                          * hue act on 3-channel images only) */
	struct { float p; } grayscale;                                           /* RGB -> luma in all 3 channels (C = 3 only) */
	struct { float p, sigma_min, sigma_max; } blur;                          /* gaussian blur sigma in pixels */
	struct { float p, threshold; } solarize;                                 /* x > t -> 1 - x */
	struct { float p; } invert;
	struct { float p, scale_min, scale_max; } erase;                         /* erase (to 0) a rectangle: area share, aspect 0.3..3.3 */
	struct { float p, std; } noise;                                          /* additive gaussian noise, std */
	struct { float p, ratio; int patch; } patch_mask;                        /* zero round(ratio*cells) patch x patch cells */
	int clamp;                                                               /* clamp output to [0,1] (default 1) */
} AugConfig;

void aug_config_none(AugConfig *c);            /* everything disabled (identity) */
void aug_config_default_simclr(AugConfig *c);  /* crop(0.2-1) + flip + jitter(p .8) + blur(p .5) + erase(p .25): the contrastive default */
void aug_config_default_light(AugConfig *c);   /* light: small translate + flip (supervised / fine-tune) */
/* BYOL's asymmetric pair: SimCLR set; view 1 blur p 1.0; view 2 blur p 0.1, solarize p 0.2. */
void aug_config_default_byol(AugConfig *v1, AugConfig *v2);

/* Set one parameter by its dotted name ("crop.p", "crop.scale_min", "rotate.multiples_of_90",
 * "clamp", ...) after checking its range. 0, -ENOENT for an unknown name, -ERANGE for a
 * value out of range; err names the key ("crop.scale_min: must be in [0.01, 1], got 2"). */
int aug_config_set(AugConfig *c, const char *key, double value, char *err, size_t errlen);
/* Every range plus min <= max pairs. 0 or -ERANGE with the offending key in err. */
int aug_config_validate(const AugConfig *c, char *err, size_t errlen);
/* The i-th parameter name (0-based), NULL past the end: for "did you mean" and catalogues. */
const char *aug_param_name(int i);

/* Colour ------------------------------------------------------------------------------------- */
/* Per-channel statistics of n images (n,C,H,W): mean[c] and std[c] (population, floored at 1e-6),
 * accumulated in double. The training pixels' statistics are what the encoder is normalised with. */
void aug_channel_stats(const float *x, size_t n, int c, int h, int w, float *mean, float *std);
/* In place: x = (x - mean[c]) / std[c] over n images (n,C,H,W); aug_denormalize undoes it (for
 * grids and dashboard images). */
void aug_normalize(float *x, size_t n, int c, int h, int w, const float *mean, const float *std);
void aug_denormalize(float *x, size_t n, int c, int h, int w, const float *mean, const float *std);
/* One colour jitter draw applied to a (3,H,W) image with the given factors: brightness and
 * contrast factors, saturation factor, hue shift in turns (exposed for tests). c = 1 applies
 * brightness and contrast only. */
void aug_color_jitter(float *img, int c, int h, int w, float brightness, float contrast,
                      float saturation, float hue);
/* (3,H,W) in place: every channel becomes the luma 0.299 R + 0.587 G + 0.114 B. */
void aug_grayscale(float *img, int h, int w);

/* Scratch floats aug_apply needs for a (C,H,W) image. */
size_t aug_scratch_floats(int c, int h, int w);
/* src, dst (C,H,W); dst may not alias src. scratch: aug_scratch_floats(c,h,w) floats.
 * cfg NULL = identity (a copy). No allocation; thread-safe with one rng and scratch per thread.
 * Geometric transforms are skipped for images above 1024 pixels a side. */
void aug_apply(const AugConfig *cfg, Rng *rng, const float *src, float *dst, int c, int h, int w,
               float *scratch);
/* Two views of one image: cfg2 NULL = same settings; independent draws per view.
 * src, dst1, dst2 (C,H,W). */
void aug_two_views(const AugConfig *cfg1, const AugConfig *cfg2, Rng *rng, const float *src,
                   float *dst1, float *dst2, int c, int h, int w, float *scratch);
/* Exact rotation by k*90 degrees counter-clockwise (as seen with y pointing down), the rotation
 * pretext's transform. src, dst (C,H,W), no aliasing; odd k needs h == w (-EINVAL). */
int aug_rotate90(const float *src, float *dst, int c, int h, int w, int k);
/* One random-resized-crop box draw in pixel-edge coordinates [x0, x0+cw] x [y0, y0+ch], inside
 * the image (exposed for tests and for methods that crop themselves). */
void aug_draw_crop(const AugConfig *cfg, Rng *rng, int h, int w, float *x0, float *y0, float *cw,
                   float *ch);

#endif
