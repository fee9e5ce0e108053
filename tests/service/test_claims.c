/* test_claims.c - several nodes claiming from one queue never take a job twice, and what a claim
 * costs.
 *
 * Each "node" is a thread with its own Store (its own connections, as a separate ssld process
 * would have) on one database: a SQLite file in a scratch directory, or PostgreSQL when run as
 * `test_claims pg` with SSLD_TEST_PG_URL set (tests/support/pgserver.py run does both). JOBS jobs
 * are queued first; the nodes then claim with store_job_claim_lease, renew the lease once, and
 * finish each run under its lease generation until the queue is empty. The check: every job was
 * claimed exactly once, finished, and no claim or fenced write failed. Then one node appends metric
 * rows through a StoreBatch and flushes them, for the per-row cost.
 *
 *   test_claims [pg] [--nodes N] [--jobs K] [--rows R]
 *
 * It prints claim, renew and finish latencies (p50/p99, ms) and claims per second, and as its last
 * line one JSON object with them (bench/nodes_bench.py reads it). The test asserts no time.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "check.h"
#include "store.h"
#include "support.h"

static char db[1024];
static int njobs = 10000, nnodes = 4, nrows = 20000;
static atomic_int *claims;   /* claims[id]: times job id was claimed */
static int64_t first_id;

typedef struct Node {
	int index;
	pthread_t th;
	double *claim_ms, *renew_ms, *finish_ms;
	int n, failures;
	char err[512];
} Node;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static void *node_main(void *arg)
{
	Node *nd = arg;
	Store *st = NULL;
	char name[32];
	snprintf(name, sizeof name, "node-%d", nd->index);
	if (store_open(db, &st, nd->err, sizeof nd->err) < 0) {
		nd->failures++;
		return NULL;
	}
	for (;;) {
		StoreJob j;
		double t0 = now_ms();
		int rc = store_job_claim_lease(st, name, 30, 0, &j, nd->err, sizeof nd->err);
		double t1 = now_ms();
		if (rc == 0) break;   /* the queue is empty */
		if (rc < 0) {
			nd->failures++;
			break;
		}
		int64_t k = j.id - first_id;
		if (k >= 0 && k < njobs) atomic_fetch_add(&claims[k], 1);
		else nd->failures++;
		int rr = store_job_renew(st, j.id, j.lease_gen, 30, nd->err, sizeof nd->err);
		double t2 = now_ms();
		int fr = store_job_finish_fenced(st, j.id, j.lease_gen, JOB_SUCCEEDED, "{}", NULL, nd->err, sizeof nd->err);
		double t3 = now_ms();
		if (rr < 0 || fr < 0) nd->failures++;
		nd->claim_ms[nd->n] = t1 - t0;
		nd->renew_ms[nd->n] = t2 - t1;
		nd->finish_ms[nd->n] = t3 - t2;
		nd->n++;
		store_job_clear(&j);
		if (nd->failures) break;
	}
	store_free(st);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* p-th percentile of all nodes' samples of one kind (offset selects the array). */
static double percentile(Node *nodes, size_t offset, double p)
{
	int total = 0;
	for (int i = 0; i < nnodes; i++) total += nodes[i].n;
	if (total == 0) return 0;
	double *all = malloc(sizeof *all * (size_t)total);
	int k = 0;
	for (int i = 0; i < nnodes; i++) {
		double *v = *(double **)((char *)&nodes[i] + offset);
		memcpy(all + k, v, sizeof *all * (size_t)nodes[i].n);
		k += nodes[i].n;
	}
	qsort(all, (size_t)total, sizeof *all, cmp_double);
	double r = all[(int)(p * (total - 1))];
	free(all);
	return r;
}

/* Queues njobs jobs, in groups of 500 (one transaction each). */
static int queue_jobs(Store *st, char *err, size_t errlen)
{
	enum { G = 500 };
	StoreNewJob nj[G];
	int64_t ids[G], gid;
	for (int i = 0; i < G; i++) nj[i] = (StoreNewJob){ .spec = "{}", .method = "simclr", .owner = "bench" };
	for (int done = 0; done < njobs; done += G) {
		int n = njobs - done < G ? njobs - done : G;
		if (store_group_insert(st, "claims", "bench", "{}", nj, n, &gid, ids, err, errlen) < 0) return -1;
		if (done == 0) first_id = ids[0];
		if (ids[n - 1] - first_id != done + n - 1) {
			snprintf(err, errlen, "ids are not consecutive: %lld after %lld", (long long)ids[n - 1], (long long)first_id);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	char err[512];
	int pg = 0;
	char *tmp = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "pg") == 0) pg = 1;
		else if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc) nnodes = atoi(argv[++i]);
		else if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc) njobs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc) nrows = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: test_claims [pg] [--nodes N] [--jobs K] [--rows R]\n");
			return 2;
		}
	}
	if (nnodes < 1 || nnodes > 256 || njobs < 1 || nrows < 0) {
		fprintf(stderr, "test_claims: --nodes 1..256, --jobs >= 1, --rows >= 0\n");
		return 2;
	}
	if (pg) {
		const char *url = getenv("SSLD_TEST_PG_URL");
		if (!url || !*url) {
			fprintf(stderr, "test_claims pg: SSLD_TEST_PG_URL is not set (run it through tests/support/pgserver.py run)\n");
			return 1;
		}
		snprintf(db, sizeof db, "%s", url);
	} else {
		if (!(tmp = test_tmpdir("claims"))) return 1;
		snprintf(db, sizeof db, "%s/queue.db", tmp);
	}
	Store *st;
	CHECK(store_open(db, &st, err, sizeof err) == 0, "store_open: %s", err);
	if (failures) return 1;
	double t0 = now_ms();
	CHECK(queue_jobs(st, err, sizeof err) == 0, "queueing %d jobs: %s", njobs, err);
	double queued_ms = now_ms() - t0;
	claims = calloc((size_t)njobs, sizeof *claims);
	Node *nodes = calloc((size_t)nnodes, sizeof *nodes);
	for (int i = 0; i < nnodes; i++) {
		nodes[i].index = i;
		nodes[i].claim_ms = malloc(sizeof(double) * (size_t)njobs);
		nodes[i].renew_ms = malloc(sizeof(double) * (size_t)njobs);
		nodes[i].finish_ms = malloc(sizeof(double) * (size_t)njobs);
	}
	t0 = now_ms();
	for (int i = 0; i < nnodes; i++) pthread_create(&nodes[i].th, NULL, node_main, &nodes[i]);
	for (int i = 0; i < nnodes; i++) pthread_join(nodes[i].th, NULL);
	double wall_ms = now_ms() - t0;

	/* Every job claimed exactly once, by some node, and finished. */
	int twice = 0, never = 0, total = 0, busiest = 0;
	for (int i = 0; i < njobs; i++) {
		if (claims[i] > 1) twice++;
		if (claims[i] == 0) never++;
	}
	for (int i = 0; i < nnodes; i++) {
		CHECK(nodes[i].failures == 0, "node-%d: %s", i, nodes[i].err);
		total += nodes[i].n;
		if (nodes[i].n > busiest) busiest = nodes[i].n;
	}
	CHECK(twice == 0, "%d jobs claimed more than once", twice);
	CHECK(never == 0, "%d jobs never claimed", never);
	CHECK(total == njobs, "%d claims for %d jobs", total, njobs);
	int64_t counts[JOB_STATE_COUNT];
	CHECK(store_job_counts(st, counts, err, sizeof err) == 0, "counts: %s", err);
	CHECK(counts[JOB_SUCCEEDED] == njobs && counts[JOB_QUEUED] == 0 && counts[JOB_RUNNING] == 0,
	          "after the claims: %lld succeeded, %lld queued, %lld running", (long long)counts[JOB_SUCCEEDED],
	          (long long)counts[JOB_QUEUED], (long long)counts[JOB_RUNNING]);

	/* Metric rows through the batch writer: nrows rows of one job in flushes of 1,000. */
	double row_us = 0;
	if (nrows > 0) {
		StoreBatch *b;
		CHECK(store_batch_new(st, 0, &b, err, sizeof err) == 0, "batch: %s", err);
		double flush_ms = 0;
		for (int r = 0; r < nrows; r += 1000) {
			for (int k = r; k < r + 1000 && k < nrows; k++)
				store_batch_metric(b, first_id, k / 3 + 1, (const char *[]){ "loss", "lr", "grad_norm" }[k % 3], 1.0 / (k + 1));
			double f0 = now_ms();
			CHECK(store_batch_flush(b, err, sizeof err) >= 0, "flush: %s", err);
			flush_ms += now_ms() - f0;
		}
		StoreBatchStats bs;
		store_batch_stats(b, &bs);
		CHECK(bs.points_written == (uint64_t)nrows, "%llu of %d rows written", (unsigned long long)bs.points_written, nrows);
		row_us = flush_ms * 1e3 / nrows;
		store_batch_free(b);
	}

	double claim50 = percentile(nodes, offsetof(Node, claim_ms), 0.5), claim99 = percentile(nodes, offsetof(Node, claim_ms), 0.99);
	double renew50 = percentile(nodes, offsetof(Node, renew_ms), 0.5), renew99 = percentile(nodes, offsetof(Node, renew_ms), 0.99);
	double fin50 = percentile(nodes, offsetof(Node, finish_ms), 0.5), fin99 = percentile(nodes, offsetof(Node, finish_ms), 0.99);
	printf("%s, %d nodes, %d jobs (queued in %.0f ms): each claimed once; busiest node %d claims\n",
	       pg ? "PostgreSQL" : "SQLite", nnodes, njobs, queued_ms, busiest);
	printf("  claim   p50 %7.3f ms  p99 %7.3f ms\n", claim50, claim99);
	printf("  renew   p50 %7.3f ms  p99 %7.3f ms\n", renew50, renew99);
	printf("  finish  p50 %7.3f ms  p99 %7.3f ms\n", fin50, fin99);
	printf("  claim + renew + finish cycles: %.0f per second over all nodes\n", njobs / (wall_ms * 1e-3));
	if (nrows > 0) printf("  metric rows: %.2f us per row in flushes of 1,000\n", row_us);
	printf("{\"backend\":\"%s\",\"nodes\":%d,\"jobs\":%d,\"claim_p50_ms\":%.4f,\"claim_p99_ms\":%.4f,\"renew_p50_ms\":%.4f,"
	       "\"renew_p99_ms\":%.4f,\"finish_p50_ms\":%.4f,\"finish_p99_ms\":%.4f,\"cycles_per_s\":%.1f,\"metric_row_us\":%.3f}\n",
	       pg ? "postgresql" : "sqlite", nnodes, njobs, claim50, claim99, renew50, renew99, fin50, fin99,
	       njobs / (wall_ms * 1e-3), row_us);

	for (int i = 0; i < nnodes; i++) {
		free(nodes[i].claim_ms);
		free(nodes[i].renew_ms);
		free(nodes[i].finish_ms);
	}
	free(nodes);
	free(claims);
	store_free(st);
	if (tmp) {
		test_rmtree(tmp);
		free(tmp);
	}
	return check_exit("test_claims");
}
