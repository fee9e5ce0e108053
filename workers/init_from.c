/* init_from.c - the encoder-architecture check of an init_from job against its source, and where
 * a source job's weights are (see init_from.h).
 *
 * Deliberately not here: the queue side of the rule (storage/store.c), HTTP answers (api/), and
 * the run (runner.c). The checks read only a safetensors file's header, never its data: they run
 * on an HTTP thread. The load (init_from_load) picks ssld's or torchvision's names by the same
 * header and leaves the tensor-by-tensor check to engine/checkpoint.h or export_torchvision.h.
 */
#include "init_from.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../engine/checkpoint.h"
#include "../engine/export_torchvision.h"
#include "../engine/resnet.h"
#include "pool.h"
#include "spec_estimate.h"

#define HEADER_MAX (64u << 20)   /* a safetensors header larger than this is not one of ours */
#define CONFIG_MAX (64u << 10)

/* ---- comparing two model sections ----------------------------------------------------------- */

/* A key of the model section that does not change the weights (a transfer job may set its own). */
static int weight_free(const char *key)
{
	return strcmp(key, "dropout") == 0;
}

/* "[32,64]" (cut at cap). */
static void print_value(const cJSON *v, char *out, size_t cap)
{
	char *t = cJSON_PrintUnformatted(v);
	snprintf(out, cap, "%s", t ? t : "?");
	free(t);
}

/* 1 with field/msg when the new job's key k differs from the source's model section `have`. */
static int key_differs(const cJSON *k, const cJSON *have, const char *source, char *field, size_t flen, char *msg,
                       size_t mlen)
{
	if (!k->string || weight_free(k->string)) return 0;
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(have, k->string);
	cJSON *one = NULL;
	/* Encoder configs written into files leave pool_grid out when it is 1. */
	if (!h && strcmp(k->string, "pool_grid") == 0) h = one = cJSON_CreateNumber(1);
	int differs = h && !cJSON_Compare(k, h, 1);
	if (differs) {
		char a[128], b[128];
		print_value(k, a, sizeof a);
		print_value(h, b, sizeof b);
		snprintf(field, flen, "model.%s", k->string);
		snprintf(msg, mlen, "model.%s: %s differs from %s %s; a job that starts from another's encoder "
		         "(init_from) must build the same encoder", k->string, a, source, b);
	}
	cJSON_Delete(one);
	return differs;
}

/* want: the new job's "model" object; have: the source's (keys as in a resolved spec). 1 with
 * field/msg at the first key that differs - the encoder kind first, the rest follows from it. */
static int compare_models(const cJSON *want, const cJSON *have, const char *source, char *field, size_t flen,
                          char *msg, size_t mlen)
{
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(want, "encoder");
	if (kind && key_differs(kind, have, source, field, flen, msg, mlen)) return 1;
	for (const cJSON *k = want->child; k; k = k->next)
		if (k != kind && key_differs(k, have, source, field, flen, msg, mlen)) return 1;
	return 0;
}

/* The "model" object of a spec's JSON (owned by *root), or NULL. */
static const cJSON *model_of(const char *spec, cJSON **root)
{
	*root = spec ? cJSON_Parse(spec) : NULL;
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(*root, "model");
	return cJSON_IsObject(m) ? m : NULL;
}

int init_from_check_job(const char *spec, int64_t src_id, const char *src_spec, char *field, size_t flen,
                        char *msg, size_t mlen)
{
	cJSON *mine, *theirs;
	const cJSON *want = model_of(spec, &mine), *have = model_of(src_spec, &theirs);
	int rc = -EINVAL;
	if (want) {
		char source[48];
		snprintf(source, sizeof source, "job %lld's", (long long)src_id);
		rc = have ? compare_models(want, have, source, field, flen, msg, mlen) : 0;
	}
	cJSON_Delete(mine);
	cJSON_Delete(theirs);
	return rc;
}

/* ---- files ---------------------------------------------------------------------------------- */

static int read_exact(int fd, void *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t k = read(fd, (char *)buf + got, n - got);
		if (k <= 0) {
			if (k < 0 && errno == EINTR) continue;
			return -1;
		}
		got += (size_t)k;
	}
	return 0;
}

/* The JSON header of a safetensors file (malloc'd, NUL-terminated), or NULL. */
static char *safetensors_header(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return NULL;
	unsigned char len8[8];
	char *h = NULL;
	if (read_exact(fd, len8, 8) == 0) {
		uint64_t n = 0;
		for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
		if (n > 0 && n <= HEADER_MAX && (h = malloc((size_t)n + 1))) {
			if (read_exact(fd, h, (size_t)n) == 0) {
				h[n] = 0;
			} else {
				free(h);
				h = NULL;
			}
		}
	}
	close(fd);
	return h;
}

/* config.json in the directory of path (as written beside encoder.safetensors), or NULL. */
static char *config_beside(const char *path)
{
	char p[4200];
	const char *slash = strrchr(path, '/');
	snprintf(p, sizeof p, "%.*sconfig.json", slash ? (int)(slash - path + 1) : 0, path);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) return NULL;
	struct stat st;
	char *t = NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size <= CONFIG_MAX &&
	    (t = malloc((size_t)st.st_size + 1))) {
		if (read_exact(fd, t, (size_t)st.st_size) == 0) {
			t[st.st_size] = 0;
		} else {
			free(t);
			t = NULL;
		}
	}
	close(fd);
	return t;
}

/* ---- torchvision state dicts ---------------------------------------------------------------- */

/* A header whose tensors carry torchvision's ResNet names: conv1.weight and nothing under
 * "encoder." (ssld's own files and checkpoints have every encoder tensor there). */
static int header_is_torchvision(const cJSON *h)
{
	if (!cJSON_GetObjectItemCaseSensitive(h, "conv1.weight")) return 0;
	for (const cJSON *t = h->child; t; t = t->next)
		if (t->string && strncmp(t->string, "encoder.", 8) == 0) return 0;
	return 1;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* "(16,3,3,3)" from a header's shape array or from ints. */
static void shape_text(const cJSON *a, const int *v, int n, char *out, size_t cap)
{
	size_t o = (size_t)snprintf(out, cap, "(");
	if (a) {
		const cJSON *x;
		int i = 0;
		cJSON_ArrayForEach(x, a) if (o < cap) o += (size_t)snprintf(out + o, cap - o, i++ ? ",%g" : "%g", x->valuedouble);
	} else {
		for (int i = 0; i < n && o < cap; i++) o += (size_t)snprintf(out + o, cap - o, i ? ",%d" : "%d", v[i]);
	}
	if (o < cap) snprintf(out + o, cap - o, ")");
}

typedef struct TvCheck {
	cJSON *h;            /* the header; each matched tensor is taken out of it */
	const char *path, *model;
	char *msg;
	size_t mlen;
} TvCheck;

static int tv_check_one(void *user, const char *name, int ndim, const int *shape)
{
	TvCheck *c = user;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(c->h, name);
	const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype");
	const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
	if (!t) {
		snprintf(c->msg, c->mlen, "init_from: %s has no tensor \"%s\", which %s has (a torchvision "
		         "ResNet of another depth?)", c->path, name, c->model);
		return 1;
	}
	int same = cJSON_IsArray(sh) && cJSON_GetArraySize(sh) == ndim;
	for (int d = 0; same && d < ndim; d++) same = cJSON_GetArrayItem(sh, d)->valuedouble == shape[d];
	if (!same) {
		char a[64], b[64];
		shape_text(cJSON_IsArray(sh) ? sh : NULL, NULL, 0, a, sizeof a);
		shape_text(NULL, shape, ndim, b, sizeof b);
		snprintf(c->msg, c->mlen, "init_from: %s: \"%s\" has shape %s, %s needs %s (another width, "
		         "stem or number of input channels?)", c->path, name, a, c->model, b);
		return 1;
	}
	if (!cJSON_IsString(dtype) || strcmp(dtype->valuestring, "F32") != 0) {
		snprintf(c->msg, c->mlen, "init_from: %s: \"%s\" is %s, not float32 (F32)", c->path, name,
		         cJSON_IsString(dtype) ? dtype->valuestring : "of no dtype");
		return 1;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(c->h, name);
	return 0;
}

/* 1 with msg when header h (a torchvision state dict) does not fit js's encoder. */
static int check_torchvision(const JobSpec *js, cJSON *h, const char *path, char *msg, size_t mlen)
{
	/* The resnet encoders are named by their depth ("resnet50"), which picks the block layout. */
	const char *kind = encoder_kind_name(js->encoder.kind);
	ResnetConfig rc;
	if (strncmp(kind, "resnet", 6) != 0 || resnet_config_preset(&rc, atoi(kind + 6)) < 0) {
		snprintf(msg, mlen, "init_from: %s holds a torchvision ResNet state dict, but model.encoder is "
		         "%s (only a resnet encoder can start from it)", path, kind);
		return 1;
	}
	rc.stem = (ResnetStem)js->encoder.stem;
	rc.width = js->encoder.width;
	/* The input channels: the dataset's when its header says, else the file's own (run time
	 * checks them against the data). */
	int in_c, in_h, in_w;
	if (!jobspec_sample_shape(js, &in_c, &in_h, &in_w)) {
		const cJSON *sh = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "conv1.weight"), "shape");
		in_c = cJSON_GetArraySize(sh) == 4 ? cJSON_GetArrayItem(sh, 1)->valueint : 3;
	}
	char model[160];
	snprintf(model, sizeof model, "model %s (stem %s, width %g, %d input channel%s)", kind,
	         resnet_stem_name(rc.stem), (double)rc.width, in_c, in_c == 1 ? "" : "s");
	TvCheck c = { h, path, model, msg, mlen };
	if (tv_resnet_each_param(&rc, in_c, tv_check_one, &c) != 0) return 1;
	/* What is left must be what the load ignores: fc.*, num_batches_tracked, other dtypes. */
	for (const cJSON *t = h->child; t; t = t->next) {
		const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype");
		if (!t->string || strcmp(t->string, "__metadata__") == 0 || strncmp(t->string, "fc.", 3) == 0 ||
		    ends_with(t->string, ".num_batches_tracked") || !cJSON_IsString(dtype) ||
		    strcmp(dtype->valuestring, "F32") != 0)
			continue;
		snprintf(msg, mlen, "init_from: %s: tensor \"%s\" has no place in %s (a deeper ResNet, or "
		         "not a torchvision ResNet state dict)", path, t->string, model);
		return 1;
	}
	return 0;
}

int init_from_load(const char *path, ParamSet *ps, char **encoder_config, char *err, size_t errlen)
{
	if (encoder_config) *encoder_config = NULL;
	char *header = safetensors_header(path);
	cJSON *h = header ? cJSON_Parse(header) : NULL;
	free(header);
	int tv = cJSON_IsObject(h) && header_is_torchvision(h);
	cJSON_Delete(h);
	if (tv) {
		int n = tv_resnet_load(path, ps, "encoder", err, errlen);
		return n < 0 ? n : 1;
	}
	CheckpointState st;
	int rc = checkpoint_load(path, ps, NULL, &st, "encoder.", err, errlen);
	if (rc < 0) return rc;
	if (encoder_config && st.encoder_config_json && !(*encoder_config = strdup(st.encoder_config_json))) {
		checkpoint_state_free(&st);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	checkpoint_state_free(&st);
	return 0;
}

/* ---- the check of a file -------------------------------------------------------------------- */

int init_from_check_file(const JobSpec *js, const char *spec, const char *path, char *field, size_t flen,
                         char *msg, size_t mlen)
{
	cJSON *mine;
	const cJSON *want = model_of(spec, &mine);
	if (!want) {
		cJSON_Delete(mine);
		return -EINVAL;
	}
	char *header = safetensors_header(path);
	cJSON *h = header ? cJSON_Parse(header) : NULL;
	free(header);
	int rc = 0;
	if (!cJSON_IsObject(h)) {
		snprintf(field, flen, "init_from");
		snprintf(msg, mlen, "init_from: %s is not a safetensors file (no readable JSON header)", path);
		rc = 1;
		goto out;
	}
	if (header_is_torchvision(h)) {
		rc = check_torchvision(js, h, path, msg, mlen);
		if (rc) snprintf(field, flen, "init_from");
		goto out;
	}
	const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "__metadata__"),
	                                                     "ssld.encoder_config");
	char *text = cJSON_IsString(cfg) ? strdup(cfg->valuestring) : config_beside(path);
	cJSON *have = text ? cJSON_Parse(text) : NULL;
	free(text);
	if (cJSON_IsObject(have)) {
		/* An encoder config names the encoder "kind"; a spec's model section "encoder". */
		cJSON *kind = cJSON_DetachItemFromObjectCaseSensitive(have, "kind");
		if (kind && !cJSON_GetObjectItemCaseSensitive(have, "encoder")) cJSON_AddItemToObject(have, "encoder", kind);
		else cJSON_Delete(kind);
		rc = compare_models(want, have, "the checkpoint's", field, flen, msg, mlen);
	}
	cJSON_Delete(have);
out:
	cJSON_Delete(h);
	cJSON_Delete(mine);
	return rc;
}

int init_from_job_weights(const char *shared_dir, int64_t job_id, char *path, size_t len)
{
	static const char *const names[] = { "checkpoint.safetensors", "encoder.safetensors" };
	char dir[4096];
	if (pool_job_dir(shared_dir, job_id, dir, sizeof dir) < 0) return -1;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (snprintf(path, len, "%s/%s", dir, names[i]) < (int)len && access(path, R_OK) == 0) return 0;
	return -1;
}
