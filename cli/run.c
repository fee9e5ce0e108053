/* cli_run.c - `ssld run job.json [--out DIR]`: validates the spec, runs it in the foreground with
 * a progress bar (a terminal) or plain log lines (anything else), writes DIR/results.json, the
 * checkpoint and artifacts, and prints the results table. Ctrl-C checkpoints and stops; running
 * the same command again resumes. It shares the runner with the daemon's workers.
 *
 * Before it starts it looks at what DIR holds (workdir.h): a finished run is reported, not run
 * again; a checkpoint of another spec is refused; --restart moves the old output aside and
 * --resume continues from the checkpoint whatever spec wrote it. */
#include "run.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../workers/jobspec.h"
#include "../workers/job_files.h"
#include "../workers/runner.h"
#include "../workers/workdir.h"

typedef struct CliState {
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

static double wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fmt_eta(double s, char *buf, size_t len)
{
	if (s < 0) {
		snprintf(buf, len, "--:--");
		return;
	}
	int t = (int)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, len, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, len, "%02d:%02d", t / 60, t % 60);
}

static void cli_metric(void *user, int64_t step, const char *key, double value)
{
	CliState *s = user;
	if (strcmp(key, "loss") == 0) {
		s->loss = value;
		s->step = step;
	}
}

static void cli_progress(void *user, int64_t step, int64_t total, const char *stage, double eta)
{
	CliState *s = user;
	if (s->quiet)
		return;
	char e[32];
	fmt_eta(eta, e, sizeof e);
	if (s->tty) {
		int width = 30, fill = total > 0 ? (int)(width * step / total) : 0;
		char bar[64];
		for (int i = 0; i < width; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[width] = 0;
		fprintf(stderr, "\r%-20.20s [%s] %lld/%lld  loss %.4f  ETA %s   ", stage, bar,
		        (long long)step, (long long)total, s->loss, e);
		fflush(stderr);
	} else if (wall() - s->last_print >= 10 || step == total) {
		fprintf(stderr, "%s: step %lld/%lld loss %.4f eta %s\n", stage, (long long)step,
		        (long long)total, s->loss, e);
		s->last_print = wall();
	}
	snprintf(s->stage, sizeof s->stage, "%s", stage);
}

static void cli_event(void *user, RunnerLevel level, const char *msg)
{
	CliState *s = user;
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

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	size_t got;
	while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			if (cap >= (16u << 20)) {
				snprintf(err, errlen, "%s: larger than 16 MiB, not a job spec", path);
				free(buf);
				fclose(f);
				return NULL;
			}
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

static void print_results(const char *json)
{
	cJSON *root = cJSON_Parse(json);
	if (!root)
		return;
	const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pretext");
	printf("\nresults for %s (%s)\n", cJSON_GetStringValue(cJSON_GetObjectItem(root, "job")),
	       cJSON_GetStringValue(cJSON_GetObjectItem(root, "method")));
	const cJSON *it;
	cJSON_ArrayForEach(it, pre)
	{
		if (cJSON_IsNumber(it))
			printf("  pretext %-16s %g\n", it->string, it->valuedouble);
	}
	printf("  %-14s %10s %8s %14s\n", "protocol", "labels", "fraction", "test accuracy");
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "evaluations"))
	{
		const cJSON *fr = cJSON_GetObjectItem(it, "label_fraction");
		char frac[32] = "-";
		if (fr)
			snprintf(frac, sizeof frac, "%g", fr->valuedouble);
		printf("  %-14s %10d %8s %13.2f%%\n",
		       cJSON_GetStringValue(cJSON_GetObjectItem(it, "protocol")),
		       (int)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "labels")), frac,
		       100 * cJSON_GetNumberValue(cJSON_GetObjectItem(it, "test_accuracy")));
	}
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
		char *results = read_file(path, &len, err, sizeof err);
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

static int usage(void)
{
	fprintf(stderr, "usage: ssld run JOB.json [--out DIR] [--quiet] [--restart | --resume]\n"
	                "  Runs a job in the foreground; DIR (default ./runs/<job name>) receives\n"
	                "  results.json, checkpoint.safetensors, encoder.safetensors and artifacts.\n"
	                "  Ctrl-C checkpoints and stops; the same command resumes. A finished run is\n"
	                "  not run again, and a checkpoint of a different spec is not resumed:\n"
	                "  --restart  start over; DIR's old contents are moved to DIR.old-<time>\n"
	                "  --resume   resume DIR's checkpoint even though the spec changed\n");
	return 2;
}

int cli_run_main(int argc, char **argv)
{
	const char *spec_path = NULL, *out_dir = NULL;
	CliState st = { .tty = isatty(STDERR_FILENO) };
	int restart = 0, resume = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out_dir = argv[++i];
		else if (strcmp(argv[i], "--restart") == 0)
			restart = 1;
		else if (strcmp(argv[i], "--resume") == 0)
			resume = 1;
		else if (strcmp(argv[i], "--quiet") == 0)
			st.quiet = 1;
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return usage();
		else if (argv[i][0] == '-' || spec_path) {
			fprintf(stderr, "ssld run: unexpected argument \"%s\"\n", argv[i]);
			return usage();
		} else
			spec_path = argv[i];
	}
	if (!spec_path)
		return usage();
	if (restart && resume) {
		fprintf(stderr, "ssld run: --restart and --resume contradict each other; give one\n");
		return 2;
	}
	char err[1024];
	size_t len;
	char *text = read_file(spec_path, &len, err, sizeof err);
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
	int go = decide(dir, spec_path, resolved, restart, resume);
	free(resolved);
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

	RunnerHooks hooks = { .user = &st, .on_metric = cli_metric, .on_progress = cli_progress,
	                      .on_event = cli_event, .should_stop = cli_should_stop };
	char *results = NULL;
	RunnerOptions ro = { .resume = resume ? RUNNER_RESUME_FORCE : RUNNER_RESUME_CHECK };
	int rc = runner_run_spec(js, dir, &ro, &hooks, NULL, &results, err, sizeof err);
	if (st.tty && !st.quiet)
		fprintf(stderr, "\n");
	if (rc == RUNNER_OK) {
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
