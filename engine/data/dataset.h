/* dataset.h - in-memory datasets: images (IDX, CSV features) and text, with splits and label subsets.
 *
 * A Dataset holds a train and a test split fully in memory as float32 (images scaled to [0,1],
 * (N,C,H,W) row-major; CSV rows as (N,D) with C=1,H=1,W=D) plus integer labels (-1 = unlabelled).
 * Readers validate what they read and fail with a message naming the file and the problem
 * ("t10k-images-idx3-ubyte.gz: truncated, expected 7840016 bytes, got 4096"). Each DatasetKind is
 * one format of the registry (format.h), which owns its keys in DatasetSpec and its reader.
 *
 *   DatasetSpec s = { .kind = DATASET_FASHION_MNIST };
 *   Dataset *ds; char err[512];
 *   if (dataset_load(&s, &ds, err, sizeof err) < 0) fprintf(stderr, "%s\n", err);
 *   ... ds->train.x[i * ds->sample_floats] ...
 *   dataset_free(ds);
 */
#ifndef SSLD_DATA_DATASET_H
#define SSLD_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "../rng.h"

typedef enum DatasetKind {
	DATASET_FASHION_MNIST,  /* /usr/share/datasets/fashion-mnist (or spec.dir) */
	DATASET_IDX,            /* four IDX paths (gzip or raw) */
	DATASET_CSV,            /* numeric features + label column */
	DATASET_TEXT,           /* raw bytes of files; tail fraction held out as test */
	DATASET_TEXT_RECORDS,   /* labelled text: records split on "%" lines, label = source file */
	DATASET_CAPTIONS,       /* JSON lines {"image": index, "caption": "..."} over an image dataset */
	DATASET_IMAGE_FOLDER,   /* JPEG/PNG files: class subfolders, an unlabelled folder or a manifest */
	DATASET_CIFAR10,        /* the CIFAR-10 binary batches */
	DATASET_CIFAR100,       /* the CIFAR-100 binary files */
	DATASET_STL10,          /* the STL-10 binary files */
	DATASET_AUDIO_FOLDER,   /* WAV/FLAC files as log-mel spectrograms: folders like IMAGE_FOLDER */
} DatasetKind;

typedef struct DatasetSpec {
	DatasetKind kind;
	const char *dir;                 /* FASHION_MNIST: override directory (NULL = default) */
	const char *train_images, *train_labels, *test_images, *test_labels; /* IDX */
	const char *csv_train, *csv_test;/* CSV; csv_test may be NULL -> test_fraction of train */
	int csv_label_column;            /* -1 = last column */
	int csv_header;                  /* -1 auto-detect, 0 no, 1 yes */
	const char *const *text_files;   /* TEXT / TEXT_RECORDS */
	int n_text_files;
	float test_fraction;             /* TEXT: tail share of bytes; TEXT_RECORDS / CSV: tail share of records (default 0.1) */
	int max_record_bytes;            /* TEXT_RECORDS: records are truncated/padded to this (default 128) */
	int text_label_field;            /* TEXT_RECORDS: 0 = label is the source file, records split on
	                                  * "%" lines; 1 = records are lines "label<TAB>text" */
	const char *captions_file;       /* CAPTIONS: JSON lines; images come from the FASHION_MNIST train split
	                                  * ("image": index) or PNG files ("image": "path", relative to the
	                                  * captions file). NULL = templated captions from the class names
	                                  * of every Fashion-MNIST training image ("a photo of a sneaker"). */
	const char *img_train, *img_test, *img_unlabeled, *img_manifest; /* IMAGE_FOLDER: folders / manifest */
	int image_size;                  /* IMAGE_FOLDER: side of the square images (default 64) */
	int image_channels;              /* IMAGE_FOLDER: 1 or 3 (default 3) */
	int image_resize;                /* IMAGE_FOLDER: an ImgResize (image_decode.h) */
	int min_class_images;            /* IMAGE_FOLDER: classes with fewer images are left out (0 = none) */
	int max_skipped;                 /* IMAGE_FOLDER: files that do not decode left out (0 = fail) */
	const char *cache_dir;           /* IMAGE_FOLDER: where decoded pixels are kept (not a key: the
	                                  * service's shared cache folder, or the job directory);
	                                  * NULL = decode in memory each load */
	int load_threads;                /* IMAGE_FOLDER: decoding threads (not a key; <= 0 = 1) */
	/* Not keys: a line for the job's log while loading (decoding progress, the decode cache's
	 * state, files skipped). NULL = silent. */
	void (*on_note)(void *user, const char *msg);
	void *note_user;
	int audio_rate;                  /* AUDIO_FOLDER (which shares the img_* folders, max_skipped,
	                                  * min_class_images and test_fraction): sample rate in Hz */
	double audio_clip_seconds;       /* AUDIO_FOLDER: clip length (pad with silence / crop) */
	int audio_mels;                  /* AUDIO_FOLDER: mel bands */
	double audio_hop_ms, audio_window_ms; /* AUDIO_FOLDER: STFT hop and window */
	int coarse_labels;               /* CIFAR100: the 20 superclasses */
	int stl_unlabeled;               /* STL10: unlabelled images appended to train (0 = none) */
	int limit_train;                 /* >0: keep only the first N training samples (small runs) */
	int limit_test;                  /* >0: keep only the first N test samples */
} DatasetSpec;

typedef struct Split {
	float *x;                        /* (n, sample_floats); owned by the Dataset */
	int *y;                          /* (n) labels, -1 unknown; owned */
	int n;
} Split;

typedef struct Dataset {
	DatasetKind kind;
	int c, h, w;                     /* sample shape; sample_floats = c*h*w */
	size_t sample_floats;
	int num_classes;                 /* 0 if unlabelled */
	char **class_names;              /* num_classes names (fashion-mnist: "T-shirt/top", ...), owned */
	Split train, test;
	/* TEXT: byte streams instead of samples (train.x / test.x unused, n = 0). */
	uint8_t *text_train, *text_test;
	size_t text_train_len, text_test_len;
	/* TEXT_RECORDS: records as bytes (n, max_record_bytes), 0-padded, with lengths. */
	uint8_t *rec_train, *rec_test;
	int *rec_train_len, *rec_test_len;
	int record_bytes;
	/* CAPTIONS: one caption per train image (train.n strings), owned. */
	char **captions;
	int n_captions;                  /* entries in captions (== train.n after loading) */
} Dataset;

/* Confines every dataset file this process opens to the given directories (the daemon's data
 * roots): a file must resolve beneath one of them when it is opened, checked by the kernel
 * (openat2 with RESOLVE_BENEATH from a descriptor of the root; without openat2, the opened
 * descriptor's path is checked), so a symlink swapped in after validation cannot lead out. A file
 * that does lead out fails the load with -EXDEV and a message saying so. n = 0 allows no file.
 * Never called (`ssld run`, tests): files open as given. The strings are copied. 0 or -ENOMEM. */
int dataset_confine(const char *const *roots, int n);

/* 0 on success; a negative errno (-ENOENT, -EINVAL for malformed content, -EIO for corrupt gzip,
 * -ENOMEM) on failure with a message in err naming the file and the problem. */
int dataset_load(const DatasetSpec *spec, Dataset **out, char *err, size_t errlen);
void dataset_free(Dataset *ds);

/* Validation slice: the last n_val samples of split become `val`, the rest `train_part`. Both are
 * borrowed views into split's arrays (no copy; valid while the Dataset lives), so a label subset
 * can be drawn from train_part without ever touching val. 0, or -EINVAL unless 0 <= n_val < n. */
int dataset_val_slice(const Dataset *ds, const Split *split, int n_val, Split *train_part,
                      Split *val, char *err, size_t errlen);

/* Label subsets ------------------------------------------------------------------------------- */
/* Indices into split (class-stratified). Default rule ("first"): the first k samples of each class
 * in file order, k = round(fraction * n / num_classes) (fraction 0.01 on Fashion-MNIST -> 60 per
 * class) or k = labels_per_class when > 0; the seeded alternative draws k per class at random.
 * This "first k per class in file order" rule is the protocol the benchmarks use: it needs no seed
 * and gives the same images on every run and machine. n counts labelled samples (y >= 0); a class
 * with fewer than k samples contributes all it has; fraction 1.0 (labels_per_class 0) returns
 * every labelled sample. Indices come out in ascending (file) order for both rules.
 * Returns the number of indices written to *out (eng_malloc'd, caller eng_frees), or < 0 on error. */
typedef enum { LABELS_FIRST = 0, LABELS_RANDOM = 1 } LabelRule;
int dataset_label_subset(const Split *split, int num_classes, double fraction, int labels_per_class,
                         LabelRule rule, uint64_t seed, int **out, char *err, size_t errlen);
/* The per-class quota k dataset_label_subset asks of each class for (fraction, labels_per_class)
 * over `labelled` labelled samples: 0 when it takes every labelled sample (fraction 1.0), may be
 * 0 too when the fraction is too small for one sample per class (the subset then fails). A class
 * with fewer than k samples is short: the subset holds fewer labels than asked for. */
int dataset_label_quota(int labelled, int num_classes, double fraction, int labels_per_class);

#endif
