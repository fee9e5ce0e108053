/* dataset_grid.c - the sample grid of an uploaded image folder (see dataset_grid.h). Images that
 * do not decode are skipped: the grid shows what a job would read, it does not judge the data. */
#include "dataset_grid.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../engine/data/image_decode.h"
#include "../engine/data/png_grid.h"

#define CELL 32

static int is_image(const char *name)
{
	const char *dot = strrchr(name, '.');
	return dot && (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0);
}

/* Up to DATASET_GRID_COLS images of dir, in name order, into row (COLS,3,CELL,CELL) floats. */
static int fill_row(const char *dir, float *row, char *why, size_t whylen)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort), got = 0;
	if (n < 0) return 0;
	uint8_t px[3 * CELL * CELL];
	char path[8192], err[256];
	for (int i = 0; i < n; i++) {
		if (got < DATASET_GRID_COLS && names[i]->d_name[0] != '.' && is_image(names[i]->d_name)) {
			snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
			if (img_load_file(path, 3, IMG_RESIZE_SHORTER_SIDE, CELL, px, err, sizeof err) < 0) {
				snprintf(why, whylen, "%s", err);
			} else {
				float *cell = row + (size_t)got * 3 * CELL * CELL;
				for (int k = 0; k < 3 * CELL * CELL; k++) cell[k] = px[k] / 255.0f;
				got++;
			}
		}
		free(names[i]);
	}
	free(names);
	return got;
}

int dataset_grid_write(const char *tree, const UnpackSummary *s, const char *out, char *err, size_t errlen)
{
	size_t cell = 3 * CELL * CELL, per_row = DATASET_GRID_COLS * cell;
	float *buf = calloc(DATASET_GRID_ROWS * per_row, sizeof *buf);
	if (!buf) {
		snprintf(err, errlen, "sample grid: out of memory");
		return -1;
	}
	const float *rows[DATASET_GRID_ROWS];
	int nrows = 0;
	char why[256] = "no image found";
	for (int i = 0; i < s->nclasses && nrows < DATASET_GRID_ROWS; i++) {
		char dir[4096];
		const UnpackClass *c = &s->classes[i];
		snprintf(dir, sizeof dir, "%s/%s%s%s", tree, c->split, c->split[0] ? "/" : "", c->name);
		float *row = buf + (size_t)nrows * per_row;   /* cells left blank stay 0 (black) */
		if (fill_row(dir, row, why, sizeof why) > 0) rows[nrows++] = row;
	}
	if (nrows == 0 && s->nclasses == 0) {   /* unlabelled: the images at the top */
		if (fill_row(tree, buf, why, sizeof why) > 0) rows[nrows++] = buf;
	}
	int rc = -1;
	if (nrows == 0) snprintf(err, errlen, "sample grid: no image could be decoded (%s)", why);
	else rc = png_grid_write_rows(out, rows, nrows, DATASET_GRID_COLS, 3, CELL, CELL, 2, 0.0f, 1.0f, err, errlen) < 0 ? -1 : 0;
	free(buf);
	return rc;
}
