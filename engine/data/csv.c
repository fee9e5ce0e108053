/* csv.c - numeric feature tables with a label column (CSV, gzip or raw).
 *
 * Each row becomes one sample of shape (1,1,D). The label column (default: the last) holds either
 * non-negative integers (class ids, num_classes = max + 1) or names (classes numbered in order of
 * first appearance across train then test); an empty label is -1 (unlabelled). The header row is
 * detected (a non-numeric feature in the first row) unless the spec says. Fields may be quoted
 * ("a,b", "" for a quote). Every row must have the first row's field count; every feature must be
 * a finite number; errors name file, line and column. Blank lines are skipped.
 * It deliberately does not scale or impute features, and does not guess separators other than ','.
 */
#include "data_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc.h"

#define CSV_MAX_BYTES ((size_t)4 << 30)
#define CSV_MAX_FIELD 4096

typedef struct CsvTable {
	float *x;        /* (n, d) */
	int *lab;        /* (n) index into the shared DataNames, -1 = empty */
	int n, cap, d;   /* d = feature count */
	int ncols;
} CsvTable;

/* Next field starting at *p (line ends at end). Unquotes into buf. Returns field length or -1 on a
 * malformed quote; *p moves past the separator; *last is set when the line ended. */
static int next_field(const char **p, const char *end, char *buf, size_t cap, int *last)
{
	const char *s = *p;
	size_t n = 0;
	if (s < end && *s == '"') {
		s++;
		for (;;) {
			if (s >= end)
				return -1;          /* unterminated quote */
			if (*s == '"') {
				if (s + 1 < end && s[1] == '"') {
					if (n + 1 < cap)
						buf[n++] = '"';
					s += 2;
					continue;
				}
				s++;
				break;
			}
			if (n + 1 < cap)
				buf[n++] = *s;
			s++;
		}
		if (s < end && *s != ',')
			return -1;              /* junk after the closing quote */
	} else {
		while (s < end && *s != ',') {
			if (n + 1 < cap)
				buf[n++] = *s;
			s++;
		}
	}
	buf[n] = 0;
	if (s < end) {
		*last = 0;
		*p = s + 1;
	} else {
		*last = 1;
		*p = s;
	}
	return (int)n;
}

static int parse_number(const char *s, float *out)
{
	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s)
		return -1;
	char *e;
	errno = 0;
	double v = strtod(s, &e);
	while (*e == ' ' || *e == '\t')
		e++;
	if (*e || !isfinite(v) || fabs(v) > 3.4e38)
		return -1;
	*out = (float)v;
	return 0;
}

static int line_is_blank(const char *s, const char *e)
{
	for (; s < e; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r')
			return 0;
	return 1;
}

static int parse_table(const char *path, const DatasetSpec *spec, DataNames *names, CsvTable *t,
                       int want_cols, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int rc = data_read_file(path, &buf, &len, CSV_MAX_BYTES, err, errlen);
	if (rc < 0)
		return rc;
	memset(t, 0, sizeof *t);
	char field[CSV_MAX_FIELD];
	const char *p = (const char *)buf, *end = p + len;
	if (memchr(buf, 0, len)) {
		rc = data_err(-EINVAL, err, errlen, "%s: binary data (a NUL byte), not CSV text", path);
		goto out;
	}
	int line = 0, first = 1, label_col = -1;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		line++;
		const char *next = nl ? nl + 1 : end;
		if (le > p && le[-1] == '\r')
			le--;
		if (line_is_blank(p, le)) {
			p = next;
			continue;
		}
		if (first) {
			/* count fields to learn the table width */
			int nf = 0, last = 0;
			for (const char *q = p; !last;) {
				if (next_field(&q, le, field, sizeof field, &last) < 0) {
					rc = data_err(-EINVAL, err, errlen, "%s:%d: malformed quoted field", path, line);
					goto out;
				}
				nf++;
			}
			if (nf < 2) {
				rc = data_err(-EINVAL, err, errlen,
				              "%s:%d: need at least 2 columns (features and a label), got %d", path, line, nf);
				goto out;
			}
			if (want_cols > 0 && nf != want_cols) {
				rc = data_err(-EINVAL, err, errlen,
				              "%s:%d: %d columns, but the training file has %d", path, line, nf, want_cols);
				goto out;
			}
			t->ncols = nf;
			t->d = nf - 1;
			label_col = spec->csv_label_column < 0 ? nf - 1 : spec->csv_label_column;
			if (label_col >= nf) {
				rc = data_err(-EINVAL, err, errlen, "%s: label column %d, but rows have %d columns",
				              path, spec->csv_label_column, nf);
				goto out;
			}
			int header = spec->csv_header;
			if (header < 0) {
				header = 0;
				int last2 = 0, col = 0;
				for (const char *q = p; !last2; col++) {
					next_field(&q, le, field, sizeof field, &last2);
					float v;
					if (col != label_col && parse_number(field, &v) < 0)
						header = 1;
				}
			}
			first = 0;
			if (header) {
				p = next;
				continue;
			}
		}
		if (t->n == t->cap) {
			int ncap = t->cap ? t->cap * 2 : 1024;
			float *nx = eng_realloc(t->x, (size_t)ncap * t->d * sizeof(float));
			if (!nx) {
				rc = data_err(-ENOMEM, err, errlen, "%s: out of memory at line %d", path, line);
				goto out;
			}
			t->x = nx;
			int *nl2 = eng_realloc(t->lab, (size_t)ncap * sizeof(int));
			if (!nl2) {
				rc = data_err(-ENOMEM, err, errlen, "%s: out of memory at line %d", path, line);
				goto out;
			}
			t->lab = nl2;
			t->cap = ncap;
		}
		float *row = t->x + (size_t)t->n * t->d;
		int col = 0, last = 0, fi = 0;
		const char *q = p;
		while (!last) {
			int fl = next_field(&q, le, field, sizeof field, &last);
			if (fl < 0) {
				rc = data_err(-EINVAL, err, errlen, "%s:%d: malformed quoted field in column %d", path,
				              line, col + 1);
				goto out;
			}
			if (col >= t->ncols) {
				col++;
				continue;   /* counted below */
			}
			if (col == label_col) {
				const char *s = field;
				size_t l = (size_t)fl;
				while (l && (*s == ' ' || *s == '\t')) {
					s++;
					l--;
				}
				while (l && (s[l - 1] == ' ' || s[l - 1] == '\t'))
					l--;
				if (l == 0) {
					t->lab[t->n] = -1;
				} else {
					int id = data_names_id(names, s, l);
					if (id < 0) {
						rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", path);
						goto out;
					}
					t->lab[t->n] = id;
				}
			} else {
				if (parse_number(field, &row[fi]) < 0) {
					rc = data_err(-EINVAL, err, errlen, "%s:%d: column %d: not a finite number: '%.40s'",
					              path, line, col + 1, field);
					goto out;
				}
				fi++;
			}
			col++;
		}
		if (col != t->ncols) {
			rc = data_err(-EINVAL, err, errlen, "%s:%d: expected %d fields, got %d", path, line,
			              t->ncols, col);
			goto out;
		}
		t->n++;
		p = next;
	}
	if (t->n == 0)
		rc = data_err(-EINVAL, err, errlen, "%s: no data rows", path);
out:
	eng_free(buf);
	if (rc < 0) {
		eng_free(t->x);
		eng_free(t->lab);
		memset(t, 0, sizeof *t);
	}
	return rc;
}

/* Label names that are all small non-negative integers are used as class ids directly. */
static int names_are_ids(const DataNames *nm, int *max_id)
{
	*max_id = -1;
	for (int i = 0; i < nm->n; i++) {
		const char *s = nm->v[i];
		if (!*s)
			return 0;
		long v = 0;
		for (; *s; s++) {
			if (*s < '0' || *s > '9')
				return 0;
			v = v * 10 + (*s - '0');
			if (v > 100000)
				return 0;
		}
		if (v > *max_id)
			*max_id = (int)v;
	}
	return nm->n > 0;
}

static int table_to_split(CsvTable *t, Split *s, const DataNames *nm, int as_ids)
{
	s->x = t->x;
	s->n = t->n;
	s->y = t->lab;
	t->x = NULL;
	t->lab = NULL;
	if (as_ids)
		for (int i = 0; i < s->n; i++)
			if (s->y[i] >= 0)
				s->y[i] = atoi(nm->v[s->y[i]]);
	return 0;
}

int data_load_csv(const DatasetSpec *spec, Dataset *ds, char *err, size_t errlen)
{
	if (!spec->csv_train)
		return data_err(-EINVAL, err, errlen, "csv dataset: csv_train is required");
	DataNames nm = {0};
	CsvTable tr = {0}, te = {0};
	int rc = parse_table(spec->csv_train, spec, &nm, &tr, 0, err, errlen);
	if (rc < 0)
		goto out;
	if (spec->csv_test) {
		rc = parse_table(spec->csv_test, spec, &nm, &te, tr.ncols, err, errlen);
		if (rc < 0)
			goto out;
	} else {
		float frac = spec->test_fraction > 0 ? spec->test_fraction : 0.1f;
		int n_test = (int)((double)tr.n * frac);
		if (n_test < 1 || n_test >= tr.n) {
			rc = data_err(-EINVAL, err, errlen, "%s: too few rows (%d) to hold out a test split",
			              spec->csv_train, tr.n);
			goto out;
		}
		int n_tr = tr.n - n_test;
		te.d = tr.d;
		te.n = n_test;
		te.x = eng_malloc((size_t)n_test * tr.d * sizeof(float));
		te.lab = eng_malloc((size_t)n_test * sizeof(int));
		if (!te.x || !te.lab) {
			rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", spec->csv_train);
			goto out;
		}
		memcpy(te.x, tr.x + (size_t)n_tr * tr.d, (size_t)n_test * tr.d * sizeof(float));
		memcpy(te.lab, tr.lab + n_tr, (size_t)n_test * sizeof(int));
		tr.n = n_tr;
	}
	ds->c = 1;
	ds->h = 1;
	ds->w = tr.d;
	ds->sample_floats = (size_t)tr.d;
	int max_id;
	int as_ids = names_are_ids(&nm, &max_id);
	table_to_split(&tr, &ds->train, &nm, as_ids);
	table_to_split(&te, &ds->test, &nm, as_ids);
	int ncls = as_ids ? max_id + 1 : nm.n;
	if (ncls > 0) {
		ds->class_names = eng_calloc((size_t)ncls, sizeof(char *));
		if (!ds->class_names) {
			rc = data_err(-ENOMEM, err, errlen, "csv dataset: out of memory");
			goto out;
		}
		ds->num_classes = ncls;
		for (int i = 0; i < ncls; i++) {
			char b[16];
			snprintf(b, sizeof b, "%d", i);
			ds->class_names[i] = eng_strdup(as_ids ? b : nm.v[i]);
			if (!ds->class_names[i]) {
				rc = data_err(-ENOMEM, err, errlen, "csv dataset: out of memory");
				goto out;
			}
		}
	}
out:
	eng_free(tr.x);
	eng_free(tr.lab);
	eng_free(te.x);
	eng_free(te.lab);
	data_names_free(&nm);
	return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Format descriptor                                                                               */

/* Width of a row (columns minus the label): the first line's commas. 0 when unreadable. */
static int csv_width(const char *path)
{
	FILE *f = path ? fopen(path, "rb") : NULL;
	if (!f)
		return 0;
	int cols = 1, c, n = 0;
	while ((c = fgetc(f)) != EOF && c != '\n' && n++ < (1 << 20))
		cols += c == ',';
	fclose(f);
	return cols > 1 ? cols - 1 : 1;
}

static void csv_estimate(const DatasetSpec *s, int context, DatasetShape *out)
{
	(void)context;
	int w = csv_width(s->csv_train);
	*out = (DatasetShape){ .train_samples = -1, .c = 1, .h = 1, .w = w > 0 ? w : 1, .known = w > 0 };
}

static const ParamDef csv_keys[] = {
	{ "train", PARAM_PATH, .flags = PARAM_REQUIRED, .help = "training rows",
	  PARAM_AT(DatasetSpec, csv_train) },
	{ "test", PARAM_PATH, .def_text = "none: the tail test_fraction of train", .help = "test rows",
	  PARAM_AT(DatasetSpec, csv_test) },
	{ "label_column", PARAM_INTEGER, .def = -1, .min = -1, .max = 100000,
	  .help = "label column index, -1 = last", PARAM_AT(DatasetSpec, csv_label_column) },
	{ "header", PARAM_BOOLEAN, .def = -1, .flags = PARAM_DEFAULT_AUTO,
	  .help = "first row is a header: true, false or \"auto\"", PARAM_AT(DatasetSpec, csv_header) },
	{ "test_fraction", PARAM_NUMBER, .def = 0.1, .min = 0, .max = 0.5, .flags = PARAM_MIN_EXCLUSIVE,
	  .conflicts = "test", .help = "share held out as the test split, (0, 0.5]",
	  PARAM_AT(DatasetSpec, test_fraction) },
};

const DatasetFormat data_format_csv = {
	.name = "csv",
	.summary = "numeric feature rows with a label column",
	.kind = DATASET_CSV,
	.modality = DATA_VECTORS,
	.labelled = 1,
	.keys = csv_keys,
	.n_keys = (int)(sizeof csv_keys / sizeof csv_keys[0]),
	.load = data_load_csv,
	.estimate = csv_estimate,
};
