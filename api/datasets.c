/* datasets.c - upload, list, show and delete datasets (see datasets.h).
 *
 * The HTTP side only: the archive's safety is ../workers/unpack.h, the rows are
 * ../storage/dataset_store.c, the sample grid dataset_grid.c. It does not build decode caches.
 */
#include "datasets.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../engine/fault.h"
#include "../storage/dataset_store.h"
#include "../storage/log.h"
#include "../workers/unpack.h"
#include "dataset_grid.h"

/* A refused upload's body is read and dropped up to this far past the limit, so the client sees
 * the answer; beyond it the connection is closed. */
#define DRAIN_BYTES ((uint64_t)64 << 20)

/* Archives unpacked at once, each on its own thread while its connection waits suspended; an
 * upload beyond them is answered 503 busy (the body is already on disk: retrying is cheap for
 * nobody, so keep this above what a box's owners upload at once). */
#define UNPACKS_MAX 4

struct DsUpload {
	int fd;                 /* the body's file, -1 when none is kept */
	char dir[PATH_MAX];     /* STATE/uploads/.tmp/up.XXXXXX, "" when none */
	uint64_t received;
	int over;               /* more than max_upload_bytes arrived */
	int io_errno;           /* writing the body failed */
	/* The unpack and publication (unpack_thread), off the HTTP threads: */
	Req *r;
	char name[64];
	UnpackLimits al;
	char quota_text[160];
	unsigned status;        /* its answer: 201 with created + location, or an error */
	char code[32], field[8], message[1024];
	Sbuf created;
	char location[256];
	int inflight;           /* counted in api->unpacks_inflight until the request ends */
};

/* ---- names and places ----------------------------------------------------------------------- */

/* Dataset names: 1-63 of [A-Za-z0-9._-], not starting with '.' or '-'. */
static int valid_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 63 || s[0] == '.' || s[0] == '-') return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

static void root_dir(const Api *api, char *out, size_t cap) { snprintf(out, cap, "%s/" API_UPLOADS_DIR, api->shared_dir); }

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int make_dir(const char *path)
{
	return mkdir(path, 0750) == 0 || errno == EEXIST ? 0 : -errno;
}

/* ---- the upload's body ---------------------------------------------------------------------- */

static const ApiDatasetLimits *limits(const Req *r) { return &r->api->cfg.datasets; }

int datasets_upload_begin(Req *r, const char *method, const char *url)
{
	if (strcmp(method, "POST") != 0 || (strcmp(url, "/v1/datasets") != 0 && strcmp(url, "/v1/datasets/") != 0) ||
	    !r->api->shared_dir)
		return 0;
	struct DsUpload *u = calloc(1, sizeof *u);
	if (!u) return -1;
	r->method = method;
	r->url = url;
	u->fd = -1;
	r->upload = u;
	/* Keep the body only when the request can succeed: a refused one is read and dropped, and
	 * the route then gives the answer (the same checks, with replies). */
	const char *cl = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > limits(r)->max_upload_bytes) {
		u->over = 1;
		/* Too much to read and drop: answer now (MHD then closes the connection). */
		if (strtoull(cl, NULL, 10) - limits(r)->max_upload_bytes > DRAIN_BYTES) {
			reply_error(r, 413, "upload_too_large", NULL, "the upload is larger than the limit of %llu bytes (max-upload-bytes)",
			            (unsigned long long)limits(r)->max_upload_bytes);
			return 1;
		}
	}
	if (u->over || !valid_name(query(r, "name")) || !auth_quiet(r)) return 1;
	char root[PATH_MAX], tmp[PATH_MAX + 8];
	root_dir(r->api, root, sizeof root);
	snprintf(tmp, sizeof tmp, "%s/.tmp", root);
	if (make_dir(root) < 0 || make_dir(tmp) < 0) {
		u->io_errno = errno;
		return 1;
	}
	snprintf(u->dir, sizeof u->dir, "%.4000s/up.XXXXXX", tmp);
	if (!mkdtemp(u->dir)) {
		u->io_errno = errno;
		u->dir[0] = 0;
		return 1;
	}
	char file[PATH_MAX + 16];
	snprintf(file, sizeof file, "%s/body", u->dir);
	u->fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (u->fd < 0) u->io_errno = errno;
	return 1;
}

int datasets_upload_chunk(Req *r, const char *data, size_t n)
{
	struct DsUpload *u = r->upload;
	u->received += n;
	if (u->received > limits(r)->max_upload_bytes) u->over = 1;
	if (u->received > limits(r)->max_upload_bytes && u->received - limits(r)->max_upload_bytes > DRAIN_BYTES) return -1;   /* no end in sight: close */
	if (u->fd < 0) return 0;
	if (u->over) {   /* no use keeping it: drop the file now, the rest is read and dropped */
		close(u->fd);
		u->fd = -1;
		return 0;
	}
	while (n) {
		ssize_t w = write(u->fd, data, n);
		if (w < 0 && errno == EINTR) continue;
		if (w < 0) {
			u->io_errno = errno;
			close(u->fd);
			u->fd = -1;
			return 0;
		}
		data += w;
		n -= (size_t)w;
	}
	return 0;
}

void datasets_upload_end(Req *r)
{
	struct DsUpload *u = r->upload;
	if (!u) return;
	if (u->fd >= 0) close(u->fd);
	if (u->dir[0]) unpack_remove_tree(u->dir);
	sb_free(&u->created);
	if (u->inflight) atomic_fetch_sub(&r->api->unpacks_inflight, 1);
	free(u);
	r->upload = NULL;
}

/* ---- answers -------------------------------------------------------------------------------- */

static enum MHD_Result ds_store_failure(Req *r, int rc, const char *err)
{
	if (rc == STORE_ENOTFOUND) return reply_error(r, 404, "not_found", NULL, "%s", err);
	slog(LOG_ERR, 0, "%s %s: %s", r->method, r->url, err);
	return reply_error(r, 503, "storage_error", NULL, "%s", err);
}

static cJSON *dataset_json(const StoreDataset *d, int full)
{
	cJSON *o = cJSON_CreateObject();
	char ref[160], iso[32];
	snprintf(ref, sizeof ref, "dataset:%s/%s", d->owner, d->name);
	cJSON_AddStringToObject(o, "owner", d->owner);
	cJSON_AddStringToObject(o, "name", d->name);
	cJSON_AddStringToObject(o, "ref", ref);
	cJSON_AddStringToObject(o, "format", d->format);
	cJSON_AddNumberToObject(o, "files", (double)d->files);
	cJSON_AddNumberToObject(o, "bytes", (double)d->bytes);
	iso_time(d->created_at, iso);
	cJSON_AddStringToObject(o, "created_at", iso);
	cJSON *sum = cJSON_Parse(d->summary ? d->summary : "{}");
	if (sum) {
		if (full) {
			for (cJSON *it = sum->child; it;) {
				cJSON *next = it->next;
				cJSON_AddItemToObject(o, it->string, cJSON_DetachItemViaPointer(sum, it));
				it = next;
			}
		} else {
			cJSON *c = cJSON_GetObjectItemCaseSensitive(sum, "classes");
			cJSON_AddNumberToObject(o, "classes", cJSON_IsArray(c) ? cJSON_GetArraySize(c) : 0);
		}
		cJSON_Delete(sum);
	}
	return o;
}

/* The stored summary: classes with their files, files per split, and how a job names it. */
static char *summary_text(const UnpackSummary *s, const char *owner, const char *name, int grid)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *cl = cJSON_AddArrayToObject(o, "classes");
	cJSON *sp = cJSON_AddObjectToObject(o, "splits");
	for (int i = 0; i < s->nclasses; i++) {
		const UnpackClass *c = &s->classes[i];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "name", c->name);
		if (c->split[0]) cJSON_AddStringToObject(e, "split", c->split);
		else cJSON_AddNullToObject(e, "split");
		cJSON_AddNumberToObject(e, "files", (double)c->files);
		cJSON_AddItemToArray(cl, e);
		const char *k = c->split[0] ? c->split : "all";
		cJSON *n = cJSON_GetObjectItemCaseSensitive(sp, k);
		if (n) cJSON_SetNumberValue(n, n->valuedouble + (double)c->files);
		else cJSON_AddNumberToObject(sp, k, (double)c->files);
	}
	cJSON_AddNumberToObject(o, "images", (double)s->images);
	cJSON_AddNumberToObject(o, "audio", (double)s->audio);
	char url[256];
	snprintf(url, sizeof url, "/v1/datasets/%s/%s/grid.png", owner, name);
	if (grid) cJSON_AddStringToObject(o, "sample_grid", url);
	else cJSON_AddNullToObject(o, "sample_grid");
	/* A starting point for the job's "dataset" object. */
	char ref[512];
	cJSON *use = cJSON_AddObjectToObject(o, "use");
	if (strcmp(s->format, "image_folder") == 0 || strcmp(s->format, "audio_folder") == 0) {
		cJSON_AddStringToObject(use, "format", s->format);
		cJSON *train = NULL;
		for (int i = 0; i < s->nclasses && !train; i++)
			if (strcmp(s->classes[i].split, "train") == 0) train = cJSON_CreateTrue();
		snprintf(ref, sizeof ref, "dataset:%s/%s%s", owner, name, train ? "/train" : "");
		cJSON_Delete(train);
		cJSON_AddStringToObject(use, "train", ref);
	} else if (strcmp(s->format, "csv") == 0) {
		cJSON_AddStringToObject(use, "format", "csv");
		snprintf(ref, sizeof ref, "dataset:%s/%s/%s", owner, name, s->first_csv);
		cJSON_AddStringToObject(use, "train", ref);
	} else if (strcmp(s->format, "text") == 0) {
		cJSON_AddStringToObject(use, "format", "text");
		snprintf(ref, sizeof ref, "dataset:%s/%s/%s", owner, name, s->first_text);
		cJSON_AddStringToObject(use, "train", ref);
	} else {
		snprintf(ref, sizeof ref, "dataset:%s/%s", owner, name);
		cJSON_AddStringToObject(use, "path", ref);
	}
	char *t = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return t;
}

/* ---- POST /v1/datasets ---------------------------------------------------------------------- */

static const char *const archive_types[] = {
	"application/x-tar", "application/tar", "application/gzip", "application/x-gzip", "application/x-gtar",
	"application/x-compressed-tar", "application/zip", "application/x-zip-compressed", "application/octet-stream", NULL,
};

static int archive_type(const char *ct)
{
	if (!ct) return 0;
	size_t n = strcspn(ct, "; ");
	for (const char *const *t = archive_types; *t; t++)
		if (strlen(*t) == n && strncasecmp(ct, *t, n) == 0) return 1;
	return 0;
}

static enum MHD_Result unpack_start(Req *r, struct DsUpload *u);

static enum MHD_Result upload(Req *r)
{
	static const char *const allowed[] = { "name", NULL };
	if (check_query(r, allowed) < 0 || require_auth(r) < 0) return MHD_YES;
	const ApiDatasetLimits *lim = limits(r);
	struct DsUpload *u = r->upload;
	const char *name = query(r, "name");
	if (!name || !*name) return reply_error(r, 400, "missing_parameter", "name", "name: give the dataset a name (?name=NAME)");
	if (!valid_name(name))
		return reply_error(r, 400, "invalid_field", "name",
		                   "name: \"%.80s\" is not a dataset name (1-63 of A-Z a-z 0-9 . _ -, not starting with . or -)", name);
	if (u->over)
		return reply_error(r, 413, "upload_too_large", NULL, "the upload is larger than the limit of %llu bytes (max-upload-bytes)",
		                   (unsigned long long)lim->max_upload_bytes);
	const char *ct = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!archive_type(ct))
		return reply_error(r, 415, "unsupported_media_type", NULL,
		                   "Content-Type \"%.80s\": send a tar (application/x-tar), tar.gz (application/gzip) or zip (application/zip)",
		                   ct ? ct : "");
	char err[1024];
	StoreDataset d;
	int rc = store_dataset_get(r->api->cfg.store, r->owner, name, &d, err, sizeof err);
	store_dataset_clear(&d);
	if (rc == 0) return reply_error(r, 409, "exists", "name", "dataset %s/%s already exists; delete it first", r->owner, name);
	if (rc != STORE_ENOTFOUND) return ds_store_failure(r, rc, err);
	int64_t count, used;
	if ((rc = store_dataset_usage(r->api->cfg.store, r->owner, &count, &used, err, sizeof err)) < 0) return ds_store_failure(r, rc, err);
	if (lim->max_per_owner > 0 && count >= lim->max_per_owner)
		return reply_error(r, 429, "too_many_datasets", NULL, "%s already has %lld datasets, the limit (max-datasets-per-owner %d); delete one first",
		                   r->owner, (long long)count, lim->max_per_owner);
	if (lim->quota_bytes > 0 && (uint64_t)used >= lim->quota_bytes)
		return reply_error(r, 413, "quota_exceeded", NULL, "%s's datasets already use %lld of %llu bytes (dataset-quota-bytes)", r->owner,
		                   (long long)used, (unsigned long long)lim->quota_bytes);
	if (u->io_errno || u->fd < 0) {
		slog(LOG_ERR, 0, "%s %s: keeping the upload: %s", r->method, r->url, strerror(u->io_errno ? u->io_errno : EIO));
		return reply_error(r, 503, "storage_error", NULL, "the server could not keep the upload: %s", strerror(u->io_errno ? u->io_errno : EIO));
	}
	if (u->received == 0) return reply_error(r, 400, "invalid_archive", NULL, "the request has no body; send the archive as the body");
	if (fsync(u->fd) < 0) return reply_error(r, 503, "storage_error", NULL, "the server could not keep the upload: %s", strerror(errno));
	close(u->fd);
	u->fd = -1;

	/* Unpack beside the body, bounded by the tighter of the size limit and what the quota leaves. */
	u->al = (UnpackLimits){ .max_bytes = lim->max_dataset_bytes, .bytes_limit = "max-dataset-bytes",
	                        .max_members = lim->max_files, .max_ratio = lim->max_ratio };
	if (lim->quota_bytes > 0 && (u->al.max_bytes == 0 || lim->quota_bytes - (uint64_t)used < u->al.max_bytes)) {
		u->al.max_bytes = lim->quota_bytes - (uint64_t)used;
		snprintf(u->quota_text, sizeof u->quota_text, "dataset-quota-bytes: %s uses %lld of %llu", r->owner, (long long)used,
		         (unsigned long long)lim->quota_bytes);
		u->al.bytes_limit = u->quota_text;
	}
	snprintf(u->name, sizeof u->name, "%s", name);
	u->r = r;
	return unpack_start(r, u);
}

/* ---- unpacking and publication, on a thread of its own -------------------------------------- */

__attribute__((format(printf, 5, 6)))
static void refuse(struct DsUpload *u, unsigned status, const char *code, const char *field, const char *fmt, ...)
{
	u->status = status;
	snprintf(u->code, sizeof u->code, "%s", code);
	snprintf(u->field, sizeof u->field, "%s", field ? field : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(u->message, sizeof u->message, fmt, ap);
	va_end(ap);
}

static void refuse_store(struct DsUpload *u, int rc, const char *err)
{
	if (rc == STORE_ENOTFOUND) {
		refuse(u, 404, "not_found", NULL, "%s", err);
		return;
	}
	slog(LOG_ERR, 0, "POST /v1/datasets: %s", err);
	refuse(u, 503, "storage_error", NULL, "%s", err);
}

/* Unpacks u's body and publishes the dataset, setting u's answer. Reads r->owner and r->api only:
 * the connection is suspended meanwhile. */
static void publish(struct DsUpload *u)
{
	Req *r = u->r;
	const ApiDatasetLimits *lim = limits(r);
	const char *name = u->name;
	char err[1024];
	int rc;
	int64_t count, used;
	char body[PATH_MAX + 16], tree[PATH_MAX + 16];
	snprintf(body, sizeof body, "%s/body", u->dir);
	snprintf(tree, sizeof tree, "%s/tree", u->dir);
	if (mkdir(tree, 0750) < 0) {
		refuse(u, 503, "storage_error", NULL, "the server could not unpack: %s", strerror(errno));
		return;
	}
	UnpackSummary s;
	rc = unpack_file(body, tree, &u->al, &s, err, sizeof err);
	unlink(body);
	if (rc < 0) {
		switch (rc) {
		case UNPACK_ELIMIT: refuse(u, 413, "dataset_too_large", NULL, "%s", err); return;
		case UNPACK_EUNSAFE: refuse(u, 400, "unsafe_archive", NULL, "%s", err); return;
		case UNPACK_EEMPTY: refuse(u, 400, "empty_archive", NULL, "%s", err); return;
		case UNPACK_EFORMAT: refuse(u, 400, "invalid_archive", NULL, "%s", err); return;
		case UNPACK_EMIXED: refuse(u, 400, "mixed_media", NULL, "%s", err); return;
		default:
			slog(LOG_ERR, 0, "POST /v1/datasets: %s", err);
			refuse(u, 503, "storage_error", NULL, "%s", err);
			return;
		}
	}
	/* A sample grid of an image folder, published beside it as OWNER/.NAME.png. */
	char grid_tmp[PATH_MAX + 16];
	snprintf(grid_tmp, sizeof grid_tmp, "%s/grid.png", u->dir);
	int grid = strcmp(s.format, "image_folder") == 0 && dataset_grid_write(tree, &s, grid_tmp, err, sizeof err) == 0;
	if (!grid && strcmp(s.format, "image_folder") == 0) slog(LOG_WARNING, 0, "dataset %s/%s: %s", r->owner, name, err);

	/* Publish: the row, then one rename. A crash between the two leaves a row whose directory
	 * is missing, which datasets_recover removes; a directory is never left without its row. */
	char root[PATH_MAX], odir[PATH_MAX + 80], final[PATH_MAX + 160];
	root_dir(r->api, root, sizeof root);
	snprintf(odir, sizeof odir, "%s/%s", root, r->owner);
	snprintf(final, sizeof final, "%s/%s", odir, name);
	if (make_dir(odir) < 0 || fsync_dir(root) < 0) {
		unpack_summary_clear(&s);
		refuse(u, 503, "storage_error", NULL, "%s: %s", odir, strerror(errno));
		return;
	}
	StoreDataset row = { .bytes = (int64_t)s.bytes, .files = s.files, .path = final, .created_at = store_now() };
	snprintf(row.owner, sizeof row.owner, "%s", r->owner);
	snprintf(row.name, sizeof row.name, "%s", name);
	snprintf(row.format, sizeof row.format, "%s", s.format);
	row.summary = summary_text(&s, r->owner, name, grid);
	unpack_summary_clear(&s);
	/* The owner's count and quota again, with the insert, under one lock: two uploads of one owner
	 * that both passed the first check cannot both be published past a limit. */
	static pthread_mutex_t publish_mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&publish_mu);
	rc = store_dataset_usage(r->api->cfg.store, r->owner, &count, &used, err, sizeof err);
	if (rc == 0 && lim->max_per_owner > 0 && count >= lim->max_per_owner) {
		pthread_mutex_unlock(&publish_mu);
		free(row.summary);
		refuse(u, 429, "too_many_datasets", NULL, "%s already has %lld datasets, the limit (max-datasets-per-owner %d); delete one first",
		       r->owner, (long long)count, lim->max_per_owner);
		return;
	}
	if (rc == 0 && lim->quota_bytes > 0 && (uint64_t)(used + row.bytes) > lim->quota_bytes) {
		pthread_mutex_unlock(&publish_mu);
		free(row.summary);
		refuse(u, 413, "quota_exceeded", NULL, "%s's datasets use %lld bytes; this one (%lld) would pass %llu (dataset-quota-bytes)",
		       r->owner, (long long)used, (long long)row.bytes, (unsigned long long)lim->quota_bytes);
		return;
	}
	if (rc == 0) rc = row.summary ? store_dataset_insert(r->api->cfg.store, &row, err, sizeof err) : STORE_ENOMEM;
	pthread_mutex_unlock(&publish_mu);
	if (rc < 0) {
		free(row.summary);
		if (rc == STORE_EEXIST) refuse(u, 409, "exists", "name", "%s; delete it first", err);
		else refuse_store(u, rc, rc == STORE_ENOMEM ? "out of memory" : err);
		return;
	}
	if (rename(tree, final) < 0) {
		int e = errno;
		char e2[256];
		free(row.summary);
		store_dataset_delete(r->api->cfg.store, r->owner, name, e2, sizeof e2);
		if (e == EEXIST || e == ENOTEMPTY)
			refuse(u, 409, "exists", "name", "dataset %s/%s already exists; delete it first", r->owner, name);
		else
			refuse(u, 503, "storage_error", NULL, "%s: %s", final, strerror(e));
		return;
	}
	char grid_path[PATH_MAX + 160];
	snprintf(grid_path, sizeof grid_path, "%s/.%s.png", odir, name);
	if (grid) rename(grid_tmp, grid_path);   /* without it GET .../grid.png answers 404 */
	fsync_dir(odir);
	slog(LOG_INFO, 0, "dataset %s/%s: %lld files, %lld bytes, %s", row.owner, row.name, (long long)row.files, (long long)row.bytes, row.format);
	row.path = NULL;
	cJSON *ans = dataset_json(&row, 1);
	free(row.summary);
	char *text = cJSON_PrintUnformatted(ans);
	cJSON_Delete(ans);
	if (!text) {
		refuse(u, 503, "out_of_memory", NULL, "out of memory");
		return;
	}
	sb_puts(&u->created, text);
	free(text);
	snprintf(u->location, sizeof u->location, "/v1/datasets/%s/%s", row.owner, row.name);
	u->status = 201;
}

static void *unpack_thread(void *arg)
{
	struct DsUpload *u = arg;
	struct MHD_Connection *c = u->r->c;
	Api *api = u->r->api;
	ssld_fault_hold("dataset_unpack");   /* ../engine/fault.h: a test holds the unpack here */
	publish(u);
	MHD_resume_connection(c);   /* from here on, u and its request are the HTTP side's again */
	atomic_fetch_sub(&api->unpacks_running, 1);
	return NULL;
}

static enum MHD_Result unpack_start(Req *r, struct DsUpload *u)
{
	if (atomic_fetch_add(&r->api->unpacks_running, 1) >= UNPACKS_MAX) {
		atomic_fetch_sub(&r->api->unpacks_running, 1);
		return reply_error(r, 503, "busy", NULL, "%d uploads are being unpacked; retry in a moment", UNPACKS_MAX);
	}
	atomic_fetch_add(&r->api->unpacks_inflight, 1);
	u->inflight = 1;
	r->suspended = 1;
	MHD_suspend_connection(r->c);   /* first: the thread may finish before pthread_create returns */
	pthread_attr_t at;
	pthread_t t;
	int rc = pthread_attr_init(&at);
	if (rc == 0) {
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&t, &at, unpack_thread, u);
		pthread_attr_destroy(&at);
	}
	if (rc != 0) {
		refuse(u, 503, "busy", NULL, "the server could not start unpacking: %s", strerror(rc));
		MHD_resume_connection(r->c);
		atomic_fetch_sub(&r->api->unpacks_running, 1);
	}
	return MHD_YES;
}

enum MHD_Result datasets_upload_resumed(Req *r)
{
	struct DsUpload *u = r->upload;
	if (u->status == 201) return reply_created(r, &u->created, u->location);
	return reply_error(r, u->status, u->code, u->field[0] ? u->field : NULL, "%s", u->message);
}


/* ---- GET and DELETE ------------------------------------------------------------------------- */

static enum MHD_Result list(Req *r)
{
	static const char *const allowed[] = { "owner", NULL };
	if (check_query(r, allowed) < 0 || require_read(r) < 0) return MHD_YES;
	const char *owner = query(r, "owner");
	StoreDataset *v;
	int n;
	char err[512];
	int rc = store_dataset_list(r->api->cfg.store, owner && *owner ? owner : NULL, &v, &n, err, sizeof err);
	if (rc < 0) return ds_store_failure(r, rc, err);
	cJSON *ans = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(ans, "datasets");
	for (int i = 0; i < n; i++) {
		cJSON_AddItemToArray(a, dataset_json(&v[i], 0));
		store_dataset_clear(&v[i]);
	}
	free(v);
	return reply_json(r, 200, ans);
}

/* What the shared decode cache (STATE/cache/images: images-KEY, and audio-KEY for spectrograms;
 * engine/data/image_dataset.c) holds of the dataset: one entry per list and settings some job
 * decoded, read from the description beside each cache file. An unreadable entry is left out. */
static cJSON *cache_state(const char *state_dir, const char *dataset_path)
{
	cJSON *a = cJSON_CreateArray();
	char dir[PATH_MAX], real_ds[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/cache/images", state_dir);
	DIR *dp = opendir(dir);
	if (!dp || !realpath(dataset_path, real_ds)) {
		if (dp) closedir(dp);
		return a;
	}
	size_t dl = strlen(real_ds);
	struct dirent *e;
	while ((e = readdir(dp))) {
		size_t n = strlen(e->d_name);
		int audio = strncmp(e->d_name, "audio-", 6) == 0;
		if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0 || (strncmp(e->d_name, "images-", 7) != 0 && !audio)) continue;
		char path[PATH_MAX + 300], text[8192];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) continue;
		ssize_t k = read(fd, text, sizeof text - 1);
		close(fd);
		if (k <= 0) continue;
		text[k] = 0;
		cJSON *c = cJSON_Parse(text);
		const cJSON *root = cJSON_GetObjectItemCaseSensitive(c, "root");
		char real_root[PATH_MAX];
		if (cJSON_IsString(root) && realpath(root->valuestring, real_root) &&
		    strncmp(real_root, real_ds, dl) == 0 && (real_root[dl] == 0 || real_root[dl] == '/')) {
			cJSON_DeleteItemFromObjectCaseSensitive(c, "root");   /* a server path; the list says which */
			static const char *const image_only[] = { "image_size", "channels", "resize", "min_class_images" };
			for (size_t i = 0; audio && i < sizeof image_only / sizeof *image_only; i++)   /* not a spectrogram's settings */
				cJSON_DeleteItemFromObjectCaseSensitive(c, image_only[i]);
			cJSON_AddItemToArray(a, c);
		} else {
			cJSON_Delete(c);
		}
	}
	closedir(dp);
	return a;
}

static enum MHD_Result show(Req *r, const char *owner, const char *name)
{
	if (check_query(r, NULL) < 0 || require_read(r) < 0) return MHD_YES;
	StoreDataset d;
	char err[512];
	int rc = store_dataset_get(r->api->cfg.store, owner, name, &d, err, sizeof err);
	if (rc < 0) return ds_store_failure(r, rc, err);
	cJSON *o = dataset_json(&d, 1);
	cJSON_AddItemToObject(o, "decode_cache", cache_state(r->api->state_dir, d.path));
	store_dataset_clear(&d);
	return reply_json(r, 200, o);
}

static enum MHD_Result grid(Req *r, const char *owner, const char *name)
{
	if (check_query(r, NULL) < 0 || require_read(r) < 0) return MHD_YES;
	StoreDataset d;
	char err[512];
	int rc = store_dataset_get(r->api->cfg.store, owner, name, &d, err, sizeof err);
	store_dataset_clear(&d);
	if (rc < 0) return ds_store_failure(r, rc, err);
	char root[PATH_MAX], path[PATH_MAX + 160];
	root_dir(r->api, root, sizeof root);
	snprintf(path, sizeof path, "%s/%s/.%s.png", root, owner, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0) close(fd);
		return reply_error(r, 404, "not_found", NULL, "dataset %s/%s has no sample grid (it is not an image folder, or no image decoded)",
		                   owner, name);
	}
	return reply_fd(r, fd, (uint64_t)st.st_size, "image/png", NULL);
}

static enum MHD_Result delete(Req *r, const char *owner, const char *name)
{
	if (check_query(r, NULL) < 0 || require_auth(r) < 0) return MHD_YES;
	if (r->auth_on && !r->admin && strcmp(owner, r->owner) != 0)
		return reply_error(r, 403, "forbidden", NULL, "dataset %s/%s belongs to %s; only its owner or an admin may delete it", owner,
		                   name, owner);
	StoreDataset d;
	char err[512];
	int rc = store_dataset_get(r->api->cfg.store, owner, name, &d, err, sizeof err);
	if (rc < 0) return ds_store_failure(r, rc, err);
	int64_t job;
	rc = store_dataset_user(r->api->cfg.store, d.path, &job, err, sizeof err);
	if (rc == 0 && job > 0) {
		store_dataset_clear(&d);
		return reply_error(r, 409, "dataset_in_use", NULL, "dataset %s/%s is used by job %lld, which is queued or running; cancel it or wait",
		                   owner, name, (long long)job);
	}
	if (rc < 0) {
		store_dataset_clear(&d);
		return ds_store_failure(r, rc, err);
	}
	/* Files out of sight first (one rename), then the row, then the files: a crash on the way
	 * leaves a row without its directory, which datasets_recover removes. */
	char root[PATH_MAX], gone[PATH_MAX + 32], tmp[PATH_MAX + 8];
	root_dir(r->api, root, sizeof root);
	snprintf(tmp, sizeof tmp, "%s/.tmp", root);
	snprintf(gone, sizeof gone, "%s/del.XXXXXX", tmp);
	int moved = make_dir(tmp) == 0 && mkdtemp(gone) && rename(d.path, strcat(gone, "/d")) == 0;
	if ((rc = store_dataset_delete(r->api->cfg.store, owner, name, err, sizeof err)) < 0) {
		if (moved) rename(gone, d.path);   /* put it back: the dataset stays whole */
		store_dataset_clear(&d);
		return ds_store_failure(r, rc, err);
	}
	if (moved) *strrchr(gone, '/') = 0;
	unpack_remove_tree(moved ? gone : d.path);
	char grid[PATH_MAX + 160];
	snprintf(grid, sizeof grid, "%s/%s/.%s.png", root, owner, name);
	unlink(grid);
	slog(LOG_INFO, 0, "dataset %s/%s deleted by %s", owner, name, r->owner);
	store_dataset_clear(&d);
	cJSON *ans = cJSON_CreateObject();
	cJSON_AddStringToObject(ans, "owner", owner);
	cJSON_AddStringToObject(ans, "name", name);
	cJSON_AddBoolToObject(ans, "deleted", 1);
	return reply_json(r, 200, ans);
}

enum MHD_Result datasets_route(Req *r, const char *path)
{
	int get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	if (strcmp(path, "/datasets") == 0 || strcmp(path, "/datasets/") == 0) {
		if (get) return list(r);
		if (strcmp(r->method, "POST") == 0) {
			if (!r->upload) return reply_error(r, 503, "unavailable", NULL, "this server has no state directory to keep datasets in");
			return upload(r);
		}
		return reply_error(r, 405, "method_not_allowed", NULL, "%s %s: only GET, POST are allowed", r->method, r->url);
	}
	char owner[64], name[64];
	const char *p = path + strlen("/datasets/");
	const char *slash = strchr(p, '/');
	const char *rest = slash ? strchr(slash + 1, '/') : NULL;
	size_t nl = slash ? (rest ? (size_t)(rest - slash - 1) : strlen(slash + 1)) : 0;
	if (!slash || (size_t)(slash - p) >= sizeof owner || nl >= sizeof name || nl == 0 || (rest && strcmp(rest, "/grid.png") != 0))
		return reply_error(r, 404, "not_found", NULL, "%.200s: no such resource (datasets are /v1/datasets/OWNER/NAME)", r->url);
	memcpy(owner, p, (size_t)(slash - p));
	owner[slash - p] = 0;
	memcpy(name, slash + 1, nl);
	name[nl] = 0;
	if (!valid_name(name) || owner[0] == '.' || !owner[0])   /* owner is a path component too */
		return reply_error(r, 404, "not_found", NULL, "no dataset %.64s/%.64s", owner, name);
	if (rest) return get ? grid(r, owner, name) : reply_error(r, 405, "method_not_allowed", NULL, "%s %s: only GET is allowed", r->method, r->url);
	if (get) return show(r, owner, name);
	if (strcmp(r->method, "DELETE") == 0) return delete(r, owner, name);
	return reply_error(r, 405, "method_not_allowed", NULL, "%s %s: only GET, DELETE are allowed", r->method, r->url);
}

/* ---- start-up ------------------------------------------------------------------------------- */

int datasets_recover(const char *shared_dir, Store *st, char *err, size_t errlen)
{
	char root[PATH_MAX], tmp[PATH_MAX + 8], orphans[PATH_MAX + 16];
	snprintf(root, sizeof root, "%s/" API_UPLOADS_DIR, shared_dir);
	snprintf(tmp, sizeof tmp, "%s/.tmp", root);
	snprintf(orphans, sizeof orphans, "%s/.orphans", root);
	if (make_dir(root) < 0) {
		snprintf(err, errlen, "%s: %s", root, strerror(errno));
		return -1;
	}
	unpack_remove_tree(tmp);   /* uploads and deletions a stop interrupted */
	/* Rows whose directory never arrived (a crash between the row and the rename). */
	StoreDataset *v;
	int n;
	if (store_dataset_list(st, NULL, &v, &n, err, errlen) < 0) return -1;
	for (int i = 0; i < n; i++) {
		struct stat sb;
		char e2[256];
		if (stat(v[i].path, &sb) < 0 && errno == ENOENT) {
			slog(LOG_WARNING, 0, "datasets: %s/%s has no files (%s); removing its row", v[i].owner, v[i].name, v[i].path);
			store_dataset_delete(st, v[i].owner, v[i].name, e2, sizeof e2);
		}
		store_dataset_clear(&v[i]);
	}
	free(v);
	/* Directories without a row come from another database (one lost or restored from a backup):
	 * moved aside to .orphans, never deleted. Grids without a row are derived: removed. */
	DIR *d = opendir(root);
	if (!d) {
		snprintf(err, errlen, "%s: %s", root, strerror(errno));
		return -1;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.') continue;
		char odir[PATH_MAX + 300];
		snprintf(odir, sizeof odir, "%s/%s", root, e->d_name);
		DIR *od = opendir(odir);
		if (!od) continue;
		struct dirent *f;
		while ((f = readdir(od))) {
			char name[256];
			size_t fl = strlen(f->d_name);
			int is_grid = f->d_name[0] == '.' && fl > 5 && strcmp(f->d_name + fl - 4, ".png") == 0;   /* .NAME.png */
			if (is_grid) snprintf(name, sizeof name, "%.*s", (int)(fl - 5), f->d_name + 1);
			else if (f->d_name[0] == '.') continue;
			else snprintf(name, sizeof name, "%s", f->d_name);
			StoreDataset row;
			char e2[256];
			int rc = store_dataset_get(st, e->d_name, name, &row, e2, sizeof e2);
			store_dataset_clear(&row);
			if (rc != STORE_ENOTFOUND) continue;
			char path[PATH_MAX * 2], aside[PATH_MAX * 2];
			snprintf(path, sizeof path, "%s/%s", odir, f->d_name);
			if (is_grid) {
				unlink(path);
				continue;
			}
			snprintf(aside, sizeof aside, "%s/%s.%s.%.0f", orphans, e->d_name, f->d_name, store_now());
			if (make_dir(orphans) == 0 && rename(path, aside) == 0)
				slog(LOG_WARNING, 0, "datasets: %s has no row in the database; moved aside to %s", path, aside);
			else
				slog(LOG_WARNING, 0, "datasets: %s has no row in the database and cannot be moved aside: %s", path, strerror(errno));
		}
		closedir(od);
	}
	closedir(d);
	return 0;
}
