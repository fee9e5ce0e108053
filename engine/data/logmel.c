/* logmel.c - framing, Hann window, FFTW real FFT, HTK mel filterbank, log (see logmel.h).
 *
 * FFTW's planner is not thread-safe, so plans are made and destroyed under one mutex; executing a
 * plan is. FFTW_ESTIMATE keeps planning to microseconds (no measurement runs).
 */
#include "logmel.h"

#include <errno.h>
#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "../alloc.h"
#include "data_internal.h"

struct LogMel {
	int rate, n_fft, hop, n_mels, bins;
	float *window;            /* (n_fft) */
	float *filters;           /* (n_mels, bins) */
	int *lo, *hi;             /* the nonzero bins of each filter: [lo, hi) */
	float *frame;             /* (n_fft), fftwf_malloc'd */
	fftwf_complex *spec;      /* (bins) */
	float *power;             /* (bins) */
	fftwf_plan plan;
};

static pthread_mutex_t plan_mu = PTHREAD_MUTEX_INITIALIZER;

static double hz_to_mel(double f) { return 2595.0 * log10(1.0 + f / 700.0); }
static double mel_to_hz(double m) { return 700.0 * (pow(10.0, m / 2595.0) - 1.0); }

float logmel_value(float power)
{
	return (logf(power + LOGMEL_EPS) + LOGMEL_SHIFT) / LOGMEL_SCALE;
}

float logmel_power(float v)
{
	float p = expf(v * LOGMEL_SCALE - LOGMEL_SHIFT) - LOGMEL_EPS;
	return p > 0.0f ? p : 0.0f;
}

void logmel_free(LogMel *lm)
{
	if (!lm)
		return;
	pthread_mutex_lock(&plan_mu);
	if (lm->plan)
		fftwf_destroy_plan(lm->plan);
	pthread_mutex_unlock(&plan_mu);
	fftwf_free(lm->frame);
	fftwf_free(lm->spec);
	eng_free(lm->window);
	eng_free(lm->filters);
	eng_free(lm->lo);
	eng_free(lm->hi);
	eng_free(lm->power);
	eng_free(lm);
}

int logmel_new(int sample_rate, int n_fft, int hop, int n_mels, LogMel **out, char *err,
               size_t errlen)
{
	*out = NULL;
	if (sample_rate < 1000 || n_fft < 16 || n_fft > 8192 || hop < 1 || n_mels < 1 ||
	    n_mels > n_fft / 2 + 1)
		return data_err(-EINVAL, err, errlen, "log-mel: bad settings (rate %d Hz, n_fft %d, hop "
		                "%d, n_mels %d)", sample_rate, n_fft, hop, n_mels);
	LogMel *lm = eng_calloc(1, sizeof *lm);
	if (!lm)
		return data_err(-ENOMEM, err, errlen, "log-mel: out of memory");
	lm->rate = sample_rate;
	lm->n_fft = n_fft;
	lm->hop = hop;
	lm->n_mels = n_mels;
	lm->bins = n_fft / 2 + 1;
	lm->window = eng_malloc(sizeof(float) * n_fft);
	lm->filters = eng_calloc((size_t)n_mels * lm->bins, sizeof(float));
	lm->lo = eng_calloc(n_mels, sizeof(int));
	lm->hi = eng_calloc(n_mels, sizeof(int));
	lm->power = eng_malloc(sizeof(float) * lm->bins);
	lm->frame = fftwf_malloc(sizeof(float) * n_fft);
	lm->spec = fftwf_malloc(sizeof(fftwf_complex) * lm->bins);
	if (!lm->window || !lm->filters || !lm->lo || !lm->hi || !lm->power || !lm->frame || !lm->spec) {
		logmel_free(lm);
		return data_err(-ENOMEM, err, errlen, "log-mel: out of memory");
	}
	for (int i = 0; i < n_fft; i++)   /* periodic Hann */
		lm->window[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / n_fft));
	double m0 = hz_to_mel(0.0), m1 = hz_to_mel(sample_rate / 2.0);
	for (int m = 0; m < n_mels; m++) {
		double f_lo = mel_to_hz(m0 + (m1 - m0) * m / (n_mels + 1));
		double f_c = mel_to_hz(m0 + (m1 - m0) * (m + 1) / (n_mels + 1));
		double f_hi = mel_to_hz(m0 + (m1 - m0) * (m + 2) / (n_mels + 1));
		lm->lo[m] = lm->bins;
		for (int k = 0; k < lm->bins; k++) {
			double f = (double)k * sample_rate / n_fft;
			double w = f <= f_c ? (f - f_lo) / (f_c - f_lo) : (f_hi - f) / (f_hi - f_c);
			if (w > 0) {
				lm->filters[(size_t)m * lm->bins + k] = (float)w;
				if (k < lm->lo[m]) lm->lo[m] = k;
				lm->hi[m] = k + 1;
			}
		}
		if (lm->hi[m] <= lm->lo[m])
			lm->lo[m] = lm->hi[m] = 0;   /* narrower than one bin: an empty (silent) filter */
	}
	pthread_mutex_lock(&plan_mu);
	lm->plan = fftwf_plan_dft_r2c_1d(n_fft, lm->frame, lm->spec, FFTW_ESTIMATE);
	pthread_mutex_unlock(&plan_mu);
	if (!lm->plan) {
		logmel_free(lm);
		return data_err(-ENOMEM, err, errlen, "log-mel: FFTW cannot plan a %d-point FFT", n_fft);
	}
	*out = lm;
	return 0;
}

const float *logmel_filters(const LogMel *lm)
{
	return lm->filters;
}

void logmel_compute(LogMel *lm, const float *wave, int n, float *out)
{
	int frames = logmel_frames(n, lm->hop), half = lm->n_fft / 2;
	for (int t = 0; t < frames; t++) {
		long start = (long)t * lm->hop - half;
		for (int i = 0; i < lm->n_fft; i++) {
			long s = start + i;
			lm->frame[i] = s >= 0 && s < n ? wave[s] * lm->window[i] : 0.0f;
		}
		fftwf_execute(lm->plan);
		for (int k = 0; k < lm->bins; k++)
			lm->power[k] = lm->spec[k][0] * lm->spec[k][0] + lm->spec[k][1] * lm->spec[k][1];
		for (int m = 0; m < lm->n_mels; m++) {
			const float *w = lm->filters + (size_t)m * lm->bins;
			double p = 0.0;
			for (int k = lm->lo[m]; k < lm->hi[m]; k++)
				p += (double)w[k] * lm->power[k];
			out[(size_t)m * frames + t] = logmel_value((float)p);
		}
	}
}
