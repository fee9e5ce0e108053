/* audio_decode.h - one audio file (WAV, FLAC, anything libsndfile reads) to a fixed-length mono
 * clip at one sample rate: the decoder behind the "audio_folder" dataset format.
 *
 * Steps: open with libsndfile; mix every channel down to mono (the mean of the channels, any
 * count from 1 to AUDIO_MAX_CHANNELS; more is refused); resample to sample_rate with a
 * windowed-sinc filter (audio_resample); keep the first clip_samples, padding a shorter file with
 * silence at the end. Only the frames the clip needs are read, so a one-hour file costs the same
 * memory and about the same time as a one-second one.
 *
 * Refused, each with an error naming the file: not an audio file libsndfile knows (non-audio,
 * corrupt headers), a file whose data ends before its header says (truncated), no frames
 * (zero-length), 0 channels, more than AUDIO_MAX_CHANNELS channels, a sample rate outside
 * [AUDIO_MIN_RATE, AUDIO_MAX_RATE], a (float) sample that is not a number or beyond
 * AUDIO_MAX_SAMPLE (full scale is 1).
 *
 *   AudioDecodeConfig c = { .sample_rate = 16000, .clip_samples = 16000 };
 *   float clip[16000];
 *   if (audio_decode_file("words/yes/a.wav", &c, clip, err, sizeof err) < 0) ...
 */
#ifndef SSLD_DATA_AUDIO_DECODE_H
#define SSLD_DATA_AUDIO_DECODE_H

#include <stddef.h>

#define AUDIO_MAX_CHANNELS 64
#define AUDIO_MIN_RATE 1000
#define AUDIO_MAX_RATE 384000
#define AUDIO_MAX_SAMPLE 64.0f

typedef struct AudioDecodeConfig {
	int sample_rate;          /* output rate in Hz, [AUDIO_MIN_RATE, AUDIO_MAX_RATE] */
	int clip_samples;         /* output length, >= 1 */
} AudioDecodeConfig;

/* out: clip_samples floats in [-1, 1]. 0, or a negative errno (-EINVAL for content libsndfile or
 * these rules refuse, -EIO for a read error, -ENOMEM) with err naming the file. The file is opened
 * through the data roots' confinement (data_internal.h). */
int audio_decode_file(const char *path, const AudioDecodeConfig *cfg, float *out, char *err,
                      size_t errlen);
/* The same from bytes in memory (the fuzz harness); name is used in messages. */
int audio_decode_memory(const void *data, size_t len, const char *name,
                        const AudioDecodeConfig *cfg, float *out, char *err, size_t errlen);

/* Resample in (n_in samples at rate_in) to out (n_out samples at rate_out): out[j] is the
 * band-limited interpolation of in at time j / rate_out, a Hann-windowed sinc with
 * AUDIO_SINC_ZEROS zero crossings on each side and its cutoff at the lower Nyquist frequency
 * (so downsampling does not alias); samples outside in read as 0. Equal rates copy. */
#define AUDIO_SINC_ZEROS 16
void audio_resample(const float *in, long n_in, int rate_in, float *out, long n_out, int rate_out);
/* Input samples at rate_in that n_out output samples at rate_out read (the filter's tail
 * included). */
long audio_resample_need(long n_out, int rate_in, int rate_out);

#endif
