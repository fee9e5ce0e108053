/* init_from.h - a job that starts from another job's encoder, or from a weights file (init_from):
 * the submit-time check that the new job builds the same encoder, and where a source job's
 * weights are.
 *
 * The queue side of init_from lives in storage (store.h, "init_from"): which sources may be
 * named (they exist, have not failed, and are the submitter's own unless they succeeded), that a
 * dependant waits in the queue until its source succeeded, and that it fails when its source
 * fails or is cancelled. Together these are the whole rule; nothing else decides it.
 *
 *   char field[64], msg[512];
 *   int rc = init_from_check_job(resolved_spec, 7, source_spec, field, sizeof field, msg, sizeof msg);
 *   if (rc > 0) reply 400 naming field ("model.channels") with msg
 *       ("model.channels: [32,64] differs from job 7's [32,64,128]; ...");
 *
 * The architecture compared is the resolved spec's "model" section, key by key, except what does
 * not change the weights (dropout). A key only one side has is not compared (older specs and
 * files written by other tools may lack it).
 */
#ifndef SSLD_WORKERS_INIT_FROM_H
#define SSLD_WORKERS_INIT_FROM_H

#include <stddef.h>
#include <stdint.h>

/* spec: the new job's resolved spec (JSON text); src_spec: the resolved spec stored with job
 * src_id. 0 when the encoders match (or src_spec says nothing about its model), 1 when they do
 * not (field and msg filled), < 0 when spec is not a JSON object. */
int init_from_check_job(const char *spec, int64_t src_id, const char *src_spec, char *field, size_t flen,
                        char *msg, size_t mlen);

/* The same against a .safetensors file: its "ssld.encoder_config" metadata, else the config.json
 * written beside it (encoder.safetensors + config.json). 0 also when neither says anything (a
 * file written by another tool: the load at run time still checks every tensor); 1 with field
 * "init_from" when the file is not a readable safetensors file. */
int init_from_check_file(const char *spec, const char *path, char *field, size_t flen, char *msg, size_t mlen);

/* The weights a job that succeeded leaves for its dependants: its checkpoint, or - for a job that
 * did not pretrain (itself an init_from job) - its exported encoder. 0 with path set, -1 when
 * neither file is there. */
int init_from_job_weights(const char *state_dir, int64_t job_id, char *path, size_t len);

#endif
