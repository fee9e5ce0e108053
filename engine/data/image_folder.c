/* image_folder.c - scanning an image folder or reading a manifest into an ImgList; the split.
 *
 * Directories are walked depth-first with the (device, inode) of every ancestor on a stack, so a
 * symlink that leads back up is reported instead of followed forever. Nothing is decoded here and
 * nothing beyond the list is kept: paths share one arena, entries one array.
 */
#include "image_folder.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../alloc.h"
#include "../rng.h"
#include "data_internal.h"

#define SCAN_MAX_DEPTH 64

void img_list_free(ImgList *l)
{
	if (!l)
		return;
	eng_free(l->names);
	eng_free(l->entries);
	for (int i = 0; l->classes && i < l->num_classes; i++)
		eng_free(l->classes[i]);
	eng_free(l->classes);
	memset(l, 0, sizeof *l);
}

static int list_add(ImgList *l, const char *a, const char *b, int label, int split)
{
	size_t la = strlen(a), lb = b ? strlen(b) : 0, need = la + (b ? 1 + lb : 0) + 1;
	if (l->names_len + need > l->names_cap) {
		size_t cap = l->names_cap ? l->names_cap * 2 : 1 << 16;
		while (cap < l->names_len + need)
			cap *= 2;
		char *p = eng_realloc(l->names, cap);
		if (!p)
			return -ENOMEM;
		l->names = p;
		l->names_cap = cap;
	}
	if (l->n == l->cap) {
		if (l->cap >= (1 << 30))
			return -E2BIG;
		int cap = l->cap ? l->cap * 2 : 1024;
		ImgEntry *e = eng_realloc(l->entries, sizeof(ImgEntry) * cap);
		if (!e)
			return -ENOMEM;
		l->entries = e;
		l->cap = cap;
	}
	char *d = l->names + l->names_len;
	memcpy(d, a, la);
	if (b) {
		d[la] = '/';
		memcpy(d + la + 1, b, lb);
	}
	d[need - 1] = '\0';
	l->entries[l->n++] = (ImgEntry){ .off = l->names_len, .label = label, .split = split };
	l->names_len += need;
	return 0;
}

const char *const img_image_exts[] = { ".jpg", ".jpeg", ".png", NULL };

static int has_ext(const char *s, const char *const *exts)
{
	const char *dot = strrchr(s, '.');
	for (int i = 0; dot && exts[i]; i++)
		if (strcasecmp(dot, exts[i]) == 0)
			return 1;
	return 0;
}

/* ".jpg, .jpeg or .png" for messages. */
static const char *ext_words(const char *const *exts, char *buf, size_t len)
{
	size_t at = 0;
	buf[0] = '\0';
	for (int i = 0; exts[i] && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%s", i == 0 ? "" : exts[i + 1] ? ", " : " or ",
		                       exts[i]);
	return buf;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---------------------------------------------------------------------------------------------- */
/* Folder walk */

typedef struct Walk {
	ImgList *l;
	img_scan_cb cb;
	void *user;
	dev_t dev[SCAN_MAX_DEPTH];
	ino_t ino[SCAN_MAX_DEPTH];
	int depth;
	char *err;
	size_t errlen;
	const char *const *exts;   /* the file names kept */
} Walk;

typedef struct NameVec {
	char **v;
	int n, cap;
} NameVec;

static void names_free(NameVec *v)
{
	for (int i = 0; i < v->n; i++)
		eng_free(v->v[i]);
	eng_free(v->v);
	memset(v, 0, sizeof *v);
}

static int names_push(NameVec *v, const char *s)
{
	if (v->n == v->cap) {
		int cap = v->cap ? v->cap * 2 : 16;
		char **p = eng_realloc(v->v, sizeof(char *) * cap);
		if (!p)
			return -ENOMEM;
		v->v = p;
		v->cap = cap;
	}
	if (!(v->v[v->n] = eng_strdup(s)))
		return -ENOMEM;
	v->n++;
	return 0;
}

/* List dir: image files straight into the list (with label), subdirectories into *subdirs (sorted)
 * unless subdirs is NULL, in which case they are walked right away with the same label. */
static int walk_dir(Walk *wk, const char *dir, int label, NameVec *subdirs, int *files_here)
{
	struct stat st;
	if (stat(dir, &st) < 0) {
		int e = errno;
		if (e == ELOOP)
			return data_err(-ELOOP, wk->err, wk->errlen, "%s: symlink loop", dir);
		return data_err(-e, wk->err, wk->errlen, "%s: %s", dir, strerror(e));
	}
	for (int i = 0; i < wk->depth; i++)
		if (wk->dev[i] == st.st_dev && wk->ino[i] == st.st_ino)
			return data_err(-ELOOP, wk->err, wk->errlen,
			                "%s: symlink loop (leads back to a folder above it)", dir);
	if (wk->depth >= SCAN_MAX_DEPTH)
		return data_err(-ELOOP, wk->err, wk->errlen, "%s: folders nested deeper than %d levels",
		                dir, SCAN_MAX_DEPTH);
	wk->dev[wk->depth] = st.st_dev;
	wk->ino[wk->depth] = st.st_ino;
	wk->depth++;
	NameVec local = {0};
	NameVec *dirs = subdirs ? subdirs : &local;
	int rc = 0;
	/* Through data_open, so a folder (or a symlink to one) leading out of the data roots is
	 * refused like a file would be. */
	int fd;
	if (wk->depth == 1) {      /* the folder given: "dir/." is beneath a data root named dir */
		char *top = eng_malloc(strlen(dir) + 3);
		if (!top) {
			rc = data_err(-ENOMEM, wk->err, wk->errlen, "%s: out of memory", dir);
			goto out;
		}
		sprintf(top, "%s/.", dir);
		fd = data_open(top, wk->err, wk->errlen);
		eng_free(top);
	} else {
		fd = data_open(dir, wk->err, wk->errlen);
	}
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		rc = data_err(-e, wk->err, wk->errlen, "%s: cannot read folder: %s", dir, strerror(e));
		goto out;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *nm = de->d_name;
		if (nm[0] == '.')     /* ".", "..", hidden files and folders */
			continue;
		int isdir = de->d_type == DT_DIR, isreg = de->d_type == DT_REG;
		if (de->d_type == DT_LNK || de->d_type == DT_UNKNOWN) {
			char *full = eng_malloc(strlen(dir) + strlen(nm) + 2);
			if (!full) {
				rc = -ENOMEM;
				break;
			}
			sprintf(full, "%s/%s", dir, nm);
			struct stat s2;
			if (stat(full, &s2) < 0) {
				int e = errno;
				rc = data_err(-e, wk->err, wk->errlen, "%s: %s", full,
				              e == ELOOP ? "symlink loop" : strerror(e));
				eng_free(full);
				break;
			}
			eng_free(full);
			isdir = S_ISDIR(s2.st_mode);
			isreg = S_ISREG(s2.st_mode);
		}
		if (isdir) {
			if ((rc = names_push(dirs, nm)) < 0)
				break;
		} else if (isreg && has_ext(nm, wk->exts)) {
			if ((rc = list_add(wk->l, dir, nm, label, IMG_SPLIT_ANY)) < 0)
				break;
			if (files_here)
				(*files_here)++;
			if (wk->cb && wk->l->n % 10000 == 0)
				wk->cb(wk->user, wk->l->n);
		}
	}
	closedir(d);
	if (rc == -ENOMEM)
		rc = data_err(rc, wk->err, wk->errlen, "%s: out of memory listing the folder", dir);
	if (rc < 0 || subdirs)
		goto out;
	if (dirs->n > 1)   /* qsort of a NULL base, even with 0 elements, is undefined */
		qsort(dirs->v, (size_t)dirs->n, sizeof(char *), name_cmp);
	for (int i = 0; i < dirs->n && rc == 0; i++) {
		char *full = eng_malloc(strlen(dir) + strlen(dirs->v[i]) + 2);
		if (!full) {
			rc = -ENOMEM;
			break;
		}
		sprintf(full, "%s/%s", dir, dirs->v[i]);
		rc = walk_dir(wk, full, label, NULL, files_here);
		eng_free(full);
	}
out:
	names_free(&local);
	wk->depth--;
	return rc;
}

static int entry_cmp(const void *a, const void *b, void *names)
{
	const ImgEntry *x = a, *y = b;
	if (x->label != y->label)
		return x->label < y->label ? -1 : 1;
	return strcmp((const char *)names + x->off, (const char *)names + y->off);
}

/* Entries in (label, path) order, so the list does not depend on readdir's order. */
static void sort_entries(ImgList *l)
{
	if (l->n > 1)
		qsort_r(l->entries, (size_t)l->n, sizeof(ImgEntry), entry_cmp, l->names);
}

int img_folder_scan(const char *root, const ImgList *classes, img_scan_cb cb, void *user,
                    ImgList *out, char *err, size_t errlen)
{
	return img_folder_scan_exts(root, img_image_exts, classes, cb, user, out, err, errlen);
}

int img_folder_scan_exts(const char *root, const char *const *exts, const ImgList *classes,
                         img_scan_cb cb, void *user, ImgList *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	Walk wk = { .l = out, .cb = cb, .user = user, .err = err, .errlen = errlen, .exts = exts };
	char words[80];
	NameVec top = {0};
	int top_files = 0, rc;
	struct stat st;
	if (stat(root, &st) < 0) {
		int e = errno;
		return data_err(-e, err, errlen, "%s: %s", root, e == ELOOP ? "symlink loop" : strerror(e));
	}
	if (!S_ISDIR(st.st_mode))
		return data_err(-ENOTDIR, err, errlen, "%s: not a folder", root);
	/* The first level by hand: its subfolders are the classes. */
	if ((rc = walk_dir(&wk, root, -1, &top, &top_files)) < 0)
		goto fail;
	if (top.n == 0) {
		if (out->n == 0) {
			rc = data_err(-ENOENT, err, errlen, "%s: no %s files in the folder", root,
			              ext_words(exts, words, sizeof words));
			goto fail;
		}
		sort_entries(out);
		goto done;                       /* unlabelled */
	}
	if (top_files > 0) {
		rc = data_err(-EINVAL, err, errlen,
		              "%s: %d %s files beside the class folders (%s); move them into a class "
		              "folder, or use a folder without subfolders for unlabelled files", root,
		              top_files, exts == img_image_exts ? "image" : "data", img_list_path(out, 0));
		goto fail;
	}
	if (top.n > 1)
		qsort(top.v, (size_t)top.n, sizeof(char *), name_cmp);
	if (!classes && top.n == 1) {
		rc = data_err(-EINVAL, err, errlen,
		              "%s: only one class folder (%s); labels need at least two classes (for "
		              "unlabelled images, put them directly in %s)", root, top.v[0], root);
		goto fail;
	}
	if (!classes) {
		out->classes = eng_calloc(top.n, sizeof(char *));
		if (!out->classes) {
			rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", root);
			goto fail;
		}
		for (int i = 0; i < top.n; i++) {
			out->classes[i] = top.v[i];
			top.v[i] = NULL;
		}
		out->num_classes = top.n;
	} else {
		out->classes = eng_calloc(classes->num_classes ? classes->num_classes : 1, sizeof(char *));
		if (!out->classes) {
			rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", root);
			goto fail;
		}
		out->num_classes = classes->num_classes;
		for (int i = 0; i < classes->num_classes; i++)
			if (!(out->classes[i] = eng_strdup(classes->classes[i]))) {
				rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", root);
				goto fail;
			}
	}
	for (int i = 0; i < top.n; i++) {
		const char *cls = classes ? top.v[i] : out->classes[i];
		int label = i;
		if (classes) {
			label = -1;
			for (int k = 0; k < classes->num_classes; k++)
				if (strcmp(classes->classes[k], cls) == 0)
					label = k;
			if (label < 0) {
				rc = data_err(-EINVAL, err, errlen, "%s/%s: no class folder of that name in the "
				              "training folder", root, cls);
				goto fail;
			}
		}
		char *full = eng_malloc(strlen(root) + strlen(cls) + 2);
		if (!full) {
			rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", root);
			goto fail;
		}
		sprintf(full, "%s/%s", root, cls);
		int found = 0;
		wk.depth = 1;
		rc = walk_dir(&wk, full, label, NULL, &found);
		if (rc == 0 && found == 0)
			rc = data_err(-ENOENT, err, errlen, "%s: empty class folder (no %s files in it)",
			              full, ext_words(exts, words, sizeof words));
		eng_free(full);
		if (rc < 0)
			goto fail;
	}
	sort_entries(out);
done:
	if (cb)
		cb(user, out->n);
	names_free(&top);
	return 0;
fail:
	names_free(&top);
	img_list_free(out);
	return rc;
}

int img_folder_has_classes(const char *root)
{
	DIR *d = opendir(root);
	if (!d)
		return -errno;
	int found = 0;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (de->d_type == DT_DIR) {
			found = 1;
		} else if (de->d_type == DT_LNK || de->d_type == DT_UNKNOWN) {
			char *full = eng_malloc(strlen(root) + strlen(de->d_name) + 2);
			struct stat st;
			if (full) {
				sprintf(full, "%s/%s", root, de->d_name);
				found = stat(full, &st) == 0 && S_ISDIR(st.st_mode);
				eng_free(full);
			}
		}
	}
	closedir(d);
	return found;
}

int img_folder_scan_unlabelled(const char *root, img_scan_cb cb, void *user, ImgList *out,
                               char *err, size_t errlen)
{
	return img_folder_scan_unlabelled_exts(root, img_image_exts, cb, user, out, err, errlen);
}

int img_folder_scan_unlabelled_exts(const char *root, const char *const *exts, img_scan_cb cb,
                                    void *user, ImgList *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	Walk wk = { .l = out, .cb = cb, .user = user, .err = err, .errlen = errlen, .exts = exts };
	char words[80];
	int rc = walk_dir(&wk, root, -1, NULL, NULL);
	if (rc == 0 && out->n == 0)
		rc = data_err(-ENOENT, err, errlen, "%s: no %s files in it or below it", root,
		              ext_words(exts, words, sizeof words));
	if (rc < 0) {
		img_list_free(out);
		return rc;
	}
	sort_entries(out);
	if (cb)
		cb(user, out->n);
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Manifest */

/* One CSV field at *p (quotes with "" escapes), copied into dst (cap bytes). Advances past the
 * comma. -1 when the field does not fit or a quote is unterminated. */
static int csv_field(const char **p, char *dst, size_t cap)
{
	const char *s = *p;
	size_t k = 0;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '"') {
		s++;
		for (;;) {
			if (!*s)
				return -1;
			if (*s == '"') {
				if (s[1] == '"') {
					s++;
				} else {
					s++;
					break;
				}
			}
			if (k + 1 >= cap)
				return -1;
			dst[k++] = *s++;
		}
		while (*s && *s != ',')
			s++;
	} else {
		while (*s && *s != ',') {
			if (k + 1 >= cap)
				return -1;
			dst[k++] = *s++;
		}
		while (k > 0 && (dst[k - 1] == ' ' || dst[k - 1] == '\t' || dst[k - 1] == '\r'))
			k--;
	}
	dst[k] = '\0';
	if (*s == ',')
		s++;
	*p = s;
	return 0;
}

/* A JSON string at *p (just past the opening quote) into dst; ASCII escapes only. */
static int json_string(const char **p, char *dst, size_t cap)
{
	const char *s = *p;
	size_t k = 0;
	while (*s != '"') {
		char ch = *s;
		if (!ch)
			return -1;
		if (ch == '\\') {
			s++;
			switch (*s) {
			case '"': ch = '"'; break;
			case '\\': ch = '\\'; break;
			case '/': ch = '/'; break;
			case 'n': ch = '\n'; break;
			case 't': ch = '\t'; break;
			case 'u': {
				unsigned v = 0;
				for (int i = 1; i <= 4; i++) {
					if (!isxdigit((unsigned char)s[i]))
						return -1;
					v = v * 16 + (unsigned)(isdigit((unsigned char)s[i]) ? s[i] - '0'
					                        : (tolower((unsigned char)s[i]) - 'a' + 10));
				}
				if (v == 0 || v > 127)
					return -1;
				ch = (char)v;
				s += 4;
				break;
			}
			default: return -1;
			}
		}
		if (k + 1 >= cap)
			return -1;
		dst[k++] = ch;
		s++;
	}
	dst[k] = '\0';
	*p = s + 1;
	return 0;
}

/* A flat JSON object of string / number / null values: fills path, label, split. */
static int json_line(const char *s, char *path, char *label, char *split, size_t cap,
                     const char **why)
{
	path[0] = label[0] = split[0] = '\0';
	while (isspace((unsigned char)*s))
		s++;
	if (*s++ != '{')
		return (*why = "expected a JSON object"), -1;
	for (;;) {
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '}')
			break;
		char key[32];
		if (*s != '"' || (s++, json_string(&s, key, sizeof key) < 0))
			return (*why = "expected a quoted key"), -1;
		while (isspace((unsigned char)*s))
			s++;
		if (*s++ != ':')
			return (*why = "expected ':'"), -1;
		while (isspace((unsigned char)*s))
			s++;
		char val[4096];
		if (*s == '"') {
			s++;
			if (json_string(&s, val, sizeof val) < 0)
				return (*why = "bad string value"), -1;
		} else {
			size_t k = 0;
			while (*s && *s != ',' && *s != '}' && !isspace((unsigned char)*s) && k + 1 < sizeof val)
				val[k++] = *s++;
			val[k] = '\0';
			if (strcmp(val, "null") == 0)
				val[0] = '\0';
			else if (!k || strspn(val, "-0123456789") != k)
				return (*why = "values must be strings, integers or null"), -1;
		}
		char *dst = strcmp(key, "path") == 0 ? path : strcmp(key, "label") == 0 ? label
		          : strcmp(key, "split") == 0 ? split : NULL;
		if (!dst)
			return (*why = "unknown key (expected path, label, split)"), -1;
		if (strlen(val) >= cap)
			return (*why = "value too long"), -1;
		strcpy(dst, val);
		while (isspace((unsigned char)*s))
			s++;
		if (*s == ',')
			s++;
		else if (*s != '}')
			return (*why = "expected ',' or '}'"), -1;
	}
	return 0;
}

static int path_escapes(const char *p)
{
	if (p[0] == '/')
		return 1;
	for (const char *s = p; *s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return 1;
		s += n + (e ? 1 : 0);
	}
	return 0;
}

int img_manifest_read(const char *manifest, img_scan_cb cb, void *user, ImgList *out, char *err,
                      size_t errlen)
{
	memset(out, 0, sizeof *out);
	FILE *f = data_fopen(manifest, err, errlen);
	if (!f)
		return -ENOENT;
	DataNames names = {0};
	char *dir = eng_strdup(manifest);
	char *line = NULL;
	size_t lcap = 0;
	int rc = 0, lineno = 0, json = -1, n_labelled = 0;
	enum { CAP = 4096 };
	char *path = eng_malloc(CAP), *label = eng_malloc(CAP), *split = eng_malloc(CAP);
	if (!dir || !path || !label || !split) {
		rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", manifest);
		goto done;
	}
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	ssize_t got;
	while ((got = getline(&line, &lcap, f)) >= 0) {
		lineno++;
		while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
			line[--got] = '\0';
		const char *s = line;
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			continue;
		if (json < 0) {
			json = *s == '{';
			if (!json && strncasecmp(s, "path", 4) == 0 && (s[4] == ',' || !s[4]))
				continue;          /* CSV header */
		}
		if (json) {
			const char *why = NULL;
			if (json_line(s, path, label, split, CAP, &why) < 0) {
				rc = data_err(-EINVAL, err, errlen, "%s line %d: %s", manifest, lineno, why);
				goto done;
			}
		} else {
			const char *p = s;
			if (csv_field(&p, path, CAP) < 0 || csv_field(&p, label, CAP) < 0 ||
			    csv_field(&p, split, CAP) < 0) {
				rc = data_err(-EINVAL, err, errlen, "%s line %d: malformed CSV (a field too long "
				              "or an unterminated quote)", manifest, lineno);
				goto done;
			}
			if (*p) {
				rc = data_err(-EINVAL, err, errlen, "%s line %d: more than 3 fields (expected "
				              "path,label[,split])", manifest, lineno);
				goto done;
			}
		}
		if (!path[0]) {
			rc = data_err(-EINVAL, err, errlen, "%s line %d: no path", manifest, lineno);
			goto done;
		}
		if (path_escapes(path)) {
			rc = data_err(-EXDEV, err, errlen, "%s line %d: path %s leaves the manifest's folder "
			              "(absolute or with ..); paths must be relative to %s", manifest, lineno,
			              path, dir);
			goto done;
		}
		int sp = IMG_SPLIT_ANY;
		if (split[0]) {
			if (strcmp(split, "train") == 0)
				sp = IMG_SPLIT_TRAIN;
			else if (strcmp(split, "test") == 0)
				sp = IMG_SPLIT_TEST;
			else if (strcmp(split, "unlabeled") == 0 || strcmp(split, "unlabelled") == 0)
				sp = IMG_SPLIT_UNLABELED;
			else {
				rc = data_err(-EINVAL, err, errlen, "%s line %d: split must be train, test or "
				              "unlabeled, got \"%s\"", manifest, lineno, split);
				goto done;
			}
		}
		int id = -1;
		if (label[0] && sp != IMG_SPLIT_UNLABELED) {
			if ((id = data_names_id(&names, label, strlen(label))) < 0) {
				rc = data_err(-ENOMEM, err, errlen, "%s: out of memory", manifest);
				goto done;
			}
			n_labelled++;
		}
		if ((rc = list_add(out, dir, path, id, sp)) < 0) {
			rc = data_err(rc, err, errlen, "%s: out of memory at line %d", manifest, lineno);
			goto done;
		}
		struct stat st;
		const char *full = img_list_path(out, out->n - 1);
		if (stat(full, &st) < 0 || !S_ISREG(st.st_mode)) {
			int e = errno;
			rc = data_err(-ENOENT, err, errlen, "%s line %d: %s: %s", manifest, lineno, full,
			              S_ISDIR(st.st_mode) && e == 0 ? "a folder, not an image file"
			              : strerror(e));
			goto done;
		}
		if (cb && out->n % 10000 == 0)
			cb(user, out->n);
	}
	if (ferror(f)) {
		rc = data_err(-EIO, err, errlen, "%s: read error after line %d", manifest, lineno);
		goto done;
	}
	if (out->n == 0) {
		rc = data_err(-ENOENT, err, errlen, "%s: no entries", manifest);
		goto done;
	}
	if (n_labelled > 0 && names.n == 1) {
		rc = data_err(-EINVAL, err, errlen, "%s: only one label (%s); labels need at least two "
		              "classes (leave the label empty for unlabelled images)", manifest, names.v[0]);
		goto done;
	}
	out->classes = names.v;
	out->num_classes = names.n;
	names.v = NULL;
	names.n = 0;
	if (cb)
		cb(user, out->n);
done:
	if (rc < 0)
		img_list_free(out);
	data_names_free(&names);
	free(line);
	fclose(f);
	eng_free(dir);
	eng_free(path);
	eng_free(label);
	eng_free(split);
	return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Class selection */

static void compact(ImgList *l, const int *map)
{
	int k = 0;
	for (int i = 0; i < l->n; i++) {
		ImgEntry e = l->entries[i];
		if (e.label >= 0) {
			if (map[e.label] < 0)
				continue;
			e.label = map[e.label];
		}
		l->entries[k++] = e;
	}
	l->n = k;
}

int img_list_keep_classes(ImgList *l, ImgList *other, int min_images, const char *root,
                          int *dropped, char *names, size_t namelen, char *err, size_t errlen)
{
	*dropped = 0;
	if (names && namelen)
		names[0] = '\0';
	if (min_images <= 0 || l->num_classes == 0)
		return 0;
	int nc = l->num_classes, kept = 0;
	int *count = eng_calloc(nc, sizeof(int)), *map = eng_malloc(sizeof(int) * nc);
	if (!count || !map) {
		eng_free(count);
		eng_free(map);
		return data_err(-ENOMEM, err, errlen, "%s: out of memory", root);
	}
	for (int i = 0; i < l->n; i++)
		if (l->entries[i].label >= 0 && l->entries[i].label < nc)
			count[l->entries[i].label]++;
	size_t at = 0;
	for (int c = 0; c < nc; c++) {
		map[c] = count[c] >= min_images ? kept++ : -1;
		if (map[c] < 0) {
			(*dropped)++;
			if (names && at + 1 < namelen)
				at += (size_t)snprintf(names + at, namelen - at, "%s%s (%d)", at ? ", " : "",
				                       l->classes[c], count[c]);
			if (names && at >= namelen)
				at = namelen - 1;
		}
	}
	int rc = 0;
	if (kept < 2) {
		rc = data_err(-EINVAL, err, errlen, "%s: %d class%s with at least min_class_images = %d "
		              "images; labels need at least two classes", root, kept,
		              kept == 1 ? "" : "es", min_images);
		goto done;
	}
	compact(l, map);
	if (other)
		compact(other, map);
	for (int c = 0, k = 0; c < nc; c++) {
		if (map[c] < 0) {
			eng_free(l->classes[c]);
			if (other && other->classes && c < other->num_classes)
				eng_free(other->classes[c]);
			continue;
		}
		l->classes[k] = l->classes[c];
		if (other && other->classes && c < other->num_classes)
			other->classes[k] = other->classes[c];
		k++;
	}
	l->num_classes = kept;
	if (other && other->classes)
		other->num_classes = kept;
done:
	eng_free(count);
	eng_free(map);
	return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Split */

int img_list_split(const ImgList *l, double test_fraction, uint64_t seed, int **train_idx,
                   int *n_train, int **test_idx, int *n_test, char *err, size_t errlen)
{
	*train_idx = *test_idx = NULL;
	*n_train = *n_test = 0;
	if (!(test_fraction >= 0 && test_fraction < 1))
		return data_err(-EINVAL, err, errlen, "test_fraction must be in [0, 1), got %g",
		                test_fraction);
	int k = l->num_classes + 1;                  /* stratum k-1: unlabelled */
	int *count = eng_calloc(k, sizeof(int)), *start = eng_calloc(k + 1, sizeof(int));
	int *order = eng_malloc(sizeof(int) * (l->n ? l->n : 1));
	char *is_test = eng_calloc(l->n ? l->n : 1, 1);
	int *tr = eng_malloc(sizeof(int) * (l->n ? l->n : 1)), *te = eng_malloc(sizeof(int) * (l->n ? l->n : 1));
	int rc = 0;
	if (!count || !start || !order || !is_test || !tr || !te) {
		rc = data_err(-ENOMEM, err, errlen, "out of memory splitting %d images", l->n);
		goto done;
	}
	for (int i = 0; i < l->n; i++) {
		const ImgEntry *e = &l->entries[i];
		if (e->split == IMG_SPLIT_TEST)
			is_test[i] = 1;
		else if (e->split == IMG_SPLIT_ANY)
			count[e->label >= 0 && e->label < l->num_classes ? e->label : k - 1]++;
	}
	for (int c = 0; c < k; c++)
		start[c + 1] = start[c] + count[c];
	memset(count, 0, sizeof(int) * k);
	for (int i = 0; i < l->n; i++) {
		const ImgEntry *e = &l->entries[i];
		if (e->split != IMG_SPLIT_ANY)
			continue;
		int c = e->label >= 0 && e->label < l->num_classes ? e->label : k - 1;
		order[start[c] + count[c]++] = i;
	}
	Rng rng;
	rng_seed(&rng, seed);
	for (int c = 0; c < k; c++) {
		int n = count[c], t = (int)(test_fraction * n + 0.5);
		if (n == 0 || t == 0)
			continue;
		rng_shuffle(&rng, order + start[c], n);
		for (int j = 0; j < t; j++)
			is_test[order[start[c] + j]] = 1;
	}
	for (int i = 0; i < l->n; i++) {
		if (is_test[i])
			te[(*n_test)++] = i;
		else
			tr[(*n_train)++] = i;
	}
	*train_idx = tr;
	*test_idx = te;
	tr = te = NULL;
done:
	eng_free(count);
	eng_free(start);
	eng_free(order);
	eng_free(is_test);
	eng_free(tr);
	eng_free(te);
	return rc;
}
