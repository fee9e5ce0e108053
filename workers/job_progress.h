/* job_progress.h - one fraction (0..1) and one ETA for a whole job: pretraining and every
 * evaluation, each a phase weighted by its expected cost.
 *
 * A phase's cost is in "units" (one sample through the encoder's forward pass; a training step is
 * about three: forward and backward). Seconds per unit are measured as the job runs (pretraining
 * steps, then each finished evaluation), so the ETA covers every phase still to come. A time
 * budget caps the pretraining phase's seconds. The fraction reported is elapsed / (elapsed + ETA)
 * once a rate is known (the share of units done before), and never goes down.
 *
 *   JobProgress p; jp_init(&p);
 *   int pre = jp_add(&p, 0, 7020 * 256 * 2 * 3.0, 900);   // pretraining, budget 900 s
 *   int ev = jp_add(&p, 1, 600 + 10000, 0);               // a linear probe
 *   jp_begin(&p, pre);
 *   jp_update(&p, 0.25, 120.0, &frac, &eta);   // a quarter of the steps after 120 s
 *   jp_end(&p, 0.4, 900.0);                     // the budget ended it at 40 % of its steps
 *   jp_begin(&p, ev); ...
 */
#ifndef SSLD_WORKERS_JOB_PROGRESS_H
#define SSLD_WORKERS_JOB_PROGRESS_H

#define JOB_PROGRESS_MAX_PHASES 160

typedef struct JobPhase {
	int group;         /* phases alike in cost per unit (pretraining 0, evaluations 1) */
	double units;      /* expected cost */
	double budget_s;   /* > 0: the phase stops after this many seconds */
	double seconds;    /* spent (finished phases) */
	int done;
} JobPhase;

typedef struct JobProgress {
	JobPhase phase[JOB_PROGRESS_MAX_PHASES];
	int n;
	int cur;             /* the running phase, -1 none */
	double last;         /* the last fraction reported */
} JobProgress;

void jp_init(JobProgress *p);
/* A phase at the end of the plan; its index, or -1 when the plan is full. A phase not yet run is
 * timed at the seconds per unit its group's finished phases took, else at the job's so far. */
int jp_add(JobProgress *p, int group, double units, double budget_s);
void jp_begin(JobProgress *p, int i);
/* The running phase is `done` (0..1 of its units) after `spent_s` seconds in it: *fraction of the
 * whole job (monotone) and *eta_s seconds left for the whole job (< 0 while no rate is known). */
void jp_update(JobProgress *p, double done, double spent_s, double *fraction, double *eta_s);
/* The running phase finished after spent_s seconds having done `done` (0..1) of its units (a
 * time budget may end pretraining early): the rate learns from what it really did. */
void jp_end(JobProgress *p, double done, double spent_s);

#endif
