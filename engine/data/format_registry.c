/* format_registry.c - the list of dataset formats, and lookups over it.
 *
 * Adding a format (say "cifar10"):
 *   1. Write engine/data/cifar.c: the reader, int load(const DatasetSpec *, Dataset *, err, errlen),
 *      filling ds->train / ds->test / ds->c,h,w / class names as idx.c does; the fields it needs
 *      in DatasetSpec (dataset.h); its keys as ParamDef rows bound to them (PARAM_AT; files and
 *      directories are PARAM_PATH / PARAM_DIR / PARAM_PATH_LIST, which the spec layer resolves
 *      and confines to the data roots); an estimate (sample count and shape from headers or file
 *      sizes); optionally validate() for rules between its keys. Export one DatasetFormat with
 *      its name, a DatasetKind value (dataset.h), its modality (DATA_*) and whether it has labels.
 *   2. Add the file to engine/data/meson.build, declare the descriptor in data_internal.h and list
 *      it in formats[] below.
 *   3. Regenerate docs/spec.md (build/daemon/ssld schema --markdown > docs/spec.md).
 * Everything else follows from the descriptor: the job spec's dataset.* keys and their checks,
 * the JSON Schema's branch for the format, the catalogue (GET /v1/methods "formats"), which
 * methods accept it (their DATA_* mask), dataset_load and the admission estimate.
 * tests/data/test_format_registry.c walks this list and loads a tiny file of every format.
 */
#include "data_internal.h"

#include <string.h>

static const DatasetFormat *const formats[] = {
	&data_format_fashion_mnist,
	&data_format_idx,
	&data_format_csv,
	&data_format_text,
	&data_format_text_records,
	&data_format_captions,
	&data_format_image_folder,
	&data_format_cifar10,
	&data_format_cifar100,
	&data_format_stl10,
	&data_format_audio_folder,
};

#define N_FORMATS ((int)(sizeof formats / sizeof formats[0]))

int dataset_format_count(void) { return N_FORMATS; }

const DatasetFormat *dataset_format_at(int i)
{
	return i >= 0 && i < N_FORMATS ? formats[i] : NULL;
}

const DatasetFormat *dataset_format_find(const char *name)
{
	for (int i = 0; name && i < N_FORMATS; i++)
		if (strcmp(formats[i]->name, name) == 0)
			return formats[i];
	return NULL;
}

const DatasetFormat *dataset_format_for(DatasetKind kind)
{
	for (int i = 0; i < N_FORMATS; i++)
		if (formats[i]->kind == kind)
			return formats[i];
	return NULL;
}

const ParamDef *dataset_format_key(const DatasetFormat *f, const char *key)
{
	for (int i = 0; f && key && i < f->n_keys; i++)
		if (strcmp(f->keys[i].name, key) == 0)
			return &f->keys[i];
	return NULL;
}

int dataset_format_defaults(const DatasetFormat *f, DatasetSpec *s)
{
	memset(s, 0, sizeof *s);
	if (param_fill_defaults(f->keys, f->n_keys, s, sizeof *s) < 0)
		return -1;
	s->kind = f->kind;
	return 0;
}

const char *dataset_modality_name(unsigned bit)
{
	switch (bit) {
	case DATA_IMAGES: return "images";
	case DATA_VECTORS: return "vectors";
	case DATA_TEXT: return "text";
	case DATA_CAPTIONS: return "captions";
	case DATA_AUDIO: return "audio";
	default: return NULL;
	}
}
