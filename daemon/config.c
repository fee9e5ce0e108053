/* config.c - configuration of `ssld serve` from a file and flags (see config.h).
 *
 * Not here: acting on the configuration (serve.c) or reloading it on SIGHUP beyond what serve.c
 * calls again. Every error names the key and, for files, the line.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../cli/suggest.h"
#include "../storage/log.h"

#ifndef SSLD_DATADIR
#define SSLD_DATADIR "/usr/local/share"
#endif
#ifndef SSLD_SOURCE_WEB_DIR
#define SSLD_SOURCE_WEB_DIR ""
#endif

/* MemTotal from /proc/meminfo in bytes, 0 when unknown. */
static uint64_t mem_total(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f) return 0;
	char line[128];
	unsigned long long kib = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1) break;
	fclose(f);
	return (uint64_t)kib * 1024;
}

static int ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

void config_defaults(SsldConfig *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->listen, sizeof c->listen, "127.0.0.1:8080");
	c->workers = -1;         /* resolved in config_finish */
	c->max_job_memory = UINT64_MAX;   /* resolved in config_finish */
	c->job_threads = -1;
	c->http_threads = 2;
	c->max_body = 1 << 20;
	c->log_level = LOG_INFO;
	c->flush_interval_s = 0.5;
	c->stop_timeout_s = 90;
	c->max_attempts = 3;
	c->lease_s = 30;
	c->max_connections = 256;
	c->max_connections_per_ip = 128;
	c->request_deadline_s = 30;
	c->max_upload_bytes = 1ull << 30;
	c->max_dataset_bytes = 4ull << 30;
	c->max_dataset_files = 50000;
	c->max_datasets_per_owner = 50;
	c->dataset_quota_bytes = 20ull << 30;
	c->generate_threads = 1;
	c->generate_queue = 4;
	c->generate_max_seconds = 60;
	c->generate_max_tokens = 4096;
}

static int set_str(char *dst, size_t cap, const char *key, const char *v, char *err, size_t errlen)
{
	if (!*v || strlen(v) >= cap) {
		snprintf(err, errlen, "%s: %s", key, *v ? "value too long" : "needs a value");
		return -1;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int set_int(int *dst, const char *key, const char *v, long min, long max, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (!*v || *end || errno || n < min || n > max) {
		snprintf(err, errlen, "%s: expected an integer in %ld..%ld, got '%s'", key, min, max, v);
		return -1;
	}
	*dst = (int)n;
	return 0;
}

static int set_double(double *dst, const char *key, const char *v, double min, double max, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (!*v || *end || errno || !isfinite(d) || d < min || d > max) {
		snprintf(err, errlen, "%s: expected a number in %g..%g, got '%s'", key, min, max, v);
		return -1;
	}
	*dst = d;
	return 0;
}

/* "1048576", "64k", "1M" -> bytes. */
static int set_size(size_t *dst, const char *key, const char *v, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	unsigned long long mul = 1;
	if (*end == 'k' || *end == 'K') mul = 1024, end++;
	else if (*end == 'm' || *end == 'M') mul = 1024 * 1024, end++;
	if (!*v || *v == '-' || *end || errno || n == 0 || n > (1ull << 30) / mul) {
		snprintf(err, errlen, "%s: expected a size in bytes (1..1G, suffix k or M allowed), got '%s'", key, v);
		return -1;
	}
	*dst = (size_t)(n * mul);
	return 0;
}

/* A memory size: bytes with an optional k, M, G or T suffix (powers of 1024), or 0 = unlimited. */
static int set_memory(uint64_t *dst, const char *key, const char *v, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	unsigned long long mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1ull << 10, end++; break;
	case 'm': case 'M': mul = 1ull << 20, end++; break;
	case 'g': case 'G': mul = 1ull << 30, end++; break;
	case 't': case 'T': mul = 1ull << 40, end++; break;
	default: break;
	}
	if (!*v || *v == '-' || *end || errno || n > (1ull << 50) / mul) {
		snprintf(err, errlen, "%s: expected a size in bytes (suffix k, M, G or T allowed; 0 = unlimited), got '%s'",
		         key, v);
		return -1;
	}
	*dst = n * mul;
	return 0;
}

/* `ssld serve --help`; its "--name"s are also the candidates of "did you mean" for a setting. */
static const char usage_text[] =
	"usage: ssld serve [--config FILE] [--listen ADDR:PORT] [--state-dir DIR] [flags]\n"
	"  Runs the training service: the HTTP API, the dashboard and the workers. The other commands\n"
	"  are listed by `ssld help`.\n"
	"\n"
	"flags (also valid as 'key = value' lines in the --config file; flags win):\n"
	"  --listen ADDR:PORT         where to serve HTTP (default 127.0.0.1:8080; port 0 = any free port,\n"
	"                             written to STATE_DIR/port)\n"
	"  --state-dir DIR            database, job directories (default $STATE_DIRECTORY, else ./state)\n"
	"  --database DB              postgresql://USER@HOST/NAME: the queue and history on PostgreSQL, shared\n"
	"                             by several nodes; a path: that SQLite file (default STATE_DIR/ssld.db)\n"
	"  --shared-dir DIR           job directories and checkpoints, on a filesystem every node mounts\n"
	"                             (default STATE_DIR)\n"
	"  --node NAME                this node's name in the queue (default HOSTNAME:PORT)\n"
	"  --lease SECONDS            a running job's claim lasts this long unless renewed (every third of it);\n"
	"                             a node that dies loses its jobs to the others after it (default 30)\n"
	"  --data-root DIR            datasets must lie under one of these (repeatable; default: those of\n"
	"                             /usr/share/datasets, /usr/share/games/fortunes, /usr/share/openclipart,\n"
	"                             STATE_DIR/datasets that exist; with none, jobs cannot read files: only\n"
	"                             `ssld run` is unconfined)\n"
	"  --web-dir DIR              dashboard files served at / (default: installed datadir, else source web/)\n"
	"  --workers N                jobs run at once (default 1 per 2 cores; 0 = only queue)\n"
	"  --job-threads N            cap on a job's BLAS threads (default cores / workers)\n"
	"  --http-threads N           HTTP threads (default 2)\n"
	"  --max-body SIZE            request body limit (default 1M)\n"
	"  --max-job-memory SIZE      refuse (400) a job whose estimated peak memory of a training step is larger\n"
	"                             (suffix k/M/G/T; default half of MemTotal divided by --workers; 0 = no limit)\n"
	"  --max-queued N             refuse new jobs (429) when N are queued (default unlimited)\n"
	"  --max-queued-per-owner N   the same per token owner\n"
	"  --max-running-per-owner N  run at most N of one owner's jobs at once; the rest wait (default unlimited)\n"
	"  --max-user-priority N      job priorities above N need an admin token (default 0; range -100..100)\n"
	"  --max-upload-bytes SIZE    POST /v1/datasets: a larger archive is refused (413) (default 1G; 0 = no limit)\n"
	"  --max-dataset-bytes SIZE   a dataset that unpacks to more is refused (413) (default 4G; 0 = no limit)\n"
	"  --max-dataset-files N      an archive with more members is refused (413) (default 50000; 0 = no limit)\n"
	"  --max-datasets-per-owner N more uploads by one owner are refused (429) (default 50; 0 = no limit)\n"
	"  --dataset-quota-bytes SIZE all of one owner's datasets together (413) (default 20G; 0 = no limit)\n"
	"  --max-attempts N           a job the daemon stopped or crashed under N times fails instead of\n"
	"                             running again (default 3; 0 = retry forever; a clean stop does not count)\n"
	"  --tokens-file FILE         'OWNER SHA256HEX [admin]' lines, besides the tokens of `ssld token create`;\n"
	"                             bad lines are logged and skipped\n"
	"  --read-access MODE         once tokens exist, who may read jobs and metrics without one: loopback\n"
	"                             (default: clients on 127.0.0.1/::1), open (anyone), token (nobody)\n"
	"  --log-file FILE            log there instead of stderr (reopened on SIGHUP)\n"
	"  --log-level LEVEL          err, warning, notice, info (default) or debug\n"
	"  --flush-interval SECONDS   metric batch interval (default 0.5, at most 1)\n"
	"  --stop-timeout SECONDS     on SIGTERM, wait this long for jobs to checkpoint (default 90)\n"
	"  --max-connections N        HTTP connections at once (default 256)\n"
	"  --max-connections-per-ip N of them from one client address (default 128; 0 = no limit)\n"
	"  --request-deadline SECONDS a request (headers and body) must arrive whole within this long of the\n"
	"                             connection opening or its last answer, else 408 and close (default 30; 0 = off)\n"
	"  --generate-threads N       POST /v1/jobs/{id}/generate requests run at once (default 1)\n"
	"  --generate-queue N         more may wait (default 4); beyond that 503 busy\n"
	"  --generate-max-seconds S   text sampling stops after S seconds, answer marked truncated (default 60; 0 = none)\n"
	"  --generate-max-tokens N    longer text requests are cut to N tokens, marked truncated (default 4096)\n"
	"  --webhook URL              POST each job that ends (succeeded, failed, cancelled) there as JSON, with\n"
	"                             its results; retried on no answer or 5xx (docs/service.md)\n"
	"  --mpirun PATH              the mpirun that starts \"distributed\" jobs (default: mpirun on PATH)\n"
	"  --mpirun-args 'ARGS'       extra mpirun arguments, split on blanks, no shell (e.g. --oversubscribe)\n"
	"  --mpi-hostfile FILE        OpenMPI hostfile for distributed jobs that list no hosts (default: this machine)\n"
	"\n"
	"Once any token exists (`ssld token create`, or --tokens-file), POSTs need 'Authorization: Bearer TOKEN',\n"
	"jobs record the token's name as their owner, and only the owner or an admin token cancels a job or\n"
	"generates from it. Revoking the last token keeps authentication on until `ssld token off`.\n"
	"Under systemd, ssld reports READY/STATUS/WATCHDOG through $NOTIFY_SOCKET and serves on a socket\n"
	"passed by ssld.socket (socket activation) instead of --listen.\n"
	"\n"
	"signals: SIGTERM/SIGINT stop accepting jobs, checkpoint and requeue running ones, exit;\n"
	"         a second one exits at once (jobs resume from their last checkpoint). SIGHUP reopens\n"
	"         the log file and reloads the tokens file (a token removed from it stops working; if\n"
	"         the file cannot be read, no token from it works until it can).\n";

/* The documented flag nearest to an unknown setting, or NULL. */
static const char *nearest_setting(const char *key, char *out, size_t cap)
{
	enum { MAX = 64, LEN = 32 };
	char names[MAX][LEN];
	const char *cands[MAX];
	size_t n = 0;
	for (const char *p = usage_text; n < MAX && (p = strstr(p, "--")) != NULL;) {
		p += 2;
		size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz-");
		if (len > 0 && len < LEN) {
			memcpy(names[n], p, len);
			names[n][len] = 0;
			cands[n] = names[n];
			n++;
		}
		p += len;
	}
	const char *near = cli_suggest(key, cands, sizeof cands[0], n);
	if (!near) return NULL;
	snprintf(out, cap, "%s", near);
	return out;
}

int config_set(SsldConfig *c, const char *key_in, const char *v, char *err, size_t errlen)
{
	char key[64];
	snprintf(key, sizeof key, "%s", key_in);
	for (char *p = key; *p; p++)
		if (*p == '_') *p = '-';
	if (strcmp(key, "listen") == 0) return set_str(c->listen, sizeof c->listen, key, v, err, errlen);
	if (strcmp(key, "state-dir") == 0) return set_str(c->state_dir, sizeof c->state_dir, key, v, err, errlen);
	if (strcmp(key, "database") == 0) return set_str(c->database, sizeof c->database, key, v, err, errlen);
	if (strcmp(key, "shared-dir") == 0) return set_str(c->shared_dir, sizeof c->shared_dir, key, v, err, errlen);
	if (strcmp(key, "node") == 0) {
		/* It names the node in logs, events and /v1/health: host-name characters and ':' only. */
		if (!*v || strlen(v) >= sizeof c->node || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:") != strlen(v)) {
			snprintf(err, errlen, "node: expected 1..%zu of letters, digits, '.', '-', '_', ':', got '%.300s'",
			         sizeof c->node - 1, v);
			return -1;
		}
		memcpy(c->node, v, strlen(v) + 1);
		return 0;
	}
	if (strcmp(key, "lease") == 0) return set_double(&c->lease_s, key, v, 1, 3600, err, errlen);
	if (strcmp(key, "web-dir") == 0) return set_str(c->web_dir, sizeof c->web_dir, key, v, err, errlen);
	if (strcmp(key, "tokens-file") == 0) return set_str(c->tokens_file, sizeof c->tokens_file, key, v, err, errlen);
	if (strcmp(key, "log-file") == 0) return set_str(c->log_file, sizeof c->log_file, key, v, err, errlen);
	if (strcmp(key, "data-root") == 0) {
		if (c->n_data_roots == CONFIG_MAX_ROOTS) {
			snprintf(err, errlen, "data-root: at most %d roots", CONFIG_MAX_ROOTS);
			return -1;
		}
		if (set_str(c->data_roots[c->n_data_roots], sizeof c->data_roots[0], key, v, err, errlen) < 0) return -1;
		c->n_data_roots++;
		return 0;
	}
	if (strcmp(key, "workers") == 0) return set_int(&c->workers, key, v, 0, 256, err, errlen);
	if (strcmp(key, "job-threads") == 0) return set_int(&c->job_threads, key, v, 1, 256, err, errlen);
	if (strcmp(key, "http-threads") == 0) return set_int(&c->http_threads, key, v, 1, 64, err, errlen);
	if (strcmp(key, "max-queued") == 0) return set_int(&c->max_queued, key, v, 0, 1000000, err, errlen);
	if (strcmp(key, "max-queued-per-owner") == 0) return set_int(&c->max_queued_per_owner, key, v, 0, 1000000, err, errlen);
	if (strcmp(key, "max-running-per-owner") == 0) return set_int(&c->max_running_per_owner, key, v, 0, 256, err, errlen);
	/* The job spec's own priority range is -100..100. */
	if (strcmp(key, "max-user-priority") == 0) return set_int(&c->max_user_priority, key, v, -100, 100, err, errlen);
	if (strcmp(key, "max-attempts") == 0) return set_int(&c->max_attempts, key, v, 0, 1000, err, errlen);
	if (strcmp(key, "read-access") == 0) {
		static const char *const modes[] = { "loopback", "open", "token" };
		for (int i = 0; i < 3; i++)
			if (strcmp(v, modes[i]) == 0) {
				c->read_access = i;
				return 0;
			}
		snprintf(err, errlen, "read-access: expected loopback, open or token, got '%s'", v);
		return -1;
	}
	if (strcmp(key, "max-body") == 0) return set_size(&c->max_body, key, v, err, errlen);
	if (strcmp(key, "max-upload-bytes") == 0) return set_memory(&c->max_upload_bytes, key, v, err, errlen);
	if (strcmp(key, "max-dataset-bytes") == 0) return set_memory(&c->max_dataset_bytes, key, v, err, errlen);
	if (strcmp(key, "dataset-quota-bytes") == 0) return set_memory(&c->dataset_quota_bytes, key, v, err, errlen);
	if (strcmp(key, "max-dataset-files") == 0) return set_int(&c->max_dataset_files, key, v, 0, 100000000, err, errlen);
	if (strcmp(key, "max-datasets-per-owner") == 0) return set_int(&c->max_datasets_per_owner, key, v, 0, 1000000, err, errlen);
	if (strcmp(key, "max-job-memory") == 0) return set_memory(&c->max_job_memory, key, v, err, errlen);
	if (strcmp(key, "flush-interval") == 0) return set_double(&c->flush_interval_s, key, v, 0.05, 1.0, err, errlen);
	if (strcmp(key, "stop-timeout") == 0) return set_double(&c->stop_timeout_s, key, v, 1, 86400, err, errlen);
	if (strcmp(key, "max-connections") == 0) return set_int(&c->max_connections, key, v, 1, 65536, err, errlen);
	if (strcmp(key, "max-connections-per-ip") == 0) return set_int(&c->max_connections_per_ip, key, v, 0, 65536, err, errlen);
	if (strcmp(key, "request-deadline") == 0) return set_double(&c->request_deadline_s, key, v, 0, 86400, err, errlen);
	if (strcmp(key, "generate-threads") == 0) return set_int(&c->generate_threads, key, v, 1, 64, err, errlen);
	if (strcmp(key, "generate-queue") == 0) return set_int(&c->generate_queue, key, v, 0, 10000, err, errlen);
	if (strcmp(key, "generate-max-seconds") == 0) return set_double(&c->generate_max_seconds, key, v, 0, 86400, err, errlen);
	if (strcmp(key, "webhook") == 0) {
		if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
			snprintf(err, errlen, "webhook: '%.200s' is not an http:// or https:// URL", v);
			return -1;
		}
		return set_str(c->webhook, sizeof c->webhook, key, v, err, errlen);
	}
	if (strcmp(key, "mpirun") == 0) return set_str(c->mpirun, sizeof c->mpirun, key, v, err, errlen);
	if (strcmp(key, "mpirun-args") == 0) return set_str(c->mpirun_args, sizeof c->mpirun_args, key, v, err, errlen);
	if (strcmp(key, "mpi-hostfile") == 0) return set_str(c->mpi_hostfile, sizeof c->mpi_hostfile, key, v, err, errlen);
	if (strcmp(key, "generate-max-tokens") == 0) return set_int(&c->generate_max_tokens, key, v, 1, 4096, err, errlen);
	if (strcmp(key, "log-level") == 0) {
		int l = slog_level_parse(v);
		if (l < 0) {
			snprintf(err, errlen, "log-level: expected err, warning, notice, info or debug, got '%s'", v);
			return -1;
		}
		c->log_level = l;
		return 0;
	}
	char near[32];
	if (nearest_setting(key, near, sizeof near))
		snprintf(err, errlen, "%s: unknown setting; did you mean '%s'? (see `ssld serve --help`)", key_in, near);
	else
		snprintf(err, errlen, "%s: unknown setting (see `ssld serve --help`)", key_in);
	return -1;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t') s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
	return s;
}

int config_split_line(char *line, char **key, char **value)
{
	char *s = trim(line);
	if (!*s || *s == '#' || *s == ';') return 0;
	char *eq = strchr(s, '=');
	if (!eq) return -1;
	*eq = 0;
	char *v = trim(eq + 1);
	size_t vn = strlen(v);
	if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
		v[vn - 1] = 0;
		v++;
	}
	*key = trim(s);
	*value = v;
	return 1;
}

int config_load_file(SsldConfig *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "config %s: %s", path, strerror(errno));
		return -1;
	}
	char line[2048], e[512];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *k, *v;
		int kind = config_split_line(line, &k, &v);
		if (kind == 0) continue;
		if (kind < 0) {
			snprintf(err, errlen, "config %s:%d: expected 'key = value'", path, lineno);
			rc = -1;
			break;
		}
		if (config_set(c, k, v, e, sizeof e) < 0) {
			snprintf(err, errlen, "config %s:%d: %s", path, lineno, e);
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

int config_from_args(SsldConfig *c, int argc, char **argv, char *err, size_t errlen)
{
	/* Pass 1: --config (the file is the base the other flags override). */
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--config") == 0 && i + 1 < argc) {
			if (set_str(c->config_file, sizeof c->config_file, "config", argv[i + 1], err, errlen) < 0) return -1;
		} else if (strncmp(a, "--config=", 9) == 0) {
			if (set_str(c->config_file, sizeof c->config_file, "config", a + 9, err, errlen) < 0) return -1;
		}
	}
	if (c->config_file[0] && config_load_file(c, c->config_file, err, errlen) < 0) return -1;
	/* Pass 2: every flag. */
	int roots_from_flags = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) return 1;
		if (strncmp(a, "--", 2) != 0 || !a[2]) {
			snprintf(err, errlen, "unexpected argument '%s' (flags are --name VALUE; see `ssld serve --help`)", a);
			return -1;
		}
		char key[64];
		const char *val;
		const char *eq = strchr(a, '=');
		if (eq) {
			snprintf(key, sizeof key, "%.*s", (int)(eq - a - 2), a + 2);
			val = eq + 1;
		} else {
			snprintf(key, sizeof key, "%s", a + 2);
			if (i + 1 >= argc) {
				snprintf(err, errlen, "--%s needs a value", key);
				return -1;
			}
			val = argv[++i];
		}
		if (strcmp(key, "config") == 0) continue;
		/* Roots given as flags replace the file's roots rather than adding to them. */
		if ((strcmp(key, "data-root") == 0 || strcmp(key, "data_root") == 0) && !roots_from_flags) {
			c->n_data_roots = 0;
			roots_from_flags = 1;
		}
		char e[512];
		if (config_set(c, key, val, e, sizeof e) < 0) {
			snprintf(err, errlen, "--%s", e);
			return -1;
		}
	}
	return 0;
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

void config_finish(SsldConfig *c)
{
	if (!c->state_dir[0]) {
		/* systemd's StateDirectory= sets STATE_DIRECTORY (colon-separated if several: take the first). */
		const char *env = getenv("STATE_DIRECTORY");
		if (env && *env) snprintf(c->state_dir, sizeof c->state_dir, "%.*s", (int)strcspn(env, ":"), env);
		else snprintf(c->state_dir, sizeof c->state_dir, "./state");
	}
	if (c->n_data_roots == 0) {
		static const char *const defaults[] = { "/usr/share/datasets", "/usr/share/games/fortunes", "/usr/share/openclipart" };
		for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
			if (is_dir(defaults[i])) snprintf(c->data_roots[c->n_data_roots++], sizeof c->data_roots[0], "%s", defaults[i]);
		char own[1100];
		int n = snprintf(own, sizeof own, "%s/datasets", c->state_dir);
		if (n > 0 && (size_t)n < sizeof c->data_roots[0] && is_dir(own) && c->n_data_roots < CONFIG_MAX_ROOTS)
			memcpy(c->data_roots[c->n_data_roots++], own, (size_t)n + 1);
	}
	if (!c->shared_dir[0]) memcpy(c->shared_dir, c->state_dir, sizeof c->shared_dir);
	if (!c->web_dir[0]) {
		char installed[1100];
		int n = snprintf(installed, sizeof installed, "%s/ssld/web", SSLD_DATADIR);
		if (n > 0 && (size_t)n < sizeof c->web_dir && is_dir(installed)) memcpy(c->web_dir, installed, (size_t)n + 1);
		else if (SSLD_SOURCE_WEB_DIR[0] && is_dir(SSLD_SOURCE_WEB_DIR))
			snprintf(c->web_dir, sizeof c->web_dir, "%s", SSLD_SOURCE_WEB_DIR);
	}
	int cores = ncpu();
	if (c->workers < 0) c->workers = cores / 2 > 0 ? cores / 2 : 1;
	if (c->job_threads < 0) c->job_threads = c->workers > 0 && cores / c->workers > 0 ? cores / c->workers : 1;
	/* Half the machine's memory shared by the jobs that run at once (0 workers: one job's share). */
	if (c->max_job_memory == UINT64_MAX) c->max_job_memory = mem_total() / 2 / (uint64_t)(c->workers > 0 ? c->workers : 1);
}

int config_shared_database(const SsldConfig *c) { return c->database[0] != 0; }

void config_default_node(SsldConfig *c, int port)
{
	if (c->node[0]) return;
	char host[200];
	if (gethostname(host, sizeof host) != 0 || !host[0]) snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = 0;
	snprintf(c->node, sizeof c->node, "%s:%d", host, port);
}

void config_usage(void)
{
	fputs(usage_text, stdout);
}

void config_database(const SsldConfig *c, char *out, size_t cap)
{
	if (c->database[0]) snprintf(out, cap, "%s", c->database);
	else snprintf(out, cap, "%s/ssld.db", c->state_dir);
}
