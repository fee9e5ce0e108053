/* audio_augment.c - crop, gain, noise and masks on log-mel spectrograms (see audio_augment.h).
 * It does not touch waveforms: the datasets hold spectrograms only.
 */
#include "audio_augment.h"

#include <math.h>
#include <string.h>

#include "logmel.h"

/* One band of width 0..max at a random place: [*a, *a + w). */
static int band(Rng *rng, int max, int len, int *a)
{
	int w = (int)rng_below(rng, (uint32_t)(max < len ? max : len) + 1);
	*a = (int)rng_below(rng, (uint32_t)(len - w) + 1);
	return w;
}

/* Set the cells of n_time time bands and n_freq mel bands of x (mels, frames) to v. */
static void fill_bands(Rng *rng, float *x, int mels, int frames, int n_time, int time_max,
                       int n_freq, int freq_max, float v)
{
	for (int k = 0; k < n_time; k++) {
		int t0, w = band(rng, time_max, frames, &t0);
		for (int m = 0; m < mels; m++)
			for (int t = t0; t < t0 + w; t++)
				x[(size_t)m * frames + t] = v;
	}
	for (int k = 0; k < n_freq; k++) {
		int m0, w = band(rng, freq_max, mels, &m0);
		for (int m = m0; m < m0 + w; m++)
			for (int t = 0; t < frames; t++)
				x[(size_t)m * frames + t] = v;
	}
}

int audio_draw_masks(Rng *rng, int mels, int frames, int n_time, int time_max, int n_freq,
                     int freq_max, float *mask)
{
	memset(mask, 0, sizeof(float) * (size_t)mels * frames);
	fill_bands(rng, mask, mels, frames, n_time, time_max, n_freq, freq_max, 1.0f);
	int n = 0;
	for (size_t i = 0; i < (size_t)mels * frames; i++)
		n += mask[i] != 0.0f;
	return n;
}

void audio_augment(const AudioAugConfig *c, Rng *rng, const float *src, float *dst, int mels,
                   int frames)
{
	size_t n = (size_t)mels * frames;
	const float silence = logmel_value(0.0f);
	/* crop in time */
	int keep = frames, from = 0, to = 0;
	if (c->crop_min < 1.0f) {
		float share = rng_uniform_range(rng, c->crop_min, 1.0f);
		keep = (int)lroundf(share * frames);
		keep = keep < 1 ? 1 : keep > frames ? frames : keep;
		from = (int)rng_below(rng, (uint32_t)(frames - keep) + 1);
		to = (int)rng_below(rng, (uint32_t)(frames - keep) + 1);
	}
	for (int m = 0; m < mels; m++) {
		float *d = dst + (size_t)m * frames;
		for (int t = 0; t < frames; t++)
			d[t] = silence;
		memcpy(d + to, src + (size_t)m * frames + from, sizeof(float) * (size_t)keep);
	}
	/* gain and noise, on power */
	float gain = 1.0f;
	if (c->gain_db > 0.0f)
		gain = powf(10.0f, rng_uniform_range(rng, -c->gain_db, c->gain_db) / 10.0f);
	float noise = 0.0f;
	if (c->noise_p > 0.0f && rng_uniform(rng) < c->noise_p) {
		double mean = 0.0;
		for (size_t i = 0; i < n; i++)
			mean += logmel_power(dst[i]);
		mean = mean * gain / (double)n;
		float snr = c->snr_max > c->snr_min ? rng_uniform_range(rng, c->snr_min, c->snr_max)
		                                    : c->snr_min;
		noise = (float)(mean / pow(10.0, snr / 10.0));
	}
	if (gain != 1.0f || noise > 0.0f)
		for (size_t i = 0; i < n; i++) {
			float p = logmel_power(dst[i]) * gain;
			if (noise > 0.0f)
				p += noise * -logf(1.0f - rng_uniform(rng));   /* Exp(1) spread */
			dst[i] = logmel_value(p);
		}
	/* masks, to the view's mean */
	if (c->time_masks > 0 || c->freq_masks > 0) {
		double mean = 0.0;
		for (size_t i = 0; i < n; i++)
			mean += dst[i];
		fill_bands(rng, dst, mels, frames, c->time_masks, c->time_mask_frames, c->freq_masks,
		           c->freq_mask_bands, (float)(mean / (double)n));
	}
}
