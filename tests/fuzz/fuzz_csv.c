/* fuzz_csv.c - libFuzzer harness for the CSV reader (engine/data/csv.c).
 *
 * Input: one control byte, then the file. Control bits pick the header mode (auto / no / yes),
 * the label column (last, 0, 1, 2), whether a test file is given (the same bytes) or the test
 * split is the tail test_fraction, and whether the file is gzipped on the way to disk.
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
	int gz = (ctl >> 6) & 1;
	const char *p = fuzz_write("train.csv", data + 1, size - 1, gz);
	static const int header[4] = { -1, 0, 1, -1 };
	static const int label[4] = { -1, 0, 1, 2 };
	DatasetSpec s = { .kind = DATASET_CSV, .csv_train = p, .csv_test = (ctl & 16) ? p : NULL,
	                  .csv_header = header[ctl & 3], .csv_label_column = label[(ctl >> 2) & 3],
	                  .test_fraction = (ctl & 32) ? 0.5f : 0.0f };
	Dataset *ds = NULL;
	char err[512] = "";
	if (dataset_load(&s, &ds, err, sizeof err) < 0) {
		if (!err[0])
			abort();
		return 0;
	}
	if (ds->sample_floats != (size_t)ds->w || ds->c != 1 || ds->h != 1)
		abort();
	double sum = 0;
	for (int i = 0; i < ds->train.n; i++) {
		sum += ds->train.x[(size_t)i * ds->sample_floats];
		if (ds->train.y[i] >= ds->num_classes)
			abort();
	}
	for (int i = 0; i < ds->test.n; i++)
		if (ds->test.y[i] >= ds->num_classes)
			abort();
	for (int i = 0; i < ds->num_classes; i++)
		sum += (float)strlen(ds->class_names[i]);
	fuzz_sink = sum;
	dataset_free(ds);
	return 0;
}
