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
 * files written by other tools may lack it). A weights file may also be a torchvision ResNet's
 * state dict (safetensors with torchvision's names, as `ssld export --format torchvision` or
 * torch writes it): its tensors are held to the job's resnet encoder instead.
 */
#ifndef SSLD_WORKERS_INIT_FROM_H
#define SSLD_WORKERS_INIT_FROM_H

#include <stddef.h>
#include <stdint.h>

#include "../engine/params.h"
#include "jobspec.h"

/* spec: the new job's resolved spec (JSON text); src_spec: the resolved spec stored with job
 * src_id. 0 when the encoders match (or src_spec says nothing about its model), 1 when they do
 * not (field and msg filled), < 0 when spec is not a JSON object. */
int init_from_check_job(const char *spec, int64_t src_id, const char *src_spec, char *field, size_t flen,
                        char *msg, size_t mlen);

/* The same against a .safetensors file (js is the new job, spec its resolved JSON). A file with
 * ssld's names (encoder.*): its "ssld.encoder_config" metadata, else the config.json written
 * beside it (encoder.safetensors + config.json); 0 also when neither says anything (a file written
 * by another tool: the load at run time still checks every tensor). A file with torchvision's
 * ResNet state-dict names (conv1.weight, layer1.0.bn1.weight, ...; fc.* and num_batches_tracked
 * ignored): every tensor the job's resnet encoder has, with its shape for the job's stem, width
 * and input channels, and no other, read from the header alone. 1 with field "init_from" when the
 * file is not a readable safetensors file or its torchvision tensors do not fit. */
int init_from_check_file(const JobSpec *js, const char *spec, const char *path, char *field, size_t flen,
                         char *msg, size_t mlen);

/* Loads the encoder weights of an init_from file into the tensors of ps under "encoder.": by
 * ssld's names (checkpoint_load), or by torchvision's (export_torchvision.h) when the file holds
 * a torchvision ResNet state dict. 0 (ssld names) or 1 (torchvision names), or < 0 with err.
 * *encoder_config (may be NULL) gets the source encoder's config JSON from an ssld file (its input
 * normalisation travels with it, model.h), NULL otherwise; the caller frees. */
int init_from_load(const char *path, ParamSet *ps, char **encoder_config, char *err, size_t errlen);

/* The weights a job that succeeded leaves for its dependants: its checkpoint, or - for a job that
 * did not pretrain (itself an init_from job) - its exported encoder. 0 with path set, -1 when
 * neither file is there. */
int init_from_job_weights(const char *shared_dir, int64_t job_id, char *path, size_t len);

#endif
