/* audio_augment.h - augmentations of log-mel spectrograms (logmel.h), the views the audio methods
 * train on: a random crop in time, gain, additive noise, and time and frequency masking
 * (SpecAugment). They act on the stored values v, converting to mel power where the operation is
 * defined on power:
 *   crop   keep a random share in [crop_min, 1] of the frames, placed at a random offset; the rest
 *          is silence (the value of zero power);
 *   gain   multiply the power by 10^(g/10), g uniform in [-gain_db, gain_db] dB: exact, because a
 *          gain on the waveform scales every STFT bin's power by the same factor;
 *   noise  with probability noise_p, add to every cell the power of noise at a signal-to-noise
 *          ratio uniform in [snr_min, snr_max] dB (against the clip's mean cell power), times an
 *          exponential draw per cell (a periodogram's spread); equal power in every mel band, so it
 *          approximates rather than reproduces white noise added to the waveform;
 *   masks  time_masks bands of 0..time_mask_frames frames and freq_masks bands of 0..freq_mask_bands
 *          mel bands, each set to the view's mean value.
 * The order is the one above; each view is one independent draw of every step.
 *
 *   AudioAugConfig c = { .crop_min = 0.6f, .gain_db = 6, .noise_p = 0.3f, .snr_min = 10,
 *                        .snr_max = 40, .time_masks = 2, .time_mask_frames = 10,
 *                        .freq_masks = 2, .freq_mask_bands = 6 };
 *   audio_augment(&c, rng, spec, view, 40, 100);     // spec, view (40, 100)
 */
#ifndef SSLD_DATA_AUDIO_AUGMENT_H
#define SSLD_DATA_AUDIO_AUGMENT_H

#include "../rng.h"

typedef struct AudioAugConfig {
	float crop_min;           /* 1 = no crop */
	float gain_db;            /* 0 = no gain */
	float noise_p, snr_min, snr_max;
	int time_masks, time_mask_frames;
	int freq_masks, freq_mask_bands;
} AudioAugConfig;

/* src, dst (mels, frames), no aliasing. No allocation; thread-safe with one rng per thread. */
void audio_augment(const AudioAugConfig *c, Rng *rng, const float *src, float *dst, int mels,
                   int frames);
/* mask (mels, frames): 1 inside n_time random bands of 0..time_max frames and n_freq bands of
 * 0..freq_max mel bands, 0 elsewhere. Returns the masked cells. */
int audio_draw_masks(Rng *rng, int mels, int frames, int n_time, int time_max, int n_freq,
                     int freq_max, float *mask);

/* The parameter rows (method "params") of an AudioAugConfig field f of config struct T, with
 * defaults suited to one-second word clips at 100 frames. */
#define AUDIO_AUG_PARAMS(T, f)                                                                   \
	{ "crop_min", PARAM_NUMBER, .def = 0.6, .min = 0.1, .max = 1,                                 \
	  .help = "time crop: each view keeps a random share in [crop_min, 1] of the frames",          \
	  PARAM_AT(T, f.crop_min) },                                                                  \
	{ "gain_db", PARAM_NUMBER, .def = 6, .min = 0, .max = 40,                                     \
	  .help = "random gain in [-gain_db, gain_db] dB per view", PARAM_AT(T, f.gain_db) },          \
	{ "noise_p", PARAM_NUMBER, .def = 0.3, .min = 0, .max = 1,                                    \
	  .help = "probability of additive noise per view", PARAM_AT(T, f.noise_p) },                  \
	{ "snr_min", PARAM_NUMBER, .def = 10, .min = -20, .max = 60,                                   \
	  .help = "the noise's lowest signal-to-noise ratio (dB)", PARAM_AT(T, f.snr_min) },           \
	{ "snr_max", PARAM_NUMBER, .def = 40, .min = -20, .max = 60,                                  \
	  .help = "the noise's highest signal-to-noise ratio (dB)", PARAM_AT(T, f.snr_max) },          \
	{ "time_masks", PARAM_INTEGER, .def = 2, .min = 0, .max = 16,                                 \
	  .help = "time masks per view (SpecAugment)", PARAM_AT(T, f.time_masks) },                    \
	{ "time_mask_frames", PARAM_INTEGER, .def = 10, .min = 0, .max = 10000,                       \
	  .help = "widest time mask in frames", PARAM_AT(T, f.time_mask_frames) },                     \
	{ "freq_masks", PARAM_INTEGER, .def = 2, .min = 0, .max = 16,                                 \
	  .help = "frequency masks per view (SpecAugment)", PARAM_AT(T, f.freq_masks) },               \
	{ "freq_mask_bands", PARAM_INTEGER, .def = 6, .min = 0, .max = 256,                           \
	  .help = "widest frequency mask in mel bands", PARAM_AT(T, f.freq_mask_bands) }

#endif
