/* cifar_stl_format.c - the "cifar10", "cifar100" and "stl10" dataset formats' descriptors: their
 * keys, what an estimate knows (the distributions have fixed sizes) and the bridge from
 * DatasetSpec to the reader (cifar_stl.h).
 */
#include "cifar_stl.h"
#include "data_internal.h"

static void cifar_estimate(const DatasetSpec *s, int context, DatasetShape *out)
{
	(void)s, (void)context;
	*out = (DatasetShape){ .train_samples = 50000, .c = 3, .h = 32, .w = 32, .known = 1 };
}

static void stl_estimate(const DatasetSpec *s, int context, DatasetShape *out)
{
	(void)context;
	*out = (DatasetShape){ .train_samples = 5000 + (s->stl_unlabeled > 0 ? s->stl_unlabeled : 0),
	                       .c = 3, .h = 96, .w = 96, .known = 1 };
}

static int load_as(const DatasetSpec *s, CifarStlFormat format, Dataset *ds, char *err, size_t errlen)
{
	CifarStlSpec c = { .format = format, .dir = s->dir, .coarse_labels = s->coarse_labels,
	                   .unlabeled = s->stl_unlabeled };
	int rc = cifar_stl_load(&c, ds, err, errlen);
	ds->kind = s->kind;
	return rc;
}

static int load_cifar10(const DatasetSpec *s, Dataset *ds, char *err, size_t errlen)
{
	return load_as(s, CIFAR_STL_CIFAR10, ds, err, errlen);
}

static int load_cifar100(const DatasetSpec *s, Dataset *ds, char *err, size_t errlen)
{
	return load_as(s, CIFAR_STL_CIFAR100, ds, err, errlen);
}

static int load_stl10(const DatasetSpec *s, Dataset *ds, char *err, size_t errlen)
{
	return load_as(s, CIFAR_STL_STL10, ds, err, errlen);
}

static const ParamDef cifar10_keys[] = {
	{ "dir", PARAM_DIR, .flags = PARAM_REQUIRED,
	  .help = "folder with data_batch_1..5.bin and test_batch.bin (or its parent)",
	  PARAM_AT(DatasetSpec, dir) },
};

static const ParamDef cifar100_keys[] = {
	{ "dir", PARAM_DIR, .flags = PARAM_REQUIRED, .help = "folder with train.bin and test.bin (or its parent)",
	  PARAM_AT(DatasetSpec, dir) },
	{ "coarse_labels", PARAM_BOOLEAN, .def = 0, .help = "the 20 superclasses instead of the 100 classes",
	  PARAM_AT(DatasetSpec, coarse_labels) },
};

static const ParamDef stl10_keys[] = {
	{ "dir", PARAM_DIR, .flags = PARAM_REQUIRED,
	  .help = "folder with train_X.bin, train_y.bin, test_X.bin, test_y.bin (or its parent)",
	  PARAM_AT(DatasetSpec, dir) },
	{ "unlabeled_images", PARAM_INTEGER, .def = 0, .min = 0, .max = 100000,
	  .help = "append this many of unlabeled_X.bin's images to train without labels (110 KB each)",
	  PARAM_AT(DatasetSpec, stl_unlabeled) },
};

const DatasetFormat data_format_cifar10 = {
	.name = "cifar10",
	.summary = "the CIFAR-10 binary distribution: 32x32 colour images, 10 classes",
	.kind = DATASET_CIFAR10,
	.modality = DATA_IMAGES,
	.labelled = 1,
	.keys = cifar10_keys,
	.n_keys = (int)(sizeof cifar10_keys / sizeof cifar10_keys[0]),
	.load = load_cifar10,
	.estimate = cifar_estimate,
};

const DatasetFormat data_format_cifar100 = {
	.name = "cifar100",
	.summary = "the CIFAR-100 binary distribution: 32x32 colour images, 100 classes (or 20)",
	.kind = DATASET_CIFAR100,
	.modality = DATA_IMAGES,
	.labelled = 1,
	.keys = cifar100_keys,
	.n_keys = (int)(sizeof cifar100_keys / sizeof cifar100_keys[0]),
	.load = load_cifar100,
	.estimate = cifar_estimate,
};

const DatasetFormat data_format_stl10 = {
	.name = "stl10",
	.summary = "the STL-10 binary distribution: 96x96 colour images, 10 classes, optional unlabelled",
	.kind = DATASET_STL10,
	.modality = DATA_IMAGES,
	.labelled = 1,
	.keys = stl10_keys,
	.n_keys = (int)(sizeof stl10_keys / sizeof stl10_keys[0]),
	.load = load_stl10,
	.estimate = stl_estimate,
};
