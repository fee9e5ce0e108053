/* store.h - the service's database: jobs (the queue), metric points, events, artifacts.
 *
 * Two backends behind this one interface, chosen by store_open's argument: an SQLite file (the
 * default: one node) or a postgresql:// URL (several nodes sharing the queue; store_pg.h). Every
 * function means the same on both; the text below describes SQLite, store_pg.c how PostgreSQL does
 * the same. SQLite: one file, WAL mode, busy_timeout, BEGIN IMMEDIATE for every write, and a schema
 * that migrates itself forward (PRAGMA user_version) when opened. The Store hands out one SQLite connection per
 * call from a small pool, so any thread may call any function; readers never block the writer.
 * Metric points, events and progress do not come through here one by one: they go through a
 * StoreBatch (batch.h), which writes them in one transaction per flush.
 *
 *   Store *st; char err[256];
 *   if (store_open("/var/lib/ssld/ssld.db", &st, err, sizeof err) < 0) die(err);
 *   StoreNewJob nj = { .spec = text, .name = "x", .method = "simclr", .owner = "ann" };
 *   int64_t id;
 *   store_job_insert(st, &nj, &id, err, sizeof err);
 *   StoreJob j;
 *   if (store_job_claim(st, &j, err, sizeof err) == 1) { ...run j.spec...; store_job_clear(&j); }
 *   store_free(st);
 *
 * Times are Unix seconds (double). Metric cursors are metric row ids: AUTOINCREMENT, so they only
 * grow, even after points are deleted on resume.
 */
#ifndef SSLD_STORAGE_STORE_H
#define SSLD_STORAGE_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct Store Store;

/* Error codes (negative returns). store_strerror() names them. */
enum {
	STORE_EDB = -1,        /* SQLite failed; err has the SQLite message */
	STORE_ENOTFOUND = -2,  /* no such job / artifact */
	STORE_ELIMIT = -3,     /* a queue limit would be exceeded */
	STORE_ESTATE = -4,     /* the job is not in a state that allows this */
	STORE_ENOMEM = -5,
	STORE_EVERSION = -6,   /* the database comes from a newer ssld */
	STORE_EEXIST = -7,     /* a token with that name already exists */
	STORE_FENCED = -8,     /* the job's lease belongs to a newer claim, or it is no longer running */
};
const char *store_strerror(int code);

typedef enum JobState {
	JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED, JOB_STATE_COUNT
} JobState;
const char *job_state_name(JobState s);   /* "queued", ... */
int job_state_parse(const char *name);    /* JobState or -1 */
#define SSLD_SCHEMA_VERSION 8

/* ---- opening ------------------------------------------------------------------------------- */

/* Opens (creating if needed) and migrates the database at path: an SQLite file, or a
 * postgresql:// (postgres://) URL. */
int store_open(const char *path, Store **out, char *err, size_t errlen);
void store_free(Store *st);                 /* store_free(NULL) is a no-op */
const char *store_path(const Store *st);
int store_schema_version(Store *st);        /* PRAGMA user_version, or < 0 */
double store_now(void);                     /* wall clock, Unix seconds */

/* ---- jobs ---------------------------------------------------------------------------------- */

typedef struct StoreNewJob {
	const char *spec;           /* the job JSON as submitted (validated by the caller) */
	const char *name;           /* may be NULL */
	const char *method;
	const char *owner;          /* "" for anonymous */
	int priority;
	int64_t init_from_job;      /* > 0: starts from this job's encoder (see "init_from" below) */
	int init_from_any_owner;    /* 1: may wait for another owner's unfinished source (an admin) */
	int max_queued;             /* > 0: refuse (STORE_ELIMIT) when this many jobs are queued */
	int max_queued_per_owner;   /* > 0: the same, counting this owner's queued jobs only */
	const char *group_setting;  /* store_group_insert: the child's swept values (JSON object) */
} StoreNewJob;

/* One job row. Strings are owned by the struct (store_job_clear frees them). */
typedef struct StoreJob {
	int64_t id;
	char *name, *method, *owner, *spec, *stage, *results, *error;
	JobState state;
	int priority;
	double created_at, started_at, finished_at, updated_at;   /* 0 = not yet */
	int64_t step, total;
	double eta_s;                /* < 0 unknown */
	double progress;             /* the whole job's fraction done, 0..1; < 0 unknown */
	int64_t checkpoint_step;     /* -1 = no checkpoint */
	int attempts;                /* times the job was claimed */
	int interruptions;           /* runs found still running at start-up (a crash or an unclean stop) */
	int64_t init_from_job;       /* 0 = none */
	int cancel_requested;
	int64_t group_id;            /* 0 = not part of a sweep */
	char *group_setting;         /* the swept values of a group's job (JSON object), else NULL */
	char *node;                  /* the node running it under a lease, else NULL */
	double lease_until;          /* Unix s; 0 = no lease */
	int64_t lease_gen;           /* incremented by every claim (the fencing token) */
} StoreJob;
void store_job_clear(StoreJob *j);

/* init_from: a job that starts from another job's encoder depends on it. The queue side of that
 * rule lives here, in SQL, so that submit, the claim and start-up recovery apply the same one:
 *   - at insert the source must exist (STORE_ENOTFOUND) and must not have failed or been
 *     cancelled (STORE_ESTATE); a source still queued or running may be waited for only when it
 *     is the same owner's, or init_from_any_owner is set (STORE_ESTATE otherwise); err says why;
 *   - a claim skips a dependant, whatever its priority, until its source has succeeded;
 *   - when a source fails or is cancelled (store_job_finish, store_job_cancel, store_recover),
 *     its queued dependants fail in the same transaction with "init_from job 7 failed: <its
 *     error>", and theirs in turn.
 * The encoder-architecture check against the source is the submitter's (workers/init_from.h). */

/* Inserts a queued job in one transaction (limits and the init_from rule checked inside it). */
int store_job_insert(Store *st, const StoreNewJob *nj, int64_t *id, char *err, size_t errlen);
int store_job_get(Store *st, int64_t id, StoreJob *out, char *err, size_t errlen);
/* Just the state (cheap: for endpoints that only need existence and state). */
int store_job_state(Store *st, int64_t id, JobState *state, char *err, size_t errlen);

/* Claims the highest-priority, oldest queued job whose init_from source (if any) has succeeded:
 * state -> running, attempts + 1, and - so that a
 * resumed job does not store points twice - deletes the metric points stored after its last
 * checkpoint (all of them when it has none). Returns 1 with *out filled, 0 if the queue is empty,
 * < 0 on error. */
int store_job_claim(Store *st, StoreJob *out, char *err, size_t errlen);
/* The same, skipping the jobs of owners who already have max_running_per_owner jobs running
 * (0 = no limit): those wait in the queue, keeping their place, while other owners' jobs run. */
int store_job_claim_limited(Store *st, int max_running_per_owner, StoreJob *out, char *err, size_t errlen);

/* ---- leases (several nodes sharing one queue) ------------------------------------------------
 * A node claims a job under a lease: node and lease_until = now + lease_s are recorded with the
 * claim, and lease_gen goes up by one on every claim (leased or not). The node renews the lease
 * while the job runs; a job whose lease expired (its node died or lost the database) is taken
 * back by store_job_reclaim_expired on any node and claimed again, resuming from its checkpoint.
 * Writes made for a run carry the lease_gen it was claimed with, so a node that lost its lease
 * cannot overwrite the newer run's state (STORE_FENCED); lease_gen < 0 means "not fenced" (one
 * node, the calls without _fenced). */

/* store_job_claim_limited, recording node (may be NULL) and, when lease_s > 0, the lease. The
 * per-owner limit counts running jobs on every node. */
int store_job_claim_lease(Store *st, const char *node, double lease_s, int max_running_per_owner,
                          StoreJob *out, char *err, size_t errlen);
/* lease_until = now + lease_s if the job is running with that lease_gen; STORE_FENCED otherwise. */
int store_job_renew(Store *st, int64_t id, int64_t lease_gen, double lease_s, char *err, size_t errlen);
/* Every running job whose lease_until has passed: a requested cancel becomes final; the others count
 * one interruption and go back to the queue with an event naming the node whose lease expired, or
 * fail past max_interruptions (> 0) as in store_recover. ids[0..*n) get the requeued ids (at
 * most cap). Jobs claimed without a lease are never reclaimed here. */
int store_job_reclaim_expired(Store *st, int max_interruptions, int64_t *ids, int cap, int *n,
                              char *err, size_t errlen);
/* store_job_finish / store_job_checkpoint for the run holding lease_gen: STORE_FENCED when the job
 * was claimed again since, or is no longer running. */
int store_job_finish_fenced(Store *st, int64_t id, int64_t lease_gen, JobState state, const char *results,
                            const char *error, char *err, size_t errlen);
int store_job_checkpoint_fenced(Store *st, int64_t id, int64_t lease_gen, int64_t step, char *err, size_t errlen);
/* 1 when the last attempt to reach the database succeeded, 0 while it is unreachable. */
int store_healthy(Store *st);

/* Final state of a run (succeeded/failed/cancelled) with results JSON / error text (may be NULL),
 * or back to queued (a stop requested by the daemon). Only a running job can be finished. */
int store_job_finish(Store *st, int64_t id, JobState state, const char *results, const char *error,
                     char *err, size_t errlen);
/* Records a durable checkpoint at `step` (call it after the file is renamed into place, and after
 * flushing the job's pending metric points: the points stored so far are the ones it covers). */
int store_job_checkpoint(Store *st, int64_t id, int64_t step, char *err, size_t errlen);

/* Cancels a job: queued -> cancelled at once (*state_out = JOB_CANCELLED); running -> flags
 * cancel_requested (*state_out = JOB_RUNNING; the worker stops it); other states -> STORE_ESTATE. */
int store_job_cancel(Store *st, int64_t id, JobState *state_out, char *err, size_t errlen);

/* Start-up recovery: jobs left `running` by a crash or an unclean stop count one more
 * interruption and go back to `queued` - unless that makes max_interruptions (> 0; 0 = no cap):
 * then they fail ("interrupted 3 times (the daemon stopped or crashed while it ran); giving up"),
 * so a job that kills the daemon is not retried forever. A clean stop (store_job_finish back to
 * queued) is not an interruption. Queued dependants of failed, cancelled or missing init_from
 * sources fail too. Returns the number requeued (>= 0); their ids go to ids[0..min(n, cap)). */
int store_recover(Store *st, int max_interruptions, int64_t *ids, int cap, char *err, size_t errlen);
/* The same for one node's jobs only (running with node = node): a node restarting on a shared
 * database takes back what it was running, not what the other nodes run. node NULL = every job. */
int store_recover_node(Store *st, const char *node, int max_interruptions, int64_t *ids, int cap, char *err,
                       size_t errlen);

typedef struct StoreJobFilter {
	unsigned state_mask;        /* bit (1u << JobState); 0 = all */
	int64_t before_id;          /* > 0: only ids < before_id (paging, newest first) */
	int limit;                  /* 1..1000 */
	const char *owner;          /* NULL = any */
	int64_t group_id;           /* > 0: only this group's jobs */
} StoreJobFilter;
/* Jobs newest first. *jobs is malloc'd (free each with store_job_clear, then free()). Specs and
 * results are not loaded (NULL) to keep listings light. */
int store_job_list(Store *st, const StoreJobFilter *f, StoreJob **jobs, int *n, char *err, size_t errlen);
/* ---- groups (sweeps) ----------------------------------------------------------------------- */

/* A group is the set of jobs one spec with a "sweep" created (workers/sweep.h). */
typedef struct StoreGroup {
	int64_t id;
	char *name, *owner, *sweep;  /* sweep: the "sweep" object as submitted (JSON) */
	double created_at;
	int64_t jobs, counts[JOB_STATE_COUNT];   /* its jobs, and how many are in each state */
} StoreGroup;
void store_group_clear(StoreGroup *g);
/* Inserts the group and its n jobs in one transaction: all or none. The queue limits of jobs[0]
 * (max_queued, max_queued_per_owner) count all n (STORE_ELIMIT naming the limit); every job's
 * init_from rule holds as for store_job_insert. ids[0..n) get the jobs' ids. */
int store_group_insert(Store *st, const char *name, const char *owner, const char *sweep, const StoreNewJob *jobs, int n,
                       int64_t *group_id, int64_t *ids, char *err, size_t errlen);
/* STORE_ENOTFOUND if there is no such group. */
int store_group_get(Store *st, int64_t id, StoreGroup *out, char *err, size_t errlen);
/* Groups newest first, ids < before_id when > 0, at most limit (1..1000); owner NULL = any. */
int store_group_list(Store *st, const char *owner, int64_t before_id, int limit, StoreGroup **groups, int *n,
                     char *err, size_t errlen);

/* Number of jobs in each state. */
int store_job_counts(Store *st, int64_t counts[JOB_STATE_COUNT], char *err, size_t errlen);

/* ---- metrics ------------------------------------------------------------------------------- */

typedef struct MetricPoint { int64_t id; int64_t step; double value; } MetricPoint; /* value NAN = null */
typedef struct MetricSeries {
	char *key;
	MetricPoint *pts;           /* ascending id (= ascending step within one run) */
	size_t n, cap;
} MetricSeries;
typedef struct MetricSet {
	MetricSeries *series;
	int n, cap;
	int64_t cursor;             /* highest id returned (= the cursor to send next time); = after if none */
	size_t total_points;
	int truncated;              /* a key had more than max_rows points: read again from cursor */
	JobState job_state;         /* store_metrics_read: the job's state in the same snapshot */
} MetricSet;
void metric_set_clear(MetricSet *ms);

/* STORE_ENOTFOUND if the job does not exist; else its state (job_state) and its points
 * with id > after, for the given keys (NULL/0 keys = all keys of the job), one
 * series per key that has points, at most max_rows per key (the oldest first; when a key is cut,
 * `truncated` is set and `cursor` tells where to continue without skipping or repeating). */
int store_metrics_read(Store *st, int64_t job_id, int64_t after, const char *const *keys, int nkeys,
                       size_t max_rows, MetricSet *out, char *err, size_t errlen);
/* The newest point of each key: one series per key with one point. */
int store_metrics_latest(Store *st, int64_t job_id, MetricSet *out, char *err, size_t errlen);

/* ---- events -------------------------------------------------------------------------------- */

typedef struct StoreEvent { int64_t id; double time; int level; char *message; } StoreEvent;
/* Events of a job with id > after, oldest first, at most limit. *ev malloc'd; free with
 * store_events_free. */
int store_events_read(Store *st, int64_t job_id, int64_t after, int limit, StoreEvent **ev, int *n,
                      char *err, size_t errlen);
void store_events_free(StoreEvent *ev, int n);
/* One event written at once (for rare events outside a run; runs go through StoreBatch). */
int store_event_add(Store *st, int64_t job_id, int level, const char *message, char *err, size_t errlen);

/* ---- webhook deliveries (the outbox) ---------------------------------------------------------
 * With store_set_outbox(st, 1) (a daemon with --webhook; daemon/webhook.h), every transaction that
 * ends a job - succeeded, failed or cancelled: store_job_finish, store_job_cancel, the init_from
 * cascade, store_recover, store_job_reclaim_expired - also writes one pending delivery row for it
 * (table webhook_outbox, at most one per job), so a delivery outlives a stop or a crash. Without
 * it no row is written. Nodes sharing a database take deliveries under a claim: claimed_by and
 * claim_until; a claim that expired (its node died) is anyone's, and a node's own claims are
 * always its own (it takes them back after a restart). Times are the database's clock. */

void store_set_outbox(Store *st, int on);

typedef enum DeliveryState { DELIVERY_PENDING, DELIVERY_DELIVERED, DELIVERY_FAILED } DeliveryState;
typedef struct StoreDelivery {
	int64_t id, job_id;
	DeliveryState state;
	int attempts;                /* attempts made so far, by any node, across restarts */
	double wait_s;               /* store_delivery_claim: seconds until the next attempt is due (0 = now) */
	long last_status;            /* HTTP status of the last attempt; 0 = none or no answer */
	char claimed_by[64];         /* pending: the node holding it ("" = none); ended: the one that made the last attempt */
	char last_error[256];        /* why the last attempt failed; "" = none */
} StoreDelivery;

/* Claims the oldest pending delivery that no other node holds (unclaimed, claimed by node, or
 * its claim expired): claimed_by = node, claim_until = when it is due + claim_s. 1 with *out
 * filled, 0 when there is none, < 0 on error. On PostgreSQL two nodes claiming at once never
 * take the same row (FOR UPDATE SKIP LOCKED). */
int store_delivery_claim(Store *st, const char *node, double claim_s, StoreDelivery *out, char *err, size_t errlen);
/* Records one attempt of node's claimed delivery: outcome DELIVERY_DELIVERED or DELIVERY_FAILED
 * end it (claimed_by stays, naming the node that ended it); DELIVERY_PENDING counts the attempt
 * and makes it due again in retry_s seconds, still claimed (for retry_s + claim_s). status is the
 * HTTP status (0 = no answer), error the reason (NULL = none). STORE_FENCED when the row is no
 * longer node's pending claim (another node took it over after the claim expired). */
int store_delivery_record(Store *st, int64_t id, const char *node, DeliveryState outcome, long status,
                          const char *error, double retry_s, double claim_s, char *err, size_t errlen);
/* Drops node's claims on pending deliveries (NULL = every claim): a node starting again takes
 * back what it held. The number released, or < 0. */
int store_delivery_release(Store *st, const char *node, char *err, size_t errlen);
/* Deletes ended deliveries older than keep_s seconds, and all but the newest keep_rows of them.
 * The number deleted, or < 0. */
int store_delivery_prune(Store *st, double keep_s, int keep_rows, char *err, size_t errlen);
/* The delivery row of job_id: 1 with *out, 0 when the job has none, < 0. */
int store_delivery_get(Store *st, int64_t job_id, StoreDelivery *out, char *err, size_t errlen);

/* ---- artifacts ----------------------------------------------------------------------------- */

typedef struct StoreArtifact {
	char *name, *path;
	int64_t size;
	char sha256[65];
	double created_at;
} StoreArtifact;
/* Records (or replaces) an artifact; size and sha256 are computed from the file now. */
int store_artifact_put(Store *st, int64_t job_id, const char *name, const char *path, char *err, size_t errlen);
int store_artifact_list(Store *st, int64_t job_id, StoreArtifact **a, int *n, char *err, size_t errlen);
int store_artifact_get(Store *st, int64_t job_id, const char *name, StoreArtifact *a, char *err, size_t errlen);
void store_artifact_clear(StoreArtifact *a);
void store_artifacts_free(StoreArtifact *a, int n);

/* ---- tokens -------------------------------------------------------------------------------- */

/* API bearer tokens. Only the SHA-256 (64 lowercase hex digits) of a token is stored; `ssld token
 * create` prints the token once. The name is the owner that jobs submitted with it record; an
 * admin token may cancel anyone's jobs. */
#define STORE_TOKEN_NAME_MAX 64
typedef struct StoreToken { int64_t id; char name[STORE_TOKEN_NAME_MAX]; int admin; double created_at; } StoreToken;
/* STORE_EEXIST when the name (or the hash) is taken. */
int store_token_add(Store *st, const char *name, const char *sha256hex, int admin, char *err, size_t errlen);
/* STORE_ENOTFOUND when no token has that name. */
int store_token_revoke(Store *st, const char *name, char *err, size_t errlen);
/* All tokens by name; *out malloc'd (free()). */
int store_token_list(Store *st, StoreToken **out, int *n, char *err, size_t errlen);
int store_token_count(Store *st, int64_t *n, char *err, size_t errlen);
/* 1 with *out filled when a token has this hash, 0 when none has, < 0 on error. */
int store_token_find(Store *st, const char *sha256hex, StoreToken *out, char *err, size_t errlen);

/* ---- change detection (for caches of answers built from the database) ---------------------- */

/* A stamp that changes with every commit to the database, by any connection of this process or
 * of another (`sqlite3 ssld.db`, a test), read without a transaction or a lock: it is a copy of
 * the WAL-index header SQLite keeps in the -shm file (https://www.sqlite.org/walformat.html; its
 * change counter moves on every transaction), read the way SQLite's own readers do (both copies
 * of the header, equal). A cache keeps the stamp read *before* it read the database; an entry is
 * current while store_change_stamp still returns an equal stamp. Returns 0 with *out set, or < 0
 * when no stamp can be read now (a commit is updating the header, no WAL index): then treat the
 * database as changed. */
typedef struct StoreStamp { unsigned char hdr[48]; } StoreStamp;
int store_change_stamp(Store *st, StoreStamp *out);
int store_stamp_equal(const StoreStamp *a, const StoreStamp *b);

/* ---- connections (for batch.c) ------------------------------------------------------------- */

struct sqlite3;
/* A configured connection from the pool (or a new one); give it back with store_release. */
struct sqlite3 *store_acquire(Store *st, char *err, size_t errlen);
void store_release(Store *st, struct sqlite3 *db);
/* BEGIN IMMEDIATE with retries beyond busy_timeout; 0 or STORE_EDB. */
int store_begin(struct sqlite3 *db, char *err, size_t errlen);
int store_commit(struct sqlite3 *db, char *err, size_t errlen);
void store_rollback(struct sqlite3 *db);

#endif
