/* fuzz_captions.c - libFuzzer harness for the image-caption JSON lines reader
 * (engine/data/captions.c) and, through its path lines, the PNG reader.
 *
 * Input: one control byte, then the captions file. Index lines take images from a tiny
 * Fashion-MNIST-shaped directory written once at start-up (20 training images, 10 test, 28x28)
 * through spec.dir; path lines may name the PNGs written beside the captions file
 * (g.png gray 4x4, c.png RGB 4x4, w.png gray 5x3, a.png gray+alpha 4x4). Control bits set
 * limit_train and test_fraction.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../engine/data/dataset.h"
#include "../../engine/data/png_grid.h"
#include "fuzz_common.h"

static char fm_dir[512];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void write_idx(const char *name, int n, int images)
{
	size_t hdr = images ? 16 : 8, per = images ? 28 * 28 : 1;
	size_t len = hdr + (size_t)n * per;
	uint8_t *b = calloc(1, len);
	put_be32(b, images ? 0x803 : 0x801);
	put_be32(b + 4, (uint32_t)n);
	if (images) {
		put_be32(b + 8, 28);
		put_be32(b + 12, 28);
	}
	for (size_t i = hdr; i < len; i++)
		b[i] = images ? (uint8_t)(i * 7) : (uint8_t)((i - hdr) % 10);
	fuzz_write(name, b, len, 1);
	free(b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	mkdir(fuzz_path("fm"), 0700);
	write_idx("fm/train-images-idx3-ubyte.gz", 20, 1);
	write_idx("fm/train-labels-idx1-ubyte.gz", 20, 0);
	write_idx("fm/t10k-images-idx3-ubyte.gz", 10, 1);
	write_idx("fm/t10k-labels-idx1-ubyte.gz", 10, 0);
	snprintf(fm_dir, sizeof fm_dir, "%s", fuzz_path("fm"));
	uint8_t pix[4 * 4 * 3];
	for (size_t i = 0; i < sizeof pix; i++)
		pix[i] = (uint8_t)(i * 13);
	char err[256];
	if (png_write_u8(fuzz_path("g.png"), pix, 4, 4, 1, err, sizeof err) < 0 ||
	    png_write_u8(fuzz_path("c.png"), pix, 4, 4, 3, err, sizeof err) < 0 ||
	    png_write_u8(fuzz_path("w.png"), pix, 5, 3, 1, err, sizeof err) < 0) {
		fprintf(stderr, "fuzz_captions: %s\n", err);
		abort();
	}
	/* gray + alpha, hand-made: png_write_u8 writes only gray and RGB */
	static const uint8_t ga_png[] = {
		0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
		0x52, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x08, 0x04, 0x00, 0x00, 0x00, 0x03,
		0xf8, 0x56, 0xf5, 0x00, 0x00, 0x00, 0x2f, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x01, 0x24,
		0x00, 0xdb, 0xff, 0x00, 0x00, 0x80, 0x10, 0xff, 0x20, 0x80, 0x30, 0xff, 0x00, 0x40, 0x80,
		0x50, 0xff, 0x60, 0x80, 0x70, 0xff, 0x00, 0x80, 0x80, 0x90, 0xff, 0xa0, 0x80, 0xb0, 0xff,
		0x00, 0xc0, 0x80, 0xd0, 0xff, 0xe0, 0x80, 0xf0, 0xff, 0x28, 0xef, 0x13, 0x79, 0x7c, 0x29,
		0x23, 0x8a, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
	};
	fuzz_write("a.png", ga_png, sizeof ga_png, 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int ctl = data[0];
	static const float frac[4] = { 0.0f, 0.5f, 0.34f, 0.9f };
	DatasetSpec s = { .kind = DATASET_CAPTIONS, .dir = fm_dir,
	                  .captions_file = fuzz_write("captions.jsonl", data + 1, size - 1, 0),
	                  .limit_train = ctl & 7, .test_fraction = frac[(ctl >> 3) & 3] };
	Dataset *ds = NULL;
	char err[512] = "";
	if (dataset_load(&s, &ds, err, sizeof err) < 0) {
		if (!err[0])
			abort();
		return 0;
	}
	if (ds->n_captions != ds->train.n || ds->sample_floats != (size_t)ds->c * ds->h * ds->w)
		abort();
	double sum = 0;
	for (int i = 0; i < ds->n_captions; i++)
		sum += strlen(ds->captions[i]);
	for (int i = 0; i < ds->train.n; i++) {
		sum += (size_t)ds->train.x[(size_t)i * ds->sample_floats + ds->sample_floats - 1];
		if (ds->num_classes > 0 && ds->train.y[i] >= ds->num_classes)
			abort();
	}
	fuzz_sink = sum;
	dataset_free(ds);
	return 0;
}
