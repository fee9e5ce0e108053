/* jobspec.h - the job specification: one JSON format for `ssld run` and `POST /v1/jobs`.
 *
 * jobspec_parse validates a job JSON completely (unknown keys with "did you mean", types, ranges,
 * method parameters against the method catalogue, dataset paths against the data roots) and fills
 * a JobSpec with every default applied. On failure it fills SpecError with the dotted path of the
 * offending field and a message that names it ("pretrain.optimizer.lr: must be > 0, got -1");
 * jobspec_parse_all reports every error of the spec at once (spec_table.h holds the keys).
 *
 *   JobSpec *js; SpecError e;
 *   if (jobspec_parse(text, len, &opts, &js, &e) < 0) printf("%s: %s\n", e.field, e.message);
 *   ... js->pretrain.batch_size ...
 *   jobspec_free(js);
 *
 * The catalogue of methods and protocols (names, parameters, types, defaults, help, example spec)
 * is served by jobspec_catalog_json() for `ssld methods` and `GET /v1/methods`.
 */
#ifndef SSLD_WORKERS_JOBSPEC_H
#define SSLD_WORKERS_JOBSPEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../engine/data/augment.h"
#include "../engine/data/dataset.h"
#include "../engine/model.h"
#include "../engine/optim.h"

#define JOBSPEC_MAX_EVALS 16
#define JOBSPEC_MAX_FRACTIONS 8
#define JOBSPEC_MAX_PARAMS 32
#define JOBSPEC_MAX_TEXT_FILES 64

typedef struct SpecError {
	char code[32];       /* "invalid_field", "unknown_key", "invalid_json", "forbidden_path", ... */
	char field[128];     /* dotted path: "pretrain.optimizer.lr", "evaluations[1].protocol" */
	char message[384];   /* full sentence, starts with the field */
	int http_status;     /* 400, or 403 for data-root violations, 404 for a missing dataset */
} SpecError;

/* Every error of one spec, in the order found. The parser keeps going across keys and levels and
 * stops descending only into a value whose type is wrong or whose prerequisite failed. */
#define JOBSPEC_MAX_ERRORS 32
typedef struct SpecErrors {
	int n;                           /* entries in e[] */
	int dropped;                     /* errors beyond JOBSPEC_MAX_ERRORS, not kept */
	SpecError e[JOBSPEC_MAX_ERRORS];
} SpecErrors;

typedef struct JobSpecOptions {
	const char *const *data_roots;  /* datasets must resolve (realpath) inside one of these; */
	int n_data_roots;               /* 0 roots = no restriction (ssld run) */
	int check_files;                /* 1 = dataset files must exist (default for both callers) */
} JobSpecOptions;

typedef struct MethodParam {   /* one resolved method parameter (catalogue default or given) */
	const char *name;
	double value;              /* numbers and booleans (0/1) */
	const char *str;           /* string parameters, else NULL */
} MethodParam;

typedef enum EvalProtocol { EVAL_LINEAR_PROBE, EVAL_FINETUNE, EVAL_KNN, EVAL_SUPERVISED } EvalProtocol;

typedef struct EvalSpec {
	EvalProtocol protocol;
	double fractions[JOBSPEC_MAX_FRACTIONS];   /* label fractions, e.g. 0.01, 0.1, 1.0 */
	int n_fractions;
	int labels_per_class;                      /* > 0 overrides fractions (one run) */
	LabelRule label_rule;                      /* "first" (default) or "random" */
	int epochs;                                /* probe / finetune / supervised */
	int batch_size;
	float lr;                                  /* 0 = protocol default */
	float encoder_lr_scale;                    /* finetune: encoder lr = lr * scale (default 0.1) */
	float weight_decay;
	int k;                                     /* knn (default 20) */
	float temperature;                         /* knn vote temperature (default 0.07) */
	int augment;                               /* supervised/finetune: light augmentation (default 1) */
} EvalSpec;

typedef struct JobSpec {
	char *name;
	char *method;                  /* "simclr", ... (catalogue name) */
	MethodParam params[JOBSPEC_MAX_PARAMS];
	int n_params;
	DatasetSpec dataset;           /* strings owned by the JobSpec */
	char *dataset_name;            /* "fashion-mnist", or NULL for explicit files */
	EncoderConfig encoder;
	AugConfig augment[2];          /* view 1 and view 2 (same unless "augment2" given) */
	struct {
		int epochs;
		double time_budget_s;      /* > 0: stop pretraining after this wall time */
		int64_t max_steps;         /* > 0: stop after this many steps */
		int batch_size;
		OptimConfig optim;         /* warmup_steps resolved from warmup_epochs by the runner */
		float warmup_epochs;
	} pretrain;
	EvalSpec evals[JOBSPEC_MAX_EVALS];
	int n_evals;
	uint64_t seed;
	int threads;                   /* BLAS/augmentation threads (default 2) */
	double checkpoint_interval_s;  /* default 120 */
	char *init_from;               /* checkpoint path, or NULL */
	int64_t init_from_job;         /* > 0: a job id (daemon resolves it) */
	int priority;                  /* queue priority, higher first (default 0) */
} JobSpec;

int jobspec_parse(const char *json, size_t len, const JobSpecOptions *opts, JobSpec **out,
                  SpecError *err);
/* jobspec_parse reporting all errors (errs->e[0] is the one jobspec_parse reports). Returns 0, or
 * the negative errno of the first error. */
int jobspec_parse_all(const char *json, size_t len, const JobSpecOptions *opts, JobSpec **out,
                      SpecErrors *errs);
void jobspec_free(JobSpec *js);
/* A method parameter by name (always present after parse: defaults are filled in). */
double jobspec_param(const JobSpec *js, const char *name);
const char *jobspec_param_str(const JobSpec *js, const char *name);
/* The catalogue as JSON text (malloc'd; caller frees with free()). */
char *jobspec_catalog_json(void);
const char *eval_protocol_name(EvalProtocol p);

/* The resolved spec a job stored at submit (the database, JOBDIR/job.json), parsed again where
 * the job runs. Submit checked it whole; what it re-checks is what can change until the job
 * opens its files (they exist and are regular files). The data roots, an init_from job's
 * state and the memory limit are submit's: they are not applied again, so a job accepted then
 * is not refused by a later configuration. 0 or < 0 with err (the message names the key). */
int jobspec_parse_stored(const char *json, size_t len, JobSpec **out, SpecError *err);
/* jobspec_parse without keeping the result: 0 or a negative errno (-EINVAL 400,
 * -EACCES 403, -ENOENT 404, -ENOMEM) with err filled. */
int jobspec_validate(const char *json, size_t len, const JobSpecOptions *opts, SpecError *err);
/* `ssld methods`: every method with its parameters, defaults and example, then the
 * protocols. 0, or -EIO when writing failed. */
int jobspec_print_catalog(FILE *f);
/* The resolved spec as JSON with every default explicit and dataset paths resolved;
 * parsing it again gives the same JobSpec. malloc'd (free()), NULL on out of memory. */
char *jobspec_to_json(const JobSpec *js);

#endif
