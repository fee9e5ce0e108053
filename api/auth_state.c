/* auth_state.c - the "authentication required" flag of a state directory (see auth_state.h).
 *
 * A small file rather than a database row so that `ssld token` and the daemon agree on it without
 * a schema change, and so that it outlives the token table's contents. Written atomically (temp
 * file, fsync, rename). Not here: checking tokens (server.c) or managing them (cli/token.c).
 */
#include "auth_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTH_STATE_FILE "auth-required"
#define TOKENS_FILE_KEY "tokens-file "

static int state_path(const char *state_dir, const char *suffix, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/" AUTH_STATE_FILE "%s", state_dir, suffix);
	return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

int auth_state_required(const char *state_dir)
{
	char path[4200];
	if (!state_dir || state_path(state_dir, "", path, sizeof path) < 0) return state_dir ? -ENAMETOOLONG : 0;
	struct stat st;
	if (stat(path, &st) == 0) return 1;
	return errno == ENOENT ? 0 : -errno;
}

int auth_state_set(const char *state_dir, const char *tokens_file, int rewrite, char *err, size_t errlen)
{
	char path[4200], tmp[4200];
	if (state_path(state_dir, "", path, sizeof path) < 0 || state_path(state_dir, ".tmp", tmp, sizeof tmp) < 0) {
		snprintf(err, errlen, "%s: path too long", state_dir);
		return -ENAMETOOLONG;
	}
	if (!rewrite && auth_state_required(state_dir) == 1) return 0;
	if (tokens_file && strchr(tokens_file, '\n')) tokens_file = NULL;   /* cannot be recorded on one line */
	FILE *f = fopen(tmp, "w");
	if (!f) goto fail;
	fprintf(f, "# ssld: every write to the API needs a bearer token, even when no token exists.\n"
	           "# Only `ssld token off` turns this off. Do not delete this file by hand.\n");
	if (tokens_file) fprintf(f, TOKENS_FILE_KEY "%s\n", tokens_file);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		int e = errno;
		fclose(f);
		unlink(tmp);
		errno = e;
		goto fail;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		goto fail;
	}
	return 0;
fail:;
	int e = errno;
	snprintf(err, errlen, "%s: %s", path, strerror(e));
	return -e;
}

int auth_state_clear(const char *state_dir, char *err, size_t errlen)
{
	char path[4200];
	if (state_path(state_dir, "", path, sizeof path) < 0) {
		snprintf(err, errlen, "%s: path too long", state_dir);
		return -ENAMETOOLONG;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

int auth_state_tokens_file(const char *state_dir, char *out, size_t cap)
{
	char path[4200], line[4200];
	if (state_path(state_dir, "", path, sizeof path) < 0) return 0;
	FILE *f = fopen(path, "r");
	if (!f) return 0;
	int found = 0;
	while (!found && fgets(line, sizeof line, f)) {
		if (strncmp(line, TOKENS_FILE_KEY, strlen(TOKENS_FILE_KEY)) != 0) continue;
		line[strcspn(line, "\n")] = 0;
		snprintf(out, cap, "%s", line + strlen(TOKENS_FILE_KEY));
		found = out[0] != 0;
	}
	fclose(f);
	return found;
}
