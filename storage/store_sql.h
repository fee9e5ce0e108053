/* store_sql.h - the SQL that store.c (SQLite) and store_pg.c (PostgreSQL) both run, written once.
 *
 * Placeholders are SQLite's ?1, ?2, ...; store_pg.c turns them into $1, $2, ... before it sends a
 * statement (outside quoted literals), and declares each parameter's type, so no cast is needed
 * here. A statement only one dialect can say (the claim's FOR UPDATE SKIP LOCKED, the lease clock,
 * the metric batch) stays in its backend; where a shared step needs a word the dialects spell
 * apart, both spellings stand here side by side (_SQLITE, _PG). The column lists fix the order the
 * readers of store_rows.h expect. Private to storage/.
 */
#ifndef SSLD_STORAGE_STORE_SQL_H
#define SSLD_STORAGE_STORE_SQL_H

/* ---- column lists (store_rows.h reads them in this order) ------------------------------------ */

#define SQL_JOB_COLS "id, name, method, owner, state, priority, created_at, started_at, finished_at, " \
	"updated_at, step, total, stage, eta_s, checkpoint_step, attempts, cancel_requested, error, " \
	"interruptions, init_from_job, group_id, group_setting, progress, node, lease_until, lease_gen"
#define SQL_GROUP_COLS "id, name, owner, sweep, created_at"
#define SQL_ARTIFACT_COLS "name, path, size, sha256, created_at"
#define SQL_TOKEN_COLS "id, name, admin, created_at"
#define SQL_DATASET_COLS "owner, name, format, bytes, files, summary, path, created_at"

/* ---- conditions ------------------------------------------------------------------------------ */

/* A queued job may run: its init_from source (if any) has succeeded (store.h). */
#define SQL_CLAIMABLE "q.state = 'queued' AND (q.init_from_job IS NULL OR " \
	"(SELECT s.state FROM jobs AS s WHERE s.id = q.init_from_job) = 'succeeded')"
/* The jobs start-up recovery takes: running, and (node given) run by that node (?3 node). */
#define SQL_RECOVERED "state = 'running' AND (?3 IS NULL OR node = ?3)"
/* The running jobs whose lease has expired (?1 now). */
#define SQL_EXPIRED "state = 'running' AND lease_until IS NOT NULL AND lease_until < ?1"
/* The event of a reclaimed job (SQL over its row, ?1 now): the one text the dialects say apart. */
#define SQL_LEASE_EXPIRED_SQLITE "'the lease of node ' || coalesce(node, '?') || ' expired ' || " \
	"printf('%.1f', ?1 - lease_until) || ' s ago (lease generation ' || lease_gen || '); the job goes back to the queue'"
#define SQL_LEASE_EXPIRED_PG "'the lease of node ' || coalesce(node, '?') || ' expired ' || " \
	"round((?1::float8 - lease_until)::numeric, 1) || ' s ago (lease generation ' || lease_gen || '); the job goes " \
	"back to the queue'"
/* The reason a job interrupted too often fails with (SQL over its row). */
#define SQL_GIVING_UP "'interrupted ' || interruptions || ' times (the daemon stopped or crashed while it ran); giving up'"

/* ---- jobs ------------------------------------------------------------------------------------ */

/* A queued job (?1 name, ?2 method, ?3 spec, ?4 priority, ?5 owner, ?6 now, ?7 init_from job,
 * ?8 group, ?9 group setting; ?7 and ?8 0 for none: NULLIF keeps those columns NULL). */
#define SQL_INSERT_JOB \
	"INSERT INTO jobs(name, method, spec, state, priority, owner, created_at, updated_at, init_from_job, " \
	"group_id, group_setting) VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?6, NULLIF(?7, 0), NULLIF(?8, 0), ?9)"
#define SQL_GET_JOB "SELECT " SQL_JOB_COLS ", spec, results FROM jobs WHERE id = ?1"
#define SQL_JOB_STATE "SELECT state FROM jobs WHERE id = ?1"
#define SQL_COUNT_QUEUED "SELECT count(*) FROM jobs WHERE state = 'queued'"
#define SQL_COUNT_QUEUED_OWNER "SELECT count(*) FROM jobs WHERE owner = ?1 AND state = 'queued'"
/* The init_from source's state, owner and error (rows_check_source). */
#define SQL_SOURCE "SELECT state, owner, error FROM jobs WHERE id = ?1"
#define SQL_JOB_COUNTS "SELECT state, count(*) FROM jobs GROUP BY state"

/* Queued dependants of sources that failed, were cancelled or do not exist fail with the
 * source's reason (?1 = now); run until it changes no row, so a chain fails down to its end. */
#define SQL_FAILED_DEPENDANT \
	"d.state = 'queued' AND d.init_from_job IS NOT NULL AND coalesce((SELECT s.state " \
	"FROM jobs AS s WHERE s.id = d.init_from_job), 'missing') IN ('failed', 'cancelled', 'missing')"
#define SQL_FAIL_DEPENDANTS \
	"UPDATE jobs AS d SET state = 'failed', finished_at = ?1, updated_at = ?1, eta_s = NULL, " \
	"error = coalesce((SELECT 'init_from job ' || s.id || CASE s.state WHEN 'failed' THEN ' failed: ' " \
	"ELSE ' was cancelled: ' END || coalesce(s.error, 'no reason recorded') FROM jobs AS s " \
	"WHERE s.id = d.init_from_job), 'init_from job ' || d.init_from_job || ' does not exist') " \
	"WHERE " SQL_FAILED_DEPENDANT

/* A resumed run repeats everything after its checkpoint: its points stored after it go (?1 job). */
#define SQL_DROP_AFTER_CHECKPOINT \
	"DELETE FROM metrics WHERE job_id = ?1 AND id > (SELECT checkpoint_metric_id FROM jobs WHERE id = ?1)"
#define SQL_DROP_METRIC_KEYS "DELETE FROM metric_keys WHERE job_id = ?1"

/* store_job_finish: back to the queue (?1 id, ?2 now, ?3 lease_gen or < 0), or final (?1 id,
 * ?2 state, ?3 now, ?4 results, ?5 error, ?6 lease_gen or < 0). */
#define SQL_FINISH_QUEUED \
	"UPDATE jobs SET state = 'queued', updated_at = ?2, eta_s = NULL, node = NULL, lease_until = NULL " \
	"WHERE id = ?1 AND state = 'running' AND (?3 < 0 OR lease_gen = ?3)"
#define SQL_FINISH \
	"UPDATE jobs SET state = ?2, updated_at = ?3, finished_at = ?3, results = ?4, error = ?5, eta_s = NULL, " \
	"node = NULL, lease_until = NULL, " \
	"step = CASE WHEN ?2 = 'succeeded' AND total > 0 THEN total ELSE step END " \
	"WHERE id = ?1 AND state = 'running' AND (?6 < 0 OR lease_gen = ?6)"
/* ?1 id, ?2 step, ?3 now, ?4 lease_gen or < 0 */
#define SQL_CHECKPOINT \
	"UPDATE jobs SET checkpoint_step = ?2, updated_at = ?3, checkpoint_metric_id = " \
	"(SELECT coalesce(max(id), 0) FROM metrics WHERE job_id = ?1) " \
	"WHERE id = ?1 AND (?4 < 0 OR (state = 'running' AND lease_gen = ?4))"
/* ?1 id, ?2 now */
#define SQL_CANCEL_QUEUED \
	"UPDATE jobs SET state = 'cancelled', cancel_requested = 1, finished_at = ?2, updated_at = ?2, " \
	"error = 'cancelled while queued' WHERE id = ?1"
#define SQL_CANCEL_RUNNING "UPDATE jobs SET cancel_requested = 1, updated_at = ?2 WHERE id = ?1"

/* ---- webhook deliveries (store.h, "the outbox") ---------------------------------------------- */

/* A pending delivery for job ?1 (?2 now), written in the transaction that ends the job. */
#define SQL_OUTBOX_ADD "INSERT INTO webhook_outbox(job_id, created_at) VALUES (?1, ?2) ON CONFLICT (job_id) DO NOTHING"
/* The same for the jobs of a condition over jobs (%s; ?1 now), run just before the UPDATE that
 * ends them with the same condition. */
#define SQL_OUTBOX_ADD_WHERE "INSERT INTO webhook_outbox(job_id, created_at) SELECT id, ?1 FROM jobs WHERE %s " \
	"ON CONFLICT (job_id) DO NOTHING"
#define SQL_OUTBOX_ADD_DEPENDANTS "INSERT INTO webhook_outbox(job_id, created_at) SELECT d.id, ?1 FROM jobs AS d " \
	"WHERE " SQL_FAILED_DEPENDANT " ON CONFLICT (job_id) DO NOTHING"
#define SQL_DELIVERY_COLS "id, job_id, state, attempts, next_at, last_status, claimed_by, last_error"
/* The oldest pending delivery no other node holds (?1 now, ?2 node); PostgreSQL adds FOR UPDATE SKIP LOCKED. */
#define SQL_DELIVERY_NEXT "SELECT id FROM webhook_outbox WHERE state = 'pending' AND " \
	"(claimed_by IS NULL OR claimed_by = ?2 OR claim_until < ?1) ORDER BY id LIMIT 1"
/* ?1 now, ?2 node, ?3 claim_s, ?4 id */
#define SQL_DELIVERY_TAKE "UPDATE webhook_outbox SET claimed_by = ?2, " \
	"claim_until = CASE WHEN next_at > ?1 THEN next_at ELSE ?1 END + ?3 WHERE id = ?4"
#define SQL_DELIVERY_GET "SELECT " SQL_DELIVERY_COLS " FROM webhook_outbox WHERE id = ?1"
#define SQL_DELIVERY_OF_JOB "SELECT " SQL_DELIVERY_COLS " FROM webhook_outbox WHERE job_id = ?1"
/* One attempt's outcome (?1 id, ?2 node, ?3 now, ?4 retry_s, ?5 state, ?6 status or 0, ?7 error,
 * ?8 claim_s): only while the row is still node's pending claim. An ended row keeps claimed_by
 * (the node that made the last attempt) without a claim_until. */
#define SQL_DELIVERY_RECORD "UPDATE webhook_outbox SET state = ?5, attempts = attempts + 1, " \
	"last_status = NULLIF(?6, 0), last_error = ?7, next_at = ?3 + ?4, " \
	"done_at = CASE WHEN ?5 = 'pending' THEN NULL ELSE ?3 END, " \
	"claim_until = CASE WHEN ?5 = 'pending' THEN ?3 + ?4 + ?8 END " \
	"WHERE id = ?1 AND state = 'pending' AND claimed_by = ?2"
/* ?1 node or NULL for all */
#define SQL_DELIVERY_RELEASE "UPDATE webhook_outbox SET claimed_by = NULL, claim_until = NULL " \
	"WHERE state = 'pending' AND claimed_by IS NOT NULL AND (?1 IS NULL OR claimed_by = ?1)"
/* Ended deliveries older than ?1, or past the newest ?2 of them. */
#define SQL_DELIVERY_PRUNE "DELETE FROM webhook_outbox WHERE state <> 'pending' AND (done_at < ?1 OR id <= " \
	"coalesce((SELECT id FROM webhook_outbox WHERE state <> 'pending' ORDER BY id DESC LIMIT 1 OFFSET ?2), 0))"

/* ---- groups ---------------------------------------------------------------------------------- */

#define SQL_INSERT_GROUP "INSERT INTO job_groups(name, owner, sweep, created_at) VALUES (?1, ?2, ?3, ?4)"
#define SQL_GROUP_COUNTS "SELECT state, count(*) FROM jobs WHERE group_id = ?1 GROUP BY state"
#define SQL_GET_GROUP "SELECT " SQL_GROUP_COLS " FROM job_groups WHERE id = ?1"
/* ?1 before id, ?2 limit, ?3 owner */
#define SQL_LIST_GROUPS "SELECT " SQL_GROUP_COLS " FROM job_groups WHERE id < ?1 ORDER BY id DESC LIMIT ?2"
#define SQL_LIST_GROUPS_OWNER \
	"SELECT " SQL_GROUP_COLS " FROM job_groups WHERE id < ?1 AND owner = ?3 ORDER BY id DESC LIMIT ?2"

/* ---- metrics and events ---------------------------------------------------------------------- */

#define SQL_METRIC_KEYS "SELECT key FROM metric_keys WHERE job_id = ?1 ORDER BY key LIMIT 256"
/* ?1 job, ?2 key, ?3 after, ?4 max rows */
#define SQL_READ_KEY \
	"SELECT id, step, value FROM metrics WHERE job_id = ?1 AND key = ?2 AND id > ?3 ORDER BY id LIMIT ?4"
#define SQL_LATEST "SELECT last_id, last_step, key, last_value FROM metric_keys WHERE job_id = ?1 ORDER BY key"
/* ?1 job, ?2 after, ?3 limit */
#define SQL_EVENTS "SELECT id, time, level, message FROM events WHERE job_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
#define SQL_EVENT_ADD "INSERT INTO events(job_id, time, level, message) VALUES (?1, ?2, ?3, ?4)"

/* ---- artifacts, tokens, datasets ------------------------------------------------------------- */

/* Records or replaces a job's artifact (?1 job, ?2 name, ?3 path, ?4 size, ?5 sha256, ?6 now). */
#define SQL_ARTIFACT_PUT "INSERT INTO artifacts(job_id, name, path, size, sha256, created_at) " \
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (job_id, name) DO UPDATE SET path = excluded.path, " \
	"size = excluded.size, sha256 = excluded.sha256, created_at = excluded.created_at"
#define SQL_ARTIFACTS "SELECT " SQL_ARTIFACT_COLS " FROM artifacts WHERE job_id = ?1 ORDER BY name"
#define SQL_ARTIFACT "SELECT " SQL_ARTIFACT_COLS " FROM artifacts WHERE job_id = ?1 AND name = ?2"
#define SQL_TOKEN_ADD "INSERT INTO tokens(name, sha256, admin, created_at) VALUES (?1, ?2, ?3, ?4)"
#define SQL_TOKEN_REVOKE "DELETE FROM tokens WHERE name = ?1"
#define SQL_TOKENS "SELECT " SQL_TOKEN_COLS " FROM tokens ORDER BY name"
#define SQL_TOKEN_COUNT "SELECT count(*) FROM tokens"
#define SQL_TOKEN_FIND "SELECT " SQL_TOKEN_COLS " FROM tokens WHERE sha256 = ?1"
#define SQL_DATASET_ADD "INSERT INTO datasets(" SQL_DATASET_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
#define SQL_DATASET "SELECT " SQL_DATASET_COLS " FROM datasets WHERE owner = ?1 AND name = ?2"
#define SQL_DATASETS "SELECT " SQL_DATASET_COLS " FROM datasets ORDER BY owner, name"
#define SQL_DATASETS_OWNER "SELECT " SQL_DATASET_COLS " FROM datasets WHERE owner = ?1 ORDER BY owner, name"
#define SQL_DATASET_DELETE "DELETE FROM datasets WHERE owner = ?1 AND name = ?2"
/* A queued or running job whose spec holds ?1 or ?2 (store_dataset_user), said apart by the dialects. */
#define SQL_DATASET_USER_SQLITE "SELECT id FROM jobs WHERE state IN ('queued','running') AND " \
	"(instr(spec, ?1) > 0 OR instr(spec, ?2) > 0) ORDER BY id LIMIT 1"
#define SQL_DATASET_USER_PG "SELECT id FROM jobs WHERE state IN ('queued','running') AND " \
	"(strpos(spec, ?1) > 0 OR strpos(spec, ?2) > 0) ORDER BY id LIMIT 1"
#define SQL_DATASET_USAGE "SELECT count(*), coalesce(sum(bytes), 0) FROM datasets WHERE owner = ?1"

#endif
