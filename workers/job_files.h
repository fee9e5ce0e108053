/* job_files.h - the names of the files in a job's directory, spelled once.
 *
 * The runner writes them, the pool and the API read the checkpoint of another job (init_from,
 * generation), `ssld generate` reads the spec beside the checkpoint, and people and PyTorch read
 * the exported encoder. Paths are "<job dir>/" JOB_FILE_...:
 *
 *   snprintf(path, sizeof path, "%s/" JOB_FILE_CHECKPOINT, dir);
 */
#ifndef SSLD_WORKERS_JOB_FILES_H
#define SSLD_WORKERS_JOB_FILES_H

#define JOB_FILE_CHECKPOINT "checkpoint.safetensors"   /* weights, optimizer state, step, RNG */
#define JOB_FILE_ENCODER "encoder.safetensors"         /* the encoder alone, for transfer/export */
#define JOB_FILE_CONFIG "config.json"                  /* the encoder's config (python/ssld_torch.py) */
#define JOB_FILE_RESULTS "results.json"                /* the job's results (the API's "results") */
#define JOB_FILE_SPEC "job.json"                       /* the resolved spec that ran */

#endif
