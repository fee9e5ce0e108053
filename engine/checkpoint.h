/* checkpoint.h - save and load a ParamSet (and optionally optimizer state, step, RNG, metadata)
 * as safetensors, so PyTorch and others can read the weights.
 *
 * File layout (https://github.com/huggingface/safetensors): 8-byte little-endian header length
 * N, then N bytes of JSON (padded with spaces so the data starts 8-byte aligned), then the data.
 * The JSON maps each dotted tensor name to {"dtype":"F32","shape":[...],"data_offsets":[b,e]}
 * (offsets relative to the data section, contiguous, covering it exactly) and "__metadata__" to a
 * string->string map. ssld writes these metadata keys:
 *   ssld.format "1", ssld.step, ssld.epoch, ssld.elapsed_s, ssld.rng (four hex words),
 *   ssld.method, ssld.encoder_config (a JSON string), ssld.optim_steps, ssld.optim_tensors,
 *   ssld.data_crc32 (CRC-32/IEEE of the data section, 8 hex digits, as zlib.crc32),
 *   ssld.header_crc32 (CRC-32 of the canonical header, see checkpoint.c),
 *   ssld.job_key (the identity of the job that wrote it; a job resumes only its own checkpoint),
 *   ssld.spec_sha256 (SHA-256 of the resolved job spec it was trained with),
 *   ssld.loss (the loss of the last step before it, so a run resumed at its end can report it).
 * Optimizer moments are stored as tensors named "optim.<state name>" ("optim.adam.m.fc.weight").
 *
 * Writes are atomic (temp file in the same directory, fsync, rename, fsync of the directory): a
 * crash leaves either the old file or the new one. Loads validate everything before touching the
 * ParamSet (a failed load changes nothing) and report the file and the problem:
 *   "ckpt.safetensors: data checksum mismatch (stored 1a2b3c4d, computed 99aa0011): file corrupted"
 *
 *   CheckpointState st = { .step = step, .rng = *ctx_rng(ctx), .method = "simclr" };
 *   if (checkpoint_save("run/checkpoint.safetensors", ps, opt, &st, err, sizeof err) < 0) ...
 *   CheckpointState back;                       // filled by load; free with checkpoint_state_free
 *   if (checkpoint_load("run/checkpoint.safetensors", ps, opt, &back, NULL, err, sizeof err) < 0)
 *   ...
 *   // encoder export for transfer: "online.encoder.*" stored as "encoder.*"
 *   checkpoint_export_prefix("run/encoder.safetensors", ps, "online.encoder.", "encoder.", cfg,
 *                            err, sizeof err);
 */
#ifndef SSLD_ENGINE_CHECKPOINT_H
#define SSLD_ENGINE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "optim.h"
#include "params.h"
#include "rng.h"
#include "tensor.h"

/* Error codes (negative returns). */
enum {
	CKPT_EIO = -1,        /* open/read/write/fsync/rename failed (errno text in the message) */
	CKPT_EFORMAT = -2,    /* not a well-formed safetensors file, or unsupported content */
	CKPT_ECORRUPT = -3,   /* checksum mismatch or missing checksum */
	CKPT_EMISMATCH = -4,  /* names or shapes do not match the ParamSet / optimizer */
	CKPT_ENOMEM = -5,
	CKPT_EINVAL = -6,     /* bad arguments */
};
const char *checkpoint_strerror(int code);

/* Load flags. */
enum {
	CKPT_ALLOW_MISSING = 1,   /* params of the set absent from the file are left untouched */
	CKPT_ALLOW_UNUSED = 2,    /* file tensors (under the prefix) the set lacks are ignored */
	CKPT_ALLOW_UNCHECKED = 4, /* accept files without ssld checksums (e.g. written by PyTorch) */
	CKPT_SKIP_OTHER_DTYPES = 8, /* drop tensors that are not F32 (a PyTorch state dict's I64
	                             * num_batches_tracked) instead of refusing the file */
};

/* Training state stored next to the weights. On save every field is optional (zero = absent;
 * an all-zero rng means "no RNG state", which xoshiro can never be in). On load the struct is
 * completely overwritten; strings are then owned copies, released by checkpoint_state_free. */
typedef struct CheckpointState {
	int64_t step;
	int64_t epoch;
	double elapsed_s;                  /* training time so far, for throughput and ETA */
	double loss;                       /* the last step's loss (0 = unknown) */
	Rng rng;
	const char *method;                /* pretext method name */
	const char *encoder_config_json;   /* small JSON object describing the encoder */
	const char *job_key;               /* who wrote it (runner.h); NULL = unknown */
	const char *spec_sha256;           /* 64 hex digits of the resolved spec's hash; NULL = unknown */
} CheckpointState;

void checkpoint_state_free(CheckpointState *st);

/* Every tensor of ps (parameters and buffers), opt's moments when opt is non-NULL, and st (may be
 * NULL). Returns 0 or a negative code with err set. */
int checkpoint_save(const char *path, const ParamSet *ps, const Optim *opt,
                    const CheckpointState *st, char *err, size_t errlen);

/* checkpoint_save that asks may_commit(user) once the new file is complete on disk, just before
 * it replaces path: 0 = abandon it (path keeps its old content; returns 1). For a writer that can
 * lose the right to write while it writes (a job whose lease another node took over). */
int checkpoint_save_guarded(const char *path, const ParamSet *ps, const Optim *opt,
                            const CheckpointState *st, int (*may_commit)(void *user), void *user,
                            char *err, size_t errlen);

/* Tensors of ps whose name starts with src_prefix (NULL = all), stored under the name with
 * src_prefix replaced by dst_prefix; no optimizer state. config_json may be NULL. */
int checkpoint_export_prefix(const char *path, const ParamSet *ps, const char *src_prefix,
                             const char *dst_prefix, const char *config_json, char *err,
                             size_t errlen);

/* Load every tensor of ps whose name starts with prefix (NULL = all) from the same name in the
 * file; file tensors under the prefix must all exist in ps (strict both ways, shapes equal).
 * With opt non-NULL the optimizer moments and step count are restored too (and must be present).
 * st (may be NULL) receives the stored state. Nothing is modified unless everything validates.
 * Returns the number of parameters loaded (>= 0) or a negative code with err set. */
int checkpoint_load(const char *path, ParamSet *ps, Optim *opt, CheckpointState *st,
                    const char *prefix, char *err, size_t errlen);

/* Transfer: every tensor of ps under dst_prefix is read from the file's name with dst_prefix
 * replaced by src_prefix (e.g. file "online.encoder.*" -> set "encoder.*"). flags relax the
 * matching (CKPT_ALLOW_*). Returns the number of tensors loaded, or a negative code. */
int checkpoint_load_prefix(const char *path, ParamSet *ps, const char *src_prefix,
                           const char *dst_prefix, int flags, CheckpointState *st, char *err,
                           size_t errlen);

/* ---- lower level: an opened, fully validated file held in memory ---------------------------- */
typedef struct Checkpoint Checkpoint;

/* Reads and validates the whole file (structure, and checksums unless CKPT_ALLOW_UNCHECKED). */
int checkpoint_open(const char *path, int flags, Checkpoint **out, char *err, size_t errlen);
void checkpoint_close(Checkpoint *ck);   /* checkpoint_close(NULL) is a no-op */
int checkpoint_count(const Checkpoint *ck);
/* Tensors in data order; data is borrowed from the file image (valid until close), read-only. */
const Tensor *checkpoint_tensor_at(const Checkpoint *ck, int i);
const Tensor *checkpoint_find(const Checkpoint *ck, const char *name);
/* A __metadata__ value, or NULL. Borrowed. */
const char *checkpoint_meta(const Checkpoint *ck, const char *key);
/* The ssld.* state keys parsed into st (owned strings; checkpoint_state_free). */
int checkpoint_get_state(const Checkpoint *ck, CheckpointState *st, char *err, size_t errlen);

#endif
