/* dataset.c - dataset_load dispatch, ownership, validation slices and class-stratified label subsets.
 *
 * The format readers (idx.c, csv.c, text.c, captions.c) are found through the format registry
 * (format_registry.c); this file allocates the Dataset, dispatches, applies limits and frees, and
 * opens every file the readers read (confined
 * to the data roots when the daemon asked for it, see dataset_confine). It deliberately does no normalisation of the
 * data (images stay in [0,1], CSV features as written): that is the model's business.
 */
#include "data_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>
#ifdef __linux__
#include <linux/openat2.h>
#endif

#include "../alloc.h"

/* ---------------------------------------------------------------------------------------------- */
/* Shared helpers                                                                                  */

int data_err(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Confinement to the data roots at open time                                                      */

/* The roots, realpath-resolved; conf_n < 0 = not confined. Set once before any job runs. */
static char **conf_roots;
static int conf_n = -1;
static pthread_mutex_t conf_mu = PTHREAD_MUTEX_INITIALIZER;

int dataset_confine(const char *const *roots, int n)
{
	char **v = calloc((size_t)n + 1, sizeof *v);
	if (!v)
		return -ENOMEM;
	int k = 0;
	for (int i = 0; i < n; i++) {
		char *r = realpath(roots[i], NULL);   /* a root that does not resolve holds nothing */
		if (r)
			v[k++] = r;
	}
	pthread_mutex_lock(&conf_mu);
	char **old = conf_roots;
	int old_n = conf_n;
	conf_roots = v;
	conf_n = k;
	pthread_mutex_unlock(&conf_mu);
	for (int i = 0; i < old_n; i++)
		free(old[i]);
	free(old);
	return 0;
}

/* Relative part of path under root ("" for the root itself), or NULL when path is not under it. */
static const char *under(const char *path, const char *root)
{
	size_t l = strlen(root);
	if (l == 1 && root[0] == '/')
		l = 0;
	if (strncmp(path, root, l) != 0 || (path[l] != '/' && path[l] != 0))
		return NULL;
	const char *rel = path + l;
	while (*rel == '/')
		rel++;
	return rel;
}

/* openat(dirfd, rel) that cannot resolve outside dirfd: openat2 with RESOLVE_BENEATH; where the
 * kernel has no openat2, a plain openat whose result is checked through /proc/self/fd. */
static int open_beneath(int dirfd, const char *root, const char *rel)
{
#if defined(SYS_openat2) && defined(RESOLVE_BENEATH)
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
	                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
	if (fd >= 0 || (errno != ENOSYS && errno != EPERM))   /* EPERM: a seccomp filter refused it */
		return fd;
#endif
	int f = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (f < 0)
		return -1;
	char link[64], real[PATH_MAX];
	snprintf(link, sizeof link, "/proc/self/fd/%d", f);
	ssize_t n = readlink(link, real, sizeof real - 1);
	if (n <= 0) {
		close(f);
		errno = EXDEV;   /* cannot tell where it is: refuse */
		return -1;
	}
	real[n] = 0;
	if (!under(real, root)) {
		close(f);
		errno = EXDEV;
		return -1;
	}
	return f;
}

int data_open(const char *path, char *err, size_t errlen)
{
	pthread_mutex_lock(&conf_mu);
	int n = conf_n;
	pthread_mutex_unlock(&conf_mu);
	if (n < 0) {
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			int e = errno;
			return data_err(-e, err, errlen, "%s: cannot open: %s", path, strerror(e));
		}
		return fd;
	}
	if (n == 0)
		return data_err(-EACCES, err, errlen,
		                "%s: no data roots are configured, so jobs cannot read files", path);
	int escaped = 0, e = 0;
	for (int i = 0; i < n; i++) {
		const char *rel = under(path, conf_roots[i]);
		if (!rel || !*rel)
			continue;
		int dfd = open(conf_roots[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0) {
			e = errno;
			continue;
		}
		int fd = open_beneath(dfd, conf_roots[i], rel);
		int oe = errno;
		close(dfd);
		if (fd >= 0)
			return fd;
		if (oe == EXDEV)
			escaped = 1;
		else
			e = oe;
	}
	if (escaped || e == 0)   /* e == 0: no root holds the path at all */
		return data_err(-EXDEV, err, errlen,
		                "%s: resolves outside the data roots when opened (a symlink along the path "
		                "leads out of them); refusing to read it", path);
	return data_err(-e, err, errlen, "%s: cannot open: %s", path, strerror(e));
}

FILE *data_fopen(const char *path, char *err, size_t errlen)
{
	int fd = data_open(path, err, errlen);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	FILE *f = fdopen(fd, "rb");
	if (!f) {
		int e = errno;
		close(fd);
		data_err(-e, err, errlen, "%s: cannot open: %s", path, strerror(e));
		errno = e;
	}
	return f;
}

/* zlib's message without the "path: " prefix gzerror adds. */
static const char *zmessage(gzFile f, int *zerr)
{
	const char *m = gzerror(f, zerr);
	if (*zerr == Z_ERRNO)
		return strerror(errno);
	const char *c = strstr(m, ": ");
	return c ? c + 2 : m;
}

int data_read_file(const char *path, uint8_t **buf, size_t *len, size_t max_bytes,
                   char *err, size_t errlen)
{
	*buf = NULL;
	*len = 0;
	int fd = data_open(path, err, errlen);
	if (fd < 0)
		return fd;
	gzFile f = gzdopen(fd, "rb");
	if (!f) {
		close(fd);
		return data_err(-ENOMEM, err, errlen, "%s: cannot open: out of memory", path);
	}
	gzbuffer(f, 1 << 17);
	size_t cap = 1 << 16, n = 0;
	uint8_t *b = eng_malloc(cap + 1);
	if (!b) {
		gzclose(f);
		return data_err(-ENOMEM, err, errlen, "%s: out of memory", path);
	}
	for (;;) {
		if (n == cap) {
			if (max_bytes && cap >= max_bytes) {
				eng_free(b);
				gzclose(f);
				return data_err(-EFBIG, err, errlen, "%s: larger than the limit of %zu bytes",
				                path, max_bytes);
			}
			size_t ncap = cap * 2;
			uint8_t *nb = eng_realloc(b, ncap + 1);
			if (!nb) {
				eng_free(b);
				gzclose(f);
				return data_err(-ENOMEM, err, errlen, "%s: out of memory after %zu bytes", path, n);
			}
			b = nb;
			cap = ncap;
		}
		size_t want = cap - n;
		if (want > (1u << 30))
			want = 1u << 30;
		int got = gzread(f, b + n, (unsigned)want);
		if (got < 0) {
			int zerr = 0;
			const char *msg = zmessage(f, &zerr);
			int rc = data_err(zerr == Z_BUF_ERROR ? -EINVAL : -EIO, err, errlen,
			                  "%s: %s after %zu bytes: %s", path,
			                  zerr == Z_BUF_ERROR ? "truncated" : "corrupt or unreadable data", n, msg);
			eng_free(b);
			gzclose(f);
			return rc;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	int zerr = 0;
	const char *msg = zmessage(f, &zerr);
	if (zerr != Z_OK && zerr != Z_STREAM_END) {
		int rc = data_err(zerr == Z_BUF_ERROR ? -EINVAL : -EIO, err, errlen, "%s: %s after %zu bytes: %s",
		                  path, zerr == Z_BUF_ERROR ? "truncated" : "corrupt data", n, msg);
		eng_free(b);
		gzclose(f);
		return rc;
	}
	gzclose(f);
	if (max_bytes && n > max_bytes) {
		eng_free(b);
		return data_err(-EFBIG, err, errlen, "%s: larger than the limit of %zu bytes", path, max_bytes);
	}
	b[n] = 0;
	*buf = b;
	*len = n;
	return 0;
}

int data_names_id(DataNames *nm, const char *name, size_t len)
{
	for (int i = 0; i < nm->n; i++)
		if (strlen(nm->v[i]) == len && memcmp(nm->v[i], name, len) == 0)
			return i;
	if (nm->n == nm->cap) {
		int ncap = nm->cap ? nm->cap * 2 : 16;
		char **nv = eng_realloc(nm->v, (size_t)ncap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		nm->v = nv;
		nm->cap = ncap;
	}
	char *s = eng_malloc(len + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, name, len);
	s[len] = 0;
	nm->v[nm->n] = s;
	return nm->n++;
}

void data_names_free(DataNames *nm)
{
	for (int i = 0; i < nm->n; i++)
		eng_free(nm->v[i]);
	eng_free(nm->v);
	memset(nm, 0, sizeof *nm);
}

void data_split_limit(Split *s, size_t sample_floats, int limit)
{
	(void)sample_floats;   /* the arrays stay allocated at full size; only n shrinks */
	if (limit > 0 && limit < s->n)
		s->n = limit;
}

/* ---------------------------------------------------------------------------------------------- */
/* Load / free                                                                                     */

int dataset_load(const DatasetSpec *spec, Dataset **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!spec)
		return data_err(-EINVAL, err, errlen, "dataset: no spec given");
	if (spec->test_fraction < 0.0f || spec->test_fraction >= 1.0f || isnan(spec->test_fraction))
		return data_err(-EINVAL, err, errlen, "dataset: test_fraction must be in [0, 1), got %g",
		                (double)spec->test_fraction);
	Dataset *ds = eng_calloc(1, sizeof *ds);
	if (!ds)
		return data_err(-ENOMEM, err, errlen, "dataset: out of memory");
	ds->kind = spec->kind;
	const DatasetFormat *fmt = dataset_format_for(spec->kind);
	int rc = fmt ? fmt->load(spec, ds, err, errlen)
	             : data_err(-EINVAL, err, errlen, "dataset: unknown kind %d", (int)spec->kind);
	if (rc < 0) {
		dataset_free(ds);
		return rc;
	}
	/* a byte stream has no samples (n = 0): the limits leave it alone */
	data_split_limit(&ds->train, ds->sample_floats, spec->limit_train);
	data_split_limit(&ds->test, ds->sample_floats, spec->limit_test);
	while (ds->captions && ds->n_captions > ds->train.n)
		eng_free(ds->captions[--ds->n_captions]);
	*out = ds;
	return 0;
}

void dataset_free(Dataset *ds)
{
	if (!ds)
		return;
	if (ds->class_names) {
		for (int i = 0; i < ds->num_classes; i++)
			eng_free(ds->class_names[i]);
		eng_free(ds->class_names);
	}
	eng_free(ds->train.x);
	eng_free(ds->train.y);
	eng_free(ds->test.x);
	eng_free(ds->test.y);
	eng_free(ds->text_train);
	eng_free(ds->text_test);
	eng_free(ds->rec_train);
	eng_free(ds->rec_test);
	eng_free(ds->rec_train_len);
	eng_free(ds->rec_test_len);
	if (ds->captions) {
		for (int i = 0; i < ds->n_captions; i++)
			eng_free(ds->captions[i]);
		eng_free(ds->captions);
	}
	eng_free(ds);
}

/* ---------------------------------------------------------------------------------------------- */
/* Validation slice                                                                                */

int dataset_val_slice(const Dataset *ds, const Split *split, int n_val, Split *train_part,
                      Split *val, char *err, size_t errlen)
{
	if (n_val < 0 || n_val >= split->n)
		return data_err(-EINVAL, err, errlen,
		                "validation slice: n_val must be in [0, %d), got %d", split->n, n_val);
	int n_tr = split->n - n_val;
	train_part->n = n_tr;
	train_part->x = split->x;
	train_part->y = split->y;
	val->n = n_val;
	val->x = split->x ? split->x + (size_t)n_tr * ds->sample_floats : NULL;
	val->y = split->y ? split->y + n_tr : NULL;
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Label subsets                                                                                   */

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int dataset_label_quota(int labelled, int num_classes, double fraction, int labels_per_class)
{
	if (labels_per_class > 0)
		return labels_per_class;
	if (fraction >= 1.0 || num_classes <= 0)
		return 0;
	return (int)lround(fraction * (double)labelled / (double)num_classes);
}

int dataset_label_subset(const Split *split, int num_classes, double fraction, int labels_per_class,
                         LabelRule rule, uint64_t seed, int **out, char *err, size_t errlen)
{
	*out = NULL;
	if (num_classes <= 0)
		return data_err(-EINVAL, err, errlen, "label subset: the dataset has no classes");
	if (!split->y || split->n <= 0)
		return data_err(-EINVAL, err, errlen, "label subset: the split has no labelled samples");
	if (rule != LABELS_FIRST && rule != LABELS_RANDOM)
		return data_err(-EINVAL, err, errlen, "label subset: unknown rule %d", (int)rule);
	if (labels_per_class <= 0 && !(fraction > 0.0 && fraction <= 1.0))
		return data_err(-EINVAL, err, errlen,
		                "label subset: fraction must be in (0, 1], got %g", fraction);

	int *count = eng_calloc((size_t)num_classes, sizeof *count);
	int *idx = eng_malloc((size_t)split->n * sizeof *idx);
	if (!count || !idx) {
		eng_free(count);
		eng_free(idx);
		return data_err(-ENOMEM, err, errlen, "label subset: out of memory");
	}
	int labelled = 0;
	for (int i = 0; i < split->n; i++) {
		int y = split->y[i];
		if (y < 0)
			continue;
		if (y >= num_classes) {
			eng_free(count);
			eng_free(idx);
			return data_err(-EINVAL, err, errlen,
			                "label subset: sample %d has label %d, outside 0..%d", i, y,
			                num_classes - 1);
		}
		count[y]++;
		labelled++;
	}
	if (labelled == 0) {
		eng_free(count);
		eng_free(idx);
		return data_err(-EINVAL, err, errlen, "label subset: the split has no labelled samples");
	}

	/* fraction 1.0 without a per-class count: every labelled sample, in file order */
	if (labels_per_class <= 0 && fraction >= 1.0) {
		int n = 0;
		for (int i = 0; i < split->n; i++)
			if (split->y[i] >= 0)
				idx[n++] = i;
		eng_free(count);
		*out = idx;
		return n;
	}

	int k = dataset_label_quota(labelled, num_classes, fraction, labels_per_class);
	if (labels_per_class <= 0) {
		if (k < 1) {
			eng_free(count);
			eng_free(idx);
			return data_err(-EINVAL, err, errlen,
			                "label subset: fraction %g of %d labelled samples over %d classes "
			                "selects no sample per class", fraction, labelled, num_classes);
		}
	}

	int n = 0;
	if (rule == LABELS_FIRST) {
		int *taken = eng_calloc((size_t)num_classes, sizeof *taken);
		if (!taken) {
			eng_free(count);
			eng_free(idx);
			return data_err(-ENOMEM, err, errlen, "label subset: out of memory");
		}
		for (int i = 0; i < split->n; i++) {
			int y = split->y[i];
			if (y >= 0 && taken[y] < k) {
				taken[y]++;
				idx[n++] = i;
			}
		}
		eng_free(taken);
	} else {
		/* Per class: list its members in file order, draw min(k, count) of them by a partial
		 * Fisher-Yates shuffle from a stream seeded per class (stable if other classes change). */
		int *members = eng_malloc((size_t)split->n * sizeof *members);
		if (!members) {
			eng_free(count);
			eng_free(idx);
			return data_err(-ENOMEM, err, errlen, "label subset: out of memory");
		}
		for (int c = 0; c < num_classes; c++) {
			int m = 0;
			for (int i = 0; i < split->n; i++)
				if (split->y[i] == c)
					members[m++] = i;
			Rng r;
			rng_seed(&r, seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(c + 1)));
			int take = k < m ? k : m;
			for (int j = 0; j < take; j++) {
				int p = j + (int)rng_below(&r, (uint32_t)(m - j));
				int t = members[j];
				members[j] = members[p];
				members[p] = t;
				idx[n++] = members[j];
			}
		}
		eng_free(members);
		qsort(idx, (size_t)n, sizeof *idx, cmp_int);
	}
	eng_free(count);
	*out = idx;
	return n;
}
