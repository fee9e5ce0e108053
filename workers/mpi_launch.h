/* mpi_launch.h - a worker runs a "distributed" job as a child process tree: mpirun over
 * `ssld run --report-fd 1` ranks, whose rank 0 reports on its stdout in JSON lines.
 *
 * The child's lines become the same runner hooks an in-process job calls (metrics, progress,
 * events, artifacts, checkpoints), so the store sees one job either way. The hooks' should_stop
 * is polled while the child runs: a cancel ends the whole tree (its own session, so nothing is
 * left behind on this host), a stop asks the ranks to checkpoint (SIGUSR1, which mpirun forwards)
 * and requeues. A child that exits without a result fails the job with mpirun's own message
 * (which rank died, and how); JOBDIR/mpirun.log keeps everything the ranks wrote to stderr. A
 * tree that outlived a killed daemon is ended when its job is launched again.
 *
 *   MpiLaunchConfig mc = { .mpirun = "mpirun", .extra_args = "--oversubscribe" };
 *   int rc = mpi_launch_run(&mc, js, dir, key, &hooks, resolve_job, &results, err, sizeof err);
 *   // rc as runner_run_spec: RUNNER_OK, RUNNER_STOPPED, RUNNER_CANCELLED, or < 0 with err
 *
 * The report protocol, one JSON object per line (cli/run.c writes it):
 *   {"t":"metric","step":S,"key":K,"value":V}
 *   {"t":"progress","step":S,"total":T,"stage":N,"fraction":F,"eta_s":E}
 *   {"t":"event","level":L,"message":M}         L: RunnerLevel (syslog priority)
 *   {"t":"artifact","name":N,"path":P}
 *   {"t":"checkpoint","step":S,"path":P}
 *   {"t":"end","status":"succeeded|stopped|cancelled|failed","results":{...},"error":E}
 * Anything else on the child's stdout is ignored. Not here: MPI itself (engine/), the spec.
 */
#ifndef SSLD_WORKERS_MPI_LAUNCH_H
#define SSLD_WORKERS_MPI_LAUNCH_H

#include <stddef.h>

#include "jobspec.h"
#include "runner.h"

#define MPI_LAUNCH_SPEC_FILE "mpi_job.json"    /* in the job's directory: the spec the ranks run */
#define MPI_LAUNCH_HOSTS_FILE "mpi_hosts"      /* the job's "hosts" as an OpenMPI hostfile */
#define MPI_LAUNCH_LOG_FILE "mpirun.log"       /* mpirun's and the ranks' stderr */
#define MPI_LAUNCH_PID_FILE "mpirun.pid"       /* the tree's session: a restarted daemon ends a
                                                  tree its killed predecessor left running */

typedef struct MpiLaunchConfig {
	const char *mpirun;       /* program, looked up on PATH; NULL or "" = "mpirun" */
	const char *extra_args;   /* words after "-np N", split on blanks (never a shell): "--oversubscribe" */
	const char *hostfile;     /* when the job lists no hosts; NULL or "" = this machine */
	const char *ssld;         /* the binary the ranks run; NULL = this process's own executable */
	double stop_grace_s;      /* a stop waits this long for the ranks' checkpoint; <= 0: 60 */
} MpiLaunchConfig;

/* Runs js (js->distributed.enabled) in job_dir under mpirun; takes js and frees it, as
 * runner_run_spec. job_key is the daemon's identity of the directory (workdir.h); resolve_job turns
 * an init_from job id into its checkpoint path before the ranks start. */
int mpi_launch_run(const MpiLaunchConfig *cfg, JobSpec *js, const char *job_dir, const char *job_key,
                   const RunnerHooks *hooks, runner_resolve_job_cb resolve_job, char **results_json,
                   char *err, size_t errlen);

#endif
