/* unpack.c - a dataset archive unpacked member by member under bounds (see unpack.h).
 *
 * libarchive reads the formats; this file decides what may come out of them. It writes only
 * through descriptors opened beneath dest with O_NOFOLLOW, so even a check missed here cannot
 * place a file elsewhere. It does not know about owners, rows or HTTP.
 */
#include "unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/strbuf.h"

#define RATIO_FLOOR ((uint64_t)1 << 20)   /* ratios are judged only past this many bytes */
#define MAX_DEPTH 32                      /* components of a member's name (removal recurses this deep) */

__attribute__((format(printf, 4, 5)))
static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

/* ---- the set of names seen ------------------------------------------------------------------ */

typedef struct NameSet { char **slot; size_t cap, n; } NameSet;

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* 1 if added, 0 if present, -1 out of memory. */
static int names_add(NameSet *ns, const char *name)
{
	if (2 * (ns->n + 1) > ns->cap) {
		size_t cap = ns->cap ? 2 * ns->cap : 256;
		char **slot = calloc(cap, sizeof *slot);
		if (!slot) return -1;
		for (size_t i = 0; i < ns->cap; i++) {
			if (!ns->slot[i]) continue;
			size_t j = hash(ns->slot[i]) & (cap - 1);
			while (slot[j]) j = (j + 1) & (cap - 1);
			slot[j] = ns->slot[i];
		}
		free(ns->slot);
		ns->slot = slot;
		ns->cap = cap;
	}
	size_t j = hash(name) & (ns->cap - 1);
	while (ns->slot[j]) {
		if (strcmp(ns->slot[j], name) == 0) return 0;
		j = (j + 1) & (ns->cap - 1);
	}
	if (!(ns->slot[j] = strdup(name))) return -1;
	ns->n++;
	return 1;
}

static void names_free(NameSet *ns)
{
	for (size_t i = 0; i < ns->cap; i++) free(ns->slot[i]);
	free(ns->slot);
}

/* ---- names ---------------------------------------------------------------------------------- */

/* The member's name folded to "a/b/c" (leading "./" and "." components dropped, one trailing
 * '/' dropped), or a refusal naming what is wrong with it. */
static int clean_name(const char *raw, char *out, size_t cap, char *err, size_t errlen)
{
	if (!raw) return fail(UNPACK_EUNSAFE, err, errlen, "a member has no name, or a name that cannot be read");
	if (!utf8_valid(raw)) {
		Sbuf b = { 0 };
		for (const unsigned char *p = (const unsigned char *)raw; *p && b.n < 80; p++)
			if (*p >= 0x20 && *p < 0x7f) sb_printf(&b, "%c", *p);
			else sb_printf(&b, "\\x%02x", *p);
		int rc = fail(UNPACK_EUNSAFE, err, errlen, "member \"%s\": the name is not valid UTF-8", b.p ? b.p : "");
		sb_free(&b);
		return rc;
	}
	if (raw[0] == '/') return fail(UNPACK_EUNSAFE, err, errlen, "member \"%.200s\": absolute names are not allowed", raw);
	size_t n = 0, depth = 0;
	const char *p = raw;
	while (*p) {
		if (++depth > MAX_DEPTH)
			return fail(UNPACK_EUNSAFE, err, errlen, "member \"%.200s...\": more than %d directories deep", raw, MAX_DEPTH);
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return fail(UNPACK_EUNSAFE, err, errlen, "member \"%.200s\": \"..\" is not allowed in a name", raw);
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
				return fail(UNPACK_EUNSAFE, err, errlen,
				            "member \"%.200s\": control characters and backslashes are not allowed in a name", raw);
		if (len > 255) return fail(UNPACK_EUNSAFE, err, errlen, "member \"%.200s...\": a name component is longer than 255 bytes", raw);
		if (len && !(len == 1 && p[0] == '.')) {
			if (n + len + 2 > cap) return fail(UNPACK_EUNSAFE, err, errlen, "member \"%.200s...\": the name is too long", raw);
			if (n) out[n++] = '/';
			memcpy(out + n, p, len);
			n += len;
		}
		if (!e) break;
		p = e + 1;
	}
	out[n] = 0;
	return 0;
}

/* ---- writing beneath dest ------------------------------------------------------------------- */

/* A descriptor of the directory holding name's last component, each directory on the way made
 * (0750) or entered without following symlinks; *leaf points into name. -errno on failure. */
static int parent_dir(int root, const char *name, const char **leaf)
{
	int fd = dup(root);
	if (fd < 0) return -errno;
	char comp[256];
	const char *p = name;
	for (;;) {
		const char *e = strchr(p, '/');
		if (!e) break;
		size_t len = (size_t)(e - p);
		memcpy(comp, p, len);
		comp[len] = 0;
		if (mkdirat(fd, comp, 0750) < 0 && errno != EEXIST) goto bad;
		int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) goto bad;
		close(fd);
		fd = next;
		p = e + 1;
	}
	*leaf = p;
	return fd;
bad:;
	int rc = -errno;
	close(fd);
	return rc;
}

static int write_member(struct archive *a, int root, const char *name, const UnpackLimits *lim, uint64_t archive_size,
                        uint64_t *total, char *err, size_t errlen)
{
	const char *leaf;
	int out = -1, rc = 0;
	if (root >= 0) {
		int dir = parent_dir(root, name, &leaf);
		if (dir < 0) {
			if (dir == -ENOTDIR || dir == -ELOOP || dir == -EEXIST)
				return fail(UNPACK_EUNSAFE, err, errlen, "member \"%.200s\": a file of the same name as one of its directories", name);
			return fail(UNPACK_EIO, err, errlen, "member \"%.200s\": cannot make its directory: %s", name, strerror(-dir));
		}
		out = openat(dir, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
		int e = errno;
		close(dir);
		if (out < 0) {
			if (e == EEXIST) return fail(UNPACK_EUNSAFE, err, errlen, "member \"%.200s\": the name appears twice", name);
			return fail(UNPACK_EIO, err, errlen, "member \"%.200s\": cannot create: %s", name, strerror(e));
		}
	}
	const void *buf;
	size_t size;
	la_int64_t off;
	for (;;) {
		int r = archive_read_data_block(a, &buf, &size, &off);
		if (r == ARCHIVE_EOF) break;
		if (r < ARCHIVE_WARN) {
			rc = fail(UNPACK_EFORMAT, err, errlen, "member \"%.200s\": %s", name, archive_error_string(a) ? archive_error_string(a) : "cannot read its data");
			goto out;
		}
		*total += size;
		if (lim->max_bytes && *total > lim->max_bytes) {
			rc = fail(UNPACK_ELIMIT, err, errlen, "member \"%.200s\": the archive unpacks to more than %llu bytes (%s)", name,
			          (unsigned long long)lim->max_bytes, lim->bytes_limit ? lim->bytes_limit : "max-dataset-bytes");
			goto out;
		}
		if (lim->max_ratio > 0 && *total > RATIO_FLOOR && (double)*total > lim->max_ratio * (double)(archive_size ? archive_size : 1)) {
			rc = fail(UNPACK_ELIMIT, err, errlen,
			          "member \"%.200s\": the archive unpacks to more than %.0f times its %llu bytes (a compression bomb?)", name,
			          lim->max_ratio, (unsigned long long)archive_size);
			goto out;
		}
		if (out >= 0) {
			const char *p = buf;
			size_t left = size;
			if (off >= 0 && lseek(out, off, SEEK_SET) < 0) {
				rc = fail(UNPACK_EIO, err, errlen, "member \"%.200s\": seek: %s", name, strerror(errno));
				goto out;
			}
			while (left) {
				ssize_t w = write(out, p, left);
				if (w < 0 && errno == EINTR) continue;
				if (w < 0) {
					rc = fail(UNPACK_EIO, err, errlen, "member \"%.200s\": write: %s", name, strerror(errno));
					goto out;
				}
				p += w;
				left -= (size_t)w;
			}
		}
	}
out:
	if (out >= 0) close(out);
	return rc;
}

/* ---- the summary ---------------------------------------------------------------------------- */

static int is_split(const char *s)
{
	return strcmp(s, "train") == 0 || strcmp(s, "val") == 0 || strcmp(s, "validation") == 0 || strcmp(s, "test") == 0;
}

static int has_ext(const char *name, const char *ext)
{
	size_t n = strlen(name), e = strlen(ext);
	return n > e && strcasecmp(name + n - e, ext) == 0;
}

static int count_class(UnpackSummary *s, const char *name)
{
	char first[256] = "", second[256] = "";
	const char *a = strchr(name, '/');
	if (!a) return 0;   /* a file at the top: no class */
	snprintf(first, sizeof first, "%.*s", (int)(a - name), name);
	const char *b = strchr(a + 1, '/');
	if (b) snprintf(second, sizeof second, "%.*s", (int)(b - a - 1), a + 1);
	const char *split = "", *cls = first;
	if (is_split(first)) {
		if (!b) return 0;
		split = first;
		cls = second;
	}
	for (int i = 0; i < s->nclasses; i++)
		if (strcmp(s->classes[i].split, split) == 0 && strcmp(s->classes[i].name, cls) == 0) {
			s->classes[i].files++;
			return 0;
		}
	if (s->nclasses >= 4096) return 0;   /* counted in files; the listing stays bounded */
	UnpackClass *c = realloc(s->classes, (size_t)(s->nclasses + 1) * sizeof *c);
	if (!c) return -1;
	s->classes = c;
	UnpackClass *k = &c[s->nclasses++];
	memset(k, 0, sizeof *k);
	snprintf(k->split, sizeof k->split, "%s", split);
	snprintf(k->name, sizeof k->name, "%s", cls);
	k->files = 1;
	return 0;
}

/* Classes by split, then name: the order does not depend on the archive's. */
static int class_order(const void *a, const void *b)
{
	const UnpackClass *x = a, *y = b;
	int c = strcmp(x->split, y->split);
	return c ? c : strcmp(x->name, y->name);
}

/* ---- unpacking ------------------------------------------------------------------------------ */

static int unpack(struct archive *a, uint64_t archive_size, const char *dest, const UnpackLimits *lim, UnpackSummary *s,
                  char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	int root = -1, rc = 0;
	int64_t idx = 0, csv = 0, text = 0;
	char first_image[256] = "", first_audio[256] = "";
	NameSet seen = { 0 };
	if (dest && (root = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return fail(UNPACK_EIO, err, errlen, "%s: %s", dest, strerror(errno));
	char name[4096];
	uint64_t members = 0;
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF) break;
		if (r < ARCHIVE_WARN) {
			const char *why = archive_error_string(a);
			if (members == 0)
				rc = fail(UNPACK_EFORMAT, err, errlen, "the body is not a tar, tar.gz or zip archive (%s)", why ? why : "unrecognized");
			else
				rc = fail(UNPACK_EFORMAT, err, errlen, "the archive is corrupt after %llu members: %s", (unsigned long long)members,
				          why ? why : "unreadable header");
			goto out;
		}
		if (lim->max_members && ++members > lim->max_members) {
			rc = fail(UNPACK_ELIMIT, err, errlen, "the archive holds more than %llu members (max-dataset-files)",
			          (unsigned long long)lim->max_members);
			goto out;
		}
		const char *raw = archive_entry_pathname(e);
		if (!raw) raw = archive_entry_pathname_utf8(e);
		if ((rc = clean_name(raw, name, sizeof name, err, errlen)) < 0) goto out;
		if (archive_entry_hardlink(e))
			{ rc = fail(UNPACK_EUNSAFE, err, errlen, "member \"%.200s\": hard links are not allowed", name); goto out; }
		mode_t type = archive_entry_filetype(e);
		if (type == AE_IFLNK)
			{ rc = fail(UNPACK_EUNSAFE, err, errlen, "member \"%.200s\": symbolic links are not allowed", name); goto out; }
		if (type == AE_IFCHR || type == AE_IFBLK)
			{ rc = fail(UNPACK_EUNSAFE, err, errlen, "member \"%.200s\": device files are not allowed", name); goto out; }
		if (type != AE_IFREG && type != AE_IFDIR)
			{ rc = fail(UNPACK_EUNSAFE, err, errlen, "member \"%.200s\": only regular files and directories are allowed", name); goto out; }
		if (!name[0]) {   /* "./" */
			if (type == AE_IFDIR) continue;
			rc = fail(UNPACK_EUNSAFE, err, errlen, "a member has an empty name");
			goto out;
		}
		if (type == AE_IFDIR) {
			s->dirs++;
			if (root >= 0) {
				char with_leaf[4106];
				snprintf(with_leaf, sizeof with_leaf, "%s/x", name);
				const char *leaf;
				int d = parent_dir(root, with_leaf, &leaf);
				if (d < 0) {
					rc = fail(d == -ENOTDIR || d == -ELOOP ? UNPACK_EUNSAFE : UNPACK_EIO, err, errlen,
					          "member \"%.200s\": cannot make the directory: %s", name, strerror(-d));
					goto out;
				}
				close(d);
			}
			continue;
		}
		int added = names_add(&seen, name);
		if (added < 0) { rc = fail(UNPACK_ENOMEM, err, errlen, "out of memory"); goto out; }
		if (added == 0) { rc = fail(UNPACK_EUNSAFE, err, errlen, "member \"%.200s\": the name appears twice", name); goto out; }
		if ((rc = write_member(a, root, name, lim, archive_size, &s->bytes, err, errlen)) < 0) goto out;
		s->files++;
		const char *base = strrchr(name, '/');
		base = base ? base + 1 : name;
		int image = has_ext(base, ".png") || has_ext(base, ".jpg") || has_ext(base, ".jpeg");
		int audio = has_ext(base, ".wav") || has_ext(base, ".flac");   /* what audio_folder reads */
		if (image || audio) {
			if (image && !s->images++) snprintf(first_image, sizeof first_image, "%.255s", name);
			if (audio && !s->audio++) snprintf(first_audio, sizeof first_audio, "%.255s", name);
			if (count_class(s, name) < 0) { rc = fail(UNPACK_ENOMEM, err, errlen, "out of memory"); goto out; }
		} else if (strstr(base, "-ubyte")) idx++;
		else if (has_ext(base, ".csv") || has_ext(base, ".csv.gz")) {
			if (!csv++) snprintf(s->first_csv, sizeof s->first_csv, "%.255s", name);
		} else if (has_ext(base, ".txt") || has_ext(base, ".txt.gz")) {
			if (!text++) snprintf(s->first_text, sizeof s->first_text, "%.255s", name);
		}
	}
	if (s->files == 0) {
		rc = fail(UNPACK_EEMPTY, err, errlen, members ? "the archive holds no regular file" : "the body is an empty archive");
		goto out;
	}
	/* Class folders of both images and sound would train an image_folder and an audio_folder job
	 * on different files under the same class counts: refused, naming one of each. */
	if (s->images && s->audio) {
		rc = fail(UNPACK_EMIXED, err, errlen,
		          "the archive mixes images (%lld, e.g. \"%.200s\") and audio files (%lld, e.g. \"%.200s\"); "
		          "upload them as two datasets", (long long)s->images, first_image, (long long)s->audio, first_audio);
		goto out;
	}
	if (s->nclasses > 1) qsort(s->classes, (size_t)s->nclasses, sizeof *s->classes, class_order);
	s->format = s->images * 2 >= s->files ? "image_folder" : s->audio * 2 >= s->files ? "audio_folder"
	          : idx ? "idx" : csv ? "csv" : text ? "text" : "files";
	/* One syncfs for the whole tree, files and directories (an fsync per member costs more than
	 * the unpacking), so the rename that publishes it is the only step left. */
	if (root >= 0 && syncfs(root) < 0) rc = fail(UNPACK_EIO, err, errlen, "%s: syncfs: %s", dest, strerror(errno));
out:
	names_free(&seen);
	if (root >= 0) close(root);
	if (rc < 0) unpack_summary_clear(s);
	return rc;
}

static struct archive *reader(void)
{
	struct archive *a = archive_read_new();
	if (!a) return NULL;
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	archive_read_support_format_zip(a);
	return a;
}

int unpack_file(const char *path, const char *dest, const UnpackLimits *lim, UnpackSummary *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	struct stat st;
	if (stat(path, &st) < 0) return fail(UNPACK_EIO, err, errlen, "%s: %s", path, strerror(errno));
	struct archive *a = reader();
	if (!a) return fail(UNPACK_ENOMEM, err, errlen, "out of memory");
	int rc;
	if (archive_read_open_filename(a, path, 64 << 10) != ARCHIVE_OK) {
		rc = fail(UNPACK_EFORMAT, err, errlen, "the body is not a tar, tar.gz or zip archive (%s)",
		          archive_error_string(a) ? archive_error_string(a) : "unrecognized");
	} else {
		rc = unpack(a, (uint64_t)st.st_size, dest, lim, out, err, errlen);
	}
	archive_read_free(a);
	return rc;
}

int unpack_memory(const void *data, size_t len, const char *dest, const UnpackLimits *lim, UnpackSummary *out,
                          char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	struct archive *a = reader();
	if (!a) return fail(UNPACK_ENOMEM, err, errlen, "out of memory");
	int rc;
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK)
		rc = fail(UNPACK_EFORMAT, err, errlen, "the body is not a tar, tar.gz or zip archive (%s)",
		          archive_error_string(a) ? archive_error_string(a) : "unrecognized");
	else
		rc = unpack(a, len, dest, lim, out, err, errlen);
	archive_read_free(a);
	return rc;
}

void unpack_summary_clear(UnpackSummary *s)
{
	free(s->classes);
	s->classes = NULL;
	s->nclasses = 0;
}

/* ---- removal -------------------------------------------------------------------------------- */

static int remove_at(int parent, const char *name)
{
	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT) return 0;
	if (errno != EISDIR && errno != EPERM) return -errno;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = -errno;
		close(fd);
		return e;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			int r = remove_at(dirfd(d), e->d_name);
			if (r < 0 && rc == 0) rc = r;
		}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0) rc = -errno;
	return rc;
}

int unpack_remove_tree(const char *path)
{
	return remove_at(AT_FDCWD, path);
}
