/* captions_format.c - the "captions" dataset format's descriptor: its keys and what an estimate
 * knows. The reader is captions.c (JSON lines over Fashion-MNIST or PNG images); it lives apart so
 * the descriptor can change without touching the reader.
 */
#include "data_internal.h"

static void captions_estimate(const DatasetSpec *s, int context, DatasetShape *out)
{
	(void)s, (void)context;
	*out = (DatasetShape){ .train_samples = 60000, .c = 1, .h = 28, .w = 28, .known = 1 };
}

static const ParamDef captions_keys[] = {
	{ "file", PARAM_PATH, .def_text = "none: captions from the class names",
	  .help = "JSON lines {\"image\": index, \"caption\": text}", PARAM_AT(DatasetSpec, captions_file) },
	{ "dir", PARAM_DIR, .choices = DATA_FASHION_MNIST_FILES, .def_text = DATA_FASHION_MNIST_DIR,
	  .help = DATA_FASHION_MNIST_DIR_HELP,
	  PARAM_AT(DatasetSpec, dir) },
};

const DatasetFormat data_format_captions = {
	.name = "captions",
	.summary = "image-caption pairs: JSON lines over Fashion-MNIST images or PNG files",
	.kind = DATASET_CAPTIONS,
	.modality = DATA_CAPTIONS,
	.labelled = 1,
	.keys = captions_keys,
	.n_keys = (int)(sizeof captions_keys / sizeof captions_keys[0]),
	.load = data_load_captions,
	.estimate = captions_estimate,
};
