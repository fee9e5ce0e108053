/* fuzz_common.h - what the libFuzzer harnesses in tests/fuzz share: a private scratch directory,
 * writing an input to a file there (the readers under test take paths), and cutting one input
 * into several files at a separator line.
 *
 * Header-only (each harness is one executable). Nothing here is fuzzed; it only has to be
 * correct and cheap: every run rewrites its files in place under /dev/shm when it exists, so a
 * harness does no disk I/O in the steady state.
 */
#ifndef SSLD_TESTS_FUZZ_COMMON_H
#define SSLD_TESTS_FUZZ_COMMON_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* Separates the files of one input (IDX images/labels, text files): the seeds hold it, and
 * libFuzzer's mutations keep or break it like any other bytes. */
#define FUZZ_SPLIT "\n--8<--\n"

static char fuzz_dir_buf[256];
/* Harnesses add what they read here, so the reads are not optimised away. */
static volatile double fuzz_sink;

static int fuzz_rm(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb; (void)type; (void)ftw;
	return remove(path);
}

static void fuzz_cleanup(void)
{
	if (fuzz_dir_buf[0])
		nftw(fuzz_dir_buf, fuzz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* The scratch directory (created once, removed at exit). */
static inline const char *fuzz_dir(void)
{
	if (fuzz_dir_buf[0])
		return fuzz_dir_buf;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	snprintf(fuzz_dir_buf, sizeof fuzz_dir_buf, "%s/ssld-fuzz-XXXXXX", base);
	if (!mkdtemp(fuzz_dir_buf)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(fuzz_cleanup);
	return fuzz_dir_buf;
}

/* dir/name in a small ring of buffers (valid for the next 16 calls). */
static inline const char *fuzz_path(const char *name)
{
	static char ring[16][512];
	static int k;
	k = (k + 1) % 16;
	snprintf(ring[k], sizeof ring[k], "%s/%s", fuzz_dir(), name);
	return ring[k];
}

/* Writes data to dir/name (gzip-compressed when gz) and returns the path. Aborts on I/O errors:
 * those are the harness's problem, not a finding. */
static inline const char *fuzz_write(const char *name, const uint8_t *data, size_t size, int gz)
{
	const char *p = fuzz_path(name);
	if (gz) {
		gzFile g = gzopen(p, "wb1");
		if (!g || (size && gzwrite(g, data, (unsigned)size) != (int)size) || gzclose(g) != Z_OK) {
			fprintf(stderr, "fuzz: cannot write %s\n", p);
			abort();
		}
		return p;
	}
	FILE *f = fopen(p, "wb");
	if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
		fprintf(stderr, "fuzz: cannot write %s\n", p);
		abort();
	}
	return p;
}

/* Cuts data at FUZZ_SPLIT into at most max parts (the last part keeps any further separators).
 * Returns the number of parts (>= 1). */
static inline int fuzz_split(const uint8_t *data, size_t size, int max, const uint8_t **part, size_t *len)
{
	const size_t sl = sizeof FUZZ_SPLIT - 1;
	int n = 0;
	while (n < max - 1) {
		const uint8_t *s = size >= sl ? memmem(data, size, FUZZ_SPLIT, sl) : NULL;
		if (!s)
			break;
		part[n] = data;
		len[n] = (size_t)(s - data);
		n++;
		size -= len[n - 1] + sl;
		data = s + sl;
	}
	part[n] = data;
	len[n] = size;
	return n + 1;
}

#endif
