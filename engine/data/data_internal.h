/* data_internal.h - helpers shared by the dataset readers in engine/data/ (not a public header).
 *
 * The readers (idx.c, csv.c, text.c, captions.c) each fill a Dataset that dataset.c allocated;
 * on failure they leave partial allocations in it for dataset_free to release. Each is the load
 * of a format descriptor (format.h) listed in format_registry.c.
 */
#ifndef SSLD_DATA_INTERNAL_H
#define SSLD_DATA_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dataset.h"
#include "format.h"

#define DATA_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
/* The files a Fashion-MNIST directory holds (each .gz or raw), as a PARAM_DIR row's choices. */
#define DATA_FASHION_MNIST_FILES "train-images-idx3-ubyte|train-labels-idx1-ubyte|" \
                                 "t10k-images-idx3-ubyte|t10k-labels-idx1-ubyte"
#define DATA_FASHION_MNIST_DIR_HELP "directory of the four Fashion-MNIST IDX files (.gz or raw)"

/* printf into err (if err != NULL); always returns rc so callers can `return data_err(...)`. */
int data_err(int rc, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Every dataset file is opened through these: as given in a process that never called
 * dataset_confine (`ssld run`), else beneath one of the confined roots, so a symlink swapped in
 * after the job was validated cannot lead out of them (-EXDEV, err says so). data_open returns a
 * descriptor or a negative errno; data_fopen NULL with err filled. */
int data_open(const char *path, char *err, size_t errlen);
FILE *data_fopen(const char *path, char *err, size_t errlen);

/* Whole file into memory through zlib (gzip or raw, transparently). *buf is eng_malloc'd with a
 * trailing NUL not counted in *len. Fails if the file is larger than max_bytes (0 = no limit). */
int data_read_file(const char *path, uint8_t **buf, size_t *len, size_t max_bytes,
                   char *err, size_t errlen);

/* The format descriptors, listed in format_registry.c. */
extern const DatasetFormat data_format_fashion_mnist, data_format_idx, data_format_csv,
	data_format_text, data_format_text_records, data_format_captions, data_format_image_folder,
	data_format_cifar10, data_format_cifar100, data_format_stl10, data_format_audio_folder;

/* Readers, each a descriptor's load. */
int data_load_fashion_mnist(const DatasetSpec *spec, Dataset *ds, char *err, size_t errlen);
int data_load_idx(const DatasetSpec *spec, Dataset *ds, char *err, size_t errlen);
int data_load_csv(const DatasetSpec *spec, Dataset *ds, char *err, size_t errlen);
int data_load_text(const DatasetSpec *spec, Dataset *ds, char *err, size_t errlen);
int data_load_text_records(const DatasetSpec *spec, Dataset *ds, char *err, size_t errlen);
int data_load_captions(const DatasetSpec *spec, Dataset *ds, char *err, size_t errlen);

/* Growable list of class names mapping strings to ids in order of first appearance. */
typedef struct DataNames {
	char **v;
	int n, cap;
} DataNames;
/* id of name (added when new); < 0 on allocation failure. */
int data_names_id(DataNames *nm, const char *name, size_t len);
void data_names_free(DataNames *nm);

/* Keep only the first `limit` samples of a split (limit <= 0 keeps all). */
void data_split_limit(Split *s, size_t sample_floats, int limit);

#endif
