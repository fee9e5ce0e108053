/* audio_decode.c - libsndfile to a fixed mono clip: open (a descriptor or bytes in memory), check,
 * read only the frames the clip needs, mix down, resample, pad.
 *
 * It does not decode formats libsndfile lacks (MP3 on older releases, AAC) and does not trim
 * silence or normalise loudness: a clip is the file's first clip_samples at the output rate.
 */
#include "audio_decode.h"

#include <errno.h>
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../alloc.h"
#include "data_internal.h"

/* ---------------------------------------------------------------------------------------------- */
/* Resampling */

static double hann_sinc(double t, double fc, double half)
{
	/* fc * sinc(fc t) under a Hann window of half-width `half` input samples */
	if (fabs(t) >= half)
		return 0.0;
	double w = 0.5 + 0.5 * cos(M_PI * t / half);
	double a = M_PI * fc * t;
	return fc * w * (fabs(a) < 1e-9 ? 1.0 : sin(a) / a);
}

long audio_resample_need(long n_out, int rate_in, int rate_out)
{
	if (rate_in == rate_out)
		return n_out;
	double fc = rate_out < rate_in ? (double)rate_out / rate_in : 1.0;
	double half = AUDIO_SINC_ZEROS / fc;
	return (long)floor((double)(n_out - 1) * rate_in / rate_out + half) + 1;
}

void audio_resample(const float *in, long n_in, int rate_in, float *out, long n_out, int rate_out)
{
	if (rate_in == rate_out) {
		for (long j = 0; j < n_out; j++)
			out[j] = j < n_in ? in[j] : 0.0f;
		return;
	}
	double fc = rate_out < rate_in ? (double)rate_out / rate_in : 1.0;
	double half = AUDIO_SINC_ZEROS / fc;
	double step = (double)rate_in / rate_out;
	/* Output j sits at input position j * rate_in / rate_out, whose fractional part takes only
	 * rate_out / gcd values: with few enough of them, the taps of each are computed once. */
	long g = rate_in, r = rate_out;
	while (r) { long t = g % r; g = r; r = t; }
	long phases = rate_out / g, width = (long)ceil(2 * half) + 1;
	float *taps = phases * width <= (1L << 20) ? eng_malloc(sizeof(float) * phases * width) : NULL;
	if (taps) {
		for (long p = 0; p < phases; p++) {
			double frac = (double)(p * (rate_in / g) % phases) / phases;   /* of output p */
			long k0 = (long)ceil(frac - half);
			for (long t = 0; t < width; t++)
				taps[p * width + t] = (float)hann_sinc(frac - (double)(k0 + t), fc, half);
		}
		for (long j = 0; j < n_out; j++) {
			long base = (long)((j * (long)rate_in) / rate_out);          /* floor of the position */
			double frac = (double)((j * (long)rate_in) % rate_out) / rate_out;
			long k0 = base + (long)ceil(frac - half);
			const float *w = taps + (j % phases) * width;
			double acc = 0.0;
			for (long t = 0; t < width; t++) {
				long k = k0 + t;
				if (k >= 0 && k < n_in)
					acc += in[k] * w[t];
			}
			out[j] = (float)acc;
		}
		eng_free(taps);
		return;
	}
	for (long j = 0; j < n_out; j++) {
		double x = j * step;
		long k0 = (long)ceil(x - half), k1 = (long)floor(x + half);
		if (k0 < 0) k0 = 0;
		if (k1 > n_in - 1) k1 = n_in - 1;
		double acc = 0.0;
		for (long k = k0; k <= k1; k++)
			acc += in[k] * hann_sinc(x - (double)k, fc, half);
		out[j] = (float)acc;
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* Decoding */

/* Whether libsndfile's log says the audio data chunk ("data" in WAV, "SSND" in AIFF) is longer in
 * the header than in the file: a cut-off file, which libsndfile would otherwise read as a shorter
 * one. The placeholder lengths of streamed files (0, 0xFFFFFFFF) do not count. */
static int cut_off(SNDFILE *f, long long *said, long long *has)
{
	char log[8192];
	sf_command(f, SFC_GET_LOG_INFO, log, sizeof log);
	for (char *line = log; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, "data :", 6) != 0 && strncmp(line, "SSND :", 6) != 0)
			continue;
		if (sscanf(line + 6, " %lld (should be %lld)", said, has) == 2 && *said > *has &&
		    *said != 0 && *said != 0xFFFFFFFFll)
			return 1;
	}
	return 0;
}

/* Read the frames the clip needs from an open file, mix, resample, pad. Closes f. */
static int decode_open(SNDFILE *f, const SF_INFO *info, const char *name,
                       const AudioDecodeConfig *cfg, float *out, char *err, size_t errlen)
{
	float *buf = NULL, *mono = NULL;
	int rc = 0;
	if (info->channels < 1) {
		rc = data_err(-EINVAL, err, errlen, "%s: the audio has %d channels", name, info->channels);
		goto done;
	}
	if (info->channels > AUDIO_MAX_CHANNELS) {
		rc = data_err(-EINVAL, err, errlen, "%s: %d channels, more than the %d an audio file may "
		              "have here", name, info->channels, AUDIO_MAX_CHANNELS);
		goto done;
	}
	if (info->samplerate < AUDIO_MIN_RATE || info->samplerate > AUDIO_MAX_RATE) {
		rc = data_err(-EINVAL, err, errlen, "%s: sample rate %d Hz outside [%d, %d]", name,
		              info->samplerate, AUDIO_MIN_RATE, AUDIO_MAX_RATE);
		goto done;
	}
	if (info->frames <= 0) {
		rc = data_err(-EINVAL, err, errlen, "%s: no audio samples (zero-length)", name);
		goto done;
	}
	long long said, has;
	if (cut_off(f, &said, &has)) {
		rc = data_err(-EINVAL, err, errlen, "%s: truncated: the header promises %lld bytes of "
		              "audio, the file holds %lld", name, said, has);
		goto done;
	}
	long need = audio_resample_need(cfg->clip_samples, info->samplerate, cfg->sample_rate);
	long want = info->frames < need ? (long)info->frames : need;
	/* read in blocks, mixing as we go: memory is the mono clip plus one block */
	enum { BLOCK = 4096 };
	buf = eng_malloc(sizeof(float) * BLOCK * (size_t)info->channels);
	mono = eng_malloc(sizeof(float) * (size_t)want);
	if (!buf || !mono) {
		rc = data_err(-ENOMEM, err, errlen, "%s: out of memory for %ld frames", name, want);
		goto done;
	}
	for (long at = 0; at < want; at += BLOCK) {
		long n = want - at < BLOCK ? want - at : BLOCK;
		sf_count_t got = sf_readf_float(f, buf, n);
		if (got < n) {
			/* libsndfile stops short when the data ends before the header's length (a cut-off
			 * file) or a block does not decode */
			const char *why = sf_strerror(f);
			rc = data_err(-EINVAL, err, errlen, "%s: truncated or corrupt: %lld of the %ld "
			              "frames the header promises could be read%s%s", name,
			              (long long)(at + got), want, sf_error(f) ? ": " : "",
			              sf_error(f) ? why : "");
			goto done;
		}
		for (long i = 0; i < n; i++) {
			double s = 0.0;
			for (int c = 0; c < info->channels; c++)
				s += buf[(size_t)i * info->channels + c];
			float v = (float)(s / info->channels);
			if (!(fabsf(v) <= AUDIO_MAX_SAMPLE)) {   /* NaN, infinite or garbage (float files) */
				rc = data_err(-EINVAL, err, errlen, "%s: sample %ld is %g, not an audio sample "
				              "value (|x| <= %g)", name, at + i, v, (double)AUDIO_MAX_SAMPLE);
				goto done;
			}
			mono[at + i] = v;
		}
	}
	audio_resample(mono, want, info->samplerate, out, cfg->clip_samples, cfg->sample_rate);
done:
	sf_close(f);
	eng_free(buf);
	eng_free(mono);
	return rc;
}

static int check_cfg(const AudioDecodeConfig *cfg, const char *name, char *err, size_t errlen)
{
	if (cfg->sample_rate < AUDIO_MIN_RATE || cfg->sample_rate > AUDIO_MAX_RATE ||
	    cfg->clip_samples < 1)
		return data_err(-EINVAL, err, errlen, "%s: bad decode settings (rate %d, %d samples)",
		                name, cfg->sample_rate, cfg->clip_samples);
	return 0;
}

int audio_decode_file(const char *path, const AudioDecodeConfig *cfg, float *out, char *err,
                      size_t errlen)
{
	int rc = check_cfg(cfg, path, err, errlen);
	if (rc < 0)
		return rc;
	int fd = data_open(path, err, errlen);
	if (fd < 0)
		return fd;
	SF_INFO info;
	memset(&info, 0, sizeof info);
	SNDFILE *f = sf_open_fd(fd, SFM_READ, &info, 1);
	if (!f) {
		rc = data_err(-EINVAL, err, errlen, "%s: not a readable audio file (libsndfile: %s)", path,
		              sf_strerror(NULL));
		close(fd);
		return rc;
	}
	return decode_open(f, &info, path, cfg, out, err, errlen);
}

/* A read-only view of bytes for libsndfile's virtual I/O. */
typedef struct MemFile {
	const uint8_t *p;
	sf_count_t len, pos;
} MemFile;

static sf_count_t mem_len(void *u) { return ((MemFile *)u)->len; }
static sf_count_t mem_tell(void *u) { return ((MemFile *)u)->pos; }

static sf_count_t mem_seek(sf_count_t off, int whence, void *u)
{
	MemFile *m = u;
	sf_count_t at = whence == SEEK_SET ? off : whence == SEEK_CUR ? m->pos + off : m->len + off;
	if (at < 0 || at > m->len)
		return -1;
	return m->pos = at;
}

static sf_count_t mem_read(void *dst, sf_count_t n, void *u)
{
	MemFile *m = u;
	if (n > m->len - m->pos)
		n = m->len - m->pos;
	if (n <= 0)
		return 0;
	memcpy(dst, m->p + m->pos, (size_t)n);
	m->pos += n;
	return n;
}

static sf_count_t mem_write(const void *src, sf_count_t n, void *u)
{
	(void)src; (void)n; (void)u;
	return 0;
}

int audio_decode_memory(const void *data, size_t len, const char *name,
                        const AudioDecodeConfig *cfg, float *out, char *err, size_t errlen)
{
	int rc = check_cfg(cfg, name, err, errlen);
	if (rc < 0)
		return rc;
	SF_VIRTUAL_IO io = { mem_len, mem_seek, mem_read, mem_write, mem_tell };
	MemFile m = { .p = data, .len = (sf_count_t)len };
	SF_INFO info;
	memset(&info, 0, sizeof info);
	SNDFILE *f = sf_open_virtual(&io, SFM_READ, &info, &m);
	if (!f)
		return data_err(-EINVAL, err, errlen, "%s: not a readable audio file (libsndfile: %s)",
		                name, sf_strerror(NULL));
	return decode_open(f, &info, name, cfg, out, err, errlen);
}
