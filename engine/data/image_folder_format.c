/* image_folder_format.c - the "image_folder" dataset format's descriptor: its keys, the rule
 * between them, whether a given folder is labelled, and the bridge from DatasetSpec to the reader
 * (image_dataset.h), which lives apart because it knows nothing of job specs.
 */
#include "data_internal.h"
#include "folder_format.h"
#include "image_dataset.h"
#include "image_folder.h"

static void image_folder_estimate(const DatasetSpec *s, int context, DatasetShape *out)
{
	(void)context;
	*out = (DatasetShape){ .train_samples = -1, .c = s->image_channels, .h = s->image_size,
	                       .w = s->image_size, .known = 1 };
}

/* A manifest decides its labels row by row; it is taken as labelled here and a manifest without
 * labels fails at load. A folder is labelled when it has class subfolders. */
static int image_folder_has_labels(const DatasetSpec *s)
{
	if (s->img_manifest)
		return 1;
	return s->img_train && img_folder_has_classes(s->img_train) == 1;
}

static int image_folder_validate(const DatasetSpec *s, const int *given,
                                 void (*bad)(void *user, const char *key, const char *code, const char *msg),
                                 void *user)
{
	(void)given;
	return folder_format_need_train(s, "images", bad, user);
}

static int image_folder_load_spec(const DatasetSpec *s, Dataset *ds, char *err, size_t errlen)
{
	FolderProgress pr;
	ImageFolderSpec f = folder_format_spec(s, "images", 1, &pr);
	f.image_size = s->image_size;
	f.channels = s->image_channels;
	f.resize = (ImgResize)s->image_resize;
	int rc = image_folder_load(&f, ds, NULL, err, errlen);
	ds->kind = DATASET_IMAGE_FOLDER;
	return rc;
}

static const ParamDef image_folder_keys[] = {
	FOLDER_FORMAT_LIST_KEYS(
		"folder of JPEG/PNG images: class subfolders (labelled) or none (unlabelled)",
		"test folder with the same class subfolders",
		"folder whose images (at any depth) join train without labels"),
	{ "image_size", PARAM_INTEGER, .def = 64, .min = 8, .max = 1024,
	  .help = "side of the square images in pixels", PARAM_AT(DatasetSpec, image_size) },
	{ "channels", PARAM_INTEGER, .def = 3, .min = 1, .max = 3, .choices = "1|3",
	  .help = "1 (grayscale) or 3 (RGB); images are converted", PARAM_AT(DatasetSpec, image_channels) },
	{ "resize", PARAM_ENUM, .def_str = "shorter_side", .choices = "shorter_side|stretch|center_crop",
	  .help = "shorter side to image_size then the centre; both axes; or the centre at full scale",
	  PARAM_AT(DatasetSpec, image_resize) },
	{ "min_class_images", PARAM_INTEGER, .def = 0, .min = 0, .max = 1000000,
	  .help = "leave out class folders with fewer training images than this (0: keep every class)",
	  PARAM_AT(DatasetSpec, min_class_images) },
	{ "max_skipped", PARAM_INTEGER, .def = 0, .min = 0, .max = 1000000,
	  .help = "image files per folder that may fail to decode (corrupt, over the size limit) and "
	          "be left out, counted in the job's log (0: the first one fails the job)",
	  PARAM_AT(DatasetSpec, max_skipped) },
	{ "test_fraction", PARAM_NUMBER, .def = 0.1, .min = 0, .max = 0.5,
	  .conflicts = "test", .help = "share of each class held out as test when there is no test folder",
	  PARAM_AT(DatasetSpec, test_fraction) },
};

const DatasetFormat data_format_image_folder = {
	.name = "image_folder",
	.summary = "a folder of JPEG/PNG images, labelled by class subfolders or a manifest, or unlabelled",
	.kind = DATASET_IMAGE_FOLDER,
	.modality = DATA_IMAGES,
	.labelled = 1,
	.has_labels = image_folder_has_labels,
	.keys = image_folder_keys,
	.n_keys = (int)(sizeof image_folder_keys / sizeof image_folder_keys[0]),
	.validate = image_folder_validate,
	.load = image_folder_load_spec,
	.estimate = image_folder_estimate,
};
