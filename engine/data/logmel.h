/* logmel.h - the log-mel spectrogram front end: a mono clip to a (n_mels, frames) image, the
 * sample an audio dataset holds and the audio methods and encoders see.
 *
 * Frames are centred at t * hop for t = 0 .. n / hop - 1, each n_fft samples under a periodic Hann
 * window (samples before the start or past the end read 0), transformed with FFTW (real to
 * complex, single precision). The power |X_k|^2 of bins k = 0 .. n_fft/2 goes through n_mels
 * triangular filters (peak 1) spaced evenly on the HTK mel scale 2595 log10(1 + f/700) from 0 Hz to
 * sample_rate / 2, and each filter's power P becomes
 *     v = (ln(P + LOGMEL_EPS) + LOGMEL_SHIFT) / LOGMEL_SCALE
 * a fixed map from [0, about 1e5] (silence to a full-scale tone at n_fft 400; louder is rare) onto
 * [0, 1], the range of image pixels, so the spectrogram is a one-channel image to every part of
 * ssld that takes images (encoders, the loader's clamp, sample grids). No gradient flows through
 * it: it runs when a dataset is loaded.
 *
 *   LogMel *lm;
 *   if (logmel_new(16000, 400, 160, 40, &lm, err, sizeof err) < 0) ...
 *   float spec[40 * 100];
 *   logmel_compute(lm, clip, 16000, spec);   // (40, 100), mel bin-major
 *   logmel_free(lm);
 */
#ifndef SSLD_DATA_LOGMEL_H
#define SSLD_DATA_LOGMEL_H

#include <stddef.h>

#define LOGMEL_EPS 1e-6f
#define LOGMEL_SHIFT 13.815511f   /* -ln(LOGMEL_EPS): silence maps to 0 */
#define LOGMEL_SCALE 26.0f

typedef struct LogMel LogMel;

/* 0, or a negative errno with err naming the bad setting (n_fft 16..8192, hop >= 1, n_mels in
 * [1, n_fft/2 + 1], a rate of at least 1000 Hz). Planning is serialised internally, so threads may
 * each create their own. One LogMel is used by one thread at a time. */
int logmel_new(int sample_rate, int n_fft, int hop, int n_mels, LogMel **out, char *err,
               size_t errlen);
void logmel_free(LogMel *lm);     /* NULL is a no-op */
static inline int logmel_frames(int n_samples, int hop) { return n_samples / hop; }
/* wave (n) -> out (n_mels, n / hop). */
void logmel_compute(LogMel *lm, const float *wave, int n, float *out);
/* The filterbank's weights (n_mels, n_fft/2 + 1), borrowed (tests). */
const float *logmel_filters(const LogMel *lm);

/* Between the stored value v and the mel power P. */
float logmel_power(float v);
float logmel_value(float power);

#endif
