/* fuzz_text.c - libFuzzer harness for the text readers (engine/data/text.c): DATASET_TEXT (byte
 * streams) and DATASET_TEXT_RECORDS ("%"-separated records labelled by file, or "label<TAB>text"
 * lines).
 *
 * Input: one control byte, then up to three files separated by FUZZ_SPLIT. Control bits pick the
 * kind, the record mode, max_record_bytes (default, 1, 7, 300), test_fraction, gzip on the way
 * to disk, and limit_train.
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
	const uint8_t *part[3];
	size_t len[3];
	int n = fuzz_split(data + 1, size - 1, 3, part, len);
	static const char *const names[3] = { "a.txt", "b.txt", "c.txt" };
	const char *paths[3];
	for (int i = 0; i < n; i++)
		paths[i] = fuzz_write(names[i], part[i], len[i], (ctl >> 7) & 1);
	static const int rec_bytes[4] = { 0, 1, 7, 300 };
	static const float frac[4] = { 0.0f, 0.5f, 0.01f, 0.99f };
	DatasetSpec s = { .kind = (ctl & 1) ? DATASET_TEXT_RECORDS : DATASET_TEXT, .text_files = paths,
	                  .n_text_files = n, .text_label_field = (ctl >> 1) & 1,
	                  .max_record_bytes = rec_bytes[(ctl >> 2) & 3],
	                  .test_fraction = frac[(ctl >> 4) & 3], .limit_train = (ctl >> 6) & 1 };
	Dataset *ds = NULL;
	char err[512] = "";
	if (dataset_load(&s, &ds, err, sizeof err) < 0) {
		if (!err[0])
			abort();
		return 0;
	}
	double sum = 0;
	if (s.kind == DATASET_TEXT) {
		for (size_t i = 0; i < ds->text_train_len; i++)
			sum += ds->text_train[i];
		for (size_t i = 0; i < ds->text_test_len; i++)
			sum += ds->text_test[i];
	} else {
		for (int i = 0; i < ds->train.n; i++) {
			if (ds->rec_train_len[i] < 0 || ds->rec_train_len[i] > ds->record_bytes ||
			    ds->train.y[i] < 0 || ds->train.y[i] >= ds->num_classes)
				abort();
			sum += ds->rec_train[(size_t)i * ds->record_bytes + ds->record_bytes - 1];
		}
		for (int i = 0; i < ds->test.n; i++) {
			if (ds->rec_test_len[i] < 0 || ds->rec_test_len[i] > ds->record_bytes ||
			    ds->test.y[i] < 0 || ds->test.y[i] >= ds->num_classes)
				abort();
			sum += ds->rec_test[(size_t)i * ds->record_bytes + ds->record_bytes - 1];
		}
	}
	fuzz_sink = sum;
	dataset_free(ds);
	return 0;
}
