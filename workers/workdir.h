/* workdir.h - whose state a job's work directory holds, and whether its checkpoint fits a spec.
 *
 * A work dir (STATE_DIR/jobs/<id>/ for the daemon, `ssld run --out DIR`) may hold state that the
 * current run did not create: a job id reused after the database was lost or restored, or a run
 * directory reused with an edited spec. A run must never adopt such state. Two marks guard it:
 *   - the job key (the daemon's identity of one job row), in DIR/job-key and in the checkpoint's
 *     ssld.job_key: a directory marked by another key, or holding unmarked state, is moved aside
 *     (renamed, never deleted) and the job starts fresh;
 *   - the spec hash (workdir_spec_hash of the resolved spec), in DIR/spec.sha256 and in the
 *     checkpoint's ssld.spec_sha256: `ssld run` refuses to resume a checkpoint of another spec.
 *
 *   char h[65]; workdir_spec_hash(resolved_json, h);
 *   char moved[4200];
 *   int rc = workdir_claim("/var/lib/ssld/jobs/1", key, moved, sizeof moved, err, sizeof err);
 *   // rc == 1: the old contents are now in `moved`; rc == 0: it was ours or empty; < 0: err
 *
 * Not here: what a resume restores (runner.c) or how the daemon derives a key (pool.c).
 */
#ifndef SSLD_WORKERS_WORKDIR_H
#define SSLD_WORKERS_WORKDIR_H

#include <stddef.h>
#include <stdint.h>

#define WORKDIR_KEY_FILE "job-key"
#define WORKDIR_SPEC_FILE "spec.sha256"

/* The daemon's key of one job row: its id and creation time to the clock's resolution, so a
 * directory left by an earlier job with the same id (a replaced or restored database) never
 * matches. "17-41d9a2b3c4d5e6f7". */
void workdir_job_key(int64_t job_id, double created_at, char *out, size_t len);

/* SHA-256 (hex, 65 bytes with the NUL) of a resolved spec, leaving out the keys that do not change
 * what is computed ("name", "threads", "checkpoint_interval_s", "priority"). 0, or -1 when the
 * text is not a JSON object. */
int workdir_spec_hash(const char *resolved_json, char out[65]);

/* Makes dir this job's: when it holds anything not marked with key (another key, or state with no
 * key at all), renames it to "<dir>.orphan-<time>" (path in moved_to), recreates it empty, and
 * returns 1; returns 0 when it was already this job's or empty. Either way dir is then marked with
 * key (DIR/job-key, written atomically). < 0 with err naming the path on failure. */
int workdir_claim(const char *dir, const char *key, char *moved_to, size_t len, char *err,
                  size_t errlen);

/* Renames dir to "<dir><suffix>-<UTC time>" (a number appended if that exists) and recreates it
 * empty. 0 with the new path in moved_to, or < 0 with err. */
int workdir_move_aside(const char *dir, const char *suffix, char *moved_to, size_t len, char *err,
                       size_t errlen);

/* What a directory holds, for `ssld run` to decide before it starts. */
typedef struct WorkdirInfo {
	int has_checkpoint;   /* DIR/checkpoint.safetensors exists */
	int64_t step;         /* its step */
	int finished;         /* DIR/results.json exists */
	int spec_match;       /* 1 same spec, 0 another spec, -1 unknown (no hash recorded) */
	char differs[256];    /* when known: the first keys that differ ("pretrain.batch_size 64 -> 128") */
} WorkdirInfo;

/* Inspects dir against the resolved spec (its hash and, for naming differences, its JSON).
 * 0, or < 0 with err (e.g. an unreadable checkpoint). */
int workdir_inspect(const char *dir, const char *resolved_json, WorkdirInfo *out, char *err,
                    size_t errlen);

/* Writes DIR/spec.sha256 (atomically). 0 or < 0 with err. */
int workdir_mark_spec(const char *dir, const char *spec_hash, char *err, size_t errlen);

#endif
