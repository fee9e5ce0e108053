/* workdir.c - ownership and spec marks of a job's work directory (see workdir.h).
 *
 * Small on purpose: it reads and writes two one-line files and the checkpoint's metadata, and
 * moves a directory aside. It never deletes anything: state that is not the current run's is
 * renamed next to it, where a person can look at it or remove it.
 */
#include "workdir.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../engine/checkpoint.h"
#include "../storage/sha256.h"
#include "jobspec.h"

#define CHECKPOINT_NAME "checkpoint.safetensors"

/* Top-level spec keys that change how a run is scheduled or named, not what it computes. */
static const char *const unhashed_keys[] = { "name", "threads", "checkpoint_interval_s", "priority" };

void workdir_job_key(int64_t job_id, double created_at, char *out, size_t len)
{
	uint64_t bits;
	memcpy(&bits, &created_at, sizeof bits);
	snprintf(out, len, "%lld-%016llx", (long long)job_id, (unsigned long long)bits);
}

int workdir_spec_hash(const char *resolved_json, char out[65])
{
	cJSON *root = cJSON_Parse(resolved_json);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return -1;
	}
	for (size_t i = 0; i < sizeof unhashed_keys / sizeof unhashed_keys[0]; i++)
		cJSON_DeleteItemFromObjectCaseSensitive(root, unhashed_keys[i]);
	char *text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!text)
		return -1;
	sha256_hex(text, strlen(text), out);
	free(text);
	return 0;
}

/* ---- small files ---------------------------------------------------------------------------- */

/* The first line of dir/name (at most len - 1 bytes, no newline): 1, 0 if absent, < 0 on error. */
static int read_line(const char *dir, const char *name, char *out, size_t len, char *err,
                     size_t errlen)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!fgets(out, (int)len, f))
		out[0] = 0;
	fclose(f);
	out[strcspn(out, "\r\n")] = 0;
	return 1;
}

/* dir/name := text + "\n", through a temporary file, fsync and rename. */
static int write_line(const char *dir, const char *name, const char *text, char *err, size_t errlen)
{
	char path[4200], tmp[4300];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%s\n", text) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		if (f)
			fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int workdir_mark_spec(const char *dir, const char *spec_hash, char *err, size_t errlen)
{
	return write_line(dir, WORKDIR_SPEC_FILE, spec_hash, err, errlen);
}

/* The checkpoint's state: 1 with st filled (caller frees), 0 if there is none, < 0 on error. */
static int checkpoint_state(const char *dir, CheckpointState *st, char *err, size_t errlen)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, CHECKPOINT_NAME);
	if (access(path, F_OK) != 0)
		return 0;
	Checkpoint *ck;
	if (checkpoint_open(path, 0, &ck, err, errlen) < 0)
		return -1;
	int rc = checkpoint_get_state(ck, st, err, errlen);
	checkpoint_close(ck);
	return rc < 0 ? -1 : 1;
}

/* 1 if dir has entries other than ".", ".." and temporary files, 0 if empty or absent. */
static int has_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *e;
	int any = 0;
	while (!any && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		/* A temporary file is a write cut short (of these marks, say), not state. */
		int tmp = n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0;
		any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && !tmp;
	}
	closedir(d);
	return any;
}

/* ---- moving aside --------------------------------------------------------------------------- */

int workdir_move_aside(const char *dir, const char *suffix, char *moved_to, size_t len, char *err,
                       size_t errlen)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	for (int n = 1; n < 1000; n++) {
		int w = n == 1 ? snprintf(moved_to, len, "%s%s-%s", dir, suffix, stamp)
		               : snprintf(moved_to, len, "%s%s-%s-%d", dir, suffix, stamp, n);
		if (w < 0 || (size_t)w >= len) {
			snprintf(err, errlen, "%s: path too long to move aside", dir);
			return -1;
		}
		struct stat sb;
		if (lstat(moved_to, &sb) == 0)
			continue;
		if (rename(dir, moved_to) != 0) {
			snprintf(err, errlen, "cannot move %s aside to %s: %s", dir, moved_to, strerror(errno));
			return -1;
		}
		if (mkdir(dir, 0750) != 0) {
			snprintf(err, errlen, "%s: moved aside to %s, but cannot recreate it: %s", dir, moved_to,
			         strerror(errno));
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, "%s: too many directories already moved aside today", dir);
	return -1;
}

int workdir_claim(const char *dir, const char *key, char *moved_to, size_t len, char *err,
                  size_t errlen)
{
	char owner[256] = "";
	moved_to[0] = 0;
	int marked = read_line(dir, WORKDIR_KEY_FILE, owner, sizeof owner, err, errlen);
	if (marked < 0)
		return -1;
	int foreign = 0;
	if (marked) {
		foreign = strcmp(owner, key) != 0;
	} else {
		foreign = has_entries(dir);   /* state that no key claims: not ours to adopt */
	}
	if (!foreign) {
		/* Marked ours: the checkpoint must be ours too (one copied in from elsewhere is not). */
		CheckpointState st;
		char cerr[512];
		int c = checkpoint_state(dir, &st, cerr, sizeof cerr);
		if (c > 0) {
			foreign = !st.job_key || strcmp(st.job_key, key) != 0;
			checkpoint_state_free(&st);
		}
		/* An unreadable checkpoint is the resume's business: it reports the damage by name. */
	}
	int moved = 0;
	if (foreign) {
		if (workdir_move_aside(dir, ".orphan", moved_to, len, err, errlen) < 0)
			return -1;
		moved = 1;
	}
	if (!marked || foreign) {
		if (write_line(dir, WORKDIR_KEY_FILE, key, err, errlen) < 0)
			return -1;
	}
	return moved;
}

/* ---- inspecting for `ssld run` --------------------------------------------------------------- */

/* Appends "path old -> new" for the first differences between two resolved specs. */
static void diff_json(const cJSON *a, const cJSON *b, const char *prefix, char *out, size_t len,
                      int *n)
{
	if (*n >= 3)
		return;
	if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
		const cJSON *x;
		cJSON_ArrayForEach(x, a)
		{
			char path[160];
			snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", x->string);
			const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
			diff_json(x, y, path, out, len, n);
		}
		cJSON_ArrayForEach(x, b)
		{
			if (!cJSON_GetObjectItemCaseSensitive(a, x->string)) {
				char path[160];
				snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", x->string);
				diff_json(NULL, x, path, out, len, n);
			}
		}
		return;
	}
	if (a && b && cJSON_Compare(a, b, 1))
		return;
	for (size_t i = 0; i < sizeof unhashed_keys / sizeof unhashed_keys[0]; i++)
		if (strcmp(prefix, unhashed_keys[i]) == 0)
			return;
	char *ta = a ? cJSON_PrintUnformatted(a) : NULL, *tb = b ? cJSON_PrintUnformatted(b) : NULL;
	size_t used = strlen(out);
	snprintf(out + used, len - used, "%s%s %.40s -> %.40s", *n ? ", " : "", prefix,
	         ta ? ta : "(absent)", tb ? tb : "(absent)");
	free(ta);
	free(tb);
	(*n)++;
}

/* Names what changed between dir/job.json (the spec the directory last ran) and resolved_json. */
static void describe_change(const char *dir, const char *resolved_json, char *out, size_t len)
{
	out[0] = 0;
	char path[4200];
	snprintf(path, sizeof path, "%s/job.json", dir);
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	char *text = malloc(1 << 20);
	size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (!text)
		return;
	text[n] = 0;
	JobSpecOptions opts = { .check_files = 0 };
	JobSpec *js;
	SpecError se;
	char *old = NULL;
	if (jobspec_parse(text, n, &opts, &js, &se) == 0) {
		old = jobspec_to_json(js);
		jobspec_free(js);
	}
	free(text);
	cJSON *a = old ? cJSON_Parse(old) : NULL, *b = cJSON_Parse(resolved_json);
	int k = 0;
	if (a && b)
		diff_json(a, b, "", out, len, &k);
	cJSON_Delete(a);
	cJSON_Delete(b);
	free(old);
}

int workdir_inspect(const char *dir, const char *resolved_json, WorkdirInfo *out, char *err,
                    size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->spec_match = -1;
	char want[65];
	if (workdir_spec_hash(resolved_json, want) < 0) {
		snprintf(err, errlen, "the resolved spec is not a JSON object");
		return -1;
	}
	char path[4200];
	snprintf(path, sizeof path, "%s/results.json", dir);
	out->finished = access(path, F_OK) == 0;

	char stored[128] = "";
	CheckpointState st;
	int c = checkpoint_state(dir, &st, err, errlen);
	if (c < 0)
		return -1;
	if (c > 0) {
		out->has_checkpoint = 1;
		out->step = st.step;
		if (st.spec_sha256)
			snprintf(stored, sizeof stored, "%s", st.spec_sha256);
		checkpoint_state_free(&st);
	}
	if (!stored[0] && read_line(dir, WORKDIR_SPEC_FILE, stored, sizeof stored, err, errlen) < 0)
		return -1;
	if (stored[0])
		out->spec_match = strcmp(stored, want) == 0;
	if (out->spec_match != 1)
		describe_change(dir, resolved_json, out->differs, sizeof out->differs);
	return 0;
}
