/* test_augment.c - each augmentation's defining property, determinism, parameter setting by name,
 * and a PNG grid of augmented views that decodes back to the same (8-bit) pixels. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../engine/alloc.h"
#include "../../engine/data/augment.h"
#include "../../engine/data/dataset.h"
#include "../../engine/data/png_grid.h"
#include "check.h"

#define H 28
#define W 28
#define N (H * W)

static float scratch[4096];

/* A deterministic "garment-like" test image: smooth blob plus texture, values in [0,1]. */
static void make_image(float *x, int seed)
{
	for (int y = 0; y < H; y++)
		for (int xx = 0; xx < W; xx++) {
			float dy = (float)y - 13.5f, dx = (float)xx - 12.0f - (float)(seed % 3);
			float v = expf(-(dx * dx + dy * dy) / 60.0f) * 0.8f + 0.2f * (float)((xx * 7 + y * 3 + seed) % 5) / 4.0f;
			x[y * W + xx] = v > 1.0f ? 1.0f : v;
		}
}

static int same(const float *a, const float *b, int n)
{
	return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

static void test_flip(void)
{
	float x[N], a[N], b[N];
	make_image(x, 1);
	AugConfig c;
	aug_config_none(&c);
	c.hflip.p = 1.0f;
	Rng r;
	rng_seed(&r, 1);
	aug_apply(&c, &r, x, a, 1, H, W, scratch);
	int mirror = 1;
	for (int y = 0; y < H; y++)
		for (int xx = 0; xx < W; xx++)
			mirror &= a[y * W + xx] == x[y * W + (W - 1 - xx)];
	CHECK(mirror, "flip is not an exact mirror");
	aug_apply(&c, &r, a, b, 1, H, W, scratch);
	CHECK(same(b, x, N), "flip is not its own inverse");
	/* p = 0.5 flips about half the time */
	c.hflip.p = 0.5f;
	int flips = 0;
	for (int i = 0; i < 2000; i++) {
		aug_apply(&c, &r, x, b, 1, H, W, scratch);
		flips += same(b, a, N);
	}
	CHECK(flips > 900 && flips < 1100, "p=0.5 flipped %d of 2000", flips);
}

static void test_rotate(void)
{
	float x[N], a[N], b[N], t[N];
	make_image(x, 2);
	/* k*90 exact: four quarter turns are the identity, 1 then 3 too */
	memcpy(a, x, sizeof a);
	for (int i = 0; i < 4; i++) {
		CHECK(aug_rotate90(a, b, 1, H, W, 1) == 0, "rotate90");
		memcpy(a, b, sizeof a);
	}
	CHECK(same(a, x, N), "four 90-degree rotations are not the identity");
	aug_rotate90(x, a, 1, H, W, 1);
	aug_rotate90(a, b, 1, H, W, 3);
	CHECK(same(b, x, N), "90 then 270 is not the identity");
	aug_rotate90(x, a, 1, H, W, 2);
	aug_rotate90(a, b, 1, H, W, 2);
	CHECK(same(b, x, N), "180 twice is not the identity");
	CHECK(!same(a, x, N), "180 changed nothing");
	/* counter-clockwise: the top-right pixel goes to the top-left */
	aug_rotate90(x, a, 1, H, W, 1);
	CHECK(a[0] == x[W - 1], "k=1 direction");
	CHECK(aug_rotate90(x, a, 1, 4, 7, 1) == -EINVAL, "odd k on a non-square image");
	/* random multiples of 90 in aug_apply: always exactly one of the three turns, all three seen */
	AugConfig c;
	aug_config_none(&c);
	c.rotate.p = 1.0f;
	c.rotate.multiples_of_90 = 1;
	Rng r;
	rng_seed(&r, 3);
	int seen[4] = {0};
	for (int i = 0; i < 300; i++) {
		aug_apply(&c, &r, x, a, 1, H, W, scratch);
		int which = -1;
		for (int k = 1; k < 4; k++) {
			aug_rotate90(x, t, 1, H, W, k);
			if (same(a, t, N))
				which = k;
		}
		CHECK(which > 0, "a 90-multiple rotation that is not exact");
		if (which > 0)
			seen[which]++;
	}
	CHECK(seen[1] > 60 && seen[2] > 60 && seen[3] > 60, "k counts %d %d %d", seen[1], seen[2], seen[3]);
	/* any angle: max 0 is the identity; a radially symmetric image is (nearly) unchanged */
	c.rotate.multiples_of_90 = 0;
	c.rotate.max_degrees = 0.0f;
	aug_apply(&c, &r, x, a, 1, H, W, scratch);
	CHECK(same(a, x, N), "rotation by 0 degrees is not the identity");
	float disk[N];
	for (int y = 0; y < H; y++)
		for (int xx = 0; xx < W; xx++) {
			float dy = (float)y - 13.5f, dx = (float)xx - 13.5f;
			disk[y * W + xx] = expf(-(dx * dx + dy * dy) / 30.0f);
		}
	c.rotate.max_degrees = 180.0f;
	float worst = 0.0f;
	for (int i = 0; i < 50; i++) {
		aug_apply(&c, &r, disk, a, 1, H, W, scratch);
		for (int k = 0; k < N; k++)
			worst = fmaxf(worst, fabsf(a[k] - disk[k]));
	}
	CHECK(worst < 0.03f, "rotating a symmetric blob changed it by %g", worst);
	/* and a real rotation moves an off-centre dot along a circle around the centre */
	float dot[N] = {0};
	dot[13 * W + 24] = 1.0f;   /* (x=24, y=13): radius ~10.5 from (13.5, 13.5) */
	for (int i = 0; i < 20; i++) {
		aug_apply(&c, &r, dot, a, 1, H, W, scratch);
		double sx = 0, sy = 0, m = 0;
		for (int y = 0; y < H; y++)
			for (int xx = 0; xx < W; xx++) {
				sx += a[y * W + xx] * xx;
				sy += a[y * W + xx] * y;
				m += a[y * W + xx];
			}
		double rad = hypot(sx / m - 13.5, sy / m - 13.5);
		CHECK(m > 0.9 && m < 1.1 && fabs(rad - hypot(10.5, 0.5)) < 0.3, "dot mass %g radius %g", m, rad);
	}
}

static void test_crop(void)
{
	AugConfig c;
	aug_config_none(&c);
	c.crop.p = 1.0f;
	Rng r;
	rng_seed(&r, 4);
	/* boxes: inside the image, area and aspect ratio in range */
	for (int i = 0; i < 5000; i++) {
		float x0, y0, cw, ch;
		aug_draw_crop(&c, &r, H, W, &x0, &y0, &cw, &ch);
		CHECK(x0 >= 0 && y0 >= 0 && x0 + cw <= W + 1e-3f && y0 + ch <= H + 1e-3f,
		      "box %g %g %g %g leaves the image", x0, y0, cw, ch);
		float s = cw * ch / (float)N, ratio = cw / ch;
		CHECK(s >= c.crop.scale_min - 1e-4f && s <= c.crop.scale_max + 1e-4f, "area share %g", s);
		CHECK(ratio >= c.crop.ratio_min - 1e-4f && ratio <= c.crop.ratio_max + 1e-4f, "ratio %g", ratio);
		if (failures > 5)
			break;
	}
	/* outputs: a horizontal ramp stays a non-decreasing ramp within the source range */
	float ramp[N], a[N];
	for (int y = 0; y < H; y++)
		for (int xx = 0; xx < W; xx++)
			ramp[y * W + xx] = (float)xx / (float)(W - 1);
	for (int i = 0; i < 500; i++) {
		aug_apply(&c, &r, ramp, a, 1, H, W, scratch);
		int ok = 1;
		for (int y = 0; y < H; y++)
			for (int xx = 0; xx < W; xx++) {
				float v = a[y * W + xx];
				ok &= v >= 0.0f && v <= 1.0f;
				if (xx)
					ok &= v >= a[y * W + xx - 1] - 1e-6f;
				ok &= fabsf(v - a[xx]) < 1e-6f;   /* rows alike: no vertical structure invented */
			}
		CHECK(ok, "crop of a ramp is not a ramp in range (draw %d)", i);
		if (!ok)
			break;
	}
	/* scale 1 and ratio 1 on a square image: the identity, exactly */
	c.crop.scale_min = c.crop.scale_max = 1.0f;
	c.crop.ratio_min = c.crop.ratio_max = 1.0f;
	float x[N];
	make_image(x, 5);
	aug_apply(&c, &r, x, a, 1, H, W, scratch);
	float md = 0;
	for (int k = 0; k < N; k++)
		md = fmaxf(md, fabsf(a[k] - x[k]));
	CHECK(md < 1e-6f, "full-size crop differs by %g", md);
}

static void test_translate(void)
{
	float x[N], a[N];
	make_image(x, 6);
	AugConfig c;
	aug_config_none(&c);
	c.translate.p = 1.0f;
	c.translate.max_fraction = 0.15f;   /* up to 4 px */
	Rng r;
	rng_seed(&r, 6);
	int hist[9] = {0};
	for (int i = 0; i < 300; i++) {
		aug_apply(&c, &r, x, a, 1, H, W, scratch);
		int found = 0;
		for (int ty = -4; ty <= 4 && !found; ty++)
			for (int tx = -4; tx <= 4 && !found; tx++) {
				int ok = 1;
				for (int y = 0; y < H && ok; y++)
					for (int xx = 0; xx < W && ok; xx++) {
						int sx = xx - tx, sy = y - ty;
						float want = (sx >= 0 && sx < W && sy >= 0 && sy < H) ? x[sy * W + sx] : 0.0f;
						ok = a[y * W + xx] == want;
					}
				if (ok) {
					found = 1;
					hist[tx + 4]++;
				}
			}
		CHECK(found, "translation is not an exact whole-pixel shift with zero fill");
		if (!found)
			break;
	}
	CHECK(hist[0] > 0 && hist[8] > 0 && hist[4] > 0, "shift range not covered: %d %d %d", hist[0],
	      hist[4], hist[8]);
}

static void test_jitter(void)
{
	float x[N], a[N];
	make_image(x, 7);
	AugConfig c;
	aug_config_none(&c);
	c.clamp = 0;
	c.jitter.p = 1.0f;
	c.jitter.brightness = 0.4f;
	c.jitter.contrast = 0.0f;
	Rng r;
	rng_seed(&r, 7);
	float lo = 10, hi = 0;
	for (int i = 0; i < 500; i++) {
		aug_apply(&c, &r, x, a, 1, H, W, scratch);
		float f = a[100] / x[100];
		int ok = 1;
		for (int k = 0; k < N; k++)
			ok &= fabsf(a[k] - f * x[k]) < 1e-5f;
		CHECK(ok, "brightness is not one factor");
		lo = fminf(lo, f);
		hi = fmaxf(hi, f);
	}
	CHECK(lo >= 0.6f - 1e-5f && hi <= 1.4f + 1e-5f && lo < 0.65f && hi > 1.35f, "factors [%g, %g]", lo, hi);
	/* contrast: keeps the mean, scales deviations by a factor in [0.6, 1.4] */
	c.jitter.brightness = 0.0f;
	c.jitter.contrast = 0.4f;
	double m0 = 0, v0 = 0;
	for (int k = 0; k < N; k++)
		m0 += x[k];
	m0 /= N;
	for (int k = 0; k < N; k++)
		v0 += (x[k] - m0) * (x[k] - m0);
	for (int i = 0; i < 200; i++) {
		aug_apply(&c, &r, x, a, 1, H, W, scratch);
		double m1 = 0, v1 = 0;
		for (int k = 0; k < N; k++)
			m1 += a[k];
		m1 /= N;
		for (int k = 0; k < N; k++)
			v1 += (a[k] - m1) * (a[k] - m1);
		double f = sqrt(v1 / v0);
		CHECK(fabs(m1 - m0) < 1e-5 && f >= 0.6 - 1e-4 && f <= 1.4 + 1e-4, "contrast mean %g->%g factor %g",
		      m0, m1, f);
	}
	/* p = 0.8: applied about 80% of the time */
	c.jitter.p = 0.8f;
	int changed = 0;
	for (int i = 0; i < 2000; i++) {
		aug_apply(&c, &r, x, a, 1, H, W, scratch);
		changed += !same(a, x, N);
	}
	CHECK(changed > 1520 && changed < 1680, "jitter p=0.8 applied %d of 2000", changed);
}

static void test_blur(void)
{
	float a[N], imp[N] = {0}, flat[N];
	AugConfig c;
	aug_config_none(&c);
	c.blur.p = 1.0f;
	c.blur.sigma_min = c.blur.sigma_max = 1.0f;
	Rng r;
	rng_seed(&r, 8);
	imp[14 * W + 14] = 1.0f;
	aug_apply(&c, &r, imp, a, 1, H, W, scratch);
	double m = 0, vx = 0, vy = 0;
	for (int y = 0; y < H; y++)
		for (int xx = 0; xx < W; xx++) {
			m += a[y * W + xx];
			vx += a[y * W + xx] * (xx - 14) * (xx - 14);
			vy += a[y * W + xx] * (y - 14) * (y - 14);
		}
	CHECK(fabs(m - 1.0) < 1e-5, "blur does not keep mass: %g", m);
	CHECK(fabs(vx - 1.0) < 0.05 && fabs(vy - 1.0) < 0.05, "impulse response variance %g %g (sigma^2 = 1)", vx, vy);
	CHECK(a[14 * W + 13] == a[14 * W + 15] && a[13 * W + 14] == a[15 * W + 14], "not symmetric");
	for (int k = 0; k < N; k++)
		flat[k] = 0.37f;
	aug_apply(&c, &r, flat, a, 1, H, W, scratch);
	float md = 0;
	for (int k = 0; k < N; k++)
		md = fmaxf(md, fabsf(a[k] - 0.37f));
	CHECK(md < 1e-6f, "blur changes a flat image by %g", md);
}

static void test_point_ops(void)
{
	float x[N], a[N], b[N];
	make_image(x, 9);
	AugConfig c;
	aug_config_none(&c);
	Rng r;
	rng_seed(&r, 9);
	c.solarize.p = 1.0f;
	c.solarize.threshold = 0.5f;
	aug_apply(&c, &r, x, a, 1, H, W, scratch);
	int ok = 1;
	for (int k = 0; k < N; k++)
		ok &= a[k] == (x[k] > 0.5f ? 1.0f - x[k] : x[k]);
	CHECK(ok, "solarize");
	aug_config_none(&c);
	c.invert.p = 1.0f;
	aug_apply(&c, &r, x, a, 1, H, W, scratch);
	aug_apply(&c, &r, a, b, 1, H, W, scratch);
	float md = 0;
	for (int k = 0; k < N; k++)
		md = fmaxf(md, fabsf(b[k] - x[k]));
	CHECK(md < 1e-6f && fabsf(a[0] - (1.0f - x[0])) < 1e-7f, "invert twice differs by %g", md);
}

static void test_erase_mask(void)
{
	float one[N], a[N];
	for (int k = 0; k < N; k++)
		one[k] = 1.0f;
	AugConfig c;
	aug_config_none(&c);
	c.erase.p = 1.0f;
	Rng r;
	rng_seed(&r, 10);
	for (int i = 0; i < 500; i++) {
		aug_apply(&c, &r, one, a, 1, H, W, scratch);
		int zeros = 0, x0 = W, x1 = -1, y0 = H, y1 = -1;
		for (int y = 0; y < H; y++)
			for (int xx = 0; xx < W; xx++)
				if (a[y * W + xx] == 0.0f) {
					zeros++;
					x0 = xx < x0 ? xx : x0;
					x1 = xx > x1 ? xx : x1;
					y0 = y < y0 ? y : y0;
					y1 = y > y1 ? y : y1;
				}
		float s = (float)zeros / N;
		CHECK(zeros > 0 && zeros == (x1 - x0 + 1) * (y1 - y0 + 1), "erased area is not one rectangle");
		CHECK(s > c.erase.scale_min * 0.5f && s < c.erase.scale_max * 1.5f, "erased share %g", s);
		if (failures)
			break;
	}
	aug_config_none(&c);
	c.patch_mask.p = 1.0f;
	c.patch_mask.ratio = 0.5f;
	c.patch_mask.patch = 4;
	for (int i = 0; i < 100; i++) {
		aug_apply(&c, &r, one, a, 1, H, W, scratch);
		int cells = 0, whole = 1;
		for (int cy = 0; cy < 7; cy++)
			for (int cx = 0; cx < 7; cx++) {
				int z = 0;
				for (int y = 0; y < 4; y++)
					for (int xx = 0; xx < 4; xx++)
						z += a[(cy * 4 + y) * W + cx * 4 + xx] == 0.0f;
				whole &= z == 0 || z == 16;
				cells += z == 16;
			}
		CHECK(whole && cells == 25, "patch mask: %d cells (want round(0.5*49)=25), aligned %d", cells, whole);
		if (failures)
			break;
	}
}

static void test_noise(void)
{
	AugConfig c;
	aug_config_none(&c);
	c.noise.p = 1.0f;
	c.noise.std = 0.1f;
	c.clamp = 0;
	Rng r;
	rng_seed(&r, 11);
	float half[N], a[N];
	for (int k = 0; k < N; k++)
		half[k] = 0.5f;
	double s = 0, s2 = 0;
	long n = 0;
	for (int i = 0; i < 200; i++) {
		aug_apply(&c, &r, half, a, 1, H, W, scratch);
		for (int k = 0; k < N; k++) {
			double d = a[k] - 0.5;
			s += d;
			s2 += d * d;
			n++;
		}
	}
	double mean = s / n, var = s2 / n - mean * mean;
	printf("noise std 0.1: mean %.5f variance %.6f (want 0.01)\n", mean, var);
	CHECK(fabs(mean) < 0.001 && fabs(var - 0.01) < 0.0003, "noise mean %g var %g", mean, var);
	/* with clamping (the default) values stay in [0,1] */
	c.clamp = 1;
	c.noise.std = 0.5f;
	aug_apply(&c, &r, half, a, 1, H, W, scratch);
	int ok = 1;
	for (int k = 0; k < N; k++)
		ok &= a[k] >= 0.0f && a[k] <= 1.0f;
	CHECK(ok, "clamp");
}

static void test_sets_and_names(void)
{
	float x[N], a[N], b[N], d[N];
	make_image(x, 12);
	AugConfig s1, s2;
	aug_config_default_simclr(&s1);
	CHECK(s1.crop.p == 1.0f && s1.crop.scale_min == 0.2f && s1.hflip.p == 0.5f && s1.jitter.p == 0.8f &&
	      s1.blur.p == 0.5f && s1.erase.p == 0.25f && s1.clamp == 1, "simclr defaults");
	CHECK(aug_config_validate(&s1, NULL, 0) == 0, "simclr defaults validate");
	/* same seed -> same views; the two views of one call differ */
	Rng r1, r2;
	rng_seed(&r1, 99);
	rng_seed(&r2, 99);
	aug_two_views(&s1, NULL, &r1, x, a, b, 1, H, W, scratch);
	aug_two_views(&s1, NULL, &r2, x, d, d, 1, H, W, scratch);
	CHECK(same(b, d, N), "not reproducible");
	CHECK(!same(a, b, N), "two views identical");
	for (int k = 0; k < N; k++)
		CHECK(a[k] >= 0.0f && a[k] <= 1.0f, "view out of [0,1]: %g", a[k]);
	/* BYOL pair is asymmetric */
	aug_config_default_byol(&s1, &s2);
	CHECK(s1.blur.p == 1.0f && s2.blur.p == 0.1f && s1.solarize.p == 0.0f && s2.solarize.p == 0.2f, "byol");
	/* by name */
	char err[256];
	AugConfig c;
	aug_config_none(&c);
	CHECK(aug_config_set(&c, "crop.scale_min", 0.3, err, sizeof err) == 0 && c.crop.scale_min == 0.3f, "set");
	CHECK(aug_config_set(&c, "patch_mask.patch", 7, err, sizeof err) == 0 && c.patch_mask.patch == 7, "set int");
	int rc = aug_config_set(&c, "crop.scale_min", 2.0, err, sizeof err);
	CHECK(rc == -ERANGE && strstr(err, "crop.scale_min: must be in [0.01, 1], got 2"), "range: %s", err);
	rc = aug_config_set(&c, "patch_mask.patch", 2.5, err, sizeof err);
	CHECK(rc == -ERANGE && strstr(err, "integer"), "int: %s", err);
	rc = aug_config_set(&c, "crop.scal_min", 0.5, err, sizeof err);
	CHECK(rc == -ENOENT && strstr(err, "crop.scal_min: unknown"), "unknown: %s", err);
	c.crop.scale_min = 0.9f;
	c.crop.scale_max = 0.5f;
	rc = aug_config_validate(&c, err, sizeof err);
	CHECK(rc == -ERANGE && strstr(err, "crop.scale_min: must not exceed crop.scale_max"), "pair: %s", err);
	int names = 0;
	while (aug_param_name(names))
		names++;
	CHECK(names >= 25, "only %d parameter names", names);
	/* NULL config = identity */
	aug_apply(NULL, &r1, x, a, 1, H, W, scratch);
	CHECK(same(a, x, N), "NULL config");
	/* every transform at once on a 3-channel, non-square image stays finite and in range */
	static float rgb[3 * 20 * 33], out[3 * 20 * 33], sc[2048];
	for (int k = 0; k < 3 * 20 * 33; k++)
		rgb[k] = (float)((k * 31) % 101) / 100.0f;
	AugConfig all;
	aug_config_none(&all);
	all.crop.p = all.hflip.p = all.rotate.p = all.translate.p = all.jitter.p = all.blur.p = 1.0f;
	all.solarize.p = all.invert.p = all.erase.p = all.noise.p = all.patch_mask.p = 1.0f;
	CHECK(aug_scratch_floats(3, 20, 33) <= 2048, "scratch size");
	for (int i = 0; i < 50; i++) {
		aug_apply(&all, &r1, rgb, out, 3, 20, 33, sc);
		int ok = 1;
		for (int k = 0; k < 3 * 20 * 33; k++)
			ok &= out[k] >= 0.0f && out[k] <= 1.0f;
		CHECK(ok, "all transforms: out of range");
	}
}

static void test_png_roundtrip(void)
{
	/* real images when available, else synthetic ones */
	enum { K = 8 };
	static float in[K * N], v1[K * N], v2[K * N];
	Dataset *ds = NULL;
	char err[512];
	DatasetSpec s = {.kind = DATASET_FASHION_MNIST, .limit_train = K, .limit_test = 1};
	if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) == 0 &&
	    dataset_load(&s, &ds, err, sizeof err) == 0) {
		memcpy(in, ds->train.x, sizeof in);
		dataset_free(ds);
	} else {
		for (int i = 0; i < K; i++)
			make_image(in + i * N, i);
	}
	AugConfig cfg;
	aug_config_default_simclr(&cfg);
	Rng r;
	rng_seed(&r, 5);
	for (int i = 0; i < K; i++)
		aug_two_views(&cfg, NULL, &r, in + i * N, v1 + i * N, v2 + i * N, 1, H, W, scratch);
	const char *t = getenv("TMPDIR");
	char path[512];
	snprintf(path, sizeof path, "%s/ssld-test-grid-%d.png", t ? t : "/tmp", (int)getpid());
	const float *rows[3] = {in, v1, v2};
	const int pad = 2;
	int rc = png_grid_write_rows(path, rows, 3, K, 1, H, W, pad, 0.0f, 1.0f, err, sizeof err);
	CHECK(rc == 0, "grid write: %s", err);
	float *img = NULL;
	int c, h, w;
	rc = png_read(path, 0, &img, &c, &h, &w, err, sizeof err);
	CHECK(rc == 0, "grid read: %s", err);
	if (rc == 0) {
		int gw, gh;
		png_grid_size(3 * K, K, H, W, pad, &gw, &gh);
		CHECK(c == 1 && w == gw && h == gh && w == K * (W + pad) + pad && h == 3 * (H + pad) + pad,
		      "grid %dx%dx%d", c, w, h);
		float md = 0;
		for (int row = 0; row < 3; row++)
			for (int i = 0; i < K; i++)
				for (int y = 0; y < H; y++)
					for (int xx = 0; xx < W; xx++) {
						float src = rows[row][i * N + y * W + xx];
						float want = roundf(src * 255.0f) / 255.0f;
						float got = img[(pad + row * (H + pad) + y) * w + pad + i * (W + pad) + xx];
						md = fmaxf(md, fabsf(got - want));
					}
		CHECK(md < 1e-6f, "decoded grid differs from the 8-bit views by %g", md);
		CHECK(img[0] == 1.0f && img[(size_t)(h - 1) * w + w - 1] == 1.0f, "padding is white");
		eng_free(img);
		/* colour round trip and a forced-gray read */
		static float rgb[2 * 3 * 5 * 4];
		for (int k = 0; k < 2 * 3 * 5 * 4; k++)
			rgb[k] = (float)((k * 37) % 256) / 255.0f;
		rc = png_grid_write(path, rgb, 2, 3, 5, 4, 2, 0, 0.0f, 1.0f, err, sizeof err);
		rc |= png_read(path, 3, &img, &c, &h, &w, err, sizeof err);
		CHECK(rc == 0 && c == 3 && w == 8 && h == 5, "rgb grid %d %d %d: %s", c, w, h, err);
		if (rc == 0) {
			int ok = 1;
			for (int ch = 0; ch < 3; ch++)
				for (int y = 0; y < 5; y++)
					for (int xx = 0; xx < 8; xx++) {
						float want = rgb[(xx / 4) * 60 + ch * 20 + y * 4 + xx % 4];
						ok &= fabsf(img[(ch * 5 + y) * 8 + xx] - want) < 1e-6f;
					}
			CHECK(ok, "rgb round trip");
			eng_free(img);
		}
	}
	/* errors name the file */
	FILE *f = fopen(path, "wb");
	fputs("not a png at all", f);
	fclose(f);
	rc = png_read(path, 0, &img, &c, &h, &w, err, sizeof err);
	CHECK(rc < 0 && strstr(err, "ssld-test-grid") && strstr(err, "PNG"), "garbage: %s", err);
	rc = png_grid_write("/nonexistent-dir/x.png", in, 1, 1, H, W, 1, 0, 0.0f, 1.0f, err, sizeof err);
	CHECK(rc < 0 && strstr(err, "/nonexistent-dir/x.png"), "unwritable: %s", err);
	rc = png_grid_write(path, in, 1, 2, H, W, 1, 0, 0.0f, 1.0f, err, sizeof err);
	CHECK(rc == -EINVAL, "2 channels accepted");
	remove(path);
}

int main(void)
{
	test_flip();
	test_rotate();
	test_crop();
	test_translate();
	test_jitter();
	test_blur();
	test_point_ops();
	test_erase_mask();
	test_noise();
	test_sets_and_names();
	test_png_roundtrip();
	return check_exit("test_augment");
}
