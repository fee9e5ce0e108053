/* fuzz_archive.c - libFuzzer harness for the dataset archive reader (workers/unpack.c).
 *
 * Input: one control byte, then the archive (tar, tar.gz, zip or anything). Bit 0 of the control
 * byte unpacks into a fresh scratch directory, else the archive is only checked. Beyond memory
 * errors it checks the promises: a refusal has a message, a success has files within the bounds,
 * and after either the scratch directory holds nothing but the destination, which holds no
 * symlink.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../workers/unpack.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int no_symlinks(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)path; (void)sb; (void)ftw;
	return type == FTW_SL || type == FTW_SLN;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int write = data[0] & 1;
	const char *dest = fuzz_path("dest");
	if (write && mkdir(dest, 0700) < 0)
		abort();
	UnpackLimits lim = { .max_bytes = 1 << 20, .bytes_limit = "fuzz", .max_members = 200, .max_ratio = 50 };
	UnpackSummary s;
	char err[1024] = "";
	int rc = unpack_memory(data + 1, size - 1, write ? dest : NULL, &lim, &s, err, sizeof err);
	if (rc < 0 && !err[0])
		abort();
	if (rc == 0) {
		if (s.files <= 0 || s.bytes > lim.max_bytes || !s.format)
			abort();
		int64_t in_classes = 0;
		for (int i = 0; i < s.nclasses; i++)
			in_classes += s.classes[i].files;
		if (in_classes > s.images + s.audio)
			abort();
		fuzz_sink = (double)s.bytes;
		unpack_summary_clear(&s);
	}
	if (write) {
		if (nftw(dest, no_symlinks, 16, FTW_PHYS) != 0)
			abort();
		if (unpack_remove_tree(dest) < 0)
			abort();
	}
	/* Nothing beside dest: a member that escaped would be here (or further up, but the names
	 * that could reach further are refused by the same check). */
	DIR *d = opendir(fuzz_dir());
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			abort();
	if (d)
		closedir(d);
	return 0;
}
