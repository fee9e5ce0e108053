/* audio_folder_format.c - the "audio_folder" dataset format: WAV/FLAC files (anything libsndfile
 * reads) in class subfolders, a manifest or an unlabelled folder, each decoded once
 * (audio_decode.h) and turned into a log-mel spectrogram (logmel.h), the (1, n_mels, frames)
 * sample the audio methods and the image encoders see.
 *
 * The file lists, the seeded stratified split, the decode-once cache with its counted skips and
 * the class selection are the image folders' (image_dataset.h): this file only supplies the
 * extensions, the decoder and the sample shape. The cache holds spectrograms, keyed by every
 * setting here, so changing a setting decodes again.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "audio_decode.h"
#include "data_internal.h"
#include "folder_format.h"
#include "image_dataset.h"
#include "image_folder.h"
#include "logmel.h"

static const char *const audio_exts[] = { ".wav", ".flac", NULL };

/* What one clip becomes, from a spec. */
typedef struct AudioShape {
	int rate, clip, n_fft, hop, mels, frames;
} AudioShape;

static AudioShape audio_shape(const DatasetSpec *s)
{
	AudioShape a = { .rate = s->audio_rate, .mels = s->audio_mels };
	a.clip = (int)lround(s->audio_clip_seconds * s->audio_rate);
	a.hop = (int)lround(s->audio_hop_ms * 1e-3 * s->audio_rate);
	a.n_fft = (int)lround(s->audio_window_ms * 1e-3 * s->audio_rate);
	if (a.hop < 1) a.hop = 1;
	a.frames = logmel_frames(a.clip, a.hop);
	return a;
}

/* The cache's decoder: file -> clip -> spectrogram, as float32 bytes. */
static int decode_spectrogram(const char *path, void *user, uint8_t *out, char *err, size_t errlen)
{
	const AudioShape *a = user;
	float *clip = eng_malloc(sizeof(float) * (size_t)a->clip);
	if (!clip)
		return data_err(-ENOMEM, err, errlen, "%s: out of memory", path);
	AudioDecodeConfig dc = { .sample_rate = a->rate, .clip_samples = a->clip };
	int rc = audio_decode_file(path, &dc, clip, err, errlen);
	LogMel *lm = NULL;
	if (rc == 0 && (rc = logmel_new(a->rate, a->n_fft, a->hop, a->mels, &lm, err, errlen)) == 0) {
		float *spec = (float *)(void *)out;   /* items start at multiples of 4 bytes */
		logmel_compute(lm, clip, a->clip, spec);
	}
	logmel_free(lm);
	eng_free(clip);
	return rc;
}

static void audio_estimate(const DatasetSpec *s, int context, DatasetShape *out)
{
	(void)context;
	AudioShape a = audio_shape(s);
	*out = (DatasetShape){ .train_samples = -1, .c = 1, .h = a.mels, .w = a.frames, .known = 1 };
}

/* A manifest is taken as labelled (as the image folders do); a folder is labelled when it has
 * class subfolders, and one that cannot be read is too, so that the load reports what is wrong
 * with it rather than the evaluations reporting missing labels. */
static int audio_has_labels(const DatasetSpec *s)
{
	if (s->img_manifest)
		return 1;
	return s->img_train && img_folder_has_classes(s->img_train) != 0;
}

static int audio_validate(const DatasetSpec *s, const int *given,
                          void (*bad)(void *user, const char *key, const char *code, const char *msg),
                          void *user)
{
	(void)given;
	char msg[200];
	int n = folder_format_need_train(s, "WAV/FLAC files", bad, user);
	AudioShape a = audio_shape(s);
	if (a.n_fft < 16 || a.n_fft > 8192) {
		snprintf(msg, sizeof msg, "window_ms %.3g at %d Hz is %d samples; it must be 16 to 8192",
		         s->audio_window_ms, a.rate, a.n_fft);
		bad(user, "window_ms", "invalid_field", msg);
		n++;
	} else if (a.mels > a.n_fft / 2 + 1) {
		snprintf(msg, sizeof msg, "%d mel bands need a window of at least %d samples; window_ms "
		         "gives %d", a.mels, 2 * (a.mels - 1), a.n_fft);
		bad(user, "n_mels", "invalid_field", msg);
		n++;
	}
	if (a.frames < 4) {
		snprintf(msg, sizeof msg, "clip_seconds %.3g with hop_ms %.3g gives %d frames; at least 4 "
		         "are needed", s->audio_clip_seconds, s->audio_hop_ms, a.frames);
		bad(user, "clip_seconds", "invalid_field", msg);
		n++;
	}
	return n;
}

static int audio_load(const DatasetSpec *s, Dataset *ds, char *err, size_t errlen)
{
	AudioShape a = audio_shape(s);
	FolderProgress pr;
	ImageFolderSpec f = folder_format_spec(s, "audio", 0, &pr);
	f.exts = audio_exts;
	f.decode = decode_spectrogram;
	f.decode_user = &a;
	f.settings = ((uint64_t)a.rate << 40) ^ ((uint64_t)a.clip << 16) ^ ((uint64_t)a.n_fft << 28) ^
	             ((uint64_t)a.hop << 4) ^ (uint64_t)a.mels ^ 0xa0d10ull << 44;
	f.c = 1;
	f.h = a.mels;
	f.w = a.frames;
	f.noun = "audio";
	int rc = image_folder_load(&f, ds, NULL, err, errlen);
	ds->kind = DATASET_AUDIO_FOLDER;
	return rc;
}

static const ParamDef audio_keys[] = {
	FOLDER_FORMAT_LIST_KEYS(
		"folder of WAV/FLAC files: class subfolders (labelled) or none (unlabelled)",
		"test folder with the same class subfolders (e.g. held-out speakers)",
		"folder whose audio files (at any depth) join train without labels"),
	{ "sample_rate", PARAM_INTEGER, .def = 16000, .min = 4000, .max = 48000,
	  .help = "every file is mixed to mono and resampled to this rate (Hz)",
	  PARAM_AT(DatasetSpec, audio_rate) },
	{ "clip_seconds", PARAM_NUMBER, .def = 1.0, .min = 0.05, .max = 30,
	  .help = "each file's first clip_seconds; shorter files are padded with silence",
	  PARAM_AT(DatasetSpec, audio_clip_seconds) },
	{ "n_mels", PARAM_INTEGER, .def = 40, .min = 8, .max = 256,
	  .help = "mel bands of the log-mel spectrogram (its height)", PARAM_AT(DatasetSpec, audio_mels) },
	{ "hop_ms", PARAM_NUMBER, .def = 10, .min = 1, .max = 100,
	  .help = "spectrogram frame step in milliseconds (frames = clip / hop, its width)",
	  PARAM_AT(DatasetSpec, audio_hop_ms) },
	{ "window_ms", PARAM_NUMBER, .def = 25, .min = 2, .max = 200,
	  .help = "STFT window (Hann) in milliseconds", PARAM_AT(DatasetSpec, audio_window_ms) },
	{ "min_class_files", PARAM_INTEGER, .def = 0, .min = 0, .max = 1000000,
	  .help = "leave out class folders with fewer training files than this (0: keep every class)",
	  PARAM_AT(DatasetSpec, min_class_images) },
	{ "max_skipped", PARAM_INTEGER, .def = 0, .min = 0, .max = 1000000,
	  .help = "files per folder that may fail to decode (corrupt, truncated, empty, not audio) "
	          "and be left out, counted in the job's log (0: the first one fails the job)",
	  PARAM_AT(DatasetSpec, max_skipped) },
	{ "test_fraction", PARAM_NUMBER, .def = 0.1, .min = 0, .max = 0.5,
	  .help = "share of each class held out as test when there is no test folder (unused with test)",
	  PARAM_AT(DatasetSpec, test_fraction) },
};

const DatasetFormat data_format_audio_folder = {
	.name = "audio_folder",
	.summary = "WAV/FLAC files as log-mel spectrograms, labelled by class subfolders or a "
	           "manifest, or unlabelled",
	.kind = DATASET_AUDIO_FOLDER,
	.modality = DATA_AUDIO,
	.labelled = 1,
	.has_labels = audio_has_labels,
	.keys = audio_keys,
	.n_keys = (int)(sizeof audio_keys / sizeof audio_keys[0]),
	.validate = audio_validate,
	.load = audio_load,
	.estimate = audio_estimate,
};
