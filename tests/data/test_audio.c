/* test_audio.c - the audio decoder (mono mix-down, resampling, padding, every bad input named in
 * audio_decode.h), the spectrogram augmentations, and the audio_folder format end to end (class
 * folders, a test folder, a bad file skipped within max_skipped or failing the load by name, the
 * decode cache hit on a second load). Files are written here with libsndfile or by hand.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../engine/alloc.h"
#include "../../engine/data/audio_augment.h"
#include "../../engine/data/audio_decode.h"
#include "../../engine/data/format.h"
#include "../../engine/data/logmel.h"
#include "check.h"
#include "support.h"

static char dir[256];
/* dir/name (support.h: valid for the next 63 paths) */
static const char *P(const char *name) { return test_path(dir, name); }

/* A file of `frames` frames: channel 0 a sine of freq Hz at amplitude amp, the others silent. */
static void write_sound(const char *rel, int format, int rate, int channels, long frames,
                        double freq, double amp)
{
	SF_INFO info = { .samplerate = rate, .channels = channels, .format = format };
	SNDFILE *f = sf_open(P(rel), SFM_WRITE, &info);
	CHECK(f != NULL, "%s: %s", rel, sf_strerror(NULL));
	if (!f)
		return;
	float *buf = calloc((size_t)channels * 1024, sizeof(float));
	for (long at = 0; at < frames; at += 1024) {
		long n = frames - at < 1024 ? frames - at : 1024;
		for (long i = 0; i < n; i++)
			buf[i * channels] = (float)(amp * sin(2 * M_PI * freq * (double)(at + i) / rate));
		sf_writef_float(f, buf, n);
	}
	free(buf);
	sf_close(f);
}

static void write_bytes(const char *rel, const void *p, size_t n)
{
	FILE *f = fopen(P(rel), "wb");
	CHECK(f != NULL, "%s", rel);
	if (f) {
		fwrite(p, 1, n, f);
		fclose(f);
	}
}

/* A 16-bit PCM WAV header with the given channel count and data length (no data after it). */
static size_t wav_header(uint8_t *h, int channels, int rate, uint32_t data_bytes)
{
	uint16_t align = (uint16_t)(channels * 2);
	uint32_t u32;
	uint16_t u16;
	size_t at = 0;
#define PUT(p, n) (memcpy(h + at, (p), (n)), at += (n))
	PUT("RIFF", 4); u32 = 36 + data_bytes; PUT(&u32, 4); PUT("WAVE", 4);
	PUT("fmt ", 4); u32 = 16; PUT(&u32, 4);
	u16 = 1; PUT(&u16, 2); u16 = (uint16_t)channels; PUT(&u16, 2);
	u32 = (uint32_t)rate; PUT(&u32, 4); u32 = (uint32_t)rate * align; PUT(&u32, 4);
	PUT(&align, 2); u16 = 16; PUT(&u16, 2);
	PUT("data", 4); PUT(&data_bytes, 4);
#undef PUT
	return at;
}

static double sine_err(const float *x, int n, int rate, double freq, double amp, int from, int to)
{
	double worst = 0;
	for (int i = from; i < to && i < n; i++) {
		double d = fabs(x[i] - amp * sin(2 * M_PI * freq * i / rate));
		if (d > worst)
			worst = d;
	}
	return worst;
}

static void test_decode(void)
{
	enum { RATE = 16000, CLIP = 8000 };
	AudioDecodeConfig c = { .sample_rate = RATE, .clip_samples = CLIP };
	float *x = calloc(CLIP, sizeof(float));
	char err[512];

	/* same rate, mono: the samples (16-bit quantisation), then silence past the end */
	write_sound("mono.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, RATE, 1, 6000, 440, 0.5);
	CHECK(audio_decode_file(P("mono.wav"), &c, x, err, sizeof err) == 0, "%s", err);
	CHECK(sine_err(x, CLIP, RATE, 440, 0.5, 0, 6000) < 1e-3, "mono: %g", sine_err(x, CLIP, RATE, 440, 0.5, 0, 6000));
	int silent = 1;
	for (int i = 6000; i < CLIP; i++)
		silent &= x[i] == 0.0f;
	CHECK(silent, "a short file is padded with silence");

	/* 22.05 kHz FLAC resampled to 16 kHz: the same sine away from the edges */
	write_sound("r22.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 22050, 1, 22050, 440, 0.5);
	CHECK(audio_decode_file(P("r22.flac"), &c, x, err, sizeof err) == 0, "%s", err);
	double e = sine_err(x, CLIP, RATE, 440, 0.5, 100, CLIP - 100);
	CHECK(e < 5e-3, "resampled sine off by %g", e);

	/* 48 kHz with a 7 kHz tone above the 8 kHz... no: 10 kHz, above 16 kHz's Nyquist: filtered out */
	write_sound("hi.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 48000, 1, 48000, 10000, 0.5);
	CHECK(audio_decode_file(P("hi.wav"), &c, x, err, sizeof err) == 0, "%s", err);
	double peak = 0;
	for (int i = 200; i < CLIP - 200; i++)
		peak = fmax(peak, fabs(x[i]));
	CHECK(peak < 0.02, "a 10 kHz tone aliased into 16 kHz output at %g", peak);

	/* 8 channels, only channel 0 sounding: mixed down to the mean */
	write_sound("eight.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, RATE, 8, 4000, 440, 0.8);
	CHECK(audio_decode_file(P("eight.wav"), &c, x, err, sizeof err) == 0, "%s", err);
	e = sine_err(x, CLIP, RATE, 440, 0.1, 0, 4000);
	CHECK(e < 1e-3, "8 channels mix to the mean: off by %g", e);

	/* one hour (a sparse file): only the clip's frames are read */
	{
		uint8_t h[64];
		long frames = 3600L * 8000;
		size_t hn = wav_header(h, 1, 8000, (uint32_t)(frames * 2));
		int fd = open(P("hour.wav"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0);
		CHECK(write(fd, h, hn) == (ssize_t)hn);
		int16_t s[8000];
		for (int i = 0; i < 8000; i++)
			s[i] = (int16_t)lround(16384 * sin(2 * M_PI * 440 * i / 8000.0));
		CHECK(write(fd, s, sizeof s) == (ssize_t)sizeof s);
		CHECK(ftruncate(fd, (off_t)(hn + (size_t)frames * 2)) == 0);
		close(fd);
		AudioDecodeConfig c8 = { .sample_rate = 8000, .clip_samples = 4000 };
		CHECK(audio_decode_file(P("hour.wav"), &c8, x, err, sizeof err) == 0, "%s", err);
		e = sine_err(x, 4000, 8000, 440, 0.5, 0, 4000);
		CHECK(e < 1e-3, "one-hour file's first half second off by %g", e);
	}

	/* bad inputs: each refused with the file named and the reason */
	write_bytes("text.wav", "this is a text file, not a sound\n", 33);
	CHECK_MSG(audio_decode_file(P("text.wav"), &c, x, err, sizeof err), err, "text.wav: not a readable audio file");
	write_bytes("empty.wav", "", 0);
	CHECK_MSG(audio_decode_file(P("empty.wav"), &c, x, err, sizeof err), err, "empty.wav: not a readable audio file");
	uint8_t h[64 + 400];
	size_t hn = wav_header(h, 1, RATE, 0);
	write_bytes("noframes.wav", h, hn);
	CHECK_MSG(audio_decode_file(P("noframes.wav"), &c, x, err, sizeof err), err, "noframes.wav: ");
	CHECK(strstr(err, "zero-length") || strstr(err, "not a readable"), "%s", err);
	hn = wav_header(h, 0, RATE, 400);
	memset(h + hn, 1, 400);
	write_bytes("nochannels.wav", h, hn + 400);
	CHECK_MSG(audio_decode_file(P("nochannels.wav"), &c, x, err, sizeof err), err, "nochannels.wav: ");
	hn = wav_header(h, 1, RATE, 100000);
	memset(h + hn, 1, 400);
	write_bytes("truncated.wav", h, hn + 400);   /* header: 50,000 frames; file: 200 */
	CHECK_MSG(audio_decode_file(P("truncated.wav"), &c, x, err, sizeof err), err, "truncated.wav: ");
	CHECK(strstr(err, "truncated"), "%s", err);
	{
		/* corrupt: a FLAC whose frames are overwritten with noise */
		write_sound("corrupt.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, RATE, 1, 16000, 440, 0.5);
		int fd = open(P("corrupt.flac"), O_RDWR);
		struct stat st;
		CHECK(fd >= 0 && fstat(fd, &st) == 0);
		uint8_t junk[4096];
		for (size_t i = 0; i < sizeof junk; i++)
			junk[i] = (uint8_t)(i * 131 + 7);
		CHECK(pwrite(fd, junk, sizeof junk, st.st_size / 2) == (ssize_t)sizeof junk);
		close(fd);
		CHECK_MSG(audio_decode_file(P("corrupt.flac"), &c, x, err, sizeof err), err, "corrupt.flac: ");
	}
	free(x);
}

/* ---- augmentations ---------------------------------------------------------------------------- */

static void test_augment(void)
{
	enum { M = 20, F = 50 };
	float src[M * F], dst[M * F];
	Rng r;
	rng_seed(&r, 7);
	for (int i = 0; i < M * F; i++)
		src[i] = logmel_value(1.0f + (float)(i % 17));
	const float silence = logmel_value(0.0f);

	/* gain alone: every cell's power scaled by one factor within +-6 dB */
	AudioAugConfig g = { .crop_min = 1, .gain_db = 6 };
	audio_augment(&g, &r, src, dst, M, F);
	double f0 = logmel_power(dst[0]) / logmel_power(src[0]), worst = 0;
	for (int i = 0; i < M * F; i++)
		worst = fmax(worst, fabs(logmel_power(dst[i]) / logmel_power(src[i]) / f0 - 1));
	CHECK(worst < 1e-3 && f0 > 0.25 && f0 < 4.0 && fabs(f0 - 1) > 1e-6, "gain: factor %g, spread %g", f0, worst);

	/* crop alone: the kept frames are a contiguous run of the source, the rest silence */
	AudioAugConfig cr = { .crop_min = 0.5f };
	for (int trial = 0; trial < 20; trial++) {
		audio_augment(&cr, &r, src, dst, M, F);
		int kept = 0;
		for (int t = 0; t < F; t++)
			kept += dst[t] != silence;
		CHECK(kept >= F / 2 && kept <= F, "crop kept %d of %d frames", kept, F);
	}

	/* noise at 10 dB SNR: the mean power grows by about a tenth */
	AudioAugConfig nz = { .crop_min = 1, .noise_p = 1, .snr_min = 10, .snr_max = 10 };
	audio_augment(&nz, &r, src, dst, M, F);
	double ps = 0, pd = 0;
	for (int i = 0; i < M * F; i++) {
		ps += logmel_power(src[i]);
		pd += logmel_power(dst[i]);
	}
	CHECK(fabs((pd - ps) / ps - 0.1) < 0.02, "noise added %g of the power, want 0.1", (pd - ps) / ps);

	/* masks: whole bands set to one value */
	AudioAugConfig mk = { .crop_min = 1, .time_masks = 1, .time_mask_frames = F, .freq_masks = 0 };
	int saw = 0;
	for (int trial = 0; trial < 10; trial++) {
		audio_augment(&mk, &r, src, dst, M, F);
		for (int t = 0; t < F; t++) {
			int col_changed = dst[t] != src[t];
			if (col_changed) {
				saw = 1;
				for (int m = 1; m < M; m++)
					CHECK(dst[m * F + t] == dst[t], "time mask not a whole column at %d", t);
			}
		}
	}
	CHECK(saw, "no time mask in 10 draws");
	float mask[M * F];
	int n = audio_draw_masks(&r, M, F, 0, 0, 1, M, mask);
	CHECK(n % F == 0, "a frequency mask covers whole rows: %d cells", n);
}

/* ---- the audio_folder format ------------------------------------------------------------------ */

static int hits;
static void on_note(void *user, const char *msg)
{
	(void)user;
	if (strstr(msg, "read decoded pixels from"))
		hits++;
}

static void test_format(void)
{
	const char *dirs[] = { "af", "af/train", "af/train/low", "af/train/high", "af/test",
	                       "af/test/low", "af/test/high", "cache" };
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
		mkdir(P(dirs[i]), 0755);
	char name[64];
	for (int k = 0; k < 4; k++) {
		snprintf(name, sizeof name, "af/train/low/%d.wav", k);
		write_sound(name, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 22050, 1, 11025, 300 + 20 * k, 0.5);
		snprintf(name, sizeof name, "af/train/high/%d.flac", k);
		write_sound(name, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16000, 2, 8000, 3000 + 100 * k, 0.5);
	}
	write_sound("af/test/low/t.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, 1, 4000, 350, 0.5);
	write_sound("af/test/high/t.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, 1, 4000, 3500, 0.5);
	write_bytes("af/train/low/notes.txt", "ignored: not .wav or .flac", 26);

	const DatasetFormat *f = dataset_format_find("audio_folder");
	CHECK(f != NULL && f->modality == DATA_AUDIO);
	if (!f)
		return;
	DatasetSpec s;
	CHECK(dataset_format_defaults(f, &s) == 0);
	s.img_train = P("af/train");
	s.img_test = P("af/test");
	s.audio_rate = 8000;
	s.audio_clip_seconds = 0.5;
	s.cache_dir = P("cache");
	s.on_note = on_note;
	Dataset *ds = NULL;
	char err[1024];
	CHECK(dataset_load(&s, &ds, err, sizeof err) == 0, "%s", err);
	if (ds) {
		CHECK(ds->c == 1 && ds->h == 40 && ds->w == 50, "shape %dx%dx%d", ds->c, ds->h, ds->w);
		CHECK(ds->train.n == 8 && ds->test.n == 2 && ds->num_classes == 2, "%d %d %d",
		      ds->train.n, ds->test.n, ds->num_classes);
		/* a 3 kHz tone puts its energy in higher mel bands than a 300 Hz one */
		int hi = -1, lo = -1;
		for (int i = 0; i < ds->train.n; i++) {
			const float *x = ds->train.x + (size_t)i * ds->sample_floats;
			int best = 0;
			for (int m = 0; m < ds->h; m++)
				if (x[m * ds->w + 10] > x[best * ds->w + 10])
					best = m;
			if (ds->train.y[i] == 0) hi = best;   /* "high" sorts first */
			else lo = best;
		}
		CHECK(hi > lo + 10, "loudest band: high %d, low %d", hi, lo);
		dataset_free(ds);
	}
	ds = NULL;
	hits = 0;
	CHECK(dataset_load(&s, &ds, err, sizeof err) == 0, "%s", err);
	CHECK(hits == 2, "second load: %d cache hits, want train and test", hits);
	dataset_free(ds);

	/* a bad file fails the load by name, or is skipped and counted within max_skipped */
	write_bytes("af/train/high/broken.wav", "RIFF....WAVEjunk", 16);
	ds = NULL;
	CHECK_MSG(dataset_load(&s, &ds, err, sizeof err), err, "broken.wav");
	CHECK(strstr(err, "max_skipped") != NULL, "%s", err);
	dataset_free(ds);
	ds = NULL;
	s.max_skipped = 1;
	CHECK(dataset_load(&s, &ds, err, sizeof err) == 0, "%s", err);
	CHECK(ds && ds->train.n == 8, "the broken file is left out");
	dataset_free(ds);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/ssld-test-audio-XXXXXX");
	if (!mkdtemp(dir))
		return check_skip("cannot make a temporary folder");
	test_decode();
	test_augment();
	test_format();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_exit("data_audio");
}
