/* fuzz_idx.c - libFuzzer harness for the IDX reader (engine/data/idx.c), gzip and raw.
 *
 * Input: one control byte, then the images file and the labels file separated by FUZZ_SPLIT.
 * Control bit 0 gzips both files on the way to disk (so the fuzzer mutates IDX content and the
 * gzip path still runs); without it the bytes go to disk as they are (raw IDX, or a broken gzip
 * stream from a .gz seed). Bit 1 uses a second, separate copy as the test split; otherwise the
 * test split is the same pair; bit 2 gives no test files (the tail of train is held out).
 * Bits 4-5 set limit_train. dataset_load must either succeed with consistent shapes or fail
 * with a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/data/dataset.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int ctl = data[0];
	const uint8_t *part[2];
	size_t len[2];
	if (fuzz_split(data + 1, size - 1, 2, part, len) < 2)
		return 0;
	int gz = ctl & 1;
	const char *ti = fuzz_write("train-images", part[0], len[0], gz);
	const char *tl = fuzz_write("train-labels", part[1], len[1], gz);
	const char *vi = ti, *vl = tl;
	if (ctl & 2) {
		vi = fuzz_write("test-images", part[0], len[0], gz);
		vl = fuzz_write("test-labels", part[1], len[1], gz);
	}
	if (ctl & 4)
		vi = vl = NULL;
	DatasetSpec s = { .kind = DATASET_IDX, .train_images = ti, .train_labels = tl,
	                  .test_images = vi, .test_labels = vl, .limit_train = (ctl >> 4) & 3 };
	Dataset *ds = NULL;
	char err[512] = "";
	if (dataset_load(&s, &ds, err, sizeof err) < 0) {
		if (!err[0])
			abort();   /* every failure names the file and the problem */
		return 0;
	}
	if (ds->sample_floats != (size_t)ds->c * ds->h * ds->w || ds->train.n <= 0 || !ds->train.x)
		abort();
	double sum = 0;
	for (int i = 0; i < ds->train.n; i++)
		sum += ds->train.x[(size_t)i * ds->sample_floats + ds->sample_floats - 1] + (float)ds->train.y[i];
	fuzz_sink = sum;
	dataset_free(ds);
	return 0;
}
