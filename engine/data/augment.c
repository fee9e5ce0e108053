/* augment.c - image augmentations, one random draw per enabled transform, fast on 28x28.
 *
 * The geometric transforms (random resized crop, horizontal flip, rotation, translation) are
 * composed into ONE affine map from output to input pixel centres, then the input is sampled once
 * with bilinear interpolation: no intermediate images, no trig per pixel, and no double blurring.
 * When the map is axis-aligned (no rotation, or a multiple of 90 degrees composed away) sampling is
 * separable: per-column and per-row indices and weights are precomputed and each output pixel is
 * four loads and three lerps. Points inside the input's pixel area [-0.5, W-0.5] are sampled with
 * edge clamping; points outside it read 0 (black, Fashion-MNIST's background). Integer maps (flip,
 * 90-degree turns, whole-pixel shifts) reproduce input pixels exactly.
 * The photometric transforms then work in place on the output. Randomness is drawn only for
 * transforms with p > 0, in the fixed order of AugConfig, so a seed reproduces a view exactly.
 * Colour ops (saturation, hue, random grayscale) act only on 3-channel images and draw no random
 * numbers on 1-channel ones, so grayscale runs reproduce exactly with or without them.
 */
#include "augment.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define AUG_MAX_SIDE 1024     /* per-row/column tap buffers: geometry needs w, h <= this */
#define AUG_MAX_RADIUS 12     /* gaussian blur kernel radius cap */
#define AUG_MAX_CELLS 4096    /* patch masking with exact counts; more cells fall back to Bernoulli */

/* ---------------------------------------------------------------------------------------------- */
/* Configurations                                                                                  */

void aug_config_none(AugConfig *c)
{
	memset(c, 0, sizeof *c);
	/* parameters ready so that setting p alone enables a sensible transform */
	c->crop.scale_min = 0.2f;
	c->crop.scale_max = 1.0f;
	c->crop.ratio_min = 3.0f / 4.0f;
	c->crop.ratio_max = 4.0f / 3.0f;
	c->rotate.max_degrees = 15.0f;
	c->translate.max_fraction = 0.1f;
	c->jitter.brightness = 0.4f;
	c->jitter.contrast = 0.4f;
	c->jitter.saturation = 0.4f;
	c->jitter.hue = 0.1f;
	c->blur.sigma_min = 0.1f;
	c->blur.sigma_max = 1.0f;
	c->solarize.threshold = 0.5f;
	c->erase.scale_min = 0.02f;
	c->erase.scale_max = 0.2f;
	c->noise.std = 0.05f;
	c->patch_mask.ratio = 0.5f;
	c->patch_mask.patch = 4;
	c->clamp = 1;
}

void aug_config_default_simclr(AugConfig *c)
{
	aug_config_none(c);
	c->crop.p = 1.0f;         /* scale 0.2..1, ratio 3/4..4/3, resized back to HxW bilinearly */
	c->hflip.p = 0.5f;
	c->jitter.p = 0.8f;       /* brightness, contrast, saturation 0.4, hue 0.1 (colour only) */
	c->grayscale.p = 0.2f;    /* colour only: a gray image is left alone and draws nothing */
	c->blur.p = 0.5f;         /* sigma 0.1..1 px: on 28x28 a larger blur erases the garment */
	c->erase.p = 0.25f;       /* 2%..20% of the area */
}

void aug_config_default_light(AugConfig *c)
{
	aug_config_none(c);
	c->translate.p = 1.0f;
	c->translate.max_fraction = 0.1f;   /* up to 2 px on 28x28 */
	c->hflip.p = 0.5f;
}

void aug_config_default_byol(AugConfig *v1, AugConfig *v2)
{
	/* BYOL's asymmetry: view 1 always blurred, never solarized; view 2 rarely blurred, sometimes
	 * solarized. */
	aug_config_default_simclr(v1);
	v1->blur.p = 1.0f;
	aug_config_default_simclr(v2);
	v2->blur.p = 0.1f;
	v2->solarize.p = 0.2f;
}

/* ---------------------------------------------------------------------------------------------- */
/* Parameters by name (the job JSON uses these dotted keys)                                        */

typedef struct AugParam {
	const char *name;
	size_t off;
	int is_int;
	double lo, hi;
} AugParam;

#define AF(f, lo, hi) { #f, offsetof(AugConfig, f), 0, lo, hi }
#define AI(f, lo, hi) { #f, offsetof(AugConfig, f), 1, lo, hi }
static const AugParam aug_params[] = {
	AF(crop.p, 0, 1), AF(crop.scale_min, 0.01, 1), AF(crop.scale_max, 0.01, 1),
	AF(crop.ratio_min, 0.1, 10), AF(crop.ratio_max, 0.1, 10),
	AF(hflip.p, 0, 1),
	AF(rotate.p, 0, 1), AF(rotate.max_degrees, 0, 180), AI(rotate.multiples_of_90, 0, 1),
	AF(translate.p, 0, 1), AF(translate.max_fraction, 0, 0.5),
	AF(jitter.p, 0, 1), AF(jitter.brightness, 0, 1), AF(jitter.contrast, 0, 1),
	AF(jitter.saturation, 0, 1), AF(jitter.hue, 0, 0.5),
	AF(grayscale.p, 0, 1),
	AF(blur.p, 0, 1), AF(blur.sigma_min, 0.01, 4), AF(blur.sigma_max, 0.01, 4),
	AF(solarize.p, 0, 1), AF(solarize.threshold, 0, 1),
	AF(invert.p, 0, 1),
	AF(erase.p, 0, 1), AF(erase.scale_min, 0.001, 1), AF(erase.scale_max, 0.001, 1),
	AF(noise.p, 0, 1), AF(noise.std, 0, 1),
	AF(patch_mask.p, 0, 1), AF(patch_mask.ratio, 0, 1), AI(patch_mask.patch, 1, 64),
	AI(clamp, 0, 1),
};
#undef AF
#undef AI
#define AUG_NPARAMS ((int)(sizeof aug_params / sizeof aug_params[0]))

const char *aug_param_name(int i)
{
	return i >= 0 && i < AUG_NPARAMS ? aug_params[i].name : NULL;
}

int aug_config_set(AugConfig *c, const char *key, double value, char *err, size_t errlen)
{
	for (int i = 0; i < AUG_NPARAMS; i++) {
		const AugParam *ap = &aug_params[i];
		if (strcmp(ap->name, key) != 0)
			continue;
		if (!(value >= ap->lo && value <= ap->hi)) {
			if (err && errlen)
				snprintf(err, errlen, "%s: must be in [%g, %g], got %g", key, ap->lo, ap->hi, value);
			return -ERANGE;
		}
		if (ap->is_int) {
			if (value != floor(value)) {
				if (err && errlen)
					snprintf(err, errlen, "%s: must be an integer, got %g", key, value);
				return -ERANGE;
			}
			*(int *)((char *)c + ap->off) = (int)value;
		} else {
			*(float *)((char *)c + ap->off) = (float)value;
		}
		return 0;
	}
	if (err && errlen)
		snprintf(err, errlen, "%s: unknown augmentation parameter", key);
	return -ENOENT;
}

int aug_config_validate(const AugConfig *c, char *err, size_t errlen)
{
	for (int i = 0; i < AUG_NPARAMS; i++) {
		const AugParam *ap = &aug_params[i];
		double v = ap->is_int ? *(const int *)((const char *)c + ap->off)
		                      : *(const float *)((const char *)c + ap->off);
		if (!(v >= ap->lo && v <= ap->hi)) {
			if (err && errlen)
				snprintf(err, errlen, "%s: must be in [%g, %g], got %g", ap->name, ap->lo, ap->hi, v);
			return -ERANGE;
		}
	}
	struct { const char *a, *b; float lo, hi; } pairs[] = {
		{"crop.scale_min", "crop.scale_max", c->crop.scale_min, c->crop.scale_max},
		{"crop.ratio_min", "crop.ratio_max", c->crop.ratio_min, c->crop.ratio_max},
		{"blur.sigma_min", "blur.sigma_max", c->blur.sigma_min, c->blur.sigma_max},
		{"erase.scale_min", "erase.scale_max", c->erase.scale_min, c->erase.scale_max},
	};
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
		if (pairs[i].lo > pairs[i].hi) {
			if (err && errlen)
				snprintf(err, errlen, "%s: must not exceed %s (%g > %g)", pairs[i].a, pairs[i].b,
				         (double)pairs[i].lo, (double)pairs[i].hi);
			return -ERANGE;
		}
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Geometry                                                                                        */

typedef struct Affine {      /* (x, y) -> (a*x + b*y + c, d*x + e*y + f) */
	float a, b, c, d, e, f;
} Affine;

/* m = m * n (apply n first, then m) */
static Affine aff_mul(Affine m, Affine n)
{
	Affine r;
	r.a = m.a * n.a + m.b * n.d;
	r.b = m.a * n.b + m.b * n.e;
	r.c = m.a * n.c + m.b * n.f + m.c;
	r.d = m.d * n.a + m.e * n.d;
	r.e = m.d * n.b + m.e * n.e;
	r.f = m.d * n.c + m.e * n.f + m.f;
	return r;
}

void aug_draw_crop(const AugConfig *cfg, Rng *rng, int h, int w, float *x0, float *y0, float *cw,
                   float *ch)
{
	float area = (float)h * (float)w;
	float lr0 = logf(cfg->crop.ratio_min), lr1 = logf(cfg->crop.ratio_max);
	for (int attempt = 0; attempt < 10; attempt++) {
		float s = rng_uniform_range(rng, cfg->crop.scale_min, cfg->crop.scale_max);
		float r = expf(rng_uniform_range(rng, lr0, lr1));
		float bw = sqrtf(area * s * r), bh = sqrtf(area * s / r);
		if (bw <= (float)w && bh <= (float)h) {
			*cw = bw;
			*ch = bh;
			*x0 = rng_uniform(rng) * ((float)w - bw);
			*y0 = rng_uniform(rng) * ((float)h - bh);
			return;
		}
	}
	/* fallback (as torchvision): the whole image, squeezed to the nearest allowed ratio */
	float r = (float)w / (float)h;
	float bw = (float)w, bh = (float)h;
	if (r < cfg->crop.ratio_min)
		bh = bw / cfg->crop.ratio_min;
	else if (r > cfg->crop.ratio_max)
		bw = bh * cfg->crop.ratio_max;
	*cw = bw;
	*ch = bh;
	*x0 = ((float)w - bw) * 0.5f;
	*y0 = ((float)h - bh) * 0.5f;
}

/* The output->input map for this draw; returns 0 when it is the identity. */
static int draw_geometry(const AugConfig *cfg, Rng *rng, int h, int w, Affine *out)
{
	Affine m = {1, 0, 0, 0, 1, 0};
	int any = 0;
	float cx = 0.5f * (float)(w - 1), cy = 0.5f * (float)(h - 1);
	/* Build input <- output as crop o flip o rotate o translate (rightmost applied first to the
	 * output coordinate). Draws happen in AugConfig order. */
	Affine crop = {1, 0, 0, 0, 1, 0}, flip = crop, rot = crop, tr = crop;
	if (cfg->crop.p > 0 && rng_uniform(rng) < cfg->crop.p) {
		float x0, y0, cw, ch;
		aug_draw_crop(cfg, rng, h, w, &x0, &y0, &cw, &ch);
		float sx = cw / (float)w, sy = ch / (float)h;
		crop = (Affine){sx, 0, x0 + 0.5f * sx - 0.5f, 0, sy, y0 + 0.5f * sy - 0.5f};
		any = 1;
	}
	if (cfg->hflip.p > 0 && rng_uniform(rng) < cfg->hflip.p) {
		flip = (Affine){-1, 0, (float)(w - 1), 0, 1, 0};
		any = 1;
	}
	if (cfg->rotate.p > 0 && rng_uniform(rng) < cfg->rotate.p) {
		float cs, sn;
		if (cfg->rotate.multiples_of_90) {
			int k = 1 + (int)rng_below(rng, 3);
			static const float c4[4] = {1, 0, -1, 0}, s4[4] = {0, 1, 0, -1};
			cs = c4[k];
			sn = s4[k];
		} else {
			float deg = rng_uniform_range(rng, -cfg->rotate.max_degrees, cfg->rotate.max_degrees);
			float rad = deg * 0.017453292519943295f;
			cs = cosf(rad);
			sn = sinf(rad);
		}
		/* input = R(-theta) (output - centre) + centre; theta > 0 turns content counter-clockwise
		 * on screen (y down), the same sense as aug_rotate90 with k = 1 */
		rot = (Affine){cs, -sn, cx - cs * cx + sn * cy, sn, cs, cy - sn * cx - cs * cy};
		any = 1;
	}
	if (cfg->translate.p > 0 && rng_uniform(rng) < cfg->translate.p) {
		float mx = cfg->translate.max_fraction * (float)w, my = cfg->translate.max_fraction * (float)h;
		float tx = rintf(rng_uniform_range(rng, -mx, mx)), ty = rintf(rng_uniform_range(rng, -my, my));
		tr = (Affine){1, 0, -tx, 0, 1, -ty};
		any = 1;
	}
	if (!any)
		return 0;
	m = aff_mul(crop, aff_mul(flip, aff_mul(rot, tr)));
	*out = m;
	return 1;
}

/* Per-axis sampling taps: weights 0 outside [-0.5, n-0.5], edge-clamped inside. */
static inline void axis_tap(float s, int n, int *i0, int *i1, float *w0, float *w1)
{
	if (!(s >= -0.5f && s <= (float)n - 0.5f)) {
		*i0 = *i1 = 0;
		*w0 = *w1 = 0.0f;
		return;
	}
	if (s < 0.0f)
		s = 0.0f;
	if (s > (float)(n - 1))
		s = (float)(n - 1);
	int k = (int)s;           /* s >= 0: truncation is floor */
	float f = s - (float)k;
	*i0 = k;
	*i1 = k + 1 < n ? k + 1 : k;
	*w0 = 1.0f - f;
	*w1 = f;
}

/* Axis-aligned maps: a horizontal pass resamples each needed input row into tmp (two taps per
 * output column, one when the x map hits whole pixels), then a vertical pass blends two tmp rows
 * per output row with whole-row loops the compiler vectorises. tmp: h*w floats. */
static void sample_separable(const Affine *m, const float *src, float *dst, int c, int h, int w,
                             float *tmp)
{
	int xi0[AUG_MAX_SIDE], xi1[AUG_MAX_SIDE], yi0[AUG_MAX_SIDE], yi1[AUG_MAX_SIDE];
	float xw0[AUG_MAX_SIDE], xw1[AUG_MAX_SIDE], yw0[AUG_MAX_SIDE], yw1[AUG_MAX_SIDE];
	int x_whole = 1;
	for (int u = 0; u < w; u++) {
		axis_tap(m->a * (float)u + m->c, w, &xi0[u], &xi1[u], &xw0[u], &xw1[u]);
		x_whole &= xw1[u] == 0.0f;
	}
	int rlo = h, rhi = -1;   /* input rows the output reads */
	for (int v = 0; v < h; v++) {
		axis_tap(m->e * (float)v + m->f, h, &yi0[v], &yi1[v], &yw0[v], &yw1[v]);
		if (yw0[v] != 0.0f || yw1[v] != 0.0f) {
			rlo = yi0[v] < rlo ? yi0[v] : rlo;
			rhi = yi1[v] > rhi ? yi1[v] : rhi;
		}
	}
	size_t plane = (size_t)h * w;
	for (int ch = 0; ch < c; ch++) {
		const float *img = src + ch * plane;
		float *out = dst + ch * plane;
		for (int r = rlo; r <= rhi; r++) {
			const float *row = img + (size_t)r * w;
			float *t = tmp + (size_t)r * w;
			if (x_whole)
				for (int u = 0; u < w; u++)
					t[u] = row[xi0[u]] * xw0[u];
			else
				for (int u = 0; u < w; u++)
					t[u] = row[xi0[u]] * xw0[u] + row[xi1[u]] * xw1[u];
		}
		for (int v = 0; v < h; v++) {
			float *o = out + (size_t)v * w;
			float a0 = yw0[v], a1 = yw1[v];
			const float *t0 = tmp + (size_t)yi0[v] * w, *t1 = tmp + (size_t)yi1[v] * w;
			if (a0 == 0.0f && a1 == 0.0f)
				memset(o, 0, (size_t)w * sizeof(float));
			else if (a1 == 0.0f && a0 == 1.0f)
				memcpy(o, t0, (size_t)w * sizeof(float));
			else
				for (int u = 0; u < w; u++)
					o[u] = t0[u] * a0 + t1[u] * a1;
		}
	}
}

/* u-interval of a row where lo <= f0 + k*u <= hi, intersected into [*u0, *u1] (floats). */
static void row_clip(float f0, float k, float lo, float hi, float *u0, float *u1)
{
	if (k == 0.0f) {
		if (!(f0 >= lo && f0 <= hi))
			*u1 = -1.0f;   /* empty */
		return;
	}
	float a = (lo - f0) / k, b = (hi - f0) / k;
	if (a > b) {
		float t = a;
		a = b;
		b = t;
	}
	*u0 = a > *u0 ? a : *u0;
	*u1 = b < *u1 ? b : *u1;
}

/* Any affine map (rotations): per output row, the run of pixels whose source lies inside the input
 * is found analytically, its taps computed once, then every channel gathers from them. */
static void sample_general(const Affine *m, const float *src, float *dst, int c, int h, int w)
{
	int off[AUG_MAX_SIDE], dx[AUG_MAX_SIDE], dy[AUG_MAX_SIDE];
	float fx[AUG_MAX_SIDE], fy[AUG_MAX_SIDE];
	size_t plane = (size_t)h * w;
	const float wm1 = (float)(w - 1), hm1 = (float)(h - 1);
	for (int v = 0; v < h; v++) {
		float sx0 = m->b * (float)v + m->c, sy0 = m->e * (float)v + m->f;
		float u0f = 0.0f, u1f = wm1;
		row_clip(sx0, m->a, -0.5f, (float)w - 0.5f, &u0f, &u1f);
		row_clip(sy0, m->d, -0.5f, (float)h - 0.5f, &u0f, &u1f);
		int u0 = (int)ceilf(u0f - 1e-4f), u1 = (int)floorf(u1f + 1e-4f);
		if (u0 < 0)
			u0 = 0;
		if (u1 > w - 1)
			u1 = w - 1;
		for (int u = u0; u <= u1; u++) {
			float sx = sx0 + m->a * (float)u, sy = sy0 + m->d * (float)u;
			sx = sx < 0.0f ? 0.0f : (sx > wm1 ? wm1 : sx);
			sy = sy < 0.0f ? 0.0f : (sy > hm1 ? hm1 : sy);
			int x0 = (int)sx, y0 = (int)sy;
			fx[u] = sx - (float)x0;
			fy[u] = sy - (float)y0;
			off[u] = y0 * w + x0;
			dx[u] = x0 + 1 < w ? 1 : 0;
			dy[u] = y0 + 1 < h ? w : 0;
		}
		for (int ch = 0; ch < c; ch++) {
			const float *img = src + ch * plane;
			float *o = dst + ch * plane + (size_t)v * w;
			for (int u = 0; u < u0 && u < w; u++)
				o[u] = 0.0f;
			for (int u = u0; u <= u1; u++) {
				const float *p = img + off[u];
				float top = p[0] + fx[u] * (p[dx[u]] - p[0]);
				float bot = p[dy[u]] + fx[u] * (p[dy[u] + dx[u]] - p[dy[u]]);
				o[u] = top + fy[u] * (bot - top);
			}
			for (int u = (u1 + 1 > u0 ? u1 + 1 : u0); u < w; u++)
				o[u] = 0.0f;
		}
	}
}

int aug_rotate90(const float *src, float *dst, int c, int h, int w, int k)
{
	k &= 3;
	if (k % 2 == 1 && h != w)
		return -EINVAL;
	size_t plane = (size_t)h * w;
	for (int ch = 0; ch < c; ch++) {
		const float *s = src + ch * plane;
		float *d = dst + ch * plane;
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++) {
				/* output (x, y) reads input at R(-k*90) about the centre */
				int sx, sy;
				switch (k) {
				case 0: sx = x; sy = y; break;
				case 1: sx = w - 1 - y; sy = x; break;
				case 2: sx = w - 1 - x; sy = h - 1 - y; break;
				default: sx = y; sy = h - 1 - x; break;
				}
				d[(size_t)y * w + x] = s[(size_t)sy * w + sx];
			}
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Photometric                                                                                     */

/* Separable gaussian, edges replicated. Both passes loop taps outside and pixels inside, so the
 * inner loops are contiguous multiply-adds the compiler vectorises. tmp: h*w + 2*AUG_MAX_RADIUS. */
static void blur(float *img, float *tmp, int c, int h, int w, float sigma)
{
	int r = (int)ceilf(3.0f * sigma);
	if (r < 1)
		r = 1;
	if (r > AUG_MAX_RADIUS)
		r = AUG_MAX_RADIUS;
	float k[2 * AUG_MAX_RADIUS + 1], sum = 0.0f;
	float inv = -0.5f / (sigma * sigma);
	for (int i = -r; i <= r; i++) {
		k[i + r] = expf(inv * (float)(i * i));
		sum += k[i + r];
	}
	for (int i = 0; i <= 2 * r; i++)
		k[i] /= sum;
	size_t plane = (size_t)h * w;
	float *pad = tmp + plane;    /* one padded row: w + 2r */
	for (int ch = 0; ch < c; ch++) {
		float *p = img + ch * plane;
		/* horizontal: p -> tmp */
		for (int y = 0; y < h; y++) {
			const float *row = p + (size_t)y * w;
			for (int i = 0; i < r; i++) {
				pad[i] = row[0];
				pad[r + w + i] = row[w - 1];
			}
			memcpy(pad + r, row, (size_t)w * sizeof(float));
			float *o = tmp + (size_t)y * w;
			for (int x = 0; x < w; x++)
				o[x] = k[0] * pad[x];
			for (int i = 1; i <= 2 * r; i++) {
				float kk = k[i];
				const float *q = pad + i;
				for (int x = 0; x < w; x++)
					o[x] += kk * q[x];
			}
		}
		/* vertical: tmp -> p */
		for (int y = 0; y < h; y++) {
			float *o = p + (size_t)y * w;
			for (int x = 0; x < w; x++)
				o[x] = 0.0f;
			for (int i = -r; i <= r; i++) {
				int yy = y + i < 0 ? 0 : (y + i >= h ? h - 1 : y + i);
				const float *row = tmp + (size_t)yy * w;
				float kk = k[i + r];
				for (int x = 0; x < w; x++)
					o[x] += kk * row[x];
			}
		}
	}
}

static void erase(const AugConfig *cfg, Rng *rng, float *img, int c, int h, int w)
{
	float area = (float)h * (float)w;
	const float lr0 = logf(0.3f), lr1 = logf(1.0f / 0.3f);
	for (int attempt = 0; attempt < 10; attempt++) {
		float s = rng_uniform_range(rng, cfg->erase.scale_min, cfg->erase.scale_max);
		float r = expf(rng_uniform_range(rng, lr0, lr1));
		int eh = (int)lrintf(sqrtf(area * s / r)), ew = (int)lrintf(sqrtf(area * s * r));
		if (eh < 1 || ew < 1 || eh > h || ew > w)
			continue;
		int y0 = (int)rng_below(rng, (uint32_t)(h - eh + 1));
		int x0 = (int)rng_below(rng, (uint32_t)(w - ew + 1));
		for (int ch = 0; ch < c; ch++)
			for (int y = y0; y < y0 + eh; y++)
				memset(img + ((size_t)ch * h + y) * w + x0, 0, (size_t)ew * sizeof(float));
		return;
	}
}

/* Gaussian noise through an inverse-CDF table: 4096 cells of the standard normal quantile with
 * linear interpolation inside a cell, the outermost cells ending near +-3.9 sigma, the whole table
 * rescaled so the variance is exactly 1. One 32-bit draw per pixel and no transcendental calls:
 * several times faster than Box-Muller, and indistinguishable from it for augmentation. */
#define NOISE_CELLS 4096
static float noise_q[NOISE_CELLS + 1];
static pthread_once_t noise_once = PTHREAD_ONCE_INIT;

static double normal_quantile(double p)
{
	double lo = -10.0, hi = 10.0;
	for (int it = 0; it < 60; it++) {   /* bisection on Phi(z) = erfc(-z/sqrt 2)/2 */
		double mid = 0.5 * (lo + hi);
		if (0.5 * erfc(-mid * 0.7071067811865476) < p)
			lo = mid;
		else
			hi = mid;
	}
	return 0.5 * (lo + hi);
}

static void noise_table_init(void)
{
	double q[NOISE_CELLS + 1];
	for (int i = 1; i < NOISE_CELLS; i++)
		q[i] = normal_quantile((double)i / NOISE_CELLS);
	q[0] = normal_quantile(0.05 / NOISE_CELLS);
	q[NOISE_CELLS] = -q[0];
	double m2 = 0.0;   /* second moment of the piecewise-uniform mixture */
	for (int i = 0; i < NOISE_CELLS; i++)
		m2 += (q[i] * q[i] + q[i] * q[i + 1] + q[i + 1] * q[i + 1]) / 3.0;
	double sc = 1.0 / sqrt(m2 / NOISE_CELLS);
	for (int i = 0; i <= NOISE_CELLS; i++)
		noise_q[i] = (float)(q[i] * sc);
}

static inline float table_normal(uint32_t bits)
{
	uint32_t i = bits >> 20;                                /* 12-bit cell */
	float f = (float)(bits & 0xfffff) * (1.0f / 1048576.0f);   /* 20-bit position in the cell */
	return noise_q[i] + f * (noise_q[i + 1] - noise_q[i]);
}

static void add_noise(Rng *rng, float *img, size_t n, float std)
{
	pthread_once(&noise_once, noise_table_init);
	size_t i = 0;
	for (; i + 1 < n; i += 2) {
		uint64_t b = rng_u64(rng);
		img[i] += std * table_normal((uint32_t)(b >> 32));
		img[i + 1] += std * table_normal((uint32_t)b);
	}
	if (i < n)
		img[i] += std * table_normal((uint32_t)(rng_u64(rng) >> 32));
}

static void patch_mask(const AugConfig *cfg, Rng *rng, float *img, int c, int h, int w)
{
	int ps = cfg->patch_mask.patch > 0 ? cfg->patch_mask.patch : 1;
	int gy = (h + ps - 1) / ps, gx = (w + ps - 1) / ps, cells = gx * gy;
	int order[AUG_MAX_CELLS];
	int exact = cells <= AUG_MAX_CELLS;
	int k = (int)floorf(cfg->patch_mask.ratio * (float)cells + 0.5f);   /* round half up */
	if (exact) {
		for (int i = 0; i < cells; i++)
			order[i] = i;
		for (int i = 0; i < k; i++) {   /* partial Fisher-Yates: the first k are the masked cells */
			int j = i + (int)rng_below(rng, (uint32_t)(cells - i));
			int t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
	}
	int n = exact ? k : cells;
	for (int i = 0; i < n; i++) {
		int cell = exact ? order[i] : i;
		if (!exact && !(rng_uniform(rng) < cfg->patch_mask.ratio))
			continue;
		int y0 = (cell / gx) * ps, x0 = (cell % gx) * ps;
		int y1 = y0 + ps < h ? y0 + ps : h, x1 = x0 + ps < w ? x0 + ps : w;
		for (int ch = 0; ch < c; ch++)
			for (int y = y0; y < y1; y++)
				memset(img + ((size_t)ch * h + y) * w + x0, 0, (size_t)(x1 - x0) * sizeof(float));
	}
}

/* ---------------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------------- */
/* Colour: jitter (brightness, contrast, saturation, hue), grayscale, per-channel normalisation      */

void aug_grayscale(float *img, int h, int w)
{
	size_t hw = (size_t)h * w;
	float *r = img, *g = img + hw, *b = img + 2 * hw;
	for (size_t i = 0; i < hw; i++) {
		float y = 0.299f * r[i] + 0.587f * g[i] + 0.114f * b[i];
		r[i] = g[i] = b[i] = y;
	}
}

/* Hue rotation through HSV on one pixel (values clamped to [0,1] first, as HSV needs). */
static void hue_shift(float *r, float *g, float *b, float shift)
{
	float R = *r < 0 ? 0 : *r > 1 ? 1 : *r, G = *g < 0 ? 0 : *g > 1 ? 1 : *g, B = *b < 0 ? 0 : *b > 1 ? 1 : *b;
	float mx = fmaxf(R, fmaxf(G, B)), mn = fminf(R, fminf(G, B)), d = mx - mn;
	if (d <= 0.0f) {
		*r = R; *g = G; *b = B;
		return;
	}
	float hh;
	if (mx == R)
		hh = (G - B) / d;
	else if (mx == G)
		hh = 2.0f + (B - R) / d;
	else
		hh = 4.0f + (R - G) / d;
	hh = hh / 6.0f + shift;
	hh -= floorf(hh);
	float s = d / mx, v = mx;
	float h6 = hh * 6.0f;
	int sector = (int)h6;
	if (sector > 5)
		sector = 5;
	float f = h6 - (float)sector;
	float p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
	switch (sector) {
	case 0: *r = v; *g = t; *b = p; break;
	case 1: *r = q; *g = v; *b = p; break;
	case 2: *r = p; *g = v; *b = t; break;
	case 3: *r = p; *g = q; *b = v; break;
	case 4: *r = t; *g = p; *b = v; break;
	default: *r = v; *g = p; *b = q; break;
	}
}

void aug_color_jitter(float *img, int c, int h, int w, float brightness, float contrast,
                      float saturation, float hue)
{
	size_t hw = (size_t)h * w, n = hw * c;
	/* brightness x*b, then contrast about the mean gray level: (x*b - m*b)*c + m*b */
	double sum = 0.0;
	if (c == 3)
		for (size_t i = 0; i < hw; i++)
			sum += 0.299f * img[i] + 0.587f * img[hw + i] + 0.114f * img[2 * hw + i];
	else {
		float acc[8] = {0};   /* independent partial sums: the reduction vectorises */
		size_t i = 0;
		for (; i + 8 <= n; i += 8)
			for (int j = 0; j < 8; j++)
				acc[j] += img[i + j];
		for (; i < n; i++)
			sum += img[i];
		for (int j = 0; j < 8; j++)
			sum += acc[j];
	}
	float mb = brightness * (float)(sum / (double)(c == 3 ? hw : n));
	float s = brightness * contrast, o = mb * (1.0f - contrast);
	for (size_t i = 0; i < n; i++)
		img[i] = img[i] * s + o;
	if (c != 3)
		return;
	if (saturation != 1.0f) {
		float *r = img, *g = img + hw, *b = img + 2 * hw;
		for (size_t i = 0; i < hw; i++) {
			float y = 0.299f * r[i] + 0.587f * g[i] + 0.114f * b[i];
			r[i] = y + saturation * (r[i] - y);
			g[i] = y + saturation * (g[i] - y);
			b[i] = y + saturation * (b[i] - y);
		}
	}
	if (hue != 0.0f)
		for (size_t i = 0; i < hw; i++)
			hue_shift(&img[i], &img[hw + i], &img[2 * hw + i], hue);
}

void aug_channel_stats(const float *x, size_t n, int c, int h, int w, float *mean, float *std)
{
	size_t hw = (size_t)h * w;
	for (int ch = 0; ch < c; ch++) {
		double s = 0.0, s2 = 0.0;
		for (size_t k = 0; k < n; k++) {
			const float *p = x + (k * c + ch) * hw;
			double a = 0.0, a2 = 0.0;
			for (size_t i = 0; i < hw; i++) {
				a += p[i];
				a2 += (double)p[i] * p[i];
			}
			s += a;
			s2 += a2;
		}
		double cnt = (double)n * hw, m = cnt > 0 ? s / cnt : 0.0, var = cnt > 0 ? s2 / cnt - m * m : 0.0;
		mean[ch] = (float)m;
		std[ch] = (float)(var > 1e-12 ? sqrt(var) : 1e-6);
	}
}

void aug_normalize(float *x, size_t n, int c, int h, int w, const float *mean, const float *std)
{
	size_t hw = (size_t)h * w;
	for (size_t k = 0; k < n; k++)
		for (int ch = 0; ch < c; ch++) {
			float *p = x + (k * c + ch) * hw, m = mean[ch], inv = 1.0f / std[ch];
			for (size_t i = 0; i < hw; i++)
				p[i] = (p[i] - m) * inv;
		}
}

void aug_denormalize(float *x, size_t n, int c, int h, int w, const float *mean, const float *std)
{
	size_t hw = (size_t)h * w;
	for (size_t k = 0; k < n; k++)
		for (int ch = 0; ch < c; ch++) {
			float *p = x + (k * c + ch) * hw, m = mean[ch], sd = std[ch];
			for (size_t i = 0; i < hw; i++)
				p[i] = p[i] * sd + m;
		}
}

size_t aug_scratch_floats(int c, int h, int w)
{
	(void)c;
	/* one plane (resampling rows, the blur's horizontal pass) and one padded row */
	return (size_t)h * w + (size_t)w + 2 * AUG_MAX_RADIUS + 16;
}

void aug_apply(const AugConfig *cfg, Rng *rng, const float *src, float *dst, int c, int h, int w,
               float *scratch)
{
	size_t n = (size_t)c * h * w;
	if (!cfg) {                 /* NULL = identity */
		memcpy(dst, src, n * sizeof(float));
		return;
	}
	Affine m;
	if (!draw_geometry(cfg, rng, h, w, &m) || w > AUG_MAX_SIDE || h > AUG_MAX_SIDE)
		memcpy(dst, src, n * sizeof(float));   /* (geometry is skipped above 1024 px a side) */
	else if (m.b == 0.0f && m.d == 0.0f)
		sample_separable(&m, src, dst, c, h, w, scratch);
	else
		sample_general(&m, src, dst, c, h, w);

	if (cfg->jitter.p > 0 && rng_uniform(rng) < cfg->jitter.p) {
		float b0 = 1.0f - cfg->jitter.brightness;
		float bf = rng_uniform_range(rng, b0 > 0.0f ? b0 : 0.0f, 1.0f + cfg->jitter.brightness);
		float c0 = 1.0f - cfg->jitter.contrast;
		float cf = rng_uniform_range(rng, c0 > 0.0f ? c0 : 0.0f, 1.0f + cfg->jitter.contrast);
		float sf = 1.0f, hf = 0.0f;
		if (c == 3 && cfg->jitter.saturation > 0) {   /* drawn only for colour: gray streams stay */
			float s0 = 1.0f - cfg->jitter.saturation;
			sf = rng_uniform_range(rng, s0 > 0.0f ? s0 : 0.0f, 1.0f + cfg->jitter.saturation);
		}
		if (c == 3 && cfg->jitter.hue > 0)
			hf = rng_uniform_range(rng, -cfg->jitter.hue, cfg->jitter.hue);
		aug_color_jitter(dst, c, h, w, bf, cf, sf, hf);
	}
	if (c == 3 && cfg->grayscale.p > 0 && rng_uniform(rng) < cfg->grayscale.p)
		aug_grayscale(dst, h, w);
	if (cfg->blur.p > 0 && rng_uniform(rng) < cfg->blur.p) {
		float sigma = rng_uniform_range(rng, cfg->blur.sigma_min, cfg->blur.sigma_max);
		if (sigma > 0.0f)
			blur(dst, scratch, c, h, w, sigma);
	}
	if (cfg->solarize.p > 0 && rng_uniform(rng) < cfg->solarize.p) {
		float t = cfg->solarize.threshold;
		for (size_t i = 0; i < n; i++)
			dst[i] = dst[i] > t ? 1.0f - dst[i] : dst[i];
	}
	if (cfg->invert.p > 0 && rng_uniform(rng) < cfg->invert.p)
		for (size_t i = 0; i < n; i++)
			dst[i] = 1.0f - dst[i];
	if (cfg->erase.p > 0 && rng_uniform(rng) < cfg->erase.p)
		erase(cfg, rng, dst, c, h, w);
	if (cfg->noise.p > 0 && rng_uniform(rng) < cfg->noise.p && cfg->noise.std > 0)
		add_noise(rng, dst, n, cfg->noise.std);
	if (cfg->patch_mask.p > 0 && rng_uniform(rng) < cfg->patch_mask.p)
		patch_mask(cfg, rng, dst, c, h, w);
	if (cfg->clamp)
		for (size_t i = 0; i < n; i++) {
			float v = dst[i];
			dst[i] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
		}
}

void aug_two_views(const AugConfig *cfg1, const AugConfig *cfg2, Rng *rng, const float *src,
                   float *dst1, float *dst2, int c, int h, int w, float *scratch)
{
	aug_apply(cfg1, rng, src, dst1, c, h, w, scratch);
	aug_apply(cfg2 ? cfg2 : cfg1, rng, src, dst2, c, h, w, scratch);
}
