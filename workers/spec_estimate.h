/* spec_estimate.h - what a job will cost before it runs: parameters, peak memory of one training
 * step, and steps. `ssld check`, `POST /v1/jobs?dry_run=1` and the server's --max-job-memory
 * refusal use it.
 *
 *   JobEstimate e; jobspec_estimate(js, &e);
 *   if (e.peak_bytes > limit) ... e.driver names the key that drives the peak
 */
#ifndef SSLD_WORKERS_SPEC_ESTIMATE_H
#define SSLD_WORKERS_SPEC_ESTIMATE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "jobspec.h"

typedef struct JobEstimate {
	int64_t params;             /* encoder parameters */
	int64_t param_bytes;        /* float32 weights */
	int64_t grad_bytes;         /* their gradients */
	int64_t optim_bytes;        /* optimizer moments: AdamW 2, SGD/LARS 1 per parameter */
	int64_t activation_bytes;   /* what one step's tape keeps for the backward pass */
	int64_t peak_bytes;         /* the sum: the peak of one training step */
	int64_t train_samples;      /* -1 when only the data files say */
	int64_t steps_per_epoch;    /* -1 when unknown */
	int64_t steps;              /* pretraining steps; -1 when unknown (see max_steps) */
	const char *driver;         /* the key that drives the peak: "model" or "pretrain.batch_size" */
} JobEstimate;

/* The shape of one sample as the encoder sees it, from the spec and at most a file header (the
 * IDX images' dimensions, a CSV row's width): 1, or 0 when unknown (a file that does not open). */
int jobspec_sample_shape(const JobSpec *js, int *c, int *h, int *w);
/* Fill e from the resolved spec (reads at most an IDX header or the first line of a CSV file). */
void jobspec_estimate(const JobSpec *js, JobEstimate *e);
/* e as a JSON object {"params":…, "memory_bytes":{…}, "steps":…}. */
cJSON *jobspec_estimate_json(const JobEstimate *e);
/* "1.2 GiB" into buf. */
const char *jobspec_bytes_text(int64_t bytes, char *buf, size_t n);

#endif
