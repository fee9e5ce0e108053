/* image_dataset.c - image folders and manifests to a Dataset: list, split, decode once, to float.
 *
 * Each list (train, test, unlabeled) has its own cache file, named by a hash of the folder or
 * manifest path, the class selection and the decode settings, so two jobs on the same folder share
 * it while the key inside (every file's size and mtime) decides whether it is still valid; a
 * folder that changes replaces its file rather than adding one, so the cache folder holds one file
 * per (folder, settings) in use.
 */
#include "image_dataset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "data_internal.h"
#include "image_folder.h"

static uint64_t name_hash(const char *root, const char *which, const ImageFolderSpec *s)
{
	uint64_t h = 1469598103934665603ull;
	const char *parts[2] = { root, which };
	for (int k = 0; k < 2; k++) {
		for (const char *p = parts[k]; *p; p++)
			h = (h ^ (uint8_t)*p) * 1099511628211ull;
		h = (h ^ 0xff) * 1099511628211ull;
	}
	int v[4] = { s->image_size, s->channels, (int)s->resize, s->min_class_images };
	for (int k = 0; k < 4; k++)
		h = (h ^ (uint64_t)v[k]) * 1099511628211ull;
	if (s->decode)
		h = (h ^ s->settings) * 1099511628211ull;
	return h;
}

/* Decoded pixels of a whole list: from a cache file (mapped) or decoded into memory. */
typedef struct Pixels {
	ImgCache cache;
	uint8_t *mem;
	uint8_t *skip_mem;        /* without a cache file: the skip flags */
	int n_skipped;
	char first_skip[1024];
	size_t img;
	int floats;               /* items are float32 values (a decoder's), not uint8 pixels */
} Pixels;

static void note(const ImageFolderSpec *s, const char *fmt, ...)
{
	if (!s->note)
		return;
	char msg[1400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	s->note(s->user, msg);
}

static int px_skipped(const Pixels *p, int i)
{
	const uint8_t *f = p->mem ? p->skip_mem : p->cache.skipped;
	return f && f[i];
}

static const uint8_t *px_image(const Pixels *p, int i)
{
	return p->mem ? p->mem + (size_t)i * p->img : img_cache_image(&p->cache, i);
}

static void px_close(Pixels *p)
{
	img_cache_close(&p->cache);
	eng_free(p->mem);
	eng_free(p->skip_mem);
}

static const char *const state_words[] = {
	[IMG_CACHE_HIT] = "read decoded pixels from",
	[IMG_CACHE_BUILT] = "decoded into",
	[IMG_CACHE_STALE] = "rebuilt (the files or settings changed)",
	[IMG_CACHE_CORRUPT] = "rebuilt (the cached file was truncated or corrupt)",
};

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
		else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
		else fputc(*p, f);
	}
	fputc('"', f);
}

/* Beside a cache file images-KEY.u8, images-KEY.json says what it holds (the folder, the list,
 * the settings, how many images and skips), so that what is cached for a folder can be told
 * without the file list (GET /v1/datasets/{owner}/{name} reads them). Written under a temporary
 * name and renamed; a failure only loses the description. */
static void describe_cache(const char *cache_path, const ImageFolderSpec *s, const char *root, const char *which,
                           const Pixels *px, int images)
{
	static const char *const resize[] = { "shorter_side", "stretch", "center_crop" };
	char path[4200], tmp[4220];
	size_t n = strlen(cache_path);
	if (n < 3 || n + 8 > sizeof path) return;
	snprintf(path, sizeof path, "%.*sjson", (int)(n - 2), cache_path);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f) return;
	fprintf(f, "{\"root\":");
	json_str(f, root);
	fprintf(f, ",\"list\":");
	json_str(f, which);
	fprintf(f, ",\"image_size\":%d,\"channels\":%d,\"resize\":\"%s\",\"min_class_images\":%d,"
	           "\"images\":%d,\"skipped\":%d,\"bytes\":%zu}\n",
	        s->image_size, s->channels, (unsigned)s->resize < 3 ? resize[s->resize] : "?", s->min_class_images,
	        images, px->cache.n_skipped, px->cache.map_len);
	if (fclose(f) != 0 || rename(tmp, path) != 0) remove(tmp);
}

static int px_open(const ImageFolderSpec *s, const ImgList *l, const char *root, const char *which,
                   Pixels *px, int *state, char *err, size_t errlen)
{
	memset(px, 0, sizeof *px);
	px->floats = s->decode != NULL;
	px->img = s->decode ? sizeof(float) * (size_t)s->c * s->h * s->w
	                    : (size_t)s->channels * s->image_size * s->image_size;
	ImgCacheConfig cc = { .channels = s->channels, .size = s->image_size, .resize = s->resize,
	                      .threads = s->threads, .max_skipped = s->max_skipped,
	                      .progress = s->progress, .user = s->user, .decode = s->decode,
	                      .decode_user = s->decode_user, .item_bytes = px->img,
	                      .settings = s->settings };
	if (s->cache_dir) {
		char path[4200];
		if ((size_t)snprintf(path, sizeof path, "%s/%s-%016llx.u8", s->cache_dir,
		                     s->decode ? s->noun : "images",
		                     (unsigned long long)name_hash(root, which, s)) >= sizeof path)
			return data_err(-ENAMETOOLONG, err, errlen, "%s: path too long", s->cache_dir);
		cc.path = path;
		int rc = img_cache_open(l, &cc, &px->cache, err, errlen);
		if (rc < 0)
			return rc;
		if (state)
			*state = (int)px->cache.state;
		note(s, "decode cache: %s images: %s %s (%d images%s)", which,
		     state_words[px->cache.state], path, l->n,
		     px->cache.waited ? "; waited for another job that was decoding them" : "");
		px->n_skipped = px->cache.n_skipped;
		snprintf(px->first_skip, sizeof px->first_skip, "%s", px->cache.first_skip);
		describe_cache(path, s, root, which, px, l->n);
		return 0;
	}
	if (!(px->mem = eng_malloc(px->img * l->n)) || !(px->skip_mem = eng_malloc((size_t)l->n)))
		return data_err(-ENOMEM, err, errlen, "%s: out of memory for %d decoded images", root, l->n);
	return img_decode_list(l, &cc, px->mem, px->skip_mem, &px->n_skipped, px->first_skip,
	                       sizeof px->first_skip, err, errlen);
}

/* Append the images idx[0..n) of l to split (float in [0,1]); labels as listed or -1. */
static int append(Split *sp, size_t floats, const Pixels *px, const ImgList *l, const int *idx,
                  int n, int force_unlabelled)
{
	if (n == 0)
		return 0;
	float *x = eng_realloc(sp->x, sizeof(float) * floats * (size_t)(sp->n + n));
	if (!x)
		return -ENOMEM;
	sp->x = x;
	int *y = eng_realloc(sp->y, sizeof(int) * (size_t)(sp->n + n));
	if (!y)
		return -ENOMEM;
	sp->y = y;
	for (int k = 0; k < n; k++) {
		int i = idx ? idx[k] : k;
		if (px_skipped(px, i))
			continue;
		const uint8_t *s = px_image(px, i);
		float *d = sp->x + (size_t)sp->n * floats;
		if (px->floats)
			memcpy(d, s, sizeof(float) * floats);
		else
			for (size_t j = 0; j < floats; j++)
				d[j] = s[j] * (1.0f / 255.0f);
		sp->y[sp->n++] = force_unlabelled ? -1 : l->entries[i].label;
	}
	return 0;
}

int image_folder_load(const ImageFolderSpec *s, Dataset *ds, int cache_states[3], char *err,
                      size_t errlen)
{
	int states[3] = { -1, -1, -1 };
	const char *const *exts = s->exts ? s->exts : img_image_exts;
	if (s->decode) {
		if (s->c < 1 || s->h < 1 || s->w < 1)
			return data_err(-EINVAL, err, errlen, "decoded sample shape (%d,%d,%d) is empty",
			                s->c, s->h, s->w);
	} else if (s->image_size < 8 || s->image_size > 1024)
		return data_err(-EINVAL, err, errlen, "image_size: must be in [8, 1024], got %d",
		                s->image_size);
	else if (s->channels != 1 && s->channels != 3)
		return data_err(-EINVAL, err, errlen, "channels: must be 1 or 3, got %d", s->channels);
	if (!s->manifest && !s->train)
		return data_err(-EINVAL, err, errlen, "train: required (a folder) unless manifest is given");
	ImgList tr = {0}, te = {0}, un = {0};
	Pixels ptr = {0}, pte = {0}, pun = {0};
	int *tri = NULL, *tei = NULL, ntr = 0, nte = 0, rc;
	const char *troot = s->manifest ? s->manifest : s->train;
	rc = s->manifest ? img_manifest_read(s->manifest, s->scan_progress, s->user, &tr, err, errlen)
	                 : img_folder_scan_exts(s->train, exts, NULL, s->scan_progress, s->user, &tr,
	                                        err, errlen);
	if (rc < 0)
		goto done;
	if (s->test && !s->manifest) {   /* labelled like train, or unlabelled like train */
		rc = tr.num_classes ? img_folder_scan_exts(s->test, exts, &tr, s->scan_progress, s->user,
		                                           &te, err, errlen)
		                    : img_folder_scan_unlabelled_exts(s->test, exts, s->scan_progress,
		                                                      s->user, &te, err, errlen);
		if (rc < 0)
			goto done;
	}
	if (s->unlabeled && (rc = img_folder_scan_unlabelled_exts(s->unlabeled, exts, s->scan_progress,
	                                                          s->user, &un, err, errlen)) < 0)
		goto done;
	if (s->min_class_images > 0 && tr.num_classes > 0) {
		int dropped = 0;
		char names[600];
		if ((rc = img_list_keep_classes(&tr, te.n ? &te : NULL, s->min_class_images, troot,
		                                &dropped, names, sizeof names, err, errlen)) < 0)
			goto done;
		if (dropped)
			note(s, "left out %d class%s with fewer than min_class_images = %d images: %s; "
			     "%d classes, %d training images remain", dropped, dropped == 1 ? "" : "es",
			     s->min_class_images, names, tr.num_classes, tr.n);
	}
	if ((rc = img_list_split(&tr, te.n ? 0.0 : s->test_fraction, s->seed, &tri, &ntr, &tei, &nte,
	                         err, errlen)) < 0)
		goto done;
	if ((rc = px_open(s, &tr, troot, "train", &ptr, &states[0], err, errlen)) < 0)
		goto done;
	if (te.n && (rc = px_open(s, &te, s->test, "test", &pte, &states[1], err, errlen)) < 0)
		goto done;
	if (un.n && (rc = px_open(s, &un, s->unlabeled, "unlabeled", &pun, &states[2], err, errlen)) < 0)
		goto done;
	int skipped = ptr.n_skipped + pte.n_skipped + pun.n_skipped;
	if (skipped) {
		const char *first = ptr.n_skipped ? ptr.first_skip : pte.n_skipped ? pte.first_skip
		                  : pun.first_skip;
		note(s, "skipped %d %s file%s that do not decode (dataset.max_skipped = %d per "
		     "folder), first: %s", skipped, s->decode ? s->noun : "image", skipped == 1 ? "" : "s",
		     s->max_skipped, first);
	}
	ds->c = s->decode ? s->c : s->channels;
	ds->h = s->decode ? s->h : s->image_size;
	ds->w = s->decode ? s->w : s->image_size;
	ds->sample_floats = (size_t)ds->c * ds->h * ds->w;
	ds->num_classes = tr.num_classes;
	ds->class_names = tr.classes;
	tr.classes = NULL;
	tr.num_classes = 0;
	rc = append(&ds->train, ds->sample_floats, &ptr, &tr, tri, ntr, 0);
	if (rc == 0)
		rc = te.n ? append(&ds->test, ds->sample_floats, &pte, &te, NULL, te.n, 0)
		          : append(&ds->test, ds->sample_floats, &ptr, &tr, tei, nte, 0);
	if (rc == 0)
		rc = append(&ds->train, ds->sample_floats, &pun, &un, NULL, un.n, 1);
	if (rc < 0)
		rc = data_err(rc, err, errlen, "%s: out of memory for the decoded images", troot);
done:
	if (cache_states)
		memcpy(cache_states, states, sizeof states);
	px_close(&ptr);
	px_close(&pte);
	px_close(&pun);
	img_list_free(&tr);
	img_list_free(&te);
	img_list_free(&un);
	eng_free(tri);
	eng_free(tei);
	return rc;
}
