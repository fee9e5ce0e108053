/* cifar_stl.h - the CIFAR-10, CIFAR-100 and STL-10 binary distributions as in-memory datasets.
 *
 * They fill the same Dataset as the IDX reader: (N,3,H,W) float32 in [0,1] (byte / 255), labels
 * 0-based, class names from the metadata file shipped beside the binaries (numbers when it is
 * absent). `dir` is the folder holding the files, or its parent (cifar-10-batches-bin/,
 * cifar-100-binary/, stl10_binary/ as the archives unpack). Every file's size must be a whole
 * number of records; a missing, truncated or oversized file is an error naming it.
 *
 *   CifarStlSpec s = { .format = CIFAR_STL_CIFAR10, .dir = "/data/cifar" };
 *   Dataset *ds = eng_calloc(1, sizeof *ds);
 *   if (cifar_stl_load(&s, ds, err, sizeof err) < 0) ...   // dataset_free(ds) either way
 *
 *   CIFAR-10:  data_batch_1..5.bin, test_batch.bin; records: label, 3072 bytes (R, G, B planes)
 *   CIFAR-100: train.bin, test.bin; records: coarse label, fine label, 3072 bytes
 *   STL-10:    train_X.bin/train_y.bin, test_X.bin/test_y.bin (labels 1..10), unlabeled_X.bin;
 *              images 3x96x96 stored column-major per channel (transposed here)
 */
#ifndef SSLD_DATA_CIFAR_STL_H
#define SSLD_DATA_CIFAR_STL_H

#include <stddef.h>

#include "dataset.h"

typedef enum CifarStlFormat { CIFAR_STL_CIFAR10, CIFAR_STL_CIFAR100, CIFAR_STL_STL10 } CifarStlFormat;

typedef struct CifarStlSpec {
	CifarStlFormat format;
	const char *dir;
	int coarse_labels;      /* CIFAR-100: the 20 superclasses instead of the 100 classes */
	int unlabeled;          /* STL-10: append up to this many unlabeled_X.bin images to train with
	                         * label -1 (0 = none; each costs 110 KB as float) */
} CifarStlSpec;

/* Fills ds (zeroed by the caller; on failure partial allocations stay for dataset_free).
 * 0, -ENOENT (a file missing), -EINVAL (a size that is not whole records, a label out of range),
 * -ENOMEM. */
int cifar_stl_load(const CifarStlSpec *spec, Dataset *ds, char *err, size_t errlen);

#endif
