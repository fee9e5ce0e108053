/* token.c - `ssld token create NAME [--admin] | list | revoke NAME | off`: API tokens in the
 * daemon's database (STATE_DIR/ssld.db). Run it on the box where ssld runs, as root or the
 * service user:
 *
 *   sudo ssld token create alice            # prints ssld_... once
 *   sudo ssld token create ops --admin      # may cancel anyone's jobs
 *   sudo ssld token list
 *   sudo ssld token revoke alice            # takes effect at the next request, no restart
 *
 * A token is 32 random bytes (getrandom) written as "ssld_" + base64url; only its SHA-256 is
 * stored, so a leaked database does not leak tokens, and the token is printed exactly once. The
 * running daemon reads the token table on every authenticated request, so changes apply at once.
 * Deliberately not here: checking tokens (api/server.c) or talking to the daemon over HTTP - this
 * works on the database directly, like `sqlite3`, so it needs the rights of the service user.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../api/auth_state.h"
#include "../storage/sha256.h"
#include "../storage/store.h"
#include "../daemon/config.h"
#include "args.h"
#include "commands.h"
#include "suggest.h"

#ifndef SSLD_SYSCONFDIR
#define SSLD_SYSCONFDIR "/etc"
#endif

static int file_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* Where the database is: flags, then the environment and config file the service uses, then the
 * usual places if a database is already there. 0, or -1 with a message. */
/* The configuration's `database` when it names one (find_state_dir reads it), else "". */
static char cfg_database[1024];

static int find_state_dir(const char *flag_dir, const char *flag_config, char *out, size_t cap)
{
	if (flag_dir) {
		snprintf(out, cap, "%s", flag_dir);
		return 0;
	}
	char err[512];
	const char *cfg_path = flag_config;
	char def_cfg[1100];
	snprintf(def_cfg, sizeof def_cfg, "%s/ssld/ssld.conf", SSLD_SYSCONFDIR);
	if (!cfg_path && file_exists(def_cfg)) cfg_path = def_cfg;
	if (cfg_path) {
		SsldConfig *c = malloc(sizeof *c);
		if (!c) return -1;
		config_defaults(c);
		int rc = config_load_file(c, cfg_path, err, sizeof err);
		if (rc == 0 && c->state_dir[0]) snprintf(out, cap, "%s", c->state_dir);
		if (rc == 0) snprintf(cfg_database, sizeof cfg_database, "%s", c->database);
		free(c);
		if (rc < 0 && flag_config) {
			fprintf(stderr, "ssld token: %s\n", err);
			return -1;
		}
		if (rc == 0 && out[0]) return 0;
	}
	const char *env = getenv("STATE_DIRECTORY");
	if (env && *env) {
		snprintf(out, cap, "%.*s", (int)strcspn(env, ":"), env);
		return 0;
	}
	/* With the installed configuration present this is the service's box: its database comes
	 * before a development ./state in the current directory (e.g. a source checkout). */
	int installed = cfg_path == def_cfg;
	const char *guesses[] = { installed ? "/var/lib/ssld" : "./state", installed ? "./state" : "/var/lib/ssld" };
	for (size_t i = 0; i < sizeof guesses / sizeof guesses[0]; i++) {
		char db[1100];
		snprintf(db, sizeof db, "%s/ssld.db", guesses[i]);
		if (file_exists(db)) {
			snprintf(out, cap, "%s", guesses[i]);
			return 0;
		}
	}
	/* Installed but never started: tmpfiles.d made the service's directory; the database is
	 * created there (as its owner, see drop_to_owner) and the daemon finds the token on start. */
	struct stat st;
	if (stat("/var/lib/ssld", &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid != 0) {
		snprintf(out, cap, "/var/lib/ssld");
		return 0;
	}
	fprintf(stderr, "ssld token: no ssld database found in ./state or /var/lib/ssld; pass --state-dir DIR "
	                "(the daemon's state directory)\n");
	return -1;
}

/* As root, act as the owner of the state directory, so that files SQLite creates beside the
 * database (the WAL and shared-memory files) stay usable by the service user. */
static int drop_to_owner(const char *dir)
{
	struct stat st;
	if (geteuid() != 0 || stat(dir, &st) != 0 || st.st_uid == 0) return 0;
	if (setgroups(0, NULL) != 0 || setgid(st.st_gid) != 0 || setuid(st.st_uid) != 0) {
		fprintf(stderr, "ssld token: cannot switch to uid %u, the owner of %s: %s\n", (unsigned)st.st_uid, dir,
		        strerror(errno));
		return -1;
	}
	return 0;
}

static int valid_name(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len >= STORE_TOKEN_NAME_MAX || strcmp(n, "anonymous") == 0) return 0;
	return strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-") == len;
}

/* "ssld_" + base64url(32 random bytes), no padding: 48 characters. */
static int new_token(char out[64])
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char r[33];
	size_t got = 0;
	while (got < 32) {
		ssize_t n = getrandom(r + got, 32 - got, 0);
		if (n < 0) {
			if (errno == EINTR) continue;
			return -errno;
		}
		got += (size_t)n;
	}
	r[32] = 0;
	int k = snprintf(out, 64, "ssld_");
	for (int i = 0; i < 33; i += 3) {   /* 11 groups of 3 bytes -> 44 characters; keep 43 */
		unsigned v = (unsigned)r[i] << 16 | (unsigned)r[i + 1] << 8 | r[i + 2];
		for (int j = 3; j >= 0; j--) out[k + 3 - j] = b64[(v >> (6 * j)) & 63];
		k += 4;
	}
	out[5 + 43] = 0;
	memset(r, 0, sizeof r);
	return 0;
}

int cli_token_main(int argc, char **argv)
{
	enum { O_ADMIN, O_STATE_DIR, O_CONFIG };
	CliOpt opts[] = { { "--admin", NULL, NULL, 0 }, { "--state-dir", "DIR", NULL, 0 }, { "--config", "FILE", NULL, 0 } };
	const char *pos[2];
	int npos, prc = cli_args_parse(argv[0], argc, argv, opts, 3, pos, 2, &npos);
	if (prc != CLI_ARGS_OK) return prc == CLI_ARGS_HELP ? 0 : 2;
	const char *sub = npos > 0 ? pos[0] : NULL, *name = npos > 1 ? pos[1] : NULL;
	const char *flag_dir = opts[O_STATE_DIR].value, *flag_config = opts[O_CONFIG].value;
	int admin = opts[O_ADMIN].given > 0;
	int is_create = sub && strcmp(sub, "create") == 0, is_list = sub && strcmp(sub, "list") == 0,
	    is_revoke = sub && strcmp(sub, "revoke") == 0, is_off = sub && strcmp(sub, "off") == 0;
	if (!is_create && !is_list && !is_revoke && !is_off) {
		static const char *const subs[] = { "create", "list", "revoke", "off" };
		const char *near = sub ? cli_suggest(sub, subs, sizeof subs[0], 4) : NULL;
		if (sub) fprintf(stderr, "ssld token: unknown command '%s'%s%s%s\n", sub, near ? "; did you mean '" : "",
		                 near ? near : "", near ? "'?" : "");
		else fprintf(stderr, "ssld token: needs a command: create, list, revoke or off\n");
		cli_command_usage("token", stderr);
		return 2;
	}
	if ((is_create || is_revoke) != (name != NULL)) {
		fprintf(stderr, "ssld token %s: %s\n", sub, name ? "takes no NAME" : "needs a NAME");
		return 2;
	}
	if (admin && !is_create) {
		fprintf(stderr, "ssld token %s: --admin only goes with create\n", sub);
		return 2;
	}
	if (is_create && !valid_name(name)) {
		fprintf(stderr, "ssld token create: name '%s': use 1-%d of A-Z a-z 0-9 . _ @ - (and not 'anonymous')\n", name,
		        STORE_TOKEN_NAME_MAX - 1);
		return 2;
	}
	char dir[1024] = "";
	if (find_state_dir(flag_dir, flag_config, dir, sizeof dir) < 0 || drop_to_owner(dir) < 0) return 1;
	struct stat st;
	if (stat(dir, &st) != 0) {
		fprintf(stderr, "ssld token: state directory %s: %s\n", dir, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "ssld token: state directory %s is not a directory\n", dir);
		return 1;
	}
	char path[1100], err[512];
	if (cfg_database[0]) snprintf(path, sizeof path, "%s", cfg_database);
	else snprintf(path, sizeof path, "%s/ssld.db", dir);
	Store *s = NULL;
	if (store_open(path, &s, err, sizeof err) < 0) {
		fprintf(stderr, "ssld token: %s\n", err);
		return 1;
	}
	int status = 1;
	if (is_create) {
		char token[64], hex[65];
		int rc = new_token(token);
		if (rc < 0) {
			fprintf(stderr, "ssld token create: no random bytes: %s\n", strerror(-rc));
			goto out;
		}
		sha256_hex(token, strlen(token), hex);
		/* Required first: a token that exists while the API still counts as open never happens. */
		if (auth_state_set(dir, NULL, 0, err, sizeof err) < 0 || store_token_add(s, name, hex, admin, err, sizeof err) < 0) {
			fprintf(stderr, "ssld token create: %s\n", err);
			goto out;
		}
		printf("%s\n", token);
		fflush(stdout);
		memset(token, 0, sizeof token);
		fprintf(stderr, "created %stoken '%s' in %s. It is shown only this once: keep it in a password manager or in\n"
		                "~/.config/ssld/client.conf (\"token = ...\", mode 600). Jobs submitted with it belong to '%s'.\n",
		        admin ? "admin " : "", name, path, name);
		status = 0;
	} else if (is_revoke) {
		/* A database from before authentication was recorded: tokens exist, so it is required. */
		if (auth_state_set(dir, NULL, 0, err, sizeof err) < 0) {
			fprintf(stderr, "ssld token revoke: %s\n", err);
			goto out;
		}
		int rc = store_token_revoke(s, name, err, sizeof err);
		if (rc < 0) {
			fprintf(stderr, "ssld token revoke: %s\n", err);
			goto out;
		}
		printf("revoked token '%s'\n", name);
		int64_t left = 0;
		if (store_token_count(s, &left, err, sizeof err) == 0 && left == 0)
			fprintf(stderr, "warning: '%s' was the last token in %s. Authentication stays on: every write to the API is\n"
			                "refused until a token exists (`ssld token create NAME --admin`), or until `ssld token off`\n"
			                "opens the API to anyone who can connect.\n", name, path);
		status = 0;
	} else if (is_off) {
		int64_t left = 0;
		if (store_token_count(s, &left, err, sizeof err) < 0) {
			fprintf(stderr, "ssld token off: %s\n", err);
			goto out;
		}
		if (left > 0) {
			fprintf(stderr, "ssld token off: %lld token(s) remain in %s; revoke them first (`ssld token list`)\n",
			        (long long)left, path);
			goto out;
		}
		char file[1024];
		int has_file = auth_state_tokens_file(dir, file, sizeof file);
		if (auth_state_clear(dir, err, sizeof err) < 0) {
			fprintf(stderr, "ssld token off: %s\n", err);
			goto out;
		}
		if (has_file)
			printf("authentication is off for %s, except that the daemon was started with --tokens-file %s,\n"
			       "which keeps it on while it runs (and turns it on again at its next start)\n", dir, file);
		else
			printf("authentication is off: anyone who can connect may submit and cancel jobs (%s)\n", dir);
		status = 0;
	} else {
		StoreToken *t;
		int n;
		if (store_token_list(s, &t, &n, err, sizeof err) < 0) {
			fprintf(stderr, "ssld token list: %s\n", err);
			goto out;
		}
		char file[1024];
		int has_file = auth_state_tokens_file(dir, file, sizeof file);
		int required = auth_state_required(dir) != 0;
		if (n == 0 && has_file)
			printf("no tokens in %s; the tokens file %s is in force (the daemon runs with --tokens-file):\n"
			       "writes need a token from that file\n", path, file);
		else if (n == 0 && required)
			printf("no tokens in %s, and authentication stays on: every write to the API is refused until a token\n"
			       "exists (`ssld token create NAME --admin`), or until `ssld token off` opens the API\n", path);
		else if (n == 0)
			printf("no tokens in %s: the API is open (anyone who can connect may submit and cancel)\n", path);
		else printf("%-32s %-6s %s\n", "NAME", "ROLE", "CREATED (UTC)");
		if (n > 0 && has_file) fprintf(stderr, "the tokens file %s (the daemon's --tokens-file) is in force too\n", file);
		for (int i = 0; i < n; i++) {
			char when[32];
			time_t secs = (time_t)t[i].created_at;
			struct tm tm;
			gmtime_r(&secs, &tm);
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
			printf("%-32s %-6s %s\n", t[i].name, t[i].admin ? "admin" : "user", when);
		}
		free(t);
		status = 0;
	}
out:
	store_free(s);
	return status;
}
