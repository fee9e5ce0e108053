/* test_service_helpers.c - unit tests of the service's pure helpers: LTTB downsampling
 * (api/downsample.c), ETags and If-None-Match (api/cache.c) and the serve configuration
 * (daemon/config.c: file, flags, precedence, errors).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "downsample.h"
#include "check.h"

/* ---- LTTB ----------------------------------------------------------------------------------- */

static void test_lttb(void)
{
	enum { N = 100000, M = 500 };
	double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
	size_t *keep = malloc(N * sizeof *keep);
	/* A decaying noisy curve with one sharp spike and one deep dip. */
	unsigned s = 12345;
	for (int i = 0; i < N; i++) {
		s = s * 1103515245u + 12345u;
		x[i] = i + 1;
		y[i] = 3.0 * exp(-i / 20000.0) + 0.05 * ((double)(s >> 16 & 0x7fff) / 32768.0 - 0.5);
	}
	y[31337] = 50.0;
	y[77777] = -40.0;
	size_t n = lttb_select(x, y, N, M, keep);
	CHECK(n == M);
	CHECK(keep[0] == 0 && keep[n - 1] == N - 1);
	int increasing = 1, spike = 0, dip = 0;
	for (size_t i = 0; i < n; i++) {
		if (i && keep[i] <= keep[i - 1]) increasing = 0;
		if (keep[i] == 31337) spike = 1;
		if (keep[i] == 77777) dip = 1;
	}
	CHECK(increasing);
	CHECK(spike && dip);   /* extremes survive: that is the point of LTTB over striding */
	/* Short series are returned whole; tiny budgets keep the ends. */
	CHECK(lttb_select(x, y, 10, 500, keep) == 10 && keep[9] == 9);
	CHECK(lttb_select(x, y, 10, 2, keep) == 2 && keep[0] == 0 && keep[1] == 9);
	CHECK(lttb_select(x, y, 10, 10, keep) == 10);
	CHECK(lttb_select(x, y, 11, 3, keep) == 3 && keep[0] == 0 && keep[2] == 10);
	/* NaN points are never picked as representatives when real values exist. */
	for (int i = 0; i < 1000; i++) y[i] = (i % 3 == 1) ? NAN : (double)i;
	n = lttb_select(x, y, 1000, 50, keep);
	for (size_t i = 1; i + 1 < n; i++) CHECK(!isnan(y[keep[i]]));
	free(x);
	free(y);
	free(keep);
}

/* ---- configuration -------------------------------------------------------------------------- */

static void test_config(void)
{
	char err[512], path[] = "/tmp/ssld-config-test-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	const char *text =
		"# a comment\n"
		"listen = 127.0.0.1:9999\n"
		"state_dir = \"/var/tmp/ssld state\"\n"
		"data-root = /srv/a\n"
		"data-root = /srv/b\n"
		"workers = 3\n"
		"max-body = 64k\n"
		"log-level = debug\n"
		"\n";
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);

	SsldConfig c;
	config_defaults(&c);
	CHECK(strcmp(c.listen, "127.0.0.1:8080") == 0 && c.max_body == 1 << 20);
	char *argv1[] = { "--config", path, "--workers", "2", "--listen=127.0.0.1:0" };
	CHECK(config_from_args(&c, 5, argv1, err, sizeof err) == 0);
	CHECK(strcmp(c.listen, "127.0.0.1:0") == 0);           /* flag wins over file */
	CHECK(c.workers == 2);                                   /* flag wins */
	CHECK(strcmp(c.state_dir, "/var/tmp/ssld state") == 0); /* quotes stripped, '_' accepted */
	CHECK(c.n_data_roots == 2 && strcmp(c.data_roots[1], "/srv/b") == 0);
	CHECK(c.max_body == 65536 && c.log_level == LOG_DEBUG);
	/* The database: STATE_DIR/ssld.db unless `database` names one (a URL, or another SQLite path). */
	char db[1100];
	config_database(&c, db, sizeof db);
	CHECK(strcmp(db, "/var/tmp/ssld state/ssld.db") == 0);
	char *argv_db[] = { "--database", "postgresql://ssld@/ssld?host=/run/postgresql" };
	CHECK(config_from_args(&c, 2, argv_db, err, sizeof err) == 0);
	config_database(&c, db, sizeof db);
	CHECK(strcmp(db, "postgresql://ssld@/ssld?host=/run/postgresql") == 0);

	/* Roots from flags replace the file's. */
	config_defaults(&c);
	char *argv2[] = { "--config", path, "--data-root", "/x", "--data-root", "/y" };
	CHECK(config_from_args(&c, 6, argv2, err, sizeof err) == 0);
	CHECK(c.n_data_roots == 2 && strcmp(c.data_roots[0], "/x") == 0 && strcmp(c.data_roots[1], "/y") == 0);

	/* Errors name what is wrong. */
	config_defaults(&c);
	char *bad1[] = { "--workers", "many" };
	CHECK(config_from_args(&c, 2, bad1, err, sizeof err) < 0 && strstr(err, "workers"));
	char *bad2[] = { "--bogus", "1" };
	CHECK(config_from_args(&c, 2, bad2, err, sizeof err) < 0 && strstr(err, "bogus"));
	char *bad3[] = { "--listen" };
	CHECK(config_from_args(&c, 1, bad3, err, sizeof err) < 0 && strstr(err, "needs a value"));
	char *bad4[] = { "stray" };
	CHECK(config_from_args(&c, 1, bad4, err, sizeof err) < 0 && strstr(err, "stray"));
	char *bad5[] = { "--max-body", "-5" };
	CHECK(config_from_args(&c, 2, bad5, err, sizeof err) < 0 && strstr(err, "max-body"));
	char *bad6[] = { "--flush-interval", "5" };
	CHECK(config_from_args(&c, 2, bad6, err, sizeof err) < 0 && strstr(err, "flush-interval"));
	char *help[] = { "--help" };
	CHECK(config_from_args(&c, 1, help, err, sizeof err) == 1);
	char *bad7[] = { "--node", "box 2" };
	CHECK(config_from_args(&c, 2, bad7, err, sizeof err) < 0 && strstr(err, "node") && strstr(err, "box 2"));
	char *bad8[] = { "--lease", "0.1" };
	CHECK(config_from_args(&c, 2, bad8, err, sizeof err) < 0 && strstr(err, "lease") && strstr(err, "0.1"));
	char *missing[] = { "--config", "/nonexistent/ssld.conf" };
	CHECK(config_from_args(&c, 2, missing, err, sizeof err) < 0 && strstr(err, "/nonexistent/ssld.conf"));

	FILE *f = fopen(path, "w");
	fputs("listen = 1.2.3.4:5\nno equals sign here\n", f);
	fclose(f);
	config_defaults(&c);
	CHECK(config_load_file(&c, path, err, sizeof err) < 0 && strstr(err, ":2:"));
	f = fopen(path, "w");
	fputs("wokers = 2\n", f);
	fclose(f);
	CHECK(config_load_file(&c, path, err, sizeof err) < 0 && strstr(err, "wokers") && strstr(err, ":1:"));

	/* Defaults resolved from the environment. */
	config_defaults(&c);
	setenv("STATE_DIRECTORY", "/var/lib/ssld:/var/lib/other", 1);
	config_finish(&c);
	CHECK(strcmp(c.state_dir, "/var/lib/ssld") == 0);
	CHECK(c.workers >= 1 && c.job_threads >= 1);
	unsetenv("STATE_DIRECTORY");
	/* A box alone: its state dir holds the jobs, the database is its own, the node is HOST:PORT. */
	CHECK(strcmp(c.shared_dir, "/var/lib/ssld") == 0 && !config_shared_database(&c) && c.lease_s == 30);
	config_default_node(&c, 8123);
	CHECK(strlen(c.node) > 5 && strcmp(c.node + strlen(c.node) - 5, ":8123") == 0);

	/* One of several nodes, from the file; a flag still wins. */
	f = fopen(path, "w");
	fputs("database = postgresql://ssld@db/ssld\nshared_dir = /mnt/ssld\nnode = box-2\nlease = 12.5\n", f);
	fclose(f);
	config_defaults(&c);
	char *argv3[] = { "--config", path, "--node=box-3" };
	CHECK(config_from_args(&c, 3, argv3, err, sizeof err) == 0);
	config_finish(&c);
	CHECK(config_shared_database(&c) && strcmp(c.database, "postgresql://ssld@db/ssld") == 0);
	CHECK(strcmp(c.shared_dir, "/mnt/ssld") == 0 && c.lease_s == 12.5);
	config_default_node(&c, 8123);
	CHECK(strcmp(c.node, "box-3") == 0);
	unlink(path);
}

/* ---- ETags ---------------------------------------------------------------------------------- */

static void test_etags(void)
{
	char a[24], b[24], c[24];
	const char body[] = "{\"job\":1,\"cursor\":42,\"series\":{}}\n";
	api_etag_of(body, sizeof body - 1, a);
	api_etag_of(body, sizeof body - 1, b);
	CHECK(strcmp(a, b) == 0 && strlen(a) == 18 && a[0] == '"' && a[17] == '"');
	/* Any one byte changed, or the length, changes the tag (tails and 8-byte words alike). */
	char copy[sizeof body];
	int all_differ = 1;
	for (size_t i = 0; i < sizeof body - 1; i++) {
		memcpy(copy, body, sizeof body);
		copy[i] ^= 1;
		api_etag_of(copy, sizeof body - 1, c);
		if (strcmp(a, c) == 0) all_differ = 0;
	}
	CHECK(all_differ);
	api_etag_of(body, sizeof body - 2, c);
	CHECK(strcmp(a, c) != 0);
	/* If-None-Match: one tag, a list, weak forms, '*'; near misses do not match. */
	char list[96], weak[32];
	snprintf(list, sizeof list, "\"0000000000000000\", %s", a);
	snprintf(weak, sizeof weak, "W/%s", a);
	CHECK(api_etag_match(a, a));
	CHECK(api_etag_match(list, a));
	CHECK(api_etag_match(weak, a));
	CHECK(api_etag_match("*", a));
	CHECK(!api_etag_match("", a));
	CHECK(!api_etag_match("\"0000000000000000\"", a));
	char unq[24];
	snprintf(unq, sizeof unq, "%.16s", a + 1);   /* the digits without quotes */
	CHECK(!api_etag_match(unq, a));
	char prefix[24];
	snprintf(prefix, sizeof prefix, "%.17s", a);  /* an unterminated tag */
	CHECK(!api_etag_match(prefix, a));
}

int main(void)
{
	test_lttb();
	test_etags();
	test_config();
	return check_exit("test_service_helpers");
}
