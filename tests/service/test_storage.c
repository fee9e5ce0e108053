/* test_storage.c - unit tests of storage/: migrations, the queue, leases, batched metrics, cursors,
 * resume de-duplication, events, artifacts, sha256, uploaded datasets' rows, and concurrent claims, on
 * a real SQLite file - or, run as `test_storage pg` with SSLD_TEST_PG_URL set (tests/support/pgserver.py
 * does both: the meson test storage_pg), the same checks on a real PostgreSQL database.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "batch.h"
#include "dataset_store.h"
#include "sha256.h"
#include "store.h"
#include "store_migrate.h"
#include "store_pg.h"
#include "check.h"

/* expr must succeed (>= 0); on failure the message is the store's err text */
#define CHECK_RC(expr) do { int rc_ = (expr); checks++; if (rc_ < 0) check_report(__FILE__, __LINE__, #expr, "-> %d (%s)", rc_, err); } while (0)

static char dir[256], dbpath[1024];
static char err[512];
static int pg;   /* dbpath is a PostgreSQL URL */

/* Runs SQL on the database behind the store's back (another client): 0 or -1. */
static int raw_exec(const char *sql)
{
	if (pg) {
		PGconn *c = PQconnectdb(dbpath);
		PQclear(PQexec(c, "SET client_min_messages = warning"));
		PGresult *r = PQexec(c, sql);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
		if (!ok) fprintf(stderr, "raw_exec: %s: %s", sql, PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		return ok ? 0 : -1;
	}
	sqlite3 *db;
	if (sqlite3_open(dbpath, &db) != SQLITE_OK) return -1;
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	sqlite3_close(db);
	return rc;
}

static void rm_db(void)
{
	if (pg) {   /* an empty database again */
		raw_exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
		return;
	}
	char p[1100];
	const char *suf[] = { "", "-wal", "-shm" };
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", dbpath, suf[i]);
		unlink(p);
	}
}

static int64_t insert(Store *st, const char *name, int prio, const char *owner)
{
	StoreNewJob nj = { .spec = "{\"method\":\"simclr\"}", .name = name, .method = "simclr", .owner = owner, .priority = prio };
	int64_t id = -1;
	CHECK_RC(store_job_insert(st, &nj, &id, err, sizeof err));
	return id;
}

static void test_sha256(void)
{
	char hex[65];
	sha256_hex("abc", 3, hex);
	CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
	sha256_hex("", 0, hex);
	CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sha256_hex(m, strlen(m), hex);
	CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
	/* Streaming in odd pieces equals one shot (1,000,000 x 'a' is the FIPS long vector). */
	Sha256 s;
	sha256_init(&s);
	char a[997];
	memset(a, 'a', sizeof a);
	size_t left = 1000000;
	while (left) {
		size_t k = left < sizeof a ? left : sizeof a;
		sha256_update(&s, a, k);
		left -= k;
	}
	uint8_t d[32];
	sha256_final(&s, d);
	CHECK(d[0] == 0xcd && d[1] == 0xc7 && d[31] == 0xd0);
}

static void test_migrations(void)
{
	Store *st;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	CHECK(store_schema_version(st) == SSLD_SCHEMA_VERSION);
	store_free(st);
	/* Re-opening an up-to-date database is a no-op. */
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	CHECK(store_schema_version(st) == SSLD_SCHEMA_VERSION);
	store_free(st);
	if (pg) {
		/* A schema 7 database gains the webhook outbox (7 -> 8). */
		CHECK(raw_exec("DROP TABLE webhook_outbox; UPDATE ssld_meta SET value = 7 WHERE key = 'schema_version'") == 0);
		CHECK_RC(store_open(dbpath, &st, err, sizeof err));
		StoreDelivery d;
		CHECK(store_schema_version(st) == SSLD_SCHEMA_VERSION && store_delivery_get(st, 1, &d, err, sizeof err) == 0);
		store_free(st);
		/* A database from a newer ssld is refused, not damaged. */
		CHECK(raw_exec("UPDATE ssld_meta SET value = 99 WHERE key = 'schema_version'") == 0);
		CHECK(store_open(dbpath, &st, err, sizeof err) == STORE_EVERSION);
		CHECK(strstr(err, "99") != NULL);
		rm_db();
		return;
	}
	/* WAL mode persisted in the file. */
	sqlite3 *db;
	sqlite3_open(dbpath, &db);
	sqlite3_stmt *s;
	sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL);
	CHECK(sqlite3_step(s) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0);
	sqlite3_finalize(s);
	/* A database from a newer ssld is refused, not damaged. */
	sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
	sqlite3_close(db);
	int rc = store_open(dbpath, &st, err, sizeof err);
	CHECK(rc == STORE_EVERSION);
	CHECK(strstr(err, "99") != NULL);
	rm_db();
}

static void test_queue(void)
{
	Store *st;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	StoreJob j;
	CHECK(store_job_claim(st, &j, err, sizeof err) == 0);   /* empty queue */
	int64_t a = insert(st, "a", 0, "ann");
	int64_t b = insert(st, "b", 5, "bob");
	int64_t c = insert(st, "c", 5, "ann");
	int64_t d = insert(st, "d", 0, "ann");
	/* Highest priority first, then oldest. */
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1);
	CHECK(j.id == b && j.state == JOB_RUNNING && j.attempts == 1 && strcmp(j.name, "b") == 0);
	CHECK(j.spec && strstr(j.spec, "simclr"));
	store_job_clear(&j);
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1);
	CHECK(j.id == c);
	store_job_clear(&j);
	/* Cancel: queued -> cancelled at once; running -> flagged; finished -> refused. */
	JobState ns;
	CHECK_RC(store_job_cancel(st, d, &ns, err, sizeof err));
	CHECK(ns == JOB_CANCELLED);
	CHECK_RC(store_job_cancel(st, c, &ns, err, sizeof err));
	CHECK(ns == JOB_RUNNING);
	CHECK_RC(store_job_get(st, c, &j, err, sizeof err));
	CHECK(j.cancel_requested == 1 && j.state == JOB_RUNNING);
	store_job_clear(&j);
	CHECK(store_job_cancel(st, d, &ns, err, sizeof err) == STORE_ESTATE);
	CHECK(store_job_cancel(st, 9999, &ns, err, sizeof err) == STORE_ENOTFOUND);
	CHECK(store_job_get(st, 9999, &j, err, sizeof err) == STORE_ENOTFOUND);
	/* Finish. */
	CHECK_RC(store_job_finish(st, c, JOB_CANCELLED, NULL, "cancelled by request", err, sizeof err));
	CHECK_RC(store_job_finish(st, b, JOB_SUCCEEDED, "{\"ok\":1}", NULL, err, sizeof err));
	CHECK(store_job_finish(st, b, JOB_FAILED, NULL, "x", err, sizeof err) == STORE_ESTATE);
	CHECK_RC(store_job_get(st, b, &j, err, sizeof err));
	CHECK(j.state == JOB_SUCCEEDED && j.results && strcmp(j.results, "{\"ok\":1}") == 0 && j.finished_at > 0);
	store_job_clear(&j);
	/* Counts and listing with filters and paging (newest first). */
	int64_t counts[JOB_STATE_COUNT];
	CHECK_RC(store_job_counts(st, counts, err, sizeof err));
	CHECK(counts[JOB_QUEUED] == 1 && counts[JOB_SUCCEEDED] == 1 && counts[JOB_CANCELLED] == 2 && counts[JOB_RUNNING] == 0);
	StoreJob *v;
	int n;
	StoreJobFilter f = { .limit = 2 };
	CHECK_RC(store_job_list(st, &f, &v, &n, err, sizeof err));
	CHECK(n == 2 && v[0].id == d && v[1].id == c && v[0].spec == NULL);
	int64_t before = n ? v[n - 1].id : 0;
	for (int i = 0; i < n; i++) store_job_clear(&v[i]);
	free(v);
	f.before_id = before;
	CHECK_RC(store_job_list(st, &f, &v, &n, err, sizeof err));
	CHECK(n == 2 && v[0].id == b && v[1].id == a);
	for (int i = 0; i < n; i++) store_job_clear(&v[i]);
	free(v);
	StoreJobFilter fq = { .state_mask = 1u << JOB_CANCELLED, .limit = 10 };
	CHECK_RC(store_job_list(st, &fq, &v, &n, err, sizeof err));
	CHECK(n == 2 && v[0].state == JOB_CANCELLED && v[1].state == JOB_CANCELLED);
	for (int i = 0; i < n; i++) store_job_clear(&v[i]);
	free(v);
	/* Limits. */
	StoreNewJob lim = { .spec = "{}", .method = "x", .owner = "ann", .max_queued_per_owner = 1 };
	int64_t id;
	CHECK(store_job_insert(st, &lim, &id, err, sizeof err) == STORE_ELIMIT);   /* ann has `a` queued */
	lim.owner = "carol";
	CHECK_RC(store_job_insert(st, &lim, &id, err, sizeof err));
	lim.owner = "dave";
	lim.max_queued = 2;
	CHECK(store_job_insert(st, &lim, &id, err, sizeof err) == STORE_ELIMIT);   /* a + carol's job */
	store_free(st);
	rm_db();
}

static size_t count_rows(const char *sql)
{
	if (pg) {
		PGconn *c = PQconnectdb(dbpath);
		PGresult *r = PQexec(c, sql);
		size_t n = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) ? (size_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
		PQclear(r);
		PQfinish(c);
		return n;
	}
	sqlite3 *db;
	sqlite3_open(dbpath, &db);
	sqlite3_stmt *s;
	size_t n = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		n = (size_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

static void test_metrics_and_resume(void)
{
	Store *st;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	StoreBatch *b;
	CHECK_RC(store_batch_new(st, 0, &b, err, sizeof err));
	int64_t id = insert(st, "m", 0, "");
	StoreJob j;
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == id && j.checkpoint_step == -1);
	store_job_clear(&j);
	for (int s = 1; s <= 100; s++) {
		store_batch_metric(b, id, s, "loss", 1.0 / s);
		store_batch_metric(b, id, s, "lr", 0.1);
		if (s == 60) {
			/* The worker's checkpoint order: flush, then record the checkpoint. */
			CHECK(store_batch_flush(b, err, sizeof err) == 120);
			CHECK_RC(store_job_checkpoint(st, id, 60, err, sizeof err));
		}
	}
	store_batch_metric(b, id, 100, "grad_norm", NAN);
	store_batch_event(b, id, 6, "pretrain started");
	store_batch_progress(b, id, 100, 1000, "pretrain", 0.05, 12.5);

	CHECK(count_rows("SELECT count(*) FROM metrics") == 120);
	int rows = store_batch_flush(b, err, sizeof err);
	CHECK(rows == 83);
	CHECK(count_rows("SELECT count(*) FROM metrics") == 201);
	StoreBatchStats bs;
	store_batch_stats(b, &bs);
	CHECK(bs.flushes == 2 && bs.points_written == 201 && bs.events_written == 1 && bs.pending == 0);
	CHECK(store_batch_flush(b, err, sizeof err) == 0);      /* nothing pending: no transaction */
	CHECK_RC(store_job_get(st, id, &j, err, sizeof err));
	CHECK(j.step == 100 && j.total == 1000 && j.stage && strcmp(j.stage, "pretrain") == 0 && fabs(j.eta_s - 12.5) < 1e-9 &&
	      fabs(j.progress - 0.05) < 1e-12);
	store_job_clear(&j);

	/* Cursor reads: all, then only the new ones. */
	MetricSet ms;
	CHECK_RC(store_metrics_read(st, id, 0, NULL, 0, 0, &ms, err, sizeof err));
	CHECK(ms.n == 3 && ms.total_points == 201 && ms.job_state == JOB_RUNNING);
	int64_t cursor = ms.cursor;
	metric_set_clear(&ms);
	CHECK(store_metrics_read(st, 9999, 0, NULL, 0, 0, &ms, err, sizeof err) == STORE_ENOTFOUND);
	const char *keys[] = { "loss" };
	CHECK_RC(store_metrics_read(st, id, 0, keys, 1, 0, &ms, err, sizeof err));
	CHECK(ms.n == 1 && ms.series[0].n == 100 && ms.series[0].pts[99].step == 100 && fabs(ms.series[0].pts[0].value - 1.0) < 1e-12);
	metric_set_clear(&ms);
	CHECK_RC(store_metrics_read(st, id, cursor, NULL, 0, 0, &ms, err, sizeof err));
	CHECK(ms.n == 0 && ms.cursor == cursor);
	metric_set_clear(&ms);
	/* max_rows (per key) pages through: every point exactly once, in order, none skipped. */
	CHECK_RC(store_metrics_read(st, id, 0, NULL, 0, 50, &ms, err, sizeof err));
	CHECK(ms.truncated && ms.cursor < cursor && ms.total_points < 201);
	metric_set_clear(&ms);
	{
		int64_t c = 0, seen = 0, last_loss_step = 0;
		int pages = 0, order_ok = 1;
		for (;; pages++) {
			CHECK_RC(store_metrics_read(st, id, c, NULL, 0, 30, &ms, err, sizeof err));
			for (int i = 0; i < ms.n; i++) {
				seen += (int64_t)ms.series[i].n;
				if (strcmp(ms.series[i].key, "loss") == 0)
					for (size_t k = 0; k < ms.series[i].n; k++) {
						if (ms.series[i].pts[k].step != last_loss_step + 1) order_ok = 0;
						last_loss_step = ms.series[i].pts[k].step;
					}
			}
			int more = ms.truncated;
			CHECK(ms.cursor >= c);
			c = ms.cursor;
			metric_set_clear(&ms);
			if (!more || pages > 100) break;
		}
		CHECK(seen == 201 && order_ok && last_loss_step == 100 && c == cursor && pages >= 3);
	}
	CHECK_RC(store_metrics_latest(st, id, &ms, err, sizeof err));
	CHECK(ms.n == 3);
	for (int i = 0; i < ms.n; i++) {
		if (strcmp(ms.series[i].key, "loss") == 0) CHECK(ms.series[i].pts[0].step == 100 && fabs(ms.series[i].pts[0].value - 0.01) < 1e-12);
		if (strcmp(ms.series[i].key, "grad_norm") == 0) CHECK(isnan(ms.series[i].pts[0].value));
	}
	metric_set_clear(&ms);

	/* A checkpoint at step 60, then a stop; points 61..100 are dropped when it is claimed again,
	 * and the steps it repeats do not appear twice. */
	CHECK_RC(store_job_finish(st, id, JOB_QUEUED, NULL, NULL, err, sizeof err));
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == id && j.checkpoint_step == 60 && j.attempts == 2 && j.step == 60);
	store_job_clear(&j);
	CHECK(count_rows("SELECT count(*) FROM metrics WHERE step > 60") == 0);
	CHECK(count_rows("SELECT count(*) FROM metrics") == 120);
	CHECK_RC(store_metrics_latest(st, id, &ms, err, sizeof err));
	CHECK(ms.n == 2 && ms.series[0].pts[0].step == 60);   /* grad_norm (step 100) is gone */
	metric_set_clear(&ms);
	for (int s = 61; s <= 120; s++) store_batch_metric(b, id, s, "loss", 1.0 / s);
	CHECK(store_batch_flush(b, err, sizeof err) == 60);
	CHECK(count_rows("SELECT count(*) FROM (SELECT step, key FROM metrics GROUP BY step, key HAVING count(*) > 1) AS d") == 0);
	/* Cursors stay monotonic after the delete: a client at the old cursor sees all new points. */
	CHECK_RC(store_metrics_read(st, id, cursor, NULL, 0, 0, &ms, err, sizeof err));
	CHECK(ms.total_points == 60 && ms.series[0].pts[0].step == 61);
	metric_set_clear(&ms);

	/* Crash recovery: running -> queued; a running job with a pending cancel -> cancelled. */
	int64_t other = insert(st, "o", -1, "");
	int64_t ids[4];
	int n = store_recover(st, 3, ids, 4, err, sizeof err);
	CHECK(n == 1 && ids[0] == id);
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == id);
	store_job_clear(&j);
	JobState ns;
	CHECK_RC(store_job_cancel(st, id, &ns, err, sizeof err));
	CHECK(store_recover(st, 3, ids, 4, err, sizeof err) == 0);
	CHECK_RC(store_job_get(st, id, &j, err, sizeof err));
	CHECK(j.state == JOB_CANCELLED && j.error && strcmp(j.error, "cancelled by request") == 0);
	store_job_clear(&j);
	(void)other;

	/* Events. */
	StoreEvent *ev;
	CHECK_RC(store_event_add(st, id, 4, "second event", err, sizeof err));
	CHECK_RC(store_events_read(st, id, 0, 100, &ev, &n, err, sizeof err));
	CHECK(n == 2 && strcmp(ev[0].message, "pretrain started") == 0 && ev[1].level == 4);
	int64_t ecur = n ? ev[0].id : 0;
	store_events_free(ev, n);
	CHECK_RC(store_events_read(st, id, ecur, 100, &ev, &n, err, sizeof err));
	CHECK(n == 1);
	store_events_free(ev, n);

	/* Artifacts. */
	char apath[400];
	snprintf(apath, sizeof apath, "%s/artifact.txt", dir);
	FILE *f = fopen(apath, "w");
	fputs("abc", f);
	fclose(f);
	CHECK_RC(store_artifact_put(st, id, "artifact.txt", apath, err, sizeof err));
	CHECK(store_artifact_put(st, id, "missing", "/nonexistent/x", err, sizeof err) < 0);
	StoreArtifact *av;
	CHECK_RC(store_artifact_list(st, id, &av, &n, err, sizeof err));
	CHECK(n == 1 && av[0].size == 3 && strcmp(av[0].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
	store_artifacts_free(av, n);
	StoreArtifact a;
	CHECK_RC(store_artifact_get(st, id, "artifact.txt", &a, err, sizeof err));
	CHECK(strcmp(a.path, apath) == 0);
	store_artifact_clear(&a);
	CHECK(store_artifact_get(st, id, "nope", &a, err, sizeof err) == STORE_ENOTFOUND);
	unlink(apath);

	store_batch_free(b);
	store_free(st);
	rm_db();
}

/* ---- concurrency: claimers and inserters on separate threads -------------------------------- */

typedef struct Shared { Store *st; int64_t claimed[400]; int nclaimed; pthread_mutex_t mu; int inserted; } Shared;

static void *claimer(void *arg)
{
	Shared *sh = arg;
	char e[256];
	for (int idle = 0; idle < 200;) {
		StoreJob j;
		int rc = store_job_claim(sh->st, &j, e, sizeof e);
		if (rc < 0) { fprintf(stderr, "claim: %s\n", e); failures++; return NULL; }
		if (rc == 0) { idle++; usleep(1000); continue; }
		pthread_mutex_lock(&sh->mu);
		if (sh->nclaimed < 400) sh->claimed[sh->nclaimed++] = j.id;
		pthread_mutex_unlock(&sh->mu);
		store_job_finish(sh->st, j.id, JOB_SUCCEEDED, "{}", NULL, e, sizeof e);
		store_job_clear(&j);
	}
	return NULL;
}

static void *inserter(void *arg)
{
	Shared *sh = arg;
	char e[256];
	for (int i = 0; i < 50; i++) {
		StoreNewJob nj = { .spec = "{}", .method = "x", .owner = "t" };
		int64_t id;
		if (store_job_insert(sh->st, &nj, &id, e, sizeof e) < 0) { fprintf(stderr, "insert: %s\n", e); failures++; }
		else { pthread_mutex_lock(&sh->mu); sh->inserted++; pthread_mutex_unlock(&sh->mu); }
	}
	return NULL;
}

static void test_concurrency(void)
{
	Shared sh = { 0 };
	pthread_mutex_init(&sh.mu, NULL);
	CHECK_RC(store_open(dbpath, &sh.st, err, sizeof err));
	pthread_t t[6];
	for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, inserter, &sh);
	for (int i = 4; i < 6; i++) pthread_create(&t[i], NULL, claimer, &sh);
	for (int i = 0; i < 6; i++) pthread_join(t[i], NULL);
	CHECK(sh.inserted == 200);
	CHECK(sh.nclaimed == 200);
	/* Each job claimed exactly once. */
	int dup = 0;
	for (int i = 0; i < sh.nclaimed; i++)
		for (int k = i + 1; k < sh.nclaimed; k++)
			if (sh.claimed[i] == sh.claimed[k]) dup++;
	CHECK(dup == 0);
	store_free(sh.st);
	pthread_mutex_destroy(&sh.mu);
	rm_db();
}

/* The change stamp answer caches rely on: equal while nothing commits (reads included), different
 * after a commit of this process, of the batch writer and of another connection (another process
 * writing the file, like `sqlite3 ssld.db`). */
static void test_change_stamp(void)
{
	Store *st;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	StoreStamp a, b;
	CHECK(store_change_stamp(st, &a) == 0);
	CHECK(store_change_stamp(st, &b) == 0 && store_stamp_equal(&a, &b));
	int64_t id = insert(st, "stamp", 0, "");
	CHECK(store_change_stamp(st, &b) == 0 && !store_stamp_equal(&a, &b));
	a = b;
	StoreJob j;
	CHECK_RC(store_job_get(st, id, &j, err, sizeof err));
	store_job_clear(&j);
	MetricSet ms;
	CHECK_RC(store_metrics_read(st, id, 0, NULL, 0, 100, &ms, err, sizeof err));
	metric_set_clear(&ms);
	CHECK(store_change_stamp(st, &b) == 0 && store_stamp_equal(&a, &b));

	StoreBatch *sb;
	CHECK_RC(store_batch_new(st, 1024, &sb, err, sizeof err));
	store_batch_metric(sb, id, 1, "loss", 1.5);
	CHECK_RC(store_batch_flush(sb, err, sizeof err));
	CHECK(store_change_stamp(st, &b) == 0 && !store_stamp_equal(&a, &b));
	store_batch_free(sb);
	a = b;

	char sql[128];
	snprintf(sql, sizeof sql, "UPDATE jobs SET name = 'renamed' WHERE id = %lld", (long long)id);
	CHECK(raw_exec(sql) == 0);
	CHECK(store_change_stamp(st, &b) == 0 && !store_stamp_equal(&a, &b));
	a = b;
	CHECK(raw_exec("SELECT count(*) FROM jobs") == 0);
	CHECK(store_change_stamp(st, &b) == 0 && store_stamp_equal(&a, &b));
	store_free(st);
	rm_db();
}

static int64_t insert_from(Store *st, const char *name, int prio, const char *owner, int64_t src, int any_owner, int *rc)
{
	StoreNewJob nj = { .spec = "{\"method\":\"none\"}", .name = name, .method = "none", .owner = owner, .priority = prio,
	                   .init_from_job = src, .init_from_any_owner = any_owner };
	int64_t id = -1;
	*rc = store_job_insert(st, &nj, &id, err, sizeof err);
	return id;
}

static JobState state_of(Store *st, int64_t id)
{
	JobState s = JOB_STATE_COUNT;
	CHECK_RC(store_job_state(st, id, &s, err, sizeof err));
	return s;
}

static int error_is(Store *st, int64_t id, const char *want)
{
	StoreJob j;
	if (store_job_get(st, id, &j, err, sizeof err) < 0) return 0;
	int ok = j.error && strcmp(j.error, want) == 0;
	if (!ok) fprintf(stderr, "job %lld error '%s', expected '%s'\n", (long long)id, j.error ? j.error : "(null)", want);
	store_job_clear(&j);
	return ok;
}

/* init_from: a dependant waits for its source whatever its priority, runs once the source
 * succeeded, and fails (down a chain) when its source fails or is cancelled; which sources may be
 * named at all. */
static void test_init_from(void)
{
	Store *st;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	int rc;
	int64_t src = insert(st, "src", 0, "ann");
	int64_t dep = insert_from(st, "dep", 10, "ann", src, 0, &rc);
	CHECK(rc == 0);
	StoreJob j, k;
	/* The priority-10 dependant is not claimed before its source. */
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == src);
	CHECK(store_job_claim(st, &k, err, sizeof err) == 0);   /* the dependant waits while src runs */
	store_job_clear(&k);
	CHECK_RC(store_job_finish(st, src, JOB_SUCCEEDED, "{}", NULL, err, sizeof err));
	store_job_clear(&j);
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == dep && j.init_from_job == src);
	store_job_clear(&j);
	CHECK_RC(store_job_finish(st, dep, JOB_SUCCEEDED, "{}", NULL, err, sizeof err));

	/* Insert: unknown source; another owner's unfinished source; a failed one. */
	insert_from(st, "x", 0, "ann", 9999, 0, &rc);
	CHECK(rc == STORE_ENOTFOUND && strstr(err, "job 9999 does not exist"));
	int64_t bobs = insert(st, "bobs", 0, "bob");
	insert_from(st, "x", 0, "ann", bobs, 0, &rc);
	CHECK(rc == STORE_ESTATE && strstr(err, "belongs to 'bob' and is queued"));
	int64_t admin_dep = insert_from(st, "x", 0, "root", bobs, 1, &rc);   /* an admin may wait for anyone's */
	CHECK(rc == 0);
	int64_t other_dep = insert_from(st, "y", 0, "ann", src, 0, &rc);   /* src succeeded: anyone may start from it */
	CHECK(rc == 0);
	(void)other_dep;

	/* A source that fails fails its dependants, and theirs, with its reason. */
	int64_t dep2 = insert_from(st, "dep2", 0, "bob", bobs, 0, &rc);
	int64_t dep3 = insert_from(st, "dep3", 0, "bob", dep2, 0, &rc);
	CHECK(rc == 0);
	int64_t got = 0;
	while (store_job_claim(st, &j, err, sizeof err) == 1) {   /* runs only what may run: never dep2, dep3 */
		CHECK(j.id != dep2 && j.id != dep3 && j.id != admin_dep);
		if (j.id == bobs) got = j.id;
		if (j.id != bobs) CHECK_RC(store_job_finish(st, j.id, JOB_SUCCEEDED, "{}", NULL, err, sizeof err));
		store_job_clear(&j);
	}
	CHECK(got == bobs);
	CHECK_RC(store_job_finish(st, bobs, JOB_FAILED, NULL, "loss became NaN at step 3", err, sizeof err));
	char want[160];
	snprintf(want, sizeof want, "init_from job %lld failed: loss became NaN at step 3", (long long)bobs);
	CHECK(state_of(st, dep2) == JOB_FAILED && error_is(st, dep2, want));
	CHECK(state_of(st, admin_dep) == JOB_FAILED && error_is(st, admin_dep, want));
	snprintf(want, sizeof want, "init_from job %lld failed: init_from job %lld failed: loss became NaN at step 3",
	         (long long)dep2, (long long)bobs);
	CHECK(state_of(st, dep3) == JOB_FAILED && error_is(st, dep3, want));
	insert_from(st, "late", 0, "bob", bobs, 0, &rc);   /* and no new job can start from it */
	CHECK(rc == STORE_ESTATE && strstr(err, "failed and has no final checkpoint (loss became NaN"));

	/* Cancelling a queued source fails its dependants at once. */
	int64_t c = insert(st, "c", 0, "ann");
	int64_t cdep = insert_from(st, "cdep", 0, "ann", c, 0, &rc);
	JobState ns;
	CHECK_RC(store_job_cancel(st, c, &ns, err, sizeof err));
	snprintf(want, sizeof want, "init_from job %lld was cancelled: cancelled while queued", (long long)c);
	CHECK(state_of(st, cdep) == JOB_FAILED && error_is(st, cdep, want));

	/* At start-up: a dependant whose source ended badly before (an older ssld, a database edited by
	 * hand) fails too. */
	int64_t s2 = insert(st, "s2", 0, "ann");
	int64_t d2 = insert_from(st, "d2", 0, "ann", s2, 0, &rc);
	char sql[160];
	snprintf(sql, sizeof sql, "UPDATE jobs SET state = 'failed', error = 'disk full' WHERE id = %lld", (long long)s2);
	CHECK(raw_exec(sql) == 0);
	CHECK(state_of(st, d2) == JOB_QUEUED);
	CHECK(store_job_claim(st, &j, err, sizeof err) == 0);   /* never claimed */
	int64_t ids[4];
	CHECK(store_recover(st, 3, ids, 4, err, sizeof err) == 0);
	snprintf(want, sizeof want, "init_from job %lld failed: disk full", (long long)s2);
	CHECK(state_of(st, d2) == JOB_FAILED && error_is(st, d2, want));
	store_free(st);
	rm_db();
}

/* A job found running at start-up counts an interruption; at max_interruptions it fails instead
 * of being requeued. A clean stop (finish back to queued) does not count. */
static void test_interruptions(void)
{
	Store *st;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	int64_t id = insert(st, "poison", 0, "ann");
	int64_t ids[4];
	StoreJob j;
	/* A clean stop: not an interruption. */
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == id);
	store_job_clear(&j);
	CHECK_RC(store_job_finish(st, id, JOB_QUEUED, NULL, NULL, err, sizeof err));
	/* Two crashes: requeued each time. */
	for (int i = 1; i <= 2; i++) {
		CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == id);
		store_job_clear(&j);
		CHECK(store_recover(st, 3, ids, 4, err, sizeof err) == 1 && ids[0] == id);
		CHECK_RC(store_job_get(st, id, &j, err, sizeof err));
		CHECK(j.state == JOB_QUEUED && j.interruptions == i && j.attempts == i + 1);
		store_job_clear(&j);
	}
	/* The third: it fails with the reason, and an event says so. */
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == id);
	store_job_clear(&j);
	CHECK(store_recover(st, 3, ids, 4, err, sizeof err) == 0);
	CHECK(state_of(st, id) == JOB_FAILED);
	CHECK(error_is(st, id, "interrupted 3 times (the daemon stopped or crashed while it ran); giving up"));
	StoreEvent *ev;
	int n;
	CHECK_RC(store_events_read(st, id, 0, 10, &ev, &n, err, sizeof err));
	CHECK(n == 1 && strstr(ev[0].message, "interrupted 3 times") && ev[0].level == 3);
	store_events_free(ev, n);
	/* 0 = no cap. */
	int64_t other = insert(st, "other", 0, "ann");
	for (int i = 0; i < 5; i++) {
		CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == other);
		store_job_clear(&j);
		CHECK(store_recover(st, 0, ids, 4, err, sizeof err) == 1);
	}
	CHECK(state_of(st, other) == JOB_QUEUED);
	store_free(st);
	rm_db();
}

/* Leases (store.h): the claim records the node, the lease and the next generation; renewal and
 * every fenced write refuse an old generation; an expired lease goes back to the queue with an event
 * naming the node, or fails past the interruption cap; a flush drops a fenced run's rows. Only the
 * store API is used, so the same checks hold for every backend. */
static size_t points_of(Store *st, int64_t id)
{
	MetricSet ms;
	size_t n = 0;
	if (store_metrics_read(st, id, 0, NULL, 0, 0, &ms, err, sizeof err) == 0) n = ms.total_points;
	metric_set_clear(&ms);
	return n;
}

static void test_leases(void)
{
	Store *st;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	CHECK(store_healthy(st) == 1);
	int64_t a = insert(st, "a", 0, "ann"), b2 = insert(st, "b", 0, "ann"), c = insert(st, "c", 0, "bob");
	StoreJob j;
	double t0 = store_now();
	CHECK(store_job_claim_lease(st, "n1", 30, 1, &j, err, sizeof err) == 1);
	CHECK(j.id == a && j.node && strcmp(j.node, "n1") == 0 && j.lease_gen == 1);
	CHECK(j.lease_until >= t0 + 29 && j.lease_until <= store_now() + 30);
	store_job_clear(&j);
	/* ann has one running (on n1): node n2 gets bob's job, not ann's older b. */
	CHECK(store_job_claim_lease(st, "n2", 30, 1, &j, err, sizeof err) == 1 && j.id == c);
	store_job_clear(&j);
	CHECK(store_job_claim_lease(st, "n2", 30, 1, &j, err, sizeof err) == 0);
	/* Renewal under the right generation only. */
	CHECK_RC(store_job_renew(st, a, 1, 60, err, sizeof err));
	CHECK_RC(store_job_get(st, a, &j, err, sizeof err));
	CHECK(j.lease_until >= t0 + 59);
	store_job_clear(&j);
	CHECK(store_job_renew(st, a, 2, 60, err, sizeof err) == STORE_FENCED);
	CHECK(store_job_renew(st, b2, 0, 60, err, sizeof err) == STORE_FENCED);   /* queued */
	/* Points of a's first run, before and after a checkpoint. */
	StoreBatch *bt;
	CHECK_RC(store_batch_new(st, 0, &bt, err, sizeof err));
	CHECK_RC(store_batch_lease(bt, a, 1));
	for (int s = 1; s <= 10; s++) store_batch_metric(bt, a, s, "loss", 1.0 / s);
	CHECK(store_batch_flush(bt, err, sizeof err) == 10);
	CHECK_RC(store_job_checkpoint_fenced(st, a, 1, 10, err, sizeof err));
	for (int s = 11; s <= 15; s++) store_batch_metric(bt, a, s, "loss", 1.0 / s);
	CHECK(store_batch_flush(bt, err, sizeof err) == 5);
	CHECK(store_batch_fenced(bt, a) == 0);
	/* n1 stops renewing: its lease expires (a renewal into the past stands for the time passing). */
	CHECK_RC(store_job_renew(st, a, 1, -5, err, sizeof err));
	int64_t ids[4];
	int n = -1;
	CHECK_RC(store_job_reclaim_expired(st, 3, ids, 4, &n, err, sizeof err));
	CHECK(n == 1 && ids[0] == a);
	CHECK_RC(store_job_get(st, a, &j, err, sizeof err));
	CHECK(j.state == JOB_QUEUED && j.interruptions == 1 && j.node == NULL && j.lease_until == 0 && j.checkpoint_step == 10);
	store_job_clear(&j);
	StoreEvent *ev;
	int ne;
	CHECK_RC(store_events_read(st, a, 0, 10, &ev, &ne, err, sizeof err));
	CHECK(ne == 1 && ev[0].level == 4 && strstr(ev[0].message, "lease of node n1 expired"));
	store_events_free(ev, ne);
	/* Nothing else had expired; a second pass takes nothing. */
	CHECK_RC(store_job_reclaim_expired(st, 3, ids, 4, &n, err, sizeof err));
	CHECK(n == 0);
	/* The old run's late writes are refused; its late points are dropped and it is told. */
	CHECK(store_job_finish_fenced(st, a, 1, JOB_SUCCEEDED, "{}", NULL, err, sizeof err) == STORE_FENCED);
	CHECK(store_job_checkpoint_fenced(st, a, 1, 20, err, sizeof err) == STORE_FENCED);
	store_batch_metric(bt, a, 16, "loss", 0.5);
	CHECK(store_batch_flush(bt, err, sizeof err) >= 0);
	CHECK(store_batch_fenced(bt, a) == STORE_FENCED);
	/* n2 claims it: the next generation, the points after the checkpoint gone. */
	CHECK(store_job_claim_lease(st, "n2", 30, 0, &j, err, sizeof err) == 1);
	CHECK(j.id == a && j.lease_gen == 2 && strcmp(j.node, "n2") == 0 && j.step == 10);
	store_job_clear(&j);
	CHECK(points_of(st, a) == 10);
	/* n1's stale run still cannot write, under its own generation; n2 can. */
	store_batch_metric(bt, a, 11, "loss", 9);
	CHECK(store_batch_flush(bt, err, sizeof err) >= 0);
	CHECK(points_of(st, a) == 10);
	CHECK_RC(store_batch_lease(bt, a, 2));
	CHECK(store_batch_fenced(bt, a) == 0);
	store_batch_metric(bt, a, 11, "loss", 1.0 / 11);
	CHECK(store_batch_flush(bt, err, sizeof err) == 1);
	CHECK(points_of(st, a) == 11);
	CHECK(store_job_finish_fenced(st, a, 1, JOB_FAILED, NULL, "x", err, sizeof err) == STORE_FENCED);
	CHECK_RC(store_job_finish_fenced(st, a, 2, JOB_SUCCEEDED, "{}", NULL, err, sizeof err));
	CHECK_RC(store_job_get(st, a, &j, err, sizeof err));
	CHECK(j.state == JOB_SUCCEEDED && j.node == NULL);
	store_job_clear(&j);
	/* Past the interruption cap an expired job fails; a claim without a lease never expires. */
	CHECK(store_job_claim_lease(st, "n1", 30, 0, &j, err, sizeof err) == 1 && j.id == b2);
	int64_t gb = j.lease_gen;
	store_job_clear(&j);
	CHECK_RC(store_job_renew(st, b2, gb, -1, err, sizeof err));
	CHECK_RC(store_job_reclaim_expired(st, 1, ids, 4, &n, err, sizeof err));
	CHECK(n == 0);
	CHECK_RC(store_job_get(st, b2, &j, err, sizeof err));
	CHECK(j.state == JOB_FAILED && j.error && strstr(j.error, "interrupted 1 times"));
	store_job_clear(&j);
	CHECK_RC(store_job_finish(st, c, JOB_SUCCEEDED, "{}", NULL, err, sizeof err));   /* unfenced, as one node */
	int64_t d = insert(st, "d", 0, "ann");
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == d && j.node == NULL && j.lease_until == 0);
	store_job_clear(&j);
	CHECK_RC(store_job_reclaim_expired(st, 0, ids, 4, &n, err, sizeof err));
	CHECK(n == 0 && state_of(st, d) == JOB_RUNNING);
	/* A node's start-up recovery takes back its own running jobs only. */
	CHECK_RC(store_job_finish(st, d, JOB_SUCCEEDED, "{}", NULL, err, sizeof err));
	int64_t e1 = insert(st, "e1", 0, "ann"), e2 = insert(st, "e2", 0, "bob");
	CHECK(store_job_claim_lease(st, "n1", 30, 0, &j, err, sizeof err) == 1 && j.id == e1);
	store_job_clear(&j);
	CHECK(store_job_claim_lease(st, "n2", 30, 0, &j, err, sizeof err) == 1 && j.id == e2);
	store_job_clear(&j);
	CHECK(store_recover_node(st, "n1", 3, ids, 4, err, sizeof err) == 1 && ids[0] == e1);
	CHECK_RC(store_job_get(st, e1, &j, err, sizeof err));
	CHECK(j.state == JOB_QUEUED && j.node == NULL && j.interruptions == 1);
	store_job_clear(&j);
	CHECK_RC(store_job_get(st, e2, &j, err, sizeof err));
	CHECK(j.state == JOB_RUNNING && j.node && strcmp(j.node, "n2") == 0 && j.interruptions == 0);
	store_job_clear(&j);
	CHECK(store_recover_node(st, "n1", 3, ids, 4, err, sizeof err) == 0);
	store_batch_free(bt);
	store_free(st);
	rm_db();
}

/* PostgreSQL: a metric batch is named by a token recorded in its transaction, so the retry of a
 * batch that did commit (its acknowledgement lost with the connection) writes nothing again. */
static void test_pg_batch_token(void)
{
	Store *st;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	int64_t id = insert(st, "tok", 0, "");
	StoreJob j;
	CHECK(store_job_claim_lease(st, "n1", 30, 0, &j, err, sizeof err) == 1);
	Point pts[3] = {
		{ .job = id, .gen = j.lease_gen, .step = 1, .time = 1, .value = 0.5, .key = "loss" },
		{ .job = id, .gen = j.lease_gen, .step = 2, .time = 2, .value = 0.4, .key = "loss" },
		{ .job = id, .gen = -1, .step = 2, .time = 2, .value = NAN, .key = "grad_norm" },
	};
	store_job_clear(&j);
	BatchRows rows = { .pts = pts, .npts = 3 };
	Fences fs = { 0 };
	CHECK_RC(pgstore_batch_write(store_pg(st), &rows, "test-1", &fs, err, sizeof err));
	CHECK(points_of(st, id) == 3);
	CHECK_RC(pgstore_batch_write(store_pg(st), &rows, "test-1", &fs, err, sizeof err));   /* the retry */
	CHECK(points_of(st, id) == 3);
	CHECK_RC(pgstore_batch_write(store_pg(st), &rows, "test-2", &fs, err, sizeof err));   /* another batch */
	CHECK(points_of(st, id) == 6);
	MetricSet ms;
	CHECK_RC(store_metrics_latest(st, id, &ms, err, sizeof err));
	CHECK(ms.n == 2 && strcmp(ms.series[0].key, "grad_norm") == 0 && isnan(ms.series[0].pts[0].value) &&
	      ms.series[1].pts[0].step == 2 && ms.series[1].pts[0].value == 0.4);
	metric_set_clear(&ms);
	free(fs.v);
	/* A flush bigger than one INSERT statement (1,000 rows each) goes in whole. */
	StoreBatch *b;
	CHECK_RC(store_batch_new(st, 0, &b, err, sizeof err));
	for (int s = 1; s <= 1200; s++) {
		store_batch_metric(b, id, 10 + s, "loss", 1.0 / s);
		store_batch_metric(b, id, 10 + s, "lr", 0.1);
	}
	CHECK(store_batch_flush(b, err, sizeof err) == 2400);
	CHECK(points_of(st, id) == 6 + 2400);
	store_batch_free(b);
	store_free(st);
	rm_db();
}

/* A flush that fails keeps its rows; the next flush writes them first, then what came meanwhile,
 * each point once (SQLite: the metric_flush fault point of batch.c fails the first). */
static void test_flush_retry(void)
{
	Store *st;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	int64_t id = insert(st, "retry", 0, "");
	StoreJob j;
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1);
	store_job_clear(&j);
	StoreBatch *b;
	CHECK_RC(store_batch_new(st, 0, &b, err, sizeof err));
	for (int s = 1; s <= 10; s++) store_batch_metric(b, id, s, "loss", 1.0 / s);
	setenv("SSLD_FAULT", "metric_flush@1", 1);
	CHECK(store_batch_flush(b, err, sizeof err) < 0 && strstr(err, "injected"));
	unsetenv("SSLD_FAULT");
	CHECK(points_of(st, id) == 0);
	for (int s = 11; s <= 15; s++) store_batch_metric(b, id, s, "loss", 1.0 / s);
	StoreBatchStats bs;
	store_batch_stats(b, &bs);
	CHECK(bs.pending == 15 && bs.failures == 1);
	CHECK(store_batch_flush(b, err, sizeof err) == 15);
	CHECK(points_of(st, id) == 15);
	MetricSet ms;
	CHECK_RC(store_metrics_read(st, id, 0, NULL, 0, 0, &ms, err, sizeof err));
	int ordered = ms.n == 1 && ms.series[0].n == 15;
	for (size_t i = 0; ordered && i < ms.series[0].n; i++) ordered = ms.series[0].pts[i].step == (int64_t)i + 1;
	CHECK(ordered);
	metric_set_clear(&ms);
	store_batch_free(b);
	store_free(st);
	rm_db();
}

/* store_migrate: an SQLite store with one of everything, copied into the (empty) PostgreSQL
 * database, reads back the same through the store API, ids included; new ids continue past
 * SQLite's last, deleted ones included; a second copy is refused naming what the target holds. */
static void test_migrate(void)
{
	char src[1100];
	snprintf(src, sizeof src, "%s/src.db", dir);
	Store *st;
	CHECK_RC(store_open(src, &st, err, sizeof err));
	store_set_outbox(st, 1);   /* a's end leaves a pending webhook delivery to copy */
	int64_t a = insert(st, "a", 3, "ann");
	StoreNewJob nj = { .spec = "{\"method\":\"simclr\"}", .name = "g", .method = "simclr", .owner = "bob",
	                   .group_setting = "{\"lr\":0.1}" };
	int64_t gid, gids[2];
	StoreNewJob two[2] = { nj, nj };
	CHECK_RC(store_group_insert(st, "grp", "bob", "{\"grid\":{}}", two, 2, &gid, gids, err, sizeof err));
	StoreJob j;
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == a);
	store_job_clear(&j);
	StoreBatch *b;
	CHECK_RC(store_batch_new(st, 0, &b, err, sizeof err));
	for (int s = 1; s <= 3; s++) store_batch_metric(b, a, s, "loss", 1.0 / s);
	store_batch_metric(b, a, 3, "acc", NAN);
	store_batch_event(b, a, 6, "hello");
	CHECK(store_batch_flush(b, err, sizeof err) == 5);
	CHECK_RC(store_job_checkpoint(st, a, 3, err, sizeof err));
	for (int s = 4; s <= 5; s++) store_batch_metric(b, a, s, "loss", 1.0 / s);
	CHECK(store_batch_flush(b, err, sizeof err) == 2);
	store_batch_free(b);
	CHECK_RC(store_job_finish(st, a, JOB_QUEUED, NULL, NULL, err, sizeof err));
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == a);   /* drops the points after step 3 */
	store_job_clear(&j);
	char art[1200];
	snprintf(art, sizeof art, "%s/artifact.txt", dir);
	FILE *f = fopen(art, "w");
	fputs("abc", f);
	fclose(f);
	CHECK_RC(store_artifact_put(st, a, "notes.txt", art, err, sizeof err));
	CHECK_RC(store_job_finish(st, a, JOB_SUCCEEDED, "{\"r\":1}", NULL, err, sizeof err));
	char h[65];
	memset(h, 'c', 64), h[64] = 0;
	CHECK_RC(store_token_add(st, "ann", h, 1, err, sizeof err));
	StoreDataset d = { .owner = "ann", .name = "ds", .format = "csv", .bytes = 7, .files = 1, .summary = "{}", .path = "/p" };
	CHECK_RC(store_dataset_insert(st, &d, err, sizeof err));
	StoreJob before;
	CHECK_RC(store_job_get(st, a, &before, err, sizeof err));
	MetricSet mb;
	CHECK_RC(store_metrics_read(st, a, 0, NULL, 0, 0, &mb, err, sizeof err));
	store_free(st);

	StoreMigrateStats ms;
	CHECK_RC(store_migrate(src, dbpath, &ms, err, sizeof err));
	CHECK(ms.jobs == 3 && ms.groups == 1 && ms.metrics == 4 && ms.metric_keys == 2 && ms.events == 1 && ms.artifacts == 1 && ms.tokens == 1 &&
	      ms.datasets == 1 && ms.deliveries == 1);
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	StoreDelivery dl;
	CHECK(store_delivery_get(st, a, &dl, err, sizeof err) == 1 && dl.state == DELIVERY_PENDING);
	StoreJob after;
	CHECK_RC(store_job_get(st, a, &after, err, sizeof err));
	CHECK(after.state == JOB_SUCCEEDED && after.priority == 3 && strcmp(after.results, "{\"r\":1}") == 0 &&
	      after.checkpoint_step == 3 && after.attempts == 2 && after.created_at == before.created_at &&
	      after.finished_at == before.finished_at && strcmp(after.spec, before.spec) == 0);
	store_job_clear(&after);
	store_job_clear(&before);
	MetricSet ma;
	CHECK_RC(store_metrics_read(st, a, 0, NULL, 0, 0, &ma, err, sizeof err));
	int same = ma.n == mb.n && ma.cursor == mb.cursor;
	for (int i = 0; same && i < ma.n; i++) {
		same = strcmp(ma.series[i].key, mb.series[i].key) == 0 && ma.series[i].n == mb.series[i].n;
		for (size_t k = 0; same && k < ma.series[i].n; k++)
			same = ma.series[i].pts[k].id == mb.series[i].pts[k].id && ma.series[i].pts[k].step == mb.series[i].pts[k].step &&
			       (ma.series[i].pts[k].value == mb.series[i].pts[k].value ||
			        (isnan(ma.series[i].pts[k].value) && isnan(mb.series[i].pts[k].value)));
	}
	CHECK(same && ma.total_points == 4);
	metric_set_clear(&ma);
	metric_set_clear(&mb);
	StoreGroup g;
	CHECK_RC(store_group_get(st, gid, &g, err, sizeof err));
	CHECK(g.jobs == 2 && g.counts[JOB_QUEUED] == 2 && strcmp(g.sweep, "{\"grid\":{}}") == 0);
	store_group_clear(&g);
	CHECK_RC(store_job_get(st, gids[1], &j, err, sizeof err));
	CHECK(j.group_id == gid && j.group_setting && strcmp(j.group_setting, "{\"lr\":0.1}") == 0);
	store_job_clear(&j);
	StoreArtifact ar;
	CHECK_RC(store_artifact_get(st, a, "notes.txt", &ar, err, sizeof err));
	CHECK(ar.size == 3 && strcmp(ar.path, art) == 0);
	store_artifact_clear(&ar);
	StoreToken t;
	CHECK(store_token_find(st, h, &t, err, sizeof err) == 1 && strcmp(t.name, "ann") == 0 && t.admin == 1);
	StoreDataset got;
	CHECK_RC(store_dataset_get(st, "ann", "ds", &got, err, sizeof err));
	CHECK(got.bytes == 7 && strcmp(got.format, "csv") == 0);
	store_dataset_clear(&got);
	StoreEvent *ev;
	int ne;
	CHECK_RC(store_events_read(st, a, 0, 10, &ev, &ne, err, sizeof err));
	CHECK(ne == 1 && strcmp(ev[0].message, "hello") == 0);
	store_events_free(ev, ne);
	/* The next job and the next metric point continue past SQLite's last ids. */
	int64_t next = insert(st, "next", 0, "");
	CHECK(next == gids[1] + 1);
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1);
	int64_t claimed = j.id;
	store_job_clear(&j);
	CHECK_RC(store_batch_new(st, 0, &b, err, sizeof err));
	store_batch_metric(b, claimed, 1, "loss", 1);
	CHECK(store_batch_flush(b, err, sizeof err) == 1);
	store_batch_free(b);
	CHECK_RC(store_metrics_read(st, claimed, 0, NULL, 0, 0, &ma, err, sizeof err));
	CHECK(ma.n == 1 && ma.series[0].pts[0].id == 7);   /* 6 ids were handed out on SQLite */
	metric_set_clear(&ma);
	store_free(st);
	/* A second copy is refused and names what is there. */
	int rc = store_migrate(src, dbpath, &ms, err, sizeof err);
	CHECK(rc == STORE_EEXIST && strstr(err, "not empty (4 jobs, 1 groups, 1 tokens, 1 datasets)"), "rc=%d err=%s", rc, err);
	rc = store_migrate(src, src, &ms, err, sizeof err);
	CHECK(rc == STORE_ESTATE && strstr(err, "expected a PostgreSQL URL"), "rc=%d err=%s", rc, err);
	unlink(art);
	char p[1200];
	const char *suf[] = { "", "-wal", "-shm" };
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", src, suf[i]);
		unlink(p);
	}
	rm_db();
}

/* A database of schema version 2 (before the init_from column) migrates: the dependency of a
 * queued job is read from its stored spec, so it still waits for its source. */
/* Tokens: add, the name and hash unique, list by name, find by hash, count, revoke. */
/* Uploaded datasets: one row per owner and name, usage per owner, and the jobs that use one. */
static void test_datasets(void)
{
	Store *st;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	StoreDataset d = { .owner = "alice", .name = "flowers", .format = "image_folder", .bytes = 1000, .files = 10,
	                   .summary = "{\"classes\":[]}", .path = "/s/uploads/alice/flowers" };
	CHECK_RC(store_dataset_insert(st, &d, err, sizeof err));
	int rc = store_dataset_insert(st, &d, err, sizeof err);
	CHECK(rc == STORE_EEXIST && strstr(err, "alice/flowers already exists"), "rc=%d err=%s", rc, err);
	StoreDataset d2 = d;
	snprintf(d2.name, sizeof d2.name, "flowers2");
	d2.path = "/s/uploads/alice/flowers2";
	d2.bytes = 500;
	CHECK_RC(store_dataset_insert(st, &d2, err, sizeof err));
	int64_t n, bytes;
	CHECK_RC(store_dataset_usage(st, "alice", &n, &bytes, err, sizeof err));
	CHECK(n == 2 && bytes == 1500, "n=%lld bytes=%lld", (long long)n, (long long)bytes);
	StoreDataset got;
	CHECK_RC(store_dataset_get(st, "alice", "flowers", &got, err, sizeof err));
	CHECK(got.files == 10 && strcmp(got.path, "/s/uploads/alice/flowers") == 0 && strcmp(got.format, "image_folder") == 0);
	store_dataset_clear(&got);
	rc = store_dataset_get(st, "bob", "flowers", &got, err, sizeof err);
	CHECK(rc == STORE_ENOTFOUND, "rc=%d", rc);
	StoreDataset *v;
	int nv;
	CHECK_RC(store_dataset_list(st, NULL, &v, &nv, err, sizeof err));
	CHECK(nv == 2 && strcmp(v[0].name, "flowers") == 0 && strcmp(v[1].name, "flowers2") == 0, "n=%d", nv);
	for (int i = 0; i < nv; i++) store_dataset_clear(&v[i]);
	free(v);
	/* A queued job naming a file beneath flowers2 uses flowers2, not flowers. */
	StoreNewJob nj = { .spec = "{\"dataset\":{\"train\":\"/s/uploads/alice/flowers2/a.csv\"}}", .method = "simclr", .owner = "alice" };
	int64_t id, user;
	CHECK_RC(store_job_insert(st, &nj, &id, err, sizeof err));
	CHECK_RC(store_dataset_user(st, "/s/uploads/alice/flowers", &user, err, sizeof err));
	CHECK(user == 0, "user=%lld", (long long)user);
	CHECK_RC(store_dataset_user(st, "/s/uploads/alice/flowers2", &user, err, sizeof err));
	CHECK(user == id, "user=%lld id=%lld", (long long)user, (long long)id);
	JobState was;
	CHECK_RC(store_job_cancel(st, id, &was, err, sizeof err));
	CHECK_RC(store_dataset_user(st, "/s/uploads/alice/flowers2", &user, err, sizeof err));
	CHECK(user == 0, "a cancelled job still counts: %lld", (long long)user);
	CHECK_RC(store_dataset_delete(st, "alice", "flowers", err, sizeof err));
	rc = store_dataset_delete(st, "alice", "flowers", err, sizeof err);
	CHECK(rc == STORE_ENOTFOUND, "rc=%d", rc);
	store_free(st);
	rm_db();
}

static void test_tokens(void)
{
	Store *st;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	char h1[65], h2[65];
	memset(h1, 'a', 64), h1[64] = 0;
	memset(h2, 'b', 64), h2[64] = 0;
	CHECK_RC(store_token_add(st, "zed", h1, 0, err, sizeof err));
	CHECK_RC(store_token_add(st, "amy", h2, 1, err, sizeof err));
	int rc = store_token_add(st, "zed", h2, 0, err, sizeof err);
	CHECK(rc == STORE_EEXIST && strstr(err, "'zed' already exists"), "rc=%d err=%s", rc, err);
	rc = store_token_add(st, "bad", "12ab", 0, err, sizeof err);
	CHECK(rc == STORE_ESTATE && strstr(err, "64-digit"), "rc=%d err=%s", rc, err);
	StoreToken *t = NULL;
	int n = 0;
	CHECK_RC(store_token_list(st, &t, &n, err, sizeof err));
	CHECK(n == 2 && t && strcmp(t[0].name, "amy") == 0 && t[0].admin == 1 && strcmp(t[1].name, "zed") == 0 &&
	      t[1].admin == 0, "n=%d", n);
	free(t);
	StoreToken one;
	CHECK(store_token_find(st, h2, &one, err, sizeof err) == 1 && strcmp(one.name, "amy") == 0, "find: %s", err);
	h1[0] = 'c';
	CHECK(store_token_find(st, h1, &one, err, sizeof err) == 0, "found an unknown hash");
	int64_t count = 0;
	CHECK_RC(store_token_count(st, &count, err, sizeof err));
	CHECK(count == 2, "count %lld", (long long)count);
	CHECK_RC(store_token_revoke(st, "zed", err, sizeof err));
	rc = store_token_revoke(st, "zed", err, sizeof err);
	CHECK(rc == STORE_ENOTFOUND && strstr(err, "no token named 'zed'"), "rc=%d err=%s", rc, err);
	CHECK_RC(store_token_count(st, &count, err, sizeof err));
	CHECK(count == 1, "count after revoke %lld", (long long)count);
	CHECK_RC(store_token_list(st, &t, &n, err, sizeof err));
	CHECK(n == 1 && strcmp(t[0].name, "amy") == 0, "n=%d", n);
	free(t);
	store_free(st);
	rm_db();
}

/* SQLite: while a Store is open, its process holds the -shm file's "in use" lock (byte 128), so
 * another process opening the database (sqlite3, a test reading the file) does not take the WAL
 * index for abandoned and rebuild it under the store. Checked from a child process: F_GETLK
 * reports only other processes' locks. */
static void test_shm_in_use(void)
{
	Store *st;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	int64_t id = insert(st, "x", 0, "ann");
	CHECK(id > 0);
	char p[1100];
	snprintf(p, sizeof p, "%s-shm", dbpath);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(p, O_RDWR);
		struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 128, .l_len = 1 };
		if (fd < 0 || fcntl(fd, F_GETLK, &l) != 0) _exit(2);
		_exit(l.l_type == F_UNLCK ? 1 : 0);
	}
	int status = 0;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the -shm file's in-use lock is not held by the store's process (child status %d)", status);
	store_free(st);
	rm_db();
}

/* 1 when job id has a delivery row (its state in *state). */
static int delivery_of(Store *st, int64_t id, StoreDelivery *d)
{
	int rc = store_delivery_get(st, id, d, err, sizeof err);
	CHECK(rc >= 0, "store_delivery_get(%lld) -> %d (%s)", (long long)id, rc, err);
	return rc == 1;
}

/* Claims job `want`'s delivery as node (the oldest it may take must be that one). */
static void claim_is(Store *st, const char *node, int64_t want, StoreDelivery *d)
{
	int rc = store_delivery_claim(st, node, 60, d, err, sizeof err);
	CHECK(rc == 1 && d->job_id == want, "%s claimed rc=%d job %lld, expected job %lld (%s)", node, rc,
	      (long long)d->job_id, (long long)want, err);
}

/* The webhook outbox (store.h): every way a job ends writes its delivery row in the same
 * transaction - only once the store keeps them -, claims keep two nodes off one row, a dead
 * node's claim is taken over when it expires, outcomes are recorded, ended rows are pruned. */
static void test_outbox(void)
{
	Store *st, *b;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	CHECK_RC(store_open(dbpath, &b, err, sizeof err));   /* a second node */
	StoreJob j;
	StoreDelivery d;
	JobState js;
	int64_t ids[8];
	/* Without store_set_outbox: no row, whatever ends. */
	int64_t quiet = insert(st, "quiet", 0, "ann");
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == quiet);
	store_job_clear(&j);
	CHECK_RC(store_job_finish(st, quiet, JOB_SUCCEEDED, "{}", NULL, err, sizeof err));
	int64_t quiet2 = insert(st, "quiet2", 0, "ann");
	CHECK_RC(store_job_cancel(st, quiet2, &js, err, sizeof err));
	CHECK(!delivery_of(st, quiet, &d) && !delivery_of(st, quiet2, &d));
	CHECK(store_delivery_claim(st, "A", 60, &d, err, sizeof err) == 0);

	store_set_outbox(st, 1);
	/* Finished by its run (and one sent back to the queue: not ended, no row). */
	int64_t ok = insert(st, "ok", 0, "ann");
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == ok);
	store_job_clear(&j);
	CHECK_RC(store_job_finish(st, ok, JOB_QUEUED, NULL, NULL, err, sizeof err));
	CHECK(!delivery_of(st, ok, &d));
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == ok);
	store_job_clear(&j);
	CHECK_RC(store_job_finish(st, ok, JOB_SUCCEEDED, "{}", NULL, err, sizeof err));
	CHECK(delivery_of(st, ok, &d) && d.state == DELIVERY_PENDING && d.attempts == 0 && !d.claimed_by[0]);
	/* Cancelled while queued, and its init_from dependant failed with it (the cascade). */
	int64_t src = insert(st, "src", 0, "ann");
	StoreNewJob dep = { .spec = "{\"method\":\"simclr\"}", .name = "dep", .method = "simclr", .owner = "ann",
	                    .init_from_job = src };
	int64_t depid;
	CHECK_RC(store_job_insert(st, &dep, &depid, err, sizeof err));
	CHECK_RC(store_job_cancel(st, src, &js, err, sizeof err));
	CHECK(js == JOB_CANCELLED && delivery_of(st, src, &d) && delivery_of(st, depid, &d));
	CHECK(state_of(st, depid) == JOB_FAILED);
	/* Start-up recovery: a requested cancel made final, and a job interrupted once too often. */
	int64_t gone = insert(st, "gone", 0, "ann"), poison = insert(st, "poison", 0, "ann");
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == gone);
	store_job_clear(&j);
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == poison);
	store_job_clear(&j);
	CHECK_RC(store_job_cancel(st, gone, &js, err, sizeof err));
	CHECK(js == JOB_RUNNING && !delivery_of(st, gone, &d));   /* only requested: not ended yet */
	CHECK(store_recover(st, 1, ids, 8, err, sizeof err) == 0);
	CHECK(state_of(st, gone) == JOB_CANCELLED && delivery_of(st, gone, &d));
	CHECK(state_of(st, poison) == JOB_FAILED && delivery_of(st, poison, &d));
	/* A lease reclaim that makes a requested cancel final. */
	int64_t leased = insert(st, "leased", 0, "ann");
	CHECK(store_job_claim_lease(st, "A", 30, 0, &j, err, sizeof err) == 1 && j.id == leased);
	store_job_clear(&j);
	CHECK_RC(store_job_cancel(st, leased, &js, err, sizeof err));
	CHECK(raw_exec("UPDATE jobs SET lease_until = 1 WHERE state = 'running'") == 0);
	int n = -1;
	CHECK_RC(store_job_reclaim_expired(st, 0, ids, 8, &n, err, sizeof err));
	CHECK(n == 0 && state_of(st, leased) == JOB_CANCELLED && delivery_of(st, leased, &d));
	/* A failed run fails its dependant too: both rows. */
	int64_t bad = insert(st, "bad", 0, "ann");
	dep.init_from_job = bad;
	int64_t dep2;
	CHECK_RC(store_job_insert(st, &dep, &dep2, err, sizeof err));
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == bad);
	store_job_clear(&j);
	CHECK_RC(store_job_finish(st, bad, JOB_FAILED, NULL, "loss became NaN", err, sizeof err));
	CHECK(delivery_of(st, bad, &d) && delivery_of(st, dep2, &d) && state_of(st, dep2) == JOB_FAILED);

	/* Claims, oldest first: node A takes `ok`, node B (another connection) the next one. */
	StoreDelivery da, db;
	claim_is(st, "A", ok, &da);
	CHECK(strcmp(da.claimed_by, "A") == 0 && da.wait_s == 0);
	claim_is(b, "B", src, &db);
	claim_is(st, "A", ok, &da);   /* its own claim stays its own */
	CHECK(store_delivery_record(b, da.id, "B", DELIVERY_DELIVERED, 200, NULL, 0, 60, err, sizeof err) == STORE_FENCED);
	/* A retry: counted, due later, still A's. */
	CHECK_RC(store_delivery_record(st, da.id, "A", DELIVERY_PENDING, 503, "HTTP 503", 100, 60, err, sizeof err));
	claim_is(st, "A", ok, &da);
	CHECK(da.attempts == 1 && da.wait_s > 50 && da.last_status == 503 && strcmp(da.last_error, "HTTP 503") == 0,
	      "attempts %d wait %.1f status %ld error '%s'", da.attempts, da.wait_s, da.last_status, da.last_error);
	/* A dies: once its claim has expired, B takes the row over and A's late outcome is refused. */
	CHECK(raw_exec("UPDATE webhook_outbox SET claim_until = 1 WHERE claimed_by = 'A'") == 0);
	claim_is(b, "B", ok, &db);
	CHECK(store_delivery_record(st, da.id, "A", DELIVERY_DELIVERED, 200, NULL, 0, 60, err, sizeof err) == STORE_FENCED);
	CHECK_RC(store_delivery_record(b, db.id, "B", DELIVERY_DELIVERED, 204, NULL, 0, 60, err, sizeof err));
	CHECK(delivery_of(st, ok, &d) && d.state == DELIVERY_DELIVERED && d.attempts == 2 && d.last_status == 204 &&
	      strcmp(d.claimed_by, "B") == 0 && !d.last_error[0]);
	/* Given up (a 4xx): ended, with the reason. */
	claim_is(b, "B", src, &db);
	CHECK_RC(store_delivery_record(b, db.id, "B", DELIVERY_FAILED, 404, "HTTP 404", 0, 60, err, sizeof err));
	CHECK(delivery_of(st, src, &d) && d.state == DELIVERY_FAILED && strcmp(d.last_error, "HTTP 404") == 0);
	/* B restarts: its claims are free again; A restarting frees only its own. */
	claim_is(b, "B", depid, &db);
	CHECK(store_delivery_release(st, "A", err, sizeof err) == 0);
	CHECK(store_delivery_release(st, "B", err, sizeof err) == 1);
	claim_is(st, "A", depid, &da);
	CHECK(store_delivery_release(st, NULL, err, sizeof err) == 1);
	/* Pruning: ended rows beyond the newest one go; pending rows stay. */
	CHECK(store_delivery_prune(st, 7 * 86400.0, 1, err, sizeof err) == 1);
	CHECK(!delivery_of(st, ok, &d) && delivery_of(st, src, &d) && delivery_of(st, depid, &d));
	CHECK(store_delivery_prune(st, -10, 100, err, sizeof err) == 1);   /* older than 10 s in the future: all ended */
	CHECK(!delivery_of(st, src, &d) && delivery_of(st, depid, &d) && d.state == DELIVERY_PENDING);
	store_free(b);
	store_free(st);
	rm_db();
}

static void test_migration_v2(void)
{
	sqlite3 *db;
	CHECK(sqlite3_open(dbpath, &db) == SQLITE_OK);
	const char *v2 =
		"CREATE TABLE jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, method TEXT NOT NULL DEFAULT '', spec TEXT NOT NULL,"
		" state TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0, owner TEXT NOT NULL DEFAULT '',"
		" created_at REAL NOT NULL, started_at REAL, finished_at REAL, updated_at REAL NOT NULL,"
		" step INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0, stage TEXT, eta_s REAL,"
		" checkpoint_step INTEGER, checkpoint_metric_id INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
		" cancel_requested INTEGER NOT NULL DEFAULT 0, results TEXT, error TEXT);"
		"CREATE TABLE metrics(id INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER NOT NULL, step INTEGER NOT NULL,"
		" key TEXT NOT NULL, value REAL, time REAL NOT NULL);"
		"CREATE TABLE metric_keys(job_id INTEGER NOT NULL, key TEXT NOT NULL, last_id INTEGER NOT NULL,"
		" last_step INTEGER NOT NULL, last_value REAL, PRIMARY KEY (job_id, key)) WITHOUT ROWID;"
		"CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER NOT NULL, time REAL NOT NULL,"
		" level INTEGER NOT NULL, message TEXT NOT NULL);"
		"CREATE TABLE artifacts(job_id INTEGER NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,"
		" sha256 TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (job_id, name));"
		"CREATE TABLE tokens(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL UNIQUE,"
		" admin INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);"
		"INSERT INTO jobs(spec, state, priority, created_at, updated_at) VALUES ('{\"method\":\"simclr\"}', 'queued', 0, 1, 1);"
		"INSERT INTO jobs(spec, state, priority, created_at, updated_at) VALUES ('{\"method\":\"none\",\"init_from\":1}', 'queued', 9, 2, 2);"
		"INSERT INTO jobs(spec, state, priority, created_at, updated_at) VALUES ('not json', 'queued', 0, 3, 3);"
		"PRAGMA user_version = 2;";
	CHECK(sqlite3_exec(db, v2, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	Store *st;
	CHECK_RC(store_open(dbpath, &st, err, sizeof err));
	CHECK(store_schema_version(st) == SSLD_SCHEMA_VERSION);
	StoreJob j;
	CHECK_RC(store_job_get(st, 2, &j, err, sizeof err));
	CHECK(j.init_from_job == 1 && j.interruptions == 0);
	store_job_clear(&j);
	CHECK(store_job_claim(st, &j, err, sizeof err) == 1 && j.id == 1);   /* not the priority-9 dependant */
	store_job_clear(&j);
	StoreDelivery d;   /* the outbox (7 -> 8) is there, empty */
	CHECK(store_delivery_get(st, 1, &d, err, sizeof err) == 0);
	store_set_outbox(st, 1);
	CHECK_RC(store_job_finish(st, 1, JOB_SUCCEEDED, NULL, NULL, err, sizeof err));
	CHECK(store_delivery_get(st, 1, &d, err, sizeof err) == 1 && d.state == DELIVERY_PENDING);
	store_free(st);
	rm_db();
}

int main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(dir, sizeof dir, "%s/ssld-test-storage-XXXXXX", tmp);
	if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
	snprintf(dbpath, sizeof dbpath, "%s/ssld.db", dir);
	if (argc > 1 && strcmp(argv[1], "pg") == 0) {
		const char *url = getenv("SSLD_TEST_PG_URL");
		if (!url || !*url) {
			fprintf(stderr, "test_storage pg: SSLD_TEST_PG_URL is not set (run it through tests/support/pgserver.py run)\n");
			rmdir(dir);
			return 1;
		}
		snprintf(dbpath, sizeof dbpath, "%s", url);
		pg = 1;
		rm_db();
	}
	test_sha256();
	test_migrations();
	test_queue();
	test_init_from();
	test_interruptions();
	test_leases();
	if (!pg) test_flush_retry();   /* the fault point is SQLite's write */
	if (!pg) test_migration_v2();
	else test_pg_batch_token();
	if (pg) test_migrate();   /* SQLite's own history: PostgreSQL starts at schema 7 */
	test_tokens();
	test_datasets();
	test_metrics_and_resume();
	test_concurrency();
	test_change_stamp();
	test_outbox();
	if (!pg) test_shm_in_use();
	rmdir(dir);
	return check_exit("test_storage");
}
