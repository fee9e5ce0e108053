/* unpack.h - unpack an uploaded dataset archive (tar, tar.gz, zip; libarchive) safely.
 *
 * Every member is checked before a byte of it is written: a relative name of well-formed UTF-8
 * without ".." or control characters, at most 32 components deep; a regular file or a directory
 * (links, devices and FIFOs are refused); no name twice. Totals are bounded while unpacking: the
 * members, the unpacked bytes and the ratio of unpacked bytes to the archive's size (a zip bomb
 * stops at the bound, not after it has filled the disk). Files are created beneath dest only
 * (openat, O_EXCL|O_NOFOLLOW, in a directory nobody else writes) and synced (syncfs) before it
 * returns.
 *
 *   UnpackLimits lim = { .max_bytes = 1 << 30, .bytes_limit = "max-dataset-bytes",
 *                         .max_members = 50000, .max_ratio = 200 };
 *   UnpackSummary s;
 *   if (unpack_file("/tmp/up", "/tmp/tree", &lim, &s, err, sizeof err) < 0) refuse(err);
 *   ... s.format, s.files, s.bytes, s.classes[i] ...
 *   unpack_summary_clear(&s);
 *
 * It does not decide where a dataset lives or who owns it (api/datasets.c does).
 */
#ifndef SSLD_WORKERS_UNPACK_H
#define SSLD_WORKERS_UNPACK_H

#include <stddef.h>
#include <stdint.h>

/* Errors (negative): the member or the archive is at fault, or a bound was reached. */
enum {
	UNPACK_EFORMAT = -1000,   /* not an archive, or a corrupt one */
	UNPACK_EUNSAFE = -1001,   /* a member's name or type is refused */
	UNPACK_ELIMIT = -1002,    /* a bound (bytes, members, ratio) was reached */
	UNPACK_EEMPTY = -1003,    /* no regular file in it */
	UNPACK_EIO = -1004,       /* writing beneath dest failed */
	UNPACK_ENOMEM = -1005,
	UNPACK_EMIXED = -1006,    /* both images and audio files in it */
};

typedef struct UnpackLimits {
	uint64_t max_bytes;        /* unpacked bytes of all files (0 = no bound) */
	const char *bytes_limit;   /* the option that set max_bytes, named in the error */
	uint64_t max_members;      /* entries, directories included (0 = no bound) */
	double max_ratio;          /* unpacked bytes / archive bytes, checked past 1 MiB (0 = none) */
} UnpackLimits;

/* Image or audio files per class (the first directory of a file's path; the second when the first is a split
 * named train, val, validation or test). */
typedef struct UnpackClass {
	char split[16];            /* "" when the archive has no split directories */
	char name[128];
	int64_t files;
} UnpackClass;

typedef struct UnpackSummary {
	const char *format;        /* "image_folder", "audio_folder", "idx", "csv", "text" or "files" */
	uint64_t bytes;            /* unpacked bytes of the files */
	int64_t files, dirs, images, audio;   /* audio: .wav and .flac files */
	UnpackClass *classes;     /* owned; by split, then name */
	int nclasses;
	char first_csv[256], first_text[256];   /* a member of that kind, for the answer's hints */
} UnpackSummary;

/* Unpacks the archive at path (or data[0..len)) beneath the existing empty directory dest; dest
 * NULL checks everything without writing. 0, or a negative ARCHIVE_E* with err naming the member
 * and the problem. On failure dest may hold part of the archive: the caller removes it. */
int unpack_file(const char *path, const char *dest, const UnpackLimits *lim, UnpackSummary *out,
                        char *err, size_t errlen);
int unpack_memory(const void *data, size_t len, const char *dest, const UnpackLimits *lim,
                          UnpackSummary *out, char *err, size_t errlen);
void unpack_summary_clear(UnpackSummary *s);

/* Removes the tree at path (never following symlinks); 0 or -errno. */
int unpack_remove_tree(const char *path);

#endif
