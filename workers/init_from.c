/* init_from.c - the encoder-architecture check of an init_from job against its source, and where
 * a source job's weights are (see init_from.h).
 *
 * Deliberately not here: the queue side of the rule (storage/store.c), HTTP answers (api/), and
 * loading the weights (runner.c, through engine/checkpoint.h, which checks every tensor again).
 * Only a safetensors file's header is read here, never its data: this runs on an HTTP thread.
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

#include "pool.h"

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

int init_from_check_file(const char *spec, const char *path, char *field, size_t flen, char *msg, size_t mlen)
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

int init_from_job_weights(const char *state_dir, int64_t job_id, char *path, size_t len)
{
	static const char *const names[] = { "checkpoint.safetensors", "encoder.safetensors" };
	char dir[4096];
	if (pool_job_dir(state_dir, job_id, dir, sizeof dir) < 0) return -1;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (snprintf(path, len, "%s/%s", dir, names[i]) < (int)len && access(path, R_OK) == 0) return 0;
	return -1;
}
