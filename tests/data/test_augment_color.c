/* test_augment_color.c - the colour augmentations (engine/data/augment.h): saturation and hue
 * jitter, random grayscale, per-channel normalisation, blur and solarize on 3 channels, and that
 * 1-channel images see exactly the transforms they saw before colour existed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/data/augment.h"
#include "check.h"

#define S 16
#define HW (S * S)

static void fill_const(float *img, float r, float g, float b)
{
	for (int i = 0; i < HW; i++) {
		img[i] = r;
		img[HW + i] = g;
		img[2 * HW + i] = b;
	}
}

static int is_gray(const float *img)
{
	for (int i = 0; i < HW; i++)
		if (fabsf(img[i] - img[HW + i]) > 1e-5f || fabsf(img[i] - img[2 * HW + i]) > 1e-5f)
			return 0;
	return 1;
}

static void test_pointwise(void)
{
	float img[3 * HW];
	fill_const(img, 1, 0, 0);
	aug_grayscale(img, S, S);
	CHECK(is_gray(img) && fabsf(img[0] - 0.299f) < 1e-6f, "grayscale of red: %f", img[0]);
	/* identity factors leave the image alone */
	fill_const(img, 0.2f, 0.5f, 0.9f);
	aug_color_jitter(img, 3, S, S, 1, 1, 1, 0);
	CHECK(fabsf(img[5] - 0.2f) < 1e-6f && fabsf(img[HW + 5] - 0.5f) < 1e-6f &&
	      fabsf(img[2 * HW + 5] - 0.9f) < 1e-6f, "identity jitter");
	/* saturation 0 gives gray */
	aug_color_jitter(img, 3, S, S, 1, 1, 0, 0);
	CHECK(is_gray(img), "saturation 0 is gray");
	/* hue: red + 1/3 turn = green, + 1/2 = cyan, - 1/3 = blue */
	fill_const(img, 1, 0, 0);
	aug_color_jitter(img, 3, S, S, 1, 1, 1, 1.0f / 3);
	CHECK(img[0] < 1e-5f && img[HW] > 0.9999f && img[2 * HW] < 1e-5f, "red->green: %f %f %f", img[0],
	      img[HW], img[2 * HW]);
	fill_const(img, 1, 0, 0);
	aug_color_jitter(img, 3, S, S, 1, 1, 1, 0.5f);
	CHECK(img[0] < 1e-5f && img[HW] > 0.9999f && img[2 * HW] > 0.9999f, "red->cyan");
	fill_const(img, 1, 0, 0);
	aug_color_jitter(img, 3, S, S, 1, 1, 1, -1.0f / 3);
	CHECK(img[0] < 1e-5f && img[HW] < 1e-5f && img[2 * HW] > 0.9999f, "red->blue");
	/* hue leaves grays alone */
	fill_const(img, 0.4f, 0.4f, 0.4f);
	aug_color_jitter(img, 3, S, S, 1, 1, 1, 0.25f);
	CHECK(is_gray(img) && fabsf(img[0] - 0.4f) < 1e-6f, "hue on gray");
	/* contrast 0 gives the mean gray level everywhere */
	for (int i = 0; i < 3 * HW; i++)
		img[i] = (float)((i * 37) % 101) / 100.0f;
	aug_color_jitter(img, 3, S, S, 1, 0, 1, 0);
	CHECK(is_gray(img), "contrast 0 is flat gray");
}

static void test_apply(void)
{
	AugConfig cfg;
	aug_config_default_simclr(&cfg);
	CHECK(cfg.jitter.saturation == 0.4f && cfg.jitter.hue == 0.1f, "simclr colour defaults");
	cfg.grayscale.p = 0.2f;    /* SimCLR's random grayscale */
	Rng rng;
	rng_seed(&rng, 5);
	float src[3 * HW], dst[3 * HW];
	float *scratch = malloc(sizeof(float) * aug_scratch_floats(3, S, S));
	for (int i = 0; i < HW; i++) {   /* a saturated colourful image */
		src[i] = (float)(i % S) / S;
		src[HW + i] = (float)(i / S) / S;
		src[2 * HW + i] = 1.0f - (float)(i % S) / S;
	}
	int grays = 0, bad = 0;
	const int N = 400;
	for (int k = 0; k < N; k++) {
		aug_apply(&cfg, &rng, src, dst, 3, S, S, scratch);
		for (int i = 0; i < 3 * HW; i++)
			bad += !(dst[i] >= 0.0f && dst[i] <= 1.0f);
		grays += is_gray(dst);
	}
	CHECK(bad == 0, "%d values outside [0,1]", bad);
	CHECK(grays > N * 0.12 && grays < N * 0.28, "grayscale p 0.2: %d of %d gray", grays, N);
	/* 1-channel images draw no colour randomness: same stream as without colour settings */
	AugConfig plain = cfg;
	plain.jitter.saturation = 0;
	plain.jitter.hue = 0;
	plain.grayscale.p = 0;
	Rng r1, r2;
	rng_seed(&r1, 9);
	rng_seed(&r2, 9);
	float g1[HW], g2[HW];
	int same = 1;
	for (int k = 0; k < 50; k++) {
		aug_apply(&cfg, &r1, src, g1, 1, S, S, scratch);
		aug_apply(&plain, &r2, src, g2, 1, S, S, scratch);
		same &= memcmp(g1, g2, sizeof g1) == 0;
	}
	CHECK(same, "gray images: colour settings change nothing");
	/* blur and solarize act per channel: a constant colour stays that colour */
	AugConfig bs;
	aug_config_none(&bs);
	bs.blur.p = 1;
	bs.blur.sigma_min = bs.blur.sigma_max = 2;
	fill_const(src, 0.1f, 0.6f, 0.8f);
	aug_apply(&bs, &rng, src, dst, 3, S, S, scratch);
	CHECK(fabsf(dst[37] - 0.1f) < 1e-5f && fabsf(dst[HW + 37] - 0.6f) < 1e-5f &&
	      fabsf(dst[2 * HW + 37] - 0.8f) < 1e-5f, "blur keeps the colour");
	aug_config_none(&bs);
	bs.solarize.p = 1;
	aug_apply(&bs, &rng, src, dst, 3, S, S, scratch);
	CHECK(fabsf(dst[3] - 0.1f) < 1e-6f && fabsf(dst[HW + 3] - 0.4f) < 1e-6f &&
	      fabsf(dst[2 * HW + 3] - 0.2f) < 1e-6f, "solarize per channel");
	free(scratch);
	/* the keys */
	char err[256];
	CHECK(aug_config_set(&cfg, "jitter.hue", 0.6, err, sizeof err) < 0 &&
	      strstr(err, "jitter.hue: must be in [0, 0.5], got 0.6"), "hue range: %s", err);
	CHECK(aug_config_set(&cfg, "grayscale.p", 0.5, err, sizeof err) == 0 && cfg.grayscale.p == 0.5f,
	      "grayscale.p settable");
	CHECK(aug_config_set(&cfg, "jitter.saturation", 0.8, err, sizeof err) == 0, "saturation settable");
}

static void test_normalize(void)
{
	/* 2 images, 3 channels: c0 all 0.2, c1 alternating 0/1, c2 0.3 in image 0 and 0.7 in image 1 */
	float x[2 * 3 * HW], orig[2 * 3 * HW];
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < HW; i++) {
			x[(k * 3 + 0) * HW + i] = 0.2f;
			x[(k * 3 + 1) * HW + i] = (float)(i & 1);
			x[(k * 3 + 2) * HW + i] = k ? 0.7f : 0.3f;
		}
	memcpy(orig, x, sizeof x);
	float mean[3], sd[3];
	aug_channel_stats(x, 2, 3, S, S, mean, sd);
	CHECK(fabsf(mean[0] - 0.2f) < 1e-6f && sd[0] <= 1e-5f, "c0: %f %f", mean[0], sd[0]);
	CHECK(fabsf(mean[1] - 0.5f) < 1e-6f && fabsf(sd[1] - 0.5f) < 1e-6f, "c1: %f %f", mean[1], sd[1]);
	CHECK(fabsf(mean[2] - 0.5f) < 1e-6f && fabsf(sd[2] - 0.2f) < 1e-6f, "c2: %f %f", mean[2], sd[2]);
	aug_normalize(x, 2, 3, S, S, mean, sd);
	CHECK(fabsf(x[HW] + 1.0f) < 1e-5f && fabsf(x[HW + 1] - 1.0f) < 1e-5f &&
	      fabsf(x[2 * HW] + 1.0f) < 1e-5f, "normalised values");
	aug_denormalize(x, 2, 3, S, S, mean, sd);
	float worst = 0;
	for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
		worst = fmaxf(worst, fabsf(x[i] - orig[i]));
	CHECK(worst < 1e-5f, "round trip off by %g", worst);
}

int main(void)
{
	test_pointwise();
	test_apply();
	test_normalize();
	return check_exit("test_augment_color");
}
