/* folder_format.c - the DatasetSpec keys the folder formats share, turned into an ImageFolderSpec
 * once (folder_format.h). What the files are and how they are decoded is each format's own. */
#include "folder_format.h"

#include <stdint.h>
#include <stdio.h>

/* Decoding progress as log lines: about every 10 % of a list, and its end. */
static void on_decode(void *user, int done, int total)
{
	FolderProgress *p = user;
	int tenth = total > 0 ? (int)((int64_t)done * 10 / total) : 10;
	if (done < total && tenth <= p->last_tenth)
		return;
	p->last_tenth = done == total ? 0 : tenth;   /* the next list starts again */
	char msg[160], pct[16] = "";
	if (p->percent)
		snprintf(pct, sizeof pct, " (%d%%)", total ? (int)((int64_t)done * 100 / total) : 100);
	snprintf(msg, sizeof msg, "decoding %s on %d thread%s: %d/%d%s", p->what, p->threads,
	         p->threads == 1 ? "" : "s", done, total, pct);
	p->s->on_note(p->s->note_user, msg);
}

static void on_note(void *user, const char *msg)
{
	FolderProgress *p = user;
	p->s->on_note(p->s->note_user, msg);
}

ImageFolderSpec folder_format_spec(const DatasetSpec *s, const char *what, int percent,
                                   FolderProgress *pr)
{
	*pr = (FolderProgress){ .s = s, .what = what, .percent = percent,
	                        .threads = s->load_threads > 0 ? s->load_threads : 1 };
	return (ImageFolderSpec){
		.train = s->img_train, .test = s->img_test, .unlabeled = s->img_unlabeled,
		.manifest = s->img_manifest, .test_fraction = s->test_fraction, .seed = 1,
		.min_class_images = s->min_class_images, .max_skipped = s->max_skipped,
		.cache_dir = s->cache_dir, .threads = pr->threads,
		.progress = s->on_note ? on_decode : NULL, .note = s->on_note ? on_note : NULL,
		.user = pr,
	};
}

int folder_format_need_train(const DatasetSpec *s, const char *holds,
                             void (*bad)(void *user, const char *key, const char *code,
                                         const char *msg),
                             void *user)
{
	if (s->img_train || s->img_manifest)
		return 0;
	char msg[160];
	snprintf(msg, sizeof msg, "give \"train\" (a folder of %s) or \"manifest\"", holds);
	bad(user, "train", "missing_field", msg);
	return 1;
}
