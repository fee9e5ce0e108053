/* image_folder.h - the file list of an image dataset: a folder scanned for JPEG/PNG files (labels
 * from first-level subfolders, or none), or a manifest (CSV or JSON lines), and a seeded
 * stratified train/test split.
 *
 * A folder with subfolders is labelled: each first-level subfolder is a class (ids in name order)
 * and every image beneath it, however deep, belongs to it. A folder with no subfolders is
 * unlabelled (labels -1). Paths are kept in one string arena and entries in one array, so a
 * million files cost the list and nothing else. Files are recognised by extension (.jpg, .jpeg,
 * .png, any case); other files are ignored; the decoder later checks the content.
 *
 *   ImgList tr;
 *   if (img_folder_scan("photos/train", NULL, NULL, NULL, &tr, err, sizeof err) < 0) ...
 *   int *tri, *tei, ntr, nte;
 *   img_list_split(&tr, 0.1, 42, &tri, &ntr, &tei, &nte, err, sizeof err);
 *   ... img_list_path(&tr, tri[0]), tr.entries[tri[0]].label ...
 *   img_list_free(&tr);
 */
#ifndef SSLD_DATA_IMAGE_FOLDER_H
#define SSLD_DATA_IMAGE_FOLDER_H

#include <stddef.h>
#include <stdint.h>

enum { IMG_SPLIT_ANY = -1, IMG_SPLIT_TRAIN = 0, IMG_SPLIT_TEST = 1, IMG_SPLIT_UNLABELED = 2 };

typedef struct ImgEntry {
	size_t off;          /* path = names + off */
	int label;           /* class id, -1 unlabelled */
	int split;           /* IMG_SPLIT_*: from a manifest's split column, else IMG_SPLIT_ANY */
} ImgEntry;

typedef struct ImgList {
	char *names;         /* NUL-terminated paths back to back */
	size_t names_len, names_cap;
	ImgEntry *entries;
	int n, cap;
	char **classes;      /* num_classes names, owned */
	int num_classes;     /* 0: unlabelled */
} ImgList;

/* Called every 10,000 files found (and once at the end) with the count so far. */
typedef void (*img_scan_cb)(void *user, long files);

/* Scan root. classes: NULL, or the class names of the training folder, so a test folder's
 * subfolders get the same ids (a subfolder naming no known class is an error). Errors, each naming
 * the path: root missing or unreadable, a symlink loop, an empty class folder, a single class
 * folder, image files beside class folders, no image at all. 0 or a negative errno. */
int img_folder_scan(const char *root, const ImgList *classes, img_scan_cb cb, void *user,
                    ImgList *out, char *err, size_t errlen);

/* The same for other files (audio): exts lists the extensions kept, with the dot, any case,
 * NULL-terminated; img_image_exts is the images' list. */
extern const char *const img_image_exts[];
int img_folder_scan_exts(const char *root, const char *const *exts, const ImgList *classes,
                         img_scan_cb cb, void *user, ImgList *out, char *err, size_t errlen);
int img_folder_scan_unlabelled_exts(const char *root, const char *const *exts, img_scan_cb cb,
                                    void *user, ImgList *out, char *err, size_t errlen);

/* Whether root has a (non-hidden) subfolder, i.e. whether img_folder_scan would read it as
 * labelled: the cheap answer for validation (has_labels) without listing any files. 1, 0, or a
 * negative errno when root cannot be read. */
int img_folder_has_classes(const char *root);

/* Every image in root and below it, whatever the folder structure, unlabelled (an "unlabeled"
 * folder). Errors as above; no image at all is an error. */
int img_folder_scan_unlabelled(const char *root, img_scan_cb cb, void *user, ImgList *out,
                               char *err, size_t errlen);

/* Read a manifest: CSV ("path,label[,split]", an optional header line starting with "path") or
 * JSON lines ({"path": "...", "label": "..." or a number, "split": "train"|"test"|"unlabeled"}),
 * told apart by the first non-blank character. Paths are relative to the manifest's folder and
 * may not be absolute or contain "..". An empty label is unlabelled. Class ids follow the order
 * of first appearance. Errors name the manifest, the line and the problem (a missing file, a bad
 * split value, a path outside the folder). 0 or a negative errno. */
int img_manifest_read(const char *manifest, img_scan_cb cb, void *user, ImgList *out, char *err,
                      size_t errlen);

/* Seeded stratified split of entries whose split is IMG_SPLIT_ANY: round(test_fraction * n_c) of
 * each class c (unlabelled entries count as one more class) go to test; entries a manifest put
 * in a split stay there (unlabeled counts as train). Indices come out ascending, eng_malloc'd.
 * 0 or -EINVAL (fraction outside [0, 1)) / -ENOMEM. */
int img_list_split(const ImgList *l, double test_fraction, uint64_t seed, int **train_idx,
                   int *n_train, int **test_idx, int *n_test, char *err, size_t errlen);

/* Leave out the classes of l with fewer than min_images entries, in l and in other (a test list
 * with l's class ids; may be NULL): the rest keep their order and are renumbered 0.., the class
 * names follow. *dropped counts the classes left out; their names are written to names (comma
 * separated, truncated to namelen). Fewer than 2 classes left is an error naming the folder
 * (root). 0 or a negative errno. */
int img_list_keep_classes(ImgList *l, ImgList *other, int min_images, const char *root,
                          int *dropped, char *names, size_t namelen, char *err, size_t errlen);

static inline const char *img_list_path(const ImgList *l, int i) { return l->names + l->entries[i].off; }
void img_list_free(ImgList *l);

#endif
