/* run.c - `ssld run job.json [--out DIR]`: validates the spec, runs it in the foreground with
 * a progress bar (a terminal) or plain log lines (anything else), writes DIR/results.json, the
 * checkpoint and artifacts, and prints the results table. Ctrl-C checkpoints and stops; running
 * the same command again resumes. It shares the runner with the daemon's workers.
 *
 * Before it starts it looks at what DIR holds (workdir.h): a finished run is reported, not run
 * again; a checkpoint of another spec is refused; --restart moves the old output aside and
 * --resume continues from the checkpoint whatever spec wrote it.
 *
 * --report-fd N is how the daemon follows a "distributed" job it started under mpirun
 * (workers/mpi_launch.h has the line protocol): rank 0 writes every hook as a JSON line there,
 * and SIGUSR1 (which mpirun forwards to every rank) checkpoints and stops like Ctrl-C. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../engine/dist.h"
#include "../workers/jobspec.h"
#include "../workers/job_files.h"
#include "../workers/runner.h"
#include "../workers/workdir.h"
#include "args.h"
#include "commands.h"
#include "format.h"
#include "../common/monotime.h"

typedef struct CliState {
	FILE *report;           /* --report-fd on rank 0, else NULL */
	pthread_mutex_t report_mu;
	int tty;
	int quiet;
	double last_print;
	double loss;
	int64_t step, total;
	char stage[96];
} CliState;

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* ---- --report-fd: one JSON object per line (workers/mpi_launch.h) ---------------------------- */

/* One line, whole: hooks may come from more than one thread. Takes o. */
static void report(CliState *s, cJSON *o)
{
	char *line = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	if (!line)
		return;
	pthread_mutex_lock(&s->report_mu);
	fprintf(s->report, "%s\n", line);
	fflush(s->report);
	pthread_mutex_unlock(&s->report_mu);
	free(line);
}

static cJSON *report_line(const char *type)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "t", type);
	return o;
}

static void report_artifact(void *user, const char *name, const char *path)
{
	CliState *s = user;
	cJSON *o = report_line("artifact");
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "path", path);
	report(s, o);
}

static void report_checkpoint(void *user, int64_t step, const char *path)
{
	CliState *s = user;
	cJSON *o = report_line("checkpoint");
	cJSON_AddNumberToObject(o, "step", (double)step);
	cJSON_AddStringToObject(o, "path", path);
	report(s, o);
}

static void report_end(CliState *s, const char *status, const char *results, const char *error)
{
	cJSON *o = report_line("end");
	cJSON_AddStringToObject(o, "status", status);
	cJSON *r = results ? cJSON_Parse(results) : NULL;
	if (r)
		cJSON_AddItemToObject(o, "results", r);
	if (error)
		cJSON_AddStringToObject(o, "error", error);
	report(s, o);
}

/* ---- the terminal --------------------------------------------------------------------------- */

static void cli_metric(void *user, int64_t step, const char *key, double value)
{
	CliState *s = user;
	if (s->report) {
		cJSON *o = report_line("metric");
		cJSON_AddNumberToObject(o, "step", (double)step);
		cJSON_AddStringToObject(o, "key", key);
		cJSON_AddNumberToObject(o, "value", value);
		report(s, o);
	}
	if (strcmp(key, "loss") == 0) {
		s->loss = value;
		s->step = step;
	}
}

/* The bar and the percentage are the whole job's (pretraining and every evaluation, as the
 * server's "progress" fraction); step/total count the stage. */
static void cli_progress(void *user, const RunnerProgress *p)
{
	CliState *s = user;
	if (s->report) {
		cJSON *o = report_line("progress");
		cJSON_AddNumberToObject(o, "step", (double)p->step);
		cJSON_AddNumberToObject(o, "total", (double)p->total);
		cJSON_AddStringToObject(o, "stage", p->stage ? p->stage : "");
		cJSON_AddNumberToObject(o, "fraction", p->fraction);
		cJSON_AddNumberToObject(o, "eta_s", p->eta_s);
		report(s, o);
	}
	if (s->quiet)
		return;
	char e[32];
	cli_fmt_duration(p->eta_s, e, sizeof e);
	if (s->tty) {
		char bar[64];
		cli_fmt_bar(p->fraction, 30, bar, sizeof bar);
		fprintf(stderr, "\r\033[K%s %3.0f%%  %-20.20s %lld/%lld  loss %.4f  ETA %s", bar,
		        100 * p->fraction, p->stage, (long long)p->step, (long long)p->total, s->loss, e);
		fflush(stderr);
	} else if (mono_seconds() - s->last_print >= 10 || strcmp(p->stage, s->stage) != 0) {
		fprintf(stderr, "%3.0f%% %s: step %lld/%lld loss %.4f eta %s\n", 100 * p->fraction, p->stage,
		        (long long)p->step, (long long)p->total, s->loss, e);
		s->last_print = mono_seconds();
	}
	snprintf(s->stage, sizeof s->stage, "%s", p->stage);
}

static void cli_event(void *user, RunnerLevel level, const char *msg)
{
	CliState *s = user;
	if (s->report) {
		cJSON *o = report_line("event");
		cJSON_AddNumberToObject(o, "level", (double)level);
		cJSON_AddStringToObject(o, "message", msg);
		report(s, o);
	}
	if (s->quiet && level > RUNNER_WARNING)
		return;
	fprintf(stderr, "%s%s%s\n", s->tty ? "\r\033[K" : "",
	        level <= RUNNER_ERR ? "error: " : level <= RUNNER_WARNING ? "warning: " : "", msg);
}

static int cli_should_stop(void *user)
{
	(void)user;
	return interrupted ? RUNNER_STOP_REQUEUE : RUNNER_CONTINUE;
}

/* The results table of a results.json text, as `ssld results` prints it. */
static void print_results(const char *json)
{
	cJSON *root = cJSON_Parse(json);
	if (!root)
		return;
	printf("\nresults of %s (%s)\n", cli_json_str(root, "job", "?"), cli_json_str(root, "method", "?"));
	cli_print_results(stdout, root);
	cJSON_Delete(root);
}

/* What to do with what DIR already holds: 1 run, 0 nothing to do (a finished run, reported),
 * -1 refused (the message says why and what to type). */
static int decide(const char *dir, const char *spec_path, const char *resolved, int restart,
                  int resume)
{
	struct stat sb;
	if (stat(dir, &sb) != 0)
		return 1;   /* nothing there yet */
	char err[1024];
	if (restart) {
		char moved[4200];
		if (workdir_move_aside(dir, ".old", moved, sizeof moved, err, sizeof err) < 0) {
			fprintf(stderr, "ssld run: --restart: %s\n", err);
			return -1;
		}
		fprintf(stderr, "ssld run: starting over; the previous output of %s is in %s\n", dir, moved);
		return 1;
	}
	if (resume)
		return 1;
	WorkdirInfo wi;
	if (workdir_inspect(dir, resolved, &wi, err, sizeof err) < 0) {
		fprintf(stderr, "ssld run: %s: %s\n  --restart starts over (moving the old output aside)\n",
		        dir, err);
		return -1;
	}
	if ((wi.has_checkpoint || wi.finished) && wi.spec_match != 1) {
		const char *what = wi.finished ? "a finished run" : "a checkpoint";
		if (wi.spec_match == 0)
			fprintf(stderr, "ssld run: %s holds %s of a different job spec than %s%s%s%s",
			        dir, what, spec_path, wi.differs[0] ? " (changed: " : "", wi.differs,
			        wi.differs[0] ? ")" : "");
		else
			fprintf(stderr, "ssld run: %s holds %s whose job spec was not recorded (an older "
			        "ssld wrote it), so it cannot be checked against %s", dir, what, spec_path);
		fprintf(stderr, "; refusing to %s.\n"
		        "  add --restart  to start over (the old output is moved to %s.old-<time>)\n"
		        "  add --resume   to %s anyway\n"
		        "  or give another --out DIR\n",
		        wi.finished ? "run over it" : "resume it", dir,
		        wi.finished ? "run over it from its final checkpoint" : "resume from its checkpoint");
		return -1;
	}
	if (wi.finished) {
		char path[4200];
		snprintf(path, sizeof path, "%s/results.json", dir);
		size_t len;
		char *results = cli_read_file(path, &len, err, sizeof err);
		fprintf(stderr, "ssld run: %s is complete; its results are in %s "
		        "(--restart runs it again)\n", dir, path);
		if (results) {
			print_results(results);
			free(results);
		}
		return 0;
	}
	return 1;
}

static int run_main(int argc, char **argv)
{
	enum { O_OUT, O_QUIET, O_RESTART, O_RESUME, O_REPORT_FD, O_JOB_KEY, O_COUNT };
	CliOpt args[] = { { "--out", "DIR", NULL, 0 }, { "--quiet", NULL, NULL, 0 }, { "--restart", NULL, NULL, 0 },
	                  { "--resume", NULL, NULL, 0 }, { "--report-fd", "N", NULL, 0 },
	                  { "--job-key", "KEY", NULL, 0 } };
	const char *pos[1];
	int npos, prc = cli_args_parse(argv[0], argc, argv, args, O_COUNT, pos, 1, &npos);
	if (prc != CLI_ARGS_OK)
		return prc == CLI_ARGS_HELP ? 0 : 2;
	if (npos == 0) {
		fprintf(stderr, "ssld run: needs a job file\n");
		cli_command_usage("run", stderr);
		return 2;
	}
	const char *spec_path = pos[0], *out_dir = args[O_OUT].value, *job_key = args[O_JOB_KEY].value;
	CliState st = { .tty = isatty(STDERR_FILENO), .quiet = args[O_QUIET].given > 0 };
	pthread_mutex_init(&st.report_mu, NULL);
	if (args[O_REPORT_FD].value) {
		char *end;
		long fd = strtol(args[O_REPORT_FD].value, &end, 10);
		if (*end || fd < 1 || fd > 1023 || fcntl((int)fd, F_GETFD) < 0) {
			fprintf(stderr, "ssld run: --report-fd: '%s' is not an open file descriptor\n",
			        args[O_REPORT_FD].value);
			return 2;
		}
		/* The report takes the descriptor; when it is stdout, what would be printed there (the
		 * results table) goes to stderr instead. Ranks other than 0 report nothing. */
		int rfd = dup((int)fd);
		if (fd == STDOUT_FILENO)
			dup2(STDERR_FILENO, STDOUT_FILENO);
		if (dist_rank() == 0 && (rfd < 0 || !(st.report = fdopen(rfd, "w")))) {
			fprintf(stderr, "ssld run: --report-fd %ld: %s\n", fd, strerror(errno));
			return 2;
		} else if (dist_rank() != 0 && rfd >= 0) {
			close(rfd);
		}
	}
	int restart = args[O_RESTART].given > 0, resume = args[O_RESUME].given > 0;
	char err[1024];
	size_t len;
	char *text = cli_read_file(spec_path, &len, err, sizeof err);
	if (!text) {
		fprintf(stderr, "ssld run: %s\n", err);
		return 2;
	}
	JobSpec *js;
	SpecError se;
	JobSpecOptions opts = { .check_files = 1 };
	if (jobspec_parse(text, len, &opts, &js, &se) < 0) {
		fprintf(stderr, "ssld run: %s: %s\n", spec_path, se.message);
		free(text);
		return 2;
	}
	free(text);   /* parsed once: the runner takes the typed spec */
	/* A spec that names its process count runs with that many (one without "distributed" runs
	 * with whatever mpirun started). */
	int np = js->distributed.enabled ? js->distributed.processes : dist_size();
	if (dist_size() > 1 && np != dist_size()) {
		fprintf(stderr, "ssld run: %s: distributed.processes is %d, but mpirun started %d processes "
		        "(mpirun -np %d)\n", spec_path, np, dist_size(), np);
		jobspec_free(js);
		return 2;
	}
	if (dist_size() == 1 && np > 1 && dist_rank() == 0)
		fprintf(stderr, "ssld run: running as one process (distributed.processes %d takes effect "
		        "under mpirun -np %d)\n", np, np);
	char dir[4096];
	if (out_dir)
		snprintf(dir, sizeof dir, "%s", out_dir);
	else
		snprintf(dir, sizeof dir, "runs/%s", js->name && js->name[0] ? js->name : js->method);
	char *resolved = jobspec_to_json(js);
	if (!resolved) {
		fprintf(stderr, "ssld run: out of memory\n");
		jobspec_free(js);
		return 1;
	}
	/* Under mpirun rank 0 decides for every process (the others write nothing: runner.h); in a
	 * daemon's job directory the runner checks the key itself (workdir.h). */
	int go = job_key || dist_rank() != 0 ? 1 : decide(dir, spec_path, resolved, restart, resume);
	free(resolved);
	if (dist_bcast(&go, sizeof go, "start of ssld run") < 0) {
		fprintf(stderr, "ssld run: %s\n", dist_error());
		jobspec_free(js);
		return 1;
	}
	if (go <= 0) {
		jobspec_free(js);
		return go == 0 ? 0 : 2;
	}
	for (char *p = dir + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(dir, 0755);
			*p = '/';
		}
	}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "ssld run: cannot create %s: %s\n", dir, strerror(errno));
		jobspec_free(js);
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_sigint };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);

	RunnerHooks hooks = { .user = &st, .on_metric = cli_metric, .on_progress = cli_progress,
	                      .on_event = cli_event, .should_stop = cli_should_stop,
	                      .on_artifact = st.report ? report_artifact : NULL,
	                      .on_checkpoint = st.report ? report_checkpoint : NULL };
	char *results = NULL;
	/* Decoded image pixels (and audio spectrograms) live beside the output folder (runs/image-cache for runs/NAME), so
	 * every run under the same parent reuses them. */
	char cache[4200] = "";
	const char *slash = strrchr(dir, '/');
	if (js->dataset.kind == DATASET_IMAGE_FOLDER || js->dataset.kind == DATASET_AUDIO_FOLDER) {
		snprintf(cache, sizeof cache, "%.*s%simage-cache", slash ? (int)(slash - dir) : 0, dir,
		         slash ? "/" : "");
		if (mkdir(cache, 0755) != 0 && errno != EEXIST)
			cache[0] = 0;      /* then the job's own folder holds them */
	}
	RunnerOptions ro = { .resume = resume ? RUNNER_RESUME_FORCE : RUNNER_RESUME_CHECK,
	                     .cache_dir = cache[0] ? cache : NULL, .job_key = job_key };
	int rc = runner_run_spec(js, dir, &ro, &hooks, NULL, &results, err, sizeof err);
	if (st.report) {
		report_end(&st, rc == RUNNER_OK ? "succeeded" : rc == RUNNER_STOPPED ? "stopped"
		                : rc == RUNNER_CANCELLED ? "cancelled" : "failed",
		           rc == RUNNER_OK ? results : NULL, rc < 0 ? err : NULL);
		fclose(st.report);
	}
	if (st.tty && !st.quiet)
		fprintf(stderr, "\n");
	if (rc == RUNNER_OK) {
		if (dist_rank() > 0)
			return 0;   /* rank 0 reports */
		print_results(results);
		printf("  written to %s/" JOB_FILE_RESULTS "\n", dir);
		free(results);
		return 0;
	}
	if (rc == RUNNER_STOPPED) {
		fprintf(stderr, "ssld run: stopped; checkpoint in %s - run the same command to resume\n", dir);
		return 130;
	}
	if (rc == RUNNER_CANCELLED)
		return 130;
	fprintf(stderr, "ssld run: job failed: %s\n", err);
	return 1;
}

/* Under mpirun (engine/dist.h) every rank runs this; a rank whose job failed exits without
 * MPI_Finalize, so mpirun ends the others instead of leaving them waiting. */
int cli_run_main(int argc, char **argv)
{
	char err[512];
	if (dist_init(err, sizeof err) < 0) {
		fprintf(stderr, "ssld run: %s\n", err);
		return 2;
	}
	int rc = run_main(argc, argv);
	dist_finalize(rc == 1);
	return rc;
}
