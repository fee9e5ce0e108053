/* folder_format.h - what the folder dataset formats (image_folder_format.c, audio_folder_format.c)
 * take from a job's DatasetSpec the same way, described once: the file lists (train, test,
 * unlabeled, manifest), the split, the class selection, the skips, the cache, the threads, and
 * the decoding progress as log lines. Each format adds only what its files are (pixels or
 * spectrograms) to the ImageFolderSpec this fills:
 *
 *   FolderProgress pr;
 *   ImageFolderSpec f = folder_format_spec(s, "images", 1, &pr);   // pr must outlive the load
 *   f.image_size = s->image_size; ...
 *   image_folder_load(&f, ds, NULL, err, errlen);
 */
#ifndef SSLD_DATA_FOLDER_FORMAT_H
#define SSLD_DATA_FOLDER_FORMAT_H

#include "dataset.h"
#include "format.h"
#include "image_dataset.h"

/* The "train", "test", "unlabeled" and "manifest" rows of a folder format's key table, in that
 * order, worded for what the folders hold. */
#define FOLDER_FORMAT_LIST_KEYS(train_help, test_help, unlabeled_help)                           \
	{ "train", PARAM_DIR, .def_text = "none: the manifest's rows", .help = train_help,           \
	  PARAM_AT(DatasetSpec, img_train) },                                                        \
	{ "test", PARAM_DIR, .def_text = "none: a stratified test_fraction of train",                \
	  .help = test_help, PARAM_AT(DatasetSpec, img_test) },                                      \
	{ "unlabeled", PARAM_DIR, .def_text = "none", .help = unlabeled_help,                        \
	  PARAM_AT(DatasetSpec, img_unlabeled) },                                                    \
	{ "manifest", PARAM_PATH, .def_text = "none", .conflicts = "train",                          \
	  .help = "CSV or JSON lines: path, label, optional split (paths relative to it)",           \
	  PARAM_AT(DatasetSpec, img_manifest) }

/* The decoding progress notes of one load (the ImageFolderSpec's user). */
typedef struct FolderProgress {
	const DatasetSpec *s;
	const char *what;      /* "images": "decoding images on 2 threads: 30/300" */
	int percent;           /* nonzero: the note ends with " (10%)" */
	int last_tenth, threads;
} FolderProgress;

/* An ImageFolderSpec with the keys both folder formats share filled from s and its progress and
 * notes going to s->on_note (when set) through *pr, which this initialises. */
ImageFolderSpec folder_format_spec(const DatasetSpec *s, const char *what, int percent,
                                   FolderProgress *pr);

/* The rule both validate: "train" or "manifest" must be given. Reports a missing_field on "train"
 * through bad, naming what the folder holds ("images"), and returns 1; else 0. */
int folder_format_need_train(const DatasetSpec *s, const char *holds,
                             void (*bad)(void *user, const char *key, const char *code,
                                         const char *msg),
                             void *user);

#endif
