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
#include "../engine/methods/embed_map.h"
#include "../engine/methods/eval.h"
#include "../engine/methods/method.h"
#include "../engine/model.h"
#include "../engine/optim.h"

#define JOBSPEC_MAX_EVALS 16
#define JOBSPEC_MAX_FRACTIONS EVAL_MAX_FRACTIONS
#define JOBSPEC_MAX_TEXT_FILES 64
#define JOBSPEC_MAX_HOSTS 64
#define JOBSPEC_MAX_PROCESSES 256

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
	const char *const *data_roots;  /* datasets must resolve (realpath) inside one of these; an */
	int n_data_roots;               /* empty array (n 0) allows no file; NULL = no restriction (ssld run) */
	int check_files;                /* 1 = dataset files must exist (default for both callers) */
	/* "dataset:OWNER/NAME[/FILE]" in a path names an uploaded dataset beneath datasets_dir
	 * (NULL: such paths are refused); only owner's, unless any_owner. */
	const char *datasets_dir;
	const char *owner;
	int any_owner;
} JobSpecOptions;

/* evaluations[i]: the engine's EvalConfig (engine/methods/eval.h), whose protocol keys are bound
 * by offset in the protocol's table, filled with the protocol's defaults and the given keys. */
typedef EvalProto EvalProtocol;
typedef EvalConfig EvalSpec;

typedef struct JobSpec {
	char *name;
	char *method;                  /* "simclr", ... (catalogue name) */
	/* The method's own config struct (engine/methods/<method>.c), every parameter filled from its
	 * table's defaults and "params"; the runner passes it to create() as env->config. */
	_Alignas(max_align_t) unsigned char method_config[METHOD_CONFIG_MAX];
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
	int random_init_baseline;      /* with evaluations: also probe the untrained encoder */
	EmbedMapConfig embed_map;      /* "embedding_map": enabled when the key is present */
	struct {                       /* "distributed": one job over MPI ranks (workers/mpi_launch.h) */
		int enabled;               /* the key is present: the daemon runs the job under mpirun */
		int processes;             /* MPI ranks; divides pretrain.batch_size */
		int n_hosts;               /* 0: the daemon's hostfile, else this machine */
		char *hosts[JOBSPEC_MAX_HOSTS];   /* "name" or "name:slots", checked characters */
	} distributed;
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
