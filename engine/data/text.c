/* text.c - text datasets: a raw byte stream (byte-level vocabulary of 256) and labelled records.
 *
 * DATASET_TEXT concatenates the files' bytes; the last test_fraction of the bytes (default 0.1)
 * is the test stream. DATASET_TEXT_RECORDS makes one example per record: fortune-style files
 * split on lines holding only "%" with the label = the file (class name = its base name), or
 * (text_label_field = 1) lines "label<TAB>text" with labels named in order of first appearance.
 * Records keep their first max_record_bytes bytes (default 128, zero-padded); the last
 * test_fraction of each class's records (in file order) is its test share, so both splits keep the
 * class balance. Files are read through zlib, so .gz works too. Text must be text: a NUL byte or a
 * UTF-16 byte-order mark is an error naming the file and offset. This module does not tokenise
 * beyond bytes and does not decode UTF-8 (a byte-level model sees the raw bytes).
 */
#include "data_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../alloc.h"

#define TEXT_MAX_BYTES ((size_t)1 << 30)
#define TEXT_MAX_RECORD 65536

static int check_text(const char *path, const uint8_t *b, size_t n, char *err, size_t errlen)
{
	if (n == 0)
		return data_err(-EINVAL, err, errlen, "%s: empty file", path);
	if (n >= 2 && ((b[0] == 0xff && b[1] == 0xfe) || (b[0] == 0xfe && b[1] == 0xff)))
		return data_err(-EINVAL, err, errlen,
		                "%s: UTF-16 text (byte-order mark) is not supported; convert it to UTF-8", path);
	const uint8_t *z = memchr(b, 0, n);
	if (z)
		return data_err(-EINVAL, err, errlen, "%s: binary data (NUL byte at offset %zu), not text",
		                path, (size_t)(z - b));
	return 0;
}

int data_load_text(const DatasetSpec *spec, Dataset *ds, char *err, size_t errlen)
{
	if (!spec->text_files || spec->n_text_files <= 0)
		return data_err(-EINVAL, err, errlen, "text dataset: no text_files given");
	uint8_t *all = NULL;
	size_t total = 0;
	int rc = 0;
	for (int i = 0; i < spec->n_text_files; i++) {
		uint8_t *b;
		size_t n;
		rc = data_read_file(spec->text_files[i], &b, &n, TEXT_MAX_BYTES, err, errlen);
		if (rc < 0)
			goto out;
		rc = check_text(spec->text_files[i], b, n, err, errlen);
		if (rc < 0 || total + n > TEXT_MAX_BYTES) {
			if (rc == 0)
				rc = data_err(-EFBIG, err, errlen, "%s: text dataset larger than %zu bytes",
				              spec->text_files[i], TEXT_MAX_BYTES);
			eng_free(b);
			goto out;
		}
		uint8_t *na = eng_realloc(all, total + n);
		if (!na) {
			eng_free(b);
			rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", spec->text_files[i]);
			goto out;
		}
		all = na;
		memcpy(all + total, b, n);
		total += n;
		eng_free(b);
	}
	float frac = spec->test_fraction > 0 ? spec->test_fraction : 0.1f;
	size_t n_test = (size_t)((double)total * frac);
	size_t n_train = total - n_test;
	if (n_test < 2 || n_train < 2) {
		rc = data_err(-EINVAL, err, errlen,
		              "text dataset: %zu bytes are too few to hold out %g as test", total, (double)frac);
		goto out;
	}
	ds->text_train = eng_malloc(n_train);
	ds->text_test = eng_malloc(n_test);
	if (!ds->text_train || !ds->text_test) {
		rc = data_err(-ENOMEM, err, errlen, "text dataset: out of memory");
		goto out;
	}
	memcpy(ds->text_train, all, n_train);
	memcpy(ds->text_test, all + n_train, n_test);
	ds->text_train_len = n_train;
	ds->text_test_len = n_test;
out:
	eng_free(all);
	return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Records                                                                                         */

typedef struct Rec {
	int label;
	int len;        /* bytes kept (<= record_bytes) */
	size_t off;     /* into the record byte pool */
} Rec;

typedef struct RecList {
	Rec *v;
	int n, cap;
	uint8_t *pool;  /* kept bytes of every record */
	size_t pool_len, pool_cap;
} RecList;

static int rec_add(RecList *rl, int label, const uint8_t *s, size_t len, int keep)
{
	/* trim the line breaks that surround a record */
	while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	while (len && (s[0] == '\n' || s[0] == '\r')) {
		s++;
		len--;
	}
	int blank = 1;
	for (size_t i = 0; i < len && blank; i++)
		if (s[i] != ' ' && s[i] != '\t')
			blank = 0;
	if (blank)
		return 0;
	if (len > (size_t)keep)
		len = (size_t)keep;
	if (rl->n == rl->cap) {
		int ncap = rl->cap ? rl->cap * 2 : 1024;
		Rec *nv = eng_realloc(rl->v, (size_t)ncap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		rl->v = nv;
		rl->cap = ncap;
	}
	if (rl->pool_len + len > rl->pool_cap) {
		size_t ncap = rl->pool_cap ? rl->pool_cap * 2 : 1 << 16;
		while (ncap < rl->pool_len + len)
			ncap *= 2;
		uint8_t *np = eng_realloc(rl->pool, ncap);
		if (!np)
			return -ENOMEM;
		rl->pool = np;
		rl->pool_cap = ncap;
	}
	memcpy(rl->pool + rl->pool_len, s, len);
	rl->v[rl->n].label = label;
	rl->v[rl->n].len = (int)len;
	rl->v[rl->n].off = rl->pool_len;
	rl->pool_len += len;
	rl->n++;
	return 0;
}

/* Fortune format: records separated by lines that hold only "%". */
static int split_percent(RecList *rl, int label, const uint8_t *b, size_t n, int keep)
{
	size_t start = 0, i = 0;
	while (i < n) {
		const uint8_t *nl = memchr(b + i, '\n', n - i);
		size_t le = nl ? (size_t)(nl - b) : n;       /* end of this line */
		size_t l = le - i;
		if ((l == 1 && b[i] == '%') || (l == 2 && b[i] == '%' && b[i + 1] == '\r')) {
			if (rec_add(rl, label, b + start, i - start, keep) < 0)
				return -ENOMEM;
			start = nl ? le + 1 : n;
		}
		i = nl ? le + 1 : n;
	}
	return rec_add(rl, label, b + start, n - start, keep);
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int fill_records(const RecList *rl, const int *sel, int n, int rb, uint8_t **bytes,
                        int **lens, int **labels)
{
	*bytes = eng_calloc((size_t)(n ? n : 1) * rb, 1);
	*lens = eng_malloc((size_t)(n ? n : 1) * sizeof(int));
	*labels = eng_malloc((size_t)(n ? n : 1) * sizeof(int));
	if (!*bytes || !*lens || !*labels)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		const Rec *r = &rl->v[sel[i]];
		memcpy(*bytes + (size_t)i * rb, rl->pool + r->off, (size_t)r->len);
		(*lens)[i] = r->len;
		(*labels)[i] = r->label;
	}
	return 0;
}

int data_load_text_records(const DatasetSpec *spec, Dataset *ds, char *err, size_t errlen)
{
	if (!spec->text_files || spec->n_text_files <= 0)
		return data_err(-EINVAL, err, errlen, "text records dataset: no text_files given");
	int rb = spec->max_record_bytes > 0 ? spec->max_record_bytes : 128;
	if (rb > TEXT_MAX_RECORD)
		return data_err(-EINVAL, err, errlen, "text records dataset: max_record_bytes %d above %d",
		                rb, TEXT_MAX_RECORD);
	RecList rl = {0};
	DataNames nm = {0};
	int *sel = NULL, *cls_count = NULL, *cls_seen = NULL;
	int rc = 0;
	for (int f = 0; f < spec->n_text_files; f++) {
		const char *path = spec->text_files[f];
		uint8_t *b;
		size_t n;
		rc = data_read_file(path, &b, &n, TEXT_MAX_BYTES, err, errlen);
		if (rc < 0)
			goto out;
		rc = check_text(path, b, n, err, errlen);
		if (rc < 0) {
			eng_free(b);
			goto out;
		}
		int before = rl.n;
		if (spec->text_label_field == 0) {
			int id = data_names_id(&nm, base_name(path), strlen(base_name(path)));
			rc = id < 0 ? id : split_percent(&rl, id, b, n, rb);
			if (rc == 0 && id != f) {
				rc = data_err(-EINVAL, err, errlen, "%s: listed twice (or two files share the name %s)",
				              path, base_name(path));
				eng_free(b);
				goto out;
			}
		} else {
			size_t i = 0;
			int line = 0;
			while (i < n && rc == 0) {
				const uint8_t *nl = memchr(b + i, '\n', n - i);
				size_t le = nl ? (size_t)(nl - b) : n;
				line++;
				size_t l = le - i;
				if (l && b[le - 1] == '\r')
					l--;
				if (l > 0) {
					const uint8_t *tab = memchr(b + i, '\t', l);
					if (!tab || tab == b + i) {
						rc = data_err(-EINVAL, err, errlen, "%s:%d: expected \"label<TAB>text\"", path,
						              line);
						eng_free(b);
						goto out;
					}
					int id = data_names_id(&nm, (const char *)b + i, (size_t)(tab - (b + i)));
					rc = id < 0 ? id : rec_add(&rl, id, tab + 1, (size_t)(b + i + l - tab - 1), rb);
				}
				i = nl ? le + 1 : n;
			}
		}
		eng_free(b);
		if (rc < 0) {
			rc = data_err(rc, err, errlen, "%s: out of memory", path);
			goto out;
		}
		if (rl.n == before) {
			rc = data_err(-EINVAL, err, errlen, "%s: no records", path);
			goto out;
		}
	}
	int ncls = nm.n;
	float frac = spec->test_fraction > 0 ? spec->test_fraction : 0.1f;
	cls_count = eng_calloc((size_t)ncls, sizeof(int));
	cls_seen = eng_calloc((size_t)ncls, sizeof(int));
	sel = eng_malloc((size_t)rl.n * sizeof(int));
	if (!cls_count || !cls_seen || !sel) {
		rc = data_err(-ENOMEM, err, errlen, "text records dataset: out of memory");
		goto out;
	}
	for (int i = 0; i < rl.n; i++)
		cls_count[rl.v[i].label]++;
	/* per class, the last floor(count * frac) records (file order) are test */
	int n_train = 0, n_test = 0;
	for (int i = 0; i < rl.n; i++) {
		int c = rl.v[i].label;
		int keep_train = cls_count[c] - (int)((double)cls_count[c] * frac);
		if (cls_seen[c]++ < keep_train)
			sel[n_train++] = i;
	}
	memset(cls_seen, 0, (size_t)ncls * sizeof(int));
	int *test_sel = sel + n_train;
	for (int i = 0; i < rl.n; i++) {
		int c = rl.v[i].label;
		int keep_train = cls_count[c] - (int)((double)cls_count[c] * frac);
		if (cls_seen[c]++ >= keep_train)
			test_sel[n_test++] = i;
	}
	if (n_test == 0) {
		rc = data_err(-EINVAL, err, errlen,
		              "text records dataset: %d records are too few to hold out %g as test", rl.n,
		              (double)frac);
		goto out;
	}
	if (fill_records(&rl, sel, n_train, rb, &ds->rec_train, &ds->rec_train_len, &ds->train.y) < 0 ||
	    fill_records(&rl, test_sel, n_test, rb, &ds->rec_test, &ds->rec_test_len, &ds->test.y) < 0) {
		rc = data_err(-ENOMEM, err, errlen, "text records dataset: out of memory");
		goto out;
	}
	ds->train.n = n_train;
	ds->test.n = n_test;
	ds->record_bytes = rb;
	ds->num_classes = ncls;
	ds->class_names = nm.v;   /* ownership moves to the Dataset */
	nm.v = NULL;
	nm.n = 0;
out:
	data_names_free(&nm);
	eng_free(rl.v);
	eng_free(rl.pool);
	eng_free(sel);
	eng_free(cls_count);
	eng_free(cls_seen);
	return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Format descriptors: "text" (a byte stream) and "text_records" (labelled records)               */

#define TEXT_FILES_HELP "text files, 1..64"

/* A stream is cut into context-sized windows (runner.c plans its steps the same way). */
static void text_estimate(const DatasetSpec *s, int context, DatasetShape *out)
{
	*out = (DatasetShape){ .train_samples = -1, .c = 1, .h = 1, .w = context > 0 ? context : 1,
	                       .known = 1 };
	int64_t bytes = 0;
	for (int i = 0; i < s->n_text_files; i++) {
		struct stat st;
		if (!s->text_files || stat(s->text_files[i], &st) < 0)
			return;
		bytes += (int64_t)st.st_size;
	}
	if (context > 0)
		out->train_samples = (int64_t)((double)bytes * (1.0 - s->test_fraction)) / context;
}

static void records_estimate(const DatasetSpec *s, int context, DatasetShape *out)
{
	(void)context;
	*out = (DatasetShape){ .train_samples = -1, .c = 1, .h = 1, .w = s->max_record_bytes, .known = 1 };
}

/* "files" or "dir": one of them, not both (the table refuses both through dir's conflicts). */
static int records_validate(const DatasetSpec *s, const int *given,
                            void (*bad)(void *user, const char *key, const char *code, const char *msg),
                            void *user)
{
	(void)s;
	if (!given[0] && !given[1]) {
		bad(user, "files", "missing_field", "required for format \"text_records\" (or \"dir\")");
		return 1;
	}
	return 0;
}

static const ParamDef text_keys[] = {
	{ "files", PARAM_PATH_LIST, .flags = PARAM_REQUIRED, .min = 1, .max = 64,
	  .help = TEXT_FILES_HELP, PARAM_LIST_AT(DatasetSpec, text_files, n_text_files) },
	{ "test_fraction", PARAM_NUMBER, .def = 0.1, .min = 0, .max = 0.5, .flags = PARAM_MIN_EXCLUSIVE,
	  .help = "share held out as the test split, (0, 0.5]", PARAM_AT(DatasetSpec, test_fraction) },
};

const DatasetFormat data_format_text = {
	.name = "text",
	.summary = "raw bytes of text files; the tail test_fraction of the bytes is the test stream",
	.kind = DATASET_TEXT,
	.modality = DATA_TEXT,
	.labelled = 0,
	.keys = text_keys,
	.n_keys = (int)(sizeof text_keys / sizeof text_keys[0]),
	.load = data_load_text,
	.estimate = text_estimate,
};

/* records_validate reads given[0] (files) and given[1] (dir): keep them first. */
static const ParamDef records_keys[] = {
	{ "files", PARAM_PATH_LIST, .min = 1, .max = 64, .def_text = "none: the files of dir",
	  .help = TEXT_FILES_HELP " (or dir)", PARAM_LIST_AT(DatasetSpec, text_files, n_text_files) },
	{ "dir", PARAM_DIR, .flags = PARAM_DIR_LISTS, .conflicts = "files", .def_text = "none: files",
	  .help = "directory whose regular text files are the records' classes (instead of files)",
	  PARAM_AT(DatasetSpec, dir) },
	{ "test_fraction", PARAM_NUMBER, .def = 0.1, .min = 0, .max = 0.5, .flags = PARAM_MIN_EXCLUSIVE,
	  .help = "share held out as the test split, (0, 0.5]", PARAM_AT(DatasetSpec, test_fraction) },
	{ "record_bytes", PARAM_INTEGER, .def = 128, .min = 16, .max = 4096,
	  .help = "records are truncated or padded to this many bytes, 16..4096",
	  PARAM_AT(DatasetSpec, max_record_bytes) },
	{ "records", PARAM_ENUM, .choices = "percent|tsv", .def_str = "percent",
	  .help = "\"percent\": records separated by \"%\" lines, the label is the source file; \"tsv\": "
	          "one record per line, \"label<TAB>text\"", PARAM_AT(DatasetSpec, text_label_field) },
};

const DatasetFormat data_format_text_records = {
	.name = "text_records",
	.summary = "labelled text records: \"%\"-separated records labelled by file, or label<TAB>text lines",
	.kind = DATASET_TEXT_RECORDS,
	.modality = DATA_TEXT,
	.labelled = 1,
	.keys = records_keys,
	.n_keys = (int)(sizeof records_keys / sizeof records_keys[0]),
	.width_key = "record_bytes",
	.validate = records_validate,
	.load = data_load_text_records,
	.estimate = records_estimate,
};
